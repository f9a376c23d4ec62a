/*
 * store.h - the event store: a time-domain database of what SMTP clients
 * did, and the sliding-window questions the policy asks of it.
 *
 * Model.  Callers record events (a connection, a HELO, a MAIL, a recipient
 * with its class).  Each event is filed under a caller-chosen list of keys
 * (see keys.h: the client address, its networks, the HELO name, ...), and
 * bumps in-memory per-second counters for each key at once, so
 * fg_store_count() answers "how many invalid recipients did this key try in
 * the last hour?" immediately, from memory, in microseconds.  The raw event
 * is also queued for a single writer thread that commits to SQLite in
 * batches (WAL, synchronous=NORMAL) at least every flush interval, together
 * with the per-second aggregate rows the counters are rebuilt from at the
 * next start.  No function here except fg_store_open(), fg_store_flush()
 * and fg_store_close() waits on disk.
 *
 * Window semantics: a count over window W at time now covers the events
 * whose second lies in (now - W, now], at one-second resolution:
 * floor(t/1000) > floor(now/1000) - W/1000.  Events stamped later than now
 * (clock stepped back) are counted as if at now; an event older than a
 * key's newest second is filed into that newest second.
 *
 * Bans: a key (address or network, usually) is refused until a time.  Bans
 * live in memory and in the "bans" table; rows another process writes there
 * (floodgatectl) are picked up by the writer thread within a second.
 *
 * Disk: the database is a log, never needed for a decision.  With
 * max_database_size the writer deletes the oldest events and verdicts
 * when the rows take nine tenths of it, and SQLite refuses to grow the
 * file past it; on SQLITE_FULL (that limit or a full disk) the oldest
 * events and verdicts make room and the batch is tried again.  A file
 * that cannot be written is retried every flush interval while rows wait
 * in the queue (then are dropped, counted); fg_store_healthy() says so.
 * A file deleted or replaced under the store is noticed at the next
 * commit and the path opened again (created if need be), with every ban
 * and level written into it; counters stay in memory as they were.
 *
 * Ownership: the store copies every string it is handed.  fg_store is
 * thread-safe: any number of threads may record, count and ban at once.
 * Errors: FG_E* codes (fg.h); detail text in the caller's buffer.
 */
#ifndef FG_STORE_H
#define FG_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "net.h"

typedef struct fg_store fg_store;

/*
 * A key with its place among the counters worked out once
 * (fg_store_key_init), for a caller that asks about the same keys many
 * times, as a session does about its client's: fg_store_count_key() and
 * fg_event.keys_made take it instead of the text.  Valid for the store
 * that made it, while text lasts; opaque but for text.
 */
struct fg_store_key {
	const char *text;
	size_t len;
	uint64_t hash;
};

/* How a floodgate database is recognised: PRAGMA application_id, and the
 * PRAGMA user_version this code writes (older ones are migrated, newer
 * ones refused). */
#define FG_STORE_APPLICATION_ID 0x666c6764
#define FG_STORE_SCHEMA_VERSION 7

#define FG_STORE_MAX_KEYS 16

/*
 * Folding (see fg_store_record): which session, and at what time, the
 * rows of a session refused at its connect stand under.  Zeroed by the
 * caller; the store fills it at the connect row.
 */
struct fg_fold {
	uint64_t session_id;       /* 0: not yet (the connect row sets it) */
	int64_t time_ms;           /* that session's connect */
};

/* What fg_store_record does with an event: both halves, or one. */
enum fg_record_part {
	FG_RECORD_ALL = 0,         /* count it and keep its row */
	FG_RECORD_COUNT,           /* count it; its row comes later */
	FG_RECORD_ROW,             /* the row of an event already counted */
};

struct fg_event {
	int64_t time_ms;
	enum fg_event_kind kind;
	enum fg_rcpt_class rcpt_class; /* FG_RCPT_NONE unless kind is RCPT */
	bool rcpt_sampled;             /* in the ratio guard's sample
	                                  (FG_CNT_RCPT_SAMPLE) */
	const fg_addr *client;         /* NULL: no client address known */
	const char *client_text;       /* client as fg_addr_format() gives it,
	                                  if the caller has it; else made here */
	const char *network;           /* the client's primary network key */
	const char *helo;              /* any of these may be NULL */
	const char *sender;
	const char *rcpt;
	const char *queue_id;
	const char *status;            /* MTA status, e.g. "5.1.1" */
	const char *host;              /* connect: the client's host name */
	const char *daemon;            /* connect: the MTA's daemon name */
	bool authenticated;            /* mail: the client did SMTP AUTH */
	uint64_t session_id;
	const char *const *keys;       /* keys the event is counted under */
	size_t nkeys;                  /* at most FG_STORE_MAX_KEYS */
	bool keys_distinct;            /* no key twice: skip the check */
	/* NULL, or keys[i] as fg_store_key_init() made them (with
	 * keys_distinct), for a caller that records many events under the
	 * same keys: then they are not hashed again. */
	const struct fg_store_key *keys_made;
	enum fg_record_part part;
	struct fg_fold *fold;          /* NULL: a row of its own (folding) */
};

