/*
 * miltc - a scriptable milter client (the MTA side), for tests and load.
 *
 *   miltc -s SOCKET [-t SECONDS] [-n N] [-c C] [--json] [-q] [--stats]
 *         [--send-all] [SCRIPT|-]
 *
 * Runs the script (a file, or standard input) N times, each run a fresh
 * milter connection, on C threads at once, and prints one line per
 * command: session, script line, command, reply kind, SMTP code, elapsed
 * microseconds, then the reply text, modifications or error if any.  The
 * script language is described in usage() below.
 *
 * Exit status: 0 when every session ran to its end with every expect met,
 * 1 when a session failed (a protocol, I/O or timeout error no expect
 * line accepted, or an expect not met), 2 for usage or script errors
 * (found on loading, or while running: a bad port=, an unknown stage=).
 */
#include "milterproto.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One token of a script line; s is NUL-terminated and may hold NULs. */
struct tok {
	char *s;
	size_t len;
};

struct sline {
	int lineno;
	size_t ntok;
	struct tok *tok;   /* tok[0] is the command */
};

struct script {
	const char *name;
	struct sline *lines;
	size_t nlines;
};

struct opts {
	const char *socket;
	int timeout_ms;
	unsigned long sessions;
	unsigned long threads;
	bool json;
	bool quiet;
	bool stats;
	bool send_all;
};

/* Growing string. */
struct sbuf {
	char *p;
	size_t len;
	size_t cap;
};

/* Per-command latency samples, for --stats. */
struct lat {
	char name[16];
	int64_t *v;
	size_t n;
	size_t cap;
};

static struct opts g_opt = { NULL, MP_DEFAULT_TIMEOUT_MS, 1, 1, false, false,
                             false, false };
static struct script g_script;
static atomic_ulong g_next_session;
static atomic_ulong g_failed_sessions;
static atomic_ulong g_commands;
static atomic_ulong g_expect_failures;
static atomic_ulong g_errors;
static atomic_ulong g_script_errors;
static pthread_mutex_t g_out_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lat g_stats[32];
static size_t g_nstats;

struct session {
	unsigned long id;
	unsigned long thread;
	mp_conn *c;
	/* The last command's outcome, for expect. */
	char cmd[16];
	int rc;
	char err[512];
	struct mp_reply r;
	bool have_last;
	bool pending_error;   /* last command failed; an expect may accept it */
	bool failed;
	bool stop;            /* run no further line */
};

static void __attribute__((noreturn))
usage(int status)
{
	FILE *f = status ? stderr : stdout;

	fputs(
"usage: miltc -s SOCKET [-t SECONDS] [-n N] [-c C] [--json] [-q] [--stats]\n"
"             [--send-all] [SCRIPT|-]\n"
"  -s SOCKET   unix:/path, local:/path, inet:PORT@HOST, inet6:PORT@HOST\n"
"  -t SECONDS  timeout of every connect, read and write (default 60)\n"
"  -n N        run the script N times, each on a fresh connection\n"
"  -c C        C sessions at once (threads)\n"
"  --json      one JSON object per line instead of text\n"
"  -q          no per-command lines (errors and the summary still print)\n"
"  --stats     latency per command on stderr at the end\n"
"  --send-all  send events the milter asked not to get (SMFIP_NO*)\n"
"Script: one command a line; # starts a comment; \"...\" quotes with\n"
"\\\\ \\\" \\r \\n \\t \\0 \\xHH escapes, '...' quotes literally; ${n} is the\n"
"session number, ${t} the thread number.  The connection opens and\n"
"negotiates (as Postfix: version 6, all actions, all steps) on demand.\n"
"  open | close | negotiate [version=6] [actions=0x1ff] [protocol=0x1fffff]\n"
"  connect [host=NAME] [addr=ADDR] [family=4|6|L|U] [port=N]\n"
"  macro stage=C|H|M|R|T|N|E NAME=VALUE...   (or connect, helo, mail, ...)\n"
"  helo NAME | mail <ADDR> [ARG...] | rcpt <ADDR> [ARG...] | data\n"
"  header NAME VALUE | eoh | body TEXT | eob [TEXT] | unknown TEXT\n"
"  abort | quit | quit_nc\n"
"  raw HEX... | packet CMD [DATA] | read | sleep MS\n"
"  expect WHAT [text=SUB] [lines=N] [min_ms=N] [max_ms=N] [mod=SUB]\n"
"         [flags=NAME|...] [macro=STAGE:NAME]\n"
"    WHAT: continue accept reject tempfail discard replycode skip shutdown\n"
"    connfail optneg noreply skipped sent packet ok, a code (451) or class\n"
"    (4xx), or an error: closed timeout proto error\n", f);
	exit(status);
}

/* ---- small helpers ---- */

static void sb_vadd(struct sbuf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

static void
sb_vadd(struct sbuf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return;
	if (b->len + (size_t)n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + (size_t)n + 1)
			cap *= 2;
		char *np = realloc(b->p, cap);
		if (np == NULL) {
			perror("miltc");
			exit(2);
		}
		b->p = np;
		b->cap = cap;
	}
	vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	b->len += (size_t)n;
}

static void sb_add(struct sbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
sb_add(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sb_vadd(b, fmt, ap);
	va_end(ap);
}

/* Appends s (len bytes) quoted: C escapes for text, JSON for json. */
static void
sb_quote(struct sbuf *b, const char *s, size_t len, bool json)
{
	sb_add(b, "\"");
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		switch (ch) {
		case '"': sb_add(b, "\\\""); break;
		case '\\': sb_add(b, "\\\\"); break;
		case '\r': sb_add(b, "\\r"); break;
		case '\n': sb_add(b, "\\n"); break;
		case '\t': sb_add(b, "\\t"); break;
		default:
			if (ch < 0x20 || ch >= 0x7f)
				sb_add(b, json ? "\\u%04x" : "\\x%02x", ch);
			else
				sb_add(b, "%c", ch);
		}
	}
	sb_add(b, "\"");
}

