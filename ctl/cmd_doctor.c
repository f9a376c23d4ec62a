/*
 * cmd_doctor.c - "floodgatectl doctor": does the MTA really talk to
 * floodgate?  The mistakes it looks for fail silently otherwise: a socket
 * the MTA cannot open (chroot, modes), a timeout shorter than floodgate's
 * longest delay, unknown recipients accepted at RCPT time (nothing is
 * ever counted), and a daemon that is not running.
 *
 * This file: the command, the report, the socket helpers, the check of
 * the live daemon.  The MTAs' configurations: doctor_mta.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <poll.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libmilter/mfdef.h>

#include "ctl.h"
#include "doctor.h"
#include "fg.h"

#define DR_SENDMAIL_CF "/etc/mail/sendmail.cf"
#define DR_IO_MS 5000

struct dr_row {
	enum dr_level level;
	char *check, *detail, *fix;
};

struct dr {
	bool json;
	enum dr_level worst;
	struct dr_row *rows;
	size_t n, cap;
};

static const char *const level_name[] = {"OK", "WARN", "FAIL"};

void
dr_report(struct dr *d, enum dr_level level, const char *check,
          const char *fix, const char *fmt, ...)
{
	char detail[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	if (level > d->worst)
		d->worst = level;
	if (!d->json) {
		printf("%-4s  %s: %s", level_name[level], check, san(detail));
		if (fix != NULL && level != DR_OK)
			printf("; fix: %s", san(fix));
		putchar('\n');
		fflush(stdout);
		return;
	}
	if (d->n == d->cap) {
		d->cap = d->cap ? 2 * d->cap : 16;
		d->rows = xrealloc(d->rows, d->cap * sizeof(*d->rows));
	}
	d->rows[d->n++] = (struct dr_row){
		level, xstrdup(check), xstrdup(detail),
		fix != NULL && level != DR_OK ? xstrdup(fix) : NULL,
	};
}

/* ---- sockets --------------------------------------------------------------- */

static int
set_path(struct dr_sock *s, const char *p)
{
	if (p[0] != '/' || strlen(p) >= sizeof(s->path))
		return -1;
	s->kind = DR_UNIX;
	snprintf(s->path, sizeof(s->path), "%s", p);
	return 0;
}

static int
set_port(struct dr_sock *s, const char *p, size_t len)
{
	char buf[8];
	char *end;
	unsigned long v;

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, p, len);
	buf[len] = '\0';
	v = strtoul(buf, &end, 10);
	if (*end != '\0' || v == 0 || v > 65535)
		return -1;
	s->port = (unsigned)v;
	return 0;
}

static int
set_host(struct dr_sock *s, const char *p, size_t len)
{
	if (len >= sizeof(s->host))
		return -1;
	memcpy(s->host, p, len);
	s->host[len] = '\0';
	return 0;
}

int
dr_sock_milter(const char *spec, struct dr_sock *s)
{
	const char *at;

	memset(s, 0, sizeof(*s));
	if (strncmp(spec, "unix:", 5) == 0)
		return set_path(s, spec + 5);
	if (strncmp(spec, "local:", 6) == 0)
		return set_path(s, spec + 6);
	if (spec[0] == '/')
		return set_path(s, spec);
	if (strncmp(spec, "inet:", 5) == 0) {
		s->kind = DR_INET;
		spec += 5;
	} else if (strncmp(spec, "inet6:", 6) == 0) {
		s->kind = DR_INET6;
		spec += 6;
	} else {
		return -1;
	}
	if ((at = strchr(spec, '@')) == NULL)
		return set_port(s, spec, strlen(spec));
	if (set_port(s, spec, (size_t)(at - spec)) != 0)
		return -1;
	return set_host(s, at + 1, strlen(at + 1));
}

