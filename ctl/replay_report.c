/*
 * replay_report.c - the verdicts of a replay against the daemon's: which
 * are the same, which only one side has (and of the daemon's, which were
 * refusals by bans the replay could not know), who would have been
 * delayed or refused, and the report as tables or JSON.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "replay.h"

/* The order both lists are compared in. */
static int
rv_cmp(const void *pa, const void *pb)
{
	const struct rv *a = pa, *b = pb;
	int c;

	if (a->time_ms != b->time_ms)
		return a->time_ms < b->time_ms ? -1 : 1;
	if (a->session != b->session)
		return a->session < b->session ? -1 : 1;
	if ((c = strcmp(a->stage, b->stage)) != 0 ||
	    (c = strcmp(a->rule, b->rule)) != 0 ||
	    (c = strcmp(a->key, b->key)) != 0 ||
	    (c = strcmp(a->action, b->action)) != 0)
		return c;
	return (int)a->monitor - (int)b->monitor;
}

/* Did the replay have a ban of key in force at t? */
static bool
replay_banned(const struct replay_result *r, const char *key, int64_t t)
{
	for (size_t i = 0; i < r->nbans; i++)
		if (r->bans[i].from <= t && t < r->bans[i].until &&
		    strcmp(r->bans[i].key, key) == 0)
			return true;
	return false;
}

struct tally {
	int64_t same, mine_only, theirs_only, external;
};

static void
compare(struct replay_result *r, struct tally *t)
{
	size_t i = 0, k = 0;

	memset(t, 0, sizeof(*t));
	if (r->mine.n > 1)
		qsort(r->mine.v, r->mine.n, sizeof(struct rv), rv_cmp);
	if (r->theirs.n > 1)
		qsort(r->theirs.v, r->theirs.n, sizeof(struct rv), rv_cmp);
	while (i < r->mine.n || k < r->theirs.n) {
		int c = i == r->mine.n ? 1 : k == r->theirs.n ? -1
		        : rv_cmp(&r->mine.v[i], &r->theirs.v[k]);

		if (c == 0) {
			r->mine.v[i++].matched = true;
			r->theirs.v[k++].matched = true;
			t->same++;
		} else if (c < 0) {
			i++;
			t->mine_only++;
		} else {
			struct rv *o = &r->theirs.v[k++];

			t->theirs_only++;
			if (strcmp(o->rule, "ban") == 0 &&
			    !replay_banned(r, o->key, o->time_ms)) {
				o->external = true;
				t->external++;
			}
		}
	}
}

/* ---- who, and the differences ---------------------------------------------- */

struct who {
	const struct rv *v;       /* the first of the group */
	int64_t mine, theirs, first, last;
};

/* The action as shown: a monitor verdict says what it would have done. */
static const char *
shown_action(const struct rv *v)
{
	static char buf[2][40];
	static int i;

	if (!v->monitor)
		return v->action;
	i = !i;
	snprintf(buf[i], sizeof(buf[i]), "%s (monitor)", v->action);
	return buf[i];
}

/* Same client, rule, key, action and monitor flag: one row of "who". */
static int
same_group(const struct rv *a, const struct rv *b)
{
	int c;

	if ((c = strcmp(a->client, b->client)) != 0 ||
	    (c = strcmp(a->rule, b->rule)) != 0 ||
	    (c = strcmp(a->key, b->key)) != 0 ||
	    (c = strcmp(a->action, b->action)) != 0)
		return c;
	return (int)a->monitor - (int)b->monitor;
}

static int
group_cmp(const void *pa, const void *pb)
{
	const struct rv *a = *(const struct rv *const *)pa;
	const struct rv *b = *(const struct rv *const *)pb;
	int c = same_group(a, b);

	if (c != 0)
		return c;
	return a->time_ms < b->time_ms ? -1 : a->time_ms > b->time_ms;
}

static int
who_cmp(const void *pa, const void *pb)
{
	const struct who *a = pa, *b = pb;

	if (a->mine != b->mine)
		return a->mine > b->mine ? -1 : 1;
	if (a->theirs != b->theirs)
		return a->theirs > b->theirs ? -1 : 1;
	return group_cmp(&a->v, &b->v);
}

