/*
 * cmd_why.c - "why was this client blocked?" on one screen: exemptions,
 * the keys it counts under, bans of the address and its networks, every
 * rule with its key, count, limit, window and escalation level, the last
 * verdicts, and what the daemon's own decision function says about a
 * connection from it now.
 *
 * Every rule is measured by the policy itself (fg_policy_explain), with
 * the database standing in for the daemon's memory: counts come from the
 * per-second aggregates the daemon commits (at most a flush interval
 * behind), levels from the levels table.  Concurrency lives only in the
 * daemon's memory and is not shown.  Nothing here measures a rule.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "ctl.h"
#include "fg.h"
#include "keys.h"
#include "net.h"
#include "policy.h"
#include "query.h"
#include "share.h"

#define MAX_NAMES 5          /* HELO names and domains shown per rule */
#define MAX_ROWS 256

enum { O_LIMIT = CTL_OPT_BASE };

/* ---- the store, as the policy sees it, from the database ---------------- */

struct dbview {
	fg_query *q;
	const struct fg_config *cfg;
	/* The other hosts' counts, read from Redis when the configuration
	 * shares them; NULL otherwise. */
	fg_share *share;
	char share_error[200];
};

static int64_t
view_count(void *ctx, const char *key, enum fg_counter c, int64_t window_ms,
           int64_t now)
{
	struct dbview *v = ctx;

	/* The store clamps windows to its horizon; so do we. */
	if (window_ms > v->cfg->horizon_ms)
		window_ms = v->cfg->horizon_ms;
	return fg_query_count(v->q, key, c, window_ms, now);
}

/* A key's remote part: fetched the first time it is asked for. */
static int64_t
view_remote(void *ctx, const char *key, enum fg_counter c, int64_t window_ms,
            int64_t now, int64_t local, int64_t limit, struct fg_remote *out)
{
	struct dbview *v = ctx;
	struct fg_share_part part;

	(void)local;
	(void)limit;
	fg_share_note(v->share, key, &c, 1, now);
	if (fg_share_tick(v->share, now, now) != 0 && v->share_error[0] == '\0') {
		struct fg_share_status st;

		fg_share_get_status(v->share, &st);
		snprintf(v->share_error, sizeof(v->share_error), "%s",
		         st.reason[0] ? st.reason : "cannot reach the server");
	}
	fg_share_remote(v->share, key, c, window_ms, now, 0, 0, &part);
	out->count = part.count;
	out->age_ms = part.age_ms;
	out->nodes = part.nodes;
	return part.count;
}

/* Opens the reader of the other hosts' counts, if the configuration
 * shares them. */
static void
open_share(struct dbview *v)
{
	struct fg_share_transport t;

	v->share = NULL;
	v->share_error[0] = '\0';
	if (v->cfg->shared.backend != FG_SHARE_REDIS ||
	    fg_share_redis_transport(&t) != 0)
		return;
	if (fg_share_new(v->cfg, &t, NULL, &v->share) != 0) {
		t.free(t.ctx);
		return;
	}
	fg_share_read_only(v->share);
}

static int
view_ban(void *ctx, const char *key, int64_t now, struct fg_ban *out)
{
	return fg_query_ban_get(((struct dbview *)ctx)->q, key, now, out);
}

static int
view_level(void *ctx, const char *rule, const char *key, int *level,
           int64_t *last_ms)
{
	return fg_query_level_get(((struct dbview *)ctx)->q, rule, key, level,
	                          last_ms);
}

/* ---- one rule ------------------------------------------------------------- */

struct row {
	struct fg_trace_rule t;
	bool seen;               /* the client used such a name lately */
	char state[200];
};

static const char *
step_text(const struct fg_step *st)
{
	static char buf[96];

	switch (st->action) {
	case FG_ACT_DELAY:
		snprintf(buf, sizeof(buf), "delay %s then %s",
		         fmt_duration(st->delay_ms), fg_action_name(st->then));
		break;
	case FG_ACT_BAN:
		snprintf(buf, sizeof(buf), "ban for %s",
		         fmt_duration(st->ban_ms));
		break;
	default:
		snprintf(buf, sizeof(buf), "%s", fg_action_name(st->action));
		break;
	}
	return buf;
}

