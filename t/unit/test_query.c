/*
 * test_query.c - the operator's verbs (lib/query.h) on a database file
 * the store wrote: recognising files (a foreign SQLite database, a text
 * file, a newer schema, a missing file), every report with injected
 * times, the bans as the running store sees them, pruning and vacuum.
 *
 * Files live in a fresh mkdtemp() directory under /tmp, removed at the
 * end.  A few rows are added with plain SQL where the store has no verb
 * for them (a schema bump, a foreign file).
 */
#include <dirent.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fg.h"
#include "keys.h"
#include "net.h"
#include "query.h"
#include "store.h"
#include "store_fixture.h"
#include "tap.h"

#define T0 INT64_C(1700000000000)   /* 2023-11-14 22:13:20 UTC */
#define MIN INT64_C(60000)
#define HOUR INT64_C(3600000)

static int
sql(const char *path, const char *text)
{
	sqlite3 *db = NULL;
	int rc = sqlite3_open(path, &db);

	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, text, NULL, NULL, NULL);
	sqlite3_close(db);
	return rc;
}

static void
copy_file(const char *from, const char *to)
{
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	char buf[8192];
	size_t n;

	while (in != NULL && out != NULL && (n = fread(buf, 1, sizeof(buf), in)) > 0)
		fwrite(buf, 1, n, out);
	if (in != NULL)
		fclose(in);
	if (out != NULL)
		fclose(out);
}

/* ---- a small history, written by the store ------------------------------ */

struct client {
	const char *addr, *net, *helo;
};

static const struct client attacker1 = {"192.0.2.10", "192.0.2.0/24",
                                        "Attacker.Example"};
static const struct client attacker2 = {"192.0.2.11", "192.0.2.0/24",
                                        "attacker.example"};
static const struct client good = {"198.51.100.7", "198.51.100.0/24",
                                   "mx.good.example"};

static void
event(fg_store *st, const struct client *c, uint64_t session, int64_t t,
      enum fg_event_kind kind, enum fg_rcpt_class cls, const char *rcpt)
{
	fg_addr a;
	char k[3][FG_KEY_MAX];
	const char *keys[3];
	struct fg_event ev;

	fg_addr_parse(c->addr, &a);
	keys[0] = fg_key_address(k[0], &a);
	keys[1] = fg_key_network(k[1], &a, 24);
	keys[2] = fg_key_helo(k[2], c->helo);
	memset(&ev, 0, sizeof(ev));
	ev.time_ms = t;
	ev.kind = kind;
	ev.rcpt_class = cls;
	ev.client = &a;
	ev.network = c->net;
	ev.helo = kind == FG_EV_CONNECT ? NULL : c->helo;
	ev.sender = kind >= FG_EV_MAIL ? "<x@sender.example>" : NULL;
	ev.rcpt = rcpt;
	ev.status = cls == FG_RCPT_INVALID ? "5.1.1" : NULL;
	ev.session_id = session;
	ev.keys = keys;
	ev.nkeys = kind == FG_EV_CONNECT ? 2 : 3;
	fg_store_record(st, &ev);
}

static void
verdict(fg_store *st, const struct client *c, uint64_t session, int64_t t,
        const char *rule, const char *key, const char *action,
        const char *reply, bool monitor)
{
	fg_addr a;
	struct fg_verdict_rec v;

	fg_addr_parse(c->addr, &a);
	memset(&v, 0, sizeof(v));
	v.time_ms = t;
	v.session_id = session;
	v.client = &a;
	v.stage = "rcpt";
	v.rule = rule;
	v.key = key;
	v.action = action;
	v.count = 6;
	v.limit = 5;
	v.window_ms = HOUR;
	v.reply = reply;
	v.monitor = monitor;
	fg_store_record_verdict(st, &v);
}

/* Attacker 1 at T0: 4 unknown users; attacker 2 at T0+1m: 3 unknown, of
 * a second domain; a good client at T0+2m: 2 valid; all within an hour
 * and one event of attacker 1 two hours before. */
