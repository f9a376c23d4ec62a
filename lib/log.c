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

static const char *const level_names[] = {"error", "warning", "info", "debug"};

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
	for (size_t i = 0; i < FG_NELEM(level_names); i++) {
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
	if (level < 0 || level >= (int)FG_NELEM(level_names))
		return "unknown";
	return level_names[level];
}

char *
fg_sanitize(char *dst, size_t size, const char *src)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (size == 0)
		return dst;
	if (src == NULL)
		src = "-";
	for (const unsigned char *p = (const unsigned char *)src; *p; p++) {
		char enc[4];
		size_t n;

		if (*p == '\\') {
			enc[0] = '\\';
			enc[1] = '\\';
			n = 2;
		} else if (*p >= 0x20 && *p < 0x7f) {
			enc[0] = (char)*p;
			n = 1;
		} else {
			enc[0] = '\\';
			enc[1] = 'x';
			enc[2] = hex[*p >> 4];
			enc[3] = hex[*p & 15];
			n = 4;
		}
		/* Keep room for "..." and the NUL if more input follows. */
		if (o + n + 1 > size || (p[1] != '\0' && o + n + 4 > size)) {
			if (size >= 4) {
				if (o + 4 > size)
					o = size - 4;
				memcpy(dst + o, "...", 3);
				o += 3;
			}
			break;
		}
		memcpy(dst + o, enc, n);
		o += n;
	}
	dst[o < size ? o : size - 1] = '\0';
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
