/*
 * echo_milter - a tiny libmilter filter that answers by recipient, for
 * testing milter clients (miltc) against the real libmilter.
 *
 *   echo_milter -p SOCKET [-l LOGFILE] [-f PROTOFLAGS] [-T SECONDS]
 *
 * Negotiation: asks for SMFIP_RCPT_REJ (plus any -f flags, e.g. 0x2 for
 * SMFIP_NOHELO or 0x80 for SMFIP_NR_HDR), the actions SMFIF_ADDHDRS and
 * SMFIF_SETSYMLIST, and macro lists for connect and rcpt.
 *
 * RCPT by local part of argv[0]:
 *   tempfail    451 4.7.1 try later            (SMFIS_TEMPFAIL)
 *   reject      550 5.7.1 go away              (SMFIS_REJECT)
 *   multi       550 5.7.1, three lines         (smfi_setmlreply)
 *   disconnect  421 4.7.0 closing connection   (SMFIS_TEMPFAIL)
 *   sleep2      sleeps 2 s, then continue
 *   accept / discard / plaintempfail / plainreject: that verdict, no text
 *   anything else: continue
 * EOM adds the header "X-Echo: yes".  Every callback logs one line (with
 * the macros it got) to LOGFILE or stderr.
 *
 * libmilter owns the signals: SIGTERM/SIGINT/SIGHUP stop it.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <libmilter/mfapi.h>

static FILE *g_log;
static pthread_mutex_t g_log_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long g_extra_flags;   /* set once in main, read-only after */

static void elog(SMFICTX *ctx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* One log line: "echo[QUEUEID] text", control bytes escaped. */
static void
elog(SMFICTX *ctx, const char *fmt, ...)
{
	char raw[2048], line[4096];
	const char *qid = ctx ? smfi_getsymval(ctx, "i") : NULL;
	size_t o = 0;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	for (const unsigned char *p = (const unsigned char *)raw;
	     *p && o + 5 < sizeof(line); p++) {
		if (*p < 0x20 || *p >= 0x7f)
			o += (size_t)snprintf(line + o, sizeof(line) - o,
			                      "\\x%02x", *p);
		else
			line[o++] = (char)*p;
	}
	line[o] = '\0';
	pthread_mutex_lock(&g_log_lock);
	fprintf(g_log, "echo[%s] %s\n", qid ? qid : "-", line);
	fflush(g_log);
	pthread_mutex_unlock(&g_log_lock);
}

static const char *
mac(SMFICTX *ctx, char *name)
{
	const char *v = smfi_getsymval(ctx, name);

	return v ? v : "(none)";
}

static sfsistat
ef_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
             unsigned long f2, unsigned long f3, unsigned long *pf0,
             unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
	unsigned long want = SMFIP_RCPT_REJ | g_extra_flags;

	(void)f2;
	(void)f3;
	elog(NULL, "negotiate actions=0x%lx protocol=0x%lx", f0, f1);
	if ((f1 & want) != want) {
		elog(NULL, "negotiate: MTA lacks protocol flags 0x%lx",
		      want & ~f1);
		return SMFIS_REJECT;
	}
	*pf0 = (SMFIF_ADDHDRS | SMFIF_SETSYMLIST) & f0;
	*pf1 = want;
	*pf2 = 0;
	*pf3 = 0;
	if (smfi_setsymlist(ctx, SMFIM_CONNECT, "j {daemon_name} v _") !=
	        MI_SUCCESS ||
	    smfi_setsymlist(ctx, SMFIM_ENVRCPT,
	                    "i {rcpt_mailer} {rcpt_host} {rcpt_addr}") !=
	        MI_SUCCESS)
		elog(NULL, "negotiate: smfi_setsymlist failed");
	return SMFIS_CONTINUE;
}

