/*
 * policy.c - the decision: exemptions, then bans, then the rules.
 *
 * fg_policy_decide() reads the config snapshot, the facts and the view and
 * writes one verdict; it keeps no state, reads no clock and allocates
 * nothing, so any number of threads may call it at once.  Each rule is
 * measured into a small candidate (struct cand); the most severe
 * candidate becomes the verdict, and only then is its reply built.
 *
 * Choices the interface leaves open, made here:
 *
 *  - Severity.  Candidates are ranked by the action they end in (for a
 *    delay: its "then" action; a ban ranks above a plain disconnect, so a
 *    ban is never lost to an earlier disconnecting rule), then by the
 *    delay.  So a delay followed by tempfail beats a plain tempfail, a
 *    plain tempfail beats a delay followed by continue, and of two delays
 *    ending alike the longer wins.  Equal candidates: the first rule.
 *
 *  - Escalation levels.  A rule with more than one step and a decay > 0
 *    remembers, per key, the highest step it reached (the caller stores
 *    the level effects we return).  The remembered level falls one step
 *    per decay period since it was last refreshed.  It is a floor, and it
 *    applies only while the rule is over its limit (count > limit), never
 *    below: a rule never fires under its limit, whatever its history; a
 *    repeat offender that goes over again resumes at the step it had
 *    reached rather than climbing the ladder from the bottom.  Every step
 *    that fires refreshes its level (last = now), so "quiet" means "no
 *    over-limit event".  Session and message rules keep no levels (their
 *    keys are not shared between sessions), nor do one-step rules.
 *    decay = 0 turns levels off for a rule.
 *
 *  - Bans a rule sets go on its key when bans are checked for that kind
 *    of key (address, network, HELO, the pair of a shared key and the
 *    client's network); for other keys (global and domains acting on the
 *    key, session, message) they go on the client's address, or nowhere
 *    when the client is unknown (the session is still disconnected).
 *
 *  - A rule on a shared key (HELO, domains, global) acts by default on
 *    the client's network (act_on = "network"): its key is the pair of
 *    the shared key and the network (keys.h), so counts, steps, levels
 *    and bans land on that network's use of the key only, and a client
 *    cannot get everyone who shares a HELO name or a domain refused.
 *    An unknown client has no such key.  act_on = "key" counts the key
 *    alone, as before.
 *
 *  - A delay that cannot be given (the delayed-session budget is full or
 *    off, or max_delay is 0) becomes the step's "then" action, or tempfail
 *    when that is continue: the client was meant to be slowed down, and a
 *    4xx is the cheapest way to do that.
 *
 *  - Outside its own stage (recipient rules at connect and mail, connect
 *    and HELO rules at mail) a rule acts only through refusing steps; a
 *    delay step there does nothing, whatever its "then".
 *
 *  - Monitor verdicts (and, in global monitor mode, existing bans) keep
 *    the rule, step and counts for the log but carry no reply: continue
 *    has none.
 *
 *  - Exemptions: a host name suffix ".example.org" (or "*.example.org")
 *    covers names below example.org only; "example.org" covers itself
 *    too.  Daemon names compare without regard to case.
 */
#include "policy.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "fg.h"
#include "keys.h"
#include "log.h"
#include "net.h"

const char *
fg_stage_name(enum fg_stage s)
{
	switch (s) {
	case FG_STAGE_CONNECT: return "connect";
	case FG_STAGE_HELO: return "helo";
	case FG_STAGE_MAIL: return "mail";
	case FG_STAGE_RCPT: return "rcpt";
	}
	return "?";
}

/* ---- the view, with its NULL defaults ----------------------------- */

static int64_t
view_count(const struct fg_view *vw, const char *key, enum fg_counter c,
           int64_t window_ms, int64_t now_ms)
{
	int64_t n;

	if (vw == NULL || vw->count == NULL)
		return 0;
	n = vw->count(vw->ctx, key, c, window_ms, now_ms);
	return n > 0 ? n : 0;
}

static int64_t
view_remote(const struct fg_view *vw, const char *key, enum fg_counter c,
            int64_t window_ms, int64_t now_ms, int64_t local, int64_t limit,
            struct fg_remote *out)
{
	int64_t n;

	out->count = 0;
	out->age_ms = -1;
	out->nodes = 0;
	if (vw->remote == NULL)
		return 0;
	n = vw->remote(vw->ctx, key, c, window_ms, now_ms, local, limit, out);
	out->count = n > 0 ? n : 0;
	return out->count;
}

static int64_t
view_concurrent(const struct fg_view *vw, const char *key)
{
	int64_t n;

	if (vw == NULL || vw->concurrent == NULL)
		return 0;
	n = vw->concurrent(vw->ctx, key);
	return n > 0 ? n : 0;
}

static bool
view_banned(const struct fg_view *vw, const char *key, int64_t now_ms,
            struct fg_ban *b)
{
	if (vw == NULL || vw->ban == NULL)
		return false;
	return vw->ban(vw->ctx, key, now_ms, b) == 1;
}

static bool
view_level(const struct fg_view *vw, const char *rule, const char *key,
           int *level, int64_t *last_ms)
{
	if (vw == NULL || vw->level == NULL)
		return false;
	return vw->level(vw->ctx, rule, key, level, last_ms) == 1;
}

/* ---- clients and network levels ----------------------------------- */

static const fg_addr *
client_of(const struct fg_facts *f)
{
	const fg_addr *a = f->client;

	if (a == NULL || (a->family != FG_AF_INET && a->family != FG_AF_INET6))
		return NULL;
	return a;
}

/* Which prefix lengths any network key is made at, per family. */
struct netlens {
	bool v4[33];
	bool v6[129];
};

static void
netlens_collect(const struct fg_config *cfg, struct netlens *nl)
{
	memset(nl, 0, sizeof(*nl));
	if (cfg->network_prefix4 <= 32)
		nl->v4[cfg->network_prefix4] = true;
	if (cfg->network_prefix6 <= 128)
		nl->v6[cfg->network_prefix6] = true;
	for (size_t i = 0; i < cfg->nrules; i++) {
		const struct fg_rule *r = &cfg->rules[i];
		if (r->per != FG_PER_NETWORK)
			continue;
		if (r->prefix4 <= 32)
			nl->v4[r->prefix4] = true;
		if (r->prefix6 <= 128)
			nl->v6[r->prefix6] = true;
	}
}

/* The used lengths of a's family, longest first, shorter than a host
 * prefix (a host prefix is the address key).  Returns how many. */
static size_t
netlens_for(const struct netlens *nl, const fg_addr *a, unsigned *out)
{
	const bool *used = a->family == FG_AF_INET ? nl->v4 : nl->v6;
	unsigned bits = fg_addr_bits(a);
	size_t n = 0;

	for (unsigned len = bits; len-- > 0;)
		if (used[len])
			out[n++] = len;
	return n;
}

