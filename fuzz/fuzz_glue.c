/*
 * fuzz_glue.c - the milter callbacks of milter/glue.c, driven as an MTA
 * would drive them but with arguments and macros from the fuzzer.
 *
 * glue.c is compiled into this program unchanged, next to a fake of the
 * few libmilter functions it calls (below): smfi_register() hands us the
 * callback table, smfi_getsymval() serves macros the input set,
 * smfi_setpriv()/smfi_getpriv() keep the private pointer, and
 * smfi_setreply()/smfi_setmlreply() check what real libmilter would
 * refuse (and so silently drop): a code that is not 4xx/5xx, a bad
 * enhanced status, CR or LF, a line over 980 bytes, more than 32 lines,
 * plus a '%' that is not doubled and a status of another class than the
 * code.  glue.c's calls of fg_log() come here too (the build renames
 * them), so every log line it writes is checked for control bytes.
 *
 * Each input gets a fresh in-memory store and publishes one of two
 * configurations (or none).  Both set max_delayed_sessions = 0, so no
 * callback ever sleeps; their limits are tiny so that a few events push
 * rules over, into delays-turned-tempfails, rejects, bans and banned
 * sessions.  The input is a program of up to 64 steps on two connection
 * contexts: connect (no address, IPv4, IPv6 or another family; host name
 * or NULL), HELO, MAIL, RCPT (argument vectors, or NULL), EOM, abort,
 * close (also without connect), macro changes, negotiation.  Every
 * argument is freed as soon as its callback returns, so a pointer glue.c
 * kept would be caught by AddressSanitizer.  At the end every context is
 * closed as libmilter would, and then: no private pointer survives, no
 * concurrency slot is still held, the configurations are back to their
 * own references, and (LeakSanitizer) nothing leaked.
 */
#include <libmilter/mfapi.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "fg.h"
#include "fuzz.h"
#include "glue.h"
#include "log.h"
#include "store.h"

/* ---- the fake libmilter ------------------------------------------------ */

#define MAX_MACROS 32
#define LIBMILTER_MAXREPLYLEN 980
#define LIBMILTER_MAXREPLIES 32

struct smfi_str {
	void *priv;
	struct {
		char *name;
		char *value;
	} mac[MAX_MACROS];
	size_t nmac;
	int reply_code;     /* set by the callback running now, or 0 */
	int nreplies;
};

static struct smfiDesc desc;
static bool registered;

int
smfi_register(struct smfiDesc d)
{
	FZ_CHECK(!registered, "smfi_register twice");
	FZ_CHECK(d.xxfi_name != NULL && d.xxfi_name[0] != '\0', "no name");
	FZ_CHECK(d.xxfi_version == SMFI_VERSION, "version %#x",
	         (unsigned)d.xxfi_version);
	desc = d;
	registered = true;
	return MI_SUCCESS;
}

char *
smfi_getsymval(SMFICTX *ctx, char *name)
{
	char one[2] = "", braces[4] = "";
	size_t len;

	FZ_CHECK(ctx != NULL, "smfi_getsymval without a context");
	FZ_CHECK(name != NULL && name[0] != '\0', "smfi_getsymval of no name");
	/* libmilter: "{x}" also finds "x", and "x" also finds "{x}". */
	len = strlen(name);
	if (len == 3 && name[0] == '{' && name[2] == '}') {
		one[0] = name[1];
		one[1] = '\0';
	}
	if (len == 1)
		snprintf(braces, sizeof(braces), "{%c}", name[0]);
	for (size_t i = ctx->nmac; i-- > 0;) {
		const char *n = ctx->mac[i].name;
		if (strcmp(n, name) == 0 || (one[0] && strcmp(n, one) == 0) ||
		    (braces[0] && strcmp(n, braces) == 0))
			return ctx->mac[i].value;
	}
	return NULL;
}

int
smfi_setpriv(SMFICTX *ctx, void *priv)
{
	FZ_CHECK(ctx != NULL, "smfi_setpriv without a context");
	ctx->priv = priv;
	return MI_SUCCESS;
}

