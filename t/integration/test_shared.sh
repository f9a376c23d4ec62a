#!/bin/bash
# Three floodgate daemons (nodes a, b, c: own sockets, databases, logs)
# share their counts through a private redis-server on 127.0.0.1:
#  - a dictionary attack split round-robin over the three is refused once
#    the combined count passes the limit, within the bound of
#    floodgate.conf(5) (R * (2 I + RTT) * (N - 1) / N past it); without
#    sharing each host lets through its own limit, three times as much;
#  - a ban on one host refuses on the other two, an unban lifts it
#    everywhere, and the others record it with source peer:a;
#  - so does the operators' allow list: an allow on one host lets the
#    refused attacker through on the other two, which record it with
#    source peer:a, and a disallow refuses it again everywhere;
#  - Redis killed (-9), stopped (SIGSTOP), paused (CLIENT PAUSE) or asleep
#    (DEBUG SLEEP) under load: every session still gets its answer, each
#    node logs one line per change of state, and the sums are exact again
#    within seconds of Redis coming back, empty or not;
#  - a restart of one node keeps the global sums;
#  - a node whose clock is 2 s ahead (libfaketime) warns and stays within
#    the bound plus the skew;
#  - through t/tools/delay_proxy.py at 5, 20 and 100 ms each way the sums
#    converge; a blackhole or reset path degrades, a good one reconnects;
#  - an ACL user limited to the prefix's keys and the commands of
#    floodgate(8) works, a wrong password degrades with a clear reason;
#  - floodgate -n accepts the shared group without connecting and rejects
#    bad ones with file:line; SIGUSR1 moves a node to another server.
# Timing is only printed ("# figure" lines), never asserted: every wait
# is bounded, and what is checked is answers, counts, log lines and rows.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
# shellcheck source=t/integration/lib_shared.sh
. "$(dirname "$0")/lib_shared.sh"

CTL=$FG_BUILD_DIR/ctl/floodgatectl
command -v "$REDIS_SERVER" >/dev/null || {
	echo "not ok - redis-server is missing (contrib/dev/deps.sh installs it)"; exit 1; }

L=30                    # the dictionary rule's limit (lib_shared.sh)
NODE_SYNC=250ms I=0.25  # sync interval
RATE=20                 # the attacker's pace over all hosts, sessions/s

# bound SKEW_S: the events past the limit that floodgate.conf(5) allows
# at $RATE over three hosts: R * (2 I + RTT) * (N - 1) / N, plus R * d / N
# for one host whose clock is d seconds off.
bound() {
	python3 -c "import math; print(math.ceil($RATE * (2 * $I + 0.002) * 2 / 3 + $RATE * $1 / 3))"
}

# attack NET NODES...: sessions from NET.1, NET.2 ... each with one
# unknown recipient, round-robin over NODES at $RATE, until the first
# refusal (at most 4 L sessions); prints how many got through.
attack() {
	local net=$1 i=0 r; shift
	local nodes=("$@") passed=0 pause
	pause=$(python3 -c "print(1 / $RATE)")
	while [ $i -lt $((4 * L)) ]; do
		r=$(event "${nodes[$((i % ${#nodes[@]}))]}" "$net.$((i % 250 + 1))" "u$i")
		i=$((i + 1))
		[ "$r" = pass ] || break
		passed=$((passed + 1))
		sleep "$pause"
	done
	echo "$passed"
}

# why_line NODE ADDR: the dictionary rule's "count N = L here + R on ..."
# line of floodgatectl why on NODE.
why_line() {
	"$CTL" -c "$T/$1.conf" -d "$T/$1.db" why "$2" 2>&1 | grep -Eo 'count [0-9]+ = [0-9]+ here \+ [0-9]+ on[^(]*\([0-9]+ ms old\)' | head -1
}
why_total() { why_line "$@" | awk '{ print $2 }'; }
why_here() { why_line "$@" | awk '{ print $4 }'; }
why_here0() { local h; h=$(why_here "$@"); echo "${h:-0}"; }

