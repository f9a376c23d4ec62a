/*
 * store_status.c - the status row (see store.h): totals of verdicts by
 * rule, action and mode, kept in memory, and the row the writer thread
 * writes about once a second for floodgatectl status and metrics.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fg.h"
#include "store_internal.h"

void
fg_store_status_init(fg_store *st)
{
	pthread_mutex_init(&st->vt_mu, NULL);
	st->vtotals = NULL;
	st->nvtotals = st->vtcap = 0;
}

void
fg_store_status_free(fg_store *st)
{
	free(st->vtotals);
	st->vtotals = NULL;
	pthread_mutex_destroy(&st->vt_mu);
}

void
fg_store_set_status_fn(fg_store *st, fg_store_status_fn *fn, void *arg)
{
	pthread_mutex_lock(&st->vt_mu);
	st->status_fn = fn;
	st->status_arg = arg;
	pthread_mutex_unlock(&st->vt_mu);
}

/* Counts one verdict.  The list is short (rules x actions) and scanned. */
void
fg_store_status_verdict(fg_store *st, const char *rule, const char *action,
                        bool monitor)
{
	struct fg_vtotal *t = NULL;

	if (rule == NULL || action == NULL)
		return;
	pthread_mutex_lock(&st->vt_mu);
	for (size_t i = 0; i < st->nvtotals; i++)
		if (st->vtotals[i].monitor == monitor &&
		    strncmp(st->vtotals[i].rule, rule,
		            sizeof(st->vtotals[i].rule) - 1) == 0 &&
		    strcmp(st->vtotals[i].action, action) == 0) {
			t = &st->vtotals[i];
			break;
		}
	if (t == NULL && st->nvtotals == st->vtcap && st->vtcap < 4096) {
		size_t cap = st->vtcap ? st->vtcap * 2 : 16;
		struct fg_vtotal *v = realloc(st->vtotals, cap * sizeof(*v));

		if (v != NULL) {
			st->vtotals = v;
			st->vtcap = cap;
		}
	}
	if (t == NULL && st->nvtotals < st->vtcap) {
		t = &st->vtotals[st->nvtotals++];
		memset(t, 0, sizeof(*t));
		snprintf(t->rule, sizeof(t->rule), "%s", rule);
		snprintf(t->action, sizeof(t->action), "%s", action);
		t->monitor = monitor;
	}
	if (t != NULL)
		t->n++;
	pthread_mutex_unlock(&st->vt_mu);
}

void
fg_store_status_write(fg_store *st)
{
	struct fg_status_row r;
	struct fg_vtotal *vt = NULL;
	struct fg_store_stats stats;
	struct timespec ts;
	size_t nvt = 0;
	char err[256];

	memset(&r, 0, sizeof(r));
	pthread_mutex_lock(&st->vt_mu);
	if (st->status_fn != NULL)
		st->status_fn(st->status_arg, &r.d);
	if (st->nvtotals > 0 &&
	    (vt = malloc(st->nvtotals * sizeof(*vt))) != NULL) {
		memcpy(vt, st->vtotals, st->nvtotals * sizeof(*vt));
		nvt = st->nvtotals;
	}
	pthread_mutex_unlock(&st->vt_mu);

	fg_store_get_stats(st, &stats);
	clock_gettime(CLOCK_REALTIME, &ts);
	r.updated_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	r.queued = stats.queued;
	r.queue_size = st->opt.queue_size;
	r.recorded = stats.recorded;
	r.written = stats.written;
	r.dropped = stats.dropped;
	r.write_errors = stats.write_errors;
	r.keys = stats.keys;
	r.memory = stats.memory;
	r.memory_limit = stats.memory_limit;
	r.keys_refused = stats.keys_refused;
	r.alloc_failures = stats.alloc_failures;
	r.db_size = stats.db_size;
	r.max_database_size = stats.max_database_size;
	r.size_pruned = stats.size_pruned;
	r.reopened = stats.reopened;
	r.healthy = stats.healthy;
	snprintf(r.last_error, sizeof(r.last_error), "%s", stats.last_error);
	r.commits = atomic_load(&st->commits);
	r.commit_ms_sum = atomic_load(&st->commit_ms_sum);
	r.last_commit_ms = atomic_load(&st->last_commit_ms);
	for (size_t k = 0; k <= FG_EV_CLOSE; k++)
		r.by_kind[k] = atomic_load(&st->by_kind[k]);
	/* A failure here is the failure of the commits: said there. */
	(void)fg_store_db_status(st, &r, vt, nvt, err, sizeof(err));
	free(vt);
}

/* Here, with the status row it feeds, rather than in store.c: the
 * writer asks for it, and store.c is above the writer. */
void
fg_store_get_stats(fg_store *st, struct fg_store_stats *out)
{
	if (st == NULL || out == NULL)
		return;
	memset(out, 0, sizeof(*out));
	out->recorded = atomic_load(&st->recorded);
	out->written = atomic_load(&st->written);
	out->dropped = atomic_load(&st->dropped);
	out->write_errors = atomic_load(&st->write_errors);
	out->keys = atomic_load(&st->nkeys);
	out->memory = atomic_load(&st->mem_bytes);
	out->memory_limit = st->opt.memory_limit;
	out->keys_refused = atomic_load(&st->keys_refused);
	out->alloc_failures = atomic_load(&st->alloc_failures);
	out->limited = out->memory_limit > 0 &&
	               out->memory >= out->memory_limit;
	out->db_size = atomic_load(&st->db_bytes);
	out->max_database_size = st->opt.max_database_size;
	out->size_pruned = atomic_load(&st->size_pruned);
	out->reopened = atomic_load(&st->reopened);
	out->healthy = atomic_load(&st->healthy);
	pthread_mutex_lock(&st->qmu);
	out->queued = st->qcount;
	pthread_mutex_unlock(&st->qmu);
	pthread_mutex_lock(&st->err_mu);
	memcpy(out->last_error, st->last_error, sizeof(out->last_error));
	pthread_mutex_unlock(&st->err_mu);
}
