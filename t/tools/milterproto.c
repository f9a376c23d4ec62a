/*
 * milterproto.c - the MTA side of the milter protocol, version 6.
 *
 * Wire format (both directions): a 32-bit length in network byte order,
 * counting what follows it; one command byte; the command's data.  Strings
 * are NUL-terminated, numbers 32-bit (ports 16-bit) in network order.
 *
 * The socket is non-blocking from mp_open() on: every connect, read and
 * write waits in poll() against a deadline, so no call outlives the
 * configured timeout (a progress packet restarts it, as in Postfix).
 */
#include "milterproto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct mp_conn {
	int fd;                   /* -1 once closed or broken */
	int timeout_ms;
	size_t max_packet;
	bool send_all;
	bool negotiated;
	bool skip_body;           /* the milter answered SMFIR_SKIP to a chunk */
	uint32_t version;         /* the milter's answer to OPTNEG */
	uint32_t actions;
	uint32_t protocol;
	char *symlist[MP_STAGE_COUNT];
	unsigned char *buf;       /* the last packet read, NUL-terminated */
	size_t bufsize;
	char err[512];
};

/* A packet being built for sending. */
struct pkt {
	unsigned char *p;
	size_t len;
	size_t cap;
	bool oom;
};

const char *
mp_strerror(int code)
{
	switch (code) {
	case MP_OK: return "success";
	case MP_E_SYS: return "system call failed";
	case MP_E_TIMEOUT: return "timeout";
	case MP_E_CLOSED: return "connection closed by the milter";
	case MP_E_PROTO: return "protocol error";
	case MP_E_TOOBIG: return "packet too large";
	case MP_E_SPEC: return "bad socket specification";
	case MP_E_STATE: return "not valid in this state";
	case MP_E_INVAL: return "invalid argument";
	case MP_E_NOMEM: return "out of memory";
	default: return "unknown error";
	}
}

const char *
mp_kind_name(enum mp_kind kind)
{
	switch (kind) {
	case MP_K_NONE: return "none";
	case MP_K_CONTINUE: return "continue";
	case MP_K_ACCEPT: return "accept";
	case MP_K_REJECT: return "reject";
	case MP_K_TEMPFAIL: return "tempfail";
	case MP_K_DISCARD: return "discard";
	case MP_K_REPLYCODE: return "replycode";
	case MP_K_SKIP: return "skip";
	case MP_K_SHUTDOWN: return "shutdown";
	case MP_K_CONNFAIL: return "connfail";
	case MP_K_OPTNEG: return "optneg";
	case MP_K_NOREPLY: return "noreply";
	case MP_K_SKIPPED: return "skipped";
	case MP_K_SENT: return "sent";
	case MP_K_PACKET: return "packet";
	}
	return "?";
}

int64_t
mp_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void
mp_reply_free(struct mp_reply *r)
{
	if (r == NULL)
		return;
	free(r->text);
	for (size_t i = 0; i < r->nmods; i++)
		free(r->mods[i].desc);
	free(r->mods);
	free(r->data);
	memset(r, 0, sizeof(*r));
}

char *
mp_protocol_names(uint32_t flags, char *buf, size_t size)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} names[] = {
		{ SMFIP_NOCONNECT, "NOCONNECT" }, { SMFIP_NOHELO, "NOHELO" },
		{ SMFIP_NOMAIL, "NOMAIL" }, { SMFIP_NORCPT, "NORCPT" },
		{ SMFIP_NOBODY, "NOBODY" }, { SMFIP_NOHDRS, "NOHDRS" },
		{ SMFIP_NOEOH, "NOEOH" }, { SMFIP_NR_HDR, "NR_HDR" },
		{ SMFIP_NOUNKNOWN, "NOUNKNOWN" }, { SMFIP_NODATA, "NODATA" },
		{ SMFIP_SKIP, "SKIP" }, { SMFIP_RCPT_REJ, "RCPT_REJ" },
		{ SMFIP_NR_CONN, "NR_CONN" }, { SMFIP_NR_HELO, "NR_HELO" },
		{ SMFIP_NR_MAIL, "NR_MAIL" }, { SMFIP_NR_RCPT, "NR_RCPT" },
		{ SMFIP_NR_DATA, "NR_DATA" }, { SMFIP_NR_UNKN, "NR_UNKN" },
		{ SMFIP_NR_EOH, "NR_EOH" }, { SMFIP_NR_BODY, "NR_BODY" },
		{ SMFIP_HDR_LEADSPC, "HDR_LEADSPC" },
		{ SMFIP_MDS_256K, "MDS_256K" }, { SMFIP_MDS_1M, "MDS_1M" },
	};
	size_t used = 0;
	uint32_t rest = flags;

	if (size == 0)
		return buf;
	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if ((flags & names[i].bit) == 0)
			continue;
		rest &= ~names[i].bit;
		int n = snprintf(buf + used, size - used, "%s%s",
		                 used ? "|" : "", names[i].name);
		if (n < 0 || (size_t)n >= size - used)
			return buf;
		used += (size_t)n;
	}
	if (rest != 0)
		snprintf(buf + used, size - used, "%s0x%x", used ? "|" : "",
		         (unsigned)rest);
	return buf;
}

/* ---- errors ---- */

