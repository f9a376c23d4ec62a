/*
 * fgload.c - a milter load generator that talks to a filter the way
 * Postfix does, for floodgate's benchmarks.
 *
 *   fgload -s SOCKET [-c C] [-n SESSIONS] [-t SECONDS] [-m MIX]
 *          [--distinct N] [--delay-threshold-ms MS] [--timeout-ms MS]
 *          [--park N] [--park-after-ms MS] [--rate R] [--seed N]
 *          [--label TEXT] [-q]
 *
 * Every SMTP session is a new milter connection, as in Postfix: OPTNEG,
 * the connect macros (j {daemon_name} {daemon_addr} v _) and CONNECT,
 * HELO, MAIL with macro i, K x (rcpt macros, RCPT), ABORT, QUIT.  An
 * unknown recipient comes as Postfix passes it with SMFIP_RCPT_REJ
 * ({rcpt_mailer} error, {rcpt_host} 5.1.1, {rcpt_addr} the reject text),
 * a valid one with {rcpt_mailer} local.  The events the filter asked not
 * to get are not sent (milterproto honours SMFIP_NO*).
 *
 * Traffic (-m): the client addresses are made up and travel only inside
 * the protocol; nothing is sent anywhere but to SOCKET.
 *   legit  clients spread over 4096 /24s of 10.0.0.0/8 (and 1 in 8 from
 *          2001:db8::/32), 1 to 5 valid recipients (3 on average)
 *   dha    four /24s of the documentation ranges, 16 to 24 recipients,
 *          9 in 10 unknown
 *   flood  one /24 (198.18.0.0/24): connect and quit only
 *   mix    80 % legit, 15 % dha, 5 % flood
 * Spread attacks and the large sender they must spare, each from the
 * hosts of one network in turn (session i from host i % 254 + 1):
 *   spread    a flood over the 254 hosts of 198.18.1.0/24, connect and
 *             quit only: every host stays under a per-address rate
 *   provider  a provider's outbound pool in 198.18.2.0/24: 1 to 9
 *             recipients (5 on average), 2 % of them unknown (typos,
 *             stale addresses), the rest valid
 *   dha48     a dictionary attack over the /64s of 2001:db8:48::/48,
 *             each session from the next /64, 3 unknown recipients
 * --distinct N gives every session the next address out of N (10.0.0.1
 * onwards, wrapping after N), whatever the mix.
 *
 * How a session reacts to the filter's answers, as Postfix and a client
 * would: 421 (or shutdown) at any stage, or reject/tempfail at CONNECT,
 * ends it (QUIT); reject/tempfail at MAIL ends the transaction (ABORT,
 * QUIT); at HELO and RCPT the session goes on; accept ends it quietly
 * (no more events for the filter).  "refused" counts the sessions the
 * filter ended early.
 *
 * Bounds: at most SESSIONS sessions and SECONDS of wall time (both
 * always apply; defaults 100000 and 10).  No session starts after the
 * deadline; a command due after it is not sent and the session counts as
 * abandoned.  A reply is awaited at most --timeout-ms, and at most the
 * time that was left when its session began plus 0.2 s, so a run ends
 * within about twice SECONDS even against a filter that never answers
 * (a wait cut after the deadline is "abandoned", not an error).
 *
 * --rate R: session i starts no earlier than i / R seconds into the run
 * (an open loop of R sessions/s at most, for long runs at a set pace).
 *
 * --park N: a session whose reply takes longer than --park-after-ms
 * (default 20; the filter's tarpit holds a reply for seconds) gives up
 * its place among the C and another session starts, for up to N such
 * sessions at once, as an MTA with processes to spare goes on serving
 * other clients while the filter holds one.  Without it, C sessions in
 * a tarpit stop the load.  (A no-op filter's replies come well within
 * 20 ms up to c = 64 here; a session parked needlessly only puts one
 * more in flight.)  "held" counts the sessions still in a delay at the
 * deadline: the filter served them up to the point where it chose to
 * hold them, and "served sessions/s" counts them with the completed.
 *
 * Report: sessions/s (those finished by the deadline, over the time up
 * to it); per command the replies by kind (continue, reject,
 * tempfail, ... and reply codes 421, 451, 550 ...) and latency p50, p99
 * and max in microseconds over the replies that came within the delay
 * threshold (default 500 ms).  Slower replies (a tarpit) are counted as
 * "delayed", with their total time, and left out of the latency figures;
 * "undelayed sessions/s" divides by the wall time minus the average time
 * a connection spent waiting for them; "legitimate sessions/s" counts
 * the legitimate sessions over the time connections spent on them (what
 * a legitimate client gets while the filter holds attackers).  Errors (timeouts, a closed
 * connection, garbage) are counted and never fatal.  The same figures go
 * out as one JSON object on a line starting with "JSON ".
 *
 * Exit status: 0 (even with errors: they are part of the report), 2 for
 * bad usage.
 */
#include "milterproto.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- what is measured --------------------------------------------- */

enum cmd {
	C_OPEN,     /* the socket connect, not a milter command */
	C_OPTNEG,
	C_CONNECT,
	C_HELO,
	C_MAIL,
	C_RCPT,
	C__N
};

static const char *const cmd_name[C__N] = {
	"open", "optneg", "connect", "helo", "mail", "rcpt",
};

/* Reply kinds; reply codes are kept apart, by number. */
enum rkind {
	R_CONTINUE,
	R_ACCEPT,
	R_REJECT,
	R_TEMPFAIL,
	R_DISCARD,
	R_OTHER,    /* skip, shutdown, connfail, anything unexpected */
	R_NOREPLY,  /* the filter asked for no reply or no event */
	R_ERROR,    /* timeout, closed, garbage, system error */
	R__N
};

