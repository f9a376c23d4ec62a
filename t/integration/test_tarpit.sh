#!/bin/bash
# The tarpit keeps its budget and its own clock:
#  - 300 attacking sessions, 100 at once, against max_delayed_sessions = 40:
#    never more than 40 asleep at once (each place is taken when the
#    delay is decided, not checked there and taken later), the rest get
#    the step's refusal at once;
#  - the wall clock stepped back an hour under a sleeping session (with
#    libfaketime) neither holds it nor the budget: the reply comes after
#    the configured delay.  libfaketime moves a sleep until an absolute
#    wall-clock time along with its step, which a real step does not: a
#    sleep of that kind passes here, and t/unit/test_sleep.c, with a clock
#    of its own, is the test that tells which clock a delay is taken on.
. "$(dirname "$0")/lib.sh"

fg_conf "$T/t.conf" <<'EOF2'
exempt = { networks = [ ]; };
max_delay = "3s";
max_delayed_sessions = 40;
rules = (
	{ name = "dict"; type = "invalid_recipients"; mask = false;
	  per = "network"; prefix4 = 16; limit = 1; window = "1h";
	  action = "delay"; delay = "1500ms"; growth = "fixed";
	  then = "tempfail"; }
);
EOF2
fg_start t "$T/t.conf" || exit 1

unknown() {
	printf 'macro stage=R {rcpt_mailer}=error {rcpt_host}=5.1.1 "{rcpt_addr}=User unknown"\nrcpt <%s@example.org>\n' "$1"
}
# Push the /16 over its limit.
{ echo "connect host=a.example addr=10.9.0.1 family=4 port=2525"; echo "mail <a@a.example>"
  unknown u1; unknown u2; echo quit; } | miltc t -q -t 10

# 300 sessions, 100 at a time, each one unknown recipient.
{ echo 'connect host=a.example addr=10.9.${t}.7 family=4 port=2525'
  echo "mail <a@a.example>"; unknown 'x${n}'; echo quit; } |
	miltc t -q -n 300 -c 100 -t 20 2>"$T/burst.err"
ok "the burst of 300 sessions ran" grep -q '300 sessions, 0 failed' "$T/burst.err"
wait_for "[ \"\$(sqlite3 '$T/t.db' \"SELECT count(*) FROM verdicts WHERE rule = 'dict'\")\" -ge 300 ]" 10

delays=$(sqlite3 "$T/t.db" "SELECT count(*) FROM verdicts WHERE rule = 'dict' AND action = 'delay'")
refused=$(sqlite3 "$T/t.db" "SELECT count(*) FROM verdicts WHERE rule = 'dict' AND action = 'tempfail'")
# The most delays whose [start, start + delay) overlap at any moment.
most=$(sqlite3 -separator ' ' "$T/t.db" "SELECT ts_ms, delay_ms FROM verdicts WHERE action = 'delay'" |
	python3 -c '
import sys
ev = []
for line in sys.stdin:
    t, d = map(int, line.split())
    ev += [(t, 1), (t + d, -1)]
n = most = 0
for _, k in sorted(ev, key=lambda e: (e[0], e[1])):
    n += k
    most = max(most, n)
print(most)')
echo "# figure: $delays delayed, $refused refused at once, at most $most asleep together"
ok "never more than max_delayed_sessions asleep at once ($most <= 40)" [ "$most" -le 40 ]
ok "the budget was used ($most >= 30)" [ "$most" -ge 30 ]
ok "the sessions past the budget were refused at once ($refused)" [ "$refused" -ge 100 ]
fg_stop "$FG_PID"; is "$?" 0 "the daemon stops cleanly"

# ---- the wall clock steps back under a sleeping session --------------
# ThreadSanitizer reports libfaketime's own uninstrumented locking.
if [ -n "${TSAN_OPTIONS:-}" ]; then
	echo "# skipping the clock step under ThreadSanitizer (libfaketime is not instrumented)"
	done_testing
	exit
fi
FAKETIME_LIB=$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -1)
if [ -z "$FAKETIME_LIB" ]; then
	echo "not ok - libfaketime is missing (contrib/dev/deps.sh installs faketime)"
	done_testing
	exit
fi
echo "+0" >"$T/faketime"
rm -f "$T/t.db"*
# Under AddressSanitizer, libfaketime comes before its runtime: allowed.
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 \
	LD_PRELOAD=$FAKETIME_LIB FAKETIME_TIMESTAMP_FILE=$T/faketime FAKETIME_NO_CACHE=1 \
	FAKETIME_DONT_FAKE_MONOTONIC=1 fg_start t "$T/t.conf" || exit 1
{ echo "connect host=a.example addr=10.9.0.1 family=4 port=2525"; echo "mail <a@a.example>"
  unknown u1; unknown u2; echo "expect 451 min_ms=1400"; echo quit; } >"$T/step.milt"
miltc t -q -t 30 <"$T/step.milt" >"$T/step.out" 2>&1 &
client=$!
sleep 0.5
echo "-1h" >"$T/faketime"    # the wall clock jumps back an hour mid-sleep
t0=$(date +%s%N)
wait "$client"; rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
is "$rc" 0 "the delayed session got its answer"
ok "after the delay, not after the clock's step (${ms} ms after the step)" [ "$ms" -lt 3000 -a "$ms" -ge 500 ]
fg_stop "$FG_PID"; is "$?" 0 "the daemon stops cleanly"

done_testing
