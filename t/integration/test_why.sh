#!/bin/bash
# floodgatectl why and the daemon agree: after an attack, a probe
# connection from the attacked network makes the live daemon log its
# per-rule trace (log_level = debug); floodgatectl why for the same
# address then prints, per rule and key, the same count, limit and level.
. "$(dirname "$0")/lib.sh"

CTL=$FG_BUILD_DIR/ctl/floodgatectl
[ -x "$CTL" ] || { echo "not ok - $CTL is missing"; exit 1; }

fg_conf "$T/w.conf" <<'EOF2'
exempt = { networks = [ ]; };
rules = (
	{ name = "dictionary"; type = "invalid_recipients"; per = "network";
	  prefix4 = 24; prefix6 = 64; limit = 5; window = "1h"; decay = "1h";
	  ladder = (
		{ over = 1; action = "delay"; delay = "10ms"; },
		{ over = 3; action = "delay"; delay = "10ms"; }
	  ); },
	{ name = "conn-rate"; type = "connection_rate"; per = "address";
	  limit = 50; window = "10m"; action = "tempfail"; },
	{ name = "net-conn"; type = "connection_rate"; per = "network";
	  prefix4 = 16; prefix6 = 48; limit = 100; window = "1h";
	  action = "tempfail"; }
);
EOF2
fg_start w "$T/w.conf" || exit 1

unknown() {
	printf 'macro stage=R {rcpt_mailer}=error {rcpt_host}=5.1.1 "{rcpt_addr}=User unknown"\nrcpt <%s@example.org>\n' "$1"
}
for h in 10 11 12; do
	{ echo "connect host=h.example addr=192.0.2.$h family=4 port=2525"
	  echo "helo h.example"; echo "mail <a@h.example>"
	  for u in 1 2 3; do unknown "u$h$u"; done; echo quit; } | miltc w -q
done
ok "the attack ran" [ $? -eq 0 ]

# The probe: its connect is decided with every rule traced.
printf 'connect host=p.example addr=192.0.2.99 family=4 port=2525\nexpect continue\nquit\n' | miltc w -q
ok "the probe is let in (the ladder only delays, and not at connect)" [ $? -eq 0 ]
wait_for "grep -q 'trace: .*client=192.0.2.99 stage=connect rule=dictionary' '$T/w.log'" 5
sleep 0.5   # a few flushes: the counts and levels reach the database

# "rule key counted/limit level" of the daemon's trace, one line each.
grep 'trace: .*client=192\.0\.2\.99 stage=connect' "$T/w.log" |
	sed -n 's/.* rule=\([^ ]*\) key=\([^ ]*\) [a-z]*=\([0-9]*\)\/\([0-9]*\).*/\1 \2 \3 \4/p' |
	while read -r rule key count limit; do
		line=$(grep "trace: .*client=192\.0\.2\.99 stage=connect rule=$rule key=$key " "$T/w.log")
		level=$(sed -n 's/.* level=\([0-9]*\).*/\1/p' <<<"$line")
		echo "$rule $key $count $limit ${level:--}"
	done | sort >"$T/daemon.txt"
"$CTL" -c "$T/w.conf" -d "$T/w.db" --json why 192.0.2.99 |
	py '"\n".join("%s %s %s %s %s" % (r["rule"], r["key"], r["count"], r["limit"], r["level"] if r["level"] is not None else "-") for r in d["rules"] if r["count"] is not None)' |
	sort >"$T/why.txt"
echo "# daemon's trace:"; sed 's/^/#   /' "$T/daemon.txt"
is "$(wc -l <"$T/daemon.txt")" 3 "the daemon traced the three rules"
is "$(cat "$T/why.txt")" "$(cat "$T/daemon.txt")" \
	"why prints the daemon's count, limit and level for every rule"
ok "the dictionary rule is at level 2 in both" grep -q '^dictionary 192.0.2.0/24 9 5 2$' "$T/why.txt"
out=$("$CTL" -c "$T/w.conf" -d "$T/w.db" why 192.0.2.99)
ok "why (text) says where the dictionary rule stands" \
	grep -Eq '^dictionary +192\.0\.2\.0/24 +9 +5 +1h +2 +over by 4: step 2, delay 10ms' <<<"$out"

fg_stop "$FG_PID"; is "$?" 0 "the daemon stops cleanly"
done_testing
