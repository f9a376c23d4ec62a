/*
 * test_share.c - counts shared between hosts (share.h) against a fake
 * Redis: field encoding, edge-weighted sums, failures and backoff, bans,
 * and a randomized simulation of three hosts (rates, splits, phases,
 * dropped round trips, the server wiped) that checks the bound of
 * floodgate.conf(5) and convergence to the true sum.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "config.h"
#include "fg.h"
#include "log.h"
#include "share.h"
#include "share_fake.h"
#include "share_internal.h"
#include "store.h"
#include "tap.h"

#define NODES 3
#define KEYS 3

struct node {
	char name[8];
	struct fg_config *cfg;
	fg_store *st;
	fg_share *sh;
	int bans, lifts, resets, allows, disallows;
	char last_source[64], last_key[320];
	int64_t last_until, last_before;
};

static int64_t
own_since(void *ctx, const char *key, enum fg_counter c, int64_t from_ms)
{
	return fg_store_count_since(((struct node *)ctx)->st, key, c, from_ms);
}

static void
host_ban(void *ctx, const char *key, int64_t until, const char *reason,
         const char *source, int64_t now)
{
	struct node *n = ctx;

	(void)reason;
	(void)now;
	n->bans++;
	n->last_until = until;
	snprintf(n->last_source, sizeof(n->last_source), "%s", source);
	snprintf(n->last_key, sizeof(n->last_key), "%s", key);
}

static void
host_lift(void *ctx, const char *key, bool reset)
{
	struct node *n = ctx;

	n->lifts++;
	n->resets += reset;
	snprintf(n->last_key, sizeof(n->last_key), "%s", key);
}

/* An allow from another host.  What it changed, told back to the share
 * at once (as a store's hook might), must not go out again. */
static void
host_allow(void *ctx, const char *key, int64_t until, int64_t created,
           const char *reason, const char *source)
{
	struct node *n = ctx;

	n->allows++;
	n->last_until = until;
	snprintf(n->last_source, sizeof(n->last_source), "%s", source);
	snprintf(n->last_key, sizeof(n->last_key), "%s", key);
	fg_share_allow_changed(n->sh, key, false, until, created, reason,
	                       "floodgatectl");
}

static void
host_disallow(void *ctx, const char *key, int64_t before)
{
	struct node *n = ctx;

	n->disallows++;
	n->last_before = before;
	snprintf(n->last_key, sizeof(n->last_key), "%s", key);
	fg_share_allow_changed(n->sh, key, true, 0, 0, NULL, NULL);
}

#define CONF_FMT \
    "shared = { backend = \"redis\"; node = \"%s\"; slot = \"%s\";" \
    " sync_interval = \"%dms\"; max_remote_ban = \"1h\"; };" \
    "rules = ( { name = \"dict\"; type = \"invalid_recipients\";" \
    " limit = 1000000; window = \"%s\"; } );"

static void
node_open(struct node *n, const char *name, struct fake_redis *r,
          int interval_ms, const char *window, int64_t now)
{
	char text[1024], err[256];
	struct fg_store_options opt = {.counters_only = true,
	                               .horizon_ms = 3600000};
	struct fg_share_transport t = fake_transport(r);
	struct fg_share_host host = {
		.ctx = n, .own_since = own_since, .ban = host_ban,
		.lift = host_lift, .allow = host_allow,
		.disallow = host_disallow,
	};

	memset(n, 0, sizeof(*n));
	snprintf(n->name, sizeof(n->name), "%s", name);
	snprintf(text, sizeof(text), CONF_FMT, name, "1s", interval_ms, window);
	if (fg_config_load_string(text, "t.conf", &n->cfg, NULL, NULL) != 0 ||
	    fg_store_open(&opt, now, &n->st, err, sizeof(err)) != 0 ||
	    fg_share_new(n->cfg, &t, &host, &n->sh) != 0) {
		printf("Bail out! cannot set up node %s\n", name);
		exit(1);
	}
}

static void
node_close(struct node *n)
{
	fg_share_free(n->sh);
	fg_store_close(n->st);
	fg_config_release(n->cfg);
}

static void
node_event(struct node *n, const char *key, int64_t now)
{
	const char *keys[1] = {key};
	struct fg_event ev = {
		.time_ms = now, .kind = FG_EV_RCPT,
		.rcpt_class = FG_RCPT_INVALID, .keys = keys, .nkeys = 1,
	};
	enum fg_counter ctrs[2] = {FG_CNT_RCPT, FG_CNT_RCPT_INVALID};

	fg_store_record(n->st, &ev);
	fg_share_note(n->sh, key, ctrs, 2, now);
}

/* Local + remote, as the policy sees a shared rule's count. */
static int64_t
node_count(struct node *n, const char *key, int64_t window, int64_t now,
           struct fg_share_part *part)
{
	int64_t local = fg_store_count(n->st, key, FG_CNT_RCPT_INVALID, window,
	                               now);
	return local + fg_share_remote(n->sh, key, FG_CNT_RCPT_INVALID, window,
	                               now, local, 0, part);
}

static int64_t
start_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000) / 1000 * 1000;
}

