/*
 * fuzz_configs.h - the three configurations the policy and session
 * fuzzers decide under: one of every rule type, ladders with delays,
 * tempfails and bans, a ratio guard with a small session cap, rules on
 * shared keys acting on the key and on the client's network,
 * per-network overrides, exemptions (config_a); one where no delay can
 * be given, banned clients get a multi-line 4xx and the session cap is
 * at its bound (config_b); one in monitor mode (config_c).
 */
#ifndef FG_FUZZ_CONFIGS_H
#define FG_FUZZ_CONFIGS_H

#define RULES_COMMON                                                          \
	"rules = (\n"                                                         \
	"  { name = \"dictionary\"; type = \"invalid_recipients\";\n"         \
	"    per = \"network\"; prefix4 = 24; prefix6 = 48;\n"                \
	"    limit = 20; window = \"1h\"; ratio = 0.3; min_sample = 50;\n"    \
	"    decay = \"1h\";\n"                                               \
	"    ladder = (\n"                                                    \
	"      { over = 1; action = \"delay\"; delay = \"2s\";\n"             \
	"        growth = \"linear\"; },\n"                                   \
	"      { over = 5; action = \"delay\"; delay = \"500ms\";\n"          \
	"        growth = \"doubling\"; then = \"tempfail\";\n"               \
	"        reply = { code = 451; status = \"4.7.1\"; text = [\n"        \
	"          \"Slow down: ${count} > ${limit} in ${window}\",\n"        \
	"          \"100% of ${delay}s, ${nothing} ${count\" ]; }; },\n"      \
	"      { over = 10; action = \"tempfail\"; },\n"                      \
	"      { over = 20; action = \"reject\"; reply = { code = 550;\n"     \
	"        status = \"5.7.1\"; text = \"Harvesting (${count})\"; }; },\n" \
	"      { over = 30; action = \"ban\"; ban = \"1h\"; }\n"              \
	"    );\n"                                                            \
	"    networks = (\n"                                                  \
	"      { network = \"198.51.100\"; limit = 0; },\n"                   \
	"      { network = \"203.0.113.0/25\"; limit = 100; },\n"             \
	"      { network = \"203.0.113.64/26\"; limit = 2; },\n"              \
	"      { network = \"2001:db8::/32\"; limit = 5; }\n"                 \
	"    );\n"                                                            \
	"  },\n"                                                              \
	"  { name = \"addr-invalid\"; type = \"invalid_recipients\";\n"       \
	"    per = \"address\"; limit = 10; window = \"10m\";\n"              \
	"    action = \"tempfail\"; },\n"                                     \
	"  { name = \"connection-rate\"; type = \"connection_rate\";\n"       \
	"    per = \"address\"; limit = 60; window = \"1m\";\n"               \
	"    action = \"disconnect\"; },\n"                                   \
	"  { name = \"net-conn\"; type = \"connection_rate\";\n"              \
	"    per = \"network\"; prefix4 = 16; prefix6 = 32; limit = 200;\n"   \
	"    window = \"1m\"; decay = \"10m\";\n"                             \
	"    ladder = ( { over = 1; action = \"tempfail\"; },\n"              \
	"               { over = 100; action = \"ban\"; ban = \"10m\";\n"     \
	"                 reply = { code = 421; text = \"bye\"; }; } ); },\n" \
	"  { name = \"concurrency\"; type = \"concurrency\";\n"               \
	"    per = \"address\"; limit = 10; action = \"disconnect\"; },\n"    \
	"  { name = \"global-conc\"; type = \"concurrency\"; per = \"global\";\n" \
	"    limit = 500; action = \"tempfail\"; monitor = true; },\n"        \
	"  { name = \"bad-recipient-throttle\";\n"                            \
	"    type = \"bad_recipient_throttle\"; limit = 3;\n"                 \
	"    action = \"delay\"; delay = \"1s\"; growth = \"linear\";\n"      \
	"    then = \"reject\"; },\n"                                         \
	"  { name = \"recipients-per-message\";\n"                            \
	"    type = \"recipients_per_message\"; limit = 100; },\n"            \
	"  { name = \"helo-rate\"; type = \"helo_rate\"; per = \"helo\";\n"   \
	"    act_on = \"key\";\n"                                             \
	"    limit = 30; window = \"1m\"; action = \"reject\"; },\n"          \
	"  { name = \"helo-net\"; type = \"helo_rate\"; per = \"helo\";\n"    \
	"    prefix4 = 16; prefix6 = 40; limit = 5; window = \"1m\";\n"      \
	"    decay = \"5m\";\n"                                               \
	"    ladder = ( { over = 1; action = \"tempfail\"; },\n"              \
	"               { over = 4; action = \"ban\"; ban = \"2m\"; } ); },\n" \
	"  { name = \"mail-rate\"; type = \"mail_rate\";\n"                   \
	"    per = \"sender_domain\"; limit = 50; window = \"10m\";\n"        \
	"    action = \"delay\"; delay = \"3s\"; },\n"                        \
	"  { name = \"rcpt-rate\"; type = \"recipient_rate\";\n"              \
	"    per = \"recipient_domain\"; limit = 1000; window = \"1h\";\n"    \
	"    action = \"tempfail\"; },\n"                                     \
	"  { name = \"rejected\"; type = \"rejected_recipients\";\n"          \
	"    per = \"global\"; act_on = \"key\"; limit = 100;\n"             \
	"    window = \"5m\";\n"                                              \
	"    action = \"ban\"; ban = \"5m\"; },\n"                            \
	"  { name = \"helo-global\"; type = \"helo_rate\"; per = \"global\";\n" \
	"    limit = 10000; window = \"1m\"; action = \"delay\";\n"           \
	"    delay = \"10s\"; growth = \"doubling\"; then = \"disconnect\"; },\n" \
	"  { name = \"mail-net\"; type = \"mail_rate\"; per = \"network\";\n" \
	"    limit = 5; window = \"1h\"; decay = \"2h\";\n"                   \
	"    ladder = ( { over = 1; action = \"delay\"; delay = \"1s\";\n"    \
	"                 then = \"continue\"; },\n"                          \
	"               { over = 3; action = \"reject\"; } ); }\n"            \
	");\n"

