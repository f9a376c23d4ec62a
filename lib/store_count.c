/*
 * store_count.c - the in-memory counters behind fg_store_count().
 *
 * A table of keys split into FG_STORE_SHARDS shards, each a chained hash
 * with its own mutex, so threads touching different keys rarely meet.
 * Keys are hashed with SipHash-1-3 under a random per-store key: the HELO
 * names and domains that become keys are chosen by the client, and must
 * not be able to pile up in one chain.
 *
 * Per key, the events of each counter form a series of per-second buckets
 * holding running totals, so a window is answered by one binary search
 * and one subtraction, however many seconds the key has seen:
 *
 *   count(sec > cutoff) = cum[last] - cum[first bucket > cutoff, minus 1]
 *
 * Totals are uint32_t and subtracted modulo 2^32, so they may wrap; only
 * the number of events inside one horizon has to fit.
 *
 * Most keys of a flood see one or two events and are never asked about
 * again, so a key starts with three packed inline cells (second, counter,
 * n) and moves to per-counter series only when it outgrows them.  Such a
 * key costs 40 bytes plus its name and a bucket pointer.  Dropping what fell
 * out of the horizon only moves a series' start; the dead prefix is
 * reclaimed when the series next has to grow, so expiry stays cheap for
 * keys with a day of buckets.
 *
 * Entries of keys up to 47 bytes (every address and network) live in
 * fixed-size slots carved from per-shard slabs, 56 bytes for an IPv4
 * address: an expired entry's slot goes on its shard's free list, and the
 * next key of that size on the shard takes it.  Under a flood the keys
 * are created by whichever callback thread, in whichever malloc arena,
 * and freed by the expiry sweep; with plain malloc each arena's free
 * memory drifts and the heap keeps growing long after the number of live
 * keys has settled.  With the slabs, memory follows the peak number of
 * live keys and stays there.  Slabs go back only when the store is freed.
 *
 * Time: an event is filed at max(its second, the key's newest second), so
 * every series only ever grows at its end; a count treats seconds later
 * than now as now (both as store.h documents for a clock stepped back).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FG_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define FG_ASAN 1
#endif
#ifdef FG_ASAN
#include <sanitizer/asan_interface.h>
#define SLOT_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define SLOT_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define SLOT_POISON(p, n) ((void)(p), (void)(n))
#define SLOT_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#include "fg.h"
#include "store_internal.h"

#define KENT_CELLS 3
#define KENT_BIG 0xff
#define CELL_SIZE 6       /* uint32_t second, uint16_t counter << 13 | n */
#define CELL_NMAX 0x1fff
#define SHARD_MIN 64
#define EXPIRE_SLICE 1024 /* buckets examined per shard lock hold */
#define SLAB_BYTES 8192
#define SLOT_CLASSES 2

struct bk {
	uint32_t sec;
	uint32_t cum; /* events up to and including sec */
};

struct series {
	uint32_t off;  /* live buckets are b[off..len) */
	uint32_t len, cap;
	uint32_t base; /* cum before b[off] */
	struct bk b[];
};

struct big {
	struct series *s[FG_CNT__COUNT];
};

struct kent {
	struct kent *next;
	uint32_t newest;  /* newest second any counter was filed at */
	int32_t conns;    /* concurrent sessions */
	uint16_t klen;
	uint8_t ncell;    /* inline cells in use, or KENT_BIG */
	uint8_t data[KENT_CELLS * CELL_SIZE + 3]; /* cells, or a struct big * */
	char key[];
};

_Static_assert(sizeof(((struct kent *)0)->data) >= sizeof(struct big *),
               "a struct big pointer fits the cells");
_Static_assert(sizeof(struct kent) == 40, "a key entry is 40 bytes");

/* Slot sizes: an entry with a key of up to 15 bytes (an IPv4 address,
 * "255.255.255.255"), and up to 47 (IPv6 addresses, networks). */
