/*
 * store_ban.c - bans and escalation levels held in memory, and the marks
 * that tell the writer thread what to persist.
 *
 * Both maps are small next to the counters (one entry per punished key),
 * read on every connection (bans) or every limit hit (levels), written
 * rarely; one mutex each is plenty.
 *
 * Persistence: a change sets the entry's dirty mark and stamps it with a
 * fresh sequence number.  The writer copies the dirty entries out and
 * clears the marks (collect), commits, and reports back (done): on failure
 * an entry whose stamp is unchanged is marked dirty again; on success a
 * lifted ban, kept until then as a tombstone so the row gets deleted, is
 * dropped.  A reload from the table (another process banned or unbanned)
 * replaces every clean entry and leaves dirty ones alone: a local change
 * not yet committed is usually newer than what the table says.  When it
 * is not (an operator unbanned the key after the daemon banned it, before
 * the commit), the commit leaves the table's later row alone, the ban is
 * dropped from memory, and the next poll reads the table again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fg.h"
#include "keys.h"
#include "store_internal.h"

#define HMAP_MIN 16

struct ban {
	struct fg_hnode h;
	int64_t until_ms, created_ms;
	uint64_t seq;
	bool dirty;
	bool lifted;      /* tombstone: the row is to be deleted */
	bool seen;        /* reload: the table still has it */
	char *reason, *source;
	char buf[];       /* key, reason, source */
};

struct level {
	struct fg_hnode h;
	int level;
	int64_t last_ms;
	uint64_t seq;
	bool dirty;
	char buf[];       /* rule NUL key NUL */
};

void
fg_hmap_init(struct fg_hmap *m)
{
	m->tab = NULL;
	m->mask = 0;
	m->n = 0;
}

/* Makes room for one more node; 0 or FG_ENOMEM. */
int
fg_hmap_reserve(struct fg_hmap *m)
{
	size_t size = m->tab == NULL ? 0 : m->mask + 1;
	size_t nsize;
	struct fg_hnode **tab;

	if (m->tab != NULL && m->n < size)
		return 0;
	nsize = size == 0 ? HMAP_MIN : size * 2;
	if ((tab = calloc(nsize, sizeof(*tab))) == NULL)
		return m->tab == NULL ? FG_ENOMEM : 0;
	for (size_t b = 0; b < size; b++) {
		struct fg_hnode *n, *next;

		for (n = m->tab[b]; n != NULL; n = next) {
			next = n->next;
			n->next = tab[n->hash & (nsize - 1)];
			tab[n->hash & (nsize - 1)] = n;
		}
	}
	free(m->tab);
	m->tab = tab;
	m->mask = nsize - 1;
	return 0;
}

struct fg_hnode *
fg_hmap_find(const struct fg_hmap *m, uint64_t hash, const char *key,
             size_t klen)
{
	if (m->tab == NULL)
		return NULL;
	for (struct fg_hnode *n = m->tab[hash & m->mask]; n; n = n->next)
		if (n->hash == hash && n->klen == klen &&
		    memcmp(n->key, key, klen) == 0)
			return n;
	return NULL;
}

/* The caller reserved room first. */
void
fg_hmap_insert(struct fg_hmap *m, struct fg_hnode *n)
{
	n->next = m->tab[n->hash & m->mask];
	m->tab[n->hash & m->mask] = n;
	m->n++;
}

void
fg_hmap_remove(struct fg_hmap *m, struct fg_hnode *n)
{
	struct fg_hnode **pp = &m->tab[n->hash & m->mask];

	while (*pp != n)
		pp = &(*pp)->next;
	*pp = n->next;
	m->n--;
}

/*
 * Unlinks and frees every node of m for which gone(node, arg) is true.
 * Before it says yes, gone() takes a dirty node out of the store's count
 * of dirty entries.  The caller holds the map's mutex or is alone with it.
 */
static void
hmap_sweep(struct fg_hmap *m, bool (*gone)(struct fg_hnode *, void *),
           void *arg)
{
	for (size_t i = 0; m->tab != NULL && i <= m->mask; i++) {
		struct fg_hnode **pp = &m->tab[i];

		while (*pp != NULL) {
			struct fg_hnode *n = *pp;

			if (!gone(n, arg)) {
				pp = &n->next;
				continue;
			}
			*pp = n->next;
			m->n--;
			free(n);
		}
	}
}

