#!/bin/bash
# The daemon and floodgatectl replay run one session engine: a recorded
# mixed workload through the real milter socket (legitimate clients, a
# dictionary attack that ends in a ban, a connection flood, concurrency
# over the limit, clients exempt by network, by SMTP AUTH, by host name
# and by daemon name, and a valid_recipients list), then replayed from
# the database with the same configuration: replay's verdicts equal the
# daemon's, row for row (time, session, stage, rule, key, action).  A
# stricter configuration then gives exactly the differences expected.
# The banned /24 also floods: what its refused connections leave is
# folded into few rows that stand for every one of them (n), and replay
# still gives every verdict.
. "$(dirname "$0")/lib.sh"

CTL=$FG_BUILD_DIR/ctl/floodgatectl
[ -x "$CTL" ] || { echo "not ok - $CTL is missing"; exit 1; }

cat >"$T/valid.txt" <<'EOF2'
@example.org
alice@example.org
bob@example.org
EOF2

write_conf() {	# write_conf FILE CONN_RATE_LIMIT CONCURRENCY_LIMIT
	fg_conf "$1" <<EOF2
valid_recipients = "$T/valid.txt";
max_delay = "2s";
max_delayed_sessions = 50;
exempt = {
	networks = [ "198.18.0.0/24" ];
	authenticated = true;
	hostnames = [ ".trusted.example" ];
	daemons = [ "submission" ];
};
rules = (
	{ name = "dictionary"; type = "invalid_recipients"; per = "network";
	  prefix4 = 24; prefix6 = 64; limit = 10; window = "1h"; decay = "1h";
	  ladder = (
		{ over = 1; action = "delay"; delay = "20ms"; },
		{ over = 5; action = "tempfail"; },
		{ over = 12; action = "ban"; ban = "1h"; }
	  ); },
	{ name = "conn-rate"; type = "connection_rate"; per = "address";
	  limit = $2; window = "1m"; action = "disconnect"; },
	{ name = "conc"; type = "concurrency"; per = "address"; limit = $3;
	  action = "tempfail"; },
	{ name = "bad-rcpt"; type = "bad_recipient_throttle"; limit = 4;
	  action = "delay"; delay = "10ms"; }
);
EOF2
}
write_conf "$T/m.conf" 20 3
write_conf "$T/strict.conf" 15 2
fg_start m "$T/m.conf" || exit 1

unknown() {	# an RCPT the MTA refused as an unknown user
	printf 'macro stage=R {rcpt_mailer}=error {rcpt_host}=5.1.1 "{rcpt_addr}=User unknown"\nrcpt <%s@example.org>\n' "$1"
}
accepted() {	# an RCPT the MTA accepted (valid_recipients decides)
	printf 'macro stage=R {rcpt_mailer}=local {rcpt_host}=localhost {rcpt_addr}=%s\nrcpt <%s@example.org>\n' "$1" "$1"
}
session() {	# session ADDR HOST [connect macro] [mail macro]: header of a session
	[ -n "${3:-}" ] && echo "macro stage=C $3"
	echo "connect host=$2 addr=$1 family=4 port=2525"
	echo "helo $2"
	[ -n "${4:-}" ] && echo "macro stage=M $4"
	echo "mail <s@$2>"
}

# Legitimate mail, and a sender with typos (valid to the MTA, unknown to
# the list) in the same /24 as the flood below.
for i in 1 2 3; do
	{ session 192.0.2.100 good.example; accepted alice; accepted bob; echo quit; } | miltc m -q
done
{ session 192.0.2.101 typo.example; accepted carol; accepted alice; echo quit; } | miltc m -q
ok "legitimate sessions ran" [ $? -eq 0 ]

# Exempt clients, each sending 20 unknown recipients: counted nowhere.
exempt_run() {
	{ session "$@"; for u in $(seq 1 20); do unknown "e$u"; done; echo quit; } | miltc m -q
}
exempt_run 198.18.0.5 net.example
exempt_run 192.0.2.70 auth.example "" "{auth_authen}=user1"
exempt_run 192.0.2.71 mx1.trusted.example
exempt_run 192.0.2.72 msa.example "{daemon_name}=submission"
ok "exempt sessions ran" [ $? -eq 0 ]

# The dictionary attack: three hosts of 203.0.113.0/24, unknown users and
# names only the list calls unknown, until the /24 is banned; then the
# next connection is refused by the ban.
for h in 10 11 12; do
	{ session 203.0.113.$h harvest.example
	  for u in $(seq 1 6); do unknown "h$h-$u"; accepted "x$h-$u"; done
	  echo quit; } | miltc m -q -t 10
done
{ echo "connect host=harvest.example addr=203.0.113.13 family=4 port=2525"; echo "expect 421"; echo quit; } | miltc m -q
ok "after the attack the /24 is refused at connect" [ $? -eq 0 ]

# The banned /24 floods: 400 connections from four of its addresses,
# each refused at connect.
FLOOD=400
printf 'connect host=harvest.example addr=203.0.113.2${t} family=4 port=2525\nexpect 421\nquit\n' |
	miltc m -q -n $FLOOD -c 4 2>"$T/flood.err"
ok "the banned flood ran, every connection refused" grep -q "$FLOOD sessions, 0 failed" "$T/flood.err"

# A connection flood from one address: 30 connections, limit 20 a minute.
for i in $(seq 1 30); do
	echo "connect host=flood.example addr=192.0.2.60 family=4 port=2525"
	echo "quit"
done | miltc m -q

# Five sessions at once from one address, limit 3 (each starts 100 ms
# after the one before, so that the order they come in is known).
printf 'sleep ${n}00\nconnect host=conc.example addr=192.0.2.80 family=4 port=2525\nsleep 1000\nquit\n' |
	miltc m -q -n 5 -c 5

