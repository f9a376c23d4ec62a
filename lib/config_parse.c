/*
 * config_parse.c - the engine under floodgate.conf: value conversion by
 * field type, defaults through the same code, the group walker, replies,
 * and "file:line: key: reason" diagnostics.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"
#include "fg.h"
#include "log.h"

/* ---- the parsing context ------------------------------------------ */


bool
fg_cfg_failed(const struct ctx *c, const char *key)
{
	for (size_t i = 0; i < c->nfailed; i++)
		if (strcmp(c->failed[i], key) == 0)
			return true;
	return false;
}

void
fg_cfg_report(struct ctx *c, bool warning, int line, const char *key,
           const char *fmt, ...)
{
	char reason[512], msg[1024];
	va_list ap;

	char raw[512];

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	/* Reasons quote the offending value: keep the line one printable
	 * line whatever the file holds. */
	fg_sanitize(reason, sizeof(reason), raw);
	if (line > 0 && key != NULL)
		snprintf(msg, sizeof(msg), "%s:%d: %s: %s%s", c->file, line,
		         key, warning ? "warning: " : "", reason);
	else if (key != NULL)
		snprintf(msg, sizeof(msg), "%s: %s: %s%s", c->file, key,
		         warning ? "warning: " : "", reason);
	else
		snprintf(msg, sizeof(msg), "%s: %s%s", c->file,
		         warning ? "warning: " : "", reason);
	if (!warning) {
		c->errors++;
		if (key != NULL && c->nfailed < FG_NELEM(c->failed))
			snprintf(c->failed[c->nfailed++], sizeof(c->failed[0]),
			         "%s", key);
	}
	if (c->diag != NULL)
		c->diag(c->arg, warning, msg);
}


char *
fg_cfg_strdup(struct ctx *c, const char *s)
{
	char *d = strdup(s != NULL ? s : "");

	if (d == NULL)
		c->nomem = true;
	return d;
}

void *
fg_cfg_calloc(struct ctx *c, size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	if (p == NULL)
		c->nomem = true;
	return p;
}

/* ---- field types -------------------------------------------------- */




const char *
fg_cfg_check_socket(const char *v)
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

const char *
fg_cfg_check_abs_path(const char *v)
{
	if (*v != '/')
		return "must be an absolute path";
	return NULL;
}

const char *
fg_cfg_check_abs_path_or_empty(const char *v)
{
	if (*v != '\0' && *v != '/')
		return "must be an absolute path or \"\"";
	return NULL;
}

const char *
fg_cfg_check_name(const char *v)
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

const char *
fg_cfg_check_user(const char *v)
{
	for (const char *p = v; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' &&
		    *p != '.' && *p != '$')
			return "not a valid user or group name";
	return NULL;
}

const char *
fg_cfg_type_name(int t)
{
	switch (t) {
	case CONFIG_TYPE_GROUP: return "a group";
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64: return "an integer";
	case CONFIG_TYPE_FLOAT: return "a number";
	case CONFIG_TYPE_STRING: return "a string";
	case CONFIG_TYPE_BOOL: return "a boolean";
	case CONFIG_TYPE_ARRAY: return "an array";
	case CONFIG_TYPE_LIST: return "a list";
	default: return "an unknown type";
	}
}

/* "123", "512K", "64M", "1G", "2T" (powers of 1024) into bytes; 0 or
 * -1. */