void
fg_policy_client_keys(const struct fg_config *cfg, const fg_addr *a,
                      struct fg_client_keys *out)
{
	struct netlens nl;
	unsigned lens[129];
	size_t n;

	out->address[0] = '\0';
	out->nnets = 0;
	out->all_nets = false;
	if (cfg == NULL || a == NULL ||
	    (a->family != FG_AF_INET && a->family != FG_AF_INET6))
		return;
	fg_key_address(out->address, a);
	netlens_collect(cfg, &nl);
	n = netlens_for(&nl, a, lens);
	for (size_t i = 0; i < n && i < FG_POLICY_MAX_NETS; i++) {
		out->lens[i] = lens[i];
		fg_key_network(out->nets[i], a, lens[i]);
		out->nnets++;
	}
	out->all_nets = out->nnets == n;
}

/* netlens_for() the client a of f, from the session's keys if they have
 * every length. */
static size_t
client_lens(const struct fg_config *cfg, const struct fg_facts *f,
            const fg_addr *a, unsigned *out)
{
	const struct fg_client_keys *ck = f->client_keys;
	struct netlens nl;

	if (ck != NULL && ck->address[0] != '\0' && ck->all_nets) {
		memcpy(out, ck->lens, ck->nnets * sizeof(*out));
		return ck->nnets;
	}
	netlens_collect(cfg, &nl);
	return netlens_for(&nl, a, out);
}

/* The key of the network of length len around the client a of f (the
 * address key for a host prefix): the session's copy if f has one, else
 * formatted into buf (FG_KEY_MAX bytes). */
static const char *
client_net_key(const struct fg_facts *f, const fg_addr *a, unsigned len,
               char *buf)
{
	const struct fg_client_keys *ck = f->client_keys;

	if (ck != NULL && ck->address[0] != '\0') {
		if (len >= fg_addr_bits(a))
			return ck->address;
		for (size_t i = 0; i < ck->nnets; i++)
			if (ck->lens[i] == len)
				return ck->nets[i];
	}
	return fg_key_network(buf, a, len);
}

static const char *
client_key(const struct fg_facts *f, const fg_addr *a, char *buf)
{
	return client_net_key(f, a, fg_addr_bits(a), buf);
}

/* Copies a key into a buffer of FG_KEY_MAX bytes, cut to fit. */
static void
copy_key(char *dst, const char *src)
{
	size_t len = strnlen(src, FG_KEY_MAX - 1);

	memcpy(dst, src, len);
	dst[len] = '\0';
}

void
fg_policy_network_key(const struct fg_config *cfg, const fg_addr *a,
                      char *buf)
{
	buf[0] = '\0';
	if (cfg == NULL || a == NULL)
		return;
	if (a->family == FG_AF_INET)
		fg_key_network(buf, a, cfg->network_prefix4);
	else if (a->family == FG_AF_INET6)
		fg_key_network(buf, a, cfg->network_prefix6);
}

/* Whether a rule counts under the shared key of kind per itself (not
 * paired with the client's network). */
static bool
any_rule_per(const struct fg_config *cfg, enum fg_per per)
{
	for (size_t i = 0; i < cfg->nrules; i++)
		if (cfg->rules[i].per == per && !fg_rule_pairs(&cfg->rules[i]))
			return true;
	return false;
}

static bool rule_key(const struct fg_rule *r, const struct fg_facts *f,
                     char *key);

/* Appends key to keys[] unless present or full. */
static size_t
keys_add(char (*keys)[FG_KEY_MAX], size_t n, size_t max, const char *key)
{
	if (n >= max || key[0] == '\0')
		return n;
	for (size_t i = 0; i < n; i++)
		if (strcmp(keys[i], key) == 0)
			return n;
	copy_key(keys[n], key);
	return n + 1;
}

size_t
fg_policy_event_keys(const struct fg_config *cfg, const struct fg_facts *f,
                     char (*keys)[FG_KEY_MAX], size_t max)
{
	const fg_addr *a = client_of(f);
	char key[FG_KEY_MAX];
	size_t n = 0;

	if (cfg == NULL || keys == NULL)
		return 0;
	if (a != NULL) {
		unsigned lens[129];
		size_t nlens;

		n = keys_add(keys, n, max, client_key(f, a, key));
		nlens = client_lens(cfg, f, a, lens);
		for (size_t i = 0; i < nlens; i++)
			n = keys_add(keys, n, max,
			             client_net_key(f, a, lens[i], key));
	}
	if (f->helo != NULL && any_rule_per(cfg, FG_PER_HELO))
		n = keys_add(keys, n, max, fg_key_helo(key, f->helo));
	if (f->stage == FG_STAGE_RCPT && f->rcpt != NULL &&
	    any_rule_per(cfg, FG_PER_RCPT_DOMAIN))
		n = keys_add(keys, n, max, fg_key_rcpt_domain(key, f->rcpt));
	if (f->sender != NULL && any_rule_per(cfg, FG_PER_SENDER_DOMAIN))
		n = keys_add(keys, n, max, fg_key_sender_domain(key, f->sender));
	if (any_rule_per(cfg, FG_PER_GLOBAL))
		n = keys_add(keys, n, max, fg_key_global(key));
	/* Shared keys paired with the client's network, as far as they can
	 * be formed yet. */
	for (size_t i = 0; i < cfg->nrules; i++)
		if (fg_rule_pairs(&cfg->rules[i]) &&
		    rule_key(&cfg->rules[i], f, key))
			n = keys_add(keys, n, max, key);
	return n;
}

/* ---- exemptions --------------------------------------------------- */

/*
 * Does host end with suffix on a label boundary?  ".example.org" (or
 * "*.example.org") covers only names below example.org; "example.org"
 * covers itself and every name below it.  Case and one trailing dot of
 * the host are ignored.
 */
static bool
host_matches(const char *host, const char *suffix)
{
	size_t hl = strlen(host), sl;

	if (hl > 0 && host[hl - 1] == '.')
		hl--;
	if (suffix[0] == '*' && suffix[1] == '.')
		suffix++;
	sl = strlen(suffix);
	if (sl == 0 || (sl == 1 && suffix[0] == '.'))
		return false;
	if (suffix[0] == '.')
		return hl > sl && strncasecmp(host + hl - sl, suffix, sl) == 0;
	if (hl == sl)
		return strncasecmp(host, suffix, sl) == 0;
	return hl > sl && host[hl - sl - 1] == '.' &&
	       strncasecmp(host + hl - sl, suffix, sl) == 0;
}

