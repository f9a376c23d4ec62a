/*
 * query_report.c - the read-only reports of query.h: top offenders,
 * window counts and levels, the names a client used, statistics, and
 * the stored history walked in time order.
 *
 * Statements are static text: where a report varies by what it groups on,
 * each variant is its own string, chosen by an enum, and every value is a
 * bound parameter.  Grouping by HELO name or domain goes through the SQL
 * functions query.c registers, which are the key builders of keys.c, so a
 * group reads exactly like the key the daemon counts and bans under.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fg.h"
#include "keys.h"
#include "query.h"
#include "query_internal.h"

#define HOUR_MS INT64_C(3600000)
#define TOP_DEFAULT_LIMIT 1000

static const char *const by_names[] = {
	[FG_BY_ADDRESS] = "address",
	[FG_BY_NETWORK] = "network",
	[FG_BY_HELO] = "helo",
	[FG_BY_DOMAIN] = "domain",
};

static const char *const kind_names[] = {
	[FG_KIND_INVALID] = "invalid",
	[FG_KIND_CONNECT] = "connect",
	[FG_KIND_RCPT] = "rcpt",
};

const char *
fg_query_by_name(enum fg_query_by by)
{
	return (unsigned)by < FG_NELEM(by_names) ? by_names[by] : "?";
}

int
fg_query_by_parse(const char *s, enum fg_query_by *out)
{
	for (size_t i = 0; s != NULL && i < FG_NELEM(by_names); i++)
		if (strcmp(s, by_names[i]) == 0) {
			*out = (enum fg_query_by)i;
			return 0;
		}
	return FG_EINVAL;
}

const char *
fg_query_kind_name(enum fg_query_kind k)
{
	return (unsigned)k < FG_NELEM(kind_names) ? kind_names[k] : "?";
}

int
fg_query_kind_parse(const char *s, enum fg_query_kind *out)
{
	for (size_t i = 0; s != NULL && i < FG_NELEM(kind_names); i++)
		if (strcmp(s, kind_names[i]) == 0) {
			*out = (enum fg_query_kind)i;
			return 0;
		}
	return FG_EINVAL;
}

/* floor(ms / 1000), also before the epoch. */
static int64_t
sec_of(int64_t ms)
{
	return ms / 1000 - (ms % 1000 < 0);
}

/* ---- top offenders ------------------------------------------------------ */

/*
 * One statement per grouping.  ?1 since, ?2 now, ?3 the kind asked for
 * (enum fg_query_kind), ?4 the limit.  The unary + keeps the planner on
 * the time index (a scan of a group index would read the whole table).
 */
#define TOP_SQL(expr, cond)                                                  \
	"SELECT t.g, t.hits, t.inv, t.rcpts, t.conns, t.first_ms, t.last_ms,"  \
	" b.until_ms, b.created_ms, b.reason, b.source FROM"                   \
	" (SELECT " expr " AS g,"                                              \
	"  sum((CASE ?3 WHEN 0 THEN kind = 'rcpt' AND class = 'invalid'"       \
	"   WHEN 1 THEN kind = 'connect' ELSE kind = 'rcpt' END) * n) AS hits,"\
	"  sum((kind = 'rcpt' AND class = 'invalid') * n) AS inv,"             \
	"  sum((kind = 'rcpt') * n) AS rcpts,"                                 \
	"  sum((kind = 'connect') * n) AS conns,"                              \
	"  min(ts_ms) AS first_ms, max(ts_ms) AS last_ms"                      \
	"  FROM events WHERE ts_ms > ?1 AND ts_ms <= ?2 AND " cond             \
	"  GROUP BY g HAVING hits > 0"                                         \
	"  ORDER BY hits DESC, inv DESC, g LIMIT ?4) AS t"                     \
	" LEFT JOIN bans AS b ON b.key = t.g AND b.until_ms > ?2"              \
	" ORDER BY t.hits DESC, t.inv DESC, t.g"

static const char *const top_sql[] = {
	[FG_BY_ADDRESS] = TOP_SQL("+client", "client IS NOT NULL"),
	[FG_BY_NETWORK] = TOP_SQL("+network", "network IS NOT NULL"),
	[FG_BY_HELO] = TOP_SQL("fg_helo_key(helo)", "helo IS NOT NULL"),
	[FG_BY_DOMAIN] = TOP_SQL("fg_rcpt_domain_key(rcpt)",
	                         "kind = 'rcpt' AND rcpt IS NOT NULL"),
};

