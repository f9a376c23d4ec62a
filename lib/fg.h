/*
 * fg.h - conventions shared by every module of the floodgate core library.
 *
 * Error convention: functions return 0 on success and a negative FG_E*
 * code on failure.  Look-ups are tri-state: 1 found, 0 not found, < 0
 * error.  Detail text, where a caller wants it, is written into a buffer
 * the caller owns.  Nothing in lib/ ever exits the process.
 *
 * Time is always a parameter: milliseconds since the Unix epoch, int64_t.
 * Nothing in lib/ reads the clock on a decision path.
 */
#ifndef FG_H
#define FG_H

#include <stddef.h>
#include <stdint.h>

enum {
	FG_OK = 0,
	FG_ENOMEM = -1,   /* out of memory */
	FG_EINVAL = -2,   /* invalid argument or malformed input */
	FG_ERANGE = -3,   /* value out of range */
	FG_EIO = -4,      /* I/O or database error */
	FG_EBUSY = -5,    /* resource busy or locked, try later */
	FG_ENOENT = -6,   /* no such file or entry */
	FG_EFULL = -7,    /* queue or disk full */
	FG_ESCHEMA = -8,  /* database is not floodgate's or is newer */
	FG_ESYS = -9,     /* system call failed, see errno */
	FG_ECONFIG = -10, /* configuration invalid */
	FG_EEXIST = -11,  /* entry exists already */
	FG_ETOOBIG = -12, /* input longer than the limit */
};

/* A static, human-readable text for an FG_E* code; never NULL. */
const char *fg_strerror(int code);

/* Number of elements of a true array. */
#define FG_NELEM(a) (sizeof(a) / sizeof((a)[0]))

#define FG_MS_PER_S INT64_C(1000)

/* A macro's value as a string literal. */
#define FG_STR(x) #x
#define FG_XSTR(x) FG_STR(x)

#endif
