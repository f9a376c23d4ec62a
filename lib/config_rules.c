/*
 * config_rules.c - the rules of floodgate.conf: rule and ladder-step
 * tables, per-type defaults and checks, per-network overrides.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "fg.h"

/* ---- names -------------------------------------------------------- */

const char *const fg_cfg_action_names[] = {
	"continue", "delay", "tempfail", "reject", "disconnect", "ban", NULL,
};
static const char *const rule_type_names[] = {
	"connection_rate", "concurrency", "invalid_recipients",
	"recipient_rate", "rejected_recipients", "helo_rate", "mail_rate",
	"bad_recipient_throttle", "recipients_per_message", NULL,
};
static const char *const per_names[] = {
	"address", "network", "helo", "recipient_domain", "sender_domain",
	"global", "session", "message", NULL,
};
static const char *const act_on_names[] = {
	"key", "network", NULL,
};
static const char *const growth_names[] = {
	"fixed", "linear", "doubling", NULL,
};

const char *
fg_action_name(enum fg_action a)
{
	if ((unsigned)a >= FG_NELEM(fg_cfg_action_names) - 1)
		return "?";
	return fg_cfg_action_names[a];
}

const char *
fg_rule_type_name(enum fg_rule_type t)
{
	if ((unsigned)t >= FG_NELEM(rule_type_names) - 1)
		return "?";
	return rule_type_names[t];
}

const char *
fg_per_name(enum fg_per p)
{
	if ((unsigned)p >= FG_NELEM(per_names) - 1)
		return "?";
	return per_names[p];
}

const char *
fg_act_on_name(enum fg_act_on a)
{
	if ((unsigned)a >= FG_NELEM(act_on_names) - 1)
		return "?";
	return act_on_names[a];
}

bool
fg_rule_shared(const struct fg_rule *r)
{
	return r->per == FG_PER_HELO || r->per == FG_PER_RCPT_DOMAIN ||
	       r->per == FG_PER_SENDER_DOMAIN || r->per == FG_PER_GLOBAL;
}

bool
fg_rule_pairs(const struct fg_rule *r)
{
	return fg_rule_shared(r) && r->act_on == FG_ACT_ON_NETWORK;
}

#undef OFF
#define OFF(field) offsetof(struct fg_rule, field)

/* A rule carries the fields of a single step too (a one-step ladder). */
struct rule_shorthand {
	enum fg_action action;
	int64_t delay_ms;
	enum fg_delay_growth growth;
	enum fg_action then;
	int64_t ban_ms;
	struct fg_reply reply;
};

struct rule_parse {
	struct fg_rule rule;
	struct rule_shorthand sh;
};

#define ROFF(field) offsetof(struct rule_parse, rule.field)
#define SOFF(field) offsetof(struct rule_parse, sh.field)

