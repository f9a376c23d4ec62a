#!/bin/bash
# callgrind.sh - instructions per session of floodgate and of the no-op
# filter, counted by valgrind's callgrind: a figure that moves far less
# with the load of the machine than run.sh's, for comparing two builds.
#
#   bench/callgrind.sh [--build DIR] [--sessions N] [--mix M] [--keep]
#
# Each filter runs under callgrind twice, once loaded with N sessions of
# fgload at c = 1 and once with 2N, from a fresh database each time; the
# difference of the two totals over N is what one more session costs,
# without what starting and stopping cost.  Prints, per filter, the
# instructions (Ir) per session and floodgate / noop.  The writer commits
# on a clock, so a slower machine (a loaded one, or callgrind itself)
# shows a few more commits per session: compare two builds in runs that
# alternate, at the same time.  With --keep the callgrind.out files stay
# in the work directory for callgrind_annotate.
#
# Options:
#   --build DIR     build tree (default build/release; built as run.sh does)
#   --sessions N    sessions of the smaller run (default 2000)
#   --mix M         fgload traffic (default legit)
#   --keep          keep the work directory
set -uo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$src/build/release sessions=2000 mix=legit keep=0

die() { echo "callgrind.sh: $*" >&2; exit 1; }
. "$src/bench/conf.sh"
usage() { sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
	case $1 in
	--build) build=${2:?--build DIR}; shift ;;
	--sessions) sessions=${2:?--sessions N}; shift ;;
	--mix) mix=${2:?--mix M}; shift ;;
	--keep) keep=1 ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
	shift
done
[[ $sessions =~ ^[1-9][0-9]{0,6}$ ]] || die "--sessions: 1 .. 9999999"
[[ $mix =~ ^(legit|dha|flood|mix)$ ]] || die "--mix: legit, dha, flood or mix"
command -v valgrind >/dev/null || die "valgrind is needed"
case $build in /*) ;; *) build=$PWD/$build ;; esac

if [ ! -f "$build/CMakeCache.txt" ]; then
	cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null ||
		die "cmake configure failed"
fi
cmake --build "$build" -j2 --target floodgate noop_milter fgload \
	>"$build/callgrind-build.log" 2>&1 || die "build failed (see $build/callgrind-build.log)"
FG=$build/milter/floodgate
NOOP=$build/bench/noop_milter
LOAD=$build/bench/fgload

work=$(mktemp -d "${TMPDIR:-/tmp}/floodgate-cg.XXXXXX") || die "mktemp failed"
filter_pid=''
cleanup() {
	[ -n "$filter_pid" ] && kill -KILL "$filter_pid" 2>/dev/null
	if [ $keep = 1 ]; then echo "callgrind.sh: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# The benchmark configuration of run.sh: the shipped policy, the daemon
# in the work directory, the loopback not exempt.
conf=$work/floodgate.conf
bench_conf "$src/etc/floodgate.conf" "$work" "$conf"
"$FG" -n -c "$conf" >/dev/null || die "the benchmark configuration does not load"

poke() {	# wake libmilter's listener, which otherwise notices a stop late
	python3 - "$1" <<'EOF' 2>/dev/null || true
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(1)
s.connect(sys.argv[1])
s.close()
EOF
}

# run KIND N: total Ir of KIND serving N sessions.
run() {
	local kind=$1 n=$2 name=$1-$2 sock log out
	sock=$work/$name.sock log=$work/$name.log out=$work/callgrind.out.$name
	rm -f "$work/$name.db" "$work/$name.db-wal" "$work/$name.db-shm"
	if [ "$kind" = noop ]; then
		valgrind --tool=callgrind --callgrind-out-file="$out" "$NOOP" -f -m 0666 \
			-p "unix:$sock" 2>"$log" &
	else
		valgrind --tool=callgrind --callgrind-out-file="$out" "$FG" -f -c "$conf" \
			-p "unix:$sock" -d "$work/$name.db" -P "" 2>"$log" &
	fi
	filter_pid=$!
	for _ in $(seq 1200); do [ -S "$sock" ] && break; sleep 0.05; done
	[ -S "$sock" ] || die "$kind did not start (see $log)"
	sleep 0.5
	"$LOAD" -q -s "unix:$sock" -c 1 -m "$mix" -n "$n" -t 600 --seed 1 >"$work/$name.load" 2>&1
	kill -TERM "$filter_pid"
	sleep 0.1
	poke "$sock"
	wait "$filter_pid"
	filter_pid=''
	grep -q "\"completed\":$n," "$work/$name.load" ||
		echo "callgrind.sh: $name: not every session completed: $(cat "$work/$name.load")" >&2
	sed -n 's/^summary: //p' "$out"
}

echo "callgrind: fgload -c 1 -m $mix, $sessions and $((2 * sessions)) sessions, build $build"
declare -A per
for kind in noop floodgate; do
	a=$(run "$kind" "$sessions")
	b=$(run "$kind" $((2 * sessions)))
	per[$kind]=$(( (b - a) / sessions ))
	printf '  %-10s %10s Ir/session  (%s and %s Ir in all)\n' "$kind" "${per[$kind]}" "$a" "$b"
done
awk -v f="${per[floodgate]}" -v n="${per[noop]}" \
	'BEGIN { if (n > 0) printf "  floodgate / noop: %.2f\n", f / n }'
