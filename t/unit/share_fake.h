/*
 * share_fake.h - a fake Redis for the share tests: the commands share.c
 * sends (TIME GET SET DEL HSET HGETALL HMGET HDEL PEXPIRE XADD XRANGE
 * XREVRANGE),
 * in memory, with a clock the test sets, a switch that makes it
 * unreachable, one that fails the next round trips, one that answers
 * every command with an error reply, and a wipe.  Several transports
 * (one per node) share one fake server.
 */
#ifndef FG_SHARE_FAKE_H
#define FG_SHARE_FAKE_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "share.h"

struct fake_kv {
	char *key, *field, *val;   /* field NULL: a string */
};

struct fake_entry {
	char *key;                 /* the stream's */
	int64_t ms, seq;
	int nf;
	char **fv;                 /* field, value, ... */
};

struct fake_redis {
	struct fake_kv *kv;
	size_t nkv, kvcap;
	struct fake_entry *xs;
	size_t nxs, xcap;
	int64_t now_ms, last_ms, last_seq;
	int down;                  /* connect and exchange fail */
	int fail_next;             /* this many exchanges fail */
	const char *error;         /* every command answers this error */
	const char *auth_error;    /* connect fails with this */
	uint64_t commands;
	uint64_t pulls;            /* HGETALL and HMGET of c: keys */
};

struct fake_conn {
	struct fake_redis *r;
	int connected;
};

static char *
fk_dup(const char *s)
{
	char *d = strdup(s);
	if (d == NULL)
		abort();
	return d;
}

static struct fake_kv *
fk_find(struct fake_redis *r, const char *key, const char *field)
{
	for (size_t i = 0; i < r->nkv; i++)
		if (strcmp(r->kv[i].key, key) == 0 &&
		    ((field == NULL && r->kv[i].field == NULL) ||
		     (field != NULL && r->kv[i].field != NULL &&
		      strcmp(r->kv[i].field, field) == 0)))
			return &r->kv[i];
	return NULL;
}

static void
fk_del_at(struct fake_redis *r, size_t i)
{
	free(r->kv[i].key);
	free(r->kv[i].field);
	free(r->kv[i].val);
	r->kv[i] = r->kv[--r->nkv];
}

static void
fk_put(struct fake_redis *r, const char *key, const char *field,
       const char *val)
{
	struct fake_kv *e = fk_find(r, key, field);

	if (e != NULL) {
		free(e->val);
		e->val = fk_dup(val);
		return;
	}
	if (r->nkv == r->kvcap) {
		r->kvcap = r->kvcap ? r->kvcap * 2 : 256;
		r->kv = realloc(r->kv, r->kvcap * sizeof(*r->kv));
		if (r->kv == NULL)
			abort();
	}
	r->kv[r->nkv++] = (struct fake_kv){fk_dup(key),
	                                   field ? fk_dup(field) : NULL,
	                                   fk_dup(val)};
}

static void
fake_wipe(struct fake_redis *r)
{
	while (r->nkv > 0)
		fk_del_at(r, r->nkv - 1);
	for (size_t i = 0; i < r->nxs; i++) {
		for (int j = 0; j < r->xs[i].nf; j++)
			free(r->xs[i].fv[j]);
		free(r->xs[i].fv);
		free(r->xs[i].key);
	}
	r->nxs = 0;
}

static void
fake_free(struct fake_redis *r)
{
	fake_wipe(r);
	free(r->kv);
	free(r->xs);
}

static void
rp_str(struct fg_share_reply *o, const char *s)
{
	o->type = FG_SR_STR;
	o->s = fk_dup(s);
	o->len = strlen(s);
}

static void
rp_arr(struct fg_share_reply *o, size_t n)
{
	o->type = FG_SR_ARR;
	o->n = n;
	o->elem = calloc(n ? n : 1, sizeof(*o->elem));
	if (o->elem == NULL)
		abort();
}

static void
fake_cmd(struct fake_redis *r, int argc, char **argv,
         struct fg_share_reply *o)
{
	const char *c = argv[0];