void *
smfi_getpriv(SMFICTX *ctx)
{
	FZ_CHECK(ctx != NULL, "smfi_getpriv without a context");
	return ctx->priv;
}

int
smfi_setsymlist(SMFICTX *ctx, int where, char *macros)
{
	FZ_CHECK(ctx != NULL, "smfi_setsymlist without a context");
	FZ_CHECK(where >= SMFIM_FIRST && where <= SMFIM_LAST,
	         "smfi_setsymlist stage %d", where);
	FZ_CHECK(macros != NULL && macros[0] != '\0' &&
	         strpbrk(macros, "\r\n") == NULL, "smfi_setsymlist list");
	return MI_SUCCESS;
}

static int
reply_code(const char *rcode)
{
	FZ_CHECK(rcode != NULL, "reply without a code");
	FZ_CHECK(strlen(rcode) == 3 && (rcode[0] == '4' || rcode[0] == '5') &&
	         rcode[1] >= '0' && rcode[1] <= '9' && rcode[2] >= '0' &&
	         rcode[2] <= '9', "reply code \"%s\" (libmilter refuses it)",
	         rcode);
	return atoi(rcode);
}

/* libmilter's myisenhsc(), and the class must be the code's. */
static void
check_status(const char *xcode, const char *rcode)
{
	size_t i = 2, h;

	if (xcode == NULL)
		return;
	FZ_CHECK((xcode[0] == '2' || xcode[0] == '4' || xcode[0] == '5') &&
	         xcode[1] == '.', "enhanced status \"%s\"", xcode);
	for (h = 0; h < 3 && xcode[i + h] >= '0' && xcode[i + h] <= '9'; h++)
		continue;
	FZ_CHECK(h > 0 && xcode[i + h] == '.', "enhanced status \"%s\"", xcode);
	i += h + 1;
	for (h = 0; h < 3 && xcode[i + h] >= '0' && xcode[i + h] <= '9'; h++)
		continue;
	FZ_CHECK(h > 0 && xcode[i + h] == '\0', "enhanced status \"%s\"",
	         xcode);
	FZ_CHECK(xcode[0] == rcode[0], "status %s with code %s", xcode, rcode);
}

static void
check_reply_text(const char *t)
{
	FZ_CHECK(strpbrk(t, "\r\n") == NULL, "reply text with CR or LF "
	         "(libmilter refuses it)");
	FZ_CHECK(strlen(t) <= LIBMILTER_MAXREPLYLEN, "reply text of %zu "
	         "bytes (libmilter refuses over %d)", strlen(t),
	         LIBMILTER_MAXREPLYLEN);
	fz_check_text("reply text", t, strlen(t) + 1);
	/* The MTA formats the text: every '%' must come doubled. */
	for (const char *p = t; *p; p++) {
		if (*p != '%')
			continue;
		FZ_CHECK(p[1] == '%', "lone '%%' in reply text \"%s\"", t);
		p++;
	}
}

static void
note_reply(SMFICTX *ctx, int code)
{
	ctx->reply_code = code;
	ctx->nreplies++;
}

int
smfi_setreply(SMFICTX *ctx, char *rcode, char *xcode, char *message)
{
	int code;

	FZ_CHECK(ctx != NULL, "smfi_setreply without a context");
	code = reply_code(rcode);
	check_status(xcode, rcode);
	if (message != NULL)
		check_reply_text(message);
	note_reply(ctx, code);
	return MI_SUCCESS;
}

int
smfi_setmlreply(SMFICTX *ctx, const char *rcode, const char *xcode, ...)
{
	va_list ap;
	const char *t;
	int code, n = 0;

	FZ_CHECK(ctx != NULL, "smfi_setmlreply without a context");
	code = reply_code(rcode);
	check_status(xcode, rcode);
	va_start(ap, xcode);
	while ((t = va_arg(ap, const char *)) != NULL) {
		check_reply_text(t);
		n++;
		FZ_CHECK(n <= LIBMILTER_MAXREPLIES, "more than %d reply lines",
		         LIBMILTER_MAXREPLIES);
	}
	va_end(ap);
	FZ_CHECK(n >= 1, "multi-line reply without a line");
	note_reply(ctx, code);
	return MI_SUCCESS;
}

