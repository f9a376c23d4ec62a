/*
 * test_store_stress.c - the store under pressure:
 *
 *   crash:  a child process records in a loop with a short flush interval
 *           and is killed with SIGKILL mid-stream; the database must pass
 *           integrity_check, hold a gap-free prefix of the events, and
 *           its per-second aggregates must agree with those events.
 *   lock:   an operator holds BEGIN EXCLUSIVE for ~3 s while four threads
 *           record 10000 events and count; no call may block (100 ms is
 *           the generous bound), and every row lands once the lock goes.
 *
 * The crash test forks first, while this process has no threads.
 */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fg.h"
#include "log.h"
#include "net.h"
#include "store.h"
#include "store_fixture.h"
#include "tap.h"

#define T0 INT64_C(1700000000000)
#define HOUR INT64_C(3600000)

static int64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static fg_store *
open_at(const char *path, int64_t now, int64_t flush_ms)
{
	struct fg_store_options o = {
		.path = path,
		.horizon_ms = HOUR,
		.flush_interval_ms = flush_ms,
	};
	fg_store *st = NULL;
	char err[256] = "";

	if (fg_store_open(&o, now, &st, err, sizeof(err)) != 0) {
		printf("# open %s: %s\n", path, err);
		return NULL;
	}
	return st;
}

static const char *const clients[] = {"192.0.2.1", "192.0.2.2", "192.0.2.3",
                                      "2001:db8::1"};

/* The child: records forever (bounded at 20 s), never returns. */
static void
crash_child(const char *path)
{
	fg_store *st = open_at(path, T0, 10);
	int64_t start = mono_us();

	if (st == NULL)
		_exit(2);
	for (uint64_t i = 0;; i++) {
		const char *client = clients[i % FG_NELEM(clients)];
		const char *net = i % FG_NELEM(clients) == 3 ? "2001:db8::/64"
		                                              : "192.0.2.0/24";
		const char *keys[] = {client, net};
		fg_addr a;
		struct fg_event ev = {
			.time_ms = T0 + (int64_t)i * 3,
			.kind = i % 2 ? FG_EV_RCPT : FG_EV_CONNECT,
			.rcpt_class = i % 2 ? FG_RCPT_INVALID : FG_RCPT_NONE,
			.client = &a,
			.network = net,
			.session_id = i,
			.keys = keys,
			.nkeys = 2,
		};

		fg_addr_parse(client, &a);
		if (fg_store_record(st, &ev) != 0)
			_exit(3); /* a dropped row would break the prefix */
		if (i % 20 == 19)
			sleep_ms(1);
		if (mono_us() - start > 20000000)
			_exit(4);
	}
}

