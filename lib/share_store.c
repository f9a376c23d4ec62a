/*
 * share_store.c - the share hosted by the daemon: the store's counts are
 * what it pushes, the store is where bans and allows from other hosts
 * go, and the store's hooks feed it events, bans and allows.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "fg.h"
#include "log.h"
#include "net.h"
#include "policy.h"
#include "share.h"
#include "store.h"

struct hosted {
	fg_store *st;
	fg_share *sh;
	struct fg_store_hooks hooks;
};

static int64_t
host_own_since(void *ctx, const char *key, enum fg_counter c, int64_t from_ms)
{
	int64_t n = fg_store_count_since(((struct hosted *)ctx)->st, key, c,
	                                 from_ms);
	return n > 0 ? n : 0;
}

static int
host_own_slots(void *ctx, const char *key, int64_t from_ms, int64_t slot_ms,
               size_t nslots, int64_t (*out)[FG_CNT__COUNT])
{
	return fg_store_count_slots(((struct hosted *)ctx)->st, key, from_ms,
	                            slot_ms, nslots, out);
}

static void
host_ban(void *ctx, const char *key, int64_t until_ms, const char *reason,
         const char *source, int64_t now_ms)
{
	struct hosted *h = ctx;
	struct fg_ban have;

	/* A ban here that lasts as long stands: two hosts that banned the
	 * same attacker keep their own. */
	if (fg_store_ban_get(h->st, key, now_ms, &have) == 1 &&
	    have.until_ms >= until_ms)
		return;
	if (fg_store_ban_set(h->st, key, until_ms, reason, source, now_ms) == 0)
		fg_log(FG_LOG_INFO, "shared: %s banned by %s: %s", key, source,
		       reason);
}

static void
host_lift(void *ctx, const char *key, bool reset)
{
	struct hosted *h = ctx;

	if (fg_store_ban_lift(h->st, key) == 1)
		fg_log(FG_LOG_INFO, "shared: ban of %s lifted on another host",
		       key);
	if (reset)
		fg_store_reset(h->st, key);
}

static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* An allow made on another host: the latest word on the key stands
 * (one that ends at the same time is already here: the log read again
 * at start). */
static void
host_allow(void *ctx, const char *key, int64_t until_ms, int64_t created_ms,
           const char *reason, const char *source)
{
	struct hosted *h = ctx;
	int64_t have = 0;

	if (fg_store_allow_get(h->st, key, wall_ms(), &have) == 1 &&
	    have == until_ms)
		return;
	if (fg_store_allow_set(h->st, key, until_ms, created_ms, reason,
	                       source) == 0)
		fg_log(FG_LOG_INFO, "shared: %s allowed by %s: %s", key, source,
		       reason);
}

static void
host_disallow(void *ctx, const char *key, int64_t before_ms)
{
	struct hosted *h = ctx;

	if (fg_store_allow_remove(h->st, key, before_ms) == 1)
		fg_log(FG_LOG_INFO, "shared: allow of %s withdrawn on another "
		       "host", key);
}

/* Exemptions win over a ban from elsewhere: a key the daemon would not
 * honour, an allowed key, or an address or network in an exempt one. */
static bool
host_ban_ok(void *ctx, const char *key)
{
	struct hosted *h = ctx;
	struct fg_config *cfg = fg_config_acquire();
	const char *why = NULL;
	fg_prefix p;
	void *v;
	bool ok = true;

	if (cfg == NULL)
		return false;
	if (fg_policy_ban_checked(cfg, key, &why) != 1 ||
	    fg_store_allowed(h->st, key, wall_ms()) == 1 ||
	    (fg_prefix_parse(key, &p) == 0 && cfg->exempt.networks != NULL &&
	     fg_nettab_lookup(cfg->exempt.networks, &p.addr, &v, NULL) == 1))
		ok = false;
	fg_config_release(cfg);
	return ok;
}

static void
hook_record(void *arg, const char *key, const enum fg_counter *ctrs, size_t n,
            int64_t time_ms)
{
	fg_share_note(((struct hosted *)arg)->sh, key, ctrs, n, time_ms);
}

static void
hook_allow(void *arg, const char *key, bool disallow, int64_t until_ms,
           int64_t created_ms, const char *reason, const char *source)
{
	fg_share_allow_changed(((struct hosted *)arg)->sh, key, disallow,
	                       until_ms, created_ms, reason, source);
}

static void
hook_ban(void *arg, const char *key, bool lift, int64_t until_ms,
         int64_t created_ms, const char *reason, const char *source)
{
	fg_share_ban_changed(((struct hosted *)arg)->sh, key, lift, until_ms,
	                     created_ms, reason, source);
}

int
fg_share_attach(const struct fg_config *cfg, fg_store *st, fg_share **out)
{
	struct fg_share_transport t;
	struct fg_share_host host;
	struct hosted *h;
	int rc;

	*out = NULL;
	if (cfg->shared.backend != FG_SHARE_REDIS)
		return FG_EINVAL;
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return FG_ENOMEM;
	if ((rc = fg_share_redis_transport(&t)) != 0) {
		free(h);
		return rc;
	}
	host = (struct fg_share_host){
		.ctx = h, .own_since = host_own_since,
		.own_slots = host_own_slots, .ban = host_ban,
		.lift = host_lift, .ban_ok = host_ban_ok,
		.allow = host_allow, .disallow = host_disallow,
	};
	h->st = st;
	if ((rc = fg_share_new(cfg, &t, &host, &h->sh)) != 0) {
		t.free(t.ctx);
		free(h);
		return rc;
	}
	h->hooks = (struct fg_store_hooks){h, hook_record, hook_ban,
	                                   hook_allow};
	fg_store_set_hooks(st, &h->hooks);
	if ((rc = fg_share_start(h->sh)) != 0) {
		fg_store_set_hooks(st, NULL);
		fg_share_free(h->sh);
		free(h);
		return rc;
	}
	*out = h->sh;
	return 0;
}

void
fg_share_detach(fg_share *sh)
{
	struct hosted *h;

	if (sh == NULL)
		return;
	h = fg_share_host_ctx(sh);
	fg_share_free(sh);
	free(h);
}
