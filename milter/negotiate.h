/*
 * negotiate.h - what floodgate asks of the MTA at negotiation: the
 * protocol steps it can do without, rejected recipients (SMFIP_RCPT_REJ)
 * if offered, and the macros it reads at each stage.  Shared with
 * bench/noop_milter, which must ask for exactly the same to be a fair
 * baseline.
 */
#ifndef FG_NEGOTIATE_H
#define FG_NEGOTIATE_H

#include <libmilter/mfapi.h>

/* Sets the answers from the MTA's offer f1; no actions (we never
 * modify a message), no further steps. */
static inline void
fg_negotiate_ask(SMFICTX *ctx, unsigned long f1, unsigned long *pf0,
                 unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
	unsigned long want = SMFIP_NOBODY | SMFIP_NOHDRS | SMFIP_NOEOH |
	                     SMFIP_NOUNKNOWN | SMFIP_NODATA;

	*pf0 = 0;
	*pf1 = (f1 & SMFIP_RCPT_REJ) | (f1 & want);
	*pf2 = 0;
	*pf3 = 0;
	/* Ask for the macros we read; MTAs that cannot honour this send
	 * their defaults. */
	smfi_setsymlist(ctx, SMFIM_CONNECT,
	                "j {daemon_name} {daemon_port} {client_connections}");
	smfi_setsymlist(ctx, SMFIM_HELO, "{client_connections}");
	smfi_setsymlist(ctx, SMFIM_ENVFROM,
	                "i {auth_authen} {auth_type} {mail_addr}");
	smfi_setsymlist(ctx, SMFIM_ENVRCPT,
	                "i {rcpt_mailer} {rcpt_host} {rcpt_addr}");
}

#endif
