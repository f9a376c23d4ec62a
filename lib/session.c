/*
 * session.c - one SMTP session: facts in, verdicts and rows out (see
 * session.h).
 *
 * The session keeps what the policy needs as facts (struct fg_facts),
 * filled as the commands come; each command records its event and asks
 * fg_policy_decide_traced() with the store as the view, then applies the
 * verdict's effects.  Work done once per session, not per event: the
 * client's text and keys, the exemption (again only when SMTP AUTH
 * changes it), and the list of keys events count under (HELO, sender and
 * recipient domain keys are added per event only when a rule uses them).
 */
#include "session.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fg.h"
#include "keys.h"
#include "log.h"
#include "rcptlist.h"
#include "share.h"

#define NAME_LEN 256
#define MAX_KEYS FG_STORE_MAX_KEYS

struct fg_session {
	const struct fg_session_env *env;
	const struct fg_config *cfg;
	uint64_t id;
	bool connected, closed;
	bool delay_held;           /* a tarpit place is ours */
	bool tracing;
	/* Refused at connect: the rows fold (store.h), under fold. */
	bool folding;
	struct fg_fold fold;

	bool has_client;
	fg_addr client;
	char client_text[FG_ADDR_STRLEN];
	char network[FG_KEY_MAX];  /* primary network key, "" if none */
	char host[NAME_LEN];       /* sanitised; "" if none */
	char helo[NAME_LEN];       /* sanitised */
	bool helo_seen;
	char daemon[64];
	bool authenticated;
	const char *exempt;        /* why exempt, or NULL */
	int64_t session_invalid;
	/* How the MTA answers an unknown user (masking): its code, status
	 * and the text after the address, and how the address is joined
	 * to it (": " Postfix; NULL: not at all, the MTA adds it itself, as
	 * sendmail does). */
	int unknown_code;
	char unknown_status[16];
	char unknown_text[200];
	const char *unknown_join;

	/* The ratio guard's sample: the valid recipients this session put
	 * in it (hashes of their normalised addresses), at most
	 * ratio_session_cap; sample_on when a rule has a ratio guard. */
	bool sample_on;
	size_t nsampled;

	/* message */
	bool in_message;
	char sender[NAME_LEN];
	char queue_id[64];
	int64_t message_rcpts;

	/* The client's keys, formatted once for every event to use. */
	struct fg_client_keys client_keys;
	/* Keys this session holds a concurrency slot under. */
	size_t nconc;
	char conc_keys[MAX_KEYS][FG_KEY_MAX];
	int64_t conc_pos[MAX_KEYS];  /* sessions of the key when we came */
	bool at_connect;           /* deciding the connect: use conc_pos */

	struct fg_verdict verdict;
	struct fg_trace trace;     /* rules: cfg->nrules entries, if tracing */
	uint64_t sampled[FG_RATIO_SESSION_CAP_MAX]; /* [0, nsampled) */
};

static struct fg_ratelimit rl_full = FG_RATELIMIT_INIT;

/* ---- the tarpit --------------------------------------------------- */

int64_t
fg_tarpit_count(struct fg_tarpit *tp)
{
	return tp != NULL ? atomic_load(&tp->asleep) : 0;
}

/* Takes a place if fewer than max are taken. */
static bool
tarpit_reserve(struct fg_tarpit *tp, int64_t max)
{
	int64_t n;

	if (tp == NULL)
		return false;
	n = atomic_load(&tp->asleep);
	while (n < max)
		if (atomic_compare_exchange_weak(&tp->asleep, &n, n + 1))
			return true;
	return false;
}

static void
tarpit_release(struct fg_tarpit *tp)
{
	if (tp != NULL)
		atomic_fetch_sub(&tp->asleep, 1);
}

/* ---- the store, as the policy sees it ----------------------------- */