# converged ADDR: every node's total for ADDR's network is the sum of
# what each counted itself.
converged() {
	local sum=0 n t
	for n in a b c; do sum=$((sum + $(why_here0 "$n" "$1"))); done
	[ "$sum" -gt 0 ] || return 1
	for n in a b c; do
		t=$(why_total "$n" "$1")
		[ "${t:-x}" = "$sum" ] || return 1
	done
}
sums() {	# for a "# got" line
	local n; for n in a b c; do printf '%s: %s; ' "$n" "$(why_line "$n" "$1")"; done; echo
}

# shared_json NODE EXPR: EXPR of floodgatectl status --json's "shared"
# object (as s) on NODE; the daemon rewrites its status row every second.
shared_json() {
	"$CTL" -c "$T/$1.conf" -d "$T/$1.db" --json status 2>/dev/null |
		py "(lambda s: $2)(d.get('shared', {}))" 2>/dev/null
}

# spread NET: a few events for NET's key on each node (under the limit).
spread() {
	local n k=0
	for n in a b c a b; do event "$n" "$1.$((k + 1))" "s$k" >/dev/null; k=$((k + 1)); done
}

# since NAME MARK: NAME's log after line MARK.
mark() { wc -l <"$T/$1.log"; }
since() { tail -n +"$(($2 + 1))" "$T/$1.log"; }
lines_since() { since "$1" "$2" | grep -cE "$3"; }

# ms since START (an EPOCHREALTIME): for the figures only.
ms_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }'; }

# A background load: sessions against a, b and c in turn from many /24s
# (one unknown recipient each, never near a limit), each result a line
# of $T/load.out, until load_stop.
load_start() {
	rm -f "$T/load.stop"; : >"$T/load.out"
	(
		i=0 nodes=(a b c)
		while [ ! -e "$T/load.stop" ]; do
			event "${nodes[$((i % 3))]}" "10.$((i / 250 % 250 + 1)).$((i % 250)).1" "l$i" >>"$T/load.out" 2>>"$T/load.err"
			i=$((i + 1))
		done
	) &
	LOAD_PID=$!
	fg_pids+=("$LOAD_PID")
}
load_stop() { touch "$T/load.stop"; wait "$LOAD_PID"; }
load_mark() { wc -l <"$T/load.out"; }
load_errors_since() { tail -n +"$(($1 + 1))" "$T/load.out" | grep -vc '^pass$'; }

# ---- floodgate -n and the shared group -----------------------------------

redis_start || { echo "not ok - redis-server did not start"; exit 1; }
echo "# redis-server at 127.0.0.1:$REDIS_PORT"
for n in a b c; do node_conf "$n" "$T/$n.conf"; done

if ! "$FG_BIN" -n -c "$T/a.conf" >"$T/n.out" 2>&1 && grep -q 'shared' "$T/n.out"; then
	echo "# SKIP: this floodgate does not know the shared group yet:"
	sed 's/^/#   /' "$T/n.out"
	SHARING=0
else
	SHARING=1
fi

if [ $SHARING = 1 ]; then
	conns=$(rcli info stats | sed -n 's/^total_connections_received:\([0-9]*\).*/\1/p')
	out=$("$FG_BIN" -n -c "$T/a.conf" 2>&1)
	is "$?" 0 "-n accepts the shared group"
	ok "... and says so" grep -q 'configuration OK' <<<"$out"
	conns2=$(rcli info stats | sed -n 's/^total_connections_received:\([0-9]*\).*/\1/p')
	is "$((conns2 - conns))" 1 "... without connecting to Redis (only this check's redis-cli did)"
	dead=$(free_port)
	node_conf a "$T/dead.conf" "127.0.0.1:$dead"
	"$FG_BIN" -n -c "$T/dead.conf" >/dev/null 2>&1
	is "$?" 0 "-n accepts a server nobody listens on (it does not connect)"
	bad_conf() {	# bad_conf NAME SETTING WANT-REGEX
		NODE_SHARED_EXTRA=$2 node_conf a "$T/bad-$1.conf"
		out=$("$FG_BIN" -n -c "$T/bad-$1.conf" 2>&1)
		rc=$?
		ok "-n rejects $2 (exit $rc)" [ "$rc" -ne 0 ]
		ok "... with file:line: key: reason" \
			grep -Eq "bad-$1\.conf:[0-9]+: ($3)" <<<"$out"
		[ "$rc" -ne 0 ] && grep -Eq "bad-$1\.conf:[0-9]+: ($3)" <<<"$out" ||
			echo "#   got: $out"
	}
	bad_conf interval 'sync_interval = "1ms";' '(shared\.)?sync_interval'
	bad_conf key 'colour = "blue";' '(shared\.)?colour'
	bad_conf backend 'backend = "memcached";' '(shared\.)?backend'
	bad_conf server 'server = "no-port-here";' '(shared\.)?server'
	bad_conf pwfile "password_file = \"$T/missing\";" '(shared\.)?password_file'
