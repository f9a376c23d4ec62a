/*
 * traffic.h - what the store benchmarks' traffic generators share: the
 * address of a legitimate client from its number in a pool, and the
 * pacing of a producer that records as fast as the store's writer keeps
 * up.
 *
 * The rest of each generator stays with its program: the two draw from
 * different random sequences and attack from different ranges
 * (bench_prefill keeps out of fgload's), and a benchmark's figures compare
 * from run to run only while it draws what it always drew.
 *
 * Static inline functions without state: each program compiles its own
 * copy, and there is nothing more to link.
 */
#ifndef FG_BENCH_TRAFFIC_H
#define FG_BENCH_TRAFFIC_H

#include <stdint.h>
#include <string.h>
#include <time.h>

#include "net.h"
#include "store.h"

/*
 * Legitimate client number id (below 2^24): one in five (id % 5 == 0)
 * is 2001:db8:NNxx:xxxx::1 with NN the byte net6 and xx:xxxx the id, the
 * others 10.x.y.z with x.y.z the id.
 */
static inline void
traffic_client(fg_addr *a, uint32_t id, uint8_t net6)
{
	memset(a, 0, sizeof(*a));
	if (id % 5 == 0) {
		a->family = FG_AF_INET6;
		a->bytes[0] = 0x20;
		a->bytes[1] = 0x01;
		a->bytes[2] = 0x0d;
		a->bytes[3] = 0xb8;
		a->bytes[4] = net6;
		a->bytes[5] = (uint8_t)(id >> 16);
		a->bytes[6] = (uint8_t)(id >> 8);
		a->bytes[7] = (uint8_t)id;
		a->bytes[15] = 1;
	} else {
		a->family = FG_AF_INET;
		a->bytes[0] = 10;
		a->bytes[1] = (uint8_t)(id >> 16);
		a->bytes[2] = (uint8_t)(id >> 8);
		a->bytes[3] = (uint8_t)id;
	}
}

/*
 * Call after record number i (from 0) of a producer, its event at now_ms.
 * Every 4096th record it waits while the writer's queue (of queue_size
 * rows) is more than three quarters full, so that nothing is dropped;
 * every 20000th it expires the store's memory at now_ms, as the daemon's
 * timer would.
 */
static inline void
traffic_pace(fg_store *st, uint64_t i, size_t queue_size, int64_t now_ms)
{
	struct fg_store_stats s;

	if (i % 4096 == 4095) {
		fg_store_get_stats(st, &s);
		while (s.queued > queue_size * 3 / 4) {
			struct timespec ts = {0, 200000};

			nanosleep(&ts, NULL);
			fg_store_get_stats(st, &s);
		}
	}
	if (i % 20000 == 19999)
		fg_store_expire(st, now_ms);
}

#endif