int
dr_sock_postfix(const char *spec, struct dr_sock *s)
{
	const char *colon;

	memset(s, 0, sizeof(*s));
	if (strncmp(spec, "unix:", 5) == 0)
		return set_path(s, spec + 5);
	if (strncmp(spec, "local:", 6) == 0)
		return set_path(s, spec + 6);
	if (strncmp(spec, "inet:", 5) != 0)
		return -1;
	spec += 5;
	s->kind = DR_INET;
	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');

		if (close == NULL || close[1] != ':')
			return -1;
		s->kind = DR_INET6;
		if (set_host(s, spec + 1, (size_t)(close - spec - 1)) != 0)
			return -1;
		return set_port(s, close + 2, strlen(close + 2));
	}
	if ((colon = strrchr(spec, ':')) == NULL)
		return set_port(s, spec, strlen(spec));
	if (set_host(s, spec, (size_t)(colon - spec)) != 0)
		return -1;
	return set_port(s, colon + 1, strlen(colon + 1));
}

static bool
any_host(const char *h)
{
	return h[0] == '\0' || strcmp(h, "0.0.0.0") == 0 ||
	       strcmp(h, "::") == 0 || strcmp(h, "*") == 0;
}

static const char *
loopback(const char *h)
{
	if (strcmp(h, "localhost") == 0)
		return "127.0.0.1";
	if (strcmp(h, "ip6-localhost") == 0)
		return "::1";
	return h;
}

bool
dr_sock_same(const struct dr_sock *m, const struct dr_sock *f,
             const char *root)
{
	char p[2 * PATH_MAX];

	if (m->kind == DR_UNIX || f->kind == DR_UNIX) {
		if (m->kind != f->kind)
			return false;
		snprintf(p, sizeof(p), "%s%s", root, m->path);
		return strcmp(p, f->path) == 0;
	}
	if (m->port != f->port)
		return false;
	return any_host(f->host) ||
	       strcmp(loopback(m->host), loopback(f->host)) == 0;
}

/* ---- can user reach a unix socket? ---------------------------------------- */

struct who {
	uid_t uid;
	gid_t gid;
	gid_t groups[64];
	int ngroups;
};

static bool
who_in(const struct who *w, gid_t g)
{
	for (int i = 0; i < w->ngroups; i++)
		if (w->groups[i] == g)
			return true;
	return w->gid == g;
}

/* The permission bits of sb that apply to w (rwx in the low 3 bits). */
static unsigned
who_bits(const struct who *w, const struct stat *sb)
{
	if (w->uid == 0)
		return 7;
	if (sb->st_uid == w->uid)
		return (sb->st_mode >> 6) & 7;
	if (who_in(w, sb->st_gid))
		return (sb->st_mode >> 3) & 7;
	return sb->st_mode & 7;
}

static const char *
owner(const struct stat *sb)
{
	static char buf[160];
	struct passwd *pw = getpwuid(sb->st_uid);
	struct group *gr = getgrgid(sb->st_gid);
	char u[64], g[64];

	if (pw != NULL)
		snprintf(u, sizeof(u), "%s", pw->pw_name);
	else
		snprintf(u, sizeof(u), "%ld", (long)sb->st_uid);
	if (gr != NULL)
		snprintf(g, sizeof(g), "%s", gr->gr_name);
	else
		snprintf(g, sizeof(g), "%ld", (long)sb->st_gid);
	snprintf(buf, sizeof(buf), "%04o %s:%s",
	         (unsigned)(sb->st_mode & 07777), u, g);
	return buf;
}

/* Connects to path from a child that chroots to root and becomes w. */
static int
try_connect_as(const struct who *w, const char *root, const char *path)
{
	struct sockaddr_un sun;
	pid_t pid;
	int st;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		return ENAMETOOLONG;
	memcpy(sun.sun_path, path, strlen(path));
	fflush(stdout);
	if ((pid = fork()) < 0)
		return errno;
	if (pid == 0) {
		int fd;

		if ((root[0] != '\0' && chroot(root) != 0) || chdir("/") != 0 ||
		    setgroups((size_t)w->ngroups, w->groups) != 0 ||
		    setgid(w->gid) != 0 || setuid(w->uid) != 0)
			_exit(120);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0)
			_exit(121);
		/* Refused: the way is open, nobody listens (the live
		 * check tells that). */
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 &&
		    errno != ECONNREFUSED)
			_exit(errno > 0 && errno < 120 ? errno : 122);
		close(fd);
		_exit(0);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return errno;
	if (!WIFEXITED(st))
		return EINTR;
	return WEXITSTATUS(st) >= 120 ? EPERM : WEXITSTATUS(st);
}