const char *
fg_policy_exemption(const struct fg_config *cfg, const struct fg_facts *f)
{
	const struct fg_exempt *e = &cfg->exempt;
	const fg_addr *a = client_of(f);

	if (a != NULL && e->networks != NULL &&
	    fg_nettab_lookup(e->networks, a, NULL, NULL) == 1)
		return "exempt network";
	if (f->authenticated && e->authenticated)
		return "authenticated";
	if (f->client_host != NULL)
		for (size_t i = 0; i < e->nhostnames; i++)
			if (host_matches(f->client_host, e->hostnames[i]))
				return "exempt hostname";
	if (f->daemon_name != NULL)
		for (size_t i = 0; i < e->ndaemons; i++)
			if (strcasecmp(f->daemon_name, e->daemons[i]) == 0)
				return "exempt daemon";
	return NULL;
}

/* ---- replies ------------------------------------------------------ */

struct vars {
	int64_t count, limit, window_ms, delay_ms;
};

static void
fmt_seconds(char *buf, size_t size, int64_t ms)
{
	size_t n;

	if (ms % 1000 == 0) {
		snprintf(buf, size, "%" PRId64, ms / 1000);
		return;
	}
	snprintf(buf, size, "%" PRId64 ".%03" PRId64, ms / 1000, ms % 1000);
	n = strlen(buf);
	while (n > 0 && buf[n - 1] == '0')
		buf[--n] = '\0';
}

/*
 * Copies a configured reply line into out (FG_REPLY_LINE_MAX bytes),
 * expanding ${count}, ${limit}, ${window} and ${delay} (seconds).  Other
 * text is copied as is but for bytes outside printable ASCII, which
 * become spaces; the result is cut to fit.
 */
static void
expand_line(char *out, const char *in, const struct vars *vs)
{
	size_t o = 0;

	for (const char *p = in; *p != '\0' && o < FG_REPLY_LINE_MAX - 1;) {
		char val[64];
		const char *name = NULL;
		size_t nl = 0;

		if (p[0] == '$' && p[1] == '{') {
			static const char *const names[] = {
				"count", "limit", "window", "delay",
			};
			for (size_t i = 0; i < FG_NELEM(names); i++) {
				nl = strlen(names[i]);
				if (strncmp(p + 2, names[i], nl) == 0 &&
				    p[2 + nl] == '}') {
					name = names[i];
					break;
				}
			}
		}
		if (name == NULL) {
			unsigned char c = (unsigned char)*p++;
			out[o++] = (char)(c >= 0x20 && c < 0x7f ? c : ' ');
			continue;
		}
		if (strcmp(name, "count") == 0)
			snprintf(val, sizeof(val), "%" PRId64, vs->count);
		else if (strcmp(name, "limit") == 0)
			snprintf(val, sizeof(val), "%" PRId64, vs->limit);
		else if (strcmp(name, "window") == 0) {
			if (vs->window_ms > 0)
				fg_duration_format(vs->window_ms, val, sizeof(val));
			else
				snprintf(val, sizeof(val), "-");
		} else
			fmt_seconds(val, sizeof(val), vs->delay_ms);
		for (const char *q = val; *q != '\0' && o < FG_REPLY_LINE_MAX - 1;)
			out[o++] = *q++;
		p += 3 + nl;
	}
	out[o] = '\0';
}

/*
 * The reply for action act: the configured one if it has a code, else
 * the default of the action.  A configured code without text gets the
 * default text.  Continue has no reply.
 */
static void
set_reply(struct fg_verdict *v, const struct fg_reply *conf,
          enum fg_action act, const struct fg_rule *rule,
          const struct vars *vs)
{
	const char *status = "", *text = NULL;
	int code = 0;

	v->code = 0;
	v->status[0] = '\0';
	v->nlines = 0;
	switch (act) {
	case FG_ACT_CONTINUE:
	case FG_ACT_DELAY:
		return;
	case FG_ACT_TEMPFAIL:
		code = 451;
		status = "4.7.1";
		text = "Too many requests from your network, try again later";
		if (rule != NULL && rule->type == FG_RULE_RCPTS_PER_MESSAGE) {
			code = 452;
			status = "4.5.3";
			text = "Too many recipients";
		}
		break;
	case FG_ACT_REJECT:
		code = 550;
		status = "5.7.1";
		text = "Refused by local policy";
		break;
	case FG_ACT_DISCONNECT:
	case FG_ACT_BAN:
		code = 421;
		status = "4.7.0";
		text = "Too many requests from your network, closing connection";
		break;
	}
	if (conf != NULL && conf->code != 0) {
		v->code = conf->code;
		snprintf(v->status, sizeof(v->status), "%s", conf->status);
		for (size_t i = 0; i < conf->nlines && i < FG_REPLY_MAX_LINES; i++)
			expand_line(v->lines[v->nlines++], conf->lines[i], vs);
		if (v->nlines > 0)
			return;
	} else {
		v->code = code;
		snprintf(v->status, sizeof(v->status), "%s", status);
	}
	expand_line(v->lines[0], text, vs);
	v->nlines = 1;
}

/* ---- rules -------------------------------------------------------- */

enum mode { M_SKIP, M_OWN, M_FOREIGN };

/*
 * Whether the rule is checked at this stage: at its own stage with its
 * whole ladder, at another stage ("foreign") with its refusing steps only.
 */
static enum mode
rule_mode(const struct fg_rule *r, const struct fg_facts *f)
{
	bool keyed = r->per == FG_PER_ADDRESS || r->per == FG_PER_NETWORK ||
	             r->per == FG_PER_GLOBAL;

	switch (r->type) {
	case FG_RULE_CONNECTION_RATE:
	case FG_RULE_CONCURRENCY:
		return f->stage == FG_STAGE_CONNECT ? M_OWN
		     : f->stage == FG_STAGE_MAIL ? M_FOREIGN : M_SKIP;
	case FG_RULE_HELO_RATE:
		return f->stage == FG_STAGE_HELO ? M_OWN
		     : f->stage == FG_STAGE_MAIL ? M_FOREIGN : M_SKIP;
	case FG_RULE_MAIL_RATE:
		return f->stage == FG_STAGE_MAIL ? M_OWN : M_SKIP;
	case FG_RULE_INVALID_RECIPIENTS:
	case FG_RULE_RECIPIENT_RATE:
	case FG_RULE_REJECTED_RECIPIENTS:
		if (f->stage == FG_STAGE_RCPT)
			return M_OWN;
		if ((f->stage == FG_STAGE_CONNECT || f->stage == FG_STAGE_MAIL) &&
		    keyed)
			return M_FOREIGN;
		return M_SKIP;
	case FG_RULE_BAD_RCPT_THROTTLE:
		return f->stage == FG_STAGE_RCPT &&
		       f->rcpt_class == FG_RCPT_INVALID ? M_OWN : M_SKIP;
	case FG_RULE_RCPTS_PER_MESSAGE:
		return f->stage == FG_STAGE_RCPT ? M_OWN : M_SKIP;
	}
	return M_SKIP;
}

