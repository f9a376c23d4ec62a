/*
 * config.c - floodgate.conf, through one declarative table per group.
 *
 * Each table row names a setting, its type, its default (as text, parsed
 * by the same code as the file), its bounds and an optional validator.
 * parse_group() walks a libconfig group against a table: unknown names
 * are errors, every value is converted and checked, defaults fill the
 * rest.  Cross-setting checks run last.  Every problem is reported through
 * the caller's diagnostic callback as "file:line: key: reason", and
 * loading goes on to find the next one; only then does it fail.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <libconfig.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fg.h"
#include "log.h"

/* ---- durations ---------------------------------------------------- */

int
fg_duration_parse(const char *s, int64_t *ms)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = {
		{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000},
		{"d", 86400000}, {"w", 604800000},
	};
	const char *p = s;
	int64_t v = 0;

	if (s == NULL || !isdigit((unsigned char)*p))
		return FG_EINVAL;
	while (isdigit((unsigned char)*p)) {
		if (v > (INT64_MAX / 10) - 10)
			return FG_ERANGE;
		v = v * 10 + (*p++ - '0');
	}
	if (*p == '\0') {
		if (v > INT64_MAX / 1000)
			return FG_ERANGE;
		*ms = v * 1000;
		return 0;
	}
	for (size_t i = 0; i < FG_NELEM(units); i++) {
		if (strcmp(p, units[i].unit) == 0) {
			if (v > INT64_MAX / units[i].ms)
				return FG_ERANGE;
			*ms = v * units[i].ms;
			return 0;
		}
	}
	return FG_EINVAL;
}

char *
fg_duration_format(int64_t ms, char *buf, size_t size)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = {
		{"w", 604800000}, {"d", 86400000}, {"h", 3600000},
		{"m", 60000}, {"s", 1000},
	};

	if (ms != 0) {
		for (size_t i = 0; i < FG_NELEM(units); i++) {
			if (ms % units[i].ms == 0) {
				snprintf(buf, size, "%" PRId64 "%s",
				         ms / units[i].ms, units[i].unit);
				return buf;
			}
		}
		snprintf(buf, size, "%" PRId64 "ms", ms);
	} else {
		snprintf(buf, size, "0s");
	}
	return buf;
}

/* ---- names -------------------------------------------------------- */

static const char *const action_names[] = {
	"continue", "delay", "tempfail", "reject", "disconnect", "ban", NULL,
};
static const char *const rule_type_names[] = {
	"connection_rate", "concurrency", "invalid_recipients",
	"recipient_rate", "rejected_recipients", "helo_rate", "mail_rate",
	"bad_recipient_throttle", "recipients_per_message", NULL,
};
static const char *const per_names[] = {
	"address", "network", "helo", "recipient_domain", "sender_domain",
	"global", "session", "message", NULL,
};
static const char *const growth_names[] = {
	"fixed", "linear", "doubling", NULL,
};
static const char *const on_error_names[] = {"tempfail", "accept", NULL};
static const char *const log_level_names[] = {
	"error", "warning", "info", "debug", NULL,
};

const char *
fg_action_name(enum fg_action a)
{
	if ((unsigned)a >= FG_NELEM(action_names) - 1)
		return "?";
	return action_names[a];
}

const char *
fg_rule_type_name(enum fg_rule_type t)
{
	if ((unsigned)t >= FG_NELEM(rule_type_names) - 1)
		return "?";
	return rule_type_names[t];
}

const char *
fg_per_name(enum fg_per p)
{
	if ((unsigned)p >= FG_NELEM(per_names) - 1)
		return "?";
	return per_names[p];
}

/* ---- the parsing context ------------------------------------------ */

struct ctx {
	const char *file;
	fg_config_diag_fn *diag;
	void *arg;
	int errors;
	bool nomem;
};

static void ctx_report(struct ctx *, bool, int, const char *, const char *,
                       ...) __attribute__((format(printf, 5, 6)));

static void
ctx_report(struct ctx *c, bool warning, int line, const char *key,
           const char *fmt, ...)
{
	char reason[512], msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (line > 0 && key != NULL)
		snprintf(msg, sizeof(msg), "%s:%d: %s: %s%s", c->file, line,
		         key, warning ? "warning: " : "", reason);
	else if (key != NULL)
		snprintf(msg, sizeof(msg), "%s: %s: %s%s", c->file, key,
		         warning ? "warning: " : "", reason);
	else
		snprintf(msg, sizeof(msg), "%s: %s%s", c->file,
		         warning ? "warning: " : "", reason);
	if (!warning)
		c->errors++;
	if (c->diag != NULL)
		c->diag(c->arg, warning, msg);
}

#define CERR(c, line, key, ...) ctx_report((c), false, (line), (key), __VA_ARGS__)
#define CWARN(c, line, key, ...) ctx_report((c), true, (line), (key), __VA_ARGS__)

static char *
ctx_strdup(struct ctx *c, const char *s)
{
	char *d = strdup(s != NULL ? s : "");

	if (d == NULL)
		c->nomem = true;
	return d;
}

static void *
ctx_calloc(struct ctx *c, size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	if (p == NULL)
		c->nomem = true;
	return p;
}

/* ---- field types -------------------------------------------------- */

enum ftype {
	F_STRING,   /* char * */
	F_BOOL,     /* bool */
	F_INT,      /* int64_t, bounds */
	F_UINT,     /* unsigned, bounds */
	F_DURATION, /* int64_t ms, bounds in ms */
	F_MODE,     /* unsigned, octal text */
	F_ENUM,     /* int (enum), names */
	F_RATIO,    /* double 0..1 */
	F_REPLY,    /* struct fg_reply */
	F_SPECIAL,  /* handled by the group's own code */
};

struct field {
	const char *name;
	enum ftype type;
	size_t off;
	const char *def;        /* default as config text; NULL: none/zero */
	int64_t min, max;
	const char *const *names;
	/* extra check; returns NULL or a reason */
	const char *(*check)(const char *text);
};

struct value {
	config_setting_t *s;    /* NULL for a default */
	const char *def;
	int line;
};

static const char *
check_socket(const char *v)
{
	if (strncmp(v, "unix:", 5) == 0 || strncmp(v, "local:", 6) == 0) {
		const char *p = strchr(v, ':') + 1;
		if (*p != '/')
			return "a unix socket needs an absolute path, e.g. "
			       "unix:/run/floodgate/floodgate.sock";
		if (strlen(p) >= 108)
			return "unix socket path too long (max 107 bytes)";
		return NULL;
	}
	if (strncmp(v, "inet:", 5) == 0 || strncmp(v, "inet6:", 6) == 0) {
		const char *p = strchr(v, ':') + 1;
		char *end;
		long port = strtol(p, &end, 10);
		if (end == p || port < 1 || port > 65535)
			return "expected inet:PORT@HOST with a port 1-65535";
		if (*end != '\0' && *end != '@')
			return "expected inet:PORT@HOST";
		if (*end == '@' && end[1] == '\0')
			return "empty host after '@'";
		return NULL;
	}
	return "expected unix:/path, inet:PORT@HOST or inet6:PORT@HOST";
}

static const char *
check_abs_path(const char *v)
{
	if (*v != '/')
		return "must be an absolute path";
	return NULL;
}

