#!/bin/bash
# shared.sh - what sharing counts through Redis costs the milter
# callbacks: floodgate with sharing off, on, and on with Redis stopped
# (SIGSTOP: a hung server, the worst case), under the same fgload load.
#
#   bench/shared.sh [--quick] [--build DIR] [--no-build] [--rounds N]
#                   [--seconds S] [--peer-rate R] [--json FILE] [--keep]
#
# One private redis-server on 127.0.0.1 (a free port, no persistence) and
# three floodgate daemons, nodes a, b and c, each with the policy of
# etc/floodgate.conf (the loopback no longer exempt) and, in the modes on
# and stopped, its shared group with the shipped defaults.  b and c
# carry a steady paced load (fgload -m mix --rate R, default 200
# sessions/s each) in every mode, so that a has peers whose counts it
# pulls and the machine is as busy in each mode.  a is measured:
#   - c = 1, legit traffic: p99 latency of every milter command;
#   - c = 8 and c = 64, mixed traffic (fgload --park 128, as bench/run.sh):
#     sessions served per second;
# each as a ratio to "off" of the same round (modes alternate, rounds
# take turns at which goes first), medians over the rounds; and, with
# sharing on, a's sync thread's CPU (per cent of one core, from
# /proc/PID/task) and Redis's commands per second (INFO stats,
# total_commands_processed) during the c = 8 run.
# Every daemon is fresh for each run, with a fresh database, and Redis
# is emptied (FLUSHALL) before it.
#
# Options:
#   --build DIR     build tree (default build/release, configured as
#                   Release if missing)
#   --no-build      use DIR as it is (the tests' quick run)
#   --quick         one round, 1 s runs, c = 1 and 8: a smoke run of a
#                   minute or so (t/integration/test_bench.sh runs it)
#   --rounds N      rounds (default 3)
#   --seconds S     length of one measured run (default 3)
#   --peer-rate R   sessions/s of b's and of c's load (default 200)
#   --json FILE     also write every run's raw figures (JSON lines)
#   --keep          keep the work directory (logs, databases)
#
# Needs redis-server, python3.  Traffic goes only to unix sockets in the
# work directory and to Redis on 127.0.0.1; every process started is
# stopped on exit, and dies with this script even if it is killed (-9).
# Compare ratios, not absolute rates: the machine's load (printed) moves
# them all.
set -uo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$src/build/release
quick=0 rounds=3 seconds='' peer_rate=200 json_out='' keep=0 no_build=0

die() { echo "shared.sh: $*" >&2; exit 1; }
. "$src/bench/conf.sh"
usage() { sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
	case $1 in
	--build) build=${2:?--build DIR}; shift ;;
	--no-build) no_build=1 ;;
	--quick) quick=1 ;;
	--rounds) rounds=${2:?--rounds N}; shift ;;
	--seconds) seconds=${2:?--seconds S}; shift ;;
	--peer-rate) peer_rate=${2:?--peer-rate R}; shift ;;
	--json) json_out=${2:?--json FILE}; shift ;;
	--keep) keep=1 ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
	shift
done
if [ $quick = 1 ]; then
	seconds=${seconds:-1} rounds=1 concs=(1 8)
else
	seconds=${seconds:-3} concs=(1 8 64)
