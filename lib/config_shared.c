/*
 * config_shared.c - the shared group of floodgate.conf: where counts and
 * bans are exchanged with the other MX hosts, and how often.
 *
 * The group is optional; without it nothing is shared and nothing else
 * changes.  backend = "none" (the default) keeps the group's settings
 * checked but shares nothing, so a file can be rolled out to every host
 * before Redis is.  Checking never connects: the server is only parsed,
 * the password file only read.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_internal.h"
#include "fg.h"

static const char *const backend_names[] = {"none", "redis", NULL};

/* "unix:/path", "[v6]:port" or "host:port" with a port 1..65535. */
static const char *
check_server(const char *v)
{
	const char *colon;
	char *end;
	long port;

	if (strncmp(v, "unix:", 5) == 0) {
		if (v[5] != '/')
			return "a unix socket needs an absolute path, e.g. "
			       "unix:/run/redis/redis.sock";
		if (strlen(v + 5) >= 108)
			return "unix socket path too long (max 107 bytes)";
		return NULL;
	}
	if (*v == '[') {
		const char *close = strchr(v, ']');
		if (close == NULL || close == v + 1)
			return "expected [IPv6 address]:port";
		if (close[1] != ':')
			return "expected [IPv6 address]:port";
		colon = close + 1;
	} else {
		colon = strrchr(v, ':');
		if (colon == NULL || colon == v)
			return "expected host:port, [IPv6 address]:port or "
			       "unix:/path";
		if (memchr(v, ':', (size_t)(colon - v)) != NULL)
			return "an IPv6 address goes in brackets: [::1]:6379";
	}
	for (const char *p = v; p < colon; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return "space or control character in the host";
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (!isdigit((unsigned char)colon[1]) || *end != '\0' || errno != 0 ||
	    port < 1 || port > 65535)
		return "expected a port 1-65535 after the host";
	return NULL;
}

/* A Redis key prefix: printable, no blanks, at most 64 bytes. */
static const char *
check_prefix(const char *v)
{
	if (*v == '\0')
		return "must not be empty";
	if (strlen(v) > 64)
		return "longer than 64 characters";
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return "space or control character";
	return NULL;
}

/* A node name ends Redis fields and ban records: a plain name. */
static const char *
check_node(const char *v)
{
	return *v == '\0' ? NULL : fg_cfg_check_name(v);
}

static const char *
check_username(const char *v)
{
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return "space or control character";
	return NULL;
}

#define OFF(field) offsetof(struct fg_shared, field)

static const struct field shared_fields[] = {
	{"backend", F_ENUM, OFF(backend), "\"none\"", 0, 0, backend_names, NULL},
	{"server", F_STRING, OFF(server), "\"127.0.0.1:6379\"", 0, 0, NULL, check_server},
	{"username", F_STRING, OFF(username), "\"\"", 0, 0, NULL, check_username},
	{"password_file", F_STRING, OFF(password_file), "\"\"", 0, 0, NULL, fg_cfg_check_abs_path_or_empty},
	{"prefix", F_STRING, OFF(prefix), "\"fg\"", 0, 0, NULL, check_prefix},
	{"node", F_STRING, OFF(node), "\"\"", 0, 0, NULL, check_node},
	{"sync_interval", F_DURATION, OFF(sync_interval_ms), "\"250ms\"", 50, 5 * MS_S, NULL, NULL},
	{"slot", F_DURATION, OFF(slot_ms), "\"5s\"", MS_S, 60 * MS_S, NULL, NULL},
	{"timeout", F_DURATION, OFF(timeout_ms), "\"500ms\"", 10, 30 * MS_S, NULL, NULL},
	{"hot", F_DURATION, OFF(hot_ms), "\"10s\"", MS_S, 3600 * MS_S, NULL, NULL},
	{"max_commands", F_INT, OFF(max_commands), "20000", 100, 1000000, NULL, NULL},
	{"bans", F_BOOL, OFF(bans), "true", 0, 0, NULL, NULL},
	{"max_remote_ban", F_DURATION, OFF(max_remote_ban_ms), "\"1d\"", MS_S, 366 * MS_D, NULL, NULL},
	{"warn_skew", F_DURATION, OFF(warn_skew_ms), "\"250ms\"", 0, 3600 * MS_S, NULL, NULL},
};

/* The secret: the file's first line, without its newline. */
static void
read_password(struct ctx *c, struct fg_shared *sh, int line)
{
	char buf[1024];
	struct stat st;
	ssize_t n;
	int fd;

	fd = open(sh->password_file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		CERR(c, line, "shared.password_file", "%s: %s",
		     sh->password_file, strerror(errno));
		return;
	}
	if (fstat(fd, &st) == 0 && (st.st_mode & S_IROTH))
		CWARN(c, line, "shared.password_file", "%s is readable by "
		      "every user", sh->password_file);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		CERR(c, line, "shared.password_file", "%s: %s",
		     sh->password_file, strerror(errno));
		return;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (buf[0] == '\0') {
		CERR(c, line, "shared.password_file", "%s: empty first line",
		     sh->password_file);
		return;
	}
	for (const char *p = buf; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			CERR(c, line, "shared.password_file", "%s: control "
			     "character in the password", sh->password_file);
			explicit_bzero(buf, sizeof(buf));
			return;
		}
	}
	sh->password = fg_cfg_strdup(c, buf);
	explicit_bzero(buf, sizeof(buf));
}

