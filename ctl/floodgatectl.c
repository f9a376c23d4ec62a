/*
 * floodgatectl.c - the operator's tool for a floodgate database: global
 * options, the command table, and what every command shares (finding the
 * configuration and the database, parsing options).
 *
 * It works on the live database while the daemon runs: reading as a WAL
 * reader, writing only the bans table (the daemon re-reads it within a
 * second) and, for prune and vacuum, the raw history.  The clock is read
 * once, here; lib/ gets the time as a parameter.
 */
#include <errno.h>
#include <getopt.h>
#include <langinfo.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "ctl.h"
#include "fg.h"
#include "log.h"
#include "query.h"
#include "version.h"

static const char usage_text[] =
    "usage: floodgatectl [-d database] [-c config] [--json] [--utc] command "
    "[args]\n"
    "commands:\n"
    "  top [--since 1h] [--by address|network|helo|domain]\n"
    "      [--kind invalid|connect|rcpt] [--limit N]\n"
    "  why ADDRESS [--limit N]\n"
    "  bans\n"
    "  ban KEY --for DURATION [--reason TEXT]\n"
    "  unban KEY [--covering]\n"
    "  reset KEY\n"
    "  allow KEY [--for DURATION] [--reason TEXT]\n"
    "  disallow KEY\n"
    "  allows\n"
    "  stats [--since 24h]\n"
    "  replay --config NEW.conf [--since 24h] [--limit N]\n"
    "  prune [--older 7d]\n"
    "  vacuum\n"
    "  check\n"
    "  doctor [--postfix-config DIR] [--sendmail-cf FILE]\n"
    "  status [--stale 30s]\n"
    "  metrics\n"
    "options:\n"
    "  -d database  the SQLite database (default: the config's database)\n"
    "  -c config    configuration file (default %s)\n"
    "  --json       one JSON document on stdout instead of tables\n"
    "  --utc        times in UTC (default: local time, TZ)\n"
    "  -V           print the version;  -h  this help\n";

static const struct {
	const char *name;
	int (*fn)(struct ctl *, int, char **);
} commands[] = {
	{"top", cmd_top},
	{"why", cmd_why},
	{"bans", cmd_bans},
	{"ban", cmd_ban},
	{"unban", cmd_unban},
	{"reset", cmd_reset},
	{"allow", cmd_allow},
	{"disallow", cmd_disallow},
	{"allows", cmd_allows},
	{"stats", cmd_stats},
	{"replay", cmd_replay},
	{"prune", cmd_prune},
	{"vacuum", cmd_vacuum},
	{"check", cmd_check},
	{"doctor", cmd_doctor},
	{"status", cmd_status},
	{"metrics", cmd_metrics},
};

