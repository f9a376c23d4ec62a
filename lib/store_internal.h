/*
 * store_internal.h - what the lib/store*.c files share.  Nothing outside
 * them may include it: the rest of the tree sees only store.h.
 *
 * The store is split by concern:
 *
 *   store.c         public verbs: open/close, record, count, expire, stats
 *   store_count.c   the sharded in-memory counters and session counts
 *   store_ban.c     the in-memory bans and escalation levels, with the
 *                   dirty marks the writer persists
 *   store_schema.c  the database file: mode, identity, migrations
 *   store_db.c      SQLite statements: rebuild, one batch, pruning
 *   store_writer.c  the bounded queue and the writer thread
 *
 * Calls go one way, down this list: store.c, store_writer.c,
 * store_status.c, store_db.c, store_schema.c, store_fold.c,
 * store_allow.c, store_ban.c, store_count.c.  A file calls only files
 * below it; the helpers every file needs (the clock, the last error)
 * are inline here, below them all.
 *
 * Locking order (never take a lock to the left while holding one to the
 * right): qmu, ban/level map locks, shard locks.  No path holds two of
 * them at once today; keep it that way.
 */
#ifndef FG_STORE_INTERNAL_H
#define FG_STORE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "log.h"
#include "net.h"
#include "store.h"

struct sqlite3;
struct sqlite3_stmt;

/* PRAGMA application_id of a floodgate database: "flgd". */

#define FG_STORE_SHARDS 64          /* power of two */
#define FG_STORE_BATCH_ROWS 16384   /* rows per writer transaction */
#define FG_STORE_PRUNE_ROWS 2000    /* rows per pruning statement */
#define FG_STORE_POLL_MS 1000       /* bans reload, pruning */

/*
 * The generic chained hash used by the small maps (bans, levels).  A node
 * embeds an fg_hnode first; key points into the node's own storage.
 */
struct fg_hnode {
	struct fg_hnode *next;
	uint64_t hash;
	const char *key;
	size_t klen;
};

struct fg_hmap {
	struct fg_hnode **tab;
	size_t mask;
	/* Changed under the map's lock; atomic so that a reader may skip
	 * the lock and the hash when the map is empty (no bans: the usual
	 * case, asked several times a command). */
	_Atomic size_t n;
};

/* A row on its way to the database: one allocation, strings inside. */
enum fg_row_type { FG_ROW_EVENT = 1, FG_ROW_VERDICT = 2 };

struct fg_row {
	enum fg_row_type type;
	int64_t time_ms;
	uint64_t session_id;
	uint32_t n;             /* events (verdicts) the row stands for */
	/* Folding (store.h): rows that may take identical ones in, with the
	 * hash of what makes them identical; fold_out, during
	 * fg_store_enqueue only, gets the session a connect row went into. */
	bool foldable;
	uint32_t nulls;         /* which strings are NULL, a bit each */
	uint64_t fold_hash;
	struct fg_fold *fold_out;
	size_t len;             /* bytes of buf used */
	const char *client;     /* text, formatted before the queue */
	const char *queue_id;
	union {
		struct {
			enum fg_event_kind kind;
			enum fg_rcpt_class cls;
			const char *network, *helo, *sender, *rcpt, *status;
			const char *host, *daemon;
			bool auth;
			bool sampled;   /* in the ratio guard's sample */
			size_t nkeys;
			const char *keys[FG_STORE_MAX_KEYS];
			const uint64_t *hashes; /* fg_store_hash of each key */
		} ev;
		struct {
			const char *stage, *rule, *key, *action, *reply;
			int64_t count, limit, window_ms, delay_ms;
			bool monitor;
		} vd;
	} u;
	char buf[];
};

/* A ban or level change copied out for the writer. */
struct fg_ban_op {
	char *key;
	bool lift;
	int64_t until_ms, created_ms;
	char *reason, *source;
	uint64_t seq;
	bool superseded;  /* the table had a later row: not written */
};

struct fg_level_op {
	char *rule, *key;
	int level;
	int64_t last_ms;
	uint64_t seq;
};

/* A ban as read back from the table (reload). */
struct fg_ban_row {
	char *key;
	int64_t until_ms, created_ms;
	char *reason, *source;
};

/*
 * How many network keys of a map (bans, allows) there are at each prefix
 * length, per family, so that a client's networks are looked up at the
 * lengths in use and at no other.  Kept by the map's writers, read
 * without a lock.
 */
struct fg_prefix_lens {
	_Atomic int v4[33];
	_Atomic int v6[129];
};

