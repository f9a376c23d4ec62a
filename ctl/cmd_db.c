/*
 * cmd_db.c - the commands that are one query each: top, bans, ban,
 * unban, stats, prune, vacuum, check.
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

#define HOUR_MS INT64_C(3600000)
#define DAY_MS (24 * HOUR_MS)

enum {
	O_SINCE = CTL_OPT_BASE, O_BY, O_KIND, O_LIMIT, O_FOR, O_REASON,
	O_OLDER,
};

/* A query verb failed: its error on stderr, after "cmd: " unless cmd is
 * NULL; closes q and returns the exit status. */
static int
query_fail(fg_query *q, const char *cmd)
{
	char err[600];
	int rc;

	fg_query_error(q, err, sizeof(err));
	if (cmd != NULL)
		rc = ctl_fail(CTL_RUNTIME, "%s: %s", cmd, err);
	else
		rc = ctl_fail(CTL_RUNTIME, "%s", err);
	fg_query_close(q);
	return rc;
}

/* With --json, the answer's document on stdout with its top object open
 * (json_finish() ends it); NULL when the answer is text for people. */
static struct json *
json_answer(const struct ctl *c)
{
	struct json *j;

	if (!c->json)
		return NULL;
	j = json_new(stdout);
	json_obj(j);
	return j;
}

/* For the commands without positional arguments: their options parsed
 * (ctl_parse()), the database opened in mode; CTL_OK, or what to exit
 * with. */
static int
parse_open(struct ctl *c, int argc, char **argv, const struct ctl_opt *opts,
           ctl_opt_fn *fn, void *arg, const char *usage,
           enum fg_query_mode mode, fg_query **q)
{
	const char *pos[1];
	size_t npos;
	int rc;

	if ((rc = ctl_parse(c, argc, argv, opts, fn, arg, pos, 0, &npos,
	                    usage)) != CTL_OK)
		return rc;
	return ctl_open_db(c, NULL, mode, q);
}

static void
json_ban(struct json *j, const struct fg_ban *b, int64_t now)
{
	json_obj(j);
	json_ktime(j, "until", b->until_ms);
	json_kint(j, "remaining_s", (b->until_ms - now) / 1000);
	json_ktime(j, "created", b->created_ms);
	json_kstr(j, "reason", b->reason);
	json_kstr(j, "source", b->source);
	json_end(j);
}

/* ---- top ------------------------------------------------------------------ */

struct top_opts {
	int64_t since;
	enum fg_query_by by;
	enum fg_query_kind kind;
	size_t limit;
};

static int
top_opt(void *arg, int id, const char *v)
{
	struct top_opts *o = arg;

	switch (id) {
	case O_SINCE:
		return ctl_duration("top", "--since", v, &o->since);
	case O_BY:
		if (fg_query_by_parse(v, &o->by) != 0)
			return ctl_fail(CTL_USAGE, "top: --by: expected address, "
			                "network, helo or domain, not '%s'",
			                san(v));
		return CTL_OK;
	case O_KIND:
		if (fg_query_kind_parse(v, &o->kind) != 0)
			return ctl_fail(CTL_USAGE, "top: --kind: expected "
			                "invalid, connect or rcpt, not '%s'",
			                san(v));
		return CTL_OK;
	case O_LIMIT:
		return ctl_count("top", "--limit", v, 1000, &o->limit);
	}
	return CTL_USAGE;
}

