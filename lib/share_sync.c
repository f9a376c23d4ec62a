/*
 * share_sync.c - one round trip with the server: what goes into the
 * pipeline, and what the replies change.
 *
 * The pipeline, in order: TIME; GET epoch (and SET epoch NX when it was
 * missing); about once a second HGETALL nodes; XRANGE feed from the last
 * entry read (XREVRANGE ... COUNT 1 at first, to find its end); per key,
 * within max_commands: HSET of this host's changed slots (PEXPIRE once a
 * slot), HDEL of its fields that left the horizon or that a lift
 * withdrew, HGETALL of a key new here or stale, or wanted and hot (below);
 * XADD feed naming the keys pushed; the bans and lifts, allows and
 * disallows made here (SET ban:<key> or allow:<key> PX, DEL, XADD
 * banlog); XRANGE banlog from the last entry read; about once a second
 * HSET nodes (heartbeat).
 *
 * Which keys are fetched.  Most keys are counted by one host only (a
 * client talks to one MX), so fetching every key seen here lately at
 * every sync would cost a command per key and round for nothing.  A key
 * is fetched whole (HGETALL) when it is new here, after a reconnect, a
 * peer's, or a gap in the feed; after that only when the feed names it:
 * a key named there that is hot here (seen within "hot") and was not
 * fetched in this round trip is fetched at once, in a second round trip
 * (HMGET of the slots a peer may still change); one not hot is marked, to
 * be fetched whole when it is hot again.  Each host adds its XADD after
 * its HSETs, and reads the feed before its fetches, so what the feed
 * names is in the server by the time it is fetched.
 *
 * The bound: a peer's event is pushed and named at the peer's next sync
 * (within I, the sync_interval), read here at this host's next (within
 * I + RTT) and fetched in the same sync (one RTT more): S = 2 I + 2 RTT,
 * one round trip more than fetching every hot key every time.
 *
 * Replies replace cached values (absolute counts: a replay is harmless).
 * Any error reply (OOM, READONLY, NOAUTH...) fails the round trip: the
 * caller disconnects and retries later, and the keys are pushed again
 * after the reconnect (and after the first good round trip on it).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fg.h"
#include "log.h"
#include "share_internal.h"
#include "version.h"

enum op_kind {
	OP_IGNORE, OP_TIME, OP_EPOCH, OP_HGETALL, OP_HMGET, OP_XRANGE,
	OP_NODES, OP_FEED, OP_FEED_END,
};

struct op {
	enum op_kind kind;
	struct ent *e;
	int64_t slot0;             /* OP_HMGET: first slot asked */
	uint64_t peers;            /* OP_HMGET: the nodes asked */
};

struct pipe {
	struct fg_share_cmd *cmds;
	struct op *ops;
	size_t n, cap;
	size_t argcap;             /* of the open command */
	bool nomem;
};

/* ---- building ------------------------------------------------------ */

static void
pipe_begin(struct pipe *p, enum op_kind kind, struct ent *e)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		struct fg_share_cmd *nc = realloc(p->cmds, cap * sizeof(*nc));
		struct op *no;
		if (nc == NULL) {
			p->nomem = true;
			return;
		}
		p->cmds = nc;
		if ((no = realloc(p->ops, cap * sizeof(*no))) == NULL) {
			p->nomem = true;
			return;
		}
		p->ops = no;
		p->cap = cap;
	}
	p->cmds[p->n] = (struct fg_share_cmd){0, NULL};
	p->ops[p->n] = (struct op){kind, e, 0, 0};
	p->n++;
	p->argcap = 0;
}

static void __attribute__((format(printf, 2, 3)))
pipe_arg(struct pipe *p, const char *fmt, ...)
{
	struct fg_share_cmd *c;
	va_list ap;
	char *s;
	int n;

	if (p->nomem || p->n == 0)
		return;
	c = &p->cmds[p->n - 1];
	if ((size_t)c->argc == p->argcap) {
		size_t cap = p->argcap ? p->argcap * 2 : 8;
		char **na = realloc(c->argv, cap * sizeof(*na));
		if (na == NULL) {
			p->nomem = true;
			return;
		}
		c->argv = na;
		p->argcap = cap;
	}
	/* A Redis argument (argv, binary-safe): never SQL. */
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || (s = malloc((size_t)n + 1)) == NULL) {
		p->nomem = true;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	c->argv[c->argc++] = s;
}

/* Starts "XADD <prefix>:<stream> MAXLEN ~ <maxlen> *": an entry of a
 * capped stream, its fields to follow. */
static void
pipe_xadd(struct pipe *p, const char *prefix, const char *stream, int maxlen)
{
	pipe_begin(p, OP_IGNORE, NULL);
	pipe_arg(p, "XADD");
	pipe_arg(p, "%s:%s", prefix, stream);
	pipe_arg(p, "MAXLEN");
	pipe_arg(p, "~");
	pipe_arg(p, "%d", maxlen);
	pipe_arg(p, "*");
}

static void
pipe_free(struct pipe *p)
{
	for (size_t i = 0; i < p->n; i++) {
		for (int j = 0; j < p->cmds[i].argc; j++)
			free(p->cmds[i].argv[j]);
		free(p->cmds[i].argv);
	}
	free(p->cmds);
	free(p->ops);
	memset(p, 0, sizeof(*p));
}

/* What one key needs this round, copied out under its shard's lock. */
struct work {
	struct ent *e;
	struct shard *s;
	int64_t push_from, push_to;   /* SH_NONE: nothing to push */
	int64_t pub_lo, pub_hi;       /* as before this round */
	int64_t del_lo, del_hi;       /* own fields to delete (slots) */
	int pull;                     /* 0, OP_HGETALL, OP_HMGET */
	bool pushed;                  /* an HSET went out: announce it */
};

/* Number of counters in mask. */
static int
ctr_list(unsigned mask, int *out)
{
	int n = 0;

	for (int c = 0; c < FG_CNT__COUNT; c++)
		if ((mask & (1u << c)) && fg_share_ctr_letter((enum fg_counter)c))
			out[n++] = c;
	return n;
}

/* ---- the keys the peers named in the feed (the sync thread's) ------ */

static size_t
ann_find(const fg_share *sh, uint64_t h)
{
	size_t i = (size_t)(h ^ h >> 32) & sh->ann_mask;

	while (sh->ann_h[i] != 0 && sh->ann_h[i] != h)
		i = (i + 1) & sh->ann_mask;
	return i;
}

/* Forgets the keys named before cutoff (and all of them when cutoff is
 * INT64_MAX), into a table sized for what stays. */