/* The policy's word on a rule, as a sentence. */
static void
describe(struct row *w)
{
	const struct fg_trace_rule *t = &w->t;
	const struct fg_rule *r = t->rule;

	if (!w->seen) {
		snprintf(w->state, sizeof(w->state),
		         "none used by this client lately");
		return;
	}
	if (r->type == FG_RULE_CONCURRENCY) {
		snprintf(w->state, sizeof(w->state),
		         "open sessions: in the daemon's memory only");
		return;
	}
	if (!t->windowed && t->why != FG_TRACE_UNLIMITED) {
		snprintf(w->state, sizeof(w->state),
		         "counted within one session, not stored");
		return;
	}
	switch (t->why) {
	case FG_TRACE_UNLIMITED:
		snprintf(w->state, sizeof(w->state), "unlimited");
		break;
	case FG_TRACE_GUARDED:
		snprintf(w->state, sizeof(w->state), "ratio guard: %" PRId64
		         " unknown in a sample of %" PRId64 " recipients "
		         "(role addresses, repeats and valid ones past "
		         "ratio_session_cap left out), under %.0f%%",
		         t->count, t->total, r->ratio * 100.0);
		break;
	case FG_TRACE_BELOW_STEP:
		snprintf(w->state, sizeof(w->state), "over by %" PRId64
		         ", below the first step", t->count - t->limit);
		break;
	case FG_TRACE_FIRED:
	case FG_TRACE_NOT_REFUSING:
		snprintf(w->state, sizeof(w->state), "over by %" PRId64
		         ": step %d, %s%s", t->count - t->limit, t->step + 1,
		         step_text(&r->steps[t->step]),
		         t->monitor ? " (monitor)" : "");
		break;
	default:
		snprintf(w->state, sizeof(w->state), "%s",
		         fg_trace_why_name(t->why));
		break;
	}
}

/* ---- gathering ------------------------------------------------------------- */

struct names {
	char key[MAX_NAMES][FG_KEY_MAX];
	size_t n;
};

static void
add_name(void *arg, const char *key, int64_t n)
{
	struct names *nm = arg;

	(void)n;
	if (nm->n < MAX_NAMES)
		snprintf(nm->key[nm->n++], FG_KEY_MAX, "%s", key);
}

struct verdicts {
	struct table *t;
	struct json *j;
	size_t n;
};

static int
show_verdict(void *arg, const struct fg_stored_verdict *v)
{
	struct verdicts *vs = arg;

	vs->n++;
	if (vs->j != NULL) {
		json_obj(vs->j);
		json_ktime(vs->j, "time", v->time_ms);
		json_kstr(vs->j, "stage", v->stage);
		json_kstr(vs->j, "rule", v->rule);
		json_kstr(vs->j, "key", v->key);
		json_kstr(vs->j, "action", v->action);
		json_kint(vs->j, "count", v->count);
		json_kint(vs->j, "limit", v->limit);
		json_kint(vs->j, "window_ms", v->window_ms);
		json_kint(vs->j, "delay_ms", v->delay_ms);
		json_kbool(vs->j, "monitor", v->monitor);
		json_kstr(vs->j, "reply", v->reply);
		json_kint(vs->j, "n", v->n);
		json_end(vs->j);
		return 0;
	}
	table_cell(vs->t, "%s", fmt_time_short(v->time_ms));
	table_cell_text(vs->t, v->stage);
	table_cell_text(vs->t, v->rule);
	table_cell_text(vs->t, v->key);
	/* A folded row: n identical verdicts of one second. */
	if (v->n > 1)
		table_cell(vs->t, "%s%s x%" PRId64, san(v->action),
		           v->monitor ? " (monitor)" : "", v->n);
	else
		table_cell(vs->t, "%s%s", san(v->action),
		           v->monitor ? " (monitor)" : "");
	if (v->limit > 0)
		table_cell(vs->t, "%" PRId64 "/%" PRId64, v->count, v->limit);
	else
		table_cell(vs->t, "-");
	table_cell_text(vs->t, v->reply);
	return 0;
}

struct why {
	struct ctl *c;
	const struct fg_config *cfg;
	fg_addr addr;
	char addr_key[FG_KEY_MAX];
	char network[FG_KEY_MAX];
	const char *exempt;
	char keys[FG_STORE_MAX_KEYS][FG_KEY_MAX];
	size_t nkeys;
	struct names helos;
	struct fg_ban_entry *bans;   /* those that concern the client */
	size_t nbans;
	struct row *rows;
	size_t nrows;
	struct fg_verdict now;
	size_t limit;
	bool no_config;          /* -d alone: rules and limits unknown */
	struct dbview *v;
	char allowed_by[FG_KEY_MAX + 40];
};