static void
test_basic(void)
{
	struct fake_redis r = {0};
	struct node a, b;
	int64_t now = start_ms();
	struct fg_share_part part;
	struct fg_share_status st;
	char names[64];

	r.now_ms = now;
	node_open(&a, "a", &r, 250, "1h", now);
	node_open(&b, "b", &r, 250, "1h", now);
	for (int i = 0; i < 5; i++)
		node_event(&a, "192.0.2.0/24", now);
	node_event(&b, "192.0.2.0/24", now);
	is_int(fg_share_tick(a.sh, now, now), 0, "a syncs");
	is_int(fg_share_tick(b.sh, now, now), 0, "b syncs");
	ok(fk_find(&r, "fg:c:192.0.2.0/24", NULL) == NULL, "counts are a hash");
	{
		char f[64];
		snprintf(f, sizeof(f), "%" PRId64 ".i.a", now / 1000);
		struct fake_kv *e = fk_find(&r, "fg:c:192.0.2.0/24", f);
		ok(e != NULL && strcmp(e->val, "5") == 0,
		   "field <slot>.i.a holds a's absolute count 5");
	}
	is_int(node_count(&b, "192.0.2.0/24", 3600000, now, &part), 6,
	       "b counts 1 here + 5 on a");
	is_int(part.count, 5, "remote part 5");
	is_str(fg_share_node_names(b.sh, part.nodes, names, sizeof(names)), "a",
	       "from node a");
	is_int(part.age_ms, 0, "fresh");
	is_int(node_count(&a, "192.0.2.0/24", 3600000, now, &part), 5,
	       "a has not pulled b's yet");
	/* Replayed pushes cannot double-count: absolute values.  a learns
	 * of b from the heartbeats, within a second. */
	for (int i = 0; i < 5; i++) {
		now += 250;
		r.now_ms = now;
		fg_share_tick(a.sh, now, now);
		fg_share_tick(b.sh, now, now);
	}
	is_int(node_count(&a, "192.0.2.0/24", 3600000, now, &part), 6,
	       "a: 5 here + 1 on b, after five more syncs");
	is_int(node_count(&b, "192.0.2.0/24", 3600000, now, &part), 6,
	       "b: still 6");
	is_int(part.age_ms, 0, "age of the last pull");
	is_int(node_count(&b, "192.0.2.0/24", 3600000, now + 700, &part), 6,
	       "700 ms later");
	is_int(part.age_ms, 700, "age 700 ms");
	fg_share_get_status(b.sh, &st);
	is_str(fg_share_state_name(st.state), "ok", "state ok");
	is_str(st.node, "b", "node name");
	is_int(st.peers, 1, "one peer");

	node_close(&a);
	node_close(&b);
	fake_free(&r);
}

static void
test_edge(void)
{
	struct fake_redis r = {0};
	struct node b;
	int64_t now = start_ms() + 500;
	int64_t slot = now / 1000 - 60;   /* a minute ago */
	char f[64], v[16];
	struct fg_share_part part;

	r.now_ms = now;
	node_open(&b, "b", &r, 250, "1h", now);
	snprintf(f, sizeof(f), "%" PRId64 ".i.a", slot);
	fk_put(&r, "fg:c:k.example", f, "10");
	snprintf(f, sizeof(f), "%" PRId64 ".i.a", slot + 1);
	fk_put(&r, "fg:c:k.example", f, "4");
	snprintf(f, sizeof(f), "%" PRId64 ".x.a", slot + 1);
	fk_put(&r, "fg:c:k.example", f, "4");   /* unknown counter */
	snprintf(f, sizeof(f), "%" PRId64 ".i.c", slot + 2);
	fk_put(&r, "fg:c:k.example", f, "-3");  /* not a count */
	snprintf(f, sizeof(f), "%" PRId64 ".i.b", slot + 2);
	fk_put(&r, "fg:c:k.example", f, "100"); /* b's own: never remote */
	snprintf(v, sizeof(v), "junk");
	fk_put(&r, "fg:c:k.example", v, "7");
	/* Keys of HELO names are not shared by a per-network rule: b uses
	 * a network key. */
	node_event(&b, "192.0.2.0/24", now);
	fg_share_tick(b.sh, now, now);
	is_int(fg_share_remote(b.sh, "192.0.2.0/24", FG_CNT_RCPT_INVALID, 3600000,
	                       now, 0, 0, &part), 0, "nothing remote yet");
	/* The same fields under a key b counts. */
	snprintf(f, sizeof(f), "%" PRId64 ".i.a", slot);
	fk_put(&r, "fg:c:192.0.2.0/24", f, "10");
	snprintf(f, sizeof(f), "%" PRId64 ".i.a", slot + 1);
	fk_put(&r, "fg:c:192.0.2.0/24", f, "4");
	snprintf(f, sizeof(f), "%" PRId64 ".i.c", slot + 2);
	fk_put(&r, "fg:c:192.0.2.0/24", f, "-3");
	snprintf(f, sizeof(f), "%" PRId64 ".i.b", slot + 2);
	fk_put(&r, "fg:c:192.0.2.0/24", f, "100");
	fk_put(&r, "fg:c:192.0.2.0/24", "junk", "7");
	/* A reconnect fetches everything whole. */
	r.fail_next = 1;
	fg_share_tick(b.sh, now, now);
	fg_share_tick(b.sh, now, now + 10000);
	is_int(fg_share_remote(b.sh, "192.0.2.0/24", FG_CNT_RCPT_INVALID, 3600000,
	                       now, 0, 0, &part), 14, "whole slots: 10 + 4");
	/* now = slot*1000 + 60500: a 60 s window is (slot*1000 + 500, now]:
	 * half of the first slot. */
	is_int(fg_share_remote(b.sh, "192.0.2.0/24", FG_CNT_RCPT_INVALID, 60000,
	                       now, 0, 0, &part), 9, "half the oldest slot: 5 + 4");
	is_int(fg_share_remote(b.sh, "192.0.2.0/24", FG_CNT_RCPT_INVALID, 59500,
	                       now, 0, 0, &part), 4, "the oldest slot out");
	is_int(fg_share_remote(b.sh, "192.0.2.0/24", FG_CNT_RCPT, 3600000,
	                       now, 0, 0, &part), 0, "other counters apart");
	node_close(&b);
	fake_free(&r);
}