static sfsistat
ef_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *sa)
{
	char addr[INET6_ADDRSTRLEN + 8] = "NULL";
	unsigned port = 0;

	if (sa != NULL) {
		switch (sa->sa_family) {
		case AF_INET: {
			struct sockaddr_in in;
			memcpy(&in, sa, sizeof(in));
			inet_ntop(AF_INET, &in.sin_addr, addr, sizeof(addr));
			port = ntohs(in.sin_port);
			break;
		}
		case AF_INET6: {
			struct sockaddr_in6 in6;
			memcpy(&in6, sa, sizeof(in6));
			inet_ntop(AF_INET6, &in6.sin6_addr, addr, sizeof(addr));
			port = ntohs(in6.sin6_port);
			break;
		}
		case AF_UNIX: {
			struct sockaddr_un un;
			memcpy(&un, sa, sizeof(un));
			un.sun_path[sizeof(un.sun_path) - 1] = '\0';
			snprintf(addr, sizeof(addr), "unix:%.40s", un.sun_path);
			break;
		}
		default:
			snprintf(addr, sizeof(addr), "family%d", sa->sa_family);
		}
	}
	elog(ctx, "connect host=%s addr=%s port=%u j=%s {daemon_name}=%s "
	      "v=%s", host ? host : "NULL", addr, port, mac(ctx, "j"),
	      mac(ctx, "{daemon_name}"), mac(ctx, "v"));
	return SMFIS_CONTINUE;
}

static sfsistat
ef_helo(SMFICTX *ctx, char *name)
{
	elog(ctx, "helo %s", name ? name : "NULL");
	return SMFIS_CONTINUE;
}

static sfsistat
ef_envfrom(SMFICTX *ctx, char **argv)
{
	elog(ctx, "mail %s%s%s i=%s", argv[0] ? argv[0] : "NULL",
	      argv[0] && argv[1] ? " " : "", argv[0] && argv[1] ? argv[1] : "",
	      mac(ctx, "i"));
	return SMFIS_CONTINUE;
}

/* The local part of "<local@domain>", lower-cased, into buf. */
static const char *
local_part(const char *addr, char *buf, size_t size)
{
	size_t n = 0;

	if (*addr == '<')
		addr++;
	while (*addr && *addr != '@' && *addr != '>' && n + 1 < size)
		buf[n++] = (char)tolower((unsigned char)*addr++);
	buf[n] = '\0';
	return buf;
}

static sfsistat
ef_envrcpt(SMFICTX *ctx, char **argv)
{
	char lp[64];
	const char *who = argv[0] ? argv[0] : "";

	elog(ctx, "rcpt %s {rcpt_mailer}=%s {rcpt_host}=%s {rcpt_addr}=%s",
	      who, mac(ctx, "{rcpt_mailer}"), mac(ctx, "{rcpt_host}"),
	      mac(ctx, "{rcpt_addr}"));
	local_part(who, lp, sizeof(lp));
	if (strcmp(lp, "tempfail") == 0) {
		smfi_setreply(ctx, "451", "4.7.1", "try later");
		return SMFIS_TEMPFAIL;
	}
	if (strcmp(lp, "reject") == 0) {
		smfi_setreply(ctx, "550", "5.7.1", "go away");
		return SMFIS_REJECT;
	}
	if (strcmp(lp, "multi") == 0) {
		smfi_setmlreply(ctx, "550", "5.7.1", "line one", "line two",
		                "line three", (char *)NULL);
		return SMFIS_REJECT;
	}
	if (strcmp(lp, "disconnect") == 0) {
		smfi_setreply(ctx, "421", "4.7.0", "closing connection");
		return SMFIS_TEMPFAIL;
	}
	if (strcmp(lp, "sleep2") == 0) {
		struct timespec ts = { 2, 0 };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		return SMFIS_CONTINUE;
	}
	if (strcmp(lp, "accept") == 0)
		return SMFIS_ACCEPT;
	if (strcmp(lp, "discard") == 0)
		return SMFIS_DISCARD;
	if (strcmp(lp, "plaintempfail") == 0)
		return SMFIS_TEMPFAIL;
	if (strcmp(lp, "plainreject") == 0)
		return SMFIS_REJECT;
	return SMFIS_CONTINUE;
}