int
cmd_top(struct ctl *c, int argc, char **argv)
{
	static const struct ctl_opt opts[] = {
		{"since", true, O_SINCE}, {"by", true, O_BY},
		{"kind", true, O_KIND}, {"limit", true, O_LIMIT}, {NULL, 0, 0},
	};
	static const char *const heads[] = {
		[FG_BY_ADDRESS] = "ADDRESS", [FG_BY_NETWORK] = "NETWORK",
		[FG_BY_HELO] = "HELO", [FG_BY_DOMAIN] = "DOMAIN",
	};
	static const char *const plural[] = {
		[FG_BY_ADDRESS] = "addresses", [FG_BY_NETWORK] = "networks",
		[FG_BY_HELO] = "HELO names", [FG_BY_DOMAIN] = "recipient domains",
	};
	struct top_opts o = {HOUR_MS, FG_BY_NETWORK, FG_KIND_INVALID, 20};
	struct fg_offender *rows;
	size_t n;
	struct json *j;
	fg_query *q;
	int rc;

	if ((rc = parse_open(c, argc, argv, opts, top_opt, &o,
	                     "top [--since 1h] [--by address|network|helo|"
	                     "domain] [--kind invalid|connect|rcpt] "
	                     "[--limit N]", FG_QUERY_READ, &q)) != CTL_OK)
		return rc;
	if (fg_query_top(q, o.by, o.kind, c->now_ms - o.since, c->now_ms,
	                 o.limit, &rows, &n) < 0)
		return query_fail(q, NULL);
	fg_query_close(q);

	if ((j = json_answer(c)) != NULL) {
		json_ktime(j, "since", c->now_ms - o.since);
		json_ktime(j, "now", c->now_ms);
		json_kstr(j, "by", fg_query_by_name(o.by));
		json_kstr(j, "kind", fg_query_kind_name(o.kind));
		json_key(j, "rows");
		json_arr(j);
		for (size_t i = 0; i < n; i++) {
			json_obj(j);
			json_kstr(j, "key", rows[i].key);
			json_kint(j, "hits", rows[i].hits);
			json_kint(j, "invalid", rows[i].invalid);
			json_kint(j, "rcpts", rows[i].rcpts);
			json_key(j, "invalid_ratio");
			json_num(j, rows[i].invalid_ratio);
			json_kint(j, "connects", rows[i].connects);
			json_ktime(j, "first_seen", rows[i].first_ms);
			json_ktime(j, "last_seen", rows[i].last_ms);
			json_key(j, "ban");
			if (rows[i].banned)
				json_ban(j, &rows[i].ban, c->now_ms);
			else
				json_null(j);
			json_end(j);
		}
		json_finish(j);
	} else {
		struct table *t = table_new("lrrrrlll", heads[o.by], "INVALID",
		                            "RCPTS", "RATIO", "CONNECTS",
		                            "FIRST SEEN", "LAST SEEN", "BANNED",
		                            (char *)NULL);

		printf("top %s by %s since %s %s (%s)\n",
		       plural[o.by],
		       o.kind == FG_KIND_INVALID ? "invalid recipients"
		       : o.kind == FG_KIND_CONNECT ? "connections"
		                                   : "recipients",
		       fmt_time(c->now_ms - o.since),
		       fmt_zone(c->now_ms - o.since), fmt_duration(o.since));
		for (size_t i = 0; i < n; i++) {
			table_cell_text(t, rows[i].key);
			table_cell(t, "%" PRId64, rows[i].invalid);
			table_cell(t, "%" PRId64, rows[i].rcpts);
			if (rows[i].rcpts > 0)
				table_cell(t, "%.2f", rows[i].invalid_ratio);
			else
				table_cell(t, "-");
			table_cell(t, "%" PRId64, rows[i].connects);
			table_cell(t, "%s", fmt_time_short(rows[i].first_ms));
			table_cell(t, "%s", fmt_time_short(rows[i].last_ms));
			table_cell(t, "%s", rows[i].banned
			           ? fmt_span(rows[i].ban.until_ms - c->now_ms)
			           : "-");
		}
		if (n == 0)
			printf("nothing in that period\n");
		else
			table_print(t, stdout);
		table_free(t);
	}
	fg_query_free(rows);
	return CTL_OK;
}

/* ---- bans, ban, unban ------------------------------------------------------ */

int
ctl_no_opt(void *arg, int id, const char *v)
{
	(void)arg;
	(void)id;
	(void)v;
	return CTL_USAGE;
}

int
cmd_bans(struct ctl *c, int argc, char **argv)
{
	struct fg_ban_entry *b;
	size_t n;
	struct json *j;
	fg_query *q;
	int rc;

	if ((rc = parse_open(c, argc, argv, NULL, ctl_no_opt, NULL, "bans",
	                     FG_QUERY_READ, &q)) != CTL_OK)
		return rc;
	if (fg_query_bans(q, c->now_ms, &b, &n) < 0)
		return query_fail(q, NULL);
	fg_query_close(q);
	if ((j = json_answer(c)) != NULL) {
		json_ktime(j, "now", c->now_ms);
		json_key(j, "bans");
		json_arr(j);
		for (size_t i = 0; i < n; i++) {
			json_obj(j);
			json_kstr(j, "key", b[i].key);
			json_key(j, "ban");
			json_ban(j, &b[i].ban, c->now_ms);
			json_end(j);
		}
		json_finish(j);
	} else if (n == 0) {
		printf("no bans in force\n");
	} else {
		struct table *t = table_new("lllll", "KEY", fmt_heading("UNTIL", c->now_ms),
		                            "LEFT", "SOURCE", "REASON", (char *)NULL);

		for (size_t i = 0; i < n; i++) {
			table_cell_text(t, b[i].key);
			table_cell(t, "%s", fmt_time(b[i].ban.until_ms));
			table_cell(t, "%s",
			           fmt_span(b[i].ban.until_ms - c->now_ms));
			table_cell_text(t, b[i].ban.source[0] ? b[i].ban.source
			                                      : "-");
			table_cell_text(t, b[i].ban.reason[0] ? b[i].ban.reason
			                                      : "-");
		}
		table_print(t, stdout);
		table_free(t);
	}
	fg_query_free(b);
	return CTL_OK;
}

struct ban_opts {
	int64_t for_ms;
	const char *reason;
};