static int
size_parse(const char *s, int64_t *out)
{
	static const char units[] = "KMGT";
	int64_t v = 0, mult = 1;
	const char *p = s;

	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		if (v > (INT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (*p - '0');
	}
	if (*p != '\0') {
		const char *u = strchr(units, toupper((unsigned char)*p));

		if (u == NULL || p[1] != '\0')
			return -1;
		for (const char *q = units; q <= u; q++)
			mult *= 1024;
	}
	if (v > INT64_MAX / mult)
		return -1;
	*out = v * mult;
	return 0;
}

/* The largest unit that divides bytes exactly: "64M", "1G", "1000". */
static char *
size_format(int64_t bytes, char *buf, size_t size)
{
	static const char units[] = "TGMK";
	int64_t mult = INT64_C(1) << 40;

	for (const char *u = units; *u != '\0'; u++, mult >>= 10) {
		if (bytes != 0 && bytes % mult == 0) {
			snprintf(buf, size, "%" PRId64 "%c", bytes / mult, *u);
			return buf;
		}
	}
	snprintf(buf, size, "%" PRId64, bytes);
	return buf;
}

/* Reads 1 to max decimal digits (no sign, no blanks) at *pp into *out
 * and moves *pp past them; -1 when there are none or too many. */
static int
status_part(const char **pp, long max, long *out)
{
	const char *p = *pp;
	char *end;
	long v;

	if (!isdigit((unsigned char)*p))
		return -1;
	errno = 0;
	v = strtol(p, &end, 10);
	if (errno != 0 || end - p > max)
		return -1;
	*out = v;
	*pp = end;
	return 0;
}

/* An enhanced status code (RFC 3463) as a reply may carry: class 4 or 5,
 * then a subject and a detail of 1 to 3 digits each: "4.7.1". */
static bool
status_ok(const char *v)
{
	long cls, subject, detail;

	if (status_part(&v, 1, &cls) != 0 || (cls != 4 && cls != 5) ||
	    *v++ != '.')
		return false;
	if (status_part(&v, 3, &subject) != 0 || *v++ != '.')
		return false;
	return status_part(&v, 3, &detail) == 0 && *v == '\0';
}

/*
 * Parse a default text once into a private libconfig so defaults go
 * through exactly the same conversions as the file.
 */
int
fg_cfg_parse_reply(struct ctx *c, config_setting_t *s, const char *key,
            struct fg_reply *r)
{
	int line = config_setting_source_line(s);
	char sub[256];

	memset(r, 0, sizeof(*r));
	if (config_setting_type(s) != CONFIG_TYPE_GROUP) {
		CERR(c, line, key, "expected a group { code = ...; status = "
		     "\"...\"; text = \"...\"; }, got %s",
		     fg_cfg_type_name(config_setting_type(s)));
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
				     fg_cfg_type_name(t));
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
			if (v == NULL) {
				CERR(c, ml, sub, "expected a string such as "
				     "\"4.7.1\"");
				continue;
			}
			if (*v != '\0' && !status_ok(v)) {
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
				     "of strings, got %s", fg_cfg_type_name(t));
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
				    : config_setting_get_string_elem(m, j);
				const char *bad = NULL;
				if (v == NULL) {
					bad = "every line must be a string";
				} else if (strlen(v) >= FG_REPLY_LINE_MAX - 16) {
					bad = "line too long (max 495 characters)";
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
					r->lines[r->nlines++] = fg_cfg_strdup(c, v);
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

void
fg_cfg_free_reply(struct fg_reply *r)
{
	for (size_t i = 0; i < r->nlines; i++)
		free(r->lines[i]);
	r->nlines = 0;
}

/* Converts one value (from the file, or a default text) into base+off. */
void
fg_cfg_set_field(struct ctx *c, const struct field *f, config_setting_t *s,
          const char *key, void *base)
{
	void *dst = (char *)base + f->off;
	int line = config_setting_source_line(s);
	int t = config_setting_type(s);
	const char *str = config_setting_get_string(s);
	const char *why;

	switch (f->type) {
	case F_STRING:
		if (str == NULL) {
			CERR(c, line, key, "expected a string, got %s",
			     fg_cfg_type_name(t));
			return;
		}
		if (f->check != NULL && (why = f->check(str)) != NULL) {
			CERR(c, line, key, "\"%s\": %s", str, why);
			return;
		}
		free(*(char **)dst);
		*(char **)dst = fg_cfg_strdup(c, str);
		return;
	case F_BOOL:
		if (t != CONFIG_TYPE_BOOL) {
			CERR(c, line, key, "expected true or false, got %s",
			     fg_cfg_type_name(t));
			return;
		}
		*(bool *)dst = config_setting_get_bool(s) != 0;
		return;
	case F_INT:
	case F_UINT: {
		long long v;
		if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) {
			CERR(c, line, key, "expected an integer, got %s",
			     fg_cfg_type_name(t));
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
			     fg_cfg_type_name(t));
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
	case F_SIZE: {
		int64_t v;
		char lo[32], hi[32];
		if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64) {
			v = config_setting_get_int64(s);
		} else if (str == NULL) {
			CERR(c, line, key, "expected a size such as \"64M\" or "
			     "\"1G\", got %s", fg_cfg_type_name(t));
			return;
		} else if (size_parse(str, &v) != 0) {
			CERR(c, line, key, "\"%s\" is not a size (use e.g. "
			     "\"512K\", \"64M\", \"1G\")", str);
			return;
		}
		if (v < f->min || v > f->max) {
			CERR(c, line, key, "%s is out of range (%s..%s)",
			     str != NULL ? str : "value",
			     size_format(f->min, lo, sizeof(lo)),
			     size_format(f->max, hi, sizeof(hi)));
			return;
		}
		*(int64_t *)dst = v;
		return;
	}
	case F_MODE: {
		char *end;
		unsigned long v;
		if (str == NULL) {
			CERR(c, line, key, "expected an octal mode as a string, "
			     "e.g. \"0660\", got %s", fg_cfg_type_name(t));
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
			     fg_cfg_type_name(t));
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
			     "got %s", fg_cfg_type_name(t));
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
		fg_cfg_free_reply(r);
		fg_cfg_parse_reply(c, s, key, r);
		return;
	}
	case F_SPECIAL:
		return;
	}
}

/* Defaults: a tiny libconfig document "x = <def>;" per field. */
void
fg_cfg_set_default(struct ctx *c, const struct field *f, const char *key,
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
		fg_cfg_set_field(c, f, s, key, base);
	}
	config_destroy(&cf);
}

/*
 * Walks group g against table: every member must be in the table; each
 * known one is converted; the rest get defaults.  seen[] (one per table
 * row) tells the caller which were given.  special(), if set, handles
 * F_SPECIAL rows.
 */

void
fg_cfg_parse_group(struct ctx *c, config_setting_t *g, const char *prefix,
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
			fg_cfg_set_field(c, &table[j], m, key, base);
		}
	}
	for (size_t j = 0; j < n; j++) {
		if (!seen[j]) {
			snprintf(key, sizeof(key), "%s%s", prefix, table[j].name);
			fg_cfg_set_default(c, &table[j], key, base);
		}
	}
}

/* ---- lists -------------------------------------------------------- */

/* An array/list of strings (or a single string) → callback per string. */
int
fg_cfg_each_string(struct ctx *c, config_setting_t *s, const char *key,
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
		     fg_cfg_type_name(t));
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
