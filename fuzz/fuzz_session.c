/*
 * fuzz_session.c - the session engine (lib/session.c) from connect to
 * close, with hostile values: the daemon's own code below the glue.
 *
 * Each input picks one of the three configurations of fuzz_configs.h
 * and runs a program of up to 96 steps on up to three sessions sharing
 * one counters-only store and one tarpit: connect (IPv4, IPv6, mapped,
 * or no client; host and daemon names or NULL), HELO, MAIL (sender,
 * queue id, SMTP AUTH), RCPT (any address, any class value, even out of
 * range, any status), end of message, close, the end of a delay, and
 * the clock moving forward or back.  Every verdict must keep the
 * invariants of fuzz.h; the tarpit never holds more than
 * max_delayed_sessions; and once every session is freed, no tarpit place
 * and no concurrency slot of any client is left.
 */
#include "fg.h"
#include "fuzz.h"
#include "session.h"

#include "fuzz_configs.h"

#define NSESS 3
#define MAX_STEPS 96
#define MAX_CLIENTS 64

static struct fg_config *configs[3];

static void
diag(void *arg, bool is_warning, const char *line)
{
	(void)arg;
	if (!is_warning)
		fprintf(stderr, "fuzz_session: %s\n", line);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *texts[3] = {config_a, config_b, config_c};

	(void)argc;
	(void)argv;
	for (int i = 0; i < 3; i++)
		if (fg_config_load_string(texts[i], "fuzz_session.conf",
		                          &configs[i], diag, NULL) != 0)
			abort();
	return 0;
}

struct run {
	const struct fg_config *cfg;
	struct fg_session_env env;
	struct fg_tarpit tarpit;
	fg_session *s[NSESS];
	int64_t now;
	fg_addr clients[MAX_CLIENTS];
	size_t nclients;
	uint64_t next_id;
};

static const char *
maybe(struct fz *z)
{
	return fz_bool(z) ? fz_str(z) : NULL;
}

static void
take_client(struct fz *z, fg_addr *a, bool *known)
{
	uint8_t b = fz_u8(z);

	memset(a, 0, sizeof(*a));
	*known = (b & 3) != 0;
	if ((b & 3) == 1) {
		a->family = FG_AF_INET;
		for (int i = 0; i < 4; i++)
			a->bytes[i] = (b & 4) ? fz_u8(z) : (uint8_t)(192 + i);
	} else if ((b & 3) == 2) {
		a->family = FG_AF_INET6;
		for (int i = 0; i < 16; i++)
			a->bytes[i] = (b & 4) ? fz_u8(z) : (uint8_t)i;
	} else if ((b & 3) == 3) {
		/* Not IPv4 nor IPv6: the session treats it as unknown. */
		a->family = 99;
	}
}

static void
check(struct run *r, const struct fg_verdict *v)
{
	struct fg_facts f;

	FZ_CHECK(v != NULL, "no verdict");
	memset(&f, 0, sizeof(f));
	fz_check_verdict(r->cfg, &f, r->now, v);
	FZ_CHECK(fg_tarpit_count(&r->tarpit) <= r->cfg->max_delayed_sessions,
	         "%lld asleep, max_delayed_sessions %lld",
	         (long long)fg_tarpit_count(&r->tarpit),
	         (long long)r->cfg->max_delayed_sessions);
}

static void
step(struct run *r, struct fz *z)
{
	uint8_t op = fz_u8(z);
	fg_session **sp = &r->s[(op >> 5) % NSESS];
	fg_addr a;
	bool known;

	if (*sp == NULL) {
		*sp = fg_session_new(&r->env, r->cfg, ++r->next_id);
		FZ_CHECK(*sp != NULL, "no session");
	}
	switch (op % 10) {
	case 0:
		take_client(z, &a, &known);
		if (known && r->nclients < MAX_CLIENTS &&
		    (a.family == FG_AF_INET || a.family == FG_AF_INET6))
			r->clients[r->nclients++] = a;
		check(r, fg_session_connect(*sp, known ? &a : NULL, maybe(z),
		                            maybe(z), r->now));
		break;
	case 1:
		check(r, fg_session_helo(*sp, maybe(z), r->now));
		break;
	case 2:
		check(r, fg_session_mail(*sp, maybe(z), maybe(z), fz_bool(z),
		                         r->now));
		break;
	case 3:
	case 4: {
		const char *rcpt = maybe(z);
		enum fg_rcpt_class c = (enum fg_rcpt_class)(fz_u8(z) % 6);
		const char *status = maybe(z);
		unsigned n = 1 + (op % 10 == 4 ? fz_u8(z) % 24 : 0);

		for (unsigned i = 0; i < n; i++)
			check(r, fg_session_rcpt(*sp, rcpt, c, status, maybe(z),
			                         maybe(z), r->now));
		break;
	}
	case 5:
		fg_session_end_message(*sp);
		break;
	case 6:
		fg_session_close(*sp, r->now);
		fg_session_free(*sp);
		*sp = NULL;
		break;
	case 7:
		fg_session_delay_done(*sp);
		break;
	case 8:
		r->now += (int64_t)fz_uint(z, 3);
		break;
	default:
		/* The wall clock stepped back. */
		r->now -= (int64_t)fz_uint(z, 2);
		if (r->now < 0)
			r->now = 0;
		break;
	}
}