static const struct field rule_fields[] = {
	{"name", F_STRING, ROFF(name), NULL, 0, 0, NULL, fg_cfg_check_name},
	{"type", F_ENUM, ROFF(type), NULL, 0, 0, rule_type_names, NULL},
	{"per", F_ENUM, ROFF(per), NULL, 0, 0, per_names, NULL},
	{"act_on", F_ENUM, ROFF(act_on), NULL, 0, 0, act_on_names, NULL},
	{"prefix4", F_UINT, ROFF(prefix4), "24", 0, 32, NULL, NULL},
	{"prefix6", F_UINT, ROFF(prefix6), "64", 0, 128, NULL, NULL},
	{"limit", F_INT, ROFF(limit), NULL, 0, INT64_C(1000000000), NULL, NULL},
	{"window", F_DURATION, ROFF(window_ms), NULL, MS_S, 366 * MS_D, NULL, NULL},
	{"ratio", F_RATIO, ROFF(ratio), "0.0", 0, 0, NULL, NULL},
	{"min_sample", F_INT, ROFF(min_sample), "0", 0, INT64_C(1000000000), NULL, NULL},
	{"decay", F_DURATION, ROFF(decay_ms), NULL, 0, 366 * MS_D, NULL, NULL},
	{"monitor", F_BOOL, ROFF(monitor), "false", 0, 0, NULL, NULL},
	{"mask", F_BOOL, ROFF(mask), "false", 0, 0, NULL, NULL},
	{"action", F_ENUM, SOFF(action), NULL, 0, 0, fg_cfg_action_names, NULL},
	{"delay", F_DURATION, SOFF(delay_ms), NULL, 0, 300 * MS_S, NULL, NULL},
	{"growth", F_ENUM, SOFF(growth), NULL, 0, 0, growth_names, NULL},
	{"then", F_ENUM, SOFF(then), NULL, 0, 0, fg_cfg_action_names, NULL},
	{"ban", F_DURATION, SOFF(ban_ms), NULL, MS_S, 366 * MS_D, NULL, NULL},
	{"reply", F_REPLY, SOFF(reply), NULL, 0, 0, NULL, NULL},
	{"ladder", F_SPECIAL, 0, NULL, 0, 0, NULL, NULL},
	{"networks", F_SPECIAL, 0, NULL, 0, 0, NULL, NULL},
	{"shared", F_BOOL, ROFF(shared), NULL, 0, 0, NULL, NULL},
};

enum {
	R_NAME, R_TYPE, R_PER, R_ACT_ON, R_PREFIX4, R_PREFIX6, R_LIMIT, R_WINDOW,
	R_RATIO, R_MIN_SAMPLE, R_DECAY, R_MONITOR, R_MASK, R_ACTION, R_DELAY,
	R_GROWTH, R_THEN, R_BAN, R_REPLY, R_LADDER, R_NETWORKS, R_SHARED,
	R__COUNT
};

#undef OFF
#define OFF(field) offsetof(struct fg_step, field)

static const struct field step_fields[] = {
	{"over", F_INT, OFF(over), NULL, 1, INT64_C(1000000000), NULL, NULL},
	{"action", F_ENUM, OFF(action), NULL, 0, 0, fg_cfg_action_names, NULL},
	{"delay", F_DURATION, OFF(delay_ms), NULL, 0, 300 * MS_S, NULL, NULL},
	{"growth", F_ENUM, OFF(growth), NULL, 0, 0, growth_names, NULL},
	{"then", F_ENUM, OFF(then), NULL, 0, 0, fg_cfg_action_names, NULL},
	{"ban", F_DURATION, OFF(ban_ms), NULL, MS_S, 366 * MS_D, NULL, NULL},
	{"reply", F_REPLY, OFF(reply), NULL, 0, 0, NULL, NULL},
};

enum { S_OVER, S_ACTION, S_DELAY, S_GROWTH, S_THEN, S_BAN, S_REPLY, S__COUNT };

/* ---- rules -------------------------------------------------------- */

static bool
rule_is_window(enum fg_rule_type t)
{
	return t != FG_RULE_CONCURRENCY && t != FG_RULE_BAD_RCPT_THROTTLE &&
	       t != FG_RULE_RCPTS_PER_MESSAGE;
}

static enum fg_per
rule_default_per(enum fg_rule_type t)
{
	switch (t) {
	case FG_RULE_CONNECTION_RATE:
	case FG_RULE_CONCURRENCY:
		return FG_PER_ADDRESS;
	case FG_RULE_BAD_RCPT_THROTTLE:
		return FG_PER_SESSION;
	case FG_RULE_RCPTS_PER_MESSAGE:
		return FG_PER_MESSAGE;
	default:
		return FG_PER_NETWORK;
	}
}

