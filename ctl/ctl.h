/*
 * ctl.h - what the files of floodgatectl share: the command context, the
 * commands, and the output helpers (aligned tables, one JSON document,
 * times, durations, bars).
 *
 * Output discipline: every string that came from the database or a
 * client passes through fg_sanitize() before it is printed, in tables and
 * in JSON alike (json_str() and table_cell_text() do it).  Errors are one
 * line on stderr, "floodgatectl: ...".  Exit status: 0 done, 1 runtime
 * failure, 2 usage.
 *
 * Single-threaded; memory exhaustion ends the program (xmalloc).
 */
#ifndef FG_CTL_H
#define FG_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "query.h"

enum { CTL_OK = 0, CTL_RUNTIME = 1, CTL_USAGE = 2 };

struct ctl {
	const char *db_path;     /* -d, or NULL: the config's database */
	const char *conf_path;   /* -c, or the installed default */
	bool conf_given;         /* -c was given */
	bool json;               /* --json */
	bool utf8;               /* the terminal takes UTF-8 block glyphs */
	int64_t now_ms;          /* read once at start */
};

/* ---- floodgatectl.c ---------------------------------------------------- */

/* "floodgatectl: " + message on stderr; return the status given. */
int ctl_fail(int status, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void ctl_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Loads a configuration, reporting its errors (and warnings if asked) on
 * stderr; a status (CTL_OK or CTL_RUNTIME). */
int ctl_load_config(const char *path, bool warnings, struct fg_config **out);
/* The database to use: -d, else the database of cfg if not NULL, else of
 * the -c (or default) configuration. */
int ctl_open_db(struct ctl *c, const struct fg_config *cfg,
                enum fg_query_mode mode, fg_query **out);

/*
 * Command-option parsing shared by the commands: getopt_long over argv
 * (argv[0] is the command name) with --json and --help added; positional
 * arguments are collected in pos[] (at most maxpos).  Calls fn for every
 * other option; fn returns a status (CTL_OK to go on).  Returns CTL_OK,
 * -1 when the help was printed, or the status to exit with.
 */
#define CTL_OPT_BASE 0x200 /* ids of command options start here */
struct ctl_opt {
	const char *name;
	bool has_arg;
	int id;            /* >= CTL_OPT_BASE */
};
typedef int ctl_opt_fn(void *arg, int id, const char *value);
/* The ctl_opt_fn of a command without options of its own. */
int ctl_no_opt(void *arg, int id, const char *value);
int ctl_parse(struct ctl *c, int argc, char **argv, const struct ctl_opt *opts,
              ctl_opt_fn *fn, void *arg, const char **pos, size_t maxpos,
              size_t *npos, const char *usage);
/* A duration option ("30s", "1h", "7d"), > 0. */
int ctl_duration(const char *cmd, const char *opt, const char *s,
                 int64_t *ms);
/* A count option, 1 .. max. */
int ctl_count(const char *cmd, const char *opt, const char *s, size_t max,
              size_t *out);


/* ---- commands ------------------------------------------------------------ */

int cmd_top(struct ctl *c, int argc, char **argv);
int cmd_bans(struct ctl *c, int argc, char **argv);
int cmd_ban(struct ctl *c, int argc, char **argv);
int cmd_unban(struct ctl *c, int argc, char **argv);
int cmd_reset(struct ctl *c, int argc, char **argv);
int cmd_allow(struct ctl *c, int argc, char **argv);
int cmd_disallow(struct ctl *c, int argc, char **argv);
int cmd_allows(struct ctl *c, int argc, char **argv);
int cmd_stats(struct ctl *c, int argc, char **argv);
int cmd_prune(struct ctl *c, int argc, char **argv);
int cmd_vacuum(struct ctl *c, int argc, char **argv);
int cmd_check(struct ctl *c, int argc, char **argv);
int cmd_why(struct ctl *c, int argc, char **argv);
int cmd_replay(struct ctl *c, int argc, char **argv);
int cmd_doctor(struct ctl *c, int argc, char **argv);
int cmd_status(struct ctl *c, int argc, char **argv);
int cmd_metrics(struct ctl *c, int argc, char **argv);

/* ---- out.c --------------------------------------------------------------- */

/* Says so and exits: memory exhaustion ends the program. */
void oom(void) __attribute__((noreturn));
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

/* Sanitised copy of s for printing ("-" for NULL), in a rotating set of
 * static buffers: valid for the next few calls. */
const char *san(const char *s);

/* "2026-01-02 13:04:05" and "01-02 13:04:05" (short) in local time (TZ),
 * or in UTC after fmt_set_utc(true); ISO 8601 with Z always in UTC, for
 * JSON.  fmt_zone() names the zone of the first two at time ms ("CET",
 * "UTC"), for headings. */
void fmt_set_utc(bool utc);
const char *fmt_zone(int64_t ms);
/* "TIME (CET)": a column heading with that zone. */
const char *fmt_heading(const char *label, int64_t ms);
const char *fmt_time(int64_t ms);
const char *fmt_time_short(int64_t ms);
const char *fmt_iso(int64_t ms);
/* A span for people: "45s", "12m30s", "3h05m", "2d04h". */
const char *fmt_span(int64_t ms);
/* A duration as configured: fg_duration_format ("1h", "250ms"). */
const char *fmt_duration(int64_t ms);

/* Aligned tables.  align holds one 'l' or 'r' per column. */
struct table;
struct table *table_new(const char *align, ...);  /* headings, NULL */
void table_cell(struct table *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void table_cell_text(struct table *t, const char *s);  /* sanitised */
void table_print(struct table *t, FILE *fp);
size_t table_rows(const struct table *t);
void table_free(struct table *t);

/* One JSON document on stdout.  Strings are sanitised, then escaped. */
struct json;
struct fg_query_status;
/* The sharing of counts with other hosts, as the status row tells it
 * (cmd_status.c): one line of text into buf, or a "shared" object. */
char *ctl_shared_text(const struct fg_query_status *s, int64_t now_ms,
                      char *buf, size_t size);
void ctl_shared_json(struct json *j, const struct fg_query_status *s,
                     int64_t now_ms);
struct json *json_new(FILE *fp);
void json_finish(struct json *j);       /* newline, frees */
void json_obj(struct json *j);
void json_arr(struct json *j);
void json_end(struct json *j);
void json_key(struct json *j, const char *k);
void json_str(struct json *j, const char *s);   /* NULL → null */
void json_int(struct json *j, int64_t v);
void json_uint(struct json *j, uint64_t v);
void json_num(struct json *j, double v);
void json_bool(struct json *j, bool v);
void json_null(struct json *j);
void json_kstr(struct json *j, const char *k, const char *s);
void json_kint(struct json *j, const char *k, int64_t v);
void json_kbool(struct json *j, const char *k, bool v);
void json_ktime(struct json *j, const char *k, int64_t ms); /* k, k_ms */

/* A bar of v against max, width columns at most, into buf. */
void bar(char *buf, size_t size, int64_t v, int64_t max, int width,
         bool utf8);
/* One mark per value (n marks), scaled to max, into buf. */
void sparkline(char *buf, size_t size, const int64_t *v, size_t n,
               int64_t max, bool utf8);

#endif
