/*
 * query.h - the operator's questions to a floodgate database, and the few
 * changes floodgatectl(8) makes to it, as domain verbs.
 *
 * A query handle is a second SQLite connection beside the daemon's: a WAL
 * reader that neither waits for the daemon nor holds it up, or, opened
 * for writing, a connection whose short write transactions touch the bans
 * table (which the running daemon re-reads within a second) and, for
 * prune and vacuum, the raw history (events, verdicts) it never reads
 * back.  Nothing here creates a database, changes its schema or journal
 * mode, or writes to one it has not recognised: fg_query_open() refuses a
 * file that is not floodgate's (PRAGMA application_id) or whose schema is
 * newer than these queries know, with FG_ESCHEMA and a one-line reason.
 *
 * Every statement is prepared with bound parameters; no SQL is built from
 * data.  Time is a parameter: callers pass now_ms (nothing here reads the
 * clock), and the windows are those of store.h: "since T" means events
 * with T < ts_ms <= now_ms; a count over window W at now covers the
 * seconds floor(now/1000) - W/1000 < sec <= floor(now/1000).
 *
 * Keys are the strings of keys.h.  Text read from the database (HELO
 * names, addresses, reasons) is returned as stored: clients chose much of
 * it, so callers sanitise it (fg_sanitize) before showing it.
 *
 * Ownership: arrays a verb returns are the caller's, freed with
 * fg_query_free() (fg_query_stats_free() for struct fg_stats).  Strings in
 * the structs handed to an iteration callback live until it returns.
 * Thread-safety: a handle is used by one thread at a time; any number of
 * handles may be open on one database.
 * Errors: 0 or FG_E* (fg.h); look-ups are tri-state (1 found, 0 not,
 * < 0 error).  The text of the last error is fg_query_error()'s.
 */
#ifndef FG_QUERY_H
#define FG_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keys.h"
#include "store.h"

/* The newest schema (PRAGMA user_version) these queries are written for. */
#define FG_QUERY_SCHEMA_VERSION FG_STORE_SCHEMA_VERSION

typedef struct fg_query fg_query;

enum fg_query_mode {
	FG_QUERY_READ = 0,   /* read-only connection */
	FG_QUERY_WRITE = 1,  /* may change bans, prune and vacuum */
};

/*
 * Opens an existing floodgate database.  FG_ENOENT if the file does not
 * exist, FG_ESCHEMA if it is not a SQLite database, not floodgate's, or
 * newer than FG_QUERY_SCHEMA_VERSION, FG_EIO for anything else.  err gets
 * a one-line reason naming the file.
 */
int fg_query_open(const char *path, enum fg_query_mode mode, fg_query **out,
                  char *err, size_t errlen);
void fg_query_close(fg_query *q);
/* The text of the last error of q into buf; returns buf. */
char *fg_query_error(const fg_query *q, char *buf, size_t size);
/* Releases an array returned by a verb below (NULL is fine). */
void fg_query_free(void *rows);

/*
 * One snapshot for several verbs: between begin and end every read sees
 * the database as it was at the first of them.  For reading only: do not
 * call the verbs that write between the two.
 */
int fg_query_begin(fg_query *q);
void fg_query_end(fg_query *q);

/* ---- the file ------------------------------------------------------ */

struct fg_query_info {
	int64_t application_id;
	int64_t schema_version;
	char journal_mode[16];
	int64_t page_size, page_count, freelist_count;
	int64_t events, verdicts, bans, counts, levels;   /* rows */
	int64_t oldest_ms, newest_ms;   /* events; 0 when there are none */
};

int fg_query_info(fg_query *q, struct fg_query_info *out);

/*
 * PRAGMA integrity_check: 1 if the file is sound, 0 if not (fn gets each
 * problem line, at most max of them), < 0 on error.
 */
typedef void fg_query_line_fn(void *arg, const char *line);
int fg_query_check(fg_query *q, size_t max, fg_query_line_fn *fn, void *arg);

/* Deletes events and verdicts older than before_ms, in small
 * transactions so the daemon's commits never wait long; reports how many
 * of each went.  FG_QUERY_WRITE. */
int fg_query_prune(fg_query *q, int64_t before_ms, int64_t *events,
                   int64_t *verdicts);
/* VACUUM; sizes in bytes before and after.  FG_QUERY_WRITE. */
int fg_query_vacuum(fg_query *q, int64_t *before, int64_t *after);

/* ---- top offenders ------------------------------------------------- */

enum fg_query_by {
	FG_BY_ADDRESS,   /* client address */
	FG_BY_NETWORK,   /* the network recorded with each event */
	FG_BY_HELO,      /* helo:name */
	FG_BY_DOMAIN,    /* rcpt-domain:name (recipient events only) */
};