static int
ban_opt(void *arg, int id, const char *v)
{
	struct ban_opts *o = arg;

	switch (id) {
	case O_FOR:
		return ctl_duration("ban", "--for", v, &o->for_ms);
	case O_REASON:
		o->reason = v;
		return CTL_OK;
	}
	return CTL_USAGE;
}

/* The canonical key of what the operator typed. */
static int
parse_key(const char *cmd, const char *text, char *key)
{
	if (fg_key_parse(key, text) != 0)
		return ctl_fail(CTL_USAGE, "%s: '%s' is not an address, a "
		                "network or a key (192.0.2.7, 192.0.2, "
		                "192.0.2.0/24, 2001:db8::/64, helo:NAME, "
		                "192.0.2.0/24,helo:NAME)", cmd, san(text));
	return CTL_OK;
}

/*
 * What ban and allow take alike: KEY, --for and --reason.  The key comes
 * out canonical in key; a missing one is a usage error naming cmd.
 */
static int
key_args(struct ctl *c, int argc, char **argv, const char *cmd,
         const char *usage, struct ban_opts *o, char *key)
{
	static const struct ctl_opt opts[] = {
		{"for", true, O_FOR}, {"reason", true, O_REASON}, {NULL, 0, 0},
	};
	const char *pos[1];
	size_t npos;
	int rc;

	if ((rc = ctl_parse(c, argc, argv, opts, ban_opt, o, pos, 1, &npos,
	                    usage)) != CTL_OK)
		return rc;
	if (npos != 1)
		return ctl_fail(CTL_USAGE, "%s: which key?\nusage: "
		                "floodgatectl %s", cmd, usage);
	return parse_key(cmd, pos[0], key);
}

/* "until TIME ZONE (DURATION): REASON" of a ban or an allow. */
static void
print_until(const char *what, const char *key, int64_t until, int64_t for_ms,
            const char *reason)
{
	printf("%s %s until %s %s (%s)%s%s\n", what, san(key), fmt_time(until),
	       fmt_zone(until), fmt_duration(for_ms), reason ? ": " : "",
	       reason ? san(reason) : "");
}

int
cmd_ban(struct ctl *c, int argc, char **argv)
{
	static const char usage[] = "ban KEY --for DURATION [--reason TEXT]";
	struct ban_opts o = {0, NULL};
	struct fg_config *cfg = NULL;
	char key[FG_KEY_MAX];
	const char *why = NULL;
	struct json *j;
	fg_query *q;
	int rc;

	if ((rc = key_args(c, argc, argv, "ban", usage, &o, key)) != CTL_OK)
		return rc;
	if (o.for_ms == 0)
		return ctl_fail(CTL_USAGE, "ban: --for DURATION is required\n"
		                "usage: floodgatectl %s", usage);
	/* What the daemon would not honour is refused, not stored. */
	if (!fg_policy_ban_checked(NULL, key, &why))
		return ctl_fail(CTL_USAGE, "ban: %s: %s; nothing banned",
		                san(key), why);
	/* The configuration names the database; without -c and with -d
	 * it may not exist, which is fine. */
	if (c->conf_given || c->db_path == NULL) {
		if ((rc = ctl_load_config(c->conf_path, false, &cfg)) != CTL_OK)
			return rc;
	}
	rc = ctl_open_db(c, cfg, FG_QUERY_WRITE, &q);
	if (cfg != NULL)
		fg_config_release(cfg);
	if (rc != CTL_OK)
		return rc;
	if (fg_query_ban_set(q, key, c->now_ms + o.for_ms,
	                     o.reason ? o.reason : "", "floodgatectl",
	                     c->now_ms) < 0)
		return query_fail(q, "ban");
	fg_query_close(q);
	if ((j = json_answer(c)) != NULL) {
		json_kstr(j, "banned", key);
		json_ktime(j, "until", c->now_ms + o.for_ms);
		json_kstr(j, "reason", o.reason ? o.reason : "");
		json_kbool(j, "effective", true);
		json_finish(j);
	} else {
		print_until("banned", key, c->now_ms + o.for_ms, o.for_ms,
		            o.reason);
	}
	return CTL_OK;
}

/* The network bans in force that cover address key, into *out (n). */
static int
covering_bans(fg_query *q, const char *key, int64_t now,
              struct fg_ban_entry **out, size_t *n)
{
	struct fg_ban_entry *all;
	size_t nall;
	fg_addr a;
	int rc;

	*out = NULL;
	*n = 0;
	if (fg_key_type_of(key) != FG_KEY_ADDRESS || fg_addr_parse(key, &a) != 0)
		return 0;
	if ((rc = fg_query_bans(q, now, &all, &nall)) < 0)
		return rc;
	*out = xcalloc(nall + 1, sizeof(**out));
	for (size_t i = 0; i < nall; i++)
		if (fg_key_covers(all[i].key, &a))
			(*out)[(*n)++] = all[i];
	fg_query_free(all);
	return 0;
}

enum { O_COVERING = O_OLDER + 1 };