static void
sb_qstr(struct sbuf *b, const char *s, bool json)
{
	sb_quote(b, s, strlen(s), json);
}

static void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL) {
		perror("miltc");
		exit(2);
	}
	return p;
}

static void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (p == NULL) {
		perror("miltc");
		exit(2);
	}
	return p;
}

static int
hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = tolower(ch);
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* "1234" → value within [min, max]; false if not a number. */
static bool
parse_ulong(const char *s, unsigned long min, unsigned long max,
            unsigned long *out)
{
	char *end;
	unsigned long v;

	if (s == NULL || *s == '\0' || *s == '-')
		return false;
	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* ---- the script ---- */

/* The escape after a backslash at *p; advances *p.  -1 if bad. */
static int
unescape(const char **p)
{
	int ch = (unsigned char)**p;

	(*p)++;
	switch (ch) {
	case 'n': return '\n';
	case 'r': return '\r';
	case 't': return '\t';
	case '0': return '\0';
	case 'x': {
		int h = hexval((unsigned char)(*p)[0]);
		int l = h < 0 ? -1 : hexval((unsigned char)(*p)[1]);
		if (l < 0)
			return -1;
		*p += 2;
		return h * 16 + l;
	}
	case '\0': return -1;
	default: return ch;
	}
}

/* Splits one line into tokens; false with *why on a syntax error. */
static bool
tokenize(const char *line, struct sline *out, const char **why)
{
	const char *p = line;

	out->ntok = 0;
	out->tok = NULL;
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\r')
			p++;
		if (*p == '\0' || *p == '#')
			return true;
		size_t cap = strlen(p) + 1, len = 0;
		char *s = xmalloc(cap);
		while (*p != '\0' && *p != ' ' && *p != '\t' && *p != '\r') {
			if (*p == '"') {
				p++;
				while (*p != '"') {
					if (*p == '\0') {
						*why = "unterminated \"";
						free(s);
						return false;
					}
					if (*p == '\\') {
						p++;
						int ch = unescape(&p);
						if (ch < 0) {
							*why = "bad escape";
							free(s);
							return false;
						}
						s[len++] = (char)ch;
					} else {
						s[len++] = *p++;
					}
				}
				p++;
			} else if (*p == '\'') {
				p++;
				while (*p != '\'') {
					if (*p == '\0') {
						*why = "unterminated '";
						free(s);
						return false;
					}
					s[len++] = *p++;
				}
				p++;
			} else if (*p == '\\') {
				p++;
				int ch = unescape(&p);
				if (ch < 0) {
					*why = "bad escape";
					free(s);
					return false;
				}
				s[len++] = (char)ch;
			} else {
				s[len++] = *p++;
			}
		}
		s[len] = '\0';
		out->tok = xrealloc(out->tok, (out->ntok + 1) * sizeof(*out->tok));
		out->tok[out->ntok].s = s;
		out->tok[out->ntok].len = len;
		out->ntok++;
	}
}

static const struct {
	const char *name;
	int minargs;
	int maxargs;   /* -1: any */
} g_cmds[] = {
	{ "open", 0, 0 }, { "close", 0, 0 }, { "negotiate", 0, 3 },
	{ "connect", 0, 4 }, { "macro", 1, -1 }, { "helo", 1, 1 },
	{ "mail", 1, -1 }, { "rcpt", 1, -1 }, { "data", 0, 0 },
	{ "header", 2, 2 }, { "eoh", 0, 0 }, { "body", 1, 1 },
	{ "eob", 0, 1 }, { "eom", 0, 1 }, { "unknown", 1, 1 },
	{ "abort", 0, 0 }, { "quit", 0, 0 }, { "quit_nc", 0, 0 },
	{ "raw", 1, -1 }, { "packet", 1, 2 }, { "read", 0, 0 },
	{ "sleep", 1, 1 }, { "expect", 1, -1 },
};

static bool
check_line(const struct sline *l, const char **why)
{
	const char *cmd = l->tok[0].s;
	int nargs = (int)l->ntok - 1;

	for (size_t i = 0; i < sizeof(g_cmds) / sizeof(g_cmds[0]); i++) {
		if (strcmp(cmd, g_cmds[i].name) != 0)
			continue;
		if (nargs < g_cmds[i].minargs ||
		    (g_cmds[i].maxargs >= 0 && nargs > g_cmds[i].maxargs)) {
			*why = "wrong number of arguments";
			return false;
		}
		return true;
	}
	*why = "unknown command";
	return false;
}

static bool
load_script(const char *path, struct script *sc)
{
	FILE *f = stdin;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int lineno = 0;
	bool ok = true;

	sc->name = path == NULL || strcmp(path, "-") == 0 ? "<stdin>" : path;
	if (path != NULL && strcmp(path, "-") != 0 &&
	    (f = fopen(path, "r")) == NULL) {
		fprintf(stderr, "miltc: %s: %s\n", path, strerror(errno));
		return false;
	}
	while ((n = getline(&line, &cap, f)) >= 0) {
		struct sline l;
		const char *why = NULL;
		lineno++;
		if (n > 0 && line[n - 1] == '\n')
			line[n - 1] = '\0';
		if (!tokenize(line, &l, &why) ||
		    (l.ntok > 0 && !check_line(&l, &why))) {
			fprintf(stderr, "miltc: %s:%d: %s\n", sc->name, lineno,
			        why);
			ok = false;
		}
		if (l.ntok == 0) {
			free(l.tok);
			continue;
		}
		l.lineno = lineno;
		sc->lines = xrealloc(sc->lines,
		                     (sc->nlines + 1) * sizeof(*sc->lines));
		sc->lines[sc->nlines++] = l;
	}
	free(line);
	if (f != stdin)
		fclose(f);
	if (ok && sc->nlines == 0) {
		fprintf(stderr, "miltc: %s: empty script\n", sc->name);
		ok = false;
	}
	return ok;
}