/* One decision worth remembering: everything but continue. */
struct fg_verdict_rec {
	int64_t time_ms;
	uint64_t session_id;
	const char *queue_id;
	const fg_addr *client;
	const char *client_text; /* as in struct fg_event */
	const char *stage;   /* "connect", "helo", "mail", "rcpt" */
	const char *rule;    /* rule name */
	const char *key;     /* key that went over the limit */
	const char *action;  /* "delay", "tempfail", "reject", ... */
	int64_t count;
	int64_t limit;
	int64_t window_ms;
	int64_t delay_ms;
	const char *reply;   /* "451 4.7.1 ..." or NULL */
	bool monitor;        /* computed but not enforced */
	const struct fg_fold *fold; /* NULL: a row of its own (folding) */
};


/* What an option left 0 stands for (the config's defaults too). */
#define FG_STORE_DEFAULT_FLUSH_MS 1000
#define FG_STORE_DEFAULT_QUEUE 65536
#define FG_STORE_DEFAULT_MODE 0640

struct fg_store_options {
	const char *path;          /* NULL or ":memory:": private in-memory DB */
	int64_t horizon_ms;        /* longest window ever asked (>= 1 s) */
	int64_t retention_ms;      /* raw events older than this are pruned */
	int64_t flush_interval_ms; /* commit at least this often (default 1 s) */
	size_t queue_size;         /* rows the writer queue holds (default 65536) */
	unsigned file_mode;        /* mode of a new database file (default 0640) */
	/* Counters, concurrency, bans and levels in memory, and nothing
	 * else: no database, no writer thread; rows are not kept (recording
	 * only counts) and nothing is ever dropped.  For replaying history
	 * and for tests of the session; path and the writer settings are
	 * ignored. */
	bool counters_only;
	uint64_t memory_limit;     /* bytes of counters; 0: no limit (see
	                              fg_store_record) */
	uint64_t max_database_size; /* bytes of database file; 0: no limit
	                              (see "Disk" above) */
};

struct fg_store_stats {
	uint64_t recorded;      /* events recorded since open */
	uint64_t written;       /* rows committed */
	uint64_t dropped;       /* rows lost to a full queue */
	uint64_t write_errors;  /* failed commits (retried) */
	uint64_t keys;          /* keys held in memory */
	uint64_t memory;        /* bytes the counters take (keys, cells,
	                           series, hash tables) */
	uint64_t memory_limit;  /* as opened; 0: none */
	uint64_t keys_refused;  /* key updates not made: a new key held
	                           back by the memory limit */
	uint64_t alloc_failures; /* key updates lost to malloc failing */
	bool limited;           /* the memory limit holds new keys back now */
	uint64_t db_size;       /* bytes of the database file, as last seen */
	uint64_t max_database_size; /* as opened; 0: none */
	uint64_t size_pruned;   /* oldest events and verdicts deleted to keep
	                           under it (or after the disk filled) */
	uint64_t reopened;      /* times the file was deleted or replaced and
	                           opened again */
	size_t queued;          /* rows waiting now */
	bool healthy;           /* last commit attempt succeeded */
	char last_error[256];   /* text of the last write error, "" if none */
};

/*
 * The status row: what `floodgatectl status` and `metrics` read.  The
 * writer thread writes it about once a second, with what the store knows
 * (queue, drops, commits, totals by kind and by verdict) and what the
 * daemon tells through fn (its pid, version, configuration, tarpit).  A
 * database that cannot be written leaves the row to age: that age is the
 * health signal.  fn runs on the writer thread.
 */
struct fg_store_status_info {
	int64_t pid;
	char version[32];
	int64_t started_ms;
	char config[256];          /* the configuration file */
	int64_t config_ms;         /* when it was (re)loaded */
	int64_t tarpit, tarpit_max;
	/* counts shared with other hosts (share.h); shared_state "" when
	 * there is no share */
	char shared_state[16];       /* "off", "ok", "degraded" */
	char shared_node[72], shared_server[256], shared_reason[192];
	int64_t shared_peers;        /* other hosts heard from lately */
	int64_t shared_sync_ms;      /* last good round trip (wall), 0 none */
	int64_t shared_skew_ms;      /* the server's clock minus ours */
};
typedef void fg_store_status_fn(void *arg, struct fg_store_status_info *out);
void fg_store_set_status_fn(fg_store *st, fg_store_status_fn *fn, void *arg);

