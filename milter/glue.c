/*
 * glue.c - libmilter callbacks, translated to lib/session calls and
 * back.  What lives here and nowhere else: reading macros, the
 * connection's private pointer, smfi_setreply, the SMFIS_* codes, the
 * tarpit sleep, and the one failure policy.  The session itself (facts,
 * keys, recording, deciding, effects) is lib/session.c.
 *
 * Lifetimes: a connection context from connect to close (close can come
 * without connect, with NULL private data); the message part is reset
 * from MAIL, EOM and abort.  Any pointer from libmilter may be NULL; the
 * session copies every string it keeps.  A connection keeps the
 * configuration snapshot it started with until close.
 */
#include "glue.h"

#include <errno.h>
#include <inttypes.h>
#include <libmilter/mfapi.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "classify.h"
#include "config.h"
#include "log.h"
#include "negotiate.h"
#include "net.h"
#include "session.h"
#include "sleep.h"

struct conn {
	fg_session *s;
	struct fg_config *cfg;        /* acquired at connect, released at close */
};

static fg_store *store;
static struct fg_tarpit tarpit = FG_TARPIT_INIT;
static struct fg_session_env env;
static _Atomic uint64_t next_session_id;
static _Atomic bool shutting_down;
static _Atomic bool warned_rcpt_rej;
static struct fg_ratelimit rl_internal = FG_RATELIMIT_INIT;
static struct fg_ratelimit rl_macro = FG_RATELIMIT_INIT;

static int64_t
clock_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Event times: the wall clock (they are stored and compared across
 * restarts). */
static int64_t
now_ms(void)
{
	return clock_ms(CLOCK_REALTIME);
}

static const char *
macro(SMFICTX *ctx, const char *name)
{
	const char *v = smfi_getsymval(ctx, (char *)name);

	return (v != NULL && *v != '\0') ? v : NULL;
}

/* ---- the one failure policy --------------------------------------- */

static sfsistat
fail(const struct conn *c, const char *stage, const char *what)
{
	uint64_t skipped = 0;
	bool tempfail = c == NULL || c->cfg == NULL ||
	                c->cfg->on_error == FG_ON_ERROR_TEMPFAIL;

	if (fg_ratelimit(&rl_internal, now_ms(), 60000, &skipped))
		fg_log(FG_LOG_ERR, "id=%" PRIu64 " stage=%s: %s; answering %s"
		       " (%" PRIu64 " similar errors not logged)",
		       c != NULL && c->s != NULL ? fg_session_id(c->s) : 0,
		       stage, what, tempfail ? "tempfail" : "continue",
		       skipped);
	return tempfail ? SMFIS_TEMPFAIL : SMFIS_CONTINUE;
}

/* ---- turning a verdict into an answer ----------------------------- */

/* smfi_setreply treats the text as a format: double every '%'.  A reply
 * line may not exceed 980 characters, or libmilter refuses the reply. */
#define REPLY_LINE_LIMIT 980

static void
escape_percent(char *dst, size_t size, const char *src)
{
	size_t o = 0;

	if (size > REPLY_LINE_LIMIT + 1)
		size = REPLY_LINE_LIMIT + 1;
	for (; *src != '\0' && o + 2 < size; src++) {
		if (*src == '%')
			dst[o++] = '%';
		dst[o++] = *src;
	}
	dst[o] = '\0';
}

static void
set_reply(SMFICTX *ctx, const struct fg_verdict *v)
{
	char code[8], buf[FG_REPLY_MAX_LINES][FG_REPLY_LINE_MAX * 2];
	char *l[FG_REPLY_MAX_LINES + 1];
	size_t n = v->nlines;

	if (v->code == 0)
		return;
	snprintf(code, sizeof(code), "%d", v->code);
	memset(l, 0, sizeof(l));
	for (size_t i = 0; i < n && i < FG_REPLY_MAX_LINES; i++) {
		escape_percent(buf[i], sizeof(buf[i]), v->lines[i]);
		l[i] = buf[i];
	}
	if (n <= 1) {
		smfi_setreply(ctx, code,
		              v->status[0] != '\0' ? (char *)v->status : NULL,
		              n == 1 ? l[0] : NULL);
	} else {
		smfi_setmlreply(ctx, code,
		                v->status[0] != '\0' ? v->status : NULL,
		                l[0], l[1], l[2], l[3], l[4], l[5], l[6], l[7],
		                (char *)NULL);
	}
}

static sfsistat
action_status(enum fg_action a)
{
	switch (a) {
	case FG_ACT_CONTINUE:
	case FG_ACT_DELAY:
		return SMFIS_CONTINUE;
	case FG_ACT_REJECT:
		return SMFIS_REJECT;
	case FG_ACT_TEMPFAIL:
	case FG_ACT_DISCONNECT:
	case FG_ACT_BAN:
	default:
		return SMFIS_TEMPFAIL;
	}
}

