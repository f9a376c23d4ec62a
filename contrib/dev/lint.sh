#!/bin/bash
# Static analysis of lib/ milter/ ctl/: clang-tidy (the checks of the
# checked-in .clang-tidy, with a build's compile_commands.json) and
# cppcheck.  Prints every finding as file:line: message [check] and exits
# 1 if there is any, 0 when both are clean, 2 when a tool is missing or
# the build cannot be configured.
#
#   contrib/dev/lint.sh [BUILD_DIR]     (default build/lint)
#
# Needs clang-tidy and cppcheck (Debian: clang-tidy cppcheck).  Set
# FG_LINT_JOBS to run more clang-tidy processes at once (default: nproc).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
root=$PWD
dir=${1:-build/lint}
jobs=${FG_LINT_JOBS:-$(nproc)}

for tool in clang-tidy cppcheck cmake; do
	if ! command -v "$tool" >/dev/null; then
		echo "lint: $tool is not installed" >&2
		exit 2
	fi
done

# A plain configure (no sanitizer flags in the compile commands) that
# writes compile_commands.json and the generated headers (version.h).
mkdir -p "$dir" || exit 2
if ! cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DFG_BENCH=OFF \
	-DCMAKE_EXPORT_COMPILE_COMMANDS=ON >"$dir/lint-configure.log" 2>&1; then
	cat "$dir/lint-configure.log" >&2
	exit 2
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
mapfile -t files < <(ls lib/*.c milter/*.c ctl/*.c)

echo "lint: clang-tidy $(clang-tidy --version | sed -n 's/.*version \([0-9.]*\).*/\1/p' | head -1) on ${#files[@]} files"
printf '%s\n' "${files[@]}" |
	xargs -P "$jobs" -I{} sh -c \
		'clang-tidy --quiet -p "$1" "$2" >"$3/$(echo "$2" | tr / _).tidy" 2>/dev/null' \
		sh "$dir" {} "$out"
# One line per finding, relative paths, each finding once (a header's
# finding shows up in every file that includes it).
cat "$out"/*.tidy |
	grep -E '^[^ ].*:[0-9]+:[0-9]+: (warning|error): ' |
	sed "s|^$root/||" | sort -u >"$out/tidy.txt"

echo "lint: $(cppcheck --version)"
cppcheck --std=c11 --enable=warning,performance,portability --inline-suppr \
	--quiet -j "$jobs" -D_GNU_SOURCE -Ilib -I"$dir/lib" -Imilter -Ictl \
	--suppress=missingIncludeSystem \
	--template='{file}:{line}:{column}: {severity}: {message} [cppcheck-{id}]' \
	lib milter ctl 2>"$out/cppcheck.raw"
grep -E '^[^ ].*:[0-9]+:[0-9]+: ' "$out/cppcheck.raw" | sed "s|^$root/||" |
	sort -u >"$out/cppcheck.txt"

cat "$out/tidy.txt" "$out/cppcheck.txt"
nt=$(wc -l <"$out/tidy.txt"); nc=$(wc -l <"$out/cppcheck.txt")
echo "lint: $nt clang-tidy finding(s), $nc cppcheck finding(s)"
[ "$nt" -eq 0 ] && [ "$nc" -eq 0 ]