static int fail(mp_conn *c, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
fail(mp_conn *c, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	return code;
}

/* A failure that leaves the stream out of step: close it (Postfix
 * "poisons" the socket the same way). */
static void
mp_break(mp_conn *c)
{
	if (c->fd >= 0) {
		(void)shutdown(c->fd, SHUT_RDWR);
		(void)close(c->fd);
		c->fd = -1;
	}
	c->negotiated = false;
}

static int
broken(mp_conn *c, int code)
{
	mp_break(c);
	return code;
}

/* ---- waiting, reading, writing ---- */

static int64_t
deadline_after(const mp_conn *c)
{
	return mp_now_us() + (int64_t)c->timeout_ms * 1000;
}

/* 0 when fd is ready for events, else MP_E_TIMEOUT or MP_E_SYS. */
static int
wait_fd(mp_conn *c, short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - mp_now_us();
		if (left <= 0)
			return fail(c, MP_E_TIMEOUT, "no answer within %d ms",
			            c->timeout_ms);
		struct pollfd p = { .fd = c->fd, .events = events };
		int ms = (int)((left + 999) / 1000);
		int n = poll(&p, 1, ms);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return fail(c, MP_E_SYS, "poll: %s", strerror(errno));
	}
}

static int
write_all(mp_conn *c, const unsigned char *p, size_t len, int64_t deadline)
{
	while (len > 0) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int rc = wait_fd(c, POLLOUT, deadline);
			if (rc < 0)
				return rc;
			continue;
		}
		if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
			return fail(c, MP_E_CLOSED, "write: %s",
			            strerror(errno));
		return fail(c, MP_E_SYS, "write: %s",
		            n < 0 ? strerror(errno) : "wrote nothing");
	}
	return 0;
}

/* Reads exactly len bytes.  what names them for the error text. */
static int
read_full(mp_conn *c, unsigned char *p, size_t len, int64_t deadline,
          const char *what)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = recv(c->fd, p + got, len - got, 0);
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (n == 0)
			return fail(c, MP_E_CLOSED,
			            "connection closed by the milter (%s, "
			            "%zu of %zu bytes)", what, got, len);
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			int rc = wait_fd(c, POLLIN, deadline);
			if (rc < 0) {
				if (rc == MP_E_TIMEOUT)
					fail(c, rc, "no %s within %d ms (%zu of "
					     "%zu bytes)", what, c->timeout_ms,
					     got, len);
				return rc;
			}
			continue;
		}
		if (errno == ECONNRESET)
			return fail(c, MP_E_CLOSED, "read %s: %s", what,
			            strerror(errno));
		return fail(c, MP_E_SYS, "read %s: %s", what, strerror(errno));
	}
	return 0;
}

/*
 * Reads one packet: *cmd, and its data (NUL-terminated, in c->buf) with
 * *len bytes.  Lengths outside 1..max_packet are errors.
 */
static int
read_packet(mp_conn *c, char *cmd, size_t *len, int64_t deadline)
{
	unsigned char hdr[MILTER_LEN_BYTES + 1];
	uint32_t nlen;
	int rc;

	if ((rc = read_full(c, hdr, MILTER_LEN_BYTES, deadline,
	                    "reply length")) < 0)
		return rc;
	memcpy(&nlen, hdr, sizeof(nlen));
	nlen = ntohl(nlen);
	if (nlen < 1)
		return fail(c, MP_E_PROTO, "bad packet length 0");
	if (nlen > c->max_packet)
		return fail(c, MP_E_TOOBIG, "packet length %lu over the limit "
		            "%zu", (unsigned long)nlen, c->max_packet);
	if ((rc = read_full(c, hdr + MILTER_LEN_BYTES, 1, deadline,
	                    "reply command")) < 0)
		return rc;
	*cmd = (char)hdr[MILTER_LEN_BYTES];
	*len = (size_t)nlen - 1;
	if (c->bufsize < *len + 1) {
		unsigned char *nb = realloc(c->buf, *len + 1);
		if (nb == NULL)
			return fail(c, MP_E_NOMEM, "out of memory for a %zu byte "
			            "packet", *len);
		c->buf = nb;
		c->bufsize = *len + 1;
	}
	if ((rc = read_full(c, c->buf, *len, deadline, "reply data")) < 0)
		return rc;
	c->buf[*len] = '\0';
	return 0;
}

/* ---- building packets ---- */

static void
pkt_add(struct pkt *k, const void *p, size_t n)
{
	if (k->oom)
		return;
	if (k->len + n > k->cap) {
		size_t cap = k->cap ? k->cap : 256;
		while (cap < k->len + n)
			cap *= 2;
		unsigned char *np = realloc(k->p, cap);
		if (np == NULL) {
			k->oom = true;
			return;
		}
		k->p = np;
		k->cap = cap;
	}
	if (n > 0)
		memcpy(k->p + k->len, p, n);
	k->len += n;
}

static void
pkt_start(struct pkt *k, char cmd)
{
	unsigned char hdr[MILTER_LEN_BYTES + 1] = { 0 };

	memset(k, 0, sizeof(*k));
	hdr[MILTER_LEN_BYTES] = (unsigned char)cmd;
	pkt_add(k, hdr, sizeof(hdr));
}

static void
pkt_str(struct pkt *k, const char *s)
{
	pkt_add(k, s, strlen(s) + 1);
}

static void
pkt_u32(struct pkt *k, uint32_t v)
{
	uint32_t n = htonl(v);

	pkt_add(k, &n, sizeof(n));
}

