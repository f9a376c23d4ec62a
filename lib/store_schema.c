/*
 * store_schema.c - the database file of the store: creating it with the
 * right mode, recognising it, and migrating its schema.
 *
 * Schema versions: the migrations[] table below, applied in order inside
 * one BEGIN IMMEDIATE, each leaving PRAGMA user_version at its number.
 * To change the schema, append an entry (version 2, ...) holding the DDL
 * that turns the previous version into it; never edit a released one.
 * A database is recognised by PRAGMA application_id; an empty file (or a
 * SQLite file with no schema at all) is floodgate's to initialise,
 * anything else, or a user_version newer than the last entry, is refused
 * with FG_ESCHEMA and left untouched: nothing is written to a database
 * before it is recognised.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fg.h"
#include "store_internal.h"

#define OPEN_BUSY_MS 5000  /* waiting for a lock at open */

/* The networks with the most unknown recipients in the last SECS
 * seconds, as schema 4 defines the top_offenders views (counting n). */
#define TOP_OFFENDERS_VIEW(name, secs) \
	"CREATE VIEW " name " AS" \
	" SELECT network," \
	"  sum((kind = 'rcpt' AND class = 'invalid') * n) AS invalid_rcpts," \
	"  sum((kind = 'rcpt') * n) AS rcpts," \
	"  round(CAST(sum((kind = 'rcpt' AND class = 'invalid') * n) AS REAL)" \
	"   / max(sum((kind = 'rcpt') * n), 1), 3) AS invalid_ratio," \
	"  sum((kind = 'connect') * n) AS connects," \
	"  datetime(min(ts_ms) / 1000, 'unixepoch') AS first_seen," \
	"  datetime(max(ts_ms) / 1000, 'unixepoch') AS last_seen" \
	" FROM events" \
	" WHERE ts_ms > (CAST(strftime('%s', 'now') AS INTEGER) - " secs \
	") * 1000" \
	"  AND network IS NOT NULL" \
	" GROUP BY +network" \
	" ORDER BY invalid_rcpts DESC, rcpts DESC, network;"

