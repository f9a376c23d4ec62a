/*
 * query.c - the operator's verbs on a floodgate database (see query.h):
 * opening and recognising the file, its health, pruning, and the bans.
 * The reports (top offenders, counts, statistics, history) are in
 * query_report.c; the two share the handle and a few helpers through
 * query_internal.h.
 *
 * Recognition repeats what lib/store_schema.c checks before it writes, but
 * never initialises or migrates: an operator's tool must not turn a file
 * it was pointed at by mistake into a floodgate database.
 */
#include "query.h"

#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fg.h"
#include "keys.h"
#include "query_internal.h"

/* PRAGMA application_id of a floodgate database: "flgd". */
#define APPLICATION_ID FG_STORE_APPLICATION_ID
#define BUSY_MS 5000        /* waiting for the daemon's commit, at most */
#define PRUNE_ROWS 2000     /* rows per pruning transaction */

int
fg_query_fail(fg_query *q, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(q->err, sizeof(q->err), fmt, ap);
	va_end(ap);
	return code;
}

int
fg_query_dberr(fg_query *q, int rc, const char *what)
{
	int code = (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED
	           ? FG_EBUSY : FG_EIO;

	return fg_query_fail(q, code, "%s: %s: %s", q->path, what,
	                     sqlite3_errmsg(q->db));
}

int
fg_query_prepare(fg_query *q, const char *sql, sqlite3_stmt **s)
{
	int rc = sqlite3_prepare_v2(q->db, sql, -1, s, NULL);

	if (rc != SQLITE_OK) {
		*s = NULL;
		return fg_query_dberr(q, rc, "prepare");
	}
	return 0;
}

const char *
fg_query_col_text(sqlite3_stmt *s, int i)
{
	if (sqlite3_column_type(s, i) == SQLITE_NULL)
		return NULL;
	return (const char *)sqlite3_column_text(s, i);
}

void
fg_query_col_copy(char *dst, size_t size, sqlite3_stmt *s, int i)
{
	const char *v = fg_query_col_text(s, i);

	snprintf(dst, size, "%s", v != NULL ? v : "");
}

char *
fg_query_error(const fg_query *q, char *buf, size_t size)
{
	snprintf(buf, size, "%s", q != NULL ? q->err : "no database");
	return buf;
}

void
fg_query_free(void *rows)
{
	free(rows);
}

/* ---- opening ---------------------------------------------------------- */

/* The keys of keys.h as SQL functions, so reports group by exactly the
 * strings the daemon counts and bans under. */
static void
sql_key(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	char *(*make)(char *, const char *) = sqlite3_user_data(ctx);
	const unsigned char *in;
	char key[FG_KEY_MAX];

	(void)argc;
	if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
		sqlite3_result_null(ctx);
		return;
	}
	in = sqlite3_value_text(argv[0]);
	make(key, in != NULL ? (const char *)in : "");
	sqlite3_result_text(ctx, key, -1, SQLITE_TRANSIENT);
}

static int
register_functions(fg_query *q)
{
	static const struct {
		const char *name;
		char *(*make)(char *, const char *);
	} fns[] = {
		{"fg_helo_key", fg_key_helo},
		{"fg_rcpt_domain_key", fg_key_rcpt_domain},
		{"fg_sender_domain_key", fg_key_sender_domain},
	};

	for (size_t i = 0; i < FG_NELEM(fns); i++) {
		int rc = sqlite3_create_function_v2(
		    q->db, fns[i].name, 1,
		    SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY,
		    (void *)fns[i].make, sql_key, NULL, NULL, NULL);
		if (rc != SQLITE_OK)
			return fg_query_dberr(q, rc, "register functions");
	}
	return 0;
}

/* A single integer from a statement without parameters. */
static int
pragma_int(fg_query *q, const char *sql, int64_t *out)
{
	sqlite3_stmt *s;
	int rc;

	*out = 0;
	if ((rc = sqlite3_prepare_v2(q->db, sql, -1, &s, NULL)) != SQLITE_OK)
		return rc;
	if ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		*out = sqlite3_column_int64(s, 0);
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		rc = SQLITE_OK;
	}
	sqlite3_finalize(s);
	return rc;
}