	r->commands++;
	memset(o, 0, sizeof(*o));
	if (r->error != NULL) {
		o->type = FG_SR_ERR;
		o->s = fk_dup(r->error);
		return;
	}
	if (strcmp(c, "TIME") == 0) {
		char a[32], b[32];
		rp_arr(o, 2);
		snprintf(a, sizeof(a), "%" PRId64, r->now_ms / 1000);
		snprintf(b, sizeof(b), "%" PRId64, r->now_ms % 1000 * 1000);
		rp_str(&o->elem[0], a);
		rp_str(&o->elem[1], b);
	} else if (strcmp(c, "GET") == 0) {
		struct fake_kv *e = fk_find(r, argv[1], NULL);
		if (e == NULL)
			o->type = FG_SR_NIL;
		else
			rp_str(o, e->val);
	} else if (strcmp(c, "SET") == 0) {
		int nx = argc > 3 && strcmp(argv[3], "NX") == 0;
		if (nx && fk_find(r, argv[1], NULL) != NULL) {
			o->type = FG_SR_NIL;
			return;
		}
		fk_put(r, argv[1], NULL, argv[2]);
		o->type = FG_SR_STATUS;
		o->s = fk_dup("OK");
	} else if (strcmp(c, "DEL") == 0) {
		o->type = FG_SR_INT;
		for (size_t i = r->nkv; i-- > 0;)
			if (strcmp(r->kv[i].key, argv[1]) == 0) {
				fk_del_at(r, i);
				o->i = 1;
			}
	} else if (strcmp(c, "HSET") == 0) {
		o->type = FG_SR_INT;
		for (int i = 2; i + 1 < argc; i += 2)
			fk_put(r, argv[1], argv[i], argv[i + 1]);
	} else if (strcmp(c, "HDEL") == 0) {
		o->type = FG_SR_INT;
		for (int i = 2; i < argc; i++) {
			struct fake_kv *e = fk_find(r, argv[1], argv[i]);
			if (e != NULL)
				fk_del_at(r, (size_t)(e - r->kv));
		}
	} else if (strcmp(c, "HGETALL") == 0) {
		size_t n = 0, k = 0;
		r->pulls += strstr(argv[1], ":c:") != NULL;
		for (size_t i = 0; i < r->nkv; i++)
			n += r->kv[i].field && strcmp(r->kv[i].key, argv[1]) == 0;
		rp_arr(o, n * 2);
		for (size_t i = 0; i < r->nkv; i++)
			if (r->kv[i].field && strcmp(r->kv[i].key, argv[1]) == 0) {
				rp_str(&o->elem[k++], r->kv[i].field);
				rp_str(&o->elem[k++], r->kv[i].val);
			}
	} else if (strcmp(c, "HMGET") == 0) {
		r->pulls++;
		rp_arr(o, (size_t)(argc - 2));
		for (int i = 2; i < argc; i++) {
			struct fake_kv *e = fk_find(r, argv[1], argv[i]);
			if (e == NULL)
				o->elem[i - 2].type = FG_SR_NIL;
			else
				rp_str(&o->elem[i - 2], e->val);
		}
	} else if (strcmp(c, "PEXPIRE") == 0) {
		o->type = FG_SR_INT;
		o->i = 1;
	} else if (strcmp(c, "XADD") == 0) {
		/* XADD key MAXLEN ~ N * f v ... */
		struct fake_entry *x;
		char id[48];
		if (r->nxs == r->xcap) {
			r->xcap = r->xcap ? r->xcap * 2 : 64;
			r->xs = realloc(r->xs, r->xcap * sizeof(*r->xs));
			if (r->xs == NULL)
				abort();
		}
		x = &r->xs[r->nxs++];
		x->key = fk_dup(argv[1]);
		x->ms = r->now_ms > r->last_ms ? r->now_ms : r->last_ms;
		x->seq = x->ms == r->last_ms ? r->last_seq + 1 : 0;
		r->last_ms = x->ms;
		r->last_seq = x->seq;
		x->nf = argc - 6;
		x->fv = calloc((size_t)x->nf + 1, sizeof(char *));
		for (int i = 0; i < x->nf; i++)
			x->fv[i] = fk_dup(argv[6 + i]);
		snprintf(id, sizeof(id), "%" PRId64 "-%" PRId64, x->ms, x->seq);
		rp_str(o, id);
	} else if (strcmp(c, "XRANGE") == 0) {
		/* XRANGE key start + COUNT n */
		int64_t sms = 0, sseq = 0;
		size_t n = 0, k = 0, max = (size_t)atoi(argv[5]);
		if (strcmp(argv[2], "-") != 0)
			sscanf(argv[2], "%" SCNd64 "-%" SCNd64, &sms, &sseq);
		for (size_t i = 0; i < r->nxs && n < max; i++)
			n += strcmp(r->xs[i].key, argv[1]) == 0 &&
			     (r->xs[i].ms > sms ||
			      (r->xs[i].ms == sms && r->xs[i].seq >= sseq));
		rp_arr(o, n);
		for (size_t i = 0; i < r->nxs && k < n; i++) {
			struct fake_entry *x = &r->xs[i];
			char id[48];
			if (strcmp(x->key, argv[1]) != 0 ||
			    !(x->ms > sms || (x->ms == sms && x->seq >= sseq)))
				continue;
			rp_arr(&o->elem[k], 2);
			snprintf(id, sizeof(id), "%" PRId64 "-%" PRId64, x->ms, x->seq);
			rp_str(&o->elem[k].elem[0], id);
			rp_arr(&o->elem[k].elem[1], (size_t)x->nf);
			for (int j = 0; j < x->nf; j++)
				rp_str(&o->elem[k].elem[1].elem[j], x->fv[j]);
			k++;
		}
	} else if (strcmp(c, "XREVRANGE") == 0) {
		/* XREVRANGE key + - COUNT 1: the last entry */
		struct fake_entry *x = NULL;
		char id[48];
		for (size_t i = 0; i < r->nxs; i++)
			if (strcmp(r->xs[i].key, argv[1]) == 0)
				x = &r->xs[i];
		rp_arr(o, x != NULL);
		if (x != NULL) {
			rp_arr(&o->elem[0], 2);
			snprintf(id, sizeof(id), "%" PRId64 "-%" PRId64, x->ms, x->seq);
			rp_str(&o->elem[0].elem[0], id);
			rp_arr(&o->elem[0].elem[1], (size_t)x->nf);
			for (int j = 0; j < x->nf; j++)
				rp_str(&o->elem[0].elem[1].elem[j], x->fv[j]);
		}
	} else {
		o->type = FG_SR_ERR;
		o->s = fk_dup("ERR unknown command");
	}
}