static void
pkt_u16(struct pkt *k, uint16_t v)
{
	uint16_t n = htons(v);

	pkt_add(k, &n, sizeof(n));
}

/* Fills in the length word and sends; frees the packet. */
static int
pkt_send(mp_conn *c, struct pkt *k, int64_t deadline)
{
	int rc;

	if (k->oom) {
		free(k->p);
		return fail(c, MP_E_NOMEM, "out of memory building a packet");
	}
	if (k->len - MILTER_LEN_BYTES > UINT32_MAX) {
		free(k->p);
		return fail(c, MP_E_INVAL, "packet too large to send");
	}
	uint32_t n = htonl((uint32_t)(k->len - MILTER_LEN_BYTES));
	memcpy(k->p, &n, sizeof(n));
	rc = write_all(c, k->p, k->len, deadline);
	free(k->p);
	k->p = NULL;
	return rc;
}

/* ---- opening ---- */

static int
connect_fd(int fd, const struct sockaddr *sa, socklen_t salen,
           int64_t deadline, char *err, size_t errlen)
{
	for (;;) {
		if (connect(fd, sa, salen) == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN && sa->sa_family == AF_UNIX) {
			/* Listen queue full: try again until the deadline. */
			if (mp_now_us() >= deadline)
				break;
			struct timespec ts = { 0, 2 * 1000 * 1000 };
			nanosleep(&ts, NULL);
			continue;
		}
		if (errno != EINPROGRESS)
			break;
		for (;;) {
			int64_t left = deadline - mp_now_us();
			if (left <= 0) {
				snprintf(err, errlen, "connect: timeout");
				return MP_E_TIMEOUT;
			}
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			int n = poll(&p, 1, (int)((left + 999) / 1000));
			if (n < 0 && errno != EINTR) {
				snprintf(err, errlen, "poll: %s",
				         strerror(errno));
				return MP_E_SYS;
			}
			if (n > 0)
				break;
		}
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
			soerr = errno;
		if (soerr == 0)
			return 0;
		errno = soerr;
		break;
	}
	snprintf(err, errlen, "connect: %s", strerror(errno));
	return errno == ETIMEDOUT ? MP_E_TIMEOUT : MP_E_SYS;
}

static int
open_unix(const char *path, int64_t deadline, int *fdp, char *err,
          size_t errlen)
{
	struct sockaddr_un sun;
	int fd, rc;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (path[0] == '\0' || strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "unix socket path empty or too long");
		return MP_E_SPEC;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return MP_E_SYS;
	}
	rc = connect_fd(fd, (const struct sockaddr *)&sun, sizeof(sun),
	                deadline, err, errlen);
	if (rc < 0) {
		size_t l = strlen(err);
		snprintf(err + l, errlen - l, " (%s)", path);
		close(fd);
		return rc;
	}
	*fdp = fd;
	return 0;
}

static int
open_inet(int family, const char *portstr, const char *host,
          int64_t deadline, int *fdp, char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL;
	char hostbuf[256];
	int rc, grc;

	if (host == NULL || *host == '\0')
		host = family == AF_INET6 ? "::1" : "127.0.0.1";
	if (host[0] == '[') {
		size_t l = strlen(host);
		if (l < 3 || host[l - 1] != ']' || l - 2 >= sizeof(hostbuf)) {
			snprintf(err, errlen, "bad host \"%s\"", host);
			return MP_E_SPEC;
		}
		memcpy(hostbuf, host + 1, l - 2);
		hostbuf[l - 2] = '\0';
		host = hostbuf;
	}
	if (*portstr == '\0') {
		snprintf(err, errlen, "no port");
		return MP_E_SPEC;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	if ((grc = getaddrinfo(host, portstr, &hints, &res)) != 0) {
		snprintf(err, errlen, "%s port %s: %s", host, portstr,
		         gai_strerror(grc));
		return MP_E_SPEC;
	}
	rc = MP_E_SYS;
	snprintf(err, errlen, "%s: no address", host);
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		int fd = socket(ai->ai_family,
		                ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		                ai->ai_protocol);
		if (fd < 0) {
			snprintf(err, errlen, "socket: %s", strerror(errno));
			continue;
		}
		rc = connect_fd(fd, ai->ai_addr, ai->ai_addrlen, deadline, err,
		                errlen);
		if (rc == 0) {
			*fdp = fd;
			break;
		}
		close(fd);
	}
	freeaddrinfo(res);
	if (rc < 0) {
		size_t l = strlen(err);
		snprintf(err + l, errlen - l, " (%s port %s)", host, portstr);
	}
	return rc;
}

