/*
 * fuzz_config.c - arbitrary bytes as floodgate.conf text.
 *
 * fg_config_load_string() must never crash or leak, must report every
 * problem as one clean line "fuzz.conf...: ..." through the diagnostic
 * callback, must fail exactly when it reported an error, and a snapshot
 * it accepts must be as validated as config.h says.  An accepted
 * snapshot is also published, acquired and released, and asked for a
 * few verdicts, so odd but legal settings (reply templates, ladders,
 * overrides) reach the policy too.
 *
 * Inputs naming "@include" are skipped: libconfig would open files of
 * the machine running the fuzzer (/dev/stdin, /dev/zero ...).
 *
 * FG_FUZZ_DIAG_CONTROL=allow in the environment lets control bytes in a
 * diagnostic pass (everything else is still checked), to fuzz on past a
 * known report of that kind until it is fixed.
 */
#include <ctype.h>
#include <strings.h>

#include "fuzz.h"

#define NAME "fuzz.conf"

struct diag_state {
	int errors;
	int warnings;
};

static bool allow_control;

static void
diag(void *arg, bool is_warning, const char *line)
{
	struct diag_state *st = arg;
	size_t len;

	FZ_CHECK(line != NULL, "NULL diagnostic");
	len = strlen(line);
	FZ_CHECK(len > strlen(NAME), "diagnostic too short: \"%s\"", line);
	FZ_CHECK(strncmp(line, NAME, strlen(NAME)) == 0 &&
	         line[strlen(NAME)] == ':',
	         "diagnostic does not start with \"" NAME ":\": \"%s\"", line);
	for (size_t i = 0; i < len && !allow_control; i++)
		FZ_CHECK((unsigned char)line[i] >= 0x20 &&
		         (unsigned char)line[i] != 0x7f,
		         "diagnostic has control byte 0x%02x at %zu (is one "
		         "line only if it has none): \"%s\"",
		         (unsigned char)line[i], i, line);
	if (is_warning)
		st->warnings++;
	else
		st->errors++;
}

static bool
has_include(const uint8_t *data, size_t size)
{
	static const char word[] = "@include";
	size_t n = sizeof(word) - 1;

	for (size_t i = 0; i + n <= size; i++)
		if (data[i] == '@' &&
		    strncasecmp((const char *)data + i, word, n) == 0)
			return true;
	return false;
}

static void
check_reply(const struct fg_reply *r)
{
	FZ_CHECK(r->code == 0 || (r->code >= 400 && r->code <= 599),
	         "reply code %d", r->code);
	FZ_CHECK(r->nlines <= FG_REPLY_MAX_LINES, "%zu reply lines",
	         r->nlines);
	FZ_CHECK(r->code != 0 || (r->nlines == 0 && r->status[0] == '\0'),
	         "reply text or status without a code");
	FZ_CHECK(r->status[0] == '\0' || r->status[0] == '0' + r->code / 100,
	         "status %s with code %d", r->status, r->code);
	for (size_t i = 0; i < r->nlines && i < FG_REPLY_MAX_LINES; i++) {
		FZ_CHECK(r->lines[i] != NULL, "reply line %zu NULL", i);
		FZ_CHECK(strlen(r->lines[i]) < FG_REPLY_LINE_MAX - 16,
		         "reply line %zu too long", i);
		fz_check_text("configured reply line", r->lines[i],
		              FG_REPLY_LINE_MAX);
	}
}

