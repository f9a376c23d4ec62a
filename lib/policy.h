/*
 * policy.h - the decision: pure functions of (config snapshot, facts about
 * the session, counts from a store view, now).
 *
 * No libmilter, no clock, no I/O here.  Counts come through a small view
 * interface (struct fg_view) that the daemon backs with the live store,
 * the unit tests with a table, and the replay tool with an in-memory store
 * fed from history.  Side effects a verdict calls for (set a ban, remember
 * an escalation level) are returned in the verdict for the caller to
 * apply, so fg_policy_decide() itself changes nothing.
 *
 * Stages and what is checked there:
 *   connect  bans of the address and of its networks at any prefix length
 *            (longest first); connection_rate and
 *            concurrency (the current connection is already counted);
 *            refusing steps of address/network window rules already over
 *            their limit (delays are not applied at connect except by the
 *            connect rules themselves).  Such a refused connection moves
 *            the key one ladder step up for the next one (escalation by
 *            persistence: its clients cannot add to the count).
 *   helo     bans of the HELO name; helo_rate.
 *            (MAIL adds bans of the sender's domain, RCPT those of the
 *            recipient's domain.)
 *   mail     everything of connect again (a key that went over the limit
 *            during the session is refused before any RCPT); mail_rate.
 *   rcpt     recipient rules (the current recipient is already counted):
 *            invalid_recipients (with its ratio guard: unknown
 *            recipients ÷ the sample, FG_CNT_RCPT_SAMPLE), recipient_rate,
 *            rejected_recipients, bad_recipient_throttle,
 *            recipients_per_message.
 *
 * Harvest masking.  A harvester wants to learn which guesses are real
 * mailboxes.  Once an invalid_recipients rule with mask on has flagged
 * the client's key (its step is past the first, or refuses, or the key
 * is banned), a session that has itself sent unknown recipients gets, for
 * every further recipient, valid or not, the answer the MTA gives an
 * unknown user (mask_code, mask_status, mask_line), after the delay the
 * step gives: valid and unknown guesses can no longer be told apart.
 * Sessions that sent no unknown recipient are never masked, and other
 * sessions of the key keep getting the refusals before RCPT they get
 * anyway.  A masking candidate wins over every other at RCPT: any other
 * answer would tell a valid recipient from an unknown one.
 * The most severe verdict wins; between equals, the first rule in the file.
 *
 * Thread-safety: pure; any number of threads may decide at once.
 */
#ifndef FG_POLICY_H
#define FG_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "event.h"
#include "keys.h"
#include "net.h"

enum fg_stage {
	FG_STAGE_CONNECT = 0,
	FG_STAGE_HELO,
	FG_STAGE_MAIL,
	FG_STAGE_RCPT,
};
const char *fg_stage_name(enum fg_stage s);

/* The other hosts' part of a count (shared rules). */
struct fg_remote {
	int64_t count;                /* events seen on other hosts */
	int64_t age_ms;               /* since fetched; -1: never */
	uint64_t nodes;               /* bit i: host i of the share */
};

/* Counts and state the policy may ask for.  Every function may be NULL
 * (then: 0 / not found). */
struct fg_view {
	void *ctx;
	int64_t (*count)(void *ctx, const char *key, enum fg_counter c,
	                 int64_t window_ms, int64_t now_ms);
	int64_t (*concurrent)(void *ctx, const char *key);
	/* tri-state like fg_store_ban_get */
	int (*ban)(void *ctx, const char *key, int64_t now_ms,
	           struct fg_ban *out);
	int (*level)(void *ctx, const char *rule, const char *key,
	             int *level, int64_t *last_ms);
	/* used[len] (len 0..32 or 0..128): whether a network ban of that
	 * prefix length may exist.  NULL: the lengths the configuration
	 * counts by. */
	void (*ban_lengths)(void *ctx, int family, bool *used);
	/* Whether any ban at all is in force (NULL: maybe): a quick no
	 * spares formatting the client's keys to look them up. */
	bool (*any_bans)(void *ctx);
	/* The other hosts' part of a shared rule's count (share.h): events
	 * of c under key in the window, as last fetched, into *out; local
	 * and limit tell how near the limit the key is.  NULL: nothing is
	 * shared. */
	int64_t (*remote)(void *ctx, const char *key, enum fg_counter c,
	                  int64_t window_ms, int64_t now_ms, int64_t local,
	                  int64_t limit, struct fg_remote *out);
};

/*
 * A client's keys, formatted once per session: its address and its
 * network at each prefix length the configuration counts by (the first
 * FG_POLICY_MAX_NETS of them, longest first).  Facts may point at the
 * ones fg_policy_client_keys() made for the same configuration and
 * client, so that every event of a session does not format the same
 * keys again; without them, keys are formatted on the spot.
 */