/* Does the ban of key concern this client? */
static bool
ban_concerns(const struct why *w, const char *key)
{
	/* Its address, a network of it, or a shared key paired with one. */
	if (strcmp(key, w->addr_key) == 0 || fg_key_covers(key, &w->addr))
		return true;
	for (size_t i = 0; i < w->helos.n; i++)
		if (strcmp(key, w->helos.key[i]) == 0)
			return true;
	return false;
}

/* The facts of a client that used the name key (a key of the kind the
 * rule is per), for the policy to measure that rule with. */
static void
facts_for(const struct fg_rule *r, const char *key, struct fg_facts *f,
          char *buf, size_t size)
{
	const char *colon = strchr(key, ':');
	const char *name = colon != NULL ? colon + 1 : key;

	switch (r->per) {
	case FG_PER_HELO:
		f->helo = name;
		break;
	case FG_PER_RCPT_DOMAIN:
		snprintf(buf, size, "x@%s", name);
		f->stage = FG_STAGE_RCPT;
		f->rcpt = buf;
		break;
	case FG_PER_SENDER_DOMAIN:
		snprintf(buf, size, "x@%s", name);
		f->sender = buf;
		break;
	default:
		break;
	}
}

static int
gather(struct why *w, struct dbview *v)
{
	const struct fg_config *cfg = w->cfg;
	struct fg_facts f, base;
	struct fg_view view = {
		.ctx = v, .count = view_count, .ban = view_ban,
		.level = view_level,
		.remote = v->share != NULL ? view_remote : NULL,
	};
	struct fg_trace tr = {NULL, 0, 0};
	struct fg_ban_entry *all;
	size_t nall;
	int64_t now = w->c->now_ms, since = now - cfg->horizon_ms;
	int rc;

	memset(&base, 0, sizeof(base));
	base.stage = FG_STAGE_CONNECT;
	base.client = &w->addr;
	w->exempt = fg_policy_exemption(cfg, &base);
	w->nkeys = fg_policy_event_keys(cfg, &base, w->keys, FG_STORE_MAX_KEYS);
	if ((rc = fg_query_client_keys(v->q, w->addr_key, FG_NAME_HELO, since,
	                               now, MAX_NAMES, add_name,
	                               &w->helos)) < 0)
		return rc;

	{
		struct fg_allow_entry *al;
		size_t nal;

		if ((rc = fg_query_allows(v->q, now, &al, &nal)) < 0)
			return rc;
		for (size_t i = 0; i < nal && w->exempt == NULL; i++)
			if (ban_concerns(w, al[i].key)) {
				snprintf(w->allowed_by, sizeof(w->allowed_by),
				         "allowed by an operator (%s)", al[i].key);
				w->exempt = w->allowed_by;
			}
		fg_query_free(al);
	}
	if ((rc = fg_query_bans(v->q, now, &all, &nall)) < 0)
		return rc;
	w->bans = xcalloc(nall, sizeof(*w->bans));
	for (size_t i = 0; i < nall; i++)
		if (ban_concerns(w, all[i].key))
			w->bans[w->nbans++] = all[i];
	fg_query_free(all);

	tr.cap = cfg->nrules;
	tr.rules = xcalloc(tr.cap > 0 ? tr.cap : 1, sizeof(*tr.rules));
	w->rows = xcalloc(MAX_ROWS, sizeof(*w->rows));
	for (size_t i = 0; i < cfg->nrules; i++) {
		const struct fg_rule *r = &cfg->rules[i];
		struct names nm = {.n = 0};
		enum fg_query_name which;
		bool named = r->per == FG_PER_HELO ||
		             r->per == FG_PER_RCPT_DOMAIN ||
		             r->per == FG_PER_SENDER_DOMAIN;

		if (named) {
			which = r->per == FG_PER_HELO ? FG_NAME_HELO
			      : r->per == FG_PER_RCPT_DOMAIN ? FG_NAME_RCPT_DOMAIN
			                                     : FG_NAME_SENDER_DOMAIN;
			if ((rc = fg_query_client_keys(v->q, w->addr_key, which,
			                               since, now, MAX_NAMES,
			                               add_name, &nm)) < 0)
				goto out;
		} else {
			add_name(&nm, "", 0);
		}
		if (nm.n == 0) {   /* no such name seen: one row saying so */
			struct row *row = &w->rows[w->nrows++];

			row->t.rule = r;
			row->t.level = row->t.step = -1;
			snprintf(row->t.key, sizeof(row->t.key), "-");
			describe(row);
			continue;
		}
		for (size_t k = 0; k < nm.n && w->nrows < MAX_ROWS; k++) {
			struct row *row = &w->rows[w->nrows++];
			char buf[FG_KEY_MAX + 8];

			f = base;
			facts_for(r, nm.key[k], &f, buf, sizeof(buf));
			fg_policy_explain(cfg, &f, &view, now, &tr);
			row->t = tr.rules[i];
			row->seen = true;
			describe(row);
		}
	}
	fg_policy_decide(cfg, &base, &view, now, &w->now);
	rc = 0;
out:
	free(tr.rules);
	return rc;
}

