/*
 * cmd_status.c - is the daemon healthy, and its counters for Prometheus.
 *
 * Both read the status row the daemon's writer rewrites about once a
 * second (store.h), so they work wherever sqlite3 does: on the MX, as
 * any user who may read the database, with no socket to open.  A row
 * that stops being rewritten is itself the alarm: the daemon is down,
 * hung, or cannot write its database.
 *
 * status prints one screen and exits as monitoring plugins do: 0 OK,
 * 1 WARNING, 2 CRITICAL (3 UNKNOWN for a database it cannot read).
 * metrics prints the text exposition format, for node_exporter's
 * textfile collector (write it to a .prom file from a timer); floodgate
 * itself listens on no port.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "ctl.h"
#include "fg.h"
#include "query.h"

#define STALE_MS INT64_C(30000)      /* default: an older status row is
                                        CRITICAL */
#define RECENT_MS INT64_C(300000)    /* refusals by rule over this span */

enum { ST_OK = 0, ST_WARNING = 1, ST_CRITICAL = 2, ST_UNKNOWN = 3 };

static const char *const st_names[] = {"OK", "WARNING", "CRITICAL",
                                       "UNKNOWN"};

struct finding {
	int level;
	char text[300];
};

struct status {
	struct ctl *c;
	int64_t stale_ms;
	struct fg_query_status s;
	bool have;
	bool alive;                /* the pid answers signal 0 */
	int64_t age_ms;
	struct finding f[8];
	size_t nf;
	int worst;
	/* refusals by rule over RECENT_MS, and connections over the last
	 * minute */
	struct {
		char rule[72];
		int64_t n;
	} recent[32];
	size_t nrecent;
	int64_t connects_1m;
};

