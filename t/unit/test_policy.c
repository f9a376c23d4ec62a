/*
 * test_policy.c - the decision, through the session engine the daemon
 * runs, with an injected clock.
 *
 * Scenarios drive lib/session.c exactly as the daemon does, over a store
 * that keeps counters, concurrency, bans and levels in memory (the
 * store's counters-only mode: the same code as the daemon's counts, no
 * database).  Tests of the pure decision (exemptions, bans at each
 * stage, replies) call fg_policy_decide() with facts of their own, over
 * the same store.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fg.h"
#include "keys.h"
#include "net.h"
#include "policy.h"
#include "session.h"
#include "store.h"
#include "tap.h"

#define S(x) ((int64_t)(x) * 1000)
#define MIN(x) ((int64_t)(x) * 60000)

/* ---- configs ------------------------------------------------------ */

static void
diag(void *arg, bool is_warning, const char *line)
{
	(void)arg;
	if (!is_warning)
		printf("# config: %s\n", line);
}

static struct fg_config *
cfg_load(const char *text)
{
	struct fg_config *cfg = NULL;
	int rc = fg_config_load_string(text, "test.conf", &cfg, diag, NULL);

	if (rc != 0 || cfg == NULL) {
		printf("Bail out! config did not load (%d):\n%s\n", rc, text);
		exit(1);
	}
	return cfg;
}

/* ---- the store and the sessions on it ----------------------------- */

#define HORIZON S(30 * 86400)

/* "fake" for its history: it is the real store now, in memory only, and
 * the sessions opened on it.  Zero-initialised; opened on first use. */
struct fake {
	fg_store *st;
	struct fg_session_env env;
	struct fg_tarpit tarpit;
	fg_session **open;
	size_t nopen, cap;
	uint64_t next_id;
};

static fg_store *
fake_store(struct fake *fk)
{
	struct fg_store_options so;
	char err[200];

	if (fk->st != NULL)
		return fk->st;
	memset(&so, 0, sizeof(so));
	so.horizon_ms = HORIZON;
	so.counters_only = true;
	if (fg_store_open(&so, 0, &fk->st, err, sizeof(err)) != 0) {
		printf("Bail out! store: %s\n", err);
		exit(1);
	}
	fk->env.store = fk->st;
	fk->env.tarpit = &fk->tarpit;
	fk->env.log = false;
	return fk->st;
}

static void
fake_free(struct fake *fk)
{
	for (size_t i = 0; i < fk->nopen; i++)
		fg_session_free(fk->open[i]);
	free(fk->open);
	if (fk->st != NULL)
		fg_store_close(fk->st);
	memset(fk, 0, sizeof(*fk));
}

static fg_session *
fake_session(struct fake *fk, const struct fg_config *cfg)
{
	fg_session *s;

	fake_store(fk);
	if (fk->nopen == fk->cap) {
		fk->cap = fk->cap ? fk->cap * 2 : 64;
		fk->open = realloc(fk->open, fk->cap * sizeof(*fk->open));
		if (fk->open == NULL) {
			printf("Bail out! out of memory\n");
			exit(1);
		}
	}
	if ((s = fg_session_new(&fk->env, cfg, ++fk->next_id)) == NULL) {
		printf("Bail out! out of memory\n");
		exit(1);
	}
	fk->open[fk->nopen++] = s;
	return s;
}

static int64_t
fake_count(struct fake *fk, const char *key, enum fg_counter c,
           int64_t window_ms, int64_t now_ms)
{
	return fg_store_count(fake_store(fk), key, c, window_ms, now_ms);
}

/* One event of counter c under key alone. */
static void
fake_add(struct fake *fk, int64_t t, const char *key, enum fg_counter c)
{
	static const enum fg_event_kind kinds[] = {
		[FG_CNT_CONNECT] = FG_EV_CONNECT, [FG_CNT_HELO] = FG_EV_HELO,
		[FG_CNT_MAIL] = FG_EV_MAIL, [FG_CNT_RCPT] = FG_EV_RCPT,
		[FG_CNT_RCPT_VALID] = FG_EV_RCPT,
		[FG_CNT_RCPT_INVALID] = FG_EV_RCPT,
		[FG_CNT_RCPT_REJECTED] = FG_EV_RCPT,
	};
	const char *keys[1] = {key};
	struct fg_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.time_ms = t;
	ev.kind = kinds[c];
	ev.rcpt_class = c == FG_CNT_RCPT_VALID ? FG_RCPT_VALID
	              : c == FG_CNT_RCPT_INVALID ? FG_RCPT_INVALID
	              : c == FG_CNT_RCPT_REJECTED ? FG_RCPT_REJECTED
	                                          : FG_RCPT_NONE;
	ev.keys = keys;
	ev.nkeys = 1;
	fg_store_record(fake_store(fk), &ev);
}

static void
fake_set_ban(struct fake *fk, const char *key, int64_t until)
{
	fg_store_ban_set(fake_store(fk), key, until, "test", "test", 0);
}

static int64_t
view_count(void *ctx, const char *key, enum fg_counter c, int64_t window_ms,
           int64_t now)
{
	return fg_store_count(ctx, key, c, window_ms, now);
}

static int64_t
view_concurrent(void *ctx, const char *key)
{
	return fg_store_conn_count(ctx, key);
}

static int
view_ban(void *ctx, const char *key, int64_t now, struct fg_ban *out)
{
	return fg_store_ban_get(ctx, key, now, out);
}

static int
view_level(void *ctx, const char *rule, const char *key, int *level,
           int64_t *last_ms)
{
	return fg_store_level_get(ctx, rule, key, level, last_ms);
}

static void
view_ban_lengths(void *ctx, int family, bool *used)
{
	fg_store_ban_lengths(ctx, family, used);
}

/* The store as the policy sees it, for tests of the pure decision. */
static struct fg_view
fake_view(struct fake *fk)
{
	struct fg_view vw = {fake_store(fk), view_count, view_concurrent,
	                     view_ban, view_level, view_ban_lengths, NULL, NULL};
	return vw;
}

/* ---- sessions ----------------------------------------------------- */

/* Second pass: sessions keep a per-rule trace (the daemon at debug
 * level), and direct decisions get facts with the client's keys
 * formatted once; every verdict must come out the same. */
static bool use_client_keys;

struct sess {
	fg_session *s;                /* made at the first step */
	bool known;
	fg_addr addr;
	struct fg_facts f;            /* for direct decisions */
	struct fg_client_keys ck;
};

static void
sess_open(struct sess *s, const char *ip)
{
	memset(s, 0, sizeof(*s));
	if (ip != NULL) {
		if (fg_addr_parse(ip, &s->addr) != 0) {
			printf("Bail out! bad address %s\n", ip);
			exit(1);
		}
		s->known = true;
		s->f.client = &s->addr;
	}
}

/* Deciding over a used verdict must say the same as deciding afresh. */
static unsigned reuse_checked, reuse_differ;

/* A direct decision on s's facts (no session), as the pure policy. */
static void
decide_direct(const struct fg_config *cfg, struct sess *s,
              const struct fg_view *vw, int64_t now, struct fg_verdict *v)
{
	static struct fg_verdict stale;

	if (use_client_keys && s->f.client != NULL) {
		fg_policy_client_keys(cfg, s->f.client, &s->ck);
		s->f.client_keys = &s->ck;
	}
	fg_policy_decide(cfg, &s->f, vw, now, v);
	memset(&stale, 0xa5, sizeof(stale));
	fg_policy_decide(cfg, &s->f, vw, now, &stale);
	reuse_checked++;
	if (!fg_verdict_equal(v, &stale))
		reuse_differ++;
}

/* One SMTP step through the session engine; *v gets its verdict.  A
 * delayed session is awake again at once (the tests sleep nowhere). */
static void
sess_do(struct fake *fk, const struct fg_config *cfg, struct sess *s,
        enum fg_stage stage, const char *arg, enum fg_rcpt_class cls,
        int64_t now, struct fg_verdict *v)
{
	const struct fg_verdict *r = NULL;

	if (s->s == NULL) {
		s->s = fake_session(fk, cfg);
		fg_session_trace(s->s, use_client_keys);
	}
	switch (stage) {
	case FG_STAGE_CONNECT:
		r = fg_session_connect(s->s, s->known ? &s->addr : NULL, NULL,
		                       NULL, now);
		break;
	case FG_STAGE_HELO:
		r = fg_session_helo(s->s, arg, now);
		break;
	case FG_STAGE_MAIL:
		r = fg_session_mail(s->s, arg, NULL, false, now);
		break;
	case FG_STAGE_RCPT:
		r = fg_session_rcpt(s->s, arg, cls,
		                    cls == FG_RCPT_INVALID ? "5.1.1" : NULL, NULL,
		                    NULL, now);
		break;
	}
	fg_session_delay_done(s->s);
	*v = *r;
}

/* Connect, helo, mail; returns the first refusing verdict's action. */
static enum fg_action
sess_start(struct fake *fk, const struct fg_config *cfg, struct sess *s,
           const char *ip, int64_t now, struct fg_verdict *v)
{
	sess_open(s, ip);
	sess_do(fk, cfg, s, FG_STAGE_CONNECT, NULL, FG_RCPT_NONE, now, v);
	if (v->action > FG_ACT_DELAY)
		return v->action;
	sess_do(fk, cfg, s, FG_STAGE_HELO, "client.example", FG_RCPT_NONE, now, v);
	if (v->action > FG_ACT_DELAY)
		return v->action;
	sess_do(fk, cfg, s, FG_STAGE_MAIL, "<a@sender.example>", FG_RCPT_NONE,
	        now, v);
	return v->action;
}

static enum fg_action
connect_once(struct fake *fk, const struct fg_config *cfg, const char *ip,
             int64_t now, struct fg_verdict *v)
{
	struct sess s;

	sess_open(&s, ip);
	sess_do(fk, cfg, &s, FG_STAGE_CONNECT, NULL, FG_RCPT_NONE, now, v);
	return v->action;
}

/* ---- tests -------------------------------------------------------- */

static const char dict_conf[] =
	"rules = ( { name = \"dictionary\"; type = \"invalid_recipients\"; mask = false;\n"
	"  limit = 20; window = \"1h\";\n"
	"  ladder = ( { over = 1; action = \"delay\"; delay = \"1s\";\n"
	"               growth = \"linear\"; },\n"
	"             { over = 10; action = \"tempfail\"; },\n"
	"             { over = 30; action = \"ban\"; ban = \"1h\"; } ); } );\n";

/*
 * 50 addresses of one /24 open a session each, then try recipients in
 * turn; every recipient is unknown.  The /24 is counted together.
 */
