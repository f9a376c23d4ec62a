/*
 * cmd_replay.c - what a proposed policy would have done: the stored
 * events, in time order, fed through the daemon's own pure code (record,
 * then fg_policy_decide) against an in-memory store, and the verdicts
 * compared with those the daemon recorded.
 *
 * The facts are rebuilt per session as milter/glue.c builds them: every
 * event carries the client, HELO name and sender the session had; the
 * session's count of unknown recipients and the transaction's count of
 * recipients are recounted (a MAIL starts a transaction); a connection
 * takes a concurrency slot under each of its keys and gives it back
 * after its last stored event (the close itself is not stored); no
 * session is ever asleep in a delay (delayed_sessions = 0).  Ban and
 * level effects go into the in-memory store exactly when the daemon
 * would apply them, and a verdict is recorded under the same condition
 * and with the same rule, key and action text as glue.c records it.
 *
 * What the database does not hold cannot be replayed: host name, daemon
 * name and SMTP AUTH (so those exemptions never match), and bans set by
 * hand or before the period; refusals the daemon made because of such a
 * ban are told apart in the comparison.  Counters are warmed up with the
 * events of one horizon (the longest window or decay of the proposed
 * rules) before the period, whose verdicts are not reported.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ctl.h"
#include "fg.h"
#include "keys.h"
#include "net.h"
#include "policy.h"
#include "query.h"
#include "rcptlist.h"
#include "replay.h"
#include "store.h"

#define HOUR_MS INT64_C(3600000)
#define MARGIN_MS 2000        /* let the daemon commit the latest rows */
#define EXPIRE_MS 5000        /* as the daemon's housekeeping */

enum { O_CONFIG = CTL_OPT_BASE, O_SINCE, O_LIMIT };

/* ---- verdicts ------------------------------------------------------------ */

static struct rv *
rv_add(struct rvlist *l)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 256;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	memset(&l->v[l->n], 0, sizeof(l->v[0]));
	return &l->v[l->n++];
}

static void
copy(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src != NULL ? src : "");
}

/* ---- sessions -------------------------------------------------------------- */

struct rsess {
	struct rsess *next;
	uint64_t id;
	int64_t session_invalid;
	int64_t message_rcpts;
	bool in_period;
	size_t nconc;
	char (*conc)[FG_KEY_MAX];
};

struct smap {
	struct rsess **tab;
	size_t mask, n;
};

static size_t
slot(const struct smap *m, uint64_t id)
{
	id ^= id >> 33;
	id *= UINT64_C(0xff51afd7ed558ccd);
	id ^= id >> 33;
	return (size_t)id & m->mask;
}

static struct rsess *
sess_get(struct smap *m, uint64_t id)
{
	struct rsess *s;

	if (m->tab == NULL) {
		m->mask = 255;
		m->tab = xcalloc(m->mask + 1, sizeof(*m->tab));
	}
	for (s = m->tab[slot(m, id)]; s != NULL; s = s->next)
		if (s->id == id)
			return s;
	if (m->n > 2 * (m->mask + 1)) {
		struct smap g = {NULL, m->mask * 2 + 1, m->n};

		g.tab = xcalloc(g.mask + 1, sizeof(*g.tab));
		for (size_t i = 0; i <= m->mask; i++)
			while ((s = m->tab[i]) != NULL) {
				m->tab[i] = s->next;
				s->next = g.tab[slot(&g, s->id)];
				g.tab[slot(&g, s->id)] = s;
			}
		free(m->tab);
		*m = g;
	}
	s = xcalloc(1, sizeof(*s));
	s->id = id;
	s->next = m->tab[slot(m, id)];
	m->tab[slot(m, id)] = s;
	m->n++;
	return s;
}

static void
sess_drop(struct smap *m, fg_store *st, struct rsess *s)
{
	struct rsess **pp = &m->tab[slot(m, s->id)];

	for (size_t i = 0; i < s->nconc; i++)
		fg_store_conn_release(st, s->conc[i]);
	while (*pp != s)
		pp = &(*pp)->next;
	*pp = s->next;
	m->n--;
	free(s->conc);
	free(s);
}