static int64_t
view_count(void *ctx, const char *key, enum fg_counter c, int64_t window_ms,
           int64_t now)
{
	return fg_store_count(((fg_session *)ctx)->env->store, key, c,
	                      window_ms, now);
}

static int64_t
view_remote(void *ctx, const char *key, enum fg_counter c, int64_t window_ms,
            int64_t now, int64_t local, int64_t limit, struct fg_remote *out)
{
	struct fg_share_part part;

	fg_share_remote(((fg_session *)ctx)->env->share, key, c, window_ms, now,
	                local, limit, &part);
	out->count = part.count;
	out->age_ms = part.age_ms;
	out->nodes = part.nodes;
	return part.count;
}

/*
 * At connect, a session is measured by its place among the key's open
 * sessions when it took its slot (what acquire returned), not by the
 * count a moment later: two sessions arriving together are then told
 * apart by the order they came in, as replay sees them, rather than both
 * refused.  Later stages see the count as it is.
 */
static int64_t
view_concurrent(void *ctx, const char *key)
{
	const fg_session *s = ctx;

	if (s->at_connect)
		for (size_t i = 0; i < s->nconc; i++)
			if (strcmp(s->conc_keys[i], key) == 0)
				return s->conc_pos[i];
	return fg_store_conn_count(s->env->store, key);
}

static int
view_ban(void *ctx, const char *key, int64_t now, struct fg_ban *out)
{
	return fg_store_ban_get(((fg_session *)ctx)->env->store, key, now, out);
}

static bool
view_any_bans(void *ctx)
{
	return fg_store_any_bans(((fg_session *)ctx)->env->store);
}

static void
view_ban_lengths(void *ctx, int family, bool *used)
{
	fg_store_ban_lengths(((fg_session *)ctx)->env->store, family, used);
}

static int
view_level(void *ctx, const char *rule, const char *key, int *level,
           int64_t *last_ms)
{
	return fg_store_level_get(((fg_session *)ctx)->env->store, rule, key,
	                          level, last_ms);
}

/* ---- life --------------------------------------------------------- */

fg_session *
fg_session_new(const struct fg_session_env *env, const struct fg_config *cfg,
               uint64_t id)
{
	fg_session *s;

	if (env == NULL || cfg == NULL)
		return NULL;
	/* Not cleared whole: the key arrays and the verdict (~15 KB) are
	 * each written before they are read. */
	if ((s = malloc(sizeof(*s))) == NULL)
		return NULL;
	memset(s, 0, offsetof(struct fg_session, client_keys));
	s->env = env;
	s->cfg = cfg;
	s->id = id;
	s->nconc = 0;
	s->trace.rules = NULL;
	s->trace.cap = s->trace.n = 0;
	s->verdict.action = FG_ACT_CONTINUE;
	s->unknown_code = 550;
	snprintf(s->unknown_status, sizeof(s->unknown_status), "5.1.1");
	snprintf(s->unknown_text, sizeof(s->unknown_text), "Recipient address "
	         "rejected: User unknown in local recipient table");
	s->unknown_join = ": ";
	for (size_t i = 0; i < cfg->nrules; i++)
		if (cfg->rules[i].type == FG_RULE_INVALID_RECIPIENTS &&
		    cfg->rules[i].ratio > 0.0)
			s->sample_on = true;
	return s;
}

static void
release_slots(fg_session *s)
{
	for (size_t i = 0; i < s->nconc; i++)
		fg_store_conn_release(s->env->store, s->conc_keys[i]);
	s->nconc = 0;
}

void
fg_session_delay_done(fg_session *s)
{
	if (s != NULL && s->delay_held) {
		tarpit_release(s->env->tarpit);
		s->delay_held = false;
	}
}

void
fg_session_free(fg_session *s)
{
	if (s == NULL)
		return;
	fg_session_delay_done(s);
	release_slots(s);
	free(s->trace.rules);
	free(s);
}

void
fg_session_discard(fg_session *s)
{
	if (s == NULL)
		return;
	free(s->trace.rules);
	free(s);
}

