/*
 * config.h - floodgate.conf: a libconfig file turned into an immutable,
 * reference-counted snapshot.
 *
 * Every setting is described once, in a declarative table in config.c
 * (name, type, default, bounds, validator); the same table drives parsing,
 * defaults, error messages and the -n check mode.  Errors read
 * "file:line: key: reason"; unknown keys are errors; every error in a file
 * is reported, not just the first.
 *
 * Snapshots: fg_config_load() builds a complete, validated struct
 * fg_config that nobody modifies afterwards.  The daemon publishes one
 * with fg_config_publish(); sessions take a reference with
 * fg_config_acquire() and drop it with fg_config_release(), so a reload
 * never changes the policy under a session in flight, and the old
 * snapshot is freed by whoever releases it last.
 */
#ifndef FG_CONFIG_H
#define FG_CONFIG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "duration.h"
#include "event.h"
#include "net.h"
#include "rcptlist.h"

/* What a verdict does.  Ordered by severity. */
enum fg_action {
	FG_ACT_CONTINUE = 0,
	FG_ACT_DELAY,      /* sleep, then the step's "then" action */
	FG_ACT_TEMPFAIL,   /* 4xx */
	FG_ACT_REJECT,     /* 5xx */
	FG_ACT_DISCONNECT, /* 421, ends the session */
	FG_ACT_BAN,        /* ban the key for a while, answer 421 */
};

/* What a rule counts. */
enum fg_rule_type {
	FG_RULE_CONNECTION_RATE,     /* connects per key per window */
	FG_RULE_CONCURRENCY,         /* open sessions per key */
	FG_RULE_INVALID_RECIPIENTS,  /* unknown-user RCPTs per key per window */
	FG_RULE_RECIPIENT_RATE,      /* all RCPTs per key per window */
	FG_RULE_REJECTED_RECIPIENTS, /* RCPTs refused for other reasons */
	FG_RULE_HELO_RATE,           /* HELOs per key per window */
	FG_RULE_MAIL_RATE,           /* transactions per key per window */
	FG_RULE_BAD_RCPT_THROTTLE,   /* invalid RCPTs within one session */
	FG_RULE_RCPTS_PER_MESSAGE,   /* RCPTs within one transaction */
};

/* What a rule counts per. */
enum fg_per {
	FG_PER_ADDRESS,
	FG_PER_NETWORK,       /* at the rule's prefix4 / prefix6 */
	FG_PER_HELO,
	FG_PER_RCPT_DOMAIN,
	FG_PER_SENDER_DOMAIN,
	FG_PER_GLOBAL,
	FG_PER_SESSION,       /* only the in-session rule types */
	FG_PER_MESSAGE,
};

/* What a rule on a shared key (per helo, sender_domain, recipient_domain
 * or global) counts, steps, bans and remembers levels under: the key
 * alone, refusing everyone who shares it, or the pair of the key and the
 * client's network (keys.h), refusing only that network. */
enum fg_act_on { FG_ACT_ON_KEY, FG_ACT_ON_NETWORK };

enum fg_delay_growth { FG_GROW_FIXED, FG_GROW_LINEAR, FG_GROW_DOUBLING };

enum fg_on_error { FG_ON_ERROR_TEMPFAIL, FG_ON_ERROR_ACCEPT };

/* Where counts are shared with the other MX hosts (lib/share.h). */
enum fg_share_backend { FG_SHARE_NONE, FG_SHARE_REDIS };

/* ratio_session_cap's bound: a session remembers that many recipients. */
#define FG_RATIO_SESSION_CAP_MAX 1000

#define FG_REPLY_MAX_LINES 8
#define FG_REPLY_LINE_MAX 512

/* An SMTP reply.  code 0: the action's default reply. */
struct fg_reply {
	int code;            /* 421, 450..459, 550..559 */
	char status[16];     /* enhanced status "4.7.1", or "" */
	size_t nlines;
	char *lines[FG_REPLY_MAX_LINES];
};

/* One step of a rule's escalation ladder. */
struct fg_step {
	int64_t over;            /* applies once count - limit >= over (>= 1) */
	enum fg_action action;
	int64_t delay_ms;        /* FG_ACT_DELAY: base delay */
	enum fg_delay_growth growth;
	enum fg_action then;     /* after a delay (CONTINUE .. DISCONNECT) */
	int64_t ban_ms;          /* FG_ACT_BAN: how long */
	struct fg_reply reply;
	int line;                /* where it was configured, for messages */
};

struct fg_override {
	fg_prefix net;
	int64_t limit;           /* 0: unlimited */
};

struct fg_rule {
	char *name;
	enum fg_rule_type type;
	enum fg_per per;
	unsigned prefix4, prefix6;   /* FG_PER_NETWORK, and the network of
	                                FG_ACT_ON_NETWORK */
	int64_t limit;               /* 0: unlimited */
	int64_t window_ms;           /* window rules */
	double ratio;                /* invalid ÷ sample guard, 0: off (the
	                                sample: FG_CNT_RCPT_SAMPLE) */
	int64_t min_sample;          /* sample needed for the ratio guard */
	int64_t decay_ms;            /* a level falls one step per quiet decay */
	enum fg_act_on act_on;       /* FG_ACT_ON_KEY but for a shared key */
	bool monitor;
	bool mask;                   /* invalid_recipients: answer every later
	                                recipient of a flagged session as an
	                                unknown one (policy.h) */
	bool shared;                 /* counted across hosts when the shared
	                                group has a backend (window rules) */
	struct fg_step *steps;       /* ascending over; at least one */
	size_t nsteps;
	fg_nettab *overrides;        /* prefix → struct fg_override * */
	struct fg_override *override_list;
	size_t noverrides;
	int line;
};