static void
test_crash(void)
{
	const char *path = in_dir("crash.db");
	sqlite3 *db;
	pid_t pid;
	int status = 0;
	int64_t n = 0, t0;

	fflush(stdout);
	if ((pid = fork()) < 0) {
		ok(0, "crash: fork");
		return;
	}
	if (pid == 0)
		crash_child(path);

	/* Wait until some commits happened, then kill it mid-stream. */
	t0 = mono_us();
	while (access(path, F_OK) != 0 && mono_us() - t0 < 10000000)
		sleep_ms(10);
	sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
	sqlite3_busy_timeout(db, 1000);
	while (mono_us() - t0 < 10000000 &&
	       (n = db_int(db, "SELECT count(*) FROM events")) < 2000)
		sleep_ms(20);
	sqlite3_close(db);
	ok(n >= 2000, "crash: child committed rows before the kill (%" PRId64
	   ")", n);
	sleep_ms(137);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	   "crash: child died of SIGKILL (status %d)", status);

	sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
	sqlite3_busy_timeout(db, 2000);
	sqlite3_stmt *s;
	char ic[64] = "";
	if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, NULL) ==
	    SQLITE_OK) {
		if (sqlite3_step(s) == SQLITE_ROW)
			snprintf(ic, sizeof(ic), "%s", sqlite3_column_text(s, 0));
		sqlite3_finalize(s);
	}
	is_str(ic, "ok", "crash: integrity_check");
	n = db_int(db, "SELECT count(*) FROM events");
	ok(n >= 2000, "crash: %" PRId64 " events survived", n);
	is_int(db_int(db, "SELECT min(session_id) FROM events"), 0,
	       "crash: prefix starts at 0");
	is_int(db_int(db, "SELECT max(session_id) FROM events"), n - 1,
	       "crash: prefix has no gap (max = count - 1)");
	is_int(db_int(db, "SELECT count(DISTINCT session_id) FROM events"), n,
	       "crash: no duplicates");
	/* The aggregates committed with the events agree with them. */
	is_int(db_int(db, "SELECT sum(connect) FROM counts WHERE"
	              " key IN ('192.0.2.0/24', '2001:db8::/64')"),
	       db_int(db, "SELECT count(*) FROM events WHERE kind = 'connect'"),
	       "crash: connect aggregates match events");
	is_int(db_int(db, "SELECT sum(invalid) FROM counts WHERE"
	              " key IN ('192.0.2.0/24', '2001:db8::/64')"),
	       db_int(db, "SELECT count(*) FROM events WHERE"
	              " class = 'invalid'"),
	       "crash: invalid aggregates match events");
	is_int(db_int(db, "SELECT count(*) FROM (SELECT client, kind,"
	              " count(*) AS c FROM events GROUP BY client, kind) e"
	              " WHERE c != (SELECT sum(CASE e.kind WHEN 'rcpt' THEN"
	              " rcpt ELSE connect END) FROM counts WHERE key ="
	              " e.client)"), 0,
	       "crash: per-client aggregates match events");
	is_int(db_int(db, "SELECT count(*) FROM events e WHERE NOT EXISTS"
	              " (SELECT 1 FROM counts c WHERE c.key = e.client AND"
	              " c.sec = e.ts_ms / 1000)"), 0,
	       "crash: every event has its second in counts");
	sqlite3_close(db);

	/* The daemon restarts on it: counters rebuilt from what committed. */
	fg_store *st = open_at(path, T0 + HOUR / 2, 1000);
	ok(st != NULL, "crash: reopens");
	if (st != NULL) {
		int64_t c = fg_store_count(st, "192.0.2.0/24", FG_CNT_CONNECT,
		                           HOUR, T0 + HOUR / 2) +
		            fg_store_count(st, "2001:db8::/64", FG_CNT_CONNECT,
		                           HOUR, T0 + HOUR / 2);
		sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
		is_int(c, db_int(db, "SELECT count(*) FROM events WHERE kind ="
		                 " 'connect'"), "crash: counters rebuilt");
		sqlite3_close(db);
		fg_store_close(st);
	}
}

struct worker {
	fg_store *st;
	int id;
	int n;
	int64_t max_us;
	int errors;
	_Atomic bool *go;
	_Atomic int *done;
};

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	char client[32];

	while (!atomic_load(w->go))
		sleep_ms(1);
	for (int i = 0; i < w->n; i++) {
		const char *keys[] = {client, "198.51.100.0/24", "*"};
		fg_addr a;
		struct fg_event ev = {
			.time_ms = T0 + i,
			.kind = FG_EV_RCPT,
			.rcpt_class = FG_RCPT_INVALID,
			.client = &a,
			.network = "198.51.100.0/24",
			.rcpt = "<nobody@example.org>",
			.session_id = (uint64_t)(w->id * 100000 + i),
			.keys = keys,
			.nkeys = 3,
		};
		int64_t t;

		snprintf(client, sizeof(client), "198.51.100.%d", w->id + 1);
		fg_addr_parse(client, &a);
		t = mono_us();
		if (fg_store_record(w->st, &ev) != 0)
			w->errors++;
		if (fg_store_count(w->st, "198.51.100.0/24",
		                   FG_CNT_RCPT_INVALID, HOUR, T0 + i) < 0)
			w->errors++;
		t = mono_us() - t;
		if (t > w->max_us)
			w->max_us = t;
		/* Spread the work over the 3 s the lock is held. */
		if (i % 10 == 9)
			sleep_ms(8);
	}
	atomic_fetch_add(w->done, 1);
	return NULL;
}