static bool
rule_per_allowed(enum fg_rule_type t, enum fg_per p)
{
	switch (t) {
	case FG_RULE_BAD_RCPT_THROTTLE:
		return p == FG_PER_SESSION;
	case FG_RULE_RCPTS_PER_MESSAGE:
		return p == FG_PER_MESSAGE;
	case FG_RULE_CONNECTION_RATE:
	case FG_RULE_CONCURRENCY:
		return p == FG_PER_ADDRESS || p == FG_PER_NETWORK ||
		       p == FG_PER_GLOBAL;
	case FG_RULE_HELO_RATE:
		return p != FG_PER_SESSION && p != FG_PER_MESSAGE &&
		       p != FG_PER_RCPT_DOMAIN && p != FG_PER_SENDER_DOMAIN;
	case FG_RULE_MAIL_RATE:
		return p != FG_PER_SESSION && p != FG_PER_MESSAGE &&
		       p != FG_PER_RCPT_DOMAIN;
	default:
		return p != FG_PER_SESSION && p != FG_PER_MESSAGE;
	}
}

static void
default_step(const struct fg_rule *r, struct fg_step *s)
{
	memset(s, 0, sizeof(*s));
	s->over = 1;
	s->then = FG_ACT_CONTINUE;
	s->growth = FG_GROW_FIXED;
	switch (r->type) {
	case FG_RULE_BAD_RCPT_THROTTLE:
		s->action = FG_ACT_DELAY;
		s->delay_ms = 1000;
		s->growth = FG_GROW_LINEAR;
		break;
	case FG_RULE_RCPTS_PER_MESSAGE:
		s->action = FG_ACT_TEMPFAIL;
		s->reply.code = 452;
		snprintf(s->reply.status, sizeof(s->reply.status), "4.5.3");
		break;
	case FG_RULE_CONNECTION_RATE:
	case FG_RULE_CONCURRENCY:
		s->action = FG_ACT_DISCONNECT;
		break;
	default:
		s->action = FG_ACT_TEMPFAIL;
		break;
	}
}

static void
check_step(struct ctx *c, const struct fg_config *cfg, const char *key,
           const struct fg_step *s, bool delay_given, bool ban_given)
{
	char a[32], b[32];

	if (s->action == FG_ACT_DELAY) {
		if (!delay_given || s->delay_ms <= 0)
			CERR(c, s->line, key, "action delay needs a delay > 0 "
			     "(e.g. delay = \"2s\")");
		else if (s->delay_ms > cfg->max_delay_ms)
			CWARN(c, s->line, key, "delay %s is above max_delay %s "
			      "and will be capped",
			      fg_duration_format(s->delay_ms, a, sizeof(a)),
			      fg_duration_format(cfg->max_delay_ms, b, sizeof(b)));
		if (s->then == FG_ACT_DELAY || s->then == FG_ACT_BAN)
			CERR(c, s->line, key, "then must be continue, "
			     "tempfail, reject or disconnect");
	} else {
		if (delay_given)
			CERR(c, s->line, key, "delay only goes with action "
			     "delay");
		if (s->then != FG_ACT_CONTINUE)
			CERR(c, s->line, key, "then only goes with action "
			     "delay");
	}
	if (s->action == FG_ACT_BAN && (!ban_given || s->ban_ms <= 0))
		CERR(c, s->line, key, "action ban needs a duration "
		     "(e.g. ban = \"1h\")");
	if (s->action != FG_ACT_BAN && ban_given)
		CERR(c, s->line, key, "ban only goes with action ban");
	if (s->reply.code != 0) {
		enum fg_action eff = s->action == FG_ACT_DELAY ? s->then : s->action;
		int cls = s->reply.code / 100;
		if (eff == FG_ACT_CONTINUE)
			CERR(c, s->line, key, "a reply needs a refusing action");
		else if (eff == FG_ACT_REJECT && cls != 5)
			CERR(c, s->line, key, "reject needs a 5xx reply code");
		else if (eff == FG_ACT_TEMPFAIL && cls != 4)
			CERR(c, s->line, key, "tempfail needs a 4xx reply code");
		else if ((eff == FG_ACT_DISCONNECT || eff == FG_ACT_BAN) &&
		         s->reply.code != 421)
			CERR(c, s->line, key, "disconnect and ban reply with 421");
	}
}