fi

# ---- without sharing: each host lets its own limit through -----------------

NODE_SHARING=0
for n in a b c; do node_conf "$n" "$T/$n.conf"; node_start "$n" || exit 1; done
passed=$(attack 192.0.2 a b c)
echo "# figure: without sharing, $passed unknown recipients got through before the first refusal (limit $L, 3 hosts)"
ok "without sharing, a split attack gets three times the limit through ($passed)" \
	[ "$passed" -ge $((3 * (L - 1))) ] && [ "$passed" -le $((3 * L)) ]
for n in a b c; do node_stop "$n"; rm -f "$T/$n.db"*; done
NODE_SHARING=1

if [ $SHARING = 0 ]; then
	done_testing
fi

# ---- with sharing ------------------------------------------------------------

for n in a b c; do
	node_conf "$n" "$T/$n.conf"
	node_start "$n" || exit 1
done
if ! wait_for "grep -q 'shared: connected to' '$T/a.log'" 10; then
	if ! grep -q 'shared:' "$T/a.log"; then
		echo "# SKIP: this floodgate takes the shared group but does not share yet (no 'shared:' log line)"
		done_testing
	fi
fi
for n in a b c; do
	ok "node $n logs that it connected" \
		wait_for "grep -q 'shared: connected to 127.0.0.1:$REDIS_PORT' '$T/$n.log'" 10
done

# What floodgatectl shows of it.
ok "status --json on a: sharing ok, node a, 2 peers, a recent sync" \
	wait_for "[ \"\$(shared_json a '\"%s %s %s %s\" % (s.get(\"state\"), s.get(\"node\"), s.get(\"peers\"), (s.get(\"last_sync_age_ms\") or 10**9) < 5000)')\" = 'ok a 2 True' ]" 10 ||
	echo "#   got: $(shared_json a 's')"
out=$("$CTL" -c "$T/a.conf" -d "$T/a.db" status 2>&1)
ok "status (text) says so" grep -Eq '^shared +ok, node a via 127\.0\.0\.1:[0-9]+, 2 peers, last sync [0-9]+ ms ago' <<<"$out" ||
	grep '^shared' <<<"$out" | sed 's/^/#   got: /'
out=$("$CTL" -c "$T/a.conf" -d "$T/a.db" stats 2>&1)
ok "stats says so" grep -Eq '^shared: ok, node a' <<<"$out"
out=$("$CTL" -c "$T/a.conf" -d "$T/a.db" metrics 2>&1)
shared_gauges() {
	grep -q '^floodgate_shared_state{state="ok"} 1$' <<<"$out" &&
		grep -q '^floodgate_shared_info{node="a",' <<<"$out" &&
		grep -q '^floodgate_shared_peers 2$' <<<"$out"
}
ok "metrics: the state, the node and the peers as gauges" shared_gauges
if command -v promtool >/dev/null; then
	promtool check metrics <<<"$out" >"$T/promtool.out" 2>&1
	rc=$?
	is "$rc" 0 "... which promtool accepts"
	[ "$rc" = 0 ] || sed 's/^/# promtool: /' "$T/promtool.out"
