/*
 * net.c - IP addresses, prefixes, and a longest-prefix-match table.
 *
 * The parsers are our own rather than inet_pton(3): the C library's
 * notion of a valid address differs between implementations (leading
 * zeros, octal, zone ids), and a key that an operator types must mean the
 * same thing on every system.  The formatter is our own too, for the same
 * reason: inet_ntop(3) writes some IPv6 addresses in mixed notation on
 * one libc and in hex on another.  We always write RFC 5952 section 4
 * text, hex only.
 *
 * The table is a path-compressed binary trie per family: every node
 * holds a whole prefix, and a node exists only where a prefix was added
 * or where two branches part.  Keys are held as two 64-bit words so that
 * "does this node's prefix cover the address" is two masked compares.
 */
#include "net.h"

#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "fg.h"

static const uint8_t v4mapped_prefix[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
};

/*
 * Parsing.
 */

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Dotted decimal, one to four parts, into out[0..3] (the rest zeroed).
 * Each part is 1-3 digits without leading zeros, at most 255.  Returns
 * the number of parts, or -1.
 */
static int
parse_dotted(const char *s, size_t n, uint8_t out[4])
{
	size_t i = 0;
	int parts = 0;

	memset(out, 0, 4);
	for (;;) {
		size_t start = i;
		unsigned v = 0;

		while (i < n && s[i] >= '0' && s[i] <= '9') {
			if (i - start == 3)
				return -1;
			v = v * 10 + (unsigned)(s[i] - '0');
			i++;
		}
		if (i == start || v > 255 || (i - start > 1 && s[start] == '0'))
			return -1;
		out[parts++] = (uint8_t)v;
		if (i == n)
			return parts;
		if (s[i] != '.' || parts == 4)
			return -1;
		i++;
	}
}

/*
 * RFC 4291 section 2.2 text: eight groups of 1-4 hex digits, at most one
 * "::" standing for one or more zero groups, and optionally a dotted quad
 * in place of the last two groups.  Nothing else: no zone id, no space.
 */
static int
parse_v6(const char *s, size_t n, uint8_t out[16])
{
	uint8_t b[16];
	size_t i = 0, o = 0;
	long gap = -1;

	memset(b, 0, sizeof(b));
	if (n >= 2 && s[0] == ':' && s[1] == ':') {
		gap = 0;
		i = 2;
		if (i == n)
			goto done;
	} else if (n == 0 || s[0] == ':')
		return -1;

	for (;;) {
		size_t start = i, end = i;
		bool dotted = false;

		while (end < n && s[end] != ':') {
			if (s[end] == '.')
				dotted = true;
			end++;
		}
		if (end == start)
			return -1;
		if (dotted) {
			/* A dotted quad ends the address. */
			if (end != n || o > 12 ||
			    parse_dotted(s + start, end - start, b + o) != 4)
				return -1;
			o += 4;
			goto done;
		}
		if (end - start > 4 || o > 14)
			return -1;
		{
			unsigned v = 0;
			size_t k;

			for (k = start; k < end; k++) {
				int h = hexval((unsigned char)s[k]);

				if (h < 0)
					return -1;
				v = v << 4 | (unsigned)h;
			}
			b[o++] = (uint8_t)(v >> 8);
			b[o++] = (uint8_t)v;
		}
		i = end;
		if (i == n)
			goto done;
		i++; /* the ':' */
		if (i == n)
			return -1; /* a single trailing colon */
		if (s[i] == ':') {
			if (gap >= 0)
				return -1;
			gap = (long)o;
			i++;
			if (i == n)
				goto done;
		}
	}

done:
	if (gap < 0) {
		if (o != 16)
			return -1;
	} else {
		size_t tail = o - (size_t)gap;

		if (o > 14)
			return -1; /* "::" must stand for at least one group */
		memmove(b + 16 - tail, b + gap, tail);
		memset(b + gap, 0, 16 - tail - (size_t)gap);
	}
	memcpy(out, b, 16);
	return 0;
}

