#!/bin/bash
# memory_limit through the real daemon: a flood of sessions, each from
# its own random IPv6 /64, fills the budget.  The daemon says so (once a
# minute), keeps answering every session, still refuses an attacker whose
# network it already counts, keeps its counters under the budget, and its
# RSS stays flat once the budget is reached.  Every address is inside
# milter packets to a socket in the test directory; nothing leaves the
# machine.  (No time is asserted: the sessions are counted.)
. "$(dirname "$0")/lib.sh"

cat >"$T/m.conf" <<'EOF'
user = ""; allow_root = true; log_level = "info";
flush_interval = "100ms";
memory_limit = "1M";
max_database_size = "4M";
exempt = { networks = [ ]; };
rules = (
	{ name = "dict"; type = "invalid_recipients"; mask = false; per = "network";
	  limit = 3; window = "1h"; action = "tempfail"; }
);
EOF
# RSS means little under the sanitizers (their allocators keep freed
# memory their own way: +4 MB over the 20000 sessions below under ASan,
# +0.1 MB without): there it is printed, not asserted.  The counters'
# own figure is asserted in every build.
sanitized=0
grep -qE '^FG_(ASAN|TSAN):BOOL=ON' "$FG_BUILD_DIR/CMakeCache.txt" 2>/dev/null && sanitized=1
fg_start m "$T/m.conf" || exit 1
PID=$FG_PID

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$PID/status"; }

unknown_rcpt='macro stage=R {rcpt_mailer}=error {rcpt_host}=5.1.1 "{rcpt_addr}=User unknown"'
# attacker N EXPECT: a session from 198.51.100.N with one unknown
# recipient, and what that recipient gets.
attacker() {
	printf 'connect host=a.example addr=198.51.100.%s family=4 port=25\nhelo a.example\nmail <a@a.example>\n%s\nrcpt <x%s@example.org>\nexpect %s\nquit\n' \
		"$1" "$unknown_rcpt" "$1" "$2" | miltc m -t 10 -q
}
# flood R: 5000 sessions, each from 2001:db8:R:N::/64 (N = 0..4999).
flood() {
	printf 'connect host=f.example addr=2001:db8:%s:${n}::7 family=6 port=25\nhelo f${n}.example\nmail <a@f.example>\nrcpt <u@example.org>\nexpect continue\nquit\n' "$1" |
		miltc m -t 30 -q -n 5000 -c 4 2>>"$T/flood.err"
}

# The attacker's network is counted before the flood: three unknown
# recipients, the limit.
for i in 1 2 3; do attacker "$i" continue; done
ok "an attacker's first three unknown recipients pass" [ $? -eq 0 ]

rounds=0 failed=0
while ! grep -q 'memory_limit reached' "$T/m.log" && [ $rounds -lt 12 ]; do
	rounds=$((rounds + 1))
	flood $rounds || failed=$((failed + 1))
done
ok "the budget is reached after $((rounds * 5000)) sessions" grep -q 'memory_limit reached' "$T/m.log"
# One more round for the reserve (networks) to fill, then measure.
rounds=$((rounds + 1)); flood $rounds || failed=$((failed + 1))
rss1=$(rss_kb)
for _ in 1 2 3 4; do
	rounds=$((rounds + 1)); flood $rounds || failed=$((failed + 1))
done
rss2=$(rss_kb)
is "$failed" 0 "every flood session was answered ($((rounds * 5000)) sessions)"
echo "# figure: RSS once the budget was reached ${rss1} kB, 20000 sessions later ${rss2} kB"
# Without the limit those 20000 sessions would keep an address and a /64
# key each, about 190 bytes a session: 3.7 MB.
if [ $sanitized = 1 ]; then
	ok "# SKIP RSS flatness in a sanitizer build"
else
	ok "RSS flat once the budget is reached (+$((rss2 - rss1)) kB over 20000 sessions)" \
		[ $((rss2 - rss1)) -lt 1024 ]
fi
is "$(grep -c 'memory_limit reached' "$T/m.log")" 1 "the limit is logged once a minute, not per key"

attacker 4 "451 text=4.7.1"
ok "the attacker's fourth unknown recipient is refused, from memory" [ $? -eq 0 ]
ok "floodgatectl stats shows the keys held back" wait_for \
	"\"$FG_BUILD_DIR/ctl/floodgatectl\" -d '$T/m.db' stats | grep -Eq 'daemon: [0-9]+ keys in .* \\([1-9][0-9]* key updates held back'" 5

fg_stop "$PID"
ok "the daemon stops cleanly" [ $? -eq 0 ]
line=$(grep 'store: .* keys in .* bytes of memory' "$T/m.log")
echo "# figure: ${line#*store: }"
mem=$(sed -n 's/.* keys in \([0-9]*\) bytes of memory.*/\1/p' <<<"$line")
held=$(sed -n 's/.*), \([0-9]*\) key updates held back.*/\1/p' <<<"$line")
ok "the counters stayed under the budget and its reserve ($mem bytes)" \
	test "${mem:-99999999}" -le $((1048576 + 131072 + 4096))
ok "keys were held back ($held)" test "${held:-0}" -gt 0
done_testing
