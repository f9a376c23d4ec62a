#!/bin/bash
# floodgatectl on the live database of the real daemon: a small dictionary
# attack through the milter protocol, then every verb while the daemon
# runs: top names the attacking /24 first, why explains the refusal, a ban
# is enforced by the daemon within ~2 s and an unban lifted as fast, stats
# counts it all, replay with the daemon's own configuration gives the
# daemon's verdicts (and a stricter one gives more), check says ok, and
# a foreign or newer database, bad keys and bad options are refused.
. "$(dirname "$0")/lib.sh"

CTL=$FG_BUILD_DIR/ctl/floodgatectl
[ -x "$CTL" ] || { echo "not ok - $CTL is missing"; exit 1; }

fg_conf "$T/c.conf" <<'EOF2'
exempt = { networks = [ ]; };
rules = (
	{ name = "dictionary"; type = "invalid_recipients"; mask = false; per = "network";
	  prefix4 = 24; prefix6 = 64; limit = 5; window = "1h"; decay = "1h";
	  ladder = (
		{ over = 1; action = "delay"; delay = "100ms"; },
		{ over = 3; action = "delay"; delay = "100ms"; then = "tempfail"; }
	  ); },
	{ name = "bad-rcpt"; type = "bad_recipient_throttle"; limit = 3;
	  action = "delay"; delay = "50ms"; }
);
EOF2
fg_start c "$T/c.conf" || exit 1
db=$T/c.db

ctl() { "$CTL" -c "$T/c.conf" -d "$db" "$@"; }
unknown() {	# unknown USER: an RCPT the MTA refused as an unknown user
	printf 'macro stage=R {rcpt_mailer}=error {rcpt_host}=5.1.1 "{rcpt_addr}=User unknown"\nrcpt <%s@example.org>\n' "$1"
}
valid() {
	printf 'macro stage=R {rcpt_mailer}=local {rcpt_host}=localhost {rcpt_addr}=%s\nrcpt <%s@example.org>\n' "$1" "$1"
}
connect() {	# connect ADDR EXPECT: one session that only connects
	printf 'connect host=x.example addr=%s family=4 port=2525\nexpect %s\nquit\n' "$1" "$2"
}

# ---- the attack --------------------------------------------------------
# 192.0.2.10 tries five unknown users (the fourth and fifth are slowed by
# bad-rcpt), 192.0.2.11 three more: the /24 is then over the dictionary
# limit of 5 (delays, then 451).  A good client sends two valid
# recipients, and a client with a hostile HELO name one unknown user.
{
	echo "connect host=a.example addr=192.0.2.10 family=4 port=2525"
	echo "expect continue"
	echo "helo attacker.example"
	echo "macro stage=M i=Q1"
	echo "mail <x@attacker.example>"
	for u in u1 u2 u3; do unknown $u; echo "expect continue"; done
	unknown u4; echo "expect continue min_ms=40"
	unknown u5; echo "expect continue min_ms=90"
	echo "quit"
	echo "connect host=b.example addr=192.0.2.11 family=4 port=2525"
	echo "expect continue"
	echo "helo attacker.example"
	echo "mail <x@attacker.example>"
	unknown u6; echo "expect continue min_ms=90"
	unknown u7; echo "expect continue min_ms=90"
	unknown u8; echo "expect 451 text=4.7.1"
	echo "quit"
	echo "connect host=good.example addr=198.51.100.7 family=4 port=2525"
	echo "expect continue"
	echo "helo mx.good.example"
	echo "mail <a@good.example>"
	valid alice; echo "expect continue"
	valid bob; echo "expect continue"
	echo "quit"
	echo "connect host=evil.example addr=203.0.113.9 family=4 port=2525"
	echo 'helo "evil\"quote\\back\x1b[31mred\r\nX-Injected: 1"'
	echo "mail <e@evil.example>"
	unknown nobody; echo "expect continue"
	echo "quit"
} >"$T/attack.scr"
miltc c -q <"$T/attack.scr"
ok "the attack gets delays, then 451 from the daemon" [ $? -eq 0 ]
wait_for "[ \$(sqlite3 '$db' 'SELECT count(*) FROM verdicts') -ge 5 ]" 10
is "$(sqlite3 "$db" 'SELECT count(*) FROM verdicts')" 5 "the daemon recorded 5 verdicts"

