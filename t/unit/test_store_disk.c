/*
 * test_store_disk.c - the event store on a real file: modes, schema and
 * migrations, rows as an operator sees them, restart, pruning, bans
 * written by another process, a full queue, a failing disk, the views.
 *
 * Files live in a fresh mkdtemp() directory under /tmp, removed at the
 * end.  A second SQLite connection (the C API) plays floodgatectl and the
 * operator.  Time is injected, except where the views (which use the
 * wall clock by design) are checked.
 */
#include <fcntl.h>
#include <pthread.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fg.h"
#include "net.h"
#include "store.h"
#include "store_fixture.h"
#include "tap.h"

/* Turns a new file back into schema 3 (before n, the sample, the shared
 * status and the allows' source), for the migrations. */
#define DOWN_TO_3 \
	"DROP VIEW top_offenders_1h; DROP VIEW top_offenders_24h;" \
	" DROP VIEW invalid_ratio_by_network;" \
	" ALTER TABLE events DROP COLUMN n; ALTER TABLE verdicts DROP COLUMN n;" \
	" ALTER TABLE counts DROP COLUMN sample;" \
	" ALTER TABLE status DROP COLUMN shared_state;" \
	" ALTER TABLE status DROP COLUMN shared_node;" \
	" ALTER TABLE status DROP COLUMN shared_server;" \
	" ALTER TABLE status DROP COLUMN shared_reason;" \
	" ALTER TABLE status DROP COLUMN shared_peers;" \
	" ALTER TABLE status DROP COLUMN shared_sync_ms;" \
	" ALTER TABLE status DROP COLUMN shared_skew_ms;" \
	" ALTER TABLE allows DROP COLUMN source;"
#define T0 INT64_C(1700000000000)
#define HOUR INT64_C(3600000)
#define DAY (24 * HOUR)

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits (up to 10 s) until the writer has tried and failed at least
 * once more than before, so the statistics reflect a failed attempt. */
static void
wait_failure(fg_store *st, uint64_t before)
{
	struct fg_store_stats s;
	int64_t t0 = mono_ms();

	do {
		fg_store_get_stats(st, &s);
		if (s.write_errors > before)
			return;
		sleep_ms(10);
	} while (mono_ms() - t0 < 10000);
}

static sqlite3 *
db_open(const char *path)
{
	sqlite3 *db = NULL;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE |
	                    SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
		printf("# cannot open %s\n", path);
		exit(1);
	}
	sqlite3_busy_timeout(db, 2000);
	return db;
}

/* The details of EXPLAIN QUERY PLAN, joined. */
static const char *
q_plan(const char *path, const char *sql)
{
	static char buf[1024];
	char eqp[512];
	sqlite3 *db = db_open(path);
	sqlite3_stmt *s;

	buf[0] = '\0';
	snprintf(eqp, sizeof(eqp), "EXPLAIN QUERY PLAN %s", sql);
	if (sqlite3_prepare_v2(db, eqp, -1, &s, NULL) == SQLITE_OK) {
		while (sqlite3_step(s) == SQLITE_ROW) {
			const unsigned char *t = sqlite3_column_text(s, 3);
			size_t n = strlen(buf);

			snprintf(buf + n, sizeof(buf) - n, "%s; ",
			         t ? (const char *)t : "");
		}
		sqlite3_finalize(s);
	}
	sqlite3_close(db);
	return buf;
}

/* db_int() on a connection of its own. */
static int64_t
q_int(const char *path, const char *sql)
{
	sqlite3 *db = db_open(path);
	int64_t v = db_int(db, sql);

	sqlite3_close(db);
	return v;
}

static const char *
q_text(const char *path, const char *sql)
{
	static char buf[4][512];
	static int i;
	sqlite3 *db = db_open(path);
	sqlite3_stmt *s;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "(no row)");
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
		snprintf(buf[i], sizeof(buf[i]), "(error: %s)",
		         sqlite3_errmsg(db));
		sqlite3_close(db);
		return buf[i];
	}
	if (sqlite3_step(s) == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(s, 0);
		snprintf(buf[i], sizeof(buf[i]), "%s", t ? (const char *)t
		                                          : "(null)");
	}
	sqlite3_finalize(s);
	sqlite3_close(db);
	return buf[i];
}

static int
q_exec(const char *path, const char *sql)
{
	sqlite3 *db = db_open(path);
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		printf("# %s: %s\n", sql, sqlite3_errmsg(db));
	sqlite3_close(db);
	return rc;
}

static fg_store *
open_at(const char *path, int64_t now, int64_t horizon, int64_t retention,
        size_t queue)
{
	struct fg_store_options o = {
		.path = path,
		.horizon_ms = horizon,
		.retention_ms = retention,
		.flush_interval_ms = 50,
		.queue_size = queue,
	};
	fg_store *st = NULL;
	char err[256] = "";
	int rc = fg_store_open(&o, now, &st, err, sizeof(err));

	if (rc != 0) {
		printf("# open %s: %d %s\n", path, rc, err);
		return NULL;
	}
	return st;
}

/* Whether rec() puts a recipient in the ratio guard's sample. */
static bool rec_sampled;

static int
rec(fg_store *st, int64_t t, enum fg_event_kind k, enum fg_rcpt_class c,
    const char *client, const char *network, const char *rcpt)
{
	fg_addr a;
	const char *keys[3];
	size_t n = 0;
	struct fg_event ev = {
		.time_ms = t,
		.kind = k,
		.rcpt_class = c,
		.network = network,
		.rcpt = rcpt,
		.helo = "mx.example.net",
		.sender = "<a@example.net>",
		.queue_id = "QID1",
		.status = c == FG_RCPT_INVALID ? "5.1.1" : NULL,
		.session_id = 7,
		.rcpt_sampled = rec_sampled && k == FG_EV_RCPT,
	};

	if (client != NULL) {
		fg_addr_parse(client, &a);
		ev.client = &a;
		keys[n++] = client;
	}
	if (network != NULL)
		keys[n++] = network;
	keys[n++] = "*";
	ev.keys = keys;
	ev.nkeys = n;
	return fg_store_record(st, &ev);
}

static mode_t
mode_of(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? sb.st_mode & 07777 : (mode_t)-1;
}

static void
test_modes(void)
{
	struct fg_store_options o = {.horizon_ms = HOUR, .file_mode = 0660};
	fg_store *st;
	char err[256];
	mode_t old = umask(022);

	o.path = in_dir("mode.db");
	is_int(fg_store_open(&o, T0, &st, err, sizeof(err)), 0,
	       "mode: open with 0660 under umask 022");
	rec(st, T0, FG_EV_CONNECT, FG_RCPT_NONE, "192.0.2.1", NULL, NULL);
	is_int(fg_store_flush(st, 10000), 0, "mode: flush");
	is_int(mode_of(in_dir("mode.db")), 0660, "mode: database 0660");
	is_int(mode_of(in_dir("mode.db-wal")), 0660, "mode: -wal 0660");
	is_int(mode_of(in_dir("mode.db-shm")), 0660, "mode: -shm 0660");
	fg_store_close(st);

	umask(077);
	o.path = in_dir("mode2.db");
	o.file_mode = 0;
	is_int(fg_store_open(&o, T0, &st, err, sizeof(err)), 0,
	       "mode: default under umask 077");
	rec(st, T0, FG_EV_CONNECT, FG_RCPT_NONE, "192.0.2.1", NULL, NULL);
	fg_store_flush(st, 10000);
	is_int(mode_of(in_dir("mode2.db")), 0640, "mode: default 0640");
	is_int(mode_of(in_dir("mode2.db-wal")), 0640, "mode: default -wal");
	fg_store_close(st);
	/* An existing file keeps its mode. */
	chmod(in_dir("mode2.db"), 0600);
	o.file_mode = 0666;
	is_int(fg_store_open(&o, T0, &st, err, sizeof(err)), 0,
	       "mode: reopen");
	is_int(mode_of(in_dir("mode2.db")), 0600, "mode: existing file kept");
	fg_store_close(st);
	umask(old);
}

/* Files another user could have written, or links, are refused before
 * SQLite sees them, and left as they were. */
