/*
 * noop_milter.c - the baseline for floodgate's benchmarks: a libmilter
 * filter that registers the callbacks floodgate registers, negotiates
 * what floodgate negotiates, and decides nothing.  What it costs is the
 * cost of libmilter, its threads and the socket alone.
 *
 *   noop_milter -p SOCKET [-f] [-m MODE] [-T SECONDS]
 *
 *   -p SOCKET   libmilter socket spec (unix:/path, inet:PORT@HOST, ...)
 *   -f          accepted for symmetry with floodgate (always foreground)
 *   -m MODE     octal mode of a unix socket once it is open (e.g. 0666,
 *               so that Postfix's smtpd can reach it)
 *   -T SECONDS  libmilter's I/O timeout (smfi_settimeout)
 *
 * Negotiation mirrors milter/glue.c cb_negotiate: no actions, the
 * offered subset of SMFIP_RCPT_REJ | SMFIP_NOBODY | SMFIP_NOHDRS |
 * SMFIP_NOEOH | SMFIP_NOUNKNOWN | SMFIP_NODATA, and the same macro lists.
 * connect allocates a private context (as big as floodgate's session),
 * close frees it; every callback answers continue.
 *
 * libmilter owns the signals: SIGTERM, SIGINT and SIGHUP stop it.
 */
#include <errno.h>
#include <libmilter/mfapi.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "negotiate.h"

/* About the size of floodgate's struct session (glue.c, which holds the
 * callback's verdict and the client's keys), so the allocator does
 * comparable work. */
#define PRIV_SIZE 20200

struct priv {
	unsigned long rcpts;
	char pad[PRIV_SIZE - sizeof(unsigned long)];
};

static sfsistat
nf_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
             unsigned long f2, unsigned long f3, unsigned long *pf0,
             unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
	(void)f0;
	(void)f2;
	(void)f3;
	fg_negotiate_ask(ctx, f1, pf0, pf1, pf2, pf3);
	return SMFIS_CONTINUE;
}

static sfsistat
nf_connect(SMFICTX *ctx, char *hostname, _SOCK_ADDR *hostaddr)
{
	struct priv *p = calloc(1, sizeof(*p));

	(void)hostname;
	(void)hostaddr;
	if (p == NULL)
		return SMFIS_TEMPFAIL;
	smfi_setpriv(ctx, p);
	return SMFIS_CONTINUE;
}

static sfsistat
nf_helo(SMFICTX *ctx, char *helohost)
{
	(void)ctx;
	(void)helohost;
	return SMFIS_CONTINUE;
}

static sfsistat
nf_envfrom(SMFICTX *ctx, char **argv)
{
	struct priv *p = smfi_getpriv(ctx);

	(void)argv;
	if (p != NULL)
		p->rcpts = 0;
	return SMFIS_CONTINUE;
}

static sfsistat
nf_envrcpt(SMFICTX *ctx, char **argv)
{
	struct priv *p = smfi_getpriv(ctx);

	(void)argv;
	if (p != NULL)
		p->rcpts++;
	return SMFIS_CONTINUE;
}

static sfsistat
nf_eom(SMFICTX *ctx)
{
	struct priv *p = smfi_getpriv(ctx);

	if (p != NULL)
		p->rcpts = 0;
	return SMFIS_CONTINUE;
}

static sfsistat
nf_abort(SMFICTX *ctx)
{
	struct priv *p = smfi_getpriv(ctx);

	if (p != NULL)
		p->rcpts = 0;
	return SMFIS_CONTINUE;
}

static sfsistat
nf_close(SMFICTX *ctx)
{
	struct priv *p = smfi_getpriv(ctx);

	if (p != NULL) {
		smfi_setpriv(ctx, NULL);
		free(p);
	}
	return SMFIS_CONTINUE;
}

static struct smfiDesc desc = {
	.xxfi_name = "noop_milter",
	.xxfi_version = SMFI_VERSION,
	.xxfi_flags = 0,
	.xxfi_connect = nf_connect,
	.xxfi_helo = nf_helo,
	.xxfi_envfrom = nf_envfrom,
	.xxfi_envrcpt = nf_envrcpt,
	.xxfi_eom = nf_eom,
	.xxfi_abort = nf_abort,
	.xxfi_close = nf_close,
	.xxfi_negotiate = nf_negotiate,
};

static void
usage(FILE *fp)
{
	fprintf(fp, "usage: noop_milter -p SOCKET [-f] [-m MODE] "
	        "[-T SECONDS]\n");
}

int
main(int argc, char **argv)
{
	const char *spec = NULL, *path = NULL;
	long mode = -1, timeout = -1;
	char *end;
	int ch;

	while ((ch = getopt(argc, argv, "p:fm:T:h")) != -1) {
		switch (ch) {
		case 'p':
			spec = optarg;
			break;
		case 'f':
			break;
		case 'm':
			errno = 0;
			mode = strtol(optarg, &end, 8);
			if (errno != 0 || *end != '\0' || mode < 0 ||
			    mode > 07777) {
				fprintf(stderr, "noop_milter: -m: bad mode\n");
				return 2;
			}
			break;
		case 'T':
			timeout = strtol(optarg, &end, 10);
			if (*end != '\0' || timeout <= 0) {
				fprintf(stderr, "noop_milter: -T: bad "
				        "timeout\n");
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (spec == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}
	if (strncmp(spec, "unix:", 5) == 0)
		path = spec + 5;
	else if (strncmp(spec, "local:", 6) == 0)
		path = spec + 6;
	else if (spec[0] == '/')
		path = spec;

	/* A vanished MTA must not kill us. */
	signal(SIGPIPE, SIG_IGN);
	if (smfi_register(desc) != MI_SUCCESS ||
	    smfi_setconn((char *)spec) != MI_SUCCESS) {
		fprintf(stderr, "noop_milter: cannot register with "
		        "libmilter\n");
		return 71;
	}
	if (timeout > 0)
		smfi_settimeout((int)timeout);
	if (smfi_opensocket(true) != MI_SUCCESS) {
		fprintf(stderr, "noop_milter: cannot open %s\n", spec);
		return 71;
	}
	if (path != NULL && mode >= 0 && chmod(path, (mode_t)mode) != 0)
		fprintf(stderr, "noop_milter: chmod %s: %s\n", path,
		        strerror(errno));
	fprintf(stderr, "noop_milter: started on %s\n", spec);
	return smfi_main() == MI_SUCCESS ? 0 : 1;
}