static void
parse_ladder(struct ctx *c, const struct fg_config *cfg,
             struct fg_rule *r, config_setting_t *s, const char *key)
{
	int t = config_setting_type(s);
	int n;
	char sub[256];

	if (t != CONFIG_TYPE_LIST) {
		CERR(c, config_setting_source_line(s), key, "expected a list "
		     "of steps ( { over = 1; action = \"delay\"; ... }, ... ), "
		     "got %s", fg_cfg_type_name(t));
		return;
	}
	n = config_setting_length(s);
	if (n < 1 || n > 16) {
		CERR(c, config_setting_source_line(s), key, "between 1 and 16 "
		     "steps");
		return;
	}
	r->steps = fg_cfg_calloc(c, (size_t)n, sizeof(*r->steps));
	if (r->steps == NULL)
		return;
	for (int i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		struct fg_step *st = &r->steps[r->nsteps];
		bool seen[S__COUNT];

		snprintf(sub, sizeof(sub), "%s[%d]", key, i + 1);
		if (config_setting_type(e) != CONFIG_TYPE_GROUP) {
			CERR(c, config_setting_source_line(e), sub,
			     "expected a group { over = ...; action = ...; }");
			continue;
		}
		memset(st, 0, sizeof(*st));
		st->line = config_setting_source_line(e);
		snprintf(sub, sizeof(sub), "%s[%d].", key, i + 1);
		fg_cfg_parse_group(c, e, sub, step_fields, S__COUNT, st, seen, NULL);
		snprintf(sub, sizeof(sub), "%s[%d]", key, i + 1);
		if (!seen[S_OVER])
			CERR(c, st->line, sub, "over is required");
		if (!seen[S_ACTION])
			CERR(c, st->line, sub, "action is required");
		if (!seen[S_GROWTH])
			st->growth = FG_GROW_FIXED;
		if (r->nsteps > 0 && st->over <= r->steps[r->nsteps - 1].over)
			CERR(c, st->line, sub, "over must grow from step to "
			     "step (%" PRId64 " after %" PRId64 ")", st->over,
			     r->steps[r->nsteps - 1].over);
		check_step(c, cfg, sub, st, seen[S_DELAY], seen[S_BAN]);
		r->nsteps++;
	}
}

static void
override_add(struct ctx *c, struct fg_rule *r, config_setting_t *e,
             const char *key)
{
	int line = config_setting_source_line(e);
	config_setting_t *ns, *ls;
	const char *net;
	struct fg_override *o;
	long long lim;

	if (config_setting_type(e) != CONFIG_TYPE_GROUP) {
		CERR(c, line, key, "expected { network = \"192.0.2\"; "
		     "limit = 0; }");
		return;
	}
	for (int i = 0; i < config_setting_length(e); i++) {
		const char *n = config_setting_name(config_setting_get_elem(e, (unsigned)i));
		if (strcmp(n, "network") != 0 && strcmp(n, "limit") != 0)
			CERR(c, config_setting_source_line(
			         config_setting_get_elem(e, (unsigned)i)),
			     key, "unknown setting %s (expected network and "
			     "limit)", n);
	}
	ns = config_setting_get_member(e, "network");
	ls = config_setting_get_member(e, "limit");
	if (ns == NULL || (net = config_setting_get_string(ns)) == NULL) {
		CERR(c, line, key, "network is required and must be a string");
		return;
	}
	if (ls == NULL || (config_setting_type(ls) != CONFIG_TYPE_INT &&
	                   config_setting_type(ls) != CONFIG_TYPE_INT64)) {
		CERR(c, line, key, "limit is required and must be an integer "
		     "(0 = unlimited)");
		return;
	}
	lim = config_setting_get_int64(ls);
	if (lim < 0 || lim > 1000000000) {
		CERR(c, config_setting_source_line(ls), key, "limit %lld is "
		     "out of range (0..1000000000)", lim);
		return;
	}
	o = &r->override_list[r->noverrides];
	if (fg_prefix_parse(net, &o->net) != 0) {
		CERR(c, config_setting_source_line(ns), key, "\"%s\" is not "
		     "an address or network", net);
		return;
	}
	o->limit = lim;
	switch (fg_nettab_add(r->overrides, &o->net, o)) {
	case 0:
		r->noverrides++;
		break;
	case FG_EEXIST:
		CERR(c, line, key, "network %s listed twice", net);
		break;
	default:
		c->nomem = true;
		break;
	}
}

