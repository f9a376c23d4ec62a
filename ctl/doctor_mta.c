/*
 * doctor_mta.c - the checks of "floodgatectl doctor" that read an MTA's
 * configuration.
 *
 * Postfix: "postconf -x" (every parameter, expanded), "postconf -n"
 * (those set in main.cf: a default action set on purpose), "postconf -M"
 * (master.cf: which smtpd services run chrooted), all with -c DIR when
 * given.  Per-service -o overrides of smtpd_milters are not read.
 *
 * sendmail: the .cf itself -- the X lines (filters: S=, F=, T=),
 * "O InputMailFilters=", the version in DZ, the local mailer's flags
 * (Mlocal, F=... 'w': unknown users are refused at RCPT time) and a
 * luser relay (DL).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "ctl.h"
#include "doctor.h"
#include "fg.h"

/* ---- small text helpers ---------------------------------------------------- */

/* The value of "name = value" in text (postconf output) into buf; NULL
 * when the name is not there. */
static const char *
pf_get(const char *text, const char *name, char *buf, size_t size)
{
	size_t n = strlen(name);

	for (const char *l = text; l != NULL && *l != '\0';) {
		const char *eol = strchr(l, '\n');
		size_t len = eol != NULL ? (size_t)(eol - l) : strlen(l);

		if (len >= n + 2 && strncmp(l, name, n) == 0 && l[n] == ' ' &&
		    l[n + 1] == '=') {
			const char *v = l + n + 2;

			while (v < l + len && *v == ' ')
				v++;
			snprintf(buf, size, "%.*s", (int)(l + len - v), v);
			return buf;
		}
		l = eol != NULL ? eol + 1 : NULL;
	}
	return NULL;
}

/* The next word of a Postfix list (separators: space, comma, braces)
 * into buf; the position after it, or NULL at the end. */
static const char *
next_word(const char *s, char *buf, size_t size)
{
	size_t n;

	s += strspn(s, " \t,{}");
	if (*s == '\0')
		return NULL;
	n = strcspn(s, " \t,{}");
	snprintf(buf, size, "%.*s", (int)n, s);
	return s + n;
}

static bool
in_list(const char *list, const char *word)
{
	char w[256];

	for (const char *s = list; (s = next_word(s, w, sizeof(w))) != NULL;)
		if (strcasecmp(w, word) == 0)
			return true;
	return false;
}

static bool
blank(const char *s)
{
	return s == NULL || s[strspn(s, " \t,")] == '\0';
}

/* A time as Postfix or sendmail writes it ("30s", "5m", bare seconds). */
static bool
mta_time(const char *s, int64_t *ms)
{
	return s != NULL && fg_duration_parse(s, ms) == 0 && *ms > 0;
}

/* The socket as the MTA should name it, for a fix line.  Postfix: the
 * path inside its chroot when floodgate's socket lies in it. */
static void
pf_name(const struct dr_sock *f, const char *root, char *buf, size_t size)
{
	size_t rl = strlen(root);

	if (f->kind == DR_UNIX && rl > 0 && strncmp(f->path, root, rl) == 0 &&
	    f->path[rl] == '/')
		snprintf(buf, size, "unix:%s", f->path + rl);
	else if (f->kind == DR_UNIX)
		snprintf(buf, size, "unix:%s", f->path);
	else if (f->kind == DR_INET6)
		snprintf(buf, size, "inet:[%s]:%u",
		         f->host[0] ? f->host : "::1", f->port);
	else
		snprintf(buf, size, "inet:%s:%u",
		         f->host[0] ? f->host : "127.0.0.1", f->port);
}

/* The leading number of s ("3.6" -> 3), 0 if none. */
static long
leading(const char *s)
{
	long v = strtol(s, NULL, 10);

	return v > 0 ? v : 0;
}

/* ---- Postfix ------------------------------------------------------------- */

