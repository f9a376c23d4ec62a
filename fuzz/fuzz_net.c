/*
 * fuzz_net.c - addresses, prefixes, keys and the prefix table.
 *
 * The input is cut at newlines into up to 64 tokens.  Each token goes
 * through fg_addr_parse(), fg_prefix_parse() and fg_key_parse(); whatever
 * parses must format to text that parses back to the same value (and
 * formats to the same text again), in every spelling net.h accepts.
 * Every prefix that parsed is added to one fg_nettab, and the table's
 * answers for addresses in, near and outside those prefixes are compared
 * with a brute-force longest match over the list.
 */
#include <netinet/in.h>
#include <sys/socket.h>

#include "fg.h"
#include "fuzz.h"

#define MAX_TOKENS 64
#define MAX_PROBES (MAX_TOKENS * 6)

static bool
bit_of(const fg_addr *a, unsigned i)
{
	return (a->bytes[i / 8] >> (7 - i % 8)) & 1;
}

static fg_addr
flip_bit(const fg_addr *a, unsigned i)
{
	fg_addr b = *a;

	b.bytes[i / 8] ^= (uint8_t)(0x80u >> (i % 8));
	return b;
}

/* The obvious definition of "prefix contains address". */
static bool
slow_contains(const fg_prefix *p, const fg_addr *a)
{
	if (p->addr.family != a->family)
		return false;
	for (unsigned i = 0; i < p->len; i++)
		if (bit_of(&p->addr, i) != bit_of(a, i))
			return false;
	return true;
}

static bool
prefix_same(const fg_prefix *a, const fg_prefix *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

static void
check_format_sizes(const fg_addr *a, const char *full)
{
	size_t len = strlen(full);

	for (size_t size = 0; size <= len + 1; size++) {
		char *buf = malloc(size ? size : 1);

		if (buf == NULL)
			return;
		buf[0] = 'Z';
		FZ_CHECK(fg_addr_format(a, buf, size) == buf, "format result");
		if (size == 0) {
			FZ_CHECK(buf[0] == 'Z', "format wrote into 0 bytes");
		} else {
			size_t n = size - 1 < len ? size - 1 : len;
			FZ_CHECK(strlen(buf) == n &&
			         strncmp(buf, full, n) == 0,
			         "format into %zu bytes gave \"%s\" of \"%s\"",
			         size, buf, full);
		}
		free(buf);
	}
}

static void
check_sockaddr(const fg_addr *a)
{
	fg_addr b;

	if (a->family == FG_AF_INET) {
		struct sockaddr_in *sin = calloc(1, sizeof(*sin));
		if (sin == NULL)
			return;
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, a->bytes, 4);
		FZ_CHECK(fg_addr_from_sockaddr((struct sockaddr *)sin, &b) == 0 &&
		         memcmp(a, &b, sizeof(b)) == 0, "sockaddr_in round trip");
		free(sin);
	} else {
		struct sockaddr_in6 *sin6 = calloc(1, sizeof(*sin6));
		if (sin6 == NULL)
			return;
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, a->bytes, 16);
		FZ_CHECK(fg_addr_from_sockaddr((struct sockaddr *)sin6, &b) == 0 &&
		         memcmp(a, &b, sizeof(b)) == 0, "sockaddr_in6 round trip");
		free(sin6);
	}
}

