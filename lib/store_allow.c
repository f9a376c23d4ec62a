/*
 * store_allow.c - the operators' allow list in memory: keys (addresses,
 * networks of any prefix length, HELO names, sender domains) exempt
 * from every rule and ban until a time.  The list lives in the allows
 * table, written by floodgatectl allow and disallow; the writer thread
 * loads it at open and again whenever another process changed the
 * database.  Look-ups take a lock only while the list is not empty.
 *
 * Allows received from other hosts (share.h) change the list at once and
 * wait, as ops, for the writer to put them in the table.  A reload keeps
 * them: the ops still waiting or in flight are applied again over the
 * table's rows.  What a reload changed (another process allowed or
 * disallowed a key) is told to the allow hook (store.h).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fg.h"
#include "keys.h"
#include "store_internal.h"

#define MAX_ALLOW_OPS 4096   /* received, waiting for the writer */

struct allow {
	struct fg_hnode h;
	int64_t until_ms, created_ms;
	bool seen;               /* reload: the table still has it */
	char *reason, *source;
	char buf[];              /* key, reason, source */
};

void
fg_store_allow_init(fg_store *st)
{
	fg_hmap_init(&st->allows);
	pthread_mutex_init(&st->allow_mu, NULL);
}

static void
allow_clear(fg_store *st)
{
	for (size_t i = 0; st->allows.tab != NULL && i <= st->allows.mask; i++)
		while (st->allows.tab[i] != NULL) {
			struct fg_hnode *n = st->allows.tab[i];

			fg_hmap_remove(&st->allows, n);
			free(n);
		}
	fg_prefix_lens_clear(&st->allow_lens);
}

static void
ops_free(struct fg_allow_op *ops, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(ops[i].key);
		free(ops[i].reason);
		free(ops[i].source);
	}
	free(ops);
}

void
fg_store_allow_free(fg_store *st)
{
	allow_clear(st);
	free(st->allows.tab);
	fg_hmap_init(&st->allows);
	ops_free(st->allow_ops, st->nallow_ops);
	st->allow_ops = NULL;
	st->nallow_ops = st->allow_ops_cap = 0;
	pthread_mutex_destroy(&st->allow_mu);
}

static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct allow *
allow_new(fg_store *st, const char *key, int64_t until_ms, int64_t created_ms,
          const char *reason, const char *source)
{
	size_t kl = strlen(key), rl, sl;
	struct allow *a;

	if (kl == 0 || kl >= FG_KEY_MAX)
		return NULL;
	reason = reason != NULL ? reason : "";
	source = source != NULL ? source : "";
	rl = strlen(reason);
	sl = strlen(source);
	if ((a = calloc(1, sizeof(*a) + kl + rl + sl + 3)) == NULL)
		return NULL;
	memcpy(a->buf, key, kl + 1);
	a->reason = a->buf + kl + 1;
	memcpy(a->reason, reason, rl + 1);
	a->source = a->reason + rl + 1;
	memcpy(a->source, source, sl + 1);
	a->h.key = a->buf;
	a->h.klen = kl;
	a->h.hash = fg_store_hash(st, a->buf, kl);
	a->until_ms = until_ms;
	a->created_ms = created_ms;
	return a;
}

static struct allow *
allow_find(fg_store *st, const char *key)
{
	size_t kl = strlen(key);

	return (struct allow *)fg_hmap_find(&st->allows,
	                                    fg_store_hash(st, key, kl), key, kl);
}

/* Under allow_mu: a in the map, in place of the key's old entry. */
static void
allow_put(fg_store *st, struct allow *a)
{
	struct allow *old = allow_find(st, a->h.key);

	if (old != NULL) {
		fg_hmap_remove(&st->allows, &old->h);
		fg_prefix_lens_note(&st->allow_lens, old->h.key, -1);
		free(old);
	}
	fg_hmap_insert(&st->allows, &a->h);
	fg_prefix_lens_note(&st->allow_lens, a->h.key, 1);
}

static void
allow_drop(fg_store *st, struct allow *a)
{
	fg_hmap_remove(&st->allows, &a->h);
	fg_prefix_lens_note(&st->allow_lens, a->h.key, -1);
	free(a);
}