struct pf {
	char *all;               /* postconf -x */
	char *set;               /* postconf -n */
	char *master;            /* postconf -M */
	char root[PATH_MAX];     /* queue_directory if smtpd is chrooted */
	char service[64];        /* the first chrooted smtpd service */
	const char *dir;         /* -c DIR or NULL */
};

static char *
postconf(const struct pf *p, const char *prog, const char *flag)
{
	const char *argv[5];
	int n = 0;

	argv[n++] = prog;
	if (p->dir != NULL) {
		argv[n++] = "-c";
		argv[n++] = p->dir;
	}
	argv[n++] = flag;
	argv[n] = NULL;
	return dr_run(argv);
}

static const char *
pf_param(const struct pf *p, const char *name, char *buf, size_t size)
{
	const char *v = pf_get(p->all, name, buf, size);

	return v != NULL ? v : "";
}

/* Which smtpd services of master.cf run chrooted: the chroot column
 * ('-' is 'y' only below compatibility level 1, as in Postfix 3). */
static void
pf_chroot(struct pf *p)
{
	char buf[64];
	long compat = leading(pf_param(p, "compatibility_level", buf,
	                               sizeof(buf)));

	p->root[0] = '\0';
	for (const char *l = p->master; l != NULL && *l != '\0';) {
		char f[8][64];
		const char *eol = strchr(l, '\n');
		char line[1024];
		int n;

		snprintf(line, sizeof(line), "%.*s",
		         (int)(eol != NULL ? (size_t)(eol - l) : strlen(l)), l);
		l = eol != NULL ? eol + 1 : NULL;
		n = sscanf(line, "%63s %63s %63s %63s %63s %63s %63s %63s",
		           f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7]);
		if (n != 8 || strcmp(f[7], "smtpd") != 0)
			continue;
		if (strcmp(f[4], "y") == 0 ||
		    (strcmp(f[4], "-") == 0 && compat < 1)) {
			pf_param(p, "queue_directory", p->root,
			         sizeof(p->root));
			snprintf(p->service, sizeof(p->service), "%s", f[0]);
			return;
		}
	}
}

/* smtpd_milters names floodgate's socket?  The name it uses in m. */
static bool
pf_check_socket(struct dr *d, const struct pf *p, const struct dr_target *t,
                struct dr_sock *m)
{
	char milters[4096], w[PATH_MAX], want[PATH_MAX + 16];
	char fix[PATH_MAX + 64];

	pf_param(p, "smtpd_milters", milters, sizeof(milters));
	pf_name(&t->fg, p->root, want, sizeof(want));
	snprintf(fix, sizeof(fix), "postconf -e 'smtpd_milters = %s'", want);
	for (const char *s = milters; (s = next_word(s, w, sizeof(w))) != NULL;) {
		if (strchr(w, '=') != NULL || dr_sock_postfix(w, m) != 0)
			continue;
		if (dr_sock_same(m, &t->fg, "") ||
		    (p->root[0] != '\0' && dr_sock_same(m, &t->fg, p->root))) {
			dr_report(d, DR_OK, "postfix-socket", NULL,
			          "smtpd_milters names floodgate's socket as %s",
			          w);
			return true;
		}
	}
	if (blank(milters))
		dr_report(d, DR_FAIL, "postfix-socket", fix, "smtpd_milters is "
		          "empty: Postfix does not use floodgate");
	else
		dr_report(d, DR_FAIL, "postfix-socket", fix, "smtpd_milters "
		          "(%s) does not name floodgate's socket %s%s%s",
		          milters, t->cfg->socket, p->root[0] != '\0'
		          ? ", which smtpd sees in its chroot as " : "",
		          p->root[0] != '\0' ? want : "");
	return false;
}