void
fg_prefix_lens_note(struct fg_prefix_lens *pl, const char *key, int delta)
{
	fg_prefix p;

	if (fg_key_type_of(key) != FG_KEY_NETWORK || fg_prefix_parse(key, &p) != 0)
		return;
	if (p.addr.family == FG_AF_INET && p.len <= 32)
		atomic_fetch_add(&pl->v4[p.len], delta);
	else if (p.addr.family == FG_AF_INET6 && p.len <= 128)
		atomic_fetch_add(&pl->v6[p.len], delta);
}

void
fg_prefix_lens_clear(struct fg_prefix_lens *pl)
{
	for (size_t i = 0; i < FG_NELEM(pl->v4); i++)
		atomic_store(&pl->v4[i], 0);
	for (size_t i = 0; i < FG_NELEM(pl->v6); i++)
		atomic_store(&pl->v6[i], 0);
}

void
fg_prefix_lens_get(const struct fg_prefix_lens *pl, int family, bool *used)
{
	unsigned max = family == FG_AF_INET ? 32 : 128;

	for (unsigned len = 0; len <= max; len++)
		used[len] = atomic_load_explicit(family == FG_AF_INET
		                                     ? &pl->v4[len]
		                                     : &pl->v6[len],
		                                 memory_order_relaxed) > 0;
}

static void
ban_insert(fg_store *st, struct fg_hnode *n)
{
	fg_hmap_insert(&st->bans, n);
	fg_prefix_lens_note(&st->ban_lens, n->key, 1);
}

static void
ban_remove(fg_store *st, struct fg_hnode *n)
{
	fg_prefix_lens_note(&st->ban_lens, n->key, -1);
	fg_hmap_remove(&st->bans, n);
}

bool
fg_store_any_bans(fg_store *st)
{
	return st != NULL &&
	       atomic_load_explicit(&st->bans.n, memory_order_relaxed) > 0;
}

void
fg_store_ban_lengths(fg_store *st, int family, bool *used)
{
	if (st == NULL)
		memset(used, 0, (family == FG_AF_INET ? 33 : 129) * sizeof(*used));
	else
		fg_prefix_lens_get(&st->ban_lens, family, used);
}

/* What the expiry predicates below compare with, and the store whose
 * dirty counts they keep. */
struct sweep {
	fg_store *st;
	int64_t cutoff_ms;   /* a ban ending, a level last used, by then goes */
};

static bool
any_node(struct fg_hnode *n, void *arg)
{
	(void)n;
	(void)arg;
	return true;
}

/* Expired bans go; tombstones stay until their row is deleted. */
static bool
ban_expired(struct fg_hnode *n, void *arg)
{
	const struct sweep *sw = arg;
	const struct ban *b = (const struct ban *)n;

	if (b->lifted || b->until_ms > sw->cutoff_ms)
		return false;
	if (b->dirty)
		sw->st->ban_dirty--;
	fg_prefix_lens_note(&sw->st->ban_lens, b->h.key, -1);
	return true;
}

/* Bans the table says all about: no local change waits to be written. */
static bool
ban_clean(struct fg_hnode *n, void *arg)
{
	if (((const struct ban *)n)->dirty)
		return false;
	fg_prefix_lens_note(&((fg_store *)arg)->ban_lens, n->key, -1);
	return true;
}

static bool
level_expired(struct fg_hnode *n, void *arg)
{
	const struct sweep *sw = arg;
	const struct level *l = (const struct level *)n;

	if (l->last_ms > sw->cutoff_ms)
		return false;
	if (l->dirty)
		sw->st->lvl_dirty--;
	return true;
}

int
fg_store_ban_init(fg_store *st)
{
	fg_hmap_init(&st->bans);
	fg_hmap_init(&st->levels);
	pthread_mutex_init(&st->ban_mu, NULL);
	pthread_mutex_init(&st->lvl_mu, NULL);
	return 0;
}

void
fg_store_ban_free(fg_store *st)
{
	struct fg_hmap *maps[] = {&st->bans, &st->levels};

	for (size_t i = 0; i < FG_NELEM(maps); i++) {
		hmap_sweep(maps[i], any_node, NULL);
		free(maps[i]->tab);
		fg_hmap_init(maps[i]);
	}
	pthread_mutex_destroy(&st->ban_mu);
	pthread_mutex_destroy(&st->lvl_mu);
}