static void
ann_rebuild(fg_share *sh, int64_t cutoff, size_t want)
{
	uint64_t *oh = sh->ann_h;
	int64_t *om = sh->ann_ms;
	size_t omask = sh->ann_mask, n = 0, size = 1024;

	for (size_t i = 0; oh != NULL && i <= omask; i++)
		n += oh[i] != 0 && om[i] >= cutoff;
	while (size < 2 * (n + want) && size < SH_ANN_MAX)
		size *= 2;
	sh->ann_h = calloc(size, sizeof(*sh->ann_h));
	sh->ann_ms = calloc(size, sizeof(*sh->ann_ms));
	sh->ann_mask = size - 1;
	sh->ann_n = 0;
	if (sh->ann_h == NULL || sh->ann_ms == NULL) {
		free(sh->ann_h);
		free(sh->ann_ms);
		sh->ann_h = NULL;
		sh->ann_ms = NULL;
		sh->ann_mask = 0;
	}
	for (size_t i = 0; sh->ann_h != NULL && oh != NULL && i <= omask; i++)
		if (oh[i] != 0 && om[i] >= cutoff && sh->ann_n * 2 < size) {
			size_t j = ann_find(sh, oh[i]);
			sh->ann_h[j] = oh[i];
			sh->ann_ms[j] = om[i];
			sh->ann_n++;
		}
	free(oh);
	free(om);
}

/* Key h named at now_ms; false when the table is full (what it says is
 * then incomplete). */
static bool
ann_put(fg_share *sh, uint64_t h, int64_t now_ms)
{
	size_t i;

	h |= 1;   /* 0 marks a free slot */
	if (sh->ann_h == NULL || sh->ann_n * 2 >= sh->ann_mask + 1) {
		if (sh->ann_mask + 1 >= SH_ANN_MAX && sh->ann_h != NULL)
			return false;
		ann_rebuild(sh, INT64_MIN, sh->ann_n + 1);
		if (sh->ann_h == NULL || sh->ann_n * 2 >= sh->ann_mask + 1)
			return false;
	}
	i = ann_find(sh, h);
	if (sh->ann_h[i] == 0)
		sh->ann_n++;
	sh->ann_h[i] = h;
	sh->ann_ms[i] = now_ms;
	return true;
}

static bool
ann_since(const fg_share *sh, uint64_t h, int64_t since_ms)
{
	size_t i;

	if (sh->ann_h == NULL)
		return false;
	i = ann_find(sh, h | 1);
	return sh->ann_h[i] != 0 && sh->ann_ms[i] >= since_ms;
}

/* Whether no peer had counts of a key new here that the feed did not
 * name: it was followed since before the horizon. */
static bool
feed_complete(const fg_share *sh, int64_t now_ms)
{
	return sh->feed_from_ms == INT64_MIN ||
	       (sh->feed_from_ms != INT64_MAX &&
	        sh->feed_from_ms <= now_ms - sh->tp.horizon_ms);
}

static bool
is_hot(const fg_share *sh, const struct ent *e, int64_t now_ms)
{
	return e->last_local_ms > 0 && e->last_local_ms >= now_ms - sh->tp.hot_ms;
}

/* Whether e is to be fetched this round, and how; under its shard's
 * lock.  A key new here (or after a reconnect, or a peer's) is fetched
 * whole once; after that only when the feed said that a peer pushed it,
 * while it is hot here. */
static int
pull_of(fg_share *sh, struct ent *e, int64_t now_ms)
{
	int pull = 0;

	if (e->stale && e->last_local_ms > 0 &&
	    e->last_local_ms >= now_ms - sh->tp.horizon_ms) {
		if (e->fresh && feed_complete(sh, now_ms) &&
		    !ann_since(sh, e->hash, now_ms - sh->tp.horizon_ms -
		                            2 * sh->tp.slot_ms)) {
			/* New here, and no peer named it: nothing to fetch. */
			e->stale = false;
			e->known = true;
			e->pulled_ms = now_ms;
		} else {
			pull = OP_HGETALL;
		}
		e->fresh = false;
	}
	else if ((e->want & (SH_WANT_SLOTS | SH_WANT_ALL)) &&
	         is_hot(sh, e, now_ms))
		pull = (e->want & SH_WANT_ALL) || e->pulled_ms == 0 ? OP_HGETALL
		                                                    : OP_HMGET;
	if (pull != 0)
		e->want = 0;
	return pull;
}

static bool
collect_one(fg_share *sh, struct shard *s, struct ent *e, int64_t now_ms,
            struct work *w)
{
	const struct params *p = &sh->tp;
	int64_t now_slot = now_ms / p->slot_ms;
	int64_t first = now_slot - p->horizon_ms / p->slot_ms - 1;
	bool any = false;

	memset(w, 0, sizeof(*w));
	w->e = e;
	w->push_from = SH_NONE;
	w->del_lo = SH_NONE;
	w->del_hi = INT64_MIN;
	w->pub_lo = e->pub_lo;
	w->pub_hi = e->pub_hi;
	if (e->withdraw) {
		if (e->pub_lo <= e->pub_hi) {
			w->del_lo = e->pub_lo;
			w->del_hi = e->pub_hi;
		}
		e->withdraw = false;
		e->pub_lo = w->pub_lo = SH_NONE;
		e->pub_hi = w->pub_hi = INT64_MIN;
		any = true;
	} else if (e->pub_lo <= e->pub_hi && e->pub_lo < first) {
		w->del_lo = e->pub_lo;
		w->del_hi = e->pub_lo + 63 < first ? e->pub_lo + 63 : first - 1;
		e->pub_lo = w->del_hi + 1;
		if (e->pub_lo < first)
			fg_share_ent_list(s, e);   /* more at the next round */
		any = true;
	}
	if (e->dirty_from != SH_NONE) {
		w->push_from = e->dirty_from > first ? e->dirty_from : first;
		w->push_to = now_slot;
		e->dirty_from = SH_NONE;
		any = true;
	}
	if ((w->pull = pull_of(sh, e, now_ms)) != 0)
		any = true;
	return any;
}

/* This host's counts of w's key in its slots to push, into sh->slots
 * (slot push_from first); false when they cannot be had. */
static bool
own_counts(fg_share *sh, const struct work *w, const int *ctrs, int nctr)
{
	const struct params *pr = &sh->tp;
	size_t n = (size_t)(w->push_to - w->push_from + 1);

	if (n > sh->slots_cap) {
		int64_t(*ns)[FG_CNT__COUNT] = realloc(sh->slots, n * sizeof(*ns));
		if (ns == NULL)
			return false;
		sh->slots = ns;
		sh->slots_cap = n;
	}
	memset(sh->slots, 0, n * sizeof(*sh->slots));
	if (sh->host.own_slots != NULL &&
	    sh->host.own_slots(sh->host.ctx, w->e->key, w->push_from * pr->slot_ms,
	                       pr->slot_ms, n, sh->slots) == 0)
		return true;
	if (sh->host.own_since == NULL)
		return false;
	for (int i = 0; i < nctr; i++) {
		enum fg_counter c = (enum fg_counter)ctrs[i];
		int64_t later = sh->host.own_since(sh->host.ctx, w->e->key, c,
		                                   (w->push_to + 1) * pr->slot_ms);
		for (int64_t s = w->push_to; s >= w->push_from; s--) {
			int64_t since = sh->host.own_since(sh->host.ctx, w->e->key,
			                                   c, s * pr->slot_ms);
			sh->slots[s - w->push_from][c] = since - later;
			later = since;
		}
	}
	return true;
}