/*
 * Hooks for what the store learns that others may want to hear: every
 * event's keys and counters once counted, and every ban set or lifted in
 * memory (by the daemon, or read from the table that floodgatectl
 * writes).  The share (share.h) passes them to the other hosts.  record
 * runs on the recording thread and must not block; ban on whichever
 * thread made the change, outside the store's locks.  Set once, before
 * recording starts; NULL members are skipped.
 */
struct fg_store_hooks {
	void *arg;
	void (*record)(void *arg, const char *key, const enum fg_counter *ctrs,
	               size_t n, int64_t time_ms);
	void (*ban)(void *arg, const char *key, bool lift, int64_t until_ms,
	            int64_t created_ms, const char *reason, const char *source);
	/* An allow added or changed (disallow false) or removed in the
	 * table by another process (floodgatectl); on the writer thread.
	 * Not for those fg_store_allow_set and _remove made, nor expiry. */
	void (*allow)(void *arg, const char *key, bool disallow,
	              int64_t until_ms, int64_t created_ms, const char *reason,
	              const char *source);
};
void fg_store_set_hooks(fg_store *st, const struct fg_store_hooks *h);

/*
 * Process-wide SQLite settings for a daemon: no memory statistics (they
 * take a global lock on every SQLite allocation).  Call once, first
 * thing, before any thread uses SQLite; later calls do nothing.
 */
void fg_store_init_process(void);

/*
 * Opens (creating or migrating) the database, rebuilds counters from the
 * aggregate table for the last horizon_ms before now_ms and the bans still
 * in force, and starts the writer thread.  Refuses a database that is not
 * floodgate's or has a newer schema (FG_ESCHEMA), one it cannot create or
 * write (FG_EIO), and files another user could have written (FG_EIO): a
 * directory, database, -wal or -shm owned by neither the effective user
 * nor root, or writable by group or others beyond file_mode, or a file
 * that is a symbolic link, not a regular file, or has a second name.
 * err gets a one-line reason.
 */
int fg_store_open(const struct fg_store_options *opt, int64_t now_ms,
                  fg_store **out, char *err, size_t errlen);
/* Flushes the queue (waiting as long as needed), stops the writer, closes. */
void fg_store_close(fg_store *st);
/* Waits up to timeout_ms for the queue to be committed; 0 if it was,
 * FG_EBUSY if not. */
int fg_store_flush(fg_store *st, int timeout_ms);

/*
 * Counts the event under each of its keys and queues it.  Never blocks on
 * disk; a full queue drops the row (counted in stats) but the counters are
 * still bumped.  Returns 0, FG_EINVAL, FG_EFULL (row dropped), or
 * FG_ENOMEM (a key could not be counted: malloc failed; the other keys
 * were, the row was queued, and the failure is counted and logged).
 *
 * Memory limit: once the counters take memory_limit bytes, a key not yet
 * held is created only if it is a network or the global key; past an
 * eighth more, no key is created.  The event still counts under the keys
 * that exist (usually its networks), and the key not created is counted
 * in stats.keys_refused and logged at most once a minute.  Keys already
 * held keep counting exactly.  Concurrent-session counts are not limited.
 */
int fg_store_record(fg_store *st, const struct fg_event *ev);
/*
 * Folding.  What a client refused at its connect sends (a banned
 * network's flood, a connection flood) is rows an attacker multiplies at
 * will; the counters must see every event, the log need not.  A row
 * recorded with fold goes into an identical row still waiting in the
 * queue (not yet taken by the writer), whose n goes up: a row with n > 1
 * stands for n events or verdicts, all at its time, under its session.
 * Identical: the same second, kind or stage, client, texts and keys
 * (and for a verdict the same rule, key, action, reply and limits; its
 * count is the first's), and the same fold session.  A connect row with
 * fold->session_id 0 may go into any waiting connect row like it, of
 * whichever session: fold then gets that row's session and time (its
 * own if none was waiting), and the session's later rows, events and
 * verdicts, carry that session id and fold only with rows that carry it
 * too.  A verdict of the connect is recorded at fold->time_ms, so that
 * it stands where the connect row stands.  The writer takes at least one
 * batch a flush interval: a key of identical rows writes about one row
 * per second.
 */
int fg_store_record_verdict(fg_store *st, const struct fg_verdict_rec *v);

/* Events of counter c under key in the window (now - window, now]; >= 0,
 * or FG_EINVAL.  A window longer than the horizon is clamped to it. */
int64_t fg_store_count(fg_store *st, const char *key, enum fg_counter c,
                       int64_t window_ms, int64_t now_ms);
/* The same for a key made by fg_store_key_init. */
int64_t fg_store_count_key(fg_store *st, const struct fg_store_key *k,
                           enum fg_counter c, int64_t window_ms,
                           int64_t now_ms);