/* Can smtpd, as user postfix and in its chroot, open the socket? */
static void
pf_check_reach(struct dr *d, const struct pf *p, const struct dr_target *t,
               const struct dr_sock *m, bool named)
{
	char why[1024], fix[3 * PATH_MAX];

	if (!named) {
		dr_report(d, DR_WARN, "postfix-reach", "see postfix-socket",
		          "not checked: Postfix names no floodgate socket");
		return;
	}
	if (m->kind != DR_UNIX) {
		dr_report(d, DR_OK, "postfix-reach", NULL, "an inet socket: "
		          "smtpd reaches it from inside a chroot too");
		return;
	}
	if (dr_reach(p->root, m->path, "postfix", why, sizeof(why)) == 0) {
		if (p->root[0] != '\0')
			dr_report(d, DR_OK, "postfix-reach", NULL, "smtpd "
			          "(service %s) runs chrooted in %s and user "
			          "postfix can connect to %s there", p->service,
			          p->root, m->path);
		else
			dr_report(d, DR_OK, "postfix-reach", NULL, "smtpd runs "
			          "without chroot and user postfix can connect "
			          "to %s", m->path);
		return;
	}
	if (p->root[0] != '\0' && !dr_sock_same(m, &t->fg, p->root)) {
		/* The classic: the host's path, seen from inside the chroot. */
		snprintf(fix, sizeof(fix), "put floodgate's socket inside %s "
		         "(socket = \"unix:%s/floodgate/floodgate.sock\" in "
		         "floodgate.conf, smtpd_milters = "
		         "unix:/floodgate/floodgate.sock), or use an inet "
		         "socket", p->root, p->root);
		dr_report(d, DR_FAIL, "postfix-reach", fix, "socket outside "
		          "the chroot: smtpd (service %s) runs chrooted in %s, "
		          "where %s is %s%s: %s", p->service, p->root, m->path,
		          p->root, m->path, why);
		return;
	}
	snprintf(fix, sizeof(fix), "socket_group = \"postfix\" and socket_mode "
	         "= \"0660\" in floodgate.conf, and every directory above "
	         "the socket searchable by user postfix");
	dr_report(d, DR_FAIL, "postfix-reach", fix, "%s", why);
}

static void
pf_check_protocol(struct dr *d, const struct pf *p)
{
	char v[64];

	pf_param(p, "milter_protocol", v, sizeof(v));
	if (leading(v) >= 6)
		dr_report(d, DR_OK, "postfix-protocol", NULL,
		          "milter_protocol = %s", v);
	else
		dr_report(d, DR_FAIL, "postfix-protocol",
		          "postconf -e 'milter_protocol = 6'",
		          "milter_protocol = %s: floodgate needs 6 to see the "
		          "recipients Postfix rejects", v);
}

static void
pf_check_action(struct dr *d, const struct pf *p)
{
	static const char fix[] = "postconf -e 'milter_default_action = "
	                          "tempfail' (or accept, to let mail through "
	                          "unchecked while floodgate is down)";
	char v[64], set[64];

	pf_param(p, "milter_default_action", v, sizeof(v));
	if (strcmp(v, "reject") == 0)
		dr_report(d, DR_FAIL, "postfix-default-action", fix,
		          "milter_default_action = reject: every message is "
		          "refused with 5xx while floodgate is down");
	else if (pf_get(p->set, "milter_default_action", set,
	                sizeof(set)) == NULL)
		dr_report(d, DR_WARN, "postfix-default-action", fix,
		          "milter_default_action is not set in main.cf (the "
		          "default, %s, changes between Postfix versions)", v);
	else
		dr_report(d, DR_OK, "postfix-default-action", NULL,
		          "milter_default_action = %s, set in main.cf", v);
}

static void
timeout_check(struct dr *d, const char *check, const struct fg_config *cfg,
              const char *what, int64_t mta_ms, const char *fix_pre,
              const char *fix_post)
{
	char fix[512];

	if (cfg->max_delay_ms < mta_ms) {
		dr_report(d, DR_OK, check, NULL, "floodgate's max_delay %s is "
		          "below %s %s", fmt_duration(cfg->max_delay_ms), what,
		          fmt_duration(mta_ms));
		return;
	}
	snprintf(fix, sizeof(fix), "%s%s%s", fix_pre,
	         fmt_duration(cfg->max_delay_ms + 10000), fix_post);
	dr_report(d, DR_FAIL, check, fix, "floodgate's max_delay %s is not "
	          "below %s %s: a delayed reply times out and the MTA gives "
	          "up on the milter", fmt_duration(cfg->max_delay_ms), what,
	          fmt_duration(mta_ms));
}

