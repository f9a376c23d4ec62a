/*
 * test_store_memory.c - what the counters cost and how they are bounded:
 * sparse keys through every form of their cells (inline, a log, series)
 * against a brute-force count, what a key is charged, and the memory
 * limit (which keys it holds back, that counts stay exact, that it is
 * shown in the statistics).  In memory, time injected.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fg.h"
#include "store.h"
#include "tap.h"

#define T0 INT64_C(1700000000000)
#define HOUR INT64_C(3600000)
#define DAY (24 * HOUR)

static fg_store *
open_mem(int64_t horizon_ms, uint64_t memory_limit)
{
	struct fg_store_options o = {
		.horizon_ms = horizon_ms,
		.flush_interval_ms = 50,
		.memory_limit = memory_limit,
	};
	fg_store *st = NULL;
	char err[256] = "";

	if (fg_store_open(&o, T0, &st, err, sizeof(err)) != 0) {
		printf("# fg_store_open: %s\n", err);
		exit(1);
	}
	return st;
}

static int
rec(fg_store *st, int64_t t, enum fg_event_kind kind, enum fg_rcpt_class cls,
    const char *const *keys, size_t nkeys)
{
	struct fg_event ev = {
		.time_ms = t,
		.kind = kind,
		.rcpt_class = cls,
		.keys = keys,
		.nkeys = nkeys,
	};

	return fg_store_record(st, &ev);
}

/* connect, HELO, MAIL and one valid recipient at t. */
static void
session(fg_store *st, int64_t t, const char *const *keys, size_t nkeys)
{
	rec(st, t, FG_EV_CONNECT, FG_RCPT_NONE, keys, nkeys);
	rec(st, t, FG_EV_HELO, FG_RCPT_NONE, keys, nkeys);
	rec(st, t, FG_EV_MAIL, FG_RCPT_NONE, keys, nkeys);
	rec(st, t, FG_EV_RCPT, FG_RCPT_VALID, keys, nkeys);
}

static uint64_t lcg = 4242;

static uint32_t
rnd(uint32_t n)
{
	lcg = lcg * UINT64_C(6364136223846793005) + 1442695040888963407u;
	return (uint32_t)(lcg >> 33) % n;
}

#define NKEYS 40
#define NEV 4000

/* What was filed: key, second, counter. */
static struct {
	int key;
	uint32_t sec;
	int ctr;
} filed[NEV * 2];
static size_t nfiled;

static int64_t
model_count(int key, int ctr, int64_t cutoff)
{
	int64_t n = 0;

	for (size_t i = 0; i < nfiled; i++)
		if (filed[i].key == key && filed[i].ctr == ctr &&
		    (int64_t)filed[i].sec > cutoff)
			n++;
	return n;
}

/*
 * Forty keys, events of every counter a few hours apart on each, over
 * eleven days under a three-day horizon: the cells of a key outgrow its
 * entry, its log, run past the 36 hours one base covers, and are trimmed;
 * every count must equal the brute-force one.
 */