fi

# The split attack.
passed=$(attack 198.51.100 a b c)
b=$(bound 0)
echo "# figure: with sharing, $passed got through before the first refusal (limit $L, bound $((L + b)) at $RATE/s, I = $NODE_SYNC)"
ok "a split attack is refused once the combined count passes the limit ($passed <= $L + $b)" \
	[ "$passed" -le $((L + b)) ]
ok "... and not before it ($passed >= $((L - 1)))" [ "$passed" -ge $((L - 1)) ]
ok "the three nodes agree on the attacker's count, the sum of their own" \
	wait_for "converged 198.51.100.1" 10
sums 198.51.100.1 | sed 's/^/# /'
line=$(why_line b 198.51.100.1)
ok "why on b names the other nodes and the age ($line)" \
	grep -Eq ' on (a, c|c, a) \([0-9]+ ms old\)' <<<"$line"
ok "Redis holds the attacker's counts under the prefix" \
	[ -n "$(rcli --scan --pattern 'fg:c:198.51.100.0/24*' | head -1)" ]

# Bans.
"$CTL" -c "$T/a.conf" -d "$T/a.db" ban 203.0.113.0/24 --for 1h --reason "split attack" >/dev/null
ok "a ban made with floodgatectl on a refuses there" \
	wait_for "[ \"\$(probe a 203.0.113.5)\" != continue ]" 10
t0=$EPOCHREALTIME
ok "... and on b and c" \
	wait_for "[ \"\$(probe b 203.0.113.5)\" != continue ] && [ \"\$(probe c 203.0.113.5)\" != continue ]" 10
echo "# figure: the ban reached b and c $(ms_since "$t0") ms after a refused (2 I = 500 ms)"
ban_source() { sqlite3 "$T/$1.db" "SELECT source FROM bans WHERE key = '203.0.113.0/24'" 2>/dev/null; }
# (the row is committed within a flush_interval of the ban taking effect)
wait_for "[ \"\$(ban_source b)\" = peer:a ] && [ \"\$(ban_source c)\" = peer:a ]" 5
is "$(ban_source b)" peer:a "b's database records the ban with source peer:a"
is "$(ban_source c)" peer:a "... and c's"
"$CTL" -c "$T/a.conf" -d "$T/a.db" unban 203.0.113.0/24 >/dev/null
ok "an unban on a lifts it on a, b and c" \
	wait_for "[ \"\$(probe a 203.0.113.5)\" = continue ] && [ \"\$(probe b 203.0.113.5)\" = continue ] && [ \"\$(probe c 203.0.113.5)\" = continue ]" 10
in_force() { sqlite3 "$T/$1.db" "SELECT count(*) FROM bans WHERE key = '203.0.113.0/24' AND until_ms > CAST(strftime('%s','now') AS INTEGER) * 1000" 2>/dev/null; }
wait_for "[ \"\$(in_force b)\" = 0 ]" 5
is "$(in_force b)" 0 "... and b's database no longer has it in force"

# The operators' allow list, like bans.
ctl_on() { local n=$1; shift; "$CTL" -c "$T/$n.conf" -d "$T/$n.db" "$@"; }
refused_on() { [ "$(event "$1" 198.51.100.200 al)" = refused ]; }
passes_on() { [ "$(event "$1" 198.51.100.200 al)" = pass ]; }
# until_s COND SECONDS: wait_for bounded by the clock, for conditions
# that are whole sessions (a refused one can take seconds).
until_s() {
	local end=$((SECONDS + $2))
	until eval "$1"; do
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.1
	done
}
for n in a b c; do
	ok "the attacker is refused on $n" until_s "refused_on $n" 60
done
t0=$EPOCHREALTIME
ctl_on a allow 198.51.100.200 --reason "false positive" >/dev/null
ok "an allow made with floodgatectl on a lets the attacker through there" \
	until_s "passes_on a" 60