static void
test_dictionary_attack(void)
{
	struct fg_config *cfg = cfg_load(dict_conf);
	struct fake fk = {0};
	static struct sess s[50];
	struct fg_verdict v;
	int first_delay = 0, first_tempfail = 0, ban_at = 0, banned_at = 0;
	int bad_order = 0, bad_delay = 0, starts_refused = 0;
	int64_t t0 = S(1000000);

	for (int i = 0; i < 50; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "192.0.2.%d", i + 1);
		if (sess_start(&fk, cfg, &s[i], ip, t0 + i * 100, &v) !=
		    FG_ACT_CONTINUE)
			starts_refused++;
	}
	is_int(starts_refused, 0, "dictionary: all 50 sessions start");

	for (int k = 1; k <= 100; k++) {
		char rcpt[64];
		int64_t now = t0 + S(10) + S(k);
		enum fg_action want;

		snprintf(rcpt, sizeof(rcpt), "<user%d@victim.example>", k);
		sess_do(&fk, cfg, &s[(k - 1) % 50], FG_STAGE_RCPT, rcpt,
		        FG_RCPT_INVALID, now, &v);
		if (v.action == FG_ACT_DELAY && first_delay == 0)
			first_delay = k;
		if (v.action == FG_ACT_TEMPFAIL && first_tempfail == 0)
			first_tempfail = k;
		if (v.ban.set && ban_at == 0) {
			ban_at = k;
			is_str(v.ban.key, "192.0.2.0/24", "dictionary: ban key");
			is_int(v.ban.until_ms, now + S(3600), "dictionary: ban 1h");
			is_str(v.ban.reason, "rule dictionary: 36 > 20 in 1h",
			       "dictionary: ban reason");
			is_str(v.ban.source, "floodgate:dictionary",
			       "dictionary: ban source");
			is_int(v.action, FG_ACT_DISCONNECT,
			       "dictionary: ban disconnects");
			is_int(v.code, 421, "dictionary: ban answers 421");
			is_int(v.level, 2, "dictionary: ban is step 2");
		}
		if (v.banned && banned_at == 0)
			banned_at = k;
		/* The refused connection at k = 35 moves the /24 up to the
		 * ban step: escalation by persistence. */
		want = k <= 20 ? FG_ACT_CONTINUE : k < 30 ? FG_ACT_DELAY
		     : k < 36 ? FG_ACT_TEMPFAIL : FG_ACT_DISCONNECT;
		if (v.action != want)
			bad_order++;
		if (k > 20 && k < 30 &&
		    v.delay_ms != (k - 20 < 8 ? S(k - 20) : S(8)))
			bad_delay++;
		if (k == 30) {
			is_int(v.code, 451, "dictionary: tempfail 451");
			is_str(v.status, "4.7.1", "dictionary: tempfail 4.7.1");
			is_int(v.count, 30, "dictionary: count at tempfail");
			is_int(v.limit, 20, "dictionary: limit");
			is_str(v.key, "192.0.2.0/24", "dictionary: key");
			is_int(v.nlevels, 1, "dictionary: tempfail stores a level");
			is_int(v.levels[0].level, 1, "dictionary: level 1");
		}
		/* Meanwhile, new clients of the /24 and elsewhere connect. */
		if (k == 25) {
			is_int(connect_once(&fk, cfg, "192.0.2.200", now, &v),
			       FG_ACT_CONTINUE,
			       "dictionary: delays are not applied at connect");
		}
		if (k == 35) {
			is_int(connect_once(&fk, cfg, "192.0.2.201", now, &v),
			       FG_ACT_TEMPFAIL,
			       "dictionary: /24 over its limit refused at connect");
			ok(v.rule != NULL && strcmp(v.rule->name, "dictionary") == 0,
			   "dictionary: ... by the dictionary rule");
			is_int(connect_once(&fk, cfg, "198.51.100.1", now, &v),
			       FG_ACT_CONTINUE,
			       "dictionary: another network connects");
		}
	}
	is_int(first_delay, 21, "dictionary: delays start at recipient 21");
	is_int(first_tempfail, 30, "dictionary: tempfail starts at recipient 30");
	is_int(ban_at, 36, "dictionary: ban at recipient 36, after a "
	       "connection came back while refused");
	is_int(banned_at, 37, "dictionary: ban enforced from recipient 37");
	is_int(bad_order, 0, "dictionary: every recipient got its step");
	is_int(bad_delay, 0, "dictionary: linear delays 1s..8s, capped");

	connect_once(&fk, cfg, "192.0.2.99", t0 + S(200), &v);
	ok(v.banned && v.action == FG_ACT_DISCONNECT &&
	   strcmp(v.key, "192.0.2.0/24") == 0 && v.rule == NULL,
	   "dictionary: banned /24 refused at connect");
	is_int(connect_once(&fk, cfg, "192.0.3.1", t0 + S(200), &v),
	       FG_ACT_CONTINUE, "dictionary: the next /24 is not banned");
	connect_once(&fk, cfg, "192.0.2.99", t0 + S(200) + S(3600) + S(200), &v);
	ok(!v.banned, "dictionary: the ban ends after an hour");

	fake_free(&fk);
	fg_config_release(cfg);
}

/* 15 unknown recipients an hour against a limit of 20: never fires. */
static void
test_slow_attack(void)
{
	struct fg_config *cfg = cfg_load(dict_conf);
	struct fake fk = {0};
	struct fg_verdict v;
	int fired = 0;

	for (int i = 0; i < 150; i++) {
		struct sess s;
		char ip[32];
		int64_t now = S(5000) + S(240) * i;

		snprintf(ip, sizeof(ip), "192.0.2.%d", i % 250 + 1);
		if (sess_start(&fk, cfg, &s, ip, now, &v) != FG_ACT_CONTINUE)
			fired++;
		sess_do(&fk, cfg, &s, FG_STAGE_RCPT, "<x@victim.example>",
		        FG_RCPT_INVALID, now + 500, &v);
		if (v.action != FG_ACT_CONTINUE || v.rule != NULL)
			fired++;
	}
	is_int(fired, 0, "slow attack under the threshold never fires");
	is_int(fake_count(&fk, "192.0.2.0/24", FG_CNT_RCPT_INVALID, S(3600),
	                  S(5000) + S(240) * 149 + 500),
	       15, "slow attack: 15 in the last hour");
	fake_free(&fk);
	fg_config_release(cfg);
}

/* Five connects in the first seconds, a sixth at the window's edge. */
static void
test_window_edge(void)
{
	static const struct {
		int64_t last;
		enum fg_action want;
		int64_t count;
	} cases[] = {
		{59999, FG_ACT_DISCONNECT, 6}, /* second 0 still inside */
		{60000, FG_ACT_CONTINUE, 5},   /* second 0 left the window */
		{60999, FG_ACT_CONTINUE, 5},
		{4500, FG_ACT_DISCONNECT, 6},  /* inside the burst */
	};
	struct fg_config *cfg = cfg_load(
		"rules = ( { name = \"rate\"; type = \"connection_rate\";\n"
		"  limit = 5; window = \"60s\"; } );\n");

	for (size_t i = 0; i < FG_NELEM(cases); i++) {
		struct fake fk = {0};
		struct fg_verdict v;
		int early = 0;

		for (int j = 0; j < 5; j++)
			if (connect_once(&fk, cfg, "192.0.2.1", S(j), &v) !=
			    FG_ACT_CONTINUE)
				early++;
		is_int(early, 0, "window edge %zu: burst of 5 passes", i);
		connect_once(&fk, cfg, "192.0.2.1", cases[i].last, &v);
		is_int(v.action, cases[i].want, "window edge: 6th at %" PRId64
		       "ms", cases[i].last);
		if (v.rule != NULL)
			is_int(v.count, cases[i].count, "window edge: count 6");
		else
			is_int(fake_count(&fk, "192.0.2.1", FG_CNT_CONNECT, S(60),
			                  cases[i].last),
			       cases[i].count, "window edge: count 5");
		fake_free(&fk);
	}
	fg_config_release(cfg);
}

/* Shared rules: the other hosts' part counts, for shared rules only. */
struct shared_view {
	int64_t local, remote;
	int remote_calls;
};

static int64_t
sv_count(void *ctx, const char *key, enum fg_counter c, int64_t w, int64_t now)
{
	(void)key; (void)c; (void)w; (void)now;
	return ((struct shared_view *)ctx)->local;
}

static int64_t
sv_remote(void *ctx, const char *key, enum fg_counter c, int64_t w,
          int64_t now, int64_t local, int64_t limit, struct fg_remote *out)
{
	struct shared_view *sv = ctx;

	(void)key; (void)c; (void)w; (void)now; (void)local; (void)limit;
	sv->remote_calls++;
	out->count = sv->remote;
	out->age_ms = 180;
	out->nodes = 6;
	return sv->remote;
}

static void
test_shared_counts(void)
{
	struct fg_config *cfg = cfg_load(
		"shared = { backend = \"redis\"; node = \"mx1\"; };\n"
		"rules = ( { name = \"dict\"; type = \"invalid_recipients\";\n"
		"  limit = 20; window = \"1h\"; },\n"
		"  { name = \"local\"; type = \"recipient_rate\"; limit = 20;\n"
		"  window = \"1h\"; shared = false; } );\n");
	struct shared_view sv = {9, 14, 0};
	struct fg_view vw = {.ctx = &sv, .count = sv_count, .remote = sv_remote};
	struct fg_trace_rule tr[4];
	struct fg_trace trace = {tr, 4, 0};
	struct fg_verdict v;
	struct fg_facts f = {0};
	fg_addr a;
	char line[512];

	fg_addr_parse("192.0.2.7", &a);
	f.stage = FG_STAGE_RCPT;
	f.client = &a;
	f.rcpt = "<x@example.org>";
	f.rcpt_class = FG_RCPT_INVALID;
	f.session_invalid = 1;
	fg_policy_decide_traced(cfg, &f, &vw, S(1000), &v, &trace);
	is_int(v.action, FG_ACT_TEMPFAIL, "shared: 9 here + 14 elsewhere > 20");
	is_int(v.count, 23, "shared: the verdict's count is the sum");
	is_int(trace.n, 2, "shared: two rules traced");
	ok(tr[0].shared && tr[0].here == 9 && tr[0].remote.count == 14 &&
	   tr[0].remote.age_ms == 180 && tr[0].remote.nodes == 6,
	   "shared: the trace tells here, remote, age and hosts");
	ok(!tr[1].shared && tr[1].count == 9, "shared = false: local only");
	is_int(sv.remote_calls, 1, "shared: only the shared rule asks");
	fg_trace_describe(&tr[0], line, sizeof(line));
	ok(strstr(line, "here=9 remote=14 age=180ms") != NULL, "%s", line);
	fg_config_release(cfg);
}

/* The ratio guard: a big sender with 2% unknown recipients passes. */
static void
test_ratio_guard(void)
{
	struct fg_config *cfg = cfg_load(
		"rules = ( { name = \"dict\"; type = \"invalid_recipients\"; mask = false;\n"
		"  per = \"address\"; limit = 10; window = \"1h\";\n"
		"  ratio = 0.1; min_sample = 50; } );\n");
	struct fake fk = {0};
	struct fg_verdict v;
	struct sess s;
	int fired = 0, first = 0, invalid = 0;
	char rcpt[64];

	/* 50 sessions of 20 distinct recipients each. */
	for (int j = 1; j <= 1000; j++) {
		if (j % 20 == 1)
			sess_start(&fk, cfg, &s, "192.0.2.10", S(100) + S(j), &v);
		snprintf(rcpt, sizeof(rcpt), "<r%d@example.org>", j);
		sess_do(&fk, cfg, &s, FG_STAGE_RCPT, rcpt,
		        j % 50 == 0 ? FG_RCPT_INVALID : FG_RCPT_VALID,
		        S(100) + S(j), &v);
		if (v.action != FG_ACT_CONTINUE)
			fired++;
	}
	is_int(fired, 0, "ratio: 2%% invalid of 1000 passes");
	is_int(fake_count(&fk, "192.0.2.10", FG_CNT_RCPT_INVALID, S(3600),
	                  S(1100)), 20, "ratio: ... though 20 > limit 10");
	fake_free(&fk);

	sess_start(&fk, cfg, &s, "192.0.2.10", S(100), &v);
	for (int j = 1; j <= 100; j++) {
		enum fg_rcpt_class c = j % 5 < 3 ? FG_RCPT_INVALID : FG_RCPT_VALID;
		if (c == FG_RCPT_INVALID)
			invalid++;
		sess_do(&fk, cfg, &s, FG_STAGE_RCPT, "<r@example.org>", c,
		        S(100) + S(j), &v);
		if (v.action == FG_ACT_TEMPFAIL && first == 0)
			first = invalid;
	}
	is_int(first, 11, "ratio: 60%% invalid fires at the 11th unknown");
	is_int(v.action, FG_ACT_TEMPFAIL, "ratio: and keeps firing");
	fake_free(&fk);
	fg_config_release(cfg);

	/* min_sample: below it the guard does not speak. */
	static const struct {
		int64_t min_sample;
		enum fg_action want;
	} ms[] = {{50, FG_ACT_TEMPFAIL}, {0, FG_ACT_CONTINUE}};
	for (size_t i = 0; i < FG_NELEM(ms); i++) {
		char text[512];
		snprintf(text, sizeof(text),
		         "rules = ( { name = \"dict\"; type = \"invalid_recipients\"; mask = false;"
		         " per = \"address\"; limit = 10; window = \"1h\";"
		         " ratio = 0.9; min_sample = %" PRId64 "; } );",
		         ms[i].min_sample);
		cfg = cfg_load(text);
		sess_start(&fk, cfg, &s, "192.0.2.10", S(100), &v);
		for (int j = 1; j <= 20; j++) {
			snprintf(rcpt, sizeof(rcpt), "<r%d@example.org>", j);
			sess_do(&fk, cfg, &s, FG_STAGE_RCPT, rcpt,
			        j <= 9 ? FG_RCPT_VALID : FG_RCPT_INVALID,
			        S(100) + S(j), &v);
		}
		is_int(v.action, ms[i].want, "ratio: 11 of 20 at ratio 0.9, "
		       "min_sample %" PRId64, ms[i].min_sample);
		fake_free(&fk);
		fg_config_release(cfg);
	}
}

/* The shipped dictionary rule, without masking. */
static const char guard_conf[] =
	"rules = ( { name = \"dictionary\"; type = \"invalid_recipients\";\n"
	"  mask = false; per = \"network\"; limit = 20; window = \"1h\";\n"
	"  ratio = 0.3; min_sample = 50;\n"
	"  ladder = ( { over = 1; action = \"delay\"; delay = \"2s\";\n"
	"               growth = \"linear\"; },\n"
	"             { over = 10; action = \"tempfail\"; },\n"
	"             { over = 30; action = \"ban\"; ban = \"1h\"; } ); } );\n";

enum pad_form { PAD_SAME, PAD_DETAIL, PAD_DISTINCT };

/*
 * Sessions from the hosts of 198.51.100.0/24, one a minute, each sending
 * npad valid recipients of local part pad (the same each time, with a
 * +detail of its own, or distinct), then 3 unknown guesses.  Returns the
 * number of the first session refused before RCPT, or 0.
 */
