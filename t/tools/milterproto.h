/*
 * milterproto.h - the MTA side of the milter protocol (version 6), for
 * tests and tools: connect to a milter socket, negotiate, send the SMTP
 * events and macros the way Postfix does, and read the milter's replies,
 * each timed in microseconds.
 *
 * Not part of the daemon: nothing under lib/ or milter/ uses it, and it
 * links nothing but libc (the protocol constants come from libmilter's
 * header <libmilter/mfdef.h>, which defines no code).
 *
 * Memory: an mp_conn belongs to its caller from mp_open() to mp_close().
 * An mp_reply's strings and arrays are malloc'd and belong to the caller
 * until mp_reply_free(); every function that fills an mp_reply frees its
 * old contents first, so one reply may be reused.  Start with
 * MP_REPLY_INIT (or a zeroed struct).  Strings returned by accessors
 * belong to the connection and live until the next call on it.
 *
 * Thread-safety: one connection is used by one thread at a time;
 * different connections are independent.  No global state.
 *
 * Errors: 0 ok, a negative MP_E_* code on failure (mp_strerror() names
 * it); the detail text of the last failure is mp_errmsg().  A reply that
 * breaks the protocol (bad length, unknown reply, trailing bytes, a
 * version or action conflict in negotiation) is MP_E_PROTO; a packet
 * longer than the configured maximum is MP_E_TOOBIG; either leaves the
 * connection unusable (mp_is_open() false), as Postfix would.
 */
#ifndef MILTERPROTO_H
#define MILTERPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libmilter/mfdef.h>

/* Macro stages of the OPTNEG symbol lists (SMFIM_*, not in mfdef.h). */
enum mp_stage {
	MP_STAGE_CONNECT = 0,
	MP_STAGE_HELO = 1,
	MP_STAGE_MAIL = 2,
	MP_STAGE_RCPT = 3,
	MP_STAGE_DATA = 4,
	MP_STAGE_EOM = 5,
	MP_STAGE_EOH = 6,
	MP_STAGE_COUNT = 7,
};

/* What Postfix offers: protocol version 6, every action, every step. */
#define MP_OFFER_VERSION 6u
#define MP_OFFER_ACTIONS ((uint32_t)SMFI_CURR_ACTS)
#define MP_OFFER_PROTOCOL ((uint32_t)SMFI_CURR_PROT)

#define MP_DEFAULT_TIMEOUT_MS 60000
/* The largest packet accepted from the milter (length word, command byte
 * included in the count).  libmilter's biggest is 1 MiB (SMFIP_MDS_1M). */
#define MP_DEFAULT_MAX_PACKET (1024u * 1024u)

enum mp_error {
	MP_OK = 0,
	MP_E_SYS = -1,      /* a system call failed (errno in the detail) */
	MP_E_TIMEOUT = -2,  /* no complete reply within the timeout */
	MP_E_CLOSED = -3,   /* the milter closed the connection */
	MP_E_PROTO = -4,    /* malformed or unexpected packet */
	MP_E_TOOBIG = -5,   /* packet over the size limit */
	MP_E_SPEC = -6,     /* bad socket specification */
	MP_E_STATE = -7,    /* call not valid now (closed, not negotiated) */
	MP_E_INVAL = -8,    /* bad argument */
	MP_E_NOMEM = -9,
};

const char *mp_strerror(int code);

enum mp_kind {
	MP_K_NONE = 0,     /* nothing read (error before a reply) */
	MP_K_CONTINUE,     /* 'c' */
	MP_K_ACCEPT,       /* 'a' */
	MP_K_REJECT,       /* 'r' */
	MP_K_TEMPFAIL,     /* 't' */
	MP_K_DISCARD,      /* 'd' */
	MP_K_REPLYCODE,    /* 'y': code and text set */
	MP_K_SKIP,         /* 's' */
	MP_K_SHUTDOWN,     /* '4' */
	MP_K_CONNFAIL,     /* 'f' */
	MP_K_OPTNEG,       /* 'O': the negotiation answer */
	MP_K_NOREPLY,      /* sent; the milter asked not to reply (SMFIP_NR_*) */
	MP_K_SKIPPED,      /* not sent: the milter asked not to get it (SMFIP_NO*) */
	MP_K_SENT,         /* sent; the command has no reply (abort, quit, raw) */
	MP_K_PACKET,       /* mp_read_packet(): any other packet, raw */
};

const char *mp_kind_name(enum mp_kind kind);

/* One message modification sent before the EOB reply. */
struct mp_mod {
	char cmd;      /* SMFIR_ADDHEADER, SMFIR_CHGHEADER, ... */
	char *desc;    /* readable: "addheader X-Foo: bar" */
};

struct mp_reply {
	enum mp_kind kind;
	char cmd;            /* the reply's command byte, 0 if none */
	int code;            /* SMTP code of a REPLYCODE, else 0 */
	char *text;          /* a REPLYCODE's text (lines joined by "\r\n") */
	size_t nlines;       /* lines in text */
	int64_t elapsed_us;  /* from the first byte sent to the final reply */
	unsigned nprogress;  /* SMFIR_PROGRESS packets skipped */
	struct mp_mod *mods; /* modifications (EOB), in order */
	size_t nmods;
	unsigned char *data; /* MP_K_PACKET: the packet's data */
	size_t datalen;
};
#define MP_REPLY_INIT { 0 }

void mp_reply_free(struct mp_reply *r);