static const uint32_t slot_size[SLOT_CLASSES] = {
	sizeof(struct kent) + 16, sizeof(struct kent) + 48,
};

struct slab {
	struct slab *next;
	unsigned char slot[]; /* pointer-aligned, as slot sizes are */
};

struct fg_shard {
	_Alignas(64) pthread_mutex_t mu;
	struct kent **tab;
	uint32_t mask;
	uint32_t n;
	/* Under mu, like the table. */
	struct kent *freel[SLOT_CLASSES]; /* free slots, chained by next */
	unsigned char *fresh[SLOT_CLASSES]; /* never used slots of a slab */
	uint32_t nfresh[SLOT_CLASSES];
	struct slab *slabs;
};

struct cell {
	uint32_t sec;
	unsigned ctr;
	uint32_t n;
};

static struct cell
cell_get(const struct kent *e, int i)
{
	struct cell c;
	uint16_t v;

	const uint8_t *p = e->data + (size_t)i * CELL_SIZE;

	memcpy(&c.sec, p, 4);
	memcpy(&v, p + 4, 2);
	c.ctr = v >> 13;
	c.n = v & CELL_NMAX;
	return c;
}

static void
cell_put(struct kent *e, int i, struct cell c)
{
	uint16_t v = (uint16_t)(c.ctr << 13 | c.n);

	uint8_t *p = e->data + (size_t)i * CELL_SIZE;

	memcpy(p, &c.sec, 4);
	memcpy(p + 4, &v, 2);
}

static struct big *
big_of(const struct kent *e)
{
	struct big *b;

	memcpy(&b, e->data, sizeof(b));
	return b;
}

/* SipHash-1-3 (Aumasson and Bernstein), 64-bit output. */
#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                     \
	do {                                                         \
		v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32); \
		v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;               \
		v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;               \
		v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32); \
	} while (0)