static void
write_history(const char *path)
{
	struct fg_store_options o = {.path = path, .horizon_ms = 24 * HOUR};
	char err[256];
	fg_store *st = NULL;
	int rc = fg_store_open(&o, T0, &st, err, sizeof(err));

	ok(rc == 0, "the store creates the database (%s)", rc ? err : "ok");
	if (rc != 0)
		exit(1);
	event(st, &attacker1, 1, T0 - 2 * HOUR, FG_EV_CONNECT, FG_RCPT_NONE, NULL);
	event(st, &attacker1, 2, T0, FG_EV_CONNECT, FG_RCPT_NONE, NULL);
	event(st, &attacker1, 2, T0 + 10, FG_EV_HELO, FG_RCPT_NONE, NULL);
	event(st, &attacker1, 2, T0 + 20, FG_EV_MAIL, FG_RCPT_NONE, NULL);
	for (int i = 0; i < 4; i++)
		event(st, &attacker1, 2, T0 + 30 + i, FG_EV_RCPT, FG_RCPT_INVALID,
		      "<u@Example.ORG>");
	verdict(st, &attacker1, 2, T0 + 33, "bad-rcpt", "session", "delay",
	        NULL, false);
	event(st, &attacker2, 3, T0 + MIN, FG_EV_CONNECT, FG_RCPT_NONE, NULL);
	event(st, &attacker2, 3, T0 + MIN + 10, FG_EV_HELO, FG_RCPT_NONE, NULL);
	event(st, &attacker2, 3, T0 + MIN + 20, FG_EV_MAIL, FG_RCPT_NONE, NULL);
	for (int i = 0; i < 3; i++)
		event(st, &attacker2, 3, T0 + MIN + 30 + i, FG_EV_RCPT,
		      FG_RCPT_INVALID, "<v@other.example>");
	verdict(st, &attacker2, 3, T0 + MIN + 31, "dictionary", "192.0.2.0/24",
	        "delay", "451 4.7.1 Too many", false);
	verdict(st, &attacker2, 3, T0 + MIN + 32, "dictionary", "192.0.2.0/24",
	        "tempfail", "451 4.7.1 Too many", false);
	verdict(st, &attacker2, 3, T0 + MIN + 32, "watch", "*", "continue",
	        NULL, true);
	event(st, &good, 4, T0 + 2 * MIN, FG_EV_CONNECT, FG_RCPT_NONE, NULL);
	event(st, &good, 4, T0 + 2 * MIN + 10, FG_EV_HELO, FG_RCPT_NONE, NULL);
	event(st, &good, 4, T0 + 2 * MIN + 20, FG_EV_MAIL, FG_RCPT_NONE, NULL);
	event(st, &good, 4, T0 + 2 * MIN + 30, FG_EV_RCPT, FG_RCPT_VALID,
	      "<alice@example.org>");
	event(st, &good, 4, T0 + 2 * MIN + 40, FG_EV_RCPT, FG_RCPT_VALID,
	      "<bob@example.org>");
	fg_store_level_set(st, "dictionary", "192.0.2.0/24", 1, T0 + MIN + 32);
	fg_store_ban_set(st, "192.0.2.0/24", T0 + HOUR, "rule dictionary",
	                 "floodgate:dictionary", T0 + MIN + 32);
	fg_store_close(st);
}

/* ---- recognising files ----------------------------------------------------- */