static const struct migration {
	int version;
	const char *sql;
} migrations[] = {
	{1,
	 "CREATE TABLE events ("
	 " id INTEGER PRIMARY KEY,"
	 " ts_ms INTEGER NOT NULL,"
	 " kind TEXT NOT NULL,"
	 " class TEXT,"
	 " client TEXT,"
	 " network TEXT,"
	 " helo TEXT,"
	 " sender TEXT,"
	 " rcpt TEXT,"
	 " queue_id TEXT,"
	 " session_id INTEGER,"
	 " status TEXT);"
	 /* One index only: every extra index on random client text costs
	  * the writer more than all the rest of an insert. */
	 "CREATE INDEX events_ts ON events(ts_ms);"
	 "CREATE TABLE verdicts ("
	 " id INTEGER PRIMARY KEY,"
	 " ts_ms INTEGER NOT NULL,"
	 " session_id INTEGER,"
	 " queue_id TEXT,"
	 " client TEXT,"
	 " stage TEXT,"
	 " rule TEXT,"
	 " key TEXT,"
	 " action TEXT,"
	 " count INTEGER,"
	 " lim INTEGER,"
	 " window_ms INTEGER,"
	 " delay_ms INTEGER,"
	 " reply TEXT,"
	 " monitor INTEGER NOT NULL DEFAULT 0);"
	 "CREATE INDEX verdicts_ts ON verdicts(ts_ms);"
	 "CREATE TABLE bans ("
	 " key TEXT PRIMARY KEY,"
	 " until_ms INTEGER NOT NULL,"
	 " created_ms INTEGER NOT NULL"
	 "  DEFAULT (CAST(strftime('%s', 'now') AS INTEGER) * 1000),"
	 " reason TEXT NOT NULL DEFAULT '',"
	 " source TEXT NOT NULL DEFAULT '');"
	 "CREATE TABLE counts ("
	 " key TEXT NOT NULL,"
	 " counter TEXT NOT NULL,"
	 " sec INTEGER NOT NULL,"
	 " n INTEGER NOT NULL,"
	 /* Time first: the writer appends at the end of the tree, pruning
	  * cuts its front, and the rebuild reads a single range. */
	 " PRIMARY KEY (sec, key, counter)) WITHOUT ROWID;"
	 "CREATE TABLE levels ("
	 " rule TEXT NOT NULL,"
	 " key TEXT NOT NULL,"
	 " level INTEGER NOT NULL,"
	 " last_ms INTEGER NOT NULL,"
	 " PRIMARY KEY (rule, key));"
	 /* The views an operator asks first.  "now" is the wall clock. */
	 "CREATE VIEW top_offenders_1h AS"
	 " SELECT network,"
	 "  sum(kind = 'rcpt' AND class = 'invalid') AS invalid_rcpts,"
	 "  sum(kind = 'rcpt') AS rcpts,"
	 "  round(CAST(sum(kind = 'rcpt' AND class = 'invalid') AS REAL)"
	 "   / max(sum(kind = 'rcpt'), 1), 3) AS invalid_ratio,"
	 "  sum(kind = 'connect') AS connects,"
	 "  datetime(min(ts_ms) / 1000, 'unixepoch') AS first_seen,"
	 "  datetime(max(ts_ms) / 1000, 'unixepoch') AS last_seen"
	 " FROM events"
	 " WHERE ts_ms > (CAST(strftime('%s', 'now') AS INTEGER) - 3600) * 1000"
	 "  AND network IS NOT NULL"
	 " GROUP BY +network"
	 " ORDER BY invalid_rcpts DESC, rcpts DESC, network;"
	 "CREATE VIEW top_offenders_24h AS"
	 " SELECT network,"
	 "  sum(kind = 'rcpt' AND class = 'invalid') AS invalid_rcpts,"
	 "  sum(kind = 'rcpt') AS rcpts,"
	 "  round(CAST(sum(kind = 'rcpt' AND class = 'invalid') AS REAL)"
	 "   / max(sum(kind = 'rcpt'), 1), 3) AS invalid_ratio,"
	 "  sum(kind = 'connect') AS connects,"
	 "  datetime(min(ts_ms) / 1000, 'unixepoch') AS first_seen,"
	 "  datetime(max(ts_ms) / 1000, 'unixepoch') AS last_seen"
	 " FROM events"
	 " WHERE ts_ms > (CAST(strftime('%s', 'now') AS INTEGER) - 86400) * 1000"
	 "  AND network IS NOT NULL"
	 " GROUP BY +network"
	 " ORDER BY invalid_rcpts DESC, rcpts DESC, network;"
	 "CREATE VIEW active_bans AS"
	 " SELECT key,"
	 "  datetime(until_ms / 1000, 'unixepoch') AS until_utc,"
	 "  (until_ms - CAST(strftime('%s', 'now') AS INTEGER) * 1000) / 1000"
	 "   AS remaining_s,"
	 "  datetime(created_ms / 1000, 'unixepoch') AS created_utc,"
	 "  reason, source, until_ms, created_ms"
	 " FROM bans"
	 " WHERE until_ms > CAST(strftime('%s', 'now') AS INTEGER) * 1000"
	 " ORDER BY until_ms DESC, key;"
	 "CREATE VIEW invalid_ratio_by_network AS"
	 " SELECT network,"
	 "  sum(class = 'invalid') AS invalid_rcpts,"
	 "  count(*) AS rcpts,"
	 "  round(CAST(sum(class = 'invalid') AS REAL) / count(*), 3)"
	 "   AS invalid_ratio,"
	 "  datetime(min(ts_ms) / 1000, 'unixepoch') AS first_seen,"
	 "  datetime(max(ts_ms) / 1000, 'unixepoch') AS last_seen"
	 " FROM events"
	 " WHERE kind = 'rcpt' AND network IS NOT NULL"
	 " GROUP BY network"
	 " ORDER BY invalid_ratio DESC, rcpts DESC, network;"},
	/* One row per key and second, a column per counter: a third of
	 * the rows to write, index and rebuild from. */
	{2,
	 "CREATE TABLE counts_v2 ("
	 " sec INTEGER NOT NULL,"
	 " key TEXT NOT NULL,"
	 " connect INTEGER NOT NULL DEFAULT 0,"
	 " helo INTEGER NOT NULL DEFAULT 0,"
	 " mail INTEGER NOT NULL DEFAULT 0,"
	 " rcpt INTEGER NOT NULL DEFAULT 0,"
	 " valid INTEGER NOT NULL DEFAULT 0,"
	 " invalid INTEGER NOT NULL DEFAULT 0,"
	 " rejected INTEGER NOT NULL DEFAULT 0,"
	 " PRIMARY KEY (sec, key)) WITHOUT ROWID;"
	 "INSERT INTO counts_v2 SELECT sec, key,"
	 " sum(CASE counter WHEN 'connect' THEN n ELSE 0 END),"
	 " sum(CASE counter WHEN 'helo' THEN n ELSE 0 END),"
	 " sum(CASE counter WHEN 'mail' THEN n ELSE 0 END),"
	 " sum(CASE counter WHEN 'rcpt' THEN n ELSE 0 END),"
	 " sum(CASE counter WHEN 'valid' THEN n ELSE 0 END),"
	 " sum(CASE counter WHEN 'invalid' THEN n ELSE 0 END),"
	 " sum(CASE counter WHEN 'rejected' THEN n ELSE 0 END)"
	 " FROM counts GROUP BY sec, key ORDER BY sec, key;"
	 "DROP TABLE counts;"
	 "ALTER TABLE counts_v2 RENAME TO counts;"},
	/* Schema 3.  What a session was exempted by (host name, daemon
	 * name, SMTP AUTH), so that replay decides as the daemon did (and
	 * "close" rows, so that it frees concurrency slots when the daemon
	 * did); levels numbered from 1, as every log line and tool shows
	 * them; recipients as bare addresses, as the store now writes them
	 * (store.c, rcpt_copy): blanks, one pair of angle brackets, the
	 * blanks inside.  Only events has recipients; verdicts has none. */
	{3,
	 "ALTER TABLE events ADD COLUMN host TEXT;"
	 "ALTER TABLE events ADD COLUMN daemon TEXT;"
	 "ALTER TABLE events ADD COLUMN auth INTEGER;"
	 "UPDATE levels SET level = level + 1;"
	 "UPDATE events SET rcpt = trim(substr(trim(rcpt, ' ' || char(9)), 2,"
	 "  length(trim(rcpt, ' ' || char(9))) - 2), ' ' || char(9))"
	 " WHERE rcpt IS NOT NULL"
	 "  AND length(trim(rcpt, ' ' || char(9))) >= 2"
	 "  AND substr(trim(rcpt, ' ' || char(9)), 1, 1) = '<'"
	 "  AND substr(trim(rcpt, ' ' || char(9)), -1, 1) = '>';"
	 /* The running daemon's health, for floodgatectl status and
	  * metrics: one row, rewritten about once a second. */
	 "CREATE TABLE status ("
	 " id INTEGER PRIMARY KEY CHECK (id = 1),"
	 " updated_ms INTEGER, pid INTEGER, version TEXT, started_ms INTEGER,"
	 " config TEXT, config_ms INTEGER, queued INTEGER, queue_size INTEGER,"
	 " recorded INTEGER, written INTEGER, dropped INTEGER,"
	 " write_errors INTEGER, commits INTEGER, commit_ms_sum INTEGER,"
	 " last_commit_ms INTEGER, healthy INTEGER, last_error TEXT,"
	 " tarpit INTEGER, tarpit_max INTEGER, keys INTEGER,"
	 " connects INTEGER, helos INTEGER, mails INTEGER, rcpts INTEGER,"
	 " closes INTEGER, memory INTEGER, memory_limit INTEGER,"
	 " keys_refused INTEGER, alloc_failures INTEGER, db_size INTEGER,"
	 " max_database_size INTEGER, size_pruned INTEGER, reopened INTEGER);"
	 /* What operators ask of the running daemon (floodgatectl reset
	  * and unban): it applies new rows within a second. */
	 "CREATE TABLE controls ("
	 " id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, op TEXT NOT NULL,"
	 " key TEXT NOT NULL);"
	 /* The operators' allow list (floodgatectl allow). */
	 "CREATE TABLE allows ("
	 " key TEXT PRIMARY KEY, until_ms INTEGER NOT NULL,"
	 " created_ms INTEGER NOT NULL, reason TEXT NOT NULL DEFAULT '');"
	 "CREATE TABLE verdict_totals ("
	 " rule TEXT NOT NULL, action TEXT NOT NULL, monitor INTEGER NOT NULL,"
	 " n INTEGER NOT NULL, PRIMARY KEY (rule, action, monitor));"},
	/* Schema 4.  A row may stand for n identical events or verdicts of
	 * one second (store.h, "Folding": what a client refused at connect
	 * sends); the views count n. */
	{4,
	 "ALTER TABLE events ADD COLUMN n INTEGER NOT NULL DEFAULT 1;"
	 "ALTER TABLE verdicts ADD COLUMN n INTEGER NOT NULL DEFAULT 1;"
	 "DROP VIEW IF EXISTS top_offenders_1h;"
	 "DROP VIEW IF EXISTS top_offenders_24h;"
	 "DROP VIEW IF EXISTS invalid_ratio_by_network;"
	 TOP_OFFENDERS_VIEW("top_offenders_1h", "3600")
	 TOP_OFFENDERS_VIEW("top_offenders_24h", "86400")
	 "CREATE VIEW invalid_ratio_by_network AS"
	 " SELECT network,"
	 "  sum((class = 'invalid') * n) AS invalid_rcpts,"
	 "  sum(n) AS rcpts,"
	 "  round(CAST(sum((class = 'invalid') * n) AS REAL) / sum(n), 3)"
	 "   AS invalid_ratio,"
	 "  datetime(min(ts_ms) / 1000, 'unixepoch') AS first_seen,"
	 "  datetime(max(ts_ms) / 1000, 'unixepoch') AS last_seen"
	 " FROM events"
	 " WHERE kind = 'rcpt' AND network IS NOT NULL"
	 " GROUP BY network"
	 " ORDER BY invalid_ratio DESC, rcpts DESC, network;"},
	/* Schema 5.  The ratio guard's sample (FG_CNT_RCPT_SAMPLE): unknown
	 * recipients, and valid ones that are no role address, no repeat
	 * within the session and within ratio_session_cap.  Seconds from
	 * before have no such figure: their valid and unknown recipients
	 * stand in for it (the guard as it was) until they leave the
	 * windows. */
	{5,
	 "ALTER TABLE counts ADD COLUMN sample INTEGER NOT NULL DEFAULT 0;"
	 "UPDATE counts SET sample = valid + invalid WHERE valid + invalid > 0;"},
	/* Schema 6: the sharing of counts between hosts in the status
	 * row. */
	{6,
	 "ALTER TABLE status ADD COLUMN shared_state TEXT;"
	 "ALTER TABLE status ADD COLUMN shared_node TEXT;"
	 "ALTER TABLE status ADD COLUMN shared_server TEXT;"
	 "ALTER TABLE status ADD COLUMN shared_reason TEXT;"
	 "ALTER TABLE status ADD COLUMN shared_peers INTEGER;"
	 "ALTER TABLE status ADD COLUMN shared_sync_ms INTEGER;"
	 "ALTER TABLE status ADD COLUMN shared_skew_ms INTEGER;"},
	/* Schema 7: where an allow came from, as for bans ("floodgatectl",
	 * or "peer:<node>" for one received from another host). */
	{7,
	 "ALTER TABLE allows ADD COLUMN source TEXT NOT NULL DEFAULT '';"},
};