static void
test_unsafe_files(void)
{
	struct fg_store_options o = {.horizon_ms = HOUR};
	fg_store *st = NULL;
	char err[256];
	int fd;

	o.path = in_dir("ww.db");
	fd = open(o.path, O_CREAT | O_WRONLY, 0600);
	close(fd);
	chmod(o.path, 0666);
	is_int(fg_store_open(&o, T0, &st, err, sizeof(err)), FG_EIO,
	       "unsafe: a world-writable database is refused");
	ok(strstr(err, "mode 0666 lets other users write it") != NULL,
	   "unsafe: ... saying why (%s)", err);
	is_int(mode_of(o.path), 0666, "unsafe: ... and left as it was");
	chmod(o.path, 0620);
	is_int(fg_store_open(&o, T0, &st, err, sizeof(err)), FG_EIO,
	       "unsafe: a group-writable one too, under mode 0640");
	o.file_mode = 0660;
	is_int(fg_store_open(&o, T0, &st, err, sizeof(err)), 0,
	       "unsafe: ... but not when the mode grants it");
	fg_store_close(st);
	o.file_mode = 0;

	o.path = in_dir("ln.db");
	(void)!symlink(in_dir("ww.db"), in_dir("ln.db-shm"));
	is_int(fg_store_open(&o, T0, &st, err, sizeof(err)), FG_EIO,
	       "unsafe: a -shm that is a link is refused");
	ok(strstr(err, "ln.db-shm: is a symbolic link") != NULL,
	   "unsafe: ... saying which (%s)", err);
	ok(access(in_dir("ln.db"), F_OK) != 0,
	   "unsafe: ... before the database is created");

	o.path = in_dir("hard.db");
	chmod(in_dir("ww.db"), 0600);
	(void)!link(in_dir("ww.db"), in_dir("hard.db"));
	is_int(fg_store_open(&o, T0, &st, err, sizeof(err)), FG_EIO,
	       "unsafe: a database with a second name is refused");
	ok(strstr(err, "has 2 hard links") != NULL, "unsafe: ... saying so");
}

static void
test_schema(void)
{
	static const char *const objects[] = {
		"table events", "table verdicts", "table bans", "table counts",
		"table levels", "index events_ts", "index verdicts_ts",
		"view top_offenders_1h",
		"view top_offenders_24h", "view active_bans",
		"view invalid_ratio_by_network",
	};
	const char *path = in_dir("schema.db");
	fg_store *st = open_at(path, T0, HOUR, 0, 0);
	char sql[256];

	ok(st != NULL, "schema: fresh file opened");
	fg_store_close(st);
	is_int(q_int(path, "PRAGMA user_version"), FG_STORE_SCHEMA_VERSION,
	       "schema: version %d", FG_STORE_SCHEMA_VERSION);
	is_int(q_int(path, "PRAGMA application_id"), 0x666c6764,
	       "schema: application_id");
	is_str(q_text(path, "PRAGMA journal_mode"), "wal", "schema: WAL");
	for (size_t i = 0; i < FG_NELEM(objects); i++) {
		char type[16], name[64];

		sscanf(objects[i], "%15s %63s", type, name);
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM sqlite_schema"
		         " WHERE type = '%s' AND name = '%s'", type, name);
		is_int(q_int(path, sql), 1, "schema: %s", objects[i]);
	}
	ok(strstr(q_text(path, "SELECT sql FROM sqlite_schema WHERE name = "
	                 "'counts'"), "WITHOUT ROWID") != NULL,
	   "schema: counts is WITHOUT ROWID");
	static const struct {
		const char *sql, *index;
	} plans[] = {
		{"SELECT * FROM top_offenders_1h", "events_ts"},
		{"SELECT * FROM top_offenders_24h", "events_ts"},
		{"SELECT count(*) FROM events WHERE network = 'x' AND ts_ms > 5",
		 "events_ts"},
		{"SELECT count(*) FROM events WHERE client = 'x' AND ts_ms > 5",
		 "events_ts"},
		{"SELECT * FROM verdicts WHERE ts_ms > 5", "verdicts_ts"},
		/* time first: pruning and the rebuild read one key range */
		{"SELECT * FROM counts WHERE sec < 5", "PRIMARY KEY (sec<?)"},
		{"SELECT key, sec, invalid FROM counts WHERE sec > 5 ORDER BY sec",
		 "PRIMARY KEY (sec>?)"},
	};
	for (size_t i = 0; i < FG_NELEM(plans); i++) {
		const char *plan = q_plan(path, plans[i].sql);

		ok(strstr(plan, plans[i].index) != NULL, "schema: %s uses %s "
		   "(%s)", plans[i].sql, plans[i].index, plan);
	}
	/* Opening again migrates nothing and keeps the data. */
	q_exec(path, "INSERT INTO levels VALUES ('r', 'k', 2, 1)");
	st = open_at(path, T0, HOUR, 0, 0);
	ok(st != NULL, "schema: reopened");
	fg_store_close(st);
	is_int(q_int(path, "SELECT level FROM levels"), 2,
	       "schema: data kept on reopen");
}

static void
test_rows(void)
{
	const char *path = in_dir("rows.db");
	fg_store *st = open_at(path, T0, HOUR, 0, 0);
	fg_addr a;
	struct fg_verdict_rec v = {
		.time_ms = T0 + 5,
		.session_id = 99,
		.queue_id = "4QabcD",
		.client = &a,
		.stage = "rcpt",
		.rule = "dict",
		.key = "192.0.2.0/24",
		.action = "reject",
		.count = 31,
		.limit = 30,
		.window_ms = HOUR,
		.delay_ms = 0,
		.reply = "550 5.7.1 go away",
		.monitor = true,
	};

	fg_addr_parse("192.0.2.7", &a);
	rec(st, T0, FG_EV_CONNECT, FG_RCPT_NONE, "192.0.2.7", "192.0.2.0/24",
	    NULL);
	rec(st, T0 + 1, FG_EV_RCPT, FG_RCPT_INVALID, "192.0.2.7",
	    "192.0.2.0/24", "<x@example.org>");
	rec(st, T0 + 2, FG_EV_RCPT, FG_RCPT_INVALID, "192.0.2.7",
	    "192.0.2.0/24", " < y@example.org >");
	rec(st, T0 + 1500, FG_EV_RCPT, FG_RCPT_VALID, "2001:db8::7",
	    "2001:db8::/64", "<z@example.org>");
	rec(st, T0 + 1600, FG_EV_MAIL, FG_RCPT_NONE, NULL, NULL, NULL);
	fg_store_record_verdict(st, &v);
	is_int(fg_store_flush(st, 10000), 0, "rows: flushed");

	is_int(q_int(path, "SELECT count(*) FROM events"), 5, "rows: 5 events");
	is_str(q_text(path, "SELECT kind || ',' || class || ',' || client ||"
	              " ',' || network || ',' || rcpt || ',' || status ||"
	              " ',' || helo || ',' || sender || ',' || queue_id ||"
	              " ',' || session_id FROM events WHERE ts_ms = 1700000000001"),
	       "rcpt,invalid,192.0.2.7,192.0.2.0/24,x@example.org,5.1.1,"
	       "mx.example.net,<a@example.net>,QID1,7", "rows: an invalid rcpt");
	is_int(q_int(path, "SELECT count(*) FROM events WHERE rcpt IN"
	             " ('x@example.org', 'y@example.org', 'z@example.org')"), 3,
	       "rows: recipients stored bare, blanks and brackets dropped");
	is_str(q_text(path, "SELECT client FROM events WHERE class = 'valid'"),
	       "2001:db8::7", "rows: v6 client text");
	is_int(q_int(path, "SELECT count(*) FROM events WHERE kind = 'connect'"
	             " AND class IS NULL"), 1, "rows: connect has no class");
	is_int(q_int(path, "SELECT count(*) FROM events WHERE kind = 'mail'"
	             " AND client IS NULL AND network IS NULL"), 1,
	       "rows: NULLs stay NULL");
	is_int(q_int(path, "SELECT invalid FROM counts WHERE key = '192.0.2.7'"
	             " AND sec = 1700000000"), 2, "rows: per-second aggregate");
	is_str(q_text(path, "SELECT connect || ',' || helo || ',' || mail ||"
	              " ',' || rcpt || ',' || valid || ',' || invalid || ',' ||"
	              " rejected FROM counts WHERE key = '192.0.2.7' AND"
	              " sec = 1700000000"), "1,0,0,2,0,2,0",
	       "rows: one row per key and second, a column per counter");
	is_int(q_int(path, "SELECT rcpt FROM counts WHERE key = '*' AND"
	             " sec = 1700000001"), 1,
	       "rows: aggregate of the next second");
	is_int(q_int(path, "SELECT sum(connect + helo + mail + rcpt + valid +"
	             " invalid + rejected) FROM counts WHERE key = '*'"), 8,
	       "rows: global key total (5 events, 3 with a class)");
	is_int(q_int(path, "SELECT count(*) FROM counts WHERE key = '*'"), 2,
	       "rows: the global key has a row per second");
	is_str(q_text(path, "SELECT rcpt || ',' || valid FROM counts WHERE"
	              " key = '2001:db8::/64'"), "1,1",
	       "rows: v6 network rcpt + valid");
	is_str(q_text(path, "SELECT session_id || ',' || queue_id || ',' ||"
	              " client || ',' || stage || ',' || rule || ',' || key ||"
	              " ',' || action || ',' || count || ',' || lim || ',' ||"
	              " window_ms || ',' || delay_ms || ',' || reply || ',' ||"
	              " monitor FROM verdicts"),
	       "99,4QabcD,192.0.2.7,rcpt,dict,192.0.2.0/24,reject,31,30,"
	       "3600000,0,550 5.7.1 go away,1", "rows: verdict");
	/* A second batch in the same second adds to the aggregate. */
	rec(st, T0 + 900, FG_EV_RCPT, FG_RCPT_INVALID, "192.0.2.7", NULL, NULL);
	is_int(fg_store_flush(st, 10000), 0, "rows: flushed again");
	is_int(q_int(path, "SELECT invalid FROM counts WHERE key = '192.0.2.7'"
	             " AND sec = 1700000000"), 3,
	       "rows: upsert adds to the second");
	is_int(q_int(path, "SELECT connect FROM counts WHERE key = '192.0.2.7'"
	             " AND sec = 1700000000"), 1,
	       "rows: upsert leaves the other counters alone");
	struct fg_store_stats s;
	fg_store_get_stats(st, &s);
	is_int(s.written, 7, "rows: stats.written");
	fg_store_close(st);
}