static const char *const rkind_name[R__N] = {
	"continue", "accept", "reject", "tempfail", "discard", "other",
	"noreply", "error",
};

#define CODE_MIN 200
#define CODE_MAX 599
#define NCODES (CODE_MAX - CODE_MIN + 1)

/*
 * Latency histogram, log-linear: exact below 2^(H_SUB+1) us, then
 * 2^H_SUB buckets per power of two (under 1 % error), up to 2^32 us.
 */
#define H_SUB 7
#define H_BUCKETS ((32 - H_SUB) << H_SUB)

static unsigned
h_index(uint64_t v)
{
	unsigned msb, shift;

	if (v >= UINT64_C(1) << 32)
		v = (UINT64_C(1) << 32) - 1;
	if (v < (UINT64_C(1) << (H_SUB + 1)))
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	shift = msb - H_SUB;
	return (shift << H_SUB) + (unsigned)(v >> shift);
}

/* The middle of bucket i. */
static uint64_t
h_value(unsigned i)
{
	unsigned shift;
	uint64_t m;

	if (i < (1u << (H_SUB + 1)))
		return i;
	shift = (i >> H_SUB) - 1;
	m = i - (shift << H_SUB);
	return (m << shift) + ((UINT64_C(1) << shift) >> 1);
}

struct cmdstat {
	uint64_t kinds[R__N];
	uint64_t codes[NCODES];
	uint64_t timed;            /* replies in the histogram */
	uint64_t delayed;          /* replies slower than the threshold */
	uint64_t delayed_us;
	uint64_t max_us;           /* of the timed replies */
	uint32_t hist[H_BUCKETS];
};

enum err {
	E_TIMEOUT,
	E_CLOSED,
	E_PROTO,
	E_OPEN,
	E_OTHER,
	E__N
};

static const char *const err_name[E__N] = {
	"timeout", "closed", "protocol", "open", "other",
};

struct stats {
	uint64_t started;
	uint64_t completed;   /* ran to QUIT, whatever the filter said */
	uint64_t in_time;     /* of those, by the deadline */
	uint64_t refused;     /* of those, ended early by the filter */
	uint64_t failed;      /* ended by an error */
	uint64_t abandoned;   /* cut at the deadline */
	uint64_t hung_up;     /* the filter had closed before ABORT/QUIT */
	uint64_t errors[E__N];
	uint64_t wait_us;     /* delayed replies and waits cut at the deadline */
	uint64_t legit;       /* legitimate sessions completed by the deadline */
	uint64_t legit_us;    /* and the time they took, open to QUIT */
	uint64_t parked;      /* sessions that gave up their place (--park) */
	uint64_t held;        /* of those, cut in a delay at the deadline */
	struct cmdstat cmd[C__N];
	char first_error[256];
};

/* ---- options ------------------------------------------------------ */

enum mix { MIX_LEGIT, MIX_DHA, MIX_FLOOD, MIX_MIX, MIX_SPREAD, MIX_PROVIDER,
           MIX_DHA48, MIX__N };
static const char *const mix_name[MIX__N] = {
	"legit", "dha", "flood", "mix", "spread", "provider", "dha48",
};

struct opts {
	const char *socket;
	unsigned threads;
	uint64_t sessions;
	double seconds;
	enum mix mix;
	uint64_t distinct;
	int64_t threshold_us;
	int timeout_ms;
	uint64_t seed;
	const char *label;
	unsigned park;
	int64_t park_after_us;
	double rate;          /* sessions/s at most; 0: as fast as it goes */
	bool quiet;
};

static struct opts opt = {
	.threads = 1,
	.sessions = 100000,
	.seconds = 10,
	.mix = MIX_LEGIT,
	.threshold_us = 500000,
	.timeout_ms = 30000,
	.park_after_us = 20000,
	.seed = 1,
	.label = "",
};

static atomic_uint_fast64_t next_session;
static int64_t start_us, deadline_us;

/* Places for sessions not in a delay: C of them (see --park). */
static pthread_mutex_t place_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t place_cv = PTHREAD_COND_INITIALIZER;
static unsigned places_free;

/* ---- traffic ------------------------------------------------------ */