/* Sleeps ms by the monotonic clock (lib/sleep.c): a step of the wall
 * clock neither stretches nor cuts it, and a stop wakes it soon. */
static void
sleep_delay(int64_t ms)
{
	fg_sleep_delay(&fg_clock_system, ms, &shutting_down);
}

static sfsistat
answer(SMFICTX *ctx, struct conn *c, const struct fg_verdict *v)
{
	enum fg_action act = fg_session_answer(v, false);

	if (v->delay_ms > 0 && !v->monitor) {
		sleep_delay(v->delay_ms);
		fg_session_delay_done(c->s);
		act = fg_session_answer(v, true);
	}
	if (act == FG_ACT_CONTINUE)
		return SMFIS_CONTINUE;
	set_reply(ctx, v);
	return action_status(act);
}

/* ---- callbacks ---------------------------------------------------- */

static sfsistat
cb_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
             unsigned long f2, unsigned long f3, unsigned long *pf0,
             unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
	(void)f0;
	(void)f2;
	(void)f3;
	/* Once per run: the MTA's offer does not change between sessions. */
	if ((f1 & SMFIP_RCPT_REJ) == 0 &&
	    !atomic_exchange(&warned_rcpt_rej, true))
		fg_log(FG_LOG_WARNING, "the MTA does not offer rejected "
		       "recipients (SMFIP_RCPT_REJ): invalid recipients "
		       "cannot be counted");
	fg_negotiate_ask(ctx, f1, pf0, pf1, pf2, pf3);
	return SMFIS_CONTINUE;
}

static struct conn *
conn_of(SMFICTX *ctx)
{
	struct conn *c = smfi_getpriv(ctx);

	return c != NULL && c->s != NULL ? c : NULL;
}

static sfsistat
do_connect(SMFICTX *ctx, char *hostname, _SOCK_ADDR *hostaddr)
{
	struct conn *c;
	fg_addr client;
	bool known = false;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return fail(NULL, "connect", "out of memory");
	smfi_setpriv(ctx, c);
	if ((c->cfg = fg_config_acquire()) == NULL)
		return fail(c, "connect", "no configuration");
	c->s = fg_session_new(&env, c->cfg,
	                      atomic_fetch_add(&next_session_id, 1));
	if (c->s == NULL)
		return fail(c, "connect", "out of memory");
	if (fg_log_enabled(FG_LOG_DEBUG))
		fg_session_trace(c->s, true);
	if (hostaddr != NULL &&
	    fg_addr_from_sockaddr((const struct sockaddr *)hostaddr,
	                          &client) == 0)
		known = true;
	return answer(ctx, c, fg_session_connect(c->s, known ? &client : NULL,
	                                         hostname,
	                                         macro(ctx, "{daemon_name}"),
	                                         now_ms()));
}

static sfsistat
do_helo(SMFICTX *ctx, char *helohost)
{
	struct conn *c = conn_of(ctx);

	if (c == NULL)
		return fail(smfi_getpriv(ctx), "helo",
		            "HELO without a connection context");
	return answer(ctx, c, fg_session_helo(c->s, helohost, now_ms()));
}

static sfsistat
do_envfrom(SMFICTX *ctx, char **argv)
{
	struct conn *c = conn_of(ctx);
	int64_t now = now_ms();

	if (c == NULL)
		return fail(smfi_getpriv(ctx), "mail",
		            "MAIL without a connection context");
	return answer(ctx, c, fg_session_mail(
	    c->s, argv != NULL && argv[0] != NULL ? argv[0] : "<>",
	    macro(ctx, "i"), macro(ctx, "{auth_authen}") != NULL, now));
}

static sfsistat
do_envrcpt(SMFICTX *ctx, char **argv)
{
	struct conn *c = conn_of(ctx);
	int64_t now = now_ms();
	const char *mailer, *host, *text;

	if (c == NULL)
		return fail(smfi_getpriv(ctx), "rcpt",
		            "RCPT without a connection context");
	mailer = macro(ctx, "{rcpt_mailer}");
	host = macro(ctx, "{rcpt_host}");
	if (mailer == NULL) {
		uint64_t skipped = 0;
		if (fg_ratelimit(&rl_macro, now, 60000, &skipped))
			fg_log(FG_LOG_WARNING, "id=%" PRIu64 " no {rcpt_mailer} "
			       "macro: recipients cannot be classified, "
			       "counted as valid (check milter_rcpt_macros)",
			       fg_session_id(c->s));
	}
	text = macro(ctx, "{rcpt_addr}");
	return answer(ctx, c, fg_session_rcpt(
	    c->s, argv != NULL && argv[0] != NULL ? argv[0] : "<>",
	    fg_rcpt_classify(mailer, host, text), host, text,
	    macro(ctx, "i"), now));
}