/*
 * Many rows at once, as the writer inserts them in groups: every column
 * of every row as recorded, NULL or not, whatever the row before it in
 * the group held; and counts of many keys, again in a second batch of
 * the same second, added to.
 */
static void
test_groups(void)
{
	const char *path = in_dir("groups.db");
	fg_store *st = open_at(path, T0, HOUR, 0, 0);
	char helo[3][32], key[300][32];
	const int n = 300;
	int failed = 0;

	for (int i = 0; i < n; i++)
		snprintf(key[i], sizeof(key[i]), "198.51.100.%d/%d", i % 256,
		         24 + i / 256);
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < n; i++) {
			const char *keys[1] = {key[i]};
			struct fg_event ev = {
				.time_ms = T0 + round,
				.kind = i % 3 == 0 ? FG_EV_MAIL : FG_EV_RCPT,
				.rcpt_class = i % 3 == 0 ? FG_RCPT_NONE
				              : FG_RCPT_INVALID,
				.session_id = (uint64_t)(round * n + i),
				.keys = keys,
				.nkeys = 1,
			};

			snprintf(helo[i % 3], sizeof(helo[i % 3]), "h%d",
			         round * n + i);
			if (i % 3 != 0) {
				ev.helo = helo[i % 3];
				ev.status = "5.1.1";
			}
			ev.authenticated = i % 3 == 1;
			if (fg_store_record(st, &ev) != 0)
				failed++;
		}
		is_int(fg_store_flush(st, 10000), 0, "groups: flushed");
	}
	is_int(failed, 0, "groups: recorded");
	is_int(q_int(path, "SELECT count(*) FROM events"), 2 * n,
	       "groups: every row");
	is_int(q_int(path, "SELECT count(*) FROM events WHERE"
	             " CASE session_id % 300 % 3"
	             "  WHEN 0 THEN kind = 'mail' AND class IS NULL AND"
	             "   helo IS NULL AND status IS NULL AND auth IS NULL"
	             "  ELSE kind = 'rcpt' AND class = 'invalid' AND"
	             "   helo = 'h' || session_id AND status = '5.1.1' AND"
	             "   auth IS (CASE session_id % 300 % 3 WHEN 1 THEN 1 END)"
	             " END"), 2 * n, "groups: every column as recorded");
	is_int(q_int(path, "SELECT count(*) FROM counts"), n,
	       "groups: a counts row per key and second");
	is_int(q_int(path, "SELECT count(*) FROM counts WHERE"
	             " mail + rcpt = 2 AND invalid = rcpt"), n,
	       "groups: the second batch added to the first");
	fg_store_close(st);
}

static void
test_restart(void)
{
	const char *path = in_dir("restart.db");
	fg_store *st = open_at(path, T0, HOUR, DAY, 0);
	struct fg_ban b;
	int level = 0;
	int64_t last = 0;

	for (int i = 0; i < 300; i++) {
		rec_sampled = i % 2 == 0;
		rec(st, T0 + i * 100, FG_EV_RCPT,
		    i % 3 ? FG_RCPT_INVALID : FG_RCPT_VALID, "192.0.2.7",
		    "192.0.2.0/24", NULL);
	}
	rec_sampled = false;
	rec(st, T0 - 2 * HOUR, FG_EV_CONNECT, FG_RCPT_NONE, "198.51.100.1",
	    NULL, NULL);
	fg_store_level_set(st, "dict", "192.0.2.0/24", 2, T0 + 1000);
	fg_store_level_set(st, "dict", "old", 5, T0 - 2 * HOUR);
	fg_store_ban_set(st, "192.0.2.0/24", T0 + DAY, "dictionary attack",
	                 "floodgate:dict", T0);
	fg_store_ban_set(st, "192.0.2.7", T0 + 60000, "short", "x", T0);
	fg_store_ban_set(st, "lifted", T0 + DAY, "gone", "x", T0);
	fg_store_ban_lift(st, "lifted");
	int64_t want_inv = fg_store_count(st, "192.0.2.7", FG_CNT_RCPT_INVALID,
	                                  HOUR, T0 + 40000);
	is_int(want_inv, 200, "restart: 200 invalid before");
	fg_store_close(st);

	st = open_at(path, T0 + 40000, HOUR, DAY, 0);
	ok(st != NULL, "restart: reopened");
	is_int(fg_store_count(st, "192.0.2.7", FG_CNT_RCPT_INVALID, HOUR,
	                      T0 + 40000), 200, "restart: invalid rebuilt");
	is_int(fg_store_count(st, "192.0.2.0/24", FG_CNT_RCPT, HOUR,
	                      T0 + 40000), 300, "restart: rcpt rebuilt");
	is_int(fg_store_count(st, "192.0.2.0/24", FG_CNT_RCPT_SAMPLE, HOUR,
	                      T0 + 40000), 150, "restart: the sample rebuilt");
	is_int(q_int(path, "SELECT sum(sample) FROM counts WHERE key ="
	             " '192.0.2.7'"), 150, "restart: the sample in counts");
	is_int(fg_store_count(st, "192.0.2.0/24", FG_CNT_RCPT, 10000,
	                      T0 + 29999), 100, "restart: window exact");
	is_int(fg_store_count(st, "*", FG_CNT_RCPT_VALID, HOUR, T0 + 40000),
	       100, "restart: global rebuilt");
	is_int(fg_store_count(st, "198.51.100.1", FG_CNT_CONNECT, HOUR,
	                      T0 + 40000), 0,
	       "restart: seconds past the horizon not loaded");
	is_int(fg_store_level_get(st, "dict", "192.0.2.0/24", &level, &last),
	       1, "restart: level kept");
	is_int(level, 2, "restart: level value");
	is_int(last, T0 + 1000, "restart: level time");
	is_int(fg_store_level_get(st, "dict", "old", NULL, NULL), 0,
	       "restart: level past the horizon not loaded");
	is_int(fg_store_ban_get(st, "192.0.2.0/24", T0 + 40000, &b), 1,
	       "restart: ban kept");
	is_str(b.reason, "dictionary attack", "restart: ban reason");
	is_str(b.source, "floodgate:dict", "restart: ban source");
	is_int(b.created_ms, T0, "restart: ban created");
	is_int(fg_store_ban_get(st, "lifted", T0 + 40000, &b), 0,
	       "restart: lifted ban stays lifted");
	is_int(q_int(path, "SELECT count(*) FROM bans WHERE key = 'lifted'"),
	       0, "restart: lifted ban row deleted");
	/* Counting goes on on top of the rebuilt series. */
	rec(st, T0 + 40000, FG_EV_RCPT, FG_RCPT_INVALID, "192.0.2.7", NULL,
	    NULL);
	is_int(fg_store_count(st, "192.0.2.7", FG_CNT_RCPT_INVALID, HOUR,
	                      T0 + 40000), 201, "restart: live on top");
	fg_store_close(st);

	st = open_at(path, T0 + 61000, HOUR, DAY, 0);
	is_int(fg_store_ban_get(st, "192.0.2.7", T0 + 61000, &b), 0,
	       "restart: expired ban not loaded");
	fg_store_close(st);
	st = open_at(path, T0 + 30000 + HOUR, HOUR, DAY, 0);
	is_int(fg_store_count(st, "192.0.2.7", FG_CNT_RCPT_INVALID, HOUR,
	                      T0 + 30000 + HOUR), 1,
	       "restart an hour later: only the last second");
	fg_store_close(st);
}