int
fg_query_top(fg_query *q, enum fg_query_by by, enum fg_query_kind kind,
             int64_t since_ms, int64_t now_ms, size_t limit,
             struct fg_offender **out, size_t *n)
{
	struct fg_offender *v;
	sqlite3_stmt *s;
	int rc;

	*out = NULL;
	*n = 0;
	if ((unsigned)by >= FG_NELEM(top_sql) ||
	    (unsigned)kind >= FG_NELEM(kind_names))
		return fg_query_fail(q, FG_EINVAL, "top: invalid grouping");
	if (limit == 0 || limit > TOP_DEFAULT_LIMIT)
		limit = TOP_DEFAULT_LIMIT;
	if ((v = calloc(limit, sizeof(*v))) == NULL)
		return fg_query_fail(q, FG_ENOMEM, "out of memory");
	if ((rc = fg_query_prepare(q, top_sql[by], &s)) < 0) {
		free(v);
		return rc;
	}
	sqlite3_bind_int64(s, 1, since_ms);
	sqlite3_bind_int64(s, 2, now_ms);
	sqlite3_bind_int(s, 3, (int)kind);
	sqlite3_bind_int64(s, 4, (sqlite3_int64)limit);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW && *n < limit) {
		struct fg_offender *o = &v[*n];

		fg_query_col_copy(o->key, sizeof(o->key), s, 0);
		o->hits = sqlite3_column_int64(s, 1);
		o->invalid = sqlite3_column_int64(s, 2);
		o->rcpts = sqlite3_column_int64(s, 3);
		o->connects = sqlite3_column_int64(s, 4);
		o->invalid_ratio = o->rcpts > 0
		                   ? (double)o->invalid / (double)o->rcpts : 0.0;
		o->first_ms = sqlite3_column_int64(s, 5);
		o->last_ms = sqlite3_column_int64(s, 6);
		if (sqlite3_column_type(s, 7) != SQLITE_NULL) {
			o->banned = true;
			fg_query_ban_of_row(&o->ban, s, 7);
		}
		(*n)++;
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		free(v);
		*n = 0;
		return fg_query_dberr(q, rc, "top");
	}
	*out = v;
	return 0;
}

/* ---- counts, levels, names ------------------------------------------------ */

int64_t
fg_query_count(fg_query *q, const char *key, enum fg_counter c,
               int64_t window_ms, int64_t now_ms)
{
	sqlite3_stmt *s;
	int64_t n = 0;
	int rc;

	if (key == NULL || (unsigned)c >= FG_CNT__COUNT || window_ms < 0)
		return fg_query_fail(q, FG_EINVAL, "count: invalid argument");
	/* As the store counts: no upper bound, a later second is "now". */
	/* ?2 picks the column: enum fg_counter's order. */
	if ((rc = fg_query_prepare(q, "SELECT coalesce(sum(CASE ?2"
	                           " WHEN 0 THEN connect WHEN 1 THEN helo"
	                           " WHEN 2 THEN mail WHEN 3 THEN rcpt"
	                           " WHEN 4 THEN valid WHEN 5 THEN invalid"
	                           " WHEN 6 THEN rejected"
	                           " WHEN 7 THEN sample END), 0)"
	                           " FROM counts WHERE key = ?1 AND sec > ?3",
	                           &s)) < 0)
		return rc;
	_Static_assert(FG_CNT_RCPT_SAMPLE == 7 && FG_CNT__COUNT == 8,
	               "one CASE arm per counter");
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 2, (int)c);
	sqlite3_bind_int64(s, 3, sec_of(now_ms) - window_ms / 1000);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW)
		return fg_query_dberr(q, rc, "count");
	return n;
}