static bool
key_ok(const char *key)
{
	return key != NULL && key[0] != '\0' && strlen(key) < FG_KEY_MAX;
}

/* A new ban entry with copies of the strings (truncated to what
 * struct fg_ban can return). */
static struct ban *
ban_new(fg_store *st, const char *key, int64_t until_ms, int64_t created_ms,
        const char *reason, const char *source)
{
	size_t klen = strlen(key);
	size_t rlen = reason == NULL ? 0 : strnlen(reason,
	    sizeof(((struct fg_ban *)0)->reason) - 1);
	size_t slen = source == NULL ? 0 : strnlen(source,
	    sizeof(((struct fg_ban *)0)->source) - 1);
	struct ban *b = malloc(sizeof(*b) + klen + rlen + slen + 3);

	if (b == NULL)
		return NULL;
	memset(b, 0, sizeof(*b));
	memcpy(b->buf, key, klen + 1);
	b->reason = b->buf + klen + 1;
	memcpy(b->reason, reason == NULL ? "" : reason, rlen);
	b->reason[rlen] = '\0';
	b->source = b->reason + rlen + 1;
	memcpy(b->source, source == NULL ? "" : source, slen);
	b->source[slen] = '\0';
	b->h.key = b->buf;
	b->h.klen = klen;
	b->h.hash = fg_store_hash(st, key, klen);
	b->until_ms = until_ms;
	b->created_ms = created_ms;
	return b;
}

/* The entry of key, or NULL; called with ban_mu held. */
static struct ban *
ban_find(fg_store *st, const char *key)
{
	size_t klen = strlen(key);

	return (struct ban *)fg_hmap_find(&st->bans,
	    fg_store_hash(st, key, klen), key, klen);
}

/* Puts b in place of any entry of its key; called with ban_mu held. */
static void
ban_replace(fg_store *st, struct ban *b)
{
	struct fg_hnode *old = fg_hmap_find(&st->bans, b->h.hash, b->h.key,
	                                    b->h.klen);

	if (old != NULL) {
		if (((struct ban *)old)->dirty)
			st->ban_dirty--;
		ban_remove(st, old);
		free(old);
	}
	if (b->dirty)
		st->ban_dirty++;
	ban_insert(st, &b->h);
}

int
fg_store_ban_set(fg_store *st, const char *key, int64_t until_ms,
                 const char *reason, const char *source, int64_t now_ms)
{
	struct ban *b;

	if (st == NULL || !key_ok(key))
		return FG_EINVAL;
	if ((b = ban_new(st, key, until_ms, now_ms, reason, source)) == NULL)
		return FG_ENOMEM;
	pthread_mutex_lock(&st->ban_mu);
	if (fg_hmap_reserve(&st->bans) < 0) {
		pthread_mutex_unlock(&st->ban_mu);
		free(b);
		return FG_ENOMEM;
	}
	b->dirty = true;
	b->seq = atomic_fetch_add(&st->mod_gen, 1) + 1;
	ban_replace(st, b);
	pthread_mutex_unlock(&st->ban_mu);
	fg_store_ban_hook(st, key, false, until_ms, now_ms, reason, source);
	return 0;
}

int
fg_store_ban_get(fg_store *st, const char *key, int64_t now_ms,
                 struct fg_ban *out)
{
	struct ban *b;
	int found = 0;

	if (st == NULL || !key_ok(key))
		return FG_EINVAL;
	if (atomic_load_explicit(&st->bans.n, memory_order_relaxed) == 0)
		return 0;
	pthread_mutex_lock(&st->ban_mu);
	b = ban_find(st, key);
	if (b != NULL && !b->lifted && b->until_ms > now_ms) {
		found = 1;
		if (out != NULL) {
			out->until_ms = b->until_ms;
			out->created_ms = b->created_ms;
			/* Both fit: ban_new truncated them. */
			snprintf(out->reason, sizeof(out->reason), "%s",
			         b->reason);
			snprintf(out->source, sizeof(out->source), "%s",
			         b->source);
		}
	}
	pthread_mutex_unlock(&st->ban_mu);
	return found;
}

