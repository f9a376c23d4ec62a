/*
 * store_fixture.h - what the unit tests of the store on real files share:
 * a fresh directory under /tmp for their databases, paths in it, its
 * removal at the end, a sleep, and a one-number SQL query.
 *
 * One directory a test program: fixture_dir_make() at the start of main,
 * fixture_dir_remove() before tap_done().  in_dir() returns one of a few
 * rotating static buffers (valid for the next seven calls): set up from
 * one thread.  The functions are static, like tap.h's, so that each test
 * program has its own copy and no extra object file.
 */
#ifndef FG_STORE_FIXTURE_H
#define FG_STORE_FIXTURE_H

#include <dirent.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char dir[64];

/* Makes dir, a fresh /tmp/PREFIX-XXXXXX; 0, or -1 (said on stderr). */
static inline int
fixture_dir_make(const char *prefix)
{
	snprintf(dir, sizeof(dir), "/tmp/%s-XXXXXX", prefix);
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return -1;
	}
	return 0;
}

/* dir/name. */
static inline const char *
in_dir(const char *name)
{
	static char buf[8][256];
	static int i;

	i = (i + 1) % 8;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

/* Removes dir and the files in it. */
static inline void
fixture_dir_remove(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			unlink(in_dir(e->d_name));
	closedir(d);
	rmdir(dir);
}

static inline void
sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* The first column of the first row of sql on db as an integer; -1 if
 * there is no row, -2 (said as a TAP comment) if sql does not prepare. */
static inline int64_t
db_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *s;
	int64_t v = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
		printf("# %s: %s\n", sql, sqlite3_errmsg(db));
		return -2;
	}
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

#endif