int
fg_query_level_get(fg_query *q, const char *rule, const char *key,
                   int *level, int64_t *last_ms)
{
	sqlite3_stmt *s;
	int rc;

	if ((rc = fg_query_prepare(q, "SELECT level, last_ms FROM levels"
	                           " WHERE rule = ?1 AND key = ?2", &s)) < 0)
		return rc;
	sqlite3_bind_text(s, 1, rule, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		if (level != NULL)   /* the table counts from 1 */
			*level = sqlite3_column_int(s, 0) - 1;
		if (last_ms != NULL)
			*last_ms = sqlite3_column_int64(s, 1);
		sqlite3_finalize(s);
		return 1;
	}
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : fg_query_dberr(q, rc, "level");
}

#define NAMES_SQL(expr, cond)                                                \
	"SELECT " expr " AS k, sum(n) AS n FROM events"                        \
	" WHERE client = ?1 AND ts_ms > ?2 AND ts_ms <= ?3 AND " cond          \
	" GROUP BY k ORDER BY n DESC, k LIMIT ?4"

static const char *const names_sql[] = {
	[FG_NAME_HELO] = NAMES_SQL("fg_helo_key(helo)", "helo IS NOT NULL"),
	[FG_NAME_RCPT_DOMAIN] = NAMES_SQL("fg_rcpt_domain_key(rcpt)",
	                                  "kind = 'rcpt' AND rcpt IS NOT NULL"),
	[FG_NAME_SENDER_DOMAIN] = NAMES_SQL("fg_sender_domain_key(sender)",
	                                    "kind = 'mail' AND sender IS NOT NULL"),
};

int
fg_query_client_keys(fg_query *q, const char *client,
                     enum fg_query_name which, int64_t since_ms,
                     int64_t now_ms, size_t limit, fg_query_key_fn *fn,
                     void *arg)
{
	sqlite3_stmt *s;
	int rc;

	if (client == NULL || (unsigned)which >= FG_NELEM(names_sql))
		return fg_query_fail(q, FG_EINVAL, "names: invalid argument");
	if ((rc = fg_query_prepare(q, names_sql[which], &s)) < 0)
		return rc;
	sqlite3_bind_text(s, 1, client, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, since_ms);
	sqlite3_bind_int64(s, 3, now_ms);
	sqlite3_bind_int64(s, 4, limit > 0 ? (sqlite3_int64)limit : -1);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *k = fg_query_col_text(s, 0);

		if (k != NULL)
			fn(arg, k, sqlite3_column_int64(s, 1));
	}
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : fg_query_dberr(q, rc, "names");
}

/* ---- statistics ------------------------------------------------------------ */

/* An enforced verdict that answered with an error reply. */
#define REFUSAL "(monitor = 0 AND (action IN ('tempfail', 'reject', 'mask'," \
	" 'disconnect', 'ban') OR (action = 'delay' AND reply IS NOT NULL)))"

static int
stat_add(fg_query *q, struct fg_stat_row **rows, size_t *n, const char *name,
         bool monitor, int64_t count)
{
	size_t i;

	for (i = 0; i < *n; i++)
		if (strcmp((*rows)[i].name, name) == 0)
			break;
	if (i == *n) {
		struct fg_stat_row *nr = realloc(*rows, (*n + 1) * sizeof(*nr));

		if (nr == NULL)
			return fg_query_fail(q, FG_ENOMEM, "out of memory");
		*rows = nr;
		memset(&nr[i], 0, sizeof(nr[i]));
		snprintf(nr[i].name, sizeof(nr[i].name), "%s", name);
		(*n)++;
	}
	if (monitor)
		(*rows)[i].monitor += count;
	else
		(*rows)[i].n += count;
	return 0;
}

static int
stat_cmp(const void *pa, const void *pb)
{
	const struct fg_stat_row *a = pa, *b = pb;

	if (a->n + a->monitor != b->n + b->monitor)
		return a->n + a->monitor > b->n + b->monitor ? -1 : 1;
	return strcmp(a->name, b->name);
}

