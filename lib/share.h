/*
 * share.h - counts and bans shared between MX hosts through Redis.
 *
 * Model.  Each host keeps deciding alone, from its exact local counts
 * (the store) plus a cache of the other hosts' counts.  One sync thread
 * exchanges them with the server in one pipelined round trip per
 * sync_interval (sooner, at most every 20 ms, once a key nears a limit):
 * it pushes this host's counts of the keys that changed, names them in a
 * feed, and pulls the others' counts of the keys seen here lately that
 * the feed names (in a second round trip, at once) and of keys new here.  A milter callback never waits
 * on the network: fg_share_note() and fg_share_remote() take one shard
 * lock that the sync thread holds only while it copies to or from the
 * cache, never across a round trip.
 *
 * Data in Redis (every key starts "<prefix>:"):
 *   c:<key>   hash; field "<slot>.<ctr>.<node>" = that node's absolute
 *             count of counter ctr (one letter: c h m r v i j s) in slot
 *             floor(ms / slot_ms).  A node writes only its own fields,
 *             whole values, so a retried write never counts twice and
 *             an emptied server fills again from the hosts.
 *   ban:<key> string "until_ms created_ms node source reason", PX to until.
 *   allow:<key> the same for an allow (no PX for one without an end).
 *   banlog    stream of "op ban|lift|allow|disallow key until created
 *             node source reason".
 *   feed      stream of "node <node> k <key> k <key>...": the keys a node
 *             pushed in one round trip (MAXLEN ~ 10000).
 *   nodes     hash; node = "last_ms slot_ms version token skew_ms".
 *   epoch     a token set once; its loss tells that the server was wiped.
 *
 * A count for a shared rule is the local exact count plus the cached
 * remote slots in (now - window, now], the oldest slot weighted by the
 * part of it inside the window.  A peer's event reaches this cache within
 * 2 * sync_interval + 2 round trips, which bounds the overshoot
 * (floodgate.conf(5)).
 *
 * Failure: a refused connection, a timeout or an error reply (OOM,
 * READONLY, NOAUTH...) makes the state "degraded" (logged once per change
 * of reason), drops the connection and retries after a pause growing
 * from 100 ms to 5 s, with jitter; meanwhile the host counts alone with
 * what it had cached, which ages out.  After reconnecting, or when the
 * server lost its data, the host publishes again everything it counted
 * within the horizon (after a first good round trip on a new
 * connection).
 *
 * The logic here is pure: the server is reached through a transport
 * (struct fg_share_transport: lib/share_redis.c speaks to Redis, the
 * unit tests to a fake), time is a parameter of fg_share_tick(), and the
 * store through the callbacks of struct fg_share_host.
 *
 * Thread-safety: fg_share_note, fg_share_remote, fg_share_ban_changed,
 * fg_share_allow_changed and fg_share_get_status from any thread;
 * fg_share_tick from one thread at a time (the sync thread, or a test).
 * Errors: FG_E* (fg.h).
 */
#ifndef FG_SHARE_H
#define FG_SHARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "event.h"

typedef struct fg_share fg_share;

/* ---- the transport ------------------------------------------------- */

enum fg_share_rtype {
	FG_SR_NIL, FG_SR_INT, FG_SR_STR, FG_SR_ARR, FG_SR_ERR, FG_SR_STATUS,
};

/* A reply, allocated with malloc by the transport, freed by
 * fg_share_reply_free. */
struct fg_share_reply {
	enum fg_share_rtype type;
	int64_t i;                     /* FG_SR_INT */
	char *s;                       /* STR, ERR, STATUS; NUL-terminated */
	size_t len;
	struct fg_share_reply *elem;   /* FG_SR_ARR */
	size_t n;
};
void fg_share_reply_free(struct fg_share_reply *r);

/* A command: argc strings (no binary data). */
struct fg_share_cmd {
	int argc;
	char **argv;
};

