/*
 * store_db.c - the statements of the store and the work done with them:
 * rebuilding memory at open, the writer's batch (events, verdicts,
 * per-second aggregates, bans, levels), pruning, and noticing bans that
 * another process wrote.  The file and its schema are store_schema.c's.
 *
 * One connection.  fg_store_open() uses it on the caller's thread; from
 * then on only the writer thread touches it, until fg_store_close() has
 * joined that thread.  Every statement is prepared once with bound
 * parameters; no SQL is ever built from data.
 */
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fg.h"
#include "keys.h"
#include "store_internal.h"

#define RUN_BUSY_MS 50     /* the writer never waits longer per attempt */
#define PRUNE_BUDGET_MS 100 /* pruning time per poll, at most (about) */

#define AGG_MIN 1024    /* slots of the aggregation table, at least */
#define UNBAN_KEEP_MS (INT64_C(86400) * 1000)

/* The counters of one key in one second of a batch, summed before they
 * reach the table (one row of counts). */
struct agg {
	const char *key;  /* points into a queued row; NULL: free slot */
	uint64_t hash;
	uint32_t klen;
	uint32_t sec;
	uint32_t n[FG_CNT__COUNT];
};

/* Events per multi-row insert: one step per group rather than per row
 * is most of what an insert costs; past 64 the gain is small and the
 * statement long (EVENT_GROUP x EVENT_COLUMNS parameters). */
#define EVENT_GROUP 64
#define EVENT_COLUMNS 15
#define EVENT_INSERT "INSERT INTO events (ts_ms, kind, class, client, network," \
	" helo, sender, rcpt, queue_id, session_id, status, host, daemon," \
	" auth, n) VALUES "
#define EVENT_VALUES "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
#define EVENT_VALUES2 EVENT_VALUES "," EVENT_VALUES
#define EVENT_VALUES4 EVENT_VALUES2 "," EVENT_VALUES2
#define EVENT_VALUES8 EVENT_VALUES4 "," EVENT_VALUES4
#define EVENT_VALUES16 EVENT_VALUES8 "," EVENT_VALUES8
#define EVENT_VALUES32 EVENT_VALUES16 "," EVENT_VALUES16
#define EVENT_VALUES64 EVENT_VALUES32 "," EVENT_VALUES32

/* Rows of counts per upsert, likewise (COUNT_COLUMNS parameters each).
 * The rows of one statement never share a key and second. */
#define COUNT_GROUP 32
#define COUNT_COLUMNS 10
#define COUNT_UPSERT "INSERT INTO counts (sec, key, connect, helo, mail, rcpt," \
	" valid, invalid, rejected, sample) VALUES "
#define COUNT_VALUES "(?,?,?,?,?,?,?,?,?,?)"
#define COUNT_VALUES2 COUNT_VALUES "," COUNT_VALUES
#define COUNT_VALUES4 COUNT_VALUES2 "," COUNT_VALUES2
#define COUNT_VALUES8 COUNT_VALUES4 "," COUNT_VALUES4
#define COUNT_VALUES16 COUNT_VALUES8 "," COUNT_VALUES8
#define COUNT_VALUES32 COUNT_VALUES16 "," COUNT_VALUES16
#define COUNT_CONFLICT " ON CONFLICT (sec, key) DO UPDATE SET" \
	" connect = connect + excluded.connect," \
	" helo = helo + excluded.helo, mail = mail + excluded.mail," \
	" rcpt = rcpt + excluded.rcpt, valid = valid + excluded.valid," \
	" invalid = invalid + excluded.invalid," \
	" rejected = rejected + excluded.rejected," \
	" sample = sample + excluded.sample"

/*
 * What a parameter of the event inserts holds, so that a value bound
 * already is not bound again (a binding outlives sqlite3_reset): NULL
 * (BOUND_NULL), the integer 1 (BOUND_ONE), a string that never changes
 * (the names of kinds and classes, by address), or unknown (NULL).
 */
static const char bound_null_mark, bound_one_mark;
#define BOUND_NULL ((const void *)&bound_null_mark)
#define BOUND_ONE ((const void *)&bound_one_mark)

struct fg_db {
	sqlite3 *db;
	sqlite3_stmt *ins_events;  /* EVENT_GROUP rows at once */
	sqlite3_stmt *up_counts;   /* COUNT_GROUP rows at once */
	sqlite3_stmt *ins_event, *ins_verdict, *up_count, *up_ban, *del_ban,
	    *up_level, *prune_events, *prune_verdicts, *prune_counts,
	    *prune_levels, *prune_bans, *sel_counts, *sel_levels, *sel_bans,
	    *data_version, *begin, *begin_read, *commit, *rollback,
	    *page_count, *freelist_count, *oldest_event, *oldest_verdict;
	int64_t data_version_seen;
	int64_t control_seen;   /* the last controls row applied */
	int64_t page_size;  /* of the open file */
	int64_t max_pages;  /* max_database_size in pages; 0: no limit */
	struct agg *agg;    /* open addressing, aggcap slots (a power of 2) */
	struct agg **order; /* the nagg used slots, sorted for the insert */
	size_t aggcap, nagg;
	/* The parameters of ins_events, then of ins_event (see BOUND_NULL);
	 * cleared whenever the statements are prepared. */
	const void *bound[(EVENT_GROUP + 1) * EVENT_COLUMNS];
};