static int
stats_events(fg_query *q, struct fg_stats *st)
{
	sqlite3_stmt *s;
	int rc;

	if ((rc = fg_query_prepare(q, "SELECT kind, class, sum(n) FROM events"
	                           " WHERE ts_ms > ?1 AND ts_ms <= ?2"
	                           " GROUP BY kind, class", &s)) < 0)
		return rc;
	sqlite3_bind_int64(s, 1, st->since_ms);
	sqlite3_bind_int64(s, 2, st->now_ms);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *kind = fg_query_col_text(s, 0);
		const char *cls = fg_query_col_text(s, 1);
		int64_t n = sqlite3_column_int64(s, 2);
		enum fg_counter c;

		st->events += n;
		if (kind == NULL || fg_counter_parse(kind, &c) < 0)
			continue;
		st->counts[c] += n;
		if (c == FG_CNT_RCPT && cls != NULL &&
		    fg_counter_parse(cls, &c) == 0 && c > FG_CNT_RCPT)
			st->counts[c] += n;
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return fg_query_dberr(q, rc, "stats");

	/* A folded connect row stands for n sessions. */
	if ((rc = fg_query_prepare(q, "SELECT count(DISTINCT session_id) +"
	                           " coalesce(sum(CASE WHEN kind = 'connect'"
	                           " THEN n - 1 ELSE 0 END), 0),"
	                           " count(DISTINCT client),"
	                           " count(DISTINCT network) FROM events"
	                           " WHERE ts_ms > ?1 AND ts_ms <= ?2", &s)) < 0)
		return rc;
	sqlite3_bind_int64(s, 1, st->since_ms);
	sqlite3_bind_int64(s, 2, st->now_ms);
	if ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		st->sessions = sqlite3_column_int64(s, 0);
		st->clients = sqlite3_column_int64(s, 1);
		st->networks = sqlite3_column_int64(s, 2);
	}
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 0 : fg_query_dberr(q, rc, "stats");
}

static int
stats_verdicts(fg_query *q, struct fg_stats *st)
{
	static const char *const sql[] = {
		"SELECT action, monitor, sum(n), sum(" REFUSAL " * n),"
		" sum((monitor = 0 AND action = 'delay') * n) FROM verdicts"
		" WHERE ts_ms > ?1 AND ts_ms <= ?2 GROUP BY action, monitor",
		"SELECT rule, monitor, sum(n), 0, 0 FROM verdicts"
		" WHERE ts_ms > ?1 AND ts_ms <= ?2 GROUP BY rule, monitor",
	};
	int rc = 0;

	for (size_t i = 0; i < FG_NELEM(sql) && rc == 0; i++) {
		sqlite3_stmt *s;
		struct fg_stat_row **rows = i == 0 ? &st->actions : &st->rules;
		size_t *n = i == 0 ? &st->nactions : &st->nrules;

		if ((rc = fg_query_prepare(q, sql[i], &s)) < 0)
			return rc;
		sqlite3_bind_int64(s, 1, st->since_ms);
		sqlite3_bind_int64(s, 2, st->now_ms);
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			const char *name = fg_query_col_text(s, 0);
			bool mon = sqlite3_column_int(s, 1) != 0;
			int64_t cnt = sqlite3_column_int64(s, 2);

			if (i == 0) {
				st->verdicts += cnt;
				st->monitor += mon ? cnt : 0;
				st->refused += sqlite3_column_int64(s, 3);
				st->delayed += sqlite3_column_int64(s, 4);
			}
			if (stat_add(q, rows, n, name ? name : "-", mon, cnt) < 0) {
				sqlite3_finalize(s);
				return FG_ENOMEM;
			}
		}
		sqlite3_finalize(s);
		rc = rc == SQLITE_DONE ? 0 : fg_query_dberr(q, rc, "stats");
		if (*n > 1)
			qsort(*rows, *n, sizeof(**rows), stat_cmp);
	}
	return rc;
}

