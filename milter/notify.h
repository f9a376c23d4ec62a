/*
 * notify.h - telling the service manager how the daemon is doing, by
 * sd_notify(3): READY=1 once the socket is open and the privileges are
 * dropped, RELOADING=1 then READY=1 around a reload, STOPPING=1 when it
 * stops, a STATUS= line with each, and the watchdog (WATCHDOG=1) when the
 * unit asks for one.  Without $NOTIFY_SOCKET (not under systemd, or not
 * Type=notify) every call does nothing.
 *
 * RELOADING=1 carries MONOTONIC_USEC=, the CLOCK_MONOTONIC time of the
 * reload, which systemd 253 and later require to match a reload to its
 * READY=1 (Type=notify-reload); systemd 252 ignores the field.
 *
 * Thread-safety: every function may be called from any thread, except
 * fg_watchdog_start() and fg_watchdog_stop(), for the main thread, once.
 */
#ifndef FG_NOTIFY_H
#define FG_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

/* STATUS= text is printf-formatted; one line. */
void fg_notify_ready(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fg_notify_reloading(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
void fg_notify_stopping(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
void fg_notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * When the unit sets WatchdogSec= ($WATCHDOG_USEC, for this process):
 * starts a thread that sends WATCHDOG=1 every half interval, as long as
 * healthy(arg) says true.  While it says false the thread stays quiet
 * (and logs why, once), so that systemd restarts a daemon that has
 * stopped working.  0 (also when no watchdog is asked for), or -1 if the
 * thread cannot start.
 */
int fg_watchdog_start(bool (*healthy)(void *arg, int64_t interval_ms),
                      void *arg);
void fg_watchdog_stop(void);

#endif
