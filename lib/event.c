/*
 * event.c - names of event kinds, recipient classes and counters, and
 * which counters an event bumps (see event.h).
 */
#include "event.h"

#include <strings.h>

#include "fg.h"

static const char *const kind_names[] = {
	[FG_EV_CONNECT] = "connect",
	[FG_EV_HELO] = "helo",
	[FG_EV_MAIL] = "mail",
	[FG_EV_RCPT] = "rcpt",
	[FG_EV_CLOSE] = "close",
};

static const char *const class_names[] = {
	[FG_RCPT_NONE] = "none",
	[FG_RCPT_VALID] = "valid",
	[FG_RCPT_INVALID] = "invalid",
	[FG_RCPT_REJECTED] = "rejected",
};

static const char *const counter_names[] = {
	[FG_CNT_CONNECT] = "connect",
	[FG_CNT_HELO] = "helo",
	[FG_CNT_MAIL] = "mail",
	[FG_CNT_RCPT] = "rcpt",
	[FG_CNT_RCPT_VALID] = "valid",
	[FG_CNT_RCPT_INVALID] = "invalid",
	[FG_CNT_RCPT_REJECTED] = "rejected",
	[FG_CNT_RCPT_SAMPLE] = "sample",
};

static const char *
name_of(const char *const *names, size_t n, unsigned i)
{
	return i < n && names[i] != NULL ? names[i] : "unknown";
}

static int
parse_in(const char *const *names, size_t n, const char *name, int *out)
{
	if (name == NULL)
		return FG_EINVAL;
	for (size_t i = 0; i < n; i++)
		if (names[i] != NULL && strcasecmp(name, names[i]) == 0) {
			*out = (int)i;
			return 0;
		}
	return FG_EINVAL;
}

const char *
fg_event_kind_name(enum fg_event_kind k)
{
	return name_of(kind_names, FG_NELEM(kind_names), (unsigned)k);
}

const char *
fg_rcpt_class_name(enum fg_rcpt_class c)
{
	return name_of(class_names, FG_NELEM(class_names), (unsigned)c);
}

const char *
fg_counter_name(enum fg_counter c)
{
	return name_of(counter_names, FG_NELEM(counter_names), (unsigned)c);
}

int
fg_event_kind_parse(const char *name, enum fg_event_kind *out)
{
	int i, rc = parse_in(kind_names, FG_NELEM(kind_names), name, &i);

	if (rc == 0 && out != NULL)
		*out = (enum fg_event_kind)i;
	return rc;
}

int
fg_rcpt_class_parse(const char *name, enum fg_rcpt_class *out)
{
	int i, rc = parse_in(class_names, FG_NELEM(class_names), name, &i);

	if (rc == 0 && out != NULL)
		*out = (enum fg_rcpt_class)i;
	return rc;
}

int
fg_counter_parse(const char *name, enum fg_counter *out)
{
	int i, rc = parse_in(counter_names, FG_NELEM(counter_names), name, &i);

	if (rc == 0 && out != NULL)
		*out = (enum fg_counter)i;
	return rc;
}

size_t
fg_event_counters(enum fg_event_kind k, enum fg_rcpt_class c, bool sampled,
                  enum fg_counter out[FG_EVENT_MAX_COUNTERS])
{
	size_t n = 0;

	switch (k) {
	case FG_EV_CONNECT: out[n++] = FG_CNT_CONNECT; break;
	case FG_EV_HELO: out[n++] = FG_CNT_HELO; break;
	case FG_EV_MAIL: out[n++] = FG_CNT_MAIL; break;
	case FG_EV_RCPT: out[n++] = FG_CNT_RCPT; break;
	case FG_EV_CLOSE:
	default:
		return 0;
	}
	switch (c) {
	case FG_RCPT_NONE:
		return n;
	case FG_RCPT_VALID:
	case FG_RCPT_INVALID:
	case FG_RCPT_REJECTED:
		if (k != FG_EV_RCPT)
			return 0;
		out[n++] = c == FG_RCPT_VALID ? FG_CNT_RCPT_VALID
		         : c == FG_RCPT_INVALID ? FG_CNT_RCPT_INVALID
		                                : FG_CNT_RCPT_REJECTED;
		if (sampled && c != FG_RCPT_REJECTED)
			out[n++] = FG_CNT_RCPT_SAMPLE;
		return n;
	}
	return 0;
}