static void
build_push(fg_share *sh, struct pipe *p, struct work *w, const int *ctrs,
           int nctr, int64_t now_ms)
{
	const struct params *pr = &sh->tp;
	int64_t lo = SH_NONE, hi = INT64_MIN;

	if (w->del_lo <= w->del_hi) {
		pipe_begin(p, OP_IGNORE, NULL);
		pipe_arg(p, "HDEL");
		pipe_arg(p, "%s:c:%s", pr->prefix, w->e->key);
		for (int64_t s = w->del_lo; s <= w->del_hi; s++)
			for (int i = 0; i < nctr; i++)
				pipe_arg(p, "%" PRId64 ".%c.%s", s,
				         fg_share_ctr_letter((enum fg_counter)ctrs[i]),
				         pr->node);
	}
	if (w->push_from == SH_NONE || !own_counts(sh, w, ctrs, nctr))
		return;
	pipe_begin(p, OP_IGNORE, NULL);
	pipe_arg(p, "HSET");
	pipe_arg(p, "%s:c:%s", pr->prefix, w->e->key);
	for (int i = 0; i < nctr; i++) {
		enum fg_counter c = (enum fg_counter)ctrs[i];
		for (int64_t s = w->push_to; s >= w->push_from; s--) {
			int64_t v = sh->slots[s - w->push_from][c];

			if (v < 0)
				v = 0;
			if (v == 0 && !(s >= w->pub_lo && s <= w->pub_hi))
				continue;
			pipe_arg(p, "%" PRId64 ".%c.%s", s, fg_share_ctr_letter(c),
			         pr->node);
			pipe_arg(p, "%" PRId64, v);
			if (v > 0) {
				if (s < lo)
					lo = s;
				if (s > hi)
					hi = s;
			}
		}
	}
	if (p->nomem)
		return;
	if (p->cmds[p->n - 1].argc <= 2) {
		/* Nothing to write: drop the command. */
		for (int j = 0; j < p->cmds[p->n - 1].argc; j++)
			free(p->cmds[p->n - 1].argv[j]);
		free(p->cmds[p->n - 1].argv);
		p->n--;
	} else {
		w->pushed = true;
		/* The key lives a slot longer than what was written into it;
		 * so its time to live is set again once a slot, not each
		 * round. */
		if (now_ms - w->e->ttl_ms >= pr->slot_ms || now_ms < w->e->ttl_ms) {
			w->e->ttl_ms = now_ms;
			pipe_begin(p, OP_IGNORE, NULL);
			pipe_arg(p, "PEXPIRE");
			pipe_arg(p, "%s:c:%s", pr->prefix, w->e->key);
			pipe_arg(p, "%" PRId64, pr->horizon_ms + 3 * pr->slot_ms);
		}
	}
	pthread_mutex_lock(&w->s->mu);
	if (lo < w->e->pub_lo)
		w->e->pub_lo = lo;
	if (hi > w->e->pub_hi)
		w->e->pub_hi = hi;
	pthread_mutex_unlock(&w->s->mu);
}

static void
build_pull(fg_share *sh, struct pipe *p, struct work *w, const int *ctrs,
           int nctr, int64_t now_ms)
{
	const struct params *pr = &sh->tp;
	int64_t now_slot = now_ms / pr->slot_ms;
	int nn = atomic_load(&sh->nnodes);

	if (w->pull == OP_HGETALL) {
		pipe_begin(p, OP_HGETALL, w->e);
		pipe_arg(p, "HGETALL");
		pipe_arg(p, "%s:c:%s", pr->prefix, w->e->key);
		return;
	}
	if (sh->npeers == 0)
		return;
	/* The slots a peer may still change: those it pushes at its next
	 * ticks (2 intervals). */
	int64_t back = 1 + (2 * pr->interval_ms + pr->slot_ms - 1) / pr->slot_ms;
	pipe_begin(p, OP_HMGET, w->e);
	if (p->nomem)
		return;
	p->ops[p->n - 1].slot0 = now_slot - back;
	p->ops[p->n - 1].peers = sh->peers;
	pipe_arg(p, "HMGET");
	pipe_arg(p, "%s:c:%s", pr->prefix, w->e->key);
	for (int64_t s = now_slot - back; s <= now_slot; s++)
		for (int i = 0; i < nctr; i++)
			for (int n = 0; n < nn; n++)
				if (sh->peers & (UINT64_C(1) << n))
					pipe_arg(p, "%" PRId64 ".%c.%s", s,
					         fg_share_ctr_letter((enum fg_counter)ctrs[i]),
					         sh->nodes[n]);
}

/* One XADD to the feed naming the keys of w[] pushed this round (in
 * entries of at most SH_FEED_KEYS): the other hosts fetch those keys,
 * and only those, if they are hot there. */
static void
build_announce(fg_share *sh, struct pipe *p, const struct work *w, size_t nw)
{
	const struct params *pr = &sh->tp;
	size_t named = SH_FEED_KEYS;

	for (size_t k = 0; k < nw && !p->nomem; k++) {
		if (!w[k].pushed)
			continue;
		if (named == SH_FEED_KEYS) {
			pipe_xadd(p, pr->prefix, "feed", SH_FEED_MAXLEN);
			pipe_arg(p, "node");
			pipe_arg(p, "%s", pr->node);
			named = 0;
		}
		pipe_arg(p, "k");
		pipe_arg(p, "%s", w[k].e->key);
		named++;
	}
}

/* The keys' part of the pipeline, within the command budget: the keys
 * on the pending lists, a shard at a time.  A shard's lock is held for
 * SH_SCAN_SLICE keys at a time, so that a callback waits at most that
 * long. */
static void
build_keys(fg_share *sh, struct pipe *p, int64_t now_ms)
{
	int ctrs[FG_CNT__COUNT];
	int nctr = ctr_list(sh->tp.ctr_mask, ctrs);
	size_t budget = (size_t)sh->tp.max_commands;
	struct work *w = NULL;
	size_t nw = 0, wcap = 0;
	unsigned i;

	if (nctr == 0)
		return;
	for (i = 0; i < SH_SHARDS && p->n + nw * 3 + 16 < budget; i++) {
		struct shard *s = &sh->shards[(sh->rot + i) % SH_SHARDS];
		struct ent *e, *next;
		size_t k = 0;

		pthread_mutex_lock(&s->mu);
		e = s->pending;
		s->pending = NULL;
		for (; e != NULL; e = next, k++) {
			if (k > 0 && k % SH_SCAN_SLICE == 0) {
				pthread_mutex_unlock(&s->mu);
				pthread_mutex_lock(&s->mu);
			}
			/* Off the list before its state is read: a callback
			 * from now on puts it on again. */
			next = e->pnext;
			e->listed = false;
			if (nw == wcap) {
				size_t cap = wcap ? wcap * 2 : 256;
				struct work *nw2 = realloc(w, cap * sizeof(*w));
				if (nw2 == NULL) {
					/* The rest stays on the list. */
					for (; e != NULL; e = next) {
						next = e->pnext;
						e->listed = false;
						fg_share_ent_list(s, e);
					}
					break;
				}
				w = nw2;
				wcap = cap;
			}
			if (collect_one(sh, s, e, now_ms, &w[nw])) {
				w[nw].s = s;
				nw++;
			}
		}
		pthread_mutex_unlock(&s->mu);
	}
	sh->rot = (sh->rot + i) % SH_SHARDS;
	for (size_t k = 0; k < nw && !p->nomem; k++) {
		build_push(sh, p, &w[k], ctrs, nctr, now_ms);
		if (w[k].pull)
			build_pull(sh, p, &w[k], ctrs, nctr, now_ms);
	}
	build_announce(sh, p, w, nw);
	free(w);
}

