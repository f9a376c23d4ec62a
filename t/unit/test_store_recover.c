/*
 * test_store_recover.c - the store on a file that goes wrong under it,
 * and the operator's changes racing the daemon's: an unban made before
 * the daemon's own ban was committed.
 */
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fg.h"
#include "query.h"
#include "store.h"
#include "store_fixture.h"
#include "tap.h"

#define T0 INT64_C(1700000000000)
#define HOUR INT64_C(3600000)

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static fg_store *
open_at(const char *path, int64_t flush_ms)
{
	struct fg_store_options o = {
		.path = path,
		.horizon_ms = HOUR,
		.retention_ms = 7 * 24 * HOUR,
		.flush_interval_ms = flush_ms,
	};
	fg_store *st = NULL;
	char err[256] = "";

	if (fg_store_open(&o, T0, &st, err, sizeof(err)) != 0) {
		printf("# open %s: %s\n", path, err);
		exit(1);
	}
	return st;
}

static int64_t
q_int(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	int64_t v;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK) {
		sqlite3_close(db);
		return -3;
	}
	sqlite3_busy_timeout(db, 2000);
	v = db_int(db, sql);
	sqlite3_close(db);
	return v;
}

/* floodgatectl unban KEY, as it does it. */
static int
ctl_unban(const char *path, const char *key, int64_t now_ms)
{
	fg_query *q = NULL;
	char err[256];
	int rc;

	if (fg_query_open(path, FG_QUERY_WRITE, &q, err, sizeof(err)) != 0) {
		printf("# fg_query_open: %s\n", err);
		return -100;
	}
	rc = fg_query_ban_lift(q, key, now_ms);
	fg_query_close(q);
	return rc;
}

/*
 * The daemon bans a key; before its writer commits, the operator lifts
 * the ban.  The commit must not bring it back, in the table or in memory;
 * a ban the daemon makes afterwards is a new one and stands.
 */
static void
test_unban_race(void)
{
	const char *path = in_dir("unban.db");
	fg_store *st = open_at(path, 10000);   /* no commit for 10 s */
	const char *key = "192.0.2.0/24";
	int64_t t0;

	is_int(fg_store_ban_set(st, key, T0 + HOUR, "dictionary",
	                        "floodgate:dict", T0), 0,
	       "unban race: the daemon bans");
	is_int(q_int(path, "SELECT count(*) FROM bans"), 0,
	       "unban race: not committed yet");
	ctl_unban(path, key, T0 + 500);
	is_int(fg_store_flush(st, 10000), 0, "unban race: the commit");
	is_int(q_int(path, "SELECT count(*) FROM bans WHERE until_ms > "
	             "1700000001000"), 0,
	       "unban race: the commit did not restore the ban in the table");
	is_int(fg_store_ban_get(st, key, T0 + 1000, NULL), 0,
	       "unban race: nor in memory");
	/* The poll reads the table again: still lifted. */
	t0 = mono_ms();
	while (mono_ms() - t0 < 2500)
		sleep_ms(100);
	is_int(fg_store_ban_get(st, key, T0 + 1000, NULL), 0,
	       "unban race: still lifted after the next poll");

	is_int(fg_store_ban_set(st, key, T0 + HOUR, "again", "floodgate:dict",
	                        T0 + 2000), 0,
	       "unban race: the daemon bans again later");
	is_int(fg_store_flush(st, 10000), 0, "unban race: committed");
	is_int(q_int(path, "SELECT count(*) FROM bans WHERE until_ms > "
	             "1700000003000"), 1,
	       "unban race: a later ban is written");
	is_int(fg_store_ban_get(st, key, T0 + 3000, NULL), 1,
	       "unban race: and in force");
	fg_store_close(st);
}

int
main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (fixture_dir_make("fg-recover") != 0)
		return 1;
	test_unban_race();
	fixture_dir_remove();
	return tap_done();
}
