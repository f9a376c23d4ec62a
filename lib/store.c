/*
 * store.c - the event store's public verbs (see store.h): open and close,
 * recording, counting, expiry, statistics, and the names of things.
 *
 * The pieces live in store_count.c (counters), store_ban.c (bans, levels
 * and resets), store_db.c (SQLite) and store_writer.c (queue and thread);
 * store_internal.h describes how they fit.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "fg.h"
#include "keys.h"
#include "store_internal.h"

#define MAX_TEXT 1024      /* longest string field kept in a row */
#define LOG_EVERY_MS 60000

/* floor(ms / 1000), also for times before the epoch. */
static int64_t
sec_of(int64_t ms)
{
	return ms / 1000 - (ms % 1000 < 0);
}

static bool
key_ok(const char *key)
{
	return key != NULL && key[0] != '\0' && strlen(key) < FG_KEY_MAX;
}

static void
seed_init(fg_store *st)
{
	if (getrandom(st->seed, sizeof(st->seed), GRND_NONBLOCK) ==
	    (ssize_t)sizeof(st->seed))
		return;
	/* No entropy yet (early boot): weaker, still varies per run. */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	st->seed[0] = (uint64_t)ts.tv_nsec * UINT64_C(0x9e3779b97f4a7c15) ^
	              (uint64_t)getpid();
	st->seed[1] = (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)st;
}

static void
store_free(fg_store *st)
{
	fg_store_writer_stop(st);
	fg_store_db_close(st);
	fg_store_count_free(st);
	fg_store_ban_free(st);
	fg_store_status_free(st);
	fg_store_allow_free(st);
	pthread_mutex_destroy(&st->qmu);
	pthread_cond_destroy(&st->qcv);
	pthread_cond_destroy(&st->fcv);
	pthread_mutex_destroy(&st->err_mu);
	free(st->path);
	free(st);
}

int
fg_store_open(const struct fg_store_options *opt, int64_t now_ms,
              fg_store **out, char *err, size_t errlen)
{
	static const struct fg_ratelimit rl0 = FG_RATELIMIT_INIT;
	pthread_condattr_t ca;
	fg_store *st;
	int rc;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (out == NULL || opt == NULL || opt->horizon_ms < 1000 ||
	    opt->retention_ms < 0 || opt->flush_interval_ms < 0 ||
	    opt->file_mode > 07777 || now_ms < 0) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "invalid store options");
		return FG_EINVAL;
	}
	*out = NULL;
	if ((st = calloc(1, sizeof(*st))) == NULL)
		return FG_ENOMEM;
	st->opt = *opt;
	if (st->opt.flush_interval_ms == 0)
		st->opt.flush_interval_ms = FG_STORE_DEFAULT_FLUSH_MS;
	if (st->opt.queue_size == 0)
		st->opt.queue_size = FG_STORE_DEFAULT_QUEUE;
	if (st->opt.file_mode == 0)
		st->opt.file_mode = FG_STORE_DEFAULT_MODE;
	if (opt->path != NULL && strcmp(opt->path, ":memory:") != 0 &&
	    (st->path = strdup(opt->path)) == NULL) {
		free(st);
		return FG_ENOMEM;
	}
	st->opt.path = st->path;
	st->horizon_s = st->opt.horizon_ms / 1000;
	seed_init(st);
	pthread_mutex_init(&st->qmu, NULL);
	pthread_mutex_init(&st->err_mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&st->qcv, &ca);
	pthread_cond_init(&st->fcv, &ca);
	pthread_condattr_destroy(&ca);
	atomic_init(&st->healthy, true);
	st->rl_full = st->rl_busy = st->rl_error = st->rl_prune =
	    st->rl_reload = st->rl_limit = st->rl_nomem = st->rl_size =
	    st->rl_dbfull = rl0;
	fg_store_ban_init(st);
	fg_store_status_init(st);
	fg_store_allow_init(st);
	if ((rc = fg_store_count_init(st)) < 0 ||
	    (!opt->counters_only &&
	     ((rc = fg_store_db_open(st, now_ms, err, errlen)) < 0 ||
	      (rc = fg_store_writer_start(st, err, errlen)) < 0))) {
		store_free(st);
		return rc;
	}
	*out = st;
	return 0;
}