#define FG_POLICY_MAX_NETS 8

struct fg_client_keys {
	char address[FG_KEY_MAX];
	size_t nnets;
	bool all_nets;                /* no length used was left out */
	unsigned lens[FG_POLICY_MAX_NETS];
	char nets[FG_POLICY_MAX_NETS][FG_KEY_MAX];
};

/* Fills *out for client a (none for a NULL or unknown address). */
void fg_policy_client_keys(const struct fg_config *cfg, const fg_addr *a,
                           struct fg_client_keys *out);

/* What the glue knows about the session at this point. */
struct fg_facts {
	enum fg_stage stage;
	const fg_addr *client;        /* NULL: unknown (local, vanished) */
	const struct fg_client_keys *client_keys; /* of client, or NULL */
	const char *client_host;      /* hostname the MTA resolved, or NULL */
	const char *helo;             /* NULL before HELO */
	const char *sender;           /* NULL before MAIL */
	const char *rcpt;             /* current recipient at RCPT */
	enum fg_rcpt_class rcpt_class;
	bool rcpt_sampled;            /* in the ratio guard's sample */
	bool authenticated;           /* {auth_authen} present */
	const char *daemon_name;      /* {daemon_name} or NULL */
	int64_t session_invalid;      /* invalid RCPTs this session, incl. this one */
	int64_t message_rcpts;        /* RCPTs this transaction, incl. this one */
	int64_t delayed_sessions;     /* sessions sleeping in a delay right now */
	const char *rcpt_status;      /* the MTA's status of a rejected rcpt */
	/* The MTA's own answer to an unknown user, for this recipient: what
	 * a masked recipient gets (NULL: the session cannot be masked, it
	 * sent no unknown recipient). */
	int mask_code;
	const char *mask_status;
	const char *mask_line;
	/* The exemption, if the caller decided it already (the session
	 * does, once): then exemption is fg_policy_exemption()'s answer. */
	bool exemption_known;
	const char *exemption;
};

/* Side effects the caller applies after deciding. */
struct fg_effect_ban {
	bool set;
	char key[FG_KEY_MAX];
	int64_t until_ms;
	char reason[256];
	char source[64];
};

struct fg_effect_level {
	bool set;
	const struct fg_rule *rule;
	char key[FG_KEY_MAX];
	int level;
	int64_t last_ms;
};

#define FG_POLICY_MAX_LEVELS 16

struct fg_verdict {
	enum fg_action action;        /* what to do now (never BAN: see ban) */
	int64_t delay_ms;             /* sleep first (0: none) */
	bool delay_skipped;           /* the delay cap was full */
	bool monitor;                 /* computed, not enforced: act continue */
	bool exempt;                  /* an exemption matched: nothing checked */
	const char *exempt_reason;    /* static text */
	bool banned;                  /* refused because of an existing ban */
	bool masked;                  /* answered as an unknown user: the
	                                 session is a flagged harvest */

	/* why: the rule that decided (NULL for a ban or continue) */
	const struct fg_rule *rule;
	const struct fg_step *step;
	char key[FG_KEY_MAX];
	int64_t count;
	int64_t limit;
	int64_t window_ms;
	int level;                    /* ladder step index, 0-based (shown,
	                                 like every level, from 1) */

	/* the reply to give: code 0 = none (continue) */
	int code;
	char status[16];
	size_t nlines;
	char lines[FG_REPLY_MAX_LINES][FG_REPLY_LINE_MAX];

	struct fg_effect_ban ban;
	struct fg_effect_level levels[FG_POLICY_MAX_LEVELS];
	size_t nlevels;
};

/*
 * The policy explains itself: one entry per rule, saying what it measured
 * and why it fired or not.  The daemon logs it at debug level, and
 * floodgatectl's why and replay print it.
 */
enum fg_trace_why {
	FG_TRACE_FIRED = 0,     /* a step applies: step */
	FG_TRACE_NOT_STAGE,     /* not checked at this stage */
	FG_TRACE_NO_KEY,        /* its key cannot be formed yet (no HELO...) */
	FG_TRACE_UNLIMITED,     /* limit 0 */
	FG_TRACE_GUARDED,       /* the ratio guard: a mostly valid sender */
	FG_TRACE_UNDER,         /* count <= limit */
	FG_TRACE_BELOW_STEP,    /* over the limit, below the first step */
	FG_TRACE_NOT_REFUSING,  /* its step only delays, and this is not the
	                           rule's own stage */
};

