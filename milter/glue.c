/*
 * glue.c - libmilter callbacks.
 *
 * Two lifetimes: a connection context (connect → close; close can come
 * without connect, with NULL private data) and the message part of it,
 * reset by one function from MAIL, EOM and abort.  Every string libmilter
 * hands us is copied (bounded) before we keep it, and any pointer from
 * libmilter may be NULL.  The session keeps the configuration snapshot it
 * started with until close.
 */
#include "glue.h"

#include <errno.h>
#include <inttypes.h>
#include <libmilter/mfapi.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "classify.h"
#include "config.h"
#include "fg.h"
#include "keys.h"
#include "log.h"
#include "negotiate.h"
#include "net.h"
#include "policy.h"
#include "rcptlist.h"

#define NAME_MAX_LEN 256
#define MAX_EVENT_KEYS FG_STORE_MAX_KEYS

struct session {
	uint64_t id;
	struct fg_config *cfg;        /* snapshot for the whole session */
	bool has_client;
	fg_addr client;
	char client_text[FG_ADDR_STRLEN];
	char network[FG_KEY_MAX];     /* primary network key, "" if none */
	char host[NAME_MAX_LEN];      /* sanitised */
	char helo[NAME_MAX_LEN];      /* sanitised; "" before HELO */
	bool helo_seen;
	char daemon[64];
	bool authenticated;
	int64_t session_invalid;
	size_t nconc;
	/* message */
	char sender[NAME_MAX_LEN];
	bool in_message;
	char queue_id[64];
	int64_t message_rcpts;

	/* Not cleared at connect (15 KB a session, which would only push
	 * warmer data out of the cache): each is written before it is
	 * read, as has_client, nconc and the policy say. */
	/* the client's keys, formatted once for every event to use */
	struct fg_client_keys client_keys;
	/* keys this session holds a concurrency slot under */
	char conc_keys[MAX_EVENT_KEYS][FG_KEY_MAX];
	/* the verdict of the current callback (~10 KB): here rather than
	 * malloc'd per callback or on the stack, whose pages are new to the
	 * thread libmilter starts for each connection */
	struct fg_verdict verdict;
};

static fg_store *store;
static _Atomic uint64_t next_session_id;
static _Atomic int64_t delayed_now;
static pthread_mutex_t delay_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t delay_cond = PTHREAD_COND_INITIALIZER;
static _Atomic bool shutting_down;
static struct fg_ratelimit rl_internal = FG_RATELIMIT_INIT;
static struct fg_ratelimit rl_store = FG_RATELIMIT_INIT;
/* Its own limiter: sharing rl_store let a full queue silence this. */
static struct fg_ratelimit rl_unhealthy = FG_RATELIMIT_INIT;
static struct fg_ratelimit rl_macro = FG_RATELIMIT_INIT;

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
copy_sanitized(char *dst, size_t size, const char *src)
{
	fg_sanitize(dst, size, src != NULL ? src : "");
}

static const char *
macro(SMFICTX *ctx, const char *name)
{
	const char *v = smfi_getsymval(ctx, (char *)name);

	return (v != NULL && *v != '\0') ? v : NULL;
}

/* ---- the one failure policy --------------------------------------- */

static sfsistat
fail(struct session *s, const char *stage, const char *what)
{
	uint64_t skipped = 0;
	bool tempfail = s == NULL || s->cfg == NULL ||
	                s->cfg->on_error == FG_ON_ERROR_TEMPFAIL;

	if (fg_ratelimit(&rl_internal, now_ms(), 60000, &skipped))
		fg_log(FG_LOG_ERR, "id=%" PRIu64 " stage=%s: %s; answering %s"
		       " (%" PRIu64 " similar errors not logged)",
		       s != NULL ? s->id : 0, stage, what,
		       tempfail ? "tempfail" : "continue", skipped);
	return tempfail ? SMFIS_TEMPFAIL : SMFIS_CONTINUE;
}

/* ---- views of the store for the policy ---------------------------- */

static int64_t
view_count(void *ctx, const char *key, enum fg_counter c, int64_t window_ms,
           int64_t now)
{
	return fg_store_count(ctx, key, c, window_ms, now);
}