# ---- top ----------------------------------------------------------------
out=$(ctl top 2>"$T/err"); rc=$?
is "$rc" 0 "top exits 0"
is "$(sed -n 3p <<<"$out" | awk '{print $1, $2}')" "192.0.2.0/24 8" \
	"top shows the attacking /24 first, with 8 unknown users"
ok "top writes nothing on stderr" [ ! -s "$T/err" ]
out=$(ctl --json top)
is "$(py 'd["rows"][0]["key"], d["rows"][0]["invalid"], d["rows"][0]["connects"]' <<<"$out")" \
	"192.0.2.0/24 8 2" "top --json: the /24, 8 unknown users, 2 connections"
out=$(ctl top --by address --kind rcpt --limit 2 --since 10m)
is "$(sed -n '3,$p' <<<"$out" | awk '{print $1}' | tr '\n' ' ')" \
	"192.0.2.10 192.0.2.11 " "top --by address --kind rcpt --limit 2"
out=$(ctl --json top --by helo --kind rcpt)
is "$(py 'len(d["rows"])' <<<"$out" 2>&1)" 3 "top --by helo: valid JSON despite a hostile HELO"
out=$(ctl top --by helo --kind rcpt)
ok "no control bytes reach the terminal" \
	bash -c '! printf "%s" "$1" | LC_ALL=C grep -q "[[:cntrl:]]"' _ "$(tr -d '\n' <<<"$out")"
ok "the hostile HELO is shown escaped" grep -q 'helo:evil"quote' <<<"$out"
is "$(ctl top --by domain --kind invalid | sed -n 3p | awk '{print $1, $2}')" \
	"rcpt-domain:example.org 9" "top --by domain"

# ---- why ----------------------------------------------------------------
out=$(ctl why 192.0.2.11 2>"$T/err"); rc=$?
is "$rc" 0 "why exits 0"
ok "why names the rule, its key and count" \
	grep -Eq '^dictionary +192\.0\.2\.0/24 +8 +5 +1h +2 +over by 3: step 2, delay 100ms then tempfail' <<<"$out"
ok "why shows the session rule" grep -q '^bad-rcpt .*session' <<<"$out"
ok "why lists the 451 the daemon gave" grep -q 'rcpt .*dictionary .*delay .*8/5 .*451 4.7.1' <<<"$out"
ok "why says the client is not exempt" grep -q '^exempt: no' <<<"$out"
out=$(ctl --json why 192.0.2.11)
is "$(py 'd["rules"][0]["count"], d["rules"][0]["limit"], d["rules"][0]["level"], d["keys"]' <<<"$out")" \
	"8 5 2 ['192.0.2.11', '192.0.2.0/24']" "why --json: count, limit, level, keys"

# From the database alone, when no configuration can be read.
if [ ! -e /etc/floodgate/floodgate.conf ]; then
	out=$("$CTL" -d "$db" why 192.0.2.11 2>"$T/err"); rc=$?
	is "$rc" 0 "why -d works without a configuration"
	ok "... and says the limits are unknown" grep -q '^no configuration could be read' <<<"$out"
	ok "... still listing the daemon's verdicts" grep -q 'rcpt .*dictionary .*451 4.7.1' <<<"$out"
else
	echo "# skipping why without a configuration: /etc/floodgate/floodgate.conf exists"
fi
err=$("$CTL" -c "$T/missing.conf" why 192.0.2.11 2>&1); rc=$?
is "$rc" 1 "why with -c naming a missing file fails"
ok "... with a hint that does not ask for -d" bash -c '! grep -q -- "-d" <<<"$1" && grep -q "give one with -c" <<<"$1"' _ "$err"

