#!/bin/bash
# run.sh - floodgate against a no-op milter: over the milter protocol
# (bench/fgload) and through a private Postfix on loopback (smtp-source).
#
#   bench/run.sh [--quick] [--milter-only | --postfix-only] [options]
#   bench/run.sh --big-db [--prefill-events N] [--big-db-file PATH] ...
#   bench/run.sh --flood-rss [--flood-addresses N]
#
# Default: build (or reuse) build/release, then
#   1. milter protocol: for c = 1, 8, 64 and each traffic mix (legit, dha,
#      flood, mix), alternating noop_milter and floodgate (noop, floodgate,
#      noop, floodgate ... 3 rounds each), each run a fresh filter process
#      and, for floodgate, a fresh database, under the same fgload load;
#      per case the medians, the ratio floodgate / noop of sessions/s
#      served (fgload --park 128: a session in floodgate's tarpit gives its
#      place to a new one, and counts as served if still held at the end),
#      and of legitimate sessions per second of the time spent on them,
#      and of the filter's CPU per milter command, what floodgate answered (its
#      tarpit and refusals under attack), and at c = 1 the p99 latency
#      floodgate adds per command;
#   2. Postfix: one private instance each with no milter, noop_milter and
#      floodgate (t/mta/mta.sh), loaded in turn by smtp-source from many
#      127.x addresses (bench/fg_srcaddr.so); sessions/s, the ratio
#      floodgate / noop, and the filters' CPU per session.
# Takes about 14 minutes; --quick about 2 (fewer cases, shorter runs).
#
# Options:
#   --build DIR          build tree (default build/release; configured
#                        with -DCMAKE_BUILD_TYPE=Release if missing)
#   --quick              c = 1, 8, 64 with the legit and mix traffic only,
#                        1 s runs; Postfix at c = 16 only, short runs
#   --milter-only        only part 1;  --postfix-only: only part 2
#   --rounds N           rounds per filter and case (default 3, at least 3)
#   --pf-rounds N        rounds of the Postfix part (default 5, quick 3)
#   --pf-sessions N      smtp-source sessions per Postfix run (default
#                        3000, quick 1000)
#   --seconds S          length of one milter-protocol run (default 3, quick 1)
#   --mixes "M ..."      only these traffic mixes (legit dha flood mix)
#   --conc "C ..."       only these concurrencies (default 1 8 64)
#   --big-db             floodgate's database is, at every run, a fresh
#                        copy of one pre-filled with --prefill-events
#                        events (default 10000000; ~1 minute and ~380 MB
#                        per million here) over the last 7 days
#   --big-db-file PATH   keep the pre-filled database there and reuse it
#                        if it exists (the fill is the slow part)
#   --flood-rss          only: a connect flood from --flood-addresses
#                        distinct addresses (default 1000000) against
#                        floodgate, its RSS sampled every second (a few
#                        minutes)
#   --flood-rate R       with --flood-rss: at R sessions a second, RSS
#                        sampled every 10 s, until --flood-addresses
#                        have come; for a run past the 1 h horizon, where
#                        counters of old addresses expire (e.g. 278 and
#                        1250000: 76 minutes, 1M addresses within the
#                        hour at the end)
#   --json FILE          also write every run's raw figures (JSON lines)
#   --keep               keep the work directory (logs, databases)
#
# Traffic goes only to the filters' unix sockets and to Postfix on
# 127.0.0.1; every run is bounded in sessions and seconds; every process
# started is stopped on exit (trap).  Needs root for Postfix (as the
# tests do), python3, and postfix installed (contrib/dev/deps.sh).
# Benchmarks on a shared or busy machine are noisy: look at the load
# average printed at the start, and compare ratios, not absolute rates.
# (libmilter notices a SIGTERM only when its listener wakes, up to 5 s
# later: run.sh connects to the socket once after the signal.)
set -uo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$src/build/release
quick=0 do_milter=1 do_postfix=1 rounds=3 seconds='' keep=0 json_out=''
pf_rounds='' pf_sessions=''
big_db=0 prefill_events=10000000 big_db_file='' flood_rss=0 flood_n=1000000
flood_rate=
only_mixes='' only_conc=''

