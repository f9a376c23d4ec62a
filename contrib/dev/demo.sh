#!/bin/bash
# The floodgate demo: on a fresh Debian 12 machine, as root.  Installs what
# is missing, builds, starts floodgate and a private Postfix on loopback,
# runs a dictionary attack from 127.66.66.0/24 and normal mail from
# 127.77.77.2, shows what each side saw and what floodgate recorded, and
# stops everything it started.  Takes about a minute.
set -euo pipefail
cd "$(dirname "$0")/../.."
top=$PWD

bash contrib/dev/deps.sh >/dev/null
echo "== building"
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/release -j"$(nproc)" >/dev/null

export FG_SOURCE_DIR=$top FG_BUILD_DIR=$top/build/release FG_MTA_PROBE=0
. t/mta/mta.sh
work=$(mktemp -d /tmp/floodgate-demo.XXXXXX)
chmod 0755 "$work"
fgpid=
cleanup() {
	[ -n "$fgpid" ] && kill -TERM "$fgpid" 2>/dev/null && wait "$fgpid" 2>/dev/null
	mta_stop_all
	rm -rf "$work"
}
trap cleanup EXIT

# The example configuration, with limits small enough to see every step
# of the ladder within a minute.
cat >"$work/demo.conf" <<'EOC'
user = ""; allow_root = true;
socket_mode = "0666";
flush_interval = "200ms";
max_delay = "8s"; mta_timeout = "30s";
exempt = { networks = [ "127.0.0.1" ]; };
rules = (
	{ name = "dictionary"; type = "invalid_recipients"; per = "network";
	  limit = 10; window = "1h";
	  ladder = (
		{ over = 1;  action = "delay"; delay = "1s"; },
		{ over = 6;  action = "tempfail"; },
		{ over = 16; action = "ban"; ban = "1h"; }
	  ); },
	{ name = "recipients-per-message"; type = "recipients_per_message";
	  limit = 100; }
);
EOC
fg=build/release/milter/floodgate
ctl=build/release/ctl/floodgatectl
db=$work/floodgate.db
"$fg" -n -c "$work/demo.conf"
"$fg" -f -c "$work/demo.conf" -p "unix:$work/floodgate.sock" -d "$db" -P "" \
	2>"$work/floodgate.log" &
fgpid=$!
for _ in $(seq 50); do [ -S "$work/floodgate.sock" ] && break; sleep 0.1; done
port=$(mta_free_port)
postfix_start "$work/postfix" "$port" "unix:$work/floodgate.sock" \
	"milter_default_action = accept" >/dev/null
echo "== floodgate on unix:$work/floodgate.sock, Postfix on 127.0.0.1:$port"

show() {	# show WHO: one line per session: the reply codes in order
	awk -v who="$1" '
		$1 == "status" { printf "%-9s %s  [%s]\n", who, line, $2; line = ""; next }
		$1 ~ /^rcpt:/ && $3 + 0 >= 0.9 { line = line " " $2 "(" int($3 + 0.5) "s)"; next }
		{ line = line " " $2 }'
}

legit() {
	mta_smtp "$port" 127.77.77.2 --helo mail.partner.test \
		--from news@partner.test --rcpt alice@floodgate.test \
		--rcpt bob@floodgate.test --data | show "legit"
}

echo "== a dictionary attack from 127.66.66.0/24 (5 guessed names a session),"
echo "   and a legitimate sender from 127.77.77.2 in between"
echo "   (codes: connect ehlo mail rcpt... [data dot] quit; (Ns) = delayed reply)"
legit
for i in $(seq 1 8); do
	names=()
	for j in 1 2 3 4 5; do names+=(--rcpt "guess$i$j@floodgate.test"); done
	mta_smtp "$port" "127.66.66.$((i + 1))" --helo "bot$i.example" \
		--from "x$i@spam.example" "${names[@]}" | show "attacker"
	[ $((i % 3)) = 0 ] && legit
done
legit
sleep 0.5

echo
echo "== what floodgate logged (refusals)"
grep -E 'rule=' "$work/floodgate.log" |
	sed -E 's/.*client=([^ ]+).* stage=([a-z]+) rule=([^ ]+) key=([^ ]+) count=([0-9]+) limit=([0-9]+).* action=([a-z]+).*/\1 at \2: \3 \4 \5\/\6 -> \7/' |
	uniq -c | tail -8

if [ -x "$ctl" ]; then
	echo
	echo "== floodgatectl status (is the daemon healthy?)"
	"$ctl" -d "$db" status
	echo
	echo "== floodgatectl top"
	"$ctl" -d "$db" top --since 1h
	echo
	echo "== floodgatectl stats"
	"$ctl" -d "$db" stats --since 1h
fi

echo
echo "== sqlite3: invalid recipients per network, and bans"
sqlite3 -header -column "$db" \
	"SELECT network, invalid_rcpts, rcpts, invalid_ratio FROM top_offenders_1h;"
sqlite3 -header -column "$db" "SELECT key, remaining_s, reason FROM active_bans;"
echo
echo "== done; stopping floodgate and Postfix"
