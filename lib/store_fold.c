/*
 * store_fold.c - identical rows of one second folded into one while they
 * wait in the queue (store.h, "Folding").
 *
 * A small open-addressing table, under qmu, points at the foldable rows
 * the writer has not taken yet.  A row that finds its twin there adds
 * its n to it and is freed; one that does not is queued and entered.  The
 * writer empties the table whenever it takes rows from the queue, so a
 * row it is committing never changes, and a row no longer in the table
 * simply takes no more in.  When the table is three quarters full, rows
 * are queued without being entered: folding is an economy, never a
 * condition.
 */
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

#define FOLD_MAX (FG_STORE_FOLD_SLOTS / 4 * 3)

/* A connect row may go into any session's; other rows carry the session
 * their connect went into, and fold only with rows of that session. */
static bool
any_session(const struct fg_row *r)
{
	return r->type == FG_ROW_EVENT && r->u.ev.kind == FG_EV_CONNECT;
}

static uint64_t
mix(uint64_t h, uint64_t v)
{
	h ^= v + UINT64_C(0x9e3779b97f4a7c15) + (h << 6) + (h >> 2);
	return h;
}

/* Everything identical rows share: the strings (and keys) in buf, which
 * of them are NULL, the second, the kind or the verdict's numbers. */
void
fg_store_fold_hash(fg_store *st, struct fg_row *r)
{
	uint64_t h = fg_store_hash(st, r->buf, r->len);

	h = mix(h, (uint64_t)r->type);
	h = mix(h, (uint64_t)(r->time_ms / 1000));
	h = mix(h, r->nulls);
	if (!any_session(r))
		h = mix(h, r->session_id);
	if (r->type == FG_ROW_EVENT) {
		h = mix(h, (uint64_t)r->u.ev.kind);
		h = mix(h, (uint64_t)r->u.ev.cls);
		h = mix(h, (uint64_t)r->u.ev.auth);
		h = mix(h, (uint64_t)r->u.ev.nkeys);
	} else {
		h = mix(h, (uint64_t)r->u.vd.limit);
		h = mix(h, (uint64_t)r->u.vd.window_ms);
		h = mix(h, (uint64_t)r->u.vd.delay_ms);
		h = mix(h, (uint64_t)r->u.vd.monitor);
	}
	r->fold_hash = h;
}

static bool
same(const struct fg_row *a, const struct fg_row *b)
{
	if (a->fold_hash != b->fold_hash || a->type != b->type ||
	    a->time_ms / 1000 != b->time_ms / 1000 || a->nulls != b->nulls ||
	    a->len != b->len)
		return false;
	if (!any_session(a) && a->session_id != b->session_id)
		return false;
	if (a->type == FG_ROW_EVENT) {
		if (a->u.ev.kind != b->u.ev.kind || a->u.ev.cls != b->u.ev.cls ||
		    a->u.ev.auth != b->u.ev.auth ||
		    a->u.ev.nkeys != b->u.ev.nkeys)
			return false;
	} else if (a->u.vd.limit != b->u.vd.limit ||
	           a->u.vd.window_ms != b->u.vd.window_ms ||
	           a->u.vd.delay_ms != b->u.vd.delay_ms ||
	           a->u.vd.monitor != b->u.vd.monitor) {
		return false;
	}
	return memcmp(a->buf, b->buf, a->len) == 0;
}

bool
fg_store_fold_into(fg_store *st, const struct fg_row *row)
{
	size_t mask = FG_STORE_FOLD_SLOTS - 1;

	if (!row->foldable || st->fold_tab == NULL)
		return false;
	for (size_t i = row->fold_hash & mask;; i = (i + 1) & mask) {
		struct fg_row *r = st->fold_tab[i];

		if (r == NULL)
			return false;
		if (!same(r, row))
			continue;
		r->n = r->n + row->n < r->n ? UINT32_MAX : r->n + row->n;
		if (row->fold_out != NULL) {
			row->fold_out->session_id = r->session_id;
			row->fold_out->time_ms = r->time_ms;
		}
		return true;
	}
}

void
fg_store_fold_note(fg_store *st, struct fg_row *row)
{
	size_t mask = FG_STORE_FOLD_SLOTS - 1, i;

	row->fold_out = NULL;
	if (!row->foldable || st->fold_used >= FOLD_MAX)
		return;
	if (st->fold_tab == NULL &&
	    (st->fold_tab = calloc(FG_STORE_FOLD_SLOTS,
	                           sizeof(*st->fold_tab))) == NULL)
		return;
	for (i = row->fold_hash & mask; st->fold_tab[i] != NULL;
	     i = (i + 1) & mask)
		;
	st->fold_tab[i] = row;
	st->fold_used++;
}

void
fg_store_fold_reset(fg_store *st)
{
	if (st->fold_used == 0)
		return;
	memset(st->fold_tab, 0, FG_STORE_FOLD_SLOTS * sizeof(*st->fold_tab));
	st->fold_used = 0;
}

void
fg_store_fold_free(fg_store *st)
{
	free(st->fold_tab);
	st->fold_tab = NULL;
	st->fold_used = 0;
}
