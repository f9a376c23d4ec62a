/*
 * store_allow.c - the operators' allow list in memory: keys (addresses,
 * networks of any prefix length, HELO names, sender domains) exempt
 * from every rule and ban until a time.  The list lives in the allows
 * table, written by floodgatectl allow and disallow; the writer thread
 * loads it at open and again whenever another process changed the
 * database.  Look-ups take a lock only while the list is not empty.
 */
#include <stdlib.h>
#include <string.h>

#include "fg.h"
#include "keys.h"
#include "store_internal.h"

struct allow {
	struct fg_hnode h;
	int64_t until_ms;
	char key[];
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
	for (size_t i = 0; i < FG_NELEM(st->allow_lens4); i++)
		atomic_store(&st->allow_lens4[i], 0);
	for (size_t i = 0; i < FG_NELEM(st->allow_lens6); i++)
		atomic_store(&st->allow_lens6[i], 0);
}

void
fg_store_allow_free(fg_store *st)
{
	allow_clear(st);
	free(st->allows.tab);
	fg_hmap_init(&st->allows);
	pthread_mutex_destroy(&st->allow_mu);
}

void
fg_store_allow_reload(fg_store *st, const struct fg_allow_row *rows, size_t n)
{
	pthread_mutex_lock(&st->allow_mu);
	allow_clear(st);
	for (size_t i = 0; i < n; i++) {
		size_t klen = strlen(rows[i].key);
		struct allow *a;
		fg_prefix p;

		if (klen == 0 || klen >= FG_KEY_MAX ||
		    fg_hmap_reserve(&st->allows) < 0 ||
		    (a = malloc(sizeof(*a) + klen + 1)) == NULL)
			break;
		memcpy(a->key, rows[i].key, klen + 1);
		a->h.key = a->key;
		a->h.klen = klen;
		a->h.hash = fg_store_hash(st, a->key, klen);
		a->h.next = NULL;
		a->until_ms = rows[i].until_ms;
		if (fg_hmap_find(&st->allows, a->h.hash, a->key, klen) != NULL) {
			free(a);
			continue;
		}
		fg_hmap_insert(&st->allows, &a->h);
		if (fg_key_type_of(a->key) == FG_KEY_NETWORK &&
		    fg_prefix_parse(a->key, &p) == 0) {
			if (p.addr.family == FG_AF_INET && p.len <= 32)
				atomic_fetch_add(&st->allow_lens4[p.len], 1);
			else if (p.addr.family == FG_AF_INET6 && p.len <= 128)
				atomic_fetch_add(&st->allow_lens6[p.len], 1);
		}
	}
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
	unsigned max = family == FG_AF_INET ? 32 : 128;

	for (unsigned len = 0; len <= max; len++)
		used[len] = st != NULL &&
		            atomic_load_explicit(family == FG_AF_INET
		                                     ? &st->allow_lens4[len]
		                                     : &st->allow_lens6[len],
		                                 memory_order_relaxed) > 0;
}