/* Makes *out for key (which must outlive it); 0, or FG_EINVAL for a key
 * fg_store_count would refuse. */
int fg_store_key_init(fg_store *st, const char *key, struct fg_store_key *out);

/* Events of counter c under key in the second of from_ms and every later
 * one; >= 0, or FG_EINVAL.  (What this host pushes to the other hosts,
 * slot by slot: share.h.) */
int64_t fg_store_count_since(fg_store *st, const char *key, enum fg_counter c,
                             int64_t from_ms);

/* The events of every counter under key, slot by slot: out[i][c] gets
 * those of counter c in the slot of slot_ms (a whole number of seconds)
 * starting at from_ms + i * slot_ms, for i < nslots, in one look-up (so
 * that a key's slots agree with each other).  0, or FG_EINVAL (out is
 * then untouched).  out is added to: zero it first. */
int fg_store_count_slots(fg_store *st, const char *key, int64_t from_ms,
                         int64_t slot_ms, size_t nslots,
                         int64_t (*out)[FG_CNT__COUNT]);

/* Concurrent sessions per key (memory only: sessions do not outlive the
 * process).  acquire returns the count including this one. */
int64_t fg_store_conn_acquire(fg_store *st, const char *key);
void fg_store_conn_release(fg_store *st, const char *key);
int64_t fg_store_conn_count(fg_store *st, const char *key);

/* Escalation level of a rule for a key, persisted.  get is tri-state. */
int fg_store_level_get(fg_store *st, const char *rule, const char *key,
                       int *level, int64_t *last_ms);
int fg_store_level_set(fg_store *st, const char *rule, const char *key,
                       int level, int64_t last_ms);

/* Bans.  set replaces an existing ban of the key.  get is tri-state and
 * ignores bans whose until_ms <= now_ms.  lift returns 1 if a ban was
 * lifted, 0 if none was in force. */
int fg_store_ban_set(fg_store *st, const char *key, int64_t until_ms,
                     const char *reason, const char *source, int64_t now_ms);
int fg_store_ban_get(fg_store *st, const char *key, int64_t now_ms,
                     struct fg_ban *out);
int fg_store_ban_lift(fg_store *st, const char *key);
/* used[len] for len 0..32 (FG_AF_INET) or 0..128 (FG_AF_INET6): whether
 * a network ban of that prefix length exists.  Lock-free. */
void fg_store_ban_lengths(fg_store *st, int family, bool *used);
/* Whether any ban (or a lifted one not yet written) is held; lock-free. */
bool fg_store_any_bans(fg_store *st);

/*
 * The operators' allow list (floodgatectl allow): keys exempt from every
 * rule and ban until a time, loaded from the allows table at open and
 * within a second of another process changing it.  allowed is 1 or 0;
 * the lengths are those of the allowed networks, as for bans.
 */
int fg_store_allowed(fg_store *st, const char *key, int64_t now_ms);
bool fg_store_any_allows(fg_store *st);
void fg_store_allow_lengths(fg_store *st, int family, bool *used);
/* Tri-state: 1 and *until_ms (may be NULL) when key is allowed at now. */
int fg_store_allow_get(fg_store *st, const char *key, int64_t now_ms,
                       int64_t *until_ms);
/*
 * An allow made on another host (share.h): honoured at once, and written
 * to the allows table by the writer thread (replacing the key's row).
 * The hooks do not hear of it.  0, FG_EINVAL or FG_ENOMEM.
 */
int fg_store_allow_set(fg_store *st, const char *key, int64_t until_ms,
                       int64_t created_ms, const char *reason,
                       const char *source);
/* A disallow made on another host: the allow of key, if it was made at
 * before_ms or earlier, goes from memory at once and from the table by
 * the writer.  1 removed, 0 none, FG_EINVAL or FG_ENOMEM. */
int fg_store_allow_remove(fg_store *st, const char *key, int64_t before_ms);

/*
 * An operator's reset of key (floodgatectl reset and unban): its window
 * counts and its escalation levels of every rule are forgotten in memory,
 * so that the next event of the key starts from nothing.  Bans are not
 * touched; the table rows are the caller's.  The daemon applies resets
 * that another process writes to the controls table within a second.
 */
void fg_store_reset(fg_store *st, const char *key);

/* Drops in-memory counters and levels that fell out of the horizon and
 * expired bans; the writer prunes raw events past retention in small
 * batches on its own.  Cheap; called by the daemon every few seconds. */
void fg_store_expire(fg_store *st, int64_t now_ms);

void fg_store_get_stats(fg_store *st, struct fg_store_stats *out);

/* Whether the last commit succeeded (stats.healthy), without the locks
 * fg_store_get_stats takes: for a check on every message. */
bool fg_store_healthy(fg_store *st);

#endif
