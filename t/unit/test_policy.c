/*
 * test_policy.c - the decision, replayed against a table-backed view with
 * an injected clock.
 *
 * The view here is a fake (struct fake): a list of (time, key, counter)
 * events with real sliding windows at the store's one-second resolution,
 * plus tables of concurrency, bans and escalation levels.  Sessions are
 * driven the way the glue drives them: record the event under the keys
 * fg_policy_event_keys() names, decide, apply the verdict's effects.
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

/* ---- the fake view ------------------------------------------------ */

struct ev {
	int64_t t;
	enum fg_counter c;
	char key[FG_KEY_MAX];
};

struct kv {
	char rule[80];
	char key[FG_KEY_MAX];
	int64_t n;      /* concurrency; level */
	int64_t until;  /* ban until; level last_ms */
};

struct kvtab {
	struct kv *v;
	size_t n, cap;
};

struct fake {
	struct ev *ev;
	size_t nev, cap;
	struct kvtab conc, bans, levels;
};

static void
fake_free(struct fake *fk)
{
	free(fk->ev);
	free(fk->conc.v);
	free(fk->bans.v);
	free(fk->levels.v);
	memset(fk, 0, sizeof(*fk));
}

static void *
grow(void *p, size_t *cap, size_t size)
{
	size_t n = *cap ? *cap * 2 : 64;
	void *q = realloc(p, n * size);

	if (q == NULL) {
		printf("Bail out! out of memory\n");
		exit(1);
	}
	*cap = n;
	return q;
}

static void
fake_add(struct fake *fk, int64_t t, const char *key, enum fg_counter c)
{
	if (fk->nev == fk->cap)
		fk->ev = grow(fk->ev, &fk->cap, sizeof(*fk->ev));
	fk->ev[fk->nev].t = t;
	fk->ev[fk->nev].c = c;
	{
		/* keys come from fg_policy_event_keys: always shorter */
		size_t n = strnlen(key, FG_KEY_MAX - 1);
		memcpy(fk->ev[fk->nev].key, key, n);
		fk->ev[fk->nev].key[n] = '\0';
	}
	fk->nev++;
}

static int64_t
floor_s(int64_t ms)
{
	return ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
}

/* store.h's window: second of the event in (now - W, now], later events
 * counted as at now. */
static int64_t
fake_count(void *ctx, const char *key, enum fg_counter c, int64_t window_ms,
           int64_t now_ms)
{
	struct fake *fk = ctx;
	int64_t n = 0, oldest = floor_s(now_ms) - window_ms / 1000;

	for (size_t i = 0; i < fk->nev; i++) {
		const struct ev *e = &fk->ev[i];
		int64_t t = e->t < now_ms ? e->t : now_ms;
		if (e->c == c && floor_s(t) > oldest && strcmp(e->key, key) == 0)
			n++;
	}
	return n;
}

static struct kv *
kv_find(struct kvtab *t, const char *rule, const char *key)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->v[i].key, key) == 0 &&
		    (rule == NULL || strcmp(t->v[i].rule, rule) == 0))
			return &t->v[i];
	return NULL;
}

static struct kv *
kv_get(struct kvtab *t, const char *rule, const char *key)
{
	struct kv *e = kv_find(t, rule, key);

	if (e == NULL) {
		if (t->n == t->cap)
			t->v = grow(t->v, &t->cap, sizeof(*t->v));
		e = &t->v[t->n++];
		memset(e, 0, sizeof(*e));
		snprintf(e->rule, sizeof(e->rule), "%s", rule ? rule : "");
		snprintf(e->key, sizeof(e->key), "%s", key);
	}
	return e;
}

static int64_t
fake_concurrent(void *ctx, const char *key)
{
	struct fake *fk = ctx;
	struct kv *e = kv_find(&fk->conc, NULL, key);

	return e != NULL ? e->n : 0;
}

static int
fake_ban(void *ctx, const char *key, int64_t now_ms, struct fg_ban *out)
{
	struct fake *fk = ctx;
	struct kv *e = kv_find(&fk->bans, NULL, key);

	if (e == NULL || e->until <= now_ms)
		return 0;
	memset(out, 0, sizeof(*out));
	out->until_ms = e->until;
	return 1;
}

