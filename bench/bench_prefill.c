/*
 * bench_prefill.c - fill a floodgate database with history, so that the
 * daemon can be benchmarked against a big database.
 *
 *   bench_prefill -c CONF -d DB [-n EVENTS] [-D DAYS] [-K]
 *
 * Opens (creating) DB through the store API with the horizon, retention,
 * flush interval and queue size of the configuration CONF, and records
 * EVENTS events (default 10000000) spread evenly over the last DAYS days
 * (default 7, at most the retention) up to now, each filed under the keys
 * floodgate itself would use for it under CONF (fg_policy_event_keys):
 * about 90 % sessions of legitimate clients (a pool of a million
 * addresses over 10.0.0.0/8, a fifth of them IPv6 from 2001:db8::/32,
 * one to three valid recipients) and 10 % dictionary attacks from /24s
 * of 100.64.0.0/10 (outside fgload's address ranges, so a benchmark's
 * own counts start from zero), tens of recipients, 19 in 20 unknown.
 * The counters of the last horizon are what the daemon rebuilds at
 * start; the rest is history in the events and counts tables.
 *
 * The producer slows down when the writer's queue is three quarters
 * full, so no row is dropped.  The store's writer prunes per-second
 * aggregate rows that fell out of the horizon only a batch at a time, and
 * simulated time runs far ahead of it; at the end the leftovers are
 * deleted at once (with SQL, as bench_store does), so the file looks like
 * one a daemon kept for DAYS in real time -- unless -K keeps them, which
 * leaves the daemon minutes of pruning after its start.  Prints what it
 * did and the file's size.  Run it from a build without sanitizers.
 */
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "fg.h"
#include "keys.h"
#include "log.h"
#include "net.h"
#include "policy.h"
#include "store.h"
#include "traffic.h"

#define DAY_MS INT64_C(86400000)

struct gen {
	uint64_t rng;
	uint64_t session;
	fg_addr addr;
	bool attacker;
	unsigned stage;    /* 0 connect, 1 helo, 2 mail, 3.. rcpt */
	unsigned rcpts;
	char helo[64];
	char sender[80];
	char rcpt[80];
};

