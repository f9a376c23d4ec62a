/*
 * doctor.h - what the two files of "floodgatectl doctor" share.
 *
 * cmd_doctor.c owns the command: options, the report (one line per
 * check, OK / WARN / FAIL, the worst one is the exit status), the checks
 * that need no MTA (floodgate's configuration, the live negotiation) and
 * the socket helpers.  doctor_mta.c reads the MTAs' configurations
 * (Postfix through postconf, sendmail through its .cf) and runs the
 * checks that need them.
 *
 * Everything is read-only.  Single-threaded; memory exhaustion ends the
 * program (xmalloc).
 */
#ifndef FG_DOCTOR_H
#define FG_DOCTOR_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"

enum dr_level { DR_OK = 0, DR_WARN = 1, DR_FAIL = 2 };

struct dr;   /* the report: defined in cmd_doctor.c */

/* One line: "LEVEL  check: detail[; fix: fix]".  fix may be NULL. */
void dr_report(struct dr *d, enum dr_level level, const char *check,
               const char *fix, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* A milter socket, from either syntax. */
enum dr_kind { DR_UNIX, DR_INET, DR_INET6 };
struct dr_sock {
	enum dr_kind kind;
	char path[PATH_MAX];     /* DR_UNIX */
	char host[256];          /* DR_INET*: "" = any address */
	unsigned port;
};
/* libmilter's syntax (floodgate.conf, sendmail's S=): unix:/p, local:/p,
 * /p, inet:PORT[@HOST], inet6:PORT[@HOST].  0 or -1. */
int dr_sock_milter(const char *spec, struct dr_sock *s);
/* Postfix's syntax: unix:/p, local:/p, inet:HOST:PORT, inet:[HOST]:PORT.
 * 0 or -1. */
int dr_sock_postfix(const char *spec, struct dr_sock *s);
/* Whether the MTA's socket m (its unix path resolved under root, "" for
 * none) is floodgate's socket f. */
bool dr_sock_same(const struct dr_sock *m, const struct dr_sock *f,
                  const char *root);

/*
 * Whether user can connect to the unix socket path as seen from root
 * ("" = no chroot): every directory searchable, the socket writable, by
 * the modes; as root also by connecting from a child that chroots and
 * becomes user.  0 yes; -1 no, with the reason in why.
 */
int dr_reach(const char *root, const char *path, const char *user,
             char *why, size_t size);

/* Runs argv (argv[0] an absolute path), stdin and stderr /dev/null; its
 * standard output (NUL-terminated, caller frees) if it exited 0, else
 * NULL.  A program path: the first of the directories it is found in. */
char *dr_run(const char *const argv[]);
const char *dr_which(const char *prog, char *buf, size_t size);

/* doctor_mta.c: the checks of one MTA.  Return false when the MTA's
 * configuration cannot be read at all (reported as FAIL). */
struct dr_target {
	const struct fg_config *cfg;
	struct dr_sock fg;       /* floodgate's socket, parsed */
};
bool dr_postfix(struct dr *d, const struct dr_target *t, const char *dir);
bool dr_sendmail(struct dr *d, const struct dr_target *t, const char *cf);

#endif