/* An address that parsed (or came from a socket address). */
static void
check_addr(const fg_addr *a, const char *from)
{
	char buf[FG_ADDR_STRLEN], again[FG_ADDR_STRLEN], alt[FG_ADDR_STRLEN + 8];
	char key[FG_KEY_MAX];
	fg_addr b;
	fg_prefix p;

	FZ_CHECK(a->family == FG_AF_INET || a->family == FG_AF_INET6,
	         "family %d from \"%s\"", a->family, from);
	if (a->family == FG_AF_INET) {
		for (int i = 4; i < 16; i++)
			FZ_CHECK(a->bytes[i] == 0, "IPv4 with bytes past 4 from "
			         "\"%s\"", from);
	} else {
		static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		                                   0xff, 0xff};
		FZ_CHECK(memcmp(a->bytes, mapped, 12) != 0,
		         "IPv4-mapped address not normalised from \"%s\"", from);
	}
	FZ_CHECK(fg_addr_bits(a) == (a->family == FG_AF_INET ? 32u : 128u),
	         "bits");

	memset(buf, 'Z', sizeof(buf));
	fg_addr_format(a, buf, sizeof(buf));
	fz_check_text("formatted address", buf, sizeof(buf));
	FZ_CHECK(fg_addr_parse(buf, &b) == 0, "\"%s\" (from \"%s\") does not "
	         "parse", buf, from);
	FZ_CHECK(memcmp(a, &b, sizeof(b)) == 0 && fg_addr_equal(a, &b),
	         "\"%s\" (from \"%s\") parses to another address", buf, from);
	fg_addr_format(&b, again, sizeof(again));
	FZ_CHECK(strcmp(buf, again) == 0, "format not canonical: \"%s\" then "
	         "\"%s\"", buf, again);
	check_format_sizes(a, buf);
	check_sockaddr(a);

	/* The other spellings. */
	snprintf(alt, sizeof(alt), "[%s]", buf);
	FZ_CHECK(fg_addr_parse(alt, &b) == 0 && memcmp(a, &b, sizeof(b)) == 0,
	         "\"%s\" does not parse to \"%s\"", alt, buf);
	snprintf(alt, sizeof(alt), "IPv6:%s", buf);
	if (a->family == FG_AF_INET6)
		FZ_CHECK(fg_addr_parse(alt, &b) == 0 &&
		         memcmp(a, &b, sizeof(b)) == 0,
		         "\"%s\" does not parse to \"%s\"", alt, buf);
	else
		FZ_CHECK(fg_addr_parse(alt, &b) != 0, "\"%s\" parses", alt);

	/* An address is a host prefix and its own key. */
	FZ_CHECK(fg_prefix_parse(buf, &p) == 0 && p.len == fg_addr_bits(a) &&
	         memcmp(&p.addr, a, sizeof(*a)) == 0,
	         "\"%s\" is no host prefix", buf);
	fg_key_address(key, a);
	FZ_CHECK(strcmp(key, buf) == 0, "address key \"%s\" for \"%s\"", key,
	         buf);
	FZ_CHECK(fg_key_type_of(key) == FG_KEY_ADDRESS, "key type of \"%s\"",
	         key);
	{
		static const unsigned lens[] = {0, 1, 8, 15, 16, 24, 31, 32, 33,
		                                48, 64, 96, 127, 128, 129, 200};
		for (size_t i = 0; i < FG_NELEM(lens); i++) {
			fg_prefix q, r;

			fg_key_network(key, a, lens[i]);
			fz_check_key("network key", key);
			if (lens[i] >= fg_addr_bits(a)) {
				FZ_CHECK(strcmp(key, buf) == 0, "network key "
				         "\"%s\" at /%u of \"%s\"", key, lens[i],
				         buf);
				continue;
			}
			FZ_CHECK(fg_key_type_of(key) == FG_KEY_NETWORK,
			         "key type of \"%s\"", key);
			fg_prefix_of(a, lens[i], &q);
			FZ_CHECK(fg_prefix_parse(key, &r) == 0 && prefix_same(&q, &r),
			         "network key \"%s\" is not the /%u of \"%s\"", key,
			         lens[i], buf);
		}
	}
}

