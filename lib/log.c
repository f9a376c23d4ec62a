/* log.c - see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>

#include "fg.h"

static _Atomic int log_level = FG_LOG_INFO;
static _Atomic bool log_stderr = true;

const char *const fg_log_level_names[] = {
	"error", "warning", "info", "debug", NULL,
};
#define level_names fg_log_level_names
#define NLEVELS (FG_NELEM(fg_log_level_names) - 1)

void
fg_log_open(const char *ident, bool to_stderr, int level)
{
	atomic_store(&log_stderr, to_stderr);
	fg_log_set_level(level);
	if (!to_stderr)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void
fg_log_close(void)
{
	if (!atomic_load(&log_stderr))
		closelog();
}

void
fg_log_set_level(int level)
{
	if (level < FG_LOG_ERR)
		level = FG_LOG_ERR;
	if (level > FG_LOG_DEBUG)
		level = FG_LOG_DEBUG;
	atomic_store(&log_level, level);
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

void
fg_log(int level, const char *fmt, ...)
{
	static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
	char line[2048];
	va_list ap;

	if (!fg_log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (level < FG_LOG_ERR)
		level = FG_LOG_ERR;
	if (level > FG_LOG_DEBUG)
		level = FG_LOG_DEBUG;
	if (atomic_load(&log_stderr)) {
		/* One write per line keeps concurrent lines whole. */
		char out[sizeof(line) + 32];
		int n = snprintf(out, sizeof(out), "floodgate: %s: %s\n",
		                 level_names[level], line);
		if (n > (int)sizeof(out) - 1)
			n = (int)sizeof(out) - 1;
		fwrite(out, 1, (size_t)n, stderr);
		fflush(stderr);
	} else {
		syslog(prio[level], "%s", line);
	}
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