static sfsistat
ef_data(SMFICTX *ctx)
{
	elog(ctx, "data");
	return SMFIS_CONTINUE;
}

static sfsistat
ef_header(SMFICTX *ctx, char *name, char *value)
{
	elog(ctx, "header %s: %s", name, value);
	return (g_extra_flags & SMFIP_NR_HDR) ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

static sfsistat
ef_eoh(SMFICTX *ctx)
{
	elog(ctx, "eoh");
	return SMFIS_CONTINUE;
}

static sfsistat
ef_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
	(void)chunk;
	elog(ctx, "body %zu bytes", len);
	return SMFIS_CONTINUE;
}

static sfsistat
ef_eom(SMFICTX *ctx)
{
	elog(ctx, "eom");
	if (smfi_addheader(ctx, "X-Echo", "yes") != MI_SUCCESS)
		elog(ctx, "eom: smfi_addheader failed");
	return SMFIS_CONTINUE;
}

static sfsistat
ef_abort(SMFICTX *ctx)
{
	elog(ctx, "abort");
	return SMFIS_CONTINUE;
}

static sfsistat
ef_close(SMFICTX *ctx)
{
	elog(ctx, "close");
	return SMFIS_CONTINUE;
}

static sfsistat
ef_unknown(SMFICTX *ctx, const char *cmd)
{
	elog(ctx, "unknown %s", cmd);
	return SMFIS_CONTINUE;
}

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: echo_milter -p SOCKET [-l LOGFILE] "
	        "[-f PROTOFLAGS] [-T SECONDS]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct smfiDesc desc;
	char *sock = NULL;
	const char *logfile = NULL;
	int timeout = 60, ch;
	char *end;

	while ((ch = getopt(argc, argv, "p:l:f:T:")) != -1) {
		switch (ch) {
		case 'p': sock = optarg; break;
		case 'l': logfile = optarg; break;
		case 'f':
			errno = 0;
			g_extra_flags = strtoul(optarg, &end, 0);
			if (errno != 0 || *end != '\0')
				usage();
			break;
		case 'T':
			timeout = atoi(optarg);
			if (timeout <= 0)
				usage();
			break;
		default: usage();
		}
	}
	if (sock == NULL || optind != argc)
		usage();
	g_log = stderr;
	if (logfile != NULL && (g_log = fopen(logfile, "a")) == NULL) {
		fprintf(stderr, "echo_milter: %s: %s\n", logfile,
		        strerror(errno));
		return 1;
	}

	memset(&desc, 0, sizeof(desc));
	desc.xxfi_name = (char *)"echo_milter";
	desc.xxfi_version = SMFI_VERSION;
	desc.xxfi_flags = SMFIF_ADDHDRS | SMFIF_SETSYMLIST;
	desc.xxfi_connect = ef_connect;
	desc.xxfi_helo = ef_helo;
	desc.xxfi_envfrom = ef_envfrom;
	desc.xxfi_envrcpt = ef_envrcpt;
	desc.xxfi_header = ef_header;
	desc.xxfi_eoh = ef_eoh;
	desc.xxfi_body = ef_body;
	desc.xxfi_eom = ef_eom;
	desc.xxfi_abort = ef_abort;
	desc.xxfi_close = ef_close;
	desc.xxfi_unknown = ef_unknown;
	desc.xxfi_data = ef_data;
	desc.xxfi_negotiate = ef_negotiate;

	if (smfi_setconn(sock) != MI_SUCCESS ||
	    smfi_settimeout(timeout) != MI_SUCCESS ||
	    smfi_register(desc) != MI_SUCCESS) {
		fprintf(stderr, "echo_milter: cannot set up libmilter\n");
		return 1;
	}
	if (smfi_opensocket(true) != MI_SUCCESS) {
		fprintf(stderr, "echo_milter: cannot open %s\n", sock);
		return 1;
	}
	elog(NULL, "listening on %s", sock);
	int rc = smfi_main();
	elog(NULL, "stopped (%d)", rc);
	if (g_log != stderr)
		fclose(g_log);
	return rc == MI_SUCCESS ? 0 : 1;
}