static void
test_open(const char *db)
{
	char err[600];
	fg_query *q = NULL;
	int rc;

	rc = fg_query_open(in_dir("missing.db"), FG_QUERY_READ, &q, err,
	                   sizeof(err));
	is_int(rc, FG_ENOENT, "a missing file is FG_ENOENT");
	ok(q == NULL, "and gives no handle");

	sql(in_dir("foreign.db"), "CREATE TABLE t (x); INSERT INTO t VALUES (1)");
	rc = fg_query_open(in_dir("foreign.db"), FG_QUERY_READ, &q, err,
	                   sizeof(err));
	is_int(rc, FG_ESCHEMA, "a foreign SQLite database is refused");
	ok(strstr(err, "not a floodgate database") != NULL,
	   "... saying so: %.200s", err);
	sql(in_dir("foreign.db"), "PRAGMA application_id = 1234");
	rc = fg_query_open(in_dir("foreign.db"), FG_QUERY_WRITE, &q, err,
	                   sizeof(err));
	is_int(rc, FG_ESCHEMA, "also for writing, with another application id");
	ok(strstr(err, "application_id 1234") != NULL, "... naming it: %.200s", err);

	FILE *fp = fopen(in_dir("text.db"), "w");
	fputs("this is not a database at all, just some text\n", fp);
	fclose(fp);
	rc = fg_query_open(in_dir("text.db"), FG_QUERY_READ, &q, err,
	                   sizeof(err));
	is_int(rc, FG_ESCHEMA, "a text file is refused");
	ok(strstr(err, "not a SQLite database") != NULL, "... saying so: %.200s",
	   err);

	fclose(fopen(in_dir("empty.db"), "w"));
	rc = fg_query_open(in_dir("empty.db"), FG_QUERY_READ, &q, err,
	                   sizeof(err));
	is_int(rc, FG_ESCHEMA, "an empty file is not initialised, but refused");

	rc = fg_query_open(dir, FG_QUERY_READ, &q, err, sizeof(err));
	is_int(rc, FG_ESCHEMA, "a directory is refused");

	/* A newer schema: the same file, one version up. */
	copy_file(db, in_dir("newer.db"));
	sql(in_dir("newer.db"), "PRAGMA user_version = 99");
	rc = fg_query_open(in_dir("newer.db"), FG_QUERY_READ, &q, err,
	                   sizeof(err));
	is_int(rc, FG_ESCHEMA, "a newer schema is refused");
	ok(strstr(err, "schema version 99 is newer") != NULL,
	   "... saying so: %.200s", err);

	/* An older one: the daemon migrates it, the tool does not. */
	copy_file(db, in_dir("older.db"));
	sql(in_dir("older.db"), "PRAGMA user_version = 1");
	rc = fg_query_open(in_dir("older.db"), FG_QUERY_READ, &q, err,
	                   sizeof(err));
	is_int(rc, FG_ESCHEMA, "an older schema is refused");
	ok(strstr(err, "schema version 1 is older") != NULL &&
	   strstr(err, "migrate") != NULL, "... saying what to do: %.200s",
	   err);

	rc = fg_query_open(db, FG_QUERY_READ, &q, err, sizeof(err));
	is_int(rc, 0, "the store's own database is recognised");
	fg_query_close(q);
}

/* ---- the file ------------------------------------------------------------- */

static void
test_info(fg_query *q)
{
	struct fg_query_info in;
	int rc = fg_query_info(q, &in);

	is_int(rc, 0, "info");
	is_int(in.application_id, 0x666c6764, "application id is flgd");
	is_int(in.schema_version, FG_QUERY_SCHEMA_VERSION, "schema version");
	is_str(in.journal_mode, "wal", "journal mode is WAL");
	is_int(in.events, 19, "19 events");
	is_int(in.verdicts, 4, "4 verdicts");
	is_int(in.bans, 1, "1 ban");
	is_int(in.levels, 1, "1 level");
	is_int(in.oldest_ms, T0 - 2 * HOUR, "oldest event");
	is_int(in.newest_ms, T0 + 2 * MIN + 40, "newest event");
	is_int(fg_query_check(q, 10, NULL, NULL), 1, "integrity check says ok");
}

/* ---- top ------------------------------------------------------------------ */

