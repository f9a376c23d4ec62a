/*
 * duration.h - spans of time as the config file and the tools write
 * them: "250ms", "30s", "10m", "1h", "7d", "2w", or a bare number of
 * seconds.  Pure and thread-safe.
 */
#ifndef FG_DURATION_H
#define FG_DURATION_H

#include <stddef.h>
#include <stdint.h>

/* Parses s into *ms: 0, FG_EINVAL (not a duration) or FG_ERANGE. */
int fg_duration_parse(const char *s, int64_t *ms);

/* The same back in the largest unit that is exact ("1h", "90s",
 * "250ms", "0s"); returns buf. */
char *fg_duration_format(int64_t ms, char *buf, size_t size);

#endif