int
mp_open(const char *spec, const struct mp_options *opt, mp_conn **out,
        char *err, size_t errlen)
{
	char dummy[8], *copy = NULL;
	const char *path = NULL;
	int family = 0, fd = -1, rc;
	int timeout_ms = MP_DEFAULT_TIMEOUT_MS;

	if (err == NULL || errlen == 0) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = '\0';
	if (out == NULL || spec == NULL) {
		snprintf(err, errlen, "no socket given");
		return MP_E_INVAL;
	}
	*out = NULL;
	if (opt != NULL && opt->timeout_ms > 0)
		timeout_ms = opt->timeout_ms;
	int64_t deadline = mp_now_us() + (int64_t)timeout_ms * 1000;

	if (strncmp(spec, "unix:", 5) == 0)
		path = spec + 5;
	else if (strncmp(spec, "local:", 6) == 0)
		path = spec + 6;
	else if (spec[0] == '/')
		path = spec;
	else if (strncmp(spec, "inet:", 5) == 0)
		family = AF_INET;
	else if (strncmp(spec, "inet6:", 6) == 0)
		family = AF_INET6;
	else {
		snprintf(err, errlen, "unknown socket type in \"%s\" (want "
		         "unix:/path, local:/path, inet:PORT@HOST or "
		         "inet6:PORT@HOST)", spec);
		return MP_E_SPEC;
	}

	if (path != NULL) {
		rc = open_unix(path, deadline, &fd, err, errlen);
	} else {
		copy = strdup(strchr(spec, ':') + 1);
		if (copy == NULL) {
			snprintf(err, errlen, "out of memory");
			return MP_E_NOMEM;
		}
		char *at = strchr(copy, '@');
		const char *host = NULL;
		if (at != NULL) {
			*at = '\0';
			host = at + 1;
		}
		if (strchr(copy, ':') != NULL ||
		    copy[strspn(copy, "0123456789")] != '\0') {
			snprintf(err, errlen, "\"%s\": want inet:PORT@HOST (a "
			         "numeric port; Postfix's inet:HOST:PORT is "
			         "not libmilter syntax)", spec);
			free(copy);
			return MP_E_SPEC;
		}
		rc = open_inet(family, copy, host, deadline, &fd, err, errlen);
		free(copy);
	}
	if (rc < 0)
		return rc;

	mp_conn *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return MP_E_NOMEM;
	}
	c->fd = fd;
	c->timeout_ms = timeout_ms;
	c->max_packet = MP_DEFAULT_MAX_PACKET;
	if (opt != NULL && opt->max_packet > 0)
		c->max_packet = opt->max_packet;
	if (opt != NULL)
		c->send_all = opt->send_all;
	*out = c;
	return 0;
}

void
mp_close(mp_conn *c)
{
	if (c == NULL)
		return;
	if (c->fd >= 0)
		close(c->fd);
	for (int i = 0; i < MP_STAGE_COUNT; i++)
		free(c->symlist[i]);
	free(c->buf);
	free(c);
}

bool
mp_is_open(const mp_conn *c)
{
	return c != NULL && c->fd >= 0;
}

bool
mp_is_negotiated(const mp_conn *c)
{
	return c != NULL && c->fd >= 0 && c->negotiated;
}

const char *
mp_errmsg(const mp_conn *c)
{
	return c == NULL ? "no connection" : c->err;
}

uint32_t
mp_milter_version(const mp_conn *c)
{
	return c->version;
}

uint32_t
mp_milter_actions(const mp_conn *c)
{
	return c->actions;
}

uint32_t
mp_milter_protocol(const mp_conn *c)
{
	return c->protocol;
}

const char *
mp_milter_symlist(const mp_conn *c, enum mp_stage stage)
{
	if ((int)stage < 0 || stage >= MP_STAGE_COUNT)
		return NULL;
	return c->symlist[stage];
}

/* ---- replies ---- */

/* The next NUL-terminated string of d[0..len) from *off. */
static int
take_str(const unsigned char *d, size_t len, size_t *off, const char **out)
{
	const unsigned char *nul;

	if (*off >= len)
		return -1;
	nul = memchr(d + *off, '\0', len - *off);
	if (nul == NULL)
		return -1;
	*out = (const char *)d + *off;
	*off = (size_t)(nul - d) + 1;
	return 0;
}

static int
take_u32(const unsigned char *d, size_t len, size_t *off, uint32_t *out)
{
	uint32_t n;

	if (*off > len || len - *off < sizeof(n))
		return -1;
	memcpy(&n, d + *off, sizeof(n));
	*off += sizeof(n);
	*out = ntohl(n);
	return 0;
}

static int
parse_replycode(mp_conn *c, size_t len, struct mp_reply *r)
{
	const char *s = (const char *)c->buf;

	if (len == 0 || c->buf[len - 1] != '\0' || strlen(s) != len - 1)
		return fail(c, MP_E_PROTO, "malformed REPLYCODE text "
		            "(not one NUL-terminated string)");
	if (len - 1 < 3 || (s[0] != '4' && s[0] != '5') ||
	    s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9' ||
	    (s[3] != '\0' && s[3] != ' ' && s[3] != '-'))
		return fail(c, MP_E_PROTO, "REPLYCODE text does not start with "
		            "a 4xx or 5xx code: \"%.60s\"", s);
	r->text = strdup(s);
	if (r->text == NULL)
		return fail(c, MP_E_NOMEM, "out of memory");
	r->code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	r->nlines = 1;
	for (const char *p = s; (p = strstr(p, "\r\n")) != NULL; p += 2)
		r->nlines++;
	return 0;
}