/* What config.h promises of a snapshot that loaded. */
static void
check_config(const struct fg_config *cfg)
{
	FZ_CHECK(cfg->path != NULL && strcmp(cfg->path, NAME) == 0,
	         "path %s", cfg->path ? cfg->path : "(null)");
	FZ_CHECK(cfg->socket != NULL && cfg->database != NULL &&
	         cfg->user != NULL && cfg->pid_file != NULL &&
	         cfg->socket_group != NULL && cfg->valid_recipients != NULL,
	         "a string setting is NULL");
	FZ_CHECK(cfg->max_delay_ms >= 0 &&
	         cfg->max_delay_ms < cfg->mta_timeout_ms,
	         "max_delay %lld, mta_timeout %lld",
	         (long long)cfg->max_delay_ms, (long long)cfg->mta_timeout_ms);
	FZ_CHECK(cfg->max_delayed_sessions >= 0, "max_delayed_sessions < 0");
	FZ_CHECK(cfg->banned_action == FG_ACT_TEMPFAIL ||
	         cfg->banned_action == FG_ACT_REJECT ||
	         cfg->banned_action == FG_ACT_DISCONNECT,
	         "banned_action %d", (int)cfg->banned_action);
	check_reply(&cfg->banned_reply);
	FZ_CHECK(cfg->network_prefix4 <= 32 && cfg->network_prefix6 <= 128,
	         "network prefixes %u %u", cfg->network_prefix4,
	         cfg->network_prefix6);
	FZ_CHECK(cfg->exempt.networks != NULL, "no exempt table");
	FZ_CHECK(fg_nettab_count(cfg->exempt.networks) <= cfg->exempt.nnetworks,
	         "exempt table larger than its list");
	for (size_t i = 0; i < cfg->exempt.nhostnames; i++)
		fz_check_text("exempt hostname", cfg->exempt.hostnames[i],
		              strlen(cfg->exempt.hostnames[i]) + 1);
	for (size_t i = 0; i < cfg->exempt.ndaemons; i++)
		fz_check_text("exempt daemon", cfg->exempt.daemons[i],
		              strlen(cfg->exempt.daemons[i]) + 1);
	FZ_CHECK(cfg->nrules <= 256, "%zu rules", cfg->nrules);
	FZ_CHECK(cfg->horizon_ms >= 3600 * 1000, "horizon %lld",
	         (long long)cfg->horizon_ms);

	for (size_t i = 0; i < cfg->nrules; i++) {
		const struct fg_rule *r = &cfg->rules[i];

		FZ_CHECK(r->name != NULL && r->name[0] != '\0' &&
		         strlen(r->name) <= 64, "rule %zu name", i);
		for (const char *p = r->name; *p; p++)
			FZ_CHECK(isalnum((unsigned char)*p) || *p == '_' ||
			         *p == '-' || *p == '.', "rule name \"%s\"",
			         r->name);
		for (size_t j = 0; j < i; j++)
			FZ_CHECK(strcmp(cfg->rules[j].name, r->name) != 0,
			         "rule name %s twice", r->name);
		FZ_CHECK(r->type >= FG_RULE_CONNECTION_RATE &&
		         r->type <= FG_RULE_RCPTS_PER_MESSAGE, "rule type %d",
		         (int)r->type);
		FZ_CHECK(r->per >= FG_PER_ADDRESS && r->per <= FG_PER_MESSAGE,
		         "rule per %d", (int)r->per);
		if (r->type == FG_RULE_BAD_RCPT_THROTTLE)
			FZ_CHECK(r->per == FG_PER_SESSION, "throttle per %s",
			         fg_per_name(r->per));
		else if (r->type == FG_RULE_RCPTS_PER_MESSAGE)
			FZ_CHECK(r->per == FG_PER_MESSAGE, "rpm per %s",
			         fg_per_name(r->per));
		else
			FZ_CHECK(r->per != FG_PER_SESSION &&
			         r->per != FG_PER_MESSAGE, "%s per %s",
			         fg_rule_type_name(r->type), fg_per_name(r->per));
		FZ_CHECK(r->prefix4 <= 32 && r->prefix6 <= 128, "rule prefixes");
		if (r->per == FG_PER_NETWORK)
			FZ_CHECK(r->prefix4 >= 8 && r->prefix6 >= 16,
			         "network rule prefixes %u %u", r->prefix4,
			         r->prefix6);
		FZ_CHECK(r->limit >= 0, "limit %lld", (long long)r->limit);
		FZ_CHECK(r->window_ms <= cfg->horizon_ms &&
		         r->decay_ms <= cfg->horizon_ms, "window past horizon");
		if (r->type != FG_RULE_CONCURRENCY &&
		    r->type != FG_RULE_BAD_RCPT_THROTTLE &&
		    r->type != FG_RULE_RCPTS_PER_MESSAGE)
			FZ_CHECK(r->window_ms >= 1000, "window %lld",
			         (long long)r->window_ms);
		FZ_CHECK(r->ratio >= 0.0 && r->ratio <= 1.0, "ratio");
		FZ_CHECK(r->nsteps >= 1 && r->nsteps <= 16 && r->steps != NULL,
		         "rule %s has %zu steps", r->name, r->nsteps);
		for (size_t j = 0; j < r->nsteps; j++) {
			const struct fg_step *s = &r->steps[j];
			FZ_CHECK(s->over >= 1, "over %lld", (long long)s->over);
			FZ_CHECK(j == 0 || s->over > r->steps[j - 1].over,
			         "over not ascending");
			FZ_CHECK(s->action >= FG_ACT_CONTINUE &&
			         s->action <= FG_ACT_BAN, "step action %d",
			         (int)s->action);
			FZ_CHECK(s->then >= FG_ACT_CONTINUE &&
			         s->then <= FG_ACT_DISCONNECT &&
			         s->then != FG_ACT_DELAY, "step then %d",
			         (int)s->then);
			FZ_CHECK(s->growth >= FG_GROW_FIXED &&
			         s->growth <= FG_GROW_DOUBLING, "growth");
			if (s->action == FG_ACT_DELAY)
				FZ_CHECK(s->delay_ms > 0, "delay step without "
				         "a delay");
			else
				FZ_CHECK(s->then == FG_ACT_CONTINUE,
				         "then without delay");
			if (s->action == FG_ACT_BAN)
				FZ_CHECK(s->ban_ms > 0, "ban step without a "
				         "duration");
			if ((r->type == FG_RULE_CONCURRENCY ||
			     r->type == FG_RULE_RCPTS_PER_MESSAGE))
				FZ_CHECK(s->action != FG_ACT_DELAY,
				         "%s rule delays",
				         fg_rule_type_name(r->type));
			check_reply(&s->reply);
		}
		FZ_CHECK(fg_nettab_count(r->overrides) == r->noverrides,
		         "override table %zu, list %zu",
		         fg_nettab_count(r->overrides), r->noverrides);
		for (size_t j = 0; j < r->noverrides; j++) {
			void *val = NULL;
			FZ_CHECK(r->override_list[j].limit >= 0, "override limit");
			FZ_CHECK(fg_nettab_lookup(r->overrides,
			                          &r->override_list[j].net.addr,
			                          &val, NULL) == 1 && val != NULL,
			         "override %zu not found in its table", j);
		}
	}
}