static void
smap_free(struct smap *m, fg_store *st)
{
	for (size_t i = 0; m->tab != NULL && i <= m->mask; i++)
		while (m->tab[i] != NULL) {
			/* False positive: sess_drop() unlinks it from its slot, which is i. */
			/* NOLINTNEXTLINE(clang-analyzer-unix.Malloc) */
			sess_drop(m, st, m->tab[i]);
		}
	free(m->tab);
}

/* ---- the replay ---------------------------------------------------------------- */

struct replay {
	const struct fg_config *cfg;
	fg_store *mem;
	struct fg_verdict *v;
	struct smap sessions;
	int64_t last_expire;
	struct replay_result res;
};

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

static enum fg_stage
stage_of(enum fg_event_kind k)
{
	switch (k) {
	case FG_EV_CONNECT: return FG_STAGE_CONNECT;
	case FG_EV_HELO: return FG_STAGE_HELO;
	case FG_EV_MAIL: return FG_STAGE_MAIL;
	default: return FG_STAGE_RCPT;
	}
}

/* glue.c's record(): the event under the keys of the new policy. */
static size_t
record(struct replay *r, const struct fg_stored_event *ev,
       const struct fg_facts *f, char (*keys)[FG_KEY_MAX])
{
	const char *kp[FG_STORE_MAX_KEYS];
	char network[FG_KEY_MAX];
	struct fg_event e;
	size_t n;

	n = fg_policy_exemption(r->cfg, f) != NULL
	        ? 0 : fg_policy_event_keys(r->cfg, f, keys, FG_STORE_MAX_KEYS);
	for (size_t i = 0; i < n; i++)
		kp[i] = keys[i];
	network[0] = '\0';
	if (f->client != NULL)
		fg_policy_network_key(r->cfg, f->client, network);
	memset(&e, 0, sizeof(e));
	e.time_ms = ev->time_ms;
	e.kind = ev->kind;
	e.rcpt_class = ev->kind == FG_EV_RCPT ? f->rcpt_class : FG_RCPT_NONE;
	e.client = f->client;
	e.network = network[0] != '\0' ? network : NULL;
	e.helo = f->helo;
	e.sender = f->sender;
	e.rcpt = f->rcpt;
	e.session_id = ev->session_id;
	e.keys = kp;
	e.nkeys = n;
	/* A full queue only drops the in-memory copy of the row. */
	fg_store_record(r->mem, &e);
	return n;
}

/* glue.c's apply(), minus the answer: effects and the verdict row. */
static void
apply(struct replay *r, const struct fg_stored_event *ev,
      const struct fg_verdict *v)
{
	struct rv *o;

	if (v->action == FG_ACT_CONTINUE && !v->monitor && v->delay_ms == 0)
		return;
	if (v->ban.set) {
		fg_store_ban_set(r->mem, v->ban.key, v->ban.until_ms,
		                 v->ban.reason, v->ban.source, ev->time_ms);
		if (ev->time_ms > r->res.since) {
			struct replay_result *res = &r->res;
			struct rban *b;

			if (res->nbans == res->bcap) {
				res->bcap = res->bcap ? res->bcap * 2 : 16;
				res->bans = xrealloc(res->bans, res->bcap *
				                                sizeof(*res->bans));
			}
			b = &res->bans[res->nbans++];
			copy(b->key, sizeof(b->key), v->ban.key);
			copy(b->reason, sizeof(b->reason), v->ban.reason);
			b->from = ev->time_ms;
			b->until = v->ban.until_ms;
		}
	}
	for (size_t i = 0; i < v->nlevels; i++)
		if (v->levels[i].set && v->levels[i].rule != NULL)
			fg_store_level_set(r->mem, v->levels[i].rule->name,
			                   v->levels[i].key, v->levels[i].level,
			                   v->levels[i].last_ms);
	if (ev->time_ms <= r->res.since)
		return;   /* warming up */
	o = rv_add(&r->res.mine);
	o->time_ms = ev->time_ms;
	o->session = ev->session_id;
	copy(o->client, sizeof(o->client), ev->client);
	copy(o->stage, sizeof(o->stage), fg_stage_name(stage_of(ev->kind)));
	copy(o->rule, sizeof(o->rule), v->rule != NULL ? v->rule->name
	                               : v->banned ? "ban" : NULL);
	copy(o->key, sizeof(o->key), v->key);
	copy(o->action, sizeof(o->action), fg_verdict_action(r->cfg, v));
	o->monitor = v->monitor;
}