struct fg_exempt {
	fg_nettab *networks;         /* values unused (non-NULL) */
	fg_prefix *network_list;
	size_t nnetworks;
	bool authenticated;          /* exempt clients that did SMTP AUTH */
	char **hostnames;            /* client host name suffixes, lower case */
	size_t nhostnames;
	char **daemons;              /* {daemon_name} values */
	size_t ndaemons;
};

/* The shared group: counts and bans exchanged through Redis. */
struct fg_shared {
	bool present;                /* the group is in the file */
	enum fg_share_backend backend;
	char *server;                /* "host:port", "[v6]:port", "unix:/path" */
	char *username;              /* "" = the default user */
	char *password_file;         /* "" = no AUTH */
	char *password;              /* read from password_file, or NULL */
	char *prefix;                /* every key starts "<prefix>:" */
	char *node;                  /* this host's name; never "" once loaded */
	int64_t sync_interval_ms;
	int64_t slot_ms;
	int64_t timeout_ms;
	int64_t hot_ms;
	int64_t max_commands;
	bool bans;
	int64_t max_remote_ban_ms;
	int64_t warn_skew_ms;        /* 0: never warn */
};

struct fg_config {
	char *path;                  /* file it was loaded from */

	/* daemon */
	char *socket;                /* libmilter socket spec */
	char *socket_group;          /* "" = keep */
	char *database;
	char *user;                  /* "" = do not change user */
	char *pid_file;              /* "" = none */
	char *syslog_socket;         /* where syslog lines go when daemonized */
	int64_t milter_timeout_ms;   /* libmilter's own I/O timeout */
	unsigned socket_mode;
	int log_level;
	int syslog_facility;         /* index into fg_log_facility_names */
	enum fg_on_error on_error;
	bool socket_public;          /* an inet socket beyond the loopback */
	bool allow_root;
	bool monitor;                /* policy: decide and log, never act */

	/* store */
	int64_t retention_ms;
	int64_t flush_interval_ms;
	int64_t queue_size;
	int64_t memory_limit;        /* bytes of in-memory counters */
	int64_t max_database_size;   /* bytes of database file */
	unsigned network_prefix4;    /* network recorded with each event */
	unsigned network_prefix6;

	/* policy */
	int64_t max_delay_ms;
	int64_t mta_timeout_ms;      /* shortest milter reply timeout of the MTAs */
	int64_t max_delayed_sessions;
	int64_t ratio_session_cap;   /* valid recipients one session adds to
	                                the ratio guard's sample, at most */
	struct fg_reply banned_reply;
	char *valid_recipients;      /* optional file of valid rcpts/domains */
	struct fg_rcptlist *valid_rcpts; /* loaded from it, or NULL */
	struct fg_exempt exempt;
	struct fg_rule *rules;
	size_t nrules;
	int64_t horizon_ms;          /* longest window of any rule (derived) */
	enum fg_action banned_action;

	/* sharing between hosts (config_shared.c) */
	struct fg_shared shared;

	_Atomic long refs;
};

/*
 * Diagnostics: each error is passed to the callback as one formatted line
 * "file:line: key: reason" (or "file: reason" without a line).  Warnings
 * (legal but doubtful settings, e.g. max_delay close to mta_timeout) go to
 * the same callback with is_warning set.  Returns the number of errors.
 */
typedef void fg_config_diag_fn(void *arg, bool is_warning, const char *line);

/* 0 and a snapshot with one reference, or FG_ECONFIG (errors reported) /
 * FG_ENOMEM / FG_ENOENT. */
int fg_config_load(const char *path, struct fg_config **out,
                   fg_config_diag_fn *diag, void *arg);
/* The same from text in memory; name is used in messages as the file. */
int fg_config_load_string(const char *text, const char *name,
                          struct fg_config **out, fg_config_diag_fn *diag,
                          void *arg);

/* Take and drop a reference.  The last release frees the snapshot. */
struct fg_config *fg_config_ref(struct fg_config *cfg);
void fg_config_release(struct fg_config *cfg);

/* The live snapshot: publish() installs cfg (taking over the caller's
 * reference) and drops the old one; acquire() returns the current one
 * with a reference the caller must release.  Thread-safe. */
void fg_config_publish(struct fg_config *cfg);
struct fg_config *fg_config_acquire(void);

/* Whether rule r's counts are shared: the group names a backend and the
 * rule is shared. */
bool fg_config_rule_shared(const struct fg_config *cfg,
                           const struct fg_rule *r);

/* Names for logs and the ctl tool. */
const char *fg_action_name(enum fg_action a);
const char *fg_rule_type_name(enum fg_rule_type t);
const char *fg_per_name(enum fg_per p);
const char *fg_act_on_name(enum fg_act_on a);   /* "key", "network" */

/* Whether a rule counts per a key many clients share (HELO name, sender
 * or recipient domain, global), and whether it pairs that key with the
 * client's network (act_on = "network"). */
bool fg_rule_shared(const struct fg_rule *r);
bool fg_rule_pairs(const struct fg_rule *r);

#endif