ok "... and on b and c" until_s "passes_on b && passes_on c" 60
echo "# figure: a, b and c let the attacker through $(ms_since "$t0") ms after the allow on a (a refused try is a session of seconds; 2 I = 500 ms)"
allow_source() { sqlite3 "$T/$1.db" "SELECT source FROM allows WHERE key = '198.51.100.200'" 2>/dev/null; }
# (written by b's and c's writer threads, within a flush_interval)
wait_for "[ \"\$(allow_source b)\" = peer:a ] && [ \"\$(allow_source c)\" = peer:a ]" 5
is "$(allow_source a)" floodgatectl "a's database records the allow with source floodgatectl"
is "$(allow_source b)" peer:a "b's database records it with source peer:a"
is "$(allow_source c)" peer:a "... and c's"
out=$(ctl_on b allows 2>&1)
ok "floodgatectl allows on b lists it with source peer:a" \
	grep -Eq '^198\.51\.100\.200 .* peer:a +false positive$' <<<"$out" || echo "#   got: $out"
is "$(ctl_on c --json allows | py '[(x["key"], x["source"]) for x in d["allows"]]')" \
	"[('198.51.100.200', 'peer:a')]" "... and allows --json on c"
ctl_on a disallow 198.51.100.200 >/dev/null
ok "a disallow on a refuses the attacker again on a, b and c" \
	until_s "refused_on a && refused_on b && refused_on c" 60
wait_for "[ -z \"\$(allow_source b)\" ] && [ -z \"\$(allow_source c)\" ]" 5
is "$(allow_source b)$(allow_source c)" "" "... and b's and c's databases no longer have the allow"
is "$(ctl_on b allows)" "no allows in force" "... nor does floodgatectl allows on b"

# ---- Redis fails under load --------------------------------------------------

# fault NAME START-COMMAND END-COMMAND [HOLD-SECONDS] [FRESH-REDIS]: each
# node logs one degraded line after START, one connected line after END,
# the load gets every answer, and the sums are exact again.
fault() {
	local what=$1 start=$2 end=$3 hold=${4:-3} n net lm t0
	local -A marks=()
	for n in a b c; do marks[$n]=$(mark "$n"); done
	lm=$(load_mark)
	eval "$start"
	for n in a b c; do
		wait_for "[ \$(lines_since $n ${marks[$n]} 'shared: degraded') -ge 1 ]" 15
	done
	ok "$what: status on a says degraded, with the reason" \
		wait_for "[ \"\$(shared_json a 's[\"state\"] + (\" why\" if s.get(\"reason\") else \"\")')\" = 'degraded why' ]" 10
	sleep "$hold"
	for n in a b c; do
		is "$(lines_since "$n" "${marks[$n]}" 'shared: degraded')" 1 "$what: node $n logs one degraded line"
	done
	is "$(load_errors_since "$lm")" 0 "$what: every session got its answer while Redis was away"
	ok "$what: ... and sessions went on ($(( $(load_mark) - lm )) of them)" [ "$(load_mark)" -gt "$lm" ]
	eval "$end"
	t0=$EPOCHREALTIME
	for n in a b c; do
		ok "$what: node $n logs that it connected again" \
			wait_for "[ \$(lines_since $n ${marks[$n]} 'shared: connected to') -ge 1 ]" 15
	done
	ok "$what: status on a says ok again" wait_for "[ \"\$(shared_json a 's[\"state\"]')\" = ok ]" 10
	net=172.16.$((++fault_no))
	spread "$net"
	ok "$what: the sums are exact again" wait_for "converged $net.1" 10 || sums "$net.1"
	ok "$what: ... for the attack before it too" wait_for "converged 198.51.100.1" 10 ||
		sums 198.51.100.1
	echo "# figure: $what: sums exact $(ms_since "$t0") ms after Redis came back"
	for n in a b c; do
		is "$(lines_since "$n" "${marks[$n]}" 'shared: (degraded|connected)')" 2 \
			"$what: node $n logged two changes of state, no more"
	done
}
fault_no=0
load_start
fault "kill -9" redis_kill9 'redis_restart' 3
ok "an emptied Redis fills again from the nodes" \
	wait_for "[ -n \"\$(rcli --scan --pattern 'fg:c:198.51.100.0/24*' | head -1)\" ]" 10