int
dr_reach(const char *root, const char *path, const char *user, char *why,
         size_t size)
{
	char full[2 * PATH_MAX], cur[2 * PATH_MAX];
	struct passwd *pw = getpwnam(user);
	struct stat sb;
	struct who w;
	int e;

	if (pw == NULL) {
		snprintf(why, size, "there is no user %s", user);
		return -1;
	}
	w.uid = pw->pw_uid;
	w.gid = pw->pw_gid;
	w.ngroups = (int)(sizeof(w.groups) / sizeof(w.groups[0]));
	if (getgrouplist(pw->pw_name, pw->pw_gid, w.groups, &w.ngroups) < 0)
		w.ngroups = 0;
	snprintf(full, sizeof(full), "%s%s", root, path);
	if (lstat(full, &sb) != 0) {
		snprintf(why, size, "%s: %s", full, strerror(errno));
		return -1;
	}
	if (!S_ISSOCK(sb.st_mode)) {
		snprintf(why, size, "%s is not a socket", full);
		return -1;
	}
	/* Every directory from the root of what the MTA sees down. */
	snprintf(cur, sizeof(cur), "%s", root[0] != '\0' ? root : "/");
	for (const char *q = path;;) {
		if (stat(cur, &sb) != 0) {
			snprintf(why, size, "%s: %s", cur, strerror(errno));
			return -1;
		}
		if ((who_bits(&w, &sb) & 1) == 0) {
			snprintf(why, size, "user %s cannot enter %s (%s)",
			         user, cur, owner(&sb));
			return -1;
		}
		if ((q = strchr(q + 1, '/')) == NULL)
			break;
		snprintf(cur, sizeof(cur), "%s%.*s", root, (int)(q - path), path);
	}
	if (stat(full, &sb) != 0 || (who_bits(&w, &sb) & 2) == 0) {
		snprintf(why, size, "user %s cannot write to the socket %s "
		         "(%s)", user, full, owner(&sb));
		return -1;
	}
	if (geteuid() != 0)
		return 0;
	if ((e = try_connect_as(&w, root, path)) != 0) {
		snprintf(why, size, "connecting to %s as user %s%s%s: %s", path,
		         user, root[0] ? " inside the chroot " : "", root,
		         strerror(e));
		return -1;
	}
	return 0;
}

/* ---- running postconf ------------------------------------------------------ */

const char *
dr_which(const char *prog, char *buf, size_t size)
{
	static const char *const dirs[] = {"/usr/sbin", "/usr/bin", "/sbin",
	                                   "/bin", "/usr/local/sbin"};

	for (size_t i = 0; i < FG_NELEM(dirs); i++) {
		snprintf(buf, size, "%s/%s", dirs[i], prog);
		if (access(buf, X_OK) == 0)
			return buf;
	}
	return NULL;
}