static int
fake_level(void *ctx, const char *rule, const char *key, int *level,
           int64_t *last_ms)
{
	struct fake *fk = ctx;
	struct kv *e = kv_find(&fk->levels, rule, key);

	if (e == NULL)
		return 0;
	*level = (int)e->n;
	*last_ms = e->until;
	return 1;
}

static struct fg_view
fake_view(struct fake *fk)
{
	struct fg_view vw = {fk, fake_count, fake_concurrent, fake_ban,
	                     fake_level};
	return vw;
}

static void
fake_set_ban(struct fake *fk, const char *key, int64_t until)
{
	kv_get(&fk->bans, NULL, key)->until = until;
}

/* Applies a verdict's side effects, as the glue does. */
static void
fake_apply(struct fake *fk, const struct fg_verdict *v)
{
	if (v->ban.set)
		fake_set_ban(fk, v->ban.key, v->ban.until_ms);
	for (size_t i = 0; i < v->nlevels; i++) {
		struct kv *e = kv_get(&fk->levels, v->levels[i].rule->name,
		                      v->levels[i].key);
		e->n = v->levels[i].level;
		e->until = v->levels[i].last_ms;
	}
}

/* Files the event the facts describe under the keys policy names. */
static void
fake_record(struct fake *fk, const struct fg_config *cfg,
            const struct fg_facts *f, int64_t now)
{
	char keys[FG_STORE_MAX_KEYS][FG_KEY_MAX];
	size_t n = fg_policy_event_keys(cfg, f, keys, FG_STORE_MAX_KEYS);

	for (size_t i = 0; i < n; i++) {
		switch (f->stage) {
		case FG_STAGE_CONNECT:
			fake_add(fk, now, keys[i], FG_CNT_CONNECT);
			kv_get(&fk->conc, NULL, keys[i])->n++;
			break;
		case FG_STAGE_HELO:
			fake_add(fk, now, keys[i], FG_CNT_HELO);
			break;
		case FG_STAGE_MAIL:
			fake_add(fk, now, keys[i], FG_CNT_MAIL);
			break;
		case FG_STAGE_RCPT:
			fake_add(fk, now, keys[i], FG_CNT_RCPT);
			if (f->rcpt_class == FG_RCPT_VALID)
				fake_add(fk, now, keys[i], FG_CNT_RCPT_VALID);
			else if (f->rcpt_class == FG_RCPT_INVALID)
				fake_add(fk, now, keys[i], FG_CNT_RCPT_INVALID);
			else if (f->rcpt_class == FG_RCPT_REJECTED)
				fake_add(fk, now, keys[i], FG_CNT_RCPT_REJECTED);
			break;
		}
	}
}

/* ---- sessions ----------------------------------------------------- */

/* Second pass: facts carry the keys formatted once per session, as the
 * milter's do; every verdict must come out the same. */
static bool use_client_keys;

struct sess {
	fg_addr addr;
	struct fg_facts f;
	struct fg_client_keys ck;
	char helo[64], sender[128], rcpt[128];
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
		s->f.client = &s->addr;
	}
}

/* The milter decides over the session's previous verdict: deciding over
 * a verdict full of leftovers must say the same as deciding afresh. */
static unsigned reuse_checked, reuse_differ;

static void
check_reuse(const struct fg_config *cfg, const struct fg_facts *f,
            const struct fg_view *vw, int64_t now, const struct fg_verdict *v)
{
	static struct fg_verdict stale;

	memset(&stale, 0xa5, sizeof(stale));
	fg_policy_decide(cfg, f, vw, now, &stale);
	reuse_checked++;
	if (!fg_verdict_equal(v, &stale))
		reuse_differ++;
}