/* splitmix64: small, fast, good enough for traffic shapes. */
static uint64_t
rnd(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static unsigned
rnd_below(uint64_t *s, unsigned n)
{
	return (unsigned)(rnd(s) % n);
}

enum kind { K_LEGIT, K_DHA, K_FLOOD };

/* Which recipients are unknown: none, 9 in 10 (dha), 2 in 100 (typos),
 * all. */
enum unknowns { U_NONE, U_DHA, U_TYPOS, U_ALL };

static const char *const dha_nets[] = {
	"192.0.2", "198.51.100", "203.0.113", "100.64.7",
};

struct session {
	uint64_t index;
	enum kind kind;
	char family;
	char addr[64];
	char host[64];
	char helo[64];
	char sender[80];
	char qid[16];
	char underscore[160];
	unsigned nrcpt;
	enum unknowns unknowns;
};

/* The spread mixes: session index from host index % 254 + 1 of its
 * network (the next /64 for dha48). */
static void
make_spread_session(struct session *s, uint64_t index, uint64_t *rng)
{
	unsigned host = (unsigned)(index % 254) + 1;

	s->family = SMFIA_INET;
	switch (opt.mix) {
	case MIX_SPREAD:
		s->kind = K_FLOOD;
		snprintf(s->addr, sizeof(s->addr), "198.18.1.%u", host);
		snprintf(s->host, sizeof(s->host), "unknown");
		break;
	case MIX_PROVIDER:
		s->kind = K_LEGIT;
		snprintf(s->addr, sizeof(s->addr), "198.18.2.%u", host);
		snprintf(s->host, sizeof(s->host), "out%u.mail.example.net",
		         host);
		snprintf(s->helo, sizeof(s->helo), "out%u.mail.example.net",
		         host);
		snprintf(s->sender, sizeof(s->sender),
		         "<user%u@example.net>", rnd_below(rng, 100000));
		s->nrcpt = 1 + rnd_below(rng, 9);
		s->unknowns = U_TYPOS;
		break;
	default:
		s->kind = K_DHA;
		s->family = SMFIA_INET6;
		snprintf(s->addr, sizeof(s->addr), "2001:db8:48:%x::1",
		         (unsigned)(index & 0xffff));
		snprintf(s->host, sizeof(s->host), "unknown");
		snprintf(s->helo, sizeof(s->helo), "ylmf-pc");
		snprintf(s->sender, sizeof(s->sender), "<info%u@example.com>",
		         rnd_below(rng, 100000));
		s->nrcpt = 3;
		s->unknowns = U_ALL;
		break;
	}
}

/* Is the next recipient of session s unknown?  (dha draws what it
 * always drew, so its figures compare with earlier runs.) */
static bool
rcpt_unknown(const struct session *s, uint64_t *rng)
{
	switch (s->unknowns) {
	case U_DHA: return rnd_below(rng, 10) != 0;
	case U_TYPOS: return rnd_below(rng, 100) < 2;
	case U_ALL: return true;
	default: return false;
	}
}

static void
make_session(struct session *s, uint64_t index, uint64_t *rng)
{
	unsigned r;

	memset(s, 0, sizeof(*s));
	s->index = index;
	switch (opt.mix) {
	case MIX_LEGIT: s->kind = K_LEGIT; break;
	case MIX_DHA: s->kind = K_DHA; break;
	case MIX_FLOOD: s->kind = K_FLOOD; break;
	case MIX_MIX:
		r = rnd_below(rng, 100);
		s->kind = r < 80 ? K_LEGIT : r < 95 ? K_DHA : K_FLOOD;
		break;
	default:
		make_spread_session(s, index, rng);
		goto macros;
	}
	s->family = SMFIA_INET;
	switch (s->kind) {
	case K_LEGIT: {
		unsigned net = rnd_below(rng, 4096);

		if (rnd_below(rng, 8) == 0) {
			s->family = SMFIA_INET6;
			snprintf(s->addr, sizeof(s->addr), "2001:db8:%x::%x",
			         net, 1 + rnd_below(rng, 65535));
		} else {
			snprintf(s->addr, sizeof(s->addr), "10.%u.%u.%u",
			         net >> 8, net & 255, 1 + rnd_below(rng, 254));
		}
		snprintf(s->host, sizeof(s->host), "mail%u.example.net", net);
		snprintf(s->helo, sizeof(s->helo), "mail%u.example.net", net);
		snprintf(s->sender, sizeof(s->sender),
		         "<user%u@mail%u.example.net>", rnd_below(rng, 1000),
		         net);
		s->nrcpt = 1 + rnd_below(rng, 5);
		break;
	}
	case K_DHA:
		snprintf(s->addr, sizeof(s->addr), "%s.%u",
		         dha_nets[rnd_below(rng, 4)], 1 + rnd_below(rng, 254));
		snprintf(s->host, sizeof(s->host), "unknown");
		snprintf(s->helo, sizeof(s->helo), "ylmf-pc");
		snprintf(s->sender, sizeof(s->sender), "<info%u@example.com>",
		         rnd_below(rng, 100000));
		s->nrcpt = 16 + rnd_below(rng, 9);
		s->unknowns = U_DHA;
		break;
	case K_FLOOD:
		snprintf(s->addr, sizeof(s->addr), "198.18.0.%u",
		         1 + rnd_below(rng, 254));
		snprintf(s->host, sizeof(s->host), "unknown");
		break;
	}
macros:
	if (opt.distinct > 0) {
		uint32_t a = 0x0a000001u + (uint32_t)(index % opt.distinct);

		s->family = SMFIA_INET;
		snprintf(s->addr, sizeof(s->addr), "%u.%u.%u.%u", a >> 24,
		         (a >> 16) & 255, (a >> 8) & 255, a & 255);
	}
	snprintf(s->qid, sizeof(s->qid), "%010" PRIX64,
	         (index * UINT64_C(2654435761)) & UINT64_C(0xffffffffff));
	snprintf(s->underscore, sizeof(s->underscore), "%s [%s]", s->host,
	         s->addr);
}

/* ---- one session -------------------------------------------------- */

struct worker {
	unsigned id;
	pthread_t thread;
	uint64_t rng;
	struct stats st;
	struct mp_reply r;
	/* for --park: when the reply now awaited was asked for (0: none),
	 * and whether the session holds one of the C places */
	_Atomic int64_t wait_since;
	atomic_bool placed;
	atomic_bool parked;   /* this session gave its place up */
};

static void
place_give(void)
{
	pthread_mutex_lock(&place_mu);
	places_free++;
	pthread_cond_signal(&place_cv);
	pthread_mutex_unlock(&place_mu);
}

/* Waits for a place; false at the deadline. */
static bool
place_take(void)
{
	bool got = false;

	pthread_mutex_lock(&place_mu);
	while (places_free == 0 && mp_now_us() < deadline_us) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 20 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&place_cv, &place_mu, &ts);
	}
	if (places_free > 0 && mp_now_us() < deadline_us) {
		places_free--;
		got = true;
	}
	pthread_mutex_unlock(&place_mu);
	return got;
}

