/* classify.c - see classify.h. */
#include "classify.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

/* The texts MTAs use for "no such user", lower case. */
static const char *const unknown_texts[] = {
	"user unknown",
	"unknown user",
	"no such user",
	"mailbox unavailable",
	"recipient unknown",
	"unknown recipient",
	"address rejected: undeliverable",
	"does not exist",
};

static bool
contains_ci(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (; *hay != '\0'; hay++)
		if (strncasecmp(hay, needle, n) == 0)
			return true;
	return false;
}

/* "5.1.1" possibly followed by more text; also 5.1.0 (bad address) and
 * 5.1.10 (null MX) are not user-unknown: only x.1.1. */
static bool
status_is_unknown_user(const char *s)
{
	while (*s == ' ')
		s++;
	if (strncmp(s, "550 ", 4) == 0 || strncmp(s, "450 ", 4) == 0)
		s += 4;
	if ((s[0] == '5' || s[0] == '4') && strncmp(s + 1, ".1.1", 4) == 0 &&
	    (s[5] == '\0' || s[5] == ' '))
		return true;
	return false;
}

enum fg_rcpt_class
fg_rcpt_classify(const char *rcpt_mailer, const char *rcpt_host,
                 const char *rcpt_addr)
{
	if (rcpt_mailer == NULL || strcasecmp(rcpt_mailer, "error") != 0)
		return FG_RCPT_VALID;
	if (rcpt_host != NULL && status_is_unknown_user(rcpt_host))
		return FG_RCPT_INVALID;
	if (rcpt_addr != NULL) {
		if (status_is_unknown_user(rcpt_addr))
			return FG_RCPT_INVALID;
		for (size_t i = 0;
		     i < sizeof(unknown_texts) / sizeof(unknown_texts[0]); i++)
			if (contains_ci(rcpt_addr, unknown_texts[i]))
				return FG_RCPT_INVALID;
	}
	return FG_RCPT_REJECTED;
}