static void
pf_check_timeout(struct dr *d, const struct pf *p, const struct fg_config *cfg)
{
	char v[64];
	int64_t ms;

	pf_param(p, "milter_command_timeout", v, sizeof(v));
	if (!mta_time(v, &ms)) {
		dr_report(d, DR_WARN, "postfix-timeout", NULL,
		          "milter_command_timeout = %s: not understood", v);
		return;
	}
	timeout_check(d, "postfix-timeout", cfg, "milter_command_timeout", ms,
	              "postconf -e 'milter_command_timeout = ", "', or a "
	              "smaller max_delay in floodgate.conf");
}

/* Unknown recipients refused at RCPT time, else nothing is counted. */
static void
pf_check_recipients(struct dr *d, const struct pf *p,
                    const struct fg_config *cfg)
{
	static const char own[] = "or give floodgate its own list "
	                          "(valid_recipients in floodgate.conf)";
	char dest[4096], lrm[4096], vmd[4096], vmm[4096], rd[4096], rrm[4096];
	char unl[16], fix[512], w[256];

	if (cfg->valid_recipients[0] != '\0') {
		dr_report(d, DR_OK, "postfix-recipients", NULL, "floodgate "
		          "checks recipients against its own list %s",
		          cfg->valid_recipients);
		return;
	}
	pf_param(p, "smtpd_reject_unlisted_recipient", unl, sizeof(unl));
	pf_param(p, "mydestination", dest, sizeof(dest));
	pf_param(p, "local_recipient_maps", lrm, sizeof(lrm));
	pf_param(p, "virtual_mailbox_domains", vmd, sizeof(vmd));
	pf_param(p, "virtual_mailbox_maps", vmm, sizeof(vmm));
	pf_param(p, "relay_domains", rd, sizeof(rd));
	pf_param(p, "relay_recipient_maps", rrm, sizeof(rrm));
	if (strcmp(unl, "no") == 0) {
		snprintf(fix, sizeof(fix), "postconf -e "
		         "'smtpd_reject_unlisted_recipient = yes', %s", own);
		dr_report(d, DR_FAIL, "postfix-recipients", fix,
		          "smtpd_reject_unlisted_recipient = no: unknown "
		          "recipients are accepted at RCPT time, so floodgate "
		          "counts nothing");
		return;
	}
	if (!blank(dest) && blank(lrm)) {
		snprintf(fix, sizeof(fix), "postconf -e 'local_recipient_maps "
		         "= proxy:unix:passwd.byname $alias_maps', %s", own);
		dr_report(d, DR_FAIL, "postfix-recipients", fix,
		          "local_recipient_maps is empty: any user in "
		          "mydestination (%s) is accepted at RCPT time, so "
		          "floodgate counts nothing", dest);
		return;
	}
	if (!blank(vmd) && blank(vmm)) {
		snprintf(fix, sizeof(fix), "set virtual_mailbox_maps, %s", own);
		dr_report(d, DR_FAIL, "postfix-recipients", fix,
		          "virtual_mailbox_maps is empty: any user in "
		          "virtual_mailbox_domains is accepted at RCPT time");
		return;
	}
	if (blank(rrm)) {
		for (const char *s = rd; (s = next_word(s, w, sizeof(w))) != NULL;) {
			if (in_list(dest, w) || strchr(w, ':') != NULL ||
			    w[0] == '/')
				continue;
			snprintf(fix, sizeof(fix), "set relay_recipient_maps, "
			         "%s", own);
			dr_report(d, DR_WARN, "postfix-recipients", fix,
			          "relay_recipient_maps is empty: any user in "
			          "relay_domains (%s) is accepted at RCPT time",
			          w);
			return;
		}
	}
	dr_report(d, DR_OK, "postfix-recipients", NULL, "Postfix rejects "
	          "unknown recipients at RCPT time (local_recipient_maps%s%s)",
	          blank(vmm) ? "" : ", virtual_mailbox_maps",
	          blank(rrm) ? "" : ", relay_recipient_maps");
}