fault "SIGSTOP" redis_sigstop redis_sigcont 5
fault "CLIENT PAUSE" 'rcli client pause 4000 all >/dev/null' 'wait_for "rcli ping >/dev/null" 10' 0
fault "DEBUG SLEEP" '(rcli debug sleep 4 >/dev/null &)' 'wait_for "rcli ping >/dev/null" 10' 0
load_stop
is "$(grep -c 'on_error' "$T/a.log" "$T/b.log" "$T/c.log" | awk -F: '{ s += $2 } END { print s }')" 0 \
	"on_error never fired because of Redis"

# ---- a node restarts ------------------------------------------------------------

before=$(why_total a 198.51.100.1)
node_stop b
node_start b || exit 1
ok "after a restart, b connects again" \
	wait_for "[ \$(grep -c 'shared: connected to' '$T/b.log') -ge 2 ]" 10
ok "... and the global sum is what it was ($before)" \
	wait_for "[ \"\$(why_total b 198.51.100.1)\" = '$before' ] && [ \"\$(why_total a 198.51.100.1)\" = '$before' ]" 10
sums 198.51.100.1 | sed 's/^/# /'

# ---- a node's clock is 2 s ahead ------------------------------------------------

FAKETIME_LIB=$(find /usr/lib -path "*/faketime/libfaketime.so.1" 2>/dev/null | head -1)
if [ -n "${TSAN_OPTIONS:-}" ] || [ -z "$FAKETIME_LIB" ]; then
	echo "# skipping the clock skew (no libfaketime, or ThreadSanitizer)"
else
	node_stop c
	m=$(mark c)
	node_start c ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
		LD_PRELOAD="$FAKETIME_LIB" FAKETIME="+2s" FAKETIME_DONT_FAKE_MONOTONIC=1 || exit 1
	ok "a node whose clock is 2 s ahead warns" \
		wait_for "since c $m | grep -Eq 'shared: clock is [0-9]+ms off the server'\''s'" 10
	skew=$(since c "$m" | grep -Eo 'clock is [0-9]+ms' | head -1 | grep -Eo '[0-9]+')
	ok "... by about 2000 ms (${skew:-?})" [ "${skew:-0}" -ge 1500 ] && [ "${skew:-0}" -le 2500 ]
	passed=$(attack 198.51.101 a b c)
	b=$(bound 2)
	echo "# figure: with c 2 s ahead, $passed got through before the first refusal (bound $((L + b)))"
	ok "... and the split attack stays within the bound plus the skew ($passed <= $L + $b)" \
		[ "$passed" -le $((L + b)) ]
	node_stop c
	node_start c || exit 1
fi

# ---- a slow or broken path to Redis (node c through the delay proxy) ---------------

proxy_start "$REDIS_PORT" || { echo "not ok - the delay proxy did not start"; exit 1; }
node_stop c
node_conf c "$T/c.conf" "127.0.0.1:$PROXY_PORT"
m=$(mark c)
node_start c || exit 1
ok "c connects through the proxy" \
	wait_for "since c $m | grep 'shared: connected to 127.0.0.1:$PROXY_PORT' >/dev/null" 10
for d in 5 20 100; do
	proxy_mode "delay $d"
	net=172.17.$d
	t0=$EPOCHREALTIME
	spread "$net"
	ok "at $d ms each way the sums converge" wait_for "converged $net.1" 10 || sums "$net.1"
	echo "# figure: $d ms each way: converged $(ms_since "$t0") ms after the last event (2 I + RTT = $((500 + 2 * d)) ms)"
done
for mode in blackhole rst; do
	proxy_mode pass
	m=$(mark c)
	proxy_mode "$mode"
	ok "$mode: c degrades" wait_for "[ \$(lines_since c $m 'shared: degraded') -ge 1 ]" 15
	is "$(event c 10.99.0.1 x)" pass "$mode: c still answers"
	proxy_mode pass
	ok "$mode: c connects again" wait_for "[ \$(lines_since c $m 'shared: connected') -ge 1 ]" 15
	is "$(lines_since c "$m" 'shared: degraded')" 1 "$mode: one degraded line"