static void
sleep_us(int64_t us)
{
	struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};

	nanosleep(&ts, NULL);
}

/* The reply to a command is now awaited. */
static int64_t
wait_begin(struct worker *w)
{
	int64_t now = mp_now_us();

	atomic_store(&w->wait_since, now);
	return now;
}

/* What the session does after a reply: go on, stop (the filter
 * accepted the rest), stop because the filter refused, give up. */
enum next { N_GO, N_DONE, N_END, N_ERROR };

static void
note_error(struct worker *w, enum cmd c, int rc, const char *msg)
{
	enum err e;

	if (rc == MP_E_TIMEOUT && mp_now_us() >= deadline_us) {
		w->st.abandoned++;
		if (atomic_load(&w->parked))
			w->st.held++;
		return;
	}
	switch (rc) {
	case MP_E_TIMEOUT: e = E_TIMEOUT; break;
	case MP_E_CLOSED: e = E_CLOSED; break;
	case MP_E_PROTO:
	case MP_E_TOOBIG: e = E_PROTO; break;
	default: e = c == C_OPEN ? E_OPEN : E_OTHER; break;
	}
	w->st.errors[e]++;
	w->st.cmd[c].kinds[R_ERROR]++;
	w->st.failed++;
	if (w->st.first_error[0] == '\0')
		snprintf(w->st.first_error, sizeof(w->st.first_error),
		         "%s: %s: %s", cmd_name[c], mp_strerror(rc),
		         msg != NULL ? msg : "");
}

static void
time_reply(struct worker *w, enum cmd c, int64_t us)
{
	struct cmdstat *cs = &w->st.cmd[c];

	if (us < 0)
		us = 0;
	if (us > opt.threshold_us) {
		cs->delayed++;
		cs->delayed_us += (uint64_t)us;
		w->st.wait_us += (uint64_t)us;
		return;
	}
	cs->timed++;
	cs->hist[h_index((uint64_t)us)]++;
	if ((uint64_t)us > cs->max_us)
		cs->max_us = (uint64_t)us;
}

/* Tallies the reply to command c (rc from milterproto) and says what
 * the session does next. */
static enum next
account(struct worker *w, mp_conn *m, enum cmd c, int rc, int64_t t0)
{
	struct cmdstat *cs = &w->st.cmd[c];
	const struct mp_reply *r = &w->r;
	enum rkind k;

	atomic_store(&w->wait_since, 0);
	if (rc < 0) {
		/* A wait the deadline cut short still held the connection. */
		int64_t waited = mp_now_us() - t0;
		if (waited > opt.threshold_us)
			w->st.wait_us += (uint64_t)waited;
		note_error(w, c, rc, mp_errmsg(m));
		return N_ERROR;
	}
	switch (r->kind) {
	case MP_K_NOREPLY:
	case MP_K_SKIPPED:
		cs->kinds[R_NOREPLY]++;
		return N_GO;
	case MP_K_CONTINUE: k = R_CONTINUE; break;
	case MP_K_ACCEPT: k = R_ACCEPT; break;
	case MP_K_REJECT: k = R_REJECT; break;
	case MP_K_TEMPFAIL: k = R_TEMPFAIL; break;
	case MP_K_DISCARD: k = R_DISCARD; break;
	case MP_K_REPLYCODE:
		k = R__N;
		break;
	default: k = R_OTHER; break;
	}
	time_reply(w, c, r->elapsed_us);
	if (k == R__N) {
		int code = r->code;

		if (code >= CODE_MIN && code <= CODE_MAX)
			cs->codes[code - CODE_MIN]++;
		else
			cs->kinds[R_OTHER]++;
		if (code == 421)
			return N_END;
		k = code >= 500 ? R_REJECT : R_TEMPFAIL;
	} else {
		cs->kinds[k]++;
	}
	switch (k) {
	case R_CONTINUE:
	case R_DISCARD:
		return N_GO;
	case R_ACCEPT:
		/* No more callbacks for this connection. */
		return N_DONE;
	case R_REJECT:
	case R_TEMPFAIL:
		return c == C_CONNECT || c == C_MAIL ? N_END : N_GO;
	default:
		/* shutdown, connfail or something unexpected */
		return N_END;
	}
}

static void
done(struct worker *w, const struct session *s, int64_t started_us,
     bool refused)
{
	int64_t now = mp_now_us();

	w->st.completed++;
	if (now <= deadline_us) {
		w->st.in_time++;
		if (s->kind == K_LEGIT) {
			w->st.legit++;
			w->st.legit_us += (uint64_t)(now - started_us);
		}
	}
	if (refused)
		w->st.refused++;
}

static bool
past_deadline(struct worker *w, mp_conn *m)
{
	if (mp_now_us() < deadline_us)
		return false;
	w->st.abandoned++;
	mp_quit(m, &w->r);
	return true;
}

