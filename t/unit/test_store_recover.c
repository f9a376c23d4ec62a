/*
 * test_store_recover.c - the store on a file that goes wrong under it,
 * and the operator's changes racing the daemon's: an unban made before
 * the daemon's own ban was committed, a database at its size limit, a
 * full file system, a database file deleted or replaced.  Decisions keep
 * coming from memory throughout; the file comes back by itself.
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
open_at(const char *path, int64_t flush_ms, uint64_t max_db)
{
	struct fg_store_options o = {
		.path = path,
		.horizon_ms = HOUR,
		.retention_ms = 7 * 24 * HOUR,
		.flush_interval_ms = flush_ms,
		.max_database_size = max_db,
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

static const char *
q_text(const char *path, const char *sql)
{
	static char buf[256];
	sqlite3 *db = NULL;
	sqlite3_stmt *s;

	snprintf(buf, sizeof(buf), "(none)");
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) ==
	        SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK) {
		if (sqlite3_step(s) == SQLITE_ROW &&
		    sqlite3_column_text(s, 0) != NULL)
			snprintf(buf, sizeof(buf), "%s",
			         (const char *)sqlite3_column_text(s, 0));
		sqlite3_finalize(s);
	}
	sqlite3_close(db);
	return buf;
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
	fg_store *st = open_at(path, 10000, 0);   /* no commit for 10 s */
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

/* One connect from addr, with a recipient text of len bytes (row size). */
static int
rec(fg_store *st, int64_t t, const char *addr, size_t len)
{
	static char rcpt[4096];
	const char *keys[] = {addr};
	struct fg_event ev = {
		.time_ms = t,
		.kind = FG_EV_CONNECT,
		.keys = keys,
		.nkeys = 1,
		.rcpt = rcpt,
	};

	if (len >= sizeof(rcpt))
		len = sizeof(rcpt) - 1;
	memset(rcpt, 'r', len);
	rcpt[len] = '\0';
	return fg_store_record(st, &ev);
}

static void
rm_db(const char *name)
{
	char p[300];

	snprintf(p, sizeof(p), "%s", in_dir(name));
	unlink(p);
	snprintf(p, sizeof(p), "%s-wal", in_dir(name));
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", in_dir(name));
	unlink(p);
}

/* Waits up to 10 s until the store is healthy or not. */
static bool
wait_healthy(fg_store *st, bool want)
{
	int64_t t0 = mono_ms();

	while (fg_store_healthy(st) != want && mono_ms() - t0 < 10000)
		sleep_ms(20);
	return fg_store_healthy(st) == want;
}

/*
 * The file deleted under the store (and its -wal and -shm, as an rm of
 * the directory's contents would): the next commit opens the path again,
 * creates the file, and writes the rows and the bans there; counting
 * never stopped.
 */
static void
test_deleted(void)
{
	const char *path = in_dir("deleted.db");
	fg_store *st = open_at(path, 50, 0);
	struct fg_store_stats s;

	rec(st, T0, "192.0.2.1", 10);
	fg_store_ban_set(st, "198.51.100.0/24", T0 + HOUR, "r", "x", T0);
	fg_store_level_set(st, "dict", "198.51.100.0/24", 2, T0);
	is_int(fg_store_flush(st, 10000), 0, "deleted: first flush");
	rm_db("deleted.db");
	rec(st, T0 + 1000, "192.0.2.1", 10);
	is_int(fg_store_flush(st, 10000), 0,
	       "deleted: the next flush succeeds");
	fg_store_get_stats(st, &s);
	ok(s.healthy, "deleted: healthy");
	is_int(s.reopened, 1, "deleted: stats count the reopening");
	is_int(q_int(path, "SELECT count(*) FROM events"), 1,
	       "deleted: the file is back with the new row");
	is_int(q_int(path, "SELECT count(*) FROM bans WHERE until_ms > "
	             "1700000001000"), 1, "deleted: the ban written again");
	/* The table numbers levels from 1: index 2 is level 3. */
	is_int(q_int(path, "SELECT level FROM levels"), 3,
	       "deleted: the level written again");
	is_int(fg_store_count(st, "192.0.2.1", FG_CNT_CONNECT, HOUR,
	                      T0 + 1000), 2,
	       "deleted: the count kept both events");
	is_int(fg_store_ban_get(st, "198.51.100.0/24", T0 + 1000, NULL), 1,
	       "deleted: the ban still in force");

	/* The file alone, its WAL left beside the path: the new file must
	 * not take the old file's pages from it. */
	rec(st, T0 + 2000, "192.0.2.3", 10);
	is_int(fg_store_flush(st, 10000), 0, "deleted again: flushed");
	unlink(path);
	rec(st, T0 + 3000, "192.0.2.4", 10);
	is_int(fg_store_flush(st, 10000), 0, "deleted again: flushed after");
	is_int(q_int(path, "SELECT count(*) FROM events"), 1,
	       "deleted again: only the new row in the new file");
	is_str(q_text(path, "PRAGMA integrity_check"), "ok",
	       "deleted again: the new file is sound");
	fg_store_get_stats(st, &s);
	is_int(s.reopened, 2, "deleted again: opened a second time");
	fg_store_close(st);
}