static struct allow *
map_find(const struct fg_hmap *m, const fg_store *st, const char *key)
{
	size_t kl = strlen(key);

	return (struct allow *)fg_hmap_find(m, fg_store_hash(st, key, kl), key,
	                                    kl);
}

static void
map_free(struct fg_hmap *m)
{
	for (size_t i = 0; m->tab != NULL && i <= m->mask; i++)
		while (m->tab[i] != NULL) {
			struct fg_hnode *n = m->tab[i];

			fg_hmap_remove(m, n);
			free(n);
		}
	free(m->tab);
	fg_hmap_init(m);
}

/* Under allow_mu: the received ops still waiting, over the table's rows
 * in fresh: an allow replaces or joins them, a disallow takes out the
 * row it saw. */
static void
fresh_apply_ops(fg_store *st, struct fg_hmap *fresh)
{
	for (size_t k = 0; k < st->nallow_ops; k++) {
		const struct fg_allow_op *op = &st->allow_ops[k];
		struct allow *old = map_find(fresh, st, op->key), *a;

		if (op->remove) {
			if (old != NULL && old->created_ms <= op->created_ms) {
				fg_hmap_remove(fresh, &old->h);
				free(old);
			}
			continue;
		}
		if ((a = allow_new(st, op->key, op->until_ms, op->created_ms,
		                   op->reason, op->source)) == NULL)
			continue;
		if (old != NULL) {
			fg_hmap_remove(fresh, &old->h);
			free(old);
		}
		if (fg_hmap_reserve(fresh) < 0)
			free(a);
		else
			fg_hmap_insert(fresh, &a->h);
	}
}

/* A change the hook hears of, copied out of the lock. */
struct told {
	struct fg_allow_op *ops;
	size_t n, cap;
	size_t lost;             /* out of memory: not told */
};

static void
tell(struct told *t, const char *key, bool disallow, const struct allow *a)
{
	struct fg_allow_op *op;

	if (t->n == t->cap) {
		size_t nc = t->cap ? t->cap * 2 : 16;
		struct fg_allow_op *no = realloc(t->ops, nc * sizeof(*no));

		if (no == NULL) {
			t->lost++;
			return;
		}
		t->ops = no;
		t->cap = nc;
	}
	op = &t->ops[t->n];
	memset(op, 0, sizeof(*op));
	op->key = strdup(key);
	op->remove = disallow;
	if (!disallow) {
		op->until_ms = a->until_ms;
		op->created_ms = a->created_ms;
		op->reason = strdup(a->reason);
		op->source = strdup(a->source);
	}
	if (op->key == NULL ||
	    (!disallow && (op->reason == NULL || op->source == NULL))) {
		free(op->key);
		free(op->reason);
		free(op->source);
		t->lost++;
		return;
	}
	t->n++;
}

/*
 * Under allow_mu, before the list becomes fresh: the keys fresh adds or
 * allows until another time, and those it no longer has, of the allows
 * in force at now.  Expiry is no change.
 */
static void
reload_diff(fg_store *st, const struct fg_hmap *fresh, int64_t now,
            struct told *t)
{
	struct fg_hmap *m = &st->allows;

	for (size_t i = 0; fresh->tab != NULL && i <= fresh->mask; i++)
		for (struct fg_hnode *nd = fresh->tab[i]; nd; nd = nd->next) {
			struct allow *a = (struct allow *)nd;
			struct allow *old = allow_find(st, nd->key);

			if (old != NULL)
				old->seen = true;
			if (a->until_ms > now &&
			    (old == NULL || old->until_ms != a->until_ms ||
			     old->created_ms != a->created_ms))
				tell(t, nd->key, false, a);
		}
	for (size_t i = 0; m->tab != NULL && i <= m->mask; i++)
		for (struct fg_hnode *nd = m->tab[i]; nd != NULL; nd = nd->next) {
			struct allow *a = (struct allow *)nd;

			if (!a->seen && a->until_ms > now)
				tell(t, nd->key, true, NULL);
			a->seen = false;
		}
}