fi
[[ $rounds =~ ^[1-9][0-9]?$ ]] || die "--rounds: 1 .. 99"
[[ $seconds =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--seconds: a number"
[[ $peer_rate =~ ^[1-9][0-9]{0,4}$ ]] || die "--peer-rate: 1 .. 99999"
command -v python3 >/dev/null || die "python3 is needed"
command -v redis-server >/dev/null || die "redis-server is needed (contrib/dev/deps.sh)"
case $build in /*) ;; *) build=$PWD/$build ;; esac

if [ $no_build = 0 ]; then
	if [ ! -f "$build/CMakeCache.txt" ]; then
		echo "shared.sh: configuring $build (Release)"
		cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null ||
			die "cmake configure failed"
	fi
	cmake --build "$build" -j2 --target floodgate fgload >"$build/bench-build.log" 2>&1 ||
		{ tail -20 "$build/bench-build.log" >&2; die "build failed (see $build/bench-build.log)"; }
fi
FG=$build/milter/floodgate
LOAD=$build/bench/fgload
[ -x "$FG" ] && [ -x "$LOAD" ] || die "$FG or $LOAD is missing"
btype=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null)
[ "$btype" = Release ] || echo "shared.sh: warning: $build is a ${btype:-unknown} build, not Release" >&2

# ---- work directory, processes -------------------------------------------------

work=$(mktemp -d "${TMPDIR:-/tmp}/floodgate-shared.XXXXXX") || die "mktemp failed"
results=$work/results.jsonl
: >"$results"
declare -A pid=()
redis_pid='' port='' stid=''
peer_loads=()

# A child that gets SIGKILL when this shell dies, however it dies.
spawn() { setpriv --pdeathsig KILL "$@" & }

stop_pid() {	# TERM, wake libmilter's listener, wait up to 10 s, KILL
	local p=$1 sock=${2:-}
	[ -n "$p" ] || return 0
	kill -CONT "$p" 2>/dev/null
	kill -TERM "$p" 2>/dev/null
	[ -n "$sock" ] && [ -S "$sock" ] && python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(1); s.connect(sys.argv[1])' "$sock" 2>/dev/null
	for _ in $(seq 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
	kill -KILL "$p" 2>/dev/null
	wait "$p" 2>/dev/null
}

stop_nodes() {
	local p n
	for p in "${peer_loads[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	peer_loads=()
	for n in "${!pid[@]}"; do stop_pid "${pid[$n]}" "$work/$n.sock"; done
	pid=()
}

cleanup() {
	trap - EXIT INT TERM
	stop_nodes
	stop_pid "$redis_pid"
	grep -l 'Sanitizer' "$work"/*.log >&2 2>/dev/null &&
		echo "shared.sh: sanitizer reports in the logs named above" >&2
	[ -n "$json_out" ] && [ -s "$results" ] && cp "$results" "$json_out"
	if [ $keep = 1 ]; then echo "shared.sh: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'echo "shared.sh: interrupted" >&2; exit 130' INT TERM

rcli() { redis-cli -h 127.0.0.1 -p "$port" "$@"; }

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$work/redis"
spawn redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
	--daemonize no --dir "$work/redis" --logfile "$work/redis/redis.log"
redis_pid=$!
for _ in $(seq 100); do [ "$(rcli ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
[ "$(rcli ping 2>/dev/null)" = PONG ] || die "redis-server did not start"

# ---- configurations ---------------------------------------------------------------

base=$work/base.conf
bench_conf "$src/etc/floodgate.conf" "$work" "$base"
for n in a b c; do
	cp "$base" "$work/off-$n.conf"
	{ cat "$base"
	  printf 'shared = {\n\tbackend = "redis";\n\tserver = "127.0.0.1:%s";\n\tnode = "%s";\n};\n' "$port" "$n"
	} >"$work/on-$n.conf"
	"$FG" -n -c "$work/on-$n.conf" >/dev/null 2>"$work/check.err" ||
		{ cat "$work/check.err" >&2; die "the configuration with a shared group does not load"; }
done

tck=$(getconf CLK_TCK)
cpu_of() {	# user+system CPU seconds of the tasks of $1 whose name matches $2
	local f sum=0 c
	for f in /proc/"$1"/task/*; do
		grep -Eq "$2" "$f/comm" 2>/dev/null || continue
		c=$(awk '{ print $14 + $15 }' "$f/stat" 2>/dev/null) || continue
		sum=$((sum + c))
	done
	awk -v s="$sum" -v t="$tck" 'BEGIN { printf "%.3f", s / t }'
}
# The sync thread: the one task of a found in clock_nanosleep (x86-64
# syscall 230, or FG_SYNC_SYSCALL) most often in ten looks at an idle a: it
# naps 10 ms between round trips, while libmilter's threads wait in poll
# or read and the store's writer on a futex.
sync_tid() {
	local p=$1 want=${FG_SYNC_SYSCALL:-230} f k
	local -A seen=()
	for ((k = 0; k < 10; k++)); do
		for f in /proc/"$p"/task/*; do
			read -r nr _ <"$f/syscall" 2>/dev/null || continue
			[ "$nr" = "$want" ] && seen[${f##*/}]=$((${seen[${f##*/}]:-0} + 1))
		done
		sleep 0.02
	done
	# the task seen there most often, at least 3 times
	for f in "${!seen[@]}"; do echo "${seen[$f]} $f"; done | sort -rn |
		awk '$1 >= 3 { print $2; exit }'
}
tid_cpu() {	# CPU seconds of task $2 of process $1 (0 if none)
	[ -n "$2" ] || { echo 0; return; }
	awk -v t="$tck" '{ printf "%.3f", ($14 + $15) / t }' "/proc/$1/task/$2/stat" 2>/dev/null || echo 0
}
redis_cmds() { rcli info stats | sed -n 's/^total_commands_processed:\([0-9]*\).*/\1/p'; }

# start_nodes MODE: fresh a, b and c (databases too), b's and c's load.
start_nodes() {
	local mode=$1 conf n i
	rcli flushall >/dev/null
	for n in a b c; do
		conf=$work/off-$n.conf
		[ "$mode" != off ] && conf=$work/on-$n.conf
		rm -f "$work/$n.db"* "$work/$n.sock"
		spawn "$FG" -f -c "$conf" -p "unix:$work/$n.sock" -d "$work/$n.db" -P "" \
			2>>"$work/$n.log"
		pid[$n]=$!
	done
	for n in a b c; do
		for ((i = 0; i < 300; i++)); do
			[ -S "$work/$n.sock" ] && break
			kill -0 "${pid[$n]}" 2>/dev/null || break
			sleep 0.05
		done
		[ -S "$work/$n.sock" ] || { tail -5 "$work/$n.log" >&2; die "node $n did not start"; }
	done
	for n in b c; do
		spawn "$LOAD" -q -s "unix:$work/$n.sock" -c 2 -m mix --park 32 --rate "$peer_rate" \
			-n 100000000 -t 3600 --seed 7 >/dev/null 2>&1
		peer_loads+=("$!")
	done
	stid=''
	[ "$mode" != off ] && stid=$(sync_tid "${pid[a]}")
	if [ "$mode" = stopped ]; then
		# The nodes share for a moment, then Redis hangs under them.
		sleep 1
		kill -STOP "$redis_pid"
	fi
	sleep 1
}

# run MODE C MIX ROUND: one measured run against a: one JSON line.
run() {
	local mode=$1 c=$2 mix=$3 round=$4 out cpu0 cpu1 sync0 sync1 r0=0 r1=0 t0 t1 park=()
	start_nodes "$mode"
	[ "$mix" = mix ] && park=(--park 128)
	cpu0=$(cpu_of "${pid[a]}" .) sync0=$(tid_cpu "${pid[a]}" "$stid")
	[ "$mode" = on ] && r0=$(redis_cmds)
	t0=$EPOCHREALTIME
	out=$("$LOAD" -q -s "unix:$work/a.sock" -c "$c" -m "$mix" -t "$seconds" -n 100000000 \
		"${park[@]}" --seed "$round" 2>&1 | sed -n 's/^JSON //p')
	t1=$EPOCHREALTIME
	[ "$mode" = on ] && r1=$(redis_cmds)
	cpu1=$(cpu_of "${pid[a]}" .) sync1=$(tid_cpu "${pid[a]}" "$stid")
	kill -0 "${pid[a]}" 2>/dev/null || echo "shared.sh: node a died ($mode c=$c)" >&2
	[ "$mode" = stopped ] && kill -CONT "$redis_pid"
	stop_nodes
	printf '{"mode":"%s","c":%s,"mix":"%s","round":%s,"secs":%s,"cpu_s":%s,"sync_tid":"%s","sync_cpu_s":%s,"redis_cmds":%s,"r":%s}\n' \
		"$mode" "$c" "$mix" "$round" \
		"$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')" \
		"$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.3f", b - a }')" \
		"$stid" "$(awk -v a="$sync0" -v b="$sync1" 'BEGIN { printf "%.3f", b - a }')" \
		"$((r1 - r0))" "${out:-null}" >>"$results"
	printf '.'
}

echo "floodgate sharing benchmark: $(date '+%F %T'), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  $("$FG" -V), build $build (${btype:-?}); $rounds round(s) of ${seconds} s runs; b and c at $peer_rate sessions/s each"
modes=(off on stopped)
for c in "${concs[@]}"; do
	mix=mix
	[ "$c" = 1 ] && mix=legit
	printf '  c=%-3s %-6s ' "$c" "$mix"
	for ((r = 1; r <= rounds; r++)); do
		# rotate which mode goes first
		for ((k = 0; k < 3; k++)); do
			run "${modes[$(((k + r - 1) % 3))]}" "$c" "$mix" "$r"
		done
	done
	echo
done

echo
python3 - "$results" "$seconds" <<'EOF'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
secs = float(sys.argv[2])
MODES = ["off", "on", "stopped"]
CMDS = ["optneg", "connect", "helo", "mail", "rcpt"]

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

def sel(mode, c):
    return [r for r in runs if r["mode"] == mode and r["c"] == c and r.get("r")]

def fmt(x, f="%.0f"):
    return "-" if x is None else f % x

bad = [r for r in runs if not r.get("r") or r["r"].get("failed")]
p1 = {m: sel(m, 1) for m in MODES}
if any(p1.values()):
    print("p99 latency per command at c=1 (legit), microseconds, median of rounds; "
          "(+N) = added to sharing off")
    print("  %-8s" % "mode" + "".join("%16s" % c for c in CMDS))
    base = {c: med([r["r"]["commands"][c]["p99_us"] for r in p1["off"]]) for c in CMDS}
    for m in MODES:
        cells = []
        for c in CMDS:
            v = med([r["r"]["commands"][c]["p99_us"] for r in p1[m]])
            if v is None:
                cells.append("-")
            elif m == "off" or base[c] is None:
                cells.append("%d" % v)
            else:
                cells.append("%d (%+d)" % (v, v - base[c]))
        print("  %-8s" % m + "".join("%16s" % x for x in cells))
    print()

concs = sorted({r["c"] for r in runs if r["c"] != 1})
if concs:
    print("sessions served per second (mix, --park 128), median of rounds; ratio to sharing off "
          "(median of per-round ratios)")
    print("  %-8s" % "mode" + "".join("%12s %7s" % ("c=%d" % c, "ratio") for c in concs))
    for m in MODES:
        cells = []
        for c in concs:
            v = med([r["r"]["served_sessions_per_s"] for r in sel(m, c)])
            ratios = []
            for r in sel(m, c):
                o = [x for x in sel("off", c) if x["round"] == r["round"]]
                if o and o[0]["r"]["served_sessions_per_s"]:
                    ratios.append(r["r"]["served_sessions_per_s"] / o[0]["r"]["served_sessions_per_s"])
            cells.append("%12s %7s" % (fmt(v), fmt(med(ratios), "%.3f")))
        print("  %-8s" % m + "".join(cells))
    print()

c8 = [r for r in runs if r["mode"] == "on" and r["c"] == (8 if 8 in concs else (concs or [1])[0])]
if c8:
    c = c8[0]["c"]
    sync = med([r["sync_cpu_s"] / r["secs"] * 100 for r in c8])
    cpu = med([r["cpu_s"] / r["secs"] * 100 for r in c8])
    ops = med([r["redis_cmds"] / r["secs"] for r in c8])
    sess = med([r["r"]["served_sessions_per_s"] for r in c8])
    print("sharing on, c=%d: node a served %s sessions/s (b and c at their paced rate); "
          "a's CPU %s %% of a core, of it the sync thread %s %%;"
          % (c, fmt(sess), fmt(cpu, "%.1f"), fmt(sync, "%.2f")))
    print("  Redis: %s commands/s from the three nodes" % fmt(ops))
    per = []
    for m in MODES:
        rs = [r for r in runs if r["mode"] == m and r["c"] == c and r.get("r")
              and r["r"]["completed"]]
        per.append("%s %s" % (m, fmt(med([r["cpu_s"] * 1e6 / r["r"]["completed"] for r in rs]))))
    print("  a's CPU per completed session at c=%d, microseconds (median): %s"
          % (c, ", ".join(per)))
    st = [r for r in runs if r["mode"] == "stopped" and r["c"] == c and r.get("sync_tid")]
    if st:
        print("  with Redis stopped, the sync thread took %s %% of a core"
              % fmt(med([r["sync_cpu_s"] / r["secs"] * 100 for r in st]), "%.2f"))
    if not any(r.get("sync_tid") for r in c8):
        print("  (the sync thread was not found: no task of a's naps in clock_nanosleep)")
for r in bad:
    print("  ! %s c=%s round %s: %s" % (r["mode"], r["c"], r["round"],
          "no result" if not r.get("r") else "%d failed sessions" % r["r"]["failed"]))
EOF
