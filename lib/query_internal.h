/*
 * query_internal.h - what query.c and query_report.c share.  Nothing
 * outside them may include it: the rest of the tree sees only query.h.
 *
 * Errors: the helpers that take a code set the handle's error text and
 * return the code, so a verb can write "return fg_query_fail(q, ...)".
 */
#ifndef FG_QUERY_INTERNAL_H
#define FG_QUERY_INTERNAL_H

#include <sqlite3.h>
#include <stdbool.h>

#include "query.h"
#include "store.h"

struct fg_query {
	sqlite3 *db;
	char *path;
	bool writable;
	bool in_snapshot;
	char err[512];
};

/* Sets the error text; returns code. */
int fg_query_fail(fg_query *q, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* "path: what: sqlite's message"; FG_EBUSY or FG_EIO by rc. */
int fg_query_dberr(fg_query *q, int rc, const char *what);
/* sqlite3_prepare_v2 with the error handling above; *s NULL on error. */
int fg_query_prepare(fg_query *q, const char *sql, sqlite3_stmt **s);
/* A text column, NULL for SQL NULL. */
const char *fg_query_col_text(sqlite3_stmt *s, int i);
/* A text column copied into dst ("" for NULL), cut to fit. */
void fg_query_col_copy(char *dst, size_t size, sqlite3_stmt *s, int i);
/* A ban from columns col.. col+3: until_ms, created_ms, reason, source. */
void fg_query_ban_of_row(struct fg_ban *b, sqlite3_stmt *s, int col);

#endif