static bool rule_key_alone(const struct fg_rule *r, const struct fg_facts *f,
                           char *key);

/* The rule's key for these facts; false if it cannot be formed yet.  A
 * rule on a shared key that acts on the client's network (act_on)
 * pairs the key with the network: none for an unknown client. */
static bool
rule_key(const struct fg_rule *r, const struct fg_facts *f, char *key)
{
	const fg_addr *a;
	char shared[FG_KEY_MAX], tmp[FG_KEY_MAX];

	if (!fg_rule_pairs(r))
		return rule_key_alone(r, f, key);
	if ((a = client_of(f)) == NULL || !rule_key_alone(r, f, shared))
		return false;
	fg_key_pair(key, client_net_key(f, a, a->family == FG_AF_INET
	                                          ? r->prefix4 : r->prefix6,
	                                tmp),
	            shared);
	return true;
}

/* The rule's key as its per says, unpaired. */
static bool
rule_key_alone(const struct fg_rule *r, const struct fg_facts *f, char *key)
{
	const fg_addr *a = client_of(f);
	char tmp[FG_KEY_MAX];
	unsigned len;

	switch (r->per) {
	case FG_PER_ADDRESS:
		if (a == NULL)
			return false;
		copy_key(key, client_key(f, a, tmp));
		return true;
	case FG_PER_NETWORK:
		if (a == NULL)
			return false;
		len = a->family == FG_AF_INET ? r->prefix4 : r->prefix6;
		copy_key(key, client_net_key(f, a, len, tmp));
		return true;
	case FG_PER_HELO:
		if (f->helo == NULL)
			return false;
		fg_key_helo(key, f->helo);
		return true;
	case FG_PER_RCPT_DOMAIN:
		if (f->stage != FG_STAGE_RCPT || f->rcpt == NULL)
			return false;
		fg_key_rcpt_domain(key, f->rcpt);
		return true;
	case FG_PER_SENDER_DOMAIN:
		if (f->sender == NULL)
			return false;
		fg_key_sender_domain(key, f->sender);
		return true;
	case FG_PER_GLOBAL:
		fg_key_global(key);
		return true;
	case FG_PER_SESSION:
		snprintf(key, FG_KEY_MAX, "session");
		return true;
	case FG_PER_MESSAGE:
		snprintf(key, FG_KEY_MAX, "message");
		return true;
	}
	return false;
}

/* The rule's limit for this client: the longest override, if any. */
static int64_t
rule_limit(const struct fg_rule *r, const struct fg_facts *f)
{
	const fg_addr *a = client_of(f);
	void *val = NULL;

	if (a != NULL && r->overrides != NULL &&
	    fg_nettab_lookup(r->overrides, a, &val, NULL) == 1 && val != NULL)
		return ((const struct fg_override *)val)->limit;
	return r->limit;
}

/* The windowed counter a rule compares with its limit; false for the
 * rules that count otherwise (concurrency, within a session). */
static bool
rule_counter(const struct fg_rule *r, enum fg_counter *c)
{
	switch (r->type) {
	case FG_RULE_CONNECTION_RATE: *c = FG_CNT_CONNECT; return true;
	case FG_RULE_RECIPIENT_RATE: *c = FG_CNT_RCPT; return true;
	case FG_RULE_REJECTED_RECIPIENTS: *c = FG_CNT_RCPT_REJECTED; return true;
	case FG_RULE_HELO_RATE: *c = FG_CNT_HELO; return true;
	case FG_RULE_MAIL_RATE: *c = FG_CNT_MAIL; return true;
	case FG_RULE_INVALID_RECIPIENTS: *c = FG_CNT_RCPT_INVALID; return true;
	case FG_RULE_CONCURRENCY:
	case FG_RULE_BAD_RCPT_THROTTLE:
	case FG_RULE_RCPTS_PER_MESSAGE:
		break;
	}
	return false;
}

/* One rule measured (and, if it fired, chosen). */
struct cand {
	const struct fg_rule *rule;
	const struct fg_step *step;
	int level;
	int next_level;         /* level to remember for the key */
	int stored;             /* remembered level after decay, -1 */
	int64_t count, limit, total;
	int64_t here;           /* shared: the local part of count */
	struct fg_remote remote;
	bool windowed, guarded, shared;
	enum fg_counter counter;
	enum fg_action action;  /* now: never BAN */
	enum fg_action final;   /* after any delay; BAN for a ban */
	int64_t delay_ms;
	bool skipped;
	bool monitor;
	bool masked;            /* answers as the MTA does an unknown user */
	char key[FG_KEY_MAX];   /* last: the rest is cleared per rule */
};

/* Fills c->count (and the ratio guard's c->total, c->guarded). */
static void
rule_measure(const struct fg_rule *r, const struct fg_facts *f,
             const struct fg_view *vw, int64_t now, struct cand *c)
{
	switch (r->type) {
	case FG_RULE_CONCURRENCY:
		c->count = view_concurrent(vw, c->key);
		return;
	case FG_RULE_BAD_RCPT_THROTTLE:
		c->count = f->session_invalid;
		return;
	case FG_RULE_RCPTS_PER_MESSAGE:
		c->count = f->message_rcpts;
		return;
	default:
		break;
	}
	if (!rule_counter(r, &c->counter))
		return;
	c->windowed = true;
	c->count = view_count(vw, c->key, c->counter, r->window_ms, now);
	if (r->shared && vw != NULL && vw->remote != NULL) {
		c->shared = true;
		c->here = c->count;
		c->count += view_remote(vw, c->key, c->counter, r->window_ms, now,
		                        c->here, c->limit, &c->remote);
	}
	if (r->type == FG_RULE_INVALID_RECIPIENTS && r->ratio > 0.0) {
		int64_t sample = r->min_sample > 1 ? r->min_sample : 1;

		c->total = view_count(vw, c->key, FG_CNT_RCPT_SAMPLE,
		                      r->window_ms, now);
		if (c->shared) {
			struct fg_remote all;
			c->total += view_remote(vw, c->key, FG_CNT_RCPT_SAMPLE,
			                        r->window_ms, now, 0, 0, &all);
		}
		c->guarded = c->total >= sample &&
		             (double)c->count / (double)c->total < r->ratio;
	}
}

bool
fg_policy_keeps_levels(const struct fg_rule *r)
{
	return r->nsteps > 1 && r->decay_ms > 0 && r->per != FG_PER_SESSION &&
	       r->per != FG_PER_MESSAGE;
}

/* The remembered level after decay, or -1. */
static int
stored_level(const struct fg_rule *r, const struct fg_view *vw,
             const char *key, int64_t now)
{
	int level;
	int64_t last;

	if (!view_level(vw, r->name, key, &level, &last))
		return -1;
	return fg_policy_decayed_level(r, level, last, now);
}