struct fg_trace_rule {
	const struct fg_rule *rule;
	enum fg_trace_why why;
	char key[FG_KEY_MAX];         /* "" for FG_TRACE_NOT_STAGE, NO_KEY */
	bool windowed;                /* count is of counter over window_ms */
	enum fg_counter counter;      /* when windowed */
	int64_t count, limit, window_ms;
	int64_t total;                /* the ratio guard's sample in the
	                                 window (FG_CNT_RCPT_SAMPLE) */
	bool shared;                  /* count = here + remote.count */
	int64_t here;                 /* the part counted on this host */
	struct fg_remote remote;      /* the other hosts' part */
	bool guarded;                 /* the ratio guard holds it back */
	int level;                    /* remembered level after decay, -1 */
	int step;                     /* step that applies (index), -1 */
	bool monitor;                 /* the rule (or everything) monitors */
};

/* The caller's array of cap entries; n of them are filled. */
struct fg_trace {
	struct fg_trace_rule *rules;
	size_t cap, n;
};

const char *fg_trace_why_name(enum fg_trace_why w);  /* "under limit" ... */

/* One line for a log: "rule=dict key=192.0.2.0/24 invalid=25/20 in 1h
 * level=1 step=2 fired".  Client text sanitised.  Returns buf. */
char *fg_trace_describe(const struct fg_trace_rule *t, char *buf,
                        size_t size);

/*
 * The keys an event at this point counts under (address, each network
 * level any rule uses, HELO, recipient and sender domains as the rules
 * need, global) for fg_store_record: writes up to max keys into
 * keys[i] (each FG_KEY_MAX bytes) and returns how many.
 */
size_t fg_policy_event_keys(const struct fg_config *cfg,
                            const struct fg_facts *f,
                            char (*keys)[FG_KEY_MAX], size_t max);

/* The primary network key of a client (network_prefix4/6), "" if none. */
void fg_policy_network_key(const struct fg_config *cfg, const fg_addr *a,
                           char *buf);

/* Why the session is exempt from every rule ("exempt network",
 * "authenticated", "exempt hostname", "exempt daemon", static text), or
 * NULL.  Exempt sessions are recorded under no key. */
const char *fg_policy_exemption(const struct fg_config *cfg,
                                const struct fg_facts *f);

/* Whether a rule remembers escalation levels per key, and the level it
 * remembered (level, last_ms) stands at after decay at now_ms: the
 * level falls one step per quiet decay period; -1 when forgotten. */
bool fg_policy_keeps_levels(const struct fg_rule *r);
int fg_policy_decayed_level(const struct fg_rule *r, int level,
                            int64_t last_ms, int64_t now_ms);

/* The action a verdict is recorded under (the verdicts table, logs,
 * replay): "ban" when it set a ban, "delay" when it sleeps, and for a
 * monitor verdict what would have been done. */
const char *fg_verdict_action(const struct fg_config *cfg,
                              const struct fg_verdict *v);

/* Decide.  Always fills *v; never fails.  Only the used part of the
 * arrays is written (lines[] up to nlines, levels[] up to nlevels, ban
 * only if ban.set): clearing all 10 KB on every command cost more than
 * the decision.  Compare verdicts with fg_verdict_equal, not memcmp. */
void fg_policy_decide(const struct fg_config *cfg, const struct fg_facts *f,
                      const struct fg_view *view, int64_t now_ms,
                      struct fg_verdict *v);

/* fg_policy_decide, and every rule's measure into *trace (trace->n is
 * set; rules past trace->cap are not traced).  An exempt session or a
 * banned key leaves the trace empty. */
void fg_policy_decide_traced(const struct fg_config *cfg,
                             const struct fg_facts *f,
                             const struct fg_view *view, int64_t now_ms,
                             struct fg_verdict *v, struct fg_trace *trace);

/*
 * Every rule as if at its own stage, for an operator's question ("where
 * does this client stand?"): each rule measured with these facts, none
 * skipped for the stage.  Decides nothing.
 */
void fg_policy_explain(const struct fg_config *cfg, const struct fg_facts *f,
                       const struct fg_view *view, int64_t now_ms,
                       struct fg_trace *trace);

/*
 * Whether the daemon honours a ban of this key (1), or why not (0, with
 * a static reason in *why): addresses, networks of IPv4 /8../32 and IPv6
 * /16../128, HELO names, sender and recipient domains.  Not the global
 * key (it would refuse every client).
 */
int fg_policy_ban_checked(const struct fg_config *cfg, const char *key,
                          const char **why);

/* Whether a and b say the same (their used parts are equal). */
bool fg_verdict_equal(const struct fg_verdict *a, const struct fg_verdict *b);

/* One line describing the verdict for logs: "rule=dictionary
 * key=192.0.2.0/24 count=25 limit=20 window=1h level=1 action=tempfail
 * reply=\"451 4.7.1 ...\"".  Client text in it is sanitised. */
char *fg_verdict_describe(const struct fg_verdict *v, char *buf,
                          size_t size);

#endif