/* Another floodgate database renamed over the path: used from then on. */
static void
test_replaced(void)
{
	const char *path = in_dir("replaced.db");
	const char *other = in_dir("other.db");
	fg_store *st = open_at(path, 50, 0), *o = open_at(other, 50, 0);
	struct fg_store_stats s;

	fg_store_close(o);
	rec(st, T0, "192.0.2.1", 10);
	is_int(fg_store_flush(st, 10000), 0, "replaced: first flush");
	is_int(rename(other, path), 0, "replaced: renamed over it");
	rec(st, T0 + 1000, "192.0.2.2", 10);
	is_int(fg_store_flush(st, 10000), 0, "replaced: flushed");
	fg_store_get_stats(st, &s);
	is_int(s.reopened, 1, "replaced: opened again");
	is_int(q_int(path, "SELECT count(*) FROM events WHERE client IS NULL"),
	       1, "replaced: the row went to the new file");
	fg_store_close(st);
	rm_db("replaced.db");
}

/*
 * Something that is not a database put in its place: the store cannot
 * open it, says so, keeps counting and holds the rows; once the path is
 * free again it creates the file by itself and the rows land.
 */
static void
test_foreign(void)
{
	const char *path = in_dir("foreign.db");
	fg_store *st = open_at(path, 50, 0);
	struct fg_store_stats s;
	FILE *f;

	rec(st, T0, "192.0.2.1", 10);
	is_int(fg_store_flush(st, 10000), 0, "foreign: first flush");
	rm_db("foreign.db");
	f = fopen(path, "w");
	fputs("not a database, but rather a long line of text that SQLite "
	      "cannot take for a header of its own\n", f);
	fclose(f);
	rec(st, T0 + 1000, "192.0.2.1", 10);
	ok(wait_healthy(st, false), "foreign: unhealthy");
	fg_store_get_stats(st, &s);
	ok(s.last_error[0] != '\0', "foreign: last_error '%s'", s.last_error);
	is_int(s.queued, 1, "foreign: the row is held");
	is_int(fg_store_count(st, "192.0.2.1", FG_CNT_CONNECT, HOUR,
	                      T0 + 1000), 2, "foreign: counting goes on");
	unlink(path);
	ok(wait_healthy(st, true), "foreign: healthy once the path is free");
	is_int(fg_store_flush(st, 10000), 0, "foreign: flushed");
	is_int(q_int(path, "SELECT count(*) FROM events"), 1,
	       "foreign: the held row landed in the new file");
	fg_store_close(st);
}

/*
 * max_database_size: rows arrive much faster than they expire; the
 * oldest events and verdicts go, the file stays under the limit, every
 * commit succeeds and the counts stay exact.
 */
static void
test_max_size(void)
{
	const char *path = in_dir("size.db");
	const uint64_t max = 1 << 20;
	fg_store *st = open_at(path, 50, max);
	struct fg_store_stats s;
	int64_t biggest = 0, t = T0;
	int fails = 0;

	for (int round = 0; round < 40; round++) {
		for (int i = 0; i < 250; i++, t += 10)
			rec(st, t, "192.0.2.1", 400);
		if (fg_store_flush(st, 10000) != 0)
			fails++;
		int64_t pages = q_int(path, "PRAGMA page_count");
		int64_t psize = q_int(path, "PRAGMA page_size");
		if (pages * psize > biggest)
			biggest = pages * psize;
	}
	fg_store_get_stats(st, &s);
	is_int(fails, 0, "max size: every flush succeeded");
	ok(s.healthy, "max size: healthy");
	ok(biggest <= (int64_t)max, "max size: the file stayed under %" PRIu64
	   " bytes (at most %" PRId64 ")", max, biggest);
	ok(s.size_pruned > 0, "max size: %" PRIu64 " oldest rows deleted",
	   s.size_pruned);
	ok(s.db_size > 0 && s.db_size <= max, "max size: stats.db_size %"
	   PRIu64, s.db_size);
	is_int(s.max_database_size, (int64_t)max, "max size: stats give it");
	is_int(q_int(path, "SELECT max(ts_ms) FROM events"), t - 10,
	       "max size: the newest event is kept");
	ok(q_int(path, "SELECT min(ts_ms) FROM events") > T0,
	   "max size: the oldest went");
	is_int(fg_store_count(st, "192.0.2.1", FG_CNT_CONNECT, HOUR, t),
	       10000, "max size: the count is exact");
	is_int(q_int(path, "SELECT sum(connect) FROM counts"), 10000,
	       "max size: the aggregates were not touched");
	fg_store_close(st);
}