/* A bare address (no brackets, no tag), not normalised. */
static int
parse_bare(const char *s, size_t n, bool v6_only, fg_addr *out)
{
	memset(out, 0, sizeof(*out));
	if (memchr(s, ':', n) != NULL) {
		if (parse_v6(s, n, out->bytes) < 0)
			return FG_EINVAL;
		out->family = FG_AF_INET6;
		return 0;
	}
	if (v6_only || parse_dotted(s, n, out->bytes) != 4)
		return FG_EINVAL;
	out->family = FG_AF_INET;
	return 0;
}

static bool
is_v4mapped(const fg_addr *a)
{
	return a->family == FG_AF_INET6 &&
	       memcmp(a->bytes, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0;
}

/* ::ffff:a.b.c.d becomes a.b.c.d. */
static void
normalise(fg_addr *a)
{
	if (!is_v4mapped(a))
		return;
	memmove(a->bytes, a->bytes + 12, 4);
	memset(a->bytes + 4, 0, 12);
	a->family = FG_AF_INET;
}

int
fg_addr_parse(const char *s, fg_addr *out)
{
	fg_addr a;
	size_t n;
	bool tagged = false;

	if (s == NULL || out == NULL)
		return FG_EINVAL;
	n = strlen(s);
	if (n > 0 && s[0] == '[') {
		if (n < 2 || s[n - 1] != ']')
			return FG_EINVAL;
		s++;
		n -= 2;
	}
	if (n >= 5 && strncasecmp(s, "IPv6:", 5) == 0) {
		tagged = true;
		s += 5;
		n -= 5;
	}
	if (parse_bare(s, n, tagged, &a) < 0)
		return FG_EINVAL;
	normalise(&a);
	*out = a;
	return 0;
}

int
fg_addr_from_sockaddr(const struct sockaddr *sa, fg_addr *out)
{
	sa_family_t family;

	if (sa == NULL || out == NULL)
		return FG_EINVAL;
	/* libmilter's pointer need not be aligned for the larger types. */
	memcpy(&family, (const char *)sa + offsetof(struct sockaddr, sa_family),
	       sizeof(family));
	memset(out, 0, sizeof(*out));
	switch (family) {
	case AF_INET: {
		struct sockaddr_in sin;

		memcpy(&sin, sa, sizeof(sin));
		memcpy(out->bytes, &sin.sin_addr, 4);
		out->family = FG_AF_INET;
		return 0;
	}
	case AF_INET6: {
		struct sockaddr_in6 sin6;

		memcpy(&sin6, sa, sizeof(sin6));
		memcpy(out->bytes, &sin6.sin6_addr, 16);
		out->family = FG_AF_INET6;
		normalise(out);
		return 0;
	}
	default:
		return FG_EINVAL;
	}
}

/*
 * Formatting.
 */

static char *
put_hex(char *p, unsigned v)
{
	static const char digits[] = "0123456789abcdef";
	int shift = 12;

	while (shift > 0 && (v >> shift) == 0)
		shift -= 4;
	for (; shift >= 0; shift -= 4)
		*p++ = digits[(v >> shift) & 0xf];
	return p;
}

/* RFC 5952 section 4: lower case, no leading zeros, the first longest
 * run of two or more zero groups as "::". */
static void
format_v6(const uint8_t b[16], char *out)
{
	unsigned w[8];
	int i, best = -1, bestlen = 0, run = 0;
	const uint8_t *g = b;
	char *p = out;

	for (i = 0; i < 8; i++, g += 2) {
		w[i] = (unsigned)g[0] << 8 | g[1];
		if (w[i] == 0) {
			run++;
			if (run > bestlen) {
				bestlen = run;
				best = i - run + 1;
			}
		} else
			run = 0;
	}
	if (bestlen < 2)
		best = -1;
	for (i = 0; i < 8; i++) {
		if (i == best) {
			*p++ = ':';
			*p++ = ':';
			i += bestlen - 1;
			continue;
		}
		if (i > 0 && i != best + bestlen)
			*p++ = ':';
		p = put_hex(p, w[i]);
	}
	*p = '\0';
}

static void
copy_out(char *buf, size_t size, const char *s)
{
	size_t n = strlen(s);

	if (size == 0)
		return;
	if (n >= size)
		n = size - 1;
	memcpy(buf, s, n);
	buf[n] = '\0';
}

/* Decimal of v at p; returns the end.  (snprintf costs ten times as
 * much, and the milter formats a few addresses per session.) */
static char *
put_u(char *p, unsigned v)
{
	char d[10];
	int n = 0;

	do {
		d[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	while (n > 0)
		*p++ = d[--n];
	return p;
}

static void
format_v4(const uint8_t *b, char *out)
{
	char *p = out;

	for (int i = 0; i < 4; i++) {
		if (i > 0)
			*p++ = '.';
		p = put_u(p, b[i]);
	}
	*p = '\0';
}

char *
fg_addr_format(const fg_addr *a, char *buf, size_t size)
{
	char tmp[FG_ADDR_STRLEN];

	if (buf == NULL)
		return NULL;
	if (a != NULL && a->family == FG_AF_INET)
		format_v4(a->bytes, tmp);
	else if (a != NULL && a->family == FG_AF_INET6)
		format_v6(a->bytes, tmp);
	else
		strcpy(tmp, "?");
	copy_out(buf, size, tmp);
	return buf;
}

bool
fg_addr_equal(const fg_addr *a, const fg_addr *b)
{
	if (a->family != b->family)
		return false;
	return memcmp(a->bytes, b->bytes, a->family == FG_AF_INET ? 4 : 16) == 0;
}

unsigned
fg_addr_bits(const fg_addr *a)
{
	switch (a->family) {
	case FG_AF_INET: return 32;
	case FG_AF_INET6: return 128;
	default: return 0;
	}
}

/*
 * Prefixes.
 */

/* Clears every bit from len on. */
static void
clear_host_bits(uint8_t bytes[16], unsigned len)
{
	unsigned full = len / 8, rem = len % 8;

	if (full >= 16)
		return;
	bytes[full] &= (uint8_t)(0xff00u >> rem);
	memset(bytes + full + 1, 0, 16 - full - 1);
}

/* A prefix length: 1-3 digits, no leading zero, at most max. */
static int
parse_len(const char *s, unsigned max, unsigned *len)
{
	unsigned v = 0;
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9' || i == 3)
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (i == 0 || (i > 1 && s[0] == '0') || v > max)
		return -1;
	*len = v;
	return 0;
}

int
fg_prefix_parse(const char *s, fg_prefix *out)
{
	const char *slash;
	fg_addr a;
	unsigned len;

	if (s == NULL || out == NULL)
		return FG_EINVAL;
	slash = strchr(s, '/');
	if (slash == NULL) {
		int parts;

		if (fg_addr_parse(s, &a) == 0) {
			fg_prefix_of(&a, fg_addr_bits(&a), out);
			return 0;
		}
		/* sendmail's partial address: "192.0.2" is 192.0.2.0/24. */
		memset(&a, 0, sizeof(a));
		parts = parse_dotted(s, strlen(s), a.bytes);
		if (parts < 1 || parts > 3)
			return FG_EINVAL;
		a.family = FG_AF_INET;
		fg_prefix_of(&a, 8 * (unsigned)parts, out);
		return 0;
	}
	if (parse_bare(s, (size_t)(slash - s), false, &a) < 0 ||
	    parse_len(slash + 1, fg_addr_bits(&a), &len) < 0)
		return FG_EINVAL;
	if (is_v4mapped(&a) && len >= 96) {
		normalise(&a);
		len -= 96;
	}
	fg_prefix_of(&a, len, out);
	return 0;
}

void
fg_prefix_of(const fg_addr *a, unsigned len, fg_prefix *out)
{
	unsigned max = fg_addr_bits(a);

	if (len > max)
		len = max;
	out->addr = *a;
	if (a->family == FG_AF_INET)
		memset(out->addr.bytes + 4, 0, 12);
	clear_host_bits(out->addr.bytes, len);
	out->len = (uint8_t)len;
}

bool
fg_prefix_contains(const fg_prefix *p, const fg_addr *a)
{
	unsigned full, rem;

	if (p->addr.family != a->family || fg_addr_bits(a) == 0 ||
	    p->len > fg_addr_bits(a))
		return false;
	full = p->len / 8;
	rem = p->len % 8;
	if (memcmp(p->addr.bytes, a->bytes, full) != 0)
		return false;
	if (rem == 0)
		return true;
	return ((p->addr.bytes[full] ^ a->bytes[full]) & (0xff00u >> rem)) == 0;
}

_Static_assert(FG_PREFIX_STRLEN >= FG_ADDR_STRLEN + 4,
               "a prefix is its address, '/' and up to 3 digits");

char *
fg_prefix_format(const fg_prefix *p, char *buf, size_t size)
{
	char tmp[FG_PREFIX_STRLEN], *e;

	if (buf == NULL)
		return NULL;
	if (p == NULL) {
		copy_out(buf, size, "?");
		return buf;
	}
	fg_addr_format(&p->addr, tmp, sizeof(tmp));
	e = tmp + strlen(tmp);
	*e++ = '/';
	*put_u(e, p->len) = '\0';
	copy_out(buf, size, tmp);
	return buf;
}

/*
 * The longest-prefix-match table.
 *
 * Invariants: a child's length is greater than its parent's, its key
 * agrees with the parent's over the parent's length, and it hangs on the
 * side given by its key's bit at the parent's length.  A node without a
 * value ("glue") always has two children.
 */

struct node {
	struct node *child[2];
	uint64_t key[2]; /* the prefix, host bits zero, big-endian words */
	void *value;
	uint8_t len;
	bool used; /* holds a value: an added prefix, not glue */
};

struct fg_nettab {
	struct node *root[2]; /* IPv4, IPv6 */
	size_t count;
};

static int
family_index(uint8_t family)
{
	switch (family) {
	case FG_AF_INET: return 0;
	case FG_AF_INET6: return 1;
	default: return -1;
	}
}

static void
load_key(const fg_addr *a, uint64_t k[2])
{
	int i, n = a->family == FG_AF_INET ? 4 : 16;

	k[0] = k[1] = 0;
	for (i = 0; i < n; i++)
		k[i / 8] |= (uint64_t)a->bytes[i] << (56 - 8 * (i % 8));
}

static void
store_key(const uint64_t k[2], uint8_t family, fg_addr *a)
{
	int i, n = family == FG_AF_INET ? 4 : 16;

	memset(a, 0, sizeof(*a));
	a->family = family;
	for (i = 0; i < n; i++)
		a->bytes[i] = (uint8_t)(k[i / 8] >> (56 - 8 * (i % 8)));
}

/* The mask of the first len (0..64) bits of a word. */
static inline uint64_t
mask64(unsigned len)
{
	return len == 0 ? 0 : ~UINT64_C(0) << (64 - len);
}

/* Do k and key agree over the first len bits? */
static inline bool
key_match(const uint64_t k[2], const uint64_t key[2], unsigned len)
{
	if (len <= 64)
		return ((k[0] ^ key[0]) & mask64(len)) == 0;
	return k[0] == key[0] && ((k[1] ^ key[1]) & mask64(len - 64)) == 0;
}

static inline unsigned
key_bit(const uint64_t k[2], unsigned i)
{
	return (unsigned)(k[i / 64] >> (63 - i % 64)) & 1;
}

/* The number of leading bits k and key share, at most limit. */
static unsigned
common_len(const uint64_t k[2], const uint64_t key[2], unsigned limit)
{
	uint64_t x;
	unsigned n;

	if ((x = k[0] ^ key[0]) != 0)
		n = (unsigned)__builtin_clzll(x);
	else if ((x = k[1] ^ key[1]) != 0)
		n = 64 + (unsigned)__builtin_clzll(x);
	else
		n = 128;
	return n < limit ? n : limit;
}

static void
key_truncate(uint64_t k[2], unsigned len)
{
	if (len <= 64) {
		k[0] &= mask64(len);
		k[1] = 0;
	} else
		k[1] &= mask64(len - 64);
}

static struct node *
node_new(const uint64_t k[2], unsigned len)
{
	struct node *n = calloc(1, sizeof(*n));

	if (n == NULL)
		return NULL;
	n->key[0] = k[0];
	n->key[1] = k[1];
	key_truncate(n->key, len);
	n->len = (uint8_t)len;
	return n;
}

fg_nettab *
fg_nettab_new(void)
{
	return calloc(1, sizeof(fg_nettab));
}

int
fg_nettab_add(fg_nettab *t, const fg_prefix *p, void *value)
{
	struct node **link, *n, *leaf, *glue;
	uint64_t k[2];
	unsigned len, c;
	int fi;

	if (t == NULL || p == NULL || (fi = family_index(p->addr.family)) < 0 ||
	    p->len > fg_addr_bits(&p->addr))
		return FG_EINVAL;
	len = p->len;
	load_key(&p->addr, k);
	key_truncate(k, len);

	link = &t->root[fi];
	while ((n = *link) != NULL) {
		c = common_len(k, n->key, len < n->len ? len : n->len);
		if (c == n->len) {
			/* n's prefix covers the new one. */
			if (len == n->len) {
				if (n->used)
					return FG_EEXIST;
				n->used = true;
				n->value = value;
				t->count++;
				return 0;
			}
			link = &n->child[key_bit(k, n->len)];
			continue;
		}
		/* The two part at bit c, inside n's prefix. */
		if ((leaf = node_new(k, len)) == NULL)
			return FG_ENOMEM;
		leaf->used = true;
		leaf->value = value;
		if (c == len) {
			/* The new prefix covers n: it takes n's place. */
			leaf->child[key_bit(n->key, len)] = n;
			*link = leaf;
		} else {
			if ((glue = node_new(k, c)) == NULL) {
				free(leaf);
				return FG_ENOMEM;
			}
			glue->child[key_bit(k, c)] = leaf;
			glue->child[key_bit(n->key, c)] = n;
			*link = glue;
		}
		t->count++;
		return 0;
	}
	if ((leaf = node_new(k, len)) == NULL)
		return FG_ENOMEM;
	leaf->used = true;
	leaf->value = value;
	*link = leaf;
	t->count++;
	return 0;
}

int
fg_nettab_lookup(const fg_nettab *t, const fg_addr *a, void **value,
                 fg_prefix *matched)
{
	const struct node *n, *best = NULL;
	uint64_t k[2];
	unsigned max;
	int fi;

	if (t == NULL || a == NULL || (fi = family_index(a->family)) < 0)
		return FG_EINVAL;
	max = fg_addr_bits(a);
	load_key(a, k);
	for (n = t->root[fi]; n != NULL && key_match(k, n->key, n->len);
	     n = n->child[key_bit(k, n->len)]) {
		if (n->used)
			best = n;
		if (n->len == max)
			break;
	}
	if (best == NULL)
		return 0;
	if (value != NULL)
		*value = best->value;
	if (matched != NULL) {
		store_key(best->key, a->family, &matched->addr);
		matched->len = best->len;
	}
	return 1;
}

size_t
fg_nettab_count(const fg_nettab *t)
{
	return t == NULL ? 0 : t->count;
}

static void
node_free(struct node *n, void (*free_value)(void *))
{
	/* Depth is bounded by 129, so recursion is safe. */
	if (n == NULL)
		return;
	node_free(n->child[0], free_value);
	node_free(n->child[1], free_value);
	if (n->used && free_value != NULL)
		free_value(n->value);
	free(n);
}

void
fg_nettab_free(fg_nettab *t, void (*free_value)(void *))
{
	if (t == NULL)
		return;
	node_free(t->root[0], free_value);
	node_free(t->root[1], free_value);
	free(t);
}