static int
recognise(fg_query *q)
{
	int64_t appid, version;
	int rc;

	if ((rc = pragma_int(q, "PRAGMA application_id", &appid)) ||
	    (rc = pragma_int(q, "PRAGMA user_version", &version))) {
		if ((rc & 0xff) == SQLITE_NOTADB)
			return fg_query_fail(q, FG_ESCHEMA, "%s: not a SQLite "
			                     "database", q->path);
		return fg_query_dberr(q, rc, "open");
	}
	if (appid != APPLICATION_ID)
		return fg_query_fail(q, FG_ESCHEMA, "%s: not a floodgate "
		                     "database (application_id %" PRId64 ")",
		                     q->path, appid);
	if (version > FG_QUERY_SCHEMA_VERSION)
		return fg_query_fail(q, FG_ESCHEMA, "%s: schema version %"
		                     PRId64 " is newer than this version "
		                     "knows (%d)", q->path, version,
		                     FG_QUERY_SCHEMA_VERSION);
	if (version < 1)
		return fg_query_fail(q, FG_ESCHEMA, "%s: no floodgate schema "
		                     "(user_version %" PRId64 ")", q->path,
		                     version);
	if (version < FG_QUERY_SCHEMA_VERSION)
		return fg_query_fail(q, FG_ESCHEMA, "%s: schema version %"
		                     PRId64 " is older than this version's "
		                     "(%d); start floodgate on it once to "
		                     "migrate it", q->path, version,
		                     FG_QUERY_SCHEMA_VERSION);
	return 0;
}

int
fg_query_open(const char *path, enum fg_query_mode mode, fg_query **out,
              char *err, size_t errlen)
{
	struct stat sb;
	fg_query *q;
	int flags, rc;

	*out = NULL;
	if (path == NULL || path[0] == '\0') {
		snprintf(err, errlen, "no database given");
		return FG_EINVAL;
	}
	if (stat(path, &sb) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return errno == ENOENT ? FG_ENOENT : FG_EIO;
	}
	if (!S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "%s: not a database file", path);
		return FG_ESCHEMA;
	}
	if ((q = calloc(1, sizeof(*q))) == NULL ||
	    (q->path = strdup(path)) == NULL) {
		free(q);
		snprintf(err, errlen, "%s: out of memory", path);
		return FG_ENOMEM;
	}
	q->writable = mode == FG_QUERY_WRITE;
	flags = (q->writable ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY) |
	        SQLITE_OPEN_NOFOLLOW;
	if (sqlite3_open_v2(path, &q->db, flags, NULL) != SQLITE_OK) {
		rc = fg_query_fail(q, FG_EIO, "%s: %s", path,
		                   q->db ? sqlite3_errmsg(q->db) : "cannot open");
		goto fail;
	}
	sqlite3_extended_result_codes(q->db, 1);
	sqlite3_busy_timeout(q->db, BUSY_MS);
	if ((rc = recognise(q)) < 0)
		goto fail;
	if (q->writable && sqlite3_db_readonly(q->db, "main") == 1) {
		rc = fg_query_fail(q, FG_EIO, "%s: database is read-only",
		                   path);
		goto fail;
	}
	if ((rc = register_functions(q)) < 0)
		goto fail;
	*out = q;
	return 0;
fail:
	snprintf(err, errlen, "%s", q->err);
	fg_query_close(q);
	return rc;
}

void
fg_query_close(fg_query *q)
{
	if (q == NULL)
		return;
	if (q->in_snapshot)
		fg_query_end(q);
	sqlite3_close(q->db);
	free(q->path);
	free(q);
}

int
fg_query_begin(fg_query *q)
{
	int64_t n;
	int rc;

	if (q->in_snapshot)
		return 0;
	if ((rc = sqlite3_exec(q->db, "BEGIN", NULL, NULL, NULL)) != SQLITE_OK)
		return fg_query_dberr(q, rc, "begin");
	/* A deferred transaction takes its snapshot at the first read. */
	if ((rc = pragma_int(q, "SELECT count(*) FROM sqlite_schema", &n))) {
		sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
		return fg_query_dberr(q, rc, "begin");
	}
	q->in_snapshot = true;
	return 0;
}