static int
unban_opt(void *arg, int id, const char *v)
{
	(void)v;
	if (id == O_COVERING) {
		*(bool *)arg = true;
		return CTL_OK;
	}
	return CTL_USAGE;
}

int
cmd_unban(struct ctl *c, int argc, char **argv)
{
	static const struct ctl_opt opts[] = {
		{"covering", false, O_COVERING}, {NULL, 0, 0},
	};
	static const char usage[] = "unban KEY [--covering]";
	struct fg_ban_entry *cov = NULL;
	char key[FG_KEY_MAX];
	const char *pos[1];
	bool covering = false;
	size_t npos, ncov = 0;
	struct json *j;
	fg_query *q;
	int rc, lifted;

	if ((rc = ctl_parse(c, argc, argv, opts, unban_opt, &covering, pos, 1,
	                    &npos, usage)) != CTL_OK)
		return rc;
	if (npos != 1)
		return ctl_fail(CTL_USAGE, "unban: which key?\nusage: "
		                "floodgatectl %s", usage);
	if ((rc = parse_key("unban", pos[0], key)) != CTL_OK)
		return rc;
	if ((rc = ctl_open_db(c, NULL, FG_QUERY_WRITE, &q)) != CTL_OK)
		return rc;
	/* Lifted and reset: with its counts and levels left, the daemon
	 * would ban the key again at its next event. */
	if ((lifted = fg_query_ban_lift(q, key, c->now_ms)) < 0 ||
	    fg_query_reset(q, key, c->now_ms) < 0 ||
	    covering_bans(q, key, c->now_ms, &cov, &ncov) < 0) {
		free(cov);
		return query_fail(q, "unban");
	}
	for (size_t i = 0; covering && i < ncov; i++)
		if (fg_query_ban_lift(q, cov[i].key, c->now_ms) < 0 ||
		    fg_query_reset(q, cov[i].key, c->now_ms) < 0) {
			free(cov);
			return query_fail(q, "unban");
		}
	fg_query_close(q);
	if ((j = json_answer(c)) != NULL) {
		json_kstr(j, "key", key);
		json_kbool(j, "lifted", lifted == 1);
		json_key(j, "covering");
		json_arr(j);
		for (size_t i = 0; i < ncov; i++) {
			json_obj(j);
			json_kstr(j, "key", cov[i].key);
			json_kbool(j, "lifted", covering);
			json_end(j);
		}
		json_end(j);
		json_finish(j);
	} else {
		if (lifted == 1)
			printf("lifted the ban of %s\n", san(key));
		else if (ncov == 0)
			printf("%s was not banned\n", san(key));
		for (size_t i = 0; i < ncov; i++)
			printf(covering ? "lifted the ban of %s, which covers %s\n"
			                : "%s is still banned: %s covers it "
			                  "(unban --covering lifts it too)\n",
			       covering ? san(cov[i].key) : san(key),
			       covering ? san(key) : san(cov[i].key));
	}
	free(cov);
	return CTL_OK;
}

/* ---- the allow list ------------------------------------------------------------ */

/* What an allow may name: what the daemon looks up at some stage. */
static bool
allow_kind_ok(const char *key)
{
	switch (fg_key_type_of(key)) {
	case FG_KEY_ADDRESS:
	case FG_KEY_NETWORK:
	case FG_KEY_HELO:
	case FG_KEY_SENDER_DOMAIN:
		return true;
	default:
		return false;
	}
}

int
cmd_allow(struct ctl *c, int argc, char **argv)
{
	static const char usage[] = "allow KEY [--for DURATION] [--reason TEXT]";
	struct ban_opts o = {0, NULL};
	char key[FG_KEY_MAX];
	int64_t until;
	struct json *j;
	fg_query *q;
	int rc;

	if ((rc = key_args(c, argc, argv, "allow", usage, &o, key)) != CTL_OK)
		return rc;
	if (!allow_kind_ok(key))
		return ctl_fail(CTL_USAGE, "allow: %s: only an address, a "
		                "network, a HELO name (helo:NAME) or a sender "
		                "domain (sender-domain:NAME) can be allowed",
		                san(key));
	until = o.for_ms > 0 ? c->now_ms + o.for_ms : INT64_MAX;
	if ((rc = ctl_open_db(c, NULL, FG_QUERY_WRITE, &q)) != CTL_OK)
		return rc;
	if (fg_query_allow_set(q, key, until, o.reason, "floodgatectl",
	                       c->now_ms) < 0)
		return query_fail(q, "allow");
	fg_query_close(q);
	if ((j = json_answer(c)) != NULL) {
		json_kstr(j, "allowed", key);
		if (o.for_ms > 0)
			json_ktime(j, "until", until);
		json_kstr(j, "reason", o.reason ? o.reason : "");
		json_finish(j);
	} else if (o.for_ms > 0) {
		print_until("allowed", key, until, o.for_ms, o.reason);
	} else {
		printf("allowed %s until disallowed%s%s\n", san(key),
		       o.reason ? ": " : "", o.reason ? san(o.reason) : "");
	}
	return CTL_OK;
}

