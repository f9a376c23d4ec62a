/*
 * keys.c - the text keys floodgate counts, limits and bans by.
 *
 * A key is built by appending to a prefix in the caller's FG_KEY_MAX
 * buffer.  Anything that came from a client goes through append_name(),
 * which is the only place that decides what a name may contain.
 */
#include "keys.h"

#include <string.h>
#include <strings.h>

#include "fg.h"
#include "net.h"

#define PFX_HELO "helo:"
#define PFX_RCPT "rcpt-domain:"
#define PFX_SENDER "sender-domain:"
#define KEY_GLOBAL "*"
#define PAIR_SEP ','  /* in no address, network or prefix of a name */

/*
 * Appends s[0..n) to the key of length len in buf: control bytes and
 * spaces are dropped, bytes from 0x80 up become '?', ASCII upper case
 * becomes lower case, and whatever does not fit in FG_KEY_MAX - 1 bytes
 * is cut off.  Returns the new length.
 */
static size_t
append_name(char *buf, size_t len, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n && len < FG_KEY_MAX - 1; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c == 0x7f)
			continue;
		if (c >= 0x80)
			c = '?';
		else if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		buf[len++] = (char)c;
	}
	buf[len] = '\0';
	return len;
}

/* prefix, then the sanitised name. */
static size_t
make_named(char *buf, const char *prefix, const char *s, size_t n)
{
	size_t len = strlen(prefix);

	memcpy(buf, prefix, len + 1);
	return s == NULL ? len : append_name(buf, len, s, n);
}

/* Drops trailing dots of the name after the prefix plen bytes long. */
static void
strip_dots(char *buf, size_t plen, size_t len)
{
	while (len > plen && buf[len - 1] == '.')
		len--;
	buf[len] = '\0';
}

char *
fg_key_address(char *buf, const fg_addr *a)
{
	return fg_addr_format(a, buf, FG_KEY_MAX);
}

char *
fg_key_network(char *buf, const fg_addr *a, unsigned len)
{
	fg_prefix p;

	if (a == NULL || len >= fg_addr_bits(a))
		return fg_key_address(buf, a);
	fg_prefix_of(a, len, &p);
	return fg_prefix_format(&p, buf, FG_KEY_MAX);
}

char *
fg_key_helo(char *buf, const char *helo)
{
	make_named(buf, PFX_HELO, helo, helo == NULL ? 0 : strlen(helo));
	return buf;
}

static int
is_trailing_junk(unsigned char c)
{
	return c <= 0x20 || c == 0x7f || c == '>' || c == '.';
}

/*
 * The domain of an envelope address: what follows the last '@', without
 * the closing '>', trailing white space or trailing dots.  Taking the
 * last '@' also copes with a quoted local part ("a@b"@dom) and a source
 * route (<@a,@b:user@dom>).  No '@' at all gives the empty domain.
 */
static char *
domain_key(char *buf, const char *prefix, const char *address)
{
	size_t start, end, len;

	if (address == NULL)
		address = "";
	end = strlen(address);
	while (end > 0 && is_trailing_junk((unsigned char)address[end - 1]))
		end--;
	for (start = end; start > 0 && address[start - 1] != '@'; start--)
		continue;
	if (start == 0)
		start = end; /* no '@' */
	len = make_named(buf, prefix, address + start, end - start);
	strip_dots(buf, strlen(prefix), len);
	return buf;
}

char *
fg_key_rcpt_domain(char *buf, const char *address)
{
	return domain_key(buf, PFX_RCPT, address);
}

char *
fg_key_sender_domain(char *buf, const char *address)
{
	return domain_key(buf, PFX_SENDER, address);
}

char *
fg_key_global(char *buf)
{
	memcpy(buf, KEY_GLOBAL, sizeof(KEY_GLOBAL));
	return buf;
}

char *
fg_key_pair(char *buf, const char *net, const char *shared)
{
	size_t n = strnlen(net, FG_KEY_MAX - 2);
	size_t m = strnlen(shared, FG_KEY_MAX - 2 - n);

	memcpy(buf, net, n);
	buf[n] = PAIR_SEP;
	memcpy(buf + n + 1, shared, m);
	buf[n + 1 + m] = '\0';
	return buf;
}

int
fg_key_pair_split(const char *key, char *net, char *shared)
{
	const char *sep;

	if (fg_key_type_of(key) != FG_KEY_PAIR ||
	    (sep = strchr(key, PAIR_SEP)) == NULL ||
	    (size_t)(sep - key) >= FG_KEY_MAX || strlen(sep + 1) >= FG_KEY_MAX)
		return FG_EINVAL;
	memcpy(net, key, (size_t)(sep - key));
	net[sep - key] = '\0';
	memcpy(shared, sep + 1, strlen(sep + 1) + 1);
	return 0;
}