/* Bans and lifts made here; how many ops were put in. */
static size_t
build_bans(fg_share *sh, struct pipe *p, int64_t now_ms)
{
	const struct params *pr = &sh->tp;
	size_t n;

	pthread_mutex_lock(&sh->ban_mu);
	n = sh->nbans;
	for (size_t i = 0; i < n; i++) {
		const struct ban_op *b = &sh->bans[i];
		const char *what = b->allow ? "allow" : "ban";

		if (b->lift) {
			pipe_begin(p, OP_IGNORE, NULL);
			pipe_arg(p, "DEL");
			pipe_arg(p, "%s:%s:%s", pr->prefix, what, b->key);
		} else if (b->until_ms > now_ms) {
			pipe_begin(p, OP_IGNORE, NULL);
			pipe_arg(p, "SET");
			pipe_arg(p, "%s:%s:%s", pr->prefix, what, b->key);
			pipe_arg(p, "%" PRId64 " %" PRId64 " %s %s %s", b->until_ms,
			         b->created_ms, pr->node, b->source, b->reason);
			/* An allow without an end has no expiry. */
			if (b->until_ms != INT64_MAX) {
				pipe_arg(p, "PX");
				pipe_arg(p, "%" PRId64, b->until_ms - now_ms);
			}
		} else {
			continue;
		}
		pipe_xadd(p, pr->prefix, "banlog", SH_BANLOG_MAXLEN);
		pipe_arg(p, "op");
		pipe_arg(p, "%s", b->allow ? (b->lift ? "disallow" : "allow")
		                           : (b->lift ? "lift" : "ban"));
		pipe_arg(p, "key");
		pipe_arg(p, "%s", b->key);
		pipe_arg(p, "until");
		pipe_arg(p, "%" PRId64, b->until_ms);
		pipe_arg(p, "created");
		pipe_arg(p, "%" PRId64, b->created_ms);
		pipe_arg(p, "node");
		pipe_arg(p, "%s", pr->node);
		pipe_arg(p, "source");
		pipe_arg(p, "%s", b->source);
		pipe_arg(p, "reason");
		pipe_arg(p, "%s", b->reason);
	}
	pthread_mutex_unlock(&sh->ban_mu);
	return n;
}

/* Drops the first n ops: they went out. */
static void
bans_sent(fg_share *sh, size_t n)
{
	pthread_mutex_lock(&sh->ban_mu);
	for (size_t i = 0; i < n && i < sh->nbans; i++) {
		free(sh->bans[i].key);
		free(sh->bans[i].reason);
		free(sh->bans[i].source);
	}
	if (n > sh->nbans)
		n = sh->nbans;
	memmove(sh->bans, sh->bans + n, (sh->nbans - n) * sizeof(*sh->bans));
	sh->nbans -= n;
	pthread_mutex_unlock(&sh->ban_mu);
}

/* ---- applying ------------------------------------------------------ */

/* A strict non-negative decimal that fits a uint32. */
static bool
parse_u32(const char *s, uint32_t *out)
{
	uint64_t v = 0;

	if (s == NULL || *s == '\0')
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > UINT32_MAX)
			return false;
	}
	*out = (uint32_t)v;
	return true;
}

static bool
parse_i64(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (s == NULL || *s == '\0')
		return false;
	v = strtoll(s, &end, 10);
	if (*end != '\0')
		return false;
	*out = v;
	return true;
}

/* "<slot>.<ctr>.<node>" */
static bool
parse_field(const char *f, int64_t *slot, int *ctr, const char **node)
{
	const char *d1 = strchr(f, '.');
	char num[24];

	if (d1 == NULL || d1 == f || (size_t)(d1 - f) >= sizeof(num) ||
	    d1[1] == '\0' || d1[2] != '.' || d1[3] == '\0')
		return false;
	memcpy(num, f, (size_t)(d1 - f));
	num[d1 - f] = '\0';
	if (!parse_i64(num, slot) || (*ctr = fg_share_ctr_of(d1[1])) < 0)
		return false;
	*node = d1 + 3;
	return true;
}

static void
apply_hgetall(fg_share *sh, struct ent *e, const struct fg_share_reply *r,
              int64_t now_ms)
{
	const struct params *p = &sh->tp;
	int64_t first = now_ms / p->slot_ms - p->horizon_ms / p->slot_ms - 1;
	struct shard *s = fg_share_shard(sh, e->hash);

	if (r->type != FG_SR_ARR)
		return;
	fg_log(FG_LOG_DEBUG, "shared: %s: %s: %zu fields", p->node, e->key,
	       r->n / 2);
	pthread_mutex_lock(&s->mu);
	fg_share_rslot_clear(e);
	for (size_t i = 0; i + 1 < r->n; i += 2) {
		int64_t slot;
		int ctr, node;
		const char *name;
		uint32_t v;

		if (r->elem[i].type != FG_SR_STR || r->elem[i + 1].type != FG_SR_STR ||
		    !parse_field(r->elem[i].s, &slot, &ctr, &name) ||
		    strcmp(name, p->node) == 0 || slot < first ||
		    !parse_u32(r->elem[i + 1].s, &v) ||
		    (node = fg_share_node_index(sh, name)) < 0)
			continue;
		fg_share_rslot_put(e, slot, ctr, node, v);
	}
	e->pulled_ms = now_ms;
	e->pull_tick = sh->ticks;
	e->stale = false;
	e->fresh = false;
	e->known = false;
	pthread_mutex_unlock(&s->mu);
}

static void
apply_hmget(fg_share *sh, const struct op *op, const struct fg_share_reply *r,
            int64_t now_ms)
{
	const struct params *p = &sh->tp;
	struct ent *e = op->e;
	struct shard *s = fg_share_shard(sh, e->hash);
	int ctrs[FG_CNT__COUNT];
	int nctr = ctr_list(p->ctr_mask, ctrs);
	int nn = atomic_load(&sh->nnodes);
	size_t k = 0;

	if (r->type != FG_SR_ARR)
		return;
	pthread_mutex_lock(&s->mu);
	for (int64_t slot = op->slot0; slot <= now_ms / p->slot_ms; slot++)
		for (int i = 0; i < nctr; i++)
			for (int n = 0; n < nn; n++) {
				uint32_t v = 0;
				if (!(op->peers & (UINT64_C(1) << n)))
					continue;
				if (k >= r->n)
					goto out;
				if (r->elem[k].type == FG_SR_STR &&
				    !parse_u32(r->elem[k].s, &v))
					v = 0;
				k++;
				fg_share_rslot_put(e, slot, ctrs[i], n, v);
			}
out:
	e->pulled_ms = now_ms;
	e->pull_tick = sh->ticks;
	pthread_mutex_unlock(&s->mu);
}

