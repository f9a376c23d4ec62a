/*
 * bench_net.c - how long a longest-prefix-match look-up takes.
 *
 * Builds a table of 5000 random prefixes per family and looks up 10
 * million random addresses in it, half of them drawn from inside a
 * table prefix so both the hit and the miss paths are exercised.  Each
 * run stops early after a few seconds (a sanitizer build is slow), so
 * the whole program stays bounded.
 *
 * Usage: bench_net [lookups]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fg.h"
#include "net.h"

#define NPREFIX 5000
#define NADDR (1 << 20) /* a pool of addresses, reused round-robin */
#define BUDGET_NS INT64_C(2000000000) /* per family */

static uint64_t rng_state = UINT64_C(0x2545f4914f6cdd1d);

static uint64_t
rng(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
random_addr(fg_addr *a, int family)
{
	int i;

	memset(a, 0, sizeof(*a));
	a->family = (uint8_t)family;
	for (i = 0; i < (family == FG_AF_INET ? 4 : 16); i++)
		a->bytes[i] = (uint8_t)rng();
}

static int
run(int family, long lookups)
{
	static fg_prefix pfx[NPREFIX];
	fg_addr *addr = malloc(NADDR * sizeof(*addr));
	fg_nettab *t = fg_nettab_new();
	unsigned max = family == FG_AF_INET ? 32 : 128;
	unsigned min = family == FG_AF_INET ? 8 : 16;
	long i, done = 0, hits = 0;
	int64_t t0, elapsed;
	size_t k;

	if (t == NULL || addr == NULL) {
		fg_nettab_free(t, NULL);
		free(addr);
		return -1;
	}
	for (k = 0; k < NPREFIX; k++) {
		fg_addr a;
		int r;

		random_addr(&a, family);
		fg_prefix_of(&a, min + (unsigned)(rng() % (max - min + 1)), &pfx[k]);
		r = fg_nettab_add(t, &pfx[k], &pfx[k]);
		if (r < 0 && r != FG_EEXIST) {
			fprintf(stderr, "add: %s\n", fg_strerror(r));
			fg_nettab_free(t, NULL);
			free(addr);
			return -1;
		}
	}
	for (k = 0; k < NADDR; k++) {
		random_addr(&addr[k], family);
		if (k % 2 == 0) {
			/* inside a table prefix: copy its leading bits */
			const fg_prefix *p = &pfx[rng() % NPREFIX];
			unsigned j, rem = p->len % 8;

			for (j = 0; j < p->len / 8u; j++)
				addr[k].bytes[j] = p->addr.bytes[j];
			if (rem != 0) {
				uint8_t m = (uint8_t)(0xff00u >> rem);

				addr[k].bytes[j] = (uint8_t)((p->addr.bytes[j] & m) |
				                             (addr[k].bytes[j] & ~m));
			}
		}
	}

	t0 = now_ns();
	for (i = 0; i < lookups; i += NADDR) {
		for (k = 0; k < NADDR; k++) {
			void *v;

			hits += fg_nettab_lookup(t, &addr[k], &v, NULL);
		}
		done += NADDR;
		if (now_ns() - t0 > BUDGET_NS)
			break;
	}
	elapsed = now_ns() - t0;
	printf("IPv%d: %zu prefixes, %ld lookups (%.0f%% hits) in %.3f s: "
	       "%.1f ns/lookup\n",
	       family, fg_nettab_count(t), done, 100.0 * (double)hits / (double)done,
	       (double)elapsed / 1e9, (double)elapsed / (double)done);
	fg_nettab_free(t, NULL);
	free(addr);
	return 0;
}

int
main(int argc, char **argv)
{
	long lookups = argc > 1 ? strtol(argv[1], NULL, 10) : 10000000L;

	if (lookups <= 0)
		lookups = 10000000L;
	if (run(FG_AF_INET, lookups) < 0 || run(FG_AF_INET6, lookups) < 0)
		return 1;
	return 0;
}