void
fg_store_init_process(void)
{
	/* SQLITE_MISUSE once SQLite is initialised: then it is too late,
	 * which costs speed, not correctness. */
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

/* What the memory and the file came to, once, at close. */
static void
log_totals(fg_store *st)
{
	struct fg_store_stats s;

	fg_store_get_stats(st, &s);
	fg_log(s.keys_refused > 0 || s.alloc_failures > 0 ? FG_LOG_WARNING
	                                                   : FG_LOG_INFO,
	       "store: %llu keys in %llu bytes of memory (memory_limit "
	       "%llu), %llu key updates held back by the limit, %llu lost to "
	       "failed allocations; database %llu bytes (max_database_size "
	       "%llu), %llu oldest rows deleted for size, opened again %llu "
	       "times",
	       (unsigned long long)s.keys, (unsigned long long)s.memory,
	       (unsigned long long)s.memory_limit,
	       (unsigned long long)s.keys_refused,
	       (unsigned long long)s.alloc_failures,
	       (unsigned long long)s.db_size,
	       (unsigned long long)s.max_database_size,
	       (unsigned long long)s.size_pruned,
	       (unsigned long long)s.reopened);
}

void
fg_store_close(fg_store *st)
{
	if (st == NULL)
		return;
	if (st->path != NULL)
		log_totals(st);
	store_free(st);
}

/* The lengths of t[0..n) as kept (at most MAX_TEXT) into lens[]; the
 * bytes they need in a row. */
static size_t
text_measure(const char *const *t, size_t n, size_t *lens)
{
	size_t bytes = 0;

	for (size_t i = 0; i < n; i++) {
		lens[i] = t[i] == NULL ? 0 : strnlen(t[i], MAX_TEXT);
		bytes += t[i] == NULL ? 0 : lens[i] + 1;
	}
	return bytes;
}

/* Copies the n bytes of s to *p and a NUL (nothing for NULL). */
static const char *
text_copy(char **p, const char *s, size_t n)
{
	char *d = *p;

	if (s == NULL)
		return NULL;
	memcpy(d, s, n);
	d[n] = '\0';
	*p = d + n + 1;
	return d;
}

static bool
blank(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * A recipient as it is stored: the bare address, so that a query can say
 * rcpt = 'user@example.org'.  Blanks around it, then one pair of angle
 * brackets around it, then the blanks inside them are dropped: "<a@b>"
 * and " < a@b > " give "a@b", "<<a@b>>" gives "<a@b>", "<>" gives "".
 * Schema version 3 does the same to the rows of older files.
 */
static const char *
rcpt_copy(char **p, const char *s, size_t n)
{
	const char *b, *e;
	char *d = *p;

	if (s == NULL)
		return NULL;
	b = s;
	e = s + n;
	while (b < e && blank(*b))
		b++;
	while (e > b && blank(e[-1]))
		e--;
	if (e - b >= 2 && *b == '<' && e[-1] == '>') {
		b++;
		e--;
		while (b < e && blank(*b))
			b++;
		while (e > b && blank(e[-1]))
			e--;
	}
	memcpy(d, b, (size_t)(e - b));
	d[e - b] = '\0';
	*p = d + (e - b) + 1;
	return d;
}

/* The client's text for a row: the caller's, or formatted into buf. */
static const char *
client_text(const fg_addr *a, const char *text, char *buf, size_t size)
{
	if (a == NULL)
		return NULL;
	return text != NULL ? text : fg_addr_format(a, buf, size);
}

static void
note_drop(fg_store *st, int64_t now_ms)
{
	uint64_t suppressed = 0;

	atomic_fetch_add(&st->dropped, 1);
	if (fg_ratelimit(&st->rl_full, now_ms, LOG_EVERY_MS, &suppressed))
		fg_log(FG_LOG_WARNING, "store: writer queue full (%zu rows): "
		       "row dropped, counters still kept (%llu more dropped "
		       "since the last message, %llu in all)",
		       st->opt.queue_size, (unsigned long long)suppressed,
		       (unsigned long long)atomic_load(&st->dropped));
}

/* A new key the memory limit held back: counted, said once a minute. */
static void
note_limit(fg_store *st, const char *key)
{
	uint64_t suppressed = 0;
	char buf[64];

	atomic_fetch_add(&st->keys_refused, 1);
	if (fg_ratelimit(&st->rl_limit, fg_store_mono_ms(), LOG_EVERY_MS,
	                 &suppressed))
		fg_log(FG_LOG_WARNING, "store: memory_limit reached (%llu of "
		       "%llu bytes): new keys such as %s are not created, their "
		       "events count under the keys already held (%llu more "
		       "since the last message, %llu in all)",
		       (unsigned long long)atomic_load(&st->mem_bytes),
		       (unsigned long long)st->opt.memory_limit,
		       fg_sanitize(buf, sizeof(buf), key),
		       (unsigned long long)suppressed,
		       (unsigned long long)atomic_load(&st->keys_refused));
}

/* A key malloc failed for: counted, said once a minute; FG_ENOMEM. */
static int
note_nomem(fg_store *st, const char *key)
{
	uint64_t suppressed = 0;
	char buf[64];

	atomic_fetch_add(&st->alloc_failures, 1);
	if (fg_ratelimit(&st->rl_nomem, fg_store_mono_ms(), LOG_EVERY_MS,
	                 &suppressed))
		fg_log(FG_LOG_ERR, "store: out of memory: an event was not "
		       "counted under %s (%llu more since the last message, "
		       "%llu in all)", fg_sanitize(buf, sizeof(buf), key),
		       (unsigned long long)suppressed,
		       (unsigned long long)atomic_load(&st->alloc_failures));
	return FG_ENOMEM;
}

/*
 * Makes row foldable (store.h, "Folding"): a connect row (out set) says
 * whose row it went into through out, its own unless another's; any
 * other row carries the session its connect went into, if set.
 */
static void
fold_prepare(fg_store *st, struct fg_row *row, const char *const *texts,
             size_t ntexts, size_t len, struct fg_fold *out,
             uint64_t session_id)
{
	row->foldable = true;
	row->len = len;
	for (size_t i = 0; i < ntexts; i++)
		if (texts[i] == NULL)
			row->nulls |= 1u << i;
	if (out != NULL) {
		out->session_id = row->session_id;
		out->time_ms = row->time_ms;
		row->fold_out = out;
	} else if (session_id != 0) {
		row->session_id = session_id;
	}
	fg_store_fold_hash(st, row);
}

static int
enqueue(fg_store *st, struct fg_row *row, int64_t now_ms)
{
	if (fg_store_enqueue(st, row) == 0)
		return 0;
	fg_store_row_free(row);
	note_drop(st, now_ms);
	return FG_EFULL;
}

int
fg_store_record(fg_store *st, const struct fg_event *ev)
{
	const char *keys[FG_STORE_MAX_KEYS];
	size_t klens[FG_STORE_MAX_KEYS];
	uint64_t hashes[FG_STORE_MAX_KEYS];
	const char *texts[9];
	size_t tlen[9];
	char cbuf[FG_ADDR_STRLEN];
	enum fg_counter ctrs[FG_EVENT_MAX_COUNTERS];
	size_t nkeys = 0, nctr, len = 0;
	int nomem = 0, rc;
	struct fg_row *row;
	const struct fg_store_hooks *hooks;
	char *p;
	uint32_t sec;

	if (st == NULL || ev == NULL || ev->nkeys > FG_STORE_MAX_KEYS ||
	    (ev->nkeys > 0 && ev->keys == NULL) || ev->time_ms < 0 ||
	    ev->time_ms / 1000 > UINT32_MAX)
		return FG_EINVAL;
	nctr = fg_event_counters(ev->kind, ev->rcpt_class, ev->rcpt_sampled,
	                         ctrs);
	if (nctr == 0 && ev->kind != FG_EV_CLOSE)
		return FG_EINVAL;
	/* Each distinct key once: a key listed twice counts once. */
	if (ev->keys_made != NULL && ev->keys_distinct) {
		for (size_t i = 0; i < ev->nkeys; i++) {
			keys[i] = ev->keys_made[i].text;
			klens[i] = ev->keys_made[i].len;
			hashes[i] = ev->keys_made[i].hash;
			if (keys[i] == NULL || klens[i] == 0 ||
			    klens[i] >= FG_KEY_MAX)
				return FG_EINVAL;
		}
		nkeys = ev->nkeys;
	} else {
		for (size_t i = 0; i < ev->nkeys; i++) {
			size_t k = nkeys;

			if (!key_ok(ev->keys[i]))
				return FG_EINVAL;
			if (!ev->keys_distinct)
				for (k = 0; k < nkeys; k++)
					if (strcmp(keys[k], ev->keys[i]) == 0)
						break;
			if (k == nkeys)
				keys[nkeys++] = ev->keys[i];
		}
	}

	/* Each key hashed once (or never, when the caller made it): for
	 * its counters here, and for the writer's aggregates. */
	if (ev->keys_made == NULL || !ev->keys_distinct) {
		for (size_t i = 0; i < nkeys; i++) {
			klens[i] = strlen(keys[i]);
			hashes[i] = fg_store_hash(st, keys[i], klens[i]);
		}
	}
	if (ev->part == FG_RECORD_ROW)
		goto row;
	sec = (uint32_t)(ev->time_ms / 1000);
	for (size_t i = 0; i < nkeys && nctr > 0;) {
		rc = fg_store_count_bump(st, keys[i], klens[i], hashes[i], ctrs,
		                         nctr, sec);
		if (rc > 0) {
			/* Not in memory, not in the counts table either:
			 * the table is what memory is rebuilt from. */
			note_limit(st, keys[i]);
			--nkeys;
			keys[i] = keys[nkeys];
			klens[i] = klens[nkeys];
			hashes[i] = hashes[nkeys];
			continue;
		}
		if (rc < 0)
			nomem = note_nomem(st, keys[i]);
		i++;
	}
	atomic_fetch_add(&st->recorded, 1);
	atomic_fetch_add_explicit(&st->by_kind[ev->kind], 1, memory_order_relaxed);
	hooks = atomic_load_explicit(&st->hooks, memory_order_acquire);
	if (hooks != NULL && hooks->record != NULL)
		for (size_t i = 0; i < nkeys && nctr > 0; i++)
			hooks->record(hooks->arg, keys[i], ctrs, nctr, ev->time_ms);
	if (st->opt.counters_only || ev->part == FG_RECORD_COUNT)
		return nomem;
row:
	if (st->opt.counters_only)
		return 0;
	texts[0] = ev->network;
	texts[1] = ev->helo;
	texts[2] = ev->sender;
	texts[3] = ev->rcpt;
	texts[4] = ev->queue_id;
	texts[5] = ev->status;
	texts[6] = client_text(ev->client, ev->client_text, cbuf, sizeof(cbuf));
	texts[7] = ev->host;
	texts[8] = ev->daemon;
	/* The hashes first in buf, which is aligned for them. */
	len = nkeys * sizeof(uint64_t) +
	      text_measure(texts, FG_NELEM(texts), tlen);
	for (size_t i = 0; i < nkeys; i++)
		len += klens[i] + 1;
	if ((row = malloc(sizeof(*row) + len)) == NULL) {
		note_drop(st, ev->time_ms);
		return FG_ENOMEM;
	}
	memset(row, 0, sizeof(*row));
	memcpy(row->buf, hashes, nkeys * sizeof(uint64_t));
	row->u.ev.hashes = (const uint64_t *)(void *)row->buf;
	p = row->buf + nkeys * sizeof(uint64_t);
	row->n = 1;
	row->type = FG_ROW_EVENT;
	row->time_ms = ev->time_ms;
	row->session_id = ev->session_id;
	row->client = text_copy(&p, texts[6], tlen[6]);
	row->u.ev.kind = ev->kind;
	row->u.ev.cls = ev->rcpt_class;
	row->u.ev.sampled = ev->rcpt_sampled;
	row->u.ev.network = text_copy(&p, texts[0], tlen[0]);
	row->u.ev.helo = text_copy(&p, texts[1], tlen[1]);
	row->u.ev.sender = text_copy(&p, texts[2], tlen[2]);
	row->u.ev.rcpt = rcpt_copy(&p, texts[3], tlen[3]);
	row->queue_id = text_copy(&p, texts[4], tlen[4]);
	row->u.ev.status = text_copy(&p, texts[5], tlen[5]);
	row->u.ev.host = text_copy(&p, texts[7], tlen[7]);
	row->u.ev.daemon = text_copy(&p, texts[8], tlen[8]);
	row->u.ev.auth = ev->authenticated;
	row->u.ev.nkeys = nkeys;
	for (size_t i = 0; i < nkeys; i++) {
		memcpy(p, keys[i], klens[i] + 1);
		row->u.ev.keys[i] = p;
		p += klens[i] + 1;
	}
	if (ev->fold != NULL)
		fold_prepare(st, row, texts, FG_NELEM(texts), (size_t)(p - row->buf),
		             ev->kind == FG_EV_CONNECT ? ev->fold : NULL,
		             ev->fold->session_id);
	rc = enqueue(st, row, ev->time_ms);
	return rc < 0 ? rc : nomem;
}

int
fg_store_record_verdict(fg_store *st, const struct fg_verdict_rec *v)
{
	const char *texts[7];
	size_t tlen[7];
	char cbuf[FG_ADDR_STRLEN];
	size_t len;
	struct fg_row *row;
	char *p;

	if (st == NULL || v == NULL || v->time_ms < 0)
		return FG_EINVAL;
	if (st->opt.counters_only)
		return 0;
	fg_store_status_verdict(st, v->rule, v->action, v->monitor);
	texts[0] = v->queue_id;
	texts[1] = v->stage;
	texts[2] = v->rule;
	texts[3] = v->key;
	texts[4] = v->action;
	texts[5] = v->reply;
	texts[6] = client_text(v->client, v->client_text, cbuf, sizeof(cbuf));
	len = text_measure(texts, FG_NELEM(texts), tlen);
	if ((row = malloc(sizeof(*row) + len)) == NULL) {
		note_drop(st, v->time_ms);
		return FG_ENOMEM;
	}
	memset(row, 0, sizeof(*row));
	p = row->buf;
	row->n = 1;
	row->type = FG_ROW_VERDICT;
	row->time_ms = v->time_ms;
	row->session_id = v->session_id;
	row->client = text_copy(&p, texts[6], tlen[6]);
	row->queue_id = text_copy(&p, texts[0], tlen[0]);
	row->u.vd.stage = text_copy(&p, texts[1], tlen[1]);
	row->u.vd.rule = text_copy(&p, texts[2], tlen[2]);
	row->u.vd.key = text_copy(&p, texts[3], tlen[3]);
	row->u.vd.action = text_copy(&p, texts[4], tlen[4]);
	row->u.vd.reply = text_copy(&p, texts[5], tlen[5]);
	row->u.vd.count = v->count;
	row->u.vd.limit = v->limit;
	row->u.vd.window_ms = v->window_ms;
	row->u.vd.delay_ms = v->delay_ms;
	row->u.vd.monitor = v->monitor;
	if (v->fold != NULL)
		fold_prepare(st, row, texts, FG_NELEM(texts), (size_t)(p - row->buf),
		             NULL, v->fold->session_id);
	return enqueue(st, row, v->time_ms);
}

int
fg_store_key_init(fg_store *st, const char *key, struct fg_store_key *out)
{
	if (st == NULL || out == NULL || !key_ok(key))
		return FG_EINVAL;
	out->text = key;
	out->len = strlen(key);
	out->hash = fg_store_hash(st, key, out->len);
	return 0;
}

int64_t
fg_store_count_key(fg_store *st, const struct fg_store_key *k,
                   enum fg_counter c, int64_t window_ms, int64_t now_ms)
{
	if (st == NULL || k == NULL || k->text == NULL || k->len == 0 ||
	    (unsigned)c >= FG_CNT__COUNT || window_ms < 0)
		return FG_EINVAL;
	if (window_ms > st->opt.horizon_ms)
		window_ms = st->opt.horizon_ms;
	return fg_store_count_get(st, k->text, k->len, k->hash, c,
	                          sec_of(now_ms) - window_ms / 1000);
}

int64_t
fg_store_count(fg_store *st, const char *key, enum fg_counter c,
               int64_t window_ms, int64_t now_ms)
{
	struct fg_store_key k;

	if (fg_store_key_init(st, key, &k) < 0)
		return FG_EINVAL;
	return fg_store_count_key(st, &k, c, window_ms, now_ms);
}

void
fg_store_set_hooks(fg_store *st, const struct fg_store_hooks *h)
{
	if (st != NULL)
		atomic_store_explicit(&st->hooks, h, memory_order_release);
}

int64_t
fg_store_count_since(fg_store *st, const char *key, enum fg_counter c,
                     int64_t from_ms)
{
	if (st == NULL || !key_ok(key) || (unsigned)c >= FG_CNT__COUNT ||
	    from_ms < 0)
		return FG_EINVAL;
	return fg_store_count_get(st, key, strlen(key),
	                          fg_store_hash(st, key, strlen(key)), c,
	                          sec_of(from_ms) - 1);
}

int
fg_store_count_slots(fg_store *st, const char *key, int64_t from_ms,
                     int64_t slot_ms, size_t nslots,
                     int64_t (*out)[FG_CNT__COUNT])
{
	if (st == NULL || !key_ok(key) || from_ms < 0 || slot_ms < 1000 ||
	    slot_ms % 1000 != 0 || out == NULL)
		return FG_EINVAL;
	fg_store_count_slots_get(st, key, strlen(key),
	                         fg_store_hash(st, key, strlen(key)),
	                         sec_of(from_ms), slot_ms / 1000, nslots, out);
	return 0;
}

int64_t
fg_store_conn_acquire(fg_store *st, const char *key)
{
	if (st == NULL || !key_ok(key))
		return FG_EINVAL;
	return fg_store_count_conn(st, key, strlen(key), 1);
}

void
fg_store_conn_release(fg_store *st, const char *key)
{
	if (st != NULL && key_ok(key))
		fg_store_count_conn(st, key, strlen(key), -1);
}

int64_t
fg_store_conn_count(fg_store *st, const char *key)
{
	if (st == NULL || !key_ok(key))
		return FG_EINVAL;
	return fg_store_count_conn(st, key, strlen(key), 0);
}

void
fg_store_expire(fg_store *st, int64_t now_ms)
{
	if (st == NULL)
		return;
	atomic_store(&st->prune_now_ms, now_ms);
	fg_store_count_expire(st, sec_of(now_ms) - st->horizon_s);
	fg_store_level_expire(st, now_ms);
	fg_store_ban_expire(st, now_ms);
}

bool
fg_store_healthy(fg_store *st)
{
	return st == NULL || atomic_load(&st->healthy);
}