static const char *
entry_get(const struct fg_share_reply *fields, const char *name)
{
	for (size_t i = 0; i + 1 < fields->n; i += 2)
		if (fields->elem[i].type == FG_SR_STR &&
		    fields->elem[i + 1].type == FG_SR_STR &&
		    strcmp(fields->elem[i].s, name) == 0)
			return fields->elem[i + 1].s;
	return NULL;
}

/*
 * An allow or disallow of the banlog entry fields, made at id_ms on node.
 * A disallow removes an allow made before it, whatever its source.  An
 * entry of this host's own from before it started is applied too (its
 * source as it was), so that the log replayed at start ends in the state
 * of the last change of each key wherever it was made.
 */
static void
apply_allow_entry(fg_share *sh, const struct fg_share_reply *fields,
                  const char *op, const char *key, const char *node,
                  int64_t id_ms, int64_t now_ms)
{
	const char *reason = entry_get(fields, "reason");
	const char *source = entry_get(fields, "source");
	const char *until_s = entry_get(fields, "until");
	const char *created_s = entry_get(fields, "created");
	bool own = strcmp(node, sh->tp.node) == 0;
	int64_t until = 0, created = id_ms;
	char src[80];

	if (own)
		snprintf(src, sizeof(src), "%s", source != NULL ? source : "");
	else
		snprintf(src, sizeof(src), "peer:%s", node);
	if (strcmp(op, "disallow") == 0) {
		/* Live: whatever the allow's time.  Replayed: not an allow
		 * made here since. */
		int64_t before = id_ms >= sh->started_ms - 1000 ? INT64_MAX
		                                                : id_ms;

		fg_share_apply_allow(sh, key, true, 0, before, NULL, src);
	} else if (parse_i64(until_s, &until) && until > now_ms) {
		if (created_s != NULL && !parse_i64(created_s, &created))
			created = id_ms;
		fg_share_apply_allow(sh, key, false, until, created,
		                     reason != NULL ? reason : "", src);
	}
}

static void
apply_banlog(fg_share *sh, const struct fg_share_reply *r, int64_t now_ms)
{
	const struct params *p = &sh->tp;

	if (r->type != FG_SR_ARR)
		return;
	for (size_t i = 0; i < r->n; i++) {
		const struct fg_share_reply *en = &r->elem[i];
		const char *id, *op, *key, *node, *reason, *until_s;
		int64_t until = 0, id_ms = 0;
		char src[64];

		if (en->type != FG_SR_ARR || en->n != 2 ||
		    en->elem[0].type != FG_SR_STR || en->elem[1].type != FG_SR_ARR)
			continue;
		id = en->elem[0].s;
		if (strcmp(id, sh->banlog_id) == 0)
			continue;   /* the start of XRANGE is inclusive */
		snprintf(sh->banlog_id, sizeof(sh->banlog_id), "%s", id);
		op = entry_get(&en->elem[1], "op");
		key = entry_get(&en->elem[1], "key");
		node = entry_get(&en->elem[1], "node");
		reason = entry_get(&en->elem[1], "reason");
		until_s = entry_get(&en->elem[1], "until");
		if (op == NULL || key == NULL || node == NULL ||
		    strlen(key) >= 320 || key[0] == '\0')
			continue;
		id_ms = strtoll(id, NULL, 10);
		if (strcmp(op, "allow") == 0 || strcmp(op, "disallow") == 0) {
			if (strcmp(node, p->node) != 0 ||
			    id_ms < sh->started_ms - 1000)
				apply_allow_entry(sh, &en->elem[1], op, key, node,
				                  id_ms, now_ms);
			continue;
		}
		if (strcmp(node, p->node) == 0)
			continue;
		if (sh->host.ban_ok != NULL && !sh->host.ban_ok(sh->host.ctx, key))
			continue;
		snprintf(src, sizeof(src), "peer:%s", node);
		if (strcmp(op, "lift") == 0) {
			uint64_t h = fg_share_hash(sh, key);
			struct shard *s = fg_share_shard(sh, h);
			struct ent *e;
			/* An old lift lifts, but forgets no counts of today. */
			bool recent = id_ms >= sh->started_ms - 1000;

			fg_share_apply_ban(sh, key, true, recent, 0, NULL, src,
			                   now_ms);
			pthread_mutex_lock(&s->mu);
			if (recent && (e = fg_share_ent_find(s, h, key)) != NULL) {
				e->withdraw = true;
				fg_share_rslot_clear(e);
				fg_share_ent_list(s, e);
			}
			pthread_mutex_unlock(&s->mu);
		} else if (strcmp(op, "ban") == 0 && parse_i64(until_s, &until) &&
		           until > now_ms) {
			if (until - now_ms > p->max_remote_ban_ms)
				until = now_ms + p->max_remote_ban_ms;
			fg_share_apply_ban(sh, key, false, false, until,
			                   reason != NULL ? reason : "", src, now_ms);
		}
	}
}

/* Where the feed ends (XREVRANGE ... COUNT 1): this host reads it from
 * there on.  What came before, it fetches whole when it first sees a
 * key, for a horizon; when there is no feed yet, no peer pushed anything
 * that is still there, and this host follows it from its start. */
static void
apply_feed_end(fg_share *sh, const struct fg_share_reply *r, int64_t now_ms)
{
	if (r->type != FG_SR_ARR)
		return;
	if (r->n > 0 && r->elem[0].type == FG_SR_ARR && r->elem[0].n == 2 &&
	    r->elem[0].elem[0].type == FG_SR_STR) {
		snprintf(sh->feed_id, sizeof(sh->feed_id), "%s",
		         r->elem[0].elem[0].s);
		sh->feed_from_ms = now_ms;
	} else {
		snprintf(sh->feed_id, sizeof(sh->feed_id), "0-0");
		sh->feed_from_ms = INT64_MIN;
	}
}

struct pulls {
	struct ent **e;
	size_t n, cap;
};

static bool
pulls_add(struct pulls *l, struct ent *e)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct ent **ne = realloc(l->e, cap * sizeof(*ne));
		if (ne == NULL)
			return false;
		l->e = ne;
		l->cap = cap;
	}
	l->e[l->n++] = e;
	return true;
}

/*
 * The feed, from the entry read last: the keys the other hosts pushed.
 * A key held here is marked as wanted; one hot here and not fetched in
 * this round trip (whose fetches came after the feed was read) goes into
 * *out, to be fetched at once.  A gap (the entry read last was trimmed,
 * or the server lost the feed) marks every key to be fetched whole.
 */
static void
apply_feed(fg_share *sh, const struct fg_share_reply *r, int64_t now_ms,
           struct pulls *out)
{
	const struct params *p = &sh->tp;
	bool gap = false, full = false;

