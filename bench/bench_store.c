/*
 * bench_store.c - how fast the event store ingests, counts and restarts.
 *
 *   bench_store [-L] [-n events] [-M] [-d dir]
 *
 * For 100k and 1M stored events (and 10M with -L; just the given number
 * with -n) it fills a fresh
 * database in a temporary directory under dir (default /tmp) with
 * realistic attack traffic: a few attacking networks (/24s and one /64)
 * running dictionary attacks (tens of recipients a session, ~95% unknown)
 * among many legitimate clients (one to three good recipients), about 20
 * events a second of simulated time, each filed under the client address,
 * its network and the global key.  It prints:
 *
 *   ingest   events/s from the first record to the last commit (the
 *            producer slows down when the queue is 3/4 full, so nothing
 *            is dropped), and the record calls alone
 *   count    p50/p99 latency of fg_store_count for a hot attacker network
 *            (a sample every second of the hour), the global key over 24 h,
 *            and a cold key (one legitimate client), idle and while another
 *            thread records ~20000 events/s
 *   restart  fg_store_open on the closed database: rebuild of counters,
 *            levels and bans from the counts table
 *
 * and finally (unless -M) the memory a flood of 1M distinct keys with one
 * or two events each costs.  Run it from a build without sanitizers.
 */
#include <dirent.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fg.h"
#include "log.h"
#include "net.h"
#include "store.h"
#include "traffic.h"

#define T_START INT64_C(1700000000000)
#define HOUR INT64_C(3600000)
#define DAY (24 * HOUR)
#define QUEUE 65536
#define SAMPLES 200000
#define SAMPLES_LOADED 3000000

static char basedir[200] = "/tmp";

static int64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
sleep_us(int us)
{
	struct timespec ts = {0, (long)us * 1000L};

	nanosleep(&ts, NULL);
}

/* The traffic generator: sessions of connect, helo, mail, recipients. */
static const char *const attack_nets[] = {
	"203.0.113.0/24", "198.51.100.0/24", "192.0.2.0/24",
	"100.64.1.0/24", "2001:db8:bad::/64",
};

struct gen {
	uint64_t rng;
	int64_t t;
	int legit_pool;
	/* the current session */
	fg_addr addr;
	char client[FG_ADDR_STRLEN];
	char net[FG_PREFIX_STRLEN];
	bool attacker;
	int stage;      /* 0 connect, 1 helo, 2 mail, 3.. rcpt */
	int rcpts;
	uint64_t session;
	char rcpt[64];
	const char *keys[3];
	struct fg_event ev;
};

static uint32_t
rnd(struct gen *g, uint32_t n)
{
	g->rng = g->rng * UINT64_C(6364136223846793005) +
	         UINT64_C(1442695040888963407);
	return (uint32_t)(g->rng >> 33) % n;
}

static void
new_session(struct gen *g)
{
	fg_prefix p;

	memset(&g->addr, 0, sizeof(g->addr));
	g->attacker = rnd(g, 10) == 0;
	if (g->attacker) {
		const char *net = attack_nets[rnd(g, FG_NELEM(attack_nets))];

		fg_prefix_parse(net, &p);
		g->addr = p.addr;
		if (g->addr.family == FG_AF_INET) {
			g->addr.bytes[3] = (uint8_t)(1 + rnd(g, 254));
		} else {
			g->addr.bytes[14] = (uint8_t)rnd(g, 256);
			g->addr.bytes[15] = (uint8_t)rnd(g, 256);
		}
		g->rcpts = 10 + (int)rnd(g, 31);
	} else {
		uint32_t id = rnd(g, (uint32_t)g->legit_pool);

		traffic_client(&g->addr, id, 0x10);
		g->rcpts = 1 + (int)rnd(g, 3);
	}
	fg_addr_format(&g->addr, g->client, sizeof(g->client));
	fg_prefix_of(&g->addr, g->addr.family == FG_AF_INET ? 24 : 64, &p);
	fg_prefix_format(&p, g->net, sizeof(g->net));
	g->stage = 0;
	g->session++;
}