static void
run_session(struct worker *w, uint64_t index)
{
	static const char *const cnames[] = {
		"j", "{daemon_name}", "{daemon_addr}", "v", "_",
	};
	static const char *const mnames[] = {"i"};
	static const char *const rnames[] = {
		"i", "{rcpt_mailer}", "{rcpt_host}", "{rcpt_addr}",
	};
	struct session s;
	struct mp_options mo;
	mp_conn *m = NULL;
	char err[256], rcpt[100], bare[96];
	const char *argv[1], *vals[5];
	int64_t now, left_ms, t0, started_us;
	enum next nx;
	bool refused = false, in_mail = false;
	int rc;

	make_session(&s, index, &w->rng);
	w->st.started++;

	now = started_us = mp_now_us();
	left_ms = (deadline_us - now) / 1000 + 200;
	memset(&mo, 0, sizeof(mo));
	mo.timeout_ms = (int)(left_ms < opt.timeout_ms ? left_ms
	                                              : opt.timeout_ms);
	t0 = now;
	rc = mp_open(opt.socket, &mo, &m, err, sizeof(err));
	if (rc < 0) {
		note_error(w, C_OPEN, rc, err);
		/* Do not spin on a socket that is gone. */
		sleep_us(1000);
		return;
	}
	time_reply(w, C_OPEN, mp_now_us() - t0);

	t0 = mp_now_us();
	rc = mp_negotiate(m, MP_OFFER_VERSION, MP_OFFER_ACTIONS,
	                  MP_OFFER_PROTOCOL, &w->r);
	if (rc < 0) {
		account(w, m, C_OPTNEG, rc, t0);
		goto out;
	}
	w->st.cmd[C_OPTNEG].kinds[R_CONTINUE]++;
	time_reply(w, C_OPTNEG, w->r.elapsed_us);

	if (past_deadline(w, m))
		goto out;
	vals[0] = "mx.example.org";
	vals[1] = "mx.example.org";
	vals[2] = "192.0.2.25";
	vals[3] = "Postfix 3.7.11";
	vals[4] = s.underscore;
	if ((rc = mp_macro(m, SMFIC_CONNECT, cnames, vals, 5, &w->r)) < 0) {
		account(w, m, C_CONNECT, rc, mp_now_us());
		goto out;
	}
	t0 = wait_begin(w);
	rc = mp_connect(m, s.host, s.family,
	                (uint16_t)(1024 + rnd_below(&w->rng, 60000)), s.addr,
	                &w->r);
	if ((nx = account(w, m, C_CONNECT, rc, t0)) == N_ERROR)
		goto out;
	if (nx != N_GO || s.kind == K_FLOOD) {
		refused = nx == N_END;
		goto quit;
	}

	if (past_deadline(w, m))
		goto out;
	t0 = wait_begin(w);
	rc = mp_helo(m, s.helo, &w->r);
	if ((nx = account(w, m, C_HELO, rc, t0)) == N_ERROR)
		goto out;
	if (nx != N_GO) {
		refused = nx == N_END;
		goto quit;
	}

	if (past_deadline(w, m))
		goto out;
	vals[0] = s.qid;
	if ((rc = mp_macro(m, SMFIC_MAIL, mnames, vals, 1, &w->r)) < 0) {
		account(w, m, C_MAIL, rc, mp_now_us());
		goto out;
	}
	argv[0] = s.sender;
	t0 = wait_begin(w);
	rc = mp_mail(m, argv, 1, &w->r);
	if ((nx = account(w, m, C_MAIL, rc, t0)) == N_ERROR)
		goto out;
	in_mail = true;
	if (nx != N_GO) {
		refused = nx == N_END;
		goto abort;
	}

	for (unsigned i = 0; i < s.nrcpt; i++) {
		bool unknown = rcpt_unknown(&s, &w->rng);

		if (past_deadline(w, m))
			goto out;
		if (unknown)
			snprintf(bare, sizeof(bare), "x%08" PRIx64 "@example.org",
			         rnd(&w->rng) & UINT64_C(0xffffffff));
		else
			snprintf(bare, sizeof(bare), "user%u@example.org",
			         rnd_below(&w->rng, 5000));
		snprintf(rcpt, sizeof(rcpt), "<%s>", bare);
		vals[0] = s.qid;
		vals[1] = unknown ? "error" : "local";
		vals[2] = unknown ? "5.1.1" : "example.org";
		vals[3] = unknown ? "Recipient address rejected: User unknown "
		                    "in local recipient table"
		                  : bare;
		if ((rc = mp_macro(m, SMFIC_RCPT, rnames, vals, 4, &w->r)) < 0) {
			account(w, m, C_RCPT, rc, mp_now_us());
			goto out;
		}
		argv[0] = rcpt;
		t0 = wait_begin(w);
		rc = mp_rcpt(m, argv, 1, &w->r);
		if ((nx = account(w, m, C_RCPT, rc, t0)) == N_ERROR)
			goto out;
		if (nx != N_GO) {
			refused = nx == N_END;
			goto abort;
		}
	}
abort:
	/* No replies to these; a filter that already hung up (after a
	 * 421, say) is no error: Postfix would not notice either. */
	if (in_mail && mp_abort(m, &w->r) < 0)
		w->st.hung_up++;
	else if (mp_quit(m, &w->r) < 0)
		w->st.hung_up++;
	done(w, &s, started_us, refused);
	goto out;
quit:
	if (mp_quit(m, &w->r) < 0)
		w->st.hung_up++;
	done(w, &s, started_us, refused);
out:
	mp_close(m);
}

/* --rate: waits until session i is due; false if that is past the
 * deadline. */
static bool
pace(uint64_t i)
{
	int64_t at, now;

	if (opt.rate <= 0)
		return true;
	at = start_us + (int64_t)((double)i * 1e6 / opt.rate);
	if (at >= deadline_us)
		return false;
	if (at > (now = mp_now_us()))
		sleep_us(at - now);
	return true;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;

	for (;;) {
		uint64_t i;

		if (!place_take())
			break;
		i = atomic_fetch_add(&next_session, 1);
		if (i >= opt.sessions || mp_now_us() >= deadline_us ||
		    !pace(i)) {
			place_give();
			break;
		}
		atomic_store(&w->parked, false);
		atomic_store(&w->placed, true);
		run_session(w, i);
		if (atomic_exchange(&w->placed, false))
			place_give();
		if (atomic_load(&w->parked))
			w->st.parked++;
	}
	mp_reply_free(&w->r);
	return NULL;
}

