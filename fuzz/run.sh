#!/bin/bash
# fuzz/run.sh [SECONDS_PER_TARGET] - build the libFuzzer targets and run
# each one over its corpus for a while (default 30 s each).
#
#   fuzz/run.sh        30 s per target
#   fuzz/run.sh 20     what CI runs
#
# Builds in build/fuzz (CC=clang, FG_FUZZ=ON, warnings as errors), then
# per target: replays the saved reproducers in fuzz/regressions/<target>/
# once each, and fuzzes from fuzz/corpus/<target>/ plus whatever earlier
# runs found.  New inputs go to build/fuzz/work/corpus/<target>/, crashes
# to build/fuzz/work/artifacts/<target>/, logs to build/fuzz/work/logs/;
# nothing in the source tree is written but the build directory.
#
# Prints the executions per target and in total, and exits 1 if any
# target crashed, leaked, hit undefined behaviour, timed out, ran out of
# memory, or a regression still fails; 2 if it could not build.
#
# Environment: FG_FUZZ_BUILD (build directory), FG_FUZZ_TARGETS (a
# subset, e.g. "net text"), FG_FUZZ_JOBS (build parallelism).
set -uo pipefail

secs=${1:-30}
if ! [[ $secs =~ ^[0-9]+$ ]] || [ "$secs" -lt 1 ]; then
	echo "usage: $0 [SECONDS_PER_TARGET]" >&2
	exit 2
fi

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=${FG_FUZZ_BUILD:-$root/build/fuzz}
work=$build/work
targets=(${FG_FUZZ_TARGETS:-config net text policy session glue})

# Longest input each target is given: a whole floodgate.conf; a list of
# addresses; three macro values; one moment of a session; a session.
declare -A max_len=([config]=16384 [net]=1024 [text]=2048 [policy]=1024 [session]=4096 [glue]=4096)
# glue runs a few hundred sessions a second at best: let it use its whole
# max_len at once rather than growing towards it.
declare -A extra=([glue]=-len_control=0)

if ! command -v clang >/dev/null; then
	echo "run.sh: clang not found (contrib/dev/deps.sh installs it)" >&2
	exit 2
fi

echo "== configure and build ($build)"
mkdir -p "$build"
if ! CC=clang cmake -S "$root" -B "$build" -DFG_FUZZ=ON -DFG_WERROR=ON \
	-DFG_BENCH=OFF -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	>"$build/configure.log" 2>&1; then
	cat "$build/configure.log" >&2
	echo "run.sh: configuring failed" >&2
	exit 2
fi
if ! cmake --build "$build" --target fuzzers -j"${FG_FUZZ_JOBS:-$(nproc)}"; then
	echo "run.sh: building failed" >&2
	exit 2
fi

# UB already aborts (-fno-sanitize-recover); say where.  Leaks are on.
export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
export LSAN_OPTIONS="print_suppressions=0:${LSAN_OPTIONS:-}"

failed=()
total=0
mkdir -p "$work/logs"
printf '\n%-8s %12s %10s %8s  %s\n' target executions exec/s rss_mb result
summary=()

for t in "${targets[@]}"; do
	bin=$build/fuzz/fuzz_$t
	if [ -z "${max_len[$t]:-}" ] || [ ! -x "$bin" ]; then
		echo "run.sh: no fuzz target $t" >&2
		exit 2
	fi
	corpus=$work/corpus/$t
	artifacts=$work/artifacts/$t
	log=$work/logs/$t.log
	mkdir -p "$corpus" "$artifacts"
	result=ok

	# Known reproducers: each must run clean (they fail until fixed).
	# pedantic-* ones break only the opt-in FG_FUZZ_PEDANTIC checks:
	# replayed with them, reported, not counted as a failure.
	if [ -d "$here/regressions/$t" ]; then
		for f in "$here/regressions/$t"/*; do
			[ -f "$f" ] || continue
			pedantic=0
			case ${f##*/} in
			README*|*.txt|*.md) continue ;;
			pedantic-*) pedantic=1 ;;
			esac
			if ! FG_FUZZ_PEDANTIC=$pedantic "$bin" -rss_limit_mb=2048 \
				-timeout=10 "$f" >"$work/logs/$t.regression.log" 2>&1; then
				if [ $pedantic = 1 ]; then
					echo "run.sh: $t: note: ${f#"$root"/} still breaks a" \
					     "pedantic check (not counted)" >&2
					continue
				fi
				echo "run.sh: $t: regression ${f#"$root"/} still fails:" >&2
				grep -E 'ERROR|SUMMARY|fuzz:|runtime error' \
					"$work/logs/$t.regression.log" | head -5 >&2
				result="FAILED (regression)"
			fi
		done
	fi

	dict=()
	[ -f "$here/dict/$t.dict" ] && dict=(-dict="$here/dict/$t.dict")
	"$bin" -max_len="${max_len[$t]}" -rss_limit_mb=2048 -timeout=10 \
		-max_total_time="$secs" -print_final_stats=1 \
		-artifact_prefix="$artifacts/" "${dict[@]}" ${extra[$t]:-} \
		"$corpus" "$here/corpus/$t" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
	rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
	execs=${execs:-0}
	total=$((total + execs))
	if [ $rc -ne 0 ] || grep -qE 'runtime error:|ERROR: (Address|Leak|Undefined)' "$log"; then
		result="FAILED (exit $rc)"
	fi
	if [ "$result" != ok ]; then
		failed+=("$t")
	fi
	summary+=("$(printf '%-8s %12s %10s %8s  %s' "$t" "$execs" "${speed:-?}" "${rss:-?}" "$result")")
	printf '%s\n' "${summary[-1]}"
	if [[ $result == FAILED* ]]; then
		echo "---- $t: $log (last lines)" >&2
		grep -E '^(==[0-9]+==ERROR|SUMMARY|fuzz:|.*runtime error)|Test unit written|artifact_prefix' "$log" | head -20 >&2
		echo "     reproduce: $bin <artifact>;" \
		     "minimise: $bin -minimize_crash=1 -runs=100000 <artifact>" >&2
	fi
done

printf '%-8s %12s\n' total "$total"
if [ ${#failed[@]} -gt 0 ]; then
	echo "run.sh: failed: ${failed[*]}" >&2
	exit 1
fi
exit 0