#define STMT(f, sql) {offsetof(struct fg_db, f), sql}
static const struct {
	size_t off;
	const char *sql;
} statements[] = {
	STMT(ins_event, EVENT_INSERT EVENT_VALUES),
	STMT(ins_events, EVENT_INSERT EVENT_VALUES64),  /* EVENT_GROUP */
	STMT(ins_verdict,
	     "INSERT INTO verdicts (ts_ms, session_id, queue_id, client, stage,"
	     " rule, key, action, count, lim, window_ms, delay_ms, reply,"
	     " monitor, n) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,"
	     " ?12, ?13, ?14, ?15)"),
	/* The counter columns in enum fg_counter's order. */
	STMT(up_count, COUNT_UPSERT COUNT_VALUES COUNT_CONFLICT),
	STMT(up_counts, COUNT_UPSERT COUNT_VALUES32 COUNT_CONFLICT), /* COUNT_GROUP */
	/* A row made later than this ban (an operator's unban or ban while
	 * this one waited for its commit) wins. */
	STMT(up_ban,
	     "INSERT INTO bans (key, until_ms, created_ms, reason, source)"
	     " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (key) DO UPDATE SET"
	     " until_ms = excluded.until_ms, created_ms = excluded.created_ms,"
	     " reason = excluded.reason, source = excluded.source"
	     " WHERE excluded.created_ms >= bans.created_ms"),
	STMT(del_ban, "DELETE FROM bans WHERE key = ?1"),
	STMT(up_level,
	     "INSERT INTO levels (rule, key, level, last_ms) VALUES (?1, ?2, ?3,"
	     " ?4) ON CONFLICT (rule, key) DO UPDATE SET"
	     " level = excluded.level, last_ms = excluded.last_ms"),
	STMT(prune_events,
	     "DELETE FROM events WHERE id IN (SELECT id FROM events"
	     " WHERE ts_ms < ?1 ORDER BY ts_ms LIMIT ?2)"),
	STMT(prune_verdicts,
	     "DELETE FROM verdicts WHERE id IN (SELECT id FROM verdicts"
	     " WHERE ts_ms < ?1 ORDER BY ts_ms LIMIT ?2)"),
	STMT(prune_counts,
	     "DELETE FROM counts WHERE (sec, key) IN"
	     " (SELECT sec, key FROM counts WHERE sec <= ?1"
	     " ORDER BY sec LIMIT ?2)"),
	STMT(prune_levels, "DELETE FROM levels WHERE last_ms <= ?1"),
	/* An unban's row (until_ms 0) stays a day, for the commit of a
	 * ban it outranks. */
	STMT(prune_bans, "DELETE FROM bans WHERE until_ms <= ?1 AND"
	     " (until_ms <> 0 OR created_ms <= ?2)"),
	STMT(sel_counts,
	     "SELECT key, sec, connect, helo, mail, rcpt, valid, invalid,"
	     " rejected, sample FROM counts WHERE sec > ?1 ORDER BY sec"),
	STMT(sel_levels,
	     "SELECT rule, key, level, last_ms FROM levels WHERE last_ms > ?1"),
	STMT(sel_bans,
	     "SELECT key, until_ms, created_ms, reason, source FROM bans"
	     " WHERE until_ms > ?1"),
	STMT(data_version, "PRAGMA data_version"),
	STMT(page_count, "PRAGMA page_count"),
	STMT(freelist_count, "PRAGMA freelist_count"),
	/* The time before which the ?1 oldest rows lie. */
	STMT(oldest_event,
	     "SELECT ts_ms FROM events ORDER BY ts_ms LIMIT 1 OFFSET ?1"),
	STMT(oldest_verdict,
	     "SELECT ts_ms FROM verdicts ORDER BY ts_ms LIMIT 1 OFFSET ?1"),
	STMT(begin, "BEGIN IMMEDIATE"),
	STMT(begin_read, "BEGIN"),
	STMT(commit, "COMMIT"),
	STMT(rollback, "ROLLBACK"),
};

static sqlite3_stmt **
stmt_at(struct fg_db *d, size_t i)
{
	return (sqlite3_stmt **)(void *)((char *)d + statements[i].off);
}

static enum fg_db_rc
classify(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return FG_DB_OK;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return FG_DB_BUSY;
	default:
		return FG_DB_ERROR;
	}
}

/* Steps a statement that returns no rows, then resets it. */
static int
run(sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static void
bind_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v == NULL)
		sqlite3_bind_null(s, i);
	else
		/* With its length: SQLite would count it byte by byte. */
		sqlite3_bind_text(s, i, v, (int)strlen(v), SQLITE_STATIC);
}

/* bind_text into a parameter of an event insert, skipped when it holds
 * NULL already. */
static void
bind_ev_str(sqlite3_stmt *s, const void **bound, int i, const char *v)
{
	if (v == NULL && bound[i - 1] == BOUND_NULL)
		return;
	bind_text(s, i, v);
	bound[i - 1] = v == NULL ? BOUND_NULL : NULL;
}

/* A name that never changes (or NULL), bound once while it stays. */
static void
bind_ev_name(sqlite3_stmt *s, const void **bound, int i, const char *v)
{
	const void *tag = v == NULL ? BOUND_NULL : (const void *)v;

	if (bound[i - 1] == tag)
		return;
	bind_text(s, i, v);
	bound[i - 1] = tag;
}

_Static_assert(FG_CNT__COUNT == 8, "counts has a column per counter");
_Static_assert(COUNT_COLUMNS == 2 + FG_CNT__COUNT, "counts: sec, key, counters");

