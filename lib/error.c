/* error.c - the one table of floodgate error codes. */
#include "fg.h"

const char *
fg_strerror(int code)
{
	switch (code) {
	case FG_OK: return "success";
	case FG_ENOMEM: return "out of memory";
	case FG_EINVAL: return "invalid argument";
	case FG_ERANGE: return "value out of range";
	case FG_EIO: return "I/O or database error";
	case FG_EBUSY: return "resource busy";
	case FG_ENOENT: return "no such entry";
	case FG_EFULL: return "queue or disk full";
	case FG_ESCHEMA: return "database schema unknown or newer";
	case FG_ESYS: return "system call failed";
	case FG_ECONFIG: return "invalid configuration";
	case FG_EEXIST: return "entry exists";
	case FG_ETOOBIG: return "input too long";
	default: return "unknown error";
	}
}