void
fg_query_end(fg_query *q)
{
	if (q == NULL || !q->in_snapshot)
		return;
	sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL);
	q->in_snapshot = false;
}

static int
need_write(fg_query *q, const char *what)
{
	if (!q->writable)
		return fg_query_fail(q, FG_EINVAL, "%s: %s needs the database "
		                     "opened for writing", q->path, what);
	return 0;
}

/* ---- the file ------------------------------------------------------------ */

int
fg_query_info(fg_query *q, struct fg_query_info *out)
{
	static const struct {
		const char *sql;
		size_t off;
	} ints[] = {
		{"PRAGMA application_id",
		 offsetof(struct fg_query_info, application_id)},
		{"PRAGMA user_version",
		 offsetof(struct fg_query_info, schema_version)},
		{"PRAGMA page_size", offsetof(struct fg_query_info, page_size)},
		{"PRAGMA page_count", offsetof(struct fg_query_info, page_count)},
		{"PRAGMA freelist_count",
		 offsetof(struct fg_query_info, freelist_count)},
		{"SELECT count(*) FROM events",
		 offsetof(struct fg_query_info, events)},
		{"SELECT count(*) FROM verdicts",
		 offsetof(struct fg_query_info, verdicts)},
		{"SELECT count(*) FROM bans", offsetof(struct fg_query_info, bans)},
		{"SELECT count(*) FROM counts",
		 offsetof(struct fg_query_info, counts)},
		{"SELECT count(*) FROM levels",
		 offsetof(struct fg_query_info, levels)},
		{"SELECT coalesce(min(ts_ms), 0) FROM events",
		 offsetof(struct fg_query_info, oldest_ms)},
		{"SELECT coalesce(max(ts_ms), 0) FROM events",
		 offsetof(struct fg_query_info, newest_ms)},
	};
	sqlite3_stmt *s;
	int rc;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < FG_NELEM(ints); i++) {
		int64_t *dst = (int64_t *)(void *)((char *)out + ints[i].off);

		if ((rc = pragma_int(q, ints[i].sql, dst)) != SQLITE_OK)
			return fg_query_dberr(q, rc, "info");
	}
	if ((rc = fg_query_prepare(q, "PRAGMA journal_mode", &s)) < 0)
		return rc;
	if (sqlite3_step(s) == SQLITE_ROW)
		fg_query_col_copy(out->journal_mode, sizeof(out->journal_mode),
		                  s, 0);
	sqlite3_finalize(s);
	return 0;
}

int
fg_query_check(fg_query *q, size_t max, fg_query_line_fn *fn, void *arg)
{
	sqlite3_stmt *s;
	size_t n = 0;
	bool sound = false;
	int rc;

	if ((rc = fg_query_prepare(q, "PRAGMA integrity_check", &s)) < 0)
		return rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *line = fg_query_col_text(s, 0);

		if (n == 0 && line != NULL && strcmp(line, "ok") == 0) {
			sound = true;
			continue;
		}
		if (fn != NULL && n < max)
			fn(arg, line != NULL ? line : "");
		n++;
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return fg_query_dberr(q, rc, "integrity_check");
	return sound && n == 0 ? 1 : 0;
}

/* Repeats a bounded DELETE, one small transaction each, until it
 * deletes fewer rows than its batch. */
static int
prune_table(fg_query *q, const char *sql, int64_t before_ms, int64_t *n)
{
	sqlite3_stmt *s;
	int rc, changed;

	*n = 0;
	if ((rc = fg_query_prepare(q, sql, &s)) < 0)
		return rc;
	do {
		sqlite3_bind_int64(s, 1, before_ms);
		sqlite3_bind_int(s, 2, PRUNE_ROWS);
		rc = sqlite3_step(s);
		sqlite3_reset(s);
		if (rc != SQLITE_DONE) {
			rc = fg_query_dberr(q, rc, "prune");
			sqlite3_finalize(s);
			return rc;
		}
		changed = sqlite3_changes(q->db);
		*n += changed;
	} while (changed >= PRUNE_ROWS);
	sqlite3_finalize(s);
	return 0;
}