static uint32_t
clamp_u32(int64_t v)
{
	return v < 0 ? 0 : v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

/* Memory from the tables: counters, levels, bans still in force. */
static int
rebuild(fg_store *st, int64_t now_ms, char *err, size_t errlen)
{
	struct fg_db *d = st->db;
	int64_t now_s = now_ms / 1000 - (now_ms % 1000 < 0);
	sqlite3_stmt *s;
	int rc, mrc = 0;

	s = d->sel_counts;
	sqlite3_bind_int64(s, 1, now_s - st->horizon_s);
	while (mrc == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *key = (const char *)sqlite3_column_text(s, 0);
		size_t klen = (size_t)sqlite3_column_bytes(s, 0);
		uint32_t sec = clamp_u32(sqlite3_column_int64(s, 1));

		if (key == NULL || klen == 0)
			continue;
		for (int c = 0; c < FG_CNT__COUNT && mrc == 0; c++) {
			uint32_t n = clamp_u32(sqlite3_column_int64(s, 2 + c));

			if (n > 0)
				mrc = fg_store_count_load(st, key, klen,
				                          (enum fg_counter)c,
				                          sec, n);
		}
	}
	sqlite3_reset(s);
	st->load_hint = NULL;
	if (mrc < 0)
		return fg_store_errf(mrc, err, errlen, "%s: rebuild: %s",
		            st->path ? st->path : ":memory:", fg_strerror(mrc));
	if (rc != SQLITE_DONE)
		goto fail;

	s = d->sel_levels;
	sqlite3_bind_int64(s, 1, now_ms - st->opt.horizon_ms);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *rule = (const char *)sqlite3_column_text(s, 0);
		const char *key = (const char *)sqlite3_column_text(s, 1);

		if (rule != NULL && key != NULL)
			fg_store_level_load(st, rule, key,
			                    sqlite3_column_int(s, 2) - 1,
			                    sqlite3_column_int64(s, 3));
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		goto fail;

	s = d->sel_bans;
	sqlite3_bind_int64(s, 1, now_ms);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct fg_ban_row row = {
			.key = (char *)sqlite3_column_text(s, 0),
			.until_ms = sqlite3_column_int64(s, 1),
			.created_ms = sqlite3_column_int64(s, 2),
			.reason = (char *)sqlite3_column_text(s, 3),
			.source = (char *)sqlite3_column_text(s, 4),
		};

		if (row.key != NULL && row.key[0] != '\0' &&
		    strlen(row.key) < FG_KEY_MAX)
			fg_store_ban_load(st, &row);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		goto fail;
	return 0;
fail:
	return fg_store_errf(FG_EIO, err, errlen, "%s: rebuild: %s",
	            st->path ? st->path : ":memory:", sqlite3_errmsg(d->db));
}

/* The first column of one row of a statement without parameters; -1 if
 * it gives none. */
static int64_t
step_int(sqlite3_stmt *s)
{
	int64_t v = -1;

	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return v;
}

/* The connection of d, its statements and its size limit; on failure
 * the caller closes what was opened. */
static int
db_connect(fg_store *st, struct fg_db *d, char *err, size_t errlen)
{
	const char *name = st->path ? st->path : ":memory:";
	int rc;

	if ((rc = fg_store_schema_open(st->path, st->opt.file_mode, &d->db,
	                               err, errlen)) < 0)
		return rc;
	for (size_t i = 0; i < FG_NELEM(statements); i++) {
		if (sqlite3_prepare_v3(d->db, statements[i].sql, -1,
		                       SQLITE_PREPARE_PERSISTENT, stmt_at(d, i),
		                       NULL) != SQLITE_OK)
			return fg_store_errf(FG_EIO, err, errlen, "%s: %s", name,
			                     sqlite3_errmsg(d->db));
	}
	memset(d->bound, 0, sizeof(d->bound));
	d->page_size = 4096;
	d->max_pages = 0;
	if (st->opt.max_database_size > 0) {
		char sql[64];
		sqlite3_stmt *s;

		if (sqlite3_prepare_v2(d->db, "PRAGMA page_size", -1, &s,
		                       NULL) == SQLITE_OK) {
			int64_t v = step_int(s);

			if (v > 0)
				d->page_size = v;
			sqlite3_finalize(s);
		}
		/* SQLite itself refuses to grow the file past the limit
		 * (SQLITE_FULL); pruning keeps it below. */
		d->max_pages = (int64_t)(st->opt.max_database_size /
		                         (uint64_t)d->page_size);
		if (d->max_pages < 16)
			d->max_pages = 16;
		snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %lld",
		         (long long)d->max_pages);
		sqlite3_exec(d->db, sql, NULL, NULL, NULL);
	}
	d->data_version_seen = step_int(d->data_version);
	return 0;
}

/* The newest controls row: those before the start were applied on disk
 * by whoever wrote them, and memory was rebuilt from the disk since. */
static int64_t
controls_max(struct fg_db *d)
{
	sqlite3_stmt *s;
	int64_t v = 0;

	if (sqlite3_prepare_v2(d->db, "SELECT coalesce(max(id), 0) FROM"
	                       " controls", -1, &s, NULL) != SQLITE_OK)
		return 0;
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

/* The allow list from its table, all of it. */
static void
load_allows(fg_store *st, struct fg_db *d)
{
	struct fg_allow_row *rows = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *s;

	if (sqlite3_prepare_v2(d->db, "SELECT key, until_ms, created_ms,"
	                       " reason, source FROM allows", -1, &s,
	                       NULL) != SQLITE_OK)
		return;
	while (sqlite3_step(s) == SQLITE_ROW) {
		const char *key = (const char *)sqlite3_column_text(s, 0);
		const char *reason = (const char *)sqlite3_column_text(s, 3);
		const char *source = (const char *)sqlite3_column_text(s, 4);
		struct fg_allow_row *r;

		if (key == NULL)
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct fg_allow_row *nr = realloc(rows, ncap * sizeof(*nr));

			if (nr == NULL)
				break;
			rows = nr;
			cap = ncap;
		}
		r = &rows[n];
		r->key = strdup(key);
		r->reason = strdup(reason ? reason : "");
		r->source = strdup(source ? source : "");
		if (r->key == NULL || r->reason == NULL || r->source == NULL) {
			free(r->key);
			free(r->reason);
			free(r->source);
			break;
		}
		r->until_ms = sqlite3_column_int64(s, 1);
		r->created_ms = sqlite3_column_int64(s, 2);
		n++;
	}
	sqlite3_finalize(s);
	fg_store_allow_reload(st, rows, n);
	while (n-- > 0) {
		free(rows[n].key);
		free(rows[n].reason);
		free(rows[n].source);
	}
	free(rows);
}

enum fg_db_rc
fg_store_db_allows(fg_store *st, const struct fg_allow_op *ops, size_t n,
                   char *err, size_t errlen)
{
	struct fg_db *d = st->db;
	sqlite3_stmt *set = NULL, *del = NULL;
	int rc;

	if (d == NULL || d->db == NULL || n == 0)
		return FG_DB_OK;
	if ((rc = sqlite3_prepare_v2(d->db, "INSERT INTO allows (key,"
	                             " until_ms, created_ms, reason, source)"
	                             " VALUES (?1, ?2, ?3, ?4, ?5)"
	                             " ON CONFLICT (key) DO UPDATE SET"
	                             " until_ms = excluded.until_ms,"
	                             " created_ms = excluded.created_ms,"
	                             " reason = excluded.reason,"
	                             " source = excluded.source", -1, &set,
	                             NULL)) != SQLITE_OK ||
	    (rc = sqlite3_prepare_v2(d->db, "DELETE FROM allows WHERE key = ?1"
	                             " AND created_ms <= ?2", -1, &del,
	                             NULL)) != SQLITE_OK)
		goto fail;
	if ((rc = run(d->begin)) != SQLITE_OK)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		sqlite3_stmt *s = ops[i].remove ? del : set;

		bind_text(s, 1, ops[i].key);
		if (ops[i].remove) {
			sqlite3_bind_int64(s, 2, ops[i].created_ms);
		} else {
			sqlite3_bind_int64(s, 2, ops[i].until_ms);
			sqlite3_bind_int64(s, 3, ops[i].created_ms);
			bind_text(s, 4, ops[i].reason);
			bind_text(s, 5, ops[i].source);
		}
		if ((rc = run(s)) != SQLITE_OK) {
			run(d->rollback);
			goto fail;
		}
	}
	if ((rc = run(d->commit)) != SQLITE_OK) {
		run(d->rollback);
		goto fail;
	}
	sqlite3_finalize(set);
	sqlite3_finalize(del);
	return FG_DB_OK;