int
fg_store_ban_lift(fg_store *st, const char *key)
{
	struct ban *b;
	int lifted = 0;

	if (st == NULL || !key_ok(key))
		return FG_EINVAL;
	pthread_mutex_lock(&st->ban_mu);
	b = ban_find(st, key);
	if (b != NULL && !b->lifted) {
		b->lifted = true;
		if (!b->dirty)
			st->ban_dirty++;
		b->dirty = true;
		b->seq = atomic_fetch_add(&st->mod_gen, 1) + 1;
		lifted = 1;
	}
	pthread_mutex_unlock(&st->ban_mu);
	if (lifted)
		fg_store_ban_hook(st, key, true, 0, 0, NULL, NULL);
	return lifted;
}

int
fg_store_ban_load(fg_store *st, const struct fg_ban_row *row)
{
	struct ban *b = ban_new(st, row->key, row->until_ms, row->created_ms,
	                        row->reason, row->source);

	if (b == NULL)
		return FG_ENOMEM;
	pthread_mutex_lock(&st->ban_mu);
	if (fg_hmap_reserve(&st->bans) < 0) {
		pthread_mutex_unlock(&st->ban_mu);
		free(b);
		return FG_ENOMEM;
	}
	ban_replace(st, b);
	pthread_mutex_unlock(&st->ban_mu);
	return 0;
}

void
fg_store_ban_expire(fg_store *st, int64_t now_ms)
{
	struct sweep sw = {st, now_ms};

	pthread_mutex_lock(&st->ban_mu);
	hmap_sweep(&st->bans, ban_expired, &sw);
	pthread_mutex_unlock(&st->ban_mu);
}

static char *
dup_or_null(const char *s, bool *fail)
{
	char *d = strdup(s);

	if (d == NULL)
		*fail = true;
	return d;
}

int
fg_store_ban_collect(fg_store *st, struct fg_ban_op **out, size_t *nout)
{
	struct fg_ban_op *ops = NULL;
	size_t n = 0;
	bool fail = false;

	*out = NULL;
	*nout = 0;
	pthread_mutex_lock(&st->ban_mu);
	if (st->ban_dirty == 0)
		goto done;
	if ((ops = calloc(st->ban_dirty, sizeof(*ops))) == NULL) {
		fail = true;
		goto done;
	}
	for (size_t i = 0; i <= st->bans.mask && st->ban_dirty > 0; i++) {
		for (struct fg_hnode *h = st->bans.tab[i]; h; h = h->next) {
			struct ban *b = (struct ban *)h;
			struct fg_ban_op *op;

			if (!b->dirty)
				continue;
			op = &ops[n];
			op->key = dup_or_null(b->h.key, &fail);
			op->reason = dup_or_null(b->reason, &fail);
			op->source = dup_or_null(b->source, &fail);
			if (fail) {
				free(op->key);
				free(op->reason);
				free(op->source);
				goto done;
			}
			op->lift = b->lifted;
			op->until_ms = b->until_ms;
			op->created_ms = b->created_ms;
			op->seq = b->seq;
			b->dirty = false;
			st->ban_dirty--;
			n++;
		}
	}
done:
	pthread_mutex_unlock(&st->ban_mu);
	if (fail && n == 0) {
		free(ops);
		return FG_ENOMEM;
	}
	/* On a partial failure the rest stays dirty for the next round. */
	*out = ops;
	*nout = n;
	return 0;
}

void
fg_store_ban_done(fg_store *st, struct fg_ban_op *ops, size_t n,
                  bool committed)
{
	bool *reset = calloc(n + 1, sizeof(*reset));

	pthread_mutex_lock(&st->ban_mu);
	for (size_t i = 0; i < n; i++) {
		struct ban *b = ban_find(st, ops[i].key);

		/* Changed since it was collected: the new change stands. */
		if (b == NULL || b->seq != ops[i].seq)
			continue;
		if (!committed) {
			if (!b->dirty)
				st->ban_dirty++;
			b->dirty = true;
		} else if ((b->lifted || ops[i].superseded) && !b->dirty) {
			/* A superseded ban goes too: the table's later row
			 * (usually an operator's unban) stands. */
			if (ops[i].superseded && reset != NULL)
				reset[i] = true;
			ban_remove(st, &b->h);
			free(b);
		}
	}
	pthread_mutex_unlock(&st->ban_mu);
	/* An operator's unban resets the key (floodgatectl writes that as a
	 * control, applied at the next poll): here at once, so that no event
	 * in between bans it again from its old counts. */
	for (size_t i = 0; reset != NULL && i < n; i++)
		if (reset[i])
			fg_store_reset(st, ops[i].key);
	free(reset);
	for (size_t i = 0; i < n; i++) {
		free(ops[i].key);
		free(ops[i].reason);
		free(ops[i].source);
	}
	free(ops);
}