#define SCHEMA_VERSION (migrations[FG_NELEM(migrations) - 1].version)
_Static_assert(FG_NELEM(migrations) == FG_STORE_SCHEMA_VERSION,
               "FG_STORE_SCHEMA_VERSION must name the last migration");

/* A single-value PRAGMA or query, read with no parameters. */
static int
query_int(sqlite3 *db, const char *sql, int64_t *out)
{
	sqlite3_stmt *s;
	int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);

	*out = 0;
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int64(s, 0);
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		*out = 0;
		rc = SQLITE_OK;
	}
	sqlite3_finalize(s);
	return rc;
}

int
fg_store_errf(int code, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

/*
 * The files of a database must be ours alone before SQLite opens them:
 * the directory, the database, and any -wal and -shm a previous run left.
 * Each must be owned by the effective user or by root and writable by
 * nobody else beyond what mode grants (a group-writable file is allowed
 * only when mode is); the files must be plain files with one link.  What
 * fails is refused, not repaired: a file another user could write may
 * already hold what they wrote.  Nothing here follows a symbolic link.
 */
static int
check_stat(const struct stat *sb, const char *path, unsigned mode,
           bool is_dir, char *err, size_t errlen)
{
	uid_t me = geteuid();
	mode_t loose = sb->st_mode & (S_IWGRP | S_IWOTH) & ~(mode_t)mode;

	if (S_ISLNK(sb->st_mode))
		return fg_store_errf(FG_EIO, err, errlen, "%s: is a symbolic "
		                     "link; refusing to follow it", path);
	if (is_dir ? !S_ISDIR(sb->st_mode) : !S_ISREG(sb->st_mode))
		return fg_store_errf(FG_EIO, err, errlen, "%s: not a %s", path,
		                     is_dir ? "directory" : "regular file");
	if (sb->st_uid != me && sb->st_uid != 0)
		return fg_store_errf(FG_EIO, err, errlen, "%s: owned by uid "
		                     "%ld, not by uid %ld or root", path,
		                     (long)sb->st_uid, (long)me);
	if (loose != 0)
		return fg_store_errf(FG_EIO, err, errlen, "%s: mode %04o lets "
		                     "other users write it; chmod %s it",
		                     path, (unsigned)(sb->st_mode & 07777),
		                     loose & S_IWGRP ? (loose & S_IWOTH ? "go-w"
		                                                        : "g-w")
		                                     : "o-w");
	if (!is_dir && sb->st_nlink != 1)
		return fg_store_errf(FG_EIO, err, errlen, "%s: has %lu hard "
		                     "links; refusing a file shared with "
		                     "another name", path,
		                     (unsigned long)sb->st_nlink);
	return 0;
}

/* Checks name in the directory dfd, if it exists; path for messages. */
static int
check_entry(int dfd, const char *name, const char *path, unsigned mode,
            char *err, size_t errlen)
{
	struct stat sb;

	if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
		return errno == ENOENT ? 0
		       : fg_store_errf(FG_EIO, err, errlen, "%s: %s", path,
		                       strerror(errno));
	return check_stat(&sb, path, mode, false, err, errlen);
}

/*
 * Checks the directory and the files of the database at path, then
 * creates the database with exactly the requested mode (whatever the
 * umask) if it is missing, so SQLite, which gives -wal and -shm the mode
 * of the database file, gets it right for them too.  An existing file
 * keeps its mode.
 */
static int
prepare_files(const char *path, unsigned mode, char *err, size_t errlen)
{
	static const char *const suffix[] = {"", "-wal", "-shm"};
	const char *slash = strrchr(path, '/');
	const char *base = slash != NULL ? slash + 1 : path;
	char dir[4096], name[4096 + 8], full[4096 + 8];
	struct stat sb;
	int dfd, fd, rc = 0;

	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s",
		         slash == path ? 1 : (int)(slash - path), path);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return fg_store_errf(FG_EIO, err, errlen, "%s: directory %s: %s",
		                     path, dir, strerror(errno));
	if (fstat(dfd, &sb) != 0)
		rc = fg_store_errf(FG_EIO, err, errlen, "%s: %s", dir,
		                   strerror(errno));
	else
		rc = check_stat(&sb, dir, mode, true, err, errlen);
	for (size_t i = 0; rc == 0 && i < FG_NELEM(suffix); i++) {
		snprintf(name, sizeof(name), "%s%s", base, suffix[i]);
		snprintf(full, sizeof(full), "%s%s", path, suffix[i]);
		rc = check_entry(dfd, name, full, mode, err, errlen);
	}
	if (rc < 0) {
		close(dfd);
		return rc;
	}
	fd = openat(dfd, base, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC |
	            O_NOFOLLOW, (mode_t)mode);
	if (fd >= 0) {
		if (fchmod(fd, (mode_t)mode) != 0)
			rc = fg_store_errf(FG_EIO, err, errlen, "%s: chmod: %s",
			                   path, strerror(errno));
		close(fd);
	} else if (errno != EEXIST) {
		rc = fg_store_errf(FG_EIO, err, errlen, "%s: cannot create: "
		                   "%s", path, strerror(errno));
	}
	close(dfd);
	return rc;
}