static void
parse_overrides(struct ctx *c, struct fg_rule *r, config_setting_t *s,
                const char *key)
{
	int t = config_setting_type(s);
	int n;
	char sub[256];

	if (t != CONFIG_TYPE_LIST) {
		CERR(c, config_setting_source_line(s), key, "expected a list "
		     "( { network = \"192.0.2\"; limit = 0; }, ... ), got %s",
		     fg_cfg_type_name(t));
		return;
	}
	n = config_setting_length(s);
	r->override_list = fg_cfg_calloc(c, (size_t)n, sizeof(*r->override_list));
	r->overrides = fg_nettab_new();
	if (r->override_list == NULL || r->overrides == NULL) {
		c->nomem = true;
		return;
	}
	for (int i = 0; i < n; i++) {
		snprintf(sub, sizeof(sub), "%s[%d]", key, i + 1);
		override_add(c, r, config_setting_get_elem(s, (unsigned)i), sub);
	}
}

/*
 * act_on: "network" by default for a rule on a shared key, which then
 * pairs the key with the client's network at the rule's prefix4/prefix6
 * or, without them, network_prefix4/6; not allowed on other keys (they
 * are the client's own already).
 */
static void
parse_act_on(struct ctx *c, const struct fg_config *cfg, struct fg_rule *r,
             const bool *seen, int line, const char *key)
{
	if (!fg_rule_shared(r)) {
		if (seen[R_ACT_ON])
			CERR(c, line, key, "act_on only goes with per = \"helo\", "
			     "\"sender_domain\", \"recipient_domain\" or "
			     "\"global\"");
		r->act_on = FG_ACT_ON_KEY;
		return;
	}
	if (!seen[R_ACT_ON])
		r->act_on = FG_ACT_ON_NETWORK;
	if (r->act_on != FG_ACT_ON_NETWORK)
		return;
	if (!seen[R_PREFIX4] && cfg->network_prefix4 >= 8 &&
	    cfg->network_prefix4 <= 32)
		r->prefix4 = cfg->network_prefix4;
	if (!seen[R_PREFIX6] && cfg->network_prefix6 >= 16 &&
	    cfg->network_prefix6 <= 128)
		r->prefix6 = cfg->network_prefix6;
}