static const char *
check_abs_path_or_empty(const char *v)
{
	if (*v != '\0' && *v != '/')
		return "must be an absolute path or \"\"";
	return NULL;
}

static const char *
check_name(const char *v)
{
	if (*v == '\0')
		return "must not be empty";
	for (const char *p = v; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' &&
		    *p != '.')
			return "may only contain letters, digits, '_', '-', '.'";
	if (strlen(v) > 64)
		return "longer than 64 characters";
	return NULL;
}

static const char *
check_user(const char *v)
{
	for (const char *p = v; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' &&
		    *p != '.' && *p != '$')
			return "not a valid user or group name";
	return NULL;
}

static const char *
type_name(int t)
{
	switch (t) {
	case CONFIG_TYPE_GROUP: return "a group";
	case CONFIG_TYPE_INT: return "an integer";
	case CONFIG_TYPE_INT64: return "an integer";
	case CONFIG_TYPE_FLOAT: return "a number";
	case CONFIG_TYPE_STRING: return "a string";
	case CONFIG_TYPE_BOOL: return "a boolean";
	case CONFIG_TYPE_ARRAY: return "an array";
	case CONFIG_TYPE_LIST: return "a list";
	default: return "an unknown type";
	}
}

/*
 * Parse a default text once into a private libconfig so defaults go
 * through exactly the same conversions as the file.
 */
static int
parse_reply(struct ctx *c, config_setting_t *s, const char *key,
            struct fg_reply *r)
{
	int line = config_setting_source_line(s);
	char sub[256];

	memset(r, 0, sizeof(*r));
	if (config_setting_type(s) != CONFIG_TYPE_GROUP) {
		CERR(c, line, key, "expected a group { code = ...; status = "
		     "\"...\"; text = \"...\"; }, got %s",
		     type_name(config_setting_type(s)));
		return -1;
	}
	for (int i = 0; i < config_setting_length(s); i++) {
		config_setting_t *m = config_setting_get_elem(s, (unsigned)i);
		const char *n = config_setting_name(m);
		int ml = config_setting_source_line(m);

		snprintf(sub, sizeof(sub), "%s.%s", key, n);
		if (strcmp(n, "code") == 0) {
			int t = config_setting_type(m);
			long long v;
			if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) {
				CERR(c, ml, sub, "expected an integer, got %s",
				     type_name(t));
				continue;
			}
			v = config_setting_get_int64(m);
			if (v != 421 && !(v >= 400 && v <= 499) &&
			    !(v >= 500 && v <= 599)) {
				CERR(c, ml, sub, "%lld is not a 4xx or 5xx "
				     "reply code", v);
				continue;
			}
			r->code = (int)v;
		} else if (strcmp(n, "status") == 0) {
			const char *v = config_setting_get_string(m);
			int a, b, d, used = 0;
			if (v == NULL) {
				CERR(c, ml, sub, "expected a string such as "
				     "\"4.7.1\"");
				continue;
			}
			if (*v != '\0' &&
			    (sscanf(v, "%1d.%3d.%3d%n", &a, &b, &d, &used) != 3 ||
			     v[used] != '\0' || (a != 4 && a != 5))) {
				CERR(c, ml, sub, "\"%s\" is not an enhanced "
				     "status code like 4.7.1", v);
				continue;
			}
			snprintf(r->status, sizeof(r->status), "%s", v);
		} else if (strcmp(n, "text") == 0) {
			int t = config_setting_type(m);
			int nl = 1;
			if (t == CONFIG_TYPE_ARRAY || t == CONFIG_TYPE_LIST)
				nl = config_setting_length(m);
			else if (t != CONFIG_TYPE_STRING) {
				CERR(c, ml, sub, "expected a string or an array "
				     "of strings, got %s", type_name(t));
				continue;
			}
			if (nl < 1 || nl > FG_REPLY_MAX_LINES) {
				CERR(c, ml, sub, "between 1 and %d lines",
				     FG_REPLY_MAX_LINES);
				continue;
			}
			for (int j = 0; j < nl; j++) {
				const char *v = t == CONFIG_TYPE_STRING
				    ? config_setting_get_string(m)
				    : config_setting_get_string_elem(m, (unsigned)j);
				const char *bad = NULL;
				if (v == NULL) {
					bad = "every line must be a string";
				} else if (strlen(v) >= FG_REPLY_LINE_MAX - 16) {
					bad = "line too long (max 490 characters)";
				} else {
					for (const char *p = v; *p; p++)
						if ((unsigned char)*p < 0x20 ||
						    (unsigned char)*p >= 0x7f)
							bad = "control or non-ASCII "
							      "character in reply text";
				}
				if (bad != NULL) {
					CERR(c, ml, sub, "%s", bad);
					break;
				}
				if (r->nlines < FG_REPLY_MAX_LINES)
					r->lines[r->nlines++] = ctx_strdup(c, v);
			}
		} else {
			CERR(c, ml, sub, "unknown setting (expected code, "
			     "status or text)");
		}
	}
	if (r->status[0] != '\0' && r->code != 0 &&
	    r->status[0] != (char)('0' + r->code / 100))
		CERR(c, line, key, "status %s does not match code %d",
		     r->status, r->code);
	if (r->code == 0 && (r->nlines > 0 || r->status[0] != '\0'))
		CERR(c, line, key, "a reply needs a code");
	return 0;
}

static void
free_reply(struct fg_reply *r)
{
	for (size_t i = 0; i < r->nlines; i++)
		free(r->lines[i]);
	r->nlines = 0;
}