/* ---- output ------------------------------------------------------------------ */

static void
print_json(struct why *w, fg_query *q)
{
	struct json *j = json_new(stdout);
	struct verdicts vs = {NULL, j, 0};
	char desc[2048];

	json_obj(j);
	json_kstr(j, "client", w->addr_key);
	json_kstr(j, "network", w->network);
	json_ktime(j, "now", w->c->now_ms);
	json_kstr(j, "exempt", w->exempt);
	json_kbool(j, "limits_known", !w->no_config);
	json_key(j, "keys");
	json_arr(j);
	for (size_t i = 0; i < w->nkeys; i++)
		json_str(j, w->keys[i]);
	json_end(j);
	json_key(j, "helo_names");
	json_arr(j);
	for (size_t i = 0; i < w->helos.n; i++)
		json_str(j, w->helos.key[i]);
	json_end(j);
	json_key(j, "bans");
	json_arr(j);
	for (size_t i = 0; i < w->nbans; i++) {
		const char *why = NULL;

		json_obj(j);
		json_kstr(j, "key", w->bans[i].key);
		json_ktime(j, "until", w->bans[i].ban.until_ms);
		json_kstr(j, "reason", w->bans[i].ban.reason);
		json_kstr(j, "source", w->bans[i].ban.source);
		json_kbool(j, "checked", fg_policy_ban_checked(w->cfg,
		                                           w->bans[i].key, &why));
		json_end(j);
	}
	json_end(j);
	json_key(j, "rules");
	json_arr(j);
	for (size_t i = 0; i < w->nrows; i++) {
		const struct row *r = &w->rows[i];

		json_obj(j);
		const struct fg_trace_rule *t = &r->t;

		json_kstr(j, "rule", t->rule->name);
		json_kstr(j, "type", fg_rule_type_name(t->rule->type));
		json_kstr(j, "per", fg_per_name(t->rule->per));
		json_kstr(j, "key", t->key);
		json_key(j, "count");
		if (t->windowed)
			json_int(j, t->count);
		else
			json_null(j);
		json_kint(j, "limit", t->limit);
		json_kint(j, "window_ms", t->rule->window_ms);
		/* Levels and steps count from 1, as everywhere; null: none. */
		json_key(j, "level");
		if (t->level >= 0)
			json_int(j, t->level + 1);
		else
			json_null(j);
		json_key(j, "step");
		if (t->step >= 0)
			json_int(j, t->step + 1);
		else
			json_null(j);
		json_kstr(j, "action", t->step >= 0 ? fg_action_name(
		              t->rule->steps[t->step].action) : NULL);
		json_kbool(j, "monitor", t->monitor);
		json_kstr(j, "why", fg_trace_why_name(t->why));
		json_kstr(j, "state", r->state);
		if (t->shared) {
			char nodes[512];

			fg_share_node_names(w->v->share, t->remote.nodes, nodes,
			                    sizeof(nodes));
			json_kint(j, "here", t->here);
			json_key(j, "remote");
			json_obj(j);
			json_kint(j, "count", t->remote.count);
			json_kstr(j, "nodes", nodes);
			json_key(j, "age_ms");
			if (t->remote.age_ms >= 0)
				json_int(j, t->remote.age_ms);
			else
				json_null(j);
			json_end(j);
		}
		json_end(j);
	}
	json_end(j);
	json_key(j, "verdicts");
	json_arr(j);
	fg_query_verdicts(q, w->addr_key, 0, w->c->now_ms, w->limit,
	                  show_verdict, &vs);
	json_end(j);
	json_key(j, "connection_now");
	json_obj(j);
	json_kstr(j, "action", fg_action_name(w->now.action));
	json_kbool(j, "banned", w->now.banned);
	json_kstr(j, "rule", w->now.rule ? w->now.rule->name : NULL);
	json_kstr(j, "key", w->now.key[0] ? w->now.key : NULL);
	json_kstr(j, "describe", fg_verdict_describe(&w->now, desc,
	                                             sizeof(desc)));
	json_end(j);
	json_finish(j);
}

