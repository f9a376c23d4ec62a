/*
 * test_net.c - addresses, prefixes and the longest-prefix-match table.
 *
 * Table-driven: every accepted form with its canonical text, every
 * refused form, then round trips, a differential check of the parser and
 * formatter against the C library, and the table against a linear scan.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "fg.h"
#include "net.h"
#include "tap.h"

/* A small deterministic generator: the tests must be reproducible. */
static uint64_t rng_state = UINT64_C(0x9e3779b97f4a7c15);

static uint64_t
rng(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

/* Test input made printable for a TAP line (rotating buffers). */
static const char *
esc(const char *s)
{
	static char bufs[4][256];
	static int next;
	char *b = bufs[next++ % 4], *p = b;

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

static const char *
fmt_addr(const fg_addr *a)
{
	static char buf[FG_ADDR_STRLEN];

	return fg_addr_format(a, buf, sizeof(buf));
}

static const char *
fmt_prefix(const fg_prefix *p)
{
	static char buf[FG_PREFIX_STRLEN];

	return fg_prefix_format(p, buf, sizeof(buf));
}

/* Accepted addresses: input, canonical text, family. */
static const struct {
	const char *in, *out;
	int family;
} addr_good[] = {
	{"0.0.0.0", "0.0.0.0", 4},
	{"255.255.255.255", "255.255.255.255", 4},
	{"192.0.2.1", "192.0.2.1", 4},
	{"10.0.0.1", "10.0.0.1", 4},
	{"127.0.0.1", "127.0.0.1", 4},
	{"1.20.100.199", "1.20.100.199", 4},
	{"[192.0.2.1]", "192.0.2.1", 4},
	{"::", "::", 6},
	{"0::0", "::", 6},
	{"0:0:0:0:0:0:0:0", "::", 6},
	{"0000:0000:0000:0000:0000:0000:0000:0000", "::", 6},
	{"::1", "::1", 6},
	{"1::", "1::", 6},
	{"2001:db8::1", "2001:db8::1", 6},
	{"2001:DB8::1", "2001:db8::1", 6},
	{"2001:Db8::aBcD", "2001:db8::abcd", 6},
	{"2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1", 6},
	{"2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1", 6},
	{"2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1", 6},
	{"2001:0:0:1:0:0:0:1", "2001:0:0:1::1", 6},
	{"2001:db8::0:1", "2001:db8::1", 6},
	{"2001:db8:0:0:0:0:2:1", "2001:db8::2:1", 6},
	{"2001:db8::1:0:0:0", "2001:db8:0:0:1::", 6},
	{"1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8", 6},
	{"::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8", 6},
	{"1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0", 6},
	{"1:2:3::5:6:7:8", "1:2:3:0:5:6:7:8", 6},
	{"fe80::1", "fe80::1", 6},
	{"FE80::ABCD:EF01", "fe80::abcd:ef01", 6},
	{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	 "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 6},
	{"::192.0.2.1", "::c000:201", 6},
	{"64:ff9b::192.0.2.33", "64:ff9b::c000:221", 6},
	{"1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304", 6},
	{"1::1.2.3.4", "1::102:304", 6},
	{"::fffe:1.2.3.4", "::fffe:102:304", 6},
	{"::1:ffff:1.2.3.4", "::1:ffff:102:304", 6},
	/* IPv4-mapped: normalised to IPv4 */
	{"::ffff:192.0.2.1", "192.0.2.1", 4},
	{"::FFFF:192.0.2.1", "192.0.2.1", 4},
	{"::ffff:c000:0201", "192.0.2.1", 4},
	{"::ffff:c000:201", "192.0.2.1", 4},
	{"0:0:0:0:0:ffff:192.0.2.1", "192.0.2.1", 4},
	{"0000:0000:0000:0000:0000:ffff:c000:0201", "192.0.2.1", 4},
	{"::ffff:0.0.0.0", "0.0.0.0", 4},
	{"::ffff:255.255.255.255", "255.255.255.255", 4},
	/* SMTP address literals */
	{"[2001:db8::1]", "2001:db8::1", 6},
	{"IPv6:2001:db8::1", "2001:db8::1", 6},
	{"ipv6:2001:db8::1", "2001:db8::1", 6},
	{"IPV6:2001:DB8::1", "2001:db8::1", 6},
	{"[IPv6:2001:db8::1]", "2001:db8::1", 6},
	{"[iPv6:::1]", "::1", 6},
	{"IPv6:::ffff:192.0.2.1", "192.0.2.1", 4},
	{"[IPv6:::ffff:192.0.2.1]", "192.0.2.1", 4},
	{"[::ffff:192.0.2.1]", "192.0.2.1", 4},
};

/* Refused addresses. */
static const char *const addr_bad[] = {
	"",
	" ",
	" 192.0.2.1",
	"192.0.2.1 ",
	"192.0.2.1\n",
	"\t192.0.2.1",
	"192.0.2.1\r\n",
	"192.0.2",
	"192.0",
	"192",
	"192.0.2.1.",
	".192.0.2.1",
	"192.0.2.256",
	"256.0.0.0",
	"192.0.2.999",
	"192.0.2.-1",
	"+192.0.2.1",
	"-1.2.3.4",
	"192.+0.2.1",
	"192.0.2.1.5",
	"192..2.1",
	"0x7f.0.0.1",
	"0177.0.0.1",
	"01.2.3.4",
	"1.2.3.04",
	"1.2.3.00",
	"1234.1.1.1",
	"1.2.3.4a",
	"a.b.c.d",
	"localhost",
	"1.2.3.4/32",
	"192.0.2.1%eth0",
	"[192.0.2.1",
	"192.0.2.1]",
	"[]",
	"[",
	"]",
	"[[::1]]",
	"[ ::1]",
	"IPv6:",
	"[IPv6:]",
	"IPv6:192.0.2.1",
	"[IPv6:192.0.2.1]",
	"IPv4:192.0.2.1",
	"IPv6 :::1",
	"IPv6::",
	"IPv6:[::1]",
	"IPv6:IPv6:::1",
	"fe80::1%eth0",
	"fe80::1%25eth0",
	"fe80::1%1",
	":",
	":::",
	"::::",
	"1:::2",
	"2001:db8:::1",
	"1:2:3:4:5:6:7:8:9",
	"1:2:3:4:5:6:7:8::",
	"::1:2:3:4:5:6:7:8",
	"1:2:3:4::5:6:7:8",
	"1::2::3",
	"::1::",
	"12345::",
	"1:2:3:4:5:6:7",
	":1::",
	":1:2:3:4:5:6:7:8",
	"1::2:",
	"1:2:3:4:5:6:7:8:",
	"g::1",
	"::g",
	"2001:db8::1 ",
	" ::1",
	"\t::1",
	"::1\n",
	"::1/128",
	"+::1",
	"-::1",
	"::-1",
	"::+1",
	"::0x1",
	"::1.2.3",
	"::1.2.3.4.5",
	"::256.1.1.1",
	"::01.2.3.4",
	"::ffff:01.2.3.4",
	"::1.2.3.4:5",
	"::1.2.3.4::",
	"1.2.3.4::",
	"1.2.3.4::1",
	"1:2:3:4:5:6:7:1.2.3.4",
	"1:2:3:4:5:6:1.2.3.4:8",
	"::1.2.3.4.",
	"::.1.2.3",
	"::ffff:1.2.3.4%x",
	"1:2:3:4:5:6:7:8%eth0",
};

static void
test_addr_parse(void)
{
	size_t i;
	fg_addr a;

	for (i = 0; i < FG_NELEM(addr_good); i++) {
		memset(&a, 0xa5, sizeof(a));
		is_int(fg_addr_parse(addr_good[i].in, &a), 0, "parse \"%s\"",
		       addr_good[i].in);
		is_int(a.family, addr_good[i].family, "family of \"%s\"",
		       addr_good[i].in);
		is_str(fmt_addr(&a), addr_good[i].out, "format of \"%s\"",
		       addr_good[i].in);
		if (a.family == FG_AF_INET) {
			static const uint8_t zero[12];

			ok(memcmp(a.bytes + 4, zero, 12) == 0,
			   "IPv4 \"%s\" has zero tail bytes", addr_good[i].in);
		}
	}
	for (i = 0; i < FG_NELEM(addr_bad); i++) {
		fg_addr before, after;

		memset(&before, 0x5a, sizeof(before));
		after = before;
		is_int(fg_addr_parse(addr_bad[i], &after), FG_EINVAL,
		       "refuse address \"%s\"", esc(addr_bad[i]));
		ok(memcmp(&before, &after, sizeof(before)) == 0,
		   "refused \"%s\" leaves the output alone", esc(addr_bad[i]));
	}
	is_int(fg_addr_parse(NULL, &a), FG_EINVAL, "refuse NULL text");
	is_int(fg_addr_parse("::1", NULL), FG_EINVAL, "refuse NULL output");

	/* A string far longer than any address. */
	{
		char *big = malloc(65536);

		memset(big, '1', 65535);
		big[65535] = '\0';
		is_int(fg_addr_parse(big, &a), FG_EINVAL, "refuse 64 KiB digits");
		memset(big, ':', 65535);
		is_int(fg_addr_parse(big, &a), FG_EINVAL, "refuse 64 KiB colons");
		free(big);
	}
}

/*
 * Our IPv6 parser against inet_pton(3) on text made of address-like
 * tokens: both must agree on what is valid and on the bytes.  The only
 * difference allowed is that we normalise mapped addresses to IPv4.
 */
static void
test_addr_vs_libc(void)
{
	static const char *const tok[] = {
		"0", "1", "ff", "ffff", "FFFF", "abcd", "12345", "0000", "00000",
		":", ":", ":", "::", "::", ".", "1.2.3.4", "255.255.255.255",
		"256", "01", "9", "g", "%", "0x", "192.0.2.1", "ffff:",
	};
	int i, n, tested = 0, valid = 0, v4tested = 0, bad = 0;

	for (i = 0; i < 300000; i++) {
		char s[96];
		size_t len = 0;
		struct in6_addr in6;
		struct in_addr in4;
		fg_addr a;
		int ours, libc;

		n = 1 + (int)(rng() % 12);
		while (n-- > 0) {
			const char *t = tok[rng() % FG_NELEM(tok)];
			size_t tl = strlen(t);

			if (len + tl >= sizeof(s))
				break;
			memcpy(s + len, t, tl);
			len += tl;
		}
		s[len] = '\0';
		ours = fg_addr_parse(s, &a) == 0;
		if (strchr(s, ':') != NULL) {
			libc = inet_pton(AF_INET6, s, &in6) == 1;
			tested++;
			if (ours != libc) {
				if (bad++ < 10)
					printf("# disagree on \"%s\": ours %d libc %d\n",
					       s, ours, libc);
				continue;
			}
			if (!ours)
				continue;
			valid++;
			if (a.family == FG_AF_INET6 &&
			    memcmp(a.bytes, &in6, 16) != 0) {
				if (bad++ < 10)
					printf("# bytes differ on \"%s\"\n", s);
			} else if (a.family == FG_AF_INET &&
			           (memcmp(a.bytes, (const uint8_t *)&in6 + 12, 4) != 0 ||
			            ((const uint8_t *)&in6)[10] != 0xff)) {
				if (bad++ < 10)
					printf("# mapped bytes differ on \"%s\"\n", s);
			}
		} else {
			/* glibc's inet_pton(AF_INET) is strict dotted quad. */
			libc = inet_pton(AF_INET, s, &in4) == 1;
			v4tested++;
			if (ours != libc || (ours && memcmp(a.bytes, &in4, 4) != 0)) {
				if (bad++ < 10)
					printf("# disagree on \"%s\": ours %d libc %d\n",
					       s, ours, libc);
			}
		}
	}
	ok(tested > 100000 && valid > 1000,
	   "differential corpus is meaningful (%d v6 strings, %d valid)", tested,
	   valid);
	is_int(bad, 0, "parser agrees with inet_pton on %d + %d strings", tested,
	       v4tested);
}

/* Random addresses with many zero groups: formatting then parsing gives
 * the same address, and the text matches inet_ntop where glibc does not
 * choose mixed notation. */
static void
test_addr_roundtrip(void)
{
	int i, j, bad_rt = 0, bad_ntop = 0, compared = 0;

	for (i = 0; i < 100000; i++) {
		fg_addr a, b;
		char mine[FG_ADDR_STRLEN], libc[INET6_ADDRSTRLEN];
		bool mixed;

		memset(&a, 0, sizeof(a));
		if (i % 4 == 0) {
			a.family = FG_AF_INET;
			for (j = 0; j < 4; j++)
				a.bytes[j] = (uint8_t)rng();
		} else {
			a.family = FG_AF_INET6;
			for (j = 0; j < 8; j++) {
				unsigned w = rng() % 3 == 0 ? 0 : (unsigned)rng() & 0xffff;

				if (rng() % 5 == 0)
					w &= 0xf;
				a.bytes[2 * j] = (uint8_t)(w >> 8);
				a.bytes[2 * j + 1] = (uint8_t)w;
			}
			if (memcmp(a.bytes, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0)
				a.bytes[0] = 1;
		}
		fg_addr_format(&a, mine, sizeof(mine));
		if (fg_addr_parse(mine, &b) != 0 || !fg_addr_equal(&a, &b)) {
			if (bad_rt++ < 10)
				printf("# round trip failed for \"%s\"\n", mine);
		}
		if (a.family != FG_AF_INET6)
			continue;
		/* glibc writes ::a.b.c.d when the first five or six groups
		 * are zero: not RFC 5952's choice, skip those. */
		mixed = memcmp(a.bytes, "\0\0\0\0\0\0\0\0\0\0", 10) == 0;
		if (mixed)
			continue;
		inet_ntop(AF_INET6, a.bytes, libc, sizeof(libc));
		compared++;
		if (strcmp(mine, libc) != 0 && bad_ntop++ < 10)
			printf("# \"%s\" vs inet_ntop \"%s\"\n", mine, libc);
	}
	is_int(bad_rt, 0, "format/parse round trip of 100000 addresses");
	is_int(bad_ntop, 0, "format agrees with inet_ntop on %d addresses",
	       compared);
}

static void
test_addr_misc(void)
{
	fg_addr a, b;
	char buf[FG_ADDR_STRLEN];
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	struct sockaddr_un sun;
	unsigned char unaligned[sizeof(struct sockaddr_in6) + 1];

	fg_addr_parse("192.0.2.1", &a);
	fg_addr_parse("::ffff:192.0.2.1", &b);
	ok(fg_addr_equal(&a, &b), "mapped equals plain IPv4");
	fg_addr_parse("192.0.2.2", &b);
	ok(!fg_addr_equal(&a, &b), "different IPv4 addresses differ");
	fg_addr_parse("::c000:201", &b);
	ok(!fg_addr_equal(&a, &b), "IPv4-compatible is not IPv4");
	is_int(fg_addr_bits(&a), 32, "IPv4 has 32 bits");
	is_int(fg_addr_bits(&b), 128, "IPv6 has 128 bits");

	/* Truncating formatter. */
	memset(buf, 'x', sizeof(buf));
	fg_addr_format(&a, buf, 4);
	is_str(buf, "192", "format truncates to the buffer");
	memset(buf, 'x', sizeof(buf));
	ok(fg_addr_format(&a, buf, 0) == buf && buf[0] == 'x',
	   "size 0 writes nothing");
	memset(&b, 0, sizeof(b));
	is_str(fg_addr_format(&b, buf, sizeof(buf)), "?",
	       "unknown family formats as ?");
	fg_addr_parse("1111:2222:3333:4444:5555:6666:7777:8888", &b);
	is_int(strlen(fmt_addr(&b)), 39, "longest hex form fits");

	/* From socket addresses. */
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	inet_pton(AF_INET, "198.51.100.7", &sin.sin_addr);
	is_int(fg_addr_from_sockaddr((struct sockaddr *)&sin, &a), 0,
	       "sockaddr_in");
	is_str(fmt_addr(&a), "198.51.100.7", "sockaddr_in text");
	is_int(a.family, FG_AF_INET, "sockaddr_in family");

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::7", &sin6.sin6_addr);
	is_int(fg_addr_from_sockaddr((struct sockaddr *)&sin6, &a), 0,
	       "sockaddr_in6");
	is_str(fmt_addr(&a), "2001:db8::7", "sockaddr_in6 text");

	inet_pton(AF_INET6, "::ffff:198.51.100.8", &sin6.sin6_addr);
	is_int(fg_addr_from_sockaddr((struct sockaddr *)&sin6, &a), 0,
	       "mapped sockaddr_in6");
	is_int(a.family, FG_AF_INET, "mapped sockaddr_in6 becomes IPv4");
	is_str(fmt_addr(&a), "198.51.100.8", "mapped sockaddr_in6 text");

	/* libmilter's pointer need not be aligned. */
	memcpy(unaligned + 1, &sin6, sizeof(sin6));
	is_int(fg_addr_from_sockaddr((struct sockaddr *)(void *)(unaligned + 1),
	                             &a),
	       0, "unaligned sockaddr_in6");
	is_str(fmt_addr(&a), "198.51.100.8", "unaligned sockaddr_in6 text");

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	is_int(fg_addr_from_sockaddr((struct sockaddr *)&sun, &a), FG_EINVAL,
	       "AF_UNIX refused");
	is_int(fg_addr_from_sockaddr(NULL, &a), FG_EINVAL, "NULL sockaddr refused");
}

/* Accepted prefixes: input, canonical text. */
static const struct {
	const char *in, *out;
} prefix_good[] = {
	{"192.0.2.0/24", "192.0.2.0/24"},
	{"192.0.2.1/24", "192.0.2.0/24"},
	{"192.0.2.255/24", "192.0.2.0/24"},
	{"1.2.3.4/16", "1.2.0.0/16"},
	{"10.1.2.3/31", "10.1.2.2/31"},
	{"10.1.2.3/1", "0.0.0.0/1"},
	{"128.1.2.3/1", "128.0.0.0/1"},
	{"0.0.0.0/0", "0.0.0.0/0"},
	{"255.255.255.255/0", "0.0.0.0/0"},
	{"255.255.255.255/32", "255.255.255.255/32"},
	{"192.0.2.1/32", "192.0.2.1/32"},
	{"172.31.255.255/12", "172.16.0.0/12"},
	{"192.0.2.1", "192.0.2.1/32"},
	{"[192.0.2.1]", "192.0.2.1/32"},
	/* sendmail partial addresses */
	{"192.0.2", "192.0.2.0/24"},
	{"192.0", "192.0.0.0/16"},
	{"192", "192.0.0.0/8"},
	{"0", "0.0.0.0/8"},
	{"255.255.255", "255.255.255.0/24"},
	{"10.0", "10.0.0.0/16"},
	/* IPv6 */
	{"2001:db8::/32", "2001:db8::/32"},
	{"2001:DB8:ffff::/32", "2001:db8::/32"},
	{"2001:db8::1/64", "2001:db8::/64"},
	{"2001:db8::/48", "2001:db8::/48"},
	{"2001:db8:1234:5679::/63", "2001:db8:1234:5678::/63"},
	{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/127",
	 "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127"},
	{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/1", "8000::/1"},
	{"::/0", "::/0"},
	{"ffff::/0", "::/0"},
	{"::/128", "::/128"},
	{"::1/128", "::1/128"},
	{"2001:db8::1", "2001:db8::1/128"},
	{"[2001:db8::1]", "2001:db8::1/128"},
	{"IPv6:2001:db8::1", "2001:db8::1/128"},
	{"[IPv6:2001:db8::1]", "2001:db8::1/128"},
	{"fe80::/10", "fe80::/10"},
	{"febf:ffff::/10", "fe80::/10"},
	{"2001:db8::1.2.3.4/120", "2001:db8::102:300/120"},
	{"::192.0.2.0/120", "::c000:200/120"},
	/* mapped: /96 and longer become IPv4 */
	{"::ffff:0:0/96", "0.0.0.0/0"},
	{"::ffff:0.0.0.0/96", "0.0.0.0/0"},
	{"::ffff:192.0.2.0/120", "192.0.2.0/24"},
	{"::ffff:192.0.2.77/120", "192.0.2.0/24"},
	{"::FFFF:c000:0201/128", "192.0.2.1/32"},
	{"::ffff:192.0.2.1/128", "192.0.2.1/32"},
	{"::ffff:192.0.2.1", "192.0.2.1/32"},
	{"::ffff:192.0.2.1/97", "128.0.0.0/1"},
	{"::ffff:0:0/95", "::fffe:0:0/95"},
	{"::ffff:0:0/80", "::/80"},
};

static const char *const prefix_bad[] = {
	"",
	"/",
	"/24",
	"/0",
	"192.0.2.0/",
	"192.0.2.0/33",
	"192.0.2.0/-1",
	"192.0.2.0/+24",
	"192.0.2.0/ 24",
	"192.0.2.0 /24",
	"192.0.2.0/24 ",
	" 192.0.2.0/24",
	"192.0.2.0/24\n",
	"192.0.2.0/024",
	"192.0.2.0/00",
	"192.0.2.0/24/24",
	"192.0.2.0//24",
	"192.0.2.0/2a",
	"192.0.2.0/0x18",
	"192.0.2.0/1000",
	"1.2.3.4/4294967328",
	"1.2.3.4/99999999999999999999",
	"2001:db8::/129",
	"2001:db8::/",
	"2001:db8::/0128",
	"::/-0",
	"::ffff:1.2.3.4/129",
	"192.0.2./24",
	"192.0.2.",
	"192.0.",
	"192.",
	".192",
	"192..2",
	"256",
	"192.256",
	"192.0.256",
	"01",
	"192.00",
	"192.0.2/24",
	"10/8",
	"[192.0.2.0]/24",
	"[192.0.2.0/24]",
	"[192.0.2]",
	"IPv6:2001:db8::/32",
	"fe80::%eth0/64",
	"fe80::/64%eth0",
	"01.2.3.4/8",
	"0x0a/8",
	"1.2.3.4.5/32",
	"1.2.3.4.5",
	"-1",
	"+1",
	"-1.2.3.4/8",
	"a",
	"*",
	"192.0.2.0/24x",
	"192.0.2.0\\24",
	"2001:db8::/32 ",
	"2001:db8:::/32",
};

static void
test_prefix_parse(void)
{
	size_t i;
	fg_prefix p, q;
	char buf[FG_PREFIX_STRLEN];

	for (i = 0; i < FG_NELEM(prefix_good); i++) {
		memset(&p, 0xa5, sizeof(p));
		is_int(fg_prefix_parse(prefix_good[i].in, &p), 0, "parse \"%s\"",
		       prefix_good[i].in);
		is_str(fmt_prefix(&p), prefix_good[i].out, "format of \"%s\"",
		       prefix_good[i].in);
		/* The canonical text is a fixed point. */
		is_int(fg_prefix_parse(prefix_good[i].out, &q), 0, "reparse \"%s\"",
		       prefix_good[i].out);
		ok(q.len == p.len && fg_addr_equal(&q.addr, &p.addr),
		   "\"%s\" round-trips", prefix_good[i].out);
		ok(fg_prefix_contains(&p, &p.addr), "\"%s\" contains its base",
		   prefix_good[i].in);
	}
	for (i = 0; i < FG_NELEM(prefix_bad); i++)
		is_int(fg_prefix_parse(prefix_bad[i], &p), FG_EINVAL,
		       "refuse prefix \"%s\"", esc(prefix_bad[i]));
	is_int(fg_prefix_parse(NULL, &p), FG_EINVAL, "refuse NULL prefix");

	/* Every valid address is a valid host prefix; every refused one is
	 * refused as a prefix too, unless it is a partial address. */
	for (i = 0; i < FG_NELEM(addr_good); i++) {
		fg_addr a;

		fg_addr_parse(addr_good[i].in, &a);
		ok(fg_prefix_parse(addr_good[i].in, &p) == 0 &&
		   p.len == fg_addr_bits(&a) && fg_addr_equal(&p.addr, &a),
		   "address \"%s\" is a host prefix", addr_good[i].in);
	}
	for (i = 0; i < FG_NELEM(addr_bad); i++) {
		static const char *const partial[] = {"192.0.2", "192.0", "192"};
		size_t j;
		bool is_partial = false;

		for (j = 0; j < FG_NELEM(partial); j++)
			if (strcmp(addr_bad[i], partial[j]) == 0)
				is_partial = true;
		if (is_partial || strcmp(addr_bad[i], "1.2.3.4/32") == 0 ||
		    strcmp(addr_bad[i], "::1/128") == 0)
			continue;
		is_int(fg_prefix_parse(addr_bad[i], &p), FG_EINVAL,
		       "refuse \"%s\" as prefix too", esc(addr_bad[i]));
	}

	/* Every length of each family. */
	{
		unsigned len;
		int bad = 0;

		for (len = 0; len <= 128; len++) {
			char in[64];

			snprintf(in, sizeof(in), "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/%u",
			         len);
			if (fg_prefix_parse(in, &p) != 0 || p.len != len ||
			    p.addr.family != FG_AF_INET6)
				bad++;
			else {
				/* exactly len one bits */
				unsigned k, ones = 0;

				for (k = 0; k < 16; k++)
					ones += (unsigned)__builtin_popcount(p.addr.bytes[k]);
				if (ones != len)
					bad++;
			}
			if (len > 32)
				continue;
			snprintf(in, sizeof(in), "255.255.255.255/%u", len);
			if (fg_prefix_parse(in, &p) != 0 || p.len != len ||
			    p.addr.family != FG_AF_INET)
				bad++;
		}
		is_int(bad, 0, "every length 0..32 and 0..128 parses and masks");
	}

	/* Formatter limits. */
	fg_prefix_parse("1111:2222:3333:4444:5555:6666:7777:8888/128", &p);
	is_int(strlen(fg_prefix_format(&p, buf, sizeof(buf))), 43,
	       "long prefix fits");
	fg_prefix_format(&p, buf, 5);
	is_str(buf, "1111", "prefix format truncates");
}

static void
test_prefix_of_contains(void)
{
	static const struct {
		const char *addr;
		unsigned len;
		const char *out;
	} of[] = {
		{"192.0.2.77", 24, "192.0.2.0/24"},
		{"192.0.2.77", 0, "0.0.0.0/0"},
		{"192.0.2.77", 32, "192.0.2.77/32"},
		{"192.0.2.77", 33, "192.0.2.77/32"},
		{"192.0.2.77", 200, "192.0.2.77/32"},
		{"192.0.2.77", 25, "192.0.2.0/25"},
		{"192.0.2.200", 25, "192.0.2.128/25"},
		{"192.0.2.77", 7, "192.0.0.0/7"},
		{"2001:db8:a:b:c:d:e:f", 64, "2001:db8:a:b::/64"},
		{"2001:db8:a:b:c:d:e:f", 128, "2001:db8:a:b:c:d:e:f/128"},
		{"2001:db8:a:b:c:d:e:f", 129, "2001:db8:a:b:c:d:e:f/128"},
		{"2001:db8:a:b:c:d:e:f", 0, "::/0"},
		{"2001:db8:a:b:c:d:e:f", 33, "2001:db8::/33"},
		{"2001:db8:8000::", 33, "2001:db8:8000::/33"},
		{"2001:db8:a:b:c:d:e:f", 127, "2001:db8:a:b:c:d:e:e/127"},
	};
	static const struct {
		const char *prefix, *addr;
		bool in;
	} contains[] = {
		{"192.0.2.0/24", "192.0.2.0", true},
		{"192.0.2.0/24", "192.0.2.255", true},
		{"192.0.2.0/24", "192.0.3.0", false},
		{"192.0.2.0/24", "192.0.1.255", false},
		{"192.0.2.1/32", "192.0.2.1", true},
		{"192.0.2.1/32", "192.0.2.2", false},
		{"128.0.0.0/1", "127.255.255.255", false},
		{"128.0.0.0/1", "255.0.0.1", true},
		{"0.0.0.0/0", "1.2.3.4", true},
		{"0.0.0.0/0", "::1", false},
		{"0.0.0.0/0", "::ffff:1.2.3.4", true},
		{"::/0", "1.2.3.4", false},
		{"::/0", "::ffff:1.2.3.4", false},
		{"::/0", "::1", true},
		{"::ffff:0:0/96", "8.8.8.8", true},
		{"2001:db8::/32", "2001:db8:ffff::1", true},
		{"2001:db8::/32", "2001:db9::1", false},
		{"2001:db8::/33", "2001:db8:7fff::1", true},
		{"2001:db8::/33", "2001:db8:8000::1", false},
		{"::1/128", "::1", true},
		{"::1/128", "::2", false},
		{"192.0.2", "192.0.2.9", true},
		{"192.0.2", "192.0.20.9", false},
		{"10", "10.255.255.255", true},
		{"10", "11.0.0.0", false},
	};
	size_t i;
	fg_addr a;
	fg_prefix p;

	for (i = 0; i < FG_NELEM(of); i++) {
		fg_addr_parse(of[i].addr, &a);
		fg_prefix_of(&a, of[i].len, &p);
		is_str(fmt_prefix(&p), of[i].out, "prefix_of(%s, %u)", of[i].addr,
		       of[i].len);
		ok(fg_prefix_contains(&p, &a), "prefix_of(%s, %u) contains it",
		   of[i].addr, of[i].len);
	}
	for (i = 0; i < FG_NELEM(contains); i++) {
		fg_prefix_parse(contains[i].prefix, &p);
		fg_addr_parse(contains[i].addr, &a);
		is_int(fg_prefix_contains(&p, &a), contains[i].in, "%s %s %s",
		       contains[i].prefix, contains[i].in ? "contains" : "excludes",
		       contains[i].addr);
	}
}

/*
 * The table.
 */

static const char *const tab4[] = {
	"10.0.0.0/8",   "10.1.0.0/16",   "10.1.2.0/24",  "10.1.2.3/32",
	"10.1.2.128/25", "192.0.2.0/24", "192.0.2.0/25", "172.16.0.0/12",
	"0.0.0.0/1",    "198.51.100.7",  "203.0.113",
};
static const char *const tab6[] = {
	"2001:db8::/32",        "2001:db8:1::/48", "2001:db8:1:2::/64",
	"2001:db8:1:2::1/128",  "fe80::/10",       "::1",
	"2001:db8:8000::/33",
};

static const struct {
	const char *addr, *match; /* NULL: no match */
} lookups[] = {
	{"10.1.2.3", "10.1.2.3/32"},
	{"10.1.2.4", "10.1.2.0/24"},
	{"10.1.2.127", "10.1.2.0/24"},
	{"10.1.2.128", "10.1.2.128/25"},
	{"10.1.2.255", "10.1.2.128/25"},
	{"10.1.3.1", "10.1.0.0/16"},
	{"10.2.0.0", "10.0.0.0/8"},
	{"10.255.255.255", "10.0.0.0/8"},
	{"11.0.0.0", "0.0.0.0/1"},
	{"127.255.255.255", "0.0.0.0/1"},
	{"128.0.0.0", NULL},
	{"255.255.255.255", NULL},
	{"192.0.2.1", "192.0.2.0/25"},
	{"192.0.2.129", "192.0.2.0/24"},
	{"192.0.3.0", NULL},
	{"172.31.255.255", "172.16.0.0/12"},
	{"172.32.0.0", NULL},
	{"198.51.100.7", "198.51.100.7/32"},
	{"198.51.100.6", NULL},
	{"203.0.113.99", "203.0.113.0/24"},
	{"::ffff:10.1.2.3", "10.1.2.3/32"},
	{"2001:db8:1:2::1", "2001:db8:1:2::1/128"},
	{"2001:db8:1:2::2", "2001:db8:1:2::/64"},
	{"2001:db8:1:3::", "2001:db8:1::/48"},
	{"2001:db8:2::", "2001:db8::/32"},
	{"2001:db8:7fff:ffff::", "2001:db8::/32"},
	{"2001:db8:8000::1", "2001:db8:8000::/33"},
	{"2001:db9::", NULL},
	{"fe80::1", "fe80::/10"},
	{"febf:ffff::", "fe80::/10"},
	{"fec0::", NULL},
	{"::1", "::1/128"},
	{"::2", NULL},
	{"::", NULL},
	{"::a01:203", NULL}, /* 10.1.2.3 as IPv4-compatible: IPv6 */
};

static int freed;

static void
count_free(void *v)
{
	freed++;
	free(v);
}

static int
add_text(fg_nettab *t, const char *s, void *value)
{
	fg_prefix p;

	if (fg_prefix_parse(s, &p) != 0)
		return -100;
	return fg_nettab_add(t, &p, value);
}

static void
check_lookups(fg_nettab *t, const char *what)
{
	size_t i;

	for (i = 0; i < FG_NELEM(lookups); i++) {
		fg_addr a;
		fg_prefix m;
		void *v = NULL;
		int r;

		fg_addr_parse(lookups[i].addr, &a);
		r = fg_nettab_lookup(t, &a, &v, &m);
		if (lookups[i].match == NULL) {
			is_int(r, 0, "%s: %s matches nothing", what, lookups[i].addr);
			continue;
		}
		is_int(r, 1, "%s: %s matches", what, lookups[i].addr);
		if (r != 1)
			continue;
		is_str(fmt_prefix(&m), lookups[i].match, "%s: %s matches %s", what,
		       lookups[i].addr, lookups[i].match);
		is_str(v != NULL ? (const char *)v : "(null)", lookups[i].match,
		       "%s: %s gives the value of %s", what, lookups[i].addr,
		       lookups[i].match);
	}
}

static void
fill(fg_nettab *t, bool reverse)
{
	size_t i, n4 = FG_NELEM(tab4), n6 = FG_NELEM(tab6);

	for (i = 0; i < n4 + n6; i++) {
		size_t k = reverse ? n4 + n6 - 1 - i : i;
		const char *s = k < n4 ? tab4[k] : tab6[k - n4];
		fg_prefix p;
		char canon[FG_PREFIX_STRLEN];

		fg_prefix_parse(s, &p);
		fg_prefix_format(&p, canon, sizeof(canon));
		is_int(fg_nettab_add(t, &p, strdup(canon)), 0, "add %s%s", s,
		       reverse ? " (reverse order)" : "");
	}
}

static void
test_nettab(void)
{
	fg_nettab *t;
	fg_addr a;
	fg_prefix p, m;
	void *v;
	size_t n = FG_NELEM(tab4) + FG_NELEM(tab6);

	t = fg_nettab_new();
	ok(t != NULL, "new table");
	is_int(fg_nettab_count(t), 0, "empty table counts 0");
	fg_addr_parse("10.1.2.3", &a);
	is_int(fg_nettab_lookup(t, &a, &v, NULL), 0, "empty table finds nothing");

	fill(t, false);
	is_int(fg_nettab_count(t), n, "count after adds");
	check_lookups(t, "forward");

	/* Duplicates, however spelled. */
	is_int(add_text(t, "10.1.2.0/24", NULL), FG_EEXIST, "duplicate /24");
	is_int(add_text(t, "10.1.2.99/24", NULL), FG_EEXIST,
	       "duplicate /24 with host bits");
	is_int(add_text(t, "10.1.2.3", NULL), FG_EEXIST, "duplicate host");
	is_int(add_text(t, "::ffff:10.1.2.3/128", NULL), FG_EEXIST,
	       "duplicate host spelled mapped");
	is_int(add_text(t, "203.0.113.0/24", NULL), FG_EEXIST,
	       "duplicate of a partial address");
	is_int(add_text(t, "2001:DB8::/32", NULL), FG_EEXIST, "duplicate IPv6");
	is_int(fg_nettab_count(t), n, "duplicates do not count");

	/* A glue node becoming a real entry is not a duplicate. */
	is_int(add_text(t, "10.1.2.0/23", strdup("10.1.2.0/23")), 0,
	       "add a prefix where only branching was");
	fg_addr_parse("10.1.3.1", &a);
	is_int(fg_nettab_lookup(t, &a, &v, &m), 1, "10.1.3.1 matches");
	is_str(fmt_prefix(&m), "10.1.2.0/23", "10.1.3.1 now matches the /23");
	is_int(fg_nettab_count(t), n + 1, "count after /23");

	/* Families are separate: a default route of one family matches no
	 * address of the other. */
	fg_addr_parse("2001:db9::", &a);
	is_int(fg_nettab_lookup(t, &a, &v, NULL), 0, "no IPv6 default yet");
	is_int(add_text(t, "0.0.0.0/0", strdup("0.0.0.0/0")), 0,
	       "add IPv4 default");
	is_int(fg_nettab_lookup(t, &a, &v, NULL), 0,
	       "IPv4 default does not match IPv6");
	fg_addr_parse("128.0.0.1", &a);
	is_int(fg_nettab_lookup(t, &a, &v, &m), 1, "IPv4 default matches");
	is_str(fmt_prefix(&m), "0.0.0.0/0", "IPv4 default is the match");
	is_int(add_text(t, "::/0", strdup("::/0")), 0, "add IPv6 default");
	is_int(add_text(t, "::/0", NULL), FG_EEXIST, "IPv6 default twice");
	fg_addr_parse("2001:db9::", &a);
	is_int(fg_nettab_lookup(t, &a, &v, &m), 1, "IPv6 default matches");
	is_str(fmt_prefix(&m), "::/0", "IPv6 default is the match");
	fg_addr_parse("fe80::1", &a);
	fg_nettab_lookup(t, &a, &v, &m);
	is_str(fmt_prefix(&m), "fe80::/10", "longer prefix beats default");
	is_int(fg_nettab_count(t), n + 3, "count after defaults");

	/* value and matched may be NULL. */
	is_int(fg_nettab_lookup(t, &a, NULL, NULL), 1, "lookup without outputs");

	/* Refusals. */
	memset(&p, 0, sizeof(p));
	is_int(fg_nettab_add(t, &p, NULL), FG_EINVAL, "add family none");
	fg_prefix_parse("10.0.0.0/8", &p);
	p.len = 33;
	is_int(fg_nettab_add(t, &p, NULL), FG_EINVAL, "add /33 IPv4");
	memset(&a, 0, sizeof(a));
	is_int(fg_nettab_lookup(t, &a, &v, NULL), FG_EINVAL,
	       "lookup family none");

	freed = 0;
	fg_nettab_free(t, count_free);
	is_int(freed, (long long)(n + 3), "free calls free_value for each entry");

	/* Same results whatever the order of insertion. */
	t = fg_nettab_new();
	fill(t, true);
	check_lookups(t, "reverse");
	freed = 0;
	fg_nettab_free(t, count_free);
	is_int(freed, (long long)n, "free after reverse fill");

	/* NULL values are values. */
	t = fg_nettab_new();
	add_text(t, "192.0.2.0/24", NULL);
	fg_addr_parse("192.0.2.1", &a);
	v = &v;
	is_int(fg_nettab_lookup(t, &a, &v, NULL), 1, "NULL value is found");
	ok(v == NULL, "NULL value is returned");
	fg_nettab_free(t, NULL);
	fg_nettab_free(NULL, NULL);
	is_int(fg_nettab_count(NULL), 0, "count of no table");
}

/* Random prefixes and addresses drawn near them: the table's answer is
 * always the longest prefix a linear scan finds. */
static void
random_addr(fg_addr *a, int family, bool crowd)
{
	int j;

	memset(a, 0, sizeof(*a));
	a->family = (uint8_t)family;
	for (j = 0; j < (family == FG_AF_INET ? 4 : 16); j++)
		a->bytes[j] = (uint8_t)rng();
	if (!crowd)
		return;
	/* Crowd the space so prefixes nest and collide. */
	a->bytes[0] &= 0x0f;
	if (family == FG_AF_INET6)
		a->bytes[1] = 0;
}

static void
test_nettab_random(int family, size_t nprefix, int nlookup)
{
	fg_prefix *pfx = calloc(nprefix, sizeof(*pfx));
	fg_nettab *t = fg_nettab_new();
	size_t i, added = 0, j;
	int k, bad = 0, hits = 0;
	unsigned max = family == FG_AF_INET ? 32 : 128;
	unsigned min = family == FG_AF_INET ? 8 : 16;

	for (i = 0; i < nprefix; i++) {
		fg_addr a;
		unsigned len;
		int r;

		random_addr(&a, family, true);
		/* From /8 (/16) up, often at octet boundaries. */
		len = min + (unsigned)(rng() % (max - min + 1));
		if (rng() % 4 == 0)
			len = (1 + (unsigned)(rng() % 4)) * (max / 4);
		fg_prefix_of(&a, len, &pfx[i]);
		r = fg_nettab_add(t, &pfx[i], &pfx[i]);
		if (r == 0)
			added++;
		else if (r == FG_EEXIST)
			pfx[i].len = 255; /* a duplicate: ignore below */
		else
			bad++;
	}
	is_int(bad, 0, "IPv%d: %zu random adds succeed or collide", family,
	       nprefix);
	is_int(fg_nettab_count(t), (long long)added, "IPv%d: count is %zu",
	       family, added);

	for (k = 0; k < nlookup; k++) {
		fg_addr a;
		const fg_prefix *best = NULL;
		void *v = NULL;
		fg_prefix m;
		int r;

		if (k % 2 == 0) {
			/* inside some prefix */
			const fg_prefix *p = &pfx[rng() % nprefix];

			random_addr(&a, family, false);
			if (p->len != 255) {
				for (j = 0; j < 16; j++) {
					unsigned bits = p->len > 8 * j ? p->len - 8 * j : 0;
					uint8_t mask = bits >= 8 ? 0xff : (uint8_t)(0xff00u >> bits);

					a.bytes[j] = (uint8_t)((p->addr.bytes[j] & mask) |
					                       (a.bytes[j] & ~mask));
				}
				if (family == FG_AF_INET)
					memset(a.bytes + 4, 0, 12);
			}
		} else
			random_addr(&a, family, k % 4 == 1);
		for (j = 0; j < nprefix; j++)
			if (pfx[j].len != 255 && fg_prefix_contains(&pfx[j], &a) &&
			    (best == NULL || pfx[j].len > best->len))
				best = &pfx[j];
		r = fg_nettab_lookup(t, &a, &v, &m);
		if (best == NULL ? r != 0
		                 : r != 1 || v != best || m.len != best->len ||
		                       !fg_addr_equal(&m.addr, &best->addr)) {
			if (bad++ < 10)
				printf("# lookup of %s: got %d, want %s\n", fmt_addr(&a), r,
				       best ? fmt_prefix(best) : "none");
		}
		hits += r == 1;
	}
	is_int(bad, 0, "IPv%d: %d random lookups agree with a linear scan", family,
	       nlookup);
	ok(hits > nlookup / 2 && hits < nlookup,
	   "IPv%d: random lookups both hit and miss (%d hits)", family, hits);
	fg_nettab_free(t, NULL);
	free(pfx);
}

int
main(void)
{
	test_addr_parse();
	test_addr_vs_libc();
	test_addr_roundtrip();
	test_addr_misc();
	test_prefix_parse();
	test_prefix_of_contains();
	test_nettab();
	test_nettab_random(FG_AF_INET, 2000, 20000);
	test_nettab_random(FG_AF_INET6, 2000, 20000);
	return tap_done();
}