static int
padded_harvest(const struct fg_config *cfg, const char *pad,
               enum pad_form form, int npad, int nsessions)
{
	struct fake fk = {0};
	struct fg_verdict v;
	struct sess s;
	char ip[32], rcpt[128];
	int refused = 0;

	for (int i = 1; i <= nsessions && refused == 0; i++) {
		int64_t t = S(1000) + MIN(i);

		snprintf(ip, sizeof(ip), "198.51.100.%d", 1 + i % 200);
		if (sess_start(&fk, cfg, &s, ip, t, &v) > FG_ACT_DELAY) {
			refused = i;
			break;
		}
		for (int j = 0; j < npad; j++) {
			if (form == PAD_SAME)
				snprintf(rcpt, sizeof(rcpt), "<%s@Example.org>",
				         pad);
			else
				snprintf(rcpt, sizeof(rcpt), "<%s%s%d-%d@example.org>",
				         pad, form == PAD_DETAIL ? "+" : "", i, j);
			sess_do(&fk, cfg, &s, FG_STAGE_RCPT, rcpt, FG_RCPT_VALID,
			        t + S(1 + j), &v);
		}
		for (int j = 0; j < 3; j++) {
			snprintf(rcpt, sizeof(rcpt), "<guess%d-%d@example.org>",
			         i, j);
			sess_do(&fk, cfg, &s, FG_STAGE_RCPT, rcpt,
			        FG_RCPT_INVALID, t + S(20 + j), &v);
		}
	}
	fake_free(&fk);
	return refused;
}

/*
 * Padding cannot hold the ratio guard: 8 role addresses (in any case,
 * with any +detail), or one address 8 times, beside 3 guesses per
 * session leave a sample of mostly unknown recipients, and the network
 * is refused once past the tempfail step (31 unknown: the 11th session).
 */
static void
test_ratio_padding(void)
{
	struct fg_config *cfg = cfg_load(guard_conf);
	static const struct {
		const char *pad;
		enum pad_form form;
		const char *what;
	} pads[] = {
		{"postmaster", PAD_SAME, "8 x postmaster"},
		{"PostMaster", PAD_DETAIL, "postmaster in another case and "
		 "+detail"},
		{"abuse", PAD_SAME, "abuse"},
		{"alice", PAD_SAME, "one valid address 8 times"},
		{"Alice", PAD_DETAIL, "one address, +detail"},
	};

	for (size_t i = 0; i < FG_NELEM(pads); i++)
		is_int(padded_harvest(cfg, pads[i].pad, pads[i].form, 8, 40), 11,
		       "padding: %s beside 3 guesses a session: refused at "
		       "the 11th session", pads[i].what);
	/* Distinct valid addresses count, up to the cap: 8 of them beside 3
	 * guesses is a sender with 27% unknown, guarded. */
	is_int(padded_harvest(cfg, "user", PAD_DISTINCT, 8, 40), 0,
	       "padding: 8 distinct valid recipients a session still count");
	fg_config_release(cfg);
	is_int(fg_session_role_address("<Hostmaster+x@example.org>"), 1,
	       "role: Hostmaster+x@");
	is_int(fg_session_role_address("postmaster"), 1, "role: bare postmaster");
	is_int(fg_session_role_address("<post.master@example.org>"), 0,
	       "role: post.master is not");
	is_int(fg_session_role_address("<bob@postmaster.example>"), 0,
	       "role: the domain does not count");
}

/*
 * A legitimate sender with 2% typos: 2,000 distinct recipients in
 * sessions of 1 to 20 recipients from one address over 40 minutes.  Its
 * 40 unknown recipients are twice the limit, yet the guard holds it.
 */
static void
test_ratio_typos(void)
{
	struct fg_config *cfg = cfg_load(guard_conf);
	struct fake fk = {0};
	struct fg_verdict v;
	struct sess s;
	char rcpt[64];
	int n = 0, refused = 0, sessions = 0;
	int64_t t = S(5000);

	while (n < 2000) {
		int size = 1 + sessions % 20;

		sessions++;
		if (sess_start(&fk, cfg, &s, "203.0.113.25", t, &v) != FG_ACT_CONTINUE)
			refused++;
		for (int j = 0; j < size && n < 2000; j++) {
			n++;
			snprintf(rcpt, sizeof(rcpt), "<user%d@example.org>", n);
			sess_do(&fk, cfg, &s, FG_STAGE_RCPT, rcpt,
			        n % 50 == 0 ? FG_RCPT_INVALID : FG_RCPT_VALID,
			        t + S(j), &v);
			if (v.action != FG_ACT_CONTINUE)
				refused++;
		}
		fg_session_close(s.s, t + S(size));
		t += S(12);
	}
	is_int(refused, 0, "typos: 2%% unknown over 2000 recipients in %d "
	       "sessions: never delayed or refused", sessions);
	is_int(fake_count(&fk, "203.0.113.0/24", FG_CNT_RCPT_INVALID, S(3600), t),
	       40, "typos: 40 unknown, over the limit of 20");
	ok(fake_count(&fk, "203.0.113.0/24", FG_CNT_RCPT_SAMPLE, S(3600), t) >=
	   1000, "typos: a sample of over 1000");
	fake_free(&fk);
	fg_config_release(cfg);
}

/* What one session adds to the sample: every unknown recipient, and at
 * most ratio_session_cap distinct valid ones that are no role. */
static void
test_ratio_session_cap(void)
{
	static const struct {
		const char *cap;
		int64_t want;
	} caps[] = {{"", 1 + 10}, {"ratio_session_cap = 3;\n", 1 + 3},
	            {"ratio_session_cap = 200;\n", 1 + 100}};
	char text[1024], rcpt[64];

	for (size_t i = 0; i < FG_NELEM(caps); i++) {
		struct fg_config *cfg;
		struct fake fk = {0};
		struct fg_verdict v;
		struct sess s;

		snprintf(text, sizeof(text), "%s%s", caps[i].cap, guard_conf);
		cfg = cfg_load(text);
		sess_start(&fk, cfg, &s, "192.0.2.44", S(100), &v);
		sess_do(&fk, cfg, &s, FG_STAGE_RCPT, "<nobody-here@example.org>",
		        FG_RCPT_INVALID, S(101), &v);
		for (int j = 0; j < 100; j++) {
			snprintf(rcpt, sizeof(rcpt), "<u%d@example.org>", j);
			sess_do(&fk, cfg, &s, FG_STAGE_RCPT, rcpt, FG_RCPT_VALID,
			        S(102), &v);
			sess_do(&fk, cfg, &s, FG_STAGE_RCPT, "<postmaster@x>",
			        FG_RCPT_VALID, S(102), &v);
		}
		sess_do(&fk, cfg, &s, FG_STAGE_RCPT, "<u1@example.org>",
		        FG_RCPT_REJECTED, S(103), &v);
		is_int(fake_count(&fk, "192.0.2.44", FG_CNT_RCPT_SAMPLE, S(3600),
		                  S(200)), caps[i].want,
		       "cap: %scounted %" PRId64, caps[i].cap[0] ? caps[i].cap
		                                                : "default ",
		       caps[i].want);
		is_int(fake_count(&fk, "192.0.2.44", FG_CNT_RCPT, S(3600),
		                  S(200)), 202, "cap: every recipient in rcpt");
		/* A second session starts afresh. */
		sess_start(&fk, cfg, &s, "192.0.2.44", S(300), &v);
		sess_do(&fk, cfg, &s, FG_STAGE_RCPT, "<u1@example.org>",
		        FG_RCPT_VALID, S(301), &v);
		is_int(fake_count(&fk, "192.0.2.44", FG_CNT_RCPT_SAMPLE, S(3600),
		                  S(400)), caps[i].want + 1,
		       "cap: a repeat in another session counts");
		fake_free(&fk);
		fg_config_release(cfg);
	}
}

/*
 * A rule on a shared key: the hosts of 198.51.100.0/24 say HELO
 * mx.shared.example 20 times, past the rule's limit of 10 and into its
 * ban; then a host of 203.0.113.0/24 uses the same name.  Acting on the
 * network, the ban lands on the attacker's pair only; acting on the key,
 * on the name, and the bystander is refused too.
 */
static void
test_act_on(void)
{
	static const struct {
		const char *act_on, *ban_key;
		enum fg_action bystander;
	} cases[] = {
		{"", "198.51.100.0/24,helo:mx.shared.example", FG_ACT_CONTINUE},
		{"act_on = \"network\";",
		 "198.51.100.0/24,helo:mx.shared.example", FG_ACT_CONTINUE},
		{"act_on = \"key\";", "helo:mx.shared.example",
		 FG_ACT_DISCONNECT},
	};
	char text[1024], ip[32];

	for (size_t i = 0; i < FG_NELEM(cases); i++) {
		struct fg_config *cfg;
		struct fake fk = {0};
		struct fg_verdict v;
		struct sess s;
		const char *ban = NULL;
		int64_t t = S(10000);
		struct fg_ban b;
		char bankey[FG_KEY_MAX] = "";

		snprintf(text, sizeof(text),
		         "rules = ( { name = \"shared-helo\"; type = \"helo_rate\";"
		         " per = \"helo\"; %s limit = 10; window = \"1h\";"
		         " ladder = ( { over = 1; action = \"tempfail\"; },"
		         " { over = 5; action = \"ban\"; ban = \"1h\"; } ); } );",
		         cases[i].act_on);
		cfg = cfg_load(text);
		for (int j = 1; j <= 20; j++) {
			snprintf(ip, sizeof(ip), "198.51.100.%d", j);
			sess_open(&s, ip);
			sess_do(&fk, cfg, &s, FG_STAGE_CONNECT, NULL, FG_RCPT_NONE,
			        t + S(j), &v);
			sess_do(&fk, cfg, &s, FG_STAGE_HELO, "MX.Shared.Example",
			        FG_RCPT_NONE, t + S(j), &v);
			if (v.ban.set && ban == NULL) {
				snprintf(bankey, sizeof(bankey), "%s", v.ban.key);
				ban = bankey;
			}
		}
		is_str(ban != NULL ? ban : "(none)", cases[i].ban_key,
		       "act_on %s: the ban lands on %s",
		       cases[i].act_on[0] ? cases[i].act_on : "(default)",
		       cases[i].ban_key);
		ok(fg_store_ban_get(fk.st, cases[i].ban_key, t + S(30), &b) == 1,
		   "act_on %s: ... and is stored", cases[i].act_on);
		is_int(v.action, FG_ACT_DISCONNECT,
		       "act_on %s: the attacker's network is refused",
		       cases[i].act_on);

		sess_open(&s, "203.0.113.5");
		sess_do(&fk, cfg, &s, FG_STAGE_CONNECT, NULL, FG_RCPT_NONE,
		        t + S(40), &v);
		sess_do(&fk, cfg, &s, FG_STAGE_HELO, "mx.shared.example",
		        FG_RCPT_NONE, t + S(40), &v);
		is_int(v.action, cases[i].bystander,
		       "act_on %s: another network with the same HELO: %s",
		       cases[i].act_on, fg_action_name(cases[i].bystander));
		/* The attacker with another name goes free either way. */
		sess_open(&s, "198.51.100.77");
		sess_do(&fk, cfg, &s, FG_STAGE_CONNECT, NULL, FG_RCPT_NONE,
		        t + S(41), &v);
		sess_do(&fk, cfg, &s, FG_STAGE_HELO, "other.example",
		        FG_RCPT_NONE, t + S(41), &v);
		is_int(v.action, FG_ACT_CONTINUE, "act_on %s: the attacker "
		       "under another name passes", cases[i].act_on);
		fake_free(&fk);
		fg_config_release(cfg);
	}
}

/*
 * Acting on the network: counts, levels and steps of global, domain and
 * HELO rules go under the pair, at the rule's prefix or else
 * network_prefix4/6; an unknown client has no such key.
 */
