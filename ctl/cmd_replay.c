/*
 * cmd_replay.c - what a proposed policy would have done: the stored
 * events, in time order, fed through the daemon's own session engine
 * (lib/session.c) over counters in memory, and the verdicts compared
 * with those the daemon recorded.
 *
 * Every stored session becomes a session again: connect with the host
 * and daemon names the daemon stored, MAIL with its SMTP AUTH mark, each
 * recipient with the MTA's class (a recipient only the daemon's
 * valid_recipients called unknown is given back as the MTA saw it, and
 * the proposed list decides again), and close when the daemon closed it
 * (or after its last stored event, for a session whose close was never
 * stored).  Sleeps are replayed in time: a delayed session holds its
 * tarpit place until the delay has passed, so max_delayed_sessions is
 * reproduced.  Nothing is written and nothing dropped: the store holds
 * counters only.
 *
 * A folded row (store.h, "Folding": the rows of sessions refused at
 * their connect, n identical ones of a second in one) is n sessions
 * again: the first lives until the row's session closes, as a session
 * does; the others, refused at connect as the daemon refused them, close
 * at once, as the MTA closed them (unless the proposed policy delays
 * them: then they sleep, and close with the first).  All are fed at the
 * row's time: within that second, the replay sees them before events of
 * other clients that came between them.
 *
 * What the database does not hold cannot be replayed: bans set by hand
 * or before the period; refusals the daemon made because of such a ban
 * are told apart in the comparison.  Counters are warmed up with the
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
#include "replay.h"
#include "session.h"
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

/* One session of the engine: a stored session, or one of the copies a
 * folded row stands for. */
struct rcopy {
	fg_session *s;
	int64_t wake_ms;          /* asleep in a delay until then; 0: not */
};

/* A stored session id and its sessions (more than one: a folded row). */
struct rsess {
	struct rsess *next;
	uint64_t id;
	bool in_period;
	struct rcopy **c;
	size_t n, cap;
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
sess_find(const struct smap *m, uint64_t id)
{
	struct rsess *s;

	if (m->tab == NULL)
		return NULL;
	for (s = m->tab[slot(m, id)]; s != NULL; s = s->next)
		if (s->id == id)
			return s;
	return NULL;
}

static struct rsess *
sess_add(struct smap *m, uint64_t id)
{
	struct rsess *s;

	if (m->tab == NULL) {
		m->mask = 255;
		m->tab = xcalloc(m->mask + 1, sizeof(*m->tab));
	}
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

/* A new engine session at the end of s's. */
static struct rcopy *
copy_add(struct rsess *s, const struct fg_session_env *env,
         const struct fg_config *cfg)
{
	struct rcopy *c = xcalloc(1, sizeof(*c));

	if ((c->s = fg_session_new(env, cfg, s->id)) == NULL)
		oom();
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 1;
		s->c = xrealloc(s->c, s->cap * sizeof(*s->c));
	}
	s->c[s->n++] = c;
	return c;
}

/* Removes copy i from s (its session freed, not closed). */
static void
copy_drop(struct rsess *s, size_t i)
{
	fg_session_free(s->c[i]->s);
	free(s->c[i]);
	memmove(&s->c[i], &s->c[i + 1], (s->n - i - 1) * sizeof(*s->c));
	s->n--;
}

static void
sess_drop(struct smap *m, struct rsess *s)
{
	struct rsess **pp = &m->tab[slot(m, s->id)];

	while (s->n > 0)
		copy_drop(s, s->n - 1);
	free(s->c);
	while (*pp != s)
		pp = &(*pp)->next;
	*pp = s->next;
	m->n--;
	free(s);
}

static void
smap_free(struct smap *m)
{
	for (size_t i = 0; m->tab != NULL && i <= m->mask; i++)
		while (m->tab[i] != NULL) {
			/* False positive: sess_drop() unlinks it from its slot, which is i. */
			/* NOLINTNEXTLINE(clang-analyzer-unix.Malloc) */
			sess_drop(m, m->tab[i]);
		}
	free(m->tab);
}

/* ---- the replay ---------------------------------------------------------------- */

struct replay {
	const struct fg_config *cfg;
	struct fg_session_env env;
	struct fg_tarpit tarpit;
	struct smap sessions;
	struct rcopy **sleepers;      /* sessions asleep in a delay */
	size_t nsleepers, sleepcap;
	int64_t last_expire;
	struct replay_result res;
};

/* Wakes the sleepers whose delay is over by now. */
static void
wake(struct replay *r, int64_t now)
{
	for (size_t i = 0; i < r->nsleepers;) {
		struct rcopy *c = r->sleepers[i];

		if (c->wake_ms > now) {
			i++;
			continue;
		}
		fg_session_delay_done(c->s);
		c->wake_ms = 0;
		r->sleepers[i] = r->sleepers[--r->nsleepers];
	}
}

static void
unsleep(struct replay *r, struct rcopy *c)
{
	for (size_t i = 0; i < r->nsleepers; i++)
		if (r->sleepers[i] == c) {
			r->sleepers[i] = r->sleepers[--r->nsleepers];
			break;
		}
	c->wake_ms = 0;
}

/* Closes copy i of s at now, and lets it go. */
static void
copy_close(struct replay *r, struct rsess *s, size_t i, int64_t now)
{
	unsleep(r, s->c[i]);
	fg_session_close(s->c[i]->s, now);
	copy_drop(s, i);
}

/* The verdict's traces in the result: its bans, and itself when the
 * daemon would have recorded it. */
static void
note(struct replay *r, struct rcopy *s, const struct fg_stored_event *ev,
     enum fg_stage stage, const struct fg_verdict *v)
{
	struct replay_result *res = &r->res;
	struct rv *o;