static void
test_prune(void)
{
	const char *path = in_dir("prune.db");
	fg_store *st = open_at(path, T0, 60000, 10000, 0);
	struct fg_verdict_rec v = {.time_ms = T0, .action = "delay"};
	int64_t t0;

	for (int i = 0; i < 5000; i++)
		rec(st, T0 + i, FG_EV_CONNECT, FG_RCPT_NONE, "192.0.2.1",
		    "192.0.2.0/24", NULL);
	fg_store_record_verdict(st, &v);
	rec(st, T0 + 95000, FG_EV_CONNECT, FG_RCPT_NONE, "192.0.2.2", NULL,
	    NULL);
	fg_store_level_set(st, "r", "old", 1, T0);
	fg_store_level_set(st, "r", "new", 1, T0 + 95000);
	fg_store_ban_set(st, "expired", T0 + 1000, "", "", T0);
	is_int(fg_store_flush(st, 10000), 0, "prune: flushed");
	is_int(q_int(path, "SELECT count(*) FROM events"), 5001,
	       "prune: all rows there");
	/* 100 s later: raw events older than 10 s go, counts older than the
	 * 60 s horizon go.  The writer prunes about once a second. */
	fg_store_expire(st, T0 + 100000);
	t0 = mono_ms();
	while (mono_ms() - t0 < 10000 &&
	       q_int(path, "SELECT count(*) FROM events") != 1)
		sleep_ms(50);
	is_int(q_int(path, "SELECT count(*) FROM events"), 1,
	       "prune: old events pruned in batches, the new one kept");
	while (mono_ms() - t0 < 10000 &&
	       q_int(path, "SELECT count(*) FROM verdicts") != 0)
		sleep_ms(50);
	is_int(q_int(path, "SELECT count(*) FROM verdicts"), 0,
	       "prune: old verdicts pruned");
	while (mono_ms() - t0 < 10000 &&
	       q_int(path, "SELECT count(*) FROM counts") != 2)
		sleep_ms(50);
	is_int(q_int(path, "SELECT count(*) FROM counts"), 2,
	       "prune: counts past the horizon pruned");
	is_int(q_int(path, "SELECT count(*) FROM levels"), 1,
	       "prune: old level row pruned");
	is_str(q_text(path, "SELECT key FROM levels"), "new",
	       "prune: recent level kept");
	is_int(q_int(path, "SELECT count(*) FROM bans"), 0,
	       "prune: expired ban row pruned");
	fg_store_close(st);
}

static int64_t
wait_ban(fg_store *st, const char *key, int want, int64_t limit_ms)
{
	int64_t t0 = mono_ms();

	while (fg_store_ban_get(st, key, T0, NULL) != want) {
		if (mono_ms() - t0 > limit_ms)
			return -1;
		sleep_ms(10);
	}
	return mono_ms() - t0;
}

static void
test_external_bans(void)
{
	const char *path = in_dir("bans.db");
	fg_store *st = open_at(path, T0, HOUR, 0, 0);
	struct fg_ban b;
	int64_t ms;

	q_exec(path, "INSERT INTO bans (key, until_ms, reason, source) VALUES"
	       " ('198.51.100.0/24', 1700086400000, 'by hand', 'floodgatectl')");
	ms = wait_ban(st, "198.51.100.0/24", 1, 5000);
	ok(ms >= 0 && ms < 3000, "bans: external ban seen within ~2 s "
	   "(%" PRId64 " ms)", ms);
	fg_store_ban_get(st, "198.51.100.0/24", T0, &b);
	is_str(b.reason, "by hand", "bans: external reason");
	is_str(b.source, "floodgatectl", "bans: external source");
	ok(b.created_ms > T0, "bans: created_ms defaulted to now");

	/* A local ban not yet committed survives a reload. */
	fg_store_ban_set(st, "local", T0 + HOUR, "l", "floodgate:x", T0);
	q_exec(path, "INSERT INTO bans (key, until_ms) VALUES ('remote2',"
	       " 1700086400000)");
	ms = wait_ban(st, "remote2", 1, 5000);
	ok(ms >= 0, "bans: second external ban seen");
	is_int(fg_store_ban_get(st, "local", T0, NULL), 1,
	       "bans: local ban kept across the reload");
	is_int(fg_store_flush(st, 10000), 0, "bans: flushed");
	is_int(q_int(path, "SELECT count(*) FROM bans"), 3,
	       "bans: three rows in the table");

	q_exec(path, "DELETE FROM bans WHERE key = '198.51.100.0/24'");
	ms = wait_ban(st, "198.51.100.0/24", 0, 5000);
	ok(ms >= 0 && ms < 3000, "bans: external unban seen within ~2 s "
	   "(%" PRId64 " ms)", ms);
	is_int(fg_store_ban_get(st, "local", T0, NULL), 1,
	       "bans: others untouched by the unban");
	is_int(fg_store_ban_get(st, "remote2", T0, NULL), 1,
	       "bans: remote2 untouched by the unban");
	q_exec(path, "UPDATE bans SET until_ms = 1700000000500 WHERE key ="
	       " 'remote2'");
	int64_t t0 = mono_ms();
	while (fg_store_ban_get(st, "remote2", T0 + 600, &b) != 0 &&
	       mono_ms() - t0 < 5000)
		sleep_ms(10);
	is_int(fg_store_ban_get(st, "remote2", T0 + 600, &b), 0,
	       "bans: external shortening seen");
	is_int(fg_store_ban_get(st, "remote2", T0, &b), 1,
	       "bans: still in force before its new end");
	fg_store_close(st);
}

/* The hooks (store.h): what the share hears of events and bans. */
struct heard {
	pthread_mutex_t mu;
	int records, ctrs, bans, lifts, allows, disallows;
	char last[64], source[64];
};

static void
heard_record(void *arg, const char *key, const enum fg_counter *ctrs,
             size_t n, int64_t time_ms)
{
	struct heard *h = arg;

	(void)time_ms;
	pthread_mutex_lock(&h->mu);
	h->records++;
	h->ctrs += (int)n;
	snprintf(h->last, sizeof(h->last), "%s", key);
	pthread_mutex_unlock(&h->mu);
}

static void
heard_ban(void *arg, const char *key, bool lift, int64_t until_ms,
          int64_t created_ms, const char *reason, const char *source)
{
	struct heard *h = arg;

	(void)until_ms; (void)created_ms; (void)reason; (void)source;
	pthread_mutex_lock(&h->mu);
	if (lift)
		h->lifts++;
	else
		h->bans++;
	snprintf(h->last, sizeof(h->last), "%s", key);
	pthread_mutex_unlock(&h->mu);
}

static void
heard_allow(void *arg, const char *key, bool disallow, int64_t until_ms,
            int64_t created_ms, const char *reason, const char *source)
{
	struct heard *h = arg;

	(void)until_ms; (void)created_ms; (void)reason;
	pthread_mutex_lock(&h->mu);
	if (disallow)
		h->disallows++;
	else
		h->allows++;
	snprintf(h->last, sizeof(h->last), "%s", key);
	snprintf(h->source, sizeof(h->source), "%s", source ? source : "");
	pthread_mutex_unlock(&h->mu);
}

static int
heard_get(struct heard *h, int *field)
{
	int v;

	pthread_mutex_lock(&h->mu);
	v = *field;
	pthread_mutex_unlock(&h->mu);
	return v;
}

static bool
heard_wait(struct heard *h, int *field, int want)
{
	int64_t t0 = mono_ms();

	while (heard_get(h, field) < want && mono_ms() - t0 < 5000)
		sleep_ms(10);
	return heard_get(h, field) >= want;
}