/* Describes one modification request (sent before the EOB reply). */
static int
parse_mod(mp_conn *c, char cmd, size_t len, struct mp_reply *r)
{
	const unsigned char *d = c->buf;
	const char *a = NULL, *b = NULL;
	uint32_t idx = 0;
	size_t off = 0;
	char *desc = NULL;
	int ok = 0;

	switch (cmd) {
	case SMFIR_ADDHEADER:
		ok = take_str(d, len, &off, &a) == 0 &&
		     take_str(d, len, &off, &b) == 0;
		if (ok)
			ok = asprintf(&desc, "addheader %s: %s", a, b) >= 0;
		break;
	case SMFIR_INSHEADER:
	case SMFIR_CHGHEADER:
		ok = take_u32(d, len, &off, &idx) == 0 &&
		     take_str(d, len, &off, &a) == 0 &&
		     take_str(d, len, &off, &b) == 0;
		if (ok)
			ok = asprintf(&desc, "%s %lu %s: %s",
			              cmd == SMFIR_INSHEADER ? "insheader" :
			              "chgheader", (unsigned long)idx, a, b) >= 0;
		break;
	case SMFIR_ADDRCPT:
	case SMFIR_DELRCPT:
	case SMFIR_QUARANTINE:
		ok = take_str(d, len, &off, &a) == 0;
		if (ok)
			ok = asprintf(&desc, "%s %s",
			              cmd == SMFIR_ADDRCPT ? "addrcpt" :
			              cmd == SMFIR_DELRCPT ? "delrcpt" :
			              "quarantine", a) >= 0;
		break;
	case SMFIR_ADDRCPT_PAR:
	case SMFIR_CHGFROM:
		ok = take_str(d, len, &off, &a) == 0;
		if (ok && off < len)
			ok = take_str(d, len, &off, &b) == 0;
		if (ok)
			ok = asprintf(&desc, "%s %s%s%s",
			              cmd == SMFIR_CHGFROM ? "chgfrom" :
			              "addrcpt_par", a, b ? " " : "",
			              b ? b : "") >= 0;
		break;
	case SMFIR_REPLBODY:
		ok = asprintf(&desc, "replbody %zu bytes", len) >= 0;
		off = len;
		break;
	default:
		return fail(c, MP_E_PROTO, "unexpected reply '%c' (0x%02x)",
		            cmd, (unsigned char)cmd);
	}
	if (!ok || off != len) {
		free(desc);
		return fail(c, MP_E_PROTO, "malformed modification '%c' "
		            "(%zu bytes)", cmd, len);
	}
	struct mp_mod *nm = realloc(r->mods, (r->nmods + 1) * sizeof(*nm));
	if (nm == NULL) {
		free(desc);
		return fail(c, MP_E_NOMEM, "out of memory");
	}
	r->mods = nm;
	r->mods[r->nmods].cmd = cmd;
	r->mods[r->nmods].desc = desc;
	r->nmods++;
	return 0;
}

static bool
is_mod(char cmd)
{
	return cmd == SMFIR_ADDHEADER || cmd == SMFIR_INSHEADER ||
	       cmd == SMFIR_CHGHEADER || cmd == SMFIR_ADDRCPT ||
	       cmd == SMFIR_DELRCPT || cmd == SMFIR_ADDRCPT_PAR ||
	       cmd == SMFIR_CHGFROM || cmd == SMFIR_REPLBODY ||
	       cmd == SMFIR_QUARANTINE;
}

static enum mp_kind
simple_kind(char cmd)
{
	switch (cmd) {
	case SMFIR_CONTINUE: return MP_K_CONTINUE;
	case SMFIR_ACCEPT: return MP_K_ACCEPT;
	case SMFIR_REJECT: return MP_K_REJECT;
	case SMFIR_TEMPFAIL: return MP_K_TEMPFAIL;
	case SMFIR_DISCARD: return MP_K_DISCARD;
	case SMFIR_SKIP: return MP_K_SKIP;
	case SMFIR_SHUTDOWN: return MP_K_SHUTDOWN;
	case SMFIR_CONN_FAIL: return MP_K_CONNFAIL;
	default: return MP_K_NONE;
	}
}

/*
 * Reads packets until the final reply to event: progress packets restart
 * the timeout, modification requests are collected after SMFIC_BODYEOB.
 */
static int
read_reply(mp_conn *c, char event, int64_t t0, struct mp_reply *r)
{
	for (;;) {
		char cmd;
		size_t len;
		int rc = read_packet(c, &cmd, &len, deadline_after(c));
		if (rc < 0)
			return broken(c, rc);
		r->cmd = cmd;
		if (cmd == SMFIR_PROGRESS) {
			if (len != 0)
				return broken(c, fail(c, MP_E_PROTO, "PROGRESS "
				              "with %zu data bytes", len));
			r->nprogress++;
			continue;
		}
		if (cmd == SMFIR_REPLYCODE) {
			if ((rc = parse_replycode(c, len, r)) < 0)
				return broken(c, rc);
			r->kind = MP_K_REPLYCODE;
			break;
		}
		enum mp_kind k = simple_kind(cmd);
		if (k != MP_K_NONE) {
			if (len != 0)
				return broken(c, fail(c, MP_E_PROTO, "reply '%c' "
				              "followed by %zu data bytes", cmd,
				              len));
			r->kind = k;
			if (k == MP_K_SKIP && event == SMFIC_BODY)
				c->skip_body = true;
			break;
		}
		if (is_mod(cmd) && event == SMFIC_BODYEOB) {
			if ((rc = parse_mod(c, cmd, len, r)) < 0)
				return broken(c, rc);
			continue;
		}
		return broken(c, fail(c, MP_E_PROTO, "unexpected reply '%c' "
		              "(0x%02x, %zu data bytes) to '%c'", cmd,
		              (unsigned char)cmd, len, event));
	}
	r->elapsed_us = mp_now_us() - t0;
	return 0;
}