fail:
	snprintf(err, errlen, "allows: %s", sqlite3_errmsg(d->db));
	sqlite3_finalize(set);
	sqlite3_finalize(del);
	return classify(rc);
}

/* Applies the operators' controls written since the last poll: a reset
 * forgets the key's counts and levels in memory. */
static void
apply_controls(fg_store *st, struct fg_db *d)
{
	sqlite3_stmt *s;

	if (sqlite3_prepare_v2(d->db, "SELECT id, op, key FROM controls"
	                       " WHERE id > ?1 ORDER BY id", -1, &s,
	                       NULL) != SQLITE_OK)
		return;
	sqlite3_bind_int64(s, 1, d->control_seen);
	while (sqlite3_step(s) == SQLITE_ROW) {
		const char *op = (const char *)sqlite3_column_text(s, 1);
		const char *key = (const char *)sqlite3_column_text(s, 2);

		d->control_seen = sqlite3_column_int64(s, 0);
		if (op == NULL || key == NULL || strlen(key) >= FG_KEY_MAX)
			continue;
		if (strcmp(op, "reset") == 0) {
			fg_store_reset(st, key);
			fg_log(FG_LOG_INFO, "store: counts and levels of %s reset "
			       "by an operator", key);
		}
	}
	sqlite3_finalize(s);
}

/* Finalizes the statements and closes the connection of d. */
static void
db_disconnect(fg_store *st, struct fg_db *d)
{
	for (size_t i = 0; i < FG_NELEM(statements); i++) {
		sqlite3_finalize(*stmt_at(d, i));
		*stmt_at(d, i) = NULL;
	}
	if (d->db != NULL && sqlite3_close(d->db) != SQLITE_OK)
		fg_log(FG_LOG_ERR, "store: %s: close: %s",
		       st->path ? st->path : ":memory:", sqlite3_errmsg(d->db));
	d->db = NULL;
}

int
fg_store_db_open(fg_store *st, int64_t now_ms, char *err, size_t errlen)
{
	const char *name = st->path ? st->path : ":memory:";
	struct fg_db *d;
	int rc;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		return fg_store_errf(FG_ENOMEM, err, errlen,
		                     "%s: out of memory", name);
	st->db = d;
	if ((rc = db_connect(st, d, err, errlen)) < 0)
		return rc;
	if ((rc = rebuild(st, now_ms, err, errlen)) < 0)
		return rc;
	d->data_version_seen = step_int(d->data_version);
	d->control_seen = controls_max(d);
	load_allows(st, d);
	sqlite3_busy_timeout(d->db, RUN_BUSY_MS);
	return 0;
}

void
fg_store_db_close(fg_store *st)
{
	struct fg_db *d = st->db;

	if (d == NULL)
		return;
	db_disconnect(st, d);
	free(d->agg);
	free(d->order);
	free(d);
	st->db = NULL;
}

/*
 * The path no longer names the open file (deleted, or another file
 * renamed over it: SQLite compares the inode of the path with the open
 * one), or the last attempt to open it failed: open the path again,
 * creating the file if need be.  Counters stay as they are; every ban and
 * level is written again into the new file.
 */
enum fg_db_rc
fg_store_db_check(fg_store *st, char *err, size_t errlen)
{
	struct fg_db *d = st->db;
	int moved = 0;

	if (st->path == NULL)
		return FG_DB_OK;
	if (d->db != NULL &&
	    (sqlite3_file_control(d->db, "main", SQLITE_FCNTL_HAS_MOVED,
	                          &moved) != SQLITE_OK || !moved))
		return FG_DB_OK;
	if (d->db != NULL) {
		/* The WAL beside the path is still the old file's: SQLite
		 * leaves it at close when the file moved, and the new file
		 * would take its pages.  Move them into the old file and
		 * empty it first (a reader in the way: next tick). */
		int rc = sqlite3_wal_checkpoint_v2(d->db, "main",
		                                   SQLITE_CHECKPOINT_TRUNCATE,
		                                   NULL, NULL);

		if (rc != SQLITE_OK) {
			snprintf(err, errlen, "the database file was deleted "
			         "or replaced; emptying its WAL: %s",
			         sqlite3_errmsg(d->db));
			return classify(rc) == FG_DB_BUSY ? FG_DB_BUSY
			                                  : FG_DB_ERROR;
		}
		fg_log(FG_LOG_WARNING, "store: %s: the database file was "
		       "deleted or replaced: opening the path again",
		       st->path);
	}
	db_disconnect(st, d);
	if (db_connect(st, d, err, errlen) < 0) {
		db_disconnect(st, d);
		return FG_DB_ERROR;
	}
	sqlite3_busy_timeout(d->db, RUN_BUSY_MS);
	/* The table's bans are read once ours are written. */
	d->data_version_seen = INT64_MIN;
	fg_store_ban_mark_all(st);
	atomic_fetch_add(&st->reopened, 1);
	fg_log(FG_LOG_INFO, "store: %s: opened again; rows go to this file "
	       "from now on", st->path);
	return FG_DB_OK;
}

/* Fresh, empty arrays of cap slots; the old ones are the caller's. */
static int
agg_alloc(struct fg_db *d, size_t cap)
{
	struct agg *a = calloc(cap, sizeof(*a));
	struct agg **o = calloc(cap / 2, sizeof(*o));

	if (a == NULL || o == NULL) {
		free(a);
		free(o);
		return FG_ENOMEM;
	}
	d->agg = a;
	d->order = o;
	d->aggcap = cap;
	return 0;
}

/* Sizes the aggregation table for about what the last batch needed,
 * and empties it. */
static int
agg_reset(struct fg_db *d)
{
	size_t cap = AGG_MIN;

	while (cap < d->nagg * 4)
		cap *= 2;
	if (d->agg == NULL || cap < d->aggcap / 4) {
		struct agg *a = d->agg;
		struct agg **o = d->order;

		if (agg_alloc(d, cap) < 0)
			return FG_ENOMEM;
		free(a);
		free(o);
	} else {
		memset(d->agg, 0, d->aggcap * sizeof(*d->agg));
	}
	d->nagg = 0;
	return 0;
}

static struct agg *
agg_slot(struct agg *tab, size_t cap, uint64_t h, const char *key,
         size_t klen, uint32_t sec)
{
	size_t mask = cap - 1;

	for (size_t i = (size_t)(h >> 20) & mask;; i = (i + 1) & mask) {
		struct agg *a = &tab[i];

		if (a->key == NULL ||
		    (a->hash == h && a->sec == sec && a->klen == klen &&
		     memcmp(a->key, key, klen) == 0))
			return a;
	}
}