int
cmd_disallow(struct ctl *c, int argc, char **argv)
{
	char key[FG_KEY_MAX];
	const char *pos[1];
	size_t npos;
	struct json *j;
	fg_query *q;
	int rc, lifted;

	if ((rc = ctl_parse(c, argc, argv, NULL, ctl_no_opt, NULL, pos, 1, &npos,
	                    "disallow KEY")) != CTL_OK)
		return rc;
	if (npos != 1)
		return ctl_fail(CTL_USAGE, "disallow: which key?\nusage: "
		                "floodgatectl disallow KEY");
	if ((rc = parse_key("disallow", pos[0], key)) != CTL_OK)
		return rc;
	if ((rc = ctl_open_db(c, NULL, FG_QUERY_WRITE, &q)) != CTL_OK)
		return rc;
	if ((lifted = fg_query_allow_lift(q, key)) < 0)
		return query_fail(q, "disallow");
	fg_query_close(q);
	if ((j = json_answer(c)) != NULL) {
		json_kstr(j, "key", key);
		json_kbool(j, "disallowed", lifted == 1);
		json_finish(j);
	} else {
		printf(lifted == 1 ? "%s is no longer allowed\n"
		                   : "%s was not allowed\n", san(key));
	}
	return CTL_OK;
}

int
cmd_allows(struct ctl *c, int argc, char **argv)
{
	struct fg_allow_entry *a = NULL;
	const char *pos[1];
	size_t npos, n = 0;
	struct json *j;
	struct table *t;
	fg_query *q;
	int rc;

	if ((rc = ctl_parse(c, argc, argv, NULL, ctl_no_opt, NULL, pos, 0, &npos,
	                    "allows")) != CTL_OK)
		return rc;
	if ((rc = ctl_open_db(c, NULL, FG_QUERY_READ, &q)) != CTL_OK)
		return rc;
	if (fg_query_allows(q, c->now_ms, &a, &n) < 0)
		return query_fail(q, "allows");
	fg_query_close(q);
	if ((j = json_answer(c)) != NULL) {
		json_key(j, "allows");
		json_arr(j);
		for (size_t i = 0; i < n; i++) {
			json_obj(j);
			json_kstr(j, "key", a[i].key);
			if (a[i].until_ms != INT64_MAX)
				json_ktime(j, "until", a[i].until_ms);
			json_ktime(j, "created", a[i].created_ms);
			json_kstr(j, "reason", a[i].reason);
			json_kstr(j, "source", a[i].source);
			json_end(j);
		}
		json_end(j);
		json_finish(j);
	} else if (n == 0) {
		printf("no allows in force\n");
	} else {
		t = table_new("lllll", "KEY", "UNTIL", "SINCE", "SOURCE",
		              "REASON", (char *)NULL);
		for (size_t i = 0; i < n; i++) {
			table_cell_text(t, a[i].key);
			table_cell(t, "%s", a[i].until_ms == INT64_MAX
			           ? "disallowed" : fmt_time(a[i].until_ms));
			table_cell(t, "%s", fmt_time(a[i].created_ms));
			table_cell_text(t, a[i].source[0] ? a[i].source : "-");
			table_cell_text(t, a[i].reason[0] ? a[i].reason : "-");
		}
		table_print(t, stdout);
		table_free(t);
	}
	fg_query_free(a);
	return CTL_OK;
}

int
cmd_reset(struct ctl *c, int argc, char **argv)
{
	char key[FG_KEY_MAX];
	const char *pos[1];
	size_t npos;
	struct json *j;
	fg_query *q;
	int rc;

	if ((rc = ctl_parse(c, argc, argv, NULL, ctl_no_opt, NULL, pos, 1, &npos,
	                    "reset KEY")) != CTL_OK)
		return rc;
	if (npos != 1)
		return ctl_fail(CTL_USAGE, "reset: which key?\nusage: "
		                "floodgatectl reset KEY");
	if ((rc = parse_key("reset", pos[0], key)) != CTL_OK)
		return rc;
	if ((rc = ctl_open_db(c, NULL, FG_QUERY_WRITE, &q)) != CTL_OK)
		return rc;
	if (fg_query_reset(q, key, c->now_ms) < 0)
		return query_fail(q, "reset");
	fg_query_close(q);
	if ((j = json_answer(c)) != NULL) {
		json_kstr(j, "reset", key);
		json_finish(j);
	} else {
		printf("reset the counts and levels of %s\n", san(key));
	}
	return CTL_OK;
}

/* ---- stats -------------------------------------------------------------------- */

struct since_opts {
	const char *cmd;
	int64_t since;
};