static struct who *
who_build(const struct replay_result *r, size_t *nout)
{
	size_t n = r->mine.n + r->theirs.n, nw = 0;
	const struct rv **all = xcalloc(n, sizeof(*all));
	struct who *w = xcalloc(n, sizeof(*w));

	for (size_t i = 0; i < r->mine.n; i++)
		all[i] = &r->mine.v[i];
	for (size_t i = 0; i < r->theirs.n; i++)
		all[r->mine.n + i] = &r->theirs.v[i];
	if (n > 1)
		qsort(all, n, sizeof(*all), group_cmp);
	for (size_t i = 0; i < n; i++) {
		const struct rv *v = all[i];

		if (nw == 0 || same_group(v, w[nw - 1].v) != 0) {
			w[nw].v = v;
			w[nw].first = v->time_ms;
			nw++;
		}
		if (v->daemon)
			w[nw - 1].theirs++;
		else
			w[nw - 1].mine++;
		w[nw - 1].last = v->time_ms;
	}
	free(all);
	if (nw > 1)
		qsort(w, nw, sizeof(*w), who_cmp);
	*nout = nw;
	return w;
}

/* The unmatched verdicts of both sides, in time order. */
static const struct rv **
diffs_build(const struct replay_result *r, size_t *nout)
{
	const struct rv **d = xcalloc(r->mine.n + r->theirs.n, sizeof(*d));
	size_t n = 0, i = 0, k = 0;

	while (i < r->mine.n || k < r->theirs.n) {
		const struct rv *a = i < r->mine.n ? &r->mine.v[i] : NULL;
		const struct rv *b = k < r->theirs.n ? &r->theirs.v[k] : NULL;
		const struct rv *next = b == NULL || (a != NULL &&
		                        rv_cmp(a, b) <= 0) ? a : b;

		if (next == a)
			i++;
		else
			k++;
		if (!next->matched)
			d[n++] = next;
	}
	*nout = n;
	return d;
}

static void
json_rv(struct json *j, const struct rv *v)
{
	json_obj(j);
	json_kstr(j, "side", v->daemon ? "daemon" : "replay");
	json_ktime(j, "time", v->time_ms);
	json_key(j, "session_id");
	json_uint(j, v->session);
	json_kstr(j, "client", v->client);
	json_kstr(j, "stage", v->stage);
	json_kstr(j, "rule", v->rule);
	json_kstr(j, "key", v->key);
	json_kstr(j, "action", v->action);
	json_kbool(j, "monitor", v->monitor);
	json_kbool(j, "external_ban", v->external);
	json_end(j);
}

static void
report_json(const struct replay_result *r, const struct tally *t,
            const struct who *w, size_t nw, const struct rv **d, size_t nd,
            size_t limit)
{
	struct json *j = json_new(stdout);

	json_obj(j);
	json_kstr(j, "config", r->conf);
	json_ktime(j, "since", r->since);
	json_ktime(j, "until", r->until);
	json_kint(j, "events", r->events);
	json_kint(j, "warmup_events", r->warm);
	json_kint(j, "sessions", r->sessions);
	json_key(j, "verdicts");
	json_obj(j);
	json_kint(j, "replay", (int64_t)r->mine.n);
	json_kint(j, "daemon", (int64_t)r->theirs.n);
	json_kint(j, "same", t->same);
	json_kint(j, "replay_only", t->mine_only);
	json_kint(j, "daemon_only", t->theirs_only);
	json_kint(j, "external_bans", t->external);
	json_end(j);
	json_kbool(j, "matches", t->mine_only == 0 &&
	                         t->theirs_only == t->external);
	json_key(j, "who");
	json_arr(j);
	for (size_t i = 0; i < nw; i++) {
		json_obj(j);
		json_kstr(j, "client", w[i].v->client);
		json_kstr(j, "rule", w[i].v->rule);
		json_kstr(j, "key", w[i].v->key);
		json_kstr(j, "action", w[i].v->action);
		json_kbool(j, "monitor", w[i].v->monitor);
		json_kint(j, "replay", w[i].mine);
		json_kint(j, "daemon", w[i].theirs);
		json_ktime(j, "first", w[i].first);
		json_ktime(j, "last", w[i].last);
		json_end(j);
	}
	json_end(j);
	json_key(j, "bans");
	json_arr(j);
	for (size_t i = 0; i < r->nbans; i++) {
		json_obj(j);
		json_kstr(j, "key", r->bans[i].key);
		json_ktime(j, "from", r->bans[i].from);
		json_ktime(j, "until", r->bans[i].until);
		json_kstr(j, "reason", r->bans[i].reason);
		json_end(j);
	}
	json_end(j);
	json_key(j, "differences");
	json_arr(j);
	for (size_t i = 0; i < nd && (limit == 0 || i < limit); i++)
		json_rv(j, d[i]);
	json_finish(j);
}