void
fg_store_allow_reload(fg_store *st, const struct fg_allow_row *rows, size_t n)
{
	const struct fg_store_hooks *h =
	    atomic_load_explicit(&st->hooks, memory_order_acquire);
	bool hooked = h != NULL && h->allow != NULL;
	struct told t = {0};
	struct fg_hmap fresh;
	int64_t now = wall_ms();

	/* The rows into a map of their own, outside the lock; on failure
	 * the list stays as it was. */
	fg_hmap_init(&fresh);
	for (size_t i = 0; i < n; i++) {
		struct allow *a = allow_new(st, rows[i].key, rows[i].until_ms,
		                            rows[i].created_ms, rows[i].reason,
		                            rows[i].source);

		if (a == NULL || fg_hmap_reserve(&fresh) < 0) {
			free(a);
			map_free(&fresh);
			fg_log(FG_LOG_ERR, "store: allows: out of memory reading "
			       "the table: the list stays as it was");
			return;
		}
		if (map_find(&fresh, st, a->h.key) != NULL)
			free(a);
		else
			fg_hmap_insert(&fresh, &a->h);
	}
	pthread_mutex_lock(&st->allow_mu);
	fresh_apply_ops(st, &fresh);
	if (hooked)
		reload_diff(st, &fresh, now, &t);
	allow_clear(st);
	free(st->allows.tab);
	st->allows.tab = fresh.tab;
	st->allows.mask = fresh.mask;
	atomic_store_explicit(&st->allows.n,
	                      atomic_load_explicit(&fresh.n,
	                                           memory_order_relaxed),
	                      memory_order_relaxed);
	for (size_t i = 0; st->allows.tab != NULL && i <= st->allows.mask; i++)
		for (struct fg_hnode *nd = st->allows.tab[i]; nd; nd = nd->next)
			fg_prefix_lens_note(&st->allow_lens, nd->key, 1);
	pthread_mutex_unlock(&st->allow_mu);
	for (size_t i = 0; i < t.n; i++) {
		const struct fg_allow_op *op = &t.ops[i];

		h->allow(h->arg, op->key, op->remove, op->until_ms,
		         op->created_ms, op->reason, op->source);
	}
	if (t.lost > 0)
		fg_log(FG_LOG_ERR, "store: allows: out of memory: %zu change(s) "
		       "not passed to the other hosts", t.lost);
	ops_free(t.ops, t.n);
}

/* Under allow_mu: op joins the ops waiting for the writer (taken
 * over); false when there is no room. */
static bool
op_push(fg_store *st, struct fg_allow_op *op)
{
	if (st->nallow_ops == st->allow_ops_cap) {
		size_t nc = st->allow_ops_cap ? st->allow_ops_cap * 2 : 16;
		struct fg_allow_op *no;

		if (nc > MAX_ALLOW_OPS ||
		    (no = realloc(st->allow_ops, nc * sizeof(*no))) == NULL)
			return false;
		st->allow_ops = no;
		st->allow_ops_cap = nc;
	}
	st->allow_ops[st->nallow_ops++] = *op;
	return true;
}

int
fg_store_allow_set(fg_store *st, const char *key, int64_t until_ms,
                   int64_t created_ms, const char *reason, const char *source)
{
	struct fg_allow_op op = {0};
	struct allow *a;

	if (st == NULL || key == NULL || key[0] == '\0' ||
	    strlen(key) >= FG_KEY_MAX)
		return FG_EINVAL;
	if ((a = allow_new(st, key, until_ms, created_ms, reason,
	                   source)) == NULL)
		return FG_ENOMEM;
	op.key = strdup(a->h.key);
	op.reason = strdup(a->reason);
	op.source = strdup(a->source);
	op.until_ms = until_ms;
	op.created_ms = created_ms;
	pthread_mutex_lock(&st->allow_mu);
	if (op.key == NULL || op.reason == NULL || op.source == NULL ||
	    fg_hmap_reserve(&st->allows) < 0 || !op_push(st, &op)) {
		pthread_mutex_unlock(&st->allow_mu);
		free(op.key);
		free(op.reason);
		free(op.source);
		free(a);
		return FG_ENOMEM;
	}
	allow_put(st, a);
	pthread_mutex_unlock(&st->allow_mu);
	atomic_fetch_add(&st->mod_gen, 1);   /* for fg_store_flush */
	return 0;
}