static sfsistat
cb_eom(SMFICTX *ctx)
{
	struct conn *c = conn_of(ctx);

	if (c != NULL)
		fg_session_end_message(c->s);
	return SMFIS_CONTINUE;
}

static sfsistat
cb_abort(SMFICTX *ctx)
{
	return cb_eom(ctx);
}

static sfsistat
do_close(SMFICTX *ctx, bool with_store)
{
	struct conn *c = smfi_getpriv(ctx);

	if (c == NULL)
		return SMFIS_CONTINUE;
	if (c->s != NULL && with_store) {
		fg_session_close(c->s, now_ms());
		fg_session_free(c->s);
	} else {
		/* Shutting down: the store may be gone already. */
		fg_session_discard(c->s);
	}
	fg_config_release(c->cfg);
	smfi_setpriv(ctx, NULL);
	free(c);
	return SMFIS_CONTINUE;
}

/*
 * In-flight accounting: smfi_main() can return while workers are still
 * inside callbacks (asleep in a delay, say), and the store is closed
 * right after.  Every callback that uses the store enters and leaves;
 * once shutting down, new ones answer at once without touching it, and
 * fg_glue_shutdown() waits for those in flight.
 */
static _Atomic int inflight;

static bool
enter(void)
{
	atomic_fetch_add(&inflight, 1);
	if (atomic_load(&shutting_down)) {
		atomic_fetch_sub(&inflight, 1);
		return false;
	}
	return true;
}

static void
leave(void)
{
	atomic_fetch_sub(&inflight, 1);
}

static sfsistat
cb_connect(SMFICTX *ctx, char *hostname, _SOCK_ADDR *hostaddr)
{
	sfsistat rc;

	if (!enter())
		return SMFIS_TEMPFAIL;
	rc = do_connect(ctx, hostname, hostaddr);
	leave();
	return rc;
}

static sfsistat
cb_helo(SMFICTX *ctx, char *helohost)
{
	sfsistat rc;

	if (!enter())
		return SMFIS_TEMPFAIL;
	rc = do_helo(ctx, helohost);
	leave();
	return rc;
}

static sfsistat
cb_envfrom(SMFICTX *ctx, char **argv)
{
	sfsistat rc;

	if (!enter())
		return SMFIS_TEMPFAIL;
	rc = do_envfrom(ctx, argv);
	leave();
	return rc;
}

static sfsistat
cb_envrcpt(SMFICTX *ctx, char **argv)
{
	sfsistat rc;

	if (!enter())
		return SMFIS_TEMPFAIL;
	rc = do_envrcpt(ctx, argv);
	leave();
	return rc;
}

static sfsistat
cb_close(SMFICTX *ctx)
{
	sfsistat rc;

	if (!enter())
		return do_close(ctx, false);
	rc = do_close(ctx, true);
	leave();
	return rc;
}

static struct smfiDesc desc = {
	.xxfi_name = "floodgate",
	.xxfi_version = SMFI_VERSION,
	.xxfi_flags = 0,
	.xxfi_connect = cb_connect,
	.xxfi_helo = cb_helo,
	.xxfi_envfrom = cb_envfrom,
	.xxfi_envrcpt = cb_envrcpt,
	.xxfi_eom = cb_eom,
	.xxfi_abort = cb_abort,
	.xxfi_close = cb_close,
	.xxfi_negotiate = cb_negotiate,
};

int
fg_glue_register(void)
{
	return smfi_register(desc) == MI_SUCCESS ? 0 : -1;
}

void
fg_glue_set_share(struct fg_share *sh)
{
	env.share = sh;
}

void
fg_glue_init(fg_store *st)
{
	store = st;
	env.store = st;
	env.tarpit = &tarpit;
	env.log = true;
	/* Ids unique across restarts: start from the clock in ms × 1000. */
	atomic_store(&next_session_id, (uint64_t)now_ms() * 1000);
}

int64_t
fg_glue_tarpit(void)
{
	return fg_tarpit_count(&tarpit);
}

void
fg_glue_shutdown(void)
{
	struct timespec tick = {0, 10 * 1000000L};

	atomic_store(&shutting_down, true);
	/* Sleepers wake within 100 ms; give every callback in flight up to
	 * 10 s to leave before the store goes away. */
	for (int i = 0; i < 1000 && atomic_load(&inflight) > 0; i++)
		nanosleep(&tick, NULL);
	if (atomic_load(&inflight) > 0)
		fg_log(FG_LOG_WARNING, "%d callbacks still running at stop",
		       atomic_load(&inflight));
}