	if (r->type != FG_SR_ARR)
		return;
	for (size_t i = 0; i < r->n; i++) {
		const struct fg_share_reply *en = &r->elem[i], *f;
		const char *id, *node;

		if (en->type != FG_SR_ARR || en->n != 2 ||
		    en->elem[0].type != FG_SR_STR || en->elem[1].type != FG_SR_ARR)
			continue;
		id = en->elem[0].s;
		if (i == 0 && sh->feed_id[0] != '\0' &&
		    strcmp(sh->feed_id, "0-0") != 0 && strcmp(id, sh->feed_id) != 0)
			gap = true;
		if (strcmp(id, sh->feed_id) == 0)
			continue;   /* the start of XRANGE is inclusive */
		snprintf(sh->feed_id, sizeof(sh->feed_id), "%s", id);
		f = &en->elem[1];
		node = entry_get(f, "node");
		if (node == NULL || strcmp(node, p->node) == 0)
			continue;
		for (size_t j = 0; j + 1 < f->n; j += 2) {
			const char *key = f->elem[j + 1].s;
			uint64_t h;
			struct shard *s;
			struct ent *e;

			if (f->elem[j].type != FG_SR_STR ||
			    f->elem[j + 1].type != FG_SR_STR ||
			    strcmp(f->elem[j].s, "k") != 0 || key[0] == '\0')
				continue;
			h = fg_share_hash(sh, key);
			if (!ann_put(sh, h, now_ms))
				full = true;
			s = fg_share_shard(sh, h);
			pthread_mutex_lock(&s->mu);
			if ((e = fg_share_ent_find(s, h, key)) != NULL &&
			    e->pull_tick != sh->ticks) {
				e->peer_ms = now_ms;
				if (!is_hot(sh, e, now_ms)) {
					/* Older slots may change before it is hot again. */
					e->want |= SH_WANT_ALL;
				} else {
					e->want |= e->pulled_ms > 0 && !e->known
					           ? SH_WANT_SLOTS : SH_WANT_ALL;
					if (!(e->want & SH_WANT_QUEUED) && pulls_add(out, e)) {
						e->want |= SH_WANT_QUEUED;
						out->e[out->n++] = e;
					}
				}
			}
			pthread_mutex_unlock(&s->mu);
		}
	}
	if (r->n >= SH_FEED_COUNT)
		atomic_store(&sh->urgent, true);   /* more to read: soon */
	if (full) {
		/* Too many keys named: start again, and fetch the keys new
		 * here for a horizon. */
		ann_rebuild(sh, INT64_MAX, 0);
		sh->feed_from_ms = now_ms;
	}
	if (gap) {
		fg_log(FG_LOG_DEBUG, "shared: %s: feed entries were lost: "
		       "fetching every key whole", p->node);
		sh->feed_from_ms = now_ms;
		fg_share_mark_all(sh, INT64_MIN);
	}
}

/* The second round trip of a sync: the keys of the feed hot here.  0, or
 * FG_EIO with a reason. */
static int
pull_now(fg_share *sh, struct pulls *l, int64_t now_ms, char *reason,
         size_t size)
{
	int ctrs[FG_CNT__COUNT];
	int nctr = ctr_list(sh->tp.ctr_mask, ctrs);
	struct pipe p = {0};
	struct fg_share_reply *replies = NULL;
	char err[192] = "";
	int rc = 0;

	for (size_t k = 0; k < l->n; k++) {
		struct work w = {.e = l->e[k]};
		struct shard *s = fg_share_shard(sh, w.e->hash);

		pthread_mutex_lock(&s->mu);
		w.e->want &= (uint8_t)~SH_WANT_QUEUED;
		/* Beyond the budget, it waits for the next round. */
		if (p.n < (size_t)sh->tp.max_commands)
			w.pull = pull_of(sh, w.e, now_ms);
		else
			fg_share_ent_list(s, w.e);
		pthread_mutex_unlock(&s->mu);
		if (w.pull != 0 && nctr > 0)
			build_pull(sh, &p, &w, ctrs, nctr, now_ms);
	}
	if (p.n == 0) {
		pipe_free(&p);
		return 0;
	}
	if (p.nomem || (replies = calloc(p.n, sizeof(*replies))) == NULL) {
		snprintf(reason, size, "out of memory");
		rc = FG_EIO;
	} else if (sh->t.exchange(sh->t.ctx, p.cmds, p.n, replies, err,
	                          sizeof(err)) != 0) {
		snprintf(reason, size, "%s", err[0] ? err : "round trip failed");
		rc = FG_EIO;
	} else {
		for (size_t i = 0; i < p.n && rc == 0; i++)
			if (replies[i].type == FG_SR_ERR) {
				snprintf(reason, size, "%s: %s", p.cmds[i].argv[0],
				         replies[i].s != NULL ? replies[i].s : "error");
				rc = FG_EIO;
			}
		for (size_t i = 0; i < p.n && rc == 0; i++) {
			if (p.ops[i].kind == OP_HGETALL)
				apply_hgetall(sh, p.ops[i].e, &replies[i], now_ms);
			else if (p.ops[i].kind == OP_HMGET)
				apply_hmget(sh, &p.ops[i], &replies[i], now_ms);
		}
	}
	pthread_mutex_lock(&sh->st_mu);
	sh->st.commands += p.n;
	pthread_mutex_unlock(&sh->st_mu);
	for (size_t i = 0; replies != NULL && i < p.n; i++)
		fg_share_reply_free(&replies[i]);
	free(replies);
	pipe_free(&p);
	return rc;
}

/* "last_ms slot_ms version token skew_ms gen": the first, fourth and
 * sixth words (later ones may be missing). */
static bool
parse_heartbeat(const char *v, int64_t *last, char *token, size_t size,
                int64_t *gen)
{
	char *end;
	const char *w = v;

	*last = strtoll(v, &end, 10);
	if (end == v)
		return false;
	for (int i = 1; i <= 5 && *w != '\0'; i++) {
		w = strchr(w, ' ');
		if (w == NULL)
			return true;
		w++;
		if (i == 3) {
			size_t n = strcspn(w, " ");
			snprintf(token, size, "%.*s", (int)n, w);
		} else if (i == 5) {
			*gen = strtoll(w, NULL, 10);
		}
	}
	return true;
}

static void
apply_nodes(fg_share *sh, const struct fg_share_reply *r, int64_t now_ms)
{
	const struct params *p = &sh->tp;
	uint64_t live = 0;
	int64_t npeers = 0;
	bool grew = false;

	if (r->type != FG_SR_ARR)
		return;
	for (size_t i = 0; i + 1 < r->n; i += 2) {
		const char *name = r->elem[i].s, *val = r->elem[i + 1].s;
		int64_t last = 0, gen = 0;
		char token[24] = "";
		int idx;

		if (name == NULL || val == NULL ||
		    !parse_heartbeat(val, &last, token, sizeof(token), &gen))
			continue;
		if (strcmp(name, p->node) == 0) {
			/* Another host under this name: its token, fresh, and
			 * moving on (not a restart of this one). */
			if (token[0] != '\0' && strcmp(token, sh->token) != 0 &&
			    now_ms - last < 5000) {
				if (strcmp(token, sh->collide_token) == 0 &&
				    last != sh->collide_last)
					sh->collisions++;
				snprintf(sh->collide_token, sizeof(sh->collide_token),
				         "%s", token);
				sh->collide_last = last;
			}
			continue;
		}
		if ((idx = fg_share_node_index(sh, name)) >= 0)
			atomic_store(&sh->node_last[idx], last);
		if (now_ms - last > SH_PEER_FRESH_MS || idx < 0)
			continue;
		/* A new peer, or one that connected again (and pushed all
		 * again, older slots too): fetch every key whole. */
		if (!(sh->peers & (UINT64_C(1) << idx)) ||
		    sh->peer_gen[idx] != gen) {
			fg_log(FG_LOG_DEBUG, "shared: %s: peer %s is new or "
			       "published again (%" PRId64 "): fetching every key whole",
			       p->node, name, gen);
			grew = true;
		}
		sh->peer_gen[idx] = gen;
		live |= UINT64_C(1) << idx;
		npeers++;
	}
	sh->peers = live;
	sh->npeers = npeers;
	if (sh->collisions >= 2 && !sh->collided) {
		sh->collided = true;
		fg_log(FG_LOG_ERR, "shared: another host is named %s too: this "
		       "one stops publishing; give each host its own node",
		       p->node);
	}
	if (grew)
		fg_share_mark_all(sh, INT64_MIN);
}