/* --park: a session waiting longer than --park-after-ms gives its place
 * to a new one (the session itself learns it at its next reply). */
static void *
parker_main(void *arg)
{
	struct worker *w = arg;
	unsigned n = opt.threads + opt.park;

	while (mp_now_us() < deadline_us + 500000) {
		int64_t now = mp_now_us();

		for (unsigned i = 0; i < n; i++) {
			int64_t since = atomic_load(&w[i].wait_since);

			if (since != 0 && now - since > opt.park_after_us &&
			    atomic_exchange(&w[i].placed, false)) {
				atomic_store(&w[i].parked, true);
				place_give();
			}
		}
		sleep_us(5000);
	}
	return NULL;
}

/* ---- report ------------------------------------------------------- */

static void
merge(struct stats *to, const struct stats *from)
{
	to->started += from->started;
	to->completed += from->completed;
	to->in_time += from->in_time;
	to->refused += from->refused;
	to->failed += from->failed;
	to->abandoned += from->abandoned;
	to->hung_up += from->hung_up;
	to->wait_us += from->wait_us;
	to->legit += from->legit;
	to->legit_us += from->legit_us;
	to->parked += from->parked;
	to->held += from->held;
	for (int e = 0; e < E__N; e++)
		to->errors[e] += from->errors[e];
	for (int c = 0; c < C__N; c++) {
		struct cmdstat *t = &to->cmd[c];
		const struct cmdstat *f = &from->cmd[c];

		for (int k = 0; k < R__N; k++)
			t->kinds[k] += f->kinds[k];
		for (int k = 0; k < NCODES; k++)
			t->codes[k] += f->codes[k];
		t->timed += f->timed;
		t->delayed += f->delayed;
		t->delayed_us += f->delayed_us;
		if (f->max_us > t->max_us)
			t->max_us = f->max_us;
		for (int i = 0; i < H_BUCKETS; i++)
			t->hist[i] += f->hist[i];
	}
	if (to->first_error[0] == '\0')
		memcpy(to->first_error, from->first_error,
		       sizeof(to->first_error));
}

static uint64_t
percentile(const struct cmdstat *cs, double p)
{
	uint64_t want, seen = 0;

	if (cs->timed == 0)
		return 0;
	want = (uint64_t)ceil(p * (double)cs->timed);
	if (want < 1)
		want = 1;
	for (unsigned i = 0; i < H_BUCKETS; i++) {
		seen += cs->hist[i];
		if (seen >= want) {
			uint64_t v = h_value(i);
			return v > cs->max_us ? cs->max_us : v;
		}
	}
	return cs->max_us;
}

/* "continue=12 tempfail=3 421=5", or JSON members with json. */
static void
replies_text(const struct cmdstat *cs, char *buf, size_t size, bool json)
{
	size_t o = 0;
	const char *sep = "";

	buf[0] = '\0';
	for (int k = 0; k < R__N && o < size; k++) {
		if (cs->kinds[k] == 0)
			continue;
		o += (size_t)snprintf(buf + o, size - o,
		                      json ? "%s\"%s\":%" PRIu64
		                           : "%s%s=%" PRIu64,
		                      sep, rkind_name[k], cs->kinds[k]);
		sep = json ? "," : " ";
	}
	for (int k = 0; k < NCODES && o < size; k++) {
		if (cs->codes[k] == 0)
			continue;
		o += (size_t)snprintf(buf + o, size - o,
		                      json ? "%s\"%d\":%" PRIu64
		                           : "%s%d=%" PRIu64,
		                      sep, k + CODE_MIN, cs->codes[k]);
		sep = json ? "," : " ";
	}
}

static void
json_string(FILE *fp, const char *s)
{
	fputc('"', fp);
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(fp, "\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			fprintf(fp, "\\u%04x", ch);
		else
			fputc(ch, fp);
	}
	fputc('"', fp);
}