static void
test_hooks(void)
{
	const char *path = in_dir("hooks.db");
	fg_store *st = open_at(path, T0, HOUR, 0, 0);
	struct heard h = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, 0, 0, 0, "", ""};
	struct fg_store_hooks hooks = {&h, heard_record, heard_ban,
	                               heard_allow};
	const char *keys[] = {"192.0.2.7", "192.0.2.0/24"};
	struct fg_event ev = {
		.time_ms = T0, .kind = FG_EV_RCPT, .rcpt_class = FG_RCPT_INVALID,
		.keys = keys, .nkeys = 2,
	};
	struct timespec ts;
	char sql[256];

	fg_store_record(st, &ev);
	is_int(h.records, 0, "hooks: none before they are set");
	fg_store_set_hooks(st, &hooks);
	fg_store_record(st, &ev);
	is_int(h.records, 2, "hooks: an event is told per key");
	is_int(h.ctrs, 4, "hooks: with its two counters");
	fg_store_ban_set(st, "203.0.113.0/24", T0 + HOUR, "r", "floodgate:x", T0);
	is_int(h.bans, 1, "hooks: a ban set here");
	is_int(fg_store_ban_lift(st, "203.0.113.0/24"), 1, "hooks: lifted");
	is_int(h.lifts, 1, "hooks: a lift here");
	fg_store_ban_lift(st, "203.0.113.0/24");
	is_int(h.lifts, 1, "hooks: no lift of nothing");

	/* What floodgatectl writes into the table. */
	q_exec(path, "INSERT INTO bans (key, until_ms, reason, source) VALUES"
	       " ('198.51.100.0/24', 1700086400000, 'by hand', 'floodgatectl')");
	ok(heard_wait(&h, &h.bans, 2), "hooks: a ban from the table");
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(sql, sizeof(sql), "UPDATE bans SET until_ms = 0, created_ms ="
	         " %" PRId64 ", reason = 'lifted', source = 'unban' WHERE key ="
	         " '198.51.100.0/24'", (int64_t)ts.tv_sec * 1000);
	q_exec(path, sql);
	ok(heard_wait(&h, &h.lifts, 2), "hooks: an unban row from the table");
	q_exec(path, "INSERT INTO bans (key, until_ms) VALUES ('remote3',"
	       " 1700086400000)");
	ok(heard_wait(&h, &h.bans, 3), "hooks: another ban from the table");
	q_exec(path, "DELETE FROM bans WHERE key = 'remote3'");
	ok(heard_wait(&h, &h.lifts, 3), "hooks: a row deleted is a lift");
	is_int(heard_get(&h, &h.bans), 3, "hooks: nothing told twice");
	fg_store_set_hooks(st, NULL);
	fg_store_close(st);
}

/* Waits (a while at most) for sql to give want on a connection of its
 * own: what the writer thread commits. */
static bool
q_wait(const char *path, const char *sql, int64_t want)
{
	int64_t t0 = mono_ms();

	while (q_int(path, sql) != want && mono_ms() - t0 < 5000)
		sleep_ms(10);
	return q_int(path, sql) == want;
}

/* Waits (a while at most) for the store to hold key allowed or not:
 * the writer thread read the table again. */
static bool
allowed_wait(fg_store *st, const char *key, int64_t now, int want)
{
	int64_t t0 = mono_ms();

	while (fg_store_allowed(st, key, now) != want && mono_ms() - t0 < 5000)
		sleep_ms(10);
	return fg_store_allowed(st, key, now) == want;
}

/* A new allow of key in the table, and the wait for the hook to hear of
 * it: what it heard before (reloads are told in order) is all told. */
static bool
marker(const char *path, struct heard *h, const char *key, int64_t now)
{
	char sql[256];
	int64_t t0 = mono_ms();
	bool seen = false;

	snprintf(sql, sizeof(sql), "INSERT INTO allows (key, until_ms,"
	         " created_ms) VALUES ('%s', %" PRId64 ", %" PRId64 ")", key,
	         now + HOUR, now);
	q_exec(path, sql);
	while (!seen && mono_ms() - t0 < 5000) {
		pthread_mutex_lock(&h->mu);
		seen = strcmp(h->last, key) == 0;
		pthread_mutex_unlock(&h->mu);
		if (!seen)
			sleep_ms(10);
	}
	return seen;
}

/*
 * The allow list and the other hosts: a change another process makes to
 * the allows table is told to the allow hook, expiry is not; an allow
 * received (fg_store_allow_set) holds at once, reaches the table with its
 * source and outlives a restart, and is never told back, nor is its
 * removal (fg_store_allow_remove).
 */
static void
test_allow_hooks(void)
{
	const char *path = in_dir("allowhooks.db");
	fg_store *st = open_at(path, T0, HOUR, 0, 0);
	struct heard h = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, 0, 0, 0, "", ""};
	struct fg_store_hooks hooks = {&h, NULL, NULL, heard_allow};
	struct timespec ts;
	int64_t now;
	char sql[512];

	clock_gettime(CLOCK_REALTIME, &ts);
	now = (int64_t)ts.tv_sec * 1000;
	fg_store_set_hooks(st, &hooks);
	snprintf(sql, sizeof(sql), "INSERT INTO allows (key, until_ms,"
	         " created_ms, reason, source) VALUES ('192.0.2.9', %" PRId64
	         ", %" PRId64 ", 'partner', 'floodgatectl')", now + HOUR, now);
	q_exec(path, sql);
	ok(heard_wait(&h, &h.allows, 1), "allow hook: an allow in the table");
	pthread_mutex_lock(&h.mu);
	is_str(h.last, "192.0.2.9", "allow hook: its key");
	is_str(h.source, "floodgatectl", "allow hook: its source");
	pthread_mutex_unlock(&h.mu);
	q_exec(path, "UPDATE allows SET until_ms = until_ms + 60000");
	ok(heard_wait(&h, &h.allows, 2), "allow hook: an extension");
	q_exec(path, "DELETE FROM allows WHERE key = '192.0.2.9'");
	ok(heard_wait(&h, &h.disallows, 1), "allow hook: a disallow");
	snprintf(sql, sizeof(sql), "INSERT INTO allows (key, until_ms,"
	         " created_ms) VALUES ('192.0.2.10', %" PRId64 ", %" PRId64
	         "), ('192.0.2.11', %" PRId64 ", %" PRId64 ")", now - 1000,
	         now - HOUR, now + HOUR, now);
	q_exec(path, sql);
	ok(allowed_wait(st, "192.0.2.11", now, 1), "allow hook: table read");
	ok(marker(path, &h, "192.0.2.100", now), "allow hook: marker heard");
	is_int(heard_get(&h, &h.allows), 4, "allow hook: a new allow, not an "
	       "expired one");
	q_exec(path, "DELETE FROM allows WHERE key = '192.0.2.10';"
	       " DELETE FROM allows WHERE key = '192.0.2.11';");
	ok(allowed_wait(st, "192.0.2.11", now, 0), "allow hook: table read "
	   "again");
	ok(marker(path, &h, "192.0.2.101", now), "allow hook: marker heard");
	is_int(heard_get(&h, &h.disallows), 2, "allow hook: a disallow, not "
	       "the end of an expired one");

	/* Received from another host. */
	is_int(fg_store_allow_set(st, "198.51.100.0/24", now + HOUR, now, "r",
	                          "peer:b"), 0, "allow received: set");
	is_int(fg_store_allowed(st, "198.51.100.0/24", now), 1,
	       "allow received: honoured at once");
	ok(q_wait(path, "SELECT count(*) FROM allows WHERE key ="
	          " '198.51.100.0/24' AND source = 'peer:b'", 1),
	   "allow received: written with its source");
	ok(marker(path, &h, "203.0.113.5", now), "allow hook: marker heard");
	is_int(fg_store_allow_remove(st, "198.51.100.0/24", INT64_MAX), 1,
	       "disallow received: removed");
	is_int(fg_store_allowed(st, "198.51.100.0/24", now), 0,
	       "disallow received: at once");
	ok(q_wait(path, "SELECT count(*) FROM allows WHERE key ="
	          " '198.51.100.0/24'", 0), "disallow received: written");
	is_int(fg_store_allow_remove(st, "203.0.113.5", now - 1), 0,
	       "disallow received: not of an allow made since");
	is_int(fg_store_allow_remove(st, "203.0.113.6", INT64_MAX), 0,
	       "disallow received: of nothing");
	is_int(fg_store_allow_set(st, "192.0.2.77", INT64_MAX, now, "",
	                          "peer:c"), 0, "allow received: another");
	ok(q_wait(path, "SELECT count(*) FROM allows WHERE key = '192.0.2.77'",
	          1), "allow received: in the table");
	ok(marker(path, &h, "203.0.113.7", now), "allow hook: marker heard");
	fg_store_set_hooks(st, NULL);
	is_int(heard_get(&h, &h.allows), 7, "allow hook: allows received are "
	       "not told (4 and the three markers)");
	is_int(heard_get(&h, &h.disallows), 2, "allow hook: nor disallows "
	       "received");
	fg_store_close(st);
	st = open_at(path, T0, HOUR, 0, 0);
	is_int(fg_store_allowed(st, "192.0.2.77", now), 1,
	       "allow received: kept across a restart");
	is_int(fg_store_allow_get(st, "198.51.100.0/24", now, NULL), 0,
	       "disallow received: kept across a restart");
	fg_store_close(st);
}