/* glue.c's fg_log(), renamed by the build: format it as fg_log() would,
 * and check the line. */
void fg_fuzz_glue_log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static bool show_log;

void
fg_fuzz_glue_log(int level, const char *fmt, ...)
{
	char line[2048];
	va_list ap;

	FZ_CHECK(level >= FG_LOG_ERR && level <= FG_LOG_DEBUG, "log level %d",
	         level);
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fz_check_text("log line", line, sizeof(line));
	if (show_log)
		fprintf(stderr, "log %s: %s\n", fg_log_level_name(level), line);
}

/* ---- configurations ------------------------------------------------------ */

static const char config_a[] =
	"max_delay = \"1s\";\n"
	"max_delayed_sessions = 0;\n"
	"network_prefix4 = 24;\n"
	"network_prefix6 = 64;\n"
	"banned_action = \"disconnect\";\n"
	"exempt = {\n"
	"  networks = [ \"127.0.0.0/8\", \"::1\", \"192.0.2.128/25\" ];\n"
	"  authenticated = true;\n"
	"  hostnames = [ \".trusted.example\" ];\n"
	"  daemons = [ \"submission\" ];\n"
	"};\n"
	"rules = (\n"
	"  { name = \"dictionary\"; type = \"invalid_recipients\";\n"
	"    per = \"network\"; limit = 2; window = \"1h\"; ratio = 0.3;\n"
	"    min_sample = 10;\n"
	"    ladder = (\n"
	"      { over = 1; action = \"delay\"; delay = \"2s\";\n"
	"        growth = \"linear\"; then = \"tempfail\"; },\n"
	"      { over = 3; action = \"tempfail\"; reply = { code = 451;\n"
	"        status = \"4.7.1\"; text = [\n"
	"        \"Slow down: ${count} of ${limit} in ${window}\",\n"
	"        \"100% sure, 50%% off\" ]; }; },\n"
	"      { over = 5; action = \"ban\"; ban = \"10m\"; }\n"
	"    );\n"
	"    networks = ( { network = \"198.51.100\"; limit = 0; },\n"
	"                 { network = \"2001:db8::/48\"; limit = 1; } ); },\n"
	"  { name = \"conn-rate\"; type = \"connection_rate\";\n"
	"    per = \"address\"; limit = 4; window = \"1m\";\n"
	"    action = \"disconnect\"; },\n"
	"  { name = \"conc\"; type = \"concurrency\"; limit = 1;\n"
	"    action = \"tempfail\"; },\n"
	"  { name = \"throttle\"; type = \"bad_recipient_throttle\";\n"
	"    limit = 1; action = \"delay\"; delay = \"1s\";\n"
	"    growth = \"doubling\"; then = \"reject\"; reply = { code = 550;\n"
	"    status = \"5.7.1\"; text = \"Too many bad recipients (${count})\";\n"
	"    }; },\n"
	"  { name = \"rpm\"; type = \"recipients_per_message\"; limit = 3; },\n"
	"  { name = \"helo\"; type = \"helo_rate\"; per = \"helo\"; limit = 2;\n"
	"    window = \"1m\"; action = \"reject\"; },\n"
	"  { name = \"mail\"; type = \"mail_rate\"; per = \"sender_domain\";\n"
	"    limit = 2; window = \"1m\"; },\n"
	"  { name = \"rcpt-dom\"; type = \"recipient_rate\";\n"
	"    per = \"recipient_domain\"; limit = 3; window = \"1m\";\n"
	"    action = \"tempfail\"; monitor = true; },\n"
	"  { name = \"rejected\"; type = \"rejected_recipients\";\n"
	"    per = \"global\"; limit = 4; window = \"1m\"; action = \"ban\";\n"
	"    ban = \"1m\"; }\n"
	");\n";