static void
apply_time(fg_share *sh, const struct fg_share_reply *r, int64_t now_ms,
           int64_t rtt_ms)
{
	int64_t sec, usec, skew, mag;

	if (r->type != FG_SR_ARR || r->n != 2 || !parse_i64(r->elem[0].s, &sec) ||
	    !parse_i64(r->elem[1].s, &usec))
		return;
	skew = sec * 1000 + usec / 1000 - (now_ms + rtt_ms / 2);
	mag = skew < 0 ? -skew : skew;
	pthread_mutex_lock(&sh->st_mu);
	sh->st.skew_ms = skew;
	pthread_mutex_unlock(&sh->st_mu);
	if (sh->tp.warn_skew_ms <= 0)
		return;
	if (mag > sh->tp.warn_skew_ms && !sh->skew_warned) {
		sh->skew_warned = true;
		fg_log(FG_LOG_WARNING, "shared: clock is %" PRId64 "ms off the "
		       "server's (%s): shared counts are placed in time by each "
		       "host's clock; run NTP", mag, skew < 0 ? "ahead" : "behind");
	} else if (mag * 2 < sh->tp.warn_skew_ms && sh->skew_warned) {
		sh->skew_warned = false;
		fg_log(FG_LOG_INFO, "shared: clock is within %" PRId64 "ms of "
		       "the server's again", sh->tp.warn_skew_ms);
	}
}

/* Everything again, and a new generation in the heartbeat at once, so
 * that the peers fetch every key whole once it is there. */
void
fg_share_republish(fg_share *sh, int64_t now_ms)
{
	fg_share_mark_all(sh, now_ms);
	sh->gen++;
	sh->last_nodes_ms = INT64_MIN / 2;
}

static void
apply_epoch(fg_share *sh, const struct fg_share_reply *r, int64_t now_ms)
{
	if (r->type == FG_SR_NIL) {
		if (sh->epoch[0] != '\0') {
			fg_log(FG_LOG_INFO, "shared: the server lost its data: "
			       "publishing again");
			fg_share_republish(sh, now_ms);
		}
		sh->epoch[0] = '\0';
		sh->set_epoch = true;
		return;
	}
	if (r->type != FG_SR_STR)
		return;
	if (sh->epoch[0] != '\0' && strcmp(sh->epoch, r->s) != 0) {
		fg_log(FG_LOG_INFO, "shared: the server's data changed under "
		       "this host (a restart or failover): publishing again");
		fg_share_republish(sh, now_ms);
	}
	snprintf(sh->epoch, sizeof(sh->epoch), "%s", r->s);
}

/* Runs fn on every entry, a slice of SH_SCAN_SLICE buckets of a shard per
 * hold of its lock; fn may free the entry (and nothing else).  A shard
 * whose table grew meanwhile is scanned again from its start, so fn must
 * be idempotent. */
static void
each_ent(fg_share *sh, void (*fn)(fg_share *, struct shard *, struct ent *,
                                  const void *), const void *arg)
{
	for (size_t i = 0; i < SH_SHARDS; i++) {
		struct shard *s = &sh->shards[i];

		size_t mask;

		pthread_mutex_lock(&s->mu);
		mask = s->mask;
		for (size_t b = 0; s->tab != NULL && b <= s->mask; b++) {
			if (b > 0 && b % SH_SCAN_SLICE == 0) {
				pthread_mutex_unlock(&s->mu);
				pthread_mutex_lock(&s->mu);
				if (s->mask != mask) {   /* grown: again */
					mask = s->mask;
					b = 0;
				}
			}
			struct ent *e = s->tab[b], *next;
			for (; e != NULL; e = next) {
				next = e->next;
				fn(sh, s, e, arg);
			}
		}
		pthread_mutex_unlock(&s->mu);
	}
}

struct mark_arg {
	int64_t now_ms, slot_ms;
};

static void
mark_one(fg_share *sh, struct shard *s, struct ent *e, const void *arg)
{
	const struct mark_arg *m = arg;

	e->stale = true;
	e->fresh = false;
	fg_share_ent_list(s, e);
	if (m->now_ms != INT64_MIN && e->last_local_ms > 0) {
		int64_t from = (m->now_ms - sh->tp.horizon_ms) / m->slot_ms;
		if (e->pub_lo <= e->pub_hi && e->pub_lo > from)
			from = e->pub_lo;
		if (from < e->dirty_from)
			e->dirty_from = from;
		e->ttl_ms = 0;
	}
}

/* Every key active in the horizon is pushed again whole and fetched whole
 * (now_ms INT64_MIN: only fetched). */
void
fg_share_mark_all(fg_share *sh, int64_t now_ms)
{
	struct mark_arg m = {now_ms, atomic_load(&sh->slot_ms)};

	fg_log(FG_LOG_DEBUG, "shared: %s: %s", sh->tp.node,
	       now_ms == INT64_MIN ? "fetching all" : "publishing all");
	each_ent(sh, mark_one, &m);
}

static void
expire_one(fg_share *sh, struct shard *s, struct ent *e, const void *arg)
{
	const struct params *p = &sh->tp;
	int64_t now_ms = *(const int64_t *)arg;
	int64_t first = now_ms / p->slot_ms - p->horizon_ms / p->slot_ms - 1;

	for (uint32_t k = 0; k < e->nr;)
		if (e->r[k].slot < first) {
			e->r[k] = e->r[--e->nr];
			e->version++;
		} else {
			k++;
		}
	if (e->pub_lo <= e->pub_hi && e->pub_lo < first)
		fg_share_ent_list(s, e);   /* own fields to delete */
	if (e->nr == 0 && e->dirty_from == SH_NONE && !e->withdraw &&
	    !e->listed &&
	    e->last_local_ms < now_ms - p->horizon_ms - 2 * p->slot_ms)
		fg_share_ent_free(sh, s, e);
}

/* Keys neither used here nor counted elsewhere within the horizon go;
 * those with own fields that left it are put on the pending lists. */