/* A view that says every count is large, nothing is banned. */
static int64_t
big_count(void *ctx, const char *key, enum fg_counter c, int64_t window_ms,
          int64_t now_ms)
{
	(void)ctx;
	(void)key;
	(void)window_ms;
	(void)now_ms;
	return c == FG_CNT_RCPT ? 1000 : 500;
}

static int64_t
big_concurrent(void *ctx, const char *key)
{
	(void)ctx;
	(void)key;
	return 99;
}

static int
some_ban(void *ctx, const char *key, int64_t now_ms, struct fg_ban *out)
{
	(void)now_ms;
	if (*(const bool *)ctx && strchr(key, '/') != NULL) {
		memset(out, 0, sizeof(*out));
		out->until_ms = INT64_MAX;
		return 1;
	}
	return 0;
}

static int
some_level(void *ctx, const char *rule, const char *key, int *level,
           int64_t *last_ms)
{
	(void)ctx;
	(void)key;
	*level = (int)(strlen(rule) % 20);
	*last_ms = 1700000000000;
	return 1;
}

static void
exercise_policy(const struct fg_config *cfg)
{
	static const uint8_t v4[] = {192, 0, 2, 77};
	static const uint8_t v6[] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
	                             0, 0, 0, 0, 0, 0, 0, 7};
	const int64_t now = 1700000000000;

	for (int i = 0; i < 8; i++) {
		fg_addr a;
		bool banned = i == 7;
		struct fg_view view = {&banned, big_count, big_concurrent,
		                       some_ban, some_level, NULL, NULL, NULL};
		struct fg_facts f;
		struct fg_verdict v;

		memset(&a, 0, sizeof(a));
		if (i % 2 == 0) {
			a.family = FG_AF_INET;
			memcpy(a.bytes, v4, sizeof(v4));
		} else {
			a.family = FG_AF_INET6;
			memcpy(a.bytes, v6, sizeof(v6));
		}
		memset(&f, 0, sizeof(f));
		f.stage = (enum fg_stage)(i % 4);
		f.client = &a;
		f.client_host = "mx.example.org";
		f.helo = "mx.example.org";
		f.sender = "<a@example.net>";
		f.rcpt = "<b@example.org>";
		f.rcpt_class = FG_RCPT_INVALID;
		f.session_invalid = 40;
		f.message_rcpts = 400;
		f.delayed_sessions = i < 4 ? 0 : INT64_MAX;
		fg_policy_decide(cfg, &f, &view, now, &v);
		fz_check_verdict(cfg, &f, now, &v);
		fz_check_event_keys(cfg, &f, FG_STORE_MAX_KEYS);
	}
}