struct fg_share_transport {
	void *ctx;
	/* Connects (and authenticates) to cfg's server within timeout; 0,
	 * or < 0 with a one-line reason in err. */
	int (*connect)(void *ctx, const struct fg_shared *cfg, char *err,
	               size_t errlen);
	void (*disconnect)(void *ctx);
	/* Sends n commands in one pipeline and reads their n replies into
	 * replies[] (error replies are replies); 0, or < 0 with a reason in
	 * err when the connection failed or timed out. */
	int (*exchange)(void *ctx, const struct fg_share_cmd *cmds, size_t n,
	                struct fg_share_reply *replies, char *err,
	                size_t errlen);
	void (*free)(void *ctx);
};

/* The hiredis transport (share_redis.c). */
int fg_share_redis_transport(struct fg_share_transport *out);

/* ---- the host ------------------------------------------------------ */

/* What the share needs of the daemon; called on the sync thread. */
struct fg_share_host {
	void *ctx;
	/* Events of c under key counted here in the second of from_ms and
	 * later ones. */
	int64_t (*own_since)(void *ctx, const char *key, enum fg_counter c,
	                     int64_t from_ms);
	/* Optional, and preferred to own_since: the events of every counter
	 * under key counted here in nslots slots of slot_ms from from_ms on,
	 * added into out[slot][counter], in one look-up.  0, or < 0 when it
	 * cannot tell (then own_since is asked). */
	int (*own_slots)(void *ctx, const char *key, int64_t from_ms,
	                 int64_t slot_ms, size_t nslots,
	                 int64_t (*out)[FG_CNT__COUNT]);
	/* A ban or a lift made on another host; source "peer:<node>".  A
	 * recent lift (reset) also forgets the key's counts here. */
	void (*ban)(void *ctx, const char *key, int64_t until_ms,
	            const char *reason, const char *source, int64_t now_ms);
	void (*lift)(void *ctx, const char *key, bool reset);
	/* Whether a received ban may apply here (exemptions, checked keys). */
	bool (*ban_ok)(void *ctx, const char *key);
	/* An allow made on another host (source "peer:<node>"), and a
	 * disallow, which removes the key's allow made at before_ms or
	 * earlier, whatever its source. */
	void (*allow)(void *ctx, const char *key, int64_t until_ms,
	              int64_t created_ms, const char *reason,
	              const char *source);
	void (*disallow)(void *ctx, const char *key, int64_t before_ms);
};

/* ---- the share ----------------------------------------------------- */

/*
 * A share for cfg's shared group (backend redis), talking through t
 * (taken over: freed by fg_share_free).  No thread, no connection yet.
 * FG_EINVAL when cfg shares nothing.
 */
int fg_share_new(const struct fg_config *cfg,
                 const struct fg_share_transport *t,
                 const struct fg_share_host *host, fg_share **out);
/* Stops the thread, closes the connection, frees. NULL is fine. */
void fg_share_free(fg_share *sh);

/* A new configuration (SIGUSR1): counters and rules in use, intervals;
 * a new server, user, password, prefix or node reconnects.  A
 * configuration without backend redis stops sharing (state off) until
 * one with it comes. */
void fg_share_configure(fg_share *sh, const struct fg_config *cfg);

/* A share that only reads (floodgatectl why): it pushes nothing, sets
 * nothing, sends no heartbeat and reads no bans; the age of a remote
 * part is that of the other hosts' last heartbeat.  Before any tick. */
void fg_share_read_only(fg_share *sh);

/* Starts and stops the sync thread (which reads the clock and calls
 * fg_share_tick).  0 or FG_ESYS. */
int fg_share_start(fg_share *sh);
void fg_share_stop(fg_share *sh);

/* One sync: connect if due, one round trip, apply the replies.  For the
 * sync thread and the tests.  Returns 0 when a round trip succeeded,
 * FG_EBUSY when not due (backoff), FG_EIO when it failed. */