# ---- ban, unban: the live daemon follows ---------------------------------
out=$(ctl ban 192.0.2 --for 1h --reason "dictionary attack" 2>"$T/err"); rc=$?
t0=$(date +%s%N)
is "$rc" 0 "ban 192.0.2 (a partial address) exits 0"
ok "ban says what it banned" grep -q '^banned 192.0.2.0/24 until .*: dictionary attack' <<<"$out"
ok "and warns about nothing" [ ! -s "$T/err" ]
refused=1
for i in $(seq 1 20); do
	connect 192.0.2.50 421 | miltc c -q 2>/dev/null && { refused=0; break; }
	sleep 0.2
done
ms=$((($(date +%s%N) - t0) / 1000000))
is "$refused" 0 "the next connection from the /24 is refused with 421"
ok "within ~2 s of the ban (${ms} ms)" [ "$ms" -le 2500 ]
out=$(ctl bans)
ok "bans lists it" grep -Eq '^192\.0\.2\.0/24 +.* floodgatectl +dictionary attack$' <<<"$out"
out=$(ctl why 192.0.2.50)
ok "why shows the ban" grep -Eq '^192\.0\.2\.0/24 +[0-9]+m[0-9]+s +floodgatectl +dictionary attack +yes' <<<"$out"
ok "why: a connection now is refused by the ban" \
	grep -q '^a connection now: banned key=192.0.2.0/24 action=disconnect' <<<"$out"
out=$(ctl unban 192.0.2.0/24); rc=$?
is "$rc" 0 "unban exits 0"
is "$out" "lifted the ban of 192.0.2.0/24" "unban says so"
t0=$(date +%s%N)
accepted=1
for i in $(seq 1 20); do
	connect 192.0.2.51 continue | miltc c -q 2>/dev/null && { accepted=0; break; }
	sleep 0.2
done
ms=$((($(date +%s%N) - t0) / 1000000))
is "$accepted" 0 "after unban the next connection is accepted again"
ok "within ~2 s (${ms} ms)" [ "$ms" -le 2500 ]
is "$(ctl unban 192.0.2.0/24)" "192.0.2.0/24 was not banned" "a second unban has nothing to lift"
is "$(ctl --json bans | py 'd["bans"]')" "[]" "no bans left"

# The database from the configuration's own setting, without -d.
sed "s|^flush_interval.*|&\ndatabase = \"$db\";|" "$T/c.conf" >"$T/db.conf"
out=$("$CTL" -c "$T/db.conf" ban 2001:db8:1::/64 --for 10m 2>&1); rc=$?
is "$rc" 0 "without -d the config's database is used"
is "$("$CTL" -c "$T/db.conf" unban 2001:db8:1::/64)" "lifted the ban of 2001:db8:1::/64" \
	"and an IPv6 /64 can be lifted again"

# Bans at any prefix length are honoured by the live daemon.
until_refused() {	# until_refused ADDR FAMILY WANT: poll up to ~3 s
	local i
	for i in $(seq 1 15); do
		printf 'connect host=x.example addr=%s family=%s port=2525\nexpect %s\nquit\n' "$1" "$2" "$3" |
			miltc c -q 2>/dev/null && return 0
		sleep 0.2
	done
	return 1
}
ctl ban 198.51.96.0/20 --for 1h >/dev/null 2>"$T/err"; rc=$?
is "$rc" 0 "ban of a /20 (a length no rule counts by)"
ok "... without a warning" [ ! -s "$T/err" ]
ok "a client of the /20 is refused at connect" until_refused 198.51.100.77 4 421
ctl ban 2001:db8:77::/48 --for 1h >/dev/null
ok "a client of a banned IPv6 /48 is refused at connect" until_refused 2001:db8:77:1::5 6 421
out=$(ctl unban 198.51.100.77)
is "$out" "198.51.100.77 is still banned: 198.51.96.0/20 covers it (unban --covering lifts it too)" \
	"unban of an address names the network ban that covers it"