/* "count N = L here + R on <nodes> (<age> ms old)" for each shared
 * rule with remote data. */
static void
print_shared(const struct why *w)
{
	bool head = false;

	if (w->v->share == NULL)
		return;
	if (w->v->share_error[0] != '\0')
		printf("\nshared: %s: %s: the counts are this host's only\n",
		       san(w->cfg->shared.server), san(w->v->share_error));
	for (size_t i = 0; i < w->nrows; i++) {
		const struct fg_trace_rule *t = &w->rows[i].t;
		char nodes[512];

		if (!t->shared || t->remote.count == 0)
			continue;
		if (!head)
			printf("\ncounted on other hosts too (node %s):\n",
			       san(w->cfg->shared.node));
		head = true;
		fg_share_node_names(w->v->share, t->remote.nodes, nodes,
		                    sizeof(nodes));
		printf("  %s %s: count %" PRId64 " = %" PRId64 " here + %" PRId64
		       " on %s (%" PRId64 " ms old)\n", san(t->rule->name),
		       san(t->key), t->count, t->here, t->remote.count,
		       san(nodes), t->remote.age_ms < 0 ? 0 : t->remote.age_ms);
	}
}

static void
print_text(struct why *w, fg_query *q)
{
	struct table *t;
	struct verdicts vs = {NULL, NULL, 0};
	char desc[2048];

	printf("client %s, network %s; configuration %s\n", san(w->addr_key),
	       w->network[0] ? san(w->network) : "-", san(w->cfg->path));
	if (w->no_config)
		printf("no configuration could be read (%s): the rules and their "
		       "limits are unknown; give it with -c\n",
		       san(w->c->conf_path));
	if (w->no_config)
		printf("exempt: unknown without the configuration\n");
	else if (w->exempt != NULL)
		printf("exempt: %s: no rule and no ban applies to it\n",
		       w->exempt);
	else
		printf("exempt: no (authentication, host name and daemon "
		       "exemptions are decided per session)\n");
	printf("counted under:");
	for (size_t i = 0; i < w->nkeys; i++)
		printf(" %s", san(w->keys[i]));
	printf("\nHELO names lately:");
	for (size_t i = 0; i < w->helos.n; i++)
		printf(" %s", san(w->helos.key[i]));
	printf("%s\n\n", w->helos.n == 0 ? " -" : "");

	if (w->nbans == 0) {
		printf("bans: none of the address, its networks or its HELO "
		       "names\n\n");
	} else {
		printf("bans in force:\n");
		t = table_new("lllll", "KEY", "LEFT", "SOURCE", "REASON",
		              "CHECKED", (char *)NULL);
		for (size_t i = 0; i < w->nbans; i++) {
			const char *why = NULL;
			bool eff = fg_policy_ban_checked(w->cfg, w->bans[i].key,
			                             &why);

			table_cell_text(t, w->bans[i].key);
			table_cell(t, "%s", fmt_span(w->bans[i].ban.until_ms -
			                             w->c->now_ms));
			table_cell_text(t, w->bans[i].ban.source);
			table_cell_text(t, w->bans[i].ban.reason[0]
			                   ? w->bans[i].ban.reason : "-");
			table_cell(t, "%s", eff ? "yes" : "no: prefix unused");
		}
		table_print(t, stdout);
		table_free(t);
		putchar('\n');
	}

	if (w->no_config)
		printf("rules: unknown without the configuration\n");
	else
		printf("rules:\n");
	t = table_new("llrrlrl", "RULE", "KEY", "COUNT", "LIMIT", "WINDOW",
	              "LEVEL", "NOW", (char *)NULL);
	for (size_t i = 0; i < w->nrows; i++) {
		const struct row *r = &w->rows[i];

		table_cell_text(t, r->t.rule->name);
		table_cell_text(t, r->t.key);
		if (r->t.windowed)
			table_cell(t, "%" PRId64, r->t.count);
		else
			table_cell(t, "-");
		if (r->t.limit > 0)
			table_cell(t, "%" PRId64, r->t.limit);
		else
			table_cell(t, "-");
		table_cell(t, "%s", r->t.rule->window_ms > 0
		           ? fmt_duration(r->t.rule->window_ms) : "-");
		if (r->t.level >= 0)
			table_cell(t, "%d", r->t.level + 1);
		else
			table_cell(t, "-");
		table_cell_text(t, r->state);
	}
	table_print(t, stdout);
	table_free(t);
	print_shared(w);

	printf("\nlast verdicts:\n");
	vs.t = table_new("lllllrl", fmt_heading("TIME", w->c->now_ms), "STAGE", "RULE", "KEY",
	                 "ACTION", "COUNT", "REPLY", (char *)NULL);
	fg_query_verdicts(q, w->addr_key, 0, w->c->now_ms, w->limit,
	                  show_verdict, &vs);
	if (vs.n == 0)
		printf("none kept\n");
	else
		table_print(vs.t, stdout);
	table_free(vs.t);

	printf("\na connection now: %s\n",
	       fg_verdict_describe(&w->now, desc, sizeof(desc)));
}