static const char config_b[] =
	"monitor = false;\n"
	"on_error = \"accept\";\n"
	"max_delay = \"2s\";\n"
	"max_delayed_sessions = 0;\n"
	"network_prefix4 = 16;\n"
	"network_prefix6 = 48;\n"
	"banned_action = \"reject\";\n"
	"banned_reply = { code = 550; status = \"5.7.0\";\n"
	"  text = [ \"You are banned\", \"100% banned, see %s\",\n"
	"           \"${count} ${limit} ${window} ${delay}\" ]; };\n"
	"rules = (\n"
	"  { name = \"dictionary\"; type = \"invalid_recipients\";\n"
	"    per = \"address\"; limit = 1; window = \"10m\"; decay = \"1h\";\n"
	"    ladder = (\n"
	"      { over = 1; action = \"delay\"; delay = \"1s\"; },\n"
	"      { over = 2; action = \"reject\"; },\n"
	"      { over = 3; action = \"ban\"; ban = \"1h\";\n"
	"        reply = { code = 421; text = \"%d%s%n\"; }; }\n"
	"    ); },\n"
	"  { name = \"helo-global\"; type = \"helo_rate\"; per = \"global\";\n"
	"    limit = 3; window = \"1m\"; action = \"delay\"; delay = \"1s\";\n"
	"    then = \"disconnect\"; },\n"
	"  { name = \"net-conn\"; type = \"connection_rate\";\n"
	"    per = \"network\"; limit = 2; window = \"1m\";\n"
	"    action = \"tempfail\"; monitor = true; },\n"
	"  { name = \"conc\"; type = \"concurrency\"; per = \"global\";\n"
	"    limit = 1; action = \"reject\"; },\n"
	"  { name = \"rpm\"; type = \"recipients_per_message\"; limit = 2;\n"
	"    action = \"reject\"; reply = { code = 554; status = \"5.5.3\";\n"
	"    text = [ \"Too many\", \"recipients\" ]; }; }\n"
	");\n";

static struct fg_config *configs[2];

static void
diag(void *arg, bool is_warning, const char *line)
{
	(void)arg;
	if (!is_warning)
		fprintf(stderr, "fuzz_glue: %s\n", line);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *texts[2] = {config_a, config_b};
	const char *e = getenv("FG_FUZZ_SHOW_LOG");

	(void)argc;
	(void)argv;
	show_log = e != NULL && *e != '\0' && *e != '0';
	/* lib/'s own messages (the store) only when something is wrong. */
	fg_log_open("fuzz_glue", true, FG_LOG_ERR);
	for (int i = 0; i < 2; i++) {
		int rc = fg_config_load_string(texts[i], "fuzz_glue.conf",
		                               &configs[i], diag, NULL);
		if (rc != 0) {
			fprintf(stderr, "fuzz_glue: config %d does not load: %s\n",
			        i, fg_strerror(rc));
			abort();
		}
		FZ_CHECK(configs[i]->max_delayed_sessions == 0, "delays on");
	}
	if (fg_glue_register() != 0 || !registered) {
		fprintf(stderr, "fuzz_glue: fg_glue_register failed\n");
		abort();
	}
	FZ_CHECK(desc.xxfi_connect != NULL && desc.xxfi_helo != NULL &&
	         desc.xxfi_envfrom != NULL && desc.xxfi_envrcpt != NULL &&
	         desc.xxfi_eom != NULL && desc.xxfi_abort != NULL &&
	         desc.xxfi_close != NULL, "a callback is missing");
	return 0;
}

/* ---- driving the callbacks ---------------------------------------------- */

#define NCTX 2
#define MAX_STEPS 64
#define MAX_CLIENTS 16

static const char *const macro_names[] = {
	"{daemon_name}", "i", "{auth_authen}", "{rcpt_mailer}",
	"{rcpt_host}", "{rcpt_addr}", "j", "{daemon_port}",
	"{client_connections}", "{mail_addr}", "{auth_type}", "{i}",
	"_", "{client_addr}", "{mail_mailer}", "{if_addr}",
};