int
ctl_fail(int status, const char *fmt, ...)
{
	va_list ap;

	fputs("floodgatectl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return status;
}

void
ctl_warn(const char *fmt, ...)
{
	va_list ap;

	fputs("floodgatectl: warning: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- configuration and database ------------------------------------------ */

static void
diag(void *arg, bool is_warning, const char *line)
{
	bool warnings = *(bool *)arg;

	if (!is_warning)
		fprintf(stderr, "floodgatectl: %s\n", line);
	else if (warnings)
		fprintf(stderr, "floodgatectl: warning: %s\n", line);
}

int
ctl_load_config(const char *path, bool warnings, struct fg_config **out)
{
	int rc;

	*out = NULL;
	if (access(path, R_OK) != 0)
		return ctl_fail(CTL_RUNTIME, "%s: cannot read the "
		                "configuration: %s (give one with -c)", path,
		                strerror(errno));
	if ((rc = fg_config_load(path, out, diag, &warnings)) == 0)
		return CTL_OK;
	*out = NULL;
	/* FG_ECONFIG: the loader has said what is wrong, line by line. */
	if (rc != FG_ECONFIG)
		return ctl_fail(CTL_RUNTIME, "%s: %s", path, fg_strerror(rc));
	return CTL_RUNTIME;
}

int
ctl_open_db(struct ctl *c, const struct fg_config *cfg,
            enum fg_query_mode mode, fg_query **out)
{
	struct fg_config *own = NULL;
	const char *path = c->db_path;
	char err[600];
	int rc;

	*out = NULL;
	if (path == NULL && cfg == NULL) {
		if ((rc = ctl_load_config(c->conf_path, false, &own)) != CTL_OK)
			return rc;
		cfg = own;
	}
	if (path == NULL) {
		/* False positive: CTL_OK from ctl_load_config() means own is set. */
		/* NOLINTNEXTLINE(clang-analyzer-core.NullDereference) */
		path = cfg->database;
	}
	rc = fg_query_open(path, mode, out, err, sizeof(err));
	if (own != NULL)
		fg_config_release(own);
	if (rc < 0)
		return ctl_fail(CTL_RUNTIME, "%s", err);
	return CTL_OK;
}

/* ---- options ----------------------------------------------------------------- */

enum { OPT_JSON = 0x100, OPT_HELP, OPT_UTC };

int
ctl_parse(struct ctl *c, int argc, char **argv, const struct ctl_opt *opts,
          ctl_opt_fn *fn, void *arg, const char **pos, size_t maxpos,
          size_t *npos, const char *usage)
{
	struct option lo[16];
	size_t n = 0;
	int ch;

	for (; opts != NULL && opts[n].name != NULL && n < FG_NELEM(lo) - 4;
	     n++) {
		lo[n].name = opts[n].name;
		lo[n].has_arg = opts[n].has_arg ? required_argument
		                                : no_argument;
		lo[n].flag = NULL;
		lo[n].val = opts[n].id;
	}
	lo[n++] = (struct option){"json", no_argument, NULL, OPT_JSON};
	lo[n++] = (struct option){"help", no_argument, NULL, OPT_HELP};
	lo[n++] = (struct option){"utc", no_argument, NULL, OPT_UTC};
	lo[n] = (struct option){NULL, 0, NULL, 0};

	*npos = 0;
	optind = 0;   /* glibc: start afresh on a new argv */
	opterr = 0;
	/* "-": positional arguments come back as 1, in their order. */
	while ((ch = getopt_long(argc, argv, "-h", lo, NULL)) != -1) {
		int rc;

		switch (ch) {
		case 1:
			if (*npos >= maxpos)
				return ctl_fail(CTL_USAGE, "%s: unexpected "
				                "argument '%s' (usage: floodgatectl "
				                "%s)", argv[0], san(optarg), usage);
			pos[(*npos)++] = optarg;
			break;
		case OPT_JSON:
			c->json = true;
			break;
		case OPT_UTC:
			fmt_set_utc(true);
			break;
		case 'h':
		case OPT_HELP:
			printf("usage: floodgatectl %s\n", usage);
			return -1;
		default:
			if (ch == '?' && optopt >= CTL_OPT_BASE)
				return ctl_fail(CTL_USAGE, "%s: %s needs a value "
				                "(usage: floodgatectl %s)", argv[0],
				                san(argv[optind - 1]), usage);
			if (ch == '?')
				return ctl_fail(CTL_USAGE, "%s: unknown option "
				                "'%s' (usage: floodgatectl %s)",
				                argv[0], san(argv[optind - 1]),
				                usage);
			if ((rc = fn(arg, ch, optarg)) != CTL_OK)
				return rc;
			break;
		}
	}
	return CTL_OK;
}

int
ctl_duration(const char *cmd, const char *opt, const char *s, int64_t *ms)
{
	if (fg_duration_parse(s, ms) != 0 || *ms <= 0)
		return ctl_fail(CTL_USAGE, "%s: %s: not a duration: '%s' "
		                "(examples: 30s, 10m, 1h, 7d)", cmd, opt, san(s));
	return CTL_OK;
}

int
ctl_count(const char *cmd, const char *opt, const char *s, size_t max,
          size_t *out)
{
	char *end;
	unsigned long long v;

	if (s[0] < '0' || s[0] > '9')
		goto bad;
	v = strtoull(s, &end, 10);
	if (*end != '\0' || v < 1 || v > max)
		goto bad;
	*out = (size_t)v;
	return CTL_OK;
bad:
	return ctl_fail(CTL_USAGE, "%s: %s: expected a number from 1 to %zu, "
	                "not '%s'", cmd, opt, max, san(s));
}

/* ---- main ---------------------------------------------------------------------- */

static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"json", no_argument, NULL, OPT_JSON},
		{"utc", no_argument, NULL, OPT_UTC},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct ctl c = {.conf_path = FG_DEFAULT_CONFIG};
	const char *cs;
	int ch, rc;

	setlocale(LC_CTYPE, "");
	cs = nl_langinfo(CODESET);
	c.utf8 = cs != NULL && strcmp(cs, "UTF-8") == 0;
	/* The in-memory store of replay may log; keep it to real errors. */
	fg_log_open("floodgatectl", true, FG_LOG_ERR);
	fmt_set_utc(false);

	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+:d:c:hV", lo, NULL)) != -1) {
		switch (ch) {
		case 'd': c.db_path = optarg; break;
		case 'c': c.conf_path = optarg; c.conf_given = true; break;
		case OPT_JSON: c.json = true; break;
		case OPT_UTC: fmt_set_utc(true); break;
		case 'h': printf(usage_text, FG_DEFAULT_CONFIG); return CTL_OK;
		case 'V': printf("floodgatectl %s\n", FG_VERSION); return CTL_OK;
		case ':':
			return ctl_fail(CTL_USAGE, "option -%c needs a value "
			                "(-h for help)", optopt);
		default:
			return ctl_fail(CTL_USAGE, "unknown option '%s' (-h for "
			                "help)", san(argv[optind - 1]));
		}
	}
	if (optind >= argc)
		return ctl_fail(CTL_USAGE, "no command given (-h for help)");
	if (c.db_path != NULL && c.db_path[0] == '\0')
		return ctl_fail(CTL_USAGE, "-d: empty database path");
	c.now_ms = wall_ms();
	for (size_t i = 0; i < FG_NELEM(commands); i++) {
		if (strcmp(argv[optind], commands[i].name) == 0) {
			rc = commands[i].fn(&c, argc - optind, argv + optind);
			return rc < 0 ? CTL_OK : rc;   /* < 0: help shown */
		}
	}
	return ctl_fail(CTL_USAGE, "unknown command '%s' (-h for help)",
	                san(argv[optind]));
}