static void
free_script(struct script *sc)
{
	for (size_t i = 0; i < sc->nlines; i++) {
		for (size_t j = 0; j < sc->lines[i].ntok; j++)
			free(sc->lines[i].tok[j].s);
		free(sc->lines[i].tok);
	}
	free(sc->lines);
	sc->lines = NULL;
	sc->nlines = 0;
}

/* A copy of t with ${n} and ${t} replaced; *len gets its length. */
static char *
expand(const struct tok *t, const struct session *s, size_t *len)
{
	struct sbuf b = { 0 };

	for (size_t i = 0; i < t->len; i++) {
		if (t->s[i] == '$' && i + 3 < t->len && t->s[i + 1] == '{' &&
		    (t->s[i + 2] == 'n' || t->s[i + 2] == 't') &&
		    t->s[i + 3] == '}') {
			sb_add(&b, "%lu", t->s[i + 2] == 'n' ? s->id : s->thread);
			i += 3;
			continue;
		}
		if (b.len + 2 > b.cap) {
			b.cap = b.cap ? b.cap * 2 : 64;
			b.p = xrealloc(b.p, b.cap);
		}
		b.p[b.len++] = t->s[i];
		b.p[b.len] = '\0';
	}
	if (b.p == NULL)
		b.p = calloc(1, 1);
	if (b.p == NULL) {
		perror("miltc");
		exit(2);
	}
	*len = b.len;
	return b.p;
}

/* ---- output ---- */

static const char *
error_word(int rc)
{
	switch (rc) {
	case MP_E_CLOSED: return "closed";
	case MP_E_TIMEOUT: return "timeout";
	case MP_E_PROTO:
	case MP_E_TOOBIG: return "proto";
	default: return "error";
	}
}

static const char *
stage_name(int i)
{
	static const char *const names[MP_STAGE_COUNT] = {
		"connect", "helo", "mail", "rcpt", "data", "eom", "eoh",
	};
	return i >= 0 && i < MP_STAGE_COUNT ? names[i] : "?";
}

static void
record_stat(const char *cmd, int64_t us)
{
	struct lat *st = NULL;

	for (size_t i = 0; i < g_nstats; i++)
		if (strcmp(g_stats[i].name, cmd) == 0)
			st = &g_stats[i];
	if (st == NULL) {
		if (g_nstats >= sizeof(g_stats) / sizeof(g_stats[0]))
			return;
		st = &g_stats[g_nstats++];
		snprintf(st->name, sizeof(st->name), "%s", cmd);
	}
	if (st->n == st->cap) {
		st->cap = st->cap ? st->cap * 2 : 256;
		st->v = xrealloc(st->v, st->cap * sizeof(*st->v));
	}
	st->v[st->n++] = us;
}