static bool
busy(int rc)
{
	return (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
}

/* 0 if the database is floodgate's or empty; *version gets its schema. */
static int
check_identity(sqlite3 *db, const char *name, int64_t *version, char *err,
               size_t errlen)
{
	int64_t appid = 0, objects = 0;
	int rc;

	if ((rc = query_int(db, "PRAGMA application_id", &appid)) ||
	    (rc = query_int(db, "PRAGMA user_version", version)) ||
	    (rc = query_int(db, "SELECT count(*) FROM sqlite_schema",
	                    &objects))) {
		if ((rc & 0xff) == SQLITE_NOTADB)
			return fg_store_errf(FG_ESCHEMA, err, errlen,
			                     "%s: not a database", name);
		return fg_store_errf(busy(rc) ? FG_EBUSY : FG_EIO, err, errlen,
		                     "%s: %s", name, sqlite3_errmsg(db));
	}
	if (appid == FG_STORE_APPLICATION_ID) {
		if (*version > SCHEMA_VERSION)
			return fg_store_errf(FG_ESCHEMA, err, errlen,
			                     "%s: schema version %" PRId64
			                     " is newer than this floodgate's "
			                     "(%d)", name, *version,
			                     SCHEMA_VERSION);
		return 0;
	}
	if (appid == 0 && *version == 0 && objects == 0)
		return 0;
	return fg_store_errf(FG_ESCHEMA, err, errlen,
	                     "%s: not a floodgate database (application_id %"
	                     PRId64 ")", name, appid);
}

/* Applies every migration newer than the file, in one transaction. */
static int
migrate(sqlite3 *db, const char *name, char *err, size_t errlen)
{
	int64_t version = 0;
	int rc;

	if ((rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL)))
		return fg_store_errf(busy(rc) ? FG_EBUSY : FG_EIO, err, errlen,
		                     "%s: %s", name, sqlite3_errmsg(db));
	/* Look again under the lock: another process may have migrated. */
	if ((rc = check_identity(db, name, &version, err, errlen)) < 0)
		goto fail;
	for (size_t i = 0; i < FG_NELEM(migrations); i++) {
		char sql[96];

		if (migrations[i].version <= version)
			continue;
		/* Our own constants, not data. */
		snprintf(sql, sizeof(sql),
		         "PRAGMA application_id = %d; PRAGMA user_version = %d",
		         FG_STORE_APPLICATION_ID, migrations[i].version);
		if (sqlite3_exec(db, migrations[i].sql, NULL, NULL, NULL) ||
		    sqlite3_exec(db, sql, NULL, NULL, NULL)) {
			rc = fg_store_errf(FG_EIO, err, errlen,
			                   "%s: migration to version %d failed: "
			                   "%s", name, migrations[i].version,
			                   sqlite3_errmsg(db));
			goto fail;
		}
	}
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		rc = fg_store_errf(FG_EIO, err, errlen, "%s: %s", name,
		                   sqlite3_errmsg(db));
		goto fail;
	}
	return 0;
