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
	if (strchr(key, '/') != NULL)
		return FG_KEY_NETWORK;
	return FG_KEY_ADDRESS;
}

int
fg_key_parse(char *buf, const char *text)
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
