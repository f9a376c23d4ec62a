#!/bin/bash
# Installs what is missing, builds floodgate with warnings as errors and
# AddressSanitizer + UndefinedBehaviorSanitizer, and runs the whole test
# suite (unit tests, the daemon, real Postfix and sendmail on loopback).
#
#   contrib/dev/test.sh              as root on Debian 12
#   FG_TSAN=1 contrib/dev/test.sh    also build and test under ThreadSanitizer
set -euo pipefail
cd "$(dirname "$0")/../.."

bash contrib/dev/deps.sh

run_suite() {
	local dir=$1; shift
	cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DFG_WERROR=ON "$@" >/dev/null
	cmake --build "$dir" -j"$(nproc)"
	(cd "$dir" && ctest --output-on-failure --timeout 900 -j2)
}

run_suite build/asan -DFG_ASAN=ON -DFG_UBSAN=ON
if [ "${FG_TSAN:-0}" = 1 ]; then
	run_suite build/tsan -DFG_TSAN=ON
fi