static const char *const rcpt_hosts[] = {
	"5.1.1", "4.1.1", "5.7.1", "5.1.10", "550 5.1.1", "5.1.1 x", "",
};

static const char *const rcpt_addrs[] = {
	"Recipient address rejected: User unknown in local recipient table",
	"550 5.1.1 User unknown", "Relay access denied", "no such user here",
	"<user@example.org>", "",
};

/* A string the caller frees, or NULL when the input says so. */
static char *
take_str(struct fz *z, bool maybe_null)
{
	size_t len;
	char *s;

	if (maybe_null && (fz_u8(z) & 7) == 0)
		return NULL;
	len = fz_u8(z);
	if (len > z->n)
		len = z->n;
	s = malloc(len + 1);
	if (s == NULL)
		abort();
	memcpy(s, z->p, len);
	s[len] = '\0';
	z->p += len;
	z->n -= len;
	return s;
}

static char *
copy_str(const char *t)
{
	char *s = strdup(t);

	if (s == NULL)
		abort();
	return s;
}

static char **
take_argv(struct fz *z)
{
	uint8_t b = fz_u8(z);
	size_t n;
	char **argv;

	if (b == 0xff)
		return NULL;
	n = b % 5;
	argv = calloc(n + 1, sizeof(*argv));
	if (argv == NULL)
		abort();
	for (size_t i = 0; i < n; i++)
		argv[i] = take_str(z, false);
	return argv;
}

static void
free_argv(char **argv)
{
	if (argv == NULL)
		return;
	for (size_t i = 0; argv[i] != NULL; i++)
		free(argv[i]);
	free(argv);
}

static void
macro_set(SMFICTX *ctx, const char *name, char *value)
{
	for (size_t i = 0; i < ctx->nmac; i++) {
		if (strcmp(ctx->mac[i].name, name) == 0) {
			free(ctx->mac[i].value);
			if (value != NULL) {
				ctx->mac[i].value = value;
				return;
			}
			free(ctx->mac[i].name);
			ctx->mac[i] = ctx->mac[--ctx->nmac];
			return;
		}
	}
	if (value == NULL)
		return;
	if (ctx->nmac == MAX_MACROS) {
		free(value);
		return;
	}
	ctx->mac[ctx->nmac].name = copy_str(name);
	ctx->mac[ctx->nmac].value = value;
	ctx->nmac++;
}