/* Counts key (if a network) delta times; clears all; which are used. */
void fg_prefix_lens_note(struct fg_prefix_lens *pl, const char *key,
                         int delta);
void fg_prefix_lens_clear(struct fg_prefix_lens *pl);
void fg_prefix_lens_get(const struct fg_prefix_lens *pl, int family,
                        bool *used);

struct fg_shard;
struct fg_db;

struct fg_store {
	struct fg_store_options opt;
	char *path;                 /* NULL: in memory */
	int64_t horizon_s;          /* horizon_ms / 1000 */
	uint64_t seed[2];           /* hash key, random per store */

	/* store_count.c */
	struct fg_shard *shards;
	_Atomic uint64_t nkeys;
	_Atomic uint64_t mem_bytes; /* what the counters take, charged as
	                               malloc would hand it out */
	_Atomic uint64_t keys_refused, alloc_failures;
	void *load_hint;            /* rebuild: the entry loaded last */

	/* store_ban.c */
	pthread_mutex_t ban_mu;
	struct fg_hmap bans;
	struct fg_prefix_lens ban_lens;   /* network bans per length */

	/* store_allow.c: the operators' allow list */
	pthread_mutex_t allow_mu;
	struct fg_hmap allows;
	struct fg_prefix_lens allow_lens;
	struct fg_allow_op *allow_ops;   /* received, not yet written */
	size_t nallow_ops, allow_ops_cap;
	size_t ban_dirty;
	pthread_mutex_t lvl_mu;
	struct fg_hmap levels;
	size_t lvl_dirty;
	_Atomic uint64_t mod_gen;   /* bumped by every ban/level change and
	                               allow received */

	/* store_writer.c: the queue, under qmu */
	pthread_mutex_t qmu;
	pthread_cond_t qcv;         /* wakes the writer */
	pthread_cond_t fcv;         /* wakes flush waiters */
	struct fg_row **q;
	size_t qcap, qhead, qcount;
	uint64_t q_pushed, q_done;
	uint64_t persisted_gen;
	bool stop, kick, flush_req, thread_running;
	pthread_t thread;
	struct fg_row **batch;      /* the writer's copy of the queue head */
	/* store_fold.c, under qmu: the foldable rows the writer has not
	 * taken yet, open addressing, FG_STORE_FOLD_SLOTS (NULL until the
	 * first). */
	struct fg_row **fold_tab;
	size_t fold_used;

	/* store_db.c: used by open, then by the writer thread only */
	struct fg_db *db;
	_Atomic int64_t prune_now_ms;  /* latest now given to expire */

	/* statistics */
	_Atomic uint64_t recorded, written, dropped, write_errors;
	_Atomic uint64_t by_kind[FG_EV_CLOSE + 1];  /* events recorded */
	_Atomic uint64_t commits, commit_ms_sum;
	_Atomic int64_t last_commit_ms;             /* wall clock */

	/* store_status.c: totals of verdicts, and the daemon's part */
	pthread_mutex_t vt_mu;
	struct fg_vtotal *vtotals;
	size_t nvtotals, vtcap;
	fg_store_status_fn *status_fn;
	void *status_arg;
	_Atomic uint64_t db_bytes, size_pruned, reopened;
	_Atomic bool healthy;
	pthread_mutex_t err_mu;
	char last_error[256];

	/* store.c: the caller's hooks (store.h), or NULL */
	_Atomic(const struct fg_store_hooks *) hooks;

	struct fg_ratelimit rl_full, rl_busy, rl_error, rl_prune, rl_reload,
	    rl_limit, rl_nomem, rl_size, rl_dbfull;
};

/* The monotonic clock in milliseconds: deadlines, ticks, rate limits. */
static inline int64_t
fg_store_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Keeps text as the last write error (stats.last_error). */
static inline void
fg_store_set_error(fg_store *st, const char *text)
{
	pthread_mutex_lock(&st->err_mu);
	snprintf(st->last_error, sizeof(st->last_error), "%s", text);
	pthread_mutex_unlock(&st->err_mu);
}

/* Tells the ban hook, if any (fg_store_set_hooks), of a ban set or
 * lifted. */
static inline void
fg_store_ban_hook(fg_store *st, const char *key, bool lift, int64_t until_ms,
                  int64_t created_ms, const char *reason, const char *source)
{
	const struct fg_store_hooks *h =
	    atomic_load_explicit(&st->hooks, memory_order_acquire);

	if (h != NULL && h->ban != NULL)
		h->ban(h->arg, key, lift, until_ms, created_ms, reason, source);
}

/* store_ban.c: every level of key, of any rule, from memory (the table's
 * rows are the caller's); how many went. */