static const struct fg_event *
gen_next(struct gen *g)
{
	static const enum fg_event_kind kinds[] = {FG_EV_CONNECT, FG_EV_HELO,
	                                           FG_EV_MAIL};

	if (g->stage == 0 || g->stage >= 3 + g->rcpts)
		new_session(g);
	g->t += rnd(g, 100); /* ~20 events a second */
	memset(&g->ev, 0, sizeof(g->ev));
	g->ev.time_ms = g->t;
	g->ev.client = &g->addr;
	g->ev.network = g->net;
	g->ev.session_id = g->session;
	g->ev.helo = g->attacker ? "ylmf-pc" : "mail.example.net";
	g->keys[0] = g->client;
	g->keys[1] = g->net;
	g->keys[2] = "*";
	g->ev.keys = g->keys;
	g->ev.nkeys = 3;
	if (g->stage < 3) {
		g->ev.kind = kinds[g->stage];
	} else {
		g->ev.kind = FG_EV_RCPT;
		snprintf(g->rcpt, sizeof(g->rcpt), "<user%u@example.org>",
		         rnd(g, 100000));
		g->ev.rcpt = g->rcpt;
		g->ev.sender = "<bounce@example.net>";
		if (g->attacker)
			g->ev.rcpt_class = rnd(g, 20) ? FG_RCPT_INVALID
			                              : FG_RCPT_VALID;
		else
			g->ev.rcpt_class = rnd(g, 50) ? FG_RCPT_VALID
			                              : FG_RCPT_INVALID;
		g->ev.status = g->ev.rcpt_class == FG_RCPT_INVALID ? "5.1.1"
		                                                   : "2.1.5";
	}
	g->stage++;
	return &g->ev;
}

static int64_t
q_int(sqlite3 *db, const char *sql, int64_t arg)
{
	sqlite3_stmt *s;
	int64_t v = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_bind_parameter_count(s) > 0)
		sqlite3_bind_int64(s, 1, arg);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

