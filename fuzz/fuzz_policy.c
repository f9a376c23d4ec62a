/*
 * fuzz_policy.c - the decision, from arbitrary facts and counts.
 *
 * Three fixed configurations (one of every rule type, ladders with
 * delays, tempfails and bans, a ratio guard, per-network overrides,
 * exemptions; one where no delay can be given; one in monitor mode) are
 * loaded once.  Each input picks one and describes a moment of a session:
 * the stage, the client address (or none), HELO, sender, recipient, host
 * and daemon names, the recipient's class, the session counters, and a
 * fake store view whose counts, concurrency, bans and escalation levels
 * come from the input too.  fg_policy_decide(), fg_policy_event_keys(),
 * fg_policy_exemption() and fg_verdict_describe() must keep the
 * invariants in fuzz.h, and deciding twice must give the same verdict.
 */
#include "fg.h"
#include "fuzz.h"

#include "fuzz_configs.h"

static struct fg_config *configs[3];

/* ---- the fake view ----------------------------------------------------- */

struct fake {
	int64_t counts[8];
	int64_t conc[4];
	uint8_t bans;
	int levels[4];
	int64_t level_last[4];
	bool level_found[4];
	int calls;
};

static uint32_t
hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static void
check_view_key(const char *key)
{
	FZ_CHECK(key != NULL, "view asked with a NULL key");
	fz_check_key("view key", key);
	FZ_CHECK(key[0] != '\0', "view asked with an empty key");
}

static int64_t
fake_count(void *ctx, const char *key, enum fg_counter c, int64_t window_ms,
           int64_t now_ms)
{
	struct fake *fk = ctx;

	(void)now_ms;
	check_view_key(key);
	FZ_CHECK(c >= 0 && c < FG_CNT__COUNT, "counter %d", (int)c);
	FZ_CHECK(window_ms >= 1000, "window %lld", (long long)window_ms);
	fk->calls++;
	return fk->counts[(hash(key) + (uint32_t)c) % 8];
}

static int64_t
fake_concurrent(void *ctx, const char *key)
{
	struct fake *fk = ctx;

	check_view_key(key);
	fk->calls++;
	return fk->conc[hash(key) % 4];
}

static int
fake_ban(void *ctx, const char *key, int64_t now_ms, struct fg_ban *out)
{
	struct fake *fk = ctx;
	unsigned bit = hash(key) % 8;

	check_view_key(key);
	fk->calls++;
	if (fk->bans & (1u << bit)) {
		memset(out, 0, sizeof(*out));
		out->until_ms = now_ms + 1000;
		snprintf(out->reason, sizeof(out->reason), "fuzz");
		return 1;
	}
	/* A failing store answers < 0: that is no ban either. */
	return bit == 7 ? FG_EIO : 0;
}

static int
fake_level(void *ctx, const char *rule, const char *key, int *level,
           int64_t *last_ms)
{
	struct fake *fk = ctx;
	unsigned i = (hash(key) ^ hash(rule)) % 4;

	check_view_key(key);
	FZ_CHECK(rule != NULL && rule[0] != '\0', "level without a rule");
	fk->calls++;
	if (!fk->level_found[i])
		return i == 3 ? FG_EIO : 0;
	*level = fk->levels[i];
	*last_ms = fk->level_last[i];
	return 1;
}

/* ---- the input ----------------------------------------------------------- */

static int64_t
read_now(struct fz *z)
{
	const int64_t base = INT64_C(1700000000000);

	switch (fz_u8(z) % 8) {
	case 0: return 0;
	case 1: return (int64_t)fz_uint(z, 8);
	case 2: return -(int64_t)fz_uint(z, 4);
	case 3: return INT64_MAX;
	default: return base + (int64_t)fz_uint(z, 4);
	}
}

