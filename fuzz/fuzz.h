/*
 * fuzz.h - what the libFuzzer targets in fuzz/ share: the entry points,
 * a failure macro, a reader that carves typed values and strings out of
 * the fuzzer's bytes, and the invariants every verdict must keep.
 *
 * Everything here is static (inline) so that each target stays one
 * translation unit plus the library.  Checks end in __builtin_trap(),
 * which libFuzzer reports as a crash with the offending input saved;
 * the message printed first says which invariant broke.
 *
 * Memory: strings handed out by fz_str() and friends are owned by the
 * reader and freed, all at once, by fz_free().  Each is allocated at its
 * exact size so that AddressSanitizer notices a read past its end.
 */
#ifndef FG_FUZZ_H
#define FG_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fg.h"
#include "keys.h"
#include "policy.h"
#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FZ_CHECK(cond, ...)                                                  \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "\nfuzz: %s:%d: check failed: %s\nfuzz: ",  \
			        __FILE__, __LINE__, #cond);                  \
			fprintf(stderr, __VA_ARGS__);                        \
			fputc('\n', stderr);                                 \
			__builtin_trap();                                    \
		}                                                            \
	} while (0)

/* ---- the input reader ----------------------------------------------- */

#define FZ_MAX_ALLOCS 256

struct fz {
	const uint8_t *p;
	size_t n;
	void *allocs[FZ_MAX_ALLOCS];
	size_t nallocs;
};

static inline void
fz_init(struct fz *z, const uint8_t *data, size_t size)
{
	z->p = data;
	z->n = size;
	z->nallocs = 0;
}

static inline void
fz_free(struct fz *z)
{
	for (size_t i = 0; i < z->nallocs; i++)
		free(z->allocs[i]);
	z->nallocs = 0;
}

/* Past the end of the input every value reads as zero. */
static inline uint8_t
fz_u8(struct fz *z)
{
	if (z->n == 0)
		return 0;
	z->n--;
	return *z->p++;
}

static inline bool
fz_bool(struct fz *z)
{
	return (fz_u8(z) & 1) != 0;
}

static inline uint64_t
fz_uint(struct fz *z, size_t bytes)
{
	uint64_t v = 0;

	for (size_t i = 0; i < bytes && i < 8; i++)
		v = v << 8 | fz_u8(z);
	return v;
}

/* A count biased towards small values: one byte, and for the largest
 * byte values a wider number (up to INT64_MAX). */
static inline int64_t
fz_count(struct fz *z)
{
	uint8_t b = fz_u8(z);

	if (b < 240)
		return b;
	switch (b) {
	case 240: return (int64_t)fz_uint(z, 2);
	case 241: return (int64_t)fz_uint(z, 4);
	case 242: return INT64_MAX;
	case 243: return INT64_MAX - 1;
	case 244: return 1000000000;
	case 245: return 1000000001;
	default: return (int64_t)(fz_uint(z, 8) >> 1);
	}
}

/* Copies n bytes into an exact-size NUL-terminated string (an embedded
 * NUL simply ends the string early). */
static inline char *
fz_keep(struct fz *z, const void *bytes, size_t n)
{
	char *s;

	if (z->nallocs == FZ_MAX_ALLOCS)
		return NULL;
	s = malloc(n + 1);
	if (s == NULL)
		return NULL;
	memcpy(s, bytes, n);
	s[n] = '\0';
	z->allocs[z->nallocs++] = s;
	return s;
}

/* A length byte, then that many bytes (fewer at the end of the input). */
static inline char *
fz_str(struct fz *z)
{
	size_t len = fz_u8(z);

	if (len > z->n)
		len = z->n;
	{
		char *s = fz_keep(z, z->p, len);
		z->p += len;
		z->n -= len;
		return s != NULL ? s : (char *)"";
	}
}

/* Like fz_str(), but NULL when a leading flag byte says so. */
static inline char *
fz_str_or_null(struct fz *z)
{
	if ((fz_u8(z) & 7) == 0)
		return NULL;
	return fz_str(z);
}

/* ---- checks shared by the targets ------------------------------------ */