static void
test_top(fg_query *q)
{
	int64_t now = T0 + 10 * MIN;
	struct fg_offender *o;
	size_t n;
	int rc;

	rc = fg_query_top(q, FG_BY_NETWORK, FG_KIND_INVALID, now - HOUR, now,
	                  10, &o, &n);
	is_int(rc, 0, "top by network");
	is_int(n, 1, "one network gave unknown users");
	if (n >= 1) {
		is_str(o[0].key, "192.0.2.0/24", "the attacking /24 first");
		is_int(o[0].hits, 7, "7 unknown recipients");
		is_int(o[0].invalid, 7, "invalid column");
		is_int(o[0].rcpts, 7, "7 recipients");
		is_int(o[0].connects, 2, "2 connections in the last hour");
		ok(o[0].invalid_ratio > 0.99, "ratio 1");
		is_int(o[0].first_ms, T0, "first seen");
		is_int(o[0].last_ms, T0 + MIN + 32, "last seen");
		ok(o[0].banned, "its ban is shown");
		is_str(o[0].ban.source, "floodgate:dictionary", "ban source");
		is_int(o[0].ban.until_ms, T0 + HOUR, "ban end");
	}
	fg_query_free(o);

	rc = fg_query_top(q, FG_BY_NETWORK, FG_KIND_CONNECT, now - 3 * HOUR,
	                  now, 10, &o, &n);
	is_int(rc == 0 ? n : 0, 2, "by connections over 3 h: two networks");
	if (n == 2) {
		is_str(o[0].key, "192.0.2.0/24", "most connections first");
		is_int(o[0].hits, 3, "3 connections including the old one");
		is_str(o[1].key, "198.51.100.0/24", "then the good network");
		ok(!o[1].banned, "which is not banned");
	}
	fg_query_free(o);

	rc = fg_query_top(q, FG_BY_ADDRESS, FG_KIND_RCPT, now - HOUR, now, 2,
	                  &o, &n);
	is_int(rc == 0 ? n : 0, 2, "by address, all recipients, limit 2");
	if (n == 2) {
		is_str(o[0].key, "192.0.2.10", "most recipients first");
		is_int(o[0].hits, 4, "4 recipients");
		is_str(o[1].key, "192.0.2.11", "then 3 (the good one has 2)");
	}
	fg_query_free(o);

	rc = fg_query_top(q, FG_BY_HELO, FG_KIND_INVALID, now - HOUR, now, 10,
	                  &o, &n);
	is_int(rc == 0 ? n : 0, 1, "by HELO: both attackers' names are one key");
	if (n == 1) {
		is_str(o[0].key, "helo:attacker.example", "lower-cased helo key");
		is_int(o[0].hits, 7, "7 unknown recipients");
	}
	fg_query_free(o);

	rc = fg_query_top(q, FG_BY_DOMAIN, FG_KIND_RCPT, now - HOUR, now, 10,
	                  &o, &n);
	is_int(rc == 0 ? n : 0, 2, "by recipient domain");
	if (n == 2) {
		is_str(o[0].key, "rcpt-domain:example.org", "example.org first");
		is_int(o[0].hits, 6, "6 recipients (4 unknown, 2 valid)");
		is_int(o[0].invalid, 4, "4 unknown");
		ok(o[0].invalid_ratio > 0.66 && o[0].invalid_ratio < 0.67,
		   "ratio 2/3");
		is_str(o[1].key, "rcpt-domain:other.example", "then other");
	}
	fg_query_free(o);

	rc = fg_query_top(q, FG_BY_NETWORK, FG_KIND_INVALID, now, now + HOUR,
	                  10, &o, &n);
	is_int(rc == 0 ? n : 99, 0, "nothing after now");
	fg_query_free(o);
}

/* ---- counts, levels, names -------------------------------------------------- */

static void
collect(void *arg, const char *key, int64_t n)
{
	char *buf = arg;
	size_t len = strlen(buf);

	snprintf(buf + len, 256 - len, "%s%s=%" PRId64, len ? " " : "", key, n);
}

static void
test_counts(fg_query *q)
{
	int64_t now = T0 + 2 * MIN + 40;
	char names[256] = "";
	int level = -1;
	int64_t last = 0;

	is_int(fg_query_count(q, "192.0.2.0/24", FG_CNT_RCPT_INVALID, HOUR, now),
	       7, "count: 7 invalid under the /24 in the hour");
	is_int(fg_query_count(q, "192.0.2.0/24", FG_CNT_CONNECT, HOUR, now), 2,
	       "2 connections in the hour");
	is_int(fg_query_count(q, "192.0.2.0/24", FG_CNT_CONNECT, 3 * HOUR, now),
	       3, "3 in three hours");
	is_int(fg_query_count(q, "192.0.2.11", FG_CNT_RCPT_INVALID, MIN, now),
	       0, "the window slides: none in the last minute");
	/* One-second resolution: the events of second s0+60 are in a window
	 * of W seconds at second s0+120 when s0+60 > s0+120-W. */
	is_int(fg_query_count(q, "192.0.2.11", FG_CNT_RCPT_INVALID,
	                      61 * 1000, now), 3, "61 s back covers them");
	is_int(fg_query_count(q, "192.0.2.11", FG_CNT_RCPT_INVALID,
	                      60 * 1000, now + 999), 0,
	       "60 s back does not, whatever the ms");
	is_int(fg_query_count(q, "helo:mx.good.example", FG_CNT_RCPT_VALID,
	                      HOUR, now), 2, "valid recipients by HELO key");
	is_int(fg_query_count(q, "nobody", FG_CNT_RCPT, HOUR, now), 0,
	       "an unknown key counts 0");

	is_int(fg_query_level_get(q, "dictionary", "192.0.2.0/24", &level,
	                          &last), 1, "level found");
	is_int(level, 1, "level 1");
	is_int(last, T0 + MIN + 32, "last raised");
	is_int(fg_query_level_get(q, "dictionary", "198.51.100.0/24", &level,
	                          &last), 0, "no level for the good network");

	is_int(fg_query_client_keys(q, "192.0.2.10", FG_NAME_HELO, T0 - HOUR,
	                            now, 5, collect, names), 0, "HELO names");
	is_str(names, "helo:attacker.example=6", "as keys, with counts");
	names[0] = '\0';
	fg_query_client_keys(q, "192.0.2.11", FG_NAME_RCPT_DOMAIN, T0 - HOUR,
	                     now, 5, collect, names);
	is_str(names, "rcpt-domain:other.example=3", "recipient domains");
	names[0] = '\0';
	fg_query_client_keys(q, "198.51.100.7", FG_NAME_SENDER_DOMAIN,
	                     T0 - HOUR, now, 5, collect, names);
	is_str(names, "sender-domain:sender.example=1", "sender domains");
}

