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
 * Most keys of a flood see one session and are never asked about again,
 * so a key keeps its events as cells: one uint32_t each for a counter in
 * a second (the second as an offset from the key's base, the counter, the
 * number).  Five cells live in the entry itself, enough for a whole
 * session (connect, HELO, MAIL, a recipient and its class); a key that
 * outgrows them moves its cells to a log of up to LOG_MAX, and only a key
 * with a longer history moves to per-counter series.  A count over cells
 * is a scan of at most LOG_MAX of them.  Dropping what fell out of the
 * horizon only moves a series' start; the dead prefix is reclaimed when
 * the series next has to grow, so expiry stays cheap for keys with a day
 * of buckets.
 *
 * Every allocation is charged to the store's memory (as malloc hands it
 * out), which the memory limit compares with before making a new key.
 *
 * Entries of keys up to 47 bytes (every address and network) live in
 * fixed-size slots carved from per-shard slabs, 56 bytes for an IPv4
 * address, cells included: an expired entry's slot goes on its shard's
 * free list, and the next key of that size on the shard takes it.  Under a flood the keys
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
#include "keys.h"
#include "store_internal.h"

#define KENT_CELLS 5
#define KENT_LOG 0xfe     /* mode: the cells are in a struct clog */
#define KENT_BIG 0xff     /* mode: per-counter series in a struct big */
#define CELL_OFF_MAX 0x1ffffu /* 17 bits: seconds after the key's base */
#define CELL_CTR_SHIFT 12
#define CELL_NMAX 0xfffu  /* 12 bits: events in the cell */
#define LOG_MIN 8         /* cells of a new log */
#define LOG_MAX 32        /* a longer history moves to series */
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
	uint32_t newest;  /* newest second any counter was filed at */
	struct series *s[FG_CNT__COUNT];
};

/* The cells of a key past its inline ones, oldest first. */
struct clog {
	uint16_t n, cap;
	uint32_t cell[];
};

/*
 * A cell is one uint32_t: the second as an offset from the entry's base
 * (17 bits, 36 hours), the counter (3 bits) and the events (12 bits).
 * Cells are appended in order of their second, so the last one holds the
 * newest second of the key.
 */
struct kent {
	struct kent *next;
	int32_t conns;    /* concurrent sessions */
	uint16_t klen;
	uint8_t mode;     /* inline cells in use, or KENT_LOG, KENT_BIG */
	uint8_t spare;
	uint32_t base;    /* the second cell offsets count from */
	uint32_t cell[KENT_CELLS]; /* or a struct clog * or struct big * */
	char key[];
};

_Static_assert(sizeof(((struct kent *)0)->cell) >= sizeof(void *),
               "a pointer fits the cells");
_Static_assert(sizeof(struct kent) == 40, "a key entry is 40 bytes");
_Static_assert(FG_CNT__COUNT <= 8, "a counter fits 3 bits");

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

static uint32_t
cell_make(uint32_t off, unsigned ctr, uint32_t n)
{
	return off << 15 | (uint32_t)ctr << CELL_CTR_SHIFT | n;
}

static uint32_t cell_off(uint32_t c) { return c >> 15; }
static unsigned cell_ctr(uint32_t c) { return c >> CELL_CTR_SHIFT & 7; }
static uint32_t cell_n(uint32_t c) { return c & CELL_NMAX; }

static void *
ptr_of(const struct kent *e)
{
	void *p;

	memcpy(&p, e->cell, sizeof(p));
	return p;
}

static void
ptr_put(struct kent *e, const void *p)
{
	memcpy(e->cell, &p, sizeof(p));
}

static struct big *big_of(const struct kent *e) { return ptr_of(e); }
static struct clog *log_of(const struct kent *e) { return ptr_of(e); }

/* The cells of an entry not in series mode, and how many. */
static uint32_t *
cells_of(const struct kent *e, uint32_t *n)
{
	if (e->mode == KENT_LOG) {
		struct clog *l = log_of(e);

		*n = l->n;
		return l->cell;
	}
	*n = e->mode;
	return (uint32_t *)e->cell;
}

/*
 * What the counters' memory is charged: the size malloc hands out for n
 * bytes (glibc: 8 bytes of header, 16-byte steps, 32 at least).  Slots
 * are charged their slot size.
 */
