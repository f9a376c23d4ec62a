/*
 * config.c - floodgate.conf: the top-level and exempt tables, loading,
 * cross-setting checks and the published snapshot.  The field engine is in
 * config_parse.c, the rules in config_rules.c.
 *
 * Each table row names a setting, its type, its default (as text, parsed
 * by the same code as the file), its bounds and an optional validator.
 * fg_cfg_parse_group() walks a libconfig group against a table: unknown names
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

#include "config_internal.h"
#include "duration.h"
#include "rcptlist.h"
#include "fg.h"
#include "log.h"
#include "store.h"
static const char *const on_error_names[] = {"tempfail", "accept", NULL};

/* The socket a syslog daemon reads: a path that fits a sockaddr_un. */
static const char *
check_syslog_socket(const char *v)
{
	if (*v != '/')
		return "must be an absolute path, e.g. \"/dev/log\"";
	if (strlen(v) >= 108)
		return "unix socket path too long (max 107 bytes)";
	return NULL;
}

/* ---- tables ------------------------------------------------------- */

#define OFF(field) offsetof(struct fg_config, field)
#define MS_S INT64_C(1000)
#define MS_D (INT64_C(86400) * 1000)
#define MIB (INT64_C(1) << 20)
#define TIB (INT64_C(1) << 40)

static const struct field top_fields[] = {
	{"socket", F_STRING, OFF(socket), "\"unix:/run/floodgate/floodgate.sock\"", 0, 0, NULL, fg_cfg_check_socket},
	{"socket_mode", F_MODE, OFF(socket_mode), "\"0660\"", 0, 0, NULL, NULL},
	{"socket_group", F_STRING, OFF(socket_group), "\"\"", 0, 0, NULL, fg_cfg_check_user},
	{"socket_public", F_BOOL, OFF(socket_public), "false", 0, 0, NULL, NULL},
	{"database", F_STRING, OFF(database), "\"/var/lib/floodgate/floodgate.db\"", 0, 0, NULL, fg_cfg_check_abs_path},
	{"user", F_STRING, OFF(user), "\"floodgate\"", 0, 0, NULL, fg_cfg_check_user},
	{"allow_root", F_BOOL, OFF(allow_root), "false", 0, 0, NULL, NULL},
	{"pid_file", F_STRING, OFF(pid_file), "\"/run/floodgate/floodgate.pid\"", 0, 0, NULL, fg_cfg_check_abs_path_or_empty},
	{"log_level", F_ENUM, OFF(log_level), "\"info\"", 0, 0, fg_log_level_names, NULL},
	{"syslog_facility", F_ENUM, OFF(syslog_facility), "\"mail\"", 0, 0, fg_log_facility_names, NULL},
	{"syslog_socket", F_STRING, OFF(syslog_socket), "\"" FG_LOG_SYSLOG_SOCKET "\"", 0, 0, NULL, check_syslog_socket},
	{"on_error", F_ENUM, OFF(on_error), "\"tempfail\"", 0, 0, on_error_names, NULL},
	{"milter_timeout", F_DURATION, OFF(milter_timeout_ms), "\"2h\"", 10 * MS_S, MS_D, NULL, NULL},
	{"retention", F_DURATION, OFF(retention_ms), "\"7d\"", 3600 * MS_S, 3660 * MS_D, NULL, NULL},
	{"flush_interval", F_DURATION, OFF(flush_interval_ms), "\"" FG_XSTR(FG_STORE_DEFAULT_FLUSH_MS) "ms\"", 100, 10 * MS_S, NULL, NULL},
	{"queue_size", F_INT, OFF(queue_size), FG_XSTR(FG_STORE_DEFAULT_QUEUE), 1024, 16777216, NULL, NULL},
	{"memory_limit", F_SIZE, OFF(memory_limit), "\"128M\"", MIB, TIB, NULL, NULL},
	{"max_database_size", F_SIZE, OFF(max_database_size), "\"1G\"", MIB, 64 * TIB, NULL, NULL},
	{"network_prefix4", F_UINT, OFF(network_prefix4), "24", 8, 32, NULL, NULL},
	{"network_prefix6", F_UINT, OFF(network_prefix6), "64", 16, 128, NULL, NULL},
	{"monitor", F_BOOL, OFF(monitor), "false", 0, 0, NULL, NULL},
	{"max_delay", F_DURATION, OFF(max_delay_ms), "\"8s\"", 0, 300 * MS_S, NULL, NULL},
	{"mta_timeout", F_DURATION, OFF(mta_timeout_ms), "\"10s\"", MS_S, 3600 * MS_S, NULL, NULL},
	{"max_delayed_sessions", F_INT, OFF(max_delayed_sessions), "50", 0, 100000, NULL, NULL},
	{"ratio_session_cap", F_INT, OFF(ratio_session_cap), "10", 1, FG_RATIO_SESSION_CAP_MAX, NULL, NULL},
	{"banned_action", F_ENUM, OFF(banned_action), "\"disconnect\"", 0, 0, fg_cfg_action_names, NULL},
	{"banned_reply", F_REPLY, OFF(banned_reply), NULL, 0, 0, NULL, NULL},
	{"valid_recipients", F_STRING, OFF(valid_recipients), "\"\"", 0, 0, NULL, fg_cfg_check_abs_path_or_empty},
	{"exempt", F_SPECIAL, 0, NULL, 0, 0, NULL, NULL},
	{"rules", F_SPECIAL, 0, NULL, 0, 0, NULL, NULL},
	{"shared", F_SPECIAL, 0, NULL, 0, 0, NULL, NULL},
};

