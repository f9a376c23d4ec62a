#!/bin/bash
# Operator controls that stick, through the live daemon: unban of a
# network at the top of its ladder lets its next connection in (the
# window counts and the levels go too, or the daemon would ban it again
# at once), and reset clears counts and levels without touching bans.
. "$(dirname "$0")/lib.sh"

CTL=$FG_BUILD_DIR/ctl/floodgatectl
fg_conf "$T/k.conf" <<'EOF2'
exempt = { networks = [ ]; };
rules = (
	{ name = "dict"; type = "invalid_recipients"; mask = false;
	  per = "network"; prefix4 = 24; limit = 2; window = "1h"; decay = "1h";
	  ladder = (
		{ over = 1; action = "tempfail"; },
		{ over = 3; action = "ban"; ban = "1h"; }
	  ); }
);
EOF2
fg_start k "$T/k.conf" || exit 1
ctl() { "$CTL" -c "$T/k.conf" -d "$T/k.db" "$@"; }
unknown() {
	printf 'macro stage=R {rcpt_mailer}=error {rcpt_host}=5.1.1 "{rcpt_addr}=User unknown"\nrcpt <%s@example.org>\n' "$1"
}
attack() {	# attack ADDR: six unknown recipients
	{ echo "connect host=a.example addr=$1 family=4 port=2525"
	  echo "mail <a@a.example>"
	  for u in 1 2 3 4 5 6; do unknown "u$u"; done; echo quit; } | miltc k -q -t 10
}
probe() {	# probe ADDR WANT-at-connect WANT-at-mail
	printf 'connect host=p.example addr=%s family=4 port=2525\nexpect %s\nmail <p@p.example>\nexpect %s\nquit\n' \
		"$1" "$2" "$3" | miltc k -q -t 5 2>/dev/null
}
until_ok() {	# until_ok CMD...: up to ~3 s
	local i
	for i in $(seq 1 15); do "$@" && return 0; sleep 0.2; done
	return 1
}

attack 192.0.2.10
ok "the attacked /24 is banned: refused at connect" until_ok probe 192.0.2.20 421 421
ok "its level is stored" wait_for "[ \"\$(sqlite3 '$T/k.db' \"SELECT count(*) FROM levels WHERE key = '192.0.2.0/24'\")\" = 1 ]" 5

t0=$(date +%s%N)
out=$(ctl unban 192.0.2.0/24); rc=$?
is "$rc" 0 "unban exits 0"
ok "the next connection from the /24 is accepted, MAIL too" until_ok probe 192.0.2.21 continue continue
ms=$((($(date +%s%N) - t0) / 1000000))
ok "within about a second of the unban (${ms} ms)" [ "$ms" -le 2500 ]
is "$(sqlite3 "$T/k.db" "SELECT count(*) FROM levels WHERE key = '192.0.2.0/24'") $(sqlite3 "$T/k.db" "SELECT coalesce(sum(invalid), 0) FROM counts WHERE key = '192.0.2.0/24'")" \
	"0 0" "its unknown recipients and levels are gone from the database too"
ok "the daemon says it forgot them" grep -q 'counts and levels of 192.0.2.0/24 reset' "$T/k.log"
probe 192.0.2.22 continue continue
ok "... and it is not banned again a moment later" [ $? -eq 0 ]

# reset: counts and levels, not bans.
attack 198.51.100.10
ok "a second /24 over its limit is refused" until_ok probe 198.51.100.20 421 421
ctl ban 203.0.113.0/24 --for 1h >/dev/null
out=$(ctl reset 198.51.100.0/24); rc=$?
is "$rc:$out" "0:reset the counts and levels of 198.51.100.0/24" "reset says what it did"
ok "... the ban made by the rule still refuses it" until_ok probe 198.51.100.21 421 421
ctl unban 198.51.100.0/24 >/dev/null
ok "... and once unbanned, it is in" until_ok probe 198.51.100.22 continue continue
ok "a manual ban is left alone by a reset of another key" until_ok probe 203.0.113.5 421 421

# The allow list: one attacker let in, the others still limited.
attack 10.1.1.10
ok "an attacking /24 is refused" until_ok probe 10.1.1.30 421 421
out=$(ctl allow 10.1.1.30 --reason "our partner"); rc=$?
is "$rc:$out" "0:allowed 10.1.1.30 until disallowed: our partner" "allow says what it did"
ok "the allowed address is let in within about a second" until_ok probe 10.1.1.30 continue continue
probe 10.1.1.31 421 421
ok "... while the rest of its /24 is still refused" [ $? -eq 0 ]
ok "allows lists it" grep -Eq '^10\.1\.1\.30 +disallowed .* our partner$' <<<"$(ctl allows)"
ok "why says it is allowed" grep -q '^exempt: allowed by an operator (10.1.1.30)' <<<"$(ctl why 10.1.1.30)"
ctl allow 172.16.0.0/12 --for 1h >/dev/null
ok "a network of any length can be allowed" until_ok probe 172.20.1.2 continue continue
ctl allow '*' >/dev/null 2>&1
is "$?" 2 "the global key cannot be allowed"

# Across a restart: allows and bans are kept.
fg_stop "$FG_PID"; is "$?" 0 "the daemon stops cleanly"
fg_start k "$T/k.conf" || exit 1
probe 10.1.1.30 continue continue
ok "after a restart the allow holds" [ $? -eq 0 ]
probe 10.1.1.32 421 421
ok "... and so does the ban" [ $? -eq 0 ]
is "$(ctl disallow 10.1.1.30)" "10.1.1.30 is no longer allowed" "disallow says so"
ok "after disallow the address is refused again" until_ok probe 10.1.1.30 421 421
is "$(ctl disallow 10.1.1.30)" "10.1.1.30 was not allowed" "a second disallow has nothing to do"

fg_stop "$FG_PID"; is "$?" 0 "the daemon stops cleanly"
done_testing