int
fg_store_allow_remove(fg_store *st, const char *key, int64_t before_ms)
{
	struct fg_allow_op op = {0};
	struct allow *a;
	int rc = 0;

	if (st == NULL || key == NULL || key[0] == '\0' ||
	    strlen(key) >= FG_KEY_MAX)
		return FG_EINVAL;
	if ((op.key = strdup(key)) == NULL)
		return FG_ENOMEM;
	op.remove = true;
	pthread_mutex_lock(&st->allow_mu);
	a = allow_find(st, key);
	if (a != NULL && a->created_ms <= before_ms) {
		op.created_ms = a->created_ms;
		if (op_push(st, &op)) {
			op.key = NULL;
			allow_drop(st, a);
			atomic_fetch_add(&st->mod_gen, 1);
			rc = 1;
		} else {
			rc = FG_ENOMEM;
		}
	}
	pthread_mutex_unlock(&st->allow_mu);
	free(op.key);
	return rc;
}

int
fg_store_allow_get(fg_store *st, const char *key, int64_t now_ms,
                   int64_t *until_ms)
{
	const struct allow *a;
	int found;

	if (!fg_store_any_allows(st) || key == NULL || key[0] == '\0' ||
	    strlen(key) >= FG_KEY_MAX)
		return 0;
	pthread_mutex_lock(&st->allow_mu);
	a = allow_find(st, key);
	found = a != NULL && a->until_ms > now_ms;
	if (found && until_ms != NULL)
		*until_ms = a->until_ms;
	pthread_mutex_unlock(&st->allow_mu);
	return found;
}

void
fg_store_allow_collect(fg_store *st, struct fg_allow_op **out, size_t *n)
{
	pthread_mutex_lock(&st->allow_mu);
	*out = st->allow_ops;
	*n = st->nallow_ops;
	st->allow_ops = NULL;
	st->nallow_ops = st->allow_ops_cap = 0;
	pthread_mutex_unlock(&st->allow_mu);
}

void
fg_store_allow_done(fg_store *st, struct fg_allow_op *ops, size_t n,
                    bool committed)
{
	struct fg_allow_op *all;

	if (n == 0 || committed) {
		ops_free(ops, n);
		return;
	}
	/* Not written: back in front of those that came since. */
	pthread_mutex_lock(&st->allow_mu);
	if ((all = realloc(ops, (n + st->nallow_ops) * sizeof(*all))) == NULL) {
		pthread_mutex_unlock(&st->allow_mu);
		ops_free(ops, n);
		return;
	}
	if (st->nallow_ops > 0)
		memcpy(all + n, st->allow_ops,
		       st->nallow_ops * sizeof(*all));
	free(st->allow_ops);
	st->allow_ops = all;
	st->nallow_ops += n;
	st->allow_ops_cap = st->nallow_ops;
	pthread_mutex_unlock(&st->allow_mu);
}

bool
fg_store_any_allows(fg_store *st)
{
	return st != NULL &&
	       atomic_load_explicit(&st->allows.n, memory_order_relaxed) > 0;
}

int
fg_store_allowed(fg_store *st, const char *key, int64_t now_ms)
{
	const struct allow *a;
	size_t klen;
	int found = 0;

	if (!fg_store_any_allows(st) || key == NULL ||
	    (klen = strlen(key)) == 0 || klen >= FG_KEY_MAX)
		return 0;
	pthread_mutex_lock(&st->allow_mu);
	a = (const struct allow *)fg_hmap_find(&st->allows,
	    fg_store_hash(st, key, klen), key, klen);
	found = a != NULL && a->until_ms > now_ms;
	pthread_mutex_unlock(&st->allow_mu);
	return found;
}

void
fg_store_allow_lengths(fg_store *st, int family, bool *used)
{
	if (st == NULL)
		memset(used, 0, (family == FG_AF_INET ? 33 : 129) * sizeof(*used));
	else
		fg_prefix_lens_get(&st->allow_lens, family, used);
}