static void
test_act_on_keys(void)
{
	struct fg_config *cfg = cfg_load(
		"network_prefix4 = 28; network_prefix6 = 56;\n"
		"rules = (\n"
		" { name = \"g\"; type = \"connection_rate\"; per = \"global\";\n"
		"   limit = 3; window = \"1m\"; decay = \"1h\";\n"
		"   ladder = ( { over = 1; action = \"tempfail\"; },\n"
		"              { over = 2; action = \"disconnect\"; } ); },\n"
		" { name = \"h\"; type = \"helo_rate\"; per = \"helo\"; prefix4 = 16;\n"
		"   limit = 1; window = \"1m\"; },\n"
		" { name = \"d\"; type = \"recipient_rate\"; per = \"recipient_domain\";\n"
		"   limit = 1; window = \"1m\"; },\n"
		" { name = \"s\"; type = \"mail_rate\"; per = \"sender_domain\";\n"
		"   act_on = \"key\"; limit = 1; window = \"1m\"; } );\n");
	static const char *const want[] = {
		"192.0.2.7", "192.0.2.0/28", "sender-domain:example.net",
		"192.0.2.0/28,*",
		"192.0.0.0/16,helo:mx.example",
		"192.0.2.0/28,rcpt-domain:example.org",
	};
	char keys[FG_STORE_MAX_KEYS][FG_KEY_MAX];
	struct fake fk = {0};
	struct fg_verdict v;
	struct sess s;
	size_t n;
	bool same = true;
	int level;
	int64_t last;

	sess_open(&s, "192.0.2.7");
	s.f.stage = FG_STAGE_RCPT;
	s.f.helo = "MX.Example";
	s.f.sender = "<u@Example.NET>";
	s.f.rcpt = "<v@example.org>";
	n = fg_policy_event_keys(cfg, &s.f, keys, FG_STORE_MAX_KEYS);
	is_int(n, FG_NELEM(want), "act_on keys: %zu event keys", n);
	for (size_t i = 0; i < n && i < FG_NELEM(want); i++)
		if (strcmp(keys[i], want[i]) != 0) {
			printf("# key %zu: %s, want %s\n", i, keys[i], want[i]);
			same = false;
		}
	ok(same, "act_on keys: shared keys paired with the rule's network");
	sess_open(&s, NULL);
	s.f.helo = "mx.example";
	is_int(fg_policy_event_keys(cfg, &s.f, keys, FG_STORE_MAX_KEYS), 0,
	       "act_on keys: none for an unknown client");

	/* Five connects from 192.0.2.0/28 and five from 192.0.2.16/28. */
	for (int i = 0; i < 5; i++) {
		connect_once(&fk, cfg, "192.0.2.1", S(100) + i, &v);
		connect_once(&fk, cfg, "192.0.2.17", S(100) + i, &v);
	}
	is_int(v.action, FG_ACT_DISCONNECT, "act_on global: 5 > 3 of a /28");
	is_str(v.key, "192.0.2.16/28,*", "act_on global: the pair's key");
	is_int(fake_count(&fk, "192.0.2.0/28,*", FG_CNT_CONNECT, S(60), S(101)),
	       5, "act_on global: counted per network");
	ok(fg_store_level_get(fk.st, "g", "192.0.2.16/28,*", &level, &last) == 1 &&
	   level == 1, "act_on global: the level is the pair's");
	is_int(connect_once(&fk, cfg, "192.0.2.33", S(101), &v),
	       FG_ACT_CONTINUE, "act_on global: a third /28 passes");
	fake_free(&fk);
	fg_config_release(cfg);
}

/* A burst of n connects from ip starting at t, 100 ms apart; returns
 * the last verdict. */
static void
burst(struct fake *fk, const struct fg_config *cfg, const char *ip,
      int64_t t, int n, struct fg_verdict *v)
{
	for (int i = 0; i < n; i++)
		connect_once(fk, cfg, ip, t + 100 * i, v);
}

static void
test_escalation_decay(void)
{
	struct fg_config *cfg = cfg_load(
		"rules = ( { name = \"conn\"; type = \"connection_rate\";\n"
		"  per = \"address\"; limit = 3; window = \"1m\"; decay = \"10m\";\n"
		"  ladder = ( { over = 1; action = \"delay\"; delay = \"1s\"; },\n"
		"             { over = 3; action = \"tempfail\"; },\n"
		"             { over = 6; action = \"disconnect\"; } ); } );\n");
	struct fake fk = {0};
	struct fg_verdict v;
	const char *ip = "192.0.2.9";
	int64_t t = S(100000), t1;

	burst(&fk, cfg, ip, t, 3, &v);
	is_int(v.action, FG_ACT_CONTINUE, "escalation: 3 connects pass");
	burst(&fk, cfg, ip, t + 300, 1, &v);
	is_int(v.action, FG_ACT_DELAY, "escalation: 4th delayed");
	is_int(v.nlevels, 1, "escalation: level effect returned");
	is_int(v.levels[0].level, 0, "escalation: level 0");
	is_int(v.levels[0].last_ms, t + 300, "escalation: last = now");
	burst(&fk, cfg, ip, t + 400, 2, &v);
	is_int(v.action, FG_ACT_TEMPFAIL, "escalation: 6th tempfailed");
	is_int(v.levels[0].level, 1, "escalation: level 1 stored");

	/* Quiet for two minutes: the window empties. */
	t += MIN(2);
	burst(&fk, cfg, ip, t, 3, &v);
	ok(v.action == FG_ACT_CONTINUE && v.nlevels == 0,
	   "escalation: under the limit nothing fires, whatever the level");
	burst(&fk, cfg, ip, t + 300, 1, &v);
	is_int(v.action, FG_ACT_TEMPFAIL,
	       "escalation: next over-limit event resumes at tempfail");
	is_int(v.level, 1, "escalation: at level 1");
	t1 = t + 300;

	/* Quiet for two decay periods: back to the first step. */
	t = t1 + MIN(21);
	burst(&fk, cfg, ip, t, 4, &v);
	is_int(v.action, FG_ACT_DELAY, "decay: after 2 quiet periods, delay again");
	is_int(v.level, 0, "decay: level 0");
	fake_free(&fk);

	/* One step per decay period from the top of a 3-step ladder. */
	t = S(100000);
	burst(&fk, cfg, ip, t, 9, &v);
	is_int(v.action, FG_ACT_DISCONNECT, "decay: 9th connect disconnected");
	is_int(v.level, 2, "decay: level 2");
	t = t + 800 + MIN(10) + S(30);
	burst(&fk, cfg, ip, t, 4, &v);
	is_int(v.action, FG_ACT_TEMPFAIL, "decay: one period later, tempfail");
	is_int(v.level, 1, "decay: level 1");
	t = t + 300 + MIN(10) + S(30);
	burst(&fk, cfg, ip, t, 4, &v);
	is_int(v.action, FG_ACT_DELAY, "decay: another period, delay");
	is_int(v.level, 0, "decay: level 0 again");
	fake_free(&fk);
	fg_config_release(cfg);
}

/*
 * Escalation by persistence: a /24 refused at connect cannot add to its
 * count, so each refused connection moves it one step up: tempfail, then
 * ban on the next connection, then the ban itself refuses.
 */
static void
test_persistence(void)
{
	struct fg_config *cfg = cfg_load(
		"rules = ( { name = \"dict\"; type = \"invalid_recipients\"; mask = false;\n"
		"  limit = 5; window = \"1h\";\n"
		"  ladder = ( { over = 1; action = \"delay\"; delay = \"1s\"; },\n"
		"             { over = 2; action = \"tempfail\"; },\n"
		"             { over = 20; action = \"ban\"; ban = \"1h\"; } ); } );\n");
	struct fake fk = {0};
	struct fg_verdict v;
	struct sess s;
	int64_t t = S(200000);

	sess_start(&fk, cfg, &s, "198.51.100.7", t, &v);
	for (int i = 0; i < 7; i++) {
		char rcpt[64];
		snprintf(rcpt, sizeof(rcpt), "<guess%d@example.org>", i);
		sess_do(&fk, cfg, &s, FG_STAGE_RCPT, rcpt, FG_RCPT_INVALID,
		        t + i, &v);
	}
	is_int(v.action, FG_ACT_TEMPFAIL, "persistence: 7th invalid tempfailed");
	is_int(connect_once(&fk, cfg, "198.51.100.8", t + S(10), &v),
	       FG_ACT_TEMPFAIL, "persistence: next connection tempfailed");
	ok(v.nlevels == 1 && v.levels[0].level == 2,
	   "persistence: a refused connection moves the key one step up");
	is_int(connect_once(&fk, cfg, "198.51.100.9", t + S(20), &v),
	       FG_ACT_DISCONNECT, "persistence: the one after that is banned");
	ok(v.ban.set && strcmp(v.ban.key, "198.51.100.0/24") == 0,
	   "persistence: the ban is on the /24");
	connect_once(&fk, cfg, "198.51.100.10", t + S(30), &v);
	ok(v.banned, "persistence: then the ban refuses at connect");
	/* A quiet hour lifts the ban; the decay brings the level down. */
	is_int(connect_once(&fk, cfg, "198.51.100.11", t + MIN(61) + S(30), &v),
	       FG_ACT_CONTINUE, "persistence: after the window and ban, back in");
	fake_free(&fk);
	fg_config_release(cfg);
}

static void
test_overrides(void)
{
	static const struct {
		const char *ip;
		int n;              /* connects */
		int fires_at;       /* 0: never */
		int64_t limit;
	} cases[] = {
		{"192.0.2.1", 8, 6, 5},        /* sendmail-style "192.0.2" */
		{"192.0.2.200", 100, 0, 0},    /* /25 inside it: unlimited */
		{"198.51.100.1", 5, 3, 2},     /* the rule's own limit */
		{"2001:db8::1", 3, 2, 1},
		{"2001:db9::1", 3, 3, 2},
	};
	struct fg_config *cfg = cfg_load(
		"rules = ( { name = \"rate\"; type = \"connection_rate\";\n"
		"  limit = 2; window = \"1m\";\n"
		"  networks = ( { network = \"192.0.2\"; limit = 5; },\n"
		"               { network = \"192.0.2.128/25\"; limit = 0; },\n"
		"               { network = \"2001:db8::/32\"; limit = 1; } ); } );\n");

	for (size_t i = 0; i < FG_NELEM(cases); i++) {
		struct fake fk = {0};
		struct fg_verdict v;
		int first = 0;
		int64_t limit = -1;

		for (int j = 1; j <= cases[i].n; j++) {
			connect_once(&fk, cfg, cases[i].ip, S(1000) + j, &v);
			if (v.action != FG_ACT_CONTINUE && first == 0) {
				first = j;
				limit = v.limit;
			}
		}
		is_int(first, cases[i].fires_at, "overrides: %s fires at %d",
		       cases[i].ip, cases[i].fires_at);
		if (first != 0)
			is_int(limit, cases[i].limit, "overrides: %s limit %" PRId64,
			       cases[i].ip, cases[i].limit);
		fake_free(&fk);
	}
	fg_config_release(cfg);

	cfg = cfg_load("rules = ( { name = \"rate\"; type = \"connection_rate\";"
	               " limit = 0; window = \"1m\"; } );");
	{
		struct fake fk = {0};
		struct fg_verdict v;
		burst(&fk, cfg, "192.0.2.1", S(1000), 50, &v);
		ok(v.action == FG_ACT_CONTINUE && v.rule == NULL,
		   "overrides: limit 0 is unlimited");
		fake_free(&fk);
	}
	fg_config_release(cfg);
}

static void
test_exemptions(void)
{
	static const struct {
		const char *ip, *host, *daemon;
		bool auth;
		const char *reason; /* NULL: not exempt */
	} cases[] = {
		{"10.1.2.3", NULL, NULL, false, "exempt network"},
		{"2001:db8:ffff:1::1", NULL, NULL, false, "exempt network"},
		{"192.0.2.1", NULL, NULL, true, "authenticated"},
		{"192.0.2.1", "mx.example.org", NULL, false, "exempt hostname"},
		{"192.0.2.1", "MX.Example.ORG.", NULL, false, "exempt hostname"},
		{"192.0.2.1", "example.org", NULL, false, NULL},
		{"192.0.2.1", "example.net", NULL, false, "exempt hostname"},
		{"192.0.2.1", "a.b.example.net", NULL, false, "exempt hostname"},
		{"192.0.2.1", "badexample.net", NULL, false, NULL},
		{"192.0.2.1", "example.net.evil.test", NULL, false, NULL},
		{"192.0.2.1", "[192.0.2.1]", NULL, false, NULL},
		{"192.0.2.1", NULL, "MSA", false, "exempt daemon"},
		{"192.0.2.1", NULL, "msa", false, "exempt daemon"},
		{"192.0.2.1", NULL, "MTA", false, NULL},
		{"127.0.0.1", NULL, NULL, false, NULL}, /* list given: no loopback */
		{NULL, "mx.example.org", NULL, false, "exempt hostname"},
		{NULL, NULL, NULL, false, NULL},
	};
	struct fg_config *cfg = cfg_load(
		"exempt = { networks = [\"10.0.0.0/8\", \"2001:db8:ffff::/48\"];\n"
		"  hostnames = [\".example.org\", \"Example.NET\"];\n"
		"  daemons = [\"MSA\"]; };\n"
		"rules = ( { name = \"all\"; type = \"connection_rate\";\n"
		"  per = \"global\"; act_on = \"key\"; limit = 1; window = \"1m\"; } );\n");
	struct fake fk = {0};
	struct fg_view vw = fake_view(&fk);
	struct fg_verdict v;

	for (int i = 0; i < 10; i++)
		fake_add(&fk, S(1000), "*", FG_CNT_CONNECT);
	fake_set_ban(&fk, "10.1.2.3", S(999999));
	for (size_t i = 0; i < FG_NELEM(cases); i++) {
		struct sess s;
		sess_open(&s, cases[i].ip);
		s.f.client_host = cases[i].host;
		s.f.daemon_name = cases[i].daemon;
		s.f.authenticated = cases[i].auth;
		decide_direct(cfg, &s, &vw, S(1000), &v);
		if (cases[i].reason != NULL) {
			ok(v.exempt && v.action == FG_ACT_CONTINUE &&
			   v.rule == NULL && !v.banned && v.nlevels == 0 &&
			   v.exempt_reason != NULL &&
			   strcmp(v.exempt_reason, cases[i].reason) == 0,
			   "exempt: %s host=%s daemon=%s auth=%d: %s",
			   cases[i].ip ? cases[i].ip : "-",
			   cases[i].host ? cases[i].host : "-",
			   cases[i].daemon ? cases[i].daemon : "-",
			   cases[i].auth, cases[i].reason);
		} else {
			ok(!v.exempt && v.exempt_reason == NULL &&
			   v.action == FG_ACT_DISCONNECT,
			   "not exempt: %s host=%s daemon=%s auth=%d",
			   cases[i].ip ? cases[i].ip : "-",
			   cases[i].host ? cases[i].host : "-",
			   cases[i].daemon ? cases[i].daemon : "-",
			   cases[i].auth);
		}
	}
	fg_config_release(cfg);

	/* Defaults: the loopback; authenticated on, unless turned off. */
	cfg = cfg_load("exempt = { authenticated = false; };\n"
	               "rules = ( { name = \"all\"; type = \"connection_rate\";\n"
	               "  per = \"global\"; act_on = \"key\"; limit = 1; window = \"1m\"; } );\n");
	{
		struct sess s;
		sess_open(&s, "127.0.0.1");
		decide_direct(cfg, &s, &vw, S(1000), &v);
		ok(v.exempt && strcmp(v.exempt_reason, "exempt network") == 0,
		   "exempt: loopback by default");
		sess_open(&s, "::1");
		decide_direct(cfg, &s, &vw, S(1000), &v);
		ok(v.exempt, "exempt: ::1 by default");
		sess_open(&s, "192.0.2.1");
		s.f.authenticated = true;
		decide_direct(cfg, &s, &vw, S(1000), &v);
		ok(!v.exempt && v.action == FG_ACT_DISCONNECT,
		   "exempt: authenticated = false checks AUTH clients");
	}
	fg_config_release(cfg);
	fake_free(&fk);
}