static void
macros_clear(SMFICTX *ctx)
{
	for (size_t i = 0; i < ctx->nmac; i++) {
		free(ctx->mac[i].name);
		free(ctx->mac[i].value);
	}
	ctx->nmac = 0;
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t call_started;

static void
before(SMFICTX *ctx)
{
	ctx->reply_code = 0;
	ctx->nreplies = 0;
	call_started = mono_ms();
}

/* What every callback's answer must look like. */
static void
after(SMFICTX *ctx, const char *what, sfsistat rc)
{
	int64_t took = mono_ms() - call_started;

	FZ_CHECK(took < 5000, "%s took %lld ms: a callback slept although "
	         "max_delayed_sessions = 0", what, (long long)took);
	FZ_CHECK(rc == SMFIS_CONTINUE || rc == SMFIS_REJECT ||
	         rc == SMFIS_TEMPFAIL, "%s returned %d", what, (int)rc);
	FZ_CHECK(ctx->nreplies <= 1, "%s set %d replies", what, ctx->nreplies);
	if (ctx->nreplies == 0)
		return;
	FZ_CHECK(rc != SMFIS_CONTINUE, "%s set reply %d and continued", what,
	         ctx->reply_code);
	if (rc == SMFIS_REJECT)
		FZ_CHECK(ctx->reply_code / 100 == 5, "%s rejected with %d", what,
		         ctx->reply_code);
	else
		FZ_CHECK(ctx->reply_code / 100 == 4, "%s tempfailed with %d",
		         what, ctx->reply_code);
}

struct run {
	SMFICTX ctx[NCTX];
	char clients[MAX_CLIENTS][FG_KEY_MAX]; /* keys to check at the end */
	size_t nclients;
};

static void
note_client(struct run *r, const struct fg_config *cfg, const fg_addr *a)
{
	if (r->nclients + 3 > MAX_CLIENTS)
		return;
	fg_key_address(r->clients[r->nclients++], a);
	fg_key_global(r->clients[r->nclients++]);
	if (cfg != NULL) {
		fg_policy_network_key(cfg, a, r->clients[r->nclients]);
		if (r->clients[r->nclients][0] != '\0')
			r->nclients++;
	}
}

static void
do_connect(struct run *r, SMFICTX *ctx, struct fz *z,
           const struct fg_config *cfg)
{
	struct sockaddr *sa = NULL;
	char *host;
	fg_addr a;
	sfsistat rc;

	switch (fz_u8(z) % 4) {
	case 0:
		break;
	case 1: {
		struct sockaddr_in *sin = calloc(1, sizeof(*sin));
		if (sin == NULL)
			abort();
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)fz_uint(z, 2));
		for (int i = 0; i < 4; i++)
			((uint8_t *)&sin->sin_addr)[i] = fz_u8(z);
		sa = (struct sockaddr *)sin;
		break;
	}
	case 2: {
		struct sockaddr_in6 *sin6 = calloc(1, sizeof(*sin6));
		if (sin6 == NULL)
			abort();
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)fz_uint(z, 2));
		for (int i = 0; i < 16; i++)
			sin6->sin6_addr.s6_addr[i] = fz_u8(z);
		sa = (struct sockaddr *)sin6;
		break;
	}
	default: {
		struct sockaddr_un *sux = calloc(1, sizeof(*sux));
		if (sux == NULL)
			abort();
		sux->sun_family = AF_UNIX;
		snprintf(sux->sun_path, sizeof(sux->sun_path), "/run/x");
		sa = (struct sockaddr *)sux;
		break;
	}
	}
	host = take_str(z, true);
	if (sa != NULL && fg_addr_from_sockaddr(sa, &a) == 0)
		note_client(r, cfg, &a);
	before(ctx);
	rc = desc.xxfi_connect(ctx, host, sa);
	after(ctx, "connect", rc);
	FZ_CHECK(ctx->priv != NULL, "connect left no private data");
	free(host);
	free(sa);
}

static void
do_close(SMFICTX *ctx)
{
	sfsistat rc;

	before(ctx);
	rc = desc.xxfi_close(ctx);
	after(ctx, "close", rc);
	FZ_CHECK(ctx->priv == NULL, "close left private data behind");
}