static int
why_opt(void *arg, int id, const char *v)
{
	if (id == O_LIMIT)
		return ctl_count("why", "--limit", v, 1000, arg);
	return CTL_USAGE;
}

int
cmd_why(struct ctl *c, int argc, char **argv)
{
	static const struct ctl_opt opts[] = {
		{"limit", true, O_LIMIT}, {NULL, 0, 0},
	};
	struct why w;
	struct fg_config *cfg;
	struct dbview v;
	const char *pos[1];
	size_t npos;
	char err[600];
	int rc;

	memset(&w, 0, sizeof(w));
	w.c = c;
	w.limit = 10;
	if ((rc = ctl_parse(c, argc, argv, opts, why_opt, &w.limit, pos, 1,
	                    &npos, "why ADDRESS [--limit N]")) != CTL_OK)
		return rc;
	if (npos != 1)
		return ctl_fail(CTL_USAGE, "why: which address?\nusage: "
		                "floodgatectl why ADDRESS [--limit N]");
	if (fg_addr_parse(pos[0], &w.addr) != 0)
		return ctl_fail(CTL_USAGE, "why: '%s' is not an IP address",
		                san(pos[0]));
	/* With -d and no readable configuration: the database alone, the
	 * limits unknown (a configuration with no rules). */
	if (!c->conf_given && c->db_path != NULL &&
	    access(c->conf_path, R_OK) != 0) {
		if (fg_config_load_string("", "(none)", &cfg, NULL, NULL) != 0)
			return ctl_fail(CTL_RUNTIME, "why: out of memory");
		w.no_config = true;
	} else if ((rc = ctl_load_config(c->conf_path, false, &cfg)) != CTL_OK) {
		return rc;
	}
	w.cfg = cfg;
	fg_key_address(w.addr_key, &w.addr);
	fg_policy_network_key(cfg, &w.addr, w.network);
	if ((rc = ctl_open_db(c, cfg, FG_QUERY_READ, &v.q)) != CTL_OK) {
		fg_config_release(cfg);
		return rc;
	}
	v.cfg = cfg;
	w.v = &v;
	open_share(&v);
	/* One snapshot: counts, levels and bans of the same moment. */
	if (fg_query_begin(v.q) < 0 || gather(&w, &v) < 0) {
		rc = ctl_fail(CTL_RUNTIME, "why: %s",
		              fg_query_error(v.q, err, sizeof(err)));
	} else {
		if (c->json)
			print_json(&w, v.q);
		else
			print_text(&w, v.q);
	}
	fg_query_close(v.q);
	fg_share_free(v.share);
	free(w.bans);
	free(w.rows);
	fg_config_release(cfg);
	return rc;
}