static int
fake_connect(void *ctx, const struct fg_shared *cfg, char *err, size_t len)
{
	struct fake_conn *c = ctx;

	(void)cfg;
	if (c->r->down) {
		snprintf(err, len, "connect: Connection refused");
		return -1;
	}
	if (c->r->auth_error != NULL) {
		snprintf(err, len, "AUTH: %s", c->r->auth_error);
		return -1;
	}
	c->connected = 1;
	return 0;
}

static void
fake_disconnect(void *ctx)
{
	((struct fake_conn *)ctx)->connected = 0;
}

static int
fake_exchange(void *ctx, const struct fg_share_cmd *cmds, size_t n,
              struct fg_share_reply *replies, char *err, size_t len)
{
	struct fake_conn *c = ctx;

	if (!c->connected || c->r->down) {
		snprintf(err, len, "read: Connection reset by peer");
		return -1;
	}
	if (c->r->fail_next > 0) {
		c->r->fail_next--;
		snprintf(err, len, "read: Resource temporarily unavailable");
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		fake_cmd(c->r, cmds[i].argc, cmds[i].argv, &replies[i]);
	return 0;
}

static void
fake_conn_free(void *ctx)
{
	free(ctx);
}

static struct fg_share_transport
fake_transport(struct fake_redis *r)
{
	struct fake_conn *c = calloc(1, sizeof(*c));
	struct fg_share_transport t = {
		.ctx = c, .connect = fake_connect, .disconnect = fake_disconnect,
		.exchange = fake_exchange, .free = fake_conn_free,
	};

	if (c == NULL)
		abort();
	c->r = r;
	return t;
}

#endif