/* ---- bans ----------------------------------------------------------------- */

static void
test_bans(const char *db)
{
	int64_t now = T0 + 5 * MIN;
	struct fg_ban_entry *b;
	struct fg_ban ban;
	fg_query *r = NULL, *w = NULL;
	char err[600];
	size_t n;

	fg_query_open(db, FG_QUERY_READ, &r, err, sizeof(err));
	is_int(fg_query_ban_set(r, "192.0.2.7", now + HOUR, "x", "t", now),
	       FG_EINVAL, "a read-only handle does not ban");
	ok(strstr(fg_query_error(r, err, sizeof(err)), "for writing") != NULL,
	   "... and says why: %.200s", err);
	is_int(fg_query_open(db, FG_QUERY_WRITE, &w, err, sizeof(err)), 0,
	       "open for writing");
	is_int(fg_query_ban_set(w, "192.0.2", now + HOUR, "x", "t", now),
	       FG_EINVAL, "a key not in canonical form is refused");
	is_int(fg_query_ban_set(w, "not a key", now + HOUR, "x", "t", now),
	       FG_EINVAL, "so is garbage");
	is_int(fg_query_ban_set(w, "192.0.2.7", now, "x", "t", now), FG_ERANGE,
	       "a ban ending now is refused");
	is_int(fg_query_ban_set(w, "192.0.2.7", now + 2 * HOUR, "by hand",
	                        "floodgatectl", now), 0, "ban an address");
	is_int(fg_query_ban_set(w, "2001:db8::/64", now + MIN, "v6", "floodgatectl",
	                        now), 0, "ban an IPv6 network");
	is_int(fg_query_ban_get(r, "192.0.2.7", now, &ban), 1,
	       "another handle sees it");
	is_str(ban.reason, "by hand", "reason");
	is_str(ban.source, "floodgatectl", "source");
	is_int(ban.created_ms, now, "created now");
	is_int(fg_query_ban_get(r, "192.0.2.7", now + 2 * HOUR, &ban), 0,
	       "a ban that ran out is not in force");

	is_int(fg_query_bans(r, now, &b, &n), 0, "list the bans");
	is_int(n, 3, "three in force");
	if (n == 3) {
		is_str(b[0].key, "192.0.2.7", "longest first");
		is_str(b[1].key, "192.0.2.0/24", "then the rule's");
		is_str(b[2].key, "2001:db8::/64", "then the shortest");
	}
	fg_query_free(b);
	is_int(fg_query_bans(r, now + 2 * MIN, &b, &n), 0, "later");
	is_int(n, 2, "the short one ran out");
	fg_query_free(b);

	is_int(fg_query_ban_lift(w, "192.0.2.7", now), 1, "lift: was in force");
	is_int(fg_query_ban_lift(w, "192.0.2.7", now), 0, "lift again: was not");
	is_int(fg_query_ban_lift(w, "2001:db8::/64", now + HOUR), 0,
	       "lifting a ban that ran out reports 0");
	is_int(fg_query_ban_get(r, "2001:db8::/64", now, NULL), 0,
	       "but removes it");
	fg_query_close(r);
	fg_query_close(w);
}