static size_t
chunk(size_t n)
{
	size_t c = (n + 8 + 15) & ~(size_t)15;

	return c < 32 ? 32 : c;
}

static void
charge(fg_store *st, size_t bytes)
{
	atomic_fetch_add_explicit(&st->mem_bytes, bytes, memory_order_relaxed);
}

static void
refund(fg_store *st, size_t bytes)
{
	atomic_fetch_sub_explicit(&st->mem_bytes, bytes, memory_order_relaxed);
}

static size_t
series_bytes(const struct series *s)
{
	return s == NULL ? 0 : chunk(sizeof(*s) + s->cap * sizeof(s->b[0]));
}

static size_t
log_bytes(uint32_t cap)
{
	return chunk(sizeof(struct clog) + cap * sizeof(uint32_t));
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
		charge(st, chunk(SHARD_MIN * sizeof(*sh[i].tab)));
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

/* What an entry with a key of klen bytes is charged. */
static size_t
kent_bytes(size_t klen)
{
	int c = slot_class(klen);

	return c < 0 ? chunk(sizeof(struct kent) + klen + 1) : slot_size[c];
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

static void
big_free(fg_store *st, struct big *big)
{
	for (int k = 0; k < FG_CNT__COUNT; k++) {
		refund(st, series_bytes(big->s[k]));
		free(big->s[k]);
	}
	refund(st, chunk(sizeof(*big)));
	free(big);
}

/* Frees e's cells or series, and e itself or its slot (onto sh's free
 * list). */
static void
kent_free(fg_store *st, struct fg_shard *sh, struct kent *e)
{
	int c = slot_class(e->klen);

	if (e->mode == KENT_BIG) {
		big_free(st, big_of(e));
	} else if (e->mode == KENT_LOG) {
		refund(st, log_bytes(log_of(e)->cap));
		free(log_of(e));
	}
	refund(st, kent_bytes(e->klen));
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
				kent_free(st, sh, e);
			}
		}
		while (sh->slabs != NULL) {
			struct slab *s = sh->slabs;

			sh->slabs = s->next;
			SLOT_UNPOISON(s, SLAB_BYTES);
			free(s);
		}
		refund(st, chunk((sh->mask + 1) * sizeof(*sh->tab)));
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
	refund(st, chunk((sh->mask + 1) * sizeof(*tab)));
	charge(st, chunk(nsize * sizeof(*tab)));
	free(sh->tab);
	sh->tab = tab;
	sh->mask = nsize - 1;
}

static bool
kent_empty(const struct kent *e)
{
	if (e->mode != KENT_BIG)
		return e->mode == 0;
	for (int c = 0; c < FG_CNT__COUNT; c++)
		if (big_of(e)->s[c] != NULL)
			return false;
	return true;
}

/*
 * Whether the memory limit lets a new entry for key be made.  Below the
 * limit, any key; in the reserve above it (an eighth of the limit), only
 * networks and the global key, which the events of the keys held back
 * still count under; past the reserve, none.
 */
static bool
may_create(fg_store *st, const char *key)
{
	uint64_t lim = st->opt.memory_limit;
	uint64_t used;

	if (lim == 0)
		return true;
	used = atomic_load_explicit(&st->mem_bytes, memory_order_relaxed);
	if (used < lim)
		return true;
	if (used >= lim + lim / 8)
		return false;
	switch (fg_key_type_of(key)) {
	case FG_KEY_NETWORK:
	case FG_KEY_GLOBAL:
		return true;
	default:
		return false;
	}
}

/*
 * The entry of key, created if absent.  NULL: *why says FG_ENOMEM (out of
 * memory) or FG_EFULL (held back by the memory limit, when limited).
 */