static int
stats_timeline(fg_query *q, struct fg_stats *st)
{
	static const char *const sql[] = {
		"SELECT ts_ms / 3600000, sum(n) FROM events"
		" WHERE ts_ms > ?1 AND ts_ms <= ?2 AND kind = 'rcpt'"
		" AND class = 'invalid' GROUP BY 1",
		"SELECT ts_ms / 3600000, sum(n) FROM verdicts"
		" WHERE ts_ms > ?1 AND ts_ms <= ?2 AND " REFUSAL " GROUP BY 1",
	};
	int64_t first = (st->since_ms + 1) / HOUR_MS;
	int64_t last = st->now_ms / HOUR_MS;
	int rc;

	if (last < first)
		last = first;
	if (last - first + 1 > FG_STATS_MAX_HOURS)
		first = last - FG_STATS_MAX_HOURS + 1;
	st->nhours = (size_t)(last - first + 1);
	if ((st->hours = calloc(st->nhours, sizeof(*st->hours))) == NULL)
		return fg_query_fail(q, FG_ENOMEM, "out of memory");
	for (size_t i = 0; i < st->nhours; i++)
		st->hours[i].hour_ms = (first + (int64_t)i) * HOUR_MS;
	for (size_t i = 0; i < FG_NELEM(sql); i++) {
		sqlite3_stmt *s;

		if ((rc = fg_query_prepare(q, sql[i], &s)) < 0)
			return rc;
		sqlite3_bind_int64(s, 1, st->since_ms);
		sqlite3_bind_int64(s, 2, st->now_ms);
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			int64_t h = sqlite3_column_int64(s, 0) - first;
			int64_t n = sqlite3_column_int64(s, 1);

			if (h < 0 || h >= (int64_t)st->nhours)
				continue;
			if (i == 0)
				st->hours[h].invalid += n;
			else
				st->hours[h].refused += n;
		}
		sqlite3_finalize(s);
		if (rc != SQLITE_DONE)
			return fg_query_dberr(q, rc, "stats");
	}
	return 0;
}

int
fg_query_stats(fg_query *q, int64_t since_ms, int64_t now_ms,
               struct fg_stats *out)
{
	bool own = !q->in_snapshot;
	int rc;

	memset(out, 0, sizeof(*out));
	out->since_ms = since_ms;
	out->now_ms = now_ms;
	if (since_ms < 0 || now_ms < since_ms)
		return fg_query_fail(q, FG_EINVAL, "stats: invalid period");
	/* One snapshot for all the numbers. */
	if (own && (rc = fg_query_begin(q)) < 0)
		return rc;
	if ((rc = stats_events(q, out)) < 0 ||
	    (rc = stats_verdicts(q, out)) < 0 ||
	    (rc = stats_timeline(q, out)) < 0)
		fg_query_stats_free(out);
	if (own)
		fg_query_end(q);
	return rc < 0 ? rc : 0;
}

void
fg_query_stats_free(struct fg_stats *s)
{
	if (s == NULL)
		return;
	free(s->actions);
	free(s->rules);
	free(s->hours);
	s->actions = s->rules = NULL;
	s->hours = NULL;
	s->nactions = s->nrules = s->nhours = 0;
}

/* ---- history ------------------------------------------------------------ */

static bool
kind_of(const char *s, enum fg_event_kind *out)
{
	return fg_event_kind_parse(s, out) == 0;
}

static bool
class_of(const char *s, enum fg_rcpt_class *out)
{
	if (s == NULL) {
		*out = FG_RCPT_NONE;
		return true;
	}
	return fg_rcpt_class_parse(s, out) == 0 && *out != FG_RCPT_NONE;
}

int
fg_query_events(fg_query *q, int64_t since_ms, int64_t until_ms,
                fg_query_event_fn *fn, void *arg)
{
	sqlite3_stmt *s;
	int rc, stop = 0;

	/* The last event of each session, by the same order as the walk. */
	if ((rc = fg_query_prepare(q, "SELECT id, ts_ms, kind, class,"
	                           " session_id, client, network, helo, sender,"
	                           " rcpt, queue_id, status, host, daemon, auth,"
	                           " row_number() OVER"
	                           " (PARTITION BY session_id ORDER BY ts_ms DESC,"
	                           " id DESC) = 1, n FROM events"
	                           " WHERE ts_ms > ?1 AND ts_ms <= ?2"
	                           " ORDER BY ts_ms, id", &s)) < 0)
		return rc;
	sqlite3_bind_int64(s, 1, since_ms);
	sqlite3_bind_int64(s, 2, until_ms);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct fg_stored_event ev;

		memset(&ev, 0, sizeof(ev));
		if (!kind_of(fg_query_col_text(s, 2), &ev.kind) ||
		    !class_of(fg_query_col_text(s, 3), &ev.rcpt_class))
			continue; /* written by a newer floodgate */
		if (ev.kind != FG_EV_RCPT)
			ev.rcpt_class = FG_RCPT_NONE;
		ev.id = sqlite3_column_int64(s, 0);
		ev.time_ms = sqlite3_column_int64(s, 1);
		ev.session_id = (uint64_t)sqlite3_column_int64(s, 4);
		ev.client = fg_query_col_text(s, 5);
		ev.network = fg_query_col_text(s, 6);
		ev.helo = fg_query_col_text(s, 7);
		ev.sender = fg_query_col_text(s, 8);
		ev.rcpt = fg_query_col_text(s, 9);
		ev.queue_id = fg_query_col_text(s, 10);
		ev.status = fg_query_col_text(s, 11);
		ev.host = fg_query_col_text(s, 12);
		ev.daemon = fg_query_col_text(s, 13);
		ev.authenticated = sqlite3_column_int(s, 14) != 0;
		ev.session_ends = sqlite3_column_int(s, 15) != 0;
		ev.n = sqlite3_column_int64(s, 16);
		if (ev.n < 1)
			ev.n = 1;
		if ((stop = fn(arg, &ev)) != 0)
			break;
	}
	sqlite3_finalize(s);
	if (stop != 0)
		return stop;
	return rc == SQLITE_DONE ? 0 : fg_query_dberr(q, rc, "events");
}