bool
dr_postfix(struct dr *d, const struct dr_target *t, const char *dir)
{
	struct pf p;
	struct dr_sock m;
	char prog[PATH_MAX];
	bool named;

	memset(&p, 0, sizeof(p));
	p.dir = dir;
	if (dr_which("postconf", prog, sizeof(prog)) == NULL ||
	    (p.all = postconf(&p, prog, "-x")) == NULL ||
	    (p.set = postconf(&p, prog, "-n")) == NULL ||
	    (p.master = postconf(&p, prog, "-M")) == NULL) {
		dr_report(d, DR_FAIL, "postfix-config", "--postfix-config DIR "
		          "names the directory of main.cf and master.cf",
		          "cannot read Postfix's configuration with postconf%s%s",
		          dir != NULL ? " -c " : "", dir != NULL ? dir : "");
		free(p.all);
		free(p.set);
		return false;
	}
	pf_chroot(&p);
	named = pf_check_socket(d, &p, t, &m);
	pf_check_reach(d, &p, t, &m, named);
	pf_check_protocol(d, &p);
	pf_check_action(d, &p);
	pf_check_timeout(d, &p, t->cfg);
	pf_check_recipients(d, &p, t->cfg);
	free(p.all);
	free(p.set);
	free(p.master);
	return true;
}

/* ---- sendmail ------------------------------------------------------------ */

struct sm_filter {
	char name[64];
	char sock[PATH_MAX];
	char flags[32];
	bool has_flags;
	char timeouts[128];
};

struct sm {
	struct sm_filter f[16];
	size_t nf;
	char input[512];         /* O InputMailFilters= */
	char version[32];        /* DZ */
	char local_flags[128];   /* Mlocal F= */
	bool luser_relay;        /* DL set */
	bool virtuser;           /* Kvirtuser */
};

/* "key=value" of an X or M line (fields separated by ", "). */
static bool
field(const char *line, const char *key, char *buf, size_t size)
{
	size_t kl = strlen(key);

	for (const char *s = strchr(line, ','); s != NULL; s = strchr(s, ',')) {
		s++;
		while (*s == ' ' || *s == '\t')
			s++;
		if (strncmp(s, key, kl) == 0 && s[kl] == '=') {
			snprintf(buf, size, "%.*s", (int)strcspn(s + kl + 1, ","),
			         s + kl + 1);
			return true;
		}
	}
	return false;
}

static void
sm_line(struct sm *s, const char *line)
{
	if (line[0] == 'X' && s->nf < FG_NELEM(s->f)) {
		struct sm_filter *f = &s->f[s->nf++];

		snprintf(f->name, sizeof(f->name), "%.*s",
		         (int)strcspn(line + 1, ", "), line + 1);
		field(line, "S", f->sock, sizeof(f->sock));
		f->has_flags = field(line, "F", f->flags, sizeof(f->flags));
		field(line, "T", f->timeouts, sizeof(f->timeouts));
	} else if (strncmp(line, "O InputMailFilters=", 19) == 0) {
		snprintf(s->input, sizeof(s->input), "%s", line + 19);
	} else if (strncmp(line, "DZ", 2) == 0) {
		snprintf(s->version, sizeof(s->version), "%s", line + 2);
	} else if (strncmp(line, "Mlocal,", 7) == 0) {
		field(line, "F", s->local_flags, sizeof(s->local_flags));
	} else if (strncmp(line, "DL", 2) == 0 && line[2] != '\0') {
		s->luser_relay = true;
	} else if (strncmp(line, "Kvirtuser ", 10) == 0) {
		s->virtuser = true;
	}
}