enum fg_query_kind {
	FG_KIND_INVALID,  /* unknown-user recipients */
	FG_KIND_CONNECT,  /* connections */
	FG_KIND_RCPT,     /* recipients of any class */
};

/* Names for options and output: "address" ..., "invalid" ...; parse
 * returns 0 or FG_EINVAL. */
const char *fg_query_by_name(enum fg_query_by by);
int fg_query_by_parse(const char *s, enum fg_query_by *out);
const char *fg_query_kind_name(enum fg_query_kind k);
int fg_query_kind_parse(const char *s, enum fg_query_kind *out);

struct fg_offender {
	char key[FG_KEY_MAX];   /* the group, as a key */
	int64_t hits;           /* events of the kind asked for, > 0 */
	int64_t invalid;        /* unknown-user recipients */
	int64_t rcpts;          /* recipients of any class */
	int64_t connects;
	double invalid_ratio;   /* invalid / rcpts; 0 without recipients */
	int64_t first_ms, last_ms;
	bool banned;            /* a ban of key itself is in force */
	struct fg_ban ban;      /* valid if banned */
};

/* The groups with the most events of kind since since_ms, most first
 * (ties: most invalid, then key), at most limit (0: 1000). */
int fg_query_top(fg_query *q, enum fg_query_by by, enum fg_query_kind kind,
                 int64_t since_ms, int64_t now_ms, size_t limit,
                 struct fg_offender **out, size_t *n);

/* ---- counts, levels, names ----------------------------------------- */

/* Events of counter c under key in the window, from the per-second
 * aggregates the daemon commits: >= 0, or < 0 on error. */
int64_t fg_query_count(fg_query *q, const char *key, enum fg_counter c,
                       int64_t window_ms, int64_t now_ms);
/* The stored escalation level of rule for key (no decay applied). */
int fg_query_level_get(fg_query *q, const char *rule, const char *key,
                       int *level, int64_t *last_ms);

enum fg_query_name {
	FG_NAME_HELO,           /* helo:name keys */
	FG_NAME_RCPT_DOMAIN,    /* rcpt-domain:name keys */
	FG_NAME_SENDER_DOMAIN,  /* sender-domain:name keys */
};
/* The distinct keys of that kind a client address used since since_ms,
 * most used first, at most limit; fn gets each with its event count. */
typedef void fg_query_key_fn(void *arg, const char *key, int64_t n);
int fg_query_client_keys(fg_query *q, const char *client,
                         enum fg_query_name which, int64_t since_ms,
                         int64_t now_ms, size_t limit, fg_query_key_fn *fn,
                         void *arg);

/*
 * Resets key: its window counts and escalation levels go from the
 * database, and a controls row tells the running daemon to forget them
 * in memory too (within a second).  Bans are not touched.  0 or < 0.
 */
int fg_query_reset(fg_query *q, const char *key, int64_t now_ms);

/* ---- the allow list (store.h) ---------------------------------------- */

struct fg_allow_entry {
	char key[FG_KEY_MAX];
	int64_t until_ms, created_ms;
	char reason[256];
	char source[64];   /* "floodgatectl", "peer:<node>", "" */
};

/* Allows key until until_ms (replacing an allow of it), made by source;
 * 0 or < 0. */
int fg_query_allow_set(fg_query *q, const char *key, int64_t until_ms,
                       const char *reason, const char *source,
                       int64_t now_ms);
/* 1 when an allow of key was removed, 0 when there was none, or < 0. */
int fg_query_allow_lift(fg_query *q, const char *key);
/* The allows in force, by key; free *out with fg_query_free(). */
int fg_query_allows(fg_query *q, int64_t now_ms, struct fg_allow_entry **out,
                    size_t *n);

/* ---- the running daemon's status row (store.h) ----------------------- */

struct fg_query_status {
	int64_t updated_ms, pid, started_ms, config_ms;
	char version[32], config[256], last_error[256];
	int64_t queued, queue_size, recorded, written, dropped, write_errors;
	int64_t commits, commit_ms_sum, last_commit_ms, tarpit, tarpit_max;
	int64_t keys, connects, helos, mails, rcpts, closes;
	int64_t memory, memory_limit, keys_refused, alloc_failures;
	int64_t db_size, max_database_size, size_pruned, reopened;
	bool healthy;
	/* sharing between hosts: state "off" without a share */
	char shared_state[16], shared_node[72], shared_server[256];
	char shared_reason[192];
	int64_t shared_peers, shared_sync_ms, shared_skew_ms;
};

/* Tri-state: 1 and *out filled, 0 when the daemon never wrote one. */
int fg_query_status(fg_query *q, struct fg_query_status *out);

/* The daemon's verdicts since it started, by rule, action and mode. */
typedef int fg_query_total_fn(void *arg, const char *rule, const char *action,
                              bool monitor, int64_t n);
int fg_query_verdict_totals(fg_query *q, fg_query_total_fn *fn, void *arg);