size_t fg_store_level_forget(fg_store *st, const char *key);

/* store_allow.c */
struct fg_allow_row {
	char *key;
	int64_t until_ms, created_ms;
	char *reason, *source;
};
/* An allow received from another host, for the writer to put in the
 * table; remove: delete the key's row made at created_ms or before. */
struct fg_allow_op {
	char *key, *reason, *source;
	int64_t until_ms, created_ms;
	bool remove;
};
void fg_store_allow_init(fg_store *st);
void fg_store_allow_free(fg_store *st);
/* Replaces the list with rows (the whole allows table) and the received
 * allows not yet written; tells the allow hook what changed. */
void fg_store_allow_reload(fg_store *st, const struct fg_allow_row *rows,
                           size_t n);
/* The writer's: takes the received ops waiting, and gives them back
 * (done, committed false) when they could not be written. */
void fg_store_allow_collect(fg_store *st, struct fg_allow_op **out,
                            size_t *n);
void fg_store_allow_done(fg_store *st, struct fg_allow_op *ops, size_t n,
                         bool committed);

/* store_status.c */
struct fg_vtotal {
	char rule[64], action[16];
	bool monitor;
	uint64_t n;
};
void fg_store_status_init(fg_store *st);
void fg_store_status_free(fg_store *st);
void fg_store_status_verdict(fg_store *st, const char *rule,
                             const char *action, bool monitor);
/* Writes the status row and the verdict totals (writer thread). */
void fg_store_status_write(fg_store *st);

/* store_count.c */
uint64_t fg_store_hash(const fg_store *st, const char *s, size_t len);
int fg_store_count_init(fg_store *st);
void fg_store_count_free(fg_store *st);
/* Bumps counter ctrs[0..n) of key (whose fg_store_hash is h) by one at
 * second sec, under the newest-second rule.  0, 1 (a new key held back
 * by the memory limit), or FG_ENOMEM. */
int fg_store_count_bump(fg_store *st, const char *key, size_t klen,
                        uint64_t h, const enum fg_counter *ctrs, size_t n,
                        uint32_t sec);
/* Adds n at exactly sec (rebuild: rows arrive in ascending sec per key
 * and counter, grouped by key).  Only while no other thread runs.  A key
 * the memory limit holds back is skipped (0). */
int fg_store_count_load(fg_store *st, const char *key, size_t klen,
                        enum fg_counter c, uint32_t sec, uint32_t n);
/* Events of c under key (whose fg_store_hash is h) in seconds > cutoff. */
int64_t fg_store_count_get(fg_store *st, const char *key, size_t klen,
                           uint64_t h, enum fg_counter c, int64_t cutoff);
/* Adds the events of every counter under key in the nslots slots of
 * slot_s seconds from first_sec on into out[slot][counter], under one
 * hold of the key's shard lock. */
void fg_store_count_slots_get(fg_store *st, const char *key, size_t klen,
                              uint64_t h, int64_t first_sec, int64_t slot_s,
                              size_t nslots, int64_t (*out)[FG_CNT__COUNT]);
int64_t fg_store_count_conn(fg_store *st, const char *key, size_t klen,
                            int delta);
void fg_store_count_expire(fg_store *st, int64_t cutoff);
/* Drops every count of key (not its open sessions); 1 if it had an
 * entry. */
int fg_store_count_forget(fg_store *st, const char *key, size_t klen);

/* store_ban.c */
void fg_hmap_init(struct fg_hmap *m);
int fg_hmap_reserve(struct fg_hmap *m);
struct fg_hnode *fg_hmap_find(const struct fg_hmap *m, uint64_t hash,
                              const char *key, size_t klen);
void fg_hmap_insert(struct fg_hmap *m, struct fg_hnode *n);
void fg_hmap_remove(struct fg_hmap *m, struct fg_hnode *n);

int fg_store_ban_init(fg_store *st);
void fg_store_ban_free(fg_store *st);
/* Rebuild: insert without a dirty mark. */
int fg_store_ban_load(fg_store *st, const struct fg_ban_row *row);
int fg_store_level_load(fg_store *st, const char *rule, const char *key,
                        int level, int64_t last_ms);
void fg_store_ban_expire(fg_store *st, int64_t now_ms);
void fg_store_level_expire(fg_store *st, int64_t now_ms);
/* The writer's side: copy the dirty entries out (clearing the marks),
 * then report the outcome of the commit. */
int fg_store_ban_collect(fg_store *st, struct fg_ban_op **out, size_t *nout);
void fg_store_ban_done(fg_store *st, struct fg_ban_op *ops, size_t n,
                       bool committed);