#undef OFF
#define OFF(field) offsetof(struct fg_exempt, field)

static const struct field exempt_fields[] = {
	{"networks", F_SPECIAL, 0, NULL, 0, 0, NULL, NULL},
	{"authenticated", F_BOOL, OFF(authenticated), "true", 0, 0, NULL, NULL},
	{"hostnames", F_SPECIAL, 0, NULL, 0, 0, NULL, NULL},
	{"daemons", F_SPECIAL, 0, NULL, 0, 0, NULL, NULL},
};

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
	if ((d = fg_cfg_strdup(c, s)) == NULL)
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
		fg_cfg_each_string(c, s, key, prefixlist_add, &l);
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
		fg_cfg_each_string(c, s, key, strlist_add, &l);
		if (strcmp(f->name, "hostnames") == 0) {
			e->hostnames = l.v;
			e->nhostnames = l.n;
		} else {
			e->daemons = l.v;
			e->ndaemons = l.n;
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
	free(cfg->syslog_socket);
	free(cfg->valid_recipients);
	fg_rcptlist_free(cfg->valid_rcpts);
	fg_cfg_free_reply(&cfg->banned_reply);
	fg_nettab_free(cfg->exempt.networks, NULL);
	free(cfg->exempt.network_list);
	for (size_t i = 0; i < cfg->exempt.nhostnames; i++)
		free(cfg->exempt.hostnames[i]);
	free(cfg->exempt.hostnames);
	for (size_t i = 0; i < cfg->exempt.ndaemons; i++)
		free(cfg->exempt.daemons[i]);
	free(cfg->exempt.daemons);
	fg_cfg_free_rules(cfg);
	fg_cfg_free_shared(cfg);
	free(cfg);
}

/* The list's own messages ("LIST:3: reason"), filed under the setting
 * that named the list, as every other error is. */
struct list_diag {
	struct ctx *c;
	int line;
};

static void
rcptlist_diag(void *arg, const char *msg)
{
	struct list_diag *d = arg;

	CERR(d->c, d->line, "valid_recipients", "%s", msg);
}

/*
 * The milter protocol has no authentication: whoever reaches an inet
 * socket can present any client address and have any network banned.
 * Only the loopback is accepted unless socket_public says otherwise:
 * a numeric 127.0.0.0/8 or ::1 host (bracketed or not), or "localhost".
 */