/*
 * One batch bigger than the whole limit: its rows cannot be written even
 * with every older one gone, so they are dropped (counted) and only what
 * they add to the counts is written.
 */
static void
test_batch_too_big(void)
{
	const char *path = in_dir("tiny.db");
	fg_store *st = open_at(path, 10000, 128 * 1024);
	struct fg_store_stats s;

	for (int i = 0; i < 2000; i++)
		rec(st, T0 + i, "192.0.2.1", 400);
	is_int(fg_store_flush(st, 10000), 0, "too big: the flush succeeds");
	fg_store_get_stats(st, &s);
	ok(s.healthy, "too big: healthy");
	is_int(s.dropped, 2000, "too big: the rows were dropped, counted");
	is_int(q_int(path, "SELECT sum(connect) FROM counts"), 2000,
	       "too big: their counts were written");
	is_int(q_int(path, "SELECT count(*) FROM events"), 0,
	       "too big: no event row");
	fg_store_close(st);
}

/*
 * A full file system (a small tmpfs, root only): counting goes on, the
 * rows are held or make room by deleting the oldest; once space is free
 * again, every held row lands.
 */
static void
test_full_disk(void)
{
	char mnt[300], db[340], filler[340], cmd[700];
	fg_store *st;
	int64_t t = T0;
	int n = 0;

	if (getuid() != 0) {
		ok(1, "# SKIP full disk: needs root to mount a tmpfs");
		return;
	}
	snprintf(mnt, sizeof(mnt), "%s", in_dir("tmpfs"));
	mkdir(mnt, 0700);
	snprintf(cmd, sizeof(cmd), "mount -t tmpfs -o size=1m,mode=0700 tmpfs '%s'", mnt);
	if (system(cmd) != 0) {
		ok(1, "# SKIP full disk: cannot mount a tmpfs");
		rmdir(mnt);
		return;
	}
	snprintf(db, sizeof(db), "%s/full.db", mnt);
	snprintf(filler, sizeof(filler), "%s/filler", mnt);
	st = open_at(db, 50, 0);
	for (int i = 0; i < 200; i++, t += 10)
		rec(st, t, "192.0.2.1", 400);
	is_int(fg_store_flush(st, 10000), 0, "full disk: first rows written");
	snprintf(cmd, sizeof(cmd), "dd if=/dev/zero of='%s' bs=4k "
	         "2>/dev/null", filler);
	if (system(cmd) == -1)
		printf("# %s: cannot run\n", cmd);
	/* Until the store fails or has made room a few times over. */
	for (int round = 0; round < 50 && fg_store_healthy(st); round++) {
		for (int i = 0; i < 200; i++, t += 10, n++)
			rec(st, t, "192.0.2.1", 400);
		fg_store_flush(st, 2000);
	}
	is_int(fg_store_count(st, "192.0.2.1", FG_CNT_CONNECT, HOUR, t),
	       200 + n, "full disk: every event counted (%d)", 200 + n);
	unlink(filler);
	ok(wait_healthy(st, true), "full disk: healthy once space is free");
	is_int(fg_store_flush(st, 10000), 0, "full disk: everything held "
	       "landed");
	is_int(q_int(db, "SELECT max(ts_ms) FROM events"), t - 10,
	       "full disk: up to the newest row");
	fg_store_close(st);
	snprintf(cmd, sizeof(cmd), "umount '%s'", mnt);
	if (system(cmd) != 0)
		printf("# %s failed\n", cmd);
	rmdir(mnt);
}

int
main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (fixture_dir_make("fg-recover") != 0)
		return 1;
	test_unban_race();
	test_deleted();
	test_replaced();
	test_foreign();
	test_max_size();
	test_batch_too_big();
	test_full_disk();
	fixture_dir_remove();
	return tap_done();
}