bool
fg_key_covers(const char *key, const fg_addr *a)
{
	char net[FG_KEY_MAX], shared[FG_KEY_MAX], ak[FG_KEY_MAX];
	fg_prefix p;

	if (key == NULL || a == NULL)
		return false;
	if (fg_key_pair_split(key, net, shared) == 0)
		key = net;
	else if (fg_key_type_of(key) != FG_KEY_NETWORK)
		return false;
	if (fg_key_type_of(key) == FG_KEY_NETWORK)
		return fg_prefix_parse(key, &p) == 0 && fg_prefix_contains(&p, a);
	return strcmp(key, fg_key_address(ak, a)) == 0;
}

static bool
has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

enum fg_key_type
fg_key_type_of(const char *key)
{
	if (key == NULL)
		return FG_KEY_ADDRESS;
	if (strcmp(key, KEY_GLOBAL) == 0)
		return FG_KEY_GLOBAL;
	if (has_prefix(key, PFX_HELO))
		return FG_KEY_HELO;
	if (has_prefix(key, PFX_RCPT))
		return FG_KEY_RCPT_DOMAIN;
	if (has_prefix(key, PFX_SENDER))
		return FG_KEY_SENDER_DOMAIN;
	if (strchr(key, PAIR_SEP) != NULL)
		return FG_KEY_PAIR;
	if (strchr(key, '/') != NULL)
		return FG_KEY_NETWORK;
	return FG_KEY_ADDRESS;
}

static int parse_single(char *buf, const char *text);

/* "net,shared": a network or address, then a name or the global key. */
static int
parse_pair(char *buf, const char *text, const char *sep)
{
	char net[FG_KEY_MAX], shared[FG_KEY_MAX], part[FG_KEY_MAX];
	size_t n = (size_t)(sep - text);
	enum fg_key_type t;

	if (n >= sizeof(part))
		return FG_EINVAL;
	memcpy(part, text, n);
	part[n] = '\0';
	if (parse_single(net, part) != 0 ||
	    ((t = fg_key_type_of(net)) != FG_KEY_ADDRESS && t != FG_KEY_NETWORK))
		return FG_EINVAL;
	if (parse_single(shared, sep + 1) != 0 ||
	    ((t = fg_key_type_of(shared)) != FG_KEY_HELO &&
	     t != FG_KEY_RCPT_DOMAIN && t != FG_KEY_SENDER_DOMAIN &&
	     t != FG_KEY_GLOBAL))
		return FG_EINVAL;
	/* Whole, or it would not read back as itself. */
	if (strlen(net) + 1 + strlen(shared) >= FG_KEY_MAX)
		return FG_EINVAL;
	fg_key_pair(buf, net, shared);
	return 0;
}

int
fg_key_parse(char *buf, const char *text)
{
	const char *sep;

	buf[0] = '\0';
	if (text == NULL)
		return FG_EINVAL;
	/* A pair starts with its network: no name prefix comes first. */
	if ((sep = strchr(text, PAIR_SEP)) != NULL &&
	    strncasecmp(text, PFX_HELO, strlen(PFX_HELO)) != 0 &&
	    strncasecmp(text, PFX_RCPT, strlen(PFX_RCPT)) != 0 &&
	    strncasecmp(text, PFX_SENDER, strlen(PFX_SENDER)) != 0)
		return parse_pair(buf, text, sep);
	return parse_single(buf, text);
}

static int
parse_single(char *buf, const char *text)
{
	static const struct {
		const char *prefix;
		bool domain;
	} named[] = {
		{PFX_HELO, false},
		{PFX_RCPT, true},
		{PFX_SENDER, true},
	};
	fg_addr a;
	fg_prefix p;
	size_t i;

	buf[0] = '\0';
	if (text == NULL)
		return FG_EINVAL;
	if (strcmp(text, KEY_GLOBAL) == 0) {
		fg_key_global(buf);
		return 0;
	}
	for (i = 0; i < FG_NELEM(named); i++) {
		size_t plen = strlen(named[i].prefix), len;

		if (strncasecmp(text, named[i].prefix, plen) != 0)
			continue;
		len = make_named(buf, named[i].prefix, text + plen,
		                 strlen(text + plen));
		if (named[i].domain)
			strip_dots(buf, plen, len);
		return 0;
	}
	if (fg_addr_parse(text, &a) == 0) {
		fg_key_address(buf, &a);
		return 0;
	}
	if (fg_prefix_parse(text, &p) == 0) {
		/* A host prefix ("192.0.2.7/32") is the address's key. */
		fg_key_network(buf, &p.addr, p.len);
		return 0;
	}
	return FG_EINVAL;
}
