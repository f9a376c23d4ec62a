#!/bin/bash
# floodgatectl status and metrics against a live daemon: OK while it
# runs, CRITICAL when its database cannot be written (chattr +i) and OK
# again once it can, CRITICAL when it is gone; the metrics pass promtool
# and their counters agree with the database after a known workload.
. "$(dirname "$0")/lib.sh"

CTL=$FG_BUILD_DIR/ctl/floodgatectl
fg_conf "$T/s.conf" <<'EOF2'
exempt = { networks = [ ]; };
rules = (
	{ name = "dict"; type = "invalid_recipients"; mask = false;
	  per = "network"; limit = 2; window = "1h"; action = "tempfail"; },
	{ name = "watch"; type = "connection_rate"; per = "address";
	  limit = 1; window = "1h"; action = "tempfail"; monitor = true; }
);
EOF2
fg_start s "$T/s.conf" || exit 1
db=$T/s.db
ctl() { "$CTL" -c "$T/s.conf" -d "$db" "$@"; }

unknown() {
	printf 'macro stage=R {rcpt_mailer}=error {rcpt_host}=5.1.1 "{rcpt_addr}=User unknown"\nrcpt <%s@example.org>\n' "$1"
}
for h in 10 11; do
	{ echo "connect host=a.example addr=192.0.2.$h family=4 port=2525"
	  echo "helo a.example"; echo "mail <a@a.example>"
	  unknown "u$h-1"; unknown "u$h-2"; echo quit; } | miltc s -q
done
for i in 1 2; do
	printf 'connect host=b.example addr=198.51.100.7 family=4 port=2525\nquit\n' | miltc s -q
done

wait_for "\"$CTL\" -c '$T/s.conf' -d '$db' status >/dev/null" 10
out=$(ctl status); rc=$?
is "$rc" 0 "status: OK while the daemon runs"
ok "... saying so" grep -q '^floodgate OK: healthy' <<<"$out"
ok "... with the daemon's pid" grep -q "pid $FG_PID (running)" <<<"$out"
ok "... and the refusals by rule" grep -q 'refusals .* dict 2$' <<<"$out"
is "$(ctl --json status | py 'd["status"], d["tarpit_max"], d["running"]')" "OK 50 True" "status --json"

# The counters, after the daemon has committed everything.
sleep 2
out=$(ctl metrics); rc=$?
is "$rc" 0 "metrics exits 0"
printf '%s\n' "$out" >"$T/floodgate.prom"
if command -v promtool >/dev/null; then
	promtool check metrics <"$T/floodgate.prom" >"$T/promtool.out" 2>&1
	is "$?" 0 "promtool check metrics accepts the output"
	sed 's/^/# promtool: /' "$T/promtool.out" | head -5
else
	echo "not ok - promtool is missing (contrib/dev/deps.sh installs prometheus)"
fi
m() { awk -v k="$1" '$1 == k { print $2 }' "$T/floodgate.prom"; }
for kind in connect helo mail rcpt close; do
	is "$(m "floodgate_events_total{kind=\"$kind\"}")" \
		"$(sqlite3 "$db" "SELECT coalesce(sum(n), 0) FROM events WHERE kind = '$kind'")" \
		"events_total{kind=$kind} agrees with the events table"
done
is "$(m 'floodgate_verdicts_total{rule="dict",action="tempfail",mode="enforced"}')" \
	"$(sqlite3 "$db" "SELECT coalesce(sum(n), 0) FROM verdicts WHERE rule = 'dict' AND action = 'tempfail' AND monitor = 0")" \
	"verdicts_total of the enforced rule agrees with the verdicts table"
is "$(m 'floodgate_verdicts_total{rule="watch",action="tempfail",mode="monitor"}')" \
	"$(sqlite3 "$db" "SELECT coalesce(sum(n), 0) FROM verdicts WHERE rule = 'watch' AND monitor = 1")" \
	"... and of the monitor rule"
is "$(m floodgate_up)" 1 "floodgate_up is 1"

# The database cannot be written: the status row ages.
if chattr +i "$db" "$db-wal" 2>/dev/null; then
	printf 'connect host=b.example addr=198.51.100.8 family=4 port=2525\nquit\n' | miltc s -q
	ok "status turns CRITICAL when the database is read-only" \
		wait_for "[ \"\$(\"$CTL\" -d '$db' status --stale 3s >/dev/null; echo \$?)\" = 2 ]" 15
	ctl status --stale 3s | head -2 | sed 's/^/# /'
	chattr -i "$db" "$db-wal"
	ok "and OK again once it is writable" wait_for "\"$CTL\" -d '$db' status --stale 3s >/dev/null" 15
else
	echo "# skipping the read-only database: chattr +i not supported here"
fi

fg_stop "$FG_PID"; is "$?" 0 "the daemon stops cleanly"
out=$(ctl status); rc=$?
is "$rc" 2 "status: CRITICAL once the daemon is gone"
ok "... saying it is not running" grep -q 'is not running' <<<"$out"
is "$(ctl metrics | awk '$1 == "floodgate_up" { print $2 }')" 0 "floodgate_up is 0"
done_testing
