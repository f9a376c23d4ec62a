/* log.c - see log.h. */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "fg.h"

static _Atomic int log_level = FG_LOG_INFO;
static _Atomic int log_dest = FG_LOG_TO_STDERR;
static const char *log_ident = "floodgate";

/* The syslog client: one connected datagram socket, under sys_lock. */
static pthread_mutex_t sys_lock = PTHREAD_MUTEX_INITIALIZER;
static int sys_fd = -1;
static char sys_path[sizeof(((struct sockaddr_un *)0)->sun_path)] =
	FG_LOG_SYSLOG_SOCKET;
static int sys_facility = LOG_MAIL;

const char *const fg_log_level_names[] = {
	"error", "warning", "info", "debug", NULL,
};
#define level_names fg_log_level_names
#define NLEVELS (FG_NELEM(fg_log_level_names) - 1)
/* What each level is to syslog and journald. */
static const int level_prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
/* The word that starts a journal or syslog line of each level. */
static const char *const level_word[] = {"error: ", "warning: ", "", ""};

const char *const fg_log_facility_names[] = {
	"mail", "daemon", "user", "local0", "local1", "local2", "local3",
	"local4", "local5", "local6", "local7", NULL,
};
static const int facility_codes[] = {
	LOG_MAIL, LOG_DAEMON, LOG_USER, LOG_LOCAL0, LOG_LOCAL1, LOG_LOCAL2,
	LOG_LOCAL3, LOG_LOCAL4, LOG_LOCAL5, LOG_LOCAL6, LOG_LOCAL7,
};
_Static_assert(FG_NELEM(fg_log_facility_names) ==
               FG_NELEM(facility_codes) + 1, "one code per facility name");

int
fg_log_facility_code(int index)
{
	if (index < 0 || index >= (int)FG_NELEM(facility_codes))
		return -1;
	return facility_codes[index];
}

bool
fg_log_is_journal_stream(int fd)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat sb;
	char *end;

	/* "DEV:INO", both decimal. */
	if (js == NULL || *js < '0' || *js > '9')
		return false;
	errno = 0;
	dev = strtoull(js, &end, 10);
	if (errno != 0 || *end != ':' || end[1] < '0' || end[1] > '9')
		return false;
	ino = strtoull(end + 1, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	return fstat(fd, &sb) == 0 && (unsigned long long)sb.st_dev == dev &&
	       (unsigned long long)sb.st_ino == ino;
}

void
fg_log_open(const char *ident, bool to_stderr, int level)
{
	enum fg_log_dest d = FG_LOG_TO_SYSLOG;

	if (ident != NULL)
		log_ident = ident;
	if (to_stderr)
		d = fg_log_is_journal_stream(STDERR_FILENO) ? FG_LOG_TO_JOURNAL
		                                            : FG_LOG_TO_STDERR;
	if (d == FG_LOG_TO_SYSLOG)
		tzset();   /* localtime_r() in the line header does not */
	atomic_store(&log_dest, (int)d);
	fg_log_set_level(level);
}

void
fg_log_close(void)
{
	pthread_mutex_lock(&sys_lock);
	if (sys_fd >= 0)
		close(sys_fd);
	sys_fd = -1;
	pthread_mutex_unlock(&sys_lock);
}

enum fg_log_dest
fg_log_dest(void)
{
	return (enum fg_log_dest)atomic_load(&log_dest);
}

static int
clamp_level(int level)
{
	if (level < FG_LOG_ERR)
		return FG_LOG_ERR;
	if (level > FG_LOG_DEBUG)
		return FG_LOG_DEBUG;
	return level;
}

const char *
fg_log_prefix(int level)
{
	static const char *const prefix[] = {"<3>", "<4>", "<6>", "<7>"};

	if (fg_log_dest() != FG_LOG_TO_JOURNAL)
		return "";
	return prefix[clamp_level(level)];
}

void
fg_log_set_syslog(const char *socket_path, int facility)
{
	if (socket_path == NULL || socket_path[0] == '\0')
		socket_path = FG_LOG_SYSLOG_SOCKET;
	pthread_mutex_lock(&sys_lock);
	if (strcmp(sys_path, socket_path) != 0) {
		snprintf(sys_path, sizeof(sys_path), "%s", socket_path);
		if (sys_fd >= 0)
			close(sys_fd);
		sys_fd = -1;
	}
	sys_facility = facility & LOG_FACMASK;
	pthread_mutex_unlock(&sys_lock);
}

void
fg_log_set_level(int level)
{
	atomic_store(&log_level, clamp_level(level));
}

int
fg_log_get_level(void)
{
	return atomic_load(&log_level);
}

bool
fg_log_enabled(int level)
{
	return level <= atomic_load(&log_level);
}

/* Connects sys_fd to sys_path; under sys_lock.  0 or -1. */
static int
syslog_connect(void)
{
	struct sockaddr_un sa;

	if (sys_fd >= 0)
		return 0;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, sys_path, sizeof(sa.sun_path));
	sys_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sys_fd < 0)
		return -1;
	if (connect(sys_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(sys_fd);
		sys_fd = -1;
		return -1;
	}
	return 0;
}

/*
 * One line to the syslog socket, in the format every syslog daemon and
 * journald read: "<PRI>Mmm dd hh:mm:ss name[pid]: text".  A socket that
 * went away (the daemon restarted) is connected again, once per line; a
 * line that still cannot go is lost, as syslog(3) would lose it.
 */