static void
check_prefix(const fg_prefix *p, const char *from)
{
	char buf[FG_PREFIX_STRLEN], again[FG_PREFIX_STRLEN];
	fg_prefix q, r;

	FZ_CHECK(p->addr.family == FG_AF_INET || p->addr.family == FG_AF_INET6,
	         "prefix family %d from \"%s\"", p->addr.family, from);
	FZ_CHECK(p->len <= fg_addr_bits(&p->addr), "prefix /%u from \"%s\"",
	         p->len, from);
	fg_prefix_of(&p->addr, p->len, &q);
	FZ_CHECK(prefix_same(p, &q), "host bits set in the prefix from \"%s\"",
	         from);
	FZ_CHECK(fg_prefix_contains(p, &p->addr), "prefix from \"%s\" does "
	         "not contain its own address", from);

	memset(buf, 'Z', sizeof(buf));
	fg_prefix_format(p, buf, sizeof(buf));
	fz_check_text("formatted prefix", buf, sizeof(buf));
	FZ_CHECK(fg_prefix_parse(buf, &r) == 0, "\"%s\" (from \"%s\") does "
	         "not parse", buf, from);
	FZ_CHECK(prefix_same(p, &r), "\"%s\" (from \"%s\") parses to another "
	         "prefix", buf, from);
	fg_prefix_format(&r, again, sizeof(again));
	FZ_CHECK(strcmp(buf, again) == 0, "prefix format not canonical: "
	         "\"%s\" then \"%s\"", buf, again);
}

static void
check_key(const char *tok, bool is_addr, const fg_addr *a, bool is_prefix,
          const fg_prefix *p)
{
	char *key = malloc(FG_KEY_MAX), *again = malloc(FG_KEY_MAX);
	int rc;

	if (key == NULL || again == NULL) {
		free(key);
		free(again);
		return;
	}
	rc = fg_key_parse(key, tok);
	if (rc != 0) {
		FZ_CHECK(rc == FG_EINVAL, "fg_key_parse returned %d", rc);
		FZ_CHECK(!is_addr && !is_prefix, "\"%s\" parses as an address "
		         "or network but not as a key", tok);
	} else {
		fz_check_key("parsed key", key);
		FZ_CHECK(fg_key_parse(again, key) == 0 && strcmp(key, again) == 0,
		         "key \"%s\" (from \"%s\") parses to \"%s\"", key, tok,
		         again);
		FZ_CHECK(fg_key_type_of(key) == fg_key_type_of(again), "type");
		if (is_addr) {
			char buf[FG_ADDR_STRLEN];
			fg_addr_format(a, buf, sizeof(buf));
			FZ_CHECK(strcmp(key, buf) == 0, "key \"%s\" for the "
			         "address \"%s\"", key, buf);
		} else if (is_prefix) {
			char buf[FG_KEY_MAX];
			fg_key_network(buf, &p->addr, p->len);
			FZ_CHECK(strcmp(key, buf) == 0, "key \"%s\" for the "
			         "prefix \"%s\"", key, buf);
		}
	}
	free(key);
	free(again);
}

struct entry {
	fg_prefix p;
	uintptr_t value;
};

