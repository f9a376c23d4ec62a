/*
 * fuzz_text.c - text a client controls: HELO names, envelope addresses,
 * the MTA's recipient macros.
 *
 * Input: one flag byte, then up to three NUL-separated fields (a missing
 * field is NULL, and the flags can make any field NULL).  Every field
 * goes through fg_sanitize() at many buffer sizes and through the key
 * builders; the three together are the {rcpt_mailer}, {rcpt_host} and
 * {rcpt_addr} macros of fg_rcpt_classify().
 *
 * fg_sanitize() (log.h): the output always fits, is NUL-terminated and
 * printable ASCII; a large enough buffer holds the whole encoding, which
 * decodes back to the input; a smaller one holds a prefix of it and, from
 * four bytes up, "...".
 *
 * With FG_FUZZ_PEDANTIC=1 in the environment one more promise is held to
 * account: "output that would not fit ends in ..." read literally, so a
 * buffer the whole encoding fits in must get the whole encoding.
 */
#include <strings.h>

#include "classify.h"
#include "fg.h"
#include "fuzz.h"
#include "log.h"

static bool pedantic;

/* Undoes fg_sanitize()'s escapes; false if enc is not a valid encoding. */
static bool
decode(const char *enc, char *out, size_t *outlen)
{
	size_t o = 0;

	for (const char *p = enc; *p != '\0';) {
		if (*p != '\\') {
			out[o++] = *p++;
			continue;
		}
		if (p[1] == '\\') {
			out[o++] = '\\';
			p += 2;
			continue;
		}
		if (p[1] != 'x' || p[2] == '\0' || p[3] == '\0')
			return false;
		{
			static const char hex[] = "0123456789abcdef";
			const char *h = strchr(hex, p[2]), *l = strchr(hex, p[3]);
			unsigned v;
			if (h == NULL || l == NULL || p[2] == '\0' || p[3] == '\0')
				return false;
			v = (unsigned)(h - hex) << 4 | (unsigned)(l - hex);
			/* Only bytes that cannot stand for themselves. */
			if (v >= 0x20 && v < 0x7f)
				return false;
			out[o++] = (char)v;
			p += 4;
		}
	}
	*outlen = o;
	return true;
}

static void
check_sanitize(const char *src, size_t extra)
{
	size_t len = src != NULL ? strlen(src) : 1;
	size_t fullsize = 4 * len + 1, fulllen;
	char *full = malloc(fullsize), *dec = malloc(len + 1);
	size_t sizes[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 16, 64, extra, len, len + 1,
	                  len + 2, len + 3, len + 4, 0, 0, 0, 0};
	size_t nsizes = FG_NELEM(sizes) - 4, declen;

	if (full == NULL || dec == NULL) {
		free(full);
		free(dec);
		return;
	}
	FZ_CHECK(fg_sanitize(full, fullsize, src) == full, "return value");
	fz_check_text("sanitized", full, fullsize);
	fulllen = strlen(full);
	if (src == NULL) {
		FZ_CHECK(strcmp(full, "-") == 0, "NULL gives \"%s\"", full);
	} else {
		FZ_CHECK(decode(full, dec, &declen), "not a valid encoding: "
		         "\"%s\"", full);
		FZ_CHECK(declen == len && memcmp(dec, src, len) == 0,
		         "\"%s\" does not decode to the input", full);
	}
	sizes[nsizes++] = fulllen;
	sizes[nsizes++] = fulllen + 1;
	sizes[nsizes++] = fulllen > 0 ? fulllen - 1 : 0;
	sizes[nsizes++] = fulllen + 3;

	for (size_t i = 0; i < nsizes; i++) {
		size_t size = sizes[i];
		/* Exactly size bytes, so ASan sees a write past them. */
		char *out = malloc(size > 0 ? size : 1);
		size_t olen;

		if (out == NULL)
			break;
		out[0] = 'Z';
		FZ_CHECK(fg_sanitize(out, size, src) == out, "return value");
		if (size == 0) {
			FZ_CHECK(out[0] == 'Z', "wrote into a 0-byte buffer");
			free(out);
			continue;
		}
		fz_check_text("sanitized", out, size);
		olen = strlen(out);
		if (strcmp(out, full) != 0) {
			if (size >= 4) {
				FZ_CHECK(olen >= 3 &&
				         strcmp(out + olen - 3, "...") == 0,
				         "cut without \"...\" in %zu bytes: \"%s\"",
				         size, out);
				olen -= 3;
			}
			FZ_CHECK(strncmp(out, full, olen) == 0, "\"%s\" in %zu "
			         "bytes is no prefix of \"%s\"", out, size, full);
		}
		if (pedantic && size > fulllen)
			FZ_CHECK(strcmp(out, full) == 0, "\"%s\" (%zu bytes) "
			         "fits in %zu bytes but came out as \"%s\"",
			         full, fulllen + 1, size, out);
		free(out);
	}
	free(full);
	free(dec);
}