static void
say(struct status *st, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
say(struct status *st, int level, const char *fmt, ...)
{
	va_list ap;

	if (level > st->worst)
		st->worst = level;
	if (st->nf >= FG_NELEM(st->f))
		return;
	st->f[st->nf].level = level;
	va_start(ap, fmt);
	vsnprintf(st->f[st->nf].text, sizeof(st->f[st->nf].text), fmt, ap);
	va_end(ap);
	st->nf++;
}

static int
on_recent(void *arg, const struct fg_stored_verdict *v)
{
	struct status *st = arg;
	size_t i;

	if (v->monitor || v->action == NULL || strcmp(v->action, "delay") == 0)
		return 0;
	for (i = 0; i < st->nrecent; i++)
		if (strcmp(st->recent[i].rule, v->rule ? v->rule : "-") == 0)
			break;
	if (i == st->nrecent) {
		if (st->nrecent == FG_NELEM(st->recent))
			return 0;
		snprintf(st->recent[st->nrecent++].rule, sizeof(st->recent[0].rule),
		         "%s", v->rule ? v->rule : "-");
	}
	st->recent[i].n += v->n;
	return 0;
}

static int
on_event(void *arg, const struct fg_stored_event *ev)
{
	struct status *st = arg;

	if (ev->kind == FG_EV_CONNECT)
		st->connects_1m += ev->n;
	return 0;
}

/* ---- sharing with other hosts ---------------------------------------- */

char *
ctl_shared_text(const struct fg_query_status *s, int64_t now_ms, char *buf,
                size_t size)
{
	if (strcmp(s->shared_state, "off") == 0 || s->shared_state[0] == '\0') {
		snprintf(buf, size, "off");
		return buf;
	}

	char age[40] = "never";

	if (s->shared_sync_ms > 0)
		snprintf(age, sizeof(age), "%" PRId64 " ms ago",
		         now_ms > s->shared_sync_ms ? now_ms - s->shared_sync_ms : 0);
	snprintf(buf, size, "%s, node %s via %s, %" PRId64 " peer%s, last sync "
	         "%s%s%s", s->shared_state, san(s->shared_node),
	         san(s->shared_server), s->shared_peers,
	         s->shared_peers == 1 ? "" : "s", age,
	         s->shared_reason[0] != '\0' ? ": " : "",
	         san(s->shared_reason));
	return buf;
}

void
ctl_shared_json(struct json *j, const struct fg_query_status *s,
                int64_t now_ms)
{
	json_key(j, "shared");
	json_obj(j);
	json_kstr(j, "state", s->shared_state[0] ? s->shared_state : "off");
	if (strcmp(s->shared_state, "off") != 0 && s->shared_state[0] != '\0') {
		json_kstr(j, "node", s->shared_node);
		json_kstr(j, "server", s->shared_server);
		json_kint(j, "peers", s->shared_peers);
		json_key(j, "last_sync_age_ms");
		if (s->shared_sync_ms > 0)
			json_int(j, now_ms - s->shared_sync_ms);
		else
			json_null(j);
		json_kstr(j, "reason", s->shared_reason);
		json_kint(j, "skew_ms", s->shared_skew_ms);
	}
	json_end(j);
}

/* The findings, worst first in the order checked. */
static void
judge(struct status *st)
{
	const struct fg_query_status *s = &st->s;
	int64_t now = st->c->now_ms;

	if (!st->have) {
		say(st, ST_CRITICAL, "no status row: the daemon has never run "
		    "on this database (or is older than schema 3)");
		return;
	}
	st->age_ms = now - s->updated_ms;
	if (!st->alive)
		say(st, ST_CRITICAL, "the daemon (pid %" PRId64 ") is not "
		    "running", s->pid);
	else if (st->age_ms > st->stale_ms)
		say(st, ST_CRITICAL, "the status row is %s old: the daemon "
		    "cannot write its database%s%s", fmt_span(st->age_ms),
		    s->last_error[0] ? ": " : "", san(s->last_error));
	if (st->alive && !s->healthy)
		say(st, ST_CRITICAL, "the last commit failed: %s",
		    san(s->last_error));
	if (s->queue_size > 0 && s->queued * 2 > s->queue_size)
		say(st, ST_WARNING, "the row queue is %" PRId64 "%% full",
		    s->queued * 100 / s->queue_size);
	if (s->dropped > 0)
		say(st, ST_WARNING, "%" PRId64 " rows dropped since the start "
		    "(counts stay exact)", s->dropped);
	if (s->memory_limit > 0 && s->memory >= s->memory_limit)
		say(st, ST_WARNING, "the memory limit holds new keys back "
		    "(%" PRId64 " updates so far)", s->keys_refused);
	if (s->tarpit_max > 0 && s->tarpit * 10 >= s->tarpit_max * 9)
		say(st, ST_WARNING, "the tarpit is full: %" PRId64 " of %" PRId64
		    " sessions asleep", s->tarpit, s->tarpit_max);
	if (strcmp(s->shared_state, "degraded") == 0)
		say(st, ST_WARNING, "counts are not shared with the other hosts "
		    "(each counts alone): %s", san(s->shared_reason));
	if (st->nf == 0)
		say(st, ST_OK, "healthy");
}

static void
print_text(const struct status *st)
{
	const struct fg_query_status *s = &st->s;

	printf("floodgate %s: %s\n", st_names[st->worst], st->f[0].text);
	for (size_t i = 1; i < st->nf; i++)
		printf("  %s: %s\n", st_names[st->f[i].level], st->f[i].text);
	if (!st->have)
		return;
	printf("\ndaemon      pid %" PRId64 " (%s), version %s, up %s\n", s->pid,
	       st->alive ? "running" : "not running", san(s->version),
	       fmt_span(st->c->now_ms - s->started_ms));
	printf("config      %s, loaded %s\n", san(s->config),
	       fmt_time(s->config_ms));
	printf("status row  updated %s ago\n", fmt_span(st->age_ms));
	printf("row queue   %" PRId64 " of %" PRId64 ", %" PRId64 " dropped, %"
	       PRId64 " failed commits\n", s->queued, s->queue_size, s->dropped,
	       s->write_errors);
	printf("last commit %s\n", s->last_commit_ms > 0
	       ? fmt_time(s->last_commit_ms) : "none yet");
	printf("tarpit      %" PRId64 " of %" PRId64 " sessions asleep\n",
	       s->tarpit, s->tarpit_max);
	printf("memory      %" PRId64 " keys in %.1f of %.1f MB, %" PRId64
	       " key updates held back by the limit, %" PRId64
	       " allocation failures\n", s->keys, (double)s->memory / 1048576.0,
	       (double)s->memory_limit / 1048576.0, s->keys_refused,
	       s->alloc_failures);
	printf("database    %.1f of %.1f MB, %" PRId64 " rows pruned for "
	       "size, reopened %" PRId64 " times\n",
	       (double)s->db_size / 1048576.0,
	       (double)s->max_database_size / 1048576.0, s->size_pruned,
	       s->reopened);
	printf("sessions    %.1f/s over the last minute, %" PRId64 " since the "
	       "start\n", (double)st->connects_1m / 60.0, s->connects);
	{
		char sh[700];
		printf("shared      %s\n", ctl_shared_text(s, st->c->now_ms, sh,
		                                           sizeof(sh)));
	}
	printf("refusals    last %s:", fmt_duration(RECENT_MS));
	if (st->nrecent == 0)
		printf(" none");
	for (size_t i = 0; i < st->nrecent; i++)
		printf(" %s %" PRId64, san(st->recent[i].rule), st->recent[i].n);
	printf("\n");
}

static void
print_json(const struct status *st)
{
	const struct fg_query_status *s = &st->s;
	struct json *j = json_new(stdout);

	json_obj(j);
	json_kstr(j, "status", st_names[st->worst]);
	json_key(j, "findings");
	json_arr(j);
	for (size_t i = 0; i < st->nf; i++) {
		json_obj(j);
		json_kstr(j, "level", st_names[st->f[i].level]);
		json_kstr(j, "text", st->f[i].text);
		json_end(j);
	}
	json_end(j);
	if (st->have) {
		json_kint(j, "pid", s->pid);
		json_kbool(j, "running", st->alive);
		json_kstr(j, "version", s->version);
		json_ktime(j, "started", s->started_ms);
		json_kstr(j, "config", s->config);
		json_ktime(j, "config_loaded", s->config_ms);
		json_ktime(j, "updated", s->updated_ms);
		json_kint(j, "queued", s->queued);
		json_kint(j, "queue_size", s->queue_size);
		json_kint(j, "dropped", s->dropped);
		json_kint(j, "failed_commits", s->write_errors);
		json_ktime(j, "last_commit", s->last_commit_ms);
		json_kint(j, "tarpit", s->tarpit);
		json_kint(j, "tarpit_max", s->tarpit_max);
		json_kint(j, "connects_last_minute", st->connects_1m);
		json_kint(j, "keys", s->keys);
		json_kint(j, "memory", s->memory);
		json_kint(j, "memory_limit", s->memory_limit);
		json_kint(j, "keys_refused", s->keys_refused);
		json_kint(j, "alloc_failures", s->alloc_failures);
		json_kint(j, "db_size", s->db_size);
		json_kint(j, "max_database_size", s->max_database_size);
		ctl_shared_json(j, s, st->c->now_ms);
		json_key(j, "refusals_last_5m");
		json_obj(j);
		for (size_t i = 0; i < st->nrecent; i++)
			json_kint(j, st->recent[i].rule, st->recent[i].n);
		json_end(j);
	}
	json_finish(j);
}

static bool
pid_alive(int64_t pid)
{
	if (pid <= 0 || pid > INT32_MAX)
		return false;
	return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

enum { O_STALE = CTL_OPT_BASE };

static int
status_opt(void *arg, int id, const char *v)
{
	if (id == O_STALE)
		return ctl_duration("status", "--stale", v, arg);
	return CTL_USAGE;
}

int
cmd_status(struct ctl *c, int argc, char **argv)
{
	static const struct ctl_opt opts[] = {
		{"stale", true, O_STALE}, {NULL, 0, 0},
	};
	struct status st;
	const char *pos[1];
	int64_t stale = STALE_MS;
	size_t npos;
	fg_query *q;
	int rc;

	if ((rc = ctl_parse(c, argc, argv, opts, status_opt, &stale, pos, 0,
	                    &npos, "status [--stale DURATION]")) != CTL_OK)
		return rc;
	memset(&st, 0, sizeof(st));
	st.c = c;
	st.stale_ms = stale;
	if (ctl_open_db(c, NULL, FG_QUERY_READ, &q) != CTL_OK) {
		printf("floodgate UNKNOWN: cannot read the database\n");
		return ST_UNKNOWN;
	}
	if (fg_query_begin(q) < 0 || fg_query_status(q, &st.s) < 0 ||
	    fg_query_verdicts(q, NULL, c->now_ms - RECENT_MS, c->now_ms, 0,
	                      on_recent, &st) < 0 ||
	    fg_query_events(q, c->now_ms - INT64_C(60000), c->now_ms, on_event,
	                    &st) < 0) {
		char err[600];

		printf("floodgate UNKNOWN: %s\n",
		       san(fg_query_error(q, err, sizeof(err))));
		fg_query_close(q);
		return ST_UNKNOWN;
	}
	fg_query_end(q);
	fg_query_close(q);
	st.have = st.s.updated_ms > 0;
	st.alive = st.have && pid_alive(st.s.pid);
	judge(&st);
	if (c->json)
		print_json(&st);
	else
		print_text(&st);
	return st.worst;
}

/* ---- metrics ----------------------------------------------------------- */

struct metrics {
	bool first;
};

static int
on_total(void *arg, const char *rule, const char *action, bool monitor,
         int64_t n)
{
	struct metrics *m = arg;

	if (m->first) {
		printf("# HELP floodgate_verdicts_total Verdicts other than "
		       "continue since the daemon started.\n"
		       "# TYPE floodgate_verdicts_total counter\n");
		m->first = false;
	}
	/* Names are the configuration's and floodgate's own: no quotes
	 * or backslashes can reach them, but sanitise all the same. */
	printf("floodgate_verdicts_total{rule=\"%s\",action=\"%s\","
	       "mode=\"%s\"} %" PRId64 "\n", san(rule), san(action),
	       monitor ? "monitor" : "enforced", n);
	return 0;
}

static void
metric(const char *name, const char *type, const char *help, int64_t v)
{
	printf("# HELP %s %s\n# TYPE %s %s\n%s %" PRId64 "\n", name, help, name,
	       type, name, v);
}

/* A gauge of milliseconds, in seconds as Prometheus names want. */
static void
metric_ms(const char *name, const char *help, int64_t ms)
{
	printf("# HELP %s %s\n# TYPE %s gauge\n%s %s%" PRId64 ".%03" PRId64
	       "\n", name, help, name, name, ms < 0 ? "-" : "",
	       (ms < 0 ? -ms : ms) / 1000, (ms < 0 ? -ms : ms) % 1000);
}

/* The sharing with other hosts: its state as one gauge per state, the
 * node and server as labels of an info gauge, peers, age of the last
 * good round trip. */
static void
shared_metrics(const struct fg_query_status *s, int64_t now_ms)
{
	static const char *const states[] = {"off", "ok", "degraded"};
	const char *cur = s->shared_state[0] ? s->shared_state : "off";

	printf("# HELP floodgate_shared_state Sharing of counts with other "
	       "hosts: 1 for the state it is in.\n"
	       "# TYPE floodgate_shared_state gauge\n");
	for (size_t i = 0; i < FG_NELEM(states); i++)
		printf("floodgate_shared_state{state=\"%s\"} %d\n", states[i],
		       strcmp(cur, states[i]) == 0);
	if (strcmp(cur, "off") == 0)
		return;
	printf("# HELP floodgate_shared_info This host's node name and the "
	       "server it shares through.\n"
	       "# TYPE floodgate_shared_info gauge\n"
	       "floodgate_shared_info{node=\"%s\",server=\"%s\"} 1\n",
	       san(s->shared_node), san(s->shared_server));
	metric("floodgate_shared_peers", "gauge", "Other hosts heard from "
	       "within 10 seconds.", s->shared_peers);
	if (s->shared_sync_ms > 0)
		metric_ms("floodgate_shared_sync_age_seconds",
		          "Since the last good round trip with the server.",
		          now_ms - s->shared_sync_ms);
	metric_ms("floodgate_shared_skew_seconds",
	          "The server's clock minus this host's.", s->shared_skew_ms);
}

int
cmd_metrics(struct ctl *c, int argc, char **argv)
{
	static const char *const kinds[] = {"connect", "helo", "mail", "rcpt",
	                                    "close"};
	struct fg_query_status s;
	struct fg_ban_entry *bans = NULL;
	struct metrics m = {true};
	const char *pos[1];
	size_t npos, nbans = 0;
	int64_t by_kind[5];
	fg_query *q;
	int rc, have;

	if ((rc = ctl_parse(c, argc, argv, NULL, ctl_no_opt, NULL, pos, 0, &npos,
	                    "metrics")) != CTL_OK)
		return rc;
	if ((rc = ctl_open_db(c, NULL, FG_QUERY_READ, &q)) != CTL_OK)
		return rc;
	if ((have = fg_query_status(q, &s)) < 0 ||
	    fg_query_bans(q, c->now_ms, &bans, &nbans) < 0) {
		char err[600];

		fg_query_error(q, err, sizeof(err));
		fg_query_close(q);
		return ctl_fail(CTL_RUNTIME, "metrics: %s", err);
	}
	metric("floodgate_up", "gauge", "Whether the daemon rewrote its "
	       "status row within the last 30 seconds.",
	       have == 1 && c->now_ms - s.updated_ms <= STALE_MS &&
	           pid_alive(s.pid));
	if (have == 1) {
		by_kind[0] = s.connects;
		by_kind[1] = s.helos;
		by_kind[2] = s.mails;
		by_kind[3] = s.rcpts;
		by_kind[4] = s.closes;
		printf("# HELP floodgate_events_total Events recorded since the "
		       "daemon started, by kind.\n"
		       "# TYPE floodgate_events_total counter\n");
		for (size_t i = 0; i < FG_NELEM(kinds); i++)
			printf("floodgate_events_total{kind=\"%s\"} %" PRId64
			       "\n", kinds[i], by_kind[i]);
		metric("floodgate_rows_dropped_total", "counter", "Database "
		       "rows lost to a full queue since the daemon started.",
		       s.dropped);
		metric("floodgate_commit_failures_total", "counter", "Failed "
		       "database commits since the daemon started.",
		       s.write_errors);
		printf("# HELP floodgate_commit_duration_seconds Time the "
		       "database commits took.\n"
		       "# TYPE floodgate_commit_duration_seconds summary\n"
		       "floodgate_commit_duration_seconds_sum %.3f\n"
		       "floodgate_commit_duration_seconds_count %" PRId64 "\n",
		       (double)s.commit_ms_sum / 1000.0, s.commits);
		metric("floodgate_queue_rows", "gauge", "Rows waiting for the "
		       "database.", s.queued);
		metric("floodgate_tarpit_sessions", "gauge", "Sessions asleep "
		       "in a delay now.", s.tarpit);
		metric("floodgate_tarpit_sessions_max", "gauge", "The tarpit's "
		       "budget (max_delayed_sessions).", s.tarpit_max);
		metric("floodgate_last_commit_timestamp_seconds", "gauge",
		       "When the last commit landed.", s.last_commit_ms / 1000);
		metric("floodgate_keys", "gauge", "Keys counted in memory.",
		       s.keys);
		metric("floodgate_memory_bytes", "gauge", "Memory the counts "
		       "take.", s.memory);
		metric("floodgate_memory_limit_bytes", "gauge", "The memory "
		       "limit (memory_limit).", s.memory_limit);
		metric("floodgate_keys_refused_total", "counter", "Key updates "
		       "the memory limit held back.", s.keys_refused);
		metric("floodgate_database_bytes", "gauge", "The database "
		       "file's size.", s.db_size);
		shared_metrics(&s, c->now_ms);
		if (fg_query_verdict_totals(q, on_total, &m) < 0) {
			char err[600];

			fg_query_error(q, err, sizeof(err));
			fg_query_free(bans);
			fg_query_close(q);
			return ctl_fail(CTL_RUNTIME, "metrics: %s", err);
		}
	}
	metric("floodgate_bans", "gauge", "Bans in force.", (int64_t)nbans);
	fg_query_free(bans);
	fg_query_close(q);
	return CTL_OK;
}