fail:
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

int
fg_store_schema_open(const char *path, unsigned mode, struct sqlite3 **out,
                     char *err, size_t errlen)
{
	const char *name = path != NULL ? path : ":memory:";
	/* NOMUTEX: one thread at a time uses the connection (the opener,
	 * then the writer, then the closer), so SQLite's per-call lock on
	 * it, taken on every bind and step, buys nothing. */
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW |
	            SQLITE_OPEN_NOMUTEX;
	int64_t version = 0;
	sqlite3 *db = NULL;
	int rc;

	if (path != NULL) {
		if ((rc = prepare_files(path, mode, err, errlen)) < 0)
			return rc;
	} else {
		flags |= SQLITE_OPEN_CREATE | SQLITE_OPEN_MEMORY;
	}
	rc = sqlite3_open_v2(name, &db, flags, NULL);
	*out = db;
	if (rc != SQLITE_OK)
		return fg_store_errf(FG_EIO, err, errlen, "%s: %s", name,
		                     db ? sqlite3_errmsg(db) : "cannot open");
	sqlite3_extended_result_codes(db, 1);
	sqlite3_busy_timeout(db, OPEN_BUSY_MS);
	if (sqlite3_db_readonly(db, "main") == 1)
		return fg_store_errf(FG_EIO, err, errlen,
		                     "%s: database is read-only", name);
	if ((rc = check_identity(db, name, &version, err, errlen)) < 0)
		return rc;
	/* Recognised: from here on we may write to it. */
	if (path != NULL) {
		char jm[16] = "";
		sqlite3_stmt *s;

		if (sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &s,
		                       NULL) == SQLITE_OK) {
			if (sqlite3_step(s) == SQLITE_ROW &&
			    sqlite3_column_text(s, 0) != NULL)
				snprintf(jm, sizeof(jm), "%s",
				         sqlite3_column_text(s, 0));
			sqlite3_finalize(s);
		}
		if (strcmp(jm, "wal") != 0)
			return fg_store_errf(FG_EIO, err, errlen,
			                     "%s: cannot use WAL: %s", name,
			                     sqlite3_errmsg(db));
	}
	/* An 8 MiB page cache at most: with time-first aggregates and one
	 * events index the writer touches only the tails of its trees. */
	if (sqlite3_exec(db, "PRAGMA synchronous = NORMAL;"
	                     "PRAGMA journal_size_limit = 67108864;"
	                     "PRAGMA cache_size = -8192;"
	                     "PRAGMA temp_store = MEMORY",
	                 NULL, NULL, NULL) != SQLITE_OK)
		return fg_store_errf(FG_EIO, err, errlen, "%s: %s", name,
		                     sqlite3_errmsg(db));
	if (version < SCHEMA_VERSION &&
	    (rc = migrate(db, name, err, errlen)) < 0)
		return rc;
	return 0;
}