static uint64_t
rnd(struct gen *g)
{
	uint64_t z = (g->rng += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static unsigned
rnd_below(struct gen *g, unsigned n)
{
	return (unsigned)(rnd(g) % n);
}

static void
new_session(struct gen *g)
{
	memset(&g->addr, 0, sizeof(g->addr));
	g->attacker = rnd_below(g, 10) == 0;
	if (g->attacker) {
		/* 100.65.0.0 - 100.127.255.0: 16128 /24s, 64 of them busy */
		unsigned net = 256 + rnd_below(g, 64) * 251;

		g->addr.family = FG_AF_INET;
		g->addr.bytes[0] = 100;
		g->addr.bytes[1] = (uint8_t)(64 + (net >> 8));
		g->addr.bytes[2] = (uint8_t)net;
		g->addr.bytes[3] = (uint8_t)(1 + rnd_below(g, 254));
		g->rcpts = 10 + rnd_below(g, 31);
		snprintf(g->helo, sizeof(g->helo), "ylmf-pc");
		snprintf(g->sender, sizeof(g->sender), "<info%u@example.com>",
		         rnd_below(g, 100000));
	} else {
		unsigned id = rnd_below(g, 1000000);

		traffic_client(&g->addr, id, 0x20);
		g->rcpts = 1 + rnd_below(g, 3);
		snprintf(g->helo, sizeof(g->helo), "mail%u.example.net",
		         id >> 8);
		snprintf(g->sender, sizeof(g->sender),
		         "<user%u@mail%u.example.net>", rnd_below(g, 1000),
		         id >> 8);
	}
	g->stage = 0;
	g->session++;
}

static void
usage(FILE *fp)
{
	fprintf(fp, "usage: bench_prefill -c CONF -d DB [-n EVENTS] "
	        "[-D DAYS] [-K]\n");
}

static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double
mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Deletes the aggregate rows the daemon would already have pruned. */
static void
prune_counts(const char *db, int64_t cutoff_sec)
{
	sqlite3 *h = NULL;
	sqlite3_stmt *st = NULL;
	double t0 = mono_s();
	int rc;

	rc = sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_busy_timeout(h, 10000);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(h, "DELETE FROM counts WHERE sec <= ?1",
		                        -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, cutoff_sec);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
	}
	if (rc == SQLITE_OK)
		printf("bench_prefill: deleted %d aggregate rows outside the "
		       "horizon in %.1f s\n", sqlite3_changes(h),
		       mono_s() - t0);
	else
		fprintf(stderr, "bench_prefill: warning: cannot prune the "
		        "counts table: %s\n", h != NULL ? sqlite3_errmsg(h)
		                                        : "out of memory");
	sqlite3_finalize(st);
	if (h != NULL)
		sqlite3_exec(h, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL,
		             NULL);
	sqlite3_close(h);
}

static void
diag(void *arg, bool is_warning, const char *line)
{
	(void)arg;
	(void)is_warning;
	fprintf(stderr, "%s\n", line);
}

int
main(int argc, char **argv)
{
	static const enum fg_stage stages[] = {
		FG_STAGE_CONNECT, FG_STAGE_HELO, FG_STAGE_MAIL, FG_STAGE_RCPT,
	};
	static const enum fg_event_kind kinds[] = {
		FG_EV_CONNECT, FG_EV_HELO, FG_EV_MAIL, FG_EV_RCPT,
	};
	const char *conf = NULL, *db = NULL;
	uint64_t n = 10000000;
	double days = 7;
	bool keep_counts = false;
	struct fg_config *cfg;
	struct fg_store_options so;
	struct fg_store_stats stats;
	struct gen g;
	fg_store *st;
	char err[512], *end;
	char keys[FG_STORE_MAX_KEYS][FG_KEY_MAX];
	const char *kp[FG_STORE_MAX_KEYS];
	char network[FG_KEY_MAX], status[8];
	int64_t now, start, span;
	double t0, secs;
	struct stat sb;
	int ch;

	while ((ch = getopt(argc, argv, "c:d:n:D:Kh")) != -1) {
		switch (ch) {
		case 'c':
			conf = optarg;
			break;
		case 'd':
			db = optarg;
			break;
		case 'n':
			n = strtoull(optarg, &end, 10);
			if (*end != '\0' || n == 0) {
				usage(stderr);
				return 2;
			}
			break;
		case 'D':
			days = strtod(optarg, &end);
			if (*end != '\0' || !(days > 0)) {
				usage(stderr);
				return 2;
			}
			break;
		case 'K':
			keep_counts = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (conf == NULL || db == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}
	if (fg_config_load(conf, &cfg, diag, NULL) != 0)
		return 1;
	fg_log_open("bench_prefill", true, FG_LOG_WARNING);

	now = wall_ms();
	span = (int64_t)(days * (double)DAY_MS);
	if (span > cfg->retention_ms - 60000)
		span = cfg->retention_ms - 60000;
	start = now - span;
	memset(&so, 0, sizeof(so));
	so.path = db;
	so.horizon_ms = cfg->horizon_ms;
	so.retention_ms = cfg->retention_ms;
	so.flush_interval_ms = cfg->flush_interval_ms;
	so.queue_size = (size_t)cfg->queue_size;
	so.file_mode = 0640;
	if (fg_store_open(&so, start, &st, err, sizeof(err)) != 0) {
		fprintf(stderr, "bench_prefill: %s: %s\n", db, err);
		return 1;
	}

	memset(&g, 0, sizeof(g));
	g.rng = 4242;
	t0 = mono_s();
	for (uint64_t i = 0; i < n; i++) {
		struct fg_facts f;
		struct fg_event ev;
		unsigned k;
		size_t nk;

		if (g.stage == 0 || g.stage >= 3 + g.rcpts)
			new_session(&g);
		k = g.stage < 3 ? g.stage : 3;
		memset(&f, 0, sizeof(f));
		f.stage = stages[k];
		f.client = &g.addr;
		f.helo = g.stage >= 1 ? g.helo : NULL;
		f.sender = g.stage >= 2 ? g.sender : NULL;
		memset(&ev, 0, sizeof(ev));
		ev.time_ms = start + (int64_t)((double)span * (double)i /
		                               (double)n);
		ev.kind = kinds[k];
		ev.client = &g.addr;
		ev.helo = f.helo;
		ev.sender = f.sender;
		ev.session_id = g.session;
		if (k == 3) {
			bool bad = g.attacker ? rnd_below(&g, 20) != 0
			                      : rnd_below(&g, 50) == 0;

			snprintf(g.rcpt, sizeof(g.rcpt), "<%s%u@example.org>",
			         bad ? "x" : "user", rnd_below(&g, 100000));
			f.rcpt = g.rcpt;
			f.rcpt_class = bad ? FG_RCPT_INVALID : FG_RCPT_VALID;
			ev.rcpt = g.rcpt;
			ev.rcpt_class = f.rcpt_class;
			snprintf(status, sizeof(status), "%s",
			         bad ? "5.1.1" : "2.1.5");
			ev.status = bad ? status : NULL;
		}
		nk = fg_policy_event_keys(cfg, &f, keys, FG_STORE_MAX_KEYS);
		for (size_t j = 0; j < nk; j++)
			kp[j] = keys[j];
		fg_policy_network_key(cfg, &g.addr, network);
		ev.network = network[0] != '\0' ? network : NULL;
		ev.keys = kp;
		ev.nkeys = nk;
		fg_store_record(st, &ev);
		g.stage++;
		traffic_pace(st, i, so.queue_size, ev.time_ms);
		if (i % 1000000 == 999999)
			fprintf(stderr, "bench_prefill: %" PRIu64 " events, "
			        "%.0f s\n", i + 1, mono_s() - t0);
	}
	while (fg_store_flush(st, 60000) != 0)
		;
	fg_store_get_stats(st, &stats);
	fg_store_close(st);
	if (!keep_counts)
		prune_counts(db, wall_ms() / 1000 - cfg->horizon_ms / 1000);
	secs = mono_s() - t0;
	if (stat(db, &sb) != 0)
		sb.st_size = 0;
	printf("bench_prefill: %" PRIu64 " events (%" PRIu64 " written, %"
	       PRIu64 " dropped, %" PRIu64 " sessions) over %.1f days in "
	       "%.1f s (%.0f events/s); %s is %.0f MB\n", n, stats.written,
	       stats.dropped, g.session, (double)span / DAY_MS, secs,
	       (double)n / secs, db, (double)sb.st_size / 1e6);
	fg_config_release(cfg);
	return stats.dropped == 0 ? 0 : 1;
}