/*
 * Version 1 kept one counts row per key, counter and second; version 2
 * one row per key and second.  A version 1 file is migrated with its
 * aggregates, and the counters come back from them.
 */
static void
test_migrate_v1(void)
{
	const char *path = in_dir("v1.db");
	fg_store *st = open_at(path, T0, HOUR, 0, 0);

	ok(st != NULL, "v1: created");
	fg_store_close(st);
	q_exec(path, DOWN_TO_3
	       "ALTER TABLE events DROP COLUMN host;"
	       "ALTER TABLE events DROP COLUMN daemon;"
	       "ALTER TABLE events DROP COLUMN auth;"
	       "DROP TABLE status; DROP TABLE verdict_totals;"
	       "DROP TABLE controls; DROP TABLE allows;"
	       "DROP TABLE counts;"
	       "CREATE TABLE counts (key TEXT NOT NULL, counter TEXT NOT NULL,"
	       " sec INTEGER NOT NULL, n INTEGER NOT NULL,"
	       " PRIMARY KEY (sec, key, counter)) WITHOUT ROWID;"
	       "INSERT INTO counts VALUES"
	       " ('192.0.2.0/24', 'connect', 1700000000, 1),"
	       " ('192.0.2.0/24', 'rcpt', 1700000000, 6),"
	       " ('192.0.2.0/24', 'invalid', 1700000000, 5),"
	       " ('192.0.2.0/24', 'valid', 1700000000, 1),"
	       " ('192.0.2.0/24', 'invalid', 1700000001, 2),"
	       " ('192.0.2.0/24', 'rcpt', 1700000001, 2),"
	       " ('*', 'connect', 1700000000, 1);"
	       "PRAGMA user_version = 1");
	st = open_at(path, T0 + 5000, HOUR, 0, 0);
	ok(st != NULL, "v1: a version 1 file opens");
	if (st == NULL)
		return;
	is_int(q_int(path, "PRAGMA user_version"), FG_STORE_SCHEMA_VERSION,
	       "v1: migrated to the current version");
	is_int(fg_store_count(st, "192.0.2.0/24", FG_CNT_RCPT_INVALID, HOUR,
	                      T0 + 5000), 7, "v1: invalid recipients back");
	is_int(fg_store_count(st, "192.0.2.0/24", FG_CNT_RCPT, HOUR,
	                      T0 + 5000), 8, "v1: recipients back");
	is_int(fg_store_count(st, "192.0.2.0/24", FG_CNT_CONNECT, HOUR,
	                      T0 + 5000), 1, "v1: connections back");
	is_int(fg_store_count(st, "*", FG_CNT_CONNECT, HOUR, T0 + 5000), 1,
	       "v1: the global key back");
	is_int(q_int(path, "SELECT count(*) FROM counts"), 3,
	       "v1: one row per key and second");
	is_str(q_text(path, "SELECT connect || ',' || rcpt || ',' || valid ||"
	              " ',' || invalid || ',' || rejected FROM counts WHERE"
	              " key = '192.0.2.0/24' AND sec = 1700000000"),
	       "1,6,1,5,0", "v1: counters pivoted into columns");
	/* The new table takes the writer's rows. */
	rec(st, T0 + 5000, FG_EV_RCPT, FG_RCPT_INVALID, "192.0.2.9",
	    "192.0.2.0/24", "<x@example.org>");
	is_int(fg_store_flush(st, 10000), 0, "v1: flushed after migration");
	is_int(q_int(path, "SELECT invalid FROM counts WHERE key ="
	             " '192.0.2.0/24' AND sec = 1700000005"), 1,
	       "v1: new rows land in the migrated table");
	fg_store_close(st);
}

/* A connect (or, with fold set up, a close) of session sid from
 * 192.0.2.9 at t; fold NULL: not refused. */
static void
rec_fold(fg_store *st, int64_t t, enum fg_event_kind k, uint64_t sid,
         struct fg_fold *fold)
{
	const char *keys[] = {"192.0.2.9", "192.0.2.0/24"};
	fg_addr a;
	struct fg_event ev = {
		.time_ms = t, .kind = k, .client = &a, .network = keys[1],
		.host = "flood.example", .session_id = sid, .keys = keys,
		.nkeys = k == FG_EV_CONNECT ? 2 : 0, .fold = fold,
	};

	fg_addr_parse(keys[0], &a);
	fg_store_record(st, &ev);
}

static void
rec_fold_verdict(fg_store *st, int64_t t, uint64_t sid, int64_t count,
                 const struct fg_fold *fold)
{
	fg_addr a;
	struct fg_verdict_rec v = {
		.time_ms = t, .session_id = sid, .client = &a, .stage = "connect",
		.rule = "ban", .key = "192.0.2.0/24", .action = "disconnect",
		.count = count, .reply = "421 4.7.1 go away", .fold = fold,
	};

	fg_addr_parse("192.0.2.9", &a);
	fg_store_record_verdict(st, &v);
}

/*
 * Rows of sessions refused at connect fold while they wait for the same
 * commit: identical ones of one second become one row whose n says how
 * many; the counters and the per-second counts see every event.  (A
 * flush interval of a minute: nothing is taken from the queue until the
 * flush.)
 */
static void
test_fold(void)
{
	const char *path = in_dir("fold.db");
	struct fg_store_options o = {
		.path = path, .horizon_ms = HOUR, .flush_interval_ms = 60000,
	};
	struct fg_fold f[8];
	fg_store *st = NULL;
	char err[256];
	bool same = true;

	memset(f, 0, sizeof(f));
	if (fg_store_open(&o, T0, &st, err, sizeof(err)) != 0) {
		printf("# open: %s\n", err);
		ok(0, "fold: opened");
		return;
	}
	/* Five refused connects in one second, a sixth in the next. */
	for (int i = 0; i < 5; i++)
		rec_fold(st, T0 + 100 + i * 100, FG_EV_CONNECT, 101 + i, &f[i]);
	rec_fold(st, T0 + 1200, FG_EV_CONNECT, 106, &f[5]);
	/* Not refused: a row of its own, in the same second. */
	rec_fold(st, T0 + 300, FG_EV_CONNECT, 107, NULL);
	for (int i = 0; i < 5; i++)
		same = same && f[i].session_id == 101 && f[i].time_ms == T0 + 100;
	ok(same, "fold: five connects of a second go into the first's row "
	   "(session 101 at its time)");
	ok(f[5].session_id == 106 && f[5].time_ms == T0 + 1200,
	   "fold: one in the next second is a row of its own");
	for (int i = 0; i < 5; i++) {
		rec_fold_verdict(st, f[i].time_ms, 101 + i, 20 + i, &f[i]);
		rec_fold(st, T0 + 800, FG_EV_CLOSE, 101 + i, &f[i]);
	}
	rec_fold(st, T0 + 800, FG_EV_CLOSE, 106, &f[5]);
	is_int(fg_store_count(st, "192.0.2.9", FG_CNT_CONNECT, HOUR, T0 + 2000),
	       7, "fold: the counters count every connect");
	is_int(fg_store_flush(st, 10000), 0, "fold: flushed");
	is_str(q_text(path, "SELECT group_concat(session_id || ':' || n, ' ')"
	              " FROM (SELECT session_id, n FROM events WHERE kind ="
	              " 'connect' ORDER BY id)"),
	       "101:5 106:1 107:1", "fold: three connect rows for seven connects");
	is_str(q_text(path, "SELECT group_concat(session_id || ':' || n, ' ')"
	              " FROM (SELECT session_id, n FROM events WHERE kind ="
	              " 'close' ORDER BY id)"),
	       "101:5 106:1", "fold: the closes under the session they went into");
	is_str(q_text(path, "SELECT group_concat(session_id || ':' || n || ':'"
	              " || count || ':' || ts_ms, ' ') FROM verdicts"),
	       "101:5:20:1700000000100", "fold: one verdict row for five, with "
	       "the first's count and time");
	is_int(q_int(path, "SELECT sum(connect) FROM counts WHERE key ="
	             " '192.0.2.9'"), 7,
	       "fold: the per-second counts count every connect");
	/* After a commit, what the writer took takes no more in. */
	rec_fold(st, T0 + 1900, FG_EV_CLOSE, 106, &f[5]);
	is_int(fg_store_flush(st, 10000), 0, "fold: flushed again");
	is_int(q_int(path, "SELECT count(*) FROM events WHERE kind = 'close'"
	             " AND session_id = 106"), 2,
	       "fold: a row committed is never changed");
	fg_store_close(st);
}

/*
 * Version 3 had no n: every row was one event or verdict.  Its rows count
 * once each, and so do the views.
 */
