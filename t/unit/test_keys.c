/*
 * test_keys.c - key construction, sanitising, classification, parsing.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fg.h"
#include "keys.h"
#include "net.h"
#include "tap.h"

#define BIG (64 * 1024)

/* Test input made printable for a TAP line (rotating buffers). */
static const char *
esc(const char *s)
{
	static char bufs[4][256];
	static int next;
	char *b = bufs[next++ % 4], *p = b;

	if (s == NULL)
		return "(null)";
	for (; *s != '\0' && p < b + sizeof(bufs[0]) - 5; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c >= 0x7f)
			p += sprintf(p, "\\x%02x", c);
		else
			*p++ = (char)c;
	}
	*p = '\0';
	return b;
}

/* A key is printable ASCII without spaces and fits the buffer. */
static bool
key_is_clean(const char *k)
{
	size_t n = strlen(k);

	if (n > FG_KEY_MAX - 1)
		return false;
	for (; *k != '\0'; k++)
		if ((unsigned char)*k <= 0x20 || (unsigned char)*k >= 0x7f)
			return false;
	return true;
}

static void
test_address_network(void)
{
	static const struct {
		const char *addr;
		const char *key;
	} addrs[] = {
		{"192.0.2.7", "192.0.2.7"},
		{"2001:db8::7", "2001:db8::7"},
		{"2001:0DB8:0:0::7", "2001:db8::7"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
		{"[IPv6:2001:db8::7]", "2001:db8::7"},
		{"::", "::"},
	};
	static const struct {
		const char *addr;
		unsigned len;
		const char *key;
	} nets[] = {
		{"192.0.2.7", 24, "192.0.2.0/24"},
		{"192.0.2.7", 16, "192.0.0.0/16"},
		{"192.0.2.7", 31, "192.0.2.6/31"},
		{"192.0.2.7", 0, "0.0.0.0/0"},
		{"192.0.2.7", 32, "192.0.2.7"},
		{"192.0.2.7", 33, "192.0.2.7"},
		{"192.0.2.7", 1000, "192.0.2.7"},
		{"2001:db8:1:2:3:4:5:6", 64, "2001:db8:1:2::/64"},
		{"2001:db8:1:2:3:4:5:6", 48, "2001:db8:1::/48"},
		{"2001:db8:1:2:3:4:5:6", 0, "::/0"},
		{"2001:db8:1:2:3:4:5:6", 127, "2001:db8:1:2:3:4:5:6/127"},
		{"2001:db8:1:2:3:4:5:6", 128, "2001:db8:1:2:3:4:5:6"},
		{"::ffff:192.0.2.7", 24, "192.0.2.0/24"},
	};
	size_t i;
	char buf[FG_KEY_MAX];
	fg_addr a;

	for (i = 0; i < FG_NELEM(addrs); i++) {
		fg_addr_parse(addrs[i].addr, &a);
		ok(fg_key_address(buf, &a) == buf, "address key returns buf");
		is_str(buf, addrs[i].key, "address key of %s", addrs[i].addr);
		is_int(fg_key_type_of(buf), FG_KEY_ADDRESS, "%s is an address key",
		       buf);
	}
	for (i = 0; i < FG_NELEM(nets); i++) {
		fg_addr_parse(nets[i].addr, &a);
		ok(fg_key_network(buf, &a, nets[i].len) == buf,
		   "network key returns buf");
		is_str(buf, nets[i].key, "network key of %s/%u", nets[i].addr,
		       nets[i].len);
		is_int(fg_key_type_of(buf),
		       strchr(nets[i].key, '/') ? FG_KEY_NETWORK : FG_KEY_ADDRESS,
		       "type of %s", buf);
	}
}

/* Names: HELO keys show the sanitiser; the domain keys share it. */
static const struct {
	const char *in, *key;
} helos[] = {
	{"mx.example.org", "helo:mx.example.org"},
	{"MX.Example.ORG", "helo:mx.example.org"},
	{"mx.example.org.", "helo:mx.example.org."},
	{"mx.example.org\r\n", "helo:mx.example.org"},
	{"evil\r\nX-Injected: yes", "helo:evilx-injected:yes"},
	{"a b\tc\vd\fe", "helo:abcde"},
	{"  padded  ", "helo:padded"},
	{"\x7f" "del\x7f", "helo:del"},
	{"\x01\x02\x1b[31mred\x1b[0m", "helo:[31mred[0m"},
	{"caf\xc3\xa9.example", "helo:caf??.example"},
	{"\x80\xff", "helo:??"},
	{"", "helo:"},
	{" ", "helo:"},
	{"\r\n", "helo:"},
	{"[192.0.2.1]", "helo:[192.0.2.1]"},
	{"[IPv6:2001:DB8::1]", "helo:[ipv6:2001:db8::1]"},
	{"HELO:x", "helo:helo:x"},
	{"*", "helo:*"},
	{"a/b", "helo:a/b"},
	{"%s%n", "helo:%s%n"},
	{"ABCDEFGHIJKLMNOPQRSTUVWXYZ", "helo:abcdefghijklmnopqrstuvwxyz"},
};

static const struct {
	const char *in, *domain;
} domains[] = {
	{"<user@Example.ORG>", "example.org"},
	{"user@example.org", "example.org"},
	{"<user@example.org.>", "example.org"},
	{"user@example.org.", "example.org"},
	{"user@example.org..", "example.org"},
	{" <user@example.org> ", "example.org"},
	{"\t<user@example.org>\r\n", "example.org"},
	{"<@a.example,@b.example:user@dom.example>", "dom.example"},
	{"@a.example:user@dom.example", "dom.example"},
	{"\"a@b\"@example.com", "example.com"},
	{"a@b@c.example", "c.example"},
	{"<user@[192.0.2.1]>", "[192.0.2.1]"},
	{"<user@[IPv6:2001:DB8::1]>", "[ipv6:2001:db8::1]"},
	{"user@EXAMPLE.org\r\n", "example.org"},
	{"user@exa\r\nmple.org", "example.org"},
	{"user@ex ample.org", "example.org"},
	{"user@b\xc3\xbc" "cher.de", "b??cher.de"},
	{"user@example.org>>", "example.org"},
	{"user", ""},
	{"<user>", ""},
	{"<>", ""},
	{"", ""},
	{"   ", ""},
	{"user@", ""},
	{"<user@>", ""},
	{"user@.", ""},
	{"@", ""},
	{"user@.example.org", ".example.org"},
};

static void
test_names(void)
{
	size_t i;
	char buf[FG_KEY_MAX], want[FG_KEY_MAX];

	for (i = 0; i < FG_NELEM(helos); i++) {
		ok(fg_key_helo(buf, helos[i].in) == buf, "helo key returns buf");
		is_str(buf, helos[i].key, "helo key of \"%s\"", esc(helos[i].in));
		is_int(fg_key_type_of(buf), FG_KEY_HELO, "helo key of \"%s\" is HELO",
		       esc(helos[i].in));
	}
	is_str(fg_key_helo(buf, NULL), "helo:", "helo key of NULL");

	for (i = 0; i < FG_NELEM(domains); i++) {
		snprintf(want, sizeof(want), "rcpt-domain:%s", domains[i].domain);
		ok(fg_key_rcpt_domain(buf, domains[i].in) == buf,
		   "rcpt-domain key returns buf");
		is_str(buf, want, "rcpt-domain key of \"%s\"", esc(domains[i].in));
		is_int(fg_key_type_of(buf), FG_KEY_RCPT_DOMAIN,
		       "rcpt-domain key of \"%s\" is RCPT_DOMAIN", esc(domains[i].in));

		snprintf(want, sizeof(want), "sender-domain:%s", domains[i].domain);
		ok(fg_key_sender_domain(buf, domains[i].in) == buf,
		   "sender-domain key returns buf");
		is_str(buf, want, "sender-domain key of \"%s\"", esc(domains[i].in));
		is_int(fg_key_type_of(buf), FG_KEY_SENDER_DOMAIN,
		       "sender-domain key of \"%s\" is SENDER_DOMAIN",
		       esc(domains[i].in));
	}
	is_str(fg_key_rcpt_domain(buf, NULL), "rcpt-domain:", "rcpt of NULL");
	is_str(fg_key_sender_domain(buf, NULL), "sender-domain:",
	       "sender of NULL");

	ok(fg_key_global(buf) == buf, "global key returns buf");
	is_str(buf, "*", "global key");
	is_int(fg_key_type_of(buf), FG_KEY_GLOBAL, "* is GLOBAL");
}

/* Hostile input of 64 KiB: keys stay bounded and clean, and the buffer
 * is never overrun (ASan watches the exact-size heap buffers). */
static void
test_long(void)
{
	char *big = malloc(BIG + 1);
	char *buf = malloc(FG_KEY_MAX);
	size_t i;
	static const char fill[] = {'A', '\r', '\n', ' ', '\x80', '\x7f', 'z'};

	memset(big, 'A', BIG);
	big[BIG] = '\0';
	fg_key_helo(buf, big);
	is_int(strlen(buf), FG_KEY_MAX - 1, "64 KiB HELO is cut to %d bytes",
	       FG_KEY_MAX - 1);
	ok(strncmp(buf, "helo:aaaa", 9) == 0 && buf[FG_KEY_MAX - 2] == 'a',
	   "64 KiB HELO is lower-cased to the end");

	/* What is dropped does not count against the limit. */
	memset(big, ' ', BIG);
	memcpy(big + BIG - 3, "xyz", 3);
	is_str(fg_key_helo(buf, big), "helo:xyz", "64 KiB of spaces then a name");
	memset(big, '\n', BIG);
	is_str(fg_key_helo(buf, big), "helo:", "64 KiB of newlines");

	/* 8-bit bytes are kept as '?', so they do count. */
	memset(big, '\xe9', BIG);
	fg_key_helo(buf, big);
	is_int(strlen(buf), FG_KEY_MAX - 1, "64 KiB of 8-bit bytes is cut");
	ok(key_is_clean(buf), "64 KiB of 8-bit bytes gives a clean key");

	/* A mixture. */
	for (i = 0; i < BIG; i++)
		big[i] = fill[i % sizeof(fill)];
	fg_key_helo(buf, big);
	ok(key_is_clean(buf) && strlen(buf) == FG_KEY_MAX - 1,
	   "64 KiB of mixed junk gives a clean, full key");

	/* Domains: the last '@' is found however far in. */
	memset(big, 'U', BIG);
	big[10] = '@';
	big[BIG - 20] = '@';
	memcpy(big + BIG - 19, "Example.ORG.>  \r\n\t", 19);
	is_str(fg_key_rcpt_domain(buf, big), "rcpt-domain:example.org",
	       "domain after 64 KiB of local part");

	memset(big, 'D', BIG);
	big[0] = '@';
	fg_key_sender_domain(buf, big);
	is_int(strlen(buf), FG_KEY_MAX - 1, "64 KiB domain is cut");
	ok(strncmp(buf, "sender-domain:ddd", 17) == 0,
	   "64 KiB domain keeps its prefix");

	/* A long domain whose cut falls on a dot loses the dot. */
	memset(big, 'd', BIG);
	big[0] = '@';
	big[FG_KEY_MAX - 1 - strlen("rcpt-domain:")] = '.';
	fg_key_rcpt_domain(buf, big);
	is_int(strlen(buf), FG_KEY_MAX - 2, "cut on a dot drops the dot");
	ok(buf[strlen(buf) - 1] == 'd', "cut key does not end in a dot");

	/* Parse of a long name. */
	memcpy(big, "helo:", 5);
	memset(big + 5, 'Q', BIG - 5);
	is_int(fg_key_parse(buf, big), 0, "parse of a 64 KiB helo key");
	is_int(strlen(buf), FG_KEY_MAX - 1, "parsed 64 KiB helo key is cut");
	memset(big, '1', BIG);
	is_int(fg_key_parse(buf, big), FG_EINVAL, "parse of 64 KiB of digits");
	is_str(buf, "", "failed parse leaves an empty key");

	free(buf);
	free(big);
}

static void
test_type_of(void)
{
	static const struct {
		const char *key;
		enum fg_key_type type;
	} types[] = {
		{"*", FG_KEY_GLOBAL},
		{"helo:", FG_KEY_HELO},
		{"helo:mx.example.org", FG_KEY_HELO},
		{"rcpt-domain:", FG_KEY_RCPT_DOMAIN},
		{"rcpt-domain:example.org", FG_KEY_RCPT_DOMAIN},
		{"sender-domain:", FG_KEY_SENDER_DOMAIN},
		{"sender-domain:example.net", FG_KEY_SENDER_DOMAIN},
		{"192.0.2.7", FG_KEY_ADDRESS},
		{"2001:db8::7", FG_KEY_ADDRESS},
		{"192.0.2.0/24", FG_KEY_NETWORK},
		{"2001:db8::/64", FG_KEY_NETWORK},
		{"0.0.0.0/0", FG_KEY_NETWORK},
		{"helo:a/b", FG_KEY_HELO},
		{"rcpt-domain:a/b", FG_KEY_RCPT_DOMAIN},
	};
	size_t i;

	for (i = 0; i < FG_NELEM(types); i++)
		is_int(fg_key_type_of(types[i].key), types[i].type, "type of \"%s\"",
		       types[i].key);
}

static const struct {
	const char *text, *key;
} parse_good[] = {
	{"*", "*"},
	{"192.0.2.7", "192.0.2.7"},
	{"[192.0.2.7]", "192.0.2.7"},
	{"2001:DB8:0::7", "2001:db8::7"},
	{"IPv6:2001:DB8::7", "2001:db8::7"},
	{"[IPv6:2001:db8::7]", "2001:db8::7"},
	{"::ffff:192.0.2.7", "192.0.2.7"},
	{"192.0.2", "192.0.2.0/24"},
	{"192.0", "192.0.0.0/16"},
	{"192", "192.0.0.0/8"},
	{"192.0.2.0/24", "192.0.2.0/24"},
	{"192.0.2.9/24", "192.0.2.0/24"},
	{"192.0.2.7/32", "192.0.2.7"},
	{"192.0.2.7/31", "192.0.2.6/31"},
	{"0.0.0.0/0", "0.0.0.0/0"},
	{"2001:db8::/32", "2001:db8::/32"},
	{"2001:db8::7/64", "2001:db8::/64"},
	{"2001:db8::7/128", "2001:db8::7"},
	{"::/0", "::/0"},
	{"::ffff:192.0.2.7/128", "192.0.2.7"},
	{"::ffff:192.0.2.0/120", "192.0.2.0/24"},
	{"::ffff:0:0/96", "0.0.0.0/0"},
	{"helo:MX.Example.org", "helo:mx.example.org"},
	{"HELO:mx", "helo:mx"},
	{"helo:", "helo:"},
	{"helo:a\r\nb", "helo:ab"},
	{"helo:mx.example.org.", "helo:mx.example.org."},
	{"rcpt-domain:Example.ORG", "rcpt-domain:example.org"},
	{"RCPT-Domain:example.org", "rcpt-domain:example.org"},
	{"rcpt-domain:example.org.", "rcpt-domain:example.org"},
	{"rcpt-domain:", "rcpt-domain:"},
	{"sender-domain:Example.NET", "sender-domain:example.net"},
	{"sender-domain:b\xc3\xbc" "cher.de", "sender-domain:b??cher.de"},
	{"sender-domain: example.net ", "sender-domain:example.net"},
};

static const char *const parse_bad[] = {
	"",
	" ",
	"**",
	"* ",
	" *",
	"foo",
	"example.org",
	"helo",
	"helo-name:x",
	" helo:x",
	"rcpt:x",
	"domain:x",
	"sender:x",
	"192.0.2.256",
	"192.0.2.0/33",
	"1.2.3.4/",
	"192.0.2.0 /24",
	" 192.0.2.7",
	"192.0.2.7 ",
	"192.0.2.7\n",
	"192.0.2/24",
	"-1",
	"+192.0.2.7",
	"fe80::1%eth0",
	"2001:db8::/129",
	"IPv6:192.0.2.7",
	"0x7f000001",
};

static void
test_parse(void)
{
	size_t i;
	char buf[FG_KEY_MAX], again[FG_KEY_MAX];
	fg_addr a;

	for (i = 0; i < FG_NELEM(parse_good); i++) {
		memset(buf, 'x', sizeof(buf));
		is_int(fg_key_parse(buf, parse_good[i].text), 0, "parse \"%s\"",
		       esc(parse_good[i].text));
		is_str(buf, parse_good[i].key, "key of \"%s\"",
		       esc(parse_good[i].text));
		/* A canonical key parses to itself. */
		is_int(fg_key_parse(again, buf), 0, "reparse \"%s\"", esc(buf));
		is_str(again, buf, "\"%s\" is a fixed point", esc(buf));
	}
	for (i = 0; i < FG_NELEM(parse_bad); i++) {
		memset(buf, 'x', sizeof(buf));
		is_int(fg_key_parse(buf, parse_bad[i]), FG_EINVAL, "refuse \"%s\"",
		       esc(parse_bad[i]));
		is_str(buf, "", "refused \"%s\" leaves an empty key",
		       esc(parse_bad[i]));
	}
	is_int(fg_key_parse(buf, NULL), FG_EINVAL, "refuse NULL");

	/* Every key a constructor makes is a fixed point of the parser, and
	 * keeps its type. */
	for (i = 0; i < FG_NELEM(helos); i++) {
		fg_key_helo(buf, helos[i].in);
		ok(fg_key_parse(again, buf) == 0 && strcmp(again, buf) == 0,
		   "helo key \"%s\" reparses to itself", esc(buf));
	}
	for (i = 0; i < FG_NELEM(domains); i++) {
		fg_key_rcpt_domain(buf, domains[i].in);
		ok(fg_key_parse(again, buf) == 0 && strcmp(again, buf) == 0,
		   "rcpt key \"%s\" reparses to itself", esc(buf));
		fg_key_sender_domain(buf, domains[i].in);
		ok(fg_key_parse(again, buf) == 0 && strcmp(again, buf) == 0,
		   "sender key \"%s\" reparses to itself", esc(buf));
	}
	{
		static const char *const addrs[] = {
			"192.0.2.7", "2001:db8:1:2:3:4:5:6", "::", "255.255.255.255",
		};
		size_t j;

		for (i = 0; i < FG_NELEM(addrs); i++) {
			fg_addr_parse(addrs[i], &a);
			fg_key_address(buf, &a);
			ok(fg_key_parse(again, buf) == 0 && strcmp(again, buf) == 0,
			   "address key %s reparses to itself", buf);
			for (j = 0; j <= fg_addr_bits(&a); j++) {
				fg_key_network(buf, &a, (unsigned)j);
				if (fg_key_parse(again, buf) != 0 ||
				    strcmp(again, buf) != 0 ||
				    fg_key_type_of(again) != fg_key_type_of(buf))
					break;
			}
			ok(j == fg_addr_bits(&a) + 1,
			   "network keys of %s at every length reparse to themselves",
			   addrs[i]);
		}
	}
}

/* A shared key paired with a client's network (act_on = "network"). */
static void
test_pair(void)
{
	static const struct {
		const char *text, *key;
	} good[] = {
		{"198.51.100,HELO:MX.Example", "198.51.100.0/24,helo:mx.example"},
		{"198.51.100.0/24,*", "198.51.100.0/24,*"},
		{"2001:db8::/64,rcpt-domain:Example.ORG.",
		 "2001:db8::/64,rcpt-domain:example.org"},
		{"192.0.2.7,sender-domain:example.net",
		 "192.0.2.7,sender-domain:example.net"},
		{"192.0.2.0/24,helo:a,b", "192.0.2.0/24,helo:a,b"},
	};
	static const char *const bad[] = {
		"192.0.2.0/24,192.0.2.1", "192.0.2.0/24,192.0.2.0/25",
		"nonsense,helo:x", ",helo:x", "192.0.2.0/24,",
		"192.0.2.0/24,192.0.2.0/24,helo:x",
	};
	char buf[FG_KEY_MAX], net[FG_KEY_MAX], shared[FG_KEY_MAX];
	fg_addr a;

	for (size_t i = 0; i < FG_NELEM(good); i++) {
		is_int(fg_key_parse(buf, good[i].text), 0, "pair: parse \"%s\"",
		       good[i].text);
		is_str(buf, good[i].key, "pair: key of \"%s\"", good[i].text);
		is_int(fg_key_type_of(buf), FG_KEY_PAIR, "pair: %s is a pair", buf);
	}
	for (size_t i = 0; i < FG_NELEM(bad); i++)
		is_int(fg_key_parse(buf, bad[i]), FG_EINVAL, "pair: refuse \"%s\"",
		       bad[i]);
	is_int(fg_key_type_of("helo:a,b"), FG_KEY_HELO,
	       "pair: a HELO name with a comma is a HELO key");
	is_str(fg_key_pair(buf, "192.0.2.0/24", "helo:x"), "192.0.2.0/24,helo:x",
	       "pair: made");
	ok(fg_key_pair_split("192.0.2.0/24,helo:a,b", net, shared) == 0 &&
	   strcmp(net, "192.0.2.0/24") == 0 && strcmp(shared, "helo:a,b") == 0,
	   "pair: split at the first comma");
	is_int(fg_key_pair_split("helo:a,b", net, shared), FG_EINVAL,
	       "pair: a HELO key does not split");
	fg_addr_parse("192.0.2.9", &a);
	ok(fg_key_covers("192.0.2.0/24,helo:x", &a), "covers: a pair's network");
	ok(fg_key_covers("192.0.2.9,*", &a), "covers: a pair's address");
	ok(fg_key_covers("192.0.0.0/16", &a), "covers: a network");
	ok(!fg_key_covers("192.0.3.0/24,helo:x", &a), "covers: not another");
	ok(!fg_key_covers("192.0.2.9", &a), "covers: an address is no network");
	ok(!fg_key_covers("helo:x", &a), "covers: not a name");
}

int
main(void)
{
	test_pair();
	test_address_network();
	test_names();
	test_long();
	test_type_of();
	test_parse();
	return tap_done();
}