static void
test_failures(void)
{
	struct fake_redis r = {0};
	struct node a, b;
	int64_t now = start_ms();
	struct fg_share_status st;
	struct fg_share_part part;

	r.now_ms = now;
	r.down = 1;
	node_open(&a, "a", &r, 250, "1h", now);
	node_open(&b, "b", &r, 250, "1h", now);
	for (int i = 0; i < 7; i++)
		node_event(&a, "198.51.100.0/24", now);
	is_int(fg_share_tick(a.sh, now, 0), FG_EIO, "server down: the tick fails");
	fg_share_get_status(a.sh, &st);
	is_str(fg_share_state_name(st.state), "degraded", "degraded");
	ok(strstr(st.reason, "refused") != NULL, "reason: %s", st.reason);
	is_int(fg_share_tick(a.sh, now, 50), FG_EBUSY, "backoff: not yet");
	is_int(fg_share_tick(a.sh, now, 200), FG_EIO, "after the pause: tried");
	is_int(fg_share_tick(a.sh, now, 250), FG_EBUSY, "the pause grew");
	r.down = 0;
	r.error = "OOM command not allowed when used memory > 'maxmemory'.";
	is_int(fg_share_tick(a.sh, now, 10000), FG_EIO, "error replies fail");
	fg_share_get_status(a.sh, &st);
	ok(strstr(st.reason, "OOM") != NULL, "reason: %s", st.reason);
	r.error = NULL;
	r.auth_error = "WRONGPASS invalid username-password pair";
	is_int(fg_share_tick(a.sh, now, 20000), FG_EIO, "a wrong password fails");
	fg_share_get_status(a.sh, &st);
	ok(strstr(st.reason, "WRONGPASS") != NULL, "reason: %s", st.reason);
	r.auth_error = NULL;
	is_int(fg_share_tick(a.sh, now, 30000), 0, "back");
	fg_share_get_status(a.sh, &st);
	is_str(fg_share_state_name(st.state), "ok", "ok again");
	fg_share_tick(b.sh, now, 30000);
	is_int(node_count(&b, "198.51.100.0/24", 3600000, now, &part), 0,
	       "b never saw the key");
	node_event(&b, "198.51.100.0/24", now);
	fg_share_tick(b.sh, now, 30000);
	is_int(node_count(&b, "198.51.100.0/24", 3600000, now, &part), 8,
	       "what a counted while down is pushed after: 1 + 7");
	node_close(&a);
	node_close(&b);
	fake_free(&r);
}

static void
test_bans(void)
{
	struct fake_redis r = {0};
	struct node a, b;
	int64_t now = start_ms();

	r.now_ms = now;
	node_open(&a, "a", &r, 250, "1h", now);
	node_open(&b, "b", &r, 250, "1h", now);
	fg_share_tick(a.sh, now, 0);
	fg_share_tick(b.sh, now, 0);
	fg_share_ban_changed(a.sh, "203.0.113.0/24", false, now + 7200000, now,
	                     "dictionary attack", "floodgate:dict");
	fg_share_ban_changed(a.sh, "203.0.113.9", false, now + 60000, now,
	                     "from a peer", "peer:c");
	fg_share_tick(a.sh, now, 250);
	fg_share_tick(b.sh, now, 250);
	is_int(b.bans, 1, "b got a's ban (not the one a got from c)");
	is_str(b.last_key, "203.0.113.0/24", "its key");
	is_str(b.last_source, "peer:a", "source peer:a");
	is_int(b.last_until, now + 3600000, "capped at max_remote_ban");
	is_int(a.bans, 0, "a does not apply its own ban");
	ok(fk_find(&r, "fg:ban:203.0.113.0/24", NULL) != NULL, "ban:<key> set");
	fg_share_tick(b.sh, now, 500);
	is_int(b.bans, 1, "read once");
	fg_share_ban_changed(a.sh, "203.0.113.0/24", true, 0, 0, "", "");
	fg_share_tick(a.sh, now, 750);
	fg_share_tick(b.sh, now, 750);
	is_int(b.lifts, 1, "the lift reaches b");
	is_int(b.resets, 1, "and resets its counts");
	ok(fk_find(&r, "fg:ban:203.0.113.0/24", NULL) == NULL, "ban:<key> gone");
	node_close(&a);
	node_close(&b);
	fake_free(&r);
}

/* Entries of the banlog whose op is op. */
static int
log_ops(const struct fake_redis *r, const char *op)
{
	int n = 0;

	for (size_t i = 0; i < r->nxs; i++)
		for (int k = 0; k + 1 < r->xs[i].nf; k += 2)
			n += strcmp(r->xs[i].fv[k], "op") == 0 &&
			     strcmp(r->xs[i].fv[k + 1], op) == 0;
	return n;
}

