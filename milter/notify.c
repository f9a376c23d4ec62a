/* notify.c - see notify.h. */
#include "notify.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "log.h"

/* The status text of a message, formatted, control bytes made blanks
 * (a newline would end the field and start a bogus one). */
static void
status_text(char *buf, size_t size, const char *fmt, va_list ap)
{
	vsnprintf(buf, size, fmt, ap);
	for (char *p = buf; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
}

static void
send_state(const char *state, const char *fmt, va_list ap)
{
	char status[512];

	status_text(status, sizeof(status), fmt, ap);
	sd_notifyf(0, "%sSTATUS=%s", state, status);
}

void
fg_notify_ready(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	send_state("READY=1\n", fmt, ap);
	va_end(ap);
}

void
fg_notify_reloading(const char *fmt, ...)
{
	struct timespec ts;
	char state[96];
	va_list ap;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(state, sizeof(state), "RELOADING=1\nMONOTONIC_USEC=%" PRIu64
	         "\n", (uint64_t)ts.tv_sec * 1000000 +
	         (uint64_t)ts.tv_nsec / 1000);
	va_start(ap, fmt);
	send_state(state, fmt, ap);
	va_end(ap);
}

void
fg_notify_stopping(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	send_state("STOPPING=1\n", fmt, ap);
	va_end(ap);
}

void
fg_notify_status(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	send_state("", fmt, ap);
	va_end(ap);
}

/* ---- the watchdog ----------------------------------------------------- */

static pthread_t wd_thread;
static bool wd_running;
static pthread_mutex_t wd_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wd_cond;
static bool wd_stop;           /* under wd_lock */
static int64_t wd_interval_ms;
static bool (*wd_healthy)(void *, int64_t);
static void *wd_arg;

/* Petting every half interval, on the monotonic clock; a stop request
 * ends the wait at once. */
static void *
watchdog_thread(void *unused)
{
	bool complained = false;
	struct timespec next;

	(void)unused;
	clock_gettime(CLOCK_MONOTONIC, &next);
	pthread_mutex_lock(&wd_lock);
	while (!wd_stop) {
		int64_t half = wd_interval_ms / 2;

		next.tv_sec += half / 1000;
		next.tv_nsec += (long)(half % 1000) * 1000000L;
		if (next.tv_nsec >= 1000000000L) {
			next.tv_sec++;
			next.tv_nsec -= 1000000000L;
		}
		pthread_mutex_unlock(&wd_lock);
		if (wd_healthy(wd_arg, wd_interval_ms)) {
			sd_notify(0, "WATCHDOG=1");
			if (complained)
				fg_log(FG_LOG_INFO, "watchdog: healthy again");
			complained = false;
		} else if (!complained) {
			fg_log(FG_LOG_ERR, "watchdog: the housekeeping thread "
			       "has not come round for %" PRId64 " ms: no "
			       "longer telling systemd all is well",
			       wd_interval_ms);
			complained = true;
		}
		pthread_mutex_lock(&wd_lock);
		while (!wd_stop &&
		       pthread_cond_timedwait(&wd_cond, &wd_lock, &next) == 0)
			;
	}
	pthread_mutex_unlock(&wd_lock);
	return NULL;
}

int
fg_watchdog_start(bool (*healthy)(void *arg, int64_t interval_ms), void *arg)
{
	pthread_condattr_t ca;
	uint64_t usec = 0;

	if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
		return 0;
	wd_interval_ms = (int64_t)(usec / 1000);
	if (wd_interval_ms < 2)
		wd_interval_ms = 2;
	wd_healthy = healthy;
	wd_arg = arg;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&wd_cond, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&wd_thread, NULL, watchdog_thread, NULL) != 0) {
		pthread_cond_destroy(&wd_cond);
		return -1;
	}
	wd_running = true;
	fg_log(FG_LOG_INFO, "watchdog: telling systemd every %" PRId64 " ms",
	       wd_interval_ms / 2);
	return 0;
}

void
fg_watchdog_stop(void)
{
	if (!wd_running)
		return;
	pthread_mutex_lock(&wd_lock);
	wd_stop = true;
	pthread_cond_signal(&wd_cond);
	pthread_mutex_unlock(&wd_lock);
	pthread_join(wd_thread, NULL);
	pthread_cond_destroy(&wd_cond);
	wd_running = false;
}