/* Prints the outcome of one command (s->cmd, s->rc, s->r, s->err). */
static void
emit(struct session *s, int lineno, bool local)
{
	const struct mp_reply *r = &s->r;
	const char *kind = s->rc < 0 ? error_word(s->rc) :
	                   local ? "ok" : mp_kind_name(r->kind);
	bool optneg = s->rc == 0 && r->kind == MP_K_OPTNEG && s->c != NULL;
	bool json = g_opt.json;
	struct sbuf b = { 0 };

	atomic_fetch_add(&g_commands, 1);
	if (s->rc < 0)
		atomic_fetch_add(&g_errors, 1);
	pthread_mutex_lock(&g_out_lock);
	if (g_opt.stats && s->rc == 0 && !local)
		record_stat(s->cmd, r->elapsed_us);
	pthread_mutex_unlock(&g_out_lock);
	if (g_opt.quiet && s->rc >= 0)
		return;

	if (json) {
		sb_add(&b, "{\"session\":%lu,\"line\":%d,\"cmd\":\"%s\","
		       "\"kind\":\"%s\"", s->id, lineno, s->cmd, kind);
		if (r->code)
			sb_add(&b, ",\"code\":%d", r->code);
		sb_add(&b, ",\"elapsed_us\":%" PRId64, r->elapsed_us);
		if (r->text) {
			sb_add(&b, ",\"text\":");
			sb_qstr(&b, r->text, true);
			sb_add(&b, ",\"lines\":%zu", r->nlines);
		}
		if (r->nprogress)
			sb_add(&b, ",\"progress\":%u", r->nprogress);
		if (r->nmods) {
			sb_add(&b, ",\"mods\":[");
			for (size_t i = 0; i < r->nmods; i++) {
				sb_add(&b, i ? "," : "");
				sb_qstr(&b, r->mods[i].desc, true);
			}
			sb_add(&b, "]");
		}
		if (r->kind == MP_K_PACKET) {
			sb_add(&b, ",\"packet\":\"%c\",\"data\":", r->cmd);
			sb_quote(&b, (const char *)r->data, r->datalen, true);
		}
		if (optneg) {
			char names[512];
			uint32_t pf = mp_milter_protocol(s->c);
			sb_add(&b, ",\"version\":%" PRIu32 ",\"actions\":%" PRIu32
			       ",\"protocol\":%" PRIu32 ",\"flags\":\"%s\"",
			       mp_milter_version(s->c), mp_milter_actions(s->c),
			       pf, mp_protocol_names(pf, names, sizeof(names)));
			sb_add(&b, ",\"macros\":{");
			bool first = true;
			for (int i = 0; i < MP_STAGE_COUNT; i++) {
				const char *l = mp_milter_symlist(s->c,
				                                  (enum mp_stage)i);
				if (l == NULL)
					continue;
				sb_add(&b, "%s\"%s\":", first ? "" : ",",
				       stage_name(i));
				sb_qstr(&b, l, true);
				first = false;
			}
			sb_add(&b, "}");
		}
		if (s->rc < 0) {
			sb_add(&b, ",\"error\":");
			sb_qstr(&b, s->err, true);
		}
		sb_add(&b, "}\n");
	} else {
		sb_add(&b, "%lu %d %s %s ", s->id, lineno, s->cmd, kind);
		if (r->code)
			sb_add(&b, "%d", r->code);
		else
			sb_add(&b, "-");
		sb_add(&b, " %" PRId64, r->elapsed_us);
		if (r->text) {
			sb_add(&b, " ");
			sb_qstr(&b, r->text, false);
		}
		if (r->nprogress)
			sb_add(&b, " progress=%u", r->nprogress);
		for (size_t i = 0; i < r->nmods; i++) {
			sb_add(&b, " mod=");
			sb_qstr(&b, r->mods[i].desc, false);
		}
		if (r->kind == MP_K_PACKET) {
			sb_add(&b, " packet='%c' data=", r->cmd);
			sb_quote(&b, (const char *)r->data, r->datalen, false);
		}
		if (optneg) {
			char names[512];
			uint32_t pf = mp_milter_protocol(s->c);
			sb_add(&b, " version=%" PRIu32 " actions=0x%" PRIx32
			       " protocol=0x%" PRIx32 " flags=%s",
			       mp_milter_version(s->c), mp_milter_actions(s->c),
			       pf, pf ? mp_protocol_names(pf, names,
			       sizeof(names)) : "-");
			for (int i = 0; i < MP_STAGE_COUNT; i++) {
				const char *l = mp_milter_symlist(s->c,
				                                  (enum mp_stage)i);
				if (l == NULL)
					continue;
				sb_add(&b, " macros.%s=", stage_name(i));
				sb_qstr(&b, l, false);
			}
		}
		if (s->rc < 0) {
			sb_add(&b, " error=");
			sb_qstr(&b, s->err, false);
		}
		sb_add(&b, "\n");
	}
	pthread_mutex_lock(&g_out_lock);
	fwrite(b.p, 1, b.len, stdout);
	fflush(stdout);
	pthread_mutex_unlock(&g_out_lock);
	free(b.p);
}

static void session_note(const struct session *s, int lineno,
                         const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* A line on stderr about session s. */
static void
session_note(const struct session *s, int lineno, const char *fmt, ...)
{
	struct sbuf b = { 0 };
	va_list ap;

	sb_add(&b, "miltc: session %lu: %s:%d: ", s->id, g_script.name, lineno);
	va_start(ap, fmt);
	sb_vadd(&b, fmt, ap);
	va_end(ap);
	sb_add(&b, "\n");
	pthread_mutex_lock(&g_out_lock);
	fwrite(b.p, 1, b.len, stderr);
	pthread_mutex_unlock(&g_out_lock);
	free(b.p);
}

/* ---- running commands ---- */

/* Records an outcome for expect and prints it. */
static void
finish(struct session *s, int lineno, const char *cmd, int rc, bool local)
{
	snprintf(s->cmd, sizeof(s->cmd), "%s", cmd);
	s->rc = rc;
	s->have_last = true;
	if (rc < 0) {
		if (s->c != NULL && s->err[0] == '\0')
			snprintf(s->err, sizeof(s->err), "%s", mp_errmsg(s->c));
		if (s->err[0] == '\0')
			snprintf(s->err, sizeof(s->err), "%s", mp_strerror(rc));
		s->pending_error = true;
	}
	emit(s, lineno, local);
}

/* Opens the connection if needed, and negotiates if need_neg. */
static int
ensure(struct session *s, int lineno, bool need_neg)
{
	char err[512];
	int rc;

	if (s->c != NULL && !mp_is_open(s->c)) {
		mp_close(s->c);
		s->c = NULL;
	}
	if (s->c == NULL) {
		struct mp_options o = { g_opt.timeout_ms, 0, g_opt.send_all };
		rc = mp_open(g_opt.socket, &o, &s->c, err, sizeof(err));
		if (rc < 0) {
			mp_reply_free(&s->r);
			snprintf(s->err, sizeof(s->err), "%s", err);
			finish(s, lineno, "open", rc, true);
			return rc;
		}
	}
	if (need_neg && !mp_is_negotiated(s->c)) {
		s->err[0] = '\0';
		rc = mp_negotiate(s->c, MP_OFFER_VERSION, MP_OFFER_ACTIONS,
		                  MP_OFFER_PROTOCOL, &s->r);
		finish(s, lineno, "negotiate", rc, false);
		if (rc < 0)
			return rc;
		s->pending_error = false;
	}
	return 0;
}

/* Splits "key=value" (value may be empty); false without '='. */
static bool
split_kv(char *tok, char **key, char **val)
{
	char *eq = strchr(tok, '=');

	if (eq == NULL)
		return false;
	*eq = '\0';
	*key = tok;
	*val = eq + 1;
	return true;
}

static char
stage_cmd(const char *s)
{
	static const struct {
		const char *name;
		char cmd;
	} st[] = {
		{ "C", SMFIC_CONNECT }, { "connect", SMFIC_CONNECT },
		{ "H", SMFIC_HELO }, { "helo", SMFIC_HELO },
		{ "M", SMFIC_MAIL }, { "mail", SMFIC_MAIL },
		{ "R", SMFIC_RCPT }, { "rcpt", SMFIC_RCPT },
		{ "T", SMFIC_DATA }, { "data", SMFIC_DATA },
		{ "N", SMFIC_EOH }, { "eoh", SMFIC_EOH },
		{ "E", SMFIC_BODYEOB }, { "eom", SMFIC_BODYEOB },
		{ "eob", SMFIC_BODYEOB },
	};
	for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++)
		if (strcmp(s, st[i].name) == 0)
			return st[i].cmd;
	return 0;
}