static void
test_allows(void)
{
	struct fake_redis r = {0};
	struct node a, b, c;
	int64_t now = start_ms();
	struct fake_kv *kv;

	r.now_ms = now;
	node_open(&a, "a", &r, 250, "1h", now);
	node_open(&b, "b", &r, 250, "1h", now);
	fg_share_tick(a.sh, now, 0);
	fg_share_tick(b.sh, now, 0);
	fg_share_allow_changed(a.sh, "192.0.2.25", false, INT64_MAX, now,
	                       "partner", "floodgatectl");
	fg_share_allow_changed(a.sh, "192.0.2.26", false, now + 60000, now,
	                       "from a peer", "peer:c");
	fg_share_tick(a.sh, now, 250);
	fg_share_tick(b.sh, now, 250);
	is_int(b.allows, 1, "allows: b got a's allow (not the one a got "
	       "from c)");
	is_str(b.last_key, "192.0.2.25", "allows: its key");
	is_str(b.last_source, "peer:a", "allows: source peer:a");
	ok(b.last_until == INT64_MAX, "allows: without an end, as made");
	kv = fk_find(&r, "fg:allow:192.0.2.25", NULL);
	ok(kv != NULL && strncmp(kv->val, "9223372036854775807 ", 20) == 0,
	   "allows: allow:<key> set");
	fg_share_tick(b.sh, now, 500);
	fg_share_tick(a.sh, now, 500);
	fg_share_tick(b.sh, now, 750);
	is_int(a.allows, 0, "allows: nothing comes back to a");
	is_int(b.allows, 1, "allows: read once");
	is_int(log_ops(&r, "allow"), 1, "allows: b sent nothing back");
	fg_share_allow_changed(b.sh, "192.0.2.25", false, INT64_MAX, now,
	                       "partner", "peer:a");
	fg_share_tick(b.sh, now, 1000);
	is_int(log_ops(&r, "allow"), 1, "allows: an allow from a peer is "
	       "not shared");

	fg_share_allow_changed(a.sh, "192.0.2.25", true, 0, 0, NULL, NULL);
	fg_share_tick(a.sh, now, 1000);
	fg_share_tick(b.sh, now, 1250);
	is_int(b.disallows, 1, "disallow: reaches b");
	is_str(b.last_key, "192.0.2.25", "disallow: its key");
	ok(b.last_before == INT64_MAX, "disallow: whatever the allow's time");
	ok(fk_find(&r, "fg:allow:192.0.2.25", NULL) == NULL,
	   "disallow: allow:<key> gone");
	fg_share_tick(a.sh, now, 1500);
	fg_share_tick(b.sh, now, 1500);
	is_int(a.disallows, 0, "disallow: nothing comes back to a");
	is_int(log_ops(&r, "disallow"), 1, "disallow: b sent nothing back");

	/* A host that starts later reads the log in order. */
	node_open(&c, "c", &r, 250, "1h", now);
	fg_share_tick(c.sh, now, 0);
	is_int(c.allows * 10 + c.disallows, 11, "later host: the allow, then "
	       "the disallow");
	node_close(&c);

	/* Bans not shared: no allow either. */
	node_close(&a);
	{
		char text[512];

		snprintf(text, sizeof(text), "shared = { backend = \"redis\";"
		         " node = \"a\"; bans = false; }; rules = ( { name ="
		         " \"dict\"; type = \"invalid_recipients\"; limit = 9;"
		         " window = \"1h\"; } );");
		memset(&a, 0, sizeof(a));
		if (fg_config_load_string(text, "t.conf", &a.cfg, NULL,
		                          NULL) == 0) {
			struct fg_share_transport t = fake_transport(&r);
			struct fg_share_host host = {.ctx = &a,
			                             .own_since = own_since};
			char err[256];
			struct fg_store_options opt = {.counters_only = true,
			                               .horizon_ms = 3600000};

			fg_store_open(&opt, now, &a.st, err, sizeof(err));
			is_int(fg_share_new(a.cfg, &t, &host, &a.sh), 0,
			       "bans = false: a share");
			is_int(fg_share_tick(a.sh, now, 2000), 0,
			       "bans = false: syncs");
			fg_share_allow_changed(a.sh, "192.0.2.27", false,
			                       INT64_MAX, now, "", "floodgatectl");
			fg_share_tick(a.sh, now, 2250);
			is_int(log_ops(&r, "allow"), 1, "bans = false: allows "
			       "are not shared");
		} else {
			ok(0, "bans = false: config loads");
		}
	}
	node_close(&a);
	node_close(&b);
	fake_free(&r);
}