int
fg_policy_decayed_level(const struct fg_rule *r, int level, int64_t last_ms,
                        int64_t now_ms)
{
	uint64_t periods = 0;

	if (level < 0 || r->decay_ms <= 0)
		return -1;
	if (now_ms > last_ms)
		periods = ((uint64_t)now_ms - (uint64_t)last_ms) /
		          (uint64_t)r->decay_ms;
	if (periods > (uint64_t)level)
		return -1;
	level -= (int)periods;
	return level < (int)r->nsteps ? level : (int)r->nsteps - 1;
}

const char *
fg_verdict_action(const struct fg_config *cfg, const struct fg_verdict *v)
{
	if (v->masked)
		return "mask";
	if (v->monitor) {
		if (v->step != NULL)
			return fg_action_name(v->step->action);
		if (v->banned)
			return fg_action_name(cfg->banned_action);
		return fg_action_name(v->action);
	}
	if (v->ban.set)
		return "ban";
	if (v->delay_ms > 0)
		return "delay";
	return fg_action_name(v->action);
}

/* Base delay grown for the n-th event into the step, capped. */
static int64_t
grow_delay(const struct fg_step *s, int64_t n, int64_t cap)
{
	int64_t d = s->delay_ms;

	if (d <= 0 || cap <= 0)
		return 0;
	if (n < 1)
		n = 1;
	switch (s->growth) {
	case FG_GROW_FIXED:
		break;
	case FG_GROW_LINEAR:
		d = n > cap / d ? cap : d * n;
		break;
	case FG_GROW_DOUBLING:
		d = n - 1 >= 62 || d > (cap >> (n - 1)) ? cap : d << (n - 1);
		break;
	}
	return d < cap ? d : cap;
}

static bool
cand_beats(const struct cand *a, const struct cand *b)
{
	if (b->rule == NULL)
		return true;
	if (a->masked != b->masked)
		return a->masked;
	if (a->final != b->final)
		return a->final > b->final;
	return a->delay_ms > b->delay_ms;
}

/* Is the key flagged for masking, and may this session be masked?  The
 * step is past the first of the ladder, or refuses. */
static bool
mask_applies(const struct fg_rule *r, const struct fg_facts *f, int idx,
             const struct fg_step *st)
{
	return r->mask && f->stage == FG_STAGE_RCPT && f->session_invalid > 0 &&
	       f->mask_line != NULL &&
	       (idx >= 1 || (st->action != FG_ACT_DELAY &&
	                     st->action != FG_ACT_CONTINUE));
}

/* The masking candidate: the step's delay (as an unknown recipient gets
 * it), then the MTA's own 5xx; a ban step still bans. */
static void
mask_cand(const struct fg_config *cfg, const struct fg_facts *f,
          const struct fg_step *st, int64_t over, struct cand *c)
{
	c->masked = true;
	c->next_level = c->level;
	c->delay_ms = 0;
	c->skipped = false;
	c->action = FG_ACT_REJECT;
	c->final = st->action == FG_ACT_BAN ? FG_ACT_BAN : FG_ACT_REJECT;
	if (st->action == FG_ACT_DELAY) {
		int64_t d = grow_delay(st, over - st->over + 1, cfg->max_delay_ms);

		if (d > 0 && cfg->max_delayed_sessions > 0 &&
		    f->delayed_sessions < cfg->max_delayed_sessions) {
			c->delay_ms = d;
			c->action = FG_ACT_DELAY;
		}
	}
}

/*
 * Measures one rule at mode m into *c; FG_TRACE_FIRED when one of its
 * steps applies (then *c is a candidate), else why not.
 */
static enum fg_trace_why
eval_rule(const struct fg_config *cfg, const struct fg_rule *r,
          const struct fg_facts *f, const struct fg_view *vw, int64_t now,
          enum mode m, struct cand *c)
{
	const struct fg_step *st;
	int64_t over;
	int idx = -1;

	c->rule = r;
	c->stored = -1;
	c->monitor = cfg->monitor || r->monitor;
	if (m == M_SKIP || r->nsteps == 0)
		return FG_TRACE_NOT_STAGE;
	if (!rule_key(r, f, c->key))
		return FG_TRACE_NO_KEY;
	c->limit = rule_limit(r, f);
	if (c->limit <= 0)
		return FG_TRACE_UNLIMITED;
	rule_measure(r, f, vw, now, c);
	if (fg_policy_keeps_levels(r))
		c->stored = stored_level(r, vw, c->key, now);
	if (c->guarded)
		return FG_TRACE_GUARDED;
	over = c->count - c->limit;
	if (over < 1)
		return FG_TRACE_UNDER;
	for (size_t i = 0; i < r->nsteps; i++)
		if (r->steps[i].over <= over)
			idx = (int)i;
	if (c->stored > idx)
		idx = c->stored;
	c->level = idx;
	if (idx < 0)
		return FG_TRACE_BELOW_STEP;
	st = &r->steps[idx];
	c->step = st;
	if (m == M_FOREIGN && (st->action == FG_ACT_CONTINUE ||
	                       st->action == FG_ACT_DELAY))
		return FG_TRACE_NOT_REFUSING;

	if (mask_applies(r, f, idx, st)) {
		mask_cand(cfg, f, st, over, c);
		return FG_TRACE_FIRED;
	}

	/*
	 * Escalation by persistence: a client that comes back while its key
	 * is refused at connect cannot add to the count it is refused for
	 * (no recipients get through), so each such refused connection moves
	 * the key one step up the ladder for next time.
	 */
	c->next_level = idx;
	if (m == M_FOREIGN && f->stage == FG_STAGE_CONNECT &&
	    idx + 1 < (int)r->nsteps)
		c->next_level = idx + 1;
	c->delay_ms = 0;
	c->skipped = false;
	c->action = c->final = st->action;
	if (st->action == FG_ACT_BAN) {
		c->action = FG_ACT_DISCONNECT;
	} else if (st->action == FG_ACT_DELAY) {
		int64_t d = grow_delay(st, over - st->over + 1, cfg->max_delay_ms);
		bool budget = cfg->max_delayed_sessions > 0 &&
		              f->delayed_sessions < cfg->max_delayed_sessions;

		c->final = st->then;
		if (d > 0 && budget) {
			c->delay_ms = d;
		} else {
			c->skipped = true;
			c->action = c->final = st->then != FG_ACT_CONTINUE
			                           ? st->then : FG_ACT_TEMPFAIL;
		}
	}
	return FG_TRACE_FIRED;
}