/* Doubles the table when it is half full. */
static int
agg_grow(struct fg_db *d)
{
	struct agg *a = d->agg;
	struct agg **o = d->order;

	if (agg_alloc(d, d->aggcap * 2) < 0)
		return FG_ENOMEM;
	for (size_t i = 0; i < d->nagg; i++) {
		const struct agg *from = o[i];

		d->order[i] = agg_slot(d->agg, d->aggcap, from->hash,
		                       from->key, from->klen, from->sec);
		*d->order[i] = *from;
	}
	free(a);
	free(o);
	return 0;
}

/* Counts ctrs of key, whose fg_store_hash is kh, at sec. */
static int
agg_add(struct fg_db *d, const char *key, uint64_t kh, uint32_t sec,
        const enum fg_counter *ctrs, size_t nctr, uint32_t n)
{
	size_t klen = strlen(key);
	uint64_t h = (kh ^ sec) * UINT64_C(0x9e3779b97f4a7c15);
	struct agg *a;

	if ((d->nagg + 1) * 2 > d->aggcap && agg_grow(d) < 0)
		return FG_ENOMEM;
	a = agg_slot(d->agg, d->aggcap, h, key, klen, sec);
	if (a->key == NULL) {
		a->key = key;
		a->hash = h;
		a->klen = (uint32_t)klen;
		a->sec = sec;
		d->order[d->nagg++] = a;
	}
	for (size_t c = 0; c < nctr; c++)
		a->n[ctrs[c]] += n;
	return 0;
}

/* The order of the counts primary key: (sec, key), as SQLite compares
 * text (memcmp, then length). */
static int
agg_cmp(const void *pa, const void *pb)
{
	const struct agg *a = *(struct agg *const *)pa;
	const struct agg *b = *(struct agg *const *)pb;
	int c;

	if (a->sec != b->sec)
		return a->sec < b->sec ? -1 : 1;
	c = memcmp(a->key, b->key, a->klen < b->klen ? a->klen : b->klen);
	if (c != 0)
		return c;
	return a->klen < b->klen ? -1 : a->klen > b->klen;
}

/* Binds event r to parameters base+1 .. base+EVENT_COLUMNS of s, whose
 * bindings bound[] describes. */
static void
bind_event(sqlite3_stmt *s, const void **bound, int base,
           const struct fg_row *r)
{
	const void *auth = r->u.ev.auth ? BOUND_ONE : BOUND_NULL;

	sqlite3_bind_int64(s, base + 1, r->time_ms);
	bind_ev_name(s, bound, base + 2, fg_event_kind_name(r->u.ev.kind));
	bind_ev_name(s, bound, base + 3, r->u.ev.cls == FG_RCPT_NONE ? NULL
	             : fg_rcpt_class_name(r->u.ev.cls));
	bind_ev_str(s, bound, base + 4, r->client);
	bind_ev_str(s, bound, base + 5, r->u.ev.network);
	bind_ev_str(s, bound, base + 6, r->u.ev.helo);
	bind_ev_str(s, bound, base + 7, r->u.ev.sender);
	bind_ev_str(s, bound, base + 8, r->u.ev.rcpt);
	bind_ev_str(s, bound, base + 9, r->queue_id);
	sqlite3_bind_int64(s, base + 10, (sqlite3_int64)r->session_id);
	bind_ev_str(s, bound, base + 11, r->u.ev.status);
	bind_ev_str(s, bound, base + 12, r->u.ev.host);
	bind_ev_str(s, bound, base + 13, r->u.ev.daemon);
	if (bound[base + 13] != auth) {
		if (r->u.ev.auth)
			sqlite3_bind_int(s, base + 14, 1);
		else
			sqlite3_bind_null(s, base + 14);
		bound[base + 13] = auth;
	}
	sqlite3_bind_int64(s, base + 15, r->n);
}

/* Adds event r (n of them) to the batch's aggregates, under each of its
 * keys. */
static int
count_event(struct fg_db *d, const struct fg_row *r)
{
	enum fg_counter ctrs[FG_EVENT_MAX_COUNTERS];
	size_t nctr;
	uint32_t sec = (uint32_t)(r->time_ms / 1000);

	if ((nctr = fg_event_counters(r->u.ev.kind, r->u.ev.cls,
	                              r->u.ev.sampled, ctrs)) == 0)
		return SQLITE_OK;
	for (size_t k = 0; k < r->u.ev.nkeys; k++)
		if (agg_add(d, r->u.ev.keys[k], r->u.ev.hashes[k], sec, ctrs,
		            nctr, r->n) < 0)
			return SQLITE_NOMEM;
	return SQLITE_OK;
}

/* Inserts n events (1 or EVENT_GROUP) with one statement: a step per
 * group rather than per row is most of what an insert costs. */
static int
insert_events(struct fg_db *d, const struct fg_row *const *rows, size_t n)
{
	sqlite3_stmt *s = n == EVENT_GROUP ? d->ins_events : d->ins_event;
	const void **bound = n == EVENT_GROUP
	                     ? d->bound
	                     : d->bound + (size_t)EVENT_GROUP * EVENT_COLUMNS;

	for (size_t i = 0; i < n; i++)
		bind_event(s, bound, (int)i * EVENT_COLUMNS, rows[i]);
	return run(s);
}

/* Adds n aggregates (1 or COUNT_GROUP) to the counts table with one
 * statement. */
static int
upsert_counts(struct fg_db *d, struct agg *const *aggs, size_t n)
{
	sqlite3_stmt *s = n == COUNT_GROUP ? d->up_counts : d->up_count;

	for (size_t i = 0; i < n; i++) {
		const struct agg *a = aggs[i];
		int base = (int)i * COUNT_COLUMNS;

		sqlite3_bind_int64(s, base + 1, a->sec);
		sqlite3_bind_text(s, base + 2, a->key, (int)a->klen,
		                  SQLITE_STATIC);
		for (int c = 0; c < FG_CNT__COUNT; c++)
			sqlite3_bind_int64(s, base + 3 + c, a->n[c]);
	}
	return run(s);
}

static int
insert_verdict(struct fg_db *d, const struct fg_row *r)
{
	sqlite3_stmt *s = d->ins_verdict;

	sqlite3_bind_int64(s, 1, r->time_ms);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)r->session_id);
	bind_text(s, 3, r->queue_id);
	bind_text(s, 4, r->client);
	bind_text(s, 5, r->u.vd.stage);
	bind_text(s, 6, r->u.vd.rule);
	bind_text(s, 7, r->u.vd.key);
	bind_text(s, 8, r->u.vd.action);
	sqlite3_bind_int64(s, 9, r->u.vd.count);
	sqlite3_bind_int64(s, 10, r->u.vd.limit);
	sqlite3_bind_int64(s, 11, r->u.vd.window_ms);
	sqlite3_bind_int64(s, 12, r->u.vd.delay_ms);
	bind_text(s, 13, r->u.vd.reply);
	sqlite3_bind_int(s, 14, r->u.vd.monitor);
	sqlite3_bind_int64(s, 15, r->n);
	return run(s);
}