die() { echo "run.sh: $*" >&2; exit 1; }
. "$src/bench/conf.sh"
usage() { sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
	case $1 in
	--build) build=${2:?--build DIR}; shift ;;
	--quick) quick=1 ;;
	--milter-only) do_postfix=0 ;;
	--postfix-only) do_milter=0 ;;
	--rounds) rounds=${2:?--rounds N}; shift ;;
	--pf-rounds) pf_rounds=${2:?--pf-rounds N}; shift ;;
	--pf-sessions) pf_sessions=${2:?--pf-sessions N}; shift ;;
	--seconds) seconds=${2:?--seconds S}; shift ;;
	--big-db) big_db=1 ;;
	--prefill-events) prefill_events=${2:?--prefill-events N}; shift ;;
	--big-db-file) big_db_file=${2:?--big-db-file PATH}; shift ;;
	--flood-rss) flood_rss=1 ;;
	--flood-addresses) flood_n=${2:?--flood-addresses N}; shift ;;
	--flood-rate) flood_rate=${2:?--flood-rate R}; shift ;;
	--json) json_out=${2:?--json FILE}; shift ;;
	--keep) keep=1 ;;
	--mixes) only_mixes=${2:?--mixes "legit mix ..."}; shift ;;
	--conc) only_conc=${2:?--conc "8 64"}; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
	shift
done
[ "$do_milter$do_postfix" != 00 ] || die "--milter-only and --postfix-only exclude each other"
if ! [[ $rounds =~ ^[0-9]+$ ]] || [ "$rounds" -lt 3 ]; then die "--rounds: at least 3"; fi
if [ -n "$pf_sessions" ] && ! [[ $pf_sessions =~ ^[1-9][0-9]{0,5}$ ]]; then
	die "--pf-sessions: 1 .. 999999"
fi
if ! [[ $prefill_events =~ ^[1-9][0-9]*$ ]]; then die "--prefill-events: a number"; fi
if ! [[ $flood_n =~ ^[1-9][0-9]*$ ]] || [ "$flood_n" -gt 16000000 ]; then
	die "--flood-addresses: 1 .. 16000000"
fi
if [ -z "$seconds" ]; then
	if [ $quick = 1 ]; then seconds=1; else seconds=3; fi