done

# ---- SIGUSR1 moves a node to another server, under load ----------------------------

second_dir=$T/redis2
mkdir -p "$second_dir"
port2=$(free_port)
spawn_bound "$REDIS_SERVER" --bind 127.0.0.1 --port "$port2" --save '' --appendonly no \
	--daemonize no --dir "$second_dir" --logfile "$second_dir/redis.log"
fg_pids+=("$!")
wait_for "[ \"\$(redis-cli -p $port2 ping 2>/dev/null)\" = PONG ]" 10
load_start
node_conf a "$T/a.conf" "127.0.0.1:$port2"
m=$(mark a) lm=$(load_mark)
kill -USR1 "${NODE_PID[a]}"
ok "SIGUSR1 moves a to the new server" \
	wait_for "since a $m | grep 'shared: connected to 127.0.0.1:$port2' >/dev/null" 10
event a 172.18.0.1 z >/dev/null
ok "... and a writes its counts there" \
	wait_for "[ -n \"\$(redis-cli -p $port2 --scan --pattern 'fg:c:*' | head -1)\" ]" 10
sleep 1
load_stop
is "$(load_errors_since "$lm")" 0 "every session got its answer while a moved"
node_conf a "$T/a.conf"
kill -USR1 "${NODE_PID[a]}"
wait_for "[ \$(grep -c 'shared: connected to 127.0.0.1:$REDIS_PORT' '$T/a.log') -ge 2 ]" 10

# ---- an ACL user, a wrong password ----------------------------------------------------

# The commands floodgate(8) tells the ACL user to allow.
acl_cmds=$(sed -n 's/^.*ACL SETUSER floodgate on .*~fg:\* \(.*\)$/\1/p' "$FG_SOURCE_DIR/man/floodgate.8" |
	head -1 | sed 's/\\-/-/g')
ok "floodgate(8) gives the ACL line" [ -n "$acl_cmds" ]
# shellcheck disable=SC2086
rcli acl setuser floodgate on '>fg-secret' '~fg:*' resetchannels $acl_cmds >/dev/null
rcli acl setuser default on '>other-secret' >/dev/null
REDIS_AUTH=(--user default --pass other-secret)
echo fg-secret >"$T/good.pw"; echo wrong >"$T/bad.pw"
chmod 600 "$T/good.pw" "$T/bad.pw"
node_stop a; node_stop b
NODE_SHARED_EXTRA="username = \"floodgate\"; password_file = \"$T/good.pw\";" node_conf a "$T/a.conf"
NODE_SHARED_EXTRA="username = \"floodgate\"; password_file = \"$T/bad.pw\";" node_conf b "$T/b.conf"
ma=$(mark a) mb=$(mark b)
node_start a || exit 1
node_start b || exit 1
ok "the ACL user limited to fg:* and floodgate(8)'s commands connects" \
	wait_for "since a $ma | grep -q 'shared: connected to'" 10
event a 172.19.0.1 q >/dev/null; event a 172.19.0.2 q >/dev/null
ok "... and shares (no NOPERM)" \
	wait_for "[ -n \"\$(rcli --scan --pattern 'fg:c:172.19.0.0/24*' | head -1)\" ]" 10
ok "... without a degraded line" [ "$(lines_since a "$ma" 'shared: degraded')" = 0 ]
ok "a wrong password degrades with a clear reason" \
	wait_for "since b $mb | grep -Eiq 'shared: degraded: .*(password|WRONGPASS|auth)'" 10
since b "$mb" | grep 'shared: degraded' | head -2 | sed 's/^/# /'
is "$(event b 172.19.1.1 q)" pass "... and b still answers"

for n in a b c; do
	ok "no sanitizer report from node $n" bash -c "! grep -q 'Sanitizer' '$T/$n.log'"
done
done_testing
