/*
 * duration.c - parsing and formatting spans of time (see duration.h).
 */
#include "duration.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fg.h"

/* Shortest first. */
static const struct {
	const char *unit;
	int64_t ms;
} units[] = {
	{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000},
	{"d", 86400000}, {"w", 604800000},
};

int
fg_duration_parse(const char *s, int64_t *ms)
{
	const char *p = s;
	int64_t v = 0;

	if (s == NULL || !isdigit((unsigned char)*p))
		return FG_EINVAL;
	while (isdigit((unsigned char)*p)) {
		if (v > (INT64_MAX / 10) - 10)
			return FG_ERANGE;
		v = v * 10 + (*p++ - '0');
	}
	if (*p == '\0')
		p = "s";
	for (size_t i = 0; i < FG_NELEM(units); i++) {
		if (strcmp(p, units[i].unit) == 0) {
			if (v > INT64_MAX / units[i].ms)
				return FG_ERANGE;
			*ms = v * units[i].ms;
			return 0;
		}
	}
	return FG_EINVAL;
}

char *
fg_duration_format(int64_t ms, char *buf, size_t size)
{
	size_t i = FG_NELEM(units);

	if (ms == 0) {
		snprintf(buf, size, "0s");
		return buf;
	}
	while (--i > 0 && ms % units[i].ms != 0)
		;
	snprintf(buf, size, "%" PRId64 "%s", ms / units[i].ms, units[i].unit);
	return buf;
}