/* The clock, a new server, and a budget of commands per round trip. */
static void
test_clock_config_budget(void)
{
	struct fake_redis r = {0};
	struct node a, b;
	int64_t now = start_ms();
	struct fg_share_status st;
	struct fg_config *cfg;
	char text[512];

	r.now_ms = now + 2000;   /* the server's clock 2 s ahead */
	node_open(&a, "a", &r, 250, "1h", now);
	node_open(&b, "b", &r, 250, "1h", now);
	is_int(fg_share_tick(a.sh, now, 0), 0, "skew: syncs");
	fg_share_get_status(a.sh, &st);
	ok(st.skew_ms >= 1990 && st.skew_ms <= 2000, "skew: %" PRId64 " ms "
	   "measured", st.skew_ms);
	r.now_ms = now;

	/* SIGUSR1 with another prefix: the next tick connects again and
	 * writes under the new one. */
	snprintf(text, sizeof(text), "shared = { backend = \"redis\"; node = "
	         "\"a\"; prefix = \"site2\"; slot = \"1s\"; };"
	         "rules = ( { name = \"dict\"; type = \"invalid_recipients\";"
	         " limit = 1000000; window = \"1h\"; } );");
	if (fg_config_load_string(text, "t.conf", &cfg, NULL, NULL) != 0) {
		ok(0, "config loads");
		return;
	}
	fg_share_configure(a.sh, cfg);
	node_event(&a, "192.0.2.0/24", now);
	is_int(fg_share_tick(a.sh, now, 100), 0, "reconfigured: syncs");
	{
		char f[64];
		snprintf(f, sizeof(f), "%" PRId64 ".i.a", now / 1000);
		ok(fk_find(&r, "site2:c:192.0.2.0/24", f) != NULL,
		   "reconfigured: counts under the new prefix");
	}
	/* No backend: off, nothing sent. */
	fg_config_release(cfg);
	if (fg_config_load_string("rules = ( { name = \"dict\"; type = "
	                          "\"invalid_recipients\"; limit = 5; window ="
	                          " \"1h\"; } );", "t.conf", &cfg, NULL,
	                          NULL) == 0) {
		uint64_t before = r.commands;
		fg_share_configure(a.sh, cfg);
		is_int(fg_share_tick(a.sh, now, 200), FG_EBUSY, "off: no tick");
		is_int(r.commands, before, "off: no command");
		fg_share_get_status(a.sh, &st);
		is_str(fg_share_state_name(st.state), "off", "off: state");
		fg_config_release(cfg);
	}

	/* 300 keys, 100 commands a round trip: all of them get there in
	 * a few ticks, none twice too many. */
	for (int i = 0; i < 300; i++) {
		char key[32];
		snprintf(key, sizeof(key), "10.%d.%d.0/24", i / 256, i % 256);
		node_event(&b, key, now);
	}
	node_close(&b);
	r.commands = 0;
	{
		struct node c;
		char conf[1024], err[256];
		struct fg_store_options opt = {.counters_only = true,
		                               .horizon_ms = 3600000};
		struct fg_share_transport t = fake_transport(&r);
		struct fg_share_host host = {.ctx = &c, .own_since = own_since};
		int ticks = 0;

		memset(&c, 0, sizeof(c));
		snprintf(conf, sizeof(conf), "shared = { backend = \"redis\"; "
		         "node = \"c\"; max_commands = 100; slot = \"1s\"; };"
		         "rules = ( { name = \"d\"; type = \"invalid_recipients\";"
		         " limit = 9; window = \"1h\"; } );");
		if (fg_config_load_string(conf, "t.conf", &c.cfg, NULL, NULL) != 0 ||
		    fg_store_open(&opt, now, &c.st, err, sizeof(err)) != 0 ||
		    fg_share_new(c.cfg, &t, &host, &c.sh) != 0) {
			ok(0, "budget: set up");
			return;
		}
		for (int i = 0; i < 300; i++) {
			char key[32];
			snprintf(key, sizeof(key), "10.%d.%d.0/24", i / 256, i % 256);
			node_event(&c, key, now);
		}
		for (int k = 0; k < 20; k++) {
			size_t n = 0;
			fg_share_tick(c.sh, now, 300 + k);
			ticks++;
			for (size_t i = 0; i < r.nkv; i++)
				n += r.kv[i].field != NULL &&
				     strncmp(r.kv[i].key, "fg:c:10.", 8) == 0 &&
				     strstr(r.kv[i].field, ".i.c") != NULL;
			if (n == 300)
				break;
		}
		ok(ticks > 3 && ticks < 20, "budget: 300 keys pushed in %d round "
		   "trips of about 100 commands", ticks);
		node_close(&c);
	}
	node_close(&a);
	fake_free(&r);
}

/* ---- which keys are fetched ---------------------------------------- */

static void
ticks(struct node *a, struct node *b, struct fake_redis *r, int64_t *now,
      int n)
{
	for (int i = 0; i < n; i++) {
		*now += 250;
		r->now_ms = *now;
		fg_share_tick(a->sh, *now, *now);
		fg_share_tick(b->sh, *now, *now);
	}
}

/* A key is fetched whole when it is new here; after that only once the
 * feed says that a peer pushed it, while it is hot here. */