out=$(ctl unban 198.51.100.77 --covering)
is "$out" "lifted the ban of 198.51.96.0/20, which covers 198.51.100.77" "unban --covering lifts it"
ok "and the address is let in again" until_refused 198.51.100.77 4 continue
ctl unban 2001:db8:77::/48 >/dev/null
err=$(ctl ban '*' --for 1h 2>&1); rc=$?
is "$rc" 2 "a ban the daemon would not honour is refused"
ok "... saying why" grep -q 'not honoured' <<<"$err"
is "$(ctl --json bans | py 'd["bans"]')" "[]" "no bans left"

# ---- stats ----------------------------------------------------------------
# The retries around ban and unban make a varying number of connections
# (and refusals by the ban): count them in the database.
nconn=$(sqlite3 "$db" "SELECT coalesce(sum(n), 0) FROM events WHERE kind = 'connect'")
nban=$(sqlite3 "$db" "SELECT coalesce(sum(n), 0) FROM verdicts WHERE rule = 'ban'")
out=$(ctl stats 2>"$T/err"); rc=$?
is "$rc" 0 "stats exits 0"
ok "stats counts the unknown users" grep -Eq '^  invalid +9$' <<<"$out"
ok "stats counts the connections" grep -Eq "^connect +$nconn\$" <<<"$out"
ok "stats counts the verdicts per action" grep -Eq '^delay +5 +0$' <<<"$out"
ok "stats draws the busy hour" \
	grep -Eq '^[0-9]{2}-[0-9]{2} [0-9]{2}:00 +[0-9]+ +#+ +[0-9]+ +#+$' <<<"$(LC_ALL=C ctl stats)"
ok "and a sparkline" grep -Eq '^  invalid \|.*\| max [0-9]+$' <<<"$out"
out=$(ctl --json stats)
is "$(py 'd["events"]["invalid"], d["verdicts"]["refused"], sum(h["invalid"] for h in d["hours"])' <<<"$out")" \
	"9 $((1 + nban)) 9" "stats --json: 9 unknown users, the 451 and the ban's refusals, all in the timeline"

# ---- replay -------------------------------------------------------------
sleep 2.5   # replay leaves out the last 2 s, which the daemon may not have committed
nban=$(sqlite3 "$db" "SELECT coalesce(sum(n), 0) FROM verdicts WHERE rule = 'ban'")
out=$(ctl --json replay --config "$T/c.conf" 2>"$T/err"); rc=$?
is "$rc" 0 "replay exits 0"
ok "replay warns about nothing" [ ! -s "$T/err" ]
is "$(py 'd["verdicts"]["same"], d["verdicts"]["replay_only"], d["verdicts"]["daemon_only"], d["verdicts"]["external_bans"], d["matches"]' <<<"$out")" \
	"5 0 $nban $nban True" \
	"replay with the daemon's config gives its 5 verdicts; the operator's ban is told apart"
mine=$(py '"\n".join("%d|%d|%s|%s|%s" % (w["session_id"], w["time_ms"], w["rule"], w["key"], w["action"]) for w in d["differences"])' <<<"$out")
is "$mine" "$(sqlite3 "$db" "SELECT session_id, ts_ms, rule, key, action FROM verdicts WHERE rule = 'ban' ORDER BY ts_ms, session_id")" \
	"the only differences are the refusals by the operator's ban"
is "$(py 'all(w["replay"] == w["daemon"] for w in d["who"] if w["rule"] != "ban"), len([w for w in d["who"] if w["rule"] != "ban"])' <<<"$out")" \
	"True 2" "per client, rule, key and action: as many verdicts as the daemon's"
out=$(ctl replay --config "$T/c.conf")
ok "replay (text) says it gives the daemon's verdicts" \
	grep -q '^result    the replay gives the daemon.s verdicts' <<<"$out"
ok "replay (text) lists who was delayed" \
	grep -Eq '^192\.0\.2\.11 +dictionary +192\.0\.2\.0/24 +delay +3 +3$' <<<"$out"