static void
expire(fg_share *sh, int64_t now_ms)
{
	each_ent(sh, expire_one, &now_ms);
	if (sh->ann_n > 0)
		ann_rebuild(sh, now_ms - sh->tp.horizon_ms - 2 * sh->tp.slot_ms, 0);
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
fg_share_sync(fg_share *sh, int64_t now_ms, bool keys)
{
	const struct params *pr = &sh->tp;
	struct pipe p = {0};
	struct pulls pulls = {0};
	struct fg_share_reply *replies = NULL;
	char err[192] = "", reason[192] = "";
	size_t nban = 0, feed_op = SIZE_MAX;
	bool nodes_due = now_ms - sh->last_nodes_ms >= SH_NODES_EVERY_MS ||
	                 now_ms < sh->last_nodes_ms;
	bool feed = keys && !sh->readonly;
	int64_t t0;
	int rc = 0;

	sh->ticks++;
	pipe_begin(&p, OP_TIME, NULL);
	pipe_arg(&p, "TIME");
	if (sh->set_epoch && !sh->readonly) {
		pipe_begin(&p, OP_IGNORE, NULL);
		pipe_arg(&p, "SET");
		pipe_arg(&p, "%s:epoch", pr->prefix);
		pipe_arg(&p, "%s-%" PRId64, sh->token, now_ms);
		pipe_arg(&p, "NX");
	}
	pipe_begin(&p, OP_EPOCH, NULL);
	pipe_arg(&p, "GET");
	pipe_arg(&p, "%s:epoch", pr->prefix);
	if (nodes_due) {
		sh->last_nodes_ms = now_ms;
		pipe_begin(&p, OP_NODES, NULL);
		pipe_arg(&p, "HGETALL");
		pipe_arg(&p, "%s:nodes", pr->prefix);
	}
	/* The feed before the keys: what it names was written before the
	 * fetches of this pipeline run, which then see it. */
	if (feed && sh->feed_id[0] == '\0') {
		pipe_begin(&p, OP_FEED_END, NULL);
		pipe_arg(&p, "XREVRANGE");
		pipe_arg(&p, "%s:feed", pr->prefix);
		pipe_arg(&p, "+");
		pipe_arg(&p, "-");
		pipe_arg(&p, "COUNT");
		pipe_arg(&p, "1");
	} else if (feed) {
		feed_op = p.n;
		pipe_begin(&p, OP_FEED, NULL);
		pipe_arg(&p, "XRANGE");
		pipe_arg(&p, "%s:feed", pr->prefix);
		pipe_arg(&p, "%s", sh->feed_id);
		pipe_arg(&p, "+");
		pipe_arg(&p, "COUNT");
		pipe_arg(&p, "%d", SH_FEED_COUNT);
	}
	if (keys && !sh->collided)
		build_keys(sh, &p, now_ms);
	if (keys)
		nban = build_bans(sh, &p, now_ms);
	if (keys && pr->bans && !sh->readonly) {
		pipe_begin(&p, OP_XRANGE, NULL);
		pipe_arg(&p, "XRANGE");
		pipe_arg(&p, "%s:banlog", pr->prefix);
		pipe_arg(&p, "%s", sh->banlog_id[0] ? sh->banlog_id : "-");
		pipe_arg(&p, "+");
		pipe_arg(&p, "COUNT");
		pipe_arg(&p, "%d", SH_BANLOG_COUNT);
	}
	if (nodes_due && !sh->collided && !sh->readonly) {
		pipe_begin(&p, OP_IGNORE, NULL);
		pipe_arg(&p, "HSET");
		pipe_arg(&p, "%s:nodes", pr->prefix);
		pipe_arg(&p, "%s", pr->node);
		pipe_arg(&p, "%" PRId64 " %" PRId64 " %s %s %" PRId64 " %" PRId64,
		         now_ms, pr->slot_ms, FG_VERSION, sh->token,
		         sh->st.skew_ms, sh->gen);
	}
	if (p.nomem || (replies = calloc(p.n, sizeof(*replies))) == NULL) {
		pipe_free(&p);
		fg_share_set_state(sh, FG_SHARE_DEGRADED, "out of memory");
		return FG_ENOMEM;
	}
	t0 = mono_ms();
	if (sh->t.exchange(sh->t.ctx, p.cmds, p.n, replies, err,
	                   sizeof(err)) != 0) {
		snprintf(reason, sizeof(reason), "%s", err[0] ? err : "round trip failed");
		rc = FG_EIO;
		goto done;
	}
	for (size_t i = 0; i < p.n; i++) {
		if (replies[i].type == FG_SR_ERR) {
			snprintf(reason, sizeof(reason), "%s: %s",
			         p.cmds[i].argv[0],
			         replies[i].s != NULL ? replies[i].s : "error");
			rc = FG_EIO;
			goto done;
		}
	}
	for (size_t i = 0; i < p.n; i++) {
		switch (p.ops[i].kind) {
		case OP_TIME:
			apply_time(sh, &replies[i], now_ms, mono_ms() - t0);
			break;
		case OP_EPOCH:
			if (!sh->set_epoch || replies[i].type != FG_SR_NIL)
				sh->set_epoch = false;
			apply_epoch(sh, &replies[i], now_ms);
			break;
		case OP_HGETALL:
			apply_hgetall(sh, p.ops[i].e, &replies[i], now_ms);
			break;
		case OP_HMGET:
			apply_hmget(sh, &p.ops[i], &replies[i], now_ms);
			break;
		case OP_XRANGE:
			apply_banlog(sh, &replies[i], now_ms);
			break;
		case OP_NODES:
			apply_nodes(sh, &replies[i], now_ms);
			break;
		case OP_FEED_END:
			apply_feed_end(sh, &replies[i], now_ms);
			break;
		case OP_FEED:       /* after the fetches: below */
		case OP_IGNORE:
			break;
		}
	}
	bans_sent(sh, nban);
	if (feed_op != SIZE_MAX) {
		apply_feed(sh, &replies[feed_op], now_ms, &pulls);
		if (pulls.n > 0)
			rc = pull_now(sh, &pulls, now_ms, reason, sizeof(reason));
		if (rc != 0)
			goto done;
		atomic_store(&sh->fresh_ms, now_ms);
	}
	/* Own fields and remote slots leave the horizon a slot at a time. */
	if (now_ms - sh->last_expire_ms >= (pr->slot_ms > 1000 ? pr->slot_ms : 1000) ||
	    now_ms < sh->last_expire_ms) {
		expire(sh, now_ms);
		sh->last_expire_ms = now_ms;
	}
done:
	free(pulls.e);
	pthread_mutex_lock(&sh->st_mu);
	if (rc == 0) {
		sh->st.syncs++;
		sh->st.last_sync_ms = now_ms;
		sh->st.peers = sh->npeers;
	} else {
		sh->st.failures++;
	}
	sh->st.commands += p.n;
	pthread_mutex_unlock(&sh->st_mu);
	if (rc == 0 && sh->collided)
		fg_share_set_state(sh, FG_SHARE_DEGRADED, "node name in use by "
		                   "another host");
	else if (rc == 0)
		fg_share_set_state(sh, FG_SHARE_OK, "");
	else
		fg_share_set_state(sh, FG_SHARE_DEGRADED, reason);
	for (size_t i = 0; i < p.n; i++)
		fg_share_reply_free(&replies[i]);
	free(replies);
	pipe_free(&p);
	return rc;
}