static int
stage_index(const char *s)
{
	for (int i = 0; i < MP_STAGE_COUNT; i++)
		if (strcmp(s, stage_name(i)) == 0)
			return i;
	switch (stage_cmd(s)) {
	case SMFIC_CONNECT: return MP_STAGE_CONNECT;
	case SMFIC_HELO: return MP_STAGE_HELO;
	case SMFIC_MAIL: return MP_STAGE_MAIL;
	case SMFIC_RCPT: return MP_STAGE_RCPT;
	case SMFIC_DATA: return MP_STAGE_DATA;
	case SMFIC_EOH: return MP_STAGE_EOH;
	case SMFIC_BODYEOB: return MP_STAGE_EOM;
	default: return -1;
	}
}

/* A script mistake found while running: fails the session. */
static int
script_error(struct session *s, int lineno, const char *what)
{
	session_note(s, lineno, "%s", what);
	s->stop = true;
	s->failed = true;
	atomic_fetch_add(&g_script_errors, 1);
	return -1;
}

/* Concatenated hex digits of av[from..ac) into *out. */
static bool
parse_hex(char **av, size_t ac, size_t from, unsigned char **out, size_t *len)
{
	size_t cap = 0, n = 0;
	unsigned char *buf;
	int hi = -1;

	for (size_t i = from; i < ac; i++)
		cap += strlen(av[i]) / 2 + 1;
	buf = xmalloc(cap);
	for (size_t i = from; i < ac; i++) {
		for (const char *p = av[i]; *p; p++) {
			if (*p == ':' || *p == '_')
				continue;
			int v = hexval((unsigned char)*p);
			if (v < 0) {
				free(buf);
				return false;
			}
			if (hi < 0) {
				hi = v;
			} else {
				buf[n++] = (unsigned char)(hi * 16 + v);
				hi = -1;
			}
		}
	}
	if (hi >= 0) {
		free(buf);
		return false;
	}
	*out = buf;
	*len = n;
	return true;
}

static int
cmd_negotiate(struct session *s, int lineno, char **av, size_t ac)
{
	unsigned long v[3] = { MP_OFFER_VERSION, MP_OFFER_ACTIONS,
	                       MP_OFFER_PROTOCOL };
	static const char *const keys[3] = { "version", "actions", "protocol" };

	for (size_t i = 1; i < ac; i++) {
		char *k, *val;
		size_t j;
		if (!split_kv(av[i], &k, &val))
			return script_error(s, lineno, "want key=value");
		for (j = 0; j < 3 && strcmp(k, keys[j]) != 0; j++)
			;
		if (j == 3 || !parse_ulong(val, 0, UINT32_MAX, &v[j]))
			return script_error(s, lineno, "bad negotiate option");
	}
	if (ensure(s, lineno, false) < 0)
		return -1;
	s->err[0] = '\0';
	int rc = mp_negotiate(s->c, (uint32_t)v[0], (uint32_t)v[1],
	                      (uint32_t)v[2], &s->r);
	finish(s, lineno, "negotiate", rc, false);
	return 0;
}

static int
cmd_connect(struct session *s, int lineno, char **av, size_t ac)
{
	const char *host = "localhost", *addr = NULL;
	char family = 0;
	unsigned long port = 0;

	for (size_t i = 1; i < ac; i++) {
		char *k, *v;
		if (!split_kv(av[i], &k, &v))
			return script_error(s, lineno, "want key=value");
		if (strcmp(k, "host") == 0)
			host = v;
		else if (strcmp(k, "addr") == 0)
			addr = v;
		else if (strcmp(k, "port") == 0) {
			if (!parse_ulong(v, 0, 65535, &port))
				return script_error(s, lineno, "bad port");
		} else if (strcmp(k, "family") == 0) {
			if (strlen(v) != 1 || strchr("46LU", v[0]) == NULL)
				return script_error(s, lineno,
				                    "family is 4, 6, L or U");
			family = v[0];
		} else
			return script_error(s, lineno, "unknown connect key");
	}
	if (family == 0)
		family = addr == NULL ? SMFIA_UNKNOWN :
		         strchr(addr, ':') ? SMFIA_INET6 :
		         addr[0] == '/' ? SMFIA_UNIX : SMFIA_INET;
	if (family != SMFIA_UNKNOWN && addr == NULL)
		return script_error(s, lineno, "this family needs addr=");
	if (ensure(s, lineno, true) < 0)
		return -1;
	s->err[0] = '\0';
	int rc = mp_connect(s->c, host, family, (uint16_t)port, addr, &s->r);
	finish(s, lineno, "connect", rc, false);
	return 0;
}