char *
dr_run(const char *const argv[])
{
	char *out = NULL;
	size_t len = 0, cap = 0;
	int fds[2], st;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) != 0)
		return NULL;
	fflush(stdout);
	if ((pid = fork()) < 0) {
		close(fds[0]);
		close(fds[1]);
		return NULL;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		if (null < 0 || dup2(null, 0) < 0 || dup2(null, 2) < 0 ||
		    dup2(fds[1], 1) < 0)
			_exit(127);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	for (;;) {
		ssize_t n;

		if (cap - len < 4096) {
			cap = cap ? 2 * cap : 16384;
			out = xrealloc(out, cap);
		}
		n = read(fds[0], out + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fds[0]);
	out[len] = '\0';
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			break;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

/* ---- the live daemon ------------------------------------------------------ */

static int
open_sock(const struct dr_sock *s, char *err, size_t size)
{
	int fd = -1;

	if (s->kind == DR_UNIX) {
		struct sockaddr_un sun;

		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		if (strlen(s->path) >= sizeof(sun.sun_path)) {
			snprintf(err, size, "path too long");
			return -1;
		}
		memcpy(sun.sun_path, s->path, strlen(s->path));
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 &&
		    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
			return fd;
	} else {
		struct addrinfo hints, *ai = NULL;
		char port[8];
		const char *host = any_host(s->host)
		                       ? (s->kind == DR_INET6 ? "::1"
		                                              : "127.0.0.1")
		                       : s->host;
		int rc;

		memset(&hints, 0, sizeof(hints));
		hints.ai_family = s->kind == DR_INET6 ? AF_INET6 : AF_INET;
		hints.ai_socktype = SOCK_STREAM;
		snprintf(port, sizeof(port), "%u", s->port);
		if ((rc = getaddrinfo(host, port, &hints, &ai)) != 0) {
			snprintf(err, size, "%s: %s", host, gai_strerror(rc));
			return -1;
		}
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			freeaddrinfo(ai);
			return fd;
		}
		freeaddrinfo(ai);
	}
	snprintf(err, size, "%s", strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

static int
read_full(int fd, unsigned char *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		struct pollfd pfd = {fd, POLLIN, 0};
		ssize_t r;

		if (poll(&pfd, 1, DR_IO_MS) <= 0)
			return -1;
		r = read(fd, buf + got, n - got);
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

/* SMFIC_OPTNEG as an MTA sends it; 0 and the milter's version if the
 * answer is SMFIC_OPTNEG, else -1 and why. */
static int
negotiate(const struct dr_sock *s, uint32_t *version, char *err,
          size_t size)
{
	unsigned char pkt[17], hdr[5], body[4096];
	uint32_t v[4] = {htonl(13), htonl(SMFI_PROT_VERSION),
	                 htonl(SMFI_CURR_ACTS), htonl(0x001FFFFF)};
	uint32_t len;
	int fd;

	if ((fd = open_sock(s, err, size)) < 0)
		return -1;
	memcpy(pkt, &v[0], 4);
	pkt[4] = SMFIC_OPTNEG;
	memcpy(pkt + 5, &v[1], 12);
	if (write(fd, pkt, sizeof(pkt)) != (ssize_t)sizeof(pkt) ||
	    read_full(fd, hdr, 5) != 0) {
		snprintf(err, size, "no answer within %d s", DR_IO_MS / 1000);
		close(fd);
		return -1;
	}
	memcpy(&len, hdr, 4);
	len = ntohl(len);
	if (hdr[4] != SMFIC_OPTNEG || len < 13 || len > sizeof(body) + 1 ||
	    read_full(fd, body, len - 1) != 0) {
		snprintf(err, size, "answered '%c' (0x%02x) instead of "
		         "SMFIC_OPTNEG", hdr[4] >= 0x20 && hdr[4] < 0x7f
		         ? hdr[4] : '?', hdr[4]);
		close(fd);
		return -1;
	}
	memcpy(version, body, 4);
	*version = ntohl(*version);
	/* SMFIC_QUIT: a polite end, as an MTA would. */
	{
		unsigned char quit[5] = {0, 0, 0, 1, SMFIC_QUIT};

		if (write(fd, quit, sizeof(quit)) < 0) {
			/* gone already: nothing to tell */
		}
	}
	close(fd);
	return 0;
}

static void
check_live(struct dr *d, const struct fg_config *cfg,
           const struct dr_sock *s)
{
	char err[300];
	uint32_t version = 0;

	if (negotiate(s, &version, err, sizeof(err)) != 0) {
		dr_report(d, DR_FAIL, "floodgate-answers",
		          "start floodgate (systemctl start floodgate; its "
		          "reasons: journalctl -u floodgate)",
		          "no milter negotiation on %s: %s", cfg->socket, err);
		return;
	}
	dr_report(d, DR_OK, "floodgate-answers", NULL, "floodgate answers a "
	          "milter negotiation on %s (protocol version %u)",
	          cfg->socket, (unsigned)version);
}

/* ---- the command ------------------------------------------------------------ */

enum { O_POSTFIX = CTL_OPT_BASE, O_SENDMAIL };

struct doc_opts {
	const char *postfix, *sendmail;
};

static int
doc_opt(void *arg, int id, const char *value)
{
	struct doc_opts *o = arg;

	if (id == O_POSTFIX)
		o->postfix = value;
	else
		o->sendmail = value;
	return CTL_OK;
}

static void
print_json(struct dr *d)
{
	struct json *j = json_new(stdout);

	json_obj(j);
	json_kstr(j, "worst", level_name[d->worst]);
	json_key(j, "checks");
	json_arr(j);
	for (size_t i = 0; i < d->n; i++) {
		json_obj(j);
		json_kstr(j, "level", level_name[d->rows[i].level]);
		json_kstr(j, "check", d->rows[i].check);
		json_kstr(j, "detail", d->rows[i].detail);
		json_kstr(j, "fix", d->rows[i].fix);
		json_end(j);
	}
	json_end(j);
	json_end(j);
	json_finish(j);
}

static void
free_rows(struct dr *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->rows[i].check);
		free(d->rows[i].detail);
		free(d->rows[i].fix);
	}
	free(d->rows);
}

/* Which MTAs to check: those named, else those installed. */
static void
check_mtas(struct dr *d, const struct dr_target *t,
           const struct doc_opts *o)
{
	char buf[PATH_MAX];
	bool pf = o->postfix != NULL, sm = o->sendmail != NULL;

	if (!pf && !sm) {
		pf = dr_which("postconf", buf, sizeof(buf)) != NULL;
		sm = access(DR_SENDMAIL_CF, R_OK) == 0;
	}
	if (!pf && !sm) {
		dr_report(d, DR_FAIL, "mta", "install Postfix or sendmail, or "
		          "name its configuration (--postfix-config DIR, "
		          "--sendmail-cf FILE)",
		          "found neither postconf nor %s", DR_SENDMAIL_CF);
		return;
	}
	if (pf)
		dr_postfix(d, t, o->postfix);
	if (sm)
		dr_sendmail(d, t, o->sendmail != NULL ? o->sendmail
		                                      : DR_SENDMAIL_CF);
}

int
cmd_doctor(struct ctl *c, int argc, char **argv)
{
	static const struct ctl_opt opts[] = {
		{"postfix-config", true, O_POSTFIX},
		{"sendmail-cf", true, O_SENDMAIL},
		{NULL, false, 0},
	};
	struct doc_opts o = {NULL, NULL};
	struct fg_config *cfg = NULL;
	struct dr d = {.json = false};
	struct dr_target t;
	size_t npos;
	int rc;

	if ((rc = ctl_parse(c, argc, argv, opts, doc_opt, &o, NULL, 0, &npos,
	                    "doctor [--postfix-config DIR] "
	                    "[--sendmail-cf FILE]")) != CTL_OK)
		return rc;
	d.json = c->json;
	if (ctl_load_config(c->conf_path, false, &cfg) != CTL_OK) {
		dr_report(&d, DR_FAIL, "floodgate-config", "floodgate -n -c "
		          "FILE shows every error", "%s cannot be loaded",
		          c->conf_path);
		goto out;
	}
	memset(&t, 0, sizeof(t));
	t.cfg = cfg;
	if (dr_sock_milter(cfg->socket, &t.fg) != 0) {
		dr_report(&d, DR_FAIL, "floodgate-config", NULL,
		          "socket %s: not understood", cfg->socket);
		goto out;
	}
	dr_report(&d, DR_OK, "floodgate-config", NULL, "%s: socket %s, "
	          "max_delay %s", cfg->path, cfg->socket,
	          fmt_duration(cfg->max_delay_ms));
	check_mtas(&d, &t, &o);
	check_live(&d, cfg, &t.fg);
out:
	if (d.json)
		print_json(&d);
	free_rows(&d);
	if (cfg != NULL)
		fg_config_release(cfg);
	return (int)d.worst;
}