void
fg_session_trace(fg_session *s, bool on)
{
	s->tracing = on;
	if (on && s->trace.rules == NULL && s->cfg->nrules > 0) {
		s->trace.rules = calloc(s->cfg->nrules, sizeof(*s->trace.rules));
		s->trace.cap = s->trace.rules != NULL ? s->cfg->nrules : 0;
	}
	s->trace.n = 0;
}

const struct fg_trace *
fg_session_last_trace(const fg_session *s)
{
	return &s->trace;
}

uint64_t
fg_session_id(const fg_session *s)
{
	return s->id;
}

const char *
fg_session_client_text(const fg_session *s)
{
	return s->has_client ? s->client_text : "unknown";
}

/* ---- the operators' allow list ------------------------------------ */

#define ALLOWED "allowed by an operator"

/* Whether the allow list covers what the session has shown so far: its
 * address or a network of it, its HELO name, its sender's domain. */
static const char *
allowed(const fg_session *s, int64_t now)
{
	fg_store *st = s->env->store;
	char key[FG_KEY_MAX];
	bool used[129];

	if (!fg_store_any_allows(st))
		return NULL;
	if (s->has_client) {
		unsigned bits = fg_addr_bits(&s->client);

		if (fg_store_allowed(st, fg_key_address(key, &s->client), now) == 1)
			return ALLOWED;
		fg_store_allow_lengths(st, s->client.family, used);
		for (unsigned len = bits; len-- > 0;)
			if (used[len] &&
			    fg_store_allowed(st, fg_key_network(key, &s->client,
			                                        len), now) == 1)
				return ALLOWED;
	}
	if (s->helo_seen &&
	    fg_store_allowed(st, fg_key_helo(key, s->helo), now) == 1)
		return ALLOWED;
	if (s->in_message &&
	    fg_store_allowed(st, fg_key_sender_domain(key, s->sender), now) == 1)
		return ALLOWED;
	return NULL;
}

/* ---- facts and events --------------------------------------------- */

static void
facts_of(const fg_session *s, enum fg_stage stage, struct fg_facts *f)
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
	f->delayed_sessions = fg_tarpit_count(s->env->tarpit);
	f->exemption_known = true;
	f->exemption = s->exempt;
}

static void
copy_text(char *dst, size_t size, const char *src)
{
	fg_sanitize(dst, size, src != NULL ? src : "");
}

/* Records the event (or the part of it asked) under keys[0..n)
 * (distinct already). */
static void
record_keys(fg_session *s, const struct fg_facts *f, enum fg_event_kind kind,
            char (*keys)[FG_KEY_MAX], size_t n, int64_t now,
            enum fg_record_part part)
{
	const char *kp[MAX_KEYS];
	struct fg_event ev;

	for (size_t i = 0; i < n; i++)
		kp[i] = keys[i];
	memset(&ev, 0, sizeof(ev));
	ev.time_ms = now;
	ev.kind = kind;
	ev.rcpt_class = kind == FG_EV_RCPT ? f->rcpt_class : FG_RCPT_NONE;
	ev.rcpt_sampled = kind == FG_EV_RCPT && f->rcpt_sampled;
	ev.client = f->client;
	ev.client_text = f->client != NULL ? s->client_text : NULL;
	ev.network = s->network[0] != '\0' ? s->network : NULL;
	ev.helo = f->helo;
	ev.sender = f->sender;
	ev.rcpt = kind == FG_EV_RCPT ? f->rcpt : NULL;
	ev.queue_id = s->queue_id[0] != '\0' ? s->queue_id : NULL;
	ev.status = f->rcpt_status;
	ev.session_id = s->id;
	if (kind == FG_EV_CONNECT) {
		ev.host = f->client_host;
		ev.daemon = f->daemon_name;
	}
	ev.authenticated = kind == FG_EV_MAIL && s->authenticated;
	ev.keys = kp;
	ev.nkeys = n;
	ev.keys_distinct = true;
	ev.part = part;
	ev.fold = s->folding ? &s->fold : NULL;
	if (fg_store_record(s->env->store, &ev) == FG_EFULL && s->env->log) {
		uint64_t skipped = 0;

		if (fg_ratelimit(&rl_full, now, 60000, &skipped))
			fg_log(FG_LOG_WARNING, "event queue full: rows are "
			       "being dropped (counts stay exact; %" PRIu64
			       " drops not logged)", skipped);
	}
}