/* ---- commands ---- */

static int
need_open(mp_conn *c)
{
	if (c == NULL)
		return MP_E_INVAL;
	if (c->fd < 0)
		return fail(c, MP_E_STATE, "connection is closed");
	return 0;
}

static int
need_negotiated(mp_conn *c)
{
	int rc = need_open(c);

	if (rc < 0)
		return rc;
	if (!c->negotiated)
		return fail(c, MP_E_STATE, "not negotiated");
	return 0;
}

/*
 * Sends k for event and reads the reply unless the milter asked for none.
 * nosend/noreply: the SMFIP_NO* and SMFIP_NR_* bits of this event.
 */
static int
exchange(mp_conn *c, char event, struct pkt *k, uint32_t nosend,
         uint32_t noreply, struct mp_reply *r)
{
	int64_t t0 = mp_now_us();
	int rc;

	if (nosend != 0 && (c->protocol & nosend) != 0 && !c->send_all) {
		free(k->p);
		r->kind = MP_K_SKIPPED;
		r->elapsed_us = 0;
		return 0;
	}
	if ((rc = pkt_send(c, k, deadline_after(c))) < 0) {
		r->elapsed_us = mp_now_us() - t0;
		return rc == MP_E_NOMEM || rc == MP_E_INVAL ? rc : broken(c, rc);
	}
	if (noreply != 0 && (c->protocol & noreply) != 0) {
		r->kind = MP_K_NOREPLY;
		r->elapsed_us = mp_now_us() - t0;
		return 0;
	}
	rc = read_reply(c, event, t0, r);
	if (rc < 0)
		r->elapsed_us = mp_now_us() - t0;
	return rc;
}

static int
start(mp_conn *c, struct mp_reply *r, bool negotiated)
{
	int rc = negotiated ? need_negotiated(c) : need_open(c);

	if (r != NULL)
		mp_reply_free(r);
	if (r == NULL && rc == 0)
		rc = fail(c, MP_E_INVAL, "no reply structure");
	return rc;
}

/* The answer to OPTNEG, in c->buf: version, actions, protocol, then
 * (stage, "names") pairs. */
static int
parse_optneg(mp_conn *c, size_t len, uint32_t version, uint32_t actions)
{
	size_t off = 0;

	if (take_u32(c->buf, len, &off, &c->version) < 0 ||
	    take_u32(c->buf, len, &off, &c->actions) < 0 ||
	    take_u32(c->buf, len, &off, &c->protocol) < 0)
		return fail(c, MP_E_PROTO, "OPTNEG answer too short (%zu bytes)",
		            len);
	while (off < len) {
		uint32_t stage;
		const char *names;
		if (take_u32(c->buf, len, &off, &stage) < 0 ||
		    take_str(c->buf, len, &off, &names) < 0)
			return fail(c, MP_E_PROTO, "malformed macro list in "
			            "OPTNEG answer at byte %zu", off);
		if (stage >= MP_STAGE_COUNT)
			return fail(c, MP_E_PROTO, "macro list for unknown "
			            "stage %lu", (unsigned long)stage);
		free(c->symlist[stage]);
		if ((c->symlist[stage] = strdup(names)) == NULL)
			return fail(c, MP_E_NOMEM, "out of memory");
	}
	if (c->version < 2 || c->version > version)
		return fail(c, MP_E_PROTO, "milter protocol version %lu, "
		            "offered %lu", (unsigned long)c->version,
		            (unsigned long)version);
	if ((c->actions & actions) != c->actions)
		return fail(c, MP_E_PROTO, "milter wants actions 0x%lx, offered "
		            "0x%lx", (unsigned long)c->actions,
		            (unsigned long)actions);
	return 0;
}

int
mp_negotiate(mp_conn *c, uint32_t version, uint32_t actions,
             uint32_t protocol, struct mp_reply *r)
{
	struct pkt k;
	int64_t t0 = mp_now_us();
	char cmd;
	size_t len;
	int rc;

	if ((rc = start(c, r, false)) < 0)
		return rc;
	c->negotiated = false;
	for (int i = 0; i < MP_STAGE_COUNT; i++) {
		free(c->symlist[i]);
		c->symlist[i] = NULL;
	}
	c->version = c->actions = c->protocol = 0;

	pkt_start(&k, SMFIC_OPTNEG);
	pkt_u32(&k, version);
	pkt_u32(&k, actions);
	pkt_u32(&k, protocol);
	if ((rc = pkt_send(c, &k, deadline_after(c))) == 0 &&
	    (rc = read_packet(c, &cmd, &len, deadline_after(c))) == 0) {
		r->cmd = cmd;
		if (cmd != SMFIC_OPTNEG)
			rc = fail(c, MP_E_PROTO, "answer '%c' (0x%02x) to "
			          "OPTNEG", cmd, (unsigned char)cmd);
		else
			rc = parse_optneg(c, len, version, actions);
	}
	r->elapsed_us = mp_now_us() - t0;
	if (rc < 0)
		return broken(c, rc);
	r->kind = MP_K_OPTNEG;
	c->negotiated = true;
	c->skip_body = false;
	return 0;
}

