/*
 * net.h - IP addresses, prefixes, and a longest-prefix-match table.
 *
 * Addresses are held in a fixed 17-byte value type: no allocation, safe
 * to copy.  IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are normalised to
 * IPv4 by every parser, so a client is counted under one key whichever way
 * the MTA spelled it.
 *
 * Accepted textual forms:
 *   fg_addr_parse:    "192.0.2.1", "2001:db8::1", any RFC 4291 form
 *                     including embedded IPv4, "[2001:db8::1]" (brackets),
 *                     "IPv6:2001:db8::1" (the SMTP address-literal tag,
 *                     case-insensitive).  Zone ids ("%eth0") are refused.
 *   fg_prefix_parse:  all of the above (a host prefix: /32 or /128),
 *                     "192.0.2.0/24", "2001:db8::/32", and sendmail-style
 *                     partial IPv4 addresses at octet boundaries:
 *                     "192.0.2" = 192.0.2.0/24, "192.0" = /16, "192" = /8.
 *                     Host bits set below the prefix length are cleared.
 *                     An IPv4-mapped prefix ::ffff:0:0/96 and longer is
 *                     normalised to IPv4 (length minus 96).
 * Parsers return 0, or FG_EINVAL for anything else (empty string, stray
 * characters, leading/trailing space, out-of-range octets or lengths).
 *
 * Thread-safety: all functions are reentrant.  An fg_nettab is built by
 * one thread, then read by any number of threads without locking as long
 * as nobody adds to it.
 */
#ifndef FG_NET_H
#define FG_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sockaddr;

enum { FG_AF_NONE = 0, FG_AF_INET = 4, FG_AF_INET6 = 6 };

typedef struct fg_addr {
	uint8_t family;    /* FG_AF_INET or FG_AF_INET6 */
	uint8_t bytes[16]; /* network order; IPv4 uses bytes[0..3], rest 0 */
} fg_addr;

typedef struct fg_prefix {
	fg_addr addr; /* host bits below len are zero */
	uint8_t len;  /* 0..32 for IPv4, 0..128 for IPv6 */
} fg_prefix;

/* Buffer sizes that always suffice for the formatters, NUL included. */
#define FG_ADDR_STRLEN 46
#define FG_PREFIX_STRLEN 50

int fg_addr_parse(const char *s, fg_addr *out);
/* From a socket address as libmilter hands it (AF_INET / AF_INET6 only;
 * anything else, or NULL, is FG_EINVAL). */
int fg_addr_from_sockaddr(const struct sockaddr *sa, fg_addr *out);
/* Canonical text: dotted quad, or RFC 5952 IPv6.  Returns buf. */
char *fg_addr_format(const fg_addr *a, char *buf, size_t size);
bool fg_addr_equal(const fg_addr *a, const fg_addr *b);
/* Maximum prefix length of the family: 32 or 128. */
unsigned fg_addr_bits(const fg_addr *a);

int fg_prefix_parse(const char *s, fg_prefix *out);
/* The prefix of length len containing a (len is clamped to the family's
 * maximum). */
void fg_prefix_of(const fg_addr *a, unsigned len, fg_prefix *out);
bool fg_prefix_contains(const fg_prefix *p, const fg_addr *a);
/* "192.0.2.0/24", "2001:db8::/32"; host prefixes keep their "/32". */
char *fg_prefix_format(const fg_prefix *p, char *buf, size_t size);

/*
 * Longest-prefix-match table mapping prefixes to opaque values (a binary
 * trie per family).  Look-ups cost at most 32 or 128 steps.
 */
typedef struct fg_nettab fg_nettab;

fg_nettab *fg_nettab_new(void);
/* FG_EEXIST if the exact prefix is present already, FG_ENOMEM. */
int fg_nettab_add(fg_nettab *t, const fg_prefix *p, void *value);
/* 1 and *value (and *matched if not NULL) for the longest prefix
 * containing a, 0 if none does. */
int fg_nettab_lookup(const fg_nettab *t, const fg_addr *a, void **value,
                     fg_prefix *matched);
size_t fg_nettab_count(const fg_nettab *t);
/* Frees the table; calls free_value on each value if not NULL. */
void fg_nettab_free(fg_nettab *t, void (*free_value)(void *));

#endif
