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
	fg_prefix_lens_clear(&st->allow_lens);
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
		fg_prefix_lens_note(&st->allow_lens, a->key, 1);
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
	if (st == NULL)
		memset(used, 0, (family == FG_AF_INET ? 33 : 129) * sizeof(*used));
	else
		fg_prefix_lens_get(&st->allow_lens, family, used);
}