void
fg_store_ban_mark_all(fg_store *st)
{
	pthread_mutex_lock(&st->ban_mu);
	for (size_t i = 0; st->bans.tab != NULL && i <= st->bans.mask; i++) {
		for (struct fg_hnode *h = st->bans.tab[i]; h; h = h->next) {
			struct ban *b = (struct ban *)h;

			if (!b->dirty)
				st->ban_dirty++;
			b->dirty = true;
		}
	}
	pthread_mutex_unlock(&st->ban_mu);
	pthread_mutex_lock(&st->lvl_mu);
	for (size_t i = 0; st->levels.tab != NULL && i <= st->levels.mask;
	     i++) {
		for (struct fg_hnode *h = st->levels.tab[i]; h; h = h->next) {
			struct level *l = (struct level *)h;

			if (!l->dirty)
				st->lvl_dirty++;
			l->dirty = true;
		}
	}
	pthread_mutex_unlock(&st->lvl_mu);
}

static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct keylist {
	char **keys;
	size_t n;
};

/*
 * Under ban_mu, before a reload replaces the clean bans: which rows are
 * new to memory (or end at another time) into news[], and which clean
 * bans the table no longer has into gone (keys copied).
 */
static void
reload_diff(fg_store *st, struct ban *const *fresh, size_t nfresh, bool *news,
            struct keylist *gone)
{
	struct fg_hmap *m = &st->bans;
	size_t cap = 0;

	for (size_t i = 0; i < nfresh; i++) {
		struct ban *old = (struct ban *)fg_hmap_find(m, fresh[i]->h.hash,
		                                             fresh[i]->h.key,
		                                             fresh[i]->h.klen);
		if (old == NULL)
			news[i] = true;
		else if (!old->dirty) {
			old->seen = true;
			news[i] = old->until_ms != fresh[i]->until_ms;
		}
	}
	for (size_t i = 0; m->tab != NULL && i <= m->mask; i++) {
		for (struct fg_hnode *nd = m->tab[i]; nd != NULL; nd = nd->next) {
			struct ban *b = (struct ban *)nd;

			if (!b->dirty && !b->seen && !b->lifted) {
				if (gone->n == cap) {
					size_t nc = cap ? cap * 2 : 16;
					char **nk = realloc(gone->keys, nc * sizeof(*nk));
					if (nk == NULL)
						continue;
					gone->keys = nk;
					cap = nc;
				}
				if ((gone->keys[gone->n] = strdup(nd->key)) != NULL)
					gone->n++;
			}
			b->seen = false;
		}
	}
}