/* The floor for a rebuild: reading the rows and nothing else. */
static double
scan_counts(sqlite3 *db, int64_t cutoff)
{
	sqlite3_stmt *s;
	int64_t t0 = mono_ns(), sum = 0;

	if (sqlite3_prepare_v2(db, "SELECT key, sec, connect, helo, mail,"
	                       " rcpt, valid, invalid, rejected FROM counts"
	                       " WHERE sec > ? ORDER BY sec", -1, &s,
	                       NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(s, 1, cutoff);
	while (sqlite3_step(s) == SQLITE_ROW)
		for (int i = 0; i < 9; i++)
			sum += i == 0 ? sqlite3_column_bytes(s, 0)
			              : sqlite3_column_int64(s, i);
	sqlite3_finalize(s);
	return sum == 0 ? 0 : (double)(mono_ns() - t0) / 1e9;
}

static fg_store *
open_store(const char *path, int64_t now, double *secs)
{
	struct fg_store_options o = {
		.path = path,
		.horizon_ms = DAY,
		.retention_ms = 7 * DAY,
		.flush_interval_ms = 1000,
		.queue_size = QUEUE,
	};
	fg_store *st = NULL;
	char err[256];
	int64_t t0 = mono_ns();

	if (fg_store_open(&o, now, &st, err, sizeof(err)) != 0) {
		fprintf(stderr, "bench_store: %s\n", err);
		exit(1);
	}
	if (secs != NULL)
		*secs = (double)(mono_ns() - t0) / 1e9;
	return st;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

struct lat {
	int64_t p50, p99, max;
};

static struct lat
measure(fg_store *st, const char *key, enum fg_counter c, int64_t window,
        int64_t now, int64_t *buf, int n)
{
	struct lat l;
	volatile int64_t sink = 0;

	for (int i = 0; i < n; i++) {
		int64_t t = mono_ns();

		sink += fg_store_count(st, key, c, window, now);
		buf[i] = mono_ns() - t;
	}
	(void)sink;
	qsort(buf, (size_t)n, sizeof(*buf), cmp_i64);
	l.p50 = buf[n / 2];
	l.p99 = buf[n * 99 / 100];
	l.max = buf[n - 1];
	return l;
}

struct loader {
	fg_store *st;
	struct gen g;
	_Atomic bool stop;
	uint64_t n;
};

static void *
loader_main(void *arg)
{
	struct loader *ld = arg;

	/* A steady ~20000 events/s, well past what an MX under attack
	 * sees, without outrunning the writer. */
	while (!atomic_load(&ld->stop)) {
		for (int i = 0; i < 20; i++) {
			fg_store_record(ld->st, gen_next(&ld->g));
			ld->n++;
		}
		sleep_us(1000);
	}
	return NULL;
}

static void
rm_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[512];

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

static void
run_size(uint64_t n)
{
	char dir[256], path[300];
	struct gen g = {.rng = 42, .t = T_START, .legit_pool = 200000};
	struct fg_store_stats s;
	int64_t t0, rec_ns = 0, *buf;
	double restart, secs;
	fg_store *st;
	char cold[FG_ADDR_STRLEN] = "";
	struct stat sb;

	snprintf(dir, sizeof(dir), "%s/fg-bench-XXXXXX", basedir);
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/floodgate.db", dir);
	st = open_store(path, g.t, NULL);

	t0 = mono_ns();
	for (uint64_t i = 0; i < n; i++) {
		const struct fg_event *ev = gen_next(&g);
		int64_t r0 = mono_ns();

		fg_store_record(st, ev);
		rec_ns += mono_ns() - r0;
		if (!g.attacker && g.stage == 1)
			memcpy(cold, g.client, sizeof(cold));
		traffic_pace(st, i, QUEUE, g.t);
	}
	while (fg_store_flush(st, 60000) != 0)
		;
	secs = (double)(mono_ns() - t0) / 1e9;
	fg_store_get_stats(st, &s);
	printf("\n%" PRIu64 " events (%.1f h simulated, %" PRIu64
	       " keys in memory, %" PRIu64 " dropped)\n", n,
	       (double)(g.t - T_START) / HOUR, s.keys, s.dropped);
	printf("  ingest:  %.0f events/s committed; record calls alone "
	       "%.0f events/s (%.2f us each)\n", (double)n / secs,
	       (double)n / ((double)rec_ns / 1e9), (double)rec_ns / 1e3 / n);

	buf = malloc(SAMPLES_LOADED * sizeof(*buf));
	struct {
		const char *what, *key;
		enum fg_counter c;
		int64_t window;
	} probes[] = {
		{"hot  203.0.113.0/24 invalid 1h", "203.0.113.0/24",
		 FG_CNT_RCPT_INVALID, HOUR},
		{"hot  * rcpt 24h", "*", FG_CNT_RCPT, DAY},
		{"cold one legit client 1h", cold, FG_CNT_CONNECT, HOUR},
		{"miss unknown key 1h", "198.18.0.1", FG_CNT_CONNECT, HOUR},
	};
	for (size_t i = 0; i < FG_NELEM(probes); i++) {
		struct lat l = measure(st, probes[i].key, probes[i].c,
		                       probes[i].window, g.t, buf, SAMPLES);
		printf("  count:   %-32s p50 %5" PRId64 " ns  p99 %6" PRId64
		       " ns  max %7" PRId64 " ns  (= %" PRId64 ")\n",
		       probes[i].what, l.p50, l.p99, l.max,
		       fg_store_count(st, probes[i].key, probes[i].c,
		                      probes[i].window, g.t));
	}
	/* Again while another thread records at full speed. */
	struct loader *ld = calloc(1, sizeof(*ld));
	pthread_t th;
	ld->st = st;
	ld->g = g;
	ld->g.rng ^= 0x5555;
	pthread_create(&th, NULL, loader_main, ld);
	sleep_us(100000);
	for (size_t i = 0; i < FG_NELEM(probes); i += 2) {
		struct lat l = measure(st, probes[i].key, probes[i].c,
		                       probes[i].window, g.t, buf,
		                       SAMPLES_LOADED);
		printf("  loaded:  %-32s p50 %5" PRId64 " ns  p99 %6" PRId64
		       " ns  max %7" PRId64 " ns\n", probes[i].what, l.p50,
		       l.p99, l.max);
	}
	atomic_store(&ld->stop, true);
	pthread_join(th, NULL);
	printf("  (the loader recorded %" PRIu64 " more events meanwhile)\n",
	       ld->n);
	free(ld);
	free(buf);

	t0 = mono_ns();
	fg_store_close(st);
	secs = (double)(mono_ns() - t0) / 1e9;
	stat(path, &sb);
	printf("  close:   %.3f s (flush, checkpoint); database %.0f MB\n", secs,
	       (double)sb.st_size / 1e6);

	/* What the rebuild reads: aggregate rows within the horizon. */
	int64_t cutoff = g.t / 1000 - DAY / 1000;
	sqlite3 *db;
	sqlite3_open(path, &db);
	int64_t events = q_int(db, "SELECT count(*) FROM events", 0);
	int64_t rows = q_int(db, "SELECT count(*) FROM counts", 0);
	int64_t live = q_int(db, "SELECT count(*) FROM counts WHERE sec > ?",
	                     cutoff);
	printf("  tables:  %" PRId64 " events, %" PRId64 " counts rows (%"
	       PRId64 " within the horizon)\n", events, rows, live);
	printf("  (a bare SQLite scan of those rows takes %.3f s)\n",
	       scan_counts(db, cutoff));
	st = open_store(path, g.t, &restart);
	fg_store_get_stats(st, &s);
	printf("  restart: open + rebuild %.3f s (%" PRId64 " counts rows "
	       "scanned, %" PRIu64 " keys)\n", restart, rows, s.keys);
	fg_store_close(st);
	if (live < rows) {
		/* Simulated time ran far ahead of the writer's pruning; in
		 * real time it keeps counts to the horizon.  Do it at once. */
		sqlite3_stmt *del;
		sqlite3_prepare_v2(db, "DELETE FROM counts WHERE sec <= ?", -1,
		                   &del, NULL);
		sqlite3_bind_int64(del, 1, cutoff);
		sqlite3_step(del);
		sqlite3_finalize(del);
		/* Pruning a little every second never leaves a big WAL. */
		sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL,
		             NULL, NULL);
		st = open_store(path, g.t, &restart);
		fg_store_get_stats(st, &s);
		printf("  restart: open + rebuild %.3f s with counts pruned "
		       "to the horizon as in steady state (%" PRIu64
		       " keys)\n", restart, s.keys);
		fg_store_close(st);
	}
	sqlite3_close(db);
	rm_dir(dir);
}

/*
 * A flood of distinct keys: what each costs in memory.  The writer is
 * kept out of the picture (another connection holds the write lock and
 * the queue holds one row, so rows are dropped and SQLite's cache stays
 * put): the difference is the counters alone, hash tables included.
 */
static void
run_memory(void)
{
	char dir[256], path[300];
	struct gen g = {.rng = 7};
	struct fg_store_options o = {
		.horizon_ms = DAY,
		.flush_interval_ms = 1000,
		.queue_size = 1,
	};
	fg_store *st;
	char err[256];
	struct mallinfo2 m0, m1;
	struct fg_store_stats s;
	sqlite3 *db;
	const int n = 1000000;
	int events = 0;

	snprintf(dir, sizeof(dir), "%s/fg-bench-XXXXXX", basedir);
	if (mkdtemp(dir) == NULL)
		return;
	snprintf(path, sizeof(path), "%s/flood.db", dir);
	o.path = path;
	if (fg_store_open(&o, T_START, &st, err, sizeof(err)) != 0) {
		fprintf(stderr, "bench_store: %s\n", err);
		return;
	}
	sqlite3_open(path, &db);
	sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL);
	fg_log_set_level(FG_LOG_ERR);
	m0 = mallinfo2();
	for (int i = 0; i < n; i++) {
		char addr[32];
		const char *keys[] = {addr};
		struct fg_event ev = {
			.time_ms = T_START + i / 10,
			.kind = FG_EV_CONNECT,
			.keys = keys,
			.nkeys = 1,
		};

		snprintf(addr, sizeof(addr), "%u.%u.%u.%u", 1 + (i >> 24),
		         (i >> 16) & 255, (i >> 8) & 255, i & 255);
		fg_store_record(st, &ev);
		events++;
		if (rnd(&g, 2)) {
			ev.kind = FG_EV_RCPT;
			ev.rcpt_class = FG_RCPT_INVALID;
			fg_store_record(st, &ev);
			events++;
		}
	}
	m1 = mallinfo2();
	fg_store_get_stats(st, &s);
	printf("\nmemory: %" PRIu64 " distinct IPv4 keys, %d events "
	       "(connect, half of them a bad recipient too): %.1f bytes/key "
	       "including the hash tables\n", s.keys, events,
	       (double)(m1.uordblks - m0.uordblks) / (double)s.keys);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(db);
	fg_store_close(st);
	fg_log_set_level(FG_LOG_INFO);
	rm_dir(dir);
}

int
main(int argc, char **argv)
{
	bool large = false, memory = true;
	uint64_t only = 0;
	int c;

	while ((c = getopt(argc, argv, "Ln:Md:")) != -1) {
		switch (c) {
		case 'L':
			large = true;
			break;
		case 'n':
			only = strtoull(optarg, NULL, 10);
			break;
		case 'M':
			memory = false;
			break;
		case 'd':
			snprintf(basedir, sizeof(basedir), "%s", optarg);
			break;
		default:
			fprintf(stderr, "usage: bench_store [-L] [-n events] [-M]"
			        " [-d dir]\n");
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("bench_store: horizon 24 h, retention 7 d, flush 1 s, queue "
	       "%d\n", QUEUE);
	if (only > 0) {
		run_size(only);
	} else {
		run_size(100000);
		run_size(1000000);
		if (large)
			run_size(10000000);
	}
	if (memory)
		run_memory();
	return 0;
}