static void
test_ipv6_aggregation(void)
{
	static const struct {
		const char *ip;
		int rcpts;
		enum fg_action last;
		const char *key;
		int64_t count;
	} steps[] = {
		{"2001:db8:1:2::1", 2, FG_ACT_CONTINUE, NULL, 0},
		{"2001:db8:1:2::ff", 1, FG_ACT_CONTINUE, NULL, 0},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", 1, FG_ACT_TEMPFAIL,
		 "2001:db8:1:2::/64", 4},
		{"2001:db8:1:3::1", 3, FG_ACT_CONTINUE, NULL, 0},
		{"2001:db8:1:3::2", 1, FG_ACT_TEMPFAIL, "2001:db8:1:3::/64", 4},
	};
	struct fg_config *cfg = cfg_load(
		"rules = ( { name = \"dict6\"; type = \"invalid_recipients\"; mask = false;\n"
		"  limit = 3; window = \"1h\"; } );\n");
	struct fake fk = {0};
	struct fg_verdict v;
	char keys[FG_STORE_MAX_KEYS][FG_KEY_MAX];
	struct sess s;
	size_t n;

	for (size_t i = 0; i < FG_NELEM(steps); i++) {
		sess_start(&fk, cfg, &s, steps[i].ip, S(1000) + (int64_t)i, &v);
		for (int j = 0; j < steps[i].rcpts; j++)
			sess_do(&fk, cfg, &s, FG_STAGE_RCPT, "<u@example.org>",
			        FG_RCPT_INVALID, S(1001) + (int64_t)i, &v);
		is_int(v.action, steps[i].last, "ipv6: %s after %d unknown",
		       steps[i].ip, steps[i].rcpts);
		if (steps[i].key != NULL) {
			is_str(v.key, steps[i].key, "ipv6: counted per /64");
			is_int(v.count, steps[i].count, "ipv6: count %" PRId64,
			       steps[i].count);
		}
	}
	sess_open(&s, "2001:db8:1:2::1");
	n = fg_policy_event_keys(cfg, &s.f, keys, FG_STORE_MAX_KEYS);
	is_int(n, 2, "ipv6: two event keys");
	is_str(keys[0], "2001:db8:1:2::1", "ipv6: address key");
	is_str(keys[1], "2001:db8:1:2::/64", "ipv6: /64 key");
	fake_free(&fk);
	fg_config_release(cfg);
}

static void
test_monitor(void)
{
	struct fg_config *cfg = cfg_load(
		"monitor = true;\n"
		"rules = ( { name = \"conn\"; type = \"connection_rate\";\n"
		"  per = \"address\"; limit = 1; window = \"1m\";\n"
		"  ladder = ( { over = 1; action = \"delay\"; delay = \"2s\"; },\n"
		"             { over = 3; action = \"ban\"; ban = \"1h\"; } ); } );\n");
	struct fake fk = {0};
	struct fg_verdict v;

	connect_once(&fk, cfg, "192.0.2.1", S(100), &v);
	connect_once(&fk, cfg, "192.0.2.1", S(100), &v);
	ok(v.monitor && v.action == FG_ACT_CONTINUE && v.delay_ms == 0 &&
	   v.nlevels == 0 && !v.ban.set && v.rule != NULL &&
	   v.step == &v.rule->steps[0],
	   "monitor (global): a delay is computed, not enforced");
	burst(&fk, cfg, "192.0.2.1", S(101), 5, &v);
	ok(v.monitor && v.action == FG_ACT_CONTINUE && !v.ban.set &&
	   v.nlevels == 0 && v.level == 1 && v.code == 0 &&
	   v.step->action == FG_ACT_BAN,
	   "monitor (global): a ban is reported, not set");
	fake_set_ban(&fk, "192.0.2.1", S(999999));
	connect_once(&fk, cfg, "192.0.2.1", S(102), &v);
	ok(v.monitor && v.banned && v.action == FG_ACT_CONTINUE,
	   "monitor (global): an existing ban is reported, not enforced");
	fake_free(&fk);
	fg_config_release(cfg);

	cfg = cfg_load(
		"rules = (\n"
		" { name = \"watch\"; type = \"connection_rate\"; per = \"address\";\n"
		"   limit = 1; window = \"1m\"; monitor = true;\n"
		"   ladder = ( { over = 1; action = \"tempfail\"; },\n"
		"              { over = 2; action = \"ban\"; ban = \"1h\"; } ); },\n"
		" { name = \"enforce\"; type = \"connection_rate\"; per = \"address\";\n"
		"   limit = 5; window = \"1m\"; action = \"tempfail\"; } );\n");
	burst(&fk, cfg, "192.0.2.1", S(100), 3, &v);
	ok(v.monitor && v.action == FG_ACT_CONTINUE && !v.ban.set &&
	   v.nlevels == 0 && strcmp(v.rule->name, "watch") == 0,
	   "monitor (rule): reported when nothing else fires");
	burst(&fk, cfg, "192.0.2.1", S(101), 3, &v);
	ok(!v.monitor && v.action == FG_ACT_TEMPFAIL && !v.ban.set &&
	   strcmp(v.rule->name, "enforce") == 0,
	   "monitor (rule): an enforcing rule wins, the monitor bans nothing");
	is_int(fg_store_ban_get(fake_store(&fk), "192.0.2.1", S(102), NULL), 0,
	       "monitor: no ban stored");
	fake_free(&fk);
	fg_config_release(cfg);
}

/* One unknown recipient of a session that had n of them. */
static void
bad_rcpt(const struct fg_config *cfg, int64_t n, int64_t delayed,
         struct fg_verdict *v)
{
	struct fg_facts f = {0};
	fg_addr a;

	fg_addr_parse("192.0.2.1", &a);
	f.stage = FG_STAGE_RCPT;
	f.client = &a;
	f.rcpt = "<nobody@example.org>";
	f.rcpt_class = FG_RCPT_INVALID;
	f.session_invalid = n;
	f.message_rcpts = 1;
	f.delayed_sessions = delayed;
	fg_policy_decide(cfg, &f, NULL, S(1000), v);
}

static void
test_delay_budget(void)
{
	struct fg_config *cfg = cfg_load(
		"max_delayed_sessions = 3;\n"
		"rules = ( { name = \"brt\"; type = \"bad_recipient_throttle\";"
		" limit = 1; } );\n");
	struct fg_verdict v;

	bad_rcpt(cfg, 2, 2, &v);
	ok(v.action == FG_ACT_DELAY && v.delay_ms == 1000 && !v.delay_skipped &&
	   v.code == 0, "budget: under the cap, delay 1s then continue");
	bad_rcpt(cfg, 2, 3, &v);
	ok(v.action == FG_ACT_TEMPFAIL && v.delay_ms == 0 && v.delay_skipped &&
	   v.code == 451 && strcmp(v.status, "4.7.1") == 0,
	   "budget: at the cap, the delay becomes tempfail");
	fg_config_release(cfg);

	cfg = cfg_load("max_delayed_sessions = 0;\n"
	               "rules = ( { name = \"brt\"; type = \"bad_recipient_throttle\";"
	               " limit = 1; } );\n");
	bad_rcpt(cfg, 2, 0, &v);
	ok(v.action == FG_ACT_TEMPFAIL && v.delay_skipped,
	   "budget: max_delayed_sessions 0 turns delays off");
	fg_config_release(cfg);

	cfg = cfg_load("max_delayed_sessions = 3;\n"
	               "rules = ( { name = \"brt\"; type = \"bad_recipient_throttle\";"
	               " limit = 1; then = \"reject\"; } );\n");
	bad_rcpt(cfg, 2, 0, &v);
	ok(v.action == FG_ACT_DELAY && v.delay_ms == 1000 && v.code == 550 &&
	   v.step->then == FG_ACT_REJECT,
	   "budget: delay then reject carries the 550 for afterwards");
	bad_rcpt(cfg, 2, 5, &v);
	ok(v.action == FG_ACT_REJECT && v.delay_skipped && v.code == 550,
	   "budget: at the cap, the then-action at once");
	fg_config_release(cfg);

	cfg = cfg_load("max_delay = \"0s\";\n"
	               "rules = ( { name = \"brt\"; type = \"bad_recipient_throttle\";"
	               " limit = 1; } );\n");
	bad_rcpt(cfg, 2, 0, &v);
	ok(v.action == FG_ACT_TEMPFAIL && v.delay_skipped,
	   "budget: max_delay 0 skips delays too");
	fg_config_release(cfg);
}

static void
test_delay_growth(void)
{
	static const struct {
		const char *growth;
		int64_t want[9]; /* n = 1..9 */
	} cases[] = {
		{"fixed", {1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000}},
		{"linear", {1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 8000}},
		{"doubling", {1000, 2000, 4000, 8000, 8000, 8000, 8000, 8000, 8000}},
	};

	for (size_t i = 0; i < FG_NELEM(cases); i++) {
		char text[512];
		struct fg_config *cfg;
		struct fg_verdict v;
		int bad = 0;

		snprintf(text, sizeof(text),
		         "rules = ( { name = \"brt\"; type = \"bad_recipient_throttle\";"
		         " limit = 2; action = \"delay\"; delay = \"1s\";"
		         " growth = \"%s\"; } );", cases[i].growth);
		cfg = cfg_load(text);
		for (int n = 1; n <= 9; n++) {
			bad_rcpt(cfg, 2 + n, 0, &v);
			if (v.action != FG_ACT_DELAY || v.delay_ms != cases[i].want[n - 1]) {
				printf("# %s n=%d: action %d delay %" PRId64 "\n",
				       cases[i].growth, n, v.action, v.delay_ms);
				bad++;
			}
		}
		is_int(bad, 0, "growth %s: 9 steps, capped at max_delay 8s",
		       cases[i].growth);
		bad_rcpt(cfg, INT64_C(1000000000000), 0, &v);
		is_int(v.delay_ms, cases[i].want[8], "growth %s: huge n stays "
		       "capped", cases[i].growth);
		bad_rcpt(cfg, 2, 0, &v);
		ok(v.action == FG_ACT_CONTINUE && v.rule == NULL,
		   "growth %s: at the limit nothing", cases[i].growth);
		fg_config_release(cfg);
	}
}