static void
diag(void *arg, bool is_warning, const char *line)
{
	(void)arg;
	if (!is_warning)
		fprintf(stderr, "fuzz_policy: %s\n", line);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *texts[3] = {config_a, config_b, config_c};

	(void)argc;
	(void)argv;
	for (int i = 0; i < 3; i++) {
		int rc = fg_config_load_string(texts[i], "fuzz_policy.conf",
		                               &configs[i], diag, NULL);
		if (rc != 0) {
			fprintf(stderr, "fuzz_policy: config %d does not load: "
			        "%s\n", i, fg_strerror(rc));
			abort();
		}
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz z;
	struct fake fk;
	struct fg_view view = {&fk, fake_count, fake_concurrent, fake_ban,
	                       fake_level, NULL, NULL, NULL};
	struct fg_facts f;
	fg_addr client;
	const struct fg_config *cfg;
	static struct fg_verdict v1, v2;
	uint8_t sel, flags;
	int64_t now;
	const char *why;

	fz_init(&z, data, size);
	sel = fz_u8(&z);
	cfg = configs[sel % 3];
	flags = fz_u8(&z);

	memset(&f, 0, sizeof(f));
	f.stage = (enum fg_stage)(fz_u8(&z) % 4);
	memset(&client, 0, sizeof(client));
	if (flags & 1) {
		bool v6 = (flags & 2) != 0;
		client.family = v6 ? FG_AF_INET6 : FG_AF_INET;
		for (int i = 0; i < (v6 ? 16 : 4); i++)
			client.bytes[i] = fz_u8(&z);
		/* What every parser makes of ::ffff:a.b.c.d. */
		if (v6 && memcmp(client.bytes, "\0\0\0\0\0\0\0\0\0\0\xff\xff",
		                 12) == 0) {
			memmove(client.bytes, client.bytes + 12, 4);
			memset(client.bytes + 4, 0, 12);
			client.family = FG_AF_INET;
		}
		f.client = &client;
	}
	f.authenticated = (flags & 4) != 0;
	f.rcpt_class = (enum fg_rcpt_class)(fz_u8(&z) % 4);
	f.session_invalid = fz_count(&z);
	f.message_rcpts = fz_count(&z);
	f.delayed_sessions = fz_count(&z);
	now = read_now(&z);

	memset(&fk, 0, sizeof(fk));
	for (int i = 0; i < 8; i++)
		fk.counts[i] = (sel & 0x80) ? -fz_count(&z) : fz_count(&z);
	for (int i = 0; i < 4; i++)
		fk.conc[i] = fz_count(&z);
	fk.bans = fz_u8(&z);
	for (int i = 0; i < 4; i++) {
		uint8_t b = fz_u8(&z);
		fk.level_found[i] = (b & 1) != 0;
		fk.levels[i] = (b & 2) ? (int)(int32_t)fz_uint(&z, 4)
		                       : (int)(b >> 2) % 20;
		fk.level_last[i] = (b & 0x80) ? now - (int64_t)fz_uint(&z, 4)
		                              : (int64_t)fz_uint(&z, 8);
	}

	f.helo = (flags & 8) ? fz_str(&z) : NULL;
	f.sender = (flags & 16) ? fz_str(&z) : NULL;
	f.rcpt = (flags & 32) ? fz_str(&z) : NULL;
	f.client_host = (flags & 64) ? fz_str(&z) : NULL;
	f.daemon_name = (flags & 128) ? fz_str(&z) : NULL;

	why = fg_policy_exemption(cfg, &f);
	fg_policy_decide(cfg, &f, &view, now, &v1);
	FZ_CHECK((why != NULL) == v1.exempt, "exemption \"%s\" but exempt=%d",
	         why ? why : "(none)", v1.exempt);
	if (v1.exempt)
		FZ_CHECK(fk.calls == 0, "an exempt session asked the store");
	fz_check_verdict(cfg, &f, now, &v1);

	fg_policy_decide(cfg, &f, &view, now, &v2);
	FZ_CHECK(fg_verdict_equal(&v1, &v2), "the same facts gave "
	         "another verdict");

	/* Without a view: nothing counted, nothing banned. */
	fg_policy_decide(cfg, &f, NULL, now, &v2);
	fz_check_verdict(cfg, &f, now, &v2);
	FZ_CHECK(!v2.banned, "banned without a view");

	for (size_t max = 0; max <= FG_STORE_MAX_KEYS; max += 3)
		fz_check_event_keys(cfg, &f, max);
	{
		char key[FG_KEY_MAX];
		memset(key, 'Z', sizeof(key));
		fg_policy_network_key(cfg, f.client, key);
		fz_check_key("network key", key);
		FZ_CHECK((key[0] != '\0') == (f.client != NULL),
		         "network key \"%s\"", key);
	}
	fz_free(&z);
	return 0;
}
