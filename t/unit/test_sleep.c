/*
 * test_sleep.c - the tarpit's sleep with an injected clock: the wall
 * clock stepped back or forward in the middle of a delay changes nothing,
 * because the delay is measured on the monotonic clock; a stop ends it
 * within a slice.
 *
 * The test clock keeps a monotonic and a wall time that advance together
 * when something sleeps on either, and steps the wall time by a set
 * amount at the first sleep (a clock step under a sleeping session).  A
 * sleep measured on the wall clock would be held an hour by the step
 * back, or cut short by the step forward; the monotonic time that passed
 * tells which.
 */
#include <stdio.h>
#include <string.h>

#include "sleep.h"
#include "tap.h"

#define HOUR_MS INT64_C(3600000)

struct test_clock {
	int64_t mono, wall;
	int64_t step;          /* added to wall at the first sleep */
	int sleeps;
	int stop_after;        /* set *stop at this sleep; 0: never */
	_Atomic bool *stop;
	clockid_t last_id;
};

static int64_t
tc_now(void *arg, clockid_t id)
{
	struct test_clock *c = arg;

	return id == CLOCK_MONOTONIC ? c->mono : c->wall;
}

static void
tc_sleep_until(void *arg, clockid_t id, int64_t until_ms)
{
	struct test_clock *c = arg;
	int64_t d = until_ms - (id == CLOCK_MONOTONIC ? c->mono : c->wall);

	c->last_id = id;
	if (++c->sleeps == 1)
		c->wall += c->step;
	/* Never more than two hours in all: a sleep held by a step back
	 * ends, and says how long it was held. */
	if (d > 0 && c->mono < 2 * HOUR_MS) {
		c->mono += d;
		c->wall += d;
	}
	if (c->stop != NULL && c->sleeps == c->stop_after)
		atomic_store(c->stop, true);
}

/* Sleeps ms on a test clock whose wall time steps by step; returns the
 * monotonic time that passed. */
static int64_t
slept(int64_t ms, int64_t step, struct test_clock *c)
{
	struct fg_clock clk = {tc_now, tc_sleep_until, c};
	int64_t t0, r;

	memset(c, 0, sizeof(*c));
	c->mono = 1000000;
	c->wall = INT64_C(1796679937000);
	c->step = step;
	t0 = c->mono;
	r = fg_sleep_delay(&clk, ms, NULL);
	ok(r == c->mono - t0, "it says how long it slept (%lld ms)",
	   (long long)r);
	return c->mono - t0;
}

int
main(void)
{
	struct test_clock c;
	struct fg_clock clk = {tc_now, tc_sleep_until, &c};
	_Atomic bool stop = false;

	is_int(slept(1500, 0, &c), 1500, "a delay of 1500 ms sleeps 1500 ms");
	ok(c.sleeps == 15, "in slices of %d ms (%d sleeps)", FG_SLEEP_SLICE_MS,
	   c.sleeps);
	is_int(slept(1500, -HOUR_MS, &c), 1500,
	       "the wall clock stepped back an hour mid-sleep: still 1500 ms");
	is_int(c.last_id, CLOCK_MONOTONIC, "... slept on the monotonic clock");
	is_int(slept(1500, HOUR_MS, &c), 1500,
	       "the wall clock stepped forward an hour: not cut short");
	is_int(slept(250, 0, &c), 250, "a delay not a multiple of a slice");
	is_int(slept(0, -HOUR_MS, &c), 0, "no delay: no sleep");
	ok(c.sleeps == 0, "... not even one (%d)", c.sleeps);
	is_int(slept(-5, 0, &c), 0, "a negative delay: no sleep");

	memset(&c, 0, sizeof(c));
	c.stop = &stop;
	c.stop_after = 3;
	is_int(fg_sleep_delay(&clk, 60000, &stop), 3 * FG_SLEEP_SLICE_MS,
	       "a stop ends a minute's delay after the slice it came in");
	is_int(fg_sleep_delay(&clk, 60000, &stop), 0,
	       "a stop already set: no sleep at all");

	is_int(fg_sleep_delay(&fg_clock_system, 30, NULL) >= 30, 1,
	       "the system clock sleeps at least what it is asked");
	return tap_done();
}
