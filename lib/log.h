/*
 * log.h - logging, four levels, to one of three places chosen at start:
 *
 *   stderr   in the foreground (-f): "floodgate: warning: text";
 *   journal  in the foreground with stderr connected to systemd's journal
 *            ($JOURNAL_STREAM names stderr's device and inode): "<4>text",
 *            the kernel-style level prefix journald turns into the
 *            line's priority (SyslogLevelPrefix=, on by default); the
 *            facility is the unit's SyslogFacility=, the name journald's;
 *   syslog   daemonized: one datagram per line to a syslog socket
 *            (/dev/log unless fg_log_set_syslog() says otherwise), with
 *            the configured facility, "<PRI>Mmm dd hh:mm:ss name[pid]: ".
 *
 * The name is said once per line: by us on stderr and in syslog lines,
 * by journald in the journal.  In the journal and syslog, error and
 * warning lines also start with "error: " / "warning: ", so that they
 * stand out in a plain mail.log as well.
 *
 * Our own syslog client rather than syslog(3): its socket can be put
 * elsewhere (a test's receiver, a chroot), and a syslog daemon restarted
 * under us is found again at the next line.
 *
 * Anything a client sent (HELO names, addresses, macro values) must pass
 * through fg_sanitize() before it reaches a log line: it keeps printable
 * ASCII and escapes everything else, so no CR/LF or terminal control can
 * forge or garble a line.
 *
 * Thread-safety: fg_log() may be called from any thread, and so may
 * fg_log_set_level() and fg_log_set_syslog() (a reload); fg_log_open()
 * and fg_log_close() are for the main thread while no other thread logs.
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

enum fg_log_dest {
	FG_LOG_TO_STDERR,
	FG_LOG_TO_JOURNAL,
	FG_LOG_TO_SYSLOG,
};

#define FG_LOG_SYSLOG_SOCKET "/dev/log"

/*
 * to_stderr: true in the foreground (stderr, or the journal when stderr
 * is the journal stream); false: syslog.  ident is kept (not copied) and
 * names the program in stderr and syslog lines.  May be called again to
 * change the destination (the daemon starts on stderr, then moves).
 */
void fg_log_open(const char *ident, bool to_stderr, int level);
void fg_log_close(void);
/* Where lines go now. */
enum fg_log_dest fg_log_dest(void);
/* True when fd is the stream $JOURNAL_STREAM names. */
bool fg_log_is_journal_stream(int fd);
/* The prefix a line written to stderr by hand needs: "<3>" or "<4>" in
 * the journal, "" elsewhere. */
const char *fg_log_prefix(int level);

/*
 * The syslog socket (an absolute path, at most 107 bytes; NULL: the
 * default) and facility (a LOG_* value of <syslog.h>, e.g. LOG_MAIL, the
 * default) of syslog lines.  Takes effect at the next line.
 */
void fg_log_set_syslog(const char *socket_path, int facility);

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

/* The facilities the configuration may name, NULL-terminated ("mail",
 * "daemon", "user", "local0" ... "local7"), and the LOG_* value of the
 * i-th; -1 for an index out of range. */
extern const char *const fg_log_facility_names[];
int fg_log_facility_code(int index);

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
