# lib.sh - shared helpers of the integration tests (sourced, bash).
#
# Every test runs in its own temporary directory ($T), starts what it
# needs, and stops it again on exit.  Checks print TAP-like lines; the
# summary line "N passed, N failed" and the exit status tell CTest.

set -uo pipefail

: "${FG_SOURCE_DIR:?}"
: "${FG_BUILD_DIR:?}"
FG_BIN=${FG_BIN:-$FG_BUILD_DIR/milter/floodgate}
MILTC=$FG_BUILD_DIR/t/miltc

T=$(mktemp -d /tmp/fg-test.XXXXXX)
chmod 0755 "$T"
fg_pass=0
fg_fail=0
fg_pids=()

ok() {			# ok DESCRIPTION COMMAND...
	local what=$1; shift
	if "$@"; then
		fg_pass=$((fg_pass + 1)); echo "ok - $what"
	else
		fg_fail=$((fg_fail + 1)); echo "not ok - $what"
	fi
}

is() {			# is GOT WANT DESCRIPTION
	if [ "$1" = "$2" ]; then
		fg_pass=$((fg_pass + 1)); echo "ok - $3"
	else
		fg_fail=$((fg_fail + 1)); echo "not ok - $3"
		echo "#   got:  '$1'"; echo "#   want: '$2'"
	fi
}

fg_cleanup() {
	local p
	for p in "${fg_pids[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in "${fg_pids[@]}"; do
		wait "$p" 2>/dev/null
	done
	if [ "${FG_KEEP:-0}" != 1 ]; then
		rm -rf "$T"
	else
		echo "# kept $T"
	fi
}
trap fg_cleanup EXIT

done_testing() {
	echo "$fg_pass passed, $fg_fail failed"
	[ "$fg_fail" -eq 0 ]
	exit $?
}

# wait_for CONDITION-COMMAND [SECONDS]: poll every 0.1 s.
wait_for() {
	local cond=$1 limit=${2:-10} i
	for ((i = 0; i < limit * 10; i++)); do
		eval "$cond" && return 0
		sleep 0.1
	done
	return 1
}

# fg_start NAME CONF [floodgate options...]: starts the daemon in the
# foreground with socket $T/NAME.sock, database $T/NAME.db, log
# $T/NAME.log; sets FG_PID.  Extra options override.
fg_start() {
	local name=$1 conf=$2; shift 2
	"$FG_BIN" -f -c "$conf" -p "unix:$T/$name.sock" -d "$T/$name.db" \
		-P "$T/$name.pid" "$@" 2>"$T/$name.log" &
	FG_PID=$!
	fg_pids+=("$FG_PID")
	if ! wait_for "[ -S '$T/$name.sock' ] && grep -q started '$T/$name.log'" 15; then
		echo "# floodgate did not start:"; sed 's/^/#   /' "$T/$name.log"
		return 1
	fi
}

# fg_stop PID: SIGTERM and wait; returns the exit status.
fg_stop() {
	local pid=$1 rc
	kill -TERM "$pid" 2>/dev/null
	wait "$pid"; rc=$?
	return $rc
}

# A configuration for tests: run as root without dropping privileges,
# plus whatever the test appends.
fg_conf() {		# fg_conf FILE [extra lines on stdin]
	{
		echo 'user = ""; allow_root = true; log_level = "debug";'
		echo 'flush_interval = "100ms";'
		cat
	} >"$1"
}

# jq-like: py EXPR reads one JSON document on stdin as d, prints EXPR.
py() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }

# miltc with a script on stdin against socket NAME.
miltc() {		# miltc NAME [miltc options...] < script
	local name=$1; shift
	"$MILTC" -s "unix:$T/$name.sock" -t 30 "$@" -
}