static void
test_lock(void)
{
	const char *path = in_dir("lock.db");
	fg_store *st = open_at(path, T0, 100);
	sqlite3 *op;
	pthread_t th[4];
	struct worker w[4];
	_Atomic bool go = false;
	_Atomic int done = 0;
	int64_t held, max_us = 0;
	int errors = 0;
	struct fg_store_stats s;

	if (st == NULL) {
		ok(0, "lock: open");
		return;
	}
	sqlite3_open_v2(path, &op, SQLITE_OPEN_READWRITE, NULL);
	is_int(sqlite3_exec(op, "BEGIN EXCLUSIVE", NULL, NULL, NULL),
	       SQLITE_OK, "lock: operator holds BEGIN EXCLUSIVE");
	held = mono_us();
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){.st = st, .id = i, .n = 2500, .go = &go,
		                       .done = &done};
		pthread_create(&th[i], NULL, worker_main, &w[i]);
	}
	atomic_store(&go, true);
	/* A call that waited on the database would wait for the COMMIT
	 * below: give them a minute (they need about two seconds), and
	 * release the lock either way so that a failure does not hang. */
	for (int i = 0; i < 6000 && atomic_load(&done) < 4; i++)
		sleep_ms(10);
	is_int(atomic_load(&done), 4,
	       "lock: every record/count call returned while locked");
	if (atomic_load(&done) < 4)
		sqlite3_exec(op, "COMMIT", NULL, NULL, NULL);
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		if (w[i].max_us > max_us)
			max_us = w[i].max_us;
		errors += w[i].errors;
	}
	fg_store_get_stats(st, &s);
	ok(s.queued > 0, "lock: rows waiting while locked (%zu)", s.queued);
	is_int(fg_store_count(st, "198.51.100.0/24", FG_CNT_RCPT_INVALID,
	                      HOUR, T0 + 3000), 10000,
	       "lock: counts complete while locked");
	while (mono_us() - held < 3000000)
		sleep_ms(10);
	fg_store_get_stats(st, &s);
	ok(s.write_errors > 0, "lock: writer saw the lock (%" PRIu64 " tries)",
	   s.write_errors);
	is_int(s.written, 0, "lock: nothing written while locked");
	sqlite3_exec(op, "COMMIT", NULL, NULL, NULL);
	is_int(errors, 0, "lock: no call failed");
	printf("# lock: slowest record/count call %" PRId64 " us\n", max_us);
	is_int(fg_store_flush(st, 30000), 0, "lock: flushed after release");
	is_int(db_int(op, "SELECT count(*) FROM events"), 10000,
	       "lock: all 10000 rows landed");
	is_int(db_int(op, "SELECT sum(invalid) FROM counts WHERE key ="
	              " '198.51.100.0/24'"), 10000,
	       "lock: all aggregates landed");
	is_int(db_int(op, "SELECT count(DISTINCT session_id) FROM events"),
	       10000, "lock: each row once");
	fg_store_get_stats(st, &s);
	is_int(s.dropped, 0, "lock: nothing dropped");
	ok(s.healthy, "lock: healthy");
	sqlite3_close(op);
	fg_store_close(st);
}

int
main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	fg_log_open("test_store_stress", true, FG_LOG_ERR);
	if (fixture_dir_make("fg-stress") != 0)
		return 1;
	test_crash();
	test_lock();
	fixture_dir_remove();
	return tap_done();
}
