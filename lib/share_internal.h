/*
 * share_internal.h - what share.c (the cache, the callback path, the
 * thread) and share_sync.c (one round trip) share.  Private to them.
 *
 * Locks, never two at once: a shard's mu (entries of its keys: held by
 * the callback path, and by the sync thread only while it copies),
 * cfg_mu (the parameters), ban_mu (bans waiting to go out), st_mu (the
 * status).  The transport is the sync thread's alone.
 */
#ifndef FG_SHARE_INTERNAL_H
#define FG_SHARE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "share.h"

#define SH_SHARDS 64
#define SH_MAX_KEYS 200000        /* entries held at most */
#define SH_URGENT_MS 20           /* syncs at most this often when urgent */
#define SH_NODES_EVERY_MS 1000    /* heartbeat and peer list */
#define SH_PEER_FRESH_MS 10000    /* a peer heard from this recently */
#define SH_MAX_BAN_OPS 1024       /* bans, allows and their lifts waiting */
#define SH_BANLOG_MAXLEN 10000
#define SH_BANLOG_COUNT 500
#define SH_NONE INT64_MAX         /* no slot */
#define SH_FEED_MAXLEN 10000      /* entries the feed keeps, about */
#define SH_FEED_COUNT 1000        /* entries read from it per round trip */
#define SH_FEED_KEYS 1000         /* keys named per entry */
#define SH_SCAN_SLICE 256         /* buckets scanned per shard lock hold */
#define SH_WANT_SLOTS 1           /* fetch the newest slots (HMGET) */
#define SH_WANT_ALL 2             /* fetch it whole (HGETALL) */
#define SH_WANT_QUEUED 4          /* on this round's list to fetch */
#define SH_ANN_MAX (1u << 20)     /* slots of the table of named keys */

/* One remote count: node's count of ctr in slot. */
struct rslot {
	int64_t slot;
	uint32_t value;
	uint8_t ctr;                  /* enum fg_counter */
	uint8_t node;                 /* index into the node table */
};

/* A key: this host's publishing state and the others' counts. */
struct ent {
	struct ent *next;
	struct ent *pnext;            /* in its shard's pending list */
	bool listed;                  /* on it */
	uint64_t hash;
	int64_t last_local_ms;        /* last event here; 0 none */
	int64_t pulled_ms;            /* remote part fetched; 0 never */
	int64_t dirty_from;           /* lowest slot to push; SH_NONE clean */
	int64_t pub_lo, pub_hi;       /* slots pushed (pub_lo > pub_hi: none) */
	/* The last sum asked for: slots after k, and slot k, of one
	 * counter, as of version (bumped by every change of r). */
	int64_t memo_k, memo_full, memo_edge;
	uint64_t memo_nodes;
	uint32_t version, memo_version;
	int memo_ctr;                 /* -1: none */
	int64_t peer_ms;              /* a peer last announced pushing it */
	int64_t ttl_ms;               /* last PEXPIRE sent (sync thread) */
	uint64_t pull_tick;           /* the sync that last fetched it */
	bool fresh;                   /* new here, never fetched */
	bool known;                   /* not fetched: the feed said no peer
	                                 had it */
	uint8_t want;                 /* a peer pushed it since it was
	                                 fetched: 0, SH_WANT_SLOTS, SH_WANT_ALL */
	bool stale;                   /* fetch all of it (HGETALL) */
	bool withdraw;                /* delete own fields (after a lift) */
	struct rslot *r;
	uint32_t nr, rcap;
	char key[];
};

/* A shard of the keys.  Those with something to do at the next sync
 * (pushed, withdrawn, fetched: changed here, new, marked by the feed,
 * aged) are on its pending list, so that a sync visits them and not the
 * whole table. */
struct shard {
	pthread_mutex_t mu;
	struct ent **tab;
	size_t mask, n;
	struct ent *pending;
};

struct ban_op {
	char *key, *reason, *source;
	bool allow;                   /* an allow (lift: a disallow) */
	bool lift;
	int64_t until_ms, created_ms;
};

/* The parameters a configuration gives. */
struct params {
	bool active;
	char server[256], username[128], prefix[72], node[72];
	char *password;               /* owned; NULL none */
	int64_t interval_ms, slot_ms, timeout_ms, hot_ms, horizon_ms;
	int64_t max_commands, max_remote_ban_ms, warn_skew_ms;
	bool bans;
	unsigned ctr_mask;            /* counters of shared rules */
	unsigned key_mask;            /* key types (keys.h) of shared rules */
};

struct fg_share {
	struct shard shards[SH_SHARDS];
	pthread_mutex_t cfg_mu;
	pthread_mutex_t ban_mu;
	pthread_mutex_t st_mu;
	struct params p;              /* under cfg_mu */
	struct params tp;             /* the sync thread's copy of p */
	struct fg_share_status st;    /* under st_mu */
	struct fg_share_transport t;
	struct fg_share_host host;
	pthread_t thread;

