/*
 * session.h - one SMTP session as a state machine: what the MTA reports
 * goes in (connect, HELO, MAIL, each RCPT with the MTA's own verdict on
 * it, end of message, close), and out come the verdict to answer and the
 * rows to remember.
 *
 * This is the one engine behind the daemon (milter/glue.c translates
 * libmilter to these calls and the verdict back), floodgatectl replay
 * (stored events fed through it), the unit tests and the fuzzers.  It
 * reads no clock (time is a parameter), sleeps never and does no I/O but
 * through the store it is handed: each event is recorded under the keys
 * the configuration counts by, the policy decides from the store's
 * counts, and the verdict's effects (a ban, escalation levels, the
 * verdict row) go back into the store.
 *
 * What a session does, step by step:
 *   connect  the client's keys are formatted once; the exemption is
 *            decided (network, host name, daemon name); the connect is
 *            recorded, and a concurrency slot taken under every key it
 *            counts under; then the policy decides.
 *   helo     recorded and decided (per-HELO rules and bans).
 *   mail     a new transaction; SMTP AUTH may make the session exempt
 *            from here on; recorded and decided.
 *   rcpt     the MTA's class of the recipient (valid, unknown, rejected
 *            otherwise), overridden to unknown by valid_recipients when
 *            the list lacks it; the session's and the message's counts
 *            go up; whether it goes into the ratio guard's sample
 *            (FG_CNT_RCPT_SAMPLE: every unknown recipient, and a valid
 *            one that is no role address, no repeat within the session
 *            in any case or +detail, and among the first
 *            ratio_session_cap such of the session); recorded and
 *            decided.
 *   end of message or abort: the transaction ends.
 *   close    recorded (under no key), the concurrency slots released.
 * An exempt session is recorded under no key, so it never counts against
 * its neighbours, and the policy is not asked.
 *
 * Delays.  A verdict that sleeps has already reserved its place in the
 * tarpit (the configured max_delayed_sessions); the caller sleeps and
 * then calls fg_session_delay_done().  When the tarpit is full the
 * policy decides again as if no place were left.
 *
 * Ownership and threads: a session belongs to one thread at a time (the
 * MTA serialises the commands of a connection); any number of sessions
 * may run at once against one store and one tarpit.  Every string handed
 * in is copied (bounded, sanitised for logs).  The configuration must
 * outlive the session.  Verdicts returned point into the session and
 * stay valid until its next call.
 */
#ifndef FG_SESSION_H
#define FG_SESSION_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "event.h"
#include "net.h"
#include "policy.h"
#include "store.h"

/* The status stored with a recipient that only valid_recipients called
 * unknown (the MTA accepted it). */
#define FG_SESSION_LIST_STATUS "valid_recipients"

/* The sessions asleep in a delay, against max_delayed_sessions. */
struct fg_tarpit {
	_Atomic int64_t asleep;
};
#define FG_TARPIT_INIT { 0 }

int64_t fg_tarpit_count(struct fg_tarpit *tp);

/* What every session of a process shares. */
struct fg_share;

struct fg_session_env {
	fg_store *store;           /* counts, bans, levels, rows */
	struct fg_share *share;    /* other hosts' counts (share.h), or NULL */
	struct fg_tarpit *tarpit;  /* NULL: no delay can be held */
	bool log;                  /* log verdicts (info) and traces (debug) */
};

typedef struct fg_session fg_session;

/* A new session with id (unique per process run; stored with its rows)
 * under configuration cfg.  NULL when out of memory. */
fg_session *fg_session_new(const struct fg_session_env *env,
                           const struct fg_config *cfg, uint64_t id);

/* Closes the session if the caller did not (no close row is recorded
 * then), releases what it holds, frees it.  NULL is fine. */
void fg_session_free(fg_session *s);
/* Frees the session touching nothing it shares (store, tarpit): for a
 * process whose store is already going away. */
void fg_session_discard(fg_session *s);

/*
 * The commands.  client NULL: unknown (a local or vanished client).
 * host: the name the MTA resolved, or NULL; daemon_name: {daemon_name}
 * or NULL; queue_id: NULL when the MTA has none yet.  cls is the
 * MTA's verdict (classify.h), status its enhanced status for a rejected
 * recipient and mta_text its reject text ({rcpt_addr}), from which the
 * session learns how the MTA words an unknown user, for masking
 * (policy.h): Postfix's "Recipient address rejected: User unknown in
 * local recipient table" becomes "<ADDR>: Recipient address rejected:
 * ...", sendmail's "550 5.1.1 User unknown" becomes "User unknown"
 * (sendmail puts "<ADDR>... " before a milter's text itself).  Until it
 * has learned, Postfix's wording.  Each returns the verdict (never NULL).
 */
const struct fg_verdict *fg_session_connect(fg_session *s,
                                            const fg_addr *client,
                                            const char *host,
                                            const char *daemon_name,
                                            int64_t now_ms);
const struct fg_verdict *fg_session_helo(fg_session *s, const char *helo,
                                         int64_t now_ms);
const struct fg_verdict *fg_session_mail(fg_session *s, const char *sender,
                                         const char *queue_id,
                                         bool authenticated, int64_t now_ms);
const struct fg_verdict *fg_session_rcpt(fg_session *s, const char *rcpt,
                                         enum fg_rcpt_class cls,
                                         const char *status,
                                         const char *mta_text,
                                         const char *queue_id,
                                         int64_t now_ms);
/* End of message or abort: the transaction is over. */
void fg_session_end_message(fg_session *s);
/* The connection closed: recorded, slots released. */
void fg_session_close(fg_session *s, int64_t now_ms);

/* The sleep of the last verdict is over: its tarpit place is free. */
void fg_session_delay_done(fg_session *s);

/*
 * What to answer for verdict v: before any delay, the action itself
 * (continue for a monitor verdict); after it (slept true), the step's
 * "then"; for a masked verdict, the MTA's: reject for its 5xx, tempfail
 * for a 4xx.  Never FG_ACT_DELAY or FG_ACT_BAN.
 */
enum fg_action fg_session_answer(const struct fg_verdict *v, bool slept);

/*
 * Whether addr ("<user+detail@domain>" or bare) is a role address, left
 * out of the ratio guard's sample: its local part, without +detail and
 * in any case, is one of abuse, admin, administrator, ftp, hostmaster,
 * info, mailer-daemon, marketing, news, no-reply, nobody, noc, noreply,
 * postmaster, root, sales, security, support, usenet, uucp, webmaster,
 * www (RFC 2142, RFC 5321's postmaster, and names that exist nearly
 * everywhere).
 */
bool fg_session_role_address(const char *addr);

/* The session's id, and its client as text ("unknown" if none). */
uint64_t fg_session_id(const fg_session *s);
const char *fg_session_client_text(const fg_session *s);

/*
 * The per-rule trace of the last decision, for the caller to log or
 * print.  Traces are kept only while tracing is on (fg_session_trace);
 * else n is 0.
 */
void fg_session_trace(fg_session *s, bool on);
const struct fg_trace *fg_session_last_trace(const fg_session *s);

#endif