static void
trace_add(struct fg_trace *t, const struct cand *c, enum fg_trace_why why)
{
	struct fg_trace_rule *e;
	bool keyed = why != FG_TRACE_NOT_STAGE && why != FG_TRACE_NO_KEY;

	if (t == NULL || t->n >= t->cap)
		return;
	e = &t->rules[t->n++];
	e->rule = c->rule;
	e->why = why;
	if (keyed)
		copy_key(e->key, c->key);
	else
		e->key[0] = '\0';
	e->windowed = keyed && c->windowed;
	e->counter = c->counter;
	e->count = keyed ? c->count : 0;
	e->limit = keyed ? c->limit : c->rule->limit;
	e->window_ms = c->rule->window_ms;
	e->total = c->total;
	e->shared = keyed && c->shared;
	e->here = c->here;
	e->remote = c->remote;
	e->guarded = c->guarded;
	e->level = c->stored;
	e->step = why == FG_TRACE_FIRED || why == FG_TRACE_NOT_REFUSING
	              ? c->level : -1;
	e->monitor = c->monitor;
}

static void
ban_reason(const struct cand *c, char *buf, size_t size)
{
	const struct fg_rule *r = c->rule;
	char w[32];

	switch (r->type) {
	case FG_RULE_CONCURRENCY:
		snprintf(buf, size, "rule %s: %" PRId64 " > %" PRId64
		         " concurrent sessions", r->name, c->count, c->limit);
		break;
	case FG_RULE_BAD_RCPT_THROTTLE:
	case FG_RULE_RCPTS_PER_MESSAGE:
		snprintf(buf, size, "rule %s: %" PRId64 " > %" PRId64
		         " in one %s", r->name, c->count, c->limit,
		         r->type == FG_RULE_BAD_RCPT_THROTTLE ? "session"
		                                             : "message");
		break;
	default:
		snprintf(buf, size, "rule %s: %" PRId64 " > %" PRId64 " in %s",
		         r->name, c->count, c->limit,
		         fg_duration_format(r->window_ms, w, sizeof(w)));
		break;
	}
}

static void
set_ban(struct fg_verdict *v, const struct cand *c, const struct fg_facts *f,
        int64_t now)
{
	const struct fg_rule *r = c->rule;
	const fg_addr *a = client_of(f);
	int64_t ban_ms = c->step->ban_ms > 0 ? c->step->ban_ms : 0;

	if (r->per == FG_PER_ADDRESS || r->per == FG_PER_NETWORK ||
	    r->per == FG_PER_HELO || fg_rule_pairs(r))
		snprintf(v->ban.key, sizeof(v->ban.key), "%s", c->key);
	else if (a != NULL)
		fg_key_address(v->ban.key, a);
	else
		return;
	v->ban.set = true;
	v->ban.until_ms = now > INT64_MAX - ban_ms ? INT64_MAX : now + ban_ms;
	ban_reason(c, v->ban.reason, sizeof(v->ban.reason));
	snprintf(v->ban.source, sizeof(v->ban.source), "floodgate:%s", r->name);
}

/* The reply the MTA gives an unknown user, for a masked verdict. */
static void
mask_reply(struct fg_verdict *v, const struct fg_facts *f)
{
	v->masked = true;
	v->code = f->mask_code >= 400 && f->mask_code <= 599 ? f->mask_code
	                                                     : 550;
	snprintf(v->status, sizeof(v->status), "%s",
	         f->mask_status != NULL ? f->mask_status : "5.1.1");
	snprintf(v->lines[0], sizeof(v->lines[0]), "%s",
	         f->mask_line != NULL ? f->mask_line : "User unknown");
	v->nlines = 1;
}

/* Fills the "why" and the reply of v from c. */
static void
verdict_from(struct fg_verdict *v, const struct cand *c,
             const struct fg_facts *f)
{
	const struct fg_step *st = c->step;
	struct vars vs = {c->count, c->limit, c->rule->window_ms, c->delay_ms};
	enum fg_action reply_for = c->action;

	v->rule = c->rule;
	v->step = st;
	snprintf(v->key, sizeof(v->key), "%s", c->key);
	v->count = c->count;
	v->limit = c->limit;
	v->window_ms = c->rule->window_ms;
	v->level = c->level;
	v->action = c->action;
	v->delay_ms = c->delay_ms;
	v->delay_skipped = c->skipped;
	if (c->masked) {
		mask_reply(v, f);
		return;
	}
	if (c->action == FG_ACT_DELAY)
		reply_for = st->then;
	/* A skipped delay whose then was continue answers a default 4xx. */
	set_reply(v, c->skipped && st->then == FG_ACT_CONTINUE ? NULL
	                                                       : &st->reply,
	          reply_for, c->rule, &vs);
}

/* A verdict computed but not enforced: continue, no delay, no reply
 * (continue has none); the rule, step and counts stay for the log. */
static void
monitor_only(struct fg_verdict *v)
{
	v->monitor = true;
	v->action = FG_ACT_CONTINUE;
	v->delay_ms = 0;
	v->delay_skipped = false;
	v->code = 0;
	v->status[0] = '\0';
	v->nlines = 0;
}

/* A key banned by a masking rule: its sessions that sent unknown
 * recipients are masked too. */
static bool
banned_masked(const struct fg_config *cfg, const struct fg_facts *f,
              const struct fg_ban *b)
{
	static const char pre[] = "floodgate:";

	if (f->stage != FG_STAGE_RCPT || f->session_invalid <= 0 ||
	    f->mask_line == NULL ||
	    strncmp(b->source, pre, sizeof(pre) - 1) != 0)
		return false;
	for (size_t i = 0; i < cfg->nrules; i++)
		if (cfg->rules[i].mask &&
		    strcmp(cfg->rules[i].name, b->source + sizeof(pre) - 1) == 0)
			return true;
	return false;
}

/* The prefix lengths a's networks are looked up for bans at, longest
 * first, below a host prefix: where bans exist, if the view knows; else
 * the lengths the configuration counts by. */
static size_t
ban_lens(const struct fg_config *cfg, const struct fg_facts *f,
         const struct fg_view *vw, const fg_addr *a, unsigned *out)
{
	bool used[129];
	unsigned bits = fg_addr_bits(a), min = a->family == FG_AF_INET ? 8 : 16;
	size_t n = 0;

	if (vw->ban_lengths == NULL)
		return client_lens(cfg, f, a, out);
	vw->ban_lengths(vw->ctx, a->family, used);
	for (unsigned len = bits; len-- > min;)
		if (used[len])
			out[n++] = len;
	return n;
}