/* The running store picks up what floodgatectl writes. */
static void
test_live_bans(void)
{
	struct fg_store_options o = {.path = in_dir("live.db"),
	                             .horizon_ms = HOUR};
	int64_t now = T0;
	fg_store *st = NULL;
	fg_query *w = NULL;
	char err[600];
	int got = 0;

	if (fg_store_open(&o, now, &st, err, sizeof(err)) != 0) {
		ok(0, "open live store: %.200s", err);
		return;
	}
	is_int(fg_query_open(in_dir("live.db"), FG_QUERY_WRITE, &w, err,
	                     sizeof(err)), 0, "open the live database beside it");
	is_int(fg_query_ban_set(w, "203.0.113.0/24", now + HOUR, "test",
	                        "floodgatectl", now), 0, "ban while it runs");
	for (int i = 0; i < 60 && got != 1; i++) {
		sleep_ms(50);
		got = fg_store_ban_get(st, "203.0.113.0/24", now, NULL);
	}
	is_int(got, 1, "the store sees the ban within 3 s");
	is_int(fg_query_ban_lift(w, "203.0.113.0/24", now), 1, "lift it");
	for (int i = 0; i < 60 && got != 0; i++) {
		sleep_ms(50);
		got = fg_store_ban_get(st, "203.0.113.0/24", now, NULL);
	}
	is_int(got, 0, "the store drops it within 3 s");
	fg_query_close(w);
	fg_store_close(st);
}

/* ---- statistics -------------------------------------------------------------- */

static void
test_stats(fg_query *q)
{
	struct fg_stats s;
	int64_t now = T0 + 10 * MIN;

	is_int(fg_query_stats(q, now - 3 * HOUR, now, &s), 0, "stats");
	is_int(s.events, 19, "all events");
	is_int(s.counts[FG_CNT_CONNECT], 4, "connects");
	is_int(s.counts[FG_CNT_HELO], 3, "helos");
	is_int(s.counts[FG_CNT_RCPT], 9, "recipients");
	is_int(s.counts[FG_CNT_RCPT_INVALID], 7, "invalid");
	is_int(s.counts[FG_CNT_RCPT_VALID], 2, "valid");
	is_int(s.sessions, 4, "sessions");
	is_int(s.clients, 3, "clients");
	is_int(s.networks, 2, "networks");
	is_int(s.verdicts, 4, "verdicts");
	is_int(s.monitor, 1, "one monitor verdict");
	is_int(s.refused, 2, "refusals: tempfail and delay with a reply");
	is_int(s.delayed, 2, "two delays");
	is_int(s.nactions, 3, "three actions");
	if (s.nactions == 3) {
		is_str(s.actions[0].name, "delay", "delay most often");
		is_int(s.actions[0].n, 2, "twice");
	}
	is_int(s.nrules, 3, "three rules");
	if (s.nrules >= 1) {
		is_str(s.rules[0].name, "dictionary", "dictionary first");
		is_int(s.rules[0].n, 2, "twice");
	}
	is_int(s.nhours, 4, "four hours on the timeline");
	if (s.nhours == 4) {
		int64_t h0 = (now - 3 * HOUR + 1) / HOUR * HOUR;
		size_t at = (size_t)((T0 - h0) / HOUR);

		is_int(s.hours[0].hour_ms, h0, "starts at the hour");
		is_int(s.hours[at].invalid, 7, "the unknown users in their hour");
		is_int(s.hours[at].refused, 2, "the refusals in their hour");
		is_int(s.hours[0].invalid + s.hours[0].refused, 0,
		       "an empty hour");
	}
	fg_query_stats_free(&s);
	is_int(fg_query_stats(q, now, now - 1, &s), FG_EINVAL,
	       "a period ending before it starts is refused");
}

/* ---- history ---------------------------------------------------------------- */

struct walk {
	int n, ends, stop_at;
	int64_t last_t;
	bool ordered, fields;
	uint64_t last_session;
};

static int
on_event(void *arg, const struct fg_stored_event *ev)
{
	struct walk *w = arg;

	w->n++;
	if (ev->time_ms < w->last_t)
		w->ordered = false;
	w->last_t = ev->time_ms;
	if (ev->session_ends)
		w->ends++;
	if (ev->session_id == 2 && ev->kind == FG_EV_RCPT &&
	    (ev->rcpt_class != FG_RCPT_INVALID || ev->rcpt == NULL ||
	     strcmp(ev->rcpt, "u@Example.ORG") != 0 || ev->status == NULL ||
	     strcmp(ev->helo, "Attacker.Example") != 0))
		w->fields = false;
	if (ev->kind == FG_EV_CONNECT && (ev->helo != NULL || ev->sender))
		w->fields = false;
	if (ev->session_ends && ev->session_id == 4 &&
	    ev->time_ms != T0 + 2 * MIN + 40)
		w->fields = false;
	return w->stop_at != 0 && w->n == w->stop_at ? 7 : 0;
}

