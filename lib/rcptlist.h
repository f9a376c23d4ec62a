/*
 * rcptlist.h - an operator's own list of valid recipients, for MTAs that
 * accept every recipient of a domain and bounce later (so they never
 * reject unknown users at RCPT time and floodgate could not tell).
 *
 * File format, one entry per line, '#' starts a comment, case-insensitive:
 *   user@example.org      a valid recipient
 *   @example.org          example.org is covered by this list: any other
 *                         recipient of it is invalid
 * A recipient of a domain the file does not cover is left to the MTA's
 * verdict.
 *
 * A list is immutable once loaded and shared read-only by any number of
 * threads; it lives in the configuration snapshot and is reloaded with it.
 */
#ifndef FG_RCPTLIST_H
#define FG_RCPTLIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct fg_rcptlist fg_rcptlist;

/* Loads path.  Problems are reported as "file:line: reason" through diag
 * (errors: the list is refused).  0, FG_ENOENT, FG_ECONFIG, FG_ENOMEM. */
int fg_rcptlist_load(const char *path, fg_rcptlist **out,
                     void (*diag)(void *arg, const char *line), void *arg);
void fg_rcptlist_free(fg_rcptlist *l);
size_t fg_rcptlist_count(const fg_rcptlist *l);

/* 1 the domain of rcpt is covered and rcpt is listed, 0 covered but not
 * listed (invalid), -1 not covered (ask the MTA).  rcpt may carry angle
 * brackets. */
int fg_rcptlist_check(const fg_rcptlist *l, const char *rcpt);

#endif