enum fg_db_rc
fg_store_db_commit(fg_store *st, struct fg_row *const *rows, size_t n,
                   bool counts_only, struct fg_ban_op *bans, size_t nbans,
                   const struct fg_level_op *lvls, size_t nlvls, char *err,
                   size_t errlen)
{
	struct fg_db *d = st->db;
	const struct fg_row *group[EVENT_GROUP];
	size_t ngroup = 0;
	int rc;

	if (d->db == NULL) {
		snprintf(err, errlen, "the database is not open");
		return FG_DB_ERROR;
	}
	if (agg_reset(d) < 0) {
		snprintf(err, errlen, "out of memory");
		return FG_DB_ERROR;
	}
	if ((rc = run(d->begin)) != SQLITE_OK)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		if (rows[i]->type != FG_ROW_EVENT) {
			rc = counts_only ? SQLITE_OK : insert_verdict(d, rows[i]);
		} else if ((rc = count_event(d, rows[i])) == SQLITE_OK &&
		           !counts_only) {
			group[ngroup++] = rows[i];
			if (ngroup == EVENT_GROUP) {
				rc = insert_events(d, group, ngroup);
				ngroup = 0;
			}
		}
		if (rc != SQLITE_OK)
			goto fail;
	}
	for (size_t i = 0; i < ngroup; i++)
		if ((rc = insert_events(d, &group[i], 1)) != SQLITE_OK)
			goto fail;
	/* In the table's order: neighbouring rows share B-tree pages. */
	qsort(d->order, d->nagg, sizeof(*d->order), agg_cmp);
	for (size_t i = 0; i < d->nagg;) {
		size_t k = d->nagg - i >= COUNT_GROUP ? COUNT_GROUP : 1;

		if ((rc = upsert_counts(d, d->order + i, k)) != SQLITE_OK)
			goto fail;
		i += k;
	}
	for (size_t i = 0; i < nbans; i++) {
		sqlite3_stmt *s = bans[i].lift ? d->del_ban : d->up_ban;

		bind_text(s, 1, bans[i].key);
		if (!bans[i].lift) {
			sqlite3_bind_int64(s, 2, bans[i].until_ms);
			sqlite3_bind_int64(s, 3, bans[i].created_ms);
			bind_text(s, 4, bans[i].reason);
			bind_text(s, 5, bans[i].source);
		}
		if ((rc = run(s)) != SQLITE_OK)
			goto fail;
		/* Outranked: read the table's bans again at the next poll. */
		if (!bans[i].lift && sqlite3_changes(d->db) == 0) {
			bans[i].superseded = true;
			d->data_version_seen = INT64_MIN;
		}
	}
	for (size_t i = 0; i < nlvls; i++) {
		sqlite3_stmt *s = d->up_level;

		bind_text(s, 1, lvls[i].rule);
		bind_text(s, 2, lvls[i].key);
		/* The table numbers levels as people read them: from 1. */
		sqlite3_bind_int(s, 3, lvls[i].level + 1);
		sqlite3_bind_int64(s, 4, lvls[i].last_ms);
		if ((rc = run(s)) != SQLITE_OK)
			goto fail;
	}
	if ((rc = run(d->commit)) != SQLITE_OK)
		goto fail;
	return FG_DB_OK;
fail:
	snprintf(err, errlen, "%s", rc == SQLITE_NOMEM ? "out of memory"
	                            : sqlite3_errmsg(d->db));
	if (!sqlite3_get_autocommit(d->db))
		run(d->rollback);
	if ((rc & 0xff) == SQLITE_FULL)
		return FG_DB_FULL;
	return classify(rc) == FG_DB_BUSY ? FG_DB_BUSY : FG_DB_ERROR;
}

/* Runs a bounded DELETE while it fills its batch and time is left; each
 * run is its own short transaction, so the writer's commits never wait
 * long behind it. */
static int
prune_batches(struct fg_db *d, sqlite3_stmt *s, int64_t cutoff,
              int64_t deadline)
{
	do {
		int rc;

		sqlite3_bind_int64(s, 1, cutoff);
		sqlite3_bind_int64(s, 2, FG_STORE_PRUNE_ROWS);
		if ((rc = run(s)) != SQLITE_OK)
			return rc;
		if (sqlite3_changes(d->db) < FG_STORE_PRUNE_ROWS)
			break;
	} while (fg_store_mono_ms() < deadline);
	return SQLITE_OK;
}

/* Pages the rows take (the file's pages not on its free list); -1 if
 * unknown.  Also kept for the statistics. */
static int64_t
used_pages(fg_store *st, struct fg_db *d)
{
	int64_t pages = step_int(d->page_count);
	int64_t freel = step_int(d->freelist_count);

	if (pages < 0 || freel < 0)
		return -1;
	atomic_store(&st->db_bytes, (uint64_t)(pages * d->page_size));
	return pages - freel;
}

/* The time before which lie the n oldest rows of the table s reads;
 * INT64_MAX if it has no more than n. */
static int64_t
oldest_cut(sqlite3_stmt *s, int64_t n)
{
	int64_t v;

	sqlite3_bind_int64(s, 1, n);
	v = step_int(s);
	return v < 0 ? INT64_MAX : v;
}

/*
 * Keeps the rows under max_database_size: past nine tenths of it (or
 * whatever the size, when forced after SQLITE_FULL), deletes the oldest
 * events and verdicts, FG_STORE_PRUNE_ROWS of the older table at a time
 * and the other's rows as old, until they take eight tenths (forced: a
 * tenth less than they did) or the time is up.  Counts, bans and levels
 * are left alone: decisions are rebuilt from them.  The file does not
 * shrink; its free pages take the next rows.  Returns an SQLite code;
 * *deleted gets the rows deleted.
 */