/* Converts one value (from the file, or a default text) into base+off. */
static void
set_field(struct ctx *c, const struct field *f, config_setting_t *s,
          const char *key, void *base)
{
	char *dst = (char *)base + f->off;
	int line = config_setting_source_line(s);
	int t = config_setting_type(s);
	const char *str = config_setting_get_string(s);
	const char *why;

	switch (f->type) {
	case F_STRING:
		if (str == NULL) {
			CERR(c, line, key, "expected a string, got %s",
			     type_name(t));
			return;
		}
		if (f->check != NULL && (why = f->check(str)) != NULL) {
			CERR(c, line, key, "\"%s\": %s", str, why);
			return;
		}
		free(*(char **)dst);
		*(char **)dst = ctx_strdup(c, str);
		return;
	case F_BOOL:
		if (t != CONFIG_TYPE_BOOL) {
			CERR(c, line, key, "expected true or false, got %s",
			     type_name(t));
			return;
		}
		*(bool *)dst = config_setting_get_bool(s) != 0;
		return;
	case F_INT:
	case F_UINT: {
		long long v;
		if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) {
			CERR(c, line, key, "expected an integer, got %s",
			     type_name(t));
			return;
		}
		v = config_setting_get_int64(s);
		if (v < f->min || v > f->max) {
			CERR(c, line, key, "%lld is out of range (%" PRId64
			     "..%" PRId64 ")", v, f->min, f->max);
			return;
		}
		if (f->type == F_INT)
			*(int64_t *)dst = v;
		else
			*(unsigned *)dst = (unsigned)v;
		return;
	}
	case F_DURATION: {
		int64_t ms;
		char lo[32], hi[32];
		int rc;
		if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64) {
			long long v = config_setting_get_int64(s);
			if (v < 0 || v > INT64_MAX / 1000) {
				CERR(c, line, key, "%lld is out of range", v);
				return;
			}
			ms = v * 1000;
			rc = 0;
		} else if (str != NULL) {
			rc = fg_duration_parse(str, &ms);
		} else {
			CERR(c, line, key, "expected a duration such as "
			     "\"30s\", \"10m\", \"1h\" or \"7d\", got %s",
			     type_name(t));
			return;
		}
		if (rc != 0) {
			CERR(c, line, key, "\"%s\" is not a duration (use e.g. "
			     "\"500ms\", \"30s\", \"10m\", \"1h\", \"7d\")", str);
			return;
		}
		if (ms < f->min || ms > f->max) {
			CERR(c, line, key, "%s is out of range (%s..%s)",
			     str != NULL ? str : "value",
			     fg_duration_format(f->min, lo, sizeof(lo)),
			     fg_duration_format(f->max, hi, sizeof(hi)));
			return;
		}
		*(int64_t *)dst = ms;
		return;
	}
	case F_MODE: {
		char *end;
		unsigned long v;
		if (str == NULL) {
			CERR(c, line, key, "expected an octal mode as a string, "
			     "e.g. \"0660\", got %s", type_name(t));
			return;
		}
		errno = 0;
		v = strtoul(str, &end, 8);
		if (*str == '\0' || *end != '\0' || errno != 0 || v > 0777) {
			CERR(c, line, key, "\"%s\" is not an octal mode "
			     "0000..0777", str);
			return;
		}
		*(unsigned *)dst = (unsigned)v;
		return;
	}
	case F_ENUM:
		if (str == NULL) {
			CERR(c, line, key, "expected a string, got %s",
			     type_name(t));
			return;
		}
		for (int i = 0; f->names[i] != NULL; i++) {
			if (strcmp(str, f->names[i]) == 0) {
				*(int *)dst = i;
				return;
			}
		}
		{
			char list[512] = "";
			for (int i = 0; f->names[i] != NULL; i++) {
				if (i > 0)
					strncat(list, ", ", sizeof(list) - strlen(list) - 1);
				strncat(list, f->names[i], sizeof(list) - strlen(list) - 1);
			}
			CERR(c, line, key, "\"%s\" is not one of: %s", str, list);
		}
		return;
	case F_RATIO: {
		double v;
		if (t == CONFIG_TYPE_FLOAT)
			v = config_setting_get_float(s);
		else if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64)
			v = (double)config_setting_get_int64(s);
		else {
			CERR(c, line, key, "expected a number between 0 and 1, "
			     "got %s", type_name(t));
			return;
		}
		if (!(v >= 0.0 && v <= 1.0)) {
			CERR(c, line, key, "%g is out of range (0..1)", v);
			return;
		}
		*(double *)dst = v;
		return;
	}
	case F_REPLY: {
		struct fg_reply *r = (struct fg_reply *)dst;
		free_reply(r);
		parse_reply(c, s, key, r);
		return;
	}
	case F_SPECIAL:
		return;
	}
}

/* Defaults: a tiny libconfig document "x = <def>;" per field. */
static void
set_default(struct ctx *c, const struct field *f, const char *key,
            void *base)
{
	char doc[512];
	config_t cf;
	config_setting_t *s;

	if (f->def == NULL || f->type == F_SPECIAL)
		return;
	snprintf(doc, sizeof(doc), "x = %s;", f->def);
	config_init(&cf);
	if (config_read_string(&cf, doc) != CONFIG_TRUE ||
	    (s = config_lookup(&cf, "x")) == NULL) {
		CERR(c, 0, key, "internal error: bad default %s", f->def);
	} else {
		set_field(c, f, s, key, base);
	}
	config_destroy(&cf);
}

/*
 * Walks group g against table: every member must be in the table; each
 * known one is converted; the rest get defaults.  seen[] (one per table
 * row) tells the caller which were given.  special(), if set, handles
 * F_SPECIAL rows.
 */
typedef void special_fn(struct ctx *c, const struct field *f,
                        config_setting_t *s, const char *key, void *base);

static void
parse_group(struct ctx *c, config_setting_t *g, const char *prefix,
            const struct field *table, size_t n, void *base, bool *seen,
            special_fn *special)
{
	char key[256];

	for (size_t i = 0; i < n; i++)
		seen[i] = false;
	for (int i = 0; g != NULL && i < config_setting_length(g); i++) {
		config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
		const char *name = config_setting_name(m);
		size_t j;

		if (name == NULL)
			continue;
		snprintf(key, sizeof(key), "%s%s", prefix, name);
		for (j = 0; j < n; j++)
			if (strcmp(table[j].name, name) == 0)
				break;
		if (j == n) {
			CERR(c, config_setting_source_line(m), key,
			     "unknown setting");
			continue;
		}
		seen[j] = true;
		if (table[j].type == F_SPECIAL) {
			if (special != NULL)
				special(c, &table[j], m, key, base);
		} else {
			set_field(c, &table[j], m, key, base);
		}
	}
	for (size_t j = 0; j < n; j++) {
		if (!seen[j]) {
			snprintf(key, sizeof(key), "%s%s", prefix, table[j].name);
			set_default(c, &table[j], key, base);
		}
	}
}

/* ---- tables ------------------------------------------------------- */

#define OFF(field) offsetof(struct fg_config, field)
#define MS_S INT64_C(1000)
#define MS_D (INT64_C(86400) * 1000)

static const struct field top_fields[] = {
	{"socket", F_STRING, OFF(socket), "\"unix:/run/floodgate/floodgate.sock\"", 0, 0, NULL, check_socket},
	{"socket_mode", F_MODE, OFF(socket_mode), "\"0660\"", 0, 0, NULL, NULL},
	{"socket_group", F_STRING, OFF(socket_group), "\"\"", 0, 0, NULL, check_user},
	{"database", F_STRING, OFF(database), "\"/var/lib/floodgate/floodgate.db\"", 0, 0, NULL, check_abs_path},
	{"user", F_STRING, OFF(user), "\"floodgate\"", 0, 0, NULL, check_user},
	{"allow_root", F_BOOL, OFF(allow_root), "false", 0, 0, NULL, NULL},
	{"pid_file", F_STRING, OFF(pid_file), "\"/run/floodgate/floodgate.pid\"", 0, 0, NULL, check_abs_path_or_empty},
	{"log_level", F_ENUM, OFF(log_level), "\"info\"", 0, 0, log_level_names, NULL},
	{"on_error", F_ENUM, OFF(on_error), "\"tempfail\"", 0, 0, on_error_names, NULL},
	{"milter_timeout", F_DURATION, OFF(milter_timeout_ms), "\"2h\"", 10 * MS_S, MS_D, NULL, NULL},
	{"retention", F_DURATION, OFF(retention_ms), "\"7d\"", 3600 * MS_S, 3660 * MS_D, NULL, NULL},
	{"flush_interval", F_DURATION, OFF(flush_interval_ms), "\"1s\"", 100, 10 * MS_S, NULL, NULL},
	{"queue_size", F_INT, OFF(queue_size), "65536", 1024, 16777216, NULL, NULL},
	{"network_prefix4", F_UINT, OFF(network_prefix4), "24", 8, 32, NULL, NULL},
	{"network_prefix6", F_UINT, OFF(network_prefix6), "64", 16, 128, NULL, NULL},
	{"monitor", F_BOOL, OFF(monitor), "false", 0, 0, NULL, NULL},
	{"max_delay", F_DURATION, OFF(max_delay_ms), "\"8s\"", 0, 300 * MS_S, NULL, NULL},
	{"mta_timeout", F_DURATION, OFF(mta_timeout_ms), "\"10s\"", MS_S, 3600 * MS_S, NULL, NULL},
	{"max_delayed_sessions", F_INT, OFF(max_delayed_sessions), "200", 0, 100000, NULL, NULL},
	{"banned_action", F_ENUM, OFF(banned_action), "\"disconnect\"", 0, 0, action_names, NULL},
	{"banned_reply", F_REPLY, OFF(banned_reply), NULL, 0, 0, NULL, NULL},
	{"valid_recipients", F_STRING, OFF(valid_recipients), "\"\"", 0, 0, NULL, check_abs_path_or_empty},
	{"exempt", F_SPECIAL, 0, NULL, 0, 0, NULL, NULL},
	{"rules", F_SPECIAL, 0, NULL, 0, 0, NULL, NULL},
};

