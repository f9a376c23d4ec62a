/*
 * store_writer.c - the bounded queue between recording threads and the
 * database, and the one thread that empties it.
 *
 * Producers (fg_store_record and friends) append a row under qmu and
 * never wait for anything else; a full queue refuses the row.  The writer
 * copies up to FG_STORE_BATCH_ROWS row pointers from the head, commits
 * them in one transaction without holding qmu, and only then removes them
 * from the queue: rows that could not be committed (a lock held by an
 * operator, a full disk) simply stay queued and are tried again on the
 * next tick, and count against the bound meanwhile.
 *
 * Ticks: a commit at least every flush interval (sooner when the queue is
 * half full or someone waits in fg_store_flush); every FG_STORE_POLL_MS a
 * look at PRAGMA data_version (bans changed by floodgatectl) and a few
 * small pruning statements.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fg.h"
#include "store_internal.h"

#define STOP_BUSY_MS 60000   /* close waits this long for a lock holder */
#define STOP_ERROR_MS 2000   /* and this long for a failing disk */
#define STOP_RETRY_MS 100
#define LOG_EVERY_MS 60000

void
fg_store_row_free(struct fg_row *row)
{
	free(row);
}

static void
deadline_ts(struct timespec *ts, int64_t mono_ms)
{
	ts->tv_sec = (time_t)(mono_ms / 1000);
	ts->tv_nsec = (long)(mono_ms % 1000) * 1000000L;
}

int
fg_store_enqueue(fg_store *st, struct fg_row *row)
{
	bool wake = false;

	pthread_mutex_lock(&st->qmu);
	if (fg_store_fold_into(st, row)) {
		pthread_mutex_unlock(&st->qmu);
		fg_store_row_free(row);
		return 0;
	}
	if (st->qcount >= st->qcap) {
		pthread_mutex_unlock(&st->qmu);
		return FG_EFULL;
	}
	st->q[(st->qhead + st->qcount) % st->qcap] = row;
	st->qcount++;
	st->q_pushed++;
	fg_store_fold_note(st, row);
	if (st->qcount >= st->qcap / 2 && !st->kick) {
		st->kick = true;
		wake = true;
	}
	pthread_mutex_unlock(&st->qmu);
	if (wake)
		pthread_cond_signal(&st->qcv);
	return 0;
}

static void
report_failure(fg_store *st, enum fg_db_rc rc, const char *what,
               const char *text, size_t rows)
{
	struct fg_ratelimit *rl = rc == FG_DB_BUSY ? &st->rl_busy
	                                           : &st->rl_error;
	uint64_t suppressed = 0;

	fg_store_set_error(st, text);
	if (!fg_ratelimit(rl, fg_store_mono_ms(), LOG_EVERY_MS, &suppressed))
		return;
	fg_log(rc == FG_DB_BUSY ? FG_LOG_WARNING : FG_LOG_ERR,
	       "store: %s: %s failed: %s; %zu row(s) kept queued, retrying "
	       "(%llu similar messages suppressed)",
	       st->path ? st->path : ":memory:", what, text, rows,
	       (unsigned long long)suppressed);
}

/* Rows given up for a full database: their counts were written. */
static void
note_full_drop(fg_store *st, size_t n)
{
	uint64_t suppressed = 0;

	atomic_fetch_add(&st->dropped, n);
	if (fg_ratelimit(&st->rl_dbfull, fg_store_mono_ms(), LOG_EVERY_MS,
	                 &suppressed))
		fg_log(FG_LOG_WARNING, "store: %s: the database is full even "
		       "without its oldest rows: %zu rows dropped, their counts "
		       "written (%llu similar messages suppressed, %llu rows "
		       "dropped in all)", st->path ? st->path : ":memory:", n,
		       (unsigned long long)suppressed,
		       (unsigned long long)atomic_load(&st->dropped));
}

/*
 * Commits everything queued (in batches) and the dirty bans and levels.
 * Returns the outcome of the last transaction tried.
 */