int
mp_macro(mp_conn *c, char stage_cmd, const char *const *names,
         const char *const *values, size_t n, struct mp_reply *r)
{
	static const struct {
		char cmd;
		uint32_t nosend;
	} stages[] = {
		{ SMFIC_CONNECT, SMFIP_NOCONNECT }, { SMFIC_HELO, SMFIP_NOHELO },
		{ SMFIC_MAIL, SMFIP_NOMAIL }, { SMFIC_RCPT, SMFIP_NORCPT },
		{ SMFIC_DATA, SMFIP_NODATA }, { SMFIC_EOH, SMFIP_NOEOH },
		{ SMFIC_BODYEOB, 0 },
	};
	struct pkt k;
	uint32_t nosend = 0;
	bool known = false;
	int64_t t0 = mp_now_us();
	int rc;

	if ((rc = start(c, r, true)) < 0)
		return rc;
	for (size_t i = 0; i < sizeof(stages) / sizeof(stages[0]); i++) {
		if (stages[i].cmd == stage_cmd) {
			known = true;
			nosend = stages[i].nosend;
		}
	}
	if (!known)
		return fail(c, MP_E_INVAL, "no macro stage '%c'", stage_cmd);
	if (nosend != 0 && (c->protocol & nosend) != 0 && !c->send_all) {
		r->kind = MP_K_SKIPPED;
		return 0;
	}
	pkt_start(&k, SMFIC_MACRO);
	pkt_add(&k, &stage_cmd, 1);
	for (size_t i = 0; i < n; i++) {
		pkt_str(&k, names[i]);
		pkt_str(&k, values[i]);
	}
	if ((rc = pkt_send(c, &k, deadline_after(c))) < 0)
		return rc == MP_E_NOMEM ? rc : broken(c, rc);
	r->kind = MP_K_SENT;
	r->elapsed_us = mp_now_us() - t0;
	return 0;
}

int
mp_connect(mp_conn *c, const char *hostname, char family, uint16_t port,
           const char *addr, struct mp_reply *r)
{
	struct pkt k;
	int rc;

	if ((rc = start(c, r, true)) < 0)
		return rc;
	if (hostname == NULL)
		return fail(c, MP_E_INVAL, "no host name");
	if (family != SMFIA_UNKNOWN && addr == NULL)
		return fail(c, MP_E_INVAL, "family '%c' needs an address",
		            family);
	pkt_start(&k, SMFIC_CONNECT);
	pkt_str(&k, hostname);
	pkt_add(&k, &family, 1);
	if (family != SMFIA_UNKNOWN) {
		pkt_u16(&k, port);
		pkt_str(&k, addr);
	}
	return exchange(c, SMFIC_CONNECT, &k, SMFIP_NOCONNECT, SMFIP_NR_CONN,
	                r);
}

int
mp_helo(mp_conn *c, const char *name, struct mp_reply *r)
{
	struct pkt k;
	int rc;

	if ((rc = start(c, r, true)) < 0)
		return rc;
	pkt_start(&k, SMFIC_HELO);
	pkt_str(&k, name != NULL ? name : "");
	return exchange(c, SMFIC_HELO, &k, SMFIP_NOHELO, SMFIP_NR_HELO, r);
}

static int
send_argv(mp_conn *c, char cmd, const char *const *argv, size_t argc,
          uint32_t nosend, uint32_t noreply, struct mp_reply *r)
{
	struct pkt k;
	int rc;

	if ((rc = start(c, r, true)) < 0)
		return rc;
	if (argc == 0)
		return fail(c, MP_E_INVAL, "no address");
	pkt_start(&k, cmd);
	for (size_t i = 0; i < argc; i++)
		pkt_str(&k, argv[i]);
	return exchange(c, cmd, &k, nosend, noreply, r);
}

int
mp_mail(mp_conn *c, const char *const *argv, size_t argc, struct mp_reply *r)
{
	int rc = send_argv(c, SMFIC_MAIL, argv, argc, SMFIP_NOMAIL,
	                   SMFIP_NR_MAIL, r);

	if (rc == 0)
		c->skip_body = false;
	return rc;
}

int
mp_rcpt(mp_conn *c, const char *const *argv, size_t argc, struct mp_reply *r)
{
	return send_argv(c, SMFIC_RCPT, argv, argc, SMFIP_NORCPT,
	                 SMFIP_NR_RCPT, r);
}

int
mp_data(mp_conn *c, struct mp_reply *r)
{
	struct pkt k;
	int rc;

	if ((rc = start(c, r, true)) < 0)
		return rc;
	pkt_start(&k, SMFIC_DATA);
	return exchange(c, SMFIC_DATA, &k, SMFIP_NODATA, SMFIP_NR_DATA, r);
}

int
mp_header(mp_conn *c, const char *name, const char *value, struct mp_reply *r)
{
	struct pkt k;
	int rc;

	if ((rc = start(c, r, true)) < 0)
		return rc;
	if (name == NULL || value == NULL)
		return fail(c, MP_E_INVAL, "header needs a name and a value");
	pkt_start(&k, SMFIC_HEADER);
	pkt_str(&k, name);
	pkt_str(&k, value);
	return exchange(c, SMFIC_HEADER, &k, SMFIP_NOHDRS, SMFIP_NR_HDR, r);
}