/* One SMTP step: update the facts, record, decide, apply. */
static void
sess_do(struct fake *fk, const struct fg_config *cfg, struct sess *s,
        enum fg_stage stage, const char *arg, enum fg_rcpt_class cls,
        int64_t now, struct fg_verdict *v)
{
	struct fg_view vw = fake_view(fk);

	if (use_client_keys && s->f.client != NULL) {
		fg_policy_client_keys(cfg, s->f.client, &s->ck);
		s->f.client_keys = &s->ck;
	}
	s->f.stage = stage;
	s->f.rcpt_class = FG_RCPT_NONE;
	switch (stage) {
	case FG_STAGE_CONNECT:
		break;
	case FG_STAGE_HELO:
		snprintf(s->helo, sizeof(s->helo), "%s", arg);
		s->f.helo = s->helo;
		break;
	case FG_STAGE_MAIL:
		snprintf(s->sender, sizeof(s->sender), "%s", arg);
		s->f.sender = s->sender;
		s->f.message_rcpts = 0;
		s->f.rcpt = NULL;
		break;
	case FG_STAGE_RCPT:
		snprintf(s->rcpt, sizeof(s->rcpt), "%s", arg);
		s->f.rcpt = s->rcpt;
		s->f.rcpt_class = cls;
		s->f.message_rcpts++;
		if (cls == FG_RCPT_INVALID)
			s->f.session_invalid++;
		break;
	}
	fake_record(fk, cfg, &s->f, now);
	fg_policy_decide(cfg, &s->f, &vw, now, v);
	check_reuse(cfg, &s->f, &vw, now, v);
	fake_apply(fk, v);
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
	"rules = ( { name = \"dictionary\"; type = \"invalid_recipients\";\n"
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

/* The ratio guard: a big sender with 2% unknown recipients passes. */
static void
test_ratio_guard(void)
{
	struct fg_config *cfg = cfg_load(
		"rules = ( { name = \"dict\"; type = \"invalid_recipients\";\n"
		"  per = \"address\"; limit = 10; window = \"1h\";\n"
		"  ratio = 0.1; min_sample = 50; } );\n");
	struct fake fk = {0};
	struct fg_verdict v;
	struct sess s;
	int fired = 0, first = 0, invalid = 0;

	sess_start(&fk, cfg, &s, "192.0.2.10", S(100), &v);
	for (int j = 1; j <= 1000; j++) {
		sess_do(&fk, cfg, &s, FG_STAGE_RCPT, "<r@example.org>",
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
		         "rules = ( { name = \"dict\"; type = \"invalid_recipients\";"
		         " per = \"address\"; limit = 10; window = \"1h\";"
		         " ratio = 0.9; min_sample = %" PRId64 "; } );",
		         ms[i].min_sample);
		cfg = cfg_load(text);
		sess_start(&fk, cfg, &s, "192.0.2.10", S(100), &v);
		for (int j = 1; j <= 20; j++)
			sess_do(&fk, cfg, &s, FG_STAGE_RCPT, "<r@example.org>",
			        j <= 9 ? FG_RCPT_VALID : FG_RCPT_INVALID,
			        S(100) + S(j), &v);
		is_int(v.action, ms[i].want, "ratio: 11 of 20 at ratio 0.9, "
		       "min_sample %" PRId64, ms[i].min_sample);
		fake_free(&fk);
		fg_config_release(cfg);
	}
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
		"rules = ( { name = \"dict\"; type = \"invalid_recipients\";\n"
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
		"  per = \"global\"; limit = 1; window = \"1m\"; } );\n");
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
		fg_policy_decide(cfg, &s.f, &vw, S(1000), &v);
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
	               "  per = \"global\"; limit = 1; window = \"1m\"; } );\n");
	{
		struct sess s;
		sess_open(&s, "127.0.0.1");
		fg_policy_decide(cfg, &s.f, &vw, S(1000), &v);
		ok(v.exempt && strcmp(v.exempt_reason, "exempt network") == 0,
		   "exempt: loopback by default");
		sess_open(&s, "::1");
		fg_policy_decide(cfg, &s.f, &vw, S(1000), &v);
		ok(v.exempt, "exempt: ::1 by default");
		sess_open(&s, "192.0.2.1");
		s.f.authenticated = true;
		fg_policy_decide(cfg, &s.f, &vw, S(1000), &v);
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
		"rules = ( { name = \"dict6\"; type = \"invalid_recipients\";\n"
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
	is_int(fk.bans.n, 0, "monitor: no ban stored");
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
		"rules = ( { name = \"dict16\"; type = \"invalid_recipients\";\n"
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
		fg_policy_decide(cfg, &s.f, &vw, S(2000), &v);
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
	fg_config_release(cfg);

	snprintf(text, sizeof(text),
	         "banned_action = \"reject\";\n"
	         "banned_reply = { code = 554; status = \"5.7.1\";"
	         " text = \"You are banned\"; };\n%s", rules);
	cfg = cfg_load(text);
	{
		struct sess s;
		sess_open(&s, "192.0.2.7");
		fg_policy_decide(cfg, &s.f, &vw, S(2000), &v);
		ok(v.banned && v.action == FG_ACT_REJECT && v.code == 554 &&
		   v.nlines == 1 && strcmp(v.lines[0], "You are banned") == 0,
		   "ban: banned_action reject with banned_reply");
	}
	fg_config_release(cfg);
	cfg = cfg_load("banned_action = \"tempfail\";\n");
	{
		struct sess s;
		sess_open(&s, "192.0.2.7");
		fg_policy_decide(cfg, &s.f, &vw, S(2000), &v);
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
		" { name = \"net\"; type = \"invalid_recipients\"; limit = 1;\n"
		"   window = \"1m\"; },\n"
		" { name = \"all\"; type = \"connection_rate\"; per = \"global\";\n"
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
		" { name = \"a\"; type = \"invalid_recipients\"; prefix4 = 24;"
		" limit = 1; window = \"1h\"; },\n"
		" { name = \"b\"; type = \"invalid_recipients\"; prefix4 = 16;"
		" prefix6 = 48; limit = 1; window = \"1h\"; },\n"
		" { name = \"c\"; type = \"invalid_recipients\"; prefix4 = 32;"
		" limit = 1; window = \"1h\"; },\n"
		" { name = \"h\"; type = \"helo_rate\"; per = \"helo\"; limit = 1;"
		" window = \"1h\"; },\n"
		" { name = \"d\"; type = \"recipient_rate\";"
		" per = \"recipient_domain\"; limit = 1; window = \"1h\"; },\n"
		" { name = \"s\"; type = \"mail_rate\"; per = \"sender_domain\";"
		" limit = 1; window = \"1h\"; },\n"
		" { name = \"g\"; type = \"mail_rate\"; per = \"global\";"
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
	is_str(desc, "rule=rate key=192.0.2.1 count=4 limit=3 window=1m level=0 "
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
	is_str(desc, "rule=brt key=session count=2 limit=1 level=0 action=delay "
	       "delay=1s then=continue", "describe: a delay");
	bad_rcpt(cfg, 2, 3, &v);
	fg_verdict_describe(&v, desc, sizeof(desc));
	is_str(desc, "rule=brt key=session count=2 limit=1 level=0 "
	       "action=tempfail delay_skipped=yes reply=\"451 4.7.1 Too many "
	       "requests from your network, try again later\"",
	       "describe: a skipped delay");
	fg_config_release(cfg);
	cfg = cfg_load("monitor = true;\n"
	               "rules = ( { name = \"conn\"; type = \"connection_rate\";"
	               " limit = 1; window = \"1m\"; } );\n");
	burst(&fk, cfg, "192.0.2.1", S(100), 2, &v);
	fg_verdict_describe(&v, desc, sizeof(desc));
	is_str(desc, "rule=conn key=192.0.2.1 count=2 limit=1 window=1m level=0 "
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

static void
run_all(void)
{
	test_dictionary_attack();
	test_slow_attack();
	test_window_edge();
	test_ratio_guard();
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
	test_most_severe();
	test_keys_and_names();
	test_replies_and_describe();
}

int
main(void)
{
	run_all();
	printf("# again, with the keys of each session formatted once\n");
	use_client_keys = true;
	run_all();
	ok(reuse_checked > 400 && reuse_differ == 0, "deciding over a used "
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
