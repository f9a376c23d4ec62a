/*
 * log.h - logging: syslog (facility mail) when daemonized, stderr in the
 * foreground, four levels.
 *
 * Anything a client sent (HELO names, addresses, macro values) must pass
 * through fg_sanitize() before it reaches a log line: it keeps printable
 * ASCII and escapes everything else, so no CR/LF or terminal control can
 * forge or garble a line.
 *
 * Thread-safety: fg_log() may be called from any thread.  fg_log_open()
 * and fg_log_set_level() are for the main thread (the level is atomic).
 */
#ifndef FG_LOG_H
#define FG_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum fg_log_level {
	FG_LOG_ERR = 0,
	FG_LOG_WARNING = 1,
	FG_LOG_INFO = 2,
	FG_LOG_DEBUG = 3,
};

/* to_stderr: true in the foreground; else syslog with ident. */
void fg_log_open(const char *ident, bool to_stderr, int level);
void fg_log_close(void);
void fg_log_set_level(int level);
int fg_log_get_level(void);
bool fg_log_enabled(int level);
void fg_log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The level names, by level, NULL at the end. */
extern const char *const fg_log_level_names[];
/* "error", "warning", "info", "debug" → level; 0 or FG_EINVAL. */
int fg_log_level_parse(const char *name, int *out);
const char *fg_log_level_name(int level);

/*
 * Copies src into dst (size bytes, always NUL-terminated): printable ASCII
 * as is, a backslash as "\\", every other byte as "\xHH".  Output that
 * would not fit ends in "...".  src NULL gives "-".  Returns dst.
 */
char *fg_sanitize(char *dst, size_t size, const char *src);

/*
 * At most one line per interval: returns true when the caller should log
 * now, and reports through *suppressed how many calls were swallowed since
 * the last true.  Lock-free; initialise with FG_RATELIMIT_INIT.
 */
struct fg_ratelimit {
	_Atomic int64_t last_ms;
	_Atomic uint64_t suppressed;
};
#define FG_RATELIMIT_INIT { INT64_MIN, 0 }
bool fg_ratelimit(struct fg_ratelimit *rl, int64_t now_ms,
                  int64_t interval_ms, uint64_t *suppressed);

#endif