static inline bool
fz_printable(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

/* NUL within size bytes, then printable ASCII only. */
static inline void
fz_check_text(const char *what, const char *s, size_t size)
{
	FZ_CHECK(memchr(s, '\0', size) != NULL, "%s not NUL-terminated "
	         "within %zu bytes", what, size);
	FZ_CHECK(fz_printable(s), "%s has a control or non-ASCII byte: "
	         "\"%.*s\"", what, (int)strnlen(s, size), s);
}

static inline void
fz_check_key(const char *what, const char *key)
{
	fz_check_text(what, key, FG_KEY_MAX);
	FZ_CHECK(strchr(key, ' ') == NULL, "%s has a space: \"%s\"", what,
	         key);
}

/*
 * The invariants of a verdict (policy.h, config.h): f and now_ms are what
 * it was decided from.
 */
static inline void
fz_check_verdict(const struct fg_config *cfg, const struct fg_facts *f,
                 int64_t now_ms, const struct fg_verdict *v)
{
	int cls = v->code / 100;

	FZ_CHECK(v->action >= FG_ACT_CONTINUE && v->action <= FG_ACT_DISCONNECT,
	         "action %d out of range (BAN is never an action now)",
	         (int)v->action);
	FZ_CHECK(v->delay_ms >= 0 && v->delay_ms <= cfg->max_delay_ms,
	         "delay %lld outside 0..max_delay %lld",
	         (long long)v->delay_ms, (long long)cfg->max_delay_ms);
	FZ_CHECK((v->delay_ms > 0) == (v->action == FG_ACT_DELAY),
	         "delay %lld with action %s", (long long)v->delay_ms,
	         fg_action_name(v->action));
	FZ_CHECK(v->delay_ms == 0 ||
	         f->delayed_sessions < cfg->max_delayed_sessions,
	         "delay given with %lld sessions delayed (max %lld)",
	         (long long)f->delayed_sessions,
	         (long long)cfg->max_delayed_sessions);

	/* The reply: code 0 exactly when there is nothing to say. */
	FZ_CHECK(v->code == 0 || (v->code >= 400 && v->code <= 599),
	         "reply code %d", v->code);
	FZ_CHECK(v->nlines <= FG_REPLY_MAX_LINES, "%zu reply lines", v->nlines);
	FZ_CHECK((v->code == 0) == (v->nlines == 0), "code %d with %zu lines",
	         v->code, v->nlines);
	FZ_CHECK(memchr(v->status, '\0', sizeof(v->status)) != NULL,
	         "status not NUL-terminated");
	FZ_CHECK(v->status[0] == '\0' ||
	         (v->code != 0 && v->status[0] == '0' + cls),
	         "status \"%s\" with code %d", v->status, v->code);
	for (size_t i = 0; i < v->nlines && i < FG_REPLY_MAX_LINES; i++) {
		FZ_CHECK(memchr(v->lines[i], '\0', FG_REPLY_LINE_MAX) != NULL,
		         "reply line %zu not NUL-terminated", i);
		FZ_CHECK(strpbrk(v->lines[i], "\r\n") == NULL,
		         "reply line %zu has CR or LF", i);
		fz_check_text("reply line", v->lines[i], FG_REPLY_LINE_MAX);
	}
	/* A masked verdict answers as the MTA does an unknown user: its
	 * 4xx or 5xx, after any delay. */
	if (v->masked && !v->monitor) {
		FZ_CHECK(v->action == FG_ACT_DELAY || v->action == FG_ACT_REJECT,
		         "masked with action %s", fg_action_name(v->action));
		FZ_CHECK(cls == 4 || cls == 5, "masked with reply %d", v->code);
	}
	switch (v->masked ? FG_ACT_BAN : v->action) {
	case FG_ACT_CONTINUE:
		FZ_CHECK(v->code == 0, "continue with reply %d", v->code);
		break;
	case FG_ACT_DELAY:
		/* A delay carries the reply of what follows it. */
		FZ_CHECK(v->step != NULL, "delay without a step");
		if (v->step->then == FG_ACT_CONTINUE)
			FZ_CHECK(v->code == 0, "delay then continue with "
			         "reply %d", v->code);
		else if (v->step->then == FG_ACT_REJECT)
			FZ_CHECK(cls == 5, "delay then reject with %d", v->code);
		else
			FZ_CHECK(cls == 4, "delay then %s with %d",
			         fg_action_name(v->step->then), v->code);
		break;
	case FG_ACT_TEMPFAIL:
		FZ_CHECK(cls == 4, "tempfail with reply %d", v->code);
		break;
	case FG_ACT_REJECT:
		FZ_CHECK(cls == 5, "reject with reply %d", v->code);
		break;
	case FG_ACT_DISCONNECT:
		FZ_CHECK(v->code == 421, "disconnect with reply %d", v->code);
		break;
	case FG_ACT_BAN:
		break;
	}

	if (v->monitor)
		FZ_CHECK(v->action == FG_ACT_CONTINUE && v->delay_ms == 0 &&
		         v->code == 0, "monitor verdict acts: %s delay %lld "
		         "code %d", fg_action_name(v->action),
		         (long long)v->delay_ms, v->code);
	if (v->exempt)
		FZ_CHECK(v->action == FG_ACT_CONTINUE && v->rule == NULL &&
		         v->exempt_reason != NULL && !v->ban.set &&
		         v->nlevels == 0, "exempt verdict acts");
	if (v->banned)
		FZ_CHECK(v->rule == NULL && !v->ban.set,
		         "banned verdict with a rule or a new ban");

	/* The why. */
	fz_check_key("verdict key", v->key);
	if (v->rule != NULL) {
		const struct fg_rule *r = v->rule;
		FZ_CHECK(r >= cfg->rules && r < cfg->rules + cfg->nrules,
		         "rule outside the config");
		FZ_CHECK(v->step >= r->steps && v->step < r->steps + r->nsteps,
		         "step outside its rule");
		FZ_CHECK(v->level == (int)(v->step - r->steps),
		         "level %d is not the step's index", v->level);
		FZ_CHECK(v->count > v->limit && v->limit > 0,
		         "rule fired at count %lld, limit %lld",
		         (long long)v->count, (long long)v->limit);
	} else {
		FZ_CHECK(v->step == NULL, "step without a rule");
		FZ_CHECK(v->action == FG_ACT_CONTINUE || v->banned,
		         "%s without a rule or a ban", fg_action_name(v->action));
	}

	/* Effects. */
	if (v->ban.set) {
		FZ_CHECK(v->rule != NULL && v->step->action == FG_ACT_BAN,
		         "ban effect without a ban step");
		/* A masked harvest is banned and still answered as the
		 * MTA answers an unknown user. */
		FZ_CHECK(v->action == FG_ACT_DISCONNECT || v->masked,
		         "ban effect with action %s", fg_action_name(v->action));
		FZ_CHECK(v->ban.until_ms >= now_ms, "ban ends before now");
		fz_check_key("ban key", v->ban.key);
		FZ_CHECK(v->ban.key[0] != '\0', "empty ban key");
		fz_check_text("ban reason", v->ban.reason,
		              sizeof(v->ban.reason));
		fz_check_text("ban source", v->ban.source,
		              sizeof(v->ban.source));
	}
	FZ_CHECK(v->nlevels <= FG_POLICY_MAX_LEVELS, "%zu levels", v->nlevels);
	for (size_t i = 0; i < v->nlevels && i < FG_POLICY_MAX_LEVELS; i++) {
		const struct fg_effect_level *e = &v->levels[i];
		FZ_CHECK(e->set && e->rule != NULL, "level effect %zu unset", i);
		FZ_CHECK(e->level >= 0 && (size_t)e->level < e->rule->nsteps,
		         "level %d outside the ladder of %zu steps", e->level,
		         e->rule->nsteps);
		fz_check_key("level key", e->key);
	}

	/* The log line, into buffers large and small. */
	{
		static const size_t sizes[] = {1, 2, 17, 100, 2048};
		char buf[2048];

		FZ_CHECK(fg_verdict_describe(v, buf, 0) == buf,
		         "describe with size 0");
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			memset(buf, 'Z', sizeof(buf));
			fg_verdict_describe(v, buf, sizes[i]);
			fz_check_text("verdict description", buf, sizes[i]);
		}
	}
}

/* fg_policy_event_keys() with room for max keys. */
static inline void
fz_check_event_keys(const struct fg_config *cfg, const struct fg_facts *f,
                    size_t max)
{
	char keys[FG_STORE_MAX_KEYS + 1][FG_KEY_MAX];
	size_t n;

	memset(keys, 'Z', sizeof(keys));
	n = fg_policy_event_keys(cfg, f, keys, max);
	FZ_CHECK(n <= max, "%zu keys with room for %zu", n, max);
	for (size_t i = 0; i < n; i++) {
		fz_check_key("event key", keys[i]);
		FZ_CHECK(keys[i][0] != '\0', "empty event key");
		for (size_t j = 0; j < i; j++)
			FZ_CHECK(strcmp(keys[i], keys[j]) != 0,
			         "event key \"%s\" twice", keys[i]);
	}
	if (max < FG_STORE_MAX_KEYS + 1)
		FZ_CHECK(keys[max][0] == 'Z', "wrote past %zu keys", max);
}

#endif
