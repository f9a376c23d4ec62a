/*
 * keys.h - the text keys floodgate counts, limits and bans by.
 *
 * Every counter, escalation level and ban is filed under a key string; the
 * same strings appear in the database, the logs and floodgatectl, so an
 * operator can type what they read:
 *
 *   address          "192.0.2.7", "2001:db8::7"        (canonical text)
 *   network          "192.0.2.0/24", "2001:db8::/64"    (CIDR)
 *   HELO name        "helo:mx.example.org"              (lower case)
 *   recipient domain "rcpt-domain:example.org"          (lower case)
 *   sender domain    "sender-domain:example.net"        (lower case)
 *   global           "*"
 *   pair             "192.0.2.0/24,helo:mx.example.org" (a network or
 *                    address, a comma, a HELO, domain or global key:
 *                    a rule on a shared key that acts on the client's
 *                    network, act_on = "network")
 *
 * Names are sanitised (control bytes and spaces dropped, lower-cased,
 * truncated to fit) so a key is always printable and bounded.
 * Functions write into a caller's buffer of FG_KEY_MAX bytes and return
 * it; they never fail.
 */
#ifndef FG_KEYS_H
#define FG_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#include "net.h"

#define FG_KEY_MAX 320

enum fg_key_type {
	FG_KEY_ADDRESS,
	FG_KEY_NETWORK,
	FG_KEY_HELO,
	FG_KEY_RCPT_DOMAIN,
	FG_KEY_SENDER_DOMAIN,
	FG_KEY_GLOBAL,
	FG_KEY_PAIR,
};

char *fg_key_address(char *buf, const fg_addr *a);
char *fg_key_network(char *buf, const fg_addr *a, unsigned len);
char *fg_key_helo(char *buf, const char *helo);
/* The domain part of an envelope address ("<user@Example.ORG>" →
 * "rcpt-domain:example.org"); an address without a domain gives the key
 * of the empty domain. */
char *fg_key_rcpt_domain(char *buf, const char *address);
char *fg_key_sender_domain(char *buf, const char *address);
char *fg_key_global(char *buf);
/* The pair of a client's network (or address) key and a shared key:
 * "net,shared", cut to fit. */
char *fg_key_pair(char *buf, const char *net, const char *shared);
/* The two halves of a pair key, each into a buffer of FG_KEY_MAX bytes;
 * FG_EINVAL if key is no pair. */
int fg_key_pair_split(const char *key, char *net, char *shared);

/* Whether key is a network containing a, or a pair whose network (or
 * address) half contains a. */
bool fg_key_covers(const char *key, const fg_addr *a);

/* Which kind of key a string is (by its form, as above). */
enum fg_key_type fg_key_type_of(const char *key);

/*
 * Turns what an operator typed ("192.0.2", "192.0.2.0/24", "2001:db8::1",
 * "helo:x", "*", "192.0.2,helo:x") into the canonical key.  Returns 0 or
 * FG_EINVAL.
 */
int fg_key_parse(char *buf, const char *text);

#endif