static void
syslog_line(int level, const char *text)
{
	char stamp[32], out[2200];
	struct tm tm;
	time_t now = time(NULL);
	int n;

	if (localtime_r(&now, &tm) == NULL ||
	    strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm) == 0)
		snprintf(stamp, sizeof(stamp), "Jan  1 00:00:00");
	pthread_mutex_lock(&sys_lock);
	n = snprintf(out, sizeof(out), "<%d>%s %s[%ld]: %s%s",
	             sys_facility | level_prio[level], stamp, log_ident,
	             (long)getpid(), level_word[level], text);
	if (n > (int)sizeof(out) - 1)
		n = (int)sizeof(out) - 1;
	for (int attempt = 0; attempt < 2; attempt++) {
		if (syslog_connect() != 0)
			break;
		if (send(sys_fd, out, (size_t)n, MSG_NOSIGNAL) >= 0)
			break;
		if (errno == EINTR) {
			attempt--;
			continue;
		}
		close(sys_fd);
		sys_fd = -1;
	}
	pthread_mutex_unlock(&sys_lock);
}

void
fg_log(int level, const char *fmt, ...)
{
	char line[2048], out[sizeof(line) + 64];
	va_list ap;
	int n = 0;

	if (!fg_log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	level = clamp_level(level);
	switch (fg_log_dest()) {
	case FG_LOG_TO_SYSLOG:
		/* A newline would split the line, or end it early. */
		for (char *p = line; *p != '\0'; p++)
			if (*p == '\n' || *p == '\r')
				*p = ' ';
		syslog_line(level, line);
		return;
	case FG_LOG_TO_JOURNAL:
		/* journald reads a line's level from "<N>" and files every
		 * line of the stream under the name of the unit's process:
		 * a newline in the text would start an unprefixed line. */
		for (char *p = line; *p != '\0'; p++)
			if (*p == '\n' || *p == '\r')
				*p = ' ';
		n = snprintf(out, sizeof(out), "<%d>%s%s\n", level_prio[level],
		             level_word[level], line);
		break;
	case FG_LOG_TO_STDERR:
		n = snprintf(out, sizeof(out), "%s: %s: %s\n", log_ident,
		             level_names[level], line);
		break;
	}
	/* One write per line keeps concurrent lines whole. */
	if (n > (int)sizeof(out) - 1) {
		n = (int)sizeof(out) - 1;
		out[n - 1] = '\n';
	}
	fwrite(out, 1, (size_t)n, stderr);
	fflush(stderr);
}

int
fg_log_level_parse(const char *name, int *out)
{
	for (size_t i = 0; i < NLEVELS; i++) {
		if (strcasecmp(name, level_names[i]) == 0) {
			*out = (int)i;
			return 0;
		}
	}
	return FG_EINVAL;
}

const char *
fg_log_level_name(int level)
{
	if (level < 0 || level >= (int)NLEVELS)
		return "unknown";
	return level_names[level];
}

/* The escaped form of one byte into enc[4]; returns its length. */
static size_t
escape_byte(unsigned char ch, char enc[4])
{
	static const char hex[] = "0123456789abcdef";

	if (ch == '\\') {
		enc[0] = enc[1] = '\\';
		return 2;
	}
	if (ch >= 0x20 && ch < 0x7f) {
		enc[0] = (char)ch;
		return 1;
	}
	enc[0] = '\\';
	enc[1] = 'x';
	enc[2] = hex[ch >> 4];
	enc[3] = hex[ch & 15];
	return 4;
}

char *
fg_sanitize(char *dst, size_t size, const char *src)
{
	const unsigned char *p;
	size_t o = 0, need = 0, room;
	char enc[4];

	if (size == 0)
		return dst;
	if (src == NULL)
		src = "-";
	/* The usual case, printable ASCII that fits, in one pass. */
	for (size_t i = 0; i < size; i++) {
		unsigned char ch = (unsigned char)src[i];

		if (ch == '\0') {
			memcpy(dst, src, i + 1);
			return dst;
		}
		if (ch < 0x20 || ch >= 0x7f || ch == '\\')
			break;
	}
	/* Everything fits: copy it all. */
	for (p = (const unsigned char *)src; *p != '\0' && need < size; p++)
		need += escape_byte(*p, enc);
	room = need < size ? size - 1 : (size > 4 ? size - 4 : 0);
	for (p = (const unsigned char *)src; *p != '\0'; p++) {
		size_t n = escape_byte(*p, enc);
		if (o + n > room)
			break;
		memcpy(dst + o, enc, n);
		o += n;
	}
	if (need >= size && size >= 4) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = '\0';
	return dst;
}

bool
fg_ratelimit(struct fg_ratelimit *rl, int64_t now_ms, int64_t interval_ms,
             uint64_t *suppressed)
{
	int64_t last = atomic_load(&rl->last_ms);

	if (last != INT64_MIN && now_ms - last < interval_ms && now_ms >= last) {
		atomic_fetch_add(&rl->suppressed, 1);
		return false;
	}
	if (!atomic_compare_exchange_strong(&rl->last_ms, &last, now_ms)) {
		atomic_fetch_add(&rl->suppressed, 1);
		return false;
	}
	uint64_t n = atomic_exchange(&rl->suppressed, 0);
	if (suppressed != NULL)
		*suppressed = n;
	return true;
}
