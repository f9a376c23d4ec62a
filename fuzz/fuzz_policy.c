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

#define RULES_COMMON                                                          \
	"rules = (\n"                                                         \
	"  { name = \"dictionary\"; type = \"invalid_recipients\";\n"         \
	"    per = \"network\"; prefix4 = 24; prefix6 = 48;\n"                \
	"    limit = 20; window = \"1h\"; ratio = 0.3; min_sample = 50;\n"    \
	"    decay = \"1h\";\n"                                               \
	"    ladder = (\n"                                                    \
	"      { over = 1; action = \"delay\"; delay = \"2s\";\n"             \
	"        growth = \"linear\"; },\n"                                   \
	"      { over = 5; action = \"delay\"; delay = \"500ms\";\n"          \
	"        growth = \"doubling\"; then = \"tempfail\";\n"               \
	"        reply = { code = 451; status = \"4.7.1\"; text = [\n"        \
	"          \"Slow down: ${count} > ${limit} in ${window}\",\n"        \
	"          \"100% of ${delay}s, ${nothing} ${count\" ]; }; },\n"      \
	"      { over = 10; action = \"tempfail\"; },\n"                      \
	"      { over = 20; action = \"reject\"; reply = { code = 550;\n"     \
	"        status = \"5.7.1\"; text = \"Harvesting (${count})\"; }; },\n" \
	"      { over = 30; action = \"ban\"; ban = \"1h\"; }\n"              \
	"    );\n"                                                            \
	"    networks = (\n"                                                  \
	"      { network = \"198.51.100\"; limit = 0; },\n"                   \
	"      { network = \"203.0.113.0/25\"; limit = 100; },\n"             \
	"      { network = \"203.0.113.64/26\"; limit = 2; },\n"              \
	"      { network = \"2001:db8::/32\"; limit = 5; }\n"                 \
	"    );\n"                                                            \
	"  },\n"                                                              \
	"  { name = \"addr-invalid\"; type = \"invalid_recipients\";\n"       \
	"    per = \"address\"; limit = 10; window = \"10m\";\n"              \
	"    action = \"tempfail\"; },\n"                                     \
	"  { name = \"connection-rate\"; type = \"connection_rate\";\n"       \
	"    per = \"address\"; limit = 60; window = \"1m\";\n"               \
	"    action = \"disconnect\"; },\n"                                   \
	"  { name = \"net-conn\"; type = \"connection_rate\";\n"              \
	"    per = \"network\"; prefix4 = 16; prefix6 = 32; limit = 200;\n"   \
	"    window = \"1m\"; decay = \"10m\";\n"                             \
	"    ladder = ( { over = 1; action = \"tempfail\"; },\n"              \
	"               { over = 100; action = \"ban\"; ban = \"10m\";\n"     \
	"                 reply = { code = 421; text = \"bye\"; }; } ); },\n" \
	"  { name = \"concurrency\"; type = \"concurrency\";\n"               \
	"    per = \"address\"; limit = 10; action = \"disconnect\"; },\n"    \
	"  { name = \"global-conc\"; type = \"concurrency\"; per = \"global\";\n" \
	"    limit = 500; action = \"tempfail\"; monitor = true; },\n"        \
	"  { name = \"bad-recipient-throttle\";\n"                            \
	"    type = \"bad_recipient_throttle\"; limit = 3;\n"                 \
	"    action = \"delay\"; delay = \"1s\"; growth = \"linear\";\n"      \
	"    then = \"reject\"; },\n"                                         \
	"  { name = \"recipients-per-message\";\n"                            \
	"    type = \"recipients_per_message\"; limit = 100; },\n"            \
	"  { name = \"helo-rate\"; type = \"helo_rate\"; per = \"helo\";\n"   \
	"    limit = 30; window = \"1m\"; action = \"reject\"; },\n"          \
	"  { name = \"mail-rate\"; type = \"mail_rate\";\n"                   \
	"    per = \"sender_domain\"; limit = 50; window = \"10m\";\n"        \
	"    action = \"delay\"; delay = \"3s\"; },\n"                        \
	"  { name = \"rcpt-rate\"; type = \"recipient_rate\";\n"              \
	"    per = \"recipient_domain\"; limit = 1000; window = \"1h\";\n"    \
	"    action = \"tempfail\"; },\n"                                     \
	"  { name = \"rejected\"; type = \"rejected_recipients\";\n"          \
	"    per = \"global\"; limit = 100; window = \"5m\";\n"               \
	"    action = \"ban\"; ban = \"5m\"; },\n"                            \
	"  { name = \"helo-global\"; type = \"helo_rate\"; per = \"global\";\n" \
	"    limit = 10000; window = \"1m\"; action = \"delay\";\n"           \
	"    delay = \"10s\"; growth = \"doubling\"; then = \"disconnect\"; },\n" \
	"  { name = \"mail-net\"; type = \"mail_rate\"; per = \"network\";\n" \
	"    limit = 5; window = \"1h\"; decay = \"2h\";\n"                   \
	"    ladder = ( { over = 1; action = \"delay\"; delay = \"1s\";\n"    \
	"                 then = \"continue\"; },\n"                          \
	"               { over = 3; action = \"reject\"; } ); }\n"            \
	");\n"

/* Enforcing, with delays. */
static const char config_a[] =
	"max_delay = \"8s\";\n"
	"mta_timeout = \"30s\";\n"
	"max_delayed_sessions = 50;\n"
	"network_prefix4 = 24;\n"
	"network_prefix6 = 64;\n"
	"banned_action = \"disconnect\";\n"
	"exempt = {\n"
	"  networks = [ \"127.0.0.0/8\", \"::1\", \"192.0.2.128/25\",\n"
	"               \"2001:db8:ffff::/48\" ];\n"
	"  authenticated = true;\n"
	"  hostnames = [ \".trusted.example\", \"relay.example.net\",\n"
	"                \"*.wild.example\" ];\n"
	"  daemons = [ \"submission\", \"MSA\" ];\n"
	"};\n"
	RULES_COMMON;

/* No delay can be given; banned clients get a multi-line 4xx. */
static const char config_b[] =
	"max_delay = \"0s\";\n"
	"max_delayed_sessions = 0;\n"
	"network_prefix4 = 32;\n"
	"network_prefix6 = 128;\n"
	"banned_action = \"tempfail\";\n"
	"banned_reply = { code = 450; status = \"4.7.0\";\n"
	"  text = [ \"You are banned\", \"${count} ${limit} ${window}\",\n"
	"           \"100%\" ]; };\n"
	"exempt = { authenticated = false; };\n"
	RULES_COMMON;

/* Monitor mode: decide, log, never act. */
static const char config_c[] =
	"monitor = true;\n"
	"max_delay = \"5s\";\n"
	"mta_timeout = \"10s\";\n"
	"banned_action = \"reject\";\n"
	"banned_reply = { code = 554; text = \"banned\"; };\n"
	RULES_COMMON;

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
	                       fake_level};
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
