/*
 * sleep.c - the tarpit's sleep on the monotonic clock (see sleep.h).
 */
#include "sleep.h"

#include <errno.h>

/* The one clock a delay is measured on. */
#define DELAY_CLOCK CLOCK_MONOTONIC

static int64_t
system_now_ms(void *arg, clockid_t id)
{
	struct timespec ts;

	(void)arg;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
system_sleep_until(void *arg, clockid_t id, int64_t until_ms)
{
	struct timespec ts;

	(void)arg;
	ts.tv_sec = (time_t)(until_ms / 1000);
	ts.tv_nsec = (long)(until_ms % 1000) * 1000000L;
	/* An interrupted sleep returns: the caller looks at the clock. */
	(void)clock_nanosleep(id, TIMER_ABSTIME, &ts, NULL);
}

const struct fg_clock fg_clock_system = {
	system_now_ms, system_sleep_until, NULL
};

int64_t
fg_sleep_delay(const struct fg_clock *clk, int64_t ms,
               const _Atomic bool *stop)
{
	int64_t start, now;

	if (ms <= 0)
		return 0;
	start = now = clk->now_ms(clk->arg, DELAY_CLOCK);
	while ((stop == NULL || !atomic_load(stop)) && now - start < ms) {
		int64_t left = start + ms - now;

		clk->sleep_until(clk->arg, DELAY_CLOCK,
		                 now + (left < FG_SLEEP_SLICE_MS
		                        ? left : FG_SLEEP_SLICE_MS));
		now = clk->now_ms(clk->arg, DELAY_CLOCK);
	}
	return now - start;
}