static const char *
socket_reach(const char *spec)
{
	const char *colon = strchr(spec, ':');
	const char *at = colon != NULL ? strchr(colon, '@') : NULL;
	char host[FG_ADDR_STRLEN + 2];
	size_t len;
	fg_addr a;

	if (strncmp(spec, "inet:", 5) != 0 && strncmp(spec, "inet6:", 6) != 0)
		return NULL;
	if (at == NULL)
		return "listens on every interface";
	at++;
	len = strlen(at);
	if (len >= 2 && at[0] == '[' && at[len - 1] == ']') {
		at++;
		len -= 2;
	}
	if (len >= sizeof(host))
		return "is not a loopback address";
	memcpy(host, at, len);
	host[len] = '\0';
	if (strcasecmp(host, "localhost") == 0)
		return NULL;
	if (fg_addr_parse(host, &a) != 0)
		return "is a host name, not a loopback address";
	if (a.family == FG_AF_INET && a.bytes[0] == 127)
		return NULL;
	if (a.family == FG_AF_INET6) {
		static const uint8_t lo6[16] = {[15] = 1};
		if (memcmp(a.bytes, lo6, 16) == 0)
			return NULL;
	}
	for (size_t i = 0; i < 16; i++)
		if (a.bytes[i] != 0)
			return "is not a loopback address";
	return "listens on every interface";
}

static void
check_socket_reach(struct ctx *c, const struct fg_config *cfg,
                   config_t *cf)
{
	config_setting_t *s = config_lookup(cf, "socket");
	const char *why;

	if (cfg->socket == NULL || cfg->socket_public ||
	    fg_cfg_check_socket(cfg->socket) != NULL ||
	    (why = socket_reach(cfg->socket)) == NULL)
		return;
	CERR(c, s != NULL ? config_setting_source_line(s) : 0, "socket",
	     "\"%s\" %s; anyone who reaches it can have any network "
	     "banned: give a loopback host (such as 127.0.0.1), or set "
	     "socket_public = true and firewall the port", cfg->socket, why);
}