static int
cmd_macro(struct session *s, int lineno, char **av, size_t ac)
{
	const char **names = xmalloc(ac * sizeof(*names));
	const char **values = xmalloc(ac * sizeof(*values));
	size_t n = 0;
	char stage = 0;
	int rc = 0;

	for (size_t i = 1; i < ac; i++) {
		char *k, *v;
		if (!split_kv(av[i], &k, &v) || *k == '\0') {
			rc = script_error(s, lineno, "want NAME=VALUE");
			goto out;
		}
		if (strcmp(k, "stage") == 0) {
			if ((stage = stage_cmd(v)) == 0) {
				rc = script_error(s, lineno, "unknown stage");
				goto out;
			}
			continue;
		}
		names[n] = k;
		values[n] = v;
		n++;
	}
	if (stage == 0) {
		rc = script_error(s, lineno, "macro needs stage=");
		goto out;
	}
	if ((rc = ensure(s, lineno, true)) < 0)
		goto out;
	s->err[0] = '\0';
	rc = mp_macro(s->c, stage, names, values, n, &s->r);
	finish(s, lineno, "macro", rc, false);
	rc = 0;
out:
	free(names);
	free(values);
	return rc;
}

static int
cmd_packet(struct session *s, int lineno, char **av, size_t *alen, size_t ac)
{
	unsigned long cmd;

	if (strlen(av[1]) == 1)
		cmd = (unsigned char)av[1][0];
	else if (!parse_ulong(av[1], 0, 255, &cmd))
		return script_error(s, lineno, "packet CMD is one character or "
		                    "a number");
	if (ensure(s, lineno, false) < 0)
		return -1;
	s->err[0] = '\0';
	int rc = mp_send_packet(s->c, (char)cmd, ac > 2 ? av[2] : "",
	                        ac > 2 ? alen[2] : 0, &s->r);
	finish(s, lineno, "packet", rc, false);
	return 0;
}

/* Runs one non-expect line.  -1 stops the session (script error). */
static int
run_command(struct session *s, const struct sline *l, char **av,
            size_t *alen, size_t ac)
{
	const char *cmd = av[0];
	int lineno = l->lineno;
	int rc;

	s->err[0] = '\0';
	if (strcmp(cmd, "negotiate") == 0)
		return cmd_negotiate(s, lineno, av, ac);
	if (strcmp(cmd, "connect") == 0)
		return cmd_connect(s, lineno, av, ac);
	if (strcmp(cmd, "macro") == 0)
		return cmd_macro(s, lineno, av, ac);
	if (strcmp(cmd, "packet") == 0)
		return cmd_packet(s, lineno, av, alen, ac);
	if (strcmp(cmd, "sleep") == 0) {
		unsigned long ms;
		if (!parse_ulong(av[1], 0, 3600000, &ms))
			return script_error(s, lineno, "bad sleep time");
		int64_t t0 = mp_now_us();
		struct timespec ts = { (time_t)(ms / 1000),
		                       (long)(ms % 1000) * 1000000 };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		mp_reply_free(&s->r);
		s->r.elapsed_us = mp_now_us() - t0;
		finish(s, lineno, "sleep", 0, true);
		return 0;
	}
	if (strcmp(cmd, "close") == 0) {
		mp_close(s->c);
		s->c = NULL;
		mp_reply_free(&s->r);
		finish(s, lineno, "close", 0, true);
		return 0;
	}
	if (strcmp(cmd, "open") == 0) {
		mp_close(s->c);
		s->c = NULL;
		int64_t t0 = mp_now_us();
		if (ensure(s, lineno, false) < 0)
			return 0;
		mp_reply_free(&s->r);
		s->r.elapsed_us = mp_now_us() - t0;
		finish(s, lineno, "open", 0, true);
		return 0;
	}
	if (strcmp(cmd, "raw") == 0) {
		unsigned char *buf;
		size_t len;
		if (!parse_hex(av, ac, 1, &buf, &len))
			return script_error(s, lineno, "raw wants hex digits");
		if (ensure(s, lineno, false) < 0) {
			free(buf);
			return 0;
		}
		rc = mp_send_raw(s->c, buf, len, &s->r);
		free(buf);
		finish(s, lineno, "raw", rc, false);
		return 0;
	}
	if (strcmp(cmd, "read") == 0) {
		if (ensure(s, lineno, false) < 0)
			return 0;
		rc = mp_read_packet(s->c, &s->r);
		finish(s, lineno, "read", rc, false);
		return 0;
	}
	/* Everything else needs a negotiated connection. */
	bool no_neg = strcmp(cmd, "abort") == 0 || strcmp(cmd, "quit") == 0 ||
	              strcmp(cmd, "quit_nc") == 0;
	if (ensure(s, lineno, !no_neg) < 0)
		return 0;
	s->err[0] = '\0';
	if (strcmp(cmd, "helo") == 0)
		rc = mp_helo(s->c, av[1], &s->r);
	else if (strcmp(cmd, "mail") == 0)
		rc = mp_mail(s->c, (const char *const *)av + 1, ac - 1, &s->r);
	else if (strcmp(cmd, "rcpt") == 0)
		rc = mp_rcpt(s->c, (const char *const *)av + 1, ac - 1, &s->r);
	else if (strcmp(cmd, "data") == 0)
		rc = mp_data(s->c, &s->r);
	else if (strcmp(cmd, "header") == 0)
		rc = mp_header(s->c, av[1], av[2], &s->r);
	else if (strcmp(cmd, "eoh") == 0)
		rc = mp_eoh(s->c, &s->r);
	else if (strcmp(cmd, "body") == 0)
		rc = mp_body(s->c, av[1], alen[1], &s->r);
	else if (strcmp(cmd, "eob") == 0 || strcmp(cmd, "eom") == 0)
		rc = mp_eob(s->c, ac > 1 ? av[1] : "", ac > 1 ? alen[1] : 0,
		            &s->r);
	else if (strcmp(cmd, "unknown") == 0)
		rc = mp_unknown(s->c, av[1], &s->r);
	else if (strcmp(cmd, "abort") == 0)
		rc = mp_abort(s->c, &s->r);
	else if (strcmp(cmd, "quit") == 0)
		rc = mp_quit(s->c, &s->r);
	else if (strcmp(cmd, "quit_nc") == 0)
		rc = mp_quit_nc(s->c, &s->r);
	else
		return script_error(s, lineno, "unknown command");
	finish(s, lineno, cmd, rc, false);
	return 0;
}