static enum fg_db_rc
drain(fg_store *st, struct fg_row **batch)
{
	char err[256];
	bool made_room = false, counts_only = false;
	enum fg_db_rc rc;

	if ((rc = fg_store_db_check(st, err, sizeof(err))) != FG_DB_OK) {
		size_t queued;

		pthread_mutex_lock(&st->qmu);
		queued = st->qcount;
		pthread_mutex_unlock(&st->qmu);
		atomic_store(&st->healthy, false);
		report_failure(st, rc, "opening the file again", err, queued);
		atomic_fetch_add(&st->write_errors, 1);
		return rc;
	}
	for (;;) {
		struct fg_ban_op *bans = NULL;
		struct fg_level_op *lvls = NULL;
		struct fg_allow_op *allows = NULL;
		size_t n, nbans = 0, nlvls = 0, nallows = 0;
		enum fg_db_rc arc;
		uint64_t gen = atomic_load(&st->mod_gen);

		pthread_mutex_lock(&st->qmu);
		n = st->qcount < FG_STORE_BATCH_ROWS ? st->qcount
		                                     : FG_STORE_BATCH_ROWS;
		for (size_t i = 0; i < n; i++)
			batch[i] = st->q[(st->qhead + i) % st->qcap];
		fg_store_fold_reset(st);   /* the batch no longer changes */
		pthread_mutex_unlock(&st->qmu);

		/* Out of memory here leaves the marks set: next tick. */
		fg_store_ban_collect(st, &bans, &nbans);
		fg_store_level_collect(st, &lvls, &nlvls);
		/* Allows received from other hosts (in memory already), in
		 * a transaction of their own. */
		fg_store_allow_collect(st, &allows, &nallows);
		arc = nallows > 0 ? fg_store_db_allows(st, allows, nallows, err,
		                                       sizeof(err))
		                  : FG_DB_OK;
		fg_store_allow_done(st, allows, nallows, arc == FG_DB_OK);
		if (arc != FG_DB_OK)
			report_failure(st, arc, "writing allows from other hosts",
			               err, nallows);

		rc = FG_DB_OK;
		if (n > 0 || nbans > 0 || nlvls > 0) {
			int64_t t0 = fg_store_mono_ms();
			struct timespec wall;

			rc = fg_store_db_commit(st, batch, n, counts_only, bans,
			                        nbans, lvls, nlvls, err,
			                        sizeof(err));
			if (rc == FG_DB_OK) {
				clock_gettime(CLOCK_REALTIME, &wall);
				atomic_fetch_add(&st->commits, 1);
				atomic_fetch_add(&st->commit_ms_sum,
				                 (uint64_t)(fg_store_mono_ms() - t0));
				atomic_store(&st->last_commit_ms,
				             (int64_t)wall.tv_sec * 1000 +
				                 wall.tv_nsec / 1000000);
			}
		}
		fg_store_ban_done(st, bans, nbans, rc == FG_DB_OK);
		fg_store_level_done(st, lvls, nlvls, rc == FG_DB_OK);
		/* The disk or the file is full: the oldest events and
		 * verdicts make room, and the batch is tried once more; if
		 * it is still too big, its rows go and only what they add
		 * to the counts is written, with the bans and levels. */
		if (rc == FG_DB_FULL && !made_room) {
			made_room = true;
			if (fg_store_db_make_room(st, err, sizeof(err)) ==
			    FG_DB_OK)
				continue;
		}
		if (rc == FG_DB_FULL && !counts_only && n > 0) {
			counts_only = true;
			continue;
		}
		if (rc != FG_DB_OK) {
			/* The count last: a reader who sees it sees the rest. */
			if (rc != FG_DB_BUSY)
				atomic_store(&st->healthy, false);
			report_failure(st, rc, "commit", err, n);
			atomic_fetch_add(&st->write_errors, 1);
			return rc;
		}

		/* Statistics first: a flush waiter reads them next. */
		if (counts_only)
			note_full_drop(st, n);
		else
			atomic_fetch_add(&st->written, n);
		made_room = counts_only = false;
		if (!atomic_exchange(&st->healthy, true))
			fg_log(FG_LOG_INFO, "store: %s: writes succeed again",
			       st->path ? st->path : ":memory:");
		pthread_mutex_lock(&st->qmu);
		st->qhead = (st->qhead + n) % st->qcap;
		st->qcount -= n;
		st->q_done += n;
		if (gen > st->persisted_gen && arc == FG_DB_OK)
			st->persisted_gen = gen;
		pthread_mutex_unlock(&st->qmu);
		pthread_cond_broadcast(&st->fcv);

		for (size_t i = 0; i < n; i++)
			fg_store_row_free(batch[i]);
		if (n < FG_STORE_BATCH_ROWS)
			return FG_DB_OK;
	}
}