static bool
sm_read(struct sm *s, const char *path)
{
	char line[4096];
	FILE *fp = fopen(path, "r");

	if (fp == NULL)
		return false;
	while (fgets(line, sizeof(line), fp) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		sm_line(s, line);
	}
	fclose(fp);
	return true;
}

/* The R: of a T= value; sendmail's default is 10 s. */
static int64_t
sm_reply_timeout(const char *t)
{
	const char *r = strstr(t, "R:");
	char buf[32];
	int64_t ms;

	if (r == NULL || (r != t && r[-1] != ';'))
		return 10000;
	snprintf(buf, sizeof(buf), "%.*s", (int)strcspn(r + 2, ";"), r + 2);
	return mta_time(buf, &ms) ? ms : -1;
}

static bool
version_at_least(const char *v, int major, int minor)
{
	const char *dot = strchr(v, '.');
	long a = leading(v), b = dot != NULL ? leading(dot + 1) : 0;

	return a > major || (a == major && b >= minor);
}

/* The filter in InputMailFilters whose S= is floodgate's socket. */
static const struct sm_filter *
sm_find(struct dr *d, const struct sm *s, const struct dr_target *t)
{
	char fix[PATH_MAX + 160];
	struct dr_sock m;

	snprintf(fix, sizeof(fix), "INPUT_MAIL_FILTER(`floodgate', `S=%s, "
	         "F=T, T=C:10s;S:10s;R:10s;E:30s') in sendmail.mc, then "
	         "rebuild sendmail.cf", t->cfg->socket);
	for (size_t i = 0; i < s->nf; i++) {
		const struct sm_filter *f = &s->f[i];

		if (dr_sock_milter(f->sock, &m) != 0 ||
		    !dr_sock_same(&m, &t->fg, ""))
			continue;
		if (!in_list(s->input, f->name)) {
			dr_report(d, DR_FAIL, "sendmail-socket", fix, "filter "
			          "%s names floodgate's socket but is not in "
			          "InputMailFilters (%s)", f->name, s->input);
			return NULL;
		}
		dr_report(d, DR_OK, "sendmail-socket", NULL, "filter %s in "
		          "InputMailFilters names floodgate's socket as %s",
		          f->name, f->sock);
		return f;
	}
	dr_report(d, DR_FAIL, "sendmail-socket", fix, "no filter in "
	          "InputMailFilters (%s) names floodgate's socket %s",
	          s->input[0] ? s->input : "none", t->cfg->socket);
	return NULL;
}

static void
sm_check_reach(struct dr *d, const struct sm_filter *f,
               const struct dr_target *t)
{
	char why[1024], dir[PATH_MAX];
	struct dr_sock m;
	char *slash;

	if (f == NULL) {
		dr_report(d, DR_WARN, "sendmail-reach", "see sendmail-socket",
		          "not checked: sendmail names no floodgate socket");
		return;
	}
	if (dr_sock_milter(f->sock, &m) != 0 || m.kind != DR_UNIX) {
		dr_report(d, DR_OK, "sendmail-reach", NULL, "an inet socket");
		return;
	}
	if (dr_reach("", m.path, "root", why, sizeof(why)) != 0) {
		dr_report(d, DR_FAIL, "sendmail-reach", "start floodgate, and "
		          "check its socket setting", "%s", why);
		return;
	}
	/* sendmail refuses a socket in a group- or world-writable
	 * directory ("unsafe"). */
	snprintf(dir, sizeof(dir), "%s", m.path);
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir)
		*slash = '\0';
	{
		struct stat sb;

		if (stat(dir, &sb) == 0 && (sb.st_mode & 022) != 0 &&
		    (sb.st_mode & 01000) == 0) {
			dr_report(d, DR_FAIL, "sendmail-reach", "chmod go-w "
			          "the directory, or move the socket",
			          "%s is group or world writable: sendmail "
			          "calls the socket unsafe", dir);
			return;
		}
	}
	dr_report(d, DR_OK, "sendmail-reach", NULL, "sendmail connects as "
	          "root, without chroot, to the socket %s", m.path);
}