int
mp_eoh(mp_conn *c, struct mp_reply *r)
{
	struct pkt k;
	int rc;

	if ((rc = start(c, r, true)) < 0)
		return rc;
	pkt_start(&k, SMFIC_EOH);
	return exchange(c, SMFIC_EOH, &k, SMFIP_NOEOH, SMFIP_NR_EOH, r);
}

int
mp_body(mp_conn *c, const void *buf, size_t len, struct mp_reply *r)
{
	struct pkt k;
	int rc;

	if ((rc = start(c, r, true)) < 0)
		return rc;
	if (c->skip_body && !c->send_all) {
		r->kind = MP_K_SKIPPED;
		return 0;
	}
	pkt_start(&k, SMFIC_BODY);
	pkt_add(&k, buf, len);
	return exchange(c, SMFIC_BODY, &k, SMFIP_NOBODY, SMFIP_NR_BODY, r);
}

int
mp_eob(mp_conn *c, const void *buf, size_t len, struct mp_reply *r)
{
	struct pkt k;
	int rc;

	if ((rc = start(c, r, true)) < 0)
		return rc;
	pkt_start(&k, SMFIC_BODYEOB);
	if (len > 0)
		pkt_add(&k, buf, len);
	c->skip_body = false;
	return exchange(c, SMFIC_BODYEOB, &k, 0, 0, r);
}

int
mp_unknown(mp_conn *c, const char *command, struct mp_reply *r)
{
	struct pkt k;
	int rc;

	if ((rc = start(c, r, true)) < 0)
		return rc;
	pkt_start(&k, SMFIC_UNKNOWN);
	pkt_str(&k, command != NULL ? command : "");
	return exchange(c, SMFIC_UNKNOWN, &k, SMFIP_NOUNKNOWN, SMFIP_NR_UNKN,
	                r);
}

/* A command without data and without a reply. */
static int
send_bare(mp_conn *c, char cmd, struct mp_reply *r)
{
	struct pkt k;
	int64_t t0 = mp_now_us();
	int rc;

	if ((rc = start(c, r, false)) < 0)
		return rc;
	pkt_start(&k, cmd);
	if ((rc = pkt_send(c, &k, deadline_after(c))) < 0)
		return rc == MP_E_NOMEM ? rc : broken(c, rc);
	r->kind = MP_K_SENT;
	r->elapsed_us = mp_now_us() - t0;
	return 0;
}

int
mp_abort(mp_conn *c, struct mp_reply *r)
{
	int rc = send_bare(c, SMFIC_ABORT, r);

	if (rc == 0)
		c->skip_body = false;
	return rc;
}

int
mp_quit(mp_conn *c, struct mp_reply *r)
{
	int rc = send_bare(c, SMFIC_QUIT, r);

	mp_break(c);
	return rc;
}

int
mp_quit_nc(mp_conn *c, struct mp_reply *r)
{
	int rc = send_bare(c, SMFIC_QUIT_NC, r);

	if (rc == 0)
		c->skip_body = false;
	return rc;
}

int
mp_send_raw(mp_conn *c, const void *buf, size_t len, struct mp_reply *r)
{
	int64_t t0 = mp_now_us();
	int rc;

	if ((rc = start(c, r, false)) < 0)
		return rc;
	if ((rc = write_all(c, buf, len, deadline_after(c))) < 0)
		return broken(c, rc);
	r->kind = MP_K_SENT;
	r->elapsed_us = mp_now_us() - t0;
	return 0;
}

int
mp_send_packet(mp_conn *c, char cmd, const void *data, size_t len,
               struct mp_reply *r)
{
	struct pkt k;
	int64_t t0 = mp_now_us();
	int rc;

	if ((rc = start(c, r, false)) < 0)
		return rc;
	pkt_start(&k, cmd);
	pkt_add(&k, data, len);
	if ((rc = pkt_send(c, &k, deadline_after(c))) < 0)
		return rc == MP_E_NOMEM || rc == MP_E_INVAL ? rc : broken(c, rc);
	r->kind = MP_K_SENT;
	r->elapsed_us = mp_now_us() - t0;
	return 0;
}

int
mp_read_packet(mp_conn *c, struct mp_reply *r)
{
	int64_t t0 = mp_now_us();
	char cmd;
	size_t len;
	int rc;

	if ((rc = start(c, r, false)) < 0)
		return rc;
	for (;;) {
		if ((rc = read_packet(c, &cmd, &len, deadline_after(c))) < 0) {
			r->elapsed_us = mp_now_us() - t0;
			return broken(c, rc);
		}
		r->cmd = cmd;
		if (cmd != SMFIR_PROGRESS || len != 0)
			break;
		r->nprogress++;
	}
	r->elapsed_us = mp_now_us() - t0;
	if (cmd == SMFIR_REPLYCODE && parse_replycode(c, len, r) == 0) {
		r->kind = MP_K_REPLYCODE;
		return 0;
	}
	enum mp_kind k = simple_kind(cmd);
	if (k != MP_K_NONE && len == 0) {
		r->kind = k;
		return 0;
	}
	r->kind = MP_K_PACKET;
	free(r->text);
	r->text = NULL;
	r->code = 0;
	r->nlines = 0;
	if ((r->data = malloc(len + 1)) == NULL)
		return fail(c, MP_E_NOMEM, "out of memory");
	memcpy(r->data, c->buf, len + 1);
	r->datalen = len;
	return 0;
}