static void
report(const struct stats *st, double wall)
{
	/* Sessions finished by the deadline over the time up to it (or to
	 * the end, if the session count ran out first). */
	double span = wall < opt.seconds ? wall : opt.seconds;
	double rate = span > 0 ? (double)st->in_time / span : 0;
	double busy = span - (double)st->wait_us / 1e6 / opt.threads;
	double urate = busy > 0.001 ? (double)st->in_time / busy : 0;
	/* Legitimate sessions per second of the time connections spent on
	 * them: what a legitimate client gets, whatever else the filter is
	 * busy with (under attack, connections also sit in its tarpit). */
	double lrate = st->legit_us > 0
	               ? (double)st->legit * opt.threads /
	                 ((double)st->legit_us / 1e6) : 0;
	/* With --park: the sessions served, whether they finished or the
	 * filter was holding them in a delay at the deadline. */
	double srate = span > 0 ? (double)(st->in_time + st->held) / span : 0;
	char rep[2048];

	if (!opt.quiet) {
		printf("fgload: %s mix=%s c=%u: %.1f sessions/s (%" PRIu64
		       " by the deadline, %.2f s; undelayed %.1f/s; "
		       "legitimate %.1f/s)\n",
		       opt.socket, mix_name[opt.mix], opt.threads, rate,
		       st->in_time, span, urate, lrate);
		if (opt.park > 0)
			printf("  parked in a delay %" PRIu64 ", held there at "
			       "the deadline %" PRIu64 "; served %.1f/s\n",
			       st->parked, st->held, srate);
		printf("  started %" PRIu64 ", completed %" PRIu64
		       " (refused early by the filter %" PRIu64 "), failed %"
		       PRIu64 ", abandoned at the deadline %" PRIu64
		       ", filter hung up before QUIT %" PRIu64 "\n",
		       st->started, st->completed, st->refused, st->failed,
		       st->abandoned, st->hung_up);
		if (st->failed > 0) {
			printf("  errors:");
			for (int e = 0; e < E__N; e++)
				if (st->errors[e] > 0)
					printf(" %s=%" PRIu64, err_name[e],
					       st->errors[e]);
			printf("; first: %s\n", st->first_error);
		}
		printf("  %-8s %9s %9s %9s %9s %8s %10s  %s\n", "command",
		       "replies", "p50_us", "p99_us", "max_us", "delayed",
		       "delayed_s", "reply kinds");
		for (int c = 0; c < C__N; c++) {
			const struct cmdstat *cs = &st->cmd[c];

			replies_text(cs, rep, sizeof(rep), false);
			printf("  %-8s %9" PRIu64 " %9" PRIu64 " %9" PRIu64
			       " %9" PRIu64 " %8" PRIu64 " %10.1f  %s\n",
			       cmd_name[c], cs->timed + cs->delayed,
			       percentile(cs, 0.50), percentile(cs, 0.99),
			       cs->max_us, cs->delayed,
			       (double)cs->delayed_us / 1e6, rep);
		}
	}

	printf("JSON {\"label\":");
	json_string(stdout, opt.label);
	printf(",\"mix\":\"%s\",\"c\":%u,\"distinct\":%" PRIu64
	       ",\"threshold_ms\":%" PRId64 ",\"wall_s\":%.3f,\"started\":%"
	       PRIu64 ",\"completed\":%" PRIu64 ",\"refused\":%" PRIu64
	       ",\"in_time\":%" PRIu64 ",\"failed\":%" PRIu64
	       ",\"abandoned\":%" PRIu64 ",\"hung_up\":%" PRIu64 ",\"sessions_per_s\":%.1f,\"undelayed_sessions_per_s\":%.1f"
	       ",\"legit_sessions\":%" PRIu64 ",\"legit_sessions_per_s\":%.1f"
	       ",\"park\":%u,\"parked\":%" PRIu64 ",\"held\":%" PRIu64
	       ",\"served_sessions_per_s\":%.1f,\"errors\":{",
	       mix_name[opt.mix], opt.threads, opt.distinct,
	       opt.threshold_us / 1000, wall, st->started, st->completed,
	       st->refused, st->in_time, st->failed, st->abandoned,
	       st->hung_up, rate, urate, st->legit, lrate, opt.park,
	       st->parked, st->held, srate);
	for (int e = 0; e < E__N; e++)
		printf("%s\"%s\":%" PRIu64, e > 0 ? "," : "", err_name[e],
		       st->errors[e]);
	printf("},\"first_error\":");
	json_string(stdout, st->first_error);
	printf(",\"commands\":{");
	for (int c = 0; c < C__N; c++) {
		const struct cmdstat *cs = &st->cmd[c];

		replies_text(cs, rep, sizeof(rep), true);
		printf("%s\"%s\":{\"n\":%" PRIu64 ",\"p50_us\":%" PRIu64
		       ",\"p99_us\":%" PRIu64 ",\"max_us\":%" PRIu64
		       ",\"delayed\":%" PRIu64 ",\"delayed_ms\":%" PRIu64
		       ",\"replies\":{%s}}",
		       c > 0 ? "," : "", cmd_name[c], cs->timed + cs->delayed,
		       percentile(cs, 0.50), percentile(cs, 0.99), cs->max_us,
		       cs->delayed, cs->delayed_us / 1000, rep);
	}
	printf("}}\n");
	fflush(stdout);
}

/* ---- main --------------------------------------------------------- */

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: fgload -s SOCKET [-c C] [-n SESSIONS] [-t SECONDS] "
	    "[-m MIX] [--distinct N]\n"
	    "              [--delay-threshold-ms MS] [--timeout-ms MS] "
	    "[--park N] [--park-after-ms MS] [--rate R]\n"
	    "              [--seed N] [--label TEXT] [-q]\n"
	    "  -s SOCKET   the milter: unix:/path, inet:PORT@HOST, "
	    "inet6:PORT@HOST\n"
	    "  -c C        concurrent connections (threads), default 1\n"
	    "  -n N        at most N sessions in all (default 100000)\n"
	    "  -t SECONDS  at most this much wall time (default 10)\n"
	    "  -m MIX      legit, dha, flood, mix, spread, provider or dha48 "
	    "(default legit)\n"
	    "  --distinct N          every session the next address out of "
	    "N (from 10.0.0.1)\n"
	    "  --delay-threshold-ms  slower replies count as delayed and "
	    "leave the latency figures (500)\n"
	    "  --timeout-ms MS       give up on a reply after MS (30000, "
	    "Postfix's milter_command_timeout)\n"
	    "  --park N              up to N sessions in a delay give their "
	    "place to new ones (0)\n"
	    "  --park-after-ms MS    ... once a reply is this late (20)\n"
	    "  --rate R              start at most R sessions a second\n"
	    "  --seed N              traffic random seed (1)\n"
	    "  --label TEXT          copied into the JSON line\n"
	    "  -q                    only the JSON line\n");
}

