/*
 * share_redis.c - the transport of share.h over hiredis: the synchronous
 * API, one context owned by the sync thread, socket timeouts on connect,
 * read and write, AUTH with an ACL user or the default one.
 *
 * hiredis 0.14 (Debian 12) has no TLS and no separate connect and read
 * timeouts: the one timeout bounds each; a server that stops answering
 * (SIGSTOP, DEBUG SLEEP, CLIENT PAUSE) costs the sync thread one timeout
 * per round trip, never a milter callback.
 */
#include <errno.h>
#include <hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "fg.h"
#include "share.h"

struct redis_conn {
	redisContext *c;
};

static struct timeval
tv_of(int64_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000 * 1000)};
	return tv;
}

/* "host:port", "[v6]:port" or "unix:/path" (checked by the config). */
static redisContext *
connect_to(const char *server, struct timeval tv)
{
	char host[256];
	const char *colon;
	size_t len;

	if (strncmp(server, "unix:", 5) == 0)
		return redisConnectUnixWithTimeout(server + 5, tv);
	if (server[0] == '[') {
		const char *close = strchr(server, ']');
		if (close == NULL)
			return NULL;
		len = (size_t)(close - server - 1);
		colon = close + 1;
		server++;
	} else {
		colon = strrchr(server, ':');
		if (colon == NULL)
			return NULL;
		len = (size_t)(colon - server);
	}
	if (len >= sizeof(host) || *colon != ':')
		return NULL;
	memcpy(host, server, len);
	host[len] = '\0';
	return redisConnectWithTimeout(host, (int)strtol(colon + 1, NULL, 10),
	                               tv);
}

static void
redis_disconnect(void *ctx)
{
	struct redis_conn *rc = ctx;

	if (rc->c != NULL)
		redisFree(rc->c);
	rc->c = NULL;
}

static int
redis_connect(void *ctx, const struct fg_shared *cfg, char *err,
              size_t errlen)
{
	struct redis_conn *rc = ctx;
	struct timeval tv = tv_of(cfg->timeout_ms);

	redis_disconnect(rc);
	rc->c = connect_to(cfg->server, tv);
	if (rc->c == NULL) {
		snprintf(err, errlen, "%s: cannot connect: out of memory or "
		         "bad address", cfg->server);
		return FG_EIO;
	}
	if (rc->c->err) {
		snprintf(err, errlen, "%s: %s", cfg->server, rc->c->errstr);
		redis_disconnect(rc);
		return FG_EIO;
	}
	if (redisSetTimeout(rc->c, tv) != REDIS_OK) {
		snprintf(err, errlen, "%s: cannot set the timeout", cfg->server);
		redis_disconnect(rc);
		return FG_EIO;
	}
	if (strncmp(cfg->server, "unix:", 5) != 0)
		redisEnableKeepAlive(rc->c);
	if (cfg->password != NULL && cfg->password[0] != '\0') {
		redisReply *r;
		bool user = cfg->username != NULL && cfg->username[0] != '\0';

		r = user ? redisCommand(rc->c, "AUTH %s %s", cfg->username,
		                        cfg->password)
		         : redisCommand(rc->c, "AUTH %s", cfg->password);
		if (r == NULL) {
			snprintf(err, errlen, "%s: AUTH: %s", cfg->server,
			         rc->c->errstr);
			redis_disconnect(rc);
			return FG_EIO;
		}
		if (r->type == REDIS_REPLY_ERROR) {
			snprintf(err, errlen, "%s: AUTH: %s", cfg->server, r->str);
			freeReplyObject(r);
			redis_disconnect(rc);
			return FG_EIO;
		}
		freeReplyObject(r);
	}
	return 0;
}

static int
convert(const redisReply *r, struct fg_share_reply *o)
{
	memset(o, 0, sizeof(*o));
	switch (r->type) {
	case REDIS_REPLY_INTEGER:
		o->type = FG_SR_INT;
		o->i = r->integer;
		return 0;
	case REDIS_REPLY_NIL:
		o->type = FG_SR_NIL;
		return 0;
	case REDIS_REPLY_STRING:
	case REDIS_REPLY_STATUS:
	case REDIS_REPLY_ERROR:
		o->type = r->type == REDIS_REPLY_STRING ? FG_SR_STR :
		          r->type == REDIS_REPLY_STATUS ? FG_SR_STATUS : FG_SR_ERR;
		/* Values with a NUL byte are nobody's counts: cut there. */
		if ((o->s = malloc(r->len + 1)) == NULL)
			return FG_ENOMEM;
		memcpy(o->s, r->str, r->len);
		o->s[r->len] = '\0';
		o->len = strlen(o->s);
		return 0;
	case REDIS_REPLY_ARRAY:
		o->type = FG_SR_ARR;
		if (r->elements == 0)
			return 0;
		if ((o->elem = calloc(r->elements, sizeof(*o->elem))) == NULL)
			return FG_ENOMEM;
		o->n = r->elements;
		for (size_t i = 0; i < r->elements; i++)
			if (convert(r->element[i], &o->elem[i]) != 0)
				return FG_ENOMEM;
		return 0;
	default:
		o->type = FG_SR_NIL;
		return 0;
	}
}

static int
redis_exchange(void *ctx, const struct fg_share_cmd *cmds, size_t n,
               struct fg_share_reply *replies, char *err, size_t errlen)
{
	struct redis_conn *rc = ctx;

	if (rc->c == NULL) {
		snprintf(err, errlen, "not connected");
		return FG_EIO;
	}
	for (size_t i = 0; i < n; i++) {
		if (redisAppendCommandArgv(rc->c, cmds[i].argc,
		                           (const char **)cmds[i].argv,
		                           NULL) != REDIS_OK) {
			snprintf(err, errlen, "out of memory");
			return FG_ENOMEM;
		}
	}
	for (size_t i = 0; i < n; i++) {
		void *v = NULL;
		int rv;

		if (redisGetReply(rc->c, &v) != REDIS_OK || v == NULL) {
			snprintf(err, errlen, "%s", rc->c->err == REDIS_ERR_IO &&
			         (errno == EAGAIN || errno == EWOULDBLOCK)
			         ? "no answer within the timeout"
			         : rc->c->errstr[0] ? rc->c->errstr
			                            : "connection lost");
			return FG_EIO;
		}
		rv = convert(v, &replies[i]);
		freeReplyObject(v);
		if (rv != 0) {
			snprintf(err, errlen, "out of memory");
			return rv;
		}
	}
	return 0;
}

static void
redis_free(void *ctx)
{
	redis_disconnect(ctx);
	free(ctx);
}

int
fg_share_redis_transport(struct fg_share_transport *out)
{
	struct redis_conn *rc = calloc(1, sizeof(*rc));

	if (rc == NULL)
		return FG_ENOMEM;
	*out = (struct fg_share_transport){
		.ctx = rc,
		.connect = redis_connect,
		.disconnect = redis_disconnect,
		.exchange = redis_exchange,
		.free = redis_free,
	};
	return 0;
}