static void
report_text(const struct replay_result *r, const struct tally *t,
            const struct who *w, size_t nw, const struct rv **d, size_t nd,
            size_t limit)
{
	struct table *tb;
	bool same = t->mine_only == 0 && t->theirs_only == t->external;

	printf("replay of %s\n", san(r->conf));
	printf("period    %s .. %s %s (%s)\n", fmt_time(r->since),
	       fmt_time(r->until), fmt_zone(r->until),
	       fmt_span(r->until - r->since));
	printf("events    %" PRId64 " in %" PRId64 " sessions (and %" PRId64
	       " before, to warm the counters up)\n", r->events,
	       r->sessions, r->warm);
	printf("verdicts  replay %zu, daemon %zu: %" PRId64 " the same, %"
	       PRId64 " only in the replay, %" PRId64 " only in the daemon's "
	       "record\n", r->mine.n, r->theirs.n, t->same, t->mine_only,
	       t->theirs_only);
	if (t->external > 0)
		printf("          %" PRId64 " of the daemon's were refusals by "
		       "bans set outside the replay (floodgatectl, or before "
		       "the period)\n", t->external);
	printf("result    %s\n\n", same ? "the replay gives the daemon's "
	       "verdicts" : "the verdicts differ");

	if (nw == 0) {
		printf("nobody would have been delayed or refused\n");
	} else {
		printf("who would have been delayed, refused or banned:\n");
		tb = table_new("llllrr", "CLIENT", "RULE", "KEY", "ACTION",
		               "REPLAY", "DAEMON", (char *)NULL);
		for (size_t i = 0; i < nw && (limit == 0 || i < limit); i++) {
			table_cell_text(tb, w[i].v->client[0] ? w[i].v->client
			                                      : "-");
			table_cell_text(tb, w[i].v->rule);
			table_cell_text(tb, w[i].v->key);
			table_cell_text(tb, shown_action(w[i].v));
			table_cell(tb, "%" PRId64, w[i].mine);
			table_cell(tb, "%" PRId64, w[i].theirs);
		}
		table_print(tb, stdout);
		table_free(tb);
		if (limit > 0 && nw > limit)
			printf("... and %zu more\n", nw - limit);
	}
	if (r->nbans > 0) {
		printf("\nbans the replay would set:\n");
		tb = table_new("llll", "KEY", "FROM", "FOR", "REASON", (char *)NULL);
		for (size_t i = 0; i < r->nbans; i++) {
			table_cell_text(tb, r->bans[i].key);
			table_cell(tb, "%s", fmt_time_short(r->bans[i].from));
			table_cell(tb, "%s", fmt_span(r->bans[i].until -
			                              r->bans[i].from));
			table_cell_text(tb, r->bans[i].reason);
		}
		table_print(tb, stdout);
		table_free(tb);
	}
	if (nd > 0) {
		printf("\ndifferences (+ replay only, - daemon only):\n");
		tb = table_new("lllllll", "", fmt_heading("TIME", r->until), "CLIENT", "STAGE",
		               "RULE", "KEY", "ACTION", (char *)NULL);
		for (size_t i = 0; i < nd && (limit == 0 || i < limit); i++) {
			table_cell(tb, "%s", d[i]->daemon ? "-" : "+");
			table_cell(tb, "%s", fmt_time_short(d[i]->time_ms));
			table_cell_text(tb, d[i]->client);
			table_cell_text(tb, d[i]->stage);
			table_cell_text(tb, d[i]->rule);
			table_cell_text(tb, d[i]->key);
			table_cell(tb, "%s%s", san(shown_action(d[i])),
			           d[i]->external ? " (ban from outside)" : "");
		}
		table_print(tb, stdout);
		table_free(tb);
		if (limit > 0 && nd > limit)
			printf("... and %zu more\n", nd - limit);
	}
}

void
replay_report(const struct ctl *c, struct replay_result *res, size_t limit)
{
	const struct rv **d;
	struct who *w;
	struct tally t;
	size_t nw, nd;

	compare(res, &t);
	w = who_build(res, &nw);
	d = diffs_build(res, &nd);
	if (c->json)
		report_json(res, &t, w, nw, d, nd, limit);
	else
		report_text(res, &t, w, nw, d, nd, limit);
	free(w);
	free(d);
}