static bool
parse_u64(const char *s, uint64_t *out, uint64_t min, uint64_t max)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' ||
	    v < min || v > max)
		return false;
	*out = v;
	return true;
}

static bool
parse_double(const char *s, double *out, double max)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v > 0) || v > max)
		return false;
	*out = v;
	return true;
}

static bool
parse_mix(const char *s, enum mix *out)
{
	for (int m = 0; m < MIX__N; m++)
		if (strcmp(s, mix_name[m]) == 0) {
			*out = (enum mix)m;
			return true;
		}
	return false;
}

/* The name of option ch for messages: "-c", "--rate". */
static void
option_name(int ch, const struct option *longopts, char *buf, size_t size)
{
	snprintf(buf, size, "-%c", ch);
	for (; longopts->name != NULL; longopts++)
		if (longopts->val == ch)
			snprintf(buf, size, "--%s", longopts->name);
}

int
main(int argc, char **argv)
{
	enum { O_DISTINCT = 256, O_THRESHOLD, O_TIMEOUT, O_SEED, O_LABEL,
	       O_PARK, O_PARK_AFTER, O_RATE };
	static const struct option longopts[] = {
		{"distinct", required_argument, NULL, O_DISTINCT},
		{"delay-threshold-ms", required_argument, NULL, O_THRESHOLD},
		{"timeout-ms", required_argument, NULL, O_TIMEOUT},
		{"seed", required_argument, NULL, O_SEED},
		{"label", required_argument, NULL, O_LABEL},
		{"park", required_argument, NULL, O_PARK},
		{"park-after-ms", required_argument, NULL, O_PARK_AFTER},
		{"rate", required_argument, NULL, O_RATE},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct worker *w;
	struct stats *total;
	pthread_t parker;
	char name[32];
	unsigned nworkers;
	uint64_t v;
	int64_t t0;
	double wall;
	int ch;

	while ((ch = getopt_long(argc, argv, "s:c:n:t:m:qh", longopts,
	                         NULL)) != -1) {
		switch (ch) {
		case 's':
			opt.socket = optarg;
			break;
		case 'c':
			if (!parse_u64(optarg, &v, 1, 4096))
				goto bad;
			opt.threads = (unsigned)v;
			break;
		case 'n':
			if (!parse_u64(optarg, &opt.sessions, 1, UINT64_MAX / 2))
				goto bad;
			break;
		case 't':
			if (!parse_double(optarg, &opt.seconds, 86400))
				goto bad;
			break;
		case 'm':
			if (!parse_mix(optarg, &opt.mix))
				goto bad;
			break;
		case O_DISTINCT:
			if (!parse_u64(optarg, &opt.distinct, 1, 0xfffffffdu))
				goto bad;
			break;
		case O_THRESHOLD:
			if (!parse_u64(optarg, &v, 1, 3600000))
				goto bad;
			opt.threshold_us = (int64_t)v * 1000;
			break;
		case O_TIMEOUT:
			if (!parse_u64(optarg, &v, 1, 3600000))
				goto bad;
			opt.timeout_ms = (int)v;
			break;
		case O_SEED:
			if (!parse_u64(optarg, &opt.seed, 0, UINT64_MAX))
				goto bad;
			break;
		case O_LABEL:
			opt.label = optarg;
			break;
		case O_PARK:
			if (!parse_u64(optarg, &v, 0, 4096))
				goto bad;
			opt.park = (unsigned)v;
			break;
		case O_RATE:
			if (!parse_double(optarg, &opt.rate, 1e7))
				goto bad;
			break;
		case O_PARK_AFTER:
			if (!parse_u64(optarg, &v, 1, 3600000))
				goto bad;
			opt.park_after_us = (int64_t)v * 1000;
			break;
		case 'q':
			opt.quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (opt.socket == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}

	signal(SIGPIPE, SIG_IGN);
	nworkers = opt.threads + opt.park;
	places_free = opt.threads;
	w = calloc(nworkers, sizeof(*w));
	total = calloc(1, sizeof(*total));
	if (w == NULL || total == NULL) {
		fprintf(stderr, "fgload: out of memory\n");
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	t0 = start_us = mp_now_us();
	deadline_us = t0 + (int64_t)(opt.seconds * 1e6);
	unsigned started = 0;
	for (unsigned i = 0; i < nworkers; i++) {
		w[i].id = i;
		w[i].rng = opt.seed * UINT64_C(0x100000001b3) + i;
		if (pthread_create(&w[i].thread, NULL, worker_main, &w[i]) != 0) {
			fprintf(stderr, "fgload: cannot start thread %u: %s\n",
			        i, strerror(errno));
			break;
		}
		started++;
	}
	if (started < opt.threads) {
		/* (the rest stop at the deadline) */
		fprintf(stderr, "fgload: only %u of %u threads\n", started,
		        nworkers);
		return 1;
	}
	if (opt.park > 0 && (started < nworkers ||
	    pthread_create(&parker, NULL, parker_main, w) != 0)) {
		fprintf(stderr, "fgload: cannot start the parking threads\n");
		return 1;
	}
	for (unsigned i = 0; i < started; i++) {
		pthread_join(w[i].thread, NULL);
		merge(total, &w[i].st);
	}
	if (opt.park > 0)
		pthread_join(parker, NULL);
	wall = (double)(mp_now_us() - t0) / 1e6;
	report(total, wall);
	free(w);
	free(total);
	return 0;
bad:
	option_name(ch, longopts, name, sizeof(name));
	fprintf(stderr, "fgload: bad value for %s: %s\n", name, optarg);
	return 2;
}
