/*
 * test_store.c - the event store through its public verbs, in memory:
 * names, recording and counting with exact window edges, the clock going
 * backwards, a hot key checked against a brute-force model, several keys
 * per event, sessions, levels, bans, expiry, argument checks.
 *
 * The on-disk behaviour is in test_store_disk.c, the concurrency and
 * crash tests in test_store_stress.c.  Time is always injected.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fg.h"
#include "keys.h"
#include "net.h"
#include "store.h"
#include "tap.h"

#define T0 INT64_C(1700000000000) /* a whole second */
#define S0 (T0 / 1000)
#define HOUR INT64_C(3600000)

static fg_store *
open_mem(int64_t horizon_ms, int64_t now_ms)
{
	struct fg_store_options o = {
		.path = NULL,
		.horizon_ms = horizon_ms,
		.retention_ms = 0,
		.flush_interval_ms = 50,
	};
	fg_store *st = NULL;
	char err[256] = "";
	int rc = fg_store_open(&o, now_ms, &st, err, sizeof(err));

	if (rc != 0) {
		printf("# fg_store_open: %d %s\n", rc, err);
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

static int
rec1(fg_store *st, int64_t t, enum fg_event_kind kind,
     enum fg_rcpt_class cls, const char *key)
{
	const char *keys[] = {key};

	return rec(st, t, kind, cls, keys, 1);
}

static void
test_names(void)
{
	static const struct {
		enum fg_counter c;
		const char *name;
	} cn[] = {
		{FG_CNT_CONNECT, "connect"}, {FG_CNT_HELO, "helo"},
		{FG_CNT_MAIL, "mail"}, {FG_CNT_RCPT, "rcpt"},
		{FG_CNT_RCPT_VALID, "valid"}, {FG_CNT_RCPT_INVALID, "invalid"},
		{FG_CNT_RCPT_REJECTED, "rejected"},
	};
	enum fg_counter c;

	for (size_t i = 0; i < FG_NELEM(cn); i++) {
		is_str(fg_counter_name(cn[i].c), cn[i].name, "counter name %s",
		       cn[i].name);
		c = FG_CNT__COUNT;
		is_int(fg_counter_parse(cn[i].name, &c), 0, "parse %s",
		       cn[i].name);
		is_int(c, cn[i].c, "parse %s value", cn[i].name);
	}
	is_int(fg_counter_parse("INVALID", &c), 0, "parse is case-blind");
	is_int(fg_counter_parse("bogus", &c), FG_EINVAL, "parse bogus");
	is_int(fg_counter_parse("", &c), FG_EINVAL, "parse empty");
	is_int(fg_counter_parse(NULL, &c), FG_EINVAL, "parse NULL");
	is_str(fg_counter_name(FG_CNT__COUNT), "unknown", "counter out of range");
	is_str(fg_event_kind_name(FG_EV_CONNECT), "connect", "kind connect");
	is_str(fg_event_kind_name(FG_EV_HELO), "helo", "kind helo");
	is_str(fg_event_kind_name(FG_EV_MAIL), "mail", "kind mail");
	is_str(fg_event_kind_name(FG_EV_RCPT), "rcpt", "kind rcpt");
	is_str(fg_event_kind_name((enum fg_event_kind)0), "unknown", "kind 0");
	is_str(fg_event_kind_name((enum fg_event_kind)9), "unknown", "kind 9");
	is_str(fg_rcpt_class_name(FG_RCPT_NONE), "none", "class none");
	is_str(fg_rcpt_class_name(FG_RCPT_VALID), "valid", "class valid");
	is_str(fg_rcpt_class_name(FG_RCPT_INVALID), "invalid", "class invalid");
	is_str(fg_rcpt_class_name(FG_RCPT_REJECTED), "rejected",
	       "class rejected");
	is_str(fg_rcpt_class_name((enum fg_rcpt_class)7), "unknown", "class 7");
}

static void
test_open_args(void)
{
	struct fg_store_options o = {.horizon_ms = HOUR};
	fg_store *st = (fg_store *)&o;
	char err[128];

	is_int(fg_store_open(NULL, T0, &st, err, sizeof(err)), FG_EINVAL,
	       "open: NULL options");
	is_int(fg_store_open(&o, T0, NULL, err, sizeof(err)), FG_EINVAL,
	       "open: NULL out");
	o.horizon_ms = 999;
	is_int(fg_store_open(&o, T0, &st, err, sizeof(err)), FG_EINVAL,
	       "open: horizon under a second");
	o.horizon_ms = HOUR;
	o.retention_ms = -1;
	is_int(fg_store_open(&o, T0, &st, err, sizeof(err)), FG_EINVAL,
	       "open: negative retention");
	o.retention_ms = 0;
	o.path = ":memory:";
	is_int(fg_store_open(&o, T0, &st, err, sizeof(err)), 0,
	       "open: \":memory:\"");
	fg_store_close(st);
	fg_store_close(NULL);
}

/* An event exactly at the boundary second is out, the next one in. */
static void
test_window_edges(void)
{
	fg_store *st = open_mem(HOUR, T0);
	int64_t now = T0 + 500;

	rec1(st, (S0 - 60) * 1000 + 999, FG_EV_CONNECT, FG_RCPT_NONE, "k");
	rec1(st, (S0 - 59) * 1000, FG_EV_CONNECT, FG_RCPT_NONE, "k");
	rec1(st, T0, FG_EV_CONNECT, FG_RCPT_NONE, "k");
	rec1(st, T0 + 999, FG_EV_CONNECT, FG_RCPT_NONE, "k");

	is_int(fg_store_count(st, "k", FG_CNT_CONNECT, 60000, now), 3,
	       "60 s window: boundary second out, next in");
	is_int(fg_store_count(st, "k", FG_CNT_CONNECT, 61000, now), 4,
	       "61 s window: boundary second in");
	is_int(fg_store_count(st, "k", FG_CNT_CONNECT, 60999, now), 3,
	       "60.999 s window is 60 s");
	is_int(fg_store_count(st, "k", FG_CNT_CONNECT, 60000, T0), 3,
	       "now at the start of its second");
	is_int(fg_store_count(st, "k", FG_CNT_CONNECT, 60000, T0 + 1000), 2,
	       "a second later the S-59 event is out");
	is_int(fg_store_count(st, "k", FG_CNT_CONNECT, 1000, now), 2,
	       "1 s window: this second only");
	is_int(fg_store_count(st, "k", FG_CNT_CONNECT, 999, now), 0,
	       "sub-second window is empty");
	is_int(fg_store_count(st, "k", FG_CNT_CONNECT, 0, now), 0,
	       "zero window is empty");
	is_int(fg_store_count(st, "k", FG_CNT_HELO, 60000, now), 0,
	       "other counter empty");
	is_int(fg_store_count(st, "nokey", FG_CNT_CONNECT, 60000, now), 0,
	       "unknown key is 0");
	is_int(fg_store_count(st, "k", FG_CNT_CONNECT, 10 * HOUR, now), 4,
	       "window over the horizon is clamped (all in)");
	/* Clamped to the horizon: an event just past it is out. */
	rec1(st, T0 + HOUR, FG_EV_MAIL, FG_RCPT_NONE, "h");
	is_int(fg_store_count(st, "h", FG_CNT_MAIL, 2 * HOUR, T0 + 2 * HOUR),
	       0, "clamped window excludes what the horizon does");
	is_int(fg_store_count(st, "h", FG_CNT_MAIL, 2 * HOUR,
	                      T0 + 2 * HOUR - 1000), 1,
	       "and includes the second before");
	fg_store_close(st);
}

static void
test_clock_backwards(void)
{
	fg_store *st = open_mem(HOUR, T0);

	rec1(st, T0 + 10000, FG_EV_CONNECT, FG_RCPT_NONE, "k");
	/* Clock stepped back 10 s: filed into the newest second. */
	rec1(st, T0, FG_EV_CONNECT, FG_RCPT_NONE, "k");
	is_int(fg_store_count(st, "k", FG_CNT_CONNECT, 5000, T0), 2,
	       "future events count as now");
	is_int(fg_store_count(st, "k", FG_CNT_CONNECT, 1000, T0 - 50000), 2,
	       "even far in the past");
	is_int(fg_store_count(st, "k", FG_CNT_CONNECT, 5000, T0 + 14999), 2,
	       "both filed at T0+10 s (in at +14.999)");
	is_int(fg_store_count(st, "k", FG_CNT_CONNECT, 5000, T0 + 15000), 0,
	       "both filed at T0+10 s (out at +15)");
	/* The newest second is per key: another key is not affected. */
	rec1(st, T0, FG_EV_CONNECT, FG_RCPT_NONE, "other");
	is_int(fg_store_count(st, "other", FG_CNT_CONNECT, 5000, T0 + 5000), 0,
	       "other key keeps its own second");
	/* Expire with a clock behind drops nothing. */
	fg_store_expire(st, T0 - HOUR);
	is_int(fg_store_count(st, "k", FG_CNT_CONNECT, HOUR, T0), 2,
	       "expire with an early clock keeps everything");
	fg_store_close(st);
}

/*
 * A hot key through the inline cells, the promotion, growth and trimming:
 * every count must equal a brute-force count over the filed seconds.
 */
struct model {
	size_t n;
	uint32_t *sec;
	int *ctr;
};

static int64_t
model_count(const struct model *m, int ctr, int64_t cutoff)
{
	int64_t n = 0;

	for (size_t i = 0; i < m->n; i++)
		if (m->ctr[i] == ctr && (int64_t)m->sec[i] > cutoff)
			n++;
	return n;
}

static uint64_t lcg = 12345;

static uint32_t
rnd(uint32_t n)
{
	lcg = lcg * UINT64_C(6364136223846793005) + 1442695040888963407u;
	return (uint32_t)(lcg >> 33) % n;
}

static void
test_model(void)
{
	fg_store *st = open_mem(HOUR, T0);
	struct model m = {0};
	int64_t t = T0;
	uint32_t newest = 0;
	int mismatches = 0, checks = 0;
	size_t cap = 20000;

	m.sec = calloc(cap * 2, sizeof(*m.sec));
	m.ctr = calloc(cap * 2, sizeof(*m.ctr));
	for (size_t i = 0; i < cap; i++) {
		enum fg_rcpt_class cls = (enum fg_rcpt_class)rnd(4);
		int64_t et;
		uint32_t filed;

		/* Mostly forward, in bursts; sometimes a step back. */
		t += rnd(10) == 0 ? (int64_t)rnd(5000) : (int64_t)rnd(300);
		et = rnd(50) == 0 ? t - (int64_t)rnd(20000) : t;
		rec1(st, et, FG_EV_RCPT, cls, "hot");
		filed = (uint32_t)(et / 1000);
		if (filed < newest)
			filed = newest;
		newest = filed;
		m.sec[m.n] = filed;
		m.ctr[m.n++] = FG_CNT_RCPT;
		if (cls != FG_RCPT_NONE) {
			m.sec[m.n] = filed;
			m.ctr[m.n++] = FG_CNT_RCPT + (int)cls;
		}
		if (i % 97 == 0 || i < 10) {
			static const int64_t windows[] = {0, 1000, 2000, 59000,
			    60000, 600000, HOUR};
			for (size_t w = 0; w < FG_NELEM(windows); w++) {
				int64_t now = t + (int64_t)rnd(2000);
				int ctr = FG_CNT_RCPT + (int)rnd(4);
				int64_t want = model_count(&m, ctr,
				    now / 1000 - windows[w] / 1000);
				int64_t got = fg_store_count(st, "hot",
				    (enum fg_counter)ctr, windows[w], now);

				checks++;
				if (got != want && mismatches++ < 5)
					printf("# i=%zu w=%" PRId64 " ctr=%d: got "
					       "%" PRId64 " want %" PRId64 "\n",
					       i, windows[w], ctr, got, want);
			}
		}
		/* Expire now and then: windows up to the horizon stay exact. */
		if (i % 1000 == 999)
			fg_store_expire(st, t);
	}
	ok(checks > 1000, "model: %d checks made", checks);
	is_int(mismatches, 0, "model: every count matches brute force");
	/* Span: ~20000 events over several hours: expire trimmed. */
	fg_store_expire(st, t);
	is_int(fg_store_count(st, "hot", FG_CNT_RCPT, HOUR, t),
	       model_count(&m, FG_CNT_RCPT, t / 1000 - 3600),
	       "model: after expire");
	fg_store_expire(st, t + 2 * HOUR);
	is_int(fg_store_count(st, "hot", FG_CNT_RCPT, HOUR, t + 2 * HOUR), 0,
	       "model: all expired");
	struct fg_store_stats s;
	fg_store_get_stats(st, &s);
	is_int(s.keys, 0, "model: the key went with its last bucket");
	free(m.sec);
	free(m.ctr);
	fg_store_close(st);
}

static void
test_keys(void)
{
	fg_store *st = open_mem(HOUR, T0);
	fg_addr a4, a6;
	const char *k4[] = {"192.0.2.7", "192.0.2.0/24", "*",
	                    "helo:mx.example.org", "192.0.2.7"};
	const char *k6[] = {"2001:db8::7", "2001:db8::/64", "*"};
	struct fg_event ev = {
		.time_ms = T0,
		.kind = FG_EV_RCPT,
		.rcpt_class = FG_RCPT_INVALID,
		.client = &a4,
		.network = "192.0.2.0/24",
		.rcpt = "<nobody@example.org>",
		.keys = k4,
		.nkeys = FG_NELEM(k4),
	};
	struct fg_store_stats s;

	ok(fg_addr_parse("192.0.2.7", &a4) == 0, "parse v4");
	ok(fg_addr_parse("2001:db8::7", &a6) == 0, "parse v6");
	is_int(fg_store_record(st, &ev), 0, "record v4 with 5 keys");
	ev.client = &a6;
	ev.network = "2001:db8::/64";
	ev.keys = k6;
	ev.nkeys = FG_NELEM(k6);
	ev.rcpt_class = FG_RCPT_VALID;
	is_int(fg_store_record(st, &ev), 0, "record v6 with 3 keys");

	is_int(fg_store_count(st, "192.0.2.7", FG_CNT_RCPT_INVALID, 1000, T0),
	       1, "v4 address once (listed twice)");
	is_int(fg_store_count(st, "192.0.2.0/24", FG_CNT_RCPT, 1000, T0), 1,
	       "v4 network");
	is_int(fg_store_count(st, "helo:mx.example.org", FG_CNT_RCPT_INVALID,
	                      1000, T0), 1, "helo key");
	is_int(fg_store_count(st, "2001:db8::7", FG_CNT_RCPT_VALID, 1000, T0),
	       1, "v6 address");
	is_int(fg_store_count(st, "2001:db8::7", FG_CNT_RCPT_INVALID, 1000,
	                      T0), 0, "v6 address: not invalid");
	is_int(fg_store_count(st, "2001:db8::/64", FG_CNT_RCPT, 1000, T0), 1,
	       "v6 network");
	is_int(fg_store_count(st, "*", FG_CNT_RCPT, 1000, T0), 2,
	       "global key has both");
	is_int(fg_store_count(st, "*", FG_CNT_RCPT_VALID, 1000, T0), 1,
	       "global valid");
	is_int(fg_store_count(st, "*", FG_CNT_RCPT_INVALID, 1000, T0), 1,
	       "global invalid");
	is_int(fg_store_count(st, "192.0.2.8", FG_CNT_RCPT, 1000, T0), 0,
	       "neighbour address untouched");
	fg_store_get_stats(st, &s);
	is_int(s.keys, 6, "six distinct keys");
	is_int(s.recorded, 2, "two events recorded");

	/* Every kind bumps its own counter; a recipient its class too. */
	static const struct {
		enum fg_event_kind k;
		enum fg_rcpt_class c;
	} evs[] = {
		{FG_EV_CONNECT, FG_RCPT_NONE}, {FG_EV_HELO, FG_RCPT_NONE},
		{FG_EV_MAIL, FG_RCPT_NONE}, {FG_EV_RCPT, FG_RCPT_NONE},
		{FG_EV_RCPT, FG_RCPT_VALID}, {FG_EV_RCPT, FG_RCPT_INVALID},
		{FG_EV_RCPT, FG_RCPT_INVALID}, {FG_EV_RCPT, FG_RCPT_REJECTED},
	};
	static const int64_t want[FG_CNT__COUNT] = {1, 1, 1, 5, 1, 2, 1};
	for (size_t i = 0; i < FG_NELEM(evs); i++)
		rec1(st, T0 + (int64_t)i * 1000, evs[i].k, evs[i].c, "kinds");
	for (int c = 0; c < FG_CNT__COUNT; c++)
		is_int(fg_store_count(st, "kinds", (enum fg_counter)c, 60000,
		                      T0 + 10000), want[c], "kinds: %s",
		       fg_counter_name((enum fg_counter)c));
	rec(st, T0, FG_EV_CONNECT, FG_RCPT_NONE, NULL, 0);
	fg_store_get_stats(st, &s);
	is_int(s.recorded, 2 + FG_NELEM(evs) + 1, "an event with no key");
	is_int(fg_store_flush(st, 10000), 0, "flush in memory");
	fg_store_get_stats(st, &s);
	is_int(s.written, s.recorded, "every row written");
	is_int(s.queued, 0, "queue empty");
	ok(s.healthy, "healthy");
	is_str(s.last_error, "", "no error");
	fg_store_close(st);
}

/*
 * Keys made once (fg_store_key_init), as a session makes its client's:
 * recording and counting with them is recording and counting with the
 * text, in any mix of the two.
 */
static void
test_made_keys(void)
{
	fg_store *st = open_mem(HOUR, T0);
	const char *text[] = {"192.0.2.9", "192.0.2.0/24"};
	struct fg_store_key made[2], bad;
	struct fg_event ev = {
		.time_ms = T0,
		.kind = FG_EV_RCPT,
		.rcpt_class = FG_RCPT_INVALID,
		.keys = text,
		.nkeys = 2,
		.keys_distinct = true,
		.keys_made = made,
	};

	is_int(fg_store_key_init(st, text[0], &made[0]), 0, "made: address");
	is_int(fg_store_key_init(st, text[1], &made[1]), 0, "made: network");
	is_int(fg_store_key_init(st, "", &bad), FG_EINVAL, "made: empty key");
	is_int(fg_store_record(st, &ev), 0, "made: recorded with made keys");
	ev.keys_made = NULL;
	is_int(fg_store_record(st, &ev), 0, "made: recorded with the text");
	is_int(fg_store_count(st, "192.0.2.9", FG_CNT_RCPT_INVALID, 1000, T0),
	       2, "made: the text counts both");
	is_int(fg_store_count_key(st, &made[1], FG_CNT_RCPT, 1000, T0), 2,
	       "made: the made key counts both");
	is_int(fg_store_count_key(st, &made[0], FG_CNT_RCPT_VALID, 1000, T0),
	       0, "made: its other counters untouched");
	is_int(fg_store_count_key(st, &made[0], FG_CNT_RCPT, 0, T0 + 1000), 0,
	       "made: the window applies");
	fg_store_close(st);
}

static void
test_invalid(void)
{
	fg_store *st = open_mem(HOUR, T0);
	char longkey[FG_KEY_MAX + 1];
	const char *keys[FG_STORE_MAX_KEYS + 1];
	struct fg_event ev = {.time_ms = T0, .kind = FG_EV_CONNECT};

	memset(longkey, 'a', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	for (size_t i = 0; i < FG_NELEM(keys); i++)
		keys[i] = "k";
	is_int(fg_store_record(NULL, &ev), FG_EINVAL, "record: NULL store");
	is_int(fg_store_record(st, NULL), FG_EINVAL, "record: NULL event");
	ev.kind = (enum fg_event_kind)0;
	is_int(fg_store_record(st, &ev), FG_EINVAL, "record: kind 0");
	ev.kind = (enum fg_event_kind)6;
	is_int(fg_store_record(st, &ev), FG_EINVAL, "record: kind 6");
	ev.kind = FG_EV_MAIL;
	ev.rcpt_class = FG_RCPT_INVALID;
	is_int(fg_store_record(st, &ev), FG_EINVAL, "record: class on mail");
	ev.kind = FG_EV_RCPT;
	ev.rcpt_class = (enum fg_rcpt_class)4;
	is_int(fg_store_record(st, &ev), FG_EINVAL, "record: class 4");
	ev.rcpt_class = FG_RCPT_NONE;
	ev.keys = keys;
	ev.nkeys = FG_STORE_MAX_KEYS + 1;
	is_int(fg_store_record(st, &ev), FG_EINVAL, "record: 17 keys");
	ev.nkeys = FG_STORE_MAX_KEYS;
	is_int(fg_store_record(st, &ev), 0, "record: 16 keys");
	ev.keys = NULL;
	ev.nkeys = 1;
	is_int(fg_store_record(st, &ev), FG_EINVAL, "record: NULL keys");
	keys[0] = "";
	ev.keys = keys;
	is_int(fg_store_record(st, &ev), FG_EINVAL, "record: empty key");
	keys[0] = longkey;
	is_int(fg_store_record(st, &ev), FG_EINVAL, "record: long key");
	keys[0] = NULL;
	is_int(fg_store_record(st, &ev), FG_EINVAL, "record: NULL key");
	keys[0] = "k";
	ev.time_ms = -1;
	is_int(fg_store_record(st, &ev), FG_EINVAL, "record: negative time");
	is_int(fg_store_count(st, "k", FG_CNT_RCPT, -1, T0), FG_EINVAL,
	       "count: negative window");
	is_int(fg_store_count(st, NULL, FG_CNT_RCPT, 1000, T0), FG_EINVAL,
	       "count: NULL key");
	is_int(fg_store_count(st, "k", FG_CNT__COUNT, 1000, T0), FG_EINVAL,
	       "count: bad counter");
	is_int(fg_store_count(st, longkey, FG_CNT_RCPT, 1000, T0), FG_EINVAL,
	       "count: long key");
	is_int(fg_store_count(NULL, "k", FG_CNT_RCPT, 1000, T0), FG_EINVAL,
	       "count: NULL store");
	is_int(fg_store_record_verdict(st, NULL), FG_EINVAL, "verdict: NULL");
	is_int(fg_store_ban_set(st, "", T0, "r", "s", T0), FG_EINVAL,
	       "ban_set: empty key");
	is_int(fg_store_ban_get(st, NULL, T0, NULL), FG_EINVAL,
	       "ban_get: NULL key");
	is_int(fg_store_ban_lift(st, longkey), FG_EINVAL, "ban_lift: long key");
	is_int(fg_store_level_set(st, NULL, "k", 1, T0), FG_EINVAL,
	       "level_set: NULL rule");
	is_int(fg_store_level_get(st, "r", "", NULL, NULL), FG_EINVAL,
	       "level_get: empty key");
	is_int(fg_store_conn_acquire(st, ""), FG_EINVAL, "conn: empty key");
	is_int(fg_store_flush(NULL, 0), FG_EINVAL, "flush: NULL");
	fg_store_conn_release(st, NULL);
	fg_store_expire(NULL, T0);
	fg_store_get_stats(NULL, NULL);
	fg_store_close(st);
}

static void
test_conns(void)
{
	fg_store *st = open_mem(HOUR, T0);
	struct fg_store_stats s;

	is_int(fg_store_conn_acquire(st, "192.0.2.1"), 1, "acquire 1");
	is_int(fg_store_conn_acquire(st, "192.0.2.1"), 2, "acquire 2");
	is_int(fg_store_conn_acquire(st, "192.0.2.1"), 3, "acquire 3");
	is_int(fg_store_conn_acquire(st, "192.0.2.2"), 1, "other key 1");
	fg_store_conn_release(st, "192.0.2.1");
	is_int(fg_store_conn_count(st, "192.0.2.1"), 2, "released to 2");
	fg_store_expire(st, T0 + 100 * HOUR);
	is_int(fg_store_conn_count(st, "192.0.2.1"), 2, "expire keeps sessions");
	fg_store_conn_release(st, "192.0.2.1");
	fg_store_conn_release(st, "192.0.2.1");
	fg_store_conn_release(st, "192.0.2.1");
	is_int(fg_store_conn_count(st, "192.0.2.1"), 0, "never below 0");
	is_int(fg_store_conn_count(st, "nobody"), 0, "unknown key 0");
	fg_store_conn_release(st, "nobody");
	fg_store_get_stats(st, &s);
	is_int(s.keys, 1, "key dropped with its last session");
	/* Sessions and counters share a key entry. */
	rec1(st, T0, FG_EV_CONNECT, FG_RCPT_NONE, "192.0.2.2");
	fg_store_conn_release(st, "192.0.2.2");
	is_int(fg_store_count(st, "192.0.2.2", FG_CNT_CONNECT, 1000, T0), 1,
	       "counter survives the last session");
	fg_store_close(st);
}

static void
test_levels(void)
{
	fg_store *st = open_mem(HOUR, T0);
	int level = -1;
	int64_t last = -1;

	is_int(fg_store_level_get(st, "dict", "192.0.2.0/24", &level, &last),
	       0, "level: none yet");
	is_int(fg_store_level_set(st, "dict", "192.0.2.0/24", 1, T0), 0,
	       "level: set 1");
	is_int(fg_store_level_get(st, "dict", "192.0.2.0/24", &level, &last),
	       1, "level: found");
	is_int(level, 1, "level: 1");
	is_int(last, T0, "level: last_ms");
	is_int(fg_store_level_set(st, "dict", "192.0.2.0/24", 3, T0 + 5000),
	       0, "level: set 3");
	fg_store_level_get(st, "dict", "192.0.2.0/24", &level, &last);
	is_int(level, 3, "level: replaced");
	is_int(fg_store_level_get(st, "other", "192.0.2.0/24", &level, &last),
	       0, "level: per rule");
	/* "a" + "bc" must not collide with "ab" + "c". */
	fg_store_level_set(st, "a", "bc", 7, T0);
	is_int(fg_store_level_get(st, "ab", "c", &level, &last), 0,
	       "level: rule/key boundary kept");
	fg_store_expire(st, T0 + 5000 + HOUR - 1);
	is_int(fg_store_level_get(st, "dict", "192.0.2.0/24", NULL, NULL), 1,
	       "level: kept within the horizon");
	fg_store_expire(st, T0 + 5000 + HOUR);
	is_int(fg_store_level_get(st, "dict", "192.0.2.0/24", NULL, NULL), 0,
	       "level: dropped past the horizon");
	fg_store_close(st);
}

static void
test_bans(void)
{
	fg_store *st = open_mem(HOUR, T0);
	struct fg_ban b;
	char longreason[600];

	is_int(fg_store_ban_get(st, "192.0.2.0/24", T0, &b), 0, "ban: none");
	is_int(fg_store_ban_set(st, "192.0.2.0/24", T0 + 60000, "dictionary",
	                        "floodgate:dict", T0), 0, "ban: set");
	memset(&b, 0, sizeof(b));
	is_int(fg_store_ban_get(st, "192.0.2.0/24", T0 + 59999, &b), 1,
	       "ban: in force a ms before the end");
	is_int(b.until_ms, T0 + 60000, "ban: until");
	is_int(b.created_ms, T0, "ban: created");
	is_str(b.reason, "dictionary", "ban: reason");
	is_str(b.source, "floodgate:dict", "ban: source");
	is_int(fg_store_ban_get(st, "192.0.2.0/24", T0 + 60000, &b), 0,
	       "ban: over at until_ms");
	is_int(fg_store_ban_get(st, "192.0.2.0/25", T0, &b), 0,
	       "ban: exact key only");
	is_int(fg_store_ban_set(st, "192.0.2.0/24", T0 + 120000, NULL, NULL,
	                        T0 + 1000), 0, "ban: replace");
	is_int(fg_store_ban_get(st, "192.0.2.0/24", T0 + 90000, &b), 1,
	       "ban: longer now");
	is_str(b.reason, "", "ban: NULL reason is empty");
	is_int(b.created_ms, T0 + 1000, "ban: created replaced");
	is_int(fg_store_ban_lift(st, "192.0.2.0/24"), 1, "ban: lifted");
	is_int(fg_store_ban_get(st, "192.0.2.0/24", T0, &b), 0,
	       "ban: gone after lift");
	is_int(fg_store_ban_lift(st, "192.0.2.0/24"), 0, "ban: lift twice");
	is_int(fg_store_ban_lift(st, "2001:db8::/64"), 0, "ban: lift none");
	memset(longreason, 'r', sizeof(longreason) - 1);
	longreason[sizeof(longreason) - 1] = '\0';
	fg_store_ban_set(st, "2001:db8::/64", T0 + 1000, longreason, "ctl",
	                 T0);
	is_int(fg_store_ban_get(st, "2001:db8::/64", T0, &b), 1, "ban: v6");
	is_int(strlen(b.reason), sizeof(b.reason) - 1, "ban: reason truncated");
	is_int(fg_store_ban_get(st, "2001:db8::/64", T0, NULL), 1,
	       "ban: NULL out");
	fg_store_expire(st, T0 + 1000);
	is_int(fg_store_ban_lift(st, "2001:db8::/64"), 0,
	       "ban: expired one dropped by expire");
	is_int(fg_store_flush(st, 10000), 0, "ban: flush");
	fg_store_close(st);
}

/* Distinct keys by the thousand: all counted, all expired. */
static void
test_many_keys(void)
{
	fg_store *st = open_mem(HOUR, T0);
	struct fg_store_stats s;
	char key[64];
	int bad = 0;

	for (int i = 0; i < 20000; i++) {
		snprintf(key, sizeof(key), "10.%d.%d.%d", i >> 16,
		         (i >> 8) & 255, i & 255);
		rec1(st, T0 + i, FG_EV_CONNECT, FG_RCPT_NONE, key);
		if (i % 3 == 0)
			rec1(st, T0 + i, FG_EV_RCPT, FG_RCPT_INVALID, key);
	}
	for (int i = 0; i < 20000; i++) {
		snprintf(key, sizeof(key), "10.%d.%d.%d", i >> 16,
		         (i >> 8) & 255, i & 255);
		if (fg_store_count(st, key, FG_CNT_CONNECT, 60000, T0 + 20000) !=
		        1 ||
		    fg_store_count(st, key, FG_CNT_RCPT_INVALID, 60000,
		                   T0 + 20000) != (i % 3 == 0))
			bad++;
	}
	is_int(bad, 0, "many keys: each counted on its own");
	fg_store_get_stats(st, &s);
	is_int(s.keys, 20000, "many keys: 20000 keys");
	fg_store_expire(st, T0 + 20000 + HOUR);
	fg_store_get_stats(st, &s);
	is_int(s.keys, 0, "many keys: all expired");
	fg_store_close(st);
}

/*
 * Keys come and go by the thousand, of every length around the slot
 * sizes (15/16 and 47/48 bytes): an entry that takes an expired key's
 * place starts empty, and keys of each length count on their own.
 */
static void
slot_key(char *key, size_t size, int gen, int i)
{
	static const int lens[] = {7, 15, 16, 30, 47, 48, 100};
	int len = lens[i % (int)FG_NELEM(lens)];
	int n = snprintf(key, size, "%d.%d.", gen, i);

	while (n < len)
		key[n++] = 'k';
	key[n] = '\0';
}

static void
test_slot_reuse(void)
{
	fg_store *st = open_mem(HOUR, T0);
	struct fg_store_stats s;
	char key[128];
	int bad = 0;

	for (int gen = 0; gen < 3; gen++) {
		int64_t t = T0 + gen * 2 * HOUR;

		for (int i = 0; i < 5000; i++) {
			slot_key(key, sizeof(key), gen, i);
			for (int k = 0; k <= (i + gen) % 3; k++)
				rec1(st, t, FG_EV_CONNECT, FG_RCPT_NONE, key);
			if (i % 5 == gen)
				fg_store_conn_acquire(st, key);
		}
		for (int i = 0; i < 5000; i++) {
			slot_key(key, sizeof(key), gen, i);
			if (fg_store_count(st, key, FG_CNT_CONNECT, HOUR, t) !=
			        (i + gen) % 3 + 1 ||
			    fg_store_conn_count(st, key) != (i % 5 == gen))
				bad++;
			if (i % 5 == gen)
				fg_store_conn_release(st, key);
		}
		fg_store_expire(st, t + HOUR);
		fg_store_get_stats(st, &s);
		if (s.keys != 0)
			bad++;
	}
	is_int(bad, 0, "slot reuse: three generations of keys, each exact");
	fg_store_close(st);
}

static void
test_verdict(void)
{
	fg_store *st = open_mem(HOUR, T0);
	fg_addr a;
	struct fg_verdict_rec v = {
		.time_ms = T0,
		.session_id = 42,
		.queue_id = "4Q1xyz",
		.client = &a,
		.stage = "rcpt",
		.rule = "dict",
		.key = "192.0.2.0/24",
		.action = "tempfail",
		.count = 31,
		.limit = 30,
		.window_ms = HOUR,
		.reply = "451 4.7.1 slow down",
	};
	struct fg_store_stats s;

	fg_addr_parse("192.0.2.9", &a);
	is_int(fg_store_record_verdict(st, &v), 0, "verdict recorded");
	v.client = NULL;
	v.reply = NULL;
	v.monitor = true;
	is_int(fg_store_record_verdict(st, &v), 0, "verdict with NULLs");
	is_int(fg_store_flush(st, 10000), 0, "verdicts flushed");
	fg_store_get_stats(st, &s);
	is_int(s.written, 2, "two rows written");
	fg_store_close(st);
}

/* Slot by slot in one look-up, as count_since slot by slot would say,
 * for a key of few cells and one kept in per-counter series. */
static void
test_count_slots(void)
{
	fg_store *st = open_mem(HOUR, T0);
	static const char *const keys[] = {"few", "many"};
	const int64_t slot = 5000, from = T0 - 300000;
	int64_t out[70][FG_CNT__COUNT];
	int bad = 0;

	rec1(st, T0 - 12000, FG_EV_CONNECT, FG_RCPT_NONE, "few");
	rec1(st, T0 - 11000, FG_EV_HELO, FG_RCPT_NONE, "few");
	rec1(st, T0, FG_EV_CONNECT, FG_RCPT_NONE, "few");
	for (int i = 0; i < 250; i++) {
		rec1(st, T0 - 290000 + i * 1000 + i % 7, FG_EV_CONNECT,
		     FG_RCPT_NONE, "many");
		if (i % 3 == 0)
			rec1(st, T0 - 290000 + i * 1000, FG_EV_HELO, FG_RCPT_NONE,
			     "many");
	}
	for (size_t k = 0; k < 2; k++) {
		memset(out, 0, sizeof(out));
		is_int(fg_store_count_slots(st, keys[k], from, slot, 61, out), 0,
		       "count_slots: %s", keys[k]);
		for (int i = 0; i < 61; i++)
			for (int c = 0; c < FG_CNT__COUNT; c++) {
				int64_t want = fg_store_count_since(st, keys[k],
				    (enum fg_counter)c, from + i * slot) -
				    fg_store_count_since(st, keys[k], (enum fg_counter)c,
				                         from + (i + 1) * slot);
				if (out[i][c] != want && bad++ < 5)
					printf("# %s slot %d counter %d: %" PRId64 ", want %"
					       PRId64 "\n", keys[k], i, c, out[i][c], want);
			}
	}
	is_int(bad, 0, "count_slots: every slot of every counter as count_since");
	is_int(fg_store_count_slots(st, "few", from, 1500, 3, out), FG_EINVAL,
	       "count_slots: a slot of whole seconds only");
	fg_store_close(st);
}

int
main(void)
{
	test_names();
	test_open_args();
	test_window_edges();
	test_count_slots();
	test_clock_backwards();
	test_model();
	test_keys();
	test_made_keys();
	test_invalid();
	test_conns();
	test_levels();
	test_bans();
	test_many_keys();
	test_slot_reuse();
	test_verdict();
	return tap_done();
}