static void
parse_rule(struct ctx *c, struct fg_config *cfg, config_setting_t *g,
           int idx, struct fg_rule *out)
{
	struct rule_parse rp;
	bool seen[R__COUNT];
	char prefix[64], key[96];
	int line = config_setting_source_line(g);
	struct fg_rule *r = &rp.rule;
	config_setting_t *ladder, *nets;

	memset(&rp, 0, sizeof(rp));
	snprintf(prefix, sizeof(prefix), "rules[%d].", idx + 1);
	snprintf(key, sizeof(key), "rules[%d]", idx + 1);
	if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
		CERR(c, line, key, "expected a group { name = ...; type = ...; }");
		*out = rp.rule;
		return;
	}
	r->type = (enum fg_rule_type)-1;
	fg_cfg_parse_group(c, g, prefix, rule_fields, R__COUNT, &rp, seen, NULL);
	r->line = line;
	if (seen[R_TYPE] && r->type == (enum fg_rule_type)-1) {
		/* Reported already; nothing else can be judged. */
		fg_cfg_free_reply(&rp.sh.reply);
		*out = rp.rule;
		return;
	}
	if (r->name != NULL)
		snprintf(key, sizeof(key), "rules[%d] (%s)", idx + 1, r->name);
	if (!seen[R_NAME])
		CERR(c, line, key, "name is required");
	if (!seen[R_TYPE]) {
		CERR(c, line, key, "type is required (one of "
		     "connection_rate, concurrency, invalid_recipients, "
		     "recipient_rate, rejected_recipients, helo_rate, "
		     "mail_rate, bad_recipient_throttle, "
		     "recipients_per_message)");
		fg_cfg_free_reply(&rp.sh.reply);
		*out = rp.rule;
		return;
	}
	if (!seen[R_PER])
		r->per = rule_default_per(r->type);
	else if (!rule_per_allowed(r->type, r->per))
		CERR(c, line, key, "a %s rule cannot count per %s",
		     fg_rule_type_name(r->type), fg_per_name(r->per));
	if (!seen[R_LIMIT])
		CERR(c, line, key, "limit is required (0 = unlimited)");
	if (rule_is_window(r->type)) {
		if (!seen[R_WINDOW])
			CERR(c, line, key, "window is required for a %s rule "
			     "(e.g. window = \"1h\")", fg_rule_type_name(r->type));
	} else if (seen[R_WINDOW]) {
		CERR(c, line, key, "a %s rule has no window",
		     fg_rule_type_name(r->type));
	}
	if ((seen[R_RATIO] || seen[R_MIN_SAMPLE]) &&
	    r->type != FG_RULE_INVALID_RECIPIENTS)
		CERR(c, line, key, "ratio and min_sample only go with "
		     "invalid_recipients");
	parse_act_on(c, cfg, r, seen, line, key);
	if (seen[R_PREFIX4] && r->prefix4 < 8 &&
	    (r->per == FG_PER_NETWORK || fg_rule_pairs(r)))
		CERR(c, line, key, "prefix4 %u is too short (8..32)", r->prefix4);
	if (seen[R_PREFIX6] && r->prefix6 < 16 &&
	    (r->per == FG_PER_NETWORK || fg_rule_pairs(r)))
		CERR(c, line, key, "prefix6 %u is too short (16..128)", r->prefix6);
	if ((seen[R_PREFIX4] || seen[R_PREFIX6]) && r->per != FG_PER_NETWORK &&
	    !fg_rule_pairs(r))
		CERR(c, line, key, "prefix4/prefix6 only go with per = "
		     "\"network\" or act_on = \"network\"");
	if (!seen[R_DECAY])
		r->decay_ms = r->window_ms > 0 ? r->window_ms : 3600 * MS_S;
	/* Counts over a window are shared once the shared group is there;
	 * concurrency and in-session counts stay on each host. */
	if (!seen[R_SHARED])
		r->shared = rule_is_window(r->type) && cfg->shared.present;
	else if (r->shared && !rule_is_window(r->type))
		CERR(c, line, key, "a %s rule counts on each host alone and "
		     "cannot be shared", fg_rule_type_name(r->type));
	/* Masking is on by default where it means something. */
	if (!seen[R_MASK])
		r->mask = r->type == FG_RULE_INVALID_RECIPIENTS;
	else if (r->mask && r->type != FG_RULE_INVALID_RECIPIENTS)
		CERR(c, line, key, "mask only goes with invalid_recipients");

	ladder = config_setting_get_member(g, "ladder");
	if (ladder != NULL) {
		if (seen[R_ACTION] || seen[R_DELAY] || seen[R_THEN] ||
		    seen[R_BAN] || seen[R_REPLY] || seen[R_GROWTH])
			CERR(c, line, key, "give either a ladder or action/"
			     "delay/then/ban/reply, not both");
		snprintf(prefix, sizeof(prefix), "rules[%d].ladder", idx + 1);
		parse_ladder(c, cfg, r, ladder, prefix);
	} else {
		r->steps = fg_cfg_calloc(c, 1, sizeof(*r->steps));
		if (r->steps != NULL) {
			struct fg_step *st = r->steps;
			default_step(r, st);
			st->line = line;
			if (seen[R_ACTION] && rp.sh.action != st->action) {
				/* Another action than the type's default:
				 * drop the default's delay and reply. */
				st->action = rp.sh.action;
				st->delay_ms = 0;
				st->growth = FG_GROW_FIXED;
				memset(&st->reply, 0, sizeof(st->reply));
			}
			if (seen[R_DELAY])
				st->delay_ms = rp.sh.delay_ms;
			if (seen[R_GROWTH])
				st->growth = rp.sh.growth;
			if (seen[R_THEN])
				st->then = rp.sh.then;
			if (seen[R_BAN])
				st->ban_ms = rp.sh.ban_ms;
			if (seen[R_REPLY]) {
				st->reply = rp.sh.reply;
				memset(&rp.sh.reply, 0, sizeof(rp.sh.reply));
			}
			r->nsteps = 1;
			check_step(c, cfg, key, st,
			           seen[R_DELAY] || st->delay_ms > 0,
			           seen[R_BAN]);
		}
	}
	fg_cfg_free_reply(&rp.sh.reply);
	if (r->type == FG_RULE_CONCURRENCY || r->type == FG_RULE_RCPTS_PER_MESSAGE) {
		for (size_t i = 0; i < r->nsteps; i++)
			if (r->steps[i].action == FG_ACT_DELAY)
				CERR(c, r->steps[i].line, key, "a %s rule cannot "
				     "delay", fg_rule_type_name(r->type));
	}

	nets = config_setting_get_member(g, "networks");
	if (nets != NULL) {
		snprintf(prefix, sizeof(prefix), "rules[%d].networks", idx + 1);
		if (r->per == FG_PER_HELO || r->per == FG_PER_RCPT_DOMAIN ||
		    r->per == FG_PER_SENDER_DOMAIN)
			CERR(c, line, prefix, "per-network limits need a rule "
			     "that counts per address, network, global, "
			     "session or message");
		parse_overrides(c, r, nets, prefix);
	}
	*out = rp.rule;
}