	if (v->delay_ms > 0 && !v->monitor) {
		if (r->nsleepers == r->sleepcap) {
			r->sleepcap = r->sleepcap ? r->sleepcap * 2 : 64;
			r->sleepers = xrealloc(r->sleepers, r->sleepcap *
			                                    sizeof(*r->sleepers));
		}
		if (s->wake_ms == 0)
			r->sleepers[r->nsleepers++] = s;
		s->wake_ms = ev->time_ms + v->delay_ms;
	}
	if (v->action == FG_ACT_CONTINUE && !v->monitor && v->delay_ms == 0)
		return;
	if (ev->time_ms <= res->since)
		return;   /* warming up */
	if (v->ban.set) {
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
	o = rv_add(&res->mine);
	o->time_ms = ev->time_ms;
	o->session = ev->session_id;
	copy(o->client, sizeof(o->client), ev->client);
	copy(o->stage, sizeof(o->stage), fg_stage_name(stage));
	copy(o->rule, sizeof(o->rule), v->rule != NULL ? v->rule->name
	                               : v->banned ? "ban" : NULL);
	copy(o->key, sizeof(o->key), v->key);
	copy(o->action, sizeof(o->action), fg_verdict_action(r->cfg, v));
	o->monitor = v->monitor;
}

/* The class the MTA gave: a recipient the daemon's own valid_recipients
 * called unknown was valid to the MTA. */
static enum fg_rcpt_class
mta_class(const struct fg_stored_event *ev, const char **status)
{
	*status = ev->status;
	if (ev->rcpt_class == FG_RCPT_INVALID && ev->status != NULL &&
	    strcmp(ev->status, FG_SESSION_LIST_STATUS) == 0) {
		*status = NULL;
		return FG_RCPT_VALID;
	}
	return ev->rcpt_class;
}

/* Feeds one stored event to its session. */
static const struct fg_verdict *
feed(struct rcopy *s, const struct fg_stored_event *ev, enum fg_stage *stage)
{
	const char *status;
	enum fg_rcpt_class cls;
	fg_addr a;

	switch (ev->kind) {
	case FG_EV_CONNECT:
		*stage = FG_STAGE_CONNECT;
		return fg_session_connect(s->s, ev->client != NULL &&
		                          fg_addr_parse(ev->client, &a) == 0
		                              ? &a : NULL,
		                          ev->host, ev->daemon, ev->time_ms);
	case FG_EV_HELO:
		*stage = FG_STAGE_HELO;
		return fg_session_helo(s->s, ev->helo, ev->time_ms);
	case FG_EV_MAIL:
		*stage = FG_STAGE_MAIL;
		return fg_session_mail(s->s, ev->sender, ev->queue_id,
		                       ev->authenticated, ev->time_ms);
	case FG_EV_RCPT:
		*stage = FG_STAGE_RCPT;
		cls = mta_class(ev, &status);
		return fg_session_rcpt(s->s, ev->rcpt, cls, status, NULL,
		                       ev->queue_id, ev->time_ms);
	case FG_EV_CLOSE:
	default:
		return NULL;
	}
}

/* Feeds the event to copy c and notes the verdict. */
static void
feed_note(struct replay *r, struct rcopy *c, const struct fg_stored_event *ev)
{
	enum fg_stage stage = FG_STAGE_CONNECT;
	const struct fg_verdict *v;

	/* A session whose connect lies before the walk starts in the
	 * middle: its first stored event connects it (as an unknown
	 * client's). */
	if ((v = feed(c, ev, &stage)) != NULL)
		note(r, c, ev, stage, v);
}

static int
on_event(void *arg, const struct fg_stored_event *ev)
{
	struct replay *r = arg;
	int64_t n = ev->n > 1 ? ev->n : 1;
	struct rsess *s;
	size_t first;

	if (ev->time_ms < 0)
		return 0;
	wake(r, ev->time_ms);
	if ((s = sess_find(&r->sessions, ev->session_id)) == NULL) {
		if (ev->kind == FG_EV_CLOSE)
			return 0;  /* its connect is older than the walk */
		s = sess_add(&r->sessions, ev->session_id);
	}
	if (ev->time_ms > r->res.since) {
		r->res.events += n;
		if (!s->in_period) {
			s->in_period = true;
			r->res.sessions += ev->kind == FG_EV_CONNECT ? n : 1;
		}
	} else {
		r->res.warm += n;
	}
	if (ev->kind == FG_EV_CLOSE) {
		for (int64_t i = 0; i < n && s->n > 0; i++)
			copy_close(r, s, 0, ev->time_ms);
	} else if (ev->kind == FG_EV_CONNECT) {
		/* A folded connect: the copies after the first were refused
		 * and closed at once; only one the proposed policy put to
		 * sleep stays, to close with the first. */
		first = s->n;
		for (int64_t i = 0; i < n; i++) {
			size_t k = s->n;

			feed_note(r, copy_add(s, &r->env, r->cfg), ev);
			if (k > first && s->c[k]->wake_ms == 0)
				copy_close(r, s, k, ev->time_ms);
		}
	} else {
		if (s->n == 0)
			copy_add(s, &r->env, r->cfg);
		for (size_t i = 0; i < s->n && (int64_t)i < n; i++)
			feed_note(r, s->c[i], ev);
	}
	if (ev->kind == FG_EV_CLOSE || ev->session_ends) {
		if (ev->session_ends) {
			while (s->n > 0)
				copy_close(r, s, 0, ev->time_ms);
			sess_drop(&r->sessions, s);
		} else if (s->n == 0) {
			sess_drop(&r->sessions, s);
		}
	}
	if (ev->time_ms - r->last_expire >= EXPIRE_MS) {
		fg_store_expire(r->env.store, ev->time_ms);
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
	/* A folded row: a verdict for each session it stands for. */
	for (int64_t i = 1; i < v->n; i++) {
		struct rv *dup = rv_add(&r->res.theirs);

		*dup = r->res.theirs.v[r->res.theirs.n - 2];
	}
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
	fg_store *mem;
	int rc;

	if (start < 0)
		start = 0;
	memset(&so, 0, sizeof(so));
	so.horizon_ms = r->cfg->horizon_ms;
	so.counters_only = true;
	if ((rc = fg_store_open(&so, start, &mem, err, errlen)) < 0)
		return rc;
	r->env.store = mem;
	r->env.tarpit = &r->tarpit;
	r->env.log = false;
	r->last_expire = start;
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
	smap_free(&r.sessions);
	if (r.env.store != NULL)
		fg_store_close(r.env.store);
	free(r.sleepers);
	free(r.res.mine.v);
	free(r.res.theirs.v);
	free(r.res.bans);
	fg_config_release(cfg);
	return rc;
}