static void
test_pull_selection(void)
{
	struct fake_redis r = {0};
	struct node a, b;
	int64_t now = start_ms();
	struct fg_share_part part;
	struct fg_share_status st;
	uint64_t before;

	r.now_ms = now;
	node_open(&a, "a", &r, 250, "1h", now);
	node_open(&b, "b", &r, 250, "1h", now);
	ticks(&a, &b, &r, &now, 5);   /* each knows the other */
	fg_share_get_status(b.sh, &st);
	is_int(st.peers, 1, "pull: b knows a");
	node_event(&b, "10.7.0.0/24", now);
	ticks(&a, &b, &r, &now, 1);   /* b fetches it whole, once */
	before = r.pulls;
	for (int i = 0; i < 8; i++) {
		node_event(&b, "10.7.0.0/24", now);
		ticks(&a, &b, &r, &now, 1);
	}
	is_int((int64_t)(r.pulls - before), 0, "pull: a key hot on b that no "
	       "peer announced is not fetched again");
	for (int i = 0; i < 3; i++)
		node_event(&a, "10.7.0.0/24", now);
	now += 250;
	r.now_ms = now;
	fg_share_tick(a.sh, now, now);   /* a pushes it and names it */
	is_int(node_count(&b, "10.7.0.0/24", 3600000, now, &part), 9,
	       "pull: before b's next sync, b counts its own 9");
	before = r.pulls;
	fg_share_tick(b.sh, now, now);
	ok(r.pulls - before >= 1, "pull: b's next sync fetches it");
	is_int(node_count(&b, "10.7.0.0/24", 3600000, now, &part), 12,
	       "pull: 9 here + 3 on a in b's decision");
	is_int(part.count, 3, "pull: remote part 3");
	is_int(part.age_ms, 0, "pull: fresh");
	/* Nothing new on a: b does not fetch it again, and the part stays
	 * fresh as of the last read of the feed. */
	before = r.pulls;
	ticks(&a, &b, &r, &now, 2);
	is_int((int64_t)(r.pulls - before), 0, "pull: unchanged on a: not "
	       "fetched again");
	is_int(node_count(&b, "10.7.0.0/24", 3600000, now, &part), 12,
	       "pull: still 9 here + 3 on a");
	is_int(part.age_ms, 0, "pull: known fresh from the feed");
	/* A key a pushes while it is not hot on b is fetched whole once it
	 * is hot there again. */
	node_event(&a, "10.8.0.0/24", now);
	node_event(&b, "10.8.0.0/24", now - 20000);
	ticks(&a, &b, &r, &now, 2);
	node_event(&a, "10.8.0.0/24", now);
	ticks(&a, &b, &r, &now, 2);
	node_event(&b, "10.8.0.0/24", now);
	ticks(&a, &b, &r, &now, 1);
	is_int(node_count(&b, "10.8.0.0/24", 3600000, now, &part), 4,
	       "pull: a key that was cold on b counts a's 2 once hot again");
	node_close(&a);
	node_close(&b);
	fake_free(&r);
}

/* Two hosts under one node name: one of them stops publishing. */
static void
test_collision(void)
{
	struct fake_redis r = {0};
	struct node a1, a2;
	int64_t now = start_ms();
	struct fg_share_status s1, s2;

	r.now_ms = now;
	node_open(&a1, "a", &r, 250, "1h", now);
	node_open(&a2, "a", &r, 250, "1h", now);
	printf("# collision: an error line from each node is expected\n");
	ticks(&a1, &a2, &r, &now, 20);
	fg_share_get_status(a1.sh, &s1);
	fg_share_get_status(a2.sh, &s2);
	ok(strstr(s1.reason, "node name in use") != NULL ||
	   strstr(s2.reason, "node name in use") != NULL,
	   "collision: degraded: %s / %s", s1.reason, s2.reason);
	node_close(&a1);
	node_close(&a2);
	fake_free(&r);
}

/* A key past half its limit makes the next sync come sooner. */
static void
test_urgent(void)
{
	struct fake_redis r = {0};
	struct node a;
	int64_t now = start_ms();

	r.now_ms = now;
	node_open(&a, "a", &r, 250, "1h", now);
	node_event(&a, "10.9.0.0/24", now);
	fg_share_tick(a.sh, now, now);
	fg_share_remote(a.sh, "10.9.0.0/24", FG_CNT_RCPT_INVALID, 3600000, now,
	                4, 10, NULL);
	ok(!atomic_load(&a.sh->urgent), "urgent: not at 4 of 10");
	fg_share_remote(a.sh, "10.9.0.0/24", FG_CNT_RCPT_INVALID, 3600000, now,
	                6, 10, NULL);
	ok(atomic_load(&a.sh->urgent), "urgent: at 6 of 10");
	node_close(&a);
	fake_free(&r);
}

/* ---- a real server, when there is one ----------------------------- */

static void
real_node(struct node *n, const char *name, const char *server,
          const char *auth, int64_t now)
{
	char text[1024], err[256];
	struct fg_store_options opt = {.counters_only = true,
	                               .horizon_ms = 3600000};
	struct fg_share_transport t;
	struct fg_share_host host = {
		.ctx = n, .own_since = own_since, .ban = host_ban,
		.lift = host_lift,
	};

	memset(n, 0, sizeof(*n));
	snprintf(n->name, sizeof(n->name), "%s", name);
	snprintf(text, sizeof(text), "shared = { backend = \"redis\"; "
	         "node = \"%s\"; server = \"%s\"; timeout = \"300ms\"; %s };"
	         "rules = ( { name = \"dict\"; type = \"invalid_recipients\";"
	         " limit = 100; window = \"1h\"; } );", name, server, auth);
	if (fg_config_load_string(text, "t.conf", &n->cfg, NULL, NULL) != 0 ||
	    fg_store_open(&opt, now, &n->st, err, sizeof(err)) != 0 ||
	    fg_share_redis_transport(&t) != 0 ||
	    fg_share_new(n->cfg, &t, &host, &n->sh) != 0) {
		printf("Bail out! cannot set up node %s\n", name);
		exit(1);
	}
}