static int64_t
view_concurrent(void *ctx, const char *key)
{
	return fg_store_conn_count(ctx, key);
}

static int
view_ban(void *ctx, const char *key, int64_t now, struct fg_ban *out)
{
	return fg_store_ban_get(ctx, key, now, out);
}

static int
view_level(void *ctx, const char *rule, const char *key, int *level,
           int64_t *last_ms)
{
	return fg_store_level_get(ctx, rule, key, level, last_ms);
}

static void
facts_of(const struct session *s, enum fg_stage stage, struct fg_facts *f)
{
	memset(f, 0, sizeof(*f));
	f->stage = stage;
	f->client = s->has_client ? &s->client : NULL;
	f->client_keys = s->has_client ? &s->client_keys : NULL;
	f->client_host = s->host[0] != '\0' ? s->host : NULL;
	f->helo = s->helo_seen ? s->helo : NULL;
	f->sender = s->in_message ? s->sender : NULL;
	f->authenticated = s->authenticated;
	f->daemon_name = s->daemon[0] != '\0' ? s->daemon : NULL;
	f->session_invalid = s->session_invalid;
	f->message_rcpts = s->message_rcpts;
	f->delayed_sessions = atomic_load(&delayed_now);
}

/* The keys the event counts under.  An exempt client is stored but
 * counted under no key, so it can never push its neighbours over a
 * network limit. */
static size_t
event_keys(const struct session *s, const struct fg_facts *f,
           char (*keys)[FG_KEY_MAX])
{
	if (fg_policy_exemption(s->cfg, f) != NULL)
		return 0;
	return fg_policy_event_keys(s->cfg, f, keys, MAX_EVENT_KEYS);
}

/* Records the event under the n keys event_keys() gave. */
static void
record_keys(struct session *s, const struct fg_facts *f,
            enum fg_event_kind kind, char (*keys)[FG_KEY_MAX],
            size_t n, const char *rcpt, const char *status, int64_t now)
{
	const char *kp[MAX_EVENT_KEYS];
	struct fg_event ev;

	for (size_t i = 0; i < n; i++)
		kp[i] = keys[i];
	memset(&ev, 0, sizeof(ev));
	ev.time_ms = now;
	ev.kind = kind;
	ev.rcpt_class = kind == FG_EV_RCPT ? f->rcpt_class : FG_RCPT_NONE;
	ev.client = f->client;
	ev.client_text = f->client != NULL ? s->client_text : NULL;
	ev.network = s->network[0] != '\0' ? s->network : NULL;
	ev.helo = f->helo;
	ev.sender = f->sender;
	ev.rcpt = rcpt;
	ev.queue_id = s->queue_id[0] != '\0' ? s->queue_id : NULL;
	ev.status = status;
	ev.session_id = s->id;
	ev.keys = kp;
	ev.nkeys = n;
	if (fg_store_record(store, &ev) == FG_EFULL) {
		uint64_t skipped = 0;
		if (fg_ratelimit(&rl_store, now, 60000, &skipped))
			fg_log(FG_LOG_WARNING, "event queue full: rows are "
			       "being dropped (counts stay exact; %" PRIu64
			       " drops not logged)", skipped);
	}
}