static int
shrink(fg_store *st, struct fg_db *d, bool force, int64_t deadline,
       uint64_t *deleted)
{
	int64_t used = used_pages(st, d), target;
	int rc;

	*deleted = 0;
	if (used < 0 || (d->max_pages == 0 && !force))
		return SQLITE_OK;
	if (force)
		target = used - used / 10;
	else if (used >= d->max_pages - d->max_pages / 10)
		target = d->max_pages - d->max_pages / 5;
	else
		return SQLITE_OK;
	while (used > target && fg_store_mono_ms() < deadline) {
		int64_t ce = oldest_cut(d->oldest_event, FG_STORE_PRUNE_ROWS);
		int64_t cv = oldest_cut(d->oldest_verdict, FG_STORE_PRUNE_ROWS);
		int64_t cut = ce < cv ? ce : cv;
		uint64_t before = *deleted;
		sqlite3_stmt *tabs[] = {d->prune_events, d->prune_verdicts};

		if (cut < INT64_MAX)
			cut++;      /* rows at the cut go too */
		for (size_t i = 0; i < FG_NELEM(tabs); i++) {
			do {
				sqlite3_bind_int64(tabs[i], 1, cut);
				sqlite3_bind_int64(tabs[i], 2,
				                   FG_STORE_PRUNE_ROWS);
				if ((rc = run(tabs[i])) != SQLITE_OK)
					return rc;
				*deleted += (uint64_t)sqlite3_changes(d->db);
			} while (sqlite3_changes(d->db) == FG_STORE_PRUNE_ROWS);
		}
		if (*deleted == before)
			break;      /* nothing left to delete */
		used = used_pages(st, d);
	}
	atomic_fetch_add(&st->size_pruned, *deleted);
	return SQLITE_OK;
}

static void
note_shrink(fg_store *st, bool force, uint64_t deleted)
{
	uint64_t suppressed = 0;

	if (deleted == 0 ||
	    !fg_ratelimit(&st->rl_size, fg_store_mono_ms(), 60000, &suppressed))
		return;
	fg_log(FG_LOG_WARNING, "store: %s: %s: deleted the %llu oldest events "
	       "and verdicts (%llu in all); counts, bans and levels are kept",
	       st->path ? st->path : ":memory:",
	       force ? "the disk or the file is full"
	             : "max_database_size reached",
	       (unsigned long long)deleted,
	       (unsigned long long)atomic_load(&st->size_pruned));
}

enum fg_db_rc
fg_store_db_make_room(fg_store *st, char *err, size_t errlen)
{
	struct fg_db *d = st->db;
	uint64_t deleted = 0;
	int rc;

	if (d->db == NULL)
		return FG_DB_OK;
	rc = shrink(st, d, true, fg_store_mono_ms() + 2 * (int64_t)PRUNE_BUDGET_MS,
	            &deleted);
	note_shrink(st, true, deleted);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(d->db));
		return classify(rc) == FG_DB_BUSY ? FG_DB_BUSY : FG_DB_ERROR;
	}
	return deleted > 0 ? FG_DB_OK : FG_DB_FULL;
}

