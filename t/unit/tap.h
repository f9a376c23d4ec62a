/*
 * tap.h - a minimal TAP producer for floodgate's unit tests.
 *
 * Each check prints "ok N - name" or "not ok N - name" with the values
 * compared; tap_done() prints the plan and a summary line, and returns
 * the process exit status: non-zero when any check failed, so CTest fails
 * the test.
 */
#ifndef FG_TAP_H
#define FG_TAP_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

static inline int
tap_ok(int cond, const char *file, int line, const char *name)
{
	tap_n++;
	if (!cond)
		tap_failed++;
	printf("%sok %d - %s\n", cond ? "" : "not ", tap_n, name);
	if (!cond)
		printf("#   failed at %s:%d\n", file, line);
	return cond;
}

#define ok(cond, ...)                                                     \
	do {                                                              \
		char tap_name_[512];                                      \
		snprintf(tap_name_, sizeof(tap_name_), __VA_ARGS__);      \
		tap_ok(!!(cond), __FILE__, __LINE__, tap_name_);          \
	} while (0)

#define is_int(got, want, ...)                                            \
	do {                                                              \
		long long tap_g_ = (long long)(got);                      \
		long long tap_w_ = (long long)(want);                     \
		char tap_name_[512];                                      \
		snprintf(tap_name_, sizeof(tap_name_), __VA_ARGS__);      \
		if (!tap_ok(tap_g_ == tap_w_, __FILE__, __LINE__,         \
		            tap_name_))                                   \
			printf("#   got %lld, want %lld\n", tap_g_, tap_w_); \
	} while (0)

#define is_str(got, want, ...)                                            \
	do {                                                              \
		const char *tap_g_ = (got);                               \
		const char *tap_w_ = (want);                              \
		char tap_name_[512];                                      \
		snprintf(tap_name_, sizeof(tap_name_), __VA_ARGS__);      \
		int tap_c_ = (tap_g_ == NULL && tap_w_ == NULL) ||        \
		             (tap_g_ != NULL && tap_w_ != NULL &&         \
		              strcmp(tap_g_, tap_w_) == 0);               \
		if (!tap_ok(tap_c_, __FILE__, __LINE__, tap_name_))       \
			printf("#   got \"%s\", want \"%s\"\n",           \
			       tap_g_ ? tap_g_ : "(null)",                \
			       tap_w_ ? tap_w_ : "(null)");               \
	} while (0)

static inline int
tap_done(void)
{
	printf("1..%d\n", tap_n);
	printf("# %d passed, %d failed\n", tap_n - tap_failed, tap_failed);
	return tap_failed == 0 ? 0 : 1;
}

#endif
