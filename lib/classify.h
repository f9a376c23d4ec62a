/*
 * classify.h - what the MTA's recipient macros say about a recipient.
 *
 * With SMFIP_RCPT_REJ both Postfix and sendmail pass recipients they have
 * already rejected, marked by {rcpt_mailer} = "error".  {rcpt_host} then
 * holds the enhanced status ("5.1.1") and {rcpt_addr} the reject text
 * (Postfix: "Recipient address rejected: User unknown in local recipient
 * table"; sendmail: "550 5.1.1 User unknown").  An unknown user is a
 * harvest signal; any other rejection (relay denied, RBL, policy) is not.
 *
 * Pure and reentrant; NULL arguments are allowed (missing macros).
 */
#ifndef FG_CLASSIFY_H
#define FG_CLASSIFY_H

#include "event.h"

enum fg_rcpt_class fg_rcpt_classify(const char *rcpt_mailer,
                                    const char *rcpt_host,
                                    const char *rcpt_addr);

#endif
