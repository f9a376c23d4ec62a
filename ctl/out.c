/*
 * out.c - floodgatectl's output: aligned tables, one JSON document,
 * times and spans, bars and sparklines, and the allocation wrappers.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "ctl.h"
#include "log.h"

/* ---- memory ------------------------------------------------------------ */

void
oom(void)
{
	fputs("floodgatectl: out of memory\n", stderr);
	exit(CTL_RUNTIME);
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		oom();
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		oom();
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL)
		oom();
	return q;
}

char *
xstrdup(const char *s)
{
	char *d = strdup(s);

	if (d == NULL)
		oom();
	return d;
}

/* ---- text ------------------------------------------------------------------ */

#define RING 16

static char *
ring(size_t *size)
{
	static char bufs[RING][4 * FG_KEY_MAX];
	static unsigned i;

	*size = sizeof(bufs[0]);
	return bufs[i++ % RING];
}

const char *
san(const char *s)
{
	size_t size;
	char *b = ring(&size);

	return fg_sanitize(b, size, s);
}

/* Times for people: local time (TZ) unless --utc. */
static bool fmt_utc;

void
fmt_set_utc(bool utc)
{
	fmt_utc = utc;
	tzset();   /* localtime_r() does not read TZ by itself */
}

static struct tm *
fmt_tm(int64_t ms, struct tm *tm)
{
	time_t t = (time_t)(ms / 1000);

	return fmt_utc ? gmtime_r(&t, tm) : localtime_r(&t, tm);
}

const char *
fmt_zone(int64_t ms)
{
	size_t size;
	char *zone = ring(&size);
	struct tm tm;

	if (fmt_utc || fmt_tm(ms, &tm) == NULL ||
	    strftime(zone, size, "%Z", &tm) == 0)
		return "UTC";
	return zone;
}

const char *
fmt_heading(const char *label, int64_t ms)
{
	size_t size;
	char *b = ring(&size);

	snprintf(b, size, "%s (%s)", label, fmt_zone(ms));
	return b;
}

const char *
fmt_time(int64_t ms)
{
	size_t size;
	char *b = ring(&size);
	struct tm tm;

	if (fmt_tm(ms, &tm) == NULL)
		snprintf(b, size, "-");
	else
		strftime(b, size, "%Y-%m-%d %H:%M:%S", &tm);
	return b;
}

const char *
fmt_time_short(int64_t ms)
{
	size_t size;
	char *b = ring(&size);
	struct tm tm;

	if (fmt_tm(ms, &tm) == NULL)
		snprintf(b, size, "-");
	else
		strftime(b, size, "%m-%d %H:%M:%S", &tm);
	return b;
}

const char *
fmt_iso(int64_t ms)
{
	size_t size;
	char *b = ring(&size);
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL)
		snprintf(b, size, "-");
	else
		strftime(b, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return b;
}