#undef OFF
#define OFF(field) offsetof(struct fg_rule, field)

/* A rule carries the fields of a single step too (a one-step ladder). */
struct rule_shorthand {
	enum fg_action action;
	int64_t delay_ms;
	enum fg_delay_growth growth;
	enum fg_action then;
	int64_t ban_ms;
	struct fg_reply reply;
};

struct rule_parse {
	struct fg_rule rule;
	struct rule_shorthand sh;
};

#define ROFF(field) offsetof(struct rule_parse, rule.field)
#define SOFF(field) offsetof(struct rule_parse, sh.field)

static const struct field rule_fields[] = {
	{"name", F_STRING, ROFF(name), NULL, 0, 0, NULL, check_name},
	{"type", F_ENUM, ROFF(type), NULL, 0, 0, rule_type_names, NULL},
	{"per", F_ENUM, ROFF(per), NULL, 0, 0, per_names, NULL},
	{"prefix4", F_UINT, ROFF(prefix4), "24", 0, 32, NULL, NULL},
	{"prefix6", F_UINT, ROFF(prefix6), "64", 0, 128, NULL, NULL},
	{"limit", F_INT, ROFF(limit), NULL, 0, INT64_C(1000000000), NULL, NULL},
	{"window", F_DURATION, ROFF(window_ms), NULL, MS_S, 366 * MS_D, NULL, NULL},
	{"ratio", F_RATIO, ROFF(ratio), "0.0", 0, 0, NULL, NULL},
	{"min_sample", F_INT, ROFF(min_sample), "0", 0, INT64_C(1000000000), NULL, NULL},
	{"decay", F_DURATION, ROFF(decay_ms), NULL, 0, 366 * MS_D, NULL, NULL},
	{"monitor", F_BOOL, ROFF(monitor), "false", 0, 0, NULL, NULL},
	{"action", F_ENUM, SOFF(action), NULL, 0, 0, action_names, NULL},
	{"delay", F_DURATION, SOFF(delay_ms), NULL, 0, 300 * MS_S, NULL, NULL},
	{"growth", F_ENUM, SOFF(growth), NULL, 0, 0, growth_names, NULL},
	{"then", F_ENUM, SOFF(then), NULL, 0, 0, action_names, NULL},
	{"ban", F_DURATION, SOFF(ban_ms), NULL, MS_S, 366 * MS_D, NULL, NULL},
	{"reply", F_REPLY, SOFF(reply), NULL, 0, 0, NULL, NULL},
	{"ladder", F_SPECIAL, 0, NULL, 0, 0, NULL, NULL},
	{"networks", F_SPECIAL, 0, NULL, 0, 0, NULL, NULL},
};

enum {
	R_NAME, R_TYPE, R_PER, R_PREFIX4, R_PREFIX6, R_LIMIT, R_WINDOW,
	R_RATIO, R_MIN_SAMPLE, R_DECAY, R_MONITOR, R_ACTION, R_DELAY,
	R_GROWTH, R_THEN, R_BAN, R_REPLY, R_LADDER, R_NETWORKS, R__COUNT
};

#undef OFF
#define OFF(field) offsetof(struct fg_step, field)

static const struct field step_fields[] = {
	{"over", F_INT, OFF(over), NULL, 1, INT64_C(1000000000), NULL, NULL},
	{"action", F_ENUM, OFF(action), NULL, 0, 0, action_names, NULL},
	{"delay", F_DURATION, OFF(delay_ms), NULL, 0, 300 * MS_S, NULL, NULL},
	{"growth", F_ENUM, OFF(growth), NULL, 0, 0, growth_names, NULL},
	{"then", F_ENUM, OFF(then), NULL, 0, 0, action_names, NULL},
	{"ban", F_DURATION, OFF(ban_ms), NULL, MS_S, 366 * MS_D, NULL, NULL},
	{"reply", F_REPLY, OFF(reply), NULL, 0, 0, NULL, NULL},
};

enum { S_OVER, S_ACTION, S_DELAY, S_GROWTH, S_THEN, S_BAN, S_REPLY, S__COUNT };

#undef OFF
#define OFF(field) offsetof(struct fg_exempt, field)

static const struct field exempt_fields[] = {
	{"networks", F_SPECIAL, 0, NULL, 0, 0, NULL, NULL},
	{"authenticated", F_BOOL, OFF(authenticated), "true", 0, 0, NULL, NULL},
	{"hostnames", F_SPECIAL, 0, NULL, 0, 0, NULL, NULL},
	{"daemons", F_SPECIAL, 0, NULL, 0, 0, NULL, NULL},
};

/* ---- lists -------------------------------------------------------- */

/* An array/list of strings (or a single string) → callback per string. */
static int
each_string(struct ctx *c, config_setting_t *s, const char *key,
            void (*fn)(struct ctx *, const char *, int, const char *, void *),
            void *arg)
{
	int t = config_setting_type(s);
	int line = config_setting_source_line(s);

	if (t == CONFIG_TYPE_STRING) {
		fn(c, config_setting_get_string(s), line, key, arg);
		return 1;
	}
	if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST) {
		CERR(c, line, key, "expected a list of strings, got %s",
		     type_name(t));
		return 0;
	}
	for (int i = 0; i < config_setting_length(s); i++) {
		config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *v = config_setting_get_string(e);
		if (v == NULL) {
			CERR(c, config_setting_source_line(e), key,
			     "element %d is not a string", i + 1);
			continue;
		}
		fn(c, v, config_setting_source_line(e), key, arg);
	}
	return config_setting_length(s);
}

struct strlist {
	char **v;
	size_t n, cap;
	bool lower;
};

static void
strlist_add(struct ctx *c, const char *s, int line, const char *key,
            void *arg)
{
	struct strlist *l = arg;
	char *d;

	if (*s == '\0') {
		CERR(c, line, key, "empty name");
		return;
	}
	for (const char *p = s; *p; p++) {
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
			CERR(c, line, key, "\"%s\": space or control "
			     "character in name", s);
			return;
		}
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		char **v = realloc(l->v, cap * sizeof(*v));
		if (v == NULL) {
			c->nomem = true;
			return;
		}
		l->v = v;
		l->cap = cap;
	}
	if ((d = ctx_strdup(c, s)) == NULL)
		return;
	if (l->lower)
		for (char *p = d; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	l->v[l->n++] = d;
}