static void
test_real_redis(void)
{
	char dir[] = "/tmp/fg-share-XXXXXX", cmd[1024], server[256], auth[512];
	char pw[300];
	struct node a, b, c;
	struct fg_share_part part;
	struct fg_share_status st;
	int64_t now = start_ms();
	FILE *fp;

	if (system("command -v redis-server >/dev/null 2>&1") != 0 ||
	    mkdtemp(dir) == NULL) {
		printf("# no redis-server: the hiredis transport is not tried\n");
		return;
	}
	snprintf(cmd, sizeof(cmd), "redis-server --port 0 --unixsocket %s/r.sock "
	         "--save '' --appendonly no --daemonize yes --pidfile %s/r.pid "
	         "--logfile %s/r.log --dir %s && for i in $(seq 50); do "
	         "[ -S %s/r.sock ] && break; sleep 0.1; done; "
	         "redis-cli -s %s/r.sock ACL SETUSER fg on '>s3cret' '~fg:*' "
	         "'+@all' >/dev/null", dir, dir, dir, dir, dir, dir);
	if (system(cmd) != 0) {
		ok(0, "redis-server starts");
		return;
	}
	snprintf(server, sizeof(server), "unix:%s/r.sock", dir);
	snprintf(pw, sizeof(pw), "%s/pw", dir);
	fp = fopen(pw, "w");
	if (fp != NULL) {
		fputs("s3cret\n", fp);
		fclose(fp);
	}
	chmod(pw, 0600);
	snprintf(auth, sizeof(auth), "username = \"fg\"; password_file = \"%s\";",
	         pw);
	real_node(&a, "a", server, auth, now);
	real_node(&b, "b", server, "", now);
	for (int i = 0; i < 4; i++)
		node_event(&a, "192.0.2.0/24", now);
	node_event(&b, "192.0.2.0/24", now);
	is_int(fg_share_tick(a.sh, now, 0), 0, "a syncs with Redis as user fg");
	is_int(fg_share_tick(b.sh, now, 0), 0, "b syncs as the default user");
	is_int(node_count(&b, "192.0.2.0/24", 3600000, now, &part), 5,
	       "b: 1 here + 4 on a, through Redis");
	fg_share_ban_changed(a.sh, "192.0.2.0/24", false, now + 60000, now,
	                     "dict", "floodgate:dict");
	fg_share_tick(a.sh, now, 1000);
	fg_share_tick(b.sh, now, 1000);
	is_str(b.last_source, "peer:a", "a's ban reaches b through the stream");

	/* A wrong password: degraded, with Redis's reason. */
	fp = fopen(pw, "w");
	if (fp != NULL) {
		fputs("wrong\n", fp);
		fclose(fp);
	}
	real_node(&c, "c", server, auth, now);
	is_int(fg_share_tick(c.sh, now, 0), FG_EIO, "a wrong password fails");
	fg_share_get_status(c.sh, &st);
	ok(strstr(st.reason, "WRONGPASS") != NULL, "reason: %s", st.reason);

	/* The server stopped: a round trip times out, nothing else. */
	snprintf(cmd, sizeof(cmd), "kill -STOP $(cat %s/r.pid)", dir);
	if (system(cmd) == 0) {
		is_int(fg_share_tick(b.sh, now, 2000), FG_EIO, "a stopped server "
		       "times out");
		fg_share_get_status(b.sh, &st);
		ok(strstr(st.reason, "timeout") != NULL, "reason: %s", st.reason);
		snprintf(cmd, sizeof(cmd), "kill -CONT $(cat %s/r.pid)", dir);
		if (system(cmd) != 0)
			ok(0, "SIGCONT");
		is_int(fg_share_tick(b.sh, now, 10000), 0, "back after SIGCONT");
	}
	node_close(&a);
	node_close(&b);
	node_close(&c);
	snprintf(cmd, sizeof(cmd), "kill $(cat %s/r.pid); sleep 0.2; rm -rf %s",
	         dir, dir);
	if (system(cmd) != 0)
		printf("# cleanup failed\n");
}

/* ---- the simulation ---------------------------------------------- */

struct sim {
	struct fake_redis r;
	struct node n[NODES];
	int64_t phase[NODES];
	int64_t bad_until;         /* no bound checked before */
	int64_t t0;
	int64_t own[NODES][KEYS];
	int64_t *hist;             /* total per step and key */
};

static const char *const sim_keys[KEYS] = {
	"192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24",
};

static unsigned
rnd(unsigned *seed)
{
	*seed = *seed * 1103515245u + 12345u;
	return (*seed >> 8) & 0xffffff;
}