/* ---- bans ------------------------------------------------------------ */

struct fg_ban_entry {
	char key[FG_KEY_MAX];
	struct fg_ban ban;
};

/* The bans in force at now_ms, longest-lasting first. */
int fg_query_bans(fg_query *q, int64_t now_ms, struct fg_ban_entry **out,
                  size_t *n);
/* Tri-state; ignores a ban that ran out. */
int fg_query_ban_get(fg_query *q, const char *key, int64_t now_ms,
                     struct fg_ban *out);
/* Sets or replaces the ban of key (a canonical key: see fg_key_parse;
 * anything else is FG_EINVAL).  reason and source are cut to fit struct
 * fg_ban.  FG_QUERY_WRITE. */
int fg_query_ban_set(fg_query *q, const char *key, int64_t until_ms,
                     const char *reason, const char *source, int64_t now_ms);
/* Deletes the ban of key: 1 if one was in force, 0 if not.
 * FG_QUERY_WRITE. */
int fg_query_ban_lift(fg_query *q, const char *key, int64_t now_ms);

/* ---- statistics -------------------------------------------------------- */

struct fg_stat_row {
	char name[64];     /* an action or a rule name */
	int64_t n;         /* enforced verdicts */
	int64_t monitor;   /* monitor-only verdicts */
};

struct fg_stat_hour {
	int64_t hour_ms;   /* start of the hour (UTC) */
	int64_t invalid;   /* unknown-user recipients */
	int64_t refused;   /* enforced refusals (see fg_query_stats) */
};

struct fg_stats {
	int64_t since_ms, now_ms;
	int64_t events;                  /* all kinds */
	int64_t counts[FG_CNT__COUNT];   /* events by what they count as */
	int64_t sessions, clients, networks;   /* distinct */
	int64_t verdicts, refused, delayed, monitor;
	struct fg_stat_row *actions;     /* by action, most first */
	size_t nactions;
	struct fg_stat_row *rules;       /* by rule ("ban": existing bans) */
	size_t nrules;
	struct fg_stat_hour *hours;      /* every hour since..now, in order */
	size_t nhours;
};

/*
 * Events and verdicts since since_ms.  A refusal is an enforced verdict
 * that gave the client an error reply: tempfail, reject, disconnect, or a
 * delay followed by one of those; delayed counts enforced delays.  The
 * timeline is capped at FG_STATS_MAX_HOURS (the most recent hours).
 */
#define FG_STATS_MAX_HOURS INT64_C(9600) /* 400 days */
int fg_query_stats(fg_query *q, int64_t since_ms, int64_t now_ms,
                   struct fg_stats *out);
void fg_query_stats_free(struct fg_stats *s);

/* ---- history, for replay and why -------------------------------------- */

struct fg_stored_event {
	int64_t id;
	int64_t time_ms;
	enum fg_event_kind kind;
	enum fg_rcpt_class rcpt_class;
	uint64_t session_id;
	const char *client;     /* any of these NULL when the column is */
	const char *network;
	const char *helo;
	const char *sender;
	const char *rcpt;
	const char *queue_id;
	const char *status;
	const char *host;       /* connect: the client's host name */
	const char *daemon;     /* connect: the MTA's daemon name */
	bool authenticated;     /* mail: the client did SMTP AUTH */
	bool session_ends;      /* the last event of its session (<= until) */
	int64_t n;              /* events the row stands for (store.h,
	                           "Folding"): n sessions' connects, closes */
};

/*
 * Calls fn for every event with since_ms < ts_ms <= until_ms in time order
 * (ties in the order they were committed); rows of a kind this code does
 * not know are skipped.  fn returning non-zero stops the walk, and that
 * value is returned.
 */
typedef int fg_query_event_fn(void *arg, const struct fg_stored_event *ev);
int fg_query_events(fg_query *q, int64_t since_ms, int64_t until_ms,
                    fg_query_event_fn *fn, void *arg);

struct fg_stored_verdict {
	int64_t id;
	int64_t time_ms;
	uint64_t session_id;
	const char *queue_id;   /* any of these NULL when the column is */
	const char *client;
	const char *stage;
	const char *rule;
	const char *key;
	const char *action;
	const char *reply;
	int64_t count, limit, window_ms, delay_ms;
	bool monitor;
	int64_t n;              /* verdicts the row stands for (>= 1; the
	                           count is the first's) */
};

/* Verdicts with since_ms < ts_ms <= until_ms in time order; or, with
 * client not NULL, that client's newest first, at most limit (0: all).
 * fn as for fg_query_events. */
typedef int fg_query_verdict_fn(void *arg, const struct fg_stored_verdict *v);
int fg_query_verdicts(fg_query *q, const char *client, int64_t since_ms,
                      int64_t until_ms, size_t limit,
                      fg_query_verdict_fn *fn, void *arg);

#endif