static int
on_verdict(void *arg, const struct fg_stored_verdict *v)
{
	char *buf = arg;
	size_t len = strlen(buf);

	snprintf(buf + len, 512 - len, "%s%s/%s/%s%s", len ? " " : "",
	         v->rule, v->key, v->action, v->monitor ? "(m)" : "");
	return 0;
}

static void
test_history(fg_query *q)
{
	struct walk w = {0, 0, 0, 0, true, true, 0};
	char list[512] = "";

	is_int(fg_query_events(q, T0 - HOUR, T0 + HOUR, on_event, &w), 0,
	       "walk the events of two hours");
	is_int(w.n, 18, "18 of them (the old connect is outside)");
	ok(w.ordered, "in time order");
	is_int(w.ends, 3, "three sessions end");
	ok(w.fields, "fields as stored, NULL where NULL");
	w = (struct walk){0, 0, 5, 0, true, true, 0};
	is_int(fg_query_events(q, T0 - HOUR, T0 + HOUR, on_event, &w), 7,
	       "a callback's non-zero stops the walk and is returned");
	is_int(w.n, 5, "after five");

	is_int(fg_query_verdicts(q, NULL, T0 - HOUR, T0 + HOUR, 0, on_verdict,
	                         list), 0, "verdicts in time order");
	is_str(list, "bad-rcpt/session/delay dictionary/192.0.2.0/24/delay "
	       "dictionary/192.0.2.0/24/tempfail watch/*/continue(m)",
	       "all four");
	list[0] = '\0';
	fg_query_verdicts(q, "192.0.2.11", 0, T0 + HOUR, 2, on_verdict, list);
	is_str(list, "watch/*/continue(m) dictionary/192.0.2.0/24/tempfail",
	       "one client's, newest first, limited");

	/* One snapshot across statements. */
	is_int(fg_query_begin(q), 0, "begin a snapshot");
	/* As in the store, a later second counts as now. */
	is_int(fg_query_count(q, "192.0.2.0/24", FG_CNT_CONNECT, HOUR, T0), 2,
	       "a count inside it");
	fg_query_end(q);
}

/* ---- prune and vacuum ----------------------------------------------------------- */

static void
test_prune(const char *db)
{
	fg_query *w = NULL;
	int64_t ne = -1, nv = -1, before = 0, after = 0;
	char err[600];
	struct fg_query_info in;

	fg_query_open(db, FG_QUERY_READ, &w, err, sizeof(err));
	is_int(fg_query_prune(w, T0, &ne, &nv), FG_EINVAL,
	       "prune needs a writable handle");
	fg_query_close(w);
	fg_query_open(db, FG_QUERY_WRITE, &w, err, sizeof(err));
	is_int(fg_query_prune(w, T0 + 30 * 1000, &ne, &nv), 0, "prune");
	is_int(ne, 8, "the old connect and attacker 1's session went");
	is_int(nv, 1, "and its verdict");
	is_int(fg_query_vacuum(w, &before, &after), 0, "vacuum");
	ok(before > 0 && after > 0 && after <= before, "sizes %" PRId64
	   " -> %" PRId64, before, after);
	fg_query_info(w, &in);
	is_int(in.events, 11, "11 events left");
	is_int(fg_query_check(w, 10, NULL, NULL), 1, "still sound");
	fg_query_close(w);
}

int
main(void)
{
	char err[600];
	fg_query *q = NULL;
	char db[256];

	if (fixture_dir_make("fg-query") < 0)
		return 1;
	/* in_dir() reuses its buffers: keep our own copy. */
	snprintf(db, sizeof(db), "%s", in_dir("fg.db"));
	write_history(db);
	test_open(db);
	if (fg_query_open(db, FG_QUERY_READ, &q, err, sizeof(err)) != 0) {
		ok(0, "open: %.200s", err);
		fixture_dir_remove();
		return tap_done();
	}
	test_info(q);
	test_top(q);
	test_counts(q);
	test_stats(q);
	test_history(q);
	fg_query_close(q);
	test_bans(db);
	test_live_bans();
	test_prune(db);
	fixture_dir_remove();
	return tap_done();
}