static void
test_bad_recipient_throttle(void)
{
	struct fg_config *cfg = cfg_load(
		"rules = ( { name = \"brt\"; type = \"bad_recipient_throttle\";"
		" limit = 2; } );\n");
	struct fake fk = {0};
	struct fg_verdict v;
	struct sess s;
	static const struct {
		enum fg_rcpt_class cls;
		enum fg_action want;
		int64_t delay;
	} seq[] = {
		{FG_RCPT_INVALID, FG_ACT_CONTINUE, 0},
		{FG_RCPT_VALID, FG_ACT_CONTINUE, 0},
		{FG_RCPT_INVALID, FG_ACT_CONTINUE, 0},
		{FG_RCPT_INVALID, FG_ACT_DELAY, 1000},   /* 3rd unknown */
		{FG_RCPT_INVALID, FG_ACT_DELAY, 2000},
		{FG_RCPT_VALID, FG_ACT_CONTINUE, 0},     /* valid: not throttled */
		{FG_RCPT_REJECTED, FG_ACT_CONTINUE, 0},
		{FG_RCPT_INVALID, FG_ACT_DELAY, 3000},
	};

	sess_start(&fk, cfg, &s, "192.0.2.1", S(100), &v);
	for (size_t i = 0; i < FG_NELEM(seq); i++) {
		sess_do(&fk, cfg, &s, FG_STAGE_RCPT, "<x@example.org>", seq[i].cls,
		        S(101) + (int64_t)i, &v);
		ok(v.action == seq[i].want && v.delay_ms == seq[i].delay,
		   "bad_recipient_throttle: recipient %zu: %s %" PRId64 "ms",
		   i + 1, fg_action_name(seq[i].want), seq[i].delay);
	}
	is_str(v.key, "session", "bad_recipient_throttle: key text session");
	is_int(v.count, 5, "bad_recipient_throttle: count is the session's");
	is_int(v.nlevels, 0, "bad_recipient_throttle: no levels per session");
	fake_free(&fk);
	fg_config_release(cfg);

	/* Seed 004: the reply says how long the throttle was. */
	cfg = cfg_load(
		"rules = ( { name = \"brt\"; type = \"bad_recipient_throttle\";\n"
		"  limit = 2; then = \"tempfail\";\n"
		"  reply = { code = 450; status = \"4.1.1\"; text = [\n"
		"    \"bad recipient throttling in effect (${delay} second delay)\",\n"
		"    \"bad recipient\" ]; }; } );\n");
	bad_rcpt(cfg, 4, 0, &v);
	is_int(v.action, FG_ACT_DELAY, "throttle reply: delay");
	is_int(v.delay_ms, 2000, "throttle reply: 2s");
	is_int(v.code, 450, "throttle reply: code for afterwards");
	is_str(v.status, "4.1.1", "throttle reply: status");
	is_int(v.nlines, 2, "throttle reply: two lines");
	is_str(v.lines[0], "bad recipient throttling in effect (2 second delay)",
	       "throttle reply: ${delay} expanded");
	is_str(v.lines[1], "bad recipient", "throttle reply: second line");
	fg_config_release(cfg);
}

static void
test_recipients_per_message(void)
{
	struct fg_config *cfg = cfg_load(
		"rules = ( { name = \"maxrcpt\"; type = \"recipients_per_message\";"
		" limit = 10; } );\n");
	struct fake fk = {0};
	struct fg_verdict v;
	struct sess s;
	int first = 0, after = 0;

	sess_start(&fk, cfg, &s, "192.0.2.1", S(100), &v);
	for (int i = 1; i <= 15; i++) {
		sess_do(&fk, cfg, &s, FG_STAGE_RCPT, "<x@example.org>",
		        i % 2 ? FG_RCPT_VALID : FG_RCPT_INVALID, S(101), &v);
		if (v.action != FG_ACT_CONTINUE && first == 0) {
			first = i;
			is_int(v.action, FG_ACT_TEMPFAIL, "rcpts/message: tempfail");
			is_int(v.code, 452, "rcpts/message: 452");
			is_str(v.status, "4.5.3", "rcpts/message: 4.5.3");
			is_int(v.nlines, 1, "rcpts/message: one line");
			is_str(v.lines[0], "Too many recipients",
			       "rcpts/message: text");
		}
		if (i > 11 && v.code == 452)
			after++;
	}
	is_int(first, 11, "rcpts/message: from recipient 11");
	is_int(after, 4, "rcpts/message: and every one after");
	sess_do(&fk, cfg, &s, FG_STAGE_MAIL, "<b@example.net>", FG_RCPT_NONE,
	        S(102), &v);
	sess_do(&fk, cfg, &s, FG_STAGE_RCPT, "<x@example.org>", FG_RCPT_VALID,
	        S(102), &v);
	is_int(v.action, FG_ACT_CONTINUE, "rcpts/message: a new message starts over");
	fake_free(&fk);
	fg_config_release(cfg);
}

static void
test_bans(void)
{
	static const struct {
		enum fg_stage stage;
		const char *ip, *helo;
		const char *key; /* NULL: not banned */
	} cases[] = {
		{FG_STAGE_CONNECT, "192.0.2.7", NULL, "192.0.2.7"},
		{FG_STAGE_CONNECT, "192.0.2.8", NULL, NULL},
		{FG_STAGE_CONNECT, "198.51.100.9", NULL, "198.51.100.0/24"},
		{FG_STAGE_CONNECT, "203.0.113.5", NULL, "203.0.0.0/16"},
		{FG_STAGE_CONNECT, "2001:db8::5", NULL, "2001:db8::/64"},
		{FG_STAGE_CONNECT, "2001:db8:0:1::5", NULL, NULL},
		{FG_STAGE_CONNECT, "192.0.2.66", NULL, NULL}, /* expired */
		{FG_STAGE_HELO, "192.0.2.8", "BAD.example", "helo:bad.example"},
		{FG_STAGE_RCPT, "192.0.2.8", "bad.example", "helo:bad.example"},
		{FG_STAGE_MAIL, "192.0.2.7", "good.example", "192.0.2.7"},
		{FG_STAGE_HELO, NULL, "bad.example", "helo:bad.example"},
		{FG_STAGE_CONNECT, NULL, NULL, NULL},
	};
	const char *rules =
		"rules = ( { name = \"dict16\"; type = \"invalid_recipients\"; mask = false;\n"
		"  per = \"network\"; prefix4 = 16; limit = 100; window = \"1h\"; } );\n";
	char text[1024];
	struct fg_config *cfg = cfg_load(rules);
	struct fake fk = {0};
	struct fg_view vw = fake_view(&fk);
	struct fg_verdict v;

	fake_set_ban(&fk, "192.0.2.7", S(5000));
	fake_set_ban(&fk, "198.51.100.0/24", S(5000));
	fake_set_ban(&fk, "203.0.0.0/16", S(5000));
	fake_set_ban(&fk, "2001:db8::/64", S(5000));
	fake_set_ban(&fk, "helo:bad.example", S(5000));
	fake_set_ban(&fk, "192.0.2.66", S(1000));
	for (size_t i = 0; i < FG_NELEM(cases); i++) {
		struct sess s;
		sess_open(&s, cases[i].ip);
		s.f.stage = cases[i].stage;
		s.f.helo = cases[i].helo;
		decide_direct(cfg, &s, &vw, S(2000), &v);
		if (cases[i].key != NULL)
			ok(v.banned && strcmp(v.key, cases[i].key) == 0 &&
			   v.action == FG_ACT_DISCONNECT && v.code == 421 &&
			   strcmp(v.status, "4.7.0") == 0 && v.rule == NULL &&
			   !v.ban.set,
			   "ban: %s %s helo=%s by %s", fg_stage_name(cases[i].stage),
			   cases[i].ip ? cases[i].ip : "-",
			   cases[i].helo ? cases[i].helo : "-", cases[i].key);
		else
			ok(!v.banned && v.action == FG_ACT_CONTINUE,
			   "ban: %s %s not banned", fg_stage_name(cases[i].stage),
			   cases[i].ip ? cases[i].ip : "-");
	}
	/* Bans at any prefix length, longest first; domain bans at the
	 * stage where the domain is known. */
	fake_set_ban(&fk, "198.51.96.0/20", S(5000));
	fake_set_ban(&fk, "2001:db8:1::/48", S(5000));
	fake_set_ban(&fk, "10.0.0.0/8", S(5000));
	fake_set_ban(&fk, "sender-domain:spam.example", S(5000));
	fake_set_ban(&fk, "rcpt-domain:victim.example", S(5000));
	{
		static const struct {
			enum fg_stage stage;
			const char *ip, *sender, *rcpt, *key;
		} any[] = {
			{FG_STAGE_CONNECT, "198.51.97.5", NULL, NULL, "198.51.96.0/20"},
			{FG_STAGE_CONNECT, "198.51.100.5", NULL, NULL, "198.51.100.0/24"},
			{FG_STAGE_CONNECT, "198.51.112.5", NULL, NULL, NULL},
			{FG_STAGE_CONNECT, "2001:db8:1:2::5", NULL, NULL, "2001:db8:1::/48"},
			{FG_STAGE_CONNECT, "10.200.3.4", NULL, NULL, "10.0.0.0/8"},
			{FG_STAGE_MAIL, "192.0.2.9", "<a@spam.example>", NULL,
			 "sender-domain:spam.example"},
			{FG_STAGE_HELO, "192.0.2.9", "<a@spam.example>", NULL, NULL},
			{FG_STAGE_RCPT, "192.0.2.9", "<a@ok.example>",
			 "<b@victim.example>", "rcpt-domain:victim.example"},
			{FG_STAGE_MAIL, "192.0.2.9", "<a@ok.example>",
			 "<b@victim.example>", NULL},
		};
		for (size_t i = 0; i < FG_NELEM(any); i++) {
			struct sess s;
			sess_open(&s, any[i].ip);
			s.f.stage = any[i].stage;
			s.f.sender = any[i].sender;
			s.f.rcpt = any[i].rcpt;
			decide_direct(cfg, &s, &vw, S(2000), &v);
			if (any[i].key != NULL)
				ok(v.banned && strcmp(v.key, any[i].key) == 0,
				   "ban at any length: %s %s by %s",
				   fg_stage_name(any[i].stage), any[i].ip,
				   any[i].key);
			else
				ok(!v.banned, "ban at any length: %s %s not banned",
				   fg_stage_name(any[i].stage), any[i].ip);
		}
	}
	{
		const char *why = NULL;

		ok(fg_policy_ban_checked(cfg, "198.51.96.0/20", &why) == 1 &&
		   fg_policy_ban_checked(cfg, "2001:db8::/48", &why) == 1 &&
		   fg_policy_ban_checked(cfg, "rcpt-domain:x.example", &why) == 1,
		   "ban_checked: any network length, domains");
		ok(fg_policy_ban_checked(cfg, "*", &why) == 0 && why != NULL,
		   "ban_checked: not the global key (%s)", why ? why : "-");
		ok(fg_policy_ban_checked(cfg, "10.0.0.0/7", &why) == 0,
		   "ban_checked: not an IPv4 network shorter than /8");
	}
	fg_config_release(cfg);

	snprintf(text, sizeof(text),
	         "banned_action = \"reject\";\n"
	         "banned_reply = { code = 554; status = \"5.7.1\";"
	         " text = \"You are banned\"; };\n%s", rules);
	cfg = cfg_load(text);
	{
		struct sess s;
		sess_open(&s, "192.0.2.7");
		decide_direct(cfg, &s, &vw, S(2000), &v);
		ok(v.banned && v.action == FG_ACT_REJECT && v.code == 554 &&
		   v.nlines == 1 && strcmp(v.lines[0], "You are banned") == 0,
		   "ban: banned_action reject with banned_reply");
	}
	fg_config_release(cfg);
	cfg = cfg_load("banned_action = \"tempfail\";\n");
	{
		struct sess s;
		sess_open(&s, "192.0.2.7");
		decide_direct(cfg, &s, &vw, S(2000), &v);
		ok(v.banned && v.action == FG_ACT_TEMPFAIL && v.code == 451,
		   "ban: banned_action tempfail, default 451");
	}
	fg_config_release(cfg);
	fake_free(&fk);
}

static void
test_null_client(void)
{
	struct fg_config *cfg = cfg_load(
		"rules = (\n"
		" { name = \"addr\"; type = \"connection_rate\"; per = \"address\";\n"
		"   limit = 1; window = \"1m\"; },\n"
		" { name = \"net\"; type = \"invalid_recipients\"; mask = false; limit = 1;\n"
		"   window = \"1m\"; },\n"
		" { name = \"all\"; type = \"connection_rate\"; per = \"global\"; act_on = \"key\";\n"
		"   limit = 3; window = \"1m\"; action = \"tempfail\"; },\n"
		" { name = \"max\"; type = \"recipients_per_message\"; limit = 2; } );\n");
	struct fake fk = {0};
	struct fg_verdict v;
	char keys[FG_STORE_MAX_KEYS][FG_KEY_MAX];
	struct sess s;
	int first = 0;

	for (int i = 1; i <= 5; i++) {
		connect_once(&fk, cfg, NULL, S(100) + i, &v);
		if (v.action != FG_ACT_CONTINUE && first == 0) {
			first = i;
			ok(strcmp(v.rule->name, "all") == 0 &&
			   strcmp(v.key, "*") == 0, "null client: global rule, key *");
		}
	}
	is_int(first, 4, "null client: only the global rule counts");
	sess_open(&s, NULL);
	s.f.helo = "x.example";
	is_int(fg_policy_event_keys(cfg, &s.f, keys, FG_STORE_MAX_KEYS), 1,
	       "null client: one event key");
	is_str(keys[0], "*", "null client: the global key");

	fake_free(&fk);
	sess_open(&s, NULL);
	sess_do(&fk, cfg, &s, FG_STAGE_MAIL, "<a@b.example>", FG_RCPT_NONE,
	        S(100), &v);
	for (int i = 0; i < 3; i++)
		sess_do(&fk, cfg, &s, FG_STAGE_RCPT, "<x@example.org>",
		        FG_RCPT_INVALID, S(100), &v);
	ok(v.action == FG_ACT_TEMPFAIL && v.code == 452 &&
	   strcmp(v.rule->name, "max") == 0,
	   "null client: recipients_per_message still applies");
	fake_free(&fk);
	fg_config_release(cfg);
}