void
fg_cfg_parse_rules(struct ctx *c, struct fg_config *cfg, config_setting_t *s)
{
	int t = config_setting_type(s);
	int n;

	if (t != CONFIG_TYPE_LIST) {
		CERR(c, config_setting_source_line(s), "rules", "expected a "
		     "list ( { ... }, { ... } ), got %s", fg_cfg_type_name(t));
		return;
	}
	n = config_setting_length(s);
	if (n > 256) {
		CERR(c, config_setting_source_line(s), "rules", "at most 256 "
		     "rules");
		return;
	}
	cfg->rules = fg_cfg_calloc(c, (size_t)n, sizeof(*cfg->rules));
	if (cfg->rules == NULL)
		return;
	for (int i = 0; i < n; i++) {
		config_setting_t *g = config_setting_get_elem(s, (unsigned)i);
		struct fg_rule *r = &cfg->rules[cfg->nrules++];

		parse_rule(c, cfg, g, i, r);
		for (int j = 0; j < i && r->name != NULL; j++) {
			if (cfg->rules[j].name != NULL &&
			    strcmp(cfg->rules[j].name, r->name) == 0)
				CERR(c, r->line, "rules", "rule name \"%s\" "
				     "used twice (first at line %d)", r->name,
				     cfg->rules[j].line);
		}
	}
}

void
fg_cfg_free_rules(struct fg_config *cfg)
{
	for (size_t i = 0; i < cfg->nrules; i++) {
		struct fg_rule *r = &cfg->rules[i];
		free(r->name);
		for (size_t j = 0; j < r->nsteps; j++)
			fg_cfg_free_reply(&r->steps[j].reply);
		free(r->steps);
		fg_nettab_free(r->overrides, NULL);
		free(r->override_list);
	}
	free(cfg->rules);
	cfg->rules = NULL;
	cfg->nrules = 0;
}