sed 's/limit = 5;/limit = 2;/' "$T/c.conf" >"$T/strict.conf"
out=$(ctl --json replay --config "$T/strict.conf" --since 1h)
is "$(py 'd["matches"], d["verdicts"]["replay"] > d["verdicts"]["daemon"] - d["verdicts"]["external_bans"], d["verdicts"]["replay_only"]' <<<"$out")" \
	"False True 3" "a stricter policy would have slowed 192.0.2.10 down three times more"
out=$(ctl replay --config "$T/strict.conf" --since 1h)
ok "the stricter replay names the attacker" \
	grep -Eq '^192\.0\.2\.10 +dictionary +192\.0\.2\.0/24 +delay +[1-9][0-9]* +0$' <<<"$out"

# ---- check, prune, vacuum ---------------------------------------------------
out=$(ctl check); rc=$?
is "$rc" 0 "check exits 0"
ok "check says ok" grep -Eq '^integrity +ok$' <<<"$out"
ok "check shows the schema version" grep -Eq '^schema version +7 ' <<<"$out"
is "$(ctl --json check | py 'd["ok"], d["application_id"]')" "True 1718380388" "check --json"
out=$(ctl prune --older 1d); rc=$?
is "$rc" 0 "prune exits 0"
ok "prune keeps a fresh history" grep -q '^pruned 0 events and 0 verdicts older than 1d ' <<<"$out"
ctl vacuum >/dev/null
is "$?" 0 "vacuum works beside the running daemon"
connect 192.0.2.52 continue | miltc c -q
ok "the daemon keeps answering after vacuum" [ $? -eq 0 ]

# ---- refusals -----------------------------------------------------------------
sqlite3 "$T/foreign.db" 'CREATE TABLE t (x); INSERT INTO t VALUES (1);'
err=$(ctl -d "$T/foreign.db" top 2>&1 >/dev/null); rc=$?
is "$rc" 1 "a foreign SQLite file is refused (exit 1)"
is "$(wc -l <<<"$err")" 1 "with one line on stderr"
ok "saying it is not floodgate's" grep -q "foreign.db: not a floodgate database" <<<"$err"
sqlite3 "$db" ".backup '$T/newer.db'"
sqlite3 "$T/newer.db" 'PRAGMA user_version = 9'
err=$(ctl -d "$T/newer.db" check 2>&1 >/dev/null); rc=$?
is "$rc" 1 "a newer schema is refused (exit 1)"
ok "saying so" grep -q "schema version 9 is newer" <<<"$err"
err=$(ctl -d "$T/missing.db" bans 2>&1 >/dev/null); rc=$?
is "$rc" 1 "a missing database is an error, not created"
ok "nothing was created" [ ! -e "$T/missing.db" ]
err=$(ctl ban 192.0.2.999 --for 1h 2>&1); rc=$?
is "$rc" 2 "an unknown key syntax is a usage error (exit 2)"
is "$(wc -l <<<"$err")" 1 "with one line"
err=$(ctl ban 192.0.2.7 2>&1); rc=$?
is "$rc" 2 "ban without --for is a usage error"
err=$(ctl top --by planet 2>&1); rc=$?
is "$rc" 2 "an unknown --by is a usage error"
err=$(ctl top --frobnicate 2>&1); rc=$?
is "$rc" 2 "an unknown option is a usage error"
ok "naming it" grep -q "unknown option '--frobnicate'" <<<"$err"
err=$(ctl frobnicate 2>&1); rc=$?
is "$rc" 2 "an unknown command is a usage error"
err=$(ctl why 192.0.2.300 2>&1); rc=$?
is "$rc" 2 "why wants an address"
err=$(ctl replay 2>&1); rc=$?
is "$rc" 2 "replay without --config is a usage error"
err=$("$CTL" -c "$T/nope.conf" top 2>&1); rc=$?
is "$rc" 1 "a missing configuration is an error"
is "$(wc -l <<<"$err")" 1 "in one line"

kill -0 "$FG_PID"
ok "the daemon is still running" [ $? -eq 0 ]
fg_stop "$FG_PID"
is "$?" 0 "and stops cleanly"

done_testing
