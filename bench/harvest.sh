#!/bin/bash
# harvest.sh - what a recipient harvest learns through a real Postfix,
# with floodgate on its shipped configuration and without any milter.
#
#   bench/harvest.sh [--quick] [--build DIR] [--config FILE] [--json FILE]
#                    [--keep]
#
# A private Postfix on 127.0.0.1 (t/mta/mta.sh) knows 400 mailboxes and
# runs with Postfix's own defaults for error and connection limits
# (smtpd_hard_error_limit 20, smtpd_soft_error_limit 10,
# smtpd_error_sleep_time 1s, smtpd_client_connection_count_limit 50), so
# that they see the clients as a real MX would: every client is a bound
# loopback source address (127.x.y.z), not an XCLIENT claim.
# bench/harvest.py then runs, at the same time:
#   - a harvester from three /24s of one /16 (127.1.1-3.0/24): 4000
#     guesses of the form first.last@floodgate.test (8 % real mailboxes),
#     8 a session, 8 sessions at once, each session from a random host of
#     the next /24; a guess refused is not retried;
#   - legitimate clients from two other networks (127.9.1.0/24 and
#     127.10.2.0/24): a message to 1 to 3 real mailboxes every 0.2 s,
#     30 of them (10 with --quick) and more while the harvest runs.
# It stops when the guesses run out or after 120 s, once with Postfix
# alone ("none") and once with floodgate on etc/floodgate.conf
# ("floodgate": only the socket, database, user and pid file differ, and
# the loopback is not exempt; --config FILE: another policy, changed the
# same way).  --quick: 800 guesses, at most 40 s each.
#
# The table (bench/harvest.py says exactly how each figure is counted):
#   guesses     the harvest's guesses; valid: how many were real mailboxes
#   answered    guesses whose answer told real from unknown: a real one
#               accepted or refused otherwise than unknown users are, an
#               unknown one told "550 5.1.1 User unknown" outside masking
#   exposed     real mailboxes among them (answered otherwise than unknown
#               users are); later: of those, the ones floodgate saw after
#               it had first refused their network
#   refused_at_s     seconds from the start until every attack network
#               had a session refused at connect ("never" if one had not)
#   before_rcpt the same for a refusal at connect, HELO or MAIL
#   legit, touched   legitimate sessions, and those that got anything but
#               success
# followed by one JSON line per run ("JSON {...}").  Needs root (Postfix),
# postfix installed (contrib/dev/deps.sh) and python3.  Everything it
# starts is stopped on exit; traffic goes to 127.0.0.1 only.
set -uo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$src/build/release
quick=0 keep=0 json_out='' policy=$src/etc/floodgate.conf

die() { echo "harvest.sh: $*" >&2; exit 1; }
. "$src/bench/conf.sh"
usage() { sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
	case $1 in
	--build) build=${2:?--build DIR}; shift ;;
	--quick) quick=1 ;;
	--config) policy=${2:?--config FILE}; shift ;;
	--json) json_out=${2:?--json FILE}; shift ;;
	--keep) keep=1 ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
	shift