static void
test_migrate_v3(void)
{
	const char *path = in_dir("v3.db");
	fg_store *st = open_at(path, T0, HOUR, 0, 0);

	ok(st != NULL, "v3: created");
	fg_store_close(st);
	q_exec(path, DOWN_TO_3
	       "INSERT INTO events (ts_ms, kind, class, network) VALUES"
	       " (1, 'rcpt', 'invalid', '192.0.2.0/24'),"
	       " (2, 'rcpt', 'valid', '192.0.2.0/24');"
	       "INSERT INTO verdicts (ts_ms, rule, action) VALUES"
	       " (1, 'r', 'reject');"
	       "PRAGMA user_version = 3");
	st = open_at(path, T0 + 5000, HOUR, 0, 0);
	ok(st != NULL, "v3: a version 3 file opens");
	if (st == NULL)
		return;
	is_int(q_int(path, "PRAGMA user_version"), FG_STORE_SCHEMA_VERSION,
	       "v3: migrated to the current version");
	is_int(q_int(path, "SELECT sum(n) FROM events"), 2,
	       "v3: each event row stands for one event");
	is_int(q_int(path, "SELECT sum(n) FROM verdicts"), 1,
	       "v3: each verdict row for one verdict");
	is_int(q_int(path, "SELECT rcpts * 10 + invalid_rcpts FROM"
	             " invalid_ratio_by_network"), 21,
	       "v3: the views count as before");
	fg_store_close(st);
}

/*
 * Version 2 stored recipients as the MTA gave them, "<user@domain>";
 * version 3 stores the bare address and strips the rows of older files.
 */
static void
test_migrate_v2(void)
{
	static const struct {
		const char *was, *now;
	} t[] = {
		{"<a@example.org>", "a@example.org"},
		{" < b@example.org > ", "b@example.org"},
		{"<<c@example.org>>", "<c@example.org>"},
		{"<>", ""},
		{"d@example.org", "d@example.org"},
		{"<e@example.org", "<e@example.org"},
		{"\t<f@example.org>\t", "f@example.org"},
	};
	const char *path = in_dir("v2.db");
	fg_store *st = open_at(path, T0, HOUR, 0, 0);
	char sql[256];

	ok(st != NULL, "v2: created");
	fg_store_close(st);
	for (size_t i = 0; i < FG_NELEM(t); i++) {
		snprintf(sql, sizeof(sql), "INSERT INTO events (ts_ms, kind,"
		         " class, rcpt, sender) VALUES (%lld, 'rcpt', 'invalid',"
		         " '%s', '<s@example.net>')", (long long)T0 + (long long)i,
		         t[i].was);
		q_exec(path, sql);
	}
	q_exec(path, "INSERT INTO events (ts_ms, kind) VALUES (1, 'connect');"
	       DOWN_TO_3
	       "ALTER TABLE events DROP COLUMN host;"
	       "ALTER TABLE events DROP COLUMN daemon;"
	       "ALTER TABLE events DROP COLUMN auth;"
	       "DROP TABLE status; DROP TABLE verdict_totals;"
	       "DROP TABLE controls; DROP TABLE allows;"
	       "PRAGMA user_version = 2");
	snprintf(sql, sizeof(sql), "INSERT INTO counts (sec, key, rcpt, valid,"
	         " invalid, rejected) VALUES (%lld, '192.0.2.0/24', 9, 3, 2, 4)",
	         (long long)T0 / 1000);
	q_exec(path, sql);
	st = open_at(path, T0 + 5000, HOUR, 0, 0);
	ok(st != NULL, "v2: a version 2 file opens");
	if (st == NULL)
		return;
	is_int(q_int(path, "PRAGMA user_version"), FG_STORE_SCHEMA_VERSION,
	       "v2: migrated to the current version");
	is_int(q_int(path, "SELECT sample FROM counts WHERE key ="
	             " '192.0.2.0/24'"), 5, "v5: the sample of older seconds is "
	       "their valid and unknown recipients");
	is_int(fg_store_count(st, "192.0.2.0/24", FG_CNT_RCPT_SAMPLE, HOUR,
	                      T0 + 5000), 5, "v5: ... and rebuilt into memory");
	for (size_t i = 0; i < FG_NELEM(t); i++) {
		snprintf(sql, sizeof(sql), "SELECT rcpt FROM events WHERE"
		         " ts_ms = %lld", (long long)T0 + (long long)i);
		is_str(q_text(path, sql), t[i].now, "v2: \"%s\" becomes \"%s\"",
		       t[i].was, t[i].now);
	}
	is_int(q_int(path, "SELECT count(*) FROM events WHERE rcpt IS NULL"), 1,
	       "v2: a row without a recipient keeps none");
	is_int(q_int(path, "SELECT count(*) FROM events WHERE sender ="
	             " '<s@example.net>'"), (int64_t)FG_NELEM(t),
	       "v2: senders are left as they were");
	fg_store_close(st);
}

static void
test_migrations(void)
{
	struct fg_store_options o = {.horizon_ms = HOUR};
	fg_store *st = NULL;
	char err[256];
	int fd;

	/* An empty file is initialised. */
	o.path = in_dir("empty.db");
	fd = open(o.path, O_CREAT | O_WRONLY, 0600);
	close(fd);
	is_int(fg_store_open(&o, T0, &st, err, sizeof(err)), 0,
	       "migrate: empty file");
	fg_store_close(st);
	is_int(q_int(o.path, "PRAGMA user_version"), FG_STORE_SCHEMA_VERSION,
	       "migrate: empty file now at the current version");

	/* A SQLite file with a header but no schema is initialised too. */
	o.path = in_dir("blank.db");
	q_exec(o.path, "PRAGMA page_size = 8192; VACUUM");
	is_int(fg_store_open(&o, T0, &st, err, sizeof(err)), 0,
	       "migrate: blank database");
	fg_store_close(st);
	is_int(q_int(o.path, "SELECT count(*) FROM events"), 0,
	       "migrate: blank database has the tables");

	/* A newer schema is refused and left alone. */
	q_exec(o.path, "PRAGMA user_version = 99");
	is_int(fg_store_open(&o, T0, &st, err, sizeof(err)), FG_ESCHEMA,
	       "migrate: newer version refused");
	ok(strstr(err, "newer") != NULL, "migrate: says why (%s)", err);
	is_int(q_int(o.path, "PRAGMA user_version"), 99,
	       "migrate: newer database untouched");

	/* Somebody else's database is refused and left alone. */
	o.path = in_dir("foreign.db");
	q_exec(o.path, "CREATE TABLE foo (x); INSERT INTO foo VALUES (1)");
	is_int(fg_store_open(&o, T0, &st, err, sizeof(err)), FG_ESCHEMA,
	       "migrate: foreign database refused");
	ok(strstr(err, "not a floodgate database") != NULL,
	   "migrate: says why (%s)", err);
	is_int(q_int(o.path, "SELECT count(*) FROM sqlite_schema WHERE name ="
	             " 'events'"), 0, "migrate: foreign database untouched");
	is_str(q_text(o.path, "PRAGMA journal_mode"), "delete",
	       "migrate: foreign database not switched to WAL");

	o.path = in_dir("foreign2.db");
	q_exec(o.path, "PRAGMA application_id = 1234");
	is_int(fg_store_open(&o, T0, &st, err, sizeof(err)), FG_ESCHEMA,
	       "migrate: other application_id refused");
	o.path = in_dir("foreign3.db");
	q_exec(o.path, "PRAGMA user_version = 1");
	is_int(fg_store_open(&o, T0, &st, err, sizeof(err)), FG_ESCHEMA,
	       "migrate: version without our application_id refused");

	o.path = in_dir("text.db");
	fd = open(o.path, O_CREAT | O_WRONLY, 0600);
	for (int i = 0; i < 64; i++)
		(void)!write(fd, "this is not a database at all\n", 30);
	close(fd);
	is_int(fg_store_open(&o, T0, &st, err, sizeof(err)), FG_ESCHEMA,
	       "migrate: text file refused");

	o.path = in_dir("no/such/dir.db");
	is_int(fg_store_open(&o, T0, &st, err, sizeof(err)), FG_EIO,
	       "migrate: missing directory is FG_EIO");
	ok(strstr(err, "dir.db") != NULL, "migrate: error names the file");
}