#define VERDICT_COLS                                                          \
	"SELECT id, ts_ms, session_id, queue_id, client, stage, rule, key,"    \
	" action, reply, count, lim, window_ms, delay_ms, monitor, n"          \
	" FROM verdicts"

int
fg_query_verdicts(fg_query *q, const char *client, int64_t since_ms,
                  int64_t until_ms, size_t limit, fg_query_verdict_fn *fn,
                  void *arg)
{
	sqlite3_stmt *s;
	int rc, stop = 0;

	rc = fg_query_prepare(q, client == NULL
	         ? VERDICT_COLS " WHERE ts_ms > ?1 AND ts_ms <= ?2"
	           " ORDER BY ts_ms, id LIMIT ?3"
	         : VERDICT_COLS " WHERE ts_ms > ?1 AND ts_ms <= ?2"
	           " AND client = ?4 ORDER BY ts_ms DESC, id DESC LIMIT ?3", &s);
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(s, 1, since_ms);
	sqlite3_bind_int64(s, 2, until_ms);
	sqlite3_bind_int64(s, 3, limit > 0 ? (sqlite3_int64)limit : -1);
	if (client != NULL)
		sqlite3_bind_text(s, 4, client, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct fg_stored_verdict v = {
			.id = sqlite3_column_int64(s, 0),
			.time_ms = sqlite3_column_int64(s, 1),
			.session_id = (uint64_t)sqlite3_column_int64(s, 2),
			.queue_id = fg_query_col_text(s, 3),
			.client = fg_query_col_text(s, 4),
			.stage = fg_query_col_text(s, 5),
			.rule = fg_query_col_text(s, 6),
			.key = fg_query_col_text(s, 7),
			.action = fg_query_col_text(s, 8),
			.reply = fg_query_col_text(s, 9),
			.count = sqlite3_column_int64(s, 10),
			.limit = sqlite3_column_int64(s, 11),
			.window_ms = sqlite3_column_int64(s, 12),
			.delay_ms = sqlite3_column_int64(s, 13),
			.monitor = sqlite3_column_int(s, 14) != 0,
			.n = sqlite3_column_int64(s, 15),
		};

		if (v.n < 1)
			v.n = 1;
		if ((stop = fn(arg, &v)) != 0)
			break;
	}
	sqlite3_finalize(s);
	if (stop != 0)
		return stop;
	return rc == SQLITE_DONE ? 0 : fg_query_dberr(q, rc, "verdicts");
}

/* ---- status ------------------------------------------------------------ */

static void
col_copy(sqlite3_stmt *s, int i, char *dst, size_t size)
{
	const char *t = fg_query_col_text(s, i);

	snprintf(dst, size, "%s", t != NULL ? t : "");
}