/* node = "": the host name, which must then be a plain name too. */
static void
default_node(struct ctx *c, struct fg_shared *sh, int line)
{
	char host[256];
	const char *why;

	if (gethostname(host, sizeof(host)) != 0) {
		CERR(c, line, "shared.node", "cannot read the host name (%s): "
		     "set node", strerror(errno));
		return;
	}
	host[sizeof(host) - 1] = '\0';
	if ((why = fg_cfg_check_name(host)) != NULL) {
		CERR(c, line, "shared.node", "the host name \"%s\" %s: set "
		     "node", host, why);
		return;
	}
	free(sh->node);
	sh->node = fg_cfg_strdup(c, host);
}

void
fg_cfg_parse_shared(struct ctx *c, struct fg_config *cfg, config_setting_t *s)
{
	struct fg_shared *sh = &cfg->shared;
	bool seen[FG_NELEM(shared_fields)];
	int line = 0;

	if (s != NULL && config_setting_type(s) != CONFIG_TYPE_GROUP) {
		CERR(c, config_setting_source_line(s), "shared", "expected a "
		     "group { backend = \"redis\"; server = \"...\"; ... }, "
		     "got %s", fg_cfg_type_name(config_setting_type(s)));
		s = NULL;
	}
	fg_cfg_parse_group(c, s, "shared.", shared_fields,
	                   FG_NELEM(shared_fields), sh, seen, NULL);
	if (s == NULL || c->nomem)
		return;
	sh->present = true;
	line = config_setting_source_line(s);
	if (sh->password_file != NULL && sh->password_file[0] != '\0') {
		config_setting_t *pf = config_setting_get_member(s, "password_file");
		read_password(c, sh, pf != NULL ? (int)config_setting_source_line(pf)
		                                : line);
	} else if (sh->username != NULL && sh->username[0] != '\0') {
		config_setting_t *u = config_setting_get_member(s, "username");
		CERR(c, u != NULL ? (int)config_setting_source_line(u) : line,
		     "shared.username", "a user needs its password_file");
	}
	if (sh->node != NULL && sh->node[0] == '\0')
		default_node(c, sh, line);
	if (sh->slot_ms % 1000 != 0) {
		/* Counts are kept per second: a slot is a number of them. */
		config_setting_t *sl = config_setting_get_member(s, "slot");
		CERR(c, sl != NULL ? (int)config_setting_source_line(sl) : line,
		     "shared.slot", "must be a whole number of seconds");
	}
}

void
fg_cfg_free_shared(struct fg_config *cfg)
{
	struct fg_shared *sh = &cfg->shared;

	free(sh->server);
	free(sh->username);
	free(sh->password_file);
	if (sh->password != NULL) {
		explicit_bzero(sh->password, strlen(sh->password));
		free(sh->password);
	}
	free(sh->prefix);
	free(sh->node);
	memset(sh, 0, sizeof(*sh));
}

bool
fg_config_rule_shared(const struct fg_config *cfg, const struct fg_rule *r)
{
	return cfg->shared.backend == FG_SHARE_REDIS && r->shared;
}
