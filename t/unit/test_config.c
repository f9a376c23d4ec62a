/*
 * test_config.c - floodgate.conf: the example file, defaults, every bound,
 * golden error messages, durations, snapshots.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fg.h"
#include "tap.h"

struct diag {
	char text[16384];
	const char *file;
	int errors, warnings;
};

/* Collects messages with the file name replaced by FILE. */
static void
collect(void *arg, bool is_warning, const char *line)
{
	struct diag *d = arg;
	size_t fl = strlen(d->file);
	char buf[1200];

	if (strncmp(line, d->file, fl) == 0)
		snprintf(buf, sizeof(buf), "FILE%s\n", line + fl);
	else
		snprintf(buf, sizeof(buf), "%s\n", line);
	strncat(d->text, buf, sizeof(d->text) - strlen(d->text) - 1);
	if (is_warning)
		d->warnings++;
	else
		d->errors++;
}

static char *
slurp(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *buf;
	long n;

	if (fp == NULL)
		return NULL;
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	buf = calloc(1, (size_t)n + 1);
	if (buf != NULL && fread(buf, 1, (size_t)n, fp) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(fp);
	return buf;
}

static struct fg_config *
load_text(const char *text, struct diag *d)
{
	struct fg_config *cfg = NULL;

	memset(d, 0, sizeof(*d));
	d->file = "test.conf";
	fg_config_load_string(text, "test.conf", &cfg, collect, d);
	return cfg;
}

static void
test_example(const char *src)
{
	char path[4096];
	struct diag d = {0};
	struct fg_config *cfg = NULL;
	int rc;

	snprintf(path, sizeof(path), "%s/etc/floodgate.conf", src);
	d.file = path;
	rc = fg_config_load(path, &cfg, collect, &d);
	is_int(rc, 0, "etc/floodgate.conf loads");
	is_int(d.errors, 0, "etc/floodgate.conf has no errors");
	is_int(d.warnings, 0, "etc/floodgate.conf has no warnings");
	if (d.text[0] != '\0')
		printf("# %s", d.text);
	if (cfg == NULL)
		return;
	is_str(cfg->socket, "unix:/run/floodgate/floodgate.sock", "socket");
	is_int(cfg->socket_mode, 0660, "socket_mode");
	is_str(cfg->user, "floodgate", "user");
	is_int(cfg->on_error, FG_ON_ERROR_TEMPFAIL, "on_error");
	is_int(cfg->retention_ms, 7 * 86400 * 1000LL, "retention 7d");
	is_int(cfg->nrules, 8, "eight rules");
	ok(cfg->nrules >= 1 && strcmp(cfg->rules[0].name, "dictionary") == 0,
	   "first rule is the dictionary rule");
	if (cfg->nrules >= 1) {
		const struct fg_rule *r = &cfg->rules[0];
		is_int(r->type, FG_RULE_INVALID_RECIPIENTS, "dictionary type");
		is_int(r->per, FG_PER_NETWORK, "dictionary per network");
		is_int(r->limit, 10, "dictionary limit");
		is_int(r->window_ms, 3600000, "dictionary window");
		is_int(r->nsteps, 2, "dictionary ladder has 2 steps");
		if (r->nsteps == 2) {
			is_int(r->steps[0].action, FG_ACT_TEMPFAIL,
			       "step 1 tempfail");
			is_int(r->steps[1].action, FG_ACT_BAN, "step 2 ban");
			is_int(r->steps[1].ban_ms, 3600000, "ban 1h");
		}
	}
	/* Spread attacks: the wider dictionary rule and per-network
	 * connection limits beside the per-address ones. */
	if (cfg->nrules == 8) {
		static const struct {
			const char *name;
			enum fg_rule_type type;
			unsigned prefix4, prefix6;
		} want[] = {
			{"dictionary-wide", FG_RULE_INVALID_RECIPIENTS, 16, 48},
			{"connection-rate-network", FG_RULE_CONNECTION_RATE, 24, 64},
			{"concurrency-network", FG_RULE_CONCURRENCY, 24, 64},
		};
		for (size_t w = 0; w < sizeof(want) / sizeof(want[0]); w++) {
			const struct fg_rule *r = NULL;

			for (size_t i = 0; i < cfg->nrules; i++)
				if (strcmp(cfg->rules[i].name, want[w].name) == 0)
					r = &cfg->rules[i];
			ok(r != NULL && r->type == want[w].type &&
			   r->per == FG_PER_NETWORK &&
			   r->prefix4 == want[w].prefix4 &&
			   r->prefix6 == want[w].prefix6,
			   "%s per /%d and /%d", want[w].name, want[w].prefix4,
			   want[w].prefix6);
		}
	}
	ok(cfg->max_delay_ms < cfg->mta_timeout_ms,
	   "max_delay below mta_timeout");
	fg_config_release(cfg);
}

static void
test_defaults(void)
{
	struct diag d;
	struct fg_config *cfg = load_text("", &d);

	ok(cfg != NULL, "an empty file is a valid configuration");
	if (cfg == NULL)
		return;
	is_str(cfg->socket, "unix:/run/floodgate/floodgate.sock",
	       "default socket");
	is_str(cfg->database, "/var/lib/floodgate/floodgate.db",
	       "default database");
	is_int(cfg->socket_mode, 0660, "default socket mode");
	is_int(cfg->flush_interval_ms, 1000, "default flush interval");
	is_int(cfg->queue_size, 65536, "default queue size");
	is_int(cfg->memory_limit, 128 << 20, "default memory_limit");
	is_int(cfg->max_database_size, INT64_C(1) << 30,
	       "default max_database_size");
	is_int(cfg->max_delay_ms, 8000, "default max_delay");
	is_int(cfg->mta_timeout_ms, 10000, "default mta_timeout");
	is_int(cfg->nrules, 0, "no rules by default");
	is_int(cfg->exempt.nnetworks, 2, "loopback exempt by default");
	ok(cfg->exempt.authenticated, "authenticated exempt by default");
	is_int(cfg->banned_action, FG_ACT_DISCONNECT, "banned_action");
	fg_config_release(cfg);
}

static void
test_shorthand(void)
{
	struct diag d;
	struct fg_config *cfg = load_text(
	    "rules = ("
	    " { name = \"t\"; type = \"bad_recipient_throttle\"; limit = 2; },"
	    " { name = \"m\"; type = \"recipients_per_message\"; limit = 10; },"
	    " { name = \"c\"; type = \"concurrency\"; limit = 3; action = \"reject\";"
	    "   reply = { code = 554; status = \"5.7.1\"; text = [\"a\", \"b\"]; }; },"
	    " { name = \"o\"; type = \"connection_rate\"; per = \"network\";"
	    "   prefix4 = 16; limit = 5; window = 60;"
	    "   networks = ( { network = \"192.0.2\"; limit = 0; } ); }"
	    ");", &d);

	ok(cfg != NULL, "shorthand rules load");
	if (cfg == NULL) {
		printf("# %s", d.text);
		return;
	}
	is_int(cfg->rules[0].per, FG_PER_SESSION, "throttle per session");
	is_int(cfg->rules[0].steps[0].action, FG_ACT_DELAY, "throttle delays");
	is_int(cfg->rules[0].steps[0].delay_ms, 1000, "throttle 1s");
	is_int(cfg->rules[0].steps[0].growth, FG_GROW_LINEAR, "throttle linear");
	is_int(cfg->rules[1].steps[0].reply.code, 452, "max rcpts 452");
	is_str(cfg->rules[1].steps[0].reply.status, "4.5.3", "max rcpts 4.5.3");
	is_int(cfg->rules[2].steps[0].reply.nlines, 2, "two reply lines");
	is_int(cfg->rules[3].window_ms, 60000, "bare number is seconds");
	is_int(cfg->rules[3].prefix4, 16, "prefix4");
	is_int(cfg->rules[3].noverrides, 1, "one override");
	if (cfg->rules[3].noverrides == 1)
		is_int(cfg->rules[3].override_list[0].net.len, 24,
		       "partial 192.0.2 is a /24");
	is_int(cfg->horizon_ms, 3600000, "horizon at least 1h");
	fg_config_release(cfg);
}

static void
test_shared(void)
{
	struct diag d;
	struct fg_config *cfg = load_text(
	    "rules = ( { name = \"d\"; type = \"invalid_recipients\"; limit = 3;"
	    " window = \"1h\"; } );", &d);

	ok(cfg != NULL, "a file without a shared group loads");
	if (cfg == NULL)
		return;
	ok(!cfg->shared.present, "no shared group");
	is_int(cfg->shared.backend, FG_SHARE_NONE, "backend none");
	ok(!cfg->rules[0].shared, "rules unshared without the group");
	ok(!fg_config_rule_shared(cfg, &cfg->rules[0]), "nothing shared");
	fg_config_release(cfg);

	cfg = load_text("shared = { };", &d);
	ok(cfg != NULL && cfg->shared.present, "an empty group loads");
	if (cfg != NULL) {
		is_int(cfg->shared.backend, FG_SHARE_NONE, "backend none");
		is_str(cfg->shared.server, "127.0.0.1:6379", "default server");
		is_str(cfg->shared.prefix, "fg", "default prefix");
		ok(cfg->shared.node != NULL && cfg->shared.node[0] != '\0',
		   "node defaults to the host name (%s)", cfg->shared.node);
		is_int(cfg->shared.sync_interval_ms, 250, "sync_interval");
		is_int(cfg->shared.slot_ms, 5000, "slot");
		is_int(cfg->shared.timeout_ms, 500, "timeout");
		is_int(cfg->shared.hot_ms, 10000, "hot");
		is_int(cfg->shared.max_commands, 20000, "max_commands");
		ok(cfg->shared.bans, "bans shared");
		is_int(cfg->shared.max_remote_ban_ms, 86400000, "max_remote_ban");
		is_int(cfg->shared.warn_skew_ms, 250, "warn_skew");
		ok(cfg->shared.password == NULL, "no password");
	}
	fg_config_release(cfg);

	cfg = load_text(
	    "shared = { backend = \"redis\"; server = \"[::1]:6380\";"
	    " node = \"mx1\"; prefix = \"site:fg\"; sync_interval = \"50ms\"; };"
	    "rules = ("
	    " { name = \"d\"; type = \"invalid_recipients\"; limit = 3; window = \"1h\"; },"
	    " { name = \"c\"; type = \"concurrency\"; limit = 3; },"
	    " { name = \"l\"; type = \"connection_rate\"; limit = 3; window = 60;"
	    "   shared = false; }"
	    ");", &d);
	ok(cfg != NULL, "a redis group loads");
	if (cfg == NULL) {
		printf("# %s", d.text);
		return;
	}
	is_int(cfg->shared.backend, FG_SHARE_REDIS, "backend redis");
	is_str(cfg->shared.server, "[::1]:6380", "bracketed IPv6 server");
	is_str(cfg->shared.node, "mx1", "node");
	is_str(cfg->shared.prefix, "site:fg", "prefix");
	ok(cfg->rules[0].shared, "a window rule is shared by default");
	ok(fg_config_rule_shared(cfg, &cfg->rules[0]), "and counted across");
	ok(!cfg->rules[1].shared, "concurrency stays local");
	ok(!cfg->rules[2].shared, "shared = false keeps a rule local");
	fg_config_release(cfg);

	char pw[] = "/tmp/fg-test-pw-XXXXXX";
	int fd = mkstemp(pw);
	char text[512];
	ok(fd >= 0 && write(fd, "s3cret\nignored\n", 15) == 15, "password file");
	if (fd >= 0)
		close(fd);
	snprintf(text, sizeof(text), "shared = { username = \"fg\";"
	         " password_file = \"%s\"; };", pw);
	cfg = load_text(text, &d);
	ok(cfg != NULL && d.warnings == 0, "user and password file load");
	if (cfg != NULL)
		is_str(cfg->shared.password, "s3cret", "first line is the password");
	fg_config_release(cfg);
	unlink(pw);
	cfg = load_text(text, &d);
	ok(cfg == NULL && d.errors == 1 &&
	   strstr(d.text, "shared.password_file: ") != NULL,
	   "a missing password file is an error");
	fg_config_release(cfg);
	cfg = load_text("shared = { username = \"fg\"; };", &d);
	ok(cfg == NULL && strstr(d.text, "FILE:1: shared.username: ") != NULL,
	   "a user without a password file is an error");
	fg_config_release(cfg);

	static const char *const good_servers[] = {
	    "redis.example:6379", "192.0.2.5:1", "unix:/run/redis/redis.sock",
	};
	static const char *const bad_servers[] = {
	    "redis", "::1:6379", "host:0", "host:65536", "unix:relative",
	    "[::1]6379", ":6379", "host:63x",
	};
	for (size_t i = 0; i < FG_NELEM(good_servers); i++) {
		snprintf(text, sizeof(text), "shared = { server = \"%s\"; };",
		         good_servers[i]);
		cfg = load_text(text, &d);
		ok(cfg != NULL, "server %s accepted", good_servers[i]);
		fg_config_release(cfg);
	}
	for (size_t i = 0; i < FG_NELEM(bad_servers); i++) {
		snprintf(text, sizeof(text), "shared = {\nserver = \"%s\"; };",
		         bad_servers[i]);
		cfg = load_text(text, &d);
		ok(cfg == NULL && d.errors == 1 &&
		   strncmp(d.text, "FILE:2: shared.server: ", 23) == 0,
		   "server %s refused with file:line: key", bad_servers[i]);
		fg_config_release(cfg);
	}
}

static void
test_golden(const char *src)
{
	char dir[4096];
	DIR *dp;
	struct dirent *de;
	int n = 0;

	snprintf(dir, sizeof(dir), "%s/t/config", src);
	dp = opendir(dir);
	ok(dp != NULL, "golden directory t/config exists");
	if (dp == NULL)
		return;
	while ((de = readdir(dp)) != NULL) {
		char conf[8192], exp[8192];
		size_t l = strlen(de->d_name);
		struct diag d = {0};
		struct fg_config *cfg = NULL;
		char *want;
		int rc;

		if (l < 6 || strcmp(de->d_name + l - 5, ".conf") != 0)
			continue;
		snprintf(conf, sizeof(conf), "%s/%s", dir, de->d_name);
		snprintf(exp, sizeof(exp), "%s/%.*s.expected", dir,
		         (int)(l - 5), de->d_name);
		want = slurp(exp);
		d.file = conf;
		rc = fg_config_load(conf, &cfg, collect, &d);
		ok(want != NULL, "%s has an .expected file", de->d_name);
		is_int(rc, FG_ECONFIG, "%s is refused", de->d_name);
		ok(cfg == NULL, "%s gives no snapshot", de->d_name);
		is_str(d.text, want ? want : "", "%s messages", de->d_name);
		fg_config_release(cfg);
		free(want);
		n++;
	}
	closedir(dp);
	ok(n >= 4, "at least four golden files (%d)", n);
}

/* The likely cause of a syntax error, from text as from a file; none
 * where the line does not show it. */
static void
test_syntax_hints(void)
{
	static const struct {
		const char *text, *want;
	} t[] = {
		{"log_level = \"info\";\nsocket = unix:/tmp/x.sock;\n",
		 "FILE:2: socket: syntax error: unix:/tmp/x.sock is not quoted: "
		 "strings must be in double quotes, e.g. socket = "
		 "\"unix:/tmp/x.sock\";\n"},
		{"exempt = { hostnames = [ example.org ]; };",
		 "FILE:1: hostnames: syntax error: example.org is not quoted: "
		 "strings must be in double quotes, e.g. \"example.org\"\n"},
		{"monitor = off; # quiet",
		 "FILE:1: monitor: syntax error: off is not a value: booleans "
		 "are true or false, e.g. monitor = false;\n"},
		{"user = \"a\" /* x = y */ group = nope;",
		 "FILE:1: group: syntax error: nope is not quoted: strings must "
		 "be in double quotes, e.g. group = \"nope\";\n"},
		{"user = \"a\\\"b\" x = ;", "FILE:1: syntax error: syntax error\n"},
		{"user =\nfloodgate;", "FILE:2: syntax error: syntax error\n"},
		{"rules = ( { name = \"x\";", "FILE:1: syntax error: syntax error\n"},
	};
	struct diag d;

	for (size_t i = 0; i < FG_NELEM(t); i++) {
		struct fg_config *cfg = load_text(t[i].text, &d);
		ok(cfg == NULL, "syntax hint %zu: refused", i);
		is_str(d.text, t[i].want, "syntax hint %zu: message", i);
		fg_config_release(cfg);
	}
}

static void
test_durations(void)
{
	static const struct {
		const char *text;
		int rc;
		int64_t ms;
	} t[] = {
		{"0", 0, 0}, {"30", 0, 30000}, {"30s", 0, 30000},
		{"10m", 0, 600000}, {"1h", 0, 3600000}, {"7d", 0, 604800000},
		{"2w", 0, 1209600000}, {"250ms", 0, 250},
		{"", FG_EINVAL, 0}, {"s", FG_EINVAL, 0}, {"-1s", FG_EINVAL, 0},
		{"1.5h", FG_EINVAL, 0}, {"1 h", FG_EINVAL, 0},
		{"1H", FG_EINVAL, 0}, {"1y", FG_EINVAL, 0},
		{"99999999999999999999s", FG_ERANGE, 0},
		{"9223372036854775s", 0, INT64_C(9223372036854775000)},
		{"9223372036854776s", FG_ERANGE, 0},
	};
	char buf[32];

	for (size_t i = 0; i < FG_NELEM(t); i++) {
		int64_t ms = -1;
		int rc = fg_duration_parse(t[i].text, &ms);
		is_int(rc, t[i].rc, "duration \"%s\" rc", t[i].text);
		if (rc == 0)
			is_int(ms, t[i].ms, "duration \"%s\" value", t[i].text);
	}
	is_str(fg_duration_format(3600000, buf, sizeof(buf)), "1h", "format 1h");
	is_str(fg_duration_format(90000, buf, sizeof(buf)), "90s", "format 90s");
	is_str(fg_duration_format(1500, buf, sizeof(buf)), "1500ms",
	       "format 1500ms");
	is_str(fg_duration_format(0, buf, sizeof(buf)), "0s", "format 0");
}

static void
test_snapshots(void)
{
	struct diag d;
	struct fg_config *a = load_text("monitor = true;", &d);
	struct fg_config *b = load_text("monitor = false;", &d);
	struct fg_config *held, *now;

	ok(a != NULL && b != NULL, "two snapshots");
	if (a == NULL || b == NULL)
		return;
	fg_config_publish(a);
	held = fg_config_acquire();
	ok(held == a && held->monitor, "acquire gives the published one");
	fg_config_publish(b);
	now = fg_config_acquire();
	ok(now == b && !now->monitor, "a new publish replaces it");
	ok(held->monitor, "a session keeps its snapshot across a reload");
	is_int(atomic_load(&held->refs), 1, "old snapshot held only by us");
	fg_config_release(held);
	fg_config_release(now);
	fg_config_publish(NULL);
	ok(fg_config_acquire() == NULL, "nothing published");
}

static void
test_every_bound(void)
{
	/* One line per setting: a value just inside and just outside. */
	static const struct {
		const char *good, *bad;
	} t[] = {
		{"queue_size = 1024;", "queue_size = 1023;"},
		{"shared = { sync_interval = \"50ms\"; };", "shared = { sync_interval = \"49ms\"; };"},
		{"shared = { sync_interval = \"5s\"; };", "shared = { sync_interval = \"5001ms\"; };"},
		{"shared = { slot = \"1s\"; };", "shared = { slot = \"999ms\"; };"},
		{"shared = { slot = \"60s\"; };", "shared = { slot = \"61s\"; };"},
		{"shared = { slot = \"2s\"; };", "shared = { slot = \"1500ms\"; };"},
		{"shared = { timeout = \"10ms\"; };", "shared = { timeout = \"9ms\"; };"},
		{"shared = { hot = \"1h\"; };", "shared = { hot = \"61m\"; };"},
		{"shared = { max_commands = 100; };", "shared = { max_commands = 99; };"},
		{"shared = { max_commands = 1000000; };", "shared = { max_commands = 1000001; };"},
		{"shared = { warn_skew = \"0s\"; };", "shared = { warn_skew = \"-1s\"; };"},
		{"shared = { node = \"mx1.example\"; };", "shared = { node = \"mx/1\"; };"},
		{"shared = { prefix = \"a\"; };", "shared = { prefix = \"a b\"; };"},
		{"shared = { backend = \"redis\"; };", "shared = 1;"},
		{"queue_size = 16777216;", "queue_size = 16777217;"},
		{"memory_limit = \"1M\";", "memory_limit = \"1023K\";"},
		{"memory_limit = \"1T\";", "memory_limit = 1099511627777;"},
		{"memory_limit = 1048576;", "memory_limit = \"1MB\";"},
		{"max_database_size = \"1M\";", "max_database_size = \"1048575\";"},
		{"max_database_size = \"64T\";", "max_database_size = \"65T\";"},
		{"network_prefix4 = 8;", "network_prefix4 = 7;"},
		{"network_prefix6 = 128;", "network_prefix6 = 129;"},
		{"flush_interval = \"100ms\";", "flush_interval = \"99ms\";"},
		{"flush_interval = \"10s\";", "flush_interval = \"11s\";"},
		{"retention = \"1h\";", "retention = \"59m\";"},
		{"max_delay = \"0s\";", "max_delay = \"301s\";"},
		{"mta_timeout = \"1h\"; max_delay = \"300s\";", "mta_timeout = \"61m\";"},
		{"max_delayed_sessions = 100000;", "max_delayed_sessions = 100001;"},
		{"milter_timeout = \"10s\";", "milter_timeout = \"9s\";"},
		{"socket = \"inet:8891@127.0.0.1\";", "socket = \"inet:0@127.0.0.1\";"},
		{"socket = \"inet6:8891@[::1]\";", "socket = \"inet:65536\";"},
		{"socket = \"inet:8891@[127.0.0.2]\";", "socket = \"inet:8891\";"},
		{"socket = \"inet:8891@localhost\";", "socket = \"inet6:8891@::\";"},
		{"socket_public = true; socket = \"inet:8891\";",
		 "socket = \"inet:8891@192.0.2.1\";"},
		{"socket = \"local:/run/x.sock\";", "socket = \"unix:x.sock\";"},
		{"socket_mode = \"0600\";", "socket_mode = 660;"},
		{"pid_file = \"\";", "pid_file = 1;"},
		{"on_error = \"accept\";", "on_error = \"Accept\";"},
		{"log_level = \"debug\";", "log_level = 3;"},
		{"exempt = { networks = [\"10.0.0.0/8\"]; };",
		 "exempt = { networks = [\"10.0.0.0/33\"]; };"},
		{"exempt = { hostnames = [\".example.org\"]; };",
		 "exempt = { hostnames = [\"a b\"]; };"},
		{"exempt = { daemons = [\"submission\"]; };",
		 "exempt = { users = [\"x\"]; };"},
		{"rules = ( { name = \"r\"; type = \"helo_rate\"; per = \"helo\"; limit = 0; window = \"1m\"; } );",
		 "rules = ( { name = \"r\"; type = \"helo_rate\"; per = \"session\"; limit = 0; window = \"1m\"; } );"},
		{"rules = ( { name = \"r\"; type = \"invalid_recipients\"; limit = 1; window = \"1h\"; ratio = 1.0; } );",
		 "rules = ( { name = \"r\"; type = \"invalid_recipients\"; limit = 1; window = \"1h\"; ratio = 1.5; } );"},
		{"rules = ( { name = \"r\"; type = \"helo_rate\"; per = \"helo\"; act_on = \"key\"; limit = 1; window = \"1m\"; } );",
		 "rules = ( { name = \"r\"; type = \"helo_rate\"; per = \"network\"; act_on = \"key\"; limit = 1; window = \"1m\"; } );"},
		{"rules = ( { name = \"r\"; type = \"helo_rate\"; per = \"global\"; prefix4 = 16; limit = 1; window = \"1m\"; } );",
		 "rules = ( { name = \"r\"; type = \"helo_rate\"; per = \"global\"; act_on = \"key\"; prefix4 = 16; limit = 1; window = \"1m\"; } );"},
		{"rules = ( { name = \"r\"; type = \"helo_rate\"; per = \"helo\"; act_on = \"network\"; prefix6 = 48; limit = 1; window = \"1m\"; } );",
		 "rules = ( { name = \"r\"; type = \"helo_rate\"; per = \"helo\"; act_on = \"client\"; limit = 1; window = \"1m\"; } );"},
		{"ratio_session_cap = 1000;", "ratio_session_cap = 1001;"},
		{"ratio_session_cap = 1;", "ratio_session_cap = 0;"},
		{"rules = ( { name = \"r\"; type = \"mail_rate\"; limit = 1; window = \"366d\"; } );",
		 "rules = ( { name = \"r\"; type = \"mail_rate\"; limit = 1; window = \"367d\"; } );"},
	};

	for (size_t i = 0; i < FG_NELEM(t); i++) {
		struct diag d;
		struct fg_config *cfg = load_text(t[i].good, &d);
		ok(cfg != NULL, "accepted: %s", t[i].good);
		if (cfg == NULL)
			printf("# %s", d.text);
		fg_config_release(cfg);
		cfg = load_text(t[i].bad, &d);
		ok(cfg == NULL && d.errors == 1 &&
		   strncmp(d.text, "FILE:1: ", 8) == 0,
		   "refused with one file:line error: %s", t[i].bad);
		if (cfg != NULL || d.errors != 1)
			printf("# %s", d.text);
		fg_config_release(cfg);
	}
}

int
main(void)
{
	const char *src = getenv("FG_SOURCE_DIR");

	if (src == NULL)
		src = ".";
	test_example(src);
	test_defaults();
	test_shorthand();
	test_shared();
	test_golden(src);
	test_syntax_hints();
	test_durations();
	test_snapshots();
	test_every_bound();
	return tap_done();
}