static bool
check_bans(const struct fg_config *cfg, const struct fg_facts *f,
           const struct fg_view *vw, int64_t now, struct fg_verdict *v)
{
	const fg_addr *a = client_of(f);
	char key[FG_KEY_MAX];
	const char *k = key;
	struct fg_ban b;
	bool hit = false;

	if (vw == NULL || vw->ban == NULL ||
	    (vw->any_bans != NULL && !vw->any_bans(vw->ctx)))
		return false;
	if (a != NULL) {
		unsigned lens[129];
		size_t n;

		k = client_key(f, a, key);
		hit = view_banned(vw, k, now, &b);
		n = ban_lens(cfg, f, vw, a, lens);
		for (size_t i = 0; i < n && !hit; i++) {
			k = client_net_key(f, a, lens[i], key);
			hit = view_banned(vw, k, now, &b);
		}
	}
	if (!hit && f->stage >= FG_STAGE_HELO && f->helo != NULL) {
		k = fg_key_helo(key, f->helo);
		hit = view_banned(vw, k, now, &b);
	}
	if (!hit && f->stage >= FG_STAGE_MAIL && f->sender != NULL) {
		k = fg_key_sender_domain(key, f->sender);
		hit = view_banned(vw, k, now, &b);
	}
	if (!hit && f->stage == FG_STAGE_RCPT && f->rcpt != NULL) {
		k = fg_key_rcpt_domain(key, f->rcpt);
		hit = view_banned(vw, k, now, &b);
	}
	/* The pairs of shared keys with the client's network that rules
	 * acting on the network may have banned. */
	for (size_t i = 0; i < cfg->nrules && !hit; i++) {
		k = key;
		hit = fg_rule_pairs(&cfg->rules[i]) &&
		      rule_key(&cfg->rules[i], f, key) &&
		      view_banned(vw, key, now, &b);
	}
	if (!hit)
		return false;

	struct vars vs = {0, 0, 0, 0};
	v->banned = true;
	snprintf(v->key, sizeof(v->key), "%s", k);
	if (banned_masked(cfg, f, &b)) {
		v->action = FG_ACT_REJECT;
		mask_reply(v, f);
		if (cfg->monitor)
			monitor_only(v);
		return true;
	}
	v->action = cfg->banned_action;
	if (v->action != FG_ACT_TEMPFAIL && v->action != FG_ACT_REJECT)
		v->action = FG_ACT_DISCONNECT;
	set_reply(v, &cfg->banned_reply, v->action, NULL, &vs);
	if (cfg->monitor)
		monitor_only(v);
	return true;
}

void
fg_policy_decide_traced(const struct fg_config *cfg, const struct fg_facts *f,
                        const struct fg_view *view, int64_t now_ms,
                        struct fg_verdict *v, struct fg_trace *trace)
{
	struct cand best, watch, c;
	bool have_best = false, have_watch = false;

	/* Everything up to the reply lines; the arrays after them are
	 * written as they fill (see policy.h). */
	memset(v, 0, offsetof(struct fg_verdict, lines));
	v->ban.set = false;
	v->nlevels = 0;
	v->action = FG_ACT_CONTINUE;
	if (trace != NULL)
		trace->n = 0;
	if (cfg == NULL || f == NULL)
		return;
	v->exempt_reason = f->exemption_known ? f->exemption
	                                      : fg_policy_exemption(cfg, f);
	if (v->exempt_reason != NULL) {
		v->exempt = true;
		return;
	}
	if (check_bans(cfg, f, view, now_ms, v))
		return;

	for (size_t i = 0; i < cfg->nrules; i++) {
		const struct fg_rule *r = &cfg->rules[i];
		enum fg_trace_why why;

		memset(&c, 0, offsetof(struct cand, key));
		c.key[0] = '\0';
		why = eval_rule(cfg, r, f, view, now_ms, rule_mode(r, f), &c);
		trace_add(trace, &c, why);
		if (why != FG_TRACE_FIRED)
			continue;
		if (c.monitor) {
			if (!have_watch || cand_beats(&c, &watch)) {
				watch = c;
				have_watch = true;
			}
			continue;
		}
		if (!have_best || cand_beats(&c, &best)) {
			best = c;
			have_best = true;
		}
		if (fg_policy_keeps_levels(r) && v->nlevels < FG_POLICY_MAX_LEVELS) {
			struct fg_effect_level *e = &v->levels[v->nlevels++];
			e->set = true;
			e->rule = r;
			snprintf(e->key, sizeof(e->key), "%s", c.key);
			e->level = c.next_level;
			e->last_ms = now_ms;
		}
	}
	if (have_best) {
		verdict_from(v, &best, f);
		if (best.final == FG_ACT_BAN)
			set_ban(v, &best, f, now_ms);
	} else if (have_watch) {
		verdict_from(v, &watch, f);
		monitor_only(v);
	}
}

void
fg_policy_decide(const struct fg_config *cfg, const struct fg_facts *f,
                 const struct fg_view *view, int64_t now_ms,
                 struct fg_verdict *v)
{
	fg_policy_decide_traced(cfg, f, view, now_ms, v, NULL);
}

void
fg_policy_explain(const struct fg_config *cfg, const struct fg_facts *f,
                  const struct fg_view *view, int64_t now_ms,
                  struct fg_trace *trace)
{
	struct cand c;

	trace->n = 0;
	for (size_t i = 0; cfg != NULL && f != NULL && i < cfg->nrules; i++) {
		memset(&c, 0, offsetof(struct cand, key));
		c.key[0] = '\0';
		trace_add(trace, &c, eval_rule(cfg, &cfg->rules[i], f, view,
		                               now_ms, M_OWN, &c));
	}
}

int
fg_policy_ban_checked(const struct fg_config *cfg, const char *key,
                      const char **why)
{
	fg_prefix p;

	(void)cfg;
	switch (fg_key_type_of(key)) {
	case FG_KEY_ADDRESS:
	case FG_KEY_HELO:
	case FG_KEY_SENDER_DOMAIN:
	case FG_KEY_RCPT_DOMAIN:
	case FG_KEY_PAIR:
		return 1;
	case FG_KEY_NETWORK:
		break;
	default:
		*why = "a ban of every client is not honoured: use a network";
		return 0;
	}
	if (fg_prefix_parse(key, &p) != 0) {
		*why = "not a network";
		return 0;
	}
	if (p.len < (p.addr.family == FG_AF_INET ? 8u : 16u)) {
		*why = p.addr.family == FG_AF_INET
		           ? "networks shorter than /8 are not honoured"
		           : "networks shorter than /16 are not honoured";
		return 0;
	}
	return 1;
}

bool
fg_verdict_equal(const struct fg_verdict *a, const struct fg_verdict *b)
{
	/* The head holds no uninitialised padding: decide clears it whole. */
	if (memcmp(a, b, offsetof(struct fg_verdict, lines)) != 0 ||
	    a->ban.set != b->ban.set || a->nlevels != b->nlevels)
		return false;
	for (size_t i = 0; i < a->nlines && i < FG_REPLY_MAX_LINES; i++)
		if (strcmp(a->lines[i], b->lines[i]) != 0)
			return false;
	if (a->ban.set &&
	    (strcmp(a->ban.key, b->ban.key) != 0 ||
	     a->ban.until_ms != b->ban.until_ms ||
	     strcmp(a->ban.reason, b->ban.reason) != 0 ||
	     strcmp(a->ban.source, b->ban.source) != 0))
		return false;
	for (size_t i = 0; i < a->nlevels && i < FG_POLICY_MAX_LEVELS; i++) {
		const struct fg_effect_level *x = &a->levels[i], *y = &b->levels[i];

		if (x->set != y->set || x->rule != y->rule ||
		    x->level != y->level || x->last_ms != y->last_ms ||
		    strcmp(x->key, y->key) != 0)
			return false;
	}
	return true;
}