int
fg_query_prune(fg_query *q, int64_t before_ms, int64_t *events,
               int64_t *verdicts)
{
	int rc;

	*events = *verdicts = 0;
	if ((rc = need_write(q, "prune")) < 0 ||
	    (rc = prune_table(q, "DELETE FROM events WHERE id IN (SELECT id"
	                      " FROM events WHERE ts_ms < ?1 ORDER BY ts_ms"
	                      " LIMIT ?2)", before_ms, events)) < 0 ||
	    (rc = prune_table(q, "DELETE FROM verdicts WHERE id IN (SELECT"
	                      " id FROM verdicts WHERE ts_ms < ?1 ORDER BY"
	                      " ts_ms LIMIT ?2)", before_ms, verdicts)) < 0)
		return rc;
	return 0;
}

static int
file_bytes(fg_query *q, int64_t *bytes)
{
	int64_t size, count;
	int rc;

	if ((rc = pragma_int(q, "PRAGMA page_size", &size)) ||
	    (rc = pragma_int(q, "PRAGMA page_count", &count)))
		return fg_query_dberr(q, rc, "vacuum");
	*bytes = size * count;
	return 0;
}

int
fg_query_vacuum(fg_query *q, int64_t *before, int64_t *after)
{
	int rc;

	*before = *after = 0;
	if ((rc = need_write(q, "vacuum")) < 0 ||
	    (rc = file_bytes(q, before)) < 0)
		return rc;
	if ((rc = sqlite3_exec(q->db, "VACUUM", NULL, NULL, NULL)) != SQLITE_OK)
		return fg_query_dberr(q, rc, "vacuum");
	/* Move the rewritten pages home if no reader needs the old ones. */
	sqlite3_wal_checkpoint_v2(q->db, "main", SQLITE_CHECKPOINT_PASSIVE,
	                          NULL, NULL);
	return file_bytes(q, after);
}

/* ---- bans -------------------------------------------------------------- */

void
fg_query_ban_of_row(struct fg_ban *b, sqlite3_stmt *s, int col)
{
	memset(b, 0, sizeof(*b));
	b->until_ms = sqlite3_column_int64(s, col);
	b->created_ms = sqlite3_column_int64(s, col + 1);
	fg_query_col_copy(b->reason, sizeof(b->reason), s, col + 2);
	fg_query_col_copy(b->source, sizeof(b->source), s, col + 3);
}

int
fg_query_bans(fg_query *q, int64_t now_ms, struct fg_ban_entry **out,
              size_t *n)
{
	struct fg_ban_entry *v = NULL;
	size_t cap = 0;
	sqlite3_stmt *s;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = fg_query_prepare(q, "SELECT key, until_ms, created_ms,"
	                           " reason, source FROM bans WHERE until_ms > ?1"
	                           " ORDER BY until_ms DESC, key", &s)) < 0)
		return rc;
	sqlite3_bind_int64(s, 1, now_ms);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (*n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct fg_ban_entry *nv = realloc(v, ncap * sizeof(*nv));

			if (nv == NULL) {
				sqlite3_finalize(s);
				free(v);
				return fg_query_fail(q, FG_ENOMEM, "out of memory");
			}
			v = nv;
			cap = ncap;
		}
		fg_query_col_copy(v[*n].key, sizeof(v[*n].key), s, 0);
		fg_query_ban_of_row(&v[*n].ban, s, 1);
		(*n)++;
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		free(v);
		*n = 0;
		return fg_query_dberr(q, rc, "bans");
	}
	*out = v;
	return 0;
}

int
fg_query_ban_get(fg_query *q, const char *key, int64_t now_ms,
                 struct fg_ban *out)
{
	sqlite3_stmt *s;
	int rc;