static int
since_opt(void *arg, int id, const char *v)
{
	struct since_opts *o = arg;

	if (id == O_SINCE || id == O_OLDER)
		return ctl_duration(o->cmd, id == O_SINCE ? "--since" : "--older",
		                    v, &o->since);
	return CTL_USAGE;
}

static void
stats_rows(struct table *t, const char *name, int64_t n)
{
	table_cell(t, "%s", name);
	table_cell(t, "%" PRId64, n);
}

#define SPARK_MAX 60     /* marks in a sparkline: fits 80 columns */
#define BAR_WIDTH 24

static void
stats_timeline(const struct ctl *c, const struct fg_stats *s)
{
	int64_t inv[SPARK_MAX], ref[SPARK_MAX], maxi = 0, maxr = 0;
	int64_t hmaxi = 0, hmaxr = 0;
	size_t per = (s->nhours + SPARK_MAX - 1) / SPARK_MAX, nm;
	char line[SPARK_MAX * 4 + 1], bi[BAR_WIDTH * 4 + 1],
	    br[BAR_WIDTH * 4 + 1];
	struct table *t;

	if (per == 0)
		per = 1;
	nm = (s->nhours + per - 1) / per;
	memset(inv, 0, sizeof(inv));
	memset(ref, 0, sizeof(ref));
	for (size_t i = 0; i < s->nhours; i++) {
		inv[i / per] += s->hours[i].invalid;
		ref[i / per] += s->hours[i].refused;
		if (s->hours[i].invalid > hmaxi)
			hmaxi = s->hours[i].invalid;
		if (s->hours[i].refused > hmaxr)
			hmaxr = s->hours[i].refused;
	}
	for (size_t i = 0; i < nm; i++) {
		if (inv[i] > maxi)
			maxi = inv[i];
		if (ref[i] > maxr)
			maxr = ref[i];
	}
	printf("\nper hour, %.11s to %.11s %s, one mark = %zu h\n",
	       fmt_time_short(s->hours[0].hour_ms),
	       fmt_time_short(s->hours[s->nhours - 1].hour_ms + HOUR_MS),
	       fmt_zone(s->hours[0].hour_ms), per);
	sparkline(line, sizeof(line), inv, nm, maxi, c->utf8);
	printf("  invalid |%s| max %" PRId64 "\n", line, maxi);
	sparkline(line, sizeof(line), ref, nm, maxr, c->utf8);
	printf("  refused |%s| max %" PRId64 "\n\n", line, maxr);

	/* The busy hours themselves (the sparklines show the quiet ones). */
	t = table_new("lrlrl", fmt_heading("HOUR", s->hours[0].hour_ms), "INVALID", "", "REFUSED", "",
	              (char *)NULL);
	for (size_t i = 0; i < s->nhours; i++) {
		const struct fg_stat_hour *h = &s->hours[i];

		if (h->invalid == 0 && h->refused == 0)
			continue;
		bar(bi, sizeof(bi), h->invalid, hmaxi, BAR_WIDTH, c->utf8);
		bar(br, sizeof(br), h->refused, hmaxr, BAR_WIDTH, c->utf8);
		table_cell(t, "%.11s", fmt_time_short(h->hour_ms));
		table_cell(t, "%" PRId64, h->invalid);
		table_cell(t, "%s", bi);
		table_cell(t, "%" PRId64, h->refused);
		table_cell(t, "%s", br);
	}
	if (table_rows(t) > 0)
		table_print(t, stdout);
	else
		printf("no invalid recipients and no refusals\n");
	table_free(t);
}

/* The statistics into the open object of j. */
static void
stats_json(struct json *j, const struct ctl *c, const struct fg_stats *s)
{
	json_ktime(j, "since", s->since_ms);
	json_ktime(j, "now", c->now_ms);
	json_key(j, "events");
	json_obj(j);
	json_kint(j, "all", s->events);
	/* The events table has no ratio-guard sample: only counts do. */
	for (int i = 0; i < FG_CNT__COUNT; i++)
		if (i != FG_CNT_RCPT_SAMPLE)
			json_kint(j, fg_counter_name((enum fg_counter)i),
			          s->counts[i]);
	json_kint(j, "sessions", s->sessions);
	json_kint(j, "clients", s->clients);
	json_kint(j, "networks", s->networks);
	json_end(j);
	json_key(j, "verdicts");
	json_obj(j);
	json_kint(j, "all", s->verdicts);
	json_kint(j, "refused", s->refused);
	json_kint(j, "delayed", s->delayed);
	json_kint(j, "monitor", s->monitor);
	for (int k = 0; k < 2; k++) {
		const struct fg_stat_row *r = k == 0 ? s->actions : s->rules;
		size_t n = k == 0 ? s->nactions : s->nrules;

		json_key(j, k == 0 ? "by_action" : "by_rule");
		json_obj(j);
		for (size_t i = 0; i < n; i++) {
			json_key(j, r[i].name);
			json_obj(j);
			json_kint(j, "enforced", r[i].n);
			json_kint(j, "monitor", r[i].monitor);
			json_end(j);
		}
		json_end(j);
	}
	json_end(j);
	json_key(j, "hours");
	json_arr(j);
	for (size_t i = 0; i < s->nhours; i++) {
		json_obj(j);
		json_ktime(j, "hour", s->hours[i].hour_ms);
		json_kint(j, "invalid", s->hours[i].invalid);
		json_kint(j, "refused", s->hours[i].refused);
		json_end(j);
	}
}