/* ---- describing a verdict ----------------------------------------- */

struct sbuf {
	char *buf;
	size_t size, len;
};

static void sb_printf(struct sbuf *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
sb_printf(struct sbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (sb->len >= sb->size)
		return;
	va_start(ap, fmt);
	n = vsnprintf(sb->buf + sb->len, sb->size - sb->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	sb->len += (size_t)n;
	if (sb->len >= sb->size)
		sb->len = sb->size - 1;
}

static void
describe_reply(struct sbuf *sb, const struct fg_verdict *v)
{
	char line[FG_REPLY_LINE_MAX * 4];

	if (v->code == 0)
		return;
	sb_printf(sb, " reply=\"%d", v->code);
	if (v->status[0] != '\0')
		sb_printf(sb, " %s", fg_sanitize(line, sizeof(line), v->status));
	for (size_t i = 0; i < v->nlines && i < FG_REPLY_MAX_LINES; i++)
		sb_printf(sb, "%s%s", i == 0 ? " " : " | ",
		          fg_sanitize(line, sizeof(line), v->lines[i]));
	sb_printf(sb, "\"");
}

char *
fg_verdict_describe(const struct fg_verdict *v, char *buf, size_t size)
{
	struct sbuf sb = {buf, size, 0};
	char key[FG_KEY_MAX * 4], name[FG_KEY_MAX], d[32];

	if (buf == NULL || size == 0)
		return buf;
	buf[0] = '\0';
	if (v == NULL)
		return buf;
	fg_sanitize(key, sizeof(key), v->key);
	if (v->exempt) {
		sb_printf(&sb, "exempt=\"%s\" action=continue",
		          v->exempt_reason != NULL ? v->exempt_reason : "-");
		return buf;
	}
	if (v->banned) {
		sb_printf(&sb, "banned key=%s action=%s", key,
		          v->masked ? "mask" : fg_action_name(v->action));
	} else if (v->rule != NULL) {
		fg_sanitize(name, sizeof(name), v->rule->name);
		sb_printf(&sb, "rule=%s key=%s count=%" PRId64 " limit=%" PRId64,
		          name, key, v->count, v->limit);
		if (v->window_ms > 0)
			sb_printf(&sb, " window=%s", fg_duration_format(
			          v->window_ms, d, sizeof(d)));
		sb_printf(&sb, " level=%d action=%s", v->level + 1,
		          v->masked ? "mask" : fg_action_name(v->action));
		if (v->action == FG_ACT_DELAY && v->step != NULL)
			sb_printf(&sb, " delay=%s then=%s",
			          fg_duration_format(v->delay_ms, d, sizeof(d)),
			          fg_action_name(v->step->then));
		if (v->delay_skipped)
			sb_printf(&sb, " delay_skipped=yes");
		if (v->ban.set)
			sb_printf(&sb, " ban=%s", fg_duration_format(
			          v->step != NULL ? v->step->ban_ms : 0, d,
			          sizeof(d)));
	} else {
		sb_printf(&sb, "action=%s", fg_action_name(v->action));
	}
	if (v->monitor) {
		sb_printf(&sb, " monitor=yes");
		if (v->masked)
			sb_printf(&sb, " would=mask");
		else if (v->step != NULL)
			sb_printf(&sb, " would=%s", fg_action_name(
			          v->step->action == FG_ACT_DELAY &&
			          v->step->then != FG_ACT_CONTINUE
			              ? v->step->then : v->step->action));
	}
	describe_reply(&sb, v);
	return buf;
}

/* ---- describing a trace ------------------------------------------- */

const char *
fg_trace_why_name(enum fg_trace_why w)
{
	switch (w) {
	case FG_TRACE_FIRED: return "fired";
	case FG_TRACE_NOT_STAGE: return "not checked at this stage";
	case FG_TRACE_NO_KEY: return "no key yet";
	case FG_TRACE_UNLIMITED: return "unlimited";
	case FG_TRACE_GUARDED: return "ratio guard";
	case FG_TRACE_UNDER: return "under the limit";
	case FG_TRACE_BELOW_STEP: return "below the first step";
	case FG_TRACE_NOT_REFUSING: return "its step applies at its own stage";
	}
	return "?";
}

char *
fg_trace_describe(const struct fg_trace_rule *t, char *buf, size_t size)
{
	struct sbuf sb = {buf, size, 0};
	char key[FG_KEY_MAX * 4], name[FG_KEY_MAX], d[32];

	if (buf == NULL || size == 0)
		return buf;
	buf[0] = '\0';
	if (t == NULL || t->rule == NULL)
		return buf;
	fg_sanitize(name, sizeof(name), t->rule->name);
	sb_printf(&sb, "rule=%s", name);
	if (t->key[0] != '\0') {
		fg_sanitize(key, sizeof(key), t->key);
		sb_printf(&sb, " key=%s %s=%" PRId64 "/%" PRId64, key,
		          t->windowed ? fg_counter_name(t->counter) : "count",
		          t->count, t->limit);
		if (t->windowed)
			sb_printf(&sb, " window=%s", fg_duration_format(
			          t->window_ms, d, sizeof(d)));
		if (t->total > 0)
			sb_printf(&sb, " sample=%" PRId64, t->total);
		if (t->shared)
			sb_printf(&sb, " here=%" PRId64 " remote=%" PRId64
			          " age=%" PRId64 "ms", t->here, t->remote.count,
			          t->remote.age_ms);
		if (t->level >= 0)
			sb_printf(&sb, " level=%d", t->level + 1);
		if (t->step >= 0)
			sb_printf(&sb, " step=%d", t->step + 1);
	}
	sb_printf(&sb, " %s%s", t->why == FG_TRACE_FIRED ? "fired"
	          : t->why == FG_TRACE_GUARDED ? "guarded"
	          : t->why == FG_TRACE_UNDER ? "under"
	          : t->why == FG_TRACE_NOT_STAGE ? "skipped"
	          : t->why == FG_TRACE_NO_KEY ? "nokey"
	          : t->why == FG_TRACE_UNLIMITED ? "unlimited"
	          : t->why == FG_TRACE_BELOW_STEP ? "below-step"
	                                          : "not-here",
	          t->monitor ? " monitor" : "");
	return buf;
}