static int
on_event(void *arg, const struct fg_stored_event *ev)
{
	struct replay *r = arg;
	struct fg_view view = {
		.ctx = r->mem, .count = view_count,
		.concurrent = view_concurrent, .ban = view_ban,
		.level = view_level,
	};
	char keys[FG_STORE_MAX_KEYS][FG_KEY_MAX];
	enum fg_rcpt_class cls = ev->rcpt_class;
	struct fg_facts f;
	struct rsess *s;
	fg_addr a;
	bool has;
	size_t n;

	if (ev->time_ms < 0)
		return 0;
	has = ev->client != NULL && fg_addr_parse(ev->client, &a) == 0;
	s = sess_get(&r->sessions, ev->session_id);
	if (ev->time_ms > r->res.since) {
		r->res.events++;
		if (!s->in_period) {
			s->in_period = true;
			r->res.sessions++;
		}
	} else {
		r->res.warm++;
	}
	if (ev->kind == FG_EV_MAIL)
		s->message_rcpts = 0;
	if (ev->kind == FG_EV_RCPT) {
		/* The new list of valid recipients, as glue.c applies it. */
		if (cls == FG_RCPT_VALID && r->cfg->valid_rcpts != NULL &&
		    ev->rcpt != NULL &&
		    fg_rcptlist_check(r->cfg->valid_rcpts, ev->rcpt) == 0)
			cls = FG_RCPT_INVALID;
		s->message_rcpts++;
		if (cls == FG_RCPT_INVALID)
			s->session_invalid++;
	}

	memset(&f, 0, sizeof(f));
	f.stage = stage_of(ev->kind);
	f.client = has ? &a : NULL;
	f.helo = ev->helo;
	f.sender = ev->sender;
	if (ev->kind == FG_EV_RCPT) {
		f.rcpt = ev->rcpt;
		f.rcpt_class = cls;
	}
	f.session_invalid = s->session_invalid;
	f.message_rcpts = s->message_rcpts;
	f.delayed_sessions = 0;

	n = record(r, ev, &f, keys);
	if (ev->kind == FG_EV_CONNECT && n > 0 && s->nconc == 0) {
		s->conc = xcalloc(n, sizeof(*s->conc));
		for (size_t i = 0; i < n; i++) {
			memcpy(s->conc[i], keys[i], FG_KEY_MAX);
			fg_store_conn_acquire(r->mem, s->conc[i]);
		}
		s->nconc = n;
	}
	fg_policy_decide(r->cfg, &f, &view, ev->time_ms, r->v);
	apply(r, ev, r->v);
	if (ev->session_ends)
		sess_drop(&r->sessions, r->mem, s);
	if (ev->time_ms - r->last_expire >= EXPIRE_MS) {
		fg_store_expire(r->mem, ev->time_ms);
		r->last_expire = ev->time_ms;
	}
	return 0;
}

static int
on_verdict(void *arg, const struct fg_stored_verdict *v)
{
	struct replay *r = arg;
	struct rv *o = rv_add(&r->res.theirs);

	o->daemon = true;
	o->time_ms = v->time_ms;
	o->session = v->session_id;
	copy(o->client, sizeof(o->client), v->client);
	copy(o->stage, sizeof(o->stage), v->stage);
	copy(o->rule, sizeof(o->rule), v->rule);
	copy(o->key, sizeof(o->key), v->key);
	copy(o->action, sizeof(o->action), v->action);
	o->monitor = v->monitor;
	return 0;
}

