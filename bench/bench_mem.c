/*
 * bench_mem.c - what a key costs in memory.
 *
 *   bench_mem [-n keys] [-d dir]
 *
 * For each kind of key (IPv4 and IPv6 addresses, their networks, HELO
 * names, recipient domains) it records n distinct keys (default 200000)
 * into a fresh store, each after a connect only and then after a full
 * session (connect, HELO, MAIL, one valid recipient), and prints the
 * bytes per key malloc reports in use (mallinfo2), hash tables included,
 * beside what the store charges itself for the memory limit (stats).
 * The writer is kept out of the picture as in bench_store: another
 * connection holds the write lock and the queue holds one row, so rows
 * are dropped and SQLite's cache stays put.  Prints, asserts nothing;
 * run it from a build without sanitizers.
 */
#include <inttypes.h>
#include <malloc.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fg.h"
#include "log.h"
#include "store.h"

#define T_START INT64_C(1700000000000)
#define HOUR INT64_C(3600000)

static char basedir[200] = "/tmp";

static uint64_t rng = 88172645463325252u;

static uint32_t
rnd32(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)rng;
}

/* Key number i of a kind: distinct, and as long as real ones are. */
typedef void key_fn(char *buf, size_t size, int i);

static void
ipv4(char *b, size_t n, int i)
{
	snprintf(b, n, "%u.%u.%u.%u", 11 + (i >> 24), (i >> 16) & 255,
	         (i >> 8) & 255, i & 255);
}

static void
net4(char *b, size_t n, int i)
{
	snprintf(b, n, "%u.%u.%u.0/24", 11 + (i >> 16), (i >> 8) & 255,
	         i & 255);
}

/* A random /64 and a random interface: the longest usual text. */
static void
ipv6(char *b, size_t n, int i)
{
	snprintf(b, n, "2001:db8:%x:%x:%x:%x:%x:%x", 0x1000 + (i >> 12),
	         0x1000 + (i & 0xfff), 0x1000 + (rnd32() & 0xefff),
	         0x1000 + (rnd32() & 0xefff), 0x1000 + (rnd32() & 0xefff),
	         0x1000 + (rnd32() & 0xefff));
}

static void
net6(char *b, size_t n, int i)
{
	snprintf(b, n, "2001:db8:%x:%x::/64", 0x1000 + (i >> 12),
	         0x1000 + (i & 0xfff));
}

static void
helo(char *b, size_t n, int i)
{
	snprintf(b, n, "helo:host-%08x.example.net", (unsigned)i);
}

static void
helo_long(char *b, size_t n, int i)
{
	snprintf(b, n, "helo:mail-%08x.outbound.mailer.example-provider.net",
	         (unsigned)i);
}

static void
domain(char *b, size_t n, int i)
{
	snprintf(b, n, "rcpt-domain:d%07x.example.org", (unsigned)i);
}

static const struct {
	const char *name;
	key_fn *fn;
} kinds[] = {
	{"IPv4 address", ipv4},
	{"IPv6 address", ipv6},
	{"IPv4 /24 network", net4},
	{"IPv6 /64 network", net6},
	{"HELO name (26 chars)", helo},
	{"HELO name (50 chars)", helo_long},
	{"recipient domain", domain},
};

struct cost {
	double malloc_b;   /* mallinfo2 in use, per key */
	double charged_b;  /* the store's own figure, per key */
};

/* n keys of a kind, a connect each or a full session each. */
static int
measure(key_fn *fn, int n, bool full, struct cost *out)
{
	char dir[256], path[300], err[256], key[128];
	struct fg_store_options o = {
		.horizon_ms = HOUR,
		.flush_interval_ms = 1000,
		.queue_size = 1,
	};
	const char *keys[] = {key};
	struct fg_event ev = {.keys = keys, .nkeys = 1};
	struct fg_store_stats s0, s1;
	struct mallinfo2 m0, m1;
	fg_store *st;
	sqlite3 *db;

	snprintf(dir, sizeof(dir), "%s/fg-bench-mem-XXXXXX", basedir);
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return -1;
	}
	snprintf(path, sizeof(path), "%s/mem.db", dir);
	o.path = path;
	if (fg_store_open(&o, T_START, &st, err, sizeof(err)) != 0) {
		fprintf(stderr, "bench_mem: %s\n", err);
		return -1;
	}
	sqlite3_open(path, &db);
	sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL);
	fg_store_get_stats(st, &s0);
	m0 = mallinfo2();
	for (int i = 0; i < n; i++) {
		fn(key, sizeof(key), i);
		ev.time_ms = T_START + i / 20;
		ev.kind = FG_EV_CONNECT;
		ev.rcpt_class = FG_RCPT_NONE;
		fg_store_record(st, &ev);
		if (!full)
			continue;
		ev.kind = FG_EV_HELO;
		fg_store_record(st, &ev);
		ev.kind = FG_EV_MAIL;
		fg_store_record(st, &ev);
		ev.kind = FG_EV_RCPT;
		ev.rcpt_class = FG_RCPT_VALID;
		fg_store_record(st, &ev);
	}
	m1 = mallinfo2();
	fg_store_get_stats(st, &s1);
	out->malloc_b = ((double)m1.uordblks - (double)m0.uordblks) /
	                (double)(s1.keys - s0.keys);
	out->charged_b = ((double)s1.memory - (double)s0.memory) /
	                 (double)(s1.keys - s0.keys);
	if (s1.keys - s0.keys != (uint64_t)n)
		fprintf(stderr, "bench_mem: %" PRIu64 " keys, not %d\n",
		        s1.keys - s0.keys, n);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(db);
	fg_store_close(st);
	unlink(path);
	snprintf(path, sizeof(path), "%s/mem.db-wal", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/mem.db-shm", dir);
	unlink(path);
	rmdir(dir);
	return 0;
}

int
main(int argc, char **argv)
{
	int n = 200000, c;

	while ((c = getopt(argc, argv, "n:d:")) != -1) {
		switch (c) {
		case 'n':
			n = atoi(optarg);
			break;
		case 'd':
			snprintf(basedir, sizeof(basedir), "%s", optarg);
			break;
		default:
			fprintf(stderr, "usage: bench_mem [-n keys] [-d dir]\n");
			return 2;
		}
	}
	if (n < 1000) {
		fprintf(stderr, "bench_mem: -n: at least 1000 keys\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	fg_log_set_level(FG_LOG_ERR);
	printf("bench_mem: bytes per key, %d distinct keys of each kind, hash "
	       "tables included\n", n);
	printf("  (malloc: in use as mallinfo2 reports it; charged: what the "
	       "store counts against memory_limit)\n\n");
	printf("%-22s %14s %14s %14s %14s\n", "key", "connect malloc",
	       "charged", "session malloc", "charged");
	for (size_t k = 0; k < FG_NELEM(kinds); k++) {
		struct cost one, full;

		if (measure(kinds[k].fn, n, false, &one) < 0 ||
		    measure(kinds[k].fn, n, true, &full) < 0)
			return 1;
		printf("%-22s %14.1f %14.1f %14.1f %14.1f\n", kinds[k].name,
		       one.malloc_b, one.charged_b, full.malloc_b,
		       full.charged_b);
	}
	return 0;
}