# The client has hung up on every session; the daemon may hear of the
# last ones a moment later: wait for their closes before stopping it.
closes_in() {
	sqlite3 "$T/m.db" "SELECT sum((kind = 'connect') * n) = sum((kind = 'close') * n) FROM events" 2>/dev/null
}
wait_for '[ "$(closes_in)" = 1 ]' 10
fg_stop "$FG_PID"; is "$?" 0 "the daemon stops cleanly"
db=$T/m.db
q() { sqlite3 "$db" "$1"; }
is "$(q "SELECT sum(n) FROM verdicts WHERE rule = 'conn-rate'")" 10 "the flood got 10 refusals"
is "$(q "SELECT sum(n) FROM verdicts WHERE rule = 'conc'")" 2 "concurrency refused 2 sessions"
is "$(q "SELECT key, source FROM bans")" "203.0.113.0/24|floodgate:dictionary" "the attack was banned"
ok "its sessions were masked" [ "$(q "SELECT count(*) FROM verdicts WHERE action = 'mask' AND key = '203.0.113.0/24'")" -ge 1 ]
is "$(q "SELECT count(*) FROM verdicts WHERE client IN ('198.18.0.5', '192.0.2.70', '192.0.2.71', '192.0.2.72')")" 0 \
	"no verdict for an exempt client"
is "$(q "SELECT count(*) FROM events WHERE host = 'mx1.trusted.example' AND kind = 'connect'")/$(q "SELECT count(*) FROM events WHERE daemon = 'submission'")/$(q "SELECT count(*) FROM events WHERE auth = 1")" \
	"1/1/1" "the database keeps the host, daemon and AUTH facts"
is "$(q "SELECT sum(n) FROM events WHERE kind = 'close'")" "$(q "SELECT sum(n) FROM events WHERE kind = 'connect'")" \
	"every session's close is stored"
flood="client GLOB '203.0.113.2?'"
rows=$(q "SELECT count(*) FROM events WHERE $flood AND kind = 'connect'")
echo "# figure: the banned flood of $FLOOD connections left $rows connect rows"
ok "the banned flood left far fewer connect rows than connections ($rows <= $((FLOOD / 5)))" [ "$rows" -le $((FLOOD / 5)) ]
is "$(q "SELECT sum(n) FROM events WHERE $flood AND kind = 'connect'")/$(q "SELECT sum(n) FROM events WHERE $flood AND kind = 'close'")/$(q "SELECT sum(n) FROM verdicts WHERE $flood")" \
	"$FLOOD/$FLOOD/$FLOOD" "... which stand for every connection, close and refusal (sum of n)"
ok "... as few verdict rows" [ "$(q "SELECT count(*) FROM verdicts WHERE $flood")" -le $((FLOOD / 5)) ]
is "$(q "SELECT count(*) FROM events WHERE n > 1 AND NOT $flood AND client <> '192.0.2.60' AND client <> '192.0.2.80'")" 0 \
	"no row of a client that was not refused at connect is folded"
is "$(q "SELECT sum(connect) FROM counts WHERE key = '203.0.113.20'")" \
	"$(q "SELECT sum(n) FROM events WHERE client = '203.0.113.20' AND kind = 'connect'")" \
	"the per-second counts count every folded connection"
is "$(q "SELECT count(*) FROM events WHERE rcpt = 'carol@example.org' AND class = 'invalid' AND status = 'valid_recipients'")" 1 \
	"a recipient only the list refused says so"

sleep 2.5   # replay leaves out the last 2 s
ctl() { "$CTL" -c "$T/m.conf" -d "$db" "$@"; }

# ---- the same configuration: the same verdicts, row for row ---------
out=$(ctl --json replay --config "$T/m.conf" 2>"$T/err"); rc=$?
is "$rc" 0 "replay exits 0"
ok "replay warns about nothing" [ ! -s "$T/err" ]
daemon_n=$(q "SELECT sum(n) FROM verdicts")
is "$(py 'd["verdicts"]["daemon"], d["verdicts"]["replay"], d["verdicts"]["same"], d["verdicts"]["replay_only"], d["verdicts"]["daemon_only"], d["matches"]' <<<"$out")" \
	"$daemon_n $daemon_n $daemon_n 0 0 True" \
	"replay gives every one of the daemon's $daemon_n verdicts and no other"
for rule in dictionary conn-rate conc ban; do
	is "$(py "sum(w['replay'] for w in d['who'] if w['rule'] == '$rule') == sum(w['daemon'] for w in d['who'] if w['rule'] == '$rule') > 0" <<<"$out")" \
		True "rule $rule: the same verdicts, and some"
done

# ---- a stricter configuration: exactly the expected differences ------
out=$(ctl --json replay --config "$T/strict.conf" 2>"$T/err"); rc=$?
is "$rc" 0 "the stricter replay exits 0"
who() { py "[(w['replay'], w['daemon']) for w in d['who'] if w['rule'] == '$1' and w['client'] == '$2']" <<<"$out"; }
is "$(who conn-rate 192.0.2.60)" "[(15, 10)]" "connection rate 15: five more refusals of the flood"
is "$(who conc 192.0.2.80)" "[(3, 2)]" "concurrency 2: one more refused session"
# The MTA side closes each flood connection before the next, but the
# daemon may hear of the close after the next connect: with a limit of 2,
# the flood's sessions may then also be over the concurrency limit.
is "$(py 'len([x for x in d["differences"] if x["side"] == "replay" and not (x["client"] == "192.0.2.60" and x["rule"] == "conc")]), d["verdicts"]["daemon_only"]' <<<"$out")" "6 0" \
	"and no other difference"

done_testing