/* ---- expect ---- */

static bool
has_word(const char *list, const char *word)
{
	size_t wl = strlen(word);

	for (const char *p = list; p != NULL && *p; ) {
		while (*p == ' ')
			p++;
		size_t n = strcspn(p, " ");
		if (n == wl && strncmp(p, word, n) == 0)
			return true;
		p += n;
	}
	return false;
}

/* Checks the last outcome against an expect line; false with *why. */
static bool
check_expect(struct session *s, char **av, size_t ac, struct sbuf *why)
{
	const struct mp_reply *r = &s->r;
	const char *what = av[1];
	const char *got = s->rc < 0 ? error_word(s->rc) : mp_kind_name(r->kind);
	bool ok;

	if (!s->have_last) {
		sb_add(why, "nothing to check yet");
		return false;
	}
	if (strcmp(what, "error") == 0)
		ok = s->rc < 0;
	else if (s->rc < 0)
		ok = strcmp(what, got) == 0;
	else if (strcmp(what, "ok") == 0)
		ok = true;
	else if (strlen(what) == 3 && isdigit((unsigned char)what[0]) &&
	         strcmp(what + 1, "xx") == 0)
		ok = r->kind == MP_K_REPLYCODE && r->code / 100 == what[0] - '0';
	else if (strlen(what) == 3 && strspn(what, "0123456789") == 3)
		ok = r->kind == MP_K_REPLYCODE && r->code == atoi(what);
	else
		ok = strcmp(what, got) == 0;
	if (!ok) {
		sb_add(why, "want %s, got %s", what, got);
		if (r->code)
			sb_add(why, " %d", r->code);
		if (s->rc < 0)
			sb_add(why, " (%s)", s->err);
		return false;
	}
	for (size_t i = 2; i < ac; i++) {
		char *k, *v;
		unsigned long n;
		if (!split_kv(av[i], &k, &v)) {
			sb_add(why, "bad expect option \"%s\"", av[i]);
			return false;
		}
		if (strcmp(k, "text") == 0) {
			if (r->text == NULL || strstr(r->text, v) == NULL) {
				sb_add(why, "text does not contain \"%s\"", v);
				return false;
			}
		} else if (strcmp(k, "lines") == 0 &&
		           parse_ulong(v, 0, 1000, &n)) {
			if (r->nlines != n) {
				sb_add(why, "want %lu lines, got %zu", n,
				       r->nlines);
				return false;
			}
		} else if (strcmp(k, "min_ms") == 0 &&
		           parse_ulong(v, 0, 86400000, &n)) {
			if (r->elapsed_us < (int64_t)n * 1000) {
				sb_add(why, "took %" PRId64 " us, want at least "
				       "%lu ms", r->elapsed_us, n);
				return false;
			}
		} else if (strcmp(k, "max_ms") == 0 &&
		           parse_ulong(v, 0, 86400000, &n)) {
			if (r->elapsed_us > (int64_t)n * 1000) {
				sb_add(why, "took %" PRId64 " us, want at most "
				       "%lu ms", r->elapsed_us, n);
				return false;
			}
		} else if (strcmp(k, "mod") == 0) {
			bool found = false;
			for (size_t j = 0; j < r->nmods; j++)
				if (strstr(r->mods[j].desc, v) != NULL)
					found = true;
			if (!found) {
				sb_add(why, "no modification like \"%s\"", v);
				return false;
			}
		} else if (strcmp(k, "flags") == 0) {
			char names[512];
			uint32_t pf = s->c ? mp_milter_protocol(s->c) : 0;
			mp_protocol_names(pf, names, sizeof(names));
			char *save = NULL;
			for (char *f = strtok_r(v, "|,", &save); f != NULL;
			     f = strtok_r(NULL, "|,", &save)) {
				char pad[520];
				snprintf(pad, sizeof(pad), "|%s|", names);
				char want[80];
				snprintf(want, sizeof(want), "|%s|", f);
				if (strstr(pad, want) == NULL) {
					sb_add(why, "protocol flags %s lack %s",
					       names, f);
					return false;
				}
			}
		} else if (strcmp(k, "macro") == 0) {
			char *colon = strchr(v, ':');
			int st = -1;
			if (colon != NULL) {
				*colon = '\0';
				st = stage_index(v);
			}
			if (st < 0) {
				sb_add(why, "macro= wants STAGE:NAME");
				return false;
			}
			const char *l = s->c ? mp_milter_symlist(s->c,
			                (enum mp_stage)st) : NULL;
			if (!has_word(l, colon + 1)) {
				sb_add(why, "macro list for %s (%s) lacks %s",
				       stage_name(st), l ? l : "none", colon + 1);
				return false;
			}
		} else {
			sb_add(why, "bad expect option \"%s\"", k);
			return false;
		}
	}
	return true;
}

/* ---- sessions ---- */