static void
record(struct session *s, const struct fg_facts *f, enum fg_event_kind kind,
       const char *rcpt, const char *status, int64_t now)
{
	char keys[MAX_EVENT_KEYS][FG_KEY_MAX];
	size_t n = event_keys(s, f, keys);

	record_keys(s, f, kind, keys, n, rcpt, status, now);
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

static void
sleep_delay(int64_t ms)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	atomic_fetch_add(&delayed_now, 1);
	pthread_mutex_lock(&delay_lock);
	while (!atomic_load(&shutting_down)) {
		if (pthread_cond_timedwait(&delay_cond, &delay_lock, &until) ==
		    ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&delay_lock);
	atomic_fetch_sub(&delayed_now, 1);
}

/* The verdict's log line; described only when it will be written. */
static void
log_verdict(const struct session *s, enum fg_stage stage,
            const struct fg_verdict *v)
{
	char why[1024];

	if (!fg_log_enabled(FG_LOG_INFO))
		return;
	fg_verdict_describe(v, why, sizeof(why));
	fg_log(FG_LOG_INFO, "%s%s: id=%" PRIu64 " client=%s host=%s helo=%s "
	       "stage=%s %s", v->monitor ? "monitor: would " : "",
	       s->queue_id[0] != '\0' ? s->queue_id : "NOQUEUE", s->id,
	       s->has_client ? s->client_text : "unknown",
	       s->host[0] != '\0' ? s->host : "-",
	       s->helo_seen ? s->helo : "-", fg_stage_name(stage), why);
}

static sfsistat
apply(SMFICTX *ctx, struct session *s, enum fg_stage stage,
      const struct fg_verdict *v, int64_t now)
{
	enum fg_action act = v->action;
	struct fg_verdict_rec rec;

	if (act == FG_ACT_CONTINUE && !v->monitor && v->delay_ms == 0)
		return SMFIS_CONTINUE;

	if (v->ban.set && fg_store_ban_set(store, v->ban.key, v->ban.until_ms,
	                                   v->ban.reason, v->ban.source,
	                                   now) != 0)
		fg_log(FG_LOG_WARNING, "id=%" PRIu64 " cannot ban %s", s->id,
		       v->ban.key);
	for (size_t i = 0; i < v->nlevels; i++)
		if (v->levels[i].set && v->levels[i].rule != NULL)
			fg_store_level_set(store, v->levels[i].rule->name,
			                   v->levels[i].key, v->levels[i].level,
			                   v->levels[i].last_ms);

	log_verdict(s, stage, v);

	memset(&rec, 0, sizeof(rec));
	rec.time_ms = now;
	rec.session_id = s->id;
	rec.queue_id = s->queue_id[0] != '\0' ? s->queue_id : NULL;
	rec.client = s->has_client ? &s->client : NULL;
	rec.client_text = s->has_client ? s->client_text : NULL;
	rec.stage = fg_stage_name(stage);
	rec.rule = v->rule != NULL ? v->rule->name : (v->banned ? "ban" : NULL);
	rec.key = v->key;
	rec.action = fg_verdict_action(s->cfg, v);
	rec.count = v->count;
	rec.limit = v->limit;
	rec.window_ms = v->window_ms;
	rec.delay_ms = v->delay_ms;
	rec.monitor = v->monitor;
	{
		char reply[FG_REPLY_LINE_MAX + 32];
		if (v->code != 0) {
			snprintf(reply, sizeof(reply), "%d %s %s", v->code,
			         v->status, v->nlines > 0 ? v->lines[0] : "");
			rec.reply = reply;
		}
		fg_store_record_verdict(store, &rec);
	}

	if (v->monitor)
		return SMFIS_CONTINUE;
	if (v->delay_ms > 0) {
		sleep_delay(v->delay_ms);
		/* After the delay: the step's follow-up action. */
		act = v->step != NULL ? v->step->then : FG_ACT_CONTINUE;
		if (act == FG_ACT_CONTINUE)
			return SMFIS_CONTINUE;
	}
	set_reply(ctx, v);
	return action_status(act);
}

static sfsistat
decide(SMFICTX *ctx, struct session *s, struct fg_facts *f, int64_t now)
{
	struct fg_view view = {
		.ctx = store,
		.count = view_count,
		.concurrent = view_concurrent,
		.ban = view_ban,
		.level = view_level,
	};

	fg_policy_decide(s->cfg, f, &view, now, &s->verdict);
	return apply(ctx, s, f->stage, &s->verdict, now);
}

static void
message_reset(struct session *s)
{
	s->in_message = false;
	s->sender[0] = '\0';
	s->queue_id[0] = '\0';
	s->message_rcpts = 0;
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
	if ((f1 & SMFIP_RCPT_REJ) == 0)
		fg_log(FG_LOG_WARNING, "the MTA does not offer rejected "
		       "recipients (SMFIP_RCPT_REJ): invalid recipients "
		       "cannot be counted");
	fg_negotiate_ask(ctx, f1, pf0, pf1, pf2, pf3);
	return SMFIS_CONTINUE;
}

static sfsistat
do_connect(SMFICTX *ctx, char *hostname, _SOCK_ADDR *hostaddr)
{
	struct session *s;
	struct fg_facts f;
	int64_t now = now_ms();
	const char *d;

	s = malloc(sizeof(*s));
	if (s == NULL)
		return fail(NULL, "connect", "out of memory");
	memset(s, 0, offsetof(struct session, client_keys));
	s->id = atomic_fetch_add(&next_session_id, 1);
	s->cfg = fg_config_acquire();
	smfi_setpriv(ctx, s);
	if (s->cfg == NULL)
		return fail(s, "connect", "no configuration");
	if (hostaddr != NULL &&
	    fg_addr_from_sockaddr((const struct sockaddr *)hostaddr,
	                          &s->client) == 0) {
		s->has_client = true;
		fg_addr_format(&s->client, s->client_text,
		               sizeof(s->client_text));
		fg_policy_client_keys(s->cfg, &s->client, &s->client_keys);
		fg_policy_network_key(s->cfg, &s->client, s->network);
	}
	copy_sanitized(s->host, sizeof(s->host), hostname);
	if ((d = macro(ctx, "{daemon_name}")) != NULL)
		copy_sanitized(s->daemon, sizeof(s->daemon), d);

	facts_of(s, FG_STAGE_CONNECT, &f);
	/* Concurrency: one slot under every key the connection counts. */
	s->nconc = event_keys(s, &f, s->conc_keys);
	record_keys(s, &f, FG_EV_CONNECT, s->conc_keys, s->nconc, NULL, NULL,
	            now);
	for (size_t i = 0; i < s->nconc; i++)
		fg_store_conn_acquire(store, s->conc_keys[i]);
	fg_log(FG_LOG_DEBUG, "id=%" PRIu64 " connect from %s [%s]", s->id,
	       s->host, s->has_client ? s->client_text : "unknown");
	return decide(ctx, s, &f, now);
}

static sfsistat
do_helo(SMFICTX *ctx, char *helohost)
{
	struct session *s = smfi_getpriv(ctx);
	struct fg_facts f;
	int64_t now = now_ms();

	if (s == NULL || s->cfg == NULL)
		return fail(s, "helo", "HELO without a connection context");
	copy_sanitized(s->helo, sizeof(s->helo), helohost);
	s->helo_seen = true;
	facts_of(s, FG_STAGE_HELO, &f);
	record(s, &f, FG_EV_HELO, NULL, NULL, now);
	return decide(ctx, s, &f, now);
}

static sfsistat
do_envfrom(SMFICTX *ctx, char **argv)
{
	struct session *s = smfi_getpriv(ctx);
	struct fg_facts f;
	int64_t now = now_ms();
	const char *q;

	if (s == NULL || s->cfg == NULL)
		return fail(s, "mail", "MAIL without a connection context");
	message_reset(s);
	s->in_message = true;
	copy_sanitized(s->sender, sizeof(s->sender),
	               argv != NULL && argv[0] != NULL ? argv[0] : "<>");
	if ((q = macro(ctx, "i")) != NULL)
		copy_sanitized(s->queue_id, sizeof(s->queue_id), q);
	if (macro(ctx, "{auth_authen}") != NULL)
		s->authenticated = true;
	facts_of(s, FG_STAGE_MAIL, &f);
	record(s, &f, FG_EV_MAIL, NULL, NULL, now);

	if (s->cfg->on_error == FG_ON_ERROR_TEMPFAIL &&
	    !fg_store_healthy(store)) {
		struct fg_store_stats stats;
		uint64_t skipped = 0;

		fg_store_get_stats(store, &stats);
		if (fg_ratelimit(&rl_unhealthy, now, 60000, &skipped))
			fg_log(FG_LOG_ERR, "database unwritable (%s): "
			       "on_error = tempfail refuses mail until it "
			       "recovers (%" PRIu64 " not logged)",
			       stats.last_error, skipped);
		smfi_setreply(ctx, "451", "4.3.0",
		              "Temporary local problem, try again later");
		return SMFIS_TEMPFAIL;
	}
	return decide(ctx, s, &f, now);
}

static sfsistat
do_envrcpt(SMFICTX *ctx, char **argv)
{
	struct session *s = smfi_getpriv(ctx);
	struct fg_facts f;
	int64_t now = now_ms();
	char rcpt[NAME_MAX_LEN], status[32];
	const char *mailer, *host, *addr, *q;
	enum fg_rcpt_class cls;

	if (s == NULL || s->cfg == NULL)
		return fail(s, "rcpt", "RCPT without a connection context");
	copy_sanitized(rcpt, sizeof(rcpt),
	               argv != NULL && argv[0] != NULL ? argv[0] : "<>");
	mailer = macro(ctx, "{rcpt_mailer}");
	host = macro(ctx, "{rcpt_host}");
	addr = macro(ctx, "{rcpt_addr}");
	if (s->queue_id[0] == '\0' && (q = macro(ctx, "i")) != NULL)
		copy_sanitized(s->queue_id, sizeof(s->queue_id), q);
	if (mailer == NULL) {
		uint64_t skipped = 0;
		if (fg_ratelimit(&rl_macro, now, 60000, &skipped))
			fg_log(FG_LOG_WARNING, "id=%" PRIu64 " no {rcpt_mailer} "
			       "macro: recipients cannot be classified, "
			       "counted as valid (check milter_rcpt_macros)",
			       s->id);
	}
	cls = fg_rcpt_classify(mailer, host, addr);
	/* The operator's own list overrides an MTA that accepts anyone. */
	if (cls == FG_RCPT_VALID && s->cfg->valid_rcpts != NULL &&
	    fg_rcptlist_check(s->cfg->valid_rcpts, rcpt) == 0)
		cls = FG_RCPT_INVALID;
	status[0] = '\0';
	if (cls != FG_RCPT_VALID && host != NULL)
		copy_sanitized(status, sizeof(status), host);
	s->message_rcpts++;
	if (cls == FG_RCPT_INVALID)
		s->session_invalid++;
	facts_of(s, FG_STAGE_RCPT, &f);
	f.rcpt = rcpt;
	f.rcpt_class = cls;
	record(s, &f, FG_EV_RCPT, rcpt, status[0] != '\0' ? status : NULL, now);
	return decide(ctx, s, &f, now);
}

static sfsistat
cb_eom(SMFICTX *ctx)
{
	struct session *s = smfi_getpriv(ctx);

	if (s != NULL)
		message_reset(s);
	return SMFIS_CONTINUE;
}

static sfsistat
cb_abort(SMFICTX *ctx)
{
	struct session *s = smfi_getpriv(ctx);

	if (s != NULL)
		message_reset(s);
	return SMFIS_CONTINUE;
}

static sfsistat
do_close(SMFICTX *ctx, bool with_store)
{
	struct session *s = smfi_getpriv(ctx);

	if (s == NULL)
		return SMFIS_CONTINUE;
	for (size_t i = 0; with_store && i < s->nconc; i++)
		fg_store_conn_release(store, s->conc_keys[i]);
	fg_config_release(s->cfg);
	smfi_setpriv(ctx, NULL);
	free(s);
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
fg_glue_init(fg_store *st)
{
	struct timespec ts;

	store = st;
	clock_gettime(CLOCK_REALTIME, &ts);
	/* Ids unique across restarts: start from the clock in ms × 1000. */
	atomic_store(&next_session_id,
	             ((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000) *
	                 1000);
}

void
fg_glue_shutdown(void)
{
	struct timespec tick = {0, 10 * 1000000L};

	atomic_store(&shutting_down, true);
	pthread_mutex_lock(&delay_lock);
	pthread_cond_broadcast(&delay_cond);
	pthread_mutex_unlock(&delay_lock);
	/* Sleepers wake at once; give every callback in flight up to 10 s
	 * to leave before the store goes away. */
	for (int i = 0; i < 1000 && atomic_load(&inflight) > 0; i++)
		nanosleep(&tick, NULL);
	if (atomic_load(&inflight) > 0)
		fg_log(FG_LOG_WARNING, "%d callbacks still running at stop",
		       atomic_load(&inflight));
}