static void
test_overflow(void)
{
	const char *path = in_dir("full.db");
	fg_store *st = open_at(path, T0, HOUR, 0, 8);
	struct fg_store_stats s;
	sqlite3 *holder = db_open(path);
	int accepted = 0, full = 0;

	is_int(sqlite3_exec(holder, "BEGIN EXCLUSIVE", NULL, NULL, NULL),
	       SQLITE_OK, "overflow: lock held");
	for (int i = 0; i < 20; i++) {
		int rc = rec(st, T0 + i, FG_EV_CONNECT, FG_RCPT_NONE,
		             "192.0.2.1", NULL, NULL);
		if (rc == 0)
			accepted++;
		else if (rc == FG_EFULL)
			full++;
	}
	is_int(accepted, 8, "overflow: 8 rows queued");
	is_int(full, 12, "overflow: 12 refused with FG_EFULL");
	fg_store_get_stats(st, &s);
	is_int(s.dropped, 12, "overflow: stats.dropped");
	is_int(s.queued, 8, "overflow: stats.queued");
	is_int(s.recorded, 20, "overflow: all recorded");
	is_int(fg_store_count(st, "192.0.2.1", FG_CNT_CONNECT, 60000, T0), 20,
	       "overflow: counters still bumped");
	is_int(fg_store_flush(st, 300), FG_EBUSY, "overflow: flush times out");
	wait_failure(st, 0);
	fg_store_get_stats(st, &s);
	ok(s.write_errors > 0, "overflow: busy attempts counted (%" PRIu64 ")",
	   s.write_errors);
	ok(s.healthy, "overflow: a lock is not unhealthy");
	ok(strstr(s.last_error, "locked") != NULL, "overflow: last_error '%s'",
	   s.last_error);
	sqlite3_exec(holder, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(holder);
	is_int(fg_store_flush(st, 10000), 0, "overflow: flushed after unlock");
	is_int(q_int(path, "SELECT count(*) FROM events"), 8,
	       "overflow: the queued rows landed");
	fg_store_close(st);
}

/*
 * A hard error (not a lock): a trigger another connection adds makes every
 * insert fail, as a full disk or a read-only file would.  The store marks
 * itself unhealthy, keeps the rows, keeps counting, and recovers.
 */
static void
test_unhealthy(void)
{
	const char *path = in_dir("sick.db");
	fg_store *st = open_at(path, T0, HOUR, 0, 0);
	struct fg_store_stats s;
	int64_t t0;

	rec(st, T0, FG_EV_CONNECT, FG_RCPT_NONE, "192.0.2.1", NULL, NULL);
	is_int(fg_store_flush(st, 10000), 0, "unhealthy: first flush");
	q_exec(path, "CREATE TRIGGER sick BEFORE INSERT ON events BEGIN"
	       " SELECT RAISE(ABORT, 'disk on fire'); END");
	rec(st, T0 + 1, FG_EV_CONNECT, FG_RCPT_NONE, "192.0.2.1", NULL, NULL);
	is_int(fg_store_flush(st, 500), FG_EBUSY,
	       "unhealthy: flush fails while inserts fail");
	wait_failure(st, 0);
	fg_store_get_stats(st, &s);
	ok(!s.healthy, "unhealthy: marked");
	ok(s.write_errors > 0, "unhealthy: errors counted");
	ok(strstr(s.last_error, "disk on fire") != NULL,
	   "unhealthy: last_error '%s'", s.last_error);
	is_int(s.queued, 1, "unhealthy: the row is kept");
	is_int(fg_store_count(st, "192.0.2.1", FG_CNT_CONNECT, 60000, T0 + 1),
	       2, "unhealthy: counting goes on");
	q_exec(path, "DROP TRIGGER sick");
	is_int(fg_store_flush(st, 10000), 0, "unhealthy: recovers");
	fg_store_get_stats(st, &s);
	ok(s.healthy, "unhealthy: healthy again");
	is_int(q_int(path, "SELECT count(*) FROM events"), 2,
	       "unhealthy: nothing lost");

	q_exec(path, "CREATE TRIGGER sick BEFORE INSERT ON events BEGIN"
	       " SELECT RAISE(ABORT, 'disk on fire'); END");
	rec(st, T0 + 2, FG_EV_CONNECT, FG_RCPT_NONE, "192.0.2.1", NULL, NULL);
	t0 = mono_ms();
	fg_store_close(st);
	ok(mono_ms() - t0 < 10000, "unhealthy: close gives up on a hard error "
	   "(%" PRId64 " ms)", mono_ms() - t0);
}

static void
test_views(void)
{
	const char *path = in_dir("views.db");
	int64_t now = (int64_t)time(NULL) * 1000;
	fg_store *st = open_at(path, now, DAY, 0, 0);
	struct {
		int64_t ago;
		enum fg_event_kind k;
		enum fg_rcpt_class c;
		const char *client, *net;
	} evs[] = {
		{60000, FG_EV_CONNECT, FG_RCPT_NONE, "203.0.113.5",
		 "203.0.113.0/24"},
		{59000, FG_EV_RCPT, FG_RCPT_INVALID, "203.0.113.5",
		 "203.0.113.0/24"},
		{58000, FG_EV_RCPT, FG_RCPT_INVALID, "203.0.113.5",
		 "203.0.113.0/24"},
		{57000, FG_EV_RCPT, FG_RCPT_INVALID, "203.0.113.6",
		 "203.0.113.0/24"},
		{56000, FG_EV_RCPT, FG_RCPT_VALID, "203.0.113.6",
		 "203.0.113.0/24"},
		{50000, FG_EV_RCPT, FG_RCPT_VALID, "198.51.100.1",
		 "198.51.100.0/24"},
		{2 * HOUR, FG_EV_RCPT, FG_RCPT_INVALID, "192.0.2.1",
		 "192.0.2.0/24"},
		{2 * HOUR, FG_EV_RCPT, FG_RCPT_INVALID, "192.0.2.1",
		 "192.0.2.0/24"},
		{2 * HOUR, FG_EV_RCPT, FG_RCPT_INVALID, "192.0.2.1",
		 "192.0.2.0/24"},
		{2 * HOUR, FG_EV_RCPT, FG_RCPT_INVALID, "192.0.2.1",
		 "192.0.2.0/24"},
	};

	for (size_t i = 0; i < FG_NELEM(evs); i++)
		rec(st, now - evs[i].ago, evs[i].k, evs[i].c, evs[i].client,
		    evs[i].net, "<r@example.org>");
	fg_store_ban_set(st, "203.0.113.0/24", now + HOUR, "dictionary",
	                 "floodgate:dict", now);
	fg_store_ban_set(st, "old", now - 1000, "", "", now - 2000);
	is_int(fg_store_flush(st, 10000), 0, "views: flushed");
	is_str(q_text(path, "SELECT network || ' ' || invalid_rcpts || ' ' ||"
	              " rcpts || ' ' || invalid_ratio || ' ' || connects FROM"
	              " top_offenders_1h LIMIT 1"),
	       "203.0.113.0/24 3 4 0.75 1", "views: top_offenders_1h");
	is_int(q_int(path, "SELECT count(*) FROM top_offenders_1h"), 2,
	       "views: 1h has two networks");
	is_str(q_text(path, "SELECT network || ' ' || invalid_rcpts FROM"
	              " top_offenders_24h LIMIT 1"), "192.0.2.0/24 4",
	       "views: 24h sees the older attacker first");
	ok(strlen(q_text(path, "SELECT first_seen FROM top_offenders_1h")) ==
	   19, "views: first_seen is a date");
	is_str(q_text(path, "SELECT key || ' ' || reason || ' ' || source ||"
	              " ' ' || (remaining_s BETWEEN 3500 AND 3600) FROM"
	              " active_bans"),
	       "203.0.113.0/24 dictionary floodgate:dict 1",
	       "views: active_bans");
	is_int(q_int(path, "SELECT count(*) FROM active_bans"), 1,
	       "views: expired ban not active");
	is_str(q_text(path, "SELECT network || ' ' || invalid_rcpts || ' ' ||"
	              " rcpts || ' ' || invalid_ratio FROM"
	              " invalid_ratio_by_network LIMIT 1"),
	       "192.0.2.0/24 4 4 1.0", "views: invalid_ratio_by_network");
	is_str(q_text(path, "SELECT group_concat(network, ',') FROM"
	              " invalid_ratio_by_network"),
	       "192.0.2.0/24,203.0.113.0/24,198.51.100.0/24",
	       "views: ordered by ratio");
	fg_store_close(st);
}

int
main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (fixture_dir_make("fg-store") != 0)
		return 1;
	test_modes();
	test_unsafe_files();
	test_schema();
	test_rows();
	test_groups();
	test_restart();
	test_prune();
	test_external_bans();
	test_hooks();
	test_allow_hooks();
	test_migrations();
	test_migrate_v1();
	test_migrate_v2();
	test_migrate_v3();
	test_fold();
	test_overflow();
	test_unhealthy();
	test_views();
	fixture_dir_remove();
	return tap_done();
}