static void
housekeeping(fg_store *st)
{
	int64_t now = atomic_load(&st->prune_now_ms);
	enum fg_db_rc rc;
	char err[256];
	uint64_t suppressed = 0;

	if (st->path != NULL &&
	    fg_store_db_poll(st, err, sizeof(err)) != FG_DB_OK &&
	    fg_ratelimit(&st->rl_reload, fg_store_mono_ms(), LOG_EVERY_MS,
	                 &suppressed))
		fg_log(FG_LOG_WARNING, "store: %s: reading bans failed: %s "
		       "(%llu similar messages suppressed)", st->path, err,
		       (unsigned long long)suppressed);
	if (st->path != NULL)
		fg_store_status_write(st);
	if ((rc = fg_store_db_prune(st, now, err, sizeof(err))) != FG_DB_OK &&
	    fg_ratelimit(&st->rl_prune, fg_store_mono_ms(), LOG_EVERY_MS,
	                 &suppressed))
		fg_log(rc == FG_DB_BUSY ? FG_LOG_WARNING : FG_LOG_ERR,
		       "store: %s: pruning failed: %s (%llu similar messages "
		       "suppressed)", st->path ? st->path : ":memory:", err,
		       (unsigned long long)suppressed);
}

/* At close, after giving up: what is still queued is lost. */
static void
discard(fg_store *st)
{
	size_t n;

	pthread_mutex_lock(&st->qmu);
	n = st->qcount;
	fg_store_fold_reset(st);
	while (st->qcount > 0) {
		fg_store_row_free(st->q[st->qhead]);
		st->qhead = (st->qhead + 1) % st->qcap;
		st->qcount--;
		st->q_done++;
	}
	pthread_mutex_unlock(&st->qmu);
	pthread_cond_broadcast(&st->fcv);
	atomic_fetch_add(&st->dropped, n);
	if (n > 0)
		fg_log(FG_LOG_ERR, "store: %s: closing with the database "
		       "failing: %zu row(s) lost", st->path ? st->path : ":memory:",
		       n);
}