static struct kent *
shard_get(fg_store *st, struct fg_shard *sh, uint64_t h, const char *key,
          size_t klen, bool limited, int *why)
{
	struct kent *e = shard_find(sh, h, key, klen);

	/* An entry kept only for its sessions counts as new. */
	if (e != NULL && (!limited || e->conns == 0 || !kent_empty(e) ||
	                  may_create(st, key)))
		return e;
	if (e != NULL || (limited && !may_create(st, key))) {
		*why = FG_EFULL;
		return NULL;
	}
	if (klen > UINT16_MAX || (e = kent_alloc(sh, klen)) == NULL) {
		*why = FG_ENOMEM;
		return NULL;
	}
	memset(e, 0, sizeof(*e));
	e->klen = (uint16_t)klen;
	memcpy(e->key, key, klen);
	e->key[klen] = '\0';
	charge(st, kent_bytes(klen));
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
	kent_free(st, sh, e);
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

/* series_add and series_trim, with what they take or give back charged. */
static int
series_add_charged(fg_store *st, struct series **sp, uint32_t sec,
                   uint32_t n)
{
	size_t before = series_bytes(*sp);
	int rc = series_add(sp, sec, n, st->horizon_s);

	refund(st, before);
	charge(st, series_bytes(*sp));
	return rc;
}

static void
series_trim_charged(fg_store *st, struct series **sp, int64_t cutoff)
{
	size_t before = series_bytes(*sp);

	series_trim(sp, cutoff);
	refund(st, before);
	charge(st, series_bytes(*sp));
}

/*
 * Drops the cells at or before cutoff (e is not in series mode) and
 * moves the base up to the oldest cell left; a log left with no more
 * cells than fit inline goes back inline.
 */
static void
cells_trim(fg_store *st, struct kent *e, int64_t cutoff)
{
	uint32_t n, k = 0, *c = cells_of(e, &n);

	for (uint32_t i = 0; i < n; i++)
		if ((int64_t)e->base + cell_off(c[i]) > cutoff)
			c[k++] = c[i];
	if (e->mode == KENT_LOG && k <= KENT_CELLS) {
		struct clog *l = log_of(e);

		refund(st, log_bytes(l->cap));
		memcpy(e->cell, l->cell, k * sizeof(uint32_t));
		free(l);
		e->mode = (uint8_t)k;
		c = e->cell;
	} else if (e->mode == KENT_LOG) {
		log_of(e)->n = (uint16_t)k;
	} else {
		e->mode = (uint8_t)k;
	}
	if (k > 0 && cell_off(c[0]) > 0) {
		uint32_t d = cell_off(c[0]);

		for (uint32_t i = 0; i < k; i++)
			c[i] -= d << 15;
		e->base += d;
	}
}

/*
 * Appends a cell of n events of ctr at sec (at or after the newest cell,
 * within CELL_OFF_MAX of the base).  0 done, 1 no room (a history longer
 * than LOG_MAX cells: the caller moves the key to series), FG_ENOMEM.
 */
static int
cells_append(fg_store *st, struct kent *e, enum fg_counter ctr,
             uint32_t sec, uint32_t n)
{
	struct clog *l;

	if (e->mode == KENT_LOG && log_of(e)->n == log_of(e)->cap)
		cells_trim(st, e, (int64_t)sec - st->horizon_s);
	if (e->mode < KENT_CELLS) {
		e->cell[e->mode++] = cell_make(sec - e->base, ctr, n);
		return 0;
	}
	if (e->mode == KENT_CELLS) {
		if ((l = malloc(sizeof(*l) + LOG_MIN * sizeof(uint32_t))) == NULL)
			return FG_ENOMEM;
		charge(st, log_bytes(LOG_MIN));
		l->cap = LOG_MIN;
		l->n = KENT_CELLS;
		memcpy(l->cell, e->cell, sizeof(e->cell));
		ptr_put(e, l);
		e->mode = KENT_LOG;
	}
	l = log_of(e);
	if (l->n == l->cap) {
		uint16_t ncap = (uint16_t)(l->cap * 2);
		struct clog *nl;

		if (ncap > LOG_MAX)
			return 1;
		if ((nl = realloc(l, sizeof(*nl) + ncap * sizeof(uint32_t))) ==
		    NULL)
			return FG_ENOMEM;
		refund(st, log_bytes(nl->cap));
		charge(st, log_bytes(ncap));
		nl->cap = ncap;
		ptr_put(e, l = nl);
	}
	l->cell[l->n++] = cell_make(sec - e->base, ctr, n);
	return 0;
}

/* Moves the cells into per-counter series. */
static int
kent_promote(fg_store *st, struct kent *e)
{
	struct big *big = calloc(1, sizeof(*big));
	uint32_t n, *c = cells_of(e, &n);
	size_t bytes = chunk(sizeof(*big));

	if (big == NULL)
		return FG_ENOMEM;
	/* Cells were filled in ascending second order. */
	for (uint32_t i = 0; i < n; i++) {
		uint32_t sec = e->base + cell_off(c[i]);

		if (series_add(&big->s[cell_ctr(c[i])], sec, cell_n(c[i]),
		               st->horizon_s) < 0) {
			for (int k = 0; k < FG_CNT__COUNT; k++)
				free(big->s[k]);
			free(big);
			return FG_ENOMEM;
		}
		big->newest = sec;
	}
	for (int k = 0; k < FG_CNT__COUNT; k++)
		bytes += series_bytes(big->s[k]);
	charge(st, bytes);
	if (e->mode == KENT_LOG) {
		refund(st, log_bytes(log_of(e)->cap));
		free(log_of(e));
	}
	ptr_put(e, big);
	e->mode = KENT_BIG;
	return 0;
}

/* Files n events of ctr at sec, or at the key's newest second if that is
 * later. */
static int
kent_add(fg_store *st, struct kent *e, enum fg_counter ctr, uint32_t sec,
         uint32_t n)
{
	struct big *big;
	int rc;

	if (e->mode != KENT_BIG) {
		uint32_t cnt, *c = cells_of(e, &cnt);

		if (cnt == 0) {
			e->base = sec;
		} else {
			uint32_t newest = e->base + cell_off(c[cnt - 1]);

			if (sec < newest)
				sec = newest;
			for (uint32_t i = cnt;
			     i-- > 0 && e->base + cell_off(c[i]) == sec;) {
				if (cell_ctr(c[i]) == (unsigned)ctr &&
				    cell_n(c[i]) + n <= CELL_NMAX) {
					c[i] += n;
					return 0;
				}
			}
			/* Too far from the base: what fell out of the
			 * horizon goes, the base moves up. */
			if (sec - e->base > CELL_OFF_MAX)
				cells_trim(st, e, (int64_t)sec - st->horizon_s);
			if (e->mode == 0)
				e->base = sec;
		}
		if (n <= CELL_NMAX && sec - e->base <= CELL_OFF_MAX &&
		    (rc = cells_append(st, e, ctr, sec, n)) <= 0)
			return rc;
		if ((rc = kent_promote(st, e)) < 0)
			return rc;
	}
	big = big_of(e);
	if (sec < big->newest)
		sec = big->newest;
	if ((rc = series_add_charged(st, &big->s[ctr], sec, n)) < 0)
		return rc;
	big->newest = sec;
	return 0;
}

int
fg_store_count_bump(fg_store *st, const char *key, size_t klen, uint64_t h,
                    const enum fg_counter *ctrs, size_t n, uint32_t sec)
{
	struct fg_shard *sh = shard_of(st, h);
	struct kent *e;
	int rc = 0;

	pthread_mutex_lock(&sh->mu);
	if ((e = shard_get(st, sh, h, key, klen, true, &rc)) != NULL) {
		for (size_t i = 0; i < n && rc == 0; i++)
			rc = kent_add(st, e, ctrs[i], sec, 1);
	}
	pthread_mutex_unlock(&sh->mu);
	return rc == FG_EFULL ? 1 : rc;
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
	int rc = 0;

	if (e == NULL || e->klen != klen || memcmp(e->key, key, klen) != 0) {
		uint64_t h = fg_store_hash(st, key, klen);

		e = shard_get(st, shard_of(st, h), h, key, klen, true, &rc);
		if ((st->load_hint = e) != NULL)
			;
		else if (rc != FG_EFULL)
			return rc;
		else {
			/* Held back by the memory limit: the row is skipped. */
			atomic_fetch_add(&st->keys_refused, 1);
			return 0;
		}
	}
	return kent_add(st, e, c, sec, n);
}

int64_t
fg_store_count_get(fg_store *st, const char *key, size_t klen, uint64_t h,
                   enum fg_counter c, int64_t cutoff)
{
	struct fg_shard *sh = shard_of(st, h);
	struct kent *e;
	int64_t sum = 0;

	pthread_mutex_lock(&sh->mu);
	if ((e = shard_find(sh, h, key, klen)) != NULL) {
		if (e->mode == KENT_BIG) {
			sum = series_sum(big_of(e)->s[c], cutoff);
		} else {
			uint32_t n, *x = cells_of(e, &n);

			for (uint32_t i = 0; i < n; i++)
				if (cell_ctr(x[i]) == (unsigned)c &&
				    (int64_t)e->base + cell_off(x[i]) > cutoff)
					sum += cell_n(x[i]);
		}
	}
	pthread_mutex_unlock(&sh->mu);
	return sum;
}


void
fg_store_count_slots_get(fg_store *st, const char *key, size_t klen,
                         uint64_t h, int64_t first_sec, int64_t slot_s,
                         size_t nslots, int64_t (*out)[FG_CNT__COUNT])
{
	struct fg_shard *sh = shard_of(st, h);
	int64_t end = first_sec + slot_s * (int64_t)nslots;
	struct kent *e;

	pthread_mutex_lock(&sh->mu);
	if ((e = shard_find(sh, h, key, klen)) == NULL) {
		pthread_mutex_unlock(&sh->mu);
		return;
	}
	if (e->mode == KENT_BIG) {
		for (int c = 0; c < FG_CNT__COUNT; c++) {
			const struct series *s = big_of(e)->s[c];
			uint32_t i, prev;

			if (s == NULL || s->len == s->off)
				continue;
			i = series_search(s, first_sec - 1);
			prev = i > s->off ? s->b[i - 1].cum : s->base;
			for (; i < s->len && (int64_t)s->b[i].sec < end; i++) {
				out[((int64_t)s->b[i].sec - first_sec) / slot_s][c] +=
				    s->b[i].cum - prev;
				prev = s->b[i].cum;
			}
		}
	} else {
		uint32_t n, *x = cells_of(e, &n);

		for (uint32_t i = 0; i < n; i++) {
			int64_t sec = (int64_t)e->base + cell_off(x[i]);

			if (sec >= first_sec && sec < end)
				out[(sec - first_sec) / slot_s][cell_ctr(x[i])] +=
				    cell_n(x[i]);
		}
	}
	pthread_mutex_unlock(&sh->mu);
}

static void
kent_trim(fg_store *st, struct kent *e, int64_t cutoff)
{
	if (e->mode == KENT_BIG) {
		struct big *big = big_of(e);

		for (int c = 0; c < FG_CNT__COUNT; c++)
			series_trim_charged(st, &big->s[c], cutoff);
		if (kent_empty(e)) {
			big_free(st, big);
			e->mode = 0;
		}
		return;
	}
	cells_trim(st, e, cutoff);
}

int
fg_store_count_forget(fg_store *st, const char *key, size_t klen)
{
	uint64_t h = fg_store_hash(st, key, klen);
	struct fg_shard *sh = shard_of(st, h);
	struct kent *e;
	int found = 0;

	pthread_mutex_lock(&sh->mu);
	if ((e = shard_find(sh, h, key, klen)) != NULL) {
		found = 1;
		/* Every second there is, up to the last a uint32 can hold. */
		kent_trim(st, e, (int64_t)UINT32_MAX);
		if (kent_empty(e) && e->conns == 0)
			shard_unlink(st, sh, h, e);
	}
	pthread_mutex_unlock(&sh->mu);
	return found;
}

int64_t
fg_store_count_conn(fg_store *st, const char *key, size_t klen, int delta)
{
	uint64_t h = fg_store_hash(st, key, klen);
	struct fg_shard *sh = shard_of(st, h);
	struct kent *e;
	int64_t r = 0;
	int why = 0;

	pthread_mutex_lock(&sh->mu);
	/* Not limited: the entry lasts the session at most. */
	if (delta > 0)
		e = shard_get(st, sh, h, key, klen, false, &why);
	else
		e = shard_find(sh, h, key, klen);
	if (e == NULL) {
		r = delta > 0 ? why : 0;
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

					kent_trim(st, e, cutoff);
					if (!kent_empty(e) || e->conns != 0) {
						pp = &e->next;
						continue;
					}
					*pp = e->next;
					sh->n--;
					atomic_fetch_sub(&st->nkeys, 1);
					kent_free(st, sh, e);
				}
			}
			more = b <= sh->mask;
			pthread_mutex_unlock(&sh->mu);
		} while (more);
	}
}