done
[ "$(id -u)" = 0 ] || die "needs root (a private Postfix)"
[ -x /usr/sbin/postfix ] || die "postfix is not installed (contrib/dev/deps.sh)"
command -v python3 >/dev/null || die "python3 is needed"
command -v sqlite3 >/dev/null || die "sqlite3 is needed"
case $build in /*) ;; *) build=$PWD/$build ;; esac
if [ $quick = 1 ]; then
	guesses=800 seconds=40 legit=10
else
	guesses=4000 seconds=120 legit=30
fi

if [ ! -f "$build/CMakeCache.txt" ]; then
	echo "harvest.sh: configuring $build (Release)"
	cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null ||
		die "cmake configure failed"
fi
cmake --build "$build" -j2 --target floodgate >"$build/harvest-build.log" 2>&1 ||
	{ tail -20 "$build/harvest-build.log" >&2; die "build failed (see $build/harvest-build.log)"; }
FG=$build/milter/floodgate
HARVEST=$src/bench/harvest.py

work=$(mktemp -d "${TMPDIR:-/tmp}/floodgate-harvest.XXXXXX") || die "mktemp failed"
chmod 711 "$work"          # Postfix's smtpd (user postfix) reaches the socket
results=$work/results.jsonl
: >"$results"
fg_pid=''
mta_loaded=0

stop_floodgate() {
	[ -n "$fg_pid" ] || return 0
	kill -TERM "$fg_pid" 2>/dev/null
	# libmilter notices the signal when its listener wakes.
	python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(1)
try: s.connect(sys.argv[1])
except OSError: pass' "$work/fg.sock" 2>/dev/null
	for _ in $(seq 300); do
		kill -0 "$fg_pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -0 "$fg_pid" 2>/dev/null && kill -KILL "$fg_pid" 2>/dev/null
	wait "$fg_pid" 2>/dev/null
	fg_pid=''
}

cleanup() {
	trap - EXIT INT TERM
	[ $mta_loaded = 1 ] && { mta_stop_all; } >/dev/null 2>&1
	stop_floodgate
	if [ $keep = 1 ]; then
		echo "harvest.sh: kept $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'echo "harvest.sh: interrupted" >&2; exit 130' INT TERM

# etc/floodgate.conf (or --config) with its policy as it is: only the
# daemon's place changes, and the loopback is no longer exempt (the
# clients are 127.x).
conf=$work/floodgate.conf
bench_conf "$policy" "$work" "$conf"
"$FG" -n -c "$conf" >/dev/null || die "the benchmark configuration does not load"

export FG_SOURCE_DIR=$src
FG_MTA_USERS="alice bob carol postmaster $(python3 "$HARVEST" users 400 | tr '\n' ' ')"
export FG_MTA_USERS
# shellcheck source-path=SCRIPTDIR/..
# shellcheck source=t/mta/mta.sh
. "$src/t/mta/mta.sh"
mta_loaded=1
# Postfix's defaults, where the test instance of mta.sh lifts them.
pf_defaults=(
	"smtpd_client_connection_count_limit = 50"
	"smtpd_hard_error_limit = 20"
	"smtpd_soft_error_limit = 10"
	"smtpd_error_sleep_time = 1s"
	"smtpd_junk_command_limit = 100"
	"smtpd_recipient_limit = 1000"
	"smtpd_recipient_overshoot_limit = 1000"
)

echo "== harvest: $guesses guesses from 127.1.1-3.0/24 through Postfix, at most $seconds s a run"
port=$(mta_free_port 27500)
for kind in none floodgate; do
	db=
	if [ $kind = floodgate ]; then
		db=$work/fg.db
		"$FG" -f -c "$conf" -p "unix:$work/fg.sock" -d "$db" -P "" 2>"$work/fg.log" &
		fg_pid=$!
		for _ in $(seq 300); do
			[ -S "$work/fg.sock" ] && grep -q started "$work/fg.log" && break
			sleep 0.05
		done
		grep -q started "$work/fg.log" || { tail -5 "$work/fg.log" >&2; die "floodgate did not start"; }
		FG_MTA_PROBE=0 postfix_start "$work/pf-$kind" "$port" "unix:$work/fg.sock" \
			"${pf_defaults[@]}" || die "Postfix did not start"
	else
		FG_MTA_PROBE=0 postfix_start "$work/pf-$kind" "$port" "unix:$work/unused.sock" \
			"${pf_defaults[@]}" "smtpd_milters =" || die "Postfix did not start"
	fi
	python3 "$HARVEST" attack --port "$port" --out "$work/$kind.jsonl" \
		--guesses "$guesses" --seconds "$seconds" --legit-sessions "$legit" ||
		die "the harvest did not run ($kind)"
	{ postfix_stop "$work/pf-$kind"; } 2>/dev/null
	stop_floodgate
	python3 "$HARVEST" summary --transcript "$work/$kind.jsonl" --label "$kind" \
		${db:+--db "$db"} >>"$results" || die "no summary ($kind)"
	port=$(mta_free_port $((port + 1)))
done

echo
python3 "$HARVEST" table "$results"
sed 's/^/JSON /' "$results"
[ -z "$json_out" ] || cp "$results" "$json_out"