/*
 * libconfig 1.5 (Debian 12) leaks the text of a string token the parser
 * discards on a syntax error: `""` alone loses one byte.  Upstream fixed
 * it after 1.5 (hyperrealm/libconfig#142, pull #155).  The allocation is
 * the lexer's own, so only stacks through libconfig_yylex are excused,
 * and its string buffer (strbuf_append), which the fast unwinder shows
 * alone because libconfig has no frame pointers.  A config_t floodgate
 * forgot to destroy would still show up through config_init().
 */
const char *__lsan_default_suppressions(void);

const char *
__lsan_default_suppressions(void)
{
	return "leak:libconfig_yylex\nleak:strbuf_append\n";
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *e = getenv("FG_FUZZ_DIAG_CONTROL");

	(void)argc;
	(void)argv;
	allow_control = e != NULL && strcmp(e, "allow") == 0;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fg_config sentinel;
	struct diag_state st = {0, 0};
	struct fg_config *cfg = &sentinel; /* load must set it */
	char *text;
	int rc;

	if (has_include(data, size))
		return -1; /* not added to the corpus */
	text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	rc = fg_config_load_string(text, NAME, &cfg, diag, &st);
	free(text);
	if (rc == 0) {
		FZ_CHECK(cfg != NULL, "success without a snapshot");
		FZ_CHECK(st.errors == 0, "success after %d errors", st.errors);
		FZ_CHECK(atomic_load(&cfg->refs) == 1, "new snapshot with "
		         "%ld references", (long)atomic_load(&cfg->refs));
		check_config(cfg);
		exercise_policy(cfg);

		/* The snapshot life cycle: publish, acquire, replace. */
		fg_config_publish(fg_config_ref(cfg));
		{
			struct fg_config *live = fg_config_acquire();
			FZ_CHECK(live == cfg, "acquire gave another snapshot");
			fg_config_release(live);
		}
		fg_config_publish(NULL);
		FZ_CHECK(atomic_load(&cfg->refs) == 1, "%ld references after "
		         "publish and release", (long)atomic_load(&cfg->refs));
		fg_config_release(cfg);
	} else {
		FZ_CHECK(cfg == NULL, "failure %d left a snapshot", rc);
		FZ_CHECK(rc == FG_ECONFIG || rc == FG_ENOMEM, "load returned %d",
		         rc);
		if (rc == FG_ECONFIG)
			FZ_CHECK(st.errors > 0, "FG_ECONFIG without an error "
			         "message");
	}
	return 0;
}