static void
run_session(unsigned long id, unsigned long thread)
{
	struct session s;
	const struct sline *last_cmd_line = NULL;

	memset(&s, 0, sizeof(s));
	s.id = id;
	s.thread = thread;
	for (size_t i = 0; i < g_script.nlines && !s.stop; i++) {
		const struct sline *l = &g_script.lines[i];
		size_t ac = l->ntok;
		char **av = xmalloc(ac * sizeof(*av));
		size_t *alen = xmalloc(ac * sizeof(*alen));
		for (size_t j = 0; j < ac; j++)
			av[j] = expand(&l->tok[j], &s, &alen[j]);

		if (strcmp(av[0], "expect") == 0) {
			struct sbuf why = { 0 };
			if (!check_expect(&s, av, ac, &why)) {
				session_note(&s, l->lineno, "expect %s: %s",
				             av[1], why.p ? why.p : "");
				atomic_fetch_add(&g_expect_failures, 1);
				s.failed = true;
			} else if (s.rc < 0) {
				s.pending_error = false;   /* accepted */
			}
			free(why.p);
		} else if (s.pending_error) {
			/* The previous command failed and no expect took it. */
			session_note(&s, last_cmd_line->lineno, "%s: %s",
			             s.cmd, s.err);
			s.failed = true;
			s.stop = true;
		} else {
			run_command(&s, l, av, alen, ac);
			last_cmd_line = l;
		}
		for (size_t j = 0; j < ac; j++)
			free(av[j]);
		free(av);
		free(alen);
	}
	if (s.pending_error && !s.stop) {
		session_note(&s, last_cmd_line ? last_cmd_line->lineno : 0,
		             "%s: %s", s.cmd, s.err);
		s.failed = true;
	}
	if (s.failed)
		atomic_fetch_add(&g_failed_sessions, 1);
	mp_close(s.c);
	mp_reply_free(&s.r);
}

static void *
worker(void *arg)
{
	unsigned long thread = (unsigned long)(uintptr_t)arg;

	for (;;) {
		unsigned long id = atomic_fetch_add(&g_next_session, 1) + 1;
		if (id > g_opt.sessions)
			break;
		run_session(id, thread);
	}
	return NULL;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static void
print_stats(void)
{
	fprintf(stderr, "%-10s %8s %10s %10s %10s %10s %10s\n", "command",
	        "count", "min_us", "avg_us", "p50_us", "p99_us", "max_us");
	for (size_t i = 0; i < g_nstats; i++) {
		struct lat *st = &g_stats[i];
		int64_t sum = 0;
		qsort(st->v, st->n, sizeof(*st->v), cmp_i64);
		for (size_t j = 0; j < st->n; j++)
			sum += st->v[j];
		fprintf(stderr, "%-10s %8zu %10" PRId64 " %10" PRId64 " %10"
		        PRId64 " %10" PRId64 " %10" PRId64 "\n", st->name,
		        st->n, st->v[0], sum / (int64_t)st->n,
		        st->v[(st->n - 1) / 2], st->v[(st->n * 99 - 1) / 100],
		        st->v[st->n - 1]);
		free(st->v);
	}
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "stats", no_argument, NULL, 'S' },
		{ "send-all", no_argument, NULL, 'A' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "s:t:n:c:qh", longopts, NULL))
	       != -1) {
		switch (ch) {
		case 's':
			g_opt.socket = optarg;
			break;
		case 't': {
			char *end;
			errno = 0;
			double t = strtod(optarg, &end);
			if (errno != 0 || *end != '\0' || !(t > 0) || t > 86400) {
				fprintf(stderr, "miltc: bad timeout %s\n", optarg);
				return 2;
			}
			g_opt.timeout_ms = (int)(t * 1000 + 0.5);
			if (g_opt.timeout_ms < 1)
				g_opt.timeout_ms = 1;
			break;
		}
		case 'n':
			if (!parse_ulong(optarg, 1, 100000000, &g_opt.sessions)) {
				fprintf(stderr, "miltc: bad -n %s\n", optarg);
				return 2;
			}
			break;
		case 'c':
			if (!parse_ulong(optarg, 1, 1024, &g_opt.threads)) {
				fprintf(stderr, "miltc: bad -c %s\n", optarg);
				return 2;
			}
			break;
		case 'q': g_opt.quiet = true; break;
		case 'j': g_opt.json = true; break;
		case 'S': g_opt.stats = true; break;
		case 'A': g_opt.send_all = true; break;
		case 'h': usage(0);
		default: usage(2);
		}
	}
	if (g_opt.socket == NULL || argc - optind > 1)
		usage(2);
	if (!load_script(optind < argc ? argv[optind] : NULL, &g_script)) {
		free_script(&g_script);
		return 2;
	}
	if (g_opt.threads > g_opt.sessions)
		g_opt.threads = g_opt.sessions;

	int64_t t0 = mp_now_us();
	pthread_t *tids = xmalloc(g_opt.threads * sizeof(*tids));
	unsigned long started = 0;
	for (unsigned long i = 0; i < g_opt.threads; i++) {
		int err = pthread_create(&tids[i], NULL, worker,
		                         (void *)(uintptr_t)(i + 1));
		if (err != 0) {
			fprintf(stderr, "miltc: pthread_create: %s\n",
			        strerror(err));
			break;
		}
		started++;
	}
	if (started == 0)
		worker((void *)(uintptr_t)1);
	for (unsigned long i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	free(tids);
	int64_t wall = mp_now_us() - t0;

	unsigned long failed = atomic_load(&g_failed_sessions);
	if (g_opt.sessions > 1 || failed > 0 || g_opt.stats)
		fprintf(stderr, "miltc: %lu sessions, %lu failed; %lu commands, "
		        "%lu errors, %lu expect failures; %.3f s\n",
		        g_opt.sessions, failed, atomic_load(&g_commands),
		        atomic_load(&g_errors), atomic_load(&g_expect_failures),
		        (double)wall / 1e6);
	if (g_opt.stats)
		print_stats();
	free_script(&g_script);
	if (atomic_load(&g_script_errors) > 0)
		return 2;
	return failed > 0 ? 1 : 0;
}