int fg_store_level_collect(fg_store *st, struct fg_level_op **out,
                           size_t *nout);
void fg_store_level_done(fg_store *st, struct fg_level_op *ops, size_t n,
                         bool committed);
/* Marks every ban and level to be written again (a new file). */
void fg_store_ban_mark_all(fg_store *st);
/* Replaces the clean bans with the table's rows; dirty ones win. */
void fg_store_ban_reload(fg_store *st, struct fg_ban_row *rows, size_t n);
void fg_store_ban_rows_free(struct fg_ban_row *rows, size_t n);

/* store_schema.c */
/* Opens (creating, recognising, migrating) the database; *db is set
 * whenever a handle was opened, even on failure, for the caller to
 * close.  path NULL: a private in-memory database. */
int fg_store_schema_open(const char *path, unsigned mode,
                         struct sqlite3 **out, char *err, size_t errlen);
int fg_store_errf(int code, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* store_db.c */
/* FG_DB_FULL: SQLITE_FULL (the disk, or max_database_size) */
enum fg_db_rc { FG_DB_OK = 0, FG_DB_BUSY = 1, FG_DB_ERROR = 2, FG_DB_FULL = 3 };

int fg_store_db_open(fg_store *st, int64_t now_ms, char *err, size_t errlen);
void fg_store_db_close(fg_store *st);
/* One transaction: the rows (with counts_only, just their counts), their
 * counts, the ban and level changes; marks the bans a later row of the
 * table outranked (superseded). */
enum fg_db_rc fg_store_db_commit(fg_store *st, struct fg_row *const *rows,
                                 size_t n, bool counts_only,
                                 struct fg_ban_op *bans,
                                 size_t nbans, const struct fg_level_op *lvls,
                                 size_t nlvls, char *err, size_t errlen);
/* Opens the path again if the file was deleted or replaced, or if the
 * last attempt failed. */
enum fg_db_rc fg_store_db_check(fg_store *st, char *err, size_t errlen);
/* After SQLITE_FULL: deletes the oldest events and verdicts; FG_DB_OK if
 * some went, FG_DB_FULL if there were none. */
enum fg_db_rc fg_store_db_make_room(fg_store *st, char *err, size_t errlen);
/* Deletes past-retention rows, at most a few small batches, and the
 * oldest events and verdicts near max_database_size. */
enum fg_db_rc fg_store_db_prune(fg_store *st, int64_t now_ms, char *err,
                                size_t errlen);
/* Reloads the bans if another connection changed the database. */
enum fg_db_rc fg_store_db_poll(fg_store *st, char *err, size_t errlen);
/* Writes allows received from other hosts, in one transaction. */
enum fg_db_rc fg_store_db_allows(fg_store *st, const struct fg_allow_op *ops,
                                 size_t n, char *err, size_t errlen);
/* The status row and verdict totals in one transaction. */
struct fg_status_row {
	int64_t updated_ms;
	struct fg_store_status_info d;   /* the daemon's part */
	uint64_t queued, queue_size, recorded, written, dropped, write_errors;
	uint64_t commits, commit_ms_sum, keys;
	uint64_t memory, memory_limit, keys_refused, alloc_failures;
	uint64_t db_size, max_database_size, size_pruned, reopened;
	int64_t last_commit_ms;
	bool healthy;
	char last_error[256];
	uint64_t by_kind[FG_EV_CLOSE + 1];
};
enum fg_db_rc fg_store_db_status(fg_store *st, const struct fg_status_row *r,
                                 const struct fg_vtotal *vt, size_t nvt,
                                 char *err, size_t errlen);

/* store_fold.c: folding identical rows in the queue (store.h).  All but
 * hash and free under qmu. */
#define FG_STORE_FOLD_SLOTS ((size_t)4096)
void fg_store_fold_hash(fg_store *st, struct fg_row *row);
/* true: row went into a waiting row (the caller frees it). */
bool fg_store_fold_into(fg_store *st, const struct fg_row *row);
/* row was queued: it may take later ones in. */
void fg_store_fold_note(fg_store *st, struct fg_row *row);
/* The writer took the queue's rows, or they went: none may change. */
void fg_store_fold_reset(fg_store *st);
void fg_store_fold_free(fg_store *st);

/* store_writer.c */
int fg_store_writer_start(fg_store *st, char *err, size_t errlen);
void fg_store_writer_stop(fg_store *st);
/* 0 queued, FG_EFULL dropped (the row is freed either way on failure). */
int fg_store_enqueue(fg_store *st, struct fg_row *row);
void fg_store_row_free(struct fg_row *row);

#endif