int fg_share_tick(fg_share *sh, int64_t now_ms, int64_t mono_ms);

/* ---- the callback path ------------------------------------------- */

/* An event counted here under key, bumping counters ctrs[0..n) at
 * time_ms: marks the key to be pushed.  Cheap; never blocks on I/O. */
void fg_share_note(fg_share *sh, const char *key, const enum fg_counter *ctrs,
                   size_t n, int64_t time_ms);

#define FG_SHARE_MAX_NODES 64

/* The other hosts' part of a count. */
struct fg_share_part {
	int64_t count;               /* events on other hosts */
	int64_t age_ms;              /* since that was fetched; -1 never */
	uint64_t nodes;              /* bit i: node i contributed */
};

/*
 * The other hosts' events of c under key in (now - window, now], as last
 * fetched, into *out; returns out->count.  local and limit say how close
 * the key is to its limit: past half of it, the next sync comes sooner.
 */
int64_t fg_share_remote(fg_share *sh, const char *key, enum fg_counter c,
                        int64_t window_ms, int64_t now_ms, int64_t local,
                        int64_t limit, struct fg_share_part *out);

/* The names of the nodes whose bits are set, ", "-separated, into buf. */
char *fg_share_node_names(fg_share *sh, uint64_t nodes, char *buf,
                          size_t size);

/* A ban set (lift false) or lifted on this host, from whatever source:
 * shared with the others unless it came from them ("peer:...") or bans
 * are not shared.  A lift also withdraws this host's counts of key. */
void fg_share_ban_changed(fg_share *sh, const char *key, bool lift,
                          int64_t until_ms, int64_t created_ms,
                          const char *reason, const char *source);

/* An allow added or extended (disallow false), or removed, on this host:
 * shared with the others along with the bans (the same setting), unless
 * it came from them ("peer:...").  Expiry is no change. */
void fg_share_allow_changed(fg_share *sh, const char *key, bool disallow,
                            int64_t until_ms, int64_t created_ms,
                            const char *reason, const char *source);

/* ---- the daemon's share (share_store.c) -------------------------- */

struct fg_store;

/*
 * A share over Redis for cfg, hosted by store st: the store's own counts
 * are pushed, bans received are set in it with source "peer:<node>"
 * (never on an exempt or allowed key, nor one the daemon would not
 * honour), so are allows received, and the store's hooks (store.h) tell
 * the share of every event, ban and change of the allows table.  Starts
 * the sync thread.  Call before any session records.  0, FG_EINVAL (cfg
 * shares nothing), FG_ENOMEM or FG_ESYS.
 */
int fg_share_attach(const struct fg_config *cfg, struct fg_store *st,
                    fg_share **out);
/* The host's ctx the share was made with. */
void *fg_share_host_ctx(fg_share *sh);
/* Frees a share made by fg_share_attach, once the store is closed (the
 * store's hooks may call the share until then): fg_share_stop first,
 * then fg_store_close, then this.  NULL is fine. */
void fg_share_detach(fg_share *sh);

/* ---- visibility ---------------------------------------------------- */

enum fg_share_state { FG_SHARE_OFF = 0, FG_SHARE_OK, FG_SHARE_DEGRADED };
const char *fg_share_state_name(enum fg_share_state s);  /* "off" ... */

struct fg_share_status {
	enum fg_share_state state;
	char node[72];
	char server[256];
	char reason[192];            /* why degraded, or "" */
	int64_t peers;               /* other nodes seen within 10 s */
	int64_t last_sync_ms;        /* wall clock of the last good sync, 0 */
	int64_t skew_ms;             /* server clock - ours */
	uint64_t syncs, failures;    /* round trips done, failed */
	uint64_t commands;           /* commands sent */
	int64_t keys;                /* keys held */
};
void fg_share_get_status(fg_share *sh, struct fg_share_status *out);

#endif