static void
do_step(struct run *r, struct fz *z, const struct fg_config *cfg)
{
	uint8_t op = fz_u8(z);
	SMFICTX *ctx = &r->ctx[op >> 7];
	sfsistat rc;

	switch ((op & 0x7f) % 12) {
	case 0:
		/* libmilter calls connect once per connection. */
		if (ctx->priv == NULL)
			do_connect(r, ctx, z, cfg);
		break;
	case 1: {
		char *helo = take_str(z, true);
		before(ctx);
		rc = desc.xxfi_helo(ctx, helo);
		after(ctx, "helo", rc);
		free(helo);
		break;
	}
	case 2: {
		char **argv = take_argv(z);
		before(ctx);
		rc = desc.xxfi_envfrom(ctx, argv);
		after(ctx, "envfrom", rc);
		free_argv(argv);
		break;
	}
	case 3:
	case 11: {
		/* RCPT, or a burst of the same RCPT to pass limits. */
		unsigned n = (op & 0x7f) % 12 == 3 ? 1 : 1 + fz_u8(z) % 16;
		char **argv = take_argv(z);
		for (unsigned i = 0; i < n; i++) {
			before(ctx);
			rc = desc.xxfi_envrcpt(ctx, argv);
			after(ctx, "envrcpt", rc);
		}
		free_argv(argv);
		break;
	}
	case 4:
		before(ctx);
		rc = desc.xxfi_eom(ctx);
		after(ctx, "eom", rc);
		break;
	case 5:
		before(ctx);
		rc = desc.xxfi_abort(ctx);
		after(ctx, "abort", rc);
		break;
	case 6:
		do_close(ctx);
		break;
	case 7: {
		uint8_t b = fz_u8(z);
		char *name = b < 0xf0
		    ? copy_str(macro_names[b % FG_NELEM(macro_names)])
		    : take_str(z, false);
		if (name[0] != '\0')
			macro_set(ctx, name, take_str(z, true));
		free(name);
		break;
	}
	case 8:
		macros_clear(ctx);
		break;
	case 9: {
		unsigned long f[4], pf[4] = {~0UL, ~0UL, ~0UL, ~0UL};
		if (desc.xxfi_negotiate == NULL)
			break;
		for (int i = 0; i < 4; i++)
			f[i] = (unsigned long)fz_uint(z, 4);
		before(ctx);
		rc = desc.xxfi_negotiate(ctx, f[0], f[1], f[2], f[3], &pf[0],
		                         &pf[1], &pf[2], &pf[3]);
		after(ctx, "negotiate", rc);
		FZ_CHECK(rc == SMFIS_CONTINUE, "negotiate returned %d", (int)rc);
		FZ_CHECK((pf[0] & ~f[0]) == 0 && (pf[1] & ~f[1]) == 0,
		         "negotiate asked for what the MTA did not offer");
		break;
	}
	default: {
		/* The recipient macros of an MTA that rejected the RCPT. */
		uint8_t b = fz_u8(z);
		macro_set(ctx, "{rcpt_mailer}",
		          (b & 1) ? copy_str(b & 2 ? "error" : "ERROR")
		                  : take_str(z, true));
		macro_set(ctx, "{rcpt_host}", (b & 4)
		          ? copy_str(rcpt_hosts[(b >> 4) % FG_NELEM(rcpt_hosts)])
		          : take_str(z, true));
		macro_set(ctx, "{rcpt_addr}", (b & 8)
		          ? copy_str(rcpt_addrs[(b >> 4) % FG_NELEM(rcpt_addrs)])
		          : take_str(z, true));
		break;
	}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct run r;
	struct fg_store_options opt;
	struct fg_config *cfg;
	fg_store *st = NULL;
	char err[256];
	struct fz z;
	uint8_t sel;

	fz_init(&z, data, size);
	sel = fz_u8(&z);
	cfg = sel % 3 < 2 ? configs[sel % 3] : NULL;

	memset(&opt, 0, sizeof(opt));
	opt.path = NULL;
	opt.horizon_ms = configs[0]->horizon_ms;
	opt.retention_ms = configs[0]->retention_ms;
	opt.queue_size = 4096;
	if (fg_store_open(&opt, INT64_C(1700000000000), &st, err,
	                  sizeof(err)) != 0) {
		fprintf(stderr, "fuzz_glue: cannot open the store: %s\n", err);
		abort();
	}
	fg_glue_init(st);
	fg_config_publish(fg_config_ref(cfg));

	memset(&r, 0, sizeof(r));
	for (int i = 0; i < MAX_STEPS && z.n > 0; i++)
		do_step(&r, &z, cfg);

	/* The MTA goes away: libmilter closes every connection. */
	for (int i = 0; i < NCTX; i++) {
		do_close(&r.ctx[i]);
		macros_clear(&r.ctx[i]);
	}
	for (size_t i = 0; i < r.nclients; i++)
		FZ_CHECK(fg_store_conn_count(st, r.clients[i]) == 0,
		         "%lld concurrency slots of %s still held after close",
		         (long long)fg_store_conn_count(st, r.clients[i]),
		         r.clients[i]);

	fg_config_publish(NULL);
	for (int i = 0; i < 2; i++)
		FZ_CHECK(atomic_load(&configs[i]->refs) == 1, "config %d has %ld "
		         "references after every session closed", i,
		         (long)atomic_load(&configs[i]->refs));
	fg_store_close(st);
	return 0;
}