uint64_t
fg_store_hash(const fg_store *st, const char *s, size_t len)
{
	uint64_t v0 = st->seed[0] ^ UINT64_C(0x736f6d6570736575);
	uint64_t v1 = st->seed[1] ^ UINT64_C(0x646f72616e646f6d);
	uint64_t v2 = st->seed[0] ^ UINT64_C(0x6c7967656e657261);
	uint64_t v3 = st->seed[1] ^ UINT64_C(0x7465646279746573);
	const unsigned char *p = (const unsigned char *)s;
	size_t left = len;
	uint64_t m, b = (uint64_t)len << 56;

	for (; left >= 8; p += 8, left -= 8) {
		memcpy(&m, p, 8);
		v3 ^= m;
		SIPROUND;
		v0 ^= m;
	}
	for (size_t i = 0; i < left; i++)
		b |= (uint64_t)p[i] << (8 * i);
	v3 ^= b;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

int
fg_store_count_init(fg_store *st)
{
	struct fg_shard *sh;

	sh = aligned_alloc(_Alignof(struct fg_shard),
	                   sizeof(*sh) * FG_STORE_SHARDS);
	if (sh == NULL)
		return FG_ENOMEM;
	memset(sh, 0, sizeof(*sh) * FG_STORE_SHARDS);
	for (int i = 0; i < FG_STORE_SHARDS; i++) {
		sh[i].tab = calloc(SHARD_MIN, sizeof(*sh[i].tab));
		if (sh[i].tab == NULL) {
			while (i-- > 0) {
				free(sh[i].tab);
				pthread_mutex_destroy(&sh[i].mu);
			}
			free(sh);
			return FG_ENOMEM;
		}
		sh[i].mask = SHARD_MIN - 1;
		pthread_mutex_init(&sh[i].mu, NULL);
	}
	st->shards = sh;
	return 0;
}

/* The slot class of an entry with a key of klen bytes; -1: malloc. */
static int
slot_class(size_t klen)
{
	for (int c = 0; c < SLOT_CLASSES; c++)
		if (sizeof(struct kent) + klen + 1 <= slot_size[c])
			return c;
	return -1;
}

/* Memory for an entry with a key of klen bytes; NULL if out of memory. */
static struct kent *
kent_alloc(struct fg_shard *sh, size_t klen)
{
	int c = slot_class(klen);
	struct kent *e;

	if (c < 0)
		return malloc(sizeof(*e) + klen + 1);
	if ((e = sh->freel[c]) != NULL) {
		SLOT_UNPOISON(e, slot_size[c]);
		sh->freel[c] = e->next;
		return e;
	}
	if (sh->nfresh[c] == 0) {
		struct slab *s = malloc(SLAB_BYTES);

		if (s == NULL)
			return NULL;
		s->next = sh->slabs;
		sh->slabs = s;
		sh->fresh[c] = s->slot;
		sh->nfresh[c] =
		    (SLAB_BYTES - offsetof(struct slab, slot)) / slot_size[c];
		SLOT_POISON(s->slot, SLAB_BYTES - offsetof(struct slab, slot));
	}
	e = (struct kent *)(void *)sh->fresh[c];
	SLOT_UNPOISON(e, slot_size[c]);
	sh->fresh[c] += slot_size[c];
	sh->nfresh[c]--;
	return e;
}

/* Frees e's series, and e itself or its slot (onto sh's free list). */
static void
kent_free(struct fg_shard *sh, struct kent *e)
{
	int c = slot_class(e->klen);

	if (e->ncell == KENT_BIG) {
		struct big *big = big_of(e);

		for (int k = 0; k < FG_CNT__COUNT; k++)
			free(big->s[k]);
		free(big);
	}
	if (c < 0) {
		free(e);
		return;
	}
	e->next = sh->freel[c];
	sh->freel[c] = e;
	SLOT_POISON(e, slot_size[c]);
}

void
fg_store_count_free(fg_store *st)
{
	if (st->shards == NULL)
		return;
	for (int i = 0; i < FG_STORE_SHARDS; i++) {
		struct fg_shard *sh = &st->shards[i];

		for (uint32_t b = 0; b <= sh->mask; b++) {
			struct kent *e, *next;

			for (e = sh->tab[b]; e != NULL; e = next) {
				next = e->next;
				kent_free(sh, e);
			}
		}
		while (sh->slabs != NULL) {
			struct slab *s = sh->slabs;

			sh->slabs = s->next;
			SLOT_UNPOISON(s, SLAB_BYTES);
			free(s);
		}
		free(sh->tab);
		pthread_mutex_destroy(&sh->mu);
	}
	free(st->shards);
	st->shards = NULL;
}

static struct fg_shard *
shard_of(fg_store *st, uint64_t h)
{
	return &st->shards[h >> 58 & (FG_STORE_SHARDS - 1)];
}

static struct kent *
shard_find(struct fg_shard *sh, uint64_t h, const char *key, size_t klen)
{
	struct kent *e;

	for (e = sh->tab[h & sh->mask]; e != NULL; e = e->next)
		if (e->klen == klen && memcmp(e->key, key, klen) == 0)
			return e;
	return NULL;
}

/* Doubles the bucket array, rehashing (entries keep no hash: it would
 * cost 4 bytes a key); failure is harmless, chains just get longer. */
static void
shard_grow(fg_store *st, struct fg_shard *sh)
{
	uint32_t nsize = (sh->mask + 1) * 2;
	struct kent **tab;

	if (nsize == 0 || (tab = calloc(nsize, sizeof(*tab))) == NULL)
		return;
	for (uint32_t b = 0; b <= sh->mask; b++) {
		struct kent *e, *next;

		for (e = sh->tab[b]; e != NULL; e = next) {
			uint64_t i = fg_store_hash(st, e->key, e->klen) &
			             (nsize - 1);

			next = e->next;
			e->next = tab[i];
			tab[i] = e;
		}
	}
	free(sh->tab);
	sh->tab = tab;
	sh->mask = nsize - 1;
}

/* The entry of key, created if absent; NULL only when out of memory. */
static struct kent *
shard_get(fg_store *st, struct fg_shard *sh, uint64_t h, const char *key,
          size_t klen)
{
	struct kent *e = shard_find(sh, h, key, klen);

	if (e != NULL)
		return e;
	if (klen > UINT16_MAX || (e = kent_alloc(sh, klen)) == NULL)
		return NULL;
	memset(e, 0, sizeof(*e));
	e->klen = (uint16_t)klen;
	memcpy(e->key, key, klen);
	e->key[klen] = '\0';
	/* Two entries a bucket before it doubles: chains stay short, and
	 * at a million keys the buckets take 4 MB rather than 8 or 16. */
	if (sh->n >= 2 * (sh->mask + 1))
		shard_grow(st, sh);
	e->next = sh->tab[h & sh->mask];
	sh->tab[h & sh->mask] = e;
	sh->n++;
	atomic_fetch_add(&st->nkeys, 1);
	return e;
}

static void
shard_unlink(fg_store *st, struct fg_shard *sh, uint64_t h, struct kent *e)
{
	struct kent **pp = &sh->tab[h & sh->mask];

	while (*pp != e)
		pp = &(*pp)->next;
	*pp = e->next;
	sh->n--;
	atomic_fetch_sub(&st->nkeys, 1);
	kent_free(sh, e);
}

/* First live bucket with sec > cutoff (len if none). */
static uint32_t
series_search(const struct series *s, int64_t cutoff)
{
	uint32_t lo = s->off, hi = s->len;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if ((int64_t)s->b[mid].sec > cutoff)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static uint32_t
series_sum(const struct series *s, int64_t cutoff)
{
	uint32_t i;

	if (s == NULL || s->len == s->off)
		return 0;
	i = series_search(s, cutoff);
	return s->b[s->len - 1].cum - (i > s->off ? s->b[i - 1].cum : s->base);
}

/* Moves the live buckets to the front; shrinks a mostly empty array. */
static void
series_compact(struct series **sp)
{
	struct series *s = *sp;
	uint32_t live = s->len - s->off;

	if (s->off > 0) {
		memmove(s->b, s->b + s->off, live * sizeof(s->b[0]));
		s->off = 0;
		s->len = live;
	}
	if (s->cap >= 64 && live < s->cap / 4) {
		uint32_t ncap = s->cap / 2;
		struct series *ns = realloc(s, sizeof(*s) + ncap * sizeof(s->b[0]));

		if (ns != NULL) {
			ns->cap = ncap;
			*sp = ns;
		}
	}
}

/* Drops the buckets at or before cutoff; frees an emptied series. */
static void
series_trim(struct series **sp, int64_t cutoff)
{
	struct series *s = *sp;
	uint32_t i;

	if (s == NULL || s->len == s->off ||
	    (int64_t)s->b[s->off].sec > cutoff)
		return;
	i = series_search(s, cutoff);
	if (i == s->len) {
		free(s);
		*sp = NULL;
		return;
	}
	s->base = s->b[i - 1].cum;
	s->off = i;
	/* Reclaim when the dead prefix is most of the array. */
	if (s->off > s->cap / 2)
		series_compact(sp);
}

/*
 * Adds n at sec, which is at or after the series' last second.  A full
 * series first reclaims its dead prefix and sheds what fell out of the
 * horizon (so memory stays bounded even if nobody calls expire), then
 * doubles.
 */
static int
series_add(struct series **sp, uint32_t sec, uint32_t n, int64_t horizon_s)
{
	struct series *s = *sp;
	uint32_t last;

	if (s != NULL && s->len > s->off && s->b[s->len - 1].sec >= sec) {
		s->b[s->len - 1].cum += n;
		return 0;
	}
	if (s != NULL && s->len == s->cap) {
		series_trim(sp, (int64_t)sec - horizon_s);
		if ((s = *sp) != NULL && s->off > 0)
			series_compact(sp);
		s = *sp;
	}
	if (s == NULL || s->len == s->cap) {
		uint32_t ncap = s == NULL ? 4 : s->cap * 2;
		struct series *ns = realloc(s, sizeof(*s) + ncap * sizeof(s->b[0]));

		if (ns == NULL)
			return FG_ENOMEM;
		if (s == NULL)
			memset(ns, 0, sizeof(*ns));
		ns->cap = ncap;
		*sp = s = ns;
	}
	last = s->len > s->off ? s->b[s->len - 1].cum : s->base;
	s->b[s->len].sec = sec;
	s->b[s->len].cum = last + n;
	s->len++;
	return 0;
}

/* Moves the inline cells into per-counter series. */
static int
kent_promote(fg_store *st, struct kent *e)
{
	struct big *big = calloc(1, sizeof(*big));

	if (big == NULL)
		return FG_ENOMEM;
	/* Cells of one counter were filled in ascending second order. */
	for (int i = 0; i < e->ncell; i++) {
		struct cell c = cell_get(e, i);

		if (series_add(&big->s[c.ctr], c.sec, c.n, st->horizon_s) < 0) {
			for (int k = 0; k < FG_CNT__COUNT; k++)
				free(big->s[k]);
			free(big);
			return FG_ENOMEM;
		}
	}
	memcpy(e->data, &big, sizeof(big));
	e->ncell = KENT_BIG;
	return 0;
}

static int
kent_add(fg_store *st, struct kent *e, enum fg_counter ctr, uint32_t sec,
         uint32_t n)
{
	int rc;

	if (e->ncell != KENT_BIG) {
		for (int i = 0; i < e->ncell; i++) {
			struct cell c = cell_get(e, i);

			if (c.ctr == (unsigned)ctr && c.sec == sec &&
			    c.n + n <= CELL_NMAX) {
				c.n += n;
				cell_put(e, i, c);
				goto done;
			}
		}
		if (e->ncell < KENT_CELLS && n <= CELL_NMAX) {
			struct cell c = {sec, (unsigned)ctr, n};

			cell_put(e, e->ncell++, c);
			goto done;
		}
		if ((rc = kent_promote(st, e)) < 0)
			return rc;
	}
	if ((rc = series_add(&big_of(e)->s[ctr], sec, n, st->horizon_s)) < 0)
		return rc;
done:
	if (sec > e->newest)
		e->newest = sec;
	return 0;
}

int
fg_store_count_bump(fg_store *st, const char *key, size_t klen,
                    const enum fg_counter *ctrs, size_t n, uint32_t sec)
{
	uint64_t h = fg_store_hash(st, key, klen);
	struct fg_shard *sh = shard_of(st, h);
	struct kent *e;
	int rc = 0;

	pthread_mutex_lock(&sh->mu);
	if ((e = shard_get(st, sh, h, key, klen)) == NULL) {
		rc = FG_ENOMEM;
	} else {
		if (sec < e->newest)
			sec = e->newest;
		for (size_t i = 0; i < n && rc == 0; i++)
			rc = kent_add(st, e, ctrs[i], sec, 1);
	}
	pthread_mutex_unlock(&sh->mu);
	return rc;
}

/*
 * Rows come grouped by key, so the entry of the previous row is usually
 * the one wanted: no hash, no look-up.  Runs before the writer thread
 * starts and before the store is handed out, so it needs no lock.
 */
int
fg_store_count_load(fg_store *st, const char *key, size_t klen,
                    enum fg_counter c, uint32_t sec, uint32_t n)
{
	struct kent *e = st->load_hint;

	if (e == NULL || e->klen != klen || memcmp(e->key, key, klen) != 0) {
		uint64_t h = fg_store_hash(st, key, klen);

		e = shard_get(st, shard_of(st, h), h, key, klen);
		if ((st->load_hint = e) == NULL)
			return FG_ENOMEM;
	}
	return kent_add(st, e, c, sec, n);
}

int64_t
fg_store_count_get(fg_store *st, const char *key, size_t klen,
                   enum fg_counter c, int64_t cutoff)
{
	uint64_t h = fg_store_hash(st, key, klen);
	struct fg_shard *sh = shard_of(st, h);
	struct kent *e;
	int64_t sum = 0;

	pthread_mutex_lock(&sh->mu);
	if ((e = shard_find(sh, h, key, klen)) != NULL) {
		if (e->ncell == KENT_BIG) {
			sum = series_sum(big_of(e)->s[c], cutoff);
		} else {
			for (int i = 0; i < e->ncell; i++) {
				struct cell x = cell_get(e, i);

				if (x.ctr == (unsigned)c && (int64_t)x.sec > cutoff)
					sum += x.n;
			}
		}
	}
	pthread_mutex_unlock(&sh->mu);
	return sum;
}

static bool
kent_empty(const struct kent *e)
{
	if (e->ncell != KENT_BIG)
		return e->ncell == 0;
	for (int c = 0; c < FG_CNT__COUNT; c++)
		if (big_of(e)->s[c] != NULL)
			return false;
	return true;
}

static void
kent_trim(struct kent *e, int64_t cutoff)
{
	int k = 0;

	if (e->ncell == KENT_BIG) {
		struct big *big = big_of(e);

		for (int c = 0; c < FG_CNT__COUNT; c++)
			series_trim(&big->s[c], cutoff);
		if (kent_empty(e)) {
			free(big);
			e->ncell = 0;
		}
		return;
	}
	for (int i = 0; i < e->ncell; i++) {
		struct cell c = cell_get(e, i);

		if ((int64_t)c.sec > cutoff)
			cell_put(e, k++, c);
	}
	e->ncell = (uint8_t)k;
}

int64_t
fg_store_count_conn(fg_store *st, const char *key, size_t klen, int delta)
{
	uint64_t h = fg_store_hash(st, key, klen);
	struct fg_shard *sh = shard_of(st, h);
	struct kent *e;
	int64_t r = 0;

	pthread_mutex_lock(&sh->mu);
	if (delta > 0)
		e = shard_get(st, sh, h, key, klen);
	else
		e = shard_find(sh, h, key, klen);
	if (e == NULL) {
		r = delta > 0 ? FG_ENOMEM : 0;
	} else {
		if (delta > 0 && e->conns < INT32_MAX)
			e->conns++;
		else if (delta < 0 && e->conns > 0)
			e->conns--;
		r = e->conns;
		/* A key kept only for its sessions goes with the last one. */
		if (e->conns == 0 && kent_empty(e))
			shard_unlink(st, sh, h, e);
	}
	pthread_mutex_unlock(&sh->mu);
	return r;
}

/*
 * Drops buckets at or before cutoff, and keys left with neither buckets
 * nor sessions.  Works a slice of buckets per lock hold so counts on the
 * same shard never wait long.
 */
void
fg_store_count_expire(fg_store *st, int64_t cutoff)
{
	for (int i = 0; i < FG_STORE_SHARDS; i++) {
		struct fg_shard *sh = &st->shards[i];
		uint32_t b = 0;
		bool more;

		do {
			pthread_mutex_lock(&sh->mu);
			/* The table may have grown between slices: an entry
			 * seen twice or skipped is caught next time. */
			uint32_t end = b + EXPIRE_SLICE;
			if (end > sh->mask + 1)
				end = sh->mask + 1;
			for (; b < end; b++) {
				struct kent **pp = &sh->tab[b];

				while (*pp != NULL) {
					struct kent *e = *pp;

					kent_trim(e, cutoff);
					if (!kent_empty(e) || e->conns != 0) {
						pp = &e->next;
						continue;
					}
					*pp = e->next;
					sh->n--;
					atomic_fetch_sub(&st->nkeys, 1);
					kent_free(sh, e);
				}
			}
			more = b <= sh->mask;
			pthread_mutex_unlock(&sh->mu);
		} while (more);
	}
}