static void
test_concurrency(void)
{
	struct fg_config *cfg = cfg_load(
		"rules = ( { name = \"conc\"; type = \"concurrency\"; limit = 2; } );\n");
	struct fake fk = {0};
	struct fg_verdict v;

	connect_once(&fk, cfg, "192.0.2.1", S(1), &v);
	connect_once(&fk, cfg, "192.0.2.1", S(2), &v);
	is_int(v.action, FG_ACT_CONTINUE, "concurrency: 2 sessions pass");
	connect_once(&fk, cfg, "192.0.2.1", S(3), &v);
	ok(v.action == FG_ACT_DISCONNECT && v.count == 3 && v.code == 421 &&
	   v.window_ms == 0, "concurrency: the 3rd is disconnected");
	connect_once(&fk, cfg, "192.0.2.2", S(3), &v);
	is_int(v.action, FG_ACT_CONTINUE, "concurrency: per address");
	fake_free(&fk);
	fg_config_release(cfg);
}

/*
 * A concurrency slot the store could not give (fg_store_conn_acquire
 * failing: out of memory) is not the session's to give back.  The
 * failure is injected at the store's interface: this program is linked
 * with --wrap=fg_store_conn_acquire (t/CMakeLists.txt), so the session's
 * calls come here first.
 */
static const char *acquire_fail_key;  /* NULL: every acquire is real */

int64_t __real_fg_store_conn_acquire(fg_store *st, const char *key);
int64_t __wrap_fg_store_conn_acquire(fg_store *st, const char *key);

int64_t
__wrap_fg_store_conn_acquire(fg_store *st, const char *key)
{
	if (acquire_fail_key != NULL && strcmp(key, acquire_fail_key) == 0)
		return FG_ENOMEM;
	return __real_fg_store_conn_acquire(st, key);
}

static void
test_concurrency_acquire_failure(void)
{
	struct fg_config *cfg = cfg_load(
		"rules = ( { name = \"conc\"; type = \"concurrency\"; limit = 1; } );\n");
	struct fake fk = {0};
	struct fg_verdict v;
	struct sess a, b, c;

	sess_open(&a, "192.0.2.1");
	sess_do(&fk, cfg, &a, FG_STAGE_CONNECT, NULL, FG_RCPT_NONE, S(1), &v);
	is_int(fg_store_conn_count(fk.st, "192.0.2.1"), 1,
	       "acquire failure: the first session holds its slot");
	acquire_fail_key = "192.0.2.1";
	sess_open(&b, "192.0.2.1");
	sess_do(&fk, cfg, &b, FG_STAGE_CONNECT, NULL, FG_RCPT_NONE, S(2), &v);
	acquire_fail_key = NULL;
	is_int(fg_store_conn_count(fk.st, "192.0.2.1"), 1,
	       "... a second whose acquire failed holds none");
	fg_session_close(b.s, S(3));
	is_int(fg_store_conn_count(fk.st, "192.0.2.1"), 1,
	       "... and its close leaves the first session's slot alone");
	sess_open(&c, "192.0.2.1");
	sess_do(&fk, cfg, &c, FG_STAGE_CONNECT, NULL, FG_RCPT_NONE, S(4), &v);
	ok(v.action == FG_ACT_DISCONNECT && v.count == 2,
	   "... so a third session is still over the limit (%s, count %" PRId64
	   ")", fg_action_name(v.action), v.count);
	fg_session_close(a.s, S(5));
	fg_session_close(c.s, S(5));
	is_int(fg_store_conn_count(fk.st, "192.0.2.1"), 0,
	       "... and when all have closed, no slot is left");
	fake_free(&fk);
	fg_config_release(cfg);
}

/* Rules that all count connects per address with limit 1: two connects
 * make every one of them fire. */
static void
test_most_severe(void)
{
	static const char *const steps[] = {
		/* 0 */ "action = \"delay\"; delay = \"2s\";",
		/* 1 */ "action = \"delay\"; delay = \"5s\";",
		/* 2 */ "action = \"tempfail\";",
		/* 3 */ "action = \"reject\";",
		/* 4 */ "action = \"delay\"; delay = \"1s\"; then = \"tempfail\";",
		/* 5 */ "action = \"disconnect\";",
		/* 6 */ "action = \"ban\"; ban = \"10m\";",
	};
	static const struct {
		int a, b, c;         /* steps of rules r0, r1, r2 (-1: none) */
		int winner;          /* index of the rule that decides */
		enum fg_action action;
		const char *what;
	} cases[] = {
		{0, 1, -1, 1, FG_ACT_DELAY, "two delays: the longer"},
		{1, 0, -1, 0, FG_ACT_DELAY, "two delays: the longer, first"},
		{0, 2, -1, 1, FG_ACT_TEMPFAIL, "tempfail beats delay"},
		{2, 2, -1, 0, FG_ACT_TEMPFAIL, "equal: the first rule"},
		{2, 3, -1, 1, FG_ACT_REJECT, "reject beats tempfail"},
		{3, 2, 0, 0, FG_ACT_REJECT, "reject beats tempfail and delay"},
		{2, 4, -1, 1, FG_ACT_DELAY, "delay-then-tempfail beats tempfail"},
		{4, 3, -1, 1, FG_ACT_REJECT, "reject beats delay-then-tempfail"},
		{5, 6, 3, 1, FG_ACT_DISCONNECT, "ban beats disconnect"},
		{6, 5, -1, 0, FG_ACT_DISCONNECT, "ban first"},
	};

	for (size_t i = 0; i < FG_NELEM(cases); i++) {
		char text[2048] = "rules = (";
		int idx[3] = {cases[i].a, cases[i].b, cases[i].c};
		struct fg_config *cfg;
		struct fake fk = {0};
		struct fg_verdict v;
		char name[8];
		int n = 0;

		for (int j = 0; j < 3; j++) {
			size_t len = strlen(text);
			if (idx[j] < 0)
				continue;
			snprintf(text + len, sizeof(text) - len,
			         "%s { name = \"r%d\"; type = \"connection_rate\";"
			         " per = \"address\"; limit = 1; window = \"1m\"; %s }",
			         n++ ? "," : "", j, steps[idx[j]]);
		}
		strncat(text, " );", sizeof(text) - strlen(text) - 1);
		cfg = cfg_load(text);
		burst(&fk, cfg, "192.0.2.1", S(100), 2, &v);
		snprintf(name, sizeof(name), "r%d", cases[i].winner);
		ok(v.rule != NULL && strcmp(v.rule->name, name) == 0 &&
		   v.action == cases[i].action,
		   "most severe: %s (%s, %s)", cases[i].what,
		   v.rule ? v.rule->name : "-", fg_action_name(v.action));
		if (cases[i].a == 6 || cases[i].b == 6)
			ok(v.ban.set && strcmp(v.ban.key, "192.0.2.1") == 0,
			   "most severe: the ban effect is kept");
		fake_free(&fk);
		fg_config_release(cfg);
	}
}

static void
test_keys_and_names(void)
{
	struct fg_config *cfg = cfg_load(
		"rules = (\n"
		" { name = \"a\"; type = \"invalid_recipients\"; mask = false; prefix4 = 24;"
		" limit = 1; window = \"1h\"; },\n"
		" { name = \"b\"; type = \"invalid_recipients\"; mask = false; prefix4 = 16;"
		" prefix6 = 48; limit = 1; window = \"1h\"; },\n"
		" { name = \"c\"; type = \"invalid_recipients\"; mask = false; prefix4 = 32;"
		" limit = 1; window = \"1h\"; },\n"
		" { name = \"h\"; type = \"helo_rate\"; per = \"helo\"; act_on = \"key\"; limit = 1;"
		" window = \"1h\"; },\n"
		" { name = \"d\"; type = \"recipient_rate\";"
		" per = \"recipient_domain\"; act_on = \"key\"; limit = 1; window = \"1h\"; },\n"
		" { name = \"s\"; type = \"mail_rate\"; per = \"sender_domain\"; act_on = \"key\";"
		" limit = 1; window = \"1h\"; },\n"
		" { name = \"g\"; type = \"mail_rate\"; per = \"global\"; act_on = \"key\";"
		" limit = 1; window = \"1h\"; } );\n");
	char keys[FG_STORE_MAX_KEYS][FG_KEY_MAX], buf[FG_KEY_MAX];
	struct sess s;
	size_t n;
	static const char *const want[] = {
		"192.0.2.7", "192.0.2.0/24", "192.0.0.0/16", "helo:mx.example",
		"rcpt-domain:example.org", "sender-domain:example.net", "*",
	};
	bool same = true;

	is_str(fg_stage_name(FG_STAGE_CONNECT), "connect", "stage connect");
	is_str(fg_stage_name(FG_STAGE_HELO), "helo", "stage helo");
	is_str(fg_stage_name(FG_STAGE_MAIL), "mail", "stage mail");
	is_str(fg_stage_name(FG_STAGE_RCPT), "rcpt", "stage rcpt");

	sess_open(&s, "192.0.2.7");
	fg_policy_network_key(cfg, s.f.client, buf);
	is_str(buf, "192.0.2.0/24", "network key v4");
	fg_policy_network_key(cfg, NULL, buf);
	is_str(buf, "", "network key of no client");
	sess_open(&s, "2001:db8:1:2:3::9");
	fg_policy_network_key(cfg, s.f.client, buf);
	is_str(buf, "2001:db8:1:2::/64", "network key v6");
	n = fg_policy_event_keys(cfg, &s.f, keys, FG_STORE_MAX_KEYS);
	ok(n == 4 && strcmp(keys[1], "2001:db8:1:2::/64") == 0 &&
	   strcmp(keys[2], "2001:db8:1::/48") == 0 && strcmp(keys[3], "*") == 0,
	   "event keys v6: address, /64, /48, *");

	sess_open(&s, "192.0.2.7");
	s.f.stage = FG_STAGE_RCPT;
	s.f.helo = "MX.Example";
	s.f.sender = "<u@Example.NET>";
	s.f.rcpt = "<v@example.org>";
	n = fg_policy_event_keys(cfg, &s.f, keys, FG_STORE_MAX_KEYS);
	is_int(n, FG_NELEM(want), "event keys: deduplicated");
	for (size_t i = 0; i < n && i < FG_NELEM(want); i++)
		if (strcmp(keys[i], want[i]) != 0) {
			printf("# key %zu: %s, want %s\n", i, keys[i], want[i]);
			same = false;
		}
	ok(same, "event keys: address, networks longest first, helo, "
	   "domains, global");
	is_int(fg_policy_event_keys(cfg, &s.f, keys, 2), 2,
	       "event keys: at most max");
	s.f.stage = FG_STAGE_MAIL;
	n = fg_policy_event_keys(cfg, &s.f, keys, FG_STORE_MAX_KEYS);
	is_int(n, FG_NELEM(want) - 1, "event keys: no recipient domain at mail");
	fg_config_release(cfg);
}