/* ---- the command ------------------------------------------------------------------ */

struct replay_opts {
	const char *conf;
	int64_t since;
	size_t limit;
};

static int
replay_opt(void *arg, int id, const char *v)
{
	struct replay_opts *o = arg;

	switch (id) {
	case O_CONFIG:
		o->conf = v;
		return CTL_OK;
	case O_SINCE:
		return ctl_duration("replay", "--since", v, &o->since);
	case O_LIMIT:
		return ctl_count("replay", "--limit", v, 1000000, &o->limit);
	}
	return CTL_USAGE;
}

static int
run(struct replay *r, fg_query *q, char *err, size_t errlen)
{
	struct fg_store_options so;
	int64_t start = r->res.since - r->cfg->horizon_ms;
	int rc;

	if (start < 0)
		start = 0;
	memset(&so, 0, sizeof(so));
	so.path = NULL;
	so.horizon_ms = r->cfg->horizon_ms;
	so.retention_ms = 60000;
	so.queue_size = 4096;
	if ((rc = fg_store_open(&so, start, &r->mem, err, errlen)) < 0)
		return rc;
	r->last_expire = start;
	r->v = xmalloc(sizeof(*r->v));
	/* Events and verdicts from one snapshot of the database. */
	if ((rc = fg_query_begin(q)) < 0 ||
	    (rc = fg_query_events(q, start, r->res.until, on_event, r)) < 0 ||
	    (rc = fg_query_verdicts(q, NULL, r->res.since, r->res.until, 0,
	                            on_verdict, r)) < 0)
		fg_query_error(q, err, errlen);
	fg_query_end(q);
	return rc;
}

int
cmd_replay(struct ctl *c, int argc, char **argv)
{
	static const struct ctl_opt opts[] = {
		{"config", true, O_CONFIG}, {"since", true, O_SINCE},
		{"limit", true, O_LIMIT}, {NULL, 0, 0},
	};
	static const char usage[] =
	    "replay --config NEW.conf [--since 24h] [--limit N]";
	struct replay_opts o = {NULL, 24 * HOUR_MS, 0};
	struct replay r;
	struct fg_config *cfg;
	const char *pos[1];
	size_t npos;
	fg_query *q;
	char err[600];
	int rc;

	if ((rc = ctl_parse(c, argc, argv, opts, replay_opt, &o, pos, 0, &npos,
	                    usage)) != CTL_OK)
		return rc;
	if (o.conf == NULL)
		return ctl_fail(CTL_USAGE, "replay: --config NEW.conf is "
		                "required\nusage: floodgatectl %s", usage);
	if (o.limit == 0 && !c->json)
		o.limit = 20;
	if ((rc = ctl_load_config(o.conf, true, &cfg)) != CTL_OK)
		return rc;
	/* The database: -d, else -c's, else the proposed file's own. */
	if ((rc = ctl_open_db(c, c->conf_given ? NULL : cfg, FG_QUERY_READ,
	                      &q)) != CTL_OK) {
		fg_config_release(cfg);
		return rc;
	}
	memset(&r, 0, sizeof(r));
	r.cfg = cfg;
	r.res.until = c->now_ms - MARGIN_MS;
	r.res.since = r.res.until - o.since;
	r.res.conf = o.conf;
	if (run(&r, q, err, sizeof(err)) < 0)
		rc = ctl_fail(CTL_RUNTIME, "replay: %s", err);
	else
		replay_report(c, &r.res, o.limit);
	fg_query_close(q);
	smap_free(&r.sessions, r.mem);
	if (r.mem != NULL)
		fg_store_close(r.mem);
	free(r.v);
	free(r.res.mine.v);
	free(r.res.theirs.v);
	free(r.res.bans);
	fg_config_release(cfg);
	return rc;
}