	if ((rc = fg_query_prepare(q, "SELECT until_ms, created_ms, reason,"
	                           " source FROM bans WHERE key = ?1"
	                           " AND until_ms > ?2", &s)) < 0)
		return rc;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, now_ms);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		if (out != NULL)
			fg_query_ban_of_row(out, s, 0);
		sqlite3_finalize(s);
		return 1;
	}
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : fg_query_dberr(q, rc, "ban");
}

/* Is key exactly what fg_key_parse() makes of it? */
static bool
canonical_key(const char *key)
{
	char buf[FG_KEY_MAX];

	return key != NULL && strlen(key) < FG_KEY_MAX &&
	       fg_key_parse(buf, key) == 0 && strcmp(buf, key) == 0;
}

int
fg_query_ban_set(fg_query *q, const char *key, int64_t until_ms,
                 const char *reason, const char *source, int64_t now_ms)
{
	struct fg_ban b;
	sqlite3_stmt *s;
	int rc;

	if ((rc = need_write(q, "ban")) < 0)
		return rc;
	if (!canonical_key(key))
		return fg_query_fail(q, FG_EINVAL, "not a key: %s",
		                     key != NULL ? key : "(null)");
	if (until_ms <= now_ms)
		return fg_query_fail(q, FG_ERANGE, "a ban must end after now");
	/* The same bounds the daemon reads back. */
	snprintf(b.reason, sizeof(b.reason), "%s", reason ? reason : "");
	snprintf(b.source, sizeof(b.source), "%s", source ? source : "");
	if ((rc = fg_query_prepare(q, "INSERT INTO bans (key, until_ms,"
	                           " created_ms, reason, source) VALUES (?1, ?2,"
	                           " ?3, ?4, ?5) ON CONFLICT (key) DO UPDATE SET"
	                           " until_ms = excluded.until_ms,"
	                           " created_ms = excluded.created_ms,"
	                           " reason = excluded.reason,"
	                           " source = excluded.source", &s)) < 0)
		return rc;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, until_ms);
	sqlite3_bind_int64(s, 3, now_ms);
	sqlite3_bind_text(s, 4, b.reason, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, b.source, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : fg_query_dberr(q, rc, "ban");
}

int
fg_query_ban_lift(fg_query *q, const char *key, int64_t now_ms)
{
	sqlite3_stmt *s;
	int rc, found;

	if ((rc = need_write(q, "unban")) < 0)
		return rc;
	if ((rc = sqlite3_exec(q->db, "BEGIN IMMEDIATE", NULL, NULL, NULL)))
		return fg_query_dberr(q, rc, "unban");
	if ((found = fg_query_ban_get(q, key, now_ms, NULL)) < 0)
		goto fail;
	/* Not a delete: a row that ends at 0, made now, says "lifted now"
	 * and outranks a ban the daemon made earlier and has not committed
	 * yet (the daemon keeps such rows for a day). */
	if ((rc = fg_query_prepare(q, "INSERT INTO bans (key, until_ms,"
	                           " created_ms, reason, source) VALUES (?1, 0,"
	                           " ?2, 'lifted', 'unban') ON CONFLICT (key) DO"
	                           " UPDATE SET until_ms = excluded.until_ms,"
	                           " created_ms = excluded.created_ms,"
	                           " reason = excluded.reason,"
	                           " source = excluded.source", &s)) < 0) {
		found = rc;
		goto fail;
	}
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, now_ms);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		found = fg_query_dberr(q, rc, "unban");
		goto fail;
	}
	if ((rc = sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL))) {
		found = fg_query_dberr(q, rc, "unban");
		goto fail;
	}
	return found;
fail:
	sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
	return found;
}

/* One statement of a write, with key at ?1 and now at ?2. */
static int
write_step(fg_query *q, const char *sql, const char *key, int64_t now_ms)
{
	sqlite3_stmt *s;
	int rc;

	if ((rc = fg_query_prepare(q, sql, &s)) < 0)
		return rc;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_bind_parameter_count(s) >= 2)
		sqlite3_bind_int64(s, 2, now_ms);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : fg_query_dberr(q, rc, "reset");
}