static int
run_sim(unsigned seed, int interval, int *checks)
{
	struct sim s;
	const int step = 10, steps = 4000;   /* 40 s */
	double rate[KEYS], w[NODES];
	int fails = 0;
	int64_t wipe_at;

	memset(&s, 0, sizeof(s));
	s.t0 = start_ms();
	s.r.now_ms = s.t0;
	s.hist = calloc((size_t)steps * KEYS, sizeof(int64_t));
	for (int i = 0; i < NODES; i++) {
		char name[2] = {(char)('a' + i), 0};
		node_open(&s.n[i], name, &s.r, interval, "1h", s.t0);
		s.phase[i] = rnd(&seed) % (unsigned)(interval / 10) * 10;
	}
	wipe_at = 10000 + rnd(&seed) % 20000;
	for (int k = 0; k < steps; k++) {
		int64_t now = s.t0 + (int64_t)k * step;

		s.r.now_ms = now;
		if (k % 500 == 0) {
			for (int j = 0; j < KEYS; j++)
				rate[j] = 5 + rnd(&seed) % 300;
			for (int i = 0; i < NODES; i++)
				w[i] = 1 + rnd(&seed) % 10;
		}
		if (now - s.t0 >= wipe_at && wipe_at > 0) {
			fake_wipe(&s.r);
			wipe_at = 0;
			s.bad_until = now + 4000;
		}
		for (int j = 0; j < KEYS; j++) {
			double expect = rate[j] * step / 1000.0;
			int nev = (int)expect;
			double wsum = w[0] + w[1] + w[2];

			if ((double)(rnd(&seed) % 1000) / 1000.0 < expect - nev)
				nev++;
			for (int e = 0; e < nev; e++) {
				double x = (double)(rnd(&seed) % 10000) / 10000.0 * wsum;
				int i = x < w[0] ? 0 : x < w[0] + w[1] ? 1 : 2;
				node_event(&s.n[i], sim_keys[j], now);
				s.own[i][j]++;
			}
			s.hist[(size_t)k * KEYS + (size_t)j] =
			    s.own[0][j] + s.own[1][j] + s.own[2][j];
		}
		for (int i = 0; i < NODES; i++) {
			if ((now - s.t0 - s.phase[i]) % interval != 0)
				continue;
			if (rnd(&seed) % 100 < 8) {
				s.r.fail_next = 1;
				s.bad_until = now + 4000;
			}
			if (fg_share_tick(s.n[i].sh, now, now) != 0)
				s.bad_until = now + 4000;
		}
		for (int i = 0; i < NODES; i++)
			for (int j = 0; j < KEYS; j++) {
				int64_t est = node_count(&s.n[i], sim_keys[j], 3600000,
				                         now, NULL);
				int64_t total = s.hist[(size_t)k * KEYS + (size_t)j];
				int back = (2 * interval + step) / step;
				int64_t then = k >= back
				    ? s.hist[(size_t)(k - back) * KEYS + (size_t)j] : 0;

				if (est > total) {
					if (fails++ < 5)
						printf("# seed %u t=%" PRId64 " node %d key %d: "
						       "%" PRId64 " > true %" PRId64 "\n", seed,
						       now - s.t0, i, j, est, total);
				} else if (now >= s.bad_until && now - s.t0 > 2000 &&
				           est < then) {
					if (fails++ < 5)
						printf("# seed %u t=%" PRId64 " node %d key %d: "
						       "%" PRId64 " below the bound %" PRId64
						       " (true %" PRId64 ")\n", seed, now - s.t0,
						       i, j, est, then, total);
				}
				(*checks)++;
			}
	}
	/* Quiet: every host converges to the true sum. */
	int64_t end = s.t0 + (int64_t)steps * step;
	for (int round = 0; round < 2; round++) {
		if (round == 1) {
			if (getenv("SHARE_DEBUG"))
				fg_log_set_level(FG_LOG_DEBUG);
			fake_wipe(&s.r);
		}
		for (int t = 0; t < 3000 / interval + 6; t++) {
			end += interval;
			s.r.now_ms = end;
			for (int i = 0; i < NODES; i++)
				fg_share_tick(s.n[i].sh, end, end + 100000);
		}
		for (int i = 0; i < NODES; i++)
			for (int j = 0; j < KEYS; j++) {
				int64_t est = node_count(&s.n[i], sim_keys[j], 3600000,
				                         end, NULL);
				int64_t total = s.own[0][j] + s.own[1][j] + s.own[2][j];
				if (est != total && fails++ < 10) {
					struct fg_share_status st;
					fg_share_get_status(s.n[i].sh, &st);
					printf("# seed %u%s: node %d key %d converged to "
					       "%" PRId64 ", true %" PRId64 " (%s %s, "
					       "%" PRId64 " peers)\n", seed,
					       round ? " (after a wipe)" : "", i, j, est,
					       total, fg_share_state_name(st.state),
					       st.reason, st.peers);
					for (int m = 0; m < NODES; m++) {
						int64_t sum = 0;
						char suffix[8];
						snprintf(suffix, sizeof(suffix), ".i.%c", 'a' + m);
						for (size_t q = 0; q < s.r.nkv; q++)
							if (s.r.kv[q].field &&
							    strstr(s.r.kv[q].key, sim_keys[j]) &&
							    strstr(s.r.kv[q].field, suffix))
								sum += atoll(s.r.kv[q].val);
						printf("#   node %c: %" PRId64 " in redis, own %" PRId64 "\n",
						       'a' + m, sum, s.own[m][j]);
					}
				}
			}
	}
	fg_log_set_level(FG_LOG_ERR);
	for (int i = 0; i < NODES; i++)
		node_close(&s.n[i]);
	fake_free(&s.r);
	free(s.hist);
	return fails;
}

static void
test_simulation(void)
{
	static const int intervals[] = {50, 250, 400};
	int checks = 0;

	for (unsigned seed = 1; seed <= 6; seed++) {
		int interval = intervals[seed % 3];
		int f = run_sim(seed * 7919u, interval, &checks);
		is_int(f, 0, "simulation seed %u, interval %d ms: within the bound "
		       "and converged", seed, interval);
	}
	ok(checks > 100000, "%d checks", checks);
}

int
main(void)
{
	fg_log_open("test_share", true, FG_LOG_ERR);
	test_basic();
	test_edge();
	test_failures();
	test_bans();
	test_allows();
	test_clock_config_budget();
	test_pull_selection();
	test_collision();
	test_urgent();
	test_real_redis();
	test_simulation();
	return tap_done();
}