static void *
writer_main(void *arg)
{
	fg_store *st = arg;
	struct fg_row **batch = st->batch;
	int64_t interval = st->opt.flush_interval_ms;
	int64_t now = fg_store_mono_ms();
	int64_t next_flush = now + interval, next_poll = now + FG_STORE_POLL_MS;
	int64_t stop_since = 0, lead = 0;
	bool failing = false, busy = false;

	pthread_mutex_lock(&st->qmu);
	for (;;) {
		bool due;

		/* A kick (queue half full) does not hurry a failing writer:
		 * it retries once per tick. */
		while (!st->stop && !st->flush_req && !(st->kick && !failing)) {
			struct timespec ts;
			int64_t until = next_flush - lead < next_poll
			                ? next_flush - lead : next_poll;

			if (fg_store_mono_ms() >= until)
				break;
			deadline_ts(&ts, until);
			pthread_cond_timedwait(&st->qcv, &st->qmu, &ts);
		}
		now = fg_store_mono_ms();
		due = st->stop || st->flush_req || (st->kick && !failing) ||
		      now >= next_flush - lead;
		bool stopping = st->stop;
		st->flush_req = false;
		st->kick = false;
		pthread_mutex_unlock(&st->qmu);

		if (due) {
			enum fg_db_rc rc = drain(st, batch);
			int64_t took = fg_store_mono_ms() - now;

			failing = rc != FG_DB_OK;
			busy = rc == FG_DB_BUSY;
			/* Ticks at a fixed rate, and each starts as early as
			 * the last drain took, so that it has committed by
			 * the tick: a crash loses at most one interval of
			 * rows.  A drain that overran is followed soon. */
			if (now >= next_flush - lead)
				next_flush += interval;
			lead = took < interval / 2 ? took : interval / 2;
			if ((now = fg_store_mono_ms()) >= next_flush - lead)
				next_flush = now + lead + interval / 4;
		}
		if (fg_store_mono_ms() >= next_poll) {
			housekeeping(st);
			next_poll = fg_store_mono_ms() + FG_STORE_POLL_MS;
		}

		pthread_mutex_lock(&st->qmu);
		if (!stopping)
			continue;
		if (!failing)
			break;
		now = fg_store_mono_ms();
		if (stop_since == 0)
			stop_since = now;
		if (now - stop_since >= (busy ? STOP_BUSY_MS : STOP_ERROR_MS)) {
			pthread_mutex_unlock(&st->qmu);
			discard(st);
			pthread_mutex_lock(&st->qmu);
			break;
		}
		struct timespec ts;
		deadline_ts(&ts, now + STOP_RETRY_MS);
		pthread_cond_timedwait(&st->qcv, &st->qmu, &ts);
	}
	pthread_mutex_unlock(&st->qmu);
	return NULL;
}

int
fg_store_writer_start(fg_store *st, char *err, size_t errlen)
{
	int rc;

	st->qcap = st->opt.queue_size;
	st->q = calloc(st->qcap, sizeof(*st->q));
	st->batch = calloc(FG_STORE_BATCH_ROWS, sizeof(*st->batch));
	if (st->q == NULL || st->batch == NULL) {
		snprintf(err, errlen, "writer queue: out of memory");
		return FG_ENOMEM;
	}
	/* Set before the thread exists: creation orders it for the thread. */
	st->thread_running = true;
	if ((rc = pthread_create(&st->thread, NULL, writer_main, st)) != 0) {
		st->thread_running = false;
		snprintf(err, errlen, "writer thread: %s", strerror(rc));
		return FG_ESYS;
	}
	return 0;
}

void
fg_store_writer_stop(fg_store *st)
{
	if (st->thread_running) {
		pthread_mutex_lock(&st->qmu);
		st->stop = true;
		pthread_mutex_unlock(&st->qmu);
		pthread_cond_signal(&st->qcv);
		pthread_join(st->thread, NULL);
		pthread_mutex_lock(&st->qmu);
		st->thread_running = false;
		pthread_mutex_unlock(&st->qmu);
	}
	fg_store_fold_free(st);
	if (st->q != NULL) {
		while (st->qcount > 0) {
			fg_store_row_free(st->q[st->qhead]);
			st->qhead = (st->qhead + 1) % st->qcap;
			st->qcount--;
		}
		free(st->q);
		st->q = NULL;
	}
	free(st->batch);
	st->batch = NULL;
}

int
fg_store_flush(fg_store *st, int timeout_ms)
{
	int64_t deadline;
	uint64_t rows, gen;
	int rc = 0;

	if (st == NULL)
		return FG_EINVAL;
	if (st->opt.counters_only)
		return 0;
	deadline = fg_store_mono_ms() + (timeout_ms < 0 ? 0 : timeout_ms);
	pthread_mutex_lock(&st->qmu);
	rows = st->q_pushed;
	gen = atomic_load(&st->mod_gen);
	st->flush_req = true;
	pthread_cond_signal(&st->qcv);
	while (st->q_done < rows || st->persisted_gen < gen) {
		struct timespec ts;

		if (!st->thread_running || fg_store_mono_ms() >= deadline) {
			rc = FG_EBUSY;
			break;
		}
		deadline_ts(&ts, deadline);
		pthread_cond_timedwait(&st->fcv, &st->qmu, &ts);
	}
	pthread_mutex_unlock(&st->qmu);
	return rc;
}