/* The keys the event counts under: none for an exempt session. */
static size_t
event_keys(const fg_session *s, const struct fg_facts *f,
           char (*keys)[FG_KEY_MAX])
{
	if (s->exempt != NULL)
		return 0;
	return fg_policy_event_keys(s->cfg, f, keys, MAX_KEYS);
}

static void
record(fg_session *s, const struct fg_facts *f, enum fg_event_kind kind,
       int64_t now)
{
	char keys[MAX_KEYS][FG_KEY_MAX];

	record_keys(s, f, kind, keys, event_keys(s, f, keys), now,
	            FG_RECORD_ALL);
}

/* ---- verdicts ----------------------------------------------------- */

static void
log_verdict(const fg_session *s, enum fg_stage stage,
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

static void
log_trace(const fg_session *s, enum fg_stage stage)
{
	char line[1024];

	for (size_t i = 0; i < s->trace.n; i++)
		fg_log(FG_LOG_DEBUG, "trace: id=%" PRIu64 " client=%s stage=%s %s",
		       s->id, s->has_client ? s->client_text : "unknown",
		       fg_stage_name(stage),
		       fg_trace_describe(&s->trace.rules[i], line, sizeof(line)));
}

/* The verdict's effects and its row; nothing for a plain continue. */
static void
apply(fg_session *s, enum fg_stage stage, const struct fg_verdict *v,
      int64_t now)
{
	fg_store *st = s->env->store;
	struct fg_verdict_rec rec;
	char reply[FG_REPLY_LINE_MAX + 32];

	if (v->action == FG_ACT_CONTINUE && !v->monitor && v->delay_ms == 0)
		return;
	if (v->ban.set && fg_store_ban_set(st, v->ban.key, v->ban.until_ms,
	                                   v->ban.reason, v->ban.source,
	                                   now) != 0 && s->env->log)
		fg_log(FG_LOG_WARNING, "id=%" PRIu64 " cannot ban %s", s->id,
		       v->ban.key);
	for (size_t i = 0; i < v->nlevels; i++)
		if (v->levels[i].set && v->levels[i].rule != NULL)
			fg_store_level_set(st, v->levels[i].rule->name,
			                   v->levels[i].key, v->levels[i].level,
			                   v->levels[i].last_ms);
	if (s->env->log)
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
	if (s->folding) {
		rec.fold = &s->fold;
		/* The connect's verdict stands where the connect row does. */
		if (stage == FG_STAGE_CONNECT && s->fold.session_id != 0)
			rec.time_ms = s->fold.time_ms;
	}
	if (v->code != 0) {
		snprintf(reply, sizeof(reply), "%d %s %s", v->code, v->status,
		         v->nlines > 0 ? v->lines[0] : "");
		rec.reply = reply;
	}
	fg_store_record_verdict(st, &rec);
}

/* The verdict, its tarpit place taken; its effects not yet applied. */
static struct fg_verdict *
choose(fg_session *s, struct fg_facts *f, int64_t now)
{
	struct fg_view view = {
		.ctx = s,
		.count = view_count,
		.concurrent = view_concurrent,
		.ban = view_ban,
		.level = view_level,
		.ban_lengths = view_ban_lengths,
		.any_bans = view_any_bans,
		.remote = s->env->share != NULL ? view_remote : NULL,
	};
	struct fg_verdict *v = &s->verdict;
	struct fg_trace *tr = s->tracing ? &s->trace : NULL;

	fg_session_delay_done(s);
	fg_policy_decide_traced(s->cfg, f, &view, now, v, tr);
	if (v->delay_ms > 0 && !v->monitor) {
		if (tarpit_reserve(s->env->tarpit, s->cfg->max_delayed_sessions)) {
			s->delay_held = true;
		} else {
			/* Taken between the count and now: no place left. */
			f->delayed_sessions = INT64_MAX;
			fg_policy_decide_traced(s->cfg, f, &view, now, v, tr);
		}
	}
	if (tr != NULL && s->env->log && fg_log_enabled(FG_LOG_DEBUG))
		log_trace(s, f->stage);
	return v;
}

static const struct fg_verdict *
decide(fg_session *s, struct fg_facts *f, int64_t now)
{
	struct fg_verdict *v = choose(s, f, now);

	apply(s, f->stage, v, now);
	return v;
}

/* Refused outright (not delayed, not in monitor mode). */
static bool
refuses(const struct fg_verdict *v)
{
	enum fg_action a;

	if (v->monitor || v->delay_ms > 0)
		return false;
	a = fg_session_answer(v, false);
	return a == FG_ACT_TEMPFAIL || a == FG_ACT_REJECT ||
	       a == FG_ACT_DISCONNECT;
}

static const struct fg_verdict *
nothing(fg_session *s)
{
	struct fg_verdict *v = &s->verdict;

	memset(v, 0, offsetof(struct fg_verdict, lines));
	v->ban.set = false;
	v->nlevels = 0;
	v->action = FG_ACT_CONTINUE;
	s->trace.n = 0;
	return v;
}

enum fg_action
fg_session_answer(const struct fg_verdict *v, bool slept)
{
	enum fg_action a;

	if (v->monitor)
		return FG_ACT_CONTINUE;
	/* The MTA's own code: a 4xx unknown-user reply (Postfix's
	 * unknown_local_recipient_reject_code = 450) is a tempfail. */
	if (v->masked)
		return v->code / 100 == 4 ? FG_ACT_TEMPFAIL : FG_ACT_REJECT;
	if (slept || v->action == FG_ACT_DELAY)
		a = v->step != NULL ? v->step->then : FG_ACT_CONTINUE;
	else
		a = v->action;
	if (a == FG_ACT_DELAY)
		return FG_ACT_CONTINUE;
	if (a == FG_ACT_BAN)
		return FG_ACT_DISCONNECT;
	return a;
}

/* ---- the commands ------------------------------------------------- */

const struct fg_verdict *
fg_session_connect(fg_session *s, const fg_addr *client, const char *host,
                   const char *daemon_name, int64_t now_ms)
{
	char keys[MAX_KEYS][FG_KEY_MAX];
	const struct fg_verdict *v;
	struct fg_facts f;
	size_t nkeys;

	if (s->connected)
		return nothing(s);
	s->connected = true;
	if (client != NULL &&
	    (client->family == FG_AF_INET || client->family == FG_AF_INET6)) {
		s->has_client = true;
		s->client = *client;
		fg_addr_format(&s->client, s->client_text,
		               sizeof(s->client_text));
		fg_policy_client_keys(s->cfg, &s->client, &s->client_keys);
		fg_policy_network_key(s->cfg, &s->client, s->network);
	}
	copy_text(s->host, sizeof(s->host), host);
	copy_text(s->daemon, sizeof(s->daemon), daemon_name);

	facts_of(s, FG_STAGE_CONNECT, &f);
	f.exemption_known = false;
	if ((s->exempt = fg_policy_exemption(s->cfg, &f)) == NULL)
		s->exempt = allowed(s, now_ms);
	f.exemption_known = true;
	f.exemption = s->exempt;
	/* Concurrency: one slot under every key the connection counts.
	 * The connect is counted before the decision and its row kept
	 * after it: a connect refused outright folds (store.h), and so do
	 * the session's later rows. */
	nkeys = s->nconc = event_keys(s, &f, keys);
	memcpy(s->conc_keys, keys, nkeys * sizeof(keys[0]));
	record_keys(s, &f, FG_EV_CONNECT, keys, nkeys, now_ms,
	            FG_RECORD_COUNT);
	/* Only the slots really taken are given back at close: a failed
	 * acquire must not later release another session's slot. */
	{
		size_t kept = 0;

		for (size_t i = 0; i < s->nconc; i++) {
			int64_t pos = fg_store_conn_acquire(s->env->store,
			                                    s->conc_keys[i]);

			if (pos <= 0)
				continue;
			if (kept != i)
				memcpy(s->conc_keys[kept], s->conc_keys[i],
				       FG_KEY_MAX);
			s->conc_pos[kept++] = pos;
		}
		s->nconc = kept;
	}
	s->at_connect = true;
	v = choose(s, &f, now_ms);
	s->at_connect = false;
	s->folding = refuses(v);
	record_keys(s, &f, FG_EV_CONNECT, keys, nkeys, now_ms,
	            FG_RECORD_ROW);
	apply(s, FG_STAGE_CONNECT, v, now_ms);
	return v;
}

const struct fg_verdict *
fg_session_helo(fg_session *s, const char *helo, int64_t now_ms)
{
	struct fg_facts f;

	copy_text(s->helo, sizeof(s->helo), helo);
	s->helo_seen = true;
	if (s->exempt == NULL)
		s->exempt = allowed(s, now_ms);
	facts_of(s, FG_STAGE_HELO, &f);
	record(s, &f, FG_EV_HELO, now_ms);
	return decide(s, &f, now_ms);
}

const struct fg_verdict *
fg_session_mail(fg_session *s, const char *sender, const char *queue_id,
                bool authenticated, int64_t now_ms)
{
	struct fg_facts f;

	fg_session_end_message(s);
	s->in_message = true;
	copy_text(s->sender, sizeof(s->sender), sender != NULL ? sender : "<>");
	if (queue_id != NULL)
		copy_text(s->queue_id, sizeof(s->queue_id), queue_id);
	if (authenticated && !s->authenticated) {
		s->authenticated = true;
		facts_of(s, FG_STAGE_MAIL, &f);
		f.exemption_known = false;
		s->exempt = fg_policy_exemption(s->cfg, &f);
	}
	if (s->exempt == NULL)
		s->exempt = allowed(s, now_ms);
	facts_of(s, FG_STAGE_MAIL, &f);
	record(s, &f, FG_EV_MAIL, now_ms);
	return decide(s, &f, now_ms);
}

/* The address without one pair of angle brackets, in a static buffer
 * of the calling thread. */
static const char *
bare(const char *addr)
{
	static _Thread_local char buf[NAME_LEN];
	size_t n = strlen(addr);

	if (n >= 2 && addr[0] == '<' && addr[n - 1] == '>') {
		snprintf(buf, sizeof(buf), "%.*s", (int)(n - 2), addr + 1);
		return buf;
	}
	return addr;
}

/* An enhanced status code as RFC 3463 writes it: class.subject.detail,
 * the class 4 or 5, with up to three digits each. */
static bool
status_ok(const char *s)
{
	int n[3] = {0, 0, 0}, part = 0;

	if (s[0] != '4' && s[0] != '5')
		return false;
	for (; *s != '\0'; s++) {
		if (*s == '.') {
			if (n[part] == 0 || ++part > 2)
				return false;
		} else if (*s >= '0' && *s <= '9') {
			if (++n[part] > 3)
				return false;
		} else {
			return false;
		}
	}
	return part == 2 && n[2] > 0;
}

/* ---- the ratio guard's sample ------------------------------------- */

/*
 * Role addresses: RFC 2142's mailbox names, RFC 5321's postmaster, and
 * the few more that exist on nearly every domain.  Anyone can name them
 * and be sure of a valid answer, so they prove nothing about how well a
 * sender knows its recipients.  Sorted, for bsearch.
 */
static const char *const role_names[] = {
	"abuse", "admin", "administrator", "ftp", "hostmaster", "info",
	"mailer-daemon", "marketing", "news", "no-reply", "nobody", "noc",
	"noreply", "postmaster", "root", "sales", "security", "support",
	"usenet", "uucp", "webmaster", "www",
};

/* Whether buf's first n bytes (a lower-case local part) are a role. */
static bool
is_role(const char *buf, size_t n)
{
	for (size_t i = 0; i < FG_NELEM(role_names); i++)
		if (strlen(role_names[i]) == n &&
		    memcmp(role_names[i], buf, n) == 0)
			return true;
	return false;
}

/*
 * The address as the sample compares it, into buf: lower case, the
 * local part without a +detail; *local_len is the local part's length.
 */
static void
sample_form(const char *addr, char *buf, size_t size, size_t *local_len)
{
	const char *at = strrchr(addr, '@');
	size_t n = at != NULL ? (size_t)(at - addr) : strlen(addr), o = 0;
	const char *plus = memchr(addr, '+', n);

	if (plus != NULL)
		n = (size_t)(plus - addr);
	for (size_t i = 0; i < n && o + 1 < size; i++)
		buf[o++] = (char)(addr[i] >= 'A' && addr[i] <= 'Z'
		                      ? addr[i] - 'A' + 'a' : addr[i]);
	*local_len = o;
	for (const char *p = at; p != NULL && *p != '\0' && o + 1 < size; p++)
		buf[o++] = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
	buf[o] = '\0';
}

bool
fg_session_role_address(const char *addr)
{
	char buf[NAME_LEN];
	size_t n;

	if (addr == NULL)
		return false;
	sample_form(bare(addr), buf, sizeof(buf), &n);
	return is_role(buf, n);
}

/* FNV-1a, 64 bits. */
static uint64_t
hash_text(const char *s)
{
	uint64_t h = UINT64_C(14695981039346656037);

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
	return h;
}

/*
 * Whether this recipient goes into the ratio guard's sample: every
 * unknown one; a valid one unless it is a role address, a repeat of one
 * this session put in already, or past ratio_session_cap of them.  A
 * recipient rejected for another reason is neither.  So the guard
 * measures unknown ÷ (unknown + distinct ordinary valid recipients, a
 * few per session), and padding a session with postmaster, with one
 * address many times or with many known addresses buys little.
 */
static bool
sample_rcpt(fg_session *s, const char *addr, enum fg_rcpt_class cls)
{
	char buf[NAME_LEN];
	size_t n;
	uint64_t h;

	if (!s->sample_on || cls == FG_RCPT_REJECTED)
		return false;
	if (cls == FG_RCPT_INVALID)
		return true;
	sample_form(addr, buf, sizeof(buf), &n);
	if (is_role(buf, n))
		return false;
	h = hash_text(buf);
	for (size_t i = 0; i < s->nsampled; i++)
		if (s->sampled[i] == h)
			return false;
	if (s->nsampled >= (size_t)s->cfg->ratio_session_cap ||
	    s->nsampled >= FG_NELEM(s->sampled))
		return false;
	s->sampled[s->nsampled++] = h;
	return true;
}

/* Learns from the MTA's reject text how it words an unknown user. */
static void
learn_unknown(fg_session *s, const char *status, const char *text)
{
	char code[4], st[16];
	int n = 0;

	if (text == NULL || *text == '\0')
		return;
	/* sendmail: "550 5.1.1 User unknown" */
	if (sscanf(text, "%3[0-9] %15[0-9.] %n", code, st, &n) == 2 && n > 0 &&
	    strlen(code) == 3 && (code[0] == '4' || code[0] == '5') &&
	    status_ok(st) && st[0] == code[0]) {
		snprintf(s->unknown_status, sizeof(s->unknown_status), "%s", st);
		s->unknown_code = (int)strtol(code, NULL, 10);
		copy_text(s->unknown_text, sizeof(s->unknown_text), text + n);
		/* sendmail puts "<ADDR>... " before a milter's reply itself */
		s->unknown_join = NULL;
		return;
	}
	/* Postfix: the text after the address, the status in {rcpt_host} */
	copy_text(s->unknown_text, sizeof(s->unknown_text), text);
	if (status != NULL && status_ok(status)) {
		snprintf(s->unknown_status, sizeof(s->unknown_status), "%s",
		         status);
		s->unknown_code = status[0] == '4' ? 450 : 550;
	}
	s->unknown_join = ": ";
}

const struct fg_verdict *
fg_session_rcpt(fg_session *s, const char *rcpt, enum fg_rcpt_class cls,
                const char *status, const char *mta_text,
                const char *queue_id, int64_t now_ms)
{
	struct fg_facts f;
	char addr[NAME_LEN], st[32], mask[NAME_LEN + 220];

	copy_text(addr, sizeof(addr), rcpt != NULL ? rcpt : "<>");
	if (s->queue_id[0] == '\0' && queue_id != NULL)
		copy_text(s->queue_id, sizeof(s->queue_id), queue_id);
	if (cls != FG_RCPT_VALID && cls != FG_RCPT_INVALID &&
	    cls != FG_RCPT_REJECTED)
		cls = FG_RCPT_VALID;
	st[0] = '\0';
	if (cls != FG_RCPT_VALID && status != NULL)
		copy_text(st, sizeof(st), status);
	/* The operator's own list overrides an MTA that accepts anyone;
	 * the status says who called the recipient unknown. */
	if (cls == FG_RCPT_VALID && s->cfg->valid_rcpts != NULL &&
	    fg_rcptlist_check(s->cfg->valid_rcpts, addr) == 0) {
		cls = FG_RCPT_INVALID;
		snprintf(st, sizeof(st), "%s", FG_SESSION_LIST_STATUS);
	}
	s->message_rcpts++;
	if (cls == FG_RCPT_INVALID) {
		s->session_invalid++;
		if (st[0] != '\0' && strcmp(st, FG_SESSION_LIST_STATUS) != 0)
			learn_unknown(s, st, mta_text);
	}
	facts_of(s, FG_STAGE_RCPT, &f);
	f.rcpt = addr;
	f.rcpt_class = cls;
	f.rcpt_status = st[0] != '\0' ? st : NULL;
	f.rcpt_sampled = sample_rcpt(s, bare(addr), cls);
	if (s->session_invalid > 0) {
		if (s->unknown_join != NULL)
			snprintf(mask, sizeof(mask), "<%s>%s%s", bare(addr),
			         s->unknown_join, s->unknown_text);
		else
			snprintf(mask, sizeof(mask), "%s", s->unknown_text);
		f.mask_code = s->unknown_code;
		f.mask_status = s->unknown_status;
		f.mask_line = mask;
	}
	record(s, &f, FG_EV_RCPT, now_ms);
	return decide(s, &f, now_ms);
}

void
fg_session_end_message(fg_session *s)
{
	s->in_message = false;
	s->sender[0] = '\0';
	s->queue_id[0] = '\0';
	s->message_rcpts = 0;
}

void
fg_session_close(fg_session *s, int64_t now_ms)
{
	struct fg_facts f;

	if (s->closed)
		return;
	s->closed = true;
	fg_session_delay_done(s);
	if (s->connected) {
		facts_of(s, FG_STAGE_CONNECT, &f);
		record_keys(s, &f, FG_EV_CLOSE, NULL, 0, now_ms,
		            FG_RECORD_ALL);
	}
	release_slots(s);
}