const char *
fmt_span(int64_t ms)
{
	size_t size;
	char *b = ring(&size);
	int64_t s = ms / 1000;

	if (s < 0)
		s = 0;
	if (s < 60)
		snprintf(b, size, "%" PRId64 "s", s);
	else if (s < 3600)
		snprintf(b, size, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
	else if (s < 86400)
		snprintf(b, size, "%" PRId64 "h%02" PRId64 "m", s / 3600,
		         s % 3600 / 60);
	else
		snprintf(b, size, "%" PRId64 "d%02" PRId64 "h", s / 86400,
		         s % 86400 / 3600);
	return b;
}

const char *
fmt_duration(int64_t ms)
{
	size_t size;
	char *b = ring(&size);

	return fg_duration_format(ms, b, size);
}

/* ---- tables ------------------------------------------------------------------ */

struct table {
	size_t ncols;
	char *align;
	char **cells;       /* row-major, heading row first */
	size_t ncells, cap;
};

struct table *
table_new(const char *align, ...)
{
	struct table *t = xcalloc(1, sizeof(*t));
	va_list ap;
	const char *h;

	t->align = xstrdup(align);
	t->ncols = strlen(align);
	va_start(ap, align);
	while ((h = va_arg(ap, const char *)) != NULL)
		table_cell(t, "%s", h);
	va_end(ap);
	return t;
}

void
table_cell(struct table *t, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	s = xmalloc((size_t)(n < 0 ? 0 : n) + 1);
	va_start(ap, fmt);
	vsnprintf(s, (size_t)(n < 0 ? 0 : n) + 1, fmt, ap);
	va_end(ap);
	if (t->ncells == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->cells = xrealloc(t->cells, t->cap * sizeof(*t->cells));
	}
	t->cells[t->ncells++] = s;
}

void
table_cell_text(struct table *t, const char *s)
{
	table_cell(t, "%s", san(s));
}

size_t
table_rows(const struct table *t)
{
	return t->ncols ? t->ncells / t->ncols - (t->ncells >= t->ncols) : 0;
}

/* Columns a string takes on a terminal: UTF-8 continuation bytes take
 * none (everything we print is ASCII or one-column block glyphs). */
static size_t
width_of(const char *s)
{
	size_t w = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

/* Appends n bytes of s to the line buffer. */
static void
line_add(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
	if (*len + n + 1 > *cap) {
		*cap = (*len + n + 1) * 2;
		*buf = xrealloc(*buf, *cap);
	}
	memcpy(*buf + *len, s, n);
	*len += n;
	(*buf)[*len] = '\0';
}

void
table_print(struct table *t, FILE *fp)
{
	size_t *w = xcalloc(t->ncols, sizeof(*w));
	char *line = NULL;
	size_t len = 0, cap = 0;

	for (size_t i = 0; i < t->ncells; i++) {
		size_t cw = width_of(t->cells[i]);

		if (cw > w[i % t->ncols])
			w[i % t->ncols] = cw;
	}
	for (size_t i = 0; i < t->ncells; i++) {
		size_t col = i % t->ncols, pad = w[col] - width_of(t->cells[i]);
		bool right = t->align[col] == 'r';

		for (size_t k = 0; right && k < pad; k++)
			line_add(&line, &len, &cap, " ", 1);
		line_add(&line, &len, &cap, t->cells[i], strlen(t->cells[i]));
		if (col == t->ncols - 1 || i == t->ncells - 1) {
			while (len > 0 && line[len - 1] == ' ')
				line[--len] = '\0';
			fprintf(fp, "%s\n", line);
			len = 0;
			continue;
		}
		for (size_t k = 0; !right && k < pad; k++)
			line_add(&line, &len, &cap, " ", 1);
		line_add(&line, &len, &cap, "  ", 2);
	}
	free(line);
	free(w);
}

void
table_free(struct table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->ncells; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->align);
	free(t);
}

/* ---- JSON -------------------------------------------------------------------- */

#define JSON_DEPTH 32

struct json {
	FILE *fp;
	int depth;
	char close[JSON_DEPTH];
	bool first[JSON_DEPTH];
	bool after_key;
};

struct json *
json_new(FILE *fp)
{
	struct json *j = xcalloc(1, sizeof(*j));

	j->fp = fp;
	return j;
}

void
json_finish(struct json *j)
{
	while (j->depth > 0)
		json_end(j);
	fputc('\n', j->fp);
	free(j);
}

/* The comma before a value or key, if it needs one. */
static void
json_sep(struct json *j)
{
	if (j->after_key) {
		j->after_key = false;
		return;
	}
	if (j->depth > 0) {
		if (!j->first[j->depth - 1])
			fputc(',', j->fp);
		j->first[j->depth - 1] = false;
	}
}

static void
json_open(struct json *j, char open, char close)
{
	json_sep(j);
	fputc(open, j->fp);
	if (j->depth < JSON_DEPTH) {
		j->close[j->depth] = close;
		j->first[j->depth] = true;
		j->depth++;
	}
}

void
json_obj(struct json *j)
{
	json_open(j, '{', '}');
}

void
json_arr(struct json *j)
{
	json_open(j, '[', ']');
}

void
json_end(struct json *j)
{
	if (j->depth == 0)
		return;
	fputc(j->close[--j->depth], j->fp);
}

static void
json_quoted(FILE *fp, const char *s)
{
	/* Sanitised text is printable ASCII: only " and \ need escaping. */
	fputc('"', fp);
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', fp);
		fputc(*s, fp);
	}
	fputc('"', fp);
}