/* Enforcing, with delays. */
static const char config_a[] =
	"max_delay = \"8s\";\n"
	"mta_timeout = \"30s\";\n"
	"max_delayed_sessions = 50;\n"
	"ratio_session_cap = 3;\n"
	"network_prefix4 = 24;\n"
	"network_prefix6 = 64;\n"
	"banned_action = \"disconnect\";\n"
	"exempt = {\n"
	"  networks = [ \"127.0.0.0/8\", \"::1\", \"192.0.2.128/25\",\n"
	"               \"2001:db8:ffff::/48\" ];\n"
	"  authenticated = true;\n"
	"  hostnames = [ \".trusted.example\", \"relay.example.net\",\n"
	"                \"*.wild.example\" ];\n"
	"  daemons = [ \"submission\", \"MSA\" ];\n"
	"};\n"
	RULES_COMMON;

/* No delay can be given; banned clients get a multi-line 4xx. */
static const char config_b[] =
	"max_delay = \"0s\";\n"
	"max_delayed_sessions = 0;\n"
	"ratio_session_cap = 1000;\n"
	"network_prefix4 = 32;\n"
	"network_prefix6 = 128;\n"
	"banned_action = \"tempfail\";\n"
	"banned_reply = { code = 450; status = \"4.7.0\";\n"
	"  text = [ \"You are banned\", \"${count} ${limit} ${window}\",\n"
	"           \"100%\" ]; };\n"
	"exempt = { authenticated = false; };\n"
	RULES_COMMON;

/* Monitor mode: decide, log, never act. */
static const char config_c[] =
	"monitor = true;\n"
	"max_delay = \"5s\";\n"
	"mta_timeout = \"10s\";\n"
	"banned_action = \"reject\";\n"
	"banned_reply = { code = 554; text = \"banned\"; };\n"
	RULES_COMMON;

#endif