void
fg_store_ban_reload(fg_store *st, struct fg_ban_row *rows, size_t n)
{
	struct ban **fresh;
	size_t nfresh = 0;
	const struct fg_store_hooks *h =
	    atomic_load_explicit(&st->hooks, memory_order_acquire);
	bool told = h != NULL && h->ban != NULL;
	bool *news = NULL;
	struct keylist gone = {0};

	/* Allocate outside the lock; on failure keep what we have. */
	if ((fresh = calloc(n + 1, sizeof(*fresh))) == NULL)
		return;
	if (told && (news = calloc(n + 1, sizeof(*news))) == NULL)
		told = false;
	for (size_t i = 0; i < n; i++) {
		fresh[nfresh] = ban_new(st, rows[i].key, rows[i].until_ms,
		                        rows[i].created_ms, rows[i].reason,
		                        rows[i].source);
		if (fresh[nfresh] == NULL)
			goto fail;
		nfresh++;
	}
	pthread_mutex_lock(&st->ban_mu);
	if (told)
		reload_diff(st, fresh, nfresh, news, &gone);
	hmap_sweep(&st->bans, ban_clean, st);
	for (size_t i = 0; i < nfresh; i++) {
		struct ban *b = fresh[i];

		if (fg_hmap_find(&st->bans, b->h.hash, b->h.key, b->h.klen) ||
		    fg_hmap_reserve(&st->bans) < 0) {
			free(b);
			fresh[i] = NULL;
			continue;
		}
		ban_insert(st, &b->h);
	}
	pthread_mutex_unlock(&st->ban_mu);
	/* The hook hears what the table changed: rows another process
	 * (floodgatectl) added or removed.  rows[] still holds them.  An
	 * unban is a row that ends at 0 (query.c); it is told while it is
	 * new, not again when the map forgets it and a later reload reads
	 * it once more. */
	for (size_t i = 0; told && i < n; i++) {
		const struct fg_ban_row *r = &rows[i];

		if (!news[i])
			continue;
		if (r->until_ms > 0)
			fg_store_ban_hook(st, r->key, false, r->until_ms,
			                  r->created_ms, r->reason, r->source);
		else if (r->created_ms >= wall_ms() - 60000)
			fg_store_ban_hook(st, r->key, true, 0, 0, NULL, r->source);
	}
	for (size_t i = 0; gone.keys != NULL && i < gone.n; i++) {
		fg_store_ban_hook(st, gone.keys[i], true, 0, 0, NULL, NULL);
		free(gone.keys[i]);
	}
	free(gone.keys);
	free(news);
	free(fresh);
	return;
fail:
	while (nfresh-- > 0)
		free(fresh[nfresh]);
	free(news);
	free(fresh);
}

void
fg_store_ban_rows_free(struct fg_ban_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].key);
		free(rows[i].reason);
		free(rows[i].source);
	}
	free(rows);
}

/* Levels are filed under "rule NUL key". */
static size_t
level_key(char *buf, size_t size, const char *rule, const char *key)
{
	size_t rl = strlen(rule), kl = strlen(key);

	if (rl + kl + 2 > size)
		return 0;
	memcpy(buf, rule, rl + 1);
	memcpy(buf + rl + 1, key, kl + 1);
	return rl + 1 + kl;
}

struct forget {
	fg_store *st;
	const char *key;
	size_t n;
};

/* Levels of the key: the part of the node's key after the rule. */
static bool
level_of_key(struct fg_hnode *n, void *arg)
{
	struct forget *fo = arg;
	const struct level *l = (const struct level *)n;
	const char *key = l->buf + strlen(l->buf) + 1;

	if (strcmp(key, fo->key) != 0)
		return false;
	if (l->dirty)
		fo->st->lvl_dirty--;
	fo->n++;
	return true;
}

size_t
fg_store_level_forget(fg_store *st, const char *key)
{
	struct forget fo = {st, key, 0};

	pthread_mutex_lock(&st->lvl_mu);
	hmap_sweep(&st->levels, level_of_key, &fo);
	pthread_mutex_unlock(&st->lvl_mu);
	return fo.n;
}

static int
level_put(fg_store *st, const char *rule, const char *key, int level,
          int64_t last_ms, bool dirty)
{
	char lk[2 * FG_KEY_MAX];
	size_t klen;
	uint64_t h;
	struct level *l;

	if (st == NULL || rule == NULL || rule[0] == '\0' || !key_ok(key) ||
	    (klen = level_key(lk, sizeof(lk), rule, key)) == 0)
		return FG_EINVAL;
	h = fg_store_hash(st, lk, klen);
	pthread_mutex_lock(&st->lvl_mu);
	l = (struct level *)fg_hmap_find(&st->levels, h, lk, klen);
	if (l == NULL) {
		if (fg_hmap_reserve(&st->levels) < 0 ||
		    (l = calloc(1, sizeof(*l) + klen + 1)) == NULL) {
			pthread_mutex_unlock(&st->lvl_mu);
			return FG_ENOMEM;
		}
		memcpy(l->buf, lk, klen + 1);
		l->h.key = l->buf;
		l->h.klen = klen;
		l->h.hash = h;
		fg_hmap_insert(&st->levels, &l->h);
	}
	l->level = level;
	l->last_ms = last_ms;
	if (dirty) {
		if (!l->dirty)
			st->lvl_dirty++;
		l->dirty = true;
		l->seq = atomic_fetch_add(&st->mod_gen, 1) + 1;
	}
	pthread_mutex_unlock(&st->lvl_mu);
	return 0;
}

