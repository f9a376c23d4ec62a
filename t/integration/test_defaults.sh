#!/bin/bash
# The shipped configuration against spread attacks, through the milter
# socket with bench/fgload (its spread, provider and dha48 mixes): only
# the socket, database, pid file and user differ from etc/floodgate.conf.
#  - a connection flood over the 254 hosts of one /24, each host far
#    under the per-address rate, is refused at connect by the per-network
#    rate, never by the per-address one;
#  - meanwhile a provider's outbound pool in another /24 sends steady mail
#    (9 sessions a second, about 1,800 recipients, 2 % of them unknown)
#    and is never refused;
#  - a dictionary attack from a new /64 of one /48 every session, 3
#    guesses each (no /64 near its own limit), is refused by the /48 rule.
# The addresses travel only inside the milter protocol.
. "$(dirname "$0")/lib.sh"

LOAD=$FG_BUILD_DIR/bench/fgload
if [ "${FG_BENCH:-ON}" != ON ]; then
	echo "# bench/ is not built (FG_BENCH=OFF): nothing to test"
	done_testing
fi

sed -e 's|^user = .*|user = "";|' -e 's|^allow_root = .*|allow_root = true;|' \
	"$FG_SOURCE_DIR/etc/floodgate.conf" >"$T/d.conf"
is "$(diff "$FG_SOURCE_DIR/etc/floodgate.conf" "$T/d.conf" | grep -c '^>')" 2 \
	"the test's copy of etc/floodgate.conf differs in user and allow_root only"
fg_start d "$T/d.conf" || exit 1

field() { py "d$2" <<<"$1"; }
load() {	# load fgload-options...: the JSON line
	"$LOAD" -q -s "unix:$T/d.sock" "$@" 2>>"$T/load.err" | sed -n 's/^JSON //p'
}
# replies JSON COMMAND CODE-OR-KIND: how many replies of that kind
replies() { py "d['commands']['$2']['replies'].get('$3', 0)" <<<"$1"; }
# refusing JSON COMMAND: replies that were neither continue nor accept
refusing() {
	py "sum(n for k, n in d['commands']['$2']['replies'].items() if k not in ('continue', 'accept', 'noreply'))" <<<"$1"
}
sql() { sqlite3 "$T/d.db" "$1"; }

# ---- the provider, in the background, while the attacks run ----
# 9 sessions a second: 540 a minute, under the /24's 600.
"$LOAD" -q -s "unix:$T/d.sock" -m provider -c 4 --rate 9 -n 360 -t 45 \
	2>>"$T/load.err" >"$T/provider.out" &
provider_pid=$!

# ---- a connection flood over the 254 hosts of 198.18.1.0/24 ----
# 1,500 sessions: 5 or 6 per host, where the per-address rule allows 60
# a minute.
j=$(load -m spread -c 4 -n 1500 -t 60)
is "$(field "$j" "['completed']")" 1500 "the flood's 1500 sessions ran"
is "$(field "$j" "['failed']")" 0 "... without an error"
ok "at most 600 flood sessions got past connect ($(replies "$j" connect continue))" \
	[ "$(replies "$j" connect continue)" -le 600 ]
ok "the rest were refused at connect with 421 ($(replies "$j" connect 421))" \
	[ "$(replies "$j" connect 421)" -ge 900 ]

# ---- a dictionary attack over the /64s of 2001:db8:48::/48 ----
# 30 sessions of 3 unknown recipients, each from its own /64.
j=$(load -m dha48 -c 1 -n 30 -t 60)
is "$(field "$j" "['completed']")" 30 "the /48 attack's 30 sessions ran"
refused=$(field "$j" "['refused']")
ok "the /48 is refused: $refused of 30 sessions ended early" [ "$refused" -ge 15 ]
ok "... at connect ($(refusing "$j" connect) sessions)" [ "$(refusing "$j" connect)" -ge 15 ]

wait "$provider_pid"
p=$(sed -n 's/^JSON //p' "$T/provider.out")
started=$(field "$p" "['started']")
ok "the provider sent its sessions meanwhile ($started)" [ "$started" -ge 300 ]
is "$(field "$p" "['failed']")" 0 "... without an error"
is "$(field "$p" "['refused']")" 0 "... none of them refused"
for c in connect helo mail rcpt; do
	is "$(refusing "$p" $c)" 0 "... nor any $c"
done

# The daemon's own account of it, once the writer has caught up.
wait_for "[ \"\$(sql \"SELECT count(*) FROM events WHERE kind = 'connect' AND client LIKE '198.18.2.%'\")\" -eq $started ]" 10
rcpts=$(sql "SELECT count(*) FROM events WHERE kind = 'rcpt' AND client LIKE '198.18.2.%'")
typos=$(sql "SELECT count(*) FROM events WHERE kind = 'rcpt' AND class = 'invalid' AND client LIKE '198.18.2.%'")
ok "the provider sent over 1,500 recipients ($rcpts), about 2 % unknown ($typos)" \
	[ "$rcpts" -ge 1500 -a "$typos" -ge 15 -a "$typos" -le $((rcpts / 20)) ]
is "$(sql "SELECT count(*) FROM verdicts WHERE client LIKE '198.18.2.%'")" 0 \
	"no verdict for the provider's network"
is "$(sql "SELECT DISTINCT rule || ' ' || key FROM verdicts WHERE client LIKE '198.18.1.%'")" \
	"connection-rate-network 198.18.1.0/24" \
	"the flood was refused by the per-network rate alone"
is "$(sql "SELECT count(*) FROM verdicts WHERE client LIKE '2001:db8:48:%' AND rule = 'dictionary'")" 0 \
	"no /64 of the /48 went over its own dictionary limit"
is "$(sql "SELECT DISTINCT key FROM verdicts WHERE client LIKE '2001:db8:48:%' AND rule = 'dictionary-wide'")" \
	"2001:db8:48::/48" "the /48 was refused as a whole"

ok "floodgate is still running" kill -0 "$FG_PID"
ok "no sanitizer report" bash -c "! grep -l 'Sanitizer' '$T/load.err' '$T/d.log'"
done_testing