int
cmd_stats(struct ctl *c, int argc, char **argv)
{
	static const struct ctl_opt opts[] = {
		{"since", true, O_SINCE}, {NULL, 0, 0},
	};
	struct since_opts o = {"stats", DAY_MS};
	struct fg_query_status ds;
	struct fg_stats s;
	struct json *j;
	bool have_status;
	fg_query *q;
	int rc;

	if ((rc = parse_open(c, argc, argv, opts, since_opt, &o,
	                     "stats [--since 24h]", FG_QUERY_READ,
	                     &q)) != CTL_OK)
		return rc;
	if (fg_query_stats(q, c->now_ms - o.since, c->now_ms, &s) < 0)
		return query_fail(q, NULL);
	have_status = fg_query_status(q, &ds) == 1;
	fg_query_close(q);
	if ((j = json_answer(c)) != NULL) {
		if (have_status)
			ctl_shared_json(j, &ds, c->now_ms);
		stats_json(j, c, &s);
		json_finish(j);
		fg_query_stats_free(&s);
		return CTL_OK;
	}

	printf("since %s %s (%s): %" PRId64 " events in %" PRId64
	       " sessions from %" PRId64 " clients in %" PRId64
	       " networks\n\n", fmt_time(s.since_ms), fmt_zone(s.since_ms),
	       fmt_duration(o.since),
	       s.events, s.sessions, s.clients, s.networks);
	/* The daemon's own figures, as its status row gives them. */
	if (have_status)
		printf("daemon: %" PRId64 " keys in %.1f of %.1f MB (%" PRId64
		       " key updates held back by the limit, %" PRId64
		       " allocation failures); %" PRId64 " rows dropped; "
		       "database %.1f of %.1f MB (%" PRId64 " rows pruned "
		       "for size)\n\n", ds.keys, (double)ds.memory / 1048576.0,
		       (double)ds.memory_limit / 1048576.0, ds.keys_refused,
		       ds.alloc_failures, ds.dropped,
		       (double)ds.db_size / 1048576.0,
		       (double)ds.max_database_size / 1048576.0, ds.size_pruned);
	if (have_status) {
		char sh[700];
		printf("shared: %s\n\n", ctl_shared_text(&ds, c->now_ms, sh,
		                                          sizeof(sh)));
	}
	struct table *t = table_new("lr", "EVENTS", "COUNT", (char *)NULL);
	stats_rows(t, "connect", s.counts[FG_CNT_CONNECT]);
	stats_rows(t, "helo", s.counts[FG_CNT_HELO]);
	stats_rows(t, "mail", s.counts[FG_CNT_MAIL]);
	stats_rows(t, "rcpt", s.counts[FG_CNT_RCPT]);
	stats_rows(t, "  valid", s.counts[FG_CNT_RCPT_VALID]);
	stats_rows(t, "  invalid", s.counts[FG_CNT_RCPT_INVALID]);
	stats_rows(t, "  rejected", s.counts[FG_CNT_RCPT_REJECTED]);
	table_print(t, stdout);
	table_free(t);

	printf("\n%" PRId64 " verdicts: %" PRId64 " refusals, %" PRId64
	       " delays, %" PRId64 " monitor only\n", s.verdicts, s.refused,
	       s.delayed, s.monitor);
	for (int k = 0; k < 2 && s.verdicts > 0; k++) {
		const struct fg_stat_row *r = k == 0 ? s.actions : s.rules;
		size_t n = k == 0 ? s.nactions : s.nrules;

		t = table_new("lrr", k == 0 ? "ACTION" : "RULE", "ENFORCED",
		              "MONITOR", (char *)NULL);
		for (size_t i = 0; i < n; i++) {
			table_cell_text(t, r[i].name);
			table_cell(t, "%" PRId64, r[i].n);
			table_cell(t, "%" PRId64, r[i].monitor);
		}
		putchar('\n');
		table_print(t, stdout);
		table_free(t);
	}
	stats_timeline(c, &s);
	fg_query_stats_free(&s);
	return CTL_OK;
}

/* ---- prune, vacuum, check ------------------------------------------------------ */

