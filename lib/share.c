/*
 * share.c - counts shared between hosts: the cache of keys, the callback
 * path (note, remote), the configuration, the state, the sync thread and
 * its connection with backoff.  One round trip is share_sync.c.
 *
 * Choices made here:
 *
 *  - Only counters that a shared rule reads, and only keys of the kinds
 *    shared rules count by, are pushed: an unshared rule costs nothing.
 *  - The callback path takes one shard lock for a hash look-up and a
 *    few stores; the sync thread takes it only to copy in or out.  When
 *    SH_MAX_KEYS keys are held, new ones are not shared (counted).
 *  - The remote part of a window weights the oldest slot by the part of
 *    it inside the window; a slot stamped later than now (a peer's clock
 *    ahead) counts whole, as the store counts a later event at now.
 *  - Backoff after a failure: 100 ms doubling to 5 s, each pause drawn
 *    between three quarters and the whole of it, so that hosts that lost
 *    the server together do not return together.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fg.h"
#include "keys.h"
#include "log.h"
#include "share_internal.h"

static _Thread_local bool applying_remote;

const char *
fg_share_state_name(enum fg_share_state s)
{
	switch (s) {
	case FG_SHARE_OFF: return "off";
	case FG_SHARE_OK: return "ok";
	case FG_SHARE_DEGRADED: return "degraded";
	}
	return "?";
}

void
fg_share_reply_free(struct fg_share_reply *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n; i++)
		fg_share_reply_free(&r->elem[i]);
	free(r->elem);
	free(r->s);
	memset(r, 0, sizeof(*r));
}

char
fg_share_ctr_letter(enum fg_counter c)
{
	switch (c) {
	case FG_CNT_CONNECT: return 'c';
	case FG_CNT_HELO: return 'h';
	case FG_CNT_MAIL: return 'm';
	case FG_CNT_RCPT: return 'r';
	case FG_CNT_RCPT_VALID: return 'v';
	case FG_CNT_RCPT_INVALID: return 'i';
	case FG_CNT_RCPT_REJECTED: return 'j';
	case FG_CNT_RCPT_SAMPLE: return 's';
	default: return 0;
	}
}

int
fg_share_ctr_of(char letter)
{
	for (int c = 0; c < FG_CNT__COUNT; c++)
		if (fg_share_ctr_letter((enum fg_counter)c) == letter)
			return c;
	return -1;
}

/* ---- the cache ----------------------------------------------------- */

uint64_t
fg_share_hash(const fg_share *sh, const char *key)
{
	uint64_t h = 0xcbf29ce484222325u ^ sh->seed;

	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 0x100000001b3u;
	return h ^ (h >> 29);
}

struct shard *
fg_share_shard(fg_share *sh, uint64_t h)
{
	return &sh->shards[(h >> 40) & (SH_SHARDS - 1)];
}