	uint64_t seed;
	_Atomic uint64_t nkeys, keys_refused;
	_Atomic int64_t slot_ms;
	_Atomic int64_t fresh_ms;     /* the feed read and followed up to here */
	_Atomic unsigned ctr_mask, key_mask;
	_Atomic int nnodes;
	_Atomic bool active;
	_Atomic bool urgent;
	_Atomic bool reconnect;       /* the server or identity changed */
	_Atomic bool stop;

	/* node table: names appended by the sync thread, then published */
	char nodes[FG_SHARE_MAX_NODES][72];
	_Atomic int64_t node_last[FG_SHARE_MAX_NODES]; /* their heartbeats */

	/* bans and lifts made here, waiting to go out (ban_mu) */
	struct ban_op *bans;
	size_t nbans;
	uint64_t bans_lost;

	/* the sync thread's own */
	uint64_t rng;                 /* jitter of the backoff */
	uint64_t peers;               /* live peers (bit i: node i) */
	int64_t peer_gen[FG_SHARE_MAX_NODES]; /* their connection counts */
	int64_t gen;                  /* connections made by this host */
	int64_t npeers;
	int64_t next_try_mono;
	int64_t last_nodes_ms;
	int64_t started_ms;
	int64_t collide_last;
	int64_t last_expire_ms;
	int fails;
	int collisions;
	unsigned rot;                 /* first shard of the next pass */
	char token[24];               /* this run's identity in "nodes" */
	char collide_token[24];
	char epoch[64];               /* the server's epoch as last seen */
	char banlog_id[64];           /* last banlog entry read; "" none */
	char feed_id[64];             /* last feed entry read; "" none yet */
	/* The feed was followed without a gap since then (INT64_MIN: since
	 * it began; INT64_MAX: not yet), and the keys the peers named in it
	 * (hash, when), for the horizon: a key new here that none of them
	 * named needs no fetch once that covers the horizon. */
	int64_t feed_from_ms;
	uint64_t *ann_h;
	int64_t *ann_ms;
	size_t ann_mask, ann_n;
	uint64_t ticks;               /* round trips attempted */
	int64_t (*slots)[FG_CNT__COUNT]; /* own counts being pushed */
	size_t slots_cap;
	bool connected;
	bool set_epoch;
	bool readonly;                /* fg_share_read_only */
	bool collided;
	bool skew_warned;
	bool thread_running;
	bool announce;                /* under st_mu: a new server, whose
	                                 first good round trip is logged
	                                 even if the state stays ok */
};

/* share.c */
struct ent *fg_share_ent_find(struct shard *s, uint64_t h, const char *key);
uint64_t fg_share_hash(const fg_share *sh, const char *key);
struct shard *fg_share_shard(fg_share *sh, uint64_t h);
void fg_share_ent_free(fg_share *sh, struct shard *s, struct ent *e);
/* The letter of a counter in field names, 0 for one never shared; and
 * back (-1 for an unknown letter). */
char fg_share_ctr_letter(enum fg_counter c);
int fg_share_ctr_of(char letter);
/* Index of node name (added if new), -1 when the table is full or the
 * name is bad. */
int fg_share_node_index(fg_share *sh, const char *name);
/* Puts e on its shard's pending list (under the shard's lock). */
void fg_share_ent_list(struct shard *s, struct ent *e);
/* Forgets every remote slot of e. */
void fg_share_rslot_clear(struct ent *e);
/* Replaces e's remote slot (slot, ctr, node) by value (0 removes). */
void fg_share_rslot_put(struct ent *e, int64_t slot, int ctr, int node,
                        uint32_t value);
/* Applies an allow or disallow from another host through the host's
 * callbacks, without sharing it back; a disallow removes an allow made
 * at created_ms or earlier. */
void fg_share_apply_allow(fg_share *sh, const char *key, bool disallow,
                          int64_t until_ms, int64_t created_ms,
                          const char *reason, const char *source);
/* Applies a ban or lift from another host through the host's callbacks,
 * without sharing it back. */
void fg_share_apply_ban(fg_share *sh, const char *key, bool lift, bool reset,
                        int64_t until_ms, const char *reason,
                        const char *source, int64_t now_ms);
void fg_share_set_state(fg_share *sh, enum fg_share_state state,
                        const char *reason);

/* share_sync.c */
/* One round trip; without keys, only the clock, the epoch and the
 * heartbeat (a probe of a new connection). */
int fg_share_sync(fg_share *sh, int64_t now_ms, bool keys);
void fg_share_mark_all(fg_share *sh, int64_t now_ms);
/* Everything pushed again and fetched whole, and a new generation in
 * the next heartbeat (after the pushes), so that the peers fetch every
 * key whole once it is there. */
void fg_share_republish(fg_share *sh, int64_t now_ms);

#endif