int
cmd_prune(struct ctl *c, int argc, char **argv)
{
	static const struct ctl_opt opts[] = {
		{"older", true, O_OLDER}, {NULL, 0, 0},
	};
	struct since_opts o = {"prune", 7 * DAY_MS};
	int64_t ne, nv;
	struct json *j;
	fg_query *q;
	int rc;

	if ((rc = parse_open(c, argc, argv, opts, since_opt, &o,
	                     "prune [--older 7d]", FG_QUERY_WRITE,
	                     &q)) != CTL_OK)
		return rc;
	if (fg_query_prune(q, c->now_ms - o.since, &ne, &nv) < 0)
		return query_fail(q, "prune");
	fg_query_close(q);
	if ((j = json_answer(c)) != NULL) {
		json_ktime(j, "before", c->now_ms - o.since);
		json_kint(j, "events", ne);
		json_kint(j, "verdicts", nv);
		json_finish(j);
	} else {
		printf("pruned %" PRId64 " events and %" PRId64 " verdicts "
		       "older than %s (before %s %s)\n", ne, nv,
		       fmt_duration(o.since), fmt_time(c->now_ms - o.since),
		       fmt_zone(c->now_ms - o.since));
	}
	return CTL_OK;
}

int
cmd_vacuum(struct ctl *c, int argc, char **argv)
{
	int64_t before, after;
	struct json *j;
	fg_query *q;
	int rc;

	if ((rc = parse_open(c, argc, argv, NULL, ctl_no_opt, NULL, "vacuum",
	                     FG_QUERY_WRITE, &q)) != CTL_OK)
		return rc;
	if (fg_query_vacuum(q, &before, &after) < 0)
		return query_fail(q, "vacuum");
	fg_query_close(q);
	if ((j = json_answer(c)) != NULL) {
		json_kint(j, "bytes_before", before);
		json_kint(j, "bytes_after", after);
		json_finish(j);
	} else {
		printf("vacuumed: %" PRId64 " KiB before, %" PRId64
		       " KiB after\n", before / 1024, after / 1024);
	}
	return CTL_OK;
}

struct problems {
	char **v;
	size_t n;
};

static void
problems_free(struct problems *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i]);
	free(p->v);
}

static void
note_problem(void *arg, const char *line)
{
	struct problems *p = arg;

	p->v = xrealloc(p->v, (p->n + 1) * sizeof(*p->v));
	p->v[p->n++] = xstrdup(line);
}

int
cmd_check(struct ctl *c, int argc, char **argv)
{
	struct fg_query_info info;
	struct problems p = {NULL, 0};
	struct json *j;
	fg_query *q;
	int rc, sound;

	if ((rc = parse_open(c, argc, argv, NULL, ctl_no_opt, NULL, "check",
	                     FG_QUERY_READ, &q)) != CTL_OK)
		return rc;
	if (fg_query_info(q, &info) < 0 ||
	    (sound = fg_query_check(q, 20, note_problem, &p)) < 0) {
		problems_free(&p);
		return query_fail(q, "check");
	}
	fg_query_close(q);
	if ((j = json_answer(c)) != NULL) {
		json_kbool(j, "ok", sound == 1);
		json_kint(j, "application_id", info.application_id);
		json_kint(j, "schema_version", info.schema_version);
		json_kint(j, "schema_known", FG_QUERY_SCHEMA_VERSION);
		json_kstr(j, "journal_mode", info.journal_mode);
		json_kint(j, "bytes", info.page_size * info.page_count);
		json_kint(j, "free_bytes", info.page_size * info.freelist_count);
		json_kint(j, "events", info.events);
		json_kint(j, "verdicts", info.verdicts);
		json_kint(j, "bans", info.bans);
		json_kint(j, "counts", info.counts);
		json_kint(j, "levels", info.levels);
		json_key(j, "problems");
		json_arr(j);
		for (size_t i = 0; i < p.n; i++)
			json_str(j, p.v[i]);
		json_finish(j);
	} else {
		printf("application_id  0x%08" PRIx64 " (floodgate)\n",
		       (uint64_t)info.application_id);
		printf("schema version  %" PRId64 " (this floodgatectl knows "
		       "up to %d)\n", info.schema_version,
		       FG_QUERY_SCHEMA_VERSION);
		printf("journal mode    %s\n", san(info.journal_mode));
		printf("size            %" PRId64 " KiB (%" PRId64
		       " KiB free)\n", info.page_size * info.page_count / 1024,
		       info.page_size * info.freelist_count / 1024);
		printf("rows            %" PRId64 " events, %" PRId64
		       " verdicts, %" PRId64 " bans, %" PRId64 " counts, %"
		       PRId64 " levels\n", info.events, info.verdicts,
		       info.bans, info.counts, info.levels);
		if (info.events > 0)
			printf("events          %s .. %s %s\n",
			       fmt_time(info.oldest_ms), fmt_time(info.newest_ms),
			       fmt_zone(info.newest_ms));
		for (size_t i = 0; i < p.n; i++)
			printf("problem         %s\n", san(p.v[i]));
		printf("integrity       %s\n", sound == 1 ? "ok" : "FAILED");
	}
	problems_free(&p);
	return sound == 1 ? CTL_OK : CTL_RUNTIME;
}