void
json_key(struct json *j, const char *k)
{
	json_sep(j);
	json_quoted(j->fp, san(k));
	fputc(':', j->fp);
	j->after_key = true;
}

void
json_str(struct json *j, const char *s)
{
	if (s == NULL) {
		json_null(j);
		return;
	}
	json_sep(j);
	json_quoted(j->fp, san(s));
}

void
json_int(struct json *j, int64_t v)
{
	json_sep(j);
	fprintf(j->fp, "%" PRId64, v);
}

void
json_uint(struct json *j, uint64_t v)
{
	json_sep(j);
	fprintf(j->fp, "%" PRIu64, v);
}

void
json_num(struct json *j, double v)
{
	json_sep(j);
	fprintf(j->fp, "%.4g", v);
}

void
json_bool(struct json *j, bool v)
{
	json_sep(j);
	fputs(v ? "true" : "false", j->fp);
}

void
json_null(struct json *j)
{
	json_sep(j);
	fputs("null", j->fp);
}

void
json_kstr(struct json *j, const char *k, const char *s)
{
	json_key(j, k);
	json_str(j, s);
}

void
json_kint(struct json *j, const char *k, int64_t v)
{
	json_key(j, k);
	json_int(j, v);
}

void
json_kbool(struct json *j, const char *k, bool v)
{
	json_key(j, k);
	json_bool(j, v);
}

void
json_ktime(struct json *j, const char *k, int64_t ms)
{
	char kms[64];

	json_kstr(j, k, fmt_iso(ms));
	snprintf(kms, sizeof(kms), "%s_ms", k);
	json_kint(j, kms, ms);
}

/* ---- bars ----------------------------------------------------------------------- */

/* Eighths of a block, U+2588 (full) down to U+258F (one eighth). */
static const char *const eighths[] = {
	"", "\u258f", "\u258e", "\u258d", "\u258c", "\u258b", "\u258a",
	"\u2589", "\u2588",
};
/* Sparkline marks: nothing, then U+2581 .. U+2588. */
static const char *const marks[] = {
	" ", "\u2581", "\u2582", "\u2583", "\u2584", "\u2585", "\u2586",
	"\u2587", "\u2588",
};
static const char ascii_marks[] = " .:-=+*#@";

static void
append(char *buf, size_t size, size_t *len, const char *s)
{
	size_t n = strlen(s);

	if (*len + n + 1 > size)
		return;
	memcpy(buf + *len, s, n + 1);
	*len += n;
}

void
bar(char *buf, size_t size, int64_t v, int64_t max, int width, bool utf8)
{
	size_t len = 0;
	int64_t units;

	buf[0] = '\0';
	if (v <= 0 || max <= 0 || width <= 0)
		return;
	if (v > max)
		v = max;
	units = (v * width * 8 + max - 1) / max;   /* eighths, rounded up */
	if (!utf8) {
		for (int64_t i = 0; i < (units + 7) / 8; i++)
			append(buf, size, &len, "#");
		return;
	}
	for (int64_t i = 0; i < units / 8; i++)
		append(buf, size, &len, eighths[8]);
	append(buf, size, &len, eighths[units % 8]);
}

void
sparkline(char *buf, size_t size, const int64_t *v, size_t n, int64_t max,
          bool utf8)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		int m = 0;

		if (v[i] > 0 && max > 0)
			m = 1 + (int)((v[i] > max ? max : v[i]) * 7 / max);
		if (utf8) {
			append(buf, size, &len, marks[m]);
		} else {
			char c[2] = {ascii_marks[m], '\0'};
			append(buf, size, &len, c);
		}
	}
}