static void
cross_checks(struct ctx *c, struct fg_config *cfg, config_t *cf)
{
	if (!fg_cfg_failed(c, "valid_recipients") &&
	    cfg->valid_recipients != NULL && cfg->valid_recipients[0] != '\0') {
		config_setting_t *vr = config_lookup(cf, "valid_recipients");
		struct list_diag d = {
			.c = c,
			.line = vr != NULL ? config_setting_source_line(vr) : 0,
		};
		int rc = fg_rcptlist_load(cfg->valid_recipients,
		                          &cfg->valid_rcpts, rcptlist_diag, &d);
		if (rc == FG_ENOMEM)
			c->nomem = true;
	}

	char a[32], b[32];
	config_setting_t *md = config_lookup(cf, "max_delay");
	int line = md != NULL ? config_setting_source_line(md) : 0;

	if (fg_cfg_failed(c, "max_delay") || fg_cfg_failed(c, "mta_timeout"))
		;   /* said already */
	else if (cfg->max_delay_ms >= cfg->mta_timeout_ms)
		CERR(c, line, "max_delay", "%s must stay below mta_timeout "
		     "%s, or the MTA gives up on the milter mid-delay",
		     fg_duration_format(cfg->max_delay_ms, a, sizeof(a)),
		     fg_duration_format(cfg->mta_timeout_ms, b, sizeof(b)));
	else if (cfg->max_delay_ms > cfg->mta_timeout_ms - 2000)
		CWARN(c, line, "max_delay", "%s leaves less than 2s of "
		      "mta_timeout %s for the MTA's own work",
		      fg_duration_format(cfg->max_delay_ms, a, sizeof(a)),
		      fg_duration_format(cfg->mta_timeout_ms, b, sizeof(b)));
	if (fg_cfg_failed(c, "banned_action") || fg_cfg_failed(c, "banned_reply"))
		;   /* said already */
	else if (cfg->banned_action == FG_ACT_DELAY ||
	         cfg->banned_action == FG_ACT_BAN ||
	         cfg->banned_action == FG_ACT_CONTINUE) {
		config_setting_t *s = config_lookup(cf, "banned_action");
		CERR(c, s ? config_setting_source_line(s) : 0, "banned_action",
		     "must be tempfail, reject or disconnect");
	} else if (cfg->banned_reply.code != 0) {
		config_setting_t *s = config_lookup(cf, "banned_reply");
		int cls = cfg->banned_reply.code / 100;
		int bl = s ? config_setting_source_line(s) : 0;
		if (cfg->banned_action == FG_ACT_DISCONNECT &&
		    cfg->banned_reply.code != 421)
			CERR(c, bl, "banned_reply", "disconnect replies with 421");
		else if (cfg->banned_action == FG_ACT_TEMPFAIL && cls != 4)
			CERR(c, bl, "banned_reply", "tempfail needs a 4xx code");
		else if (cfg->banned_action == FG_ACT_REJECT && cls != 5)
			CERR(c, bl, "banned_reply", "reject needs a 5xx code");
	}
	cfg->horizon_ms = 3600 * MS_S;
	for (size_t i = 0; i < cfg->nrules; i++) {
		const struct fg_rule *r = &cfg->rules[i];
		if (r->window_ms > cfg->horizon_ms)
			cfg->horizon_ms = r->window_ms;
		if (r->decay_ms > cfg->horizon_ms)
			cfg->horizon_ms = r->decay_ms;
	}
	if (!fg_cfg_failed(c, "retention") && cfg->retention_ms < cfg->horizon_ms) {
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
	cfg->path = fg_cfg_strdup(&c, name);
	atomic_init(&cfg->refs, 1);
	root = config_root_setting(cf);
	/* exempt, shared and rules are F_SPECIAL: parsed below, in that
	 * order. */
	fg_cfg_parse_group(&c, root, "", top_fields, FG_NELEM(top_fields), cfg, seen,
	            NULL);

	s = config_setting_get_member(root, "exempt");
	if (s != NULL && config_setting_type(s) != CONFIG_TYPE_GROUP) {
		CERR(&c, config_setting_source_line(s), "exempt", "expected a "
		     "group { networks = [...]; ... }");
		s = NULL;
	}
	fg_cfg_parse_group(&c, s, "exempt.", exempt_fields, FG_NELEM(exempt_fields),
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

	fg_cfg_parse_shared(&c, cfg, config_setting_get_member(root, "shared"));
	s = config_setting_get_member(root, "rules");
	if (s != NULL)
		fg_cfg_parse_rules(&c, cfg, s);
	if (!c.nomem)
		check_socket_reach(&c, cfg, cf);
	/* Even after other errors: config.h promises every error of the
	 * file at once.  A setting in error keeps its default. */
	if (!c.nomem)
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

/* Line n (from 1) of text, or of the file at path when text is NULL,
 * into buf; false when there is no such line. */
static bool
nth_line(const char *text, const char *path, int n, char *buf, size_t size)
{
	if (n < 1)
		return false;
	if (text != NULL) {
		const char *e;

		for (; n > 1 && text != NULL; n--) {
			text = strchr(text, '\n');
			if (text != NULL)
				text++;
		}
		if (text == NULL)
			return false;
		e = strchr(text, '\n');
		snprintf(buf, size, "%.*s",
		         (int)(e != NULL ? (size_t)(e - text) : strlen(text)),
		         text);
		return true;
	}
	FILE *fp = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	bool found = false;

	if (fp == NULL)
		return false;
	while (getline(&line, &cap, fp) >= 0) {
		if (--n == 0) {
			snprintf(buf, size, "%s", line);
			found = true;
			break;
		}
	}
	free(line);
	fclose(fp);
	return found;
}

/*
 * libconfig's own message is "syntax error" and a line: the line is read
 * again for the likely cause (config_syntax.c), named as
 * "file:line: key: syntax error: cause" when one is found.
 */
static int
report_syntax(config_t *cf, const char *name, const char *text,
              fg_config_diag_fn *diag, void *arg)
{
	char msg[1024], line[4096], key[64], hint[512];
	const char *file = config_error_file(cf);
	int n = config_error_line(cf);

	if (file == NULL)
		file = name;
	else
		text = NULL;   /* an @include: the line is in that file */
	if (nth_line(text, file, n, line, sizeof(line)) &&
	    fg_config_syntax_hint(line, key, sizeof(key), hint, sizeof(hint)))
		snprintf(msg, sizeof(msg), "%s:%d: %s: syntax error: %s", file,
		         n, key, hint);
	else
		snprintf(msg, sizeof(msg), "%s:%d: syntax error: %s", file, n,
		         config_error_text(cf) != NULL ? config_error_text(cf)
		                                       : "?");
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
		rc = report_syntax(&cf, path, NULL, diag, arg);
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
		rc = report_syntax(&cf, name, text, diag, arg);
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