enum fg_db_rc
fg_store_db_prune(fg_store *st, int64_t now_ms, char *err, size_t errlen)
{
	struct fg_db *d = st->db;
	int64_t now_s = now_ms / 1000;
	int64_t deadline = fg_store_mono_ms() + PRUNE_BUDGET_MS;
	uint64_t deleted = 0;
	int rc;

	/* Not open (deleted, failing to open again): the commit says so. */
	if (d->db == NULL)
		return FG_DB_OK;
	/* No time yet (expire not called): only the size is kept. */
	if (now_ms <= 0)
		goto size;
	if ((rc = prune_batches(d, d->prune_counts, now_s - st->horizon_s,
	                        deadline)))
		goto fail;
	if (st->opt.retention_ms > 0) {
		if ((rc = prune_batches(d, d->prune_events,
		                        now_ms - st->opt.retention_ms,
		                        deadline)) ||
		    (rc = prune_batches(d, d->prune_verdicts,
		                        now_ms - st->opt.retention_ms, deadline)))
			goto fail;
	}
	sqlite3_bind_int64(d->prune_levels, 1, now_ms - st->opt.horizon_ms);
	if ((rc = run(d->prune_levels)) != SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(d->prune_bans, 1, now_ms);
	sqlite3_bind_int64(d->prune_bans, 2, now_ms - UNBAN_KEEP_MS);
	if ((rc = run(d->prune_bans)) != SQLITE_OK)
		goto fail;
size:
	rc = shrink(st, d, false, deadline + PRUNE_BUDGET_MS, &deleted);
	note_shrink(st, false, deleted);
	if (rc != SQLITE_OK)
		goto fail;
	return FG_DB_OK;
fail:
	snprintf(err, errlen, "%s", sqlite3_errmsg(d->db));
	return classify(rc);
}

enum fg_db_rc
fg_store_db_poll(fg_store *st, char *err, size_t errlen)
{
	struct fg_db *d = st->db;
	struct fg_ban_row *rows = NULL;
	size_t n = 0, cap = 0;
	int64_t version = 0;
	int rc;

	if (d->db == NULL)
		return FG_DB_OK;
	/* Every poll, whatever data_version says: a look-up by key. */
	apply_controls(st, d);
	if ((rc = sqlite3_step(d->data_version)) == SQLITE_ROW)
		version = sqlite3_column_int64(d->data_version, 0);
	sqlite3_reset(d->data_version);
	if (rc != SQLITE_ROW)
		goto fail;
	if (version == d->data_version_seen)
		return FG_DB_OK;

	/* Read the rows and the version from one snapshot. */
	if ((rc = run(d->begin_read)) != SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(d->sel_bans, 1, INT64_MIN);
	while ((rc = sqlite3_step(d->sel_bans)) == SQLITE_ROW) {
		sqlite3_stmt *s = d->sel_bans;
		const char *key = (const char *)sqlite3_column_text(s, 0);
		const char *reason = (const char *)sqlite3_column_text(s, 3);
		const char *source = (const char *)sqlite3_column_text(s, 4);

		if (key == NULL || key[0] == '\0' || strlen(key) >= FG_KEY_MAX)
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct fg_ban_row *nr = realloc(rows, ncap * sizeof(*nr));

			if (nr == NULL)
				break;
			rows = nr;
			cap = ncap;
		}
		rows[n].key = strdup(key);
		rows[n].reason = strdup(reason ? reason : "");
		rows[n].source = strdup(source ? source : "");
		rows[n].until_ms = sqlite3_column_int64(s, 1);
		rows[n].created_ms = sqlite3_column_int64(s, 2);
		n++;
		if (!rows[n - 1].key || !rows[n - 1].reason ||
		    !rows[n - 1].source)
			break;
	}
	sqlite3_reset(d->sel_bans);
	if (rc != SQLITE_DONE) {
		if (rc == SQLITE_ROW)
			snprintf(err, errlen, "out of memory");
		else
			snprintf(err, errlen, "%s", sqlite3_errmsg(d->db));
		run(d->rollback);
		fg_store_ban_rows_free(rows, n);
		return classify(rc) == FG_DB_BUSY ? FG_DB_BUSY : FG_DB_ERROR;
	}
	if ((rc = sqlite3_step(d->data_version)) == SQLITE_ROW)
		version = sqlite3_column_int64(d->data_version, 0);
	sqlite3_reset(d->data_version);
	run(d->commit);
	if (rc != SQLITE_ROW) {
		fg_store_ban_rows_free(rows, n);
		goto fail;
	}
	d->data_version_seen = version;
	fg_store_ban_reload(st, rows, n);
	fg_store_ban_rows_free(rows, n);
	load_allows(st, d);
	return FG_DB_OK;
fail:
	snprintf(err, errlen, "%s", sqlite3_errmsg(d->db));
	return classify(rc) == FG_DB_BUSY ? FG_DB_BUSY : FG_DB_ERROR;
}

/* ---- the status row ---------------------------------------------------- */

enum fg_db_rc
fg_store_db_status(fg_store *st, const struct fg_status_row *r,
                   const struct fg_vtotal *vt, size_t nvt, char *err,
                   size_t errlen)
{
	struct fg_db *d = st->db;
	sqlite3_stmt *s = NULL, *v = NULL;
	int rc, i = 1;

	if (d == NULL)
		return FG_DB_OK;
	rc = sqlite3_prepare_v2(d->db,
	    "INSERT OR REPLACE INTO status (id, updated_ms, pid, version,"
	    " started_ms, config, config_ms, queued, queue_size, recorded,"
	    " written, dropped, write_errors, commits, commit_ms_sum,"
	    " last_commit_ms, healthy, last_error, tarpit, tarpit_max, keys,"
	    " connects, helos, mails, rcpts, closes, memory, memory_limit,"
	    " keys_refused, alloc_failures, db_size, max_database_size,"
	    " size_pruned, reopened, shared_state, shared_node, shared_server,"
	    " shared_reason, shared_peers, shared_sync_ms, shared_skew_ms)"
	    " VALUES (1, ?1, ?2, ?3, ?4,"
	    " ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,"
	    " ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31,"
	    " ?32, ?33, ?34, ?35, ?36, ?37, ?38, ?39, ?40)", -1, &s, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	rc = sqlite3_prepare_v2(d->db,
	    "INSERT OR REPLACE INTO verdict_totals (rule, action, monitor, n)"
	    " VALUES (?1, ?2, ?3, ?4)", -1, &v, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(s, i++, r->updated_ms);
	sqlite3_bind_int64(s, i++, r->d.pid);
	bind_text(s, i++, r->d.version);
	sqlite3_bind_int64(s, i++, r->d.started_ms);
	bind_text(s, i++, r->d.config);
	sqlite3_bind_int64(s, i++, r->d.config_ms);
	sqlite3_bind_int64(s, i++, (sqlite3_int64)r->queued);
	sqlite3_bind_int64(s, i++, (sqlite3_int64)r->queue_size);
	sqlite3_bind_int64(s, i++, (sqlite3_int64)r->recorded);
	sqlite3_bind_int64(s, i++, (sqlite3_int64)r->written);
	sqlite3_bind_int64(s, i++, (sqlite3_int64)r->dropped);
	sqlite3_bind_int64(s, i++, (sqlite3_int64)r->write_errors);
	sqlite3_bind_int64(s, i++, (sqlite3_int64)r->commits);
	sqlite3_bind_int64(s, i++, (sqlite3_int64)r->commit_ms_sum);
	sqlite3_bind_int64(s, i++, r->last_commit_ms);
	sqlite3_bind_int(s, i++, r->healthy);
	bind_text(s, i++, r->last_error[0] != '\0' ? r->last_error : NULL);
	sqlite3_bind_int64(s, i++, r->d.tarpit);
	sqlite3_bind_int64(s, i++, r->d.tarpit_max);
	sqlite3_bind_int64(s, i++, (sqlite3_int64)r->keys);
	for (int k = FG_EV_CONNECT; k <= FG_EV_CLOSE; k++)
		sqlite3_bind_int64(s, i++, (sqlite3_int64)r->by_kind[k]);
	sqlite3_bind_int64(s, i++, (sqlite3_int64)r->memory);
	sqlite3_bind_int64(s, i++, (sqlite3_int64)r->memory_limit);
	sqlite3_bind_int64(s, i++, (sqlite3_int64)r->keys_refused);
	sqlite3_bind_int64(s, i++, (sqlite3_int64)r->alloc_failures);
	sqlite3_bind_int64(s, i++, (sqlite3_int64)r->db_size);
	sqlite3_bind_int64(s, i++, (sqlite3_int64)r->max_database_size);
	sqlite3_bind_int64(s, i++, (sqlite3_int64)r->size_pruned);
	sqlite3_bind_int64(s, i++, (sqlite3_int64)r->reopened);
	bind_text(s, i++, r->d.shared_state[0] != '\0' ? r->d.shared_state : NULL);
	bind_text(s, i++, r->d.shared_node);
	bind_text(s, i++, r->d.shared_server);
	bind_text(s, i++, r->d.shared_reason);
	sqlite3_bind_int64(s, i++, r->d.shared_peers);
	sqlite3_bind_int64(s, i++, r->d.shared_sync_ms);
	sqlite3_bind_int64(s, i++, r->d.shared_skew_ms);
	if ((rc = run(d->begin)) != SQLITE_OK)
		goto fail;
	if ((rc = run(s)) != SQLITE_OK)
		goto rollback;
	for (size_t k = 0; k < nvt; k++) {
		bind_text(v, 1, vt[k].rule);
		bind_text(v, 2, vt[k].action);
		sqlite3_bind_int(v, 3, vt[k].monitor);
		sqlite3_bind_int64(v, 4, (sqlite3_int64)vt[k].n);
		if ((rc = run(v)) != SQLITE_OK)
			goto rollback;
	}
	if ((rc = run(d->commit)) != SQLITE_OK)
		goto rollback;
	sqlite3_finalize(s);
	sqlite3_finalize(v);
	return FG_DB_OK;
rollback:
	run(d->rollback);
fail:
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "status: %s", sqlite3_errmsg(d->db));
	sqlite3_finalize(s);
	sqlite3_finalize(v);
	return rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? FG_DB_BUSY
	                                                : FG_DB_ERROR;
}