fi
[[ $seconds =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--seconds: a number"
command -v python3 >/dev/null || die "python3 is needed"
case $build in /*) ;; *) build=$PWD/$build ;; esac

if [ $quick = 1 ]; then
	concurrency=(1 8 64) mixes=(legit mix)
	pf_conc=(16) pf_sessions=${pf_sessions:-1000} pf_rounds=${pf_rounds:-3}
else
	concurrency=(1 8 64) mixes=(legit dha flood mix)
	pf_conc=(1 16) pf_sessions=${pf_sessions:-3000} pf_rounds=${pf_rounds:-5}
fi
if ! [[ $pf_rounds =~ ^[0-9]+$ ]] || [ "$pf_rounds" -lt 3 ]; then die "--pf-rounds: at least 3"; fi
if [ -n "$only_mixes" ]; then
	for m in $only_mixes; do
		[[ $m =~ ^(legit|dha|flood|mix)$ ]] || die "--mixes: legit, dha, flood or mix"
	done
	read -ra mixes <<<"$only_mixes"
fi
if [ -n "$only_conc" ]; then
	for c in $only_conc; do [[ $c =~ ^[1-9][0-9]*$ ]] || die "--conc: whole numbers"; done
	read -ra concurrency <<<"$only_conc"
fi

# ---- build ---------------------------------------------------------------

if [ ! -f "$build/CMakeCache.txt" ]; then
	echo "run.sh: configuring $build (Release)"
	cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null ||
		die "cmake configure failed"
fi
cmake --build "$build" -j"$(nproc)" --target floodgate noop_milter fgload \
	bench_prefill fg_srcaddr >"$build/bench-build.log" 2>&1 ||
	{ tail -20 "$build/bench-build.log" >&2; die "build failed (see $build/bench-build.log)"; }
FG=$build/milter/floodgate
NOOP=$build/bench/noop_milter
LOAD=$build/bench/fgload
PREFILL=$build/bench/bench_prefill
SHIM=$build/bench/fg_srcaddr.so
btype=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt")
[ "$btype" = Release ] || echo "run.sh: warning: $build is a $btype build, not Release" >&2
grep -qE '^FG_(ASAN|UBSAN|TSAN):BOOL=ON' "$build/CMakeCache.txt" &&
	echo "run.sh: warning: $build has sanitizers on: numbers mean little" >&2

# ---- work directory, cleanup -----------------------------------------------

work=$(mktemp -d "${TMPDIR:-/tmp}/floodgate-bench.XXXXXX") || die "mktemp failed"
chmod 711 "$work"          # Postfix's smtpd (user postfix) reaches the sockets
results=$work/results.jsonl
: >"$results"
filter_pid='' filter_sock='' sampler_pid=''
mta_loaded=0

poke() {	# wake libmilter's listener, which otherwise notices a stop late
	python3 - "$1" <<'EOF' 2>/dev/null || true
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(1)
s.connect(sys.argv[1])
s.close()
EOF
}

# stop_filter: SIGTERM, wake libmilter, wait up to 15 s, then SIGKILL.
# Sets stop_secs; returns 1 if the filter had to be killed.
stop_filter() {
	local pid=$filter_pid sock=$filter_sock t0=$EPOCHREALTIME rc=0
	[ -n "$pid" ] || return 0
	filter_pid=''
	kill -TERM "$pid" 2>/dev/null
	sleep 0.05
	[ -S "$sock" ] && poke "$sock"
	for _ in $(seq 300); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "run.sh: filter $pid did not stop within 15 s: SIGKILL" >&2
		kill -KILL "$pid" 2>/dev/null
		rc=1
	fi
	wait "$pid" 2>/dev/null
	stop_secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
	return $rc
}

cleanup() {
	trap - EXIT INT TERM
	[ -n "$sampler_pid" ] && kill "$sampler_pid" 2>/dev/null
	stop_filter >/dev/null 2>&1
	# (braces: no "Killed" notices for the MTAs' launchers)
	[ $mta_loaded = 1 ] && { mta_stop_all; } 2>/dev/null
	[ -n "$json_out" ] && [ -s "$results" ] && cp "$results" "$json_out"
	if [ $keep = 1 ]; then
		echo "run.sh: kept $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'echo "run.sh: interrupted" >&2; exit 130' INT TERM

# ---- configuration ---------------------------------------------------------

# etc/floodgate.conf with its policy as shipped; only the daemon's place
# changes (root, socket reachable by Postfix, no pid file) and the
# loopback is no longer exempt (Postfix's clients are 127.x addresses).
conf=$work/floodgate.conf
bench_conf "$src/etc/floodgate.conf" "$work" "$conf"
"$FG" -n -c "$conf" >/dev/null || die "the benchmark configuration does not load"

# ---- filters ---------------------------------------------------------------

# start_filter KIND NAME [DB]: noop or floodgate on unix:$work/NAME.sock;
# sets filter_pid, filter_sock, start_secs.
start_filter() {
	local kind=$1 name=$2 db=${3:-} log=$work/$2.log t0=$EPOCHREALTIME limit=300
	filter_sock=$work/$name.sock
	rm -f "$filter_sock"
	: >"$log"
	if [ "$kind" = noop ]; then
		"$NOOP" -f -m 0666 -p "unix:$filter_sock" 2>>"$log" &
	else
		rm -f "$db" "$db-wal" "$db-shm"
		if [ $big_db = 1 ]; then
			cp "$big_db_path" "$db" || die "cannot copy $big_db_path"
			limit=1200
			t0=$EPOCHREALTIME    # the start, not the copy
		fi
		"$FG" -f -c "$conf" -p "unix:$filter_sock" -d "$db" -P "" 2>>"$log" &
	fi
	filter_pid=$!
	for ((i = 0; i < limit * 2; i++)); do
		[ -S "$filter_sock" ] && grep -q 'started' "$log" && break
		kill -0 "$filter_pid" 2>/dev/null || break
		sleep 0.025
	done
	start_secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
	if ! [ -S "$filter_sock" ] || ! grep -q started "$log"; then
		echo "run.sh: $kind did not start:" >&2
		tail -5 "$log" >&2
		stop_filter
		return 1
	fi
}

tck=$(getconf CLK_TCK)
cpu_secs() {	# user+system CPU seconds of process $1
	awk -v t="$tck" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# ---- part 1: the milter protocol ----------------------------------------------

# milter_run KIND C MIX ROUND: one run, one JSON line into $results.
milter_run() {
	local kind=$1 c=$2 mix=$3 round=$4 name=$1-$2-$3-$4 db out cpu0 cpu1 alive=true
	db=$work/$name.db
	start_filter "$kind" "$name" "$db" || {
		printf '{"part":"milter","filter":"%s","c":%s,"mix":"%s","round":%s,"failed":"start"}\n' \
			"$kind" "$c" "$mix" "$round" >>"$results"
		return 1
	}
	cpu0=$(cpu_secs "$filter_pid")
	# --park: sessions in floodgate's tarpit (at most its
	# max_delayed_sessions, 50) leave their place to new ones, as an MTA
	# with processes to spare goes on serving other clients.
	out=$("$LOAD" -q -s "unix:$filter_sock" -c "$c" -m "$mix" -t "$seconds" \
		-n 10000000 --park 128 --seed "$round" --label "$name" 2>&1 |
		sed -n 's/^JSON //p')
	cpu1=$(cpu_secs "$filter_pid")
	if ! kill -0 "$filter_pid" 2>/dev/null; then
		alive=false
		echo "run.sh: $kind died during $name; log:" >&2
		tail -5 "$work/$name.log" >&2
	fi
	stop_filter
	[ -n "$out" ] || out=null
	printf '{"part":"milter","filter":"%s","c":%s,"mix":"%s","round":%s,"alive":%s,"start_s":%s,"stop_s":%s,"cpu_s":%s,"log_lines":%s,"r":%s}\n' \
		"$kind" "$c" "$mix" "$round" "$alive" "$start_secs" "${stop_secs:-0}" \
		"$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.2f", b - a }')" \
		"$(wc -l <"$work/$name.log")" "$out" >>"$results"
	rm -f "$db" "$db-wal" "$db-shm"
	printf '.'
}

# ---- part 2: Postfix -----------------------------------------------------

pf_queue_empty() {	# no message left in instance $1's queue
	[ -z "$(find "$1/spool/incoming" "$1/spool/active" "$1/spool/maildrop" \
		"$1/spool/deferred" "$1/spool/hold" -type f 2>/dev/null | head -1)" ]
}

# postfix_run KIND C ROUND: one smtp-source run against the instance of KIND.
postfix_run() {
	local kind=$1 c=$2 round=$3 name=pf-$1-$2-$3 dir=$work/pf-$1 port t0 t1 rc
	local lines0 rejects cpu0=0 cpu1=0 alive=true
	port=$(cat "$work/pf-$kind.port")
	if [ "$kind" != none ]; then
		start_filter "$kind" "pf-$kind" "$work/$name.db" || return 1
		cpu0=$(cpu_secs "$filter_pid")
	fi
	lines0=$(wc -l <"$dir/maillog")
	t0=$EPOCHREALTIME
	FG_BENCH_SRC_NETS=4096 LD_PRELOAD=$SHIM timeout 120 /usr/sbin/smtp-source -A \
		-s "$c" -m "$pf_sessions" -r 3 -f "sender@example.net" \
		-t "alice@$FG_MTA_DOMAIN" -M client.example.net "127.0.0.1:$port" \
		>"$work/$name.out" 2>&1
	rc=$?
	t1=$EPOCHREALTIME
	if [ "$kind" != none ]; then
		cpu1=$(cpu_secs "$filter_pid")
		kill -0 "$filter_pid" 2>/dev/null || alive=false
	fi
	# Let delivery finish so that the next run starts from an idle Postfix.
	for _ in $(seq 600); do pf_queue_empty "$dir" && break; sleep 0.05; done
	rejects=$(tail -n +"$((lines0 + 1))" "$dir/maillog" | grep -c 'milter-reject')
	stop_filter
	printf '{"part":"postfix","filter":"%s","c":%s,"round":%s,"rc":%s,"alive":%s,"sessions":%s,"secs":%s,"cpu_s":%s,"rejects":%s}\n' \
		"$kind" "$c" "$round" "$rc" "$alive" "$pf_sessions" \
		"$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')" \
		"$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.2f", b - a }')" \
		"$rejects" >>"$results"
	rm -f "$work/$name.db" "$work/$name.db-wal" "$work/$name.db-shm"
	printf '.'
}

# ---- the flood RSS curve ------------------------------------------------------

flood_rss_run() {
	local db=$work/flood.db rss0 max=0 t=0 out rss every=1 secs=900 pace=()
	if [ -n "$flood_rate" ]; then
		every=10
		secs=$(awk -v n="$flood_n" -v r="$flood_rate" 'BEGIN { printf "%d", n / r + 60 }')
		pace=(--rate "$flood_rate")
	fi
	echo "== connect flood from $flood_n distinct addresses (fgload -m flood --distinct $flood_n -c 8 ${pace[*]})"
	start_filter floodgate flood "$db" || die "floodgate did not start"
	rss0=$(awk '/^VmRSS/ { print $2 }' "/proc/$filter_pid/status")
	echo "floodgate started in ${start_secs}s, VmRSS ${rss0} kB"
	"$LOAD" -q -s "unix:$filter_sock" -c 8 -m flood --distinct "$flood_n" -n "$flood_n" \
		-t "$secs" "${pace[@]}" --label flood-rss >"$work/flood.out" 2>&1 &
	local load_pid=$!
	sampler_pid=$load_pid
	printf '%6s %10s\n' seconds 'VmRSS kB'
	while kill -0 "$load_pid" 2>/dev/null; do
		sleep "$every"
		t=$((t + every))
		rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$filter_pid/status" 2>/dev/null) || rss=0
		[ -n "$rss" ] || rss=0
		[ "$rss" -gt "$max" ] && max=$rss
		printf '%6d %10d\n' "$t" "$rss"
	done
	wait "$load_pid"
	sampler_pid=''
	for i in 1 2 3; do
		sleep 1
		rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$filter_pid/status" 2>/dev/null) || rss=0
		[ "${rss:-0}" -gt "$max" ] && max=$rss
		printf '%6s %10d   (after the flood)\n' "+$i" "${rss:-0}"
	done
	out=$(sed -n 's/^JSON //p' "$work/flood.out")
	kill -0 "$filter_pid" 2>/dev/null || echo "run.sh: floodgate died during the flood" >&2
	stop_filter
	python3 - "$out" "$rss0" "$max" "$flood_n" <<'EOF'
import json, sys
r = json.loads(sys.argv[1]) if sys.argv[1] else {}
rss0, mx, want = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
n = r.get("completed", 0)
print("sessions %d in %.1f s (%.0f/s), failed %d; connect replies: %s" % (
    n, r.get("wall_s", 0), r.get("sessions_per_s", 0), r.get("failed", 0),
    json.dumps(r.get("commands", {}).get("connect", {}).get("replies", {}))))
print("VmRSS: start %.1f MB, max %.1f MB, growth %.0f bytes per distinct address" % (
    rss0 / 1024, mx / 1024, (mx - rss0) * 1024 / max(1, min(n, want))))
EOF
}

# ---- header ----------------------------------------------------------------

echo "floodgate benchmark: $(date '+%F %T'), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  $("$FG" -V), build $build ($btype); rounds $rounds, Postfix $pf_rounds; work dir $work"

if [ $flood_rss = 1 ]; then
	flood_rss_run
	exit 0
fi

if [ $big_db = 1 ]; then
	big_db_path=${big_db_file:-$work/big.db}
	if [ -f "$big_db_path" ]; then
		echo "== big database: reusing $big_db_path ($(du -m "$big_db_path" | cut -f1) MB)"
	else
		echo "== big database: filling $big_db_path with $prefill_events events (bench_prefill)"
		"$PREFILL" -c "$conf" -d "$big_db_path" -n "$prefill_events" ||
			die "bench_prefill failed"
	fi
fi

if [ $do_milter = 1 ]; then
	echo "== milter protocol: fgload, ${seconds}s per run, c = ${concurrency[*]}, mixes ${mixes[*]}"
	for c in "${concurrency[@]}"; do
		for mix in "${mixes[@]}"; do
			printf '  c=%-3s %-6s ' "$c" "$mix"
			for ((r = 1; r <= rounds; r++)); do
				milter_run noop "$c" "$mix" "$r"
				milter_run floodgate "$c" "$mix" "$r"
			done
			echo
		done
	done
fi

if [ $do_postfix = 1 ]; then
	[ "$(id -u)" = 0 ] || die "the Postfix part needs root (or use --milter-only)"
	[ -x /usr/sbin/smtp-source ] || die "/usr/sbin/smtp-source is missing (package postfix)"
	export FG_SOURCE_DIR=$src
	# shellcheck source-path=SCRIPTDIR/..
	# shellcheck source=t/mta/mta.sh
	. "$src/t/mta/mta.sh"
	mta_loaded=1
	echo "== Postfix: smtp-source, $pf_sessions sessions of one message to 3 recipients per run, c = ${pf_conc[*]}"
	port=$(mta_free_port 27000)
	for kind in none noop floodgate; do
		# Postfix's own directory is $work/pf-KIND; the filter behind it
		# listens on $work/pf-KIND.sock (restarted for every run).
		if [ $kind = none ]; then
			postfix_start "$work/pf-$kind" "$port" "unix:$work/pf-none.sock" \
				"smtpd_milters =" "local_recipient_maps =" ||
				die "Postfix did not start"
		else
			FG_MTA_PROBE=0 postfix_start "$work/pf-$kind" "$port" \
				"unix:$work/pf-$kind.sock" "local_recipient_maps =" ||
				die "Postfix did not start"
		fi
		echo "$port" >"$work/pf-$kind.port"
		port=$(mta_free_port $((port + 1)))
	done
	for c in "${pf_conc[@]}"; do
		printf '  c=%-3s        ' "$c"
		# The filters take turns at going first, so that a drift of the
		# machine during a round falls on both alike.
		for ((r = 1; r <= pf_rounds; r++)); do
			order=(none noop floodgate)
			[ $((r % 2)) = 0 ] && order=(none floodgate noop)
			for kind in "${order[@]}"; do
				postfix_run "$kind" "$c" "$r"
			done
		done
		echo
	done
fi

# ---- summary ---------------------------------------------------------------

echo
python3 - "$results" "$seconds" "$rounds" "$big_db" "$pf_rounds" <<'EOF'
import json, statistics, sys

path, seconds, rounds, big = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
pf_rounds = sys.argv[5]
runs = [json.loads(l) for l in open(path) if l.strip()]

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

def fmt(x, f="%.0f"):
    return "-" if x is None else f % x

def ratio(a, b):
    return None if a is None or not b else a / b

CMDS = ["optneg", "connect", "helo", "mail", "rcpt"]
mil = [r for r in runs if r["part"] == "milter"]
if mil:
    print("milter protocol (fgload on the unix socket; %s s per run, %s rounds each, "
          "medians)%s" % (seconds, rounds, "; floodgate on a copy of the big database" if big else ""))
    print("  sess/s: sessions served per second (completed, or held in a delay at the end: fgload")
    print("  --park 128 lets a session in the tarpit give its place to a new one); us/cmd: the")
    print("  filter's CPU time (user+system)")
    print("  per milter command answered; floodgate's answers: its replies other than continue,")
    print("  summed over commands (delayed = slower than 500 ms: its tarpit); all medians of rounds;")
    print("  legit: the ratio of legitimate sessions per second of the time connections spent on")
    print("  them (attack sessions, and floodgate's tarpit, left out)")
    hdr = ("mix", "c", "noop sess/s", "fg sess/s", "ratio", "legit", "noop us/cmd",
           "fg us/cmd", "ratio", "errors", "floodgate's answers")
    print("  %-6s %3s %11s %10s %6s %9s %11s %10s %6s %6s  %s" % hdr)
    cases = []
    for r in mil:
        k = (r["c"], r["mix"])
        if k not in cases:
            cases.append(k)
    lat = {}
    noop_parked = []
    for c, mix in cases:
        sel = {f: [r for r in mil if r["c"] == c and r["mix"] == mix and r["filter"] == f
                   and r.get("r")]
               for f in ("noop", "floodgate")}
        def rate(rs, field="served_sessions_per_s"):
            return med([r["r"][field] for r in rs])
        def answered(r):
            return sum(v["n"] for k, v in r["r"]["commands"].items() if k != "open")
        def cpu(rs):
            return med([r["cpu_s"] * 1e6 / answered(r) for r in rs
                        if answered(r) > 0 and r["cpu_s"] >= 0.05])
        def answers(rs):
            keys = {}
            for r in rs:
                for v in r["r"]["commands"].values():
                    for k in v["replies"]:
                        if k not in ("continue", "noreply"):
                            keys[k] = 1
            out = []
            d = med([sum(v["delayed"] for v in r["r"]["commands"].values()) for r in rs])
            if d:
                out.append("delayed=%d" % d)
            p = med([r["r"].get("parked", 0) for r in rs])
            if p:
                out.append("parked=%d" % p)
            for k in sorted(keys):
                m = med([sum(v["replies"].get(k, 0) for v in r["r"]["commands"].values())
                         for r in rs])
                out.append("%s=%d" % (k, m))
            return " ".join(out) or "-"
        allr = [r for r in mil if r["c"] == c and r["mix"] == mix]
        errs = sum(r["r"]["failed"] for r in allr if r.get("r")) + \
            sum(1 for r in allr if not r.get("r") or not r.get("alive", True))
        nr, fr = rate(sel["noop"]), rate(sel["floodgate"])
        np_ = med([r["r"].get("parked", 0) for r in sel["noop"]])
        if np_:
            noop_parked.append("%s c=%d: %d" % (mix, c, np_))
        nu = rate(sel["noop"], "legit_sessions_per_s")
        fu = rate(sel["floodgate"], "legit_sessions_per_s")
        nc, fc = cpu(sel["noop"]), cpu(sel["floodgate"])
        print("  %-6s %3d %11s %10s %6s %9s %11s %10s %6s %6d  %s" % (
            mix, c, fmt(nr), fmt(fr), fmt(ratio(fr, nr), "%.2f"),
            fmt(ratio(fu, nu), "%.2f"), fmt(nc), fmt(fc),
            fmt(ratio(fc, nc), "%.2f"), errs, answers(sel["floodgate"])))
        if c == 1:
            lat[mix] = {}
            for cmd in CMDS:
                # (the p99 of fewer than 1000 replies is a few outliers:
                # 1 s runs of the mix at c = 1, where parking a session
                # takes 20 ms, have about 250 sessions)
                p = [med([r["r"]["commands"][cmd]["p99_us"] for r in sel[f]
                          if r["r"]["commands"][cmd]["n"] - r["r"]["commands"][cmd]["delayed"]
                          >= 1000])
                     for f in ("noop", "floodgate")]
                lat[mix][cmd] = p
    if noop_parked:
        print("  noop sessions parked (a reply over 20 ms; median): " + ", ".join(noop_parked))
    if lat:
        print()
        print("  p99 latency per command at c=1, microseconds: noop -> floodgate (added); "
              "delayed replies excluded,")
        print("  '-' where a run had fewer than 1000 timed replies")
        print("  %-6s" % "mix" + "".join("%21s" % c for c in CMDS))
        for mix, d in lat.items():
            cells = []
            for cmd in CMDS:
                n, f = d[cmd]
                if n is None or f is None:
                    cells.append("-")
                else:
                    cells.append("%d->%d (%+d)" % (n, f, f - n))
            print("  %-6s" % mix + "".join("%21s" % x for x in cells))
    bad = [r for r in mil if not r.get("alive", True) or not r.get("r") or r.get("failed")]
    for r in bad:
        print("  ! %s c=%s %s round %s: %s" % (r["filter"], r["c"], r["mix"], r["round"],
              "did not start" if r.get("failed") else "died" if not r.get("alive", True)
              else "no result"))
    starts = [r["start_s"] for r in mil if r["filter"] == "floodgate" and "start_s" in r]
    stops = [r["stop_s"] for r in mil if r["filter"] == "floodgate" and "stop_s" in r]
    if starts:
        print("  floodgate start (median) %.2f s, stop %.2f s" % (med(starts), med(stops)))

pf = [r for r in runs if r["part"] == "postfix"]
if pf:
    print()
    print("through Postfix on 127.0.0.1 (smtp-source; %d sessions per run, one message "
          "to 3 recipients each; %s rounds, medians)" % (pf[0]["sessions"], pf_rounds))
    print("  sessions/s with no milter, noop_milter, floodgate; floodgate/noop of the medians,")
    print("  and the median (lowest-highest) of each round's floodgate/noop; the filters' CPU")
    print("  microseconds per session")
    print("  %-4s %8s %8s %10s %15s %18s %10s %9s %8s %8s" % (
        "c", "none", "noop", "floodgate", "floodgate/noop", "per round", "noop/none",
        "noop cpu", "fg cpu", "rejects"))
    for c in sorted({r["c"] for r in pf}):
        def rate(f):
            return med([r["sessions"] / r["secs"] for r in pf
                        if r["c"] == c and r["filter"] == f and r["secs"] > 0 and r["rc"] == 0])
        def cpu(f):
            return med([r["cpu_s"] * 1e6 / r["sessions"] for r in pf
                        if r["c"] == c and r["filter"] == f])
        def round_rate(f, rnd):
            xs = [r["sessions"] / r["secs"] for r in pf if r["c"] == c and r["filter"] == f
                  and r["round"] == rnd and r["secs"] > 0 and r["rc"] == 0]
            return xs[0] if xs else None
        paired = [ratio(round_rate("floodgate", k), round_rate("noop", k))
                  for k in sorted({r["round"] for r in pf if r["c"] == c})]
        paired = [x for x in paired if x is not None]
        spread = "%.2f (%.2f-%.2f)" % (med(paired), min(paired), max(paired)) if paired else "-"
        rej = sum(r["rejects"] for r in pf if r["c"] == c)
        n0, n1, n2 = rate("none"), rate("noop"), rate("floodgate")
        print("  %-4d %8s %8s %10s %15s %18s %10s %9s %8s %8d" % (
            c, fmt(n0), fmt(n1), fmt(n2), fmt(ratio(n2, n1), "%.2f"), spread,
            fmt(ratio(n1, n0), "%.2f"), fmt(cpu("noop")), fmt(cpu("floodgate")), rej))
    for r in pf:
        if r["rc"] != 0 or not r.get("alive", True):
            print("  ! %s c=%s round %s: smtp-source exit %s%s" % (
                r["filter"], r["c"], r["round"], r["rc"],
                "" if r.get("alive", True) else ", filter died"))
EOF