struct mp_options {
	int timeout_ms;        /* every connect, read and write; <= 0: default */
	size_t max_packet;     /* 0: MP_DEFAULT_MAX_PACKET */
	bool send_all;         /* ignore the milter's SMFIP_NO* requests */
};

typedef struct mp_conn mp_conn;

/*
 * Connects to a socket spec in libmilter syntax: "unix:/path",
 * "local:/path", a bare "/path", "inet:PORT@HOST", "inet6:PORT@HOST"
 * (HOST may be a name or a literal; without "@HOST" it is the loopback
 * address).  opt may be NULL.  On failure *out is NULL and err (if not
 * NULL) holds the reason.
 */
int mp_open(const char *spec, const struct mp_options *opt, mp_conn **out,
            char *err, size_t errlen);
/* Closes the socket (without QUIT) and frees everything.  NULL is ok. */
void mp_close(mp_conn *c);

bool mp_is_open(const mp_conn *c);
bool mp_is_negotiated(const mp_conn *c);
const char *mp_errmsg(const mp_conn *c);

/*
 * SMFIC_OPTNEG: offers version, actions and protocol flags (pass the
 * MP_OFFER_* values to act as Postfix does) and reads the answer into r
 * (kind MP_K_OPTNEG) and the connection: the milter's version, actions,
 * protocol flags and per-stage macro lists (accessors below).  Fails with
 * MP_E_PROTO if the milter wants a newer version or actions not offered.
 */
int mp_negotiate(mp_conn *c, uint32_t version, uint32_t actions,
                 uint32_t protocol, struct mp_reply *r);
uint32_t mp_milter_version(const mp_conn *c);
uint32_t mp_milter_actions(const mp_conn *c);
uint32_t mp_milter_protocol(const mp_conn *c);
/* The space-separated macro names asked for at stage, or NULL. */
const char *mp_milter_symlist(const mp_conn *c, enum mp_stage stage);

/*
 * SMFIC_MACRO for the command stage_cmd (SMFIC_CONNECT, SMFIC_HELO,
 * SMFIC_MAIL, SMFIC_RCPT, SMFIC_DATA, SMFIC_EOH, SMFIC_BODYEOB): names[i]
 * = values[i], names sent as given ("j", "{daemon_name}").  The milter
 * does not answer: r gets MP_K_SENT, or MP_K_SKIPPED when the milter asked
 * not to get that stage's event (Postfix then sends no macros either).
 */
int mp_macro(mp_conn *c, char stage_cmd, const char *const *names,
             const char *const *values, size_t n, struct mp_reply *r);

/*
 * The SMTP events.  Each sends one command and, unless the milter asked
 * for no reply (kind MP_K_NOREPLY) or not to get the event at all
 * (MP_K_SKIPPED, nothing sent; unless opt.send_all), waits for the reply,
 * skipping progress packets (each restarts the timeout, as in Postfix).
 *
 * family: SMFIA_INET '4', SMFIA_INET6 '6', SMFIA_UNIX 'L' or
 * SMFIA_UNKNOWN 'U'.  For 'U' neither port nor addr is sent, and
 * libmilter hands the filter a NULL hostaddr.
 */
int mp_connect(mp_conn *c, const char *hostname, char family, uint16_t port,
               const char *addr, struct mp_reply *r);
int mp_helo(mp_conn *c, const char *name, struct mp_reply *r);
/* argv[0] is the address ("<a@b.example>"), then ESMTP parameters. */
int mp_mail(mp_conn *c, const char *const *argv, size_t argc,
            struct mp_reply *r);
int mp_rcpt(mp_conn *c, const char *const *argv, size_t argc,
            struct mp_reply *r);
int mp_data(mp_conn *c, struct mp_reply *r);
int mp_header(mp_conn *c, const char *name, const char *value,
              struct mp_reply *r);
int mp_eoh(mp_conn *c, struct mp_reply *r);
/* One body chunk (at most MILTER_CHUNK_SIZE bytes, CRLF line ends). */
int mp_body(mp_conn *c, const void *buf, size_t len, struct mp_reply *r);
/* End of body, with an optional last chunk; collects modifications. */
int mp_eob(mp_conn *c, const void *buf, size_t len, struct mp_reply *r);
int mp_unknown(mp_conn *c, const char *command, struct mp_reply *r);

/* No reply to these.  mp_quit() also closes the socket; after
 * mp_quit_nc() the same connection (still negotiated) takes a CONNECT. */
int mp_abort(mp_conn *c, struct mp_reply *r);
int mp_quit(mp_conn *c, struct mp_reply *r);
int mp_quit_nc(mp_conn *c, struct mp_reply *r);

/* Garbage tests.  mp_send_raw() writes bytes as they are; mp_send_packet()
 * frames cmd and data with a correct length.  Neither reads.
 * mp_read_packet() reads one packet of any kind (kind as for a reply,
 * MP_K_PACKET with the raw data for one it does not know). */
int mp_send_raw(mp_conn *c, const void *buf, size_t len, struct mp_reply *r);
int mp_send_packet(mp_conn *c, char cmd, const void *data, size_t len,
                   struct mp_reply *r);
int mp_read_packet(mp_conn *c, struct mp_reply *r);

/* "RCPT_REJ|NR_HDR|..." for protocol flags, into buf. */
char *mp_protocol_names(uint32_t flags, char *buf, size_t size);

/* Microseconds on the monotonic clock. */
int64_t mp_now_us(void);

#endif
