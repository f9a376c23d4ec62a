/*
 * replay.h - what the replay engine (cmd_replay.c) hands the report
 * (replay_report.c): the verdicts of both sides, the bans the replay
 * set, and a few totals.  The report sorts and marks the lists in place;
 * the engine frees them.
 */
#ifndef FG_CTL_REPLAY_H
#define FG_CTL_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctl.h"
#include "keys.h"
#include "net.h"

/* One verdict, of the daemon's record or of the replay, as glue.c
 * records it: the comparison is on time, session, stage, rule, key,
 * action and the monitor flag. */
struct rv {
	int64_t time_ms;
	uint64_t session;
	char client[FG_ADDR_STRLEN];
	char stage[12];
	char rule[72];
	char key[FG_KEY_MAX];
	char action[16];
	bool monitor;
	bool daemon;       /* recorded by the daemon (else: the replay) */
	bool matched;      /* the other side has the same */
	bool external;     /* a daemon refusal by a ban the replay lacks */
};

struct rvlist {
	struct rv *v;
	size_t n, cap;
};

/* A ban the replay set. */
struct rban {
	char key[FG_KEY_MAX];
	int64_t from, until;
	char reason[256];
};

struct replay_result {
	const char *conf;              /* the proposed configuration */
	int64_t since, until;          /* the period reported */
	int64_t events, warm, sessions;
	struct rvlist mine, theirs;
	struct rban *bans;
	size_t nbans, bcap;
};

/* Compares the two sides and prints the report (tables or JSON); at
 * most limit rows per list (0: all). */
void replay_report(const struct ctl *c, struct replay_result *res,
                   size_t limit);

#endif