int
fg_query_reset(fg_query *q, const char *key, int64_t now_ms)
{
	int rc;

	if ((rc = need_write(q, "reset")) < 0)
		return rc;
	if ((rc = sqlite3_exec(q->db, "BEGIN IMMEDIATE", NULL, NULL, NULL)))
		return fg_query_dberr(q, rc, "reset");
	if ((rc = write_step(q, "DELETE FROM counts WHERE key = ?1", key,
	                     now_ms)) < 0 ||
	    (rc = write_step(q, "DELETE FROM levels WHERE key = ?1", key,
	                     now_ms)) < 0 ||
	    (rc = write_step(q, "INSERT INTO controls (ts_ms, op, key)"
	                     " VALUES (?2, 'reset', ?1)", key, now_ms)) < 0 ||
	    (rc = write_step(q, "DELETE FROM controls WHERE key <> ?1 AND"
	                     " ts_ms < ?2 - 86400000", key, now_ms)) < 0)
		goto fail;
	if ((rc = sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL))) {
		rc = fg_query_dberr(q, rc, "reset");
		goto fail;
	}
	return 0;
fail:
	sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

/* ---- the allow list ----------------------------------------------------- */

int
fg_query_allow_set(fg_query *q, const char *key, int64_t until_ms,
                   const char *reason, const char *source, int64_t now_ms)
{
	sqlite3_stmt *s;
	int rc;

	if ((rc = need_write(q, "allow")) < 0)
		return rc;
	if ((rc = fg_query_prepare(q, "INSERT INTO allows (key, until_ms,"
	                           " created_ms, reason, source)"
	                           " VALUES (?1, ?2, ?3, ?4, ?5)"
	                           " ON CONFLICT (key) DO UPDATE SET"
	                           " until_ms = excluded.until_ms,"
	                           " created_ms = excluded.created_ms,"
	                           " reason = excluded.reason,"
	                           " source = excluded.source", &s)) < 0)
		return rc;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, until_ms);
	sqlite3_bind_int64(s, 3, now_ms);
	sqlite3_bind_text(s, 4, reason != NULL ? reason : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, source != NULL ? source : "", -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : fg_query_dberr(q, rc, "allow");
}

int
fg_query_allow_lift(fg_query *q, const char *key)
{
	sqlite3_stmt *s;
	int rc;

	if ((rc = need_write(q, "disallow")) < 0)
		return rc;
	if ((rc = fg_query_prepare(q, "DELETE FROM allows WHERE key = ?1",
	                           &s)) < 0)
		return rc;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return fg_query_dberr(q, rc, "disallow");
	return sqlite3_changes(q->db) > 0 ? 1 : 0;
}

int
fg_query_allows(fg_query *q, int64_t now_ms, struct fg_allow_entry **out,
                size_t *n)
{
	sqlite3_stmt *s;
	size_t cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = fg_query_prepare(q, "SELECT key, until_ms, created_ms, reason,"
	                           " source FROM allows WHERE until_ms > ?1"
	                           " ORDER BY key", &s)) < 0)
		return rc;
	sqlite3_bind_int64(s, 1, now_ms);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct fg_allow_entry *e;
		const char *key = fg_query_col_text(s, 0);
		const char *reason = fg_query_col_text(s, 3);

		if (key == NULL)
			continue;
		if (*n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct fg_allow_entry *ne = realloc(*out, ncap * sizeof(*ne));

			if (ne == NULL) {
				sqlite3_finalize(s);
				return fg_query_fail(q, FG_ENOMEM, "out of memory");
			}
			*out = ne;
			cap = ncap;
		}
		e = &(*out)[(*n)++];
		snprintf(e->key, sizeof(e->key), "%s", key);
		e->until_ms = sqlite3_column_int64(s, 1);
		e->created_ms = sqlite3_column_int64(s, 2);
		snprintf(e->reason, sizeof(e->reason), "%s", reason ? reason : "");
		fg_query_col_copy(e->source, sizeof(e->source), s, 4);
	}
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : fg_query_dberr(q, rc, "allows");
}
