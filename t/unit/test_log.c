/* test_log.c - fg_sanitize and the rate limiter. */
#include <string.h>
#include <syslog.h>

#include "fg.h"
#include "log.h"
#include "tap.h"

int
main(void)
{
	static const struct {
		const char *in;
		size_t size;
		const char *want;
	} t[] = {
		{"ab", 3, "ab"}, {"ab", 2, ""}, {"abc", 4, "abc"},
		{"abcd", 4, "..."}, {"abcd", 5, "abcd"}, {"hello world", 8, "hell..."},
		{"a\nb", 8, "a\\x0ab"}, {"a\nb", 5, "a..."}, {"\\x", 4, "\\\\x"},
		{"\r\n\x1b[31m", 64, "\\x0d\\x0a\\x1b[31m"},
		{"\xff\x80", 64, "\\xff\\x80"}, {NULL, 8, "-"}, {"", 8, ""},
		{"%s%n", 8, "%s%n"},
	};
	struct fg_ratelimit rl = FG_RATELIMIT_INIT;
	uint64_t skipped = 99;
	char buf[64];

	for (size_t i = 0; i < FG_NELEM(t); i++) {
		memset(buf, '#', sizeof(buf));
		fg_sanitize(buf, t[i].size, t[i].in);
		is_str(buf, t[i].want, "sanitize case %zu (size %zu)", i, t[i].size);
	}
	buf[0] = 'x';
	fg_sanitize(buf, 0, "abc");
	is_int(buf[0], 'x', "size 0 writes nothing");

	ok(fg_ratelimit(&rl, 1000, 60000, &skipped), "first call logs");
	is_int(skipped, 0, "nothing skipped yet");
	ok(!fg_ratelimit(&rl, 2000, 60000, NULL), "second within a minute is quiet");
	ok(!fg_ratelimit(&rl, 60999, 60000, NULL), "third still quiet");
	ok(fg_ratelimit(&rl, 61000, 60000, &skipped), "a minute later logs again");
	is_int(skipped, 2, "and says two were skipped");
	ok(fg_ratelimit(&rl, 500, 60000, NULL), "a clock stepped back logs");

	is_str(fg_log_facility_names[0], "mail", "the first facility is mail");
	is_int(fg_log_facility_code(0), LOG_MAIL, "mail is LOG_MAIL");
	is_int(fg_log_facility_code(10), LOG_LOCAL7, "local7 is LOG_LOCAL7");
	ok(fg_log_facility_names[11] == NULL, "eleven facilities");
	is_int(fg_log_facility_code(11), -1, "past the end: -1");
	is_str(fg_log_prefix(FG_LOG_ERR), "", "no prefix off the journal");
	return tap_done();
}