struct ent *
fg_share_ent_find(struct shard *s, uint64_t h, const char *key)
{
	if (s->tab == NULL)
		return NULL;
	for (struct ent *e = s->tab[h & s->mask]; e != NULL; e = e->next)
		if (e->hash == h && strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

static int
shard_grow(struct shard *s)
{
	size_t nsize = s->tab == NULL ? 64 : (s->mask + 1) * 2;
	struct ent **nt = calloc(nsize, sizeof(*nt));

	if (nt == NULL)
		return FG_ENOMEM;
	for (size_t i = 0; s->tab != NULL && i <= s->mask; i++) {
		struct ent *e = s->tab[i], *next;
		for (; e != NULL; e = next) {
			next = e->next;
			e->next = nt[e->hash & (nsize - 1)];
			nt[e->hash & (nsize - 1)] = e;
		}
	}
	free(s->tab);
	s->tab = nt;
	s->mask = nsize - 1;
	return 0;
}

/* Under s->mu. */
static struct ent *
ent_get(fg_share *sh, struct shard *s, uint64_t h, const char *key)
{
	struct ent *e = fg_share_ent_find(s, h, key);
	size_t len;

	if (e != NULL)
		return e;
	if (atomic_load(&sh->nkeys) >= SH_MAX_KEYS) {
		atomic_fetch_add(&sh->keys_refused, 1);
		return NULL;
	}
	if ((s->tab == NULL || s->n >= s->mask + 1) && shard_grow(s) != 0)
		return NULL;
	len = strlen(key);
	if ((e = calloc(1, sizeof(*e) + len + 1)) == NULL)
		return NULL;
	memcpy(e->key, key, len + 1);
	e->hash = h;
	e->dirty_from = SH_NONE;
	e->pub_lo = SH_NONE;
	e->pub_hi = INT64_MIN;
	e->stale = true;
	e->fresh = true;
	e->memo_ctr = -1;
	e->next = s->tab[h & s->mask];
	s->tab[h & s->mask] = e;
	s->n++;
	atomic_fetch_add(&sh->nkeys, 1);
	return e;
}

void
fg_share_ent_free(fg_share *sh, struct shard *s, struct ent *e)
{
	struct ent **pp = &s->tab[e->hash & s->mask];

	while (*pp != NULL && *pp != e)
		pp = &(*pp)->next;
	if (*pp == e)
		*pp = e->next;
	s->n--;
	atomic_fetch_sub(&sh->nkeys, 1);
	free(e->r);
	free(e);
}

void
fg_share_ent_list(struct shard *s, struct ent *e)
{
	if (e->listed)
		return;
	e->listed = true;
	e->pnext = s->pending;
	s->pending = e;
}

void
fg_share_rslot_clear(struct ent *e)
{
	e->nr = 0;
	e->version++;
}

void
fg_share_rslot_put(struct ent *e, int64_t slot, int ctr, int node,
                   uint32_t value)
{
	e->version++;
	for (uint32_t i = 0; i < e->nr; i++) {
		struct rslot *r = &e->r[i];
		if (r->slot == slot && r->ctr == ctr && r->node == node) {
			if (value == 0)
				*r = e->r[--e->nr];
			else
				r->value = value;
			return;
		}
	}
	if (value == 0)
		return;
	if (e->nr == e->rcap) {
		uint32_t cap = e->rcap ? e->rcap * 2 : 8;
		struct rslot *nr = realloc(e->r, cap * sizeof(*nr));
		if (nr == NULL)
			return;
		e->r = nr;
		e->rcap = cap;
	}
	e->r[e->nr++] = (struct rslot){slot, value, (uint8_t)ctr, (uint8_t)node};
}

int
fg_share_node_index(fg_share *sh, const char *name)
{
	int n = atomic_load(&sh->nnodes);
	size_t len = strlen(name);

	if (len == 0 || len >= sizeof(sh->nodes[0]))
		return -1;
	for (int i = 0; i < n; i++)
		if (strcmp(sh->nodes[i], name) == 0)
			return i;
	if (n >= FG_SHARE_MAX_NODES)
		return -1;
	/* Only the sync thread appends: write, then publish the count. */
	memcpy(sh->nodes[n], name, len + 1);
	atomic_store(&sh->nnodes, n + 1);
	return n;
}

char *
fg_share_node_names(fg_share *sh, uint64_t nodes, char *buf, size_t size)
{
	int n = atomic_load(&sh->nnodes);
	size_t used = 0;

	if (size > 0)
		buf[0] = '\0';
	for (int i = 0; i < n && i < 64 && size > 0; i++) {
		if (!(nodes & (UINT64_C(1) << i)))
			continue;
		int w = snprintf(buf + used, size - used, "%s%s",
		                 used > 0 ? ", " : "", sh->nodes[i]);
		if (w < 0 || (size_t)w >= size - used)
			break;
		used += (size_t)w;
	}
	return buf;
}

/* ---- the callback path -------------------------------------------- */

void
fg_share_note(fg_share *sh, const char *key, const enum fg_counter *ctrs,
              size_t n, int64_t time_ms)
{
	unsigned mask = 0, want;
	uint64_t h;
	struct shard *s;
	struct ent *e;
	int64_t slot_ms;

	if (sh == NULL || !atomic_load_explicit(&sh->active, memory_order_relaxed))
		return;
	want = atomic_load_explicit(&sh->ctr_mask, memory_order_relaxed);
	for (size_t i = 0; i < n; i++)
		mask |= 1u << ctrs[i];
	if ((mask & want) == 0 ||
	    !(atomic_load_explicit(&sh->key_mask, memory_order_relaxed) &
	      (1u << fg_key_type_of(key))))
		return;
	slot_ms = atomic_load_explicit(&sh->slot_ms, memory_order_relaxed);
	h = fg_share_hash(sh, key);
	s = fg_share_shard(sh, h);
	pthread_mutex_lock(&s->mu);
	if ((e = ent_get(sh, s, h, key)) != NULL) {
		int64_t slot = time_ms / slot_ms;
		if (time_ms > e->last_local_ms)
			e->last_local_ms = time_ms;
		if (slot < e->dirty_from)
			e->dirty_from = slot;
		fg_share_ent_list(s, e);
	}
	pthread_mutex_unlock(&s->mu);
}

int64_t
fg_share_remote(fg_share *sh, const char *key, enum fg_counter c,
                int64_t window_ms, int64_t now_ms, int64_t local,
                int64_t limit, struct fg_share_part *out)
{
	struct fg_share_part part = {0, -1, 0};
	int64_t slot_ms, lo, k, full = 0, edge = 0;
	double partial = 0.0;
	uint64_t h;
	struct shard *s;
	struct ent *e;

	if (sh == NULL || !atomic_load_explicit(&sh->active, memory_order_relaxed)) {
		if (out != NULL)
			*out = part;
		return 0;
	}
	slot_ms = atomic_load_explicit(&sh->slot_ms, memory_order_relaxed);
	lo = now_ms - window_ms;   /* the window is (lo, now] */
	h = fg_share_hash(sh, key);
	s = fg_share_shard(sh, h);
	pthread_mutex_lock(&s->mu);
	if ((e = fg_share_ent_find(s, h, key)) != NULL) {
		if (e->pulled_ms > 0) {
			/* Fetched then, and no peer pushed it since as of the
			 * last read of the feed (unless it is wanted). */
			int64_t at = e->pulled_ms;
			int64_t fresh = atomic_load_explicit(&sh->fresh_ms,
			                                     memory_order_relaxed);
			if (!e->stale && !(e->want & (SH_WANT_SLOTS | SH_WANT_ALL)) &&
			    fresh > at)
				at = fresh;
			part.age_ms = now_ms > at ? now_ms - at : 0;
		}
		/* Slots after k are inside the window whole, slot k in part
		 * (or not at all when it ends at lo + 1). */
		k = lo >= 0 ? lo / slot_ms : -((-lo + slot_ms - 1) / slot_ms);
		if (e->memo_ctr != (int)c || e->memo_k != k ||
		    e->memo_version != e->version) {
			e->memo_full = e->memo_edge = 0;
			e->memo_nodes = 0;
			for (uint32_t i = 0; i < e->nr; i++) {
				const struct rslot *r = &e->r[i];

				if (r->ctr != c || r->slot < k)
					continue;
				if (r->slot > k)
					e->memo_full += r->value;
				else
					e->memo_edge += r->value;
				e->memo_nodes |= UINT64_C(1) << (r->node & 63);
			}
			e->memo_ctr = (int)c;
			e->memo_k = k;
			e->memo_version = e->version;
		}
		full = e->memo_full;
		edge = e->memo_edge;
		part.nodes = e->memo_nodes;
	}
	pthread_mutex_unlock(&s->mu);
	if (edge > 0) {
		int64_t end = (k + 1) * slot_ms;
		if (end > lo + 1)
			partial = (double)edge * (double)(end - (lo + 1)) /
			          (double)slot_ms;
	}
	if (sh->readonly && part.nodes != 0) {
		/* A reader's fetch is fresh; the data is as old as the
		 * oldest heartbeat of the hosts that wrote it. */
		int64_t oldest = INT64_MAX;
		for (int i = 0; i < FG_SHARE_MAX_NODES; i++) {
			int64_t last = atomic_load(&sh->node_last[i]);
			if ((part.nodes & (UINT64_C(1) << i)) && last > 0 &&
			    last < oldest)
				oldest = last;
		}
		if (oldest != INT64_MAX)
			part.age_ms = now_ms > oldest ? now_ms - oldest : 0;
	}
	part.count = full + (int64_t)floor(partial + 0.5);
	if (limit > 0 && (local + part.count) * 2 > limit)
		atomic_store_explicit(&sh->urgent, true, memory_order_relaxed);
	if (out != NULL)
		*out = part;
	return part.count;
}

/* op (its kind and times) waits to go out with key, reason and source,
 * when bans are shared. */
static void
queue_op(fg_share *sh, struct ban_op *opp, const char *key,
         const char *reason, const char *source)
{
	struct ban_op op = *opp;

	pthread_mutex_lock(&sh->cfg_mu);
	bool share_bans = sh->p.bans;
	pthread_mutex_unlock(&sh->cfg_mu);
	if (!share_bans)
		return;
	op.key = strdup(key);
	op.reason = strdup(reason != NULL ? reason : "");
	op.source = strdup(source != NULL ? source : "");
	pthread_mutex_lock(&sh->ban_mu);
	if (op.key != NULL && op.reason != NULL && op.source != NULL &&
	    sh->nbans < SH_MAX_BAN_OPS) {
		sh->bans[sh->nbans++] = op;
		op.key = op.reason = op.source = NULL;
	} else {
		sh->bans_lost++;
	}
	pthread_mutex_unlock(&sh->ban_mu);
	free(op.key);
	free(op.reason);
	free(op.source);
}

void
fg_share_ban_changed(fg_share *sh, const char *key, bool lift,
                     int64_t until_ms, int64_t created_ms,
                     const char *reason, const char *source)
{
	struct ban_op op = {0};

	if (sh == NULL || applying_remote ||
	    !atomic_load_explicit(&sh->active, memory_order_relaxed))
		return;
	if (source != NULL && strncmp(source, "peer:", 5) == 0)
		return;
	if (lift) {
		/* This host's counts of the key go too (the store forgets
		 * them on an unban): withdraw what was pushed. */
		uint64_t h = fg_share_hash(sh, key);
		struct shard *s = fg_share_shard(sh, h);
		struct ent *e;

		pthread_mutex_lock(&s->mu);
		if ((e = fg_share_ent_find(s, h, key)) != NULL) {
			e->withdraw = true;
			fg_share_rslot_clear(e);
			fg_share_ent_list(s, e);
		}
		pthread_mutex_unlock(&s->mu);
	}
	op.lift = lift;
	op.until_ms = until_ms;
	op.created_ms = created_ms;
	queue_op(sh, &op, key, reason, source);
}

void
fg_share_apply_ban(fg_share *sh, const char *key, bool lift, bool reset,
                   int64_t until_ms, const char *reason, const char *source,
                   int64_t now_ms)
{
	applying_remote = true;
	if (lift && sh->host.lift != NULL)
		sh->host.lift(sh->host.ctx, key, reset);
	else if (!lift && sh->host.ban != NULL)
		sh->host.ban(sh->host.ctx, key, until_ms, reason, source, now_ms);
	applying_remote = false;
}

void
fg_share_allow_changed(fg_share *sh, const char *key, bool disallow,
                       int64_t until_ms, int64_t created_ms,
                       const char *reason, const char *source)
{
	struct ban_op op = {0};

	if (sh == NULL || key == NULL || applying_remote ||
	    !atomic_load_explicit(&sh->active, memory_order_relaxed))
		return;
	if (source != NULL && strncmp(source, "peer:", 5) == 0)
		return;
	op.allow = true;
	op.lift = disallow;
	op.until_ms = until_ms;
	op.created_ms = created_ms;
	queue_op(sh, &op, key, reason, source);
}

void
fg_share_apply_allow(fg_share *sh, const char *key, bool disallow,
                     int64_t until_ms, int64_t created_ms, const char *reason,
                     const char *source)
{
	applying_remote = true;
	if (disallow && sh->host.disallow != NULL)
		sh->host.disallow(sh->host.ctx, key, created_ms);
	else if (!disallow && sh->host.allow != NULL)
		sh->host.allow(sh->host.ctx, key, until_ms, created_ms, reason,
		               source);
	applying_remote = false;
}

/* ---- configuration ------------------------------------------------- */

static unsigned
key_type_of_per(enum fg_per p)
{
	switch (p) {
	case FG_PER_ADDRESS: return 1u << FG_KEY_ADDRESS;
	case FG_PER_NETWORK: return 1u << FG_KEY_NETWORK;
	case FG_PER_HELO: return 1u << FG_KEY_HELO;
	case FG_PER_RCPT_DOMAIN: return 1u << FG_KEY_RCPT_DOMAIN;
	case FG_PER_SENDER_DOMAIN: return 1u << FG_KEY_SENDER_DOMAIN;
	case FG_PER_GLOBAL: return 1u << FG_KEY_GLOBAL;
	default: return 0;
	}
}

static unsigned
rule_ctr_mask(const struct fg_rule *r)
{
	switch (r->type) {
	case FG_RULE_CONNECTION_RATE: return 1u << FG_CNT_CONNECT;
	case FG_RULE_RECIPIENT_RATE: return 1u << FG_CNT_RCPT;
	case FG_RULE_REJECTED_RECIPIENTS: return 1u << FG_CNT_RCPT_REJECTED;
	case FG_RULE_HELO_RATE: return 1u << FG_CNT_HELO;
	case FG_RULE_MAIL_RATE: return 1u << FG_CNT_MAIL;
	case FG_RULE_INVALID_RECIPIENTS:
		return 1u << FG_CNT_RCPT_INVALID |
		       (r->ratio > 0.0 ? 1u << FG_CNT_RCPT_SAMPLE : 0);
	default: return 0;
	}
}

static void
params_of(const struct fg_config *cfg, struct params *p)
{
	const struct fg_shared *g = &cfg->shared;

	memset(p, 0, sizeof(*p));
	p->active = g->backend == FG_SHARE_REDIS;
	snprintf(p->server, sizeof(p->server), "%s", g->server ? g->server : "");
	snprintf(p->username, sizeof(p->username), "%s",
	         g->username ? g->username : "");
	snprintf(p->prefix, sizeof(p->prefix), "%s", g->prefix ? g->prefix : "fg");
	snprintf(p->node, sizeof(p->node), "%s", g->node ? g->node : "");
	p->password = g->password != NULL ? strdup(g->password) : NULL;
	p->interval_ms = g->sync_interval_ms > 0 ? g->sync_interval_ms : 250;
	p->slot_ms = g->slot_ms > 0 ? g->slot_ms : 5000;
	p->timeout_ms = g->timeout_ms > 0 ? g->timeout_ms : 500;
	p->hot_ms = g->hot_ms > 0 ? g->hot_ms : 10000;
	p->horizon_ms = cfg->horizon_ms > 0 ? cfg->horizon_ms : 3600000;
	p->max_commands = g->max_commands > 0 ? g->max_commands : 20000;
	p->max_remote_ban_ms = g->max_remote_ban_ms;
	p->warn_skew_ms = g->warn_skew_ms;
	p->bans = g->bans;
	for (size_t i = 0; i < cfg->nrules; i++) {
		const struct fg_rule *r = &cfg->rules[i];
		if (!fg_config_rule_shared(cfg, r) || r->limit <= 0)
			continue;
		p->ctr_mask |= rule_ctr_mask(r);
		p->key_mask |= key_type_of_per(r->per);
	}
}

static void
params_free(struct params *p)
{
	if (p->password != NULL) {
		explicit_bzero(p->password, strlen(p->password));
		free(p->password);
	}
	p->password = NULL;
}

/* Whether the connection must be made again for q after p. */
static bool
params_identity_changed(const struct params *p, const struct params *q)
{
	return strcmp(p->server, q->server) != 0 ||
	       strcmp(p->username, q->username) != 0 ||
	       strcmp(p->prefix, q->prefix) != 0 ||
	       strcmp(p->node, q->node) != 0 ||
	       (p->password == NULL) != (q->password == NULL) ||
	       (p->password != NULL && strcmp(p->password, q->password) != 0);
}

void
fg_share_configure(fg_share *sh, const struct fg_config *cfg)
{
	struct params np;
	bool was;

	if (sh == NULL)
		return;
	params_of(cfg, &np);
	pthread_mutex_lock(&sh->cfg_mu);
	was = sh->p.active;
	if (params_identity_changed(&sh->p, &np))
		atomic_store(&sh->reconnect, true);
	params_free(&sh->p);
	sh->p = np;
	atomic_store(&sh->slot_ms, np.slot_ms);
	atomic_store(&sh->ctr_mask, np.ctr_mask);
	atomic_store(&sh->key_mask, np.key_mask);
	atomic_store(&sh->active, np.active);
	pthread_mutex_unlock(&sh->cfg_mu);
	pthread_mutex_lock(&sh->st_mu);
	snprintf(sh->st.node, sizeof(sh->st.node), "%s", np.node);
	snprintf(sh->st.server, sizeof(sh->st.server), "%s", np.server);
	pthread_mutex_unlock(&sh->st_mu);
	if (was && !np.active)
		fg_share_set_state(sh, FG_SHARE_OFF, "");
}

int
fg_share_new(const struct fg_config *cfg, const struct fg_share_transport *t,
             const struct fg_share_host *host, fg_share **out)
{
	fg_share *sh;
	struct timespec ts;

	*out = NULL;
	if (cfg == NULL || cfg->shared.backend != FG_SHARE_REDIS || t == NULL)
		return FG_EINVAL;
	if ((sh = calloc(1, sizeof(*sh))) == NULL)
		return FG_ENOMEM;
	sh->bans = calloc(SH_MAX_BAN_OPS, sizeof(*sh->bans));
	if (sh->bans == NULL) {
		free(sh);
		return FG_ENOMEM;
	}
	for (size_t i = 0; i < SH_SHARDS; i++)
		pthread_mutex_init(&sh->shards[i].mu, NULL);
	pthread_mutex_init(&sh->cfg_mu, NULL);
	pthread_mutex_init(&sh->ban_mu, NULL);
	pthread_mutex_init(&sh->st_mu, NULL);
	clock_gettime(CLOCK_REALTIME, &ts);
	sh->seed = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15u ^
	           (uint64_t)getpid() << 32 ^ (uint64_t)ts.tv_sec;
	sh->rng = sh->seed;
	sh->feed_from_ms = INT64_MAX;
	snprintf(sh->token, sizeof(sh->token), "%016" PRIx64,
	         sh->seed * 0xbf58476d1ce4e5b9u);
	sh->started_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	sh->t = *t;
	if (host != NULL)
		sh->host = *host;
	fg_share_configure(sh, cfg);
	atomic_store(&sh->reconnect, false);
	/* This host is node 0: its bit never shows in a remote part. */
	fg_share_node_index(sh, sh->p.node);
	/* Off until the first attempt says ok or degraded (and logs it). */
	sh->st.state = FG_SHARE_OFF;
	snprintf(sh->st.reason, sizeof(sh->st.reason), "not connected yet");
	*out = sh;
	return 0;
}

void
fg_share_free(fg_share *sh)
{
	if (sh == NULL)
		return;
	fg_share_stop(sh);
	if (sh->connected && sh->t.disconnect != NULL)
		sh->t.disconnect(sh->t.ctx);
	if (sh->t.free != NULL)
		sh->t.free(sh->t.ctx);
	for (size_t i = 0; i < SH_SHARDS; i++) {
		struct shard *s = &sh->shards[i];
		for (size_t j = 0; s->tab != NULL && j <= s->mask; j++) {
			struct ent *e = s->tab[j], *next;
			for (; e != NULL; e = next) {
				next = e->next;
				free(e->r);
				free(e);
			}
		}
		free(s->tab);
		pthread_mutex_destroy(&s->mu);
	}
	for (size_t i = 0; i < sh->nbans; i++) {
		free(sh->bans[i].key);
		free(sh->bans[i].reason);
		free(sh->bans[i].source);
	}
	free(sh->bans);
	free(sh->slots);
	free(sh->ann_h);
	free(sh->ann_ms);
	params_free(&sh->p);
	params_free(&sh->tp);
	pthread_mutex_destroy(&sh->cfg_mu);
	pthread_mutex_destroy(&sh->ban_mu);
	pthread_mutex_destroy(&sh->st_mu);
	free(sh);
}

void *
fg_share_host_ctx(fg_share *sh)
{
	return sh->host.ctx;
}

void
fg_share_read_only(fg_share *sh)
{
	sh->readonly = true;
	sh->set_epoch = false;
}

/* ---- state --------------------------------------------------------- */

void
fg_share_set_state(fg_share *sh, enum fg_share_state state,
                   const char *reason)
{
	bool changed;
	enum fg_share_state was;
	char server[256];

	pthread_mutex_lock(&sh->st_mu);
	was = sh->st.state;
	changed = sh->st.state != state ||
	          (state == FG_SHARE_DEGRADED &&
	           strcmp(sh->st.reason, reason) != 0) ||
	          (state == FG_SHARE_OK && sh->announce);
	if (state == FG_SHARE_OK)
		sh->announce = false;
	sh->st.state = state;
	snprintf(sh->st.reason, sizeof(sh->st.reason), "%s", reason);
	snprintf(server, sizeof(server), "%s", sh->st.server);
	pthread_mutex_unlock(&sh->st_mu);
	if (!changed || sh->readonly)
		return;
	if (state == FG_SHARE_DEGRADED && was == FG_SHARE_DEGRADED) {
		/* One line per change of state; the reason's changes within
		 * it show in the status and at debug level. */
		fg_log(FG_LOG_DEBUG, "shared: still degraded: %s", reason);
		return;
	}
	if (state == FG_SHARE_OK)
		fg_log(FG_LOG_INFO, "shared: connected to %s", server);
	else if (state == FG_SHARE_DEGRADED)
		fg_log(FG_LOG_WARNING, "shared: degraded: %s", reason);
	else
		fg_log(FG_LOG_INFO, "shared: off");
}

void
fg_share_get_status(fg_share *sh, struct fg_share_status *out)
{
	memset(out, 0, sizeof(*out));
	if (sh == NULL)
		return;
	pthread_mutex_lock(&sh->st_mu);
	*out = sh->st;
	pthread_mutex_unlock(&sh->st_mu);
	if (!atomic_load(&sh->active))
		out->state = FG_SHARE_OFF;
	out->keys = (int64_t)atomic_load(&sh->nkeys);
}

/* ---- one tick: connection and backoff ------------------------------ */

static void
disconnect(fg_share *sh)
{
	if (sh->connected && sh->t.disconnect != NULL)
		sh->t.disconnect(sh->t.ctx);
	sh->connected = false;
}

static void
backoff(fg_share *sh, int64_t mono_ms)
{
	int64_t pause = 100;

	for (int i = 0; i < sh->fails && pause < 5000; i++)
		pause *= 2;
	if (pause > 5000)
		pause = 5000;
	sh->rng = sh->rng * 6364136223846793005u + 1442695040888963407u;
	pause -= (int64_t)((sh->rng >> 33) % (uint64_t)(pause / 4 + 1));
	sh->next_try_mono = mono_ms + pause;
	if (sh->fails < 16)
		sh->fails++;
}

int
fg_share_tick(fg_share *sh, int64_t now_ms, int64_t mono_ms)
{
	char err[192];
	int rc;

	pthread_mutex_lock(&sh->cfg_mu);
	params_free(&sh->tp);
	sh->tp = sh->p;
	sh->tp.password = sh->p.password != NULL ? strdup(sh->p.password) : NULL;
	pthread_mutex_unlock(&sh->cfg_mu);
	if (!sh->tp.active) {
		disconnect(sh);
		return FG_EBUSY;
	}
	if (atomic_exchange(&sh->reconnect, false) && sh->connected) {
		disconnect(sh);
		sh->fails = 0;
		sh->next_try_mono = 0;
		/* The server, user or prefix changed: say where we are now. */
		pthread_mutex_lock(&sh->st_mu);
		sh->announce = true;
		pthread_mutex_unlock(&sh->st_mu);
	}
	if (!sh->connected) {
		struct fg_shared cfg = {
			.backend = FG_SHARE_REDIS,
			.server = sh->tp.server,
			.username = sh->tp.username,
			.password = sh->tp.password,
			.prefix = sh->tp.prefix,
			.node = sh->tp.node,
			.timeout_ms = sh->tp.timeout_ms,
		};
		if (mono_ms < sh->next_try_mono)
			return FG_EBUSY;
		err[0] = '\0';
		if (sh->t.connect(sh->t.ctx, &cfg, err, sizeof(err)) != 0) {
			fg_share_set_state(sh, FG_SHARE_DEGRADED,
			                   err[0] ? err : "cannot connect");
			pthread_mutex_lock(&sh->st_mu);
			sh->st.failures++;
			pthread_mutex_unlock(&sh->st_mu);
			backoff(sh, mono_ms);
			return FG_EIO;
		}
		sh->connected = true;
		sh->last_nodes_ms = 0;
		/* Whatever the server lost meanwhile: everything again, once
		 * a first round trip (with a write: the heartbeat) shows that
		 * it takes it; a server that fails it costs no more than
		 * that. */
		if (fg_share_sync(sh, now_ms, false) != 0)
			goto failed;
		fg_share_republish(sh, now_ms);
	}
	rc = fg_share_sync(sh, now_ms, true);
	if (rc != 0) {
failed:
		disconnect(sh);
		backoff(sh, mono_ms);
		return FG_EIO;
	}
	sh->fails = 0;
	return 0;
}

/* ---- the thread ---------------------------------------------------- */

static int64_t
clock_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *
sync_main(void *arg)
{
	fg_share *sh = arg;
	int64_t last = INT64_MIN / 2;

	while (!atomic_load(&sh->stop)) {
		int64_t mono = clock_ms(CLOCK_MONOTONIC), interval;
		struct timespec nap = {0, 10000000L};

		pthread_mutex_lock(&sh->cfg_mu);
		interval = sh->p.interval_ms;
		pthread_mutex_unlock(&sh->cfg_mu);
		if (mono - last >= interval ||
		    (mono - last >= SH_URGENT_MS && atomic_load(&sh->urgent))) {
			atomic_store(&sh->urgent, false);
			last = mono;
			fg_share_tick(sh, clock_ms(CLOCK_REALTIME), mono);
			continue;
		}
		nanosleep(&nap, NULL);
	}
	return NULL;
}

int
fg_share_start(fg_share *sh)
{
	int rc;

	if (sh == NULL || sh->thread_running)
		return 0;
	atomic_store(&sh->stop, false);
	rc = pthread_create(&sh->thread, NULL, sync_main, sh);
	if (rc != 0) {
		errno = rc;
		return FG_ESYS;
	}
	sh->thread_running = true;
	return 0;
}

void
fg_share_stop(fg_share *sh)
{
	if (sh == NULL || !sh->thread_running)
		return;
	atomic_store(&sh->stop, true);
	pthread_join(sh->thread, NULL);
	sh->thread_running = false;
}