struct prefixlist {
	fg_prefix *v;
	size_t n, cap;
};

static void
prefixlist_add(struct ctx *c, const char *s, int line, const char *key,
               void *arg)
{
	struct prefixlist *l = arg;
	fg_prefix p;

	if (fg_prefix_parse(s, &p) != 0) {
		CERR(c, line, key, "\"%s\" is not an address or network "
		     "(e.g. 192.0.2.0/24, 192.0.2, 2001:db8::/32)", s);
		return;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		fg_prefix *v = realloc(l->v, cap * sizeof(*v));
		if (v == NULL) {
			c->nomem = true;
			return;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = p;
}

static void
exempt_special(struct ctx *c, const struct field *f, config_setting_t *s,
               const char *key, void *base)
{
	struct fg_exempt *e = base;

	if (strcmp(f->name, "networks") == 0) {
		struct prefixlist l = {0};
		int line = config_setting_source_line(s);
		each_string(c, s, key, prefixlist_add, &l);
		e->network_list = l.v;
		e->nnetworks = l.n;
		e->networks = fg_nettab_new();
		if (e->networks == NULL) {
			c->nomem = true;
			return;
		}
		for (size_t i = 0; i < l.n; i++) {
			int rc = fg_nettab_add(e->networks, &l.v[i], &e->networks);
			if (rc == FG_EEXIST) {
				char b[FG_PREFIX_STRLEN];
				CWARN(c, line, key, "%s listed twice",
				      fg_prefix_format(&l.v[i], b, sizeof(b)));
			} else if (rc != 0) {
				c->nomem = true;
			}
		}
	} else {
		struct strlist l = {.lower = strcmp(f->name, "hostnames") == 0};
		each_string(c, s, key, strlist_add, &l);
		if (strcmp(f->name, "hostnames") == 0) {
			e->hostnames = l.v;
			e->nhostnames = l.n;
		} else {
			e->daemons = l.v;
			e->ndaemons = l.n;
		}
	}
}

/* ---- rules -------------------------------------------------------- */

static bool
rule_is_window(enum fg_rule_type t)
{
	return t != FG_RULE_CONCURRENCY && t != FG_RULE_BAD_RCPT_THROTTLE &&
	       t != FG_RULE_RCPTS_PER_MESSAGE;
}

static enum fg_per
rule_default_per(enum fg_rule_type t)
{
	switch (t) {
	case FG_RULE_CONNECTION_RATE:
	case FG_RULE_CONCURRENCY:
		return FG_PER_ADDRESS;
	case FG_RULE_BAD_RCPT_THROTTLE:
		return FG_PER_SESSION;
	case FG_RULE_RCPTS_PER_MESSAGE:
		return FG_PER_MESSAGE;
	default:
		return FG_PER_NETWORK;
	}
}

static bool
rule_per_allowed(enum fg_rule_type t, enum fg_per p)
{
	switch (t) {
	case FG_RULE_BAD_RCPT_THROTTLE:
		return p == FG_PER_SESSION;
	case FG_RULE_RCPTS_PER_MESSAGE:
		return p == FG_PER_MESSAGE;
	case FG_RULE_CONNECTION_RATE:
	case FG_RULE_CONCURRENCY:
		return p == FG_PER_ADDRESS || p == FG_PER_NETWORK ||
		       p == FG_PER_GLOBAL;
	case FG_RULE_HELO_RATE:
		return p != FG_PER_SESSION && p != FG_PER_MESSAGE &&
		       p != FG_PER_RCPT_DOMAIN && p != FG_PER_SENDER_DOMAIN;
	case FG_RULE_MAIL_RATE:
		return p != FG_PER_SESSION && p != FG_PER_MESSAGE &&
		       p != FG_PER_RCPT_DOMAIN;
	default:
		return p != FG_PER_SESSION && p != FG_PER_MESSAGE;
	}
}

static void
default_step(const struct fg_rule *r, struct fg_step *s)
{
	memset(s, 0, sizeof(*s));
	s->over = 1;
	s->then = FG_ACT_CONTINUE;
	s->growth = FG_GROW_FIXED;
	switch (r->type) {
	case FG_RULE_BAD_RCPT_THROTTLE:
		s->action = FG_ACT_DELAY;
		s->delay_ms = 1000;
		s->growth = FG_GROW_LINEAR;
		break;
	case FG_RULE_RCPTS_PER_MESSAGE:
		s->action = FG_ACT_TEMPFAIL;
		s->reply.code = 452;
		snprintf(s->reply.status, sizeof(s->reply.status), "4.5.3");
		break;
	case FG_RULE_CONNECTION_RATE:
	case FG_RULE_CONCURRENCY:
		s->action = FG_ACT_DISCONNECT;
		break;
	default:
		s->action = FG_ACT_TEMPFAIL;
		break;
	}
}

static void
check_step(struct ctx *c, const struct fg_config *cfg, const char *key,
           const struct fg_step *s, bool delay_given, bool ban_given)
{
	char a[32], b[32];

	if (s->action == FG_ACT_DELAY) {
		if (!delay_given || s->delay_ms <= 0)
			CERR(c, s->line, key, "action delay needs a delay > 0 "
			     "(e.g. delay = \"2s\")");
		else if (s->delay_ms > cfg->max_delay_ms)
			CWARN(c, s->line, key, "delay %s is above max_delay %s "
			      "and will be capped",
			      fg_duration_format(s->delay_ms, a, sizeof(a)),
			      fg_duration_format(cfg->max_delay_ms, b, sizeof(b)));
		if (s->then == FG_ACT_DELAY || s->then == FG_ACT_BAN)
			CERR(c, s->line, key, "then must be continue, "
			     "tempfail, reject or disconnect");
	} else {
		if (delay_given)
			CERR(c, s->line, key, "delay only goes with action "
			     "delay");
		if (s->then != FG_ACT_CONTINUE)
			CERR(c, s->line, key, "then only goes with action "
			     "delay");
	}
	if (s->action == FG_ACT_BAN && (!ban_given || s->ban_ms <= 0))
		CERR(c, s->line, key, "action ban needs a duration "
		     "(e.g. ban = \"1h\")");
	if (s->action != FG_ACT_BAN && ban_given)
		CERR(c, s->line, key, "ban only goes with action ban");
	if (s->reply.code != 0) {
		enum fg_action eff = s->action == FG_ACT_DELAY ? s->then : s->action;
		int cls = s->reply.code / 100;
		if (eff == FG_ACT_CONTINUE)
			CERR(c, s->line, key, "a reply needs a refusing action");
		else if (eff == FG_ACT_REJECT && cls != 5)
			CERR(c, s->line, key, "reject needs a 5xx reply code");
		else if (eff == FG_ACT_TEMPFAIL && cls != 4)
			CERR(c, s->line, key, "tempfail needs a 4xx reply code");
		else if ((eff == FG_ACT_DISCONNECT || eff == FG_ACT_BAN) &&
		         s->reply.code != 421)
			CERR(c, s->line, key, "disconnect and ban reply with 421");
	}
}

static void
parse_ladder(struct ctx *c, const struct fg_config *cfg,
             struct fg_rule *r, config_setting_t *s, const char *key)
{
	int t = config_setting_type(s);
	int n;
	char sub[256];

	if (t != CONFIG_TYPE_LIST) {
		CERR(c, config_setting_source_line(s), key, "expected a list "
		     "of steps ( { over = 1; action = \"delay\"; ... }, ... ), "
		     "got %s", type_name(t));
		return;
	}
	n = config_setting_length(s);
	if (n < 1 || n > 16) {
		CERR(c, config_setting_source_line(s), key, "between 1 and 16 "
		     "steps");
		return;
	}
	r->steps = ctx_calloc(c, (size_t)n, sizeof(*r->steps));
	if (r->steps == NULL)
		return;
	for (int i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		struct fg_step *st = &r->steps[r->nsteps];
		bool seen[S__COUNT];

		snprintf(sub, sizeof(sub), "%s[%d]", key, i + 1);
		if (config_setting_type(e) != CONFIG_TYPE_GROUP) {
			CERR(c, config_setting_source_line(e), sub,
			     "expected a group { over = ...; action = ...; }");
			continue;
		}
		memset(st, 0, sizeof(*st));
		st->line = config_setting_source_line(e);
		snprintf(sub, sizeof(sub), "%s[%d].", key, i + 1);
		parse_group(c, e, sub, step_fields, S__COUNT, st, seen, NULL);
		snprintf(sub, sizeof(sub), "%s[%d]", key, i + 1);
		if (!seen[S_OVER])
			CERR(c, st->line, sub, "over is required");
		if (!seen[S_ACTION])
			CERR(c, st->line, sub, "action is required");
		if (!seen[S_GROWTH])
			st->growth = FG_GROW_FIXED;
		if (r->nsteps > 0 && st->over <= r->steps[r->nsteps - 1].over)
			CERR(c, st->line, sub, "over must grow from step to "
			     "step (%" PRId64 " after %" PRId64 ")", st->over,
			     r->steps[r->nsteps - 1].over);
		check_step(c, cfg, sub, st, seen[S_DELAY], seen[S_BAN]);
		r->nsteps++;
	}
}

static void
override_add(struct ctx *c, struct fg_rule *r, config_setting_t *e,
             const char *key)
{
	int line = config_setting_source_line(e);
	config_setting_t *ns, *ls;
	const char *net;
	struct fg_override *o;
	long long lim;

	if (config_setting_type(e) != CONFIG_TYPE_GROUP) {
		CERR(c, line, key, "expected { network = \"192.0.2\"; "
		     "limit = 0; }");
		return;
	}
	for (int i = 0; i < config_setting_length(e); i++) {
		const char *n = config_setting_name(config_setting_get_elem(e, (unsigned)i));
		if (strcmp(n, "network") != 0 && strcmp(n, "limit") != 0)
			CERR(c, config_setting_source_line(
			         config_setting_get_elem(e, (unsigned)i)),
			     key, "unknown setting %s (expected network and "
			     "limit)", n);
	}
	ns = config_setting_get_member(e, "network");
	ls = config_setting_get_member(e, "limit");
	if (ns == NULL || (net = config_setting_get_string(ns)) == NULL) {
		CERR(c, line, key, "network is required and must be a string");
		return;
	}
	if (ls == NULL || (config_setting_type(ls) != CONFIG_TYPE_INT &&
	                   config_setting_type(ls) != CONFIG_TYPE_INT64)) {
		CERR(c, line, key, "limit is required and must be an integer "
		     "(0 = unlimited)");
		return;
	}
	lim = config_setting_get_int64(ls);
	if (lim < 0 || lim > 1000000000) {
		CERR(c, config_setting_source_line(ls), key, "limit %lld is "
		     "out of range (0..1000000000)", lim);
		return;
	}
	o = &r->override_list[r->noverrides];
	if (fg_prefix_parse(net, &o->net) != 0) {
		CERR(c, config_setting_source_line(ns), key, "\"%s\" is not "
		     "an address or network", net);
		return;
	}
	o->limit = lim;
	switch (fg_nettab_add(r->overrides, &o->net, o)) {
	case 0:
		r->noverrides++;
		break;
	case FG_EEXIST:
		CERR(c, line, key, "network %s listed twice", net);
		break;
	default:
		c->nomem = true;
		break;
	}
}

static void
parse_overrides(struct ctx *c, struct fg_rule *r, config_setting_t *s,
                const char *key)
{
	int t = config_setting_type(s);
	int n;
	char sub[256];

	if (t != CONFIG_TYPE_LIST) {
		CERR(c, config_setting_source_line(s), key, "expected a list "
		     "( { network = \"192.0.2\"; limit = 0; }, ... ), got %s",
		     type_name(t));
		return;
	}
	n = config_setting_length(s);
	r->override_list = ctx_calloc(c, (size_t)n, sizeof(*r->override_list));
	r->overrides = fg_nettab_new();
	if (r->override_list == NULL || r->overrides == NULL) {
		c->nomem = true;
		return;
	}
	for (int i = 0; i < n; i++) {
		snprintf(sub, sizeof(sub), "%s[%d]", key, i + 1);
		override_add(c, r, config_setting_get_elem(s, (unsigned)i), sub);
	}
}

static void
parse_rule(struct ctx *c, struct fg_config *cfg, config_setting_t *g,
           int idx, struct fg_rule *out)
{
	struct rule_parse rp;
	bool seen[R__COUNT];
	char prefix[64], key[96];
	int line = config_setting_source_line(g);
	struct fg_rule *r = &rp.rule;
	config_setting_t *ladder, *nets;

	memset(&rp, 0, sizeof(rp));
	snprintf(prefix, sizeof(prefix), "rules[%d].", idx + 1);
	snprintf(key, sizeof(key), "rules[%d]", idx + 1);
	if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
		CERR(c, line, key, "expected a group { name = ...; type = ...; }");
		*out = rp.rule;
		return;
	}
	r->type = (enum fg_rule_type)-1;
	parse_group(c, g, prefix, rule_fields, R__COUNT, &rp, seen, NULL);
	r->line = line;
	if (seen[R_TYPE] && r->type == (enum fg_rule_type)-1) {
		/* Reported already; nothing else can be judged. */
		*out = rp.rule;
		return;
	}
	if (r->name != NULL)
		snprintf(key, sizeof(key), "rules[%d] (%s)", idx + 1, r->name);
	if (!seen[R_NAME])
		CERR(c, line, key, "name is required");
	if (!seen[R_TYPE]) {
		CERR(c, line, key, "type is required (one of "
		     "connection_rate, concurrency, invalid_recipients, "
		     "recipient_rate, rejected_recipients, helo_rate, "
		     "mail_rate, bad_recipient_throttle, "
		     "recipients_per_message)");
		*out = rp.rule;
		return;
	}
	if (!seen[R_PER])
		r->per = rule_default_per(r->type);
	else if (!rule_per_allowed(r->type, r->per))
		CERR(c, line, key, "a %s rule cannot count per %s",
		     fg_rule_type_name(r->type), fg_per_name(r->per));
	if (!seen[R_LIMIT])
		CERR(c, line, key, "limit is required (0 = unlimited)");
	if (rule_is_window(r->type)) {
		if (!seen[R_WINDOW])
			CERR(c, line, key, "window is required for a %s rule "
			     "(e.g. window = \"1h\")", fg_rule_type_name(r->type));
	} else if (seen[R_WINDOW]) {
		CERR(c, line, key, "a %s rule has no window",
		     fg_rule_type_name(r->type));
	}
	if ((seen[R_RATIO] || seen[R_MIN_SAMPLE]) &&
	    r->type != FG_RULE_INVALID_RECIPIENTS)
		CERR(c, line, key, "ratio and min_sample only go with "
		     "invalid_recipients");
	if (seen[R_PREFIX4] && r->prefix4 < 8 && r->per == FG_PER_NETWORK)
		CERR(c, line, key, "prefix4 %u is too short (8..32)", r->prefix4);
	if (seen[R_PREFIX6] && r->prefix6 < 16 && r->per == FG_PER_NETWORK)
		CERR(c, line, key, "prefix6 %u is too short (16..128)", r->prefix6);
	if ((seen[R_PREFIX4] || seen[R_PREFIX6]) && r->per != FG_PER_NETWORK)
		CERR(c, line, key, "prefix4/prefix6 only go with per = "
		     "\"network\"");
	if (!seen[R_DECAY])
		r->decay_ms = r->window_ms > 0 ? r->window_ms : 3600 * MS_S;

	ladder = config_setting_get_member(g, "ladder");
	if (ladder != NULL) {
		if (seen[R_ACTION] || seen[R_DELAY] || seen[R_THEN] ||
		    seen[R_BAN] || seen[R_REPLY] || seen[R_GROWTH])
			CERR(c, line, key, "give either a ladder or action/"
			     "delay/then/ban/reply, not both");
		snprintf(prefix, sizeof(prefix), "rules[%d].ladder", idx + 1);
		parse_ladder(c, cfg, r, ladder, prefix);
	} else {
		r->steps = ctx_calloc(c, 1, sizeof(*r->steps));
		if (r->steps != NULL) {
			struct fg_step *st = r->steps;
			default_step(r, st);
			st->line = line;
			if (seen[R_ACTION] && rp.sh.action != st->action) {
				/* Another action than the type's default:
				 * drop the default's delay and reply. */
				st->action = rp.sh.action;
				st->delay_ms = 0;
				st->growth = FG_GROW_FIXED;
				memset(&st->reply, 0, sizeof(st->reply));
			}
			if (seen[R_DELAY])
				st->delay_ms = rp.sh.delay_ms;
			if (seen[R_GROWTH])
				st->growth = rp.sh.growth;
			if (seen[R_THEN])
				st->then = rp.sh.then;
			if (seen[R_BAN])
				st->ban_ms = rp.sh.ban_ms;
			if (seen[R_REPLY]) {
				st->reply = rp.sh.reply;
				memset(&rp.sh.reply, 0, sizeof(rp.sh.reply));
			}
			r->nsteps = 1;
			check_step(c, cfg, key, st,
			           seen[R_DELAY] || st->delay_ms > 0,
			           seen[R_BAN]);
		}
	}
	free_reply(&rp.sh.reply);
	if (r->type == FG_RULE_CONCURRENCY || r->type == FG_RULE_RCPTS_PER_MESSAGE) {
		for (size_t i = 0; i < r->nsteps; i++)
			if (r->steps[i].action == FG_ACT_DELAY)
				CERR(c, r->steps[i].line, key, "a %s rule cannot "
				     "delay", fg_rule_type_name(r->type));
	}

	nets = config_setting_get_member(g, "networks");
	if (nets != NULL) {
		snprintf(prefix, sizeof(prefix), "rules[%d].networks", idx + 1);
		if (r->per == FG_PER_HELO || r->per == FG_PER_RCPT_DOMAIN ||
		    r->per == FG_PER_SENDER_DOMAIN)
			CERR(c, line, prefix, "per-network limits need a rule "
			     "that counts per address, network, global, "
			     "session or message");
		parse_overrides(c, r, nets, prefix);
	}
	*out = rp.rule;
}

static void
parse_rules(struct ctx *c, struct fg_config *cfg, config_setting_t *s)
{
	int t = config_setting_type(s);
	int n;

	if (t != CONFIG_TYPE_LIST) {
		CERR(c, config_setting_source_line(s), "rules", "expected a "
		     "list ( { ... }, { ... } ), got %s", type_name(t));
		return;
	}
	n = config_setting_length(s);
	if (n > 256) {
		CERR(c, config_setting_source_line(s), "rules", "at most 256 "
		     "rules");
		return;
	}
	cfg->rules = ctx_calloc(c, (size_t)n, sizeof(*cfg->rules));
	if (cfg->rules == NULL)
		return;
	for (int i = 0; i < n; i++) {
		config_setting_t *g = config_setting_get_elem(s, (unsigned)i);
		struct fg_rule *r = &cfg->rules[cfg->nrules++];

		parse_rule(c, cfg, g, i, r);
		for (int j = 0; j < i && r->name != NULL; j++) {
			if (cfg->rules[j].name != NULL &&
			    strcmp(cfg->rules[j].name, r->name) == 0)
				CERR(c, r->line, "rules", "rule name \"%s\" "
				     "used twice (first at line %d)", r->name,
				     cfg->rules[j].line);
		}
	}
}

/* ---- the whole file ----------------------------------------------- */

static void
config_free(struct fg_config *cfg)
{
	if (cfg == NULL)
		return;
	free(cfg->path);
	free(cfg->socket);
	free(cfg->socket_group);
	free(cfg->database);
	free(cfg->user);
	free(cfg->pid_file);
	free(cfg->valid_recipients);
	free_reply(&cfg->banned_reply);
	fg_nettab_free(cfg->exempt.networks, NULL);
	free(cfg->exempt.network_list);
	for (size_t i = 0; i < cfg->exempt.nhostnames; i++)
		free(cfg->exempt.hostnames[i]);
	free(cfg->exempt.hostnames);
	for (size_t i = 0; i < cfg->exempt.ndaemons; i++)
		free(cfg->exempt.daemons[i]);
	free(cfg->exempt.daemons);
	for (size_t i = 0; i < cfg->nrules; i++) {
		struct fg_rule *r = &cfg->rules[i];
		free(r->name);
		for (size_t j = 0; j < r->nsteps; j++)
			free_reply(&r->steps[j].reply);
		free(r->steps);
		fg_nettab_free(r->overrides, NULL);
		free(r->override_list);
	}
	free(cfg->rules);
	free(cfg);
}

static void
cross_checks(struct ctx *c, struct fg_config *cfg, config_t *cf)
{
	char a[32], b[32];
	config_setting_t *md = config_lookup(cf, "max_delay");
	int line = md != NULL ? config_setting_source_line(md) : 0;

	if (cfg->max_delay_ms >= cfg->mta_timeout_ms)
		CERR(c, line, "max_delay", "%s must stay below mta_timeout "
		     "%s, or the MTA gives up on the milter mid-delay",
		     fg_duration_format(cfg->max_delay_ms, a, sizeof(a)),
		     fg_duration_format(cfg->mta_timeout_ms, b, sizeof(b)));
	else if (cfg->max_delay_ms > cfg->mta_timeout_ms - 2000)
		CWARN(c, line, "max_delay", "%s leaves less than 2s of "
		      "mta_timeout %s for the MTA's own work",
		      fg_duration_format(cfg->max_delay_ms, a, sizeof(a)),
		      fg_duration_format(cfg->mta_timeout_ms, b, sizeof(b)));
	if (cfg->banned_action == FG_ACT_DELAY ||
	    cfg->banned_action == FG_ACT_BAN ||
	    cfg->banned_action == FG_ACT_CONTINUE) {
		config_setting_t *s = config_lookup(cf, "banned_action");
		CERR(c, s ? config_setting_source_line(s) : 0, "banned_action",
		     "must be tempfail, reject or disconnect");
	}
	if (cfg->user[0] == '\0' && !cfg->allow_root) {
		/* Checked again at start when running as root. */
	}
	cfg->horizon_ms = 3600 * MS_S;
	for (size_t i = 0; i < cfg->nrules; i++) {
		const struct fg_rule *r = &cfg->rules[i];
		if (r->window_ms > cfg->horizon_ms)
			cfg->horizon_ms = r->window_ms;
		if (r->decay_ms > cfg->horizon_ms)
			cfg->horizon_ms = r->decay_ms;
	}
	if (cfg->retention_ms < cfg->horizon_ms) {
		config_setting_t *s = config_lookup(cf, "retention");
		CWARN(c, s ? config_setting_source_line(s) : 0, "retention",
		      "%s is shorter than the longest rule window %s; counts "
		      "still survive a restart, raw events do not",
		      fg_duration_format(cfg->retention_ms, a, sizeof(a)),
		      fg_duration_format(cfg->horizon_ms, b, sizeof(b)));
	}
}

static int
load(config_t *cf, const char *name, struct fg_config **out,
     fg_config_diag_fn *diag, void *arg)
{
	struct ctx c = {.file = name, .diag = diag, .arg = arg};
	struct fg_config *cfg;
	config_setting_t *root, *s;
	bool seen[FG_NELEM(top_fields)];
	bool eseen[FG_NELEM(exempt_fields)];

	*out = NULL;
	cfg = calloc(1, sizeof(*cfg));
	if (cfg == NULL)
		return FG_ENOMEM;
	cfg->path = ctx_strdup(&c, name);
	atomic_init(&cfg->refs, 1);
	root = config_root_setting(cf);
	/* exempt and rules are F_SPECIAL: parsed below, in that order. */
	parse_group(&c, root, "", top_fields, FG_NELEM(top_fields), cfg, seen,
	            NULL);

	s = config_setting_get_member(root, "exempt");
	if (s != NULL && config_setting_type(s) != CONFIG_TYPE_GROUP) {
		CERR(&c, config_setting_source_line(s), "exempt", "expected a "
		     "group { networks = [...]; ... }");
		s = NULL;
	}
	parse_group(&c, s, "exempt.", exempt_fields, FG_NELEM(exempt_fields),
	            &cfg->exempt, eseen, exempt_special);
	if (!eseen[0]) {
		/* The loopback is exempt unless the file says otherwise. */
		static const char *const lo[] = {"127.0.0.0/8", "::1"};
		cfg->exempt.networks = fg_nettab_new();
		cfg->exempt.network_list = calloc(2, sizeof(fg_prefix));
		if (cfg->exempt.networks == NULL ||
		    cfg->exempt.network_list == NULL) {
			c.nomem = true;
		} else {
			for (size_t i = 0; i < 2; i++) {
				fg_prefix_parse(lo[i], &cfg->exempt.network_list[i]);
				fg_nettab_add(cfg->exempt.networks,
				              &cfg->exempt.network_list[i],
				              cfg->exempt.networks);
			}
			cfg->exempt.nnetworks = 2;
		}
	}

	s = config_setting_get_member(root, "rules");
	if (s != NULL)
		parse_rules(&c, cfg, s);
	if (c.errors == 0 && !c.nomem)
		cross_checks(&c, cfg, cf);
	if (c.nomem) {
		config_free(cfg);
		return FG_ENOMEM;
	}
	if (c.errors > 0) {
		config_free(cfg);
		return FG_ECONFIG;
	}
	*out = cfg;
	return 0;
}

static int
report_syntax(config_t *cf, const char *name, fg_config_diag_fn *diag,
              void *arg)
{
	char msg[1024];
	const char *file = config_error_file(cf);

	snprintf(msg, sizeof(msg), "%s:%d: syntax error: %s",
	         file != NULL ? file : name, config_error_line(cf),
	         config_error_text(cf) != NULL ? config_error_text(cf) : "?");
	if (diag != NULL)
		diag(arg, false, msg);
	return FG_ECONFIG;
}

int
fg_config_load(const char *path, struct fg_config **out,
               fg_config_diag_fn *diag, void *arg)
{
	config_t cf;
	FILE *fp;
	int rc;

	*out = NULL;
	fp = fopen(path, "r");
	if (fp == NULL) {
		char msg[1024];
		int e = errno;
		snprintf(msg, sizeof(msg), "%s: cannot open: %s", path,
		         strerror(e));
		if (diag != NULL)
			diag(arg, false, msg);
		return e == ENOENT ? FG_ENOENT : FG_ECONFIG;
	}
	config_init(&cf);
	config_set_auto_convert(&cf, 0);
	if (config_read(&cf, fp) != CONFIG_TRUE) {
		rc = report_syntax(&cf, path, diag, arg);
	} else {
		rc = load(&cf, path, out, diag, arg);
	}
	config_destroy(&cf);
	fclose(fp);
	return rc;
}

int
fg_config_load_string(const char *text, const char *name,
                      struct fg_config **out, fg_config_diag_fn *diag,
                      void *arg)
{
	config_t cf;
	int rc;

	*out = NULL;
	config_init(&cf);
	config_set_auto_convert(&cf, 0);
	if (config_read_string(&cf, text) != CONFIG_TRUE)
		rc = report_syntax(&cf, name, diag, arg);
	else
		rc = load(&cf, name, out, diag, arg);
	config_destroy(&cf);
	return rc;
}

/* ---- snapshots ---------------------------------------------------- */

static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fg_config *live;

struct fg_config *
fg_config_ref(struct fg_config *cfg)
{
	if (cfg != NULL)
		atomic_fetch_add(&cfg->refs, 1);
	return cfg;
}

void
fg_config_release(struct fg_config *cfg)
{
	if (cfg != NULL && atomic_fetch_sub(&cfg->refs, 1) == 1)
		config_free(cfg);
}

void
fg_config_publish(struct fg_config *cfg)
{
	struct fg_config *old;

	pthread_mutex_lock(&live_lock);
	old = live;
	live = cfg;
	pthread_mutex_unlock(&live_lock);
	fg_config_release(old);
}

struct fg_config *
fg_config_acquire(void)
{
	struct fg_config *cfg;

	pthread_mutex_lock(&live_lock);
	cfg = fg_config_ref(live);
	pthread_mutex_unlock(&live_lock);
	return cfg;
}