static void
test_sparse_model(void)
{
	fg_store *st = open_mem(3 * DAY, 0);
	uint32_t newest[NKEYS] = {0};
	int64_t t = T0;
	int bad = 0, checks = 0;

	for (int i = 0; i < NEV; i++) {
		int k = (int)rnd(NKEYS);
		char key[32];
		const char *keys[] = {key};
		enum fg_event_kind kind = (enum fg_event_kind)(1 + rnd(4));
		enum fg_rcpt_class cls = kind == FG_EV_RCPT
		                         ? (enum fg_rcpt_class)rnd(4)
		                         : FG_RCPT_NONE;
		uint32_t sec;

		t += rnd(4) == 0 ? (int64_t)rnd(2000) * 1000 : rnd(1500);
		snprintf(key, sizeof(key), "10.0.0.%d", k);
		rec(st, t, kind, cls, keys, 1);
		sec = (uint32_t)(t / 1000);
		if (sec < newest[k])
			sec = newest[k];
		newest[k] = sec;
		filed[nfiled].key = k;
		filed[nfiled].sec = sec;
		filed[nfiled++].ctr = kind == FG_EV_RCPT ? FG_CNT_RCPT
		                      : (int)kind - 1;
		if (cls != FG_RCPT_NONE) {
			filed[nfiled].key = k;
			filed[nfiled].sec = sec;
			filed[nfiled++].ctr = FG_CNT_RCPT + (int)cls;
		}
		if (i % 50 == 0) {
			static const int64_t windows[] = {1000, 60000, HOUR,
			                                  DAY, 3 * DAY};
			int64_t now = t + rnd(3000);

			for (int c = 0; c < FG_CNT__COUNT; c++) {
				int64_t w = windows[rnd(FG_NELEM(windows))];
				int64_t want = model_count(k, c,
				                           now / 1000 - w / 1000);

				snprintf(key, sizeof(key), "10.0.0.%d", k);
				checks++;
				if (fg_store_count(st, key, (enum fg_counter)c, w,
				                   now) != want && bad++ < 5)
					printf("# i=%d key %s ctr %d window %" PRId64
					       ": got %" PRId64 " want %" PRId64
					       "\n", i, key, c, w,
					       fg_store_count(st, key,
					           (enum fg_counter)c, w, now),
					       want);
			}
		}
		if (i % 300 == 299)
			fg_store_expire(st, t);
	}
	ok(t - T0 > 10 * DAY, "sparse model: %d days of events",
	   (int)((t - T0) / DAY));
	ok(checks > 500, "sparse model: %d checks", checks);
	is_int(bad, 0, "sparse model: every count matches brute force");
	fg_store_expire(st, t + 3 * DAY);
	{
		struct fg_store_stats s;

		fg_store_get_stats(st, &s);
		is_int(s.keys, 0, "sparse model: all keys expired");
	}
	fg_store_close(st);
}

/* What a key is charged after one session (memory as stats show it). */
static void
test_key_cost(void)
{
	fg_store *st = open_mem(HOUR, 0);
	struct fg_store_stats s0, s1;
	const int n = 4096;
	char key[32];
	const char *keys[] = {key};

	fg_store_get_stats(st, &s0);
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "198.51.%d.%d", i >> 8, i & 255);
		session(st, T0 + i, keys, 1);
	}
	fg_store_get_stats(st, &s1);
	is_int(s1.keys, n, "key cost: %d keys", n);
	ok((s1.memory - s0.memory) / (uint64_t)n <= 128,
	   "key cost: an IPv4 key after a session is charged at most 128 "
	   "bytes, hash table included (%" PRIu64 ")",
	   (s1.memory - s0.memory) / (uint64_t)n);
	for (int i = 0; i < n; i += 97) {
		snprintf(key, sizeof(key), "198.51.%d.%d", i >> 8, i & 255);
		for (int c = 0; c <= FG_CNT_RCPT_VALID; c++)
			if (fg_store_count(st, key, (enum fg_counter)c, HOUR,
			                   T0 + n) != 1)
				break;
	}
	fg_store_expire(st, T0 + n + HOUR);
	fg_store_get_stats(st, &s1);
	is_int(s1.keys, 0, "key cost: all expired");
	is_int((int64_t)s1.memory, (int64_t)s0.memory,
	       "key cost: memory back to where it started");
	fg_store_close(st);
}

/*
 * The limit: new addresses stop being created, their events still count
 * under their network; then past the reserve no network either; keys
 * already held go on counting exactly; it shows in the statistics.
 */
