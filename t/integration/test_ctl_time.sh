#!/bin/bash
# floodgatectl shows times in local time (TZ honoured, the zone named in
# headings), in UTC with --utc (before or after the command), and JSON
# always in UTC.  POSIX TZ strings need no time zone database.
. "$(dirname "$0")/lib.sh"

CTL=$FG_BUILD_DIR/ctl/floodgatectl
fg_conf "$T/c.conf" </dev/null
fg_start d "$T/c.conf"
fg_stop "$FG_PID"
is "$?" 0 "a database made by the daemon"
ctl() { "$CTL" -d "$T/d.db" "$@"; }

ctl ban 192.0.2.1 --for 1h --reason "zone test" >/dev/null
until_s=$(( $(sqlite3 "$T/d.db" "SELECT until_ms FROM bans") / 1000 ))
utc=$(TZ=UTC0 date -d "@$until_s" '+%Y-%m-%d %H:%M:%S')
ist=$(TZ=XST-5:30 date -d "@$until_s" '+%Y-%m-%d %H:%M:%S')
[ "$utc" != "$ist" ]
ok "the two zones differ (test sanity)" [ $? -eq 0 ]

out=$(TZ=XST-5:30 ctl bans)
ok "local time: the heading names the zone" grep -q 'UNTIL (XST)' <<<"$out"
ok "local time: the ban ends at $ist, TZ's time" grep -qF "192.0.2.1  $ist" <<<"$out"
out=$(TZ=XST-5:30 ctl --utc bans)
ok "--utc before the command: UTC heading" grep -q 'UNTIL (UTC)' <<<"$out"
ok "--utc before the command: $utc" grep -qF "192.0.2.1  $utc" <<<"$out"
out=$(TZ=XST-5:30 ctl bans --utc)
ok "--utc after the command too" grep -qF "192.0.2.1  $utc" <<<"$out"
out=$(TZ=XST-5:30 ctl ban 192.0.2.2 --for 2h)
want=$(TZ=XST-5:30 date -d "@$(( $(sqlite3 "$T/d.db" \
	"SELECT until_ms FROM bans WHERE key = '192.0.2.2'") / 1000 ))" '+%Y-%m-%d %H:%M:%S')
is "$out" "banned 192.0.2.2 until $want XST (2h)" "ban says when, in local time"
out=$(TZ=XST-5:30 ctl --json bans)
ok "JSON stays in UTC, with Z" \
	grep -qF "\"until\":\"$(TZ=UTC0 date -d "@$until_s" '+%Y-%m-%dT%H:%M:%SZ')\"" <<<"$out"
out=$(TZ=XST-5:30 ctl stats --since 1h)
ok "stats: since ... XST" grep -qE '^since [0-9-]+ [0-9:]+ XST ' <<<"$out"
ok "-h lists --utc" grep -q -- '--utc' <<<"$("$CTL" -h)"

done_testing
