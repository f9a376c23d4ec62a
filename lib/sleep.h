/*
 * sleep.h - the tarpit's sleep: a delay measured on the monotonic clock,
 * so that a step of the wall clock (an operator's date, a bad NTP
 * answer) neither holds a delayed session nor cuts its delay short.
 *
 * The clock is a parameter, as time is everywhere in lib/: the daemon
 * hands fg_clock_system, a test a clock of its own that it steps at will,
 * and sees which clock the delay was measured on.  The sleep goes in
 * slices of at most FG_SLEEP_SLICE_MS so that a stop flag set meanwhile
 * ends it soon.
 *
 * Thread-safety: any number of threads may sleep at once on the system
 * clock; a test clock is as thread-safe as its functions.
 */
#ifndef FG_SLEEP_H
#define FG_SLEEP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define FG_SLEEP_SLICE_MS 100

struct fg_clock {
	/* The time of clock id (CLOCK_MONOTONIC, CLOCK_REALTIME) in ms. */
	int64_t (*now_ms)(void *arg, clockid_t id);
	/* Sleeps until clock id reads until_ms, or less (a signal). */
	void (*sleep_until)(void *arg, clockid_t id, int64_t until_ms);
	void *arg;
};

/* The system's clocks: clock_gettime and clock_nanosleep(TIMER_ABSTIME). */
extern const struct fg_clock fg_clock_system;

/* Sleeps ms (<= 0: not at all) on clk's monotonic clock, or until *stop
 * (may be NULL) is set; returns the milliseconds it slept by that clock. */
int64_t fg_sleep_delay(const struct fg_clock *clk, int64_t ms,
                       const _Atomic bool *stop);

#endif
