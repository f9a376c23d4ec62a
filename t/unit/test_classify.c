/*
 * test_classify.c - what counts as an unknown recipient: the MTAs'
 * recipient macros as Postfix and sendmail really send them (see
 * MTA-FACTS and t/mta), and what must not count.
 */
#include <stddef.h>
#include <stdio.h>

#include "classify.h"
#include "fg.h"
#include "tap.h"

static const struct {
	const char *mailer, *host, *addr;
	enum fg_rcpt_class want;
	const char *what;
} cases[] = {
	/* Accepted recipients: any mailer but "error". */
	{"local", "mx.example.org", "alice", FG_RCPT_VALID, "Postfix local"},
	{"smtp", "relay.example.net", "bob@example.net", FG_RCPT_VALID,
	 "a relayed recipient"},
	{"esmtp", "[192.0.2.1]", "x@y", FG_RCPT_VALID, "sendmail esmtp"},
	{NULL, NULL, NULL, FG_RCPT_VALID, "no macros at all"},
	{NULL, "5.1.1", "User unknown", FG_RCPT_VALID,
	 "no {rcpt_mailer}: cannot tell, counted as valid"},
	{"Error-Not", "5.1.1", "User unknown", FG_RCPT_VALID,
	 "a mailer merely starting with error"},

	/* Unknown users, as the MTAs say it. */
	{"error", "5.1.1",
	 "Recipient address rejected: User unknown in local recipient table",
	 FG_RCPT_INVALID, "Postfix: unknown local user"},
	{"error", "5.1.1",
	 "Recipient address rejected: User unknown in virtual mailbox table",
	 FG_RCPT_INVALID, "Postfix: unknown virtual user"},
	{"error", "5.1.1", "550 5.1.1 User unknown", FG_RCPT_INVALID,
	 "sendmail: unknown user"},
	{"ERROR", "5.1.1", NULL, FG_RCPT_INVALID,
	 "mailer in upper case, status only"},
	{"error", "4.1.1", "try later", FG_RCPT_INVALID,
	 "a temporary 4.1.1 is still an unknown user"},
	{"error", " 5.1.1", NULL, FG_RCPT_INVALID, "status after a space"},
	{"error", "550", "550 5.1.1 <x@y>... User unknown", FG_RCPT_INVALID,
	 "status in the text, not the host"},
	{"error", NULL, "No such user here", FG_RCPT_INVALID,
	 "no status, the text says no such user"},
	{"error", "5.0.0", "Mailbox unavailable", FG_RCPT_INVALID,
	 "mailbox unavailable"},
	{"error", "5.0.0", "user@example.org does not exist",
	 FG_RCPT_INVALID, "does not exist"},

	/* Rejected for another reason: not a harvest signal. */
	{"error", "5.7.1", "Relay access denied", FG_RCPT_REJECTED,
	 "relay denied"},
	{"error", "5.7.1", "Client host rejected: Access denied",
	 FG_RCPT_REJECTED, "an access map"},
	{"error", "4.7.1", "Service unavailable; Client host [192.0.2.1] "
	 "blocked using zen.example", FG_RCPT_REJECTED, "an RBL"},
	{"error", "5.1.0", "Address rejected", FG_RCPT_REJECTED,
	 "5.1.0 (bad address) is not x.1.1"},
	{"error", "5.1.10", "Recipient address has null MX",
	 FG_RCPT_REJECTED, "5.1.10 (null MX) is not 5.1.1"},
	{"error", "5.1.11", NULL, FG_RCPT_REJECTED, "5.1.11"},
	{"error", NULL, NULL, FG_RCPT_REJECTED, "error with nothing else"},
	{"error", "", "", FG_RCPT_REJECTED, "error with empty macros"},
	{"error", "5.2.2", "Mailbox full", FG_RCPT_REJECTED, "mailbox full"},
};

int
main(void)
{
	for (size_t i = 0; i < FG_NELEM(cases); i++)
		is_int(fg_rcpt_classify(cases[i].mailer, cases[i].host,
		                        cases[i].addr),
		       cases[i].want, "%s", cases[i].what);
	return tap_done();
}