static void
test_replies_and_describe(void)
{
	char text[2048], desc[2048], line[600];
	struct fg_config *cfg;
	struct fg_verdict v;
	struct fake fk = {0};
	size_t o = 0;

	cfg = cfg_load(
		"rules = ( { name = \"rate\"; type = \"connection_rate\";\n"
		"  limit = 3; window = \"1m\"; action = \"tempfail\";\n"
		"  reply = { code = 450; status = \"4.7.1\"; text ="
		" \"${count} > ${limit} in ${window}, wait ${delay}s ${nope} $ 100%\"; }; } );\n");
	burst(&fk, cfg, "192.0.2.1", S(100), 4, &v);
	is_str(v.lines[0], "4 > 3 in 1m, wait 0s ${nope} $ 100%",
	       "reply: placeholders expanded, the rest kept");
	fg_verdict_describe(&v, desc, sizeof(desc));
	is_str(desc, "rule=rate key=192.0.2.1 count=4 limit=3 window=1m level=1 "
	       "action=tempfail reply=\"450 4.7.1 4 > 3 in 1m, wait 0s ${nope} "
	       "$ 100%\"", "describe: a rule's verdict");
	fake_free(&fk);
	fg_config_release(cfg);

	/* 60 x ${limit} with a 10-digit limit: cut below the line maximum. */
	for (int i = 0; i < 60; i++)
		o += (size_t)snprintf(line + o, sizeof(line) - o, "${limit}");
	snprintf(text, sizeof(text),
	         "rules = ( { name = \"max\"; type = \"recipients_per_message\";"
	         " limit = 1000000000; reply = { code = 452; status = \"4.5.3\";"
	         " text = \"%s\"; }; } );", line);
	cfg = cfg_load(text);
	{
		struct fg_facts f = {0};
		f.stage = FG_STAGE_RCPT;
		f.message_rcpts = 1000000001;
		fg_policy_decide(cfg, &f, NULL, S(1), &v);
		ok(v.action == FG_ACT_TEMPFAIL && v.nlines == 1 &&
		   strlen(v.lines[0]) == FG_REPLY_LINE_MAX - 1 &&
		   strncmp(v.lines[0], "10000000001000000000", 20) == 0,
		   "reply: an expanded line is cut to fit");
	}
	fg_config_release(cfg);

	cfg = cfg_load("max_delayed_sessions = 3;\n"
	               "rules = ( { name = \"brt\"; type = \"bad_recipient_throttle\";"
	               " limit = 1; } );\n");
	bad_rcpt(cfg, 2, 0, &v);
	fg_verdict_describe(&v, desc, sizeof(desc));
	is_str(desc, "rule=brt key=session count=2 limit=1 level=1 action=delay "
	       "delay=1s then=continue", "describe: a delay");
	bad_rcpt(cfg, 2, 3, &v);
	fg_verdict_describe(&v, desc, sizeof(desc));
	is_str(desc, "rule=brt key=session count=2 limit=1 level=1 "
	       "action=tempfail delay_skipped=yes reply=\"451 4.7.1 Too many "
	       "requests from your network, try again later\"",
	       "describe: a skipped delay");
	fg_config_release(cfg);
	cfg = cfg_load("monitor = true;\n"
	               "rules = ( { name = \"conn\"; type = \"connection_rate\";"
	               " limit = 1; window = \"1m\"; } );\n");
	burst(&fk, cfg, "192.0.2.1", S(100), 2, &v);
	fg_verdict_describe(&v, desc, sizeof(desc));
	is_str(desc, "rule=conn key=192.0.2.1 count=2 limit=1 window=1m level=1 "
	       "action=continue monitor=yes would=disconnect",
	       "describe: monitor");
	fake_free(&fk);
	fg_config_release(cfg);

	memset(&v, 0, sizeof(v));
	fg_verdict_describe(&v, desc, sizeof(desc));
	is_str(desc, "action=continue", "describe: continue");
	v.exempt = true;
	v.exempt_reason = "authenticated";
	fg_verdict_describe(&v, desc, sizeof(desc));
	is_str(desc, "exempt=\"authenticated\" action=continue",
	       "describe: exempt");
	memset(&v, 0, sizeof(v));
	v.banned = true;
	v.action = FG_ACT_DISCONNECT;
	snprintf(v.key, sizeof(v.key), "helo:evil\r\nx");
	v.code = 421;
	snprintf(v.status, sizeof(v.status), "4.7.0");
	v.nlines = 2;
	snprintf(v.lines[0], sizeof(v.lines[0]), "one");
	snprintf(v.lines[1], sizeof(v.lines[1]), "two\x01");
	fg_verdict_describe(&v, desc, sizeof(desc));
	is_str(desc, "banned key=helo:evil\\x0d\\x0ax action=disconnect "
	       "reply=\"421 4.7.0 one | two\\x01\"", "describe: sanitised");
	fg_verdict_describe(&v, desc, 16);
	is_int(strlen(desc), 15, "describe: cut to the buffer");
}

/* ---- harvest masking ---------------------------------------------- */

static const char mask_conf[] =
	"rules = ( { name = \"dict\"; type = \"invalid_recipients\";\n"
	"  limit = 3; window = \"1h\";\n"
	"  ladder = ( { over = 1; action = \"delay\"; delay = \"1s\"; },\n"
	"             { over = 3; action = \"delay\"; delay = \"2s\";\n"
	"               then = \"tempfail\"; },\n"
	"             { over = 5; action = \"tempfail\"; },\n"
	"             { over = 7; action = \"ban\"; ban = \"1h\"; } ); } );\n";

/* An RCPT of session s as the MTA reports it: an unknown user with the
 * MTA's text, or a valid one. */
static const struct fg_verdict *
mask_rcpt(fg_session *s, const char *rcpt, bool unknown, const char *text,
          int64_t now)
{
	return fg_session_rcpt(s, rcpt, unknown ? FG_RCPT_INVALID : FG_RCPT_VALID,
	                       unknown ? "5.1.1" : NULL, unknown ? text : NULL,
	                       NULL, now);
}

static void
test_mask(void)
{
	static const char pf[] = "Recipient address rejected: User unknown in "
	                         "local recipient table";
	struct fg_config *cfg = cfg_load(mask_conf);
	struct fake fk = {0};
	const struct fg_verdict *v;
	fg_session *a, *b;
	fg_addr addr;
	char want[200];

	fg_addr_parse("192.0.2.10", &addr);
	a = fake_session(&fk, cfg);
	fg_session_connect(a, &addr, NULL, NULL, S(100));
	fg_session_mail(a, "<h@x.example>", NULL, false, S(100));
	for (int i = 1; i <= 4; i++)
		v = mask_rcpt(a, "<x@example.org>", true, pf, S(100));
	ok(!v->masked && v->action == FG_ACT_DELAY,
	   "mask: the first step only delays (%s)", fg_verdict_action(cfg, v));
	v = mask_rcpt(a, "<alice@example.org>", false, NULL, S(100));
	ok(!v->masked && fg_session_answer(v, true) == FG_ACT_CONTINUE,
	   "mask: below the flag a valid recipient goes through (after the "
	   "network's delay)");
	mask_rcpt(a, "<y@example.org>", true, pf, S(100));
	v = mask_rcpt(a, "<z@example.org>", true, pf, S(100));
	ok(v->masked && v->action == FG_ACT_DELAY && v->delay_ms == S(2),
	   "mask: past the first step an unknown recipient is masked, "
	   "delayed %" PRId64 " ms", v->delay_ms);
	v = mask_rcpt(a, "<alice@example.org>", false, NULL, S(100));
	snprintf(want, sizeof(want), "<alice@example.org>: %s", pf);
	ok(v->masked && v->action == FG_ACT_DELAY && v->delay_ms == S(2),
	   "mask: ... and so is a valid one, with the same delay");
	is_int(v->code, 550, "mask: the MTA's code");
	is_str(v->status, "5.1.1", "mask: the MTA's status");
	is_str(v->lines[0], want, "mask: the MTA's text, with this address");
	is_int(fg_session_answer(v, true), FG_ACT_REJECT,
	       "mask: after the delay, reject");
	is_str(fg_verdict_action(cfg, v), "mask", "mask: recorded as mask");

	/* Another session of the flagged /24 is refused before RCPT. */
	fg_addr_parse("192.0.2.11", &addr);
	b = fake_session(&fk, cfg);
	v = fg_session_connect(b, &addr, NULL, NULL, S(101));
	ok(v->action == FG_ACT_CONTINUE, "mask: the delay step lets a new "
	   "session connect");
	v = fg_session_mail(b, "<s@y.example>", NULL, false, S(101));
	v = mask_rcpt(b, "<alice@example.org>", false, NULL, S(101));
	ok(!v->masked && v->code / 100 != 5,
	   "mask: a session that sent no unknown recipient is never masked "
	   "(%d)", v->code);

	/* sendmail's wording is learned. */
	mask_rcpt(b, "<q@example.org>", true, "550 5.1.1 User unknown", S(101));
	v = mask_rcpt(b, "<bob@example.org>", false, NULL, S(101));
	ok(v->masked, "mask: sendmail: masked");
	is_str(v->lines[0], "User unknown",
	       "mask: sendmail: its own text (sendmail adds the address)");

	/* Past the ban step: the ban is set, the answer is still the mask. */
	for (int i = 0; i < 3; i++)
		v = mask_rcpt(a, "<w@example.org>", true, pf, S(102));
	ok(v->masked && v->ban.set && v->action == FG_ACT_REJECT,
	   "mask: the ban step bans and masks");
	v = mask_rcpt(a, "<alice@example.org>", false, NULL, S(102));
	ok(v->masked && v->banned && v->code == 550,
	   "mask: a banned key's harvesting session is masked too");
	fake_free(&fk);
	fg_config_release(cfg);

	/* mask = false: the valid recipient is told apart (what masking
	 * prevents); monitor: would mask. */
	{
		char text[1024];

		snprintf(text, sizeof(text), "%s", mask_conf);
		*strstr(text, "limit = 3;") = '\0';
		snprintf(text + strlen(text), sizeof(text) - strlen(text),
		         "mask = false; %s", strstr(mask_conf, "limit = 3;"));
		cfg = cfg_load(text);
	}
	fg_addr_parse("192.0.2.20", &addr);
	a = fake_session(&fk, cfg);
	fg_session_connect(a, &addr, NULL, NULL, S(200));
	fg_session_mail(a, "<h@x.example>", NULL, false, S(200));
	for (int i = 0; i < 8; i++)
		mask_rcpt(a, "<x@example.org>", true, pf, S(200));
	v = mask_rcpt(a, "<alice@example.org>", false, NULL, S(200));
	ok(!v->masked && v->code == 451, "mask = false: the valid recipient "
	   "gets 451, the unknown ones the MTA's 550");
	fake_free(&fk);
	fg_config_release(cfg);

	cfg = cfg_load("monitor = true;\n" "rules = ( { name = \"dict\"; type = "
	               "\"invalid_recipients\"; limit = 1; window = \"1h\";"
	               " action = \"tempfail\"; } );\n");
	a = fake_session(&fk, cfg);
	fg_session_connect(a, &addr, NULL, NULL, S(300));
	for (int i = 0; i < 3; i++)
		v = mask_rcpt(a, "<x@example.org>", true, pf, S(300));
	v = mask_rcpt(a, "<alice@example.org>", false, NULL, S(300));
	ok(v->monitor && v->masked && v->code == 0 &&
	   fg_session_answer(v, false) == FG_ACT_CONTINUE &&
	   strcmp(fg_verdict_action(cfg, v), "mask") == 0,
	   "monitor: would mask, lets it through");
	fake_free(&fk);
	fg_config_release(cfg);

	{
		struct fg_config *bad = NULL;

		ok(fg_config_load_string("rules = ( { name = \"c\"; type = "
		   "\"connection_rate\"; limit = 1; window = \"1m\"; "
		   "mask = true; action = \"tempfail\"; } );", "t.conf", &bad,
		   NULL, NULL) == FG_ECONFIG && bad == NULL,
		   "mask on another rule type is a config error");
	}
}

static void
run_all(void)
{
	test_dictionary_attack();
	test_slow_attack();
	test_window_edge();
	test_shared_counts();
	test_ratio_guard();
	test_ratio_padding();
	test_ratio_typos();
	test_ratio_session_cap();
	test_act_on();
	test_act_on_keys();
	test_escalation_decay();
	test_persistence();
	test_overrides();
	test_exemptions();
	test_ipv6_aggregation();
	test_monitor();
	test_delay_budget();
	test_delay_growth();
	test_bad_recipient_throttle();
	test_recipients_per_message();
	test_bans();
	test_null_client();
	test_concurrency();
	test_concurrency_acquire_failure();
	test_most_severe();
	test_keys_and_names();
	test_replies_and_describe();
	test_mask();
}

int
main(void)
{
	run_all();
	printf("# again, tracing every rule, and direct decisions with the "
	       "client's keys formatted once\n");
	use_client_keys = true;
	run_all();
	/* Sessions decide over their previous verdict on every step (the
	 * scenarios above); the direct decisions check it on their own. */
	ok(reuse_checked > 50 && reuse_differ == 0, "deciding over a used "
	   "verdict says the same as deciding afresh (%u of %u differ)",
	   reuse_differ, reuse_checked);
	{
		static struct fg_verdict a, b;

		memset(&a, 0, sizeof(a));
		a.nlines = 1;
		snprintf(a.lines[0], sizeof(a.lines[0]), "one");
		b = a;
		ok(fg_verdict_equal(&a, &b), "fg_verdict_equal: a copy is equal");
		b.lines[0][0] = 'O';
		ok(!fg_verdict_equal(&a, &b), "... a reply line differs");
		b = a;
		b.lines[1][0] = 'x';
		ok(fg_verdict_equal(&a, &b), "... past nlines is not compared");
		b.nlevels = 1;
		ok(!fg_verdict_equal(&a, &b), "... nlevels differs");
	}
	return tap_done();
}