static void
check_table(const struct entry *ents, size_t nents, const fg_addr *probes,
            size_t nprobes)
{
	fg_nettab *t = fg_nettab_new();
	size_t unique = 0;

	if (t == NULL)
		return;
	for (size_t i = 0; i < nents; i++) {
		bool dup = false;
		int rc;

		for (size_t j = 0; j < i && !dup; j++)
			dup = prefix_same(&ents[i].p, &ents[j].p);
		rc = fg_nettab_add(t, &ents[i].p, (void *)ents[i].value);
		FZ_CHECK(rc == (dup ? FG_EEXIST : 0), "add %zu returned %d "
		         "(duplicate: %d)", i, rc, dup);
		if (!dup)
			unique++;
		FZ_CHECK(fg_nettab_count(t) == unique, "count %zu, expected %zu",
		         fg_nettab_count(t), unique);
	}
	for (size_t k = 0; k < nprobes; k++) {
		const fg_addr *a = &probes[k];
		const struct entry *best = NULL;
		void *value = NULL;
		fg_prefix matched;
		int rc;

		for (size_t i = 0; i < nents; i++) {
			bool in = slow_contains(&ents[i].p, a);
			FZ_CHECK(in == fg_prefix_contains(&ents[i].p, a),
			         "fg_prefix_contains disagrees");
			/* The first of equal prefixes holds the value. */
			if (in && (best == NULL || ents[i].p.len > best->p.len))
				best = &ents[i];
		}
		memset(&matched, 0xaa, sizeof(matched));
		rc = fg_nettab_lookup(t, a, &value, &matched);
		if (best == NULL) {
			FZ_CHECK(rc == 0, "lookup found %d, expected nothing", rc);
		} else {
			char want[FG_PREFIX_STRLEN], got[FG_PREFIX_STRLEN];
			fg_prefix_format(&best->p, want, sizeof(want));
			fg_prefix_format(&matched, got, sizeof(got));
			FZ_CHECK(rc == 1, "lookup returned %d, expected %s", rc,
			         want);
			FZ_CHECK((uintptr_t)value == best->value &&
			         prefix_same(&matched, &best->p),
			         "lookup matched %s (value %zu), expected %s "
			         "(value %zu)", got, (size_t)(uintptr_t)value, want,
			         (size_t)best->value);
		}
		FZ_CHECK(fg_nettab_lookup(t, a, NULL, NULL) == rc,
		         "lookup without outputs differs");
	}
	{
		fg_addr none;
		fg_prefix bad;
		memset(&none, 0, sizeof(none));
		FZ_CHECK(fg_nettab_lookup(t, &none, NULL, NULL) == FG_EINVAL,
		         "lookup of family 0");
		memset(&bad, 0, sizeof(bad));
		bad.addr.family = FG_AF_INET;
		bad.len = 33;
		FZ_CHECK(fg_nettab_add(t, &bad, NULL) == FG_EINVAL, "add /33");
	}
	fg_nettab_free(t, NULL);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct entry ents[MAX_TOKENS];
	static fg_addr probes[MAX_PROBES];
	size_t nents = 0, nprobes = 0, ntok = 0, start = 0;

	for (size_t i = 0; i <= size && ntok < MAX_TOKENS; i++) {
		char *tok;
		size_t len;
		fg_addr a;
		fg_prefix p;
		bool is_addr, is_prefix;

		if (i < size && data[i] != '\n')
			continue;
		len = i - start;
		tok = malloc(len + 1);
		if (tok == NULL)
			return 0;
		memcpy(tok, data + start, len);
		tok[len] = '\0';
		start = i + 1;
		ntok++;

		is_addr = fg_addr_parse(tok, &a) == 0;
		if (is_addr) {
			check_addr(&a, tok);
			probes[nprobes++] = a;
		}
		is_prefix = fg_prefix_parse(tok, &p) == 0;
		if (is_addr)
			FZ_CHECK(is_prefix && p.len == fg_addr_bits(&a) &&
			         memcmp(&p.addr, &a, sizeof(a)) == 0,
			         "address \"%s\" is no host prefix", tok);
		if (is_prefix) {
			unsigned bits = fg_addr_bits(&p.addr);

			check_prefix(&p, tok);
			ents[nents].p = p;
			ents[nents].value = nents + 1;
			nents++;
			probes[nprobes++] = p.addr;
			if (p.len < bits)
				probes[nprobes++] = flip_bit(&p.addr, p.len);
			if (p.len > 0)
				probes[nprobes++] = flip_bit(&p.addr, p.len - 1);
			probes[nprobes++] = flip_bit(&p.addr, bits - 1);
		}
		check_key(tok, is_addr, &a, is_prefix, &p);

		/* Raw bytes as a socket address would carry them. */
		if (len >= 16) {
			struct sockaddr_in6 *sin6 = calloc(1, sizeof(*sin6));
			if (sin6 != NULL) {
				sin6->sin6_family = AF_INET6;
				memcpy(&sin6->sin6_addr, tok, 16);
				FZ_CHECK(fg_addr_from_sockaddr(
				             (struct sockaddr *)sin6, &a) == 0,
				         "sockaddr_in6 refused");
				check_addr(&a, "(socket address)");
				if (nprobes < MAX_PROBES)
					probes[nprobes++] = a;
				free(sin6);
			}
		}
		free(tok);
	}
	check_table(ents, nents, probes, nprobes);
	return 0;
}