static void
sm_checks(struct dr *d, const struct sm *s, const struct sm_filter *f,
          const struct dr_target *t)
{
	int64_t r;

	if (version_at_least(s->version, 8, 14))
		dr_report(d, DR_OK, "sendmail-protocol", NULL, "sendmail %s "
		          "speaks milter protocol 6", s->version);
	else
		dr_report(d, DR_WARN, "sendmail-protocol", "sendmail 8.14 or "
		          "later", "sendmail.cf is of version '%s': milter "
		          "protocol 6 needs 8.14", s->version);
	if (f == NULL)
		return;
	if (strchr(f->flags, 'R') != NULL)
		dr_report(d, DR_FAIL, "sendmail-default-action", "F=T",
		          "F=%s: every message is refused with 5xx while "
		          "floodgate is down", f->flags);
	else if (strchr(f->flags, 'T') != NULL)
		dr_report(d, DR_OK, "sendmail-default-action", NULL, "F=%s: "
		          "mail is tempfailed while floodgate is down",
		          f->flags);
	else if (f->has_flags)
		dr_report(d, DR_OK, "sendmail-default-action", NULL, "F= "
		          "empty, set on purpose: mail flows unchecked while "
		          "floodgate is down");
	else
		dr_report(d, DR_WARN, "sendmail-default-action", "F=T "
		          "(tempfail), or F= to let mail through unchecked",
		          "no F= in the filter: what happens while floodgate "
		          "is down was not chosen");
	if ((r = sm_reply_timeout(f->timeouts)) < 0)
		dr_report(d, DR_WARN, "sendmail-timeout", NULL, "T=%s: not "
		          "understood", f->timeouts);
	else
		timeout_check(d, "sendmail-timeout", t->cfg, "the filter's "
		              "T=R:", r, "T=...;R:", " in the filter, or a "
		              "smaller max_delay in floodgate.conf");
}

static void
sm_check_recipients(struct dr *d, const struct sm *s,
                    const struct dr_target *t)
{
	static const char own[] = "valid_recipients in floodgate.conf";

	if (t->cfg->valid_recipients[0] != '\0') {
		dr_report(d, DR_OK, "sendmail-recipients", NULL, "floodgate "
		          "checks recipients against its own list %s",
		          t->cfg->valid_recipients);
		return;
	}
	if (s->luser_relay) {
		dr_report(d, DR_FAIL, "sendmail-recipients", own, "a luser "
		          "relay (LUSER_RELAY) takes mail for unknown local "
		          "users: floodgate counts nothing");
		return;
	}
	if (strchr(s->local_flags, 'w') == NULL) {
		dr_report(d, DR_WARN, "sendmail-recipients", own, "the local "
		          "mailer lacks F=w: unknown local users may be "
		          "accepted at RCPT time");
		return;
	}
	if (s->virtuser) {
		dr_report(d, DR_WARN, "sendmail-recipients", own, "unknown "
		          "local users are refused at RCPT time, but a "
		          "virtusertable's error: entries never reach "
		          "floodgate");
		return;
	}
	dr_report(d, DR_OK, "sendmail-recipients", NULL, "sendmail refuses "
	          "unknown local users at RCPT time (local mailer F=w)");
}

bool
dr_sendmail(struct dr *d, const struct dr_target *t, const char *cf)
{
	struct sm *s = xcalloc(1, sizeof(*s));
	const struct sm_filter *f;

	if (!sm_read(s, cf)) {
		dr_report(d, DR_FAIL, "sendmail-config", "--sendmail-cf FILE",
		          "cannot read %s", cf);
		free(s);
		return false;
	}
	f = sm_find(d, s, t);
	sm_check_reach(d, f, t);
	sm_checks(d, s, f, t);
	sm_check_recipients(d, s, t);
	free(s);
	return true;
}