int
fg_store_level_set(fg_store *st, const char *rule, const char *key,
                   int level, int64_t last_ms)
{
	return level_put(st, rule, key, level, last_ms, true);
}

int
fg_store_level_load(fg_store *st, const char *rule, const char *key,
                    int level, int64_t last_ms)
{
	return level_put(st, rule, key, level, last_ms, false);
}

int
fg_store_level_get(fg_store *st, const char *rule, const char *key,
                   int *level, int64_t *last_ms)
{
	char lk[2 * FG_KEY_MAX];
	size_t klen;
	struct level *l;
	int found = 0;

	if (st == NULL || rule == NULL || rule[0] == '\0' || !key_ok(key) ||
	    (klen = level_key(lk, sizeof(lk), rule, key)) == 0)
		return FG_EINVAL;
	if (atomic_load_explicit(&st->levels.n, memory_order_relaxed) == 0)
		return 0;
	pthread_mutex_lock(&st->lvl_mu);
	l = (struct level *)fg_hmap_find(&st->levels,
	    fg_store_hash(st, lk, klen), lk, klen);
	if (l != NULL) {
		found = 1;
		if (level != NULL)
			*level = l->level;
		if (last_ms != NULL)
			*last_ms = l->last_ms;
	}
	pthread_mutex_unlock(&st->lvl_mu);
	return found;
}

/* Levels not used within the horizon go. */
void
fg_store_level_expire(fg_store *st, int64_t now_ms)
{
	struct sweep sw = {st, now_ms - st->opt.horizon_ms};

	pthread_mutex_lock(&st->lvl_mu);
	hmap_sweep(&st->levels, level_expired, &sw);
	pthread_mutex_unlock(&st->lvl_mu);
}

int
fg_store_level_collect(fg_store *st, struct fg_level_op **out, size_t *nout)
{
	struct fg_level_op *ops = NULL;
	size_t n = 0;
	int rc = 0;

	*out = NULL;
	*nout = 0;
	pthread_mutex_lock(&st->lvl_mu);
	if (st->lvl_dirty == 0)
		goto done;
	if ((ops = calloc(st->lvl_dirty, sizeof(*ops))) == NULL) {
		rc = FG_ENOMEM;
		goto done;
	}
	for (size_t i = 0; i <= st->levels.mask && st->lvl_dirty > 0; i++) {
		for (struct fg_hnode *h = st->levels.tab[i]; h; h = h->next) {
			struct level *l = (struct level *)h;
			struct fg_level_op *op = &ops[n];
			size_t rl;

			if (!l->dirty)
				continue;
			rl = strlen(l->buf);
			if ((op->rule = strdup(l->buf)) == NULL ||
			    (op->key = strdup(l->buf + rl + 1)) == NULL) {
				free(op->rule);
				goto done;
			}
			op->level = l->level;
			op->last_ms = l->last_ms;
			op->seq = l->seq;
			l->dirty = false;
			st->lvl_dirty--;
			n++;
		}
	}
done:
	pthread_mutex_unlock(&st->lvl_mu);
	if (rc < 0 || (ops != NULL && n == 0)) {
		free(ops);
		return rc < 0 ? rc : FG_ENOMEM;
	}
	*out = ops;
	*nout = n;
	return 0;
}

void
fg_store_level_done(fg_store *st, struct fg_level_op *ops, size_t n,
                    bool committed)
{
	if (!committed) {
		pthread_mutex_lock(&st->lvl_mu);
		for (size_t i = 0; i < n; i++) {
			char lk[2 * FG_KEY_MAX];
			size_t klen = level_key(lk, sizeof(lk), ops[i].rule,
			                        ops[i].key);
			struct level *l = (struct level *)fg_hmap_find(
			    &st->levels, fg_store_hash(st, lk, klen), lk, klen);

			if (l != NULL && l->seq == ops[i].seq && !l->dirty) {
				l->dirty = true;
				st->lvl_dirty++;
			}
		}
		pthread_mutex_unlock(&st->lvl_mu);
	}
	for (size_t i = 0; i < n; i++) {
		free(ops[i].rule);
		free(ops[i].key);
	}
	free(ops);
}