static void
test_limit(void)
{
	const uint64_t limit = 256 * 1024;
	fg_store *st = open_mem(HOUR, limit);
	struct fg_store_stats s;
	char addr[48], net[48];
	const char *keys[] = {addr, net, "*"};
	int i, first_refused = -1, failed = 0;

	/* One address under one network until the limit is reached. */
	for (i = 0; i < 20000; i++) {
		snprintf(addr, sizeof(addr), "2001:db8:%x:%x::1", i >> 8,
		         i & 255);
		snprintf(net, sizeof(net), "2001:db8:%x:%x::/64", i >> 8,
		         i & 255);
		if (rec(st, T0 + i, FG_EV_CONNECT, FG_RCPT_NONE, keys, 3) != 0)
			failed++;
		fg_store_get_stats(st, &s);
		if (s.keys_refused > 0 && first_refused < 0)
			first_refused = i;
	}
	fg_store_get_stats(st, &s);
	is_int(failed, 0, "limit: recording never fails");
	ok(first_refused > 100, "limit: the first key held back at session "
	   "%d", first_refused);
	ok(s.limited, "limit: stats say the limit holds keys back");
	ok(s.memory_limit == limit, "limit: stats give the limit");
	ok(s.memory <= limit + limit / 8 + 1024, "limit: memory stays under "
	   "the limit and its reserve (%" PRIu64 " of %" PRIu64 ")", s.memory,
	   limit);
	ok(s.keys_refused > 19000, "limit: %" PRIu64 " keys held back",
	   s.keys_refused);
	is_int(fg_store_count(st, "*", FG_CNT_CONNECT, HOUR, T0 + 20000), 20000,
	       "limit: every event counts under the global key");
	is_int(fg_store_count(st, "2001:db8:0:0::1", FG_CNT_CONNECT, HOUR,
	                      T0 + 20000), 1,
	       "limit: an address made before the limit counts");
	is_int(fg_store_count(st, "2001:db8:0:0::/64", FG_CNT_CONNECT, HOUR,
	                      T0 + 20000), 1,
	       "limit: a network made before the limit counts");
	snprintf(addr, sizeof(addr), "2001:db8:%x:%x::1", 19999 >> 8,
	         19999 & 255);
	is_int(fg_store_count(st, addr, FG_CNT_CONNECT, HOUR, T0 + 20000), 0,
	       "limit: a new address past the limit is not held");

	/* A session's concurrency entry does not let its address in. */
	snprintf(addr, sizeof(addr), "2001:db8:ffff::1");
	is_int(fg_store_conn_acquire(st, addr), 1,
	       "limit: sessions are still counted past it");
	rec(st, T0 + 20000, FG_EV_CONNECT, FG_RCPT_NONE, keys, 1);
	is_int(fg_store_count(st, addr, FG_CNT_CONNECT, HOUR, T0 + 20000), 0,
	       "limit: the session's address gets no counts");
	fg_store_conn_release(st, addr);
	is_int(fg_store_conn_count(st, addr), 0, "limit: and goes with it");

	/* Between the limit and the reserve: networks, not addresses. */
	{
		uint64_t refused = s.keys_refused;
		int seen_net_only = 0;

		fg_store_expire(st, T0 + 20000 + HOUR);
		for (i = 0; i < 20000 && !seen_net_only; i++) {
			snprintf(addr, sizeof(addr), "2001:db8:1:%x::1", i);
			snprintf(net, sizeof(net), "2001:db8:1:%x::/64", i);
			rec(st, T0 + 2 * HOUR, FG_EV_CONNECT, FG_RCPT_NONE, keys,
			    3);
			if (fg_store_count(st, addr, FG_CNT_CONNECT, HOUR,
			                   T0 + 2 * HOUR) == 0 &&
			    fg_store_count(st, net, FG_CNT_CONNECT, HOUR,
			                   T0 + 2 * HOUR) == 1)
				seen_net_only = 1;
		}
		ok(seen_net_only, "limit: in the reserve, a new network is made "
		   "and a new address is not (session %d)", i);
		fg_store_get_stats(st, &s);
		ok(s.keys_refused > refused, "limit: counted again after expiry");
	}

	/* A key held before the limit keeps counting. */
	for (i = 0; i < 100; i++)
		rec(st, T0 + 2 * HOUR, FG_EV_RCPT, FG_RCPT_INVALID, keys + 2, 1);
	is_int(fg_store_count(st, "*", FG_CNT_RCPT_INVALID, HOUR, T0 + 2 * HOUR),
	       100, "limit: a key already held counts exactly");

	/* Expiry gives the room back: new keys are made again. */
	fg_store_expire(st, T0 + 4 * HOUR);
	fg_store_get_stats(st, &s);
	ok(!s.limited, "limit: lifted once the keys expired (%" PRIu64
	   " bytes)", s.memory);
	snprintf(addr, sizeof(addr), "192.0.2.1");
	rec(st, T0 + 4 * HOUR, FG_EV_CONNECT, FG_RCPT_NONE, keys, 1);
	is_int(fg_store_count(st, addr, FG_CNT_CONNECT, HOUR, T0 + 4 * HOUR), 1,
	       "limit: a new address is counted again");
	fg_store_close(st);
}

int
main(void)
{
	test_sparse_model();
	test_key_cost();
	test_limit();
	return tap_done();
}