static void
check_domain_key(const char *what, const char *prefix, const char *key)
{
	char *again = malloc(FG_KEY_MAX);
	size_t plen = strlen(prefix);

	fz_check_key(what, key);
	FZ_CHECK(strncmp(key, prefix, plen) == 0, "%s \"%s\" lacks its "
	         "prefix", what, key);
	FZ_CHECK(strchr(key + plen, '@') == NULL, "%s \"%s\" has an '@'",
	         what, key);
	FZ_CHECK(key[strlen(key) - 1] != '.' || strlen(key) == plen,
	         "%s \"%s\" ends in a dot", what, key);
	for (const char *p = key + plen; *p; p++)
		FZ_CHECK(!(*p >= 'A' && *p <= 'Z'), "%s \"%s\" not lower case",
		         what, key);
	if (again != NULL) {
		FZ_CHECK(fg_key_parse(again, key) == 0 && strcmp(again, key) == 0,
		         "%s \"%s\" parses back as \"%s\"", what, key, again);
		free(again);
	}
}

static void
check_keys(const char *s)
{
	/* Exactly FG_KEY_MAX bytes each, as keys.h asks of the caller. */
	char *key = malloc(FG_KEY_MAX), *again = malloc(FG_KEY_MAX);

	if (key == NULL || again == NULL) {
		free(key);
		free(again);
		return;
	}
	fg_key_helo(key, s);
	fz_check_key("helo key", key);
	FZ_CHECK(strncmp(key, "helo:", 5) == 0, "helo key \"%s\"", key);
	FZ_CHECK(fg_key_type_of(key) == FG_KEY_HELO, "type of \"%s\"", key);
	FZ_CHECK(fg_key_parse(again, key) == 0 && strcmp(again, key) == 0,
	         "helo key \"%s\" parses back as \"%s\"", key, again);

	fg_key_rcpt_domain(key, s);
	check_domain_key("recipient domain key", "rcpt-domain:", key);
	FZ_CHECK(fg_key_type_of(key) == FG_KEY_RCPT_DOMAIN, "type of \"%s\"",
	         key);
	fg_key_sender_domain(key, s);
	check_domain_key("sender domain key", "sender-domain:", key);
	FZ_CHECK(fg_key_type_of(key) == FG_KEY_SENDER_DOMAIN, "type of \"%s\"",
	         key);

	/* The operator's spelling: anything at all, typed at floodgatectl. */
	if (fg_key_parse(key, s) == 0) {
		fz_check_key("parsed key", key);
		FZ_CHECK(fg_key_parse(again, key) == 0 && strcmp(again, key) == 0,
		         "key \"%s\" parses back as \"%s\"", key, again);
	}
	free(key);
	free(again);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *e = getenv("FG_FUZZ_PEDANTIC");

	(void)argc;
	(void)argv;
	pedantic = e != NULL && *e != '\0' && *e != '0';
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *field[3] = {NULL, NULL, NULL};
	uint8_t flags;
	size_t start = 1, nf = 0;
	enum fg_rcpt_class c1, c2;

	if (size == 0)
		return 0;
	flags = data[0];
	for (size_t i = 1; i <= size && nf < 3; i++) {
		if (i < size && data[i] != '\0')
			continue;
		if (i == size && start == size && nf > 0)
			break; /* no empty field after a final NUL */
		field[nf] = malloc(i - start + 1);
		if (field[nf] == NULL)
			break;
		memcpy(field[nf], data + start, i - start);
		field[nf][i - start] = '\0';
		nf++;
		start = i + 1;
	}

	check_sanitize(NULL, 3);
	for (size_t k = 0; k < nf; k++) {
		check_sanitize(field[k], (size_t)(flags >> 3) * 7);
		check_keys(field[k]);
	}
	fz_check_text("helo key of NULL", fg_key_helo((char[FG_KEY_MAX]){0},
	              NULL), FG_KEY_MAX);

	/* The macros, some missing. */
	{
		const char *m = (flags & 1) ? NULL : field[0];
		const char *h = (flags & 2) ? NULL : field[1];
		const char *a = (flags & 4) ? NULL : field[2];

		c1 = fg_rcpt_classify(m, h, a);
		c2 = fg_rcpt_classify(m, h, a);
		FZ_CHECK(c1 == c2, "not deterministic");
		FZ_CHECK(c1 == FG_RCPT_VALID || c1 == FG_RCPT_INVALID ||
		         c1 == FG_RCPT_REJECTED, "class %d", (int)c1);
		if (m == NULL || strcasecmp(m, "error") != 0)
			FZ_CHECK(c1 == FG_RCPT_VALID, "mailer \"%s\" gives %s",
			         m ? m : "(null)", fg_rcpt_class_name(c1));
		else
			FZ_CHECK(c1 != FG_RCPT_VALID, "mailer error gives valid");
		if (m != NULL && strcasecmp(m, "error") == 0 && h == NULL &&
		    a == NULL)
			FZ_CHECK(c1 == FG_RCPT_REJECTED, "error without a "
			         "reason is %s", fg_rcpt_class_name(c1));
	}
	for (size_t k = 0; k < nf; k++)
		free(field[k]);
	return 0;
}