/* The ratio guard's sample holds every unknown recipient (every
 * configuration has a ratio guard) and no more than the valid ones. */
static void
check_sample(fg_store *st, const char *key, int64_t window, int64_t now)
{
	int64_t sample = fg_store_count(st, key, FG_CNT_RCPT_SAMPLE, window, now);
	int64_t valid = fg_store_count(st, key, FG_CNT_RCPT_VALID, window, now);
	int64_t invalid = fg_store_count(st, key, FG_CNT_RCPT_INVALID, window,
	                                 now);

	FZ_CHECK(sample >= invalid && sample <= valid + invalid,
	         "%s: sample %lld, valid %lld, invalid %lld", key,
	         (long long)sample, (long long)valid, (long long)invalid);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fg_store_options so;
	struct run r;
	struct fz z;
	char err[200];
	fg_store *st;

	fz_init(&z, data, size);
	memset(&r, 0, sizeof(r));
	r.cfg = configs[fz_u8(&z) % 3];
	r.now = INT64_C(1700000000000) + (int64_t)fz_uint(&z, 3);
	memset(&so, 0, sizeof(so));
	so.horizon_ms = r.cfg->horizon_ms;
	so.counters_only = true;
	if (fg_store_open(&so, r.now, &st, err, sizeof(err)) != 0)
		abort();
	r.env.store = st;
	r.env.tarpit = &r.tarpit;
	r.env.log = false;
	for (int i = 0; i < MAX_STEPS && z.n > 0; i++)
		step(&r, &z);
	for (int i = 0; i < NSESS; i++) {
		if (r.s[i] != NULL && fz_bool(&z))
			fg_session_close(r.s[i], r.now);
		fg_session_free(r.s[i]);
	}
	FZ_CHECK(fg_tarpit_count(&r.tarpit) == 0, "%lld tarpit places left",
	         (long long)fg_tarpit_count(&r.tarpit));
	for (size_t i = 0; i < r.nclients; i++) {
		struct fg_client_keys ck;
		char g[FG_KEY_MAX];

		fg_policy_client_keys(r.cfg, &r.clients[i], &ck);
		check_sample(st, ck.address, r.cfg->horizon_ms, r.now);
		FZ_CHECK(fg_store_conn_count(st, ck.address) == 0,
		         "a slot of %s is left", ck.address);
		for (size_t k = 0; k < ck.nnets; k++)
			FZ_CHECK(fg_store_conn_count(st, ck.nets[k]) == 0,
			         "a slot of %s is left", ck.nets[k]);
		FZ_CHECK(fg_store_conn_count(st, fg_key_global(g)) == 0,
		         "a global slot is left");
		/* And those of a global rule paired with the network. */
		for (size_t k = 0; k < r.cfg->nrules; k++) {
			const struct fg_rule *ru = &r.cfg->rules[k];
			char net[FG_KEY_MAX], pair[FG_KEY_MAX];

			if (ru->per != FG_PER_GLOBAL || !fg_rule_pairs(ru))
				continue;
			fg_key_network(net, &r.clients[i],
			               r.clients[i].family == FG_AF_INET
			                   ? ru->prefix4 : ru->prefix6);
			fg_key_pair(pair, net, g);
			FZ_CHECK(fg_store_conn_count(st, pair) == 0,
			         "a slot of %s is left", pair);
		}
	}
	fg_store_close(st);
	fz_free(&z);
	return 0;
}