int
fg_query_status(fg_query *q, struct fg_query_status *out)
{
	sqlite3_stmt *s;
	int rc, i = 0;

	memset(out, 0, sizeof(*out));
	if ((rc = fg_query_prepare(q, "SELECT updated_ms, pid, started_ms,"
	                           " config_ms, version, config, last_error,"
	                           " queued, queue_size, recorded, written,"
	                           " dropped, write_errors, commits,"
	                           " commit_ms_sum, last_commit_ms, tarpit,"
	                           " tarpit_max, keys, connects, helos, mails,"
	                           " rcpts, closes, healthy, memory,"
	                           " memory_limit, keys_refused, alloc_failures,"
	                           " db_size, max_database_size, size_pruned,"
	                           " reopened, shared_state, shared_node,"
	                           " shared_server, shared_reason, shared_peers,"
	                           " shared_sync_ms, shared_skew_ms FROM status"
	                           " WHERE id = 1", &s)) < 0)
		return rc;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		out->updated_ms = sqlite3_column_int64(s, i++);
		out->pid = sqlite3_column_int64(s, i++);
		out->started_ms = sqlite3_column_int64(s, i++);
		out->config_ms = sqlite3_column_int64(s, i++);
		col_copy(s, i++, out->version, sizeof(out->version));
		col_copy(s, i++, out->config, sizeof(out->config));
		col_copy(s, i++, out->last_error, sizeof(out->last_error));
		out->queued = sqlite3_column_int64(s, i++);
		out->queue_size = sqlite3_column_int64(s, i++);
		out->recorded = sqlite3_column_int64(s, i++);
		out->written = sqlite3_column_int64(s, i++);
		out->dropped = sqlite3_column_int64(s, i++);
		out->write_errors = sqlite3_column_int64(s, i++);
		out->commits = sqlite3_column_int64(s, i++);
		out->commit_ms_sum = sqlite3_column_int64(s, i++);
		out->last_commit_ms = sqlite3_column_int64(s, i++);
		out->tarpit = sqlite3_column_int64(s, i++);
		out->tarpit_max = sqlite3_column_int64(s, i++);
		out->keys = sqlite3_column_int64(s, i++);
		out->connects = sqlite3_column_int64(s, i++);
		out->helos = sqlite3_column_int64(s, i++);
		out->mails = sqlite3_column_int64(s, i++);
		out->rcpts = sqlite3_column_int64(s, i++);
		out->closes = sqlite3_column_int64(s, i++);
		out->healthy = sqlite3_column_int(s, i++) != 0;
		out->memory = sqlite3_column_int64(s, i++);
		out->memory_limit = sqlite3_column_int64(s, i++);
		out->keys_refused = sqlite3_column_int64(s, i++);
		out->alloc_failures = sqlite3_column_int64(s, i++);
		out->db_size = sqlite3_column_int64(s, i++);
		out->max_database_size = sqlite3_column_int64(s, i++);
		out->size_pruned = sqlite3_column_int64(s, i++);
		out->reopened = sqlite3_column_int64(s, i++);
		col_copy(s, i++, out->shared_state, sizeof(out->shared_state));
		if (out->shared_state[0] == '\0')
			snprintf(out->shared_state, sizeof(out->shared_state), "off");
		col_copy(s, i++, out->shared_node, sizeof(out->shared_node));
		col_copy(s, i++, out->shared_server, sizeof(out->shared_server));
		col_copy(s, i++, out->shared_reason, sizeof(out->shared_reason));
		out->shared_peers = sqlite3_column_int64(s, i++);
		out->shared_sync_ms = sqlite3_column_int64(s, i++);
		out->shared_skew_ms = sqlite3_column_int64(s, i++);
		sqlite3_finalize(s);
		return 1;
	}
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : fg_query_dberr(q, rc, "status");
}

int
fg_query_verdict_totals(fg_query *q, fg_query_total_fn *fn, void *arg)
{
	sqlite3_stmt *s;
	int rc, stop = 0;

	if ((rc = fg_query_prepare(q, "SELECT rule, action, monitor, n FROM"
	                           " verdict_totals ORDER BY rule, action,"
	                           " monitor", &s)) < 0)
		return rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *rule = fg_query_col_text(s, 0);
		const char *action = fg_query_col_text(s, 1);

		if (rule == NULL || action == NULL)
			continue;
		if ((stop = fn(arg, rule, action, sqlite3_column_int(s, 2) != 0,
		               sqlite3_column_int64(s, 3))) != 0)
			break;
	}
	sqlite3_finalize(s);
	if (stop != 0)
		return stop;
	return rc == SQLITE_DONE ? 0 : fg_query_dberr(q, rc, "verdict totals");
}
