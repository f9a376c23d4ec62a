/*
 * event.h - the words every layer shares: what a client did (an event of
 * some kind, a recipient of some class), what can be counted of it, and
 * a ban.  Nothing here depends on the store, the policy or the config;
 * those three include this header, never each other for these names.
 *
 * Names are static strings; the parse functions return 0 or FG_EINVAL.
 * Pure and thread-safe.
 */
#ifndef FG_EVENT_H
#define FG_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum fg_event_kind {
	FG_EV_CONNECT = 1,
	FG_EV_HELO = 2,
	FG_EV_MAIL = 3,
	FG_EV_RCPT = 4,
	FG_EV_CLOSE = 5, /* the session ended: stored, counted under nothing */
};

enum fg_rcpt_class {
	FG_RCPT_NONE = 0,     /* not a recipient event */
	FG_RCPT_VALID = 1,    /* the MTA accepted it */
	FG_RCPT_INVALID = 2,  /* the MTA rejected it as an unknown user */
	FG_RCPT_REJECTED = 3, /* the MTA rejected it for another reason */
};

/* What can be counted.  A recipient event bumps FG_CNT_RCPT and the
 * counter of its class, and FG_CNT_RCPT_SAMPLE when the session put it
 * in the ratio guard's sample (session.h).  The store packs a counter
 * into 3 bits: at most 8 of them. */
enum fg_counter {
	FG_CNT_CONNECT = 0,
	FG_CNT_HELO,
	FG_CNT_MAIL,
	FG_CNT_RCPT, /* every recipient, whatever its class */
	FG_CNT_RCPT_VALID,
	FG_CNT_RCPT_INVALID,
	FG_CNT_RCPT_REJECTED,
	/* What the invalid_recipients ratio guard divides by: every unknown
	 * recipient, and each valid one that is no role address, no repeat
	 * within its session and within the session's ratio_session_cap. */
	FG_CNT_RCPT_SAMPLE,
	FG_CNT__COUNT
};

const char *fg_event_kind_name(enum fg_event_kind k);   /* "connect" ... */
const char *fg_rcpt_class_name(enum fg_rcpt_class c);   /* "valid" ... */
const char *fg_counter_name(enum fg_counter c);         /* "invalid" ... */
int fg_event_kind_parse(const char *name, enum fg_event_kind *out);
int fg_rcpt_class_parse(const char *name, enum fg_rcpt_class *out);
int fg_counter_parse(const char *name, enum fg_counter *out);

/*
 * The counters an event of this kind and class bumps, into
 * out[0..FG_EVENT_MAX_COUNTERS): its kind's counter, for a classified
 * recipient its class's too, and FG_CNT_RCPT_SAMPLE for a recipient in
 * the ratio guard's sample (sampled; ignored for anything else).
 * Returns how many (0 for a close, or a kind and class that do not go
 * together).  The one place that maps events to counters.
 */
#define FG_EVENT_MAX_COUNTERS 3
size_t fg_event_counters(enum fg_event_kind k, enum fg_rcpt_class c,
                         bool sampled,
                         enum fg_counter out[FG_EVENT_MAX_COUNTERS]);

/* A key refused until a time. */
struct fg_ban {
	int64_t until_ms;
	int64_t created_ms;
	char reason[256];
	char source[64];   /* "floodgate:<rule>", "floodgatectl", ... */
};

#endif
