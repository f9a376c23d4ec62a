# shellcheck shell=bash
# mta_scenarios.sh - floodgate end to end against a real MTA: the scenarios,
# written once, run by test_postfix.sh and test_sendmail.sh (sourced after
# lib.sh and t/mta/mta.sh).
#
# The caller sets MTA (postfix or sendmail) and defines
#   mta_main_start DIR PORT SOCKET      the MTA with the milter settings of
#                                       contrib/ as they are (Postfix:
#                                       milter_default_action = tempfail;
#                                       sendmail: F=T)
#   mta_failopen_start DIR PORT SOCKET  the same MTA told to carry on
#                                       without floodgate (Postfix: accept;
#                                       sendmail: F= empty)
# and calls mta_scenarios_run.  Every reply the client sees is asserted as
# the MTA really shows it (mta_expect below holds the differences), and
# every decision is checked in floodgate's database too.
#
# One floodgate (policy: mta-scenarios.conf, which gives each scenario its
# own client network) serves both MTA instances; it is reloaded three times
# (SIGUSR1) and restarted once on the same database.  The scenarios, in
# the order they run:
#   matrix             a delay, tempfail, reject and 421 at connect, HELO,
#                      MAIL and RCPT: what the client sees of each
#   rcpts_per_message  recipient 4 of a message gets 452 4.5.3
#   conn_rate          a connection flood from one address: 421 at connect
#   concurrency        a 3rd session while 2 are held open: 421 at connect
#   throttle           unknown recipients of a session delayed 0.5, 1, 1.5 s
#   exempt             an exempt network past every limit: nothing happens
#   harvest            guesses of valid and unknown users from one /24:
#                      once flagged, the valid ones get the MTA's own
#                      unknown-user reply; a session sending only valid
#                      recipients gets a 4xx, never a 5xx
#   dictionary         unknown users from many addresses of one /24:
#                      delayed, tempfailed, banned; a legitimate client
#                      from another network untouched throughout
#   reload             SIGUSR1 lowers a limit under an open session
#   monitor            monitor = true: nothing refused, rows monitor = 1
#   down_and_restart   floodgate stopped: the MTA's default action (contrib
#                      settings: tempfail; fail-open: mail flows); started
#                      again on the same database: the ban still holds
# FGS_SCENARIOS="matrix exempt" runs a subset (for debugging; later ones
# rely on earlier ones).  FG_KEEP=1 keeps the work directory ($T), with
# floodgate's log (fg.log, fg.log.1 before the restart), its database
# (fg.db) and each MTA's maillog.
#
# Delays are 0.5-1 s and are measured with a tolerance: at least 0.9 x
# the configured delay, and less than it plus 1.5 s; a reply that should
# not be delayed must come within FGS_PASS_MAX.

FGS_DOM=floodgate.test
FGS_PASS_MAX=0.6          # an undelayed reply must come faster than this

# ---- output of smtpc.py / the held-session helper ---------------------
# Lines read "STEP CODE ELAPSED TEXT"; the last one "status STATUS".

# reply OUT STEP: "CODE TEXT" of the first step named STEP, "" if none.
reply() {
	awk -v s="$2" '$1 == s { l = $0; sub(/^[^ ]+ [^ ]+ [^ ]+ ?/, "", l);
		print $2 " " l; exit }' <<<"$1"
}
code() { awk -v s="$2" '$1 == s { print $2; exit }' <<<"$1"; }
secs() { awk -v s="$2" '$1 == s { print $3; exit }' <<<"$1"; }
status() { awk '$1 == "status" { print $2 }' <<<"$1"; }
# steps OUT: the step names in order, space-separated (what was reached)
steps() { awk '$1 != "status" { printf "%s%s", n++ ? " " : "", $1 }' <<<"$1"; }

like() {		# like GOT REGEX DESCRIPTION
	if [[ $1 =~ $2 ]]; then
		fg_pass=$((fg_pass + 1)); echo "ok - $3"
	else
		fg_fail=$((fg_fail + 1)); echo "not ok - $3"
		echo "#   got:  '$1'"; echo "#   want: /$2/"
	fi
}

# took OUT STEP MIN MAX DESCRIPTION: the step's reply came after at least
# MIN and less than MAX seconds.
took() {
	local s
	s=$(secs "$1" "$2")
	ok "$5 (${s:-none} s, want $3..$4)" \
		awk -v s="${s:-x}" -v a="$3" -v b="$4" \
		'BEGIN { exit !(s ~ /^[0-9.]+$/ && s + 0 >= a && s + 0 < b) }'
}

show() {		# show LABEL OUT: the session as test output comments
	sed "s/^/# $1: /" <<<"$2"
}

# ---- the database -----------------------------------------------------

dbq() { sqlite3 -batch "$FGS_DB" "$1" 2>&1; }

# db_is SQL WANT DESCRIPTION: polls (events reach the file within
# flush_interval) until the query answers WANT, at most 5 s.
db_is() {
	local got i
	for ((i = 0; i < 50; i++)); do
		got=$(dbq "$1")
		[ "$got" = "$2" ] && break
		sleep 0.1
	done
	is "$got" "$2" "$3"
}

# ---- sessions ---------------------------------------------------------

smtp() {		# smtp SOURCE [smtpc.py options]: one session, main MTA
	local src=$1; shift
	mta_smtp "$FGS_PORT" "$src" --timeout 30 "$@"
}

# A session the test holds open: held NAME PORT SOURCE STEP...  runs in
# the background, its replies in $T/NAME.out (smtpc.py's format).  Steps:
# ehlo:NAME mail:ADDR rcpt:ADDR data quit, and wait:NAME, which pauses
# until "release NAME" is called.
declare -A FGS_HELD=()
held() {
	local name=$1 port=$2 src=$3; shift 3
	rm -f "$T/$name.out" "$T/$name.go"
	"$FG_PYTHON" "$T/held.py" "$port" "$src" "$T" "$@" >"$T/$name.out" 2>&1 &
	FGS_HELD[$name]=$!
	fg_pids+=("$!")
}
release() { touch "$T/$1.go"; }
# held_at NAME STEP: wait until the held session has a reply to STEP
held_at() { wait_for "awk '\$1 == \"$2\"' '$T/$1.out' | grep -q ." 20; }
# held_done NAME: wait until the session is over and reap it
held_done() {
	wait_for "grep -q '^status ' '$T/$1.out'" 30 || return 1
	wait "${FGS_HELD[$1]}" 2>/dev/null
	fgs_forget "${FGS_HELD[$1]}"
}
held_out() { cat "$T/$1.out"; }

# fgs_forget PID: a process that is gone and reaped leaves fg_pids, so
# that the cleanup can never signal a stranger that got its number.
fgs_forget() {
	local p keep=()
	for p in "${fg_pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	fg_pids=("${keep[@]}")
}

fgs_write_helper() {
	cat >"$T/held.py" <<'EOF'
# held.py PORT SOURCE DIR STEP...: an SMTP session that can pause.
import os, socket, sys, time
port, src, d = int(sys.argv[1]), sys.argv[2], sys.argv[3]
buf = b""
def reply(s):
    global buf
    lines = []
    while True:
        while b"\n" not in buf:
            try:
                c = s.recv(65536)
            except OSError:
                c = b""
            if not c:
                raise EOFError(lines)
            buf += c
        l, buf = buf.split(b"\n", 1)
        lines.append(l.rstrip(b"\r").decode("utf-8", "replace"))
        if len(lines[-1]) < 4 or lines[-1][3] != "-":
            return lines
def out(step, lines, t0):
    code = lines[-1][:3] if lines and lines[-1][:3].isdigit() else "---"
    print("%s %s %.3f %s" % (step, code, time.monotonic() - t0,
          " | ".join(x[4:] for x in lines)), flush=True)
    return code
cmds = {"ehlo": "EHLO %s", "mail": "MAIL FROM:<%s>", "rcpt": "RCPT TO:<%s>",
        "data": "DATA", "dot": "Subject: held\r\n\r\nheld session\r\n.",
        "quit": "QUIT"}
s = socket.create_connection(("127.0.0.1", port), timeout=60,
                             source_address=(src, 0))
status, step, t0 = "ok", "connect", time.monotonic()
try:
    out("connect", reply(s), t0)
    for st in sys.argv[4:]:
        verb, _, arg = st.partition(":")
        if verb == "wait":
            while not os.path.exists(os.path.join(d, arg + ".go")):
                time.sleep(0.02)
            continue
        step = "%s:<%s>" % (verb, arg) if verb == "rcpt" else verb
        t0 = time.monotonic()
        try:
            s.sendall((cmds[verb] % arg if "%s" in cmds[verb]
                       else cmds[verb]).encode() + b"\r\n")
        except OSError:
            raise EOFError([])
        if out(step, reply(s), t0) == "421":
            status = "closed"
            break
except EOFError as e:
    if e.args[0]:
        out(step, e.args[0], t0)
    else:
        print("%s --- %.3f" % (step, time.monotonic() - t0), flush=True)
    status = "closed"
print("status", status, flush=True)
EOF
}

# ---- what each MTA shows ----------------------------------------------
# (Observed with Postfix 3.7 and sendmail 8.17.1.9; regular expressions
# matched against "CODE TEXT".)

mta_expect() {
	local tf='Too many requests from your network, try again later'
	local dc='Too many requests from your network, closing connection'
	X_TEMPFAIL="^451 4\\.7\\.1 $tf\$"         # the milter's own reply
	X_421="^421 4\\.7\\.0 $dc\$"
	X_452='^452 4\.5\.3 Too many recipients$'
	X_OK_MAIL='^250 2\.1\.0 '
	X_OK_RCPT='^250 2\.1\.5 '
	X_OK_DOT='^250 2\.0\.0 '
	case $MTA in
	postfix)
		X_BANNER='^220 mx\.floodgate\.test ESMTP Postfix$'
		X_UNKNOWN='^550 5\.1\.1 <[^>]*>: Recipient address rejected: User unknown in local recipient table$'
		# connect: tempfail is held back until MAIL, with the
		# milter's text; reject gives Postfix's 554 banner and the
		# milter's 550 at MAIL; 421 is Postfix's own text.
		X_CONNECT_TEMPFAIL_MAIL="$X_TEMPFAIL"
		X_CONNECT_REJECT_BANNER='^554 mx\.floodgate\.test ESMTP not accepting connections$'
		X_CONNECT_REJECT_MAIL='^550 5\.7\.1 Refused by local policy$'
		X_CONNECT_421='^421 mx\.floodgate\.test Service unavailable - try again later$'
		# HELO: the EHLO reply is 250 (for reject: no extensions but
		# ENHANCEDSTATUSCODES), the verdict comes at MAIL; 421 ends
		# the session at EHLO with the milter's text.
		X_HELO_TEMPFAIL_EXT=full
		X_HELO_REJECT_MAIL='^550 5\.7\.1 Refused by local policy$'
		X_MAIL_REJECT='^550 5\.7\.1 Refused by local policy$'
		X_RCPT_REJECT='^550 5\.7\.1 Refused by local policy$'
		# floodgate down, milter_default_action = tempfail
		X_DOWN_MAIL='^451 4\.7\.1 Service unavailable - try again later$'
		# The queue id comes with the first accepted recipient: the
		# milter sees it from the 2nd RCPT on.
		X_QID_RCPTS=1
		X_QID_NOTE="Postfix: from the 2nd recipient on"
		# A session under a ban: the RCPT after the refused one
		# reaches the milter too.
		X_BAN_EXTRA=" 127.5.5.30:rcpt:disconnect"
		;;
	sendmail)
		X_BANNER='^220 mx\.floodgate\.test ESMTP Sendmail 8\.'
		X_UNKNOWN='^550 5\.1\.1 <[^>]*>\.\.\. User unknown$'
		# connect: the milter's text is dropped: tempfail gives
		# sendmail's 451 4.3.2 at MAIL, reject a 554 banner and
		# "Command rejected", 421 sendmail's own 421 line.
		X_CONNECT_TEMPFAIL_MAIL='^451 4\.3\.2 Please try again later$'
		X_CONNECT_REJECT_BANNER='^554 mx\.floodgate\.test ESMTP not accepting messages$'
		X_CONNECT_REJECT_MAIL='^550 5\.0\.0 Command rejected$'
		X_CONNECT_421='^421 4\.7\.0 mx\.floodgate\.test closing connection$'
		# HELO: 250 without extensions (tempfail and reject), the
		# milter's reply at MAIL; 421 at EHLO with the milter's text.
		X_HELO_TEMPFAIL_EXT=reduced
		X_HELO_REJECT_MAIL='^550 5\.7\.1 Refused by local policy$'
		X_MAIL_REJECT='^550 5\.7\.1 <[^>]*>\.\.\. Refused by local policy$'
		X_RCPT_REJECT='^550 5\.7\.1 <[^>]*>\.\.\. Refused by local policy$'
		# floodgate down, F=T
		X_DOWN_MAIL='^451 4\.3\.2 Please try again later$'
		# sendmail has the queue id from MAIL on
		X_QID_RCPTS=2
		X_QID_NOTE="sendmail: every recipient"
		X_BAN_EXTRA=""
		;;
	*)
		echo "Bail out! MTA must be postfix or sendmail"; exit 1 ;;
	esac
}

# ---- start and stop ---------------------------------------------------

fgs_setup() {
	mta_expect
	trap 'mta_stop_all; fg_cleanup' EXIT
	fgs_write_helper
	FGS_CONF=$T/fg.conf
	FGS_DB=$T/fg.db
	FGS_SOCK=unix:$T/fg.sock
	fg_conf "$FGS_CONF" <"$FG_SOURCE_DIR/t/integration/mta-scenarios.conf"
	if ! fg_start fg "$FGS_CONF"; then
		echo "Bail out! floodgate did not start"; exit 1
	fi
	FGS_FG_PID=$FG_PID
	FGS_PORT=$(mta_free_port)
	FGS_PORT2=$(mta_free_port $((FGS_PORT + 1)))
	local t0=$SECONDS
	if ! mta_main_start "$T/mta" "$FGS_PORT" "$FGS_SOCK"; then
		echo "Bail out! $MTA did not start"; exit 1
	fi
	if ! mta_failopen_start "$T/mta-failopen" "$FGS_PORT2" "$FGS_SOCK"; then
		echo "Bail out! the second $MTA did not start"; exit 1
	fi
	echo "# $MTA on ports $FGS_PORT (contrib settings) and $FGS_PORT2" \
	     "(fail-open), started in $((SECONDS - t0)) s"
}

# Reload after editing the file with sed EXPRESSION (which must change
# it); waits for the log to say so.
fgs_reload() {
	local n
	n=$(grep -c 'configuration reloaded' "$T/fg.log")
	cp "$FGS_CONF" "$FGS_CONF.prev"
	sed -i "$1" "$FGS_CONF"
	if cmp -s "$FGS_CONF" "$FGS_CONF.prev"; then
		echo "# fgs_reload: '$1' changed nothing"; return 1
	fi
	kill -USR1 "$FGS_FG_PID"
	wait_for "[ \$(grep -c 'configuration reloaded' '$T/fg.log') -gt $n ]" 10
}

# ---- 0. what the client sees for each verdict at each stage ------------
# One client address per stage; the rules' ladders answer a 0.5 s delay,
# tempfail, reject and 421 to its 2nd, 3rd, 4th and 5th event.

sc_matrix() {
	echo "# ---- verdict matrix: delay, tempfail, reject, 421 at each stage"
	local out a=127.10.1.2
	# connect
	out=$(smtp $a --rcpt "alice@$FGS_DOM")
	like "$(reply "$out" mail)" "$X_OK_MAIL" "connect matrix: 1st connection passes"
	took "$out" connect 0 "$FGS_PASS_MAX" "connect matrix: banner at once"
	out=$(smtp $a --rcpt "alice@$FGS_DOM"); show "connect delay" "$out"
	took "$out" connect 0.45 2.0 "connect delay: the banner comes 0.5 s late"
	like "$(reply "$out" connect)" "$X_BANNER" "connect delay: normal banner"
	like "$(reply "$out" "rcpt:<alice@$FGS_DOM>")" "$X_OK_RCPT" "connect delay: then the session goes on"
	out=$(smtp $a --rcpt "alice@$FGS_DOM"); show "connect tempfail" "$out"
	like "$(reply "$out" connect)" "$X_BANNER" "connect tempfail: normal banner"
	like "$(reply "$out" mail)" "$X_CONNECT_TEMPFAIL_MAIL" "connect tempfail: MAIL refused with 4xx"
	out=$(smtp $a --rcpt "alice@$FGS_DOM"); show "connect reject" "$out"
	like "$(reply "$out" connect)" "$X_CONNECT_REJECT_BANNER" "connect reject: 554 banner"
	like "$(reply "$out" mail)" "$X_CONNECT_REJECT_MAIL" "connect reject: MAIL refused with 5xx"
	out=$(smtp $a --rcpt "alice@$FGS_DOM"); show "connect 421" "$out"
	like "$(reply "$out" connect)" "$X_CONNECT_421" "connect disconnect: 421 instead of the banner"
	is "$(steps "$out") $(status "$out")" "connect closed" "connect disconnect: the MTA closes the connection"

	# HELO: separate sessions (after a refusal at HELO the MTA stops
	# passing further EHLOs of that session to the milter)
	a=127.10.2.2
	out=$(smtp $a --rcpt "alice@$FGS_DOM")
	like "$(reply "$out" "rcpt:<alice@$FGS_DOM>")" "$X_OK_RCPT" "helo matrix: 1st session passes"
	out=$(smtp $a --rcpt "alice@$FGS_DOM"); show "helo delay" "$out"
	took "$out" ehlo 0.45 2.0 "helo delay: the EHLO reply comes 0.5 s late"
	like "$(reply "$out" ehlo)" 'PIPELINING' "helo delay: with the usual extensions"
	like "$(reply "$out" "rcpt:<alice@$FGS_DOM>")" "$X_OK_RCPT" "helo delay: then the session goes on"
	out=$(smtp $a --rcpt "alice@$FGS_DOM"); show "helo tempfail" "$out"
	is "$(code "$out" ehlo)" 250 "helo tempfail: EHLO still answered 250"
	if [ "$X_HELO_TEMPFAIL_EXT" = full ]; then
		like "$(reply "$out" ehlo)" 'PIPELINING' "helo tempfail: with the usual extensions"
	else
		ok "helo tempfail: without extensions" bash -c '! grep -q PIPELINING <<<"$1"' _ "$(reply "$out" ehlo)"
	fi
	like "$(reply "$out" mail)" "$X_TEMPFAIL" "helo tempfail: MAIL gets the milter's 451"
	out=$(smtp $a --rcpt "alice@$FGS_DOM"); show "helo reject" "$out"
	is "$(code "$out" ehlo)" 250 "helo reject: EHLO still answered 250"
	ok "helo reject: without extensions" bash -c '! grep -q PIPELINING <<<"$1"' _ "$(reply "$out" ehlo)"
	like "$(reply "$out" mail)" "$X_HELO_REJECT_MAIL" "helo reject: MAIL gets 550"
	out=$(smtp $a --rcpt "alice@$FGS_DOM"); show "helo 421" "$out"
	like "$(reply "$out" ehlo)" "$X_421" "helo disconnect: EHLO gets the milter's 421"
	is "$(status "$out")" closed "helo disconnect: connection closed"

	# MAIL
	a=127.10.3.2
	out=$(smtp $a --rcpt "alice@$FGS_DOM")
	like "$(reply "$out" mail)" "$X_OK_MAIL" "mail matrix: 1st MAIL passes"
	out=$(smtp $a --rcpt "alice@$FGS_DOM"); show "mail delay" "$out"
	took "$out" mail 0.45 2.0 "mail delay: the MAIL reply comes 0.5 s late"
	like "$(reply "$out" mail)" "$X_OK_MAIL" "mail delay: and is 250"
	out=$(smtp $a --rcpt "alice@$FGS_DOM"); show "mail tempfail" "$out"
	like "$(reply "$out" mail)" "$X_TEMPFAIL" "mail tempfail: the milter's 451"
	out=$(smtp $a --rcpt "alice@$FGS_DOM"); show "mail reject" "$out"
	like "$(reply "$out" mail)" "$X_MAIL_REJECT" "mail reject: 550 5.7.1"
	out=$(smtp $a --rcpt "alice@$FGS_DOM"); show "mail 421" "$out"
	like "$(reply "$out" mail)" "$X_421" "mail disconnect: the milter's 421"
	is "$(steps "$out") $(status "$out")" "connect ehlo mail closed" "mail disconnect: connection closed"

	# RCPT: one transaction, valid recipients
	a=127.10.4.2
	out=$(smtp $a --rcpt "alice@$FGS_DOM" --rcpt "bob@$FGS_DOM" --rcpt "carol@$FGS_DOM" \
		--rcpt "postmaster@$FGS_DOM" --rcpt "bob@$FGS_DOM" --rcpt "alice@$FGS_DOM")
	show "rcpt matrix" "$out"
	like "$(reply "$out" "rcpt:<alice@$FGS_DOM>")" "$X_OK_RCPT" "rcpt matrix: 1st RCPT passes"
	took "$out" "rcpt:<bob@$FGS_DOM>" 0.45 2.0 "rcpt delay: the 2nd RCPT's reply comes 0.5 s late"
	like "$(reply "$out" "rcpt:<bob@$FGS_DOM>")" "$X_OK_RCPT" "rcpt delay: and is 250"
	like "$(reply "$out" "rcpt:<carol@$FGS_DOM>")" "$X_TEMPFAIL" "rcpt tempfail: the milter's 451"
	like "$(reply "$out" "rcpt:<postmaster@$FGS_DOM>")" "$X_RCPT_REJECT" "rcpt reject: 550 5.7.1"
	# (smtpc.py reports the first of two steps of the same name; the
	# 5th recipient is the second bob)
	like "$(awk '$1 == "rcpt:<bob@'"$FGS_DOM"'>"' <<<"$out" | sed -n '2{s/^[^ ]* \([^ ]*\) [^ ]* /\1 /;p}')" \
		"$X_421" "rcpt disconnect: the milter's 421"
	is "$(status "$out")" closed "rcpt disconnect: connection closed"

	db_is "SELECT group_concat(stage || ':' || action, ' ') FROM
	       (SELECT * FROM verdicts WHERE rule LIKE 'matrix-%' ORDER BY id)" \
		"connect:delay connect:tempfail connect:reject connect:disconnect helo:delay helo:tempfail helo:reject helo:disconnect mail:delay mail:tempfail mail:reject mail:disconnect rcpt:delay rcpt:tempfail rcpt:reject rcpt:disconnect" \
		"matrix: one verdict row per delay and refusal, in order"
}

# ---- 4. recipients per message ----------------------------------------

sc_rcpts_per_message() {
	echo "# ---- recipients_per_message: limit 3"
	local out
	out=$(smtp 127.4.4.2 --rcpt "alice@$FGS_DOM" --rcpt "bob@$FGS_DOM" \
		--rcpt "carol@$FGS_DOM" --rcpt "postmaster@$FGS_DOM" --data)
	show rcpts "$out"
	is "$(code "$out" "rcpt:<alice@$FGS_DOM>")$(code "$out" "rcpt:<bob@$FGS_DOM>")$(code "$out" "rcpt:<carol@$FGS_DOM>")" \
		250250250 "recipients 1-3 of the message: 250"
	like "$(reply "$out" "rcpt:<postmaster@$FGS_DOM>")" "$X_452" "recipient 4: 452 4.5.3 Too many recipients"
	like "$(reply "$out" dot)" "$X_OK_DOT" "the message goes to the first 3"
	db_is "SELECT stage, action, count, lim, reply FROM verdicts
	       WHERE rule = 'rcpts-per-message' AND client = '127.4.4.2'" \
		"rcpt|tempfail|4|3|452 4.5.3 Too many recipients" \
		"verdict row: rcpts-per-message, count 4 over limit 3"
}

# ---- 2. connection flood ----------------------------------------------

sc_conn_rate() {
	echo "# ---- connection_rate: 3 per minute per address"
	local out i codes=
	for i in 1 2 3 4 5 6; do
		out=$(smtp 127.2.2.2 --rcpt "alice@$FGS_DOM")
		codes="$codes $(code "$out" connect)/$(code "$out" "rcpt:<alice@$FGS_DOM>")/$(status "$out")"
		[ "$i" = 4 ] && show "conn-rate 4th" "$out"
		[ "$i" = 4 ] && like "$(reply "$out" connect)" "$X_CONNECT_421" "4th connection: refused at connect"
	done
	is "$codes" " 220/250/ok 220/250/ok 220/250/ok 421//closed 421//closed 421//closed" \
		"a flood of 6: the first 3 pass, the rest get 421 at connect"
	out=$(smtp 127.2.2.3 --rcpt "alice@$FGS_DOM")
	like "$(reply "$out" "rcpt:<alice@$FGS_DOM>")" "$X_OK_RCPT" "a neighbour address is not affected (per address)"
	# Refused at connect, the three verdicts may share a row (n): the
	# first's count is 4.
	db_is "SELECT stage || ' ' || action || ' ' || min(count) || ' x' || sum(n) FROM verdicts
	       WHERE rule = 'conn-rate' AND key = '127.2.2.2' GROUP BY stage, action" \
		"connect disconnect 4 x3" \
		"verdict rows: conn-rate disconnects connections 4-6"
}

# ---- 3. concurrency ---------------------------------------------------

sc_concurrency() {
	echo "# ---- concurrency: 2 sessions at once per address"
	local out a=127.3.3.2
	held conc1 "$FGS_PORT" $a ehlo:c1.test wait:conc mail:s@example.org \
		"rcpt:alice@$FGS_DOM" data dot quit
	held conc2 "$FGS_PORT" $a ehlo:c2.test wait:conc mail:s@example.org \
		"rcpt:bob@$FGS_DOM" data dot quit
	held_at conc1 ehlo; held_at conc2 ehlo
	out=$(smtp $a --rcpt "alice@$FGS_DOM"); show "3rd concurrent" "$out"
	like "$(reply "$out" connect)" "$X_CONNECT_421" "a 3rd session while 2 are open: refused at connect"
	release conc
	held_done conc1; held_done conc2
	show conc1 "$(held_out conc1)"
	like "$(reply "$(held_out conc1)" dot)" "$X_OK_DOT" "the 1st open session completes normally"
	like "$(reply "$(held_out conc2)" dot)" "$X_OK_DOT" "the 2nd open session completes normally"
	# their close callbacks free the slots
	local i
	for i in 1 2 3 4 5 6 7 8 9 10; do
		out=$(smtp $a --rcpt "carol@$FGS_DOM")
		[ "$(code "$out" connect)" = 220 ] && break
		sleep 0.2
	done
	like "$(reply "$out" "rcpt:<carol@$FGS_DOM>")" "$X_OK_RCPT" "once they closed, a new session passes"
	db_is "SELECT stage, action, count, lim FROM verdicts WHERE rule = 'concurrency'" \
		"connect|disconnect|3|2" "verdict row: concurrency 3 > 2"
}

# ---- 5. bad-recipient throttle ----------------------------------------

sc_throttle() {
	echo "# ---- bad_recipient_throttle: after 1 unknown, 0.5 s growing linearly"
	local out
	out=$(smtp 127.6.6.2 --rcpt "n1@$FGS_DOM" --rcpt "n2@$FGS_DOM" \
		--rcpt "n3@$FGS_DOM" --rcpt "n4@$FGS_DOM" --rcpt "alice@$FGS_DOM")
	show throttle "$out"
	like "$(reply "$out" "rcpt:<n4@$FGS_DOM>")" "$X_UNKNOWN" "the client still sees the MTA's 550 5.1.1"
	took "$out" "rcpt:<n1@$FGS_DOM>" 0 "$FGS_PASS_MAX" "1st unknown recipient: not delayed"
	took "$out" "rcpt:<n2@$FGS_DOM>" 0.45 2.0 "2nd unknown: delayed 0.5 s"
	took "$out" "rcpt:<n3@$FGS_DOM>" 0.9 2.5 "3rd unknown: delayed 1 s"
	took "$out" "rcpt:<n4@$FGS_DOM>" 1.35 3.0 "4th unknown: delayed 1.5 s"
	ok "the delay grows with each unknown recipient" awk \
		-v a="$(secs "$out" "rcpt:<n2@$FGS_DOM>")" -v b="$(secs "$out" "rcpt:<n3@$FGS_DOM>")" \
		-v c="$(secs "$out" "rcpt:<n4@$FGS_DOM>")" 'BEGIN { exit !(b - a >= 0.25 && c - b >= 0.25) }'
	took "$out" "rcpt:<alice@$FGS_DOM>" 0 "$FGS_PASS_MAX" "a valid recipient is never throttled"
	like "$(reply "$out" "rcpt:<alice@$FGS_DOM>")" "$X_OK_RCPT" "... and accepted"
	db_is "SELECT group_concat(count || ':' || delay_ms, ' ') FROM
	       (SELECT * FROM verdicts WHERE rule = 'bad-rcpt-throttle' AND action = 'delay' ORDER BY id)" \
		"2:500 3:1000 4:1500" "verdict rows: throttle delays 500, 1000, 1500 ms"
}

# ---- 6a. exemption ----------------------------------------------------

sc_exempt() {
	echo "# ---- exempt network: 127.8.8.0/24, past every limit"
	local out i slow=0 refused=0
	for i in 1 2 3; do
		out=$(smtp 127.8.8.2 --rcpt "e${i}a@$FGS_DOM" --rcpt "e${i}b@$FGS_DOM" \
			--rcpt "e${i}c@$FGS_DOM" --rcpt "e${i}d@$FGS_DOM" --rcpt "alice@$FGS_DOM" --data)
		[ "$(code "$out" mail)" = 250 ] || refused=$((refused + 1))
		[ "$(code "$out" dot)" = 250 ] || refused=$((refused + 1))
		slow=$((slow + $(awk -v m="$FGS_PASS_MAX" '$1 ~ /^rcpt:/ && $3 >= m { n++ } END { print n + 0 }' <<<"$out")))
	done
	is "$refused" 0 "12 unknown recipients in 3 sessions (dictionary limit 4, throttle): nothing refused"
	is "$slow" 0 "... and no recipient delayed"
	db_is "SELECT count(*) FROM events WHERE client = '127.8.8.2' AND kind = 'rcpt' AND class = 'invalid'" \
		12 "the exempt client's unknown recipients are still recorded"
	is "$(dbq "SELECT count(*) FROM verdicts WHERE client = '127.8.8.2'")" 0 "... but no verdict concerns it"
}

# ---- 1. the dictionary attack -----------------------------------------

FGS_QIDS=()
legit() {		# legit LABEL: the legitimate client sends one message
	local out qid
	out=$(smtp 127.9.9.2 --rcpt "alice@$FGS_DOM" --rcpt "bob@$FGS_DOM" --data)
	is "$(code "$out" mail) $(code "$out" "rcpt:<alice@$FGS_DOM>") $(code "$out" "rcpt:<bob@$FGS_DOM>") $(code "$out" dot) $(status "$out")" \
		"250 250 250 250 ok" "legitimate client 127.9.9.2 $1: 250s"
	ok "legitimate client $1: not delayed" awk -v m="$FGS_PASS_MAX" \
		'$1 ~ /^(mail|rcpt:)/ && $3 >= m { bad = 1 } END { exit bad }' <<<"$out"
	# the queue id in the reply to the final dot
	qid=$(reply "$out" dot | sed -nE 's/.*queued as ([0-9A-Za-z]+)$/\1/p; s/^250 2\.0\.0 ([0-9A-Za-z]+) Message accepted.*/\1/p')
	[ -n "$qid" ] && FGS_QIDS+=("$qid")
}

attack() {		# attack SOURCE N1 N2 N3: one session, 3 unknown users
	smtp "$1" --rcpt "$2@$FGS_DOM" --rcpt "$3@$FGS_DOM" --rcpt "$4@$FGS_DOM"
}

# The text of a reply with the address taken out: "550 5.1.1 : ..."
unaddressed() { sed -E 's/<[^>]*>//' <<<"$1"; }

sc_harvest() {
	echo "# ---- harvest from 127.11.11.0/24 (limit 3: delay 0.5 s, tempfail from 6, masking)"
	local out u x
	out=$(smtp 127.11.11.2 --rcpt "h1@$FGS_DOM" --rcpt "h2@$FGS_DOM" \
		--rcpt "h3@$FGS_DOM" --rcpt "h4@$FGS_DOM" --rcpt "alice@$FGS_DOM" \
		--rcpt "h5@$FGS_DOM" --rcpt "h6@$FGS_DOM" --rcpt "bob@$FGS_DOM" \
		--rcpt "h7@$FGS_DOM" --rcpt "alice@$FGS_DOM")
	show "harvest" "$out"
	took "$out" "rcpt:<h4@$FGS_DOM>" 0.45 2 "unknown 4: delayed 0.5 s"
	# The first step only delays: below the flag a valid guess is
	# still told apart, after the network's delay.
	like "$(reply "$out" "rcpt:<alice@$FGS_DOM>")" "$X_OK_RCPT" "before the flag a valid guess gets 250 (after the delay)"
	u=$(reply "$out" "rcpt:<h6@$FGS_DOM>")
	x=$(reply "$out" "rcpt:<bob@$FGS_DOM>")
	like "$u" "$X_UNKNOWN" "flagged: an unknown guess gets the MTA's own 550 5.1.1"
	like "$x" "$X_UNKNOWN" "flagged: a valid guess gets the same reply"
	is "$(unaddressed "$x")" "$(unaddressed "$u")" "... to the letter, but for the address"
	like "$(reply "$out" "rcpt:<h7@$FGS_DOM>")" "$X_UNKNOWN" "and the next unknown one too"
	is "$(status "$out")" ok "the session is not cut short (a 421 would tell)"
	ok "Postfix/sendmail logged floodgate's refusal of the valid guess" \
		grep -qE "(milter-reject|Milter: to=).*bob@$FGS_DOM" "$T/mta/maillog"
	grep -E "bob@$FGS_DOM" "$T/mta/maillog" | head -2 | sed 's/^/# maillog: /'

	# Another session of the flagged network, only valid recipients.
	out=$(smtp 127.11.11.3 --rcpt "alice@$FGS_DOM" --data); show "harvest, valid only" "$out"
	like "$(reply "$out" mail)" "^4" "a session with only valid recipients gets a 4xx at MAIL"
	ok "... and no 5xx but the MTA's own 503 for commands after the refused MAIL" \
		awk '$2 ~ /^5/ && $2 != "503" { bad = 1 } END { exit bad }' <<<"$out"
	out=$(smtp 127.12.12.2 --rcpt "alice@$FGS_DOM" --rcpt "bob@$FGS_DOM" --data)
	is "$(code "$out" "rcpt:<alice@$FGS_DOM>") $(code "$out" "rcpt:<bob@$FGS_DOM>") $(code "$out" dot)" \
		"250 250 250" "a client of another network, during the harvest: 250s"
	db_is "SELECT group_concat(action || ':' || count, ' ') FROM
	       (SELECT * FROM verdicts WHERE rule = 'harvest' AND client = '127.11.11.2' ORDER BY id)" \
		"delay:4 delay:4 delay:5 mask:6 mask:6 mask:7 mask:7" \
		"verdicts: delays, then masked (the valid guesses too)"
}

sc_dictionary() {
	echo "# ---- dictionary attack from 127.5.5.0/24 (limit 4: delay 1 s, tempfail from 8, then ban)"
	local out q n
	# A session opened early, before the network is refused, to go on
	# once it is banned.
	held early "$FGS_PORT" 127.5.5.30 ehlo:h.test mail:h@example.org wait:early \
		"rcpt:x10@$FGS_DOM" "rcpt:alice@$FGS_DOM" quit
	held_at early mail
	legit "before the attack"

	out=$(attack 127.5.5.2 x1 x2 x3); show "attack 1" "$out"
	like "$(reply "$out" "rcpt:<x1@$FGS_DOM>")" "$X_UNKNOWN" "unknown users get the MTA's 550 5.1.1"
	took "$out" "rcpt:<x3@$FGS_DOM>" 0 "$FGS_PASS_MAX" "unknown 1-3 of the network: not delayed"

	out=$(attack 127.5.5.3 x4 x5 x6); show "attack 2" "$out"
	took "$out" "rcpt:<x4@$FGS_DOM>" 0 "$FGS_PASS_MAX" "unknown 4 (= limit): not delayed"
	took "$out" "rcpt:<x5@$FGS_DOM>" 0.9 2.5 "unknown 5, another address of the /24: delayed 1 s"
	took "$out" "rcpt:<x6@$FGS_DOM>" 0.9 2.5 "unknown 6: delayed 1 s"
	like "$(reply "$out" "rcpt:<x6@$FGS_DOM>")" "$X_UNKNOWN" "... and then the MTA's 550"

	legit "during the delays"

	out=$(attack 127.5.5.4 x7 x8 x9); show "attack 3" "$out"
	took "$out" "rcpt:<x7@$FGS_DOM>" 0.9 2.5 "unknown 7: delayed 1 s"
	took "$out" "rcpt:<x8@$FGS_DOM>" 0 "$FGS_PASS_MAX" "unknown 8: tempfail step, no delay"
	like "$(reply "$out" "rcpt:<x8@$FGS_DOM>")" "$X_UNKNOWN" "... the MTA shows its own 550 for an unknown user"

	out=$(smtp 127.5.5.5 --rcpt "alice@$FGS_DOM"); show "attack 4" "$out"
	like "$(reply "$out" connect)" "$X_BANNER" "tempfailed network, new session: banner"
	like "$(reply "$out" mail)" "$X_CONNECT_TEMPFAIL_MAIL" "tempfailed network, new session: 4xx at MAIL"
	is "$(code "$out" "rcpt:<alice@$FGS_DOM>")" 503 "... so no recipient gets through"

	legit "while the network is tempfailed"

	# Coming back while tempfailed climbs the ladder: the next
	# connection reaches the ban step (floodgate.conf(5), Escalation
	# levels) and is refused at connect, and so is every later one.
	out=$(smtp 127.5.5.6 --rcpt "alice@$FGS_DOM"); show "attack 5" "$out"
	like "$(reply "$out" connect)" "$X_CONNECT_421" "the network comes back: banned, refused at connect"
	is "$(steps "$out") $(status "$out")" "connect closed" "... and disconnected"
	out=$(smtp 127.5.5.200 --rcpt "alice@$FGS_DOM")
	like "$(reply "$out" connect)" "$X_CONNECT_421" "... any address of the /24"

	# The early session goes on under the ban.
	release early
	held_done early
	out=$(held_out early); show "early session" "$out"
	like "$(reply "$out" "rcpt:<x10@$FGS_DOM>")" "$X_UNKNOWN" "session opened before the ban, unknown user: the MTA's 550"
	case $MTA in
	postfix)
		# Postfix ignores the milter's 421 for a recipient it has
		# refused itself, and goes on.
		like "$(reply "$out" "rcpt:<alice@$FGS_DOM>")" "$X_421" \
			"postfix: the next RCPT of that session gets the ban's 421"
		;;
	sendmail)
		# sendmail closes the connection after its 550, without the
		# milter's 421.
		is "$(reply "$out" "rcpt:<alice@$FGS_DOM>")" "--- " \
			"sendmail: connection closed after the 550, no reply to the next RCPT"
		;;
	esac
	is "$(status "$out")" closed "the early session is over"

	legit "after the ban"

	# the database
	db_is "SELECT count(*) FROM events WHERE kind = 'rcpt' AND network = '127.5.5.0/24' AND class = 'invalid'" \
		10 "events: 10 invalid recipients from 127.5.5.0/24"
	db_is "SELECT class, status, client FROM events WHERE kind = 'rcpt' AND rcpt = 'x1@$FGS_DOM'" \
		"invalid|5.1.1|127.5.5.2" "events: an unknown user is class invalid, status 5.1.1"
	db_is "SELECT class || ':' || count(*) FROM events WHERE kind = 'rcpt' AND client = '127.9.9.2' GROUP BY class" \
		valid:8 "events: the legitimate client's 8 recipients, class valid"
	is "${#FGS_QIDS[@]}" 4 "the MTA gave the 4 legitimate messages queue ids"
	n=0
	for q in "${FGS_QIDS[@]}"; do
		[ "$(dbq "SELECT count(*) FROM events WHERE kind = 'rcpt' AND class = 'valid' AND queue_id = '$q'")" = "$X_QID_RCPTS" ] &&
			n=$((n + 1))
	done
	is "$n" 4 "events: their recipients carry those queue ids ($X_QID_NOTE)"
	db_is "SELECT group_concat(stage || ':' || action || ':' || count, ' ') FROM
	       (SELECT * FROM verdicts WHERE rule = 'dictionary' AND key = '127.5.5.0/24' ORDER BY id)" \
		"rcpt:delay:5 rcpt:delay:6 rcpt:delay:7 rcpt:tempfail:8 rcpt:tempfail:9 connect:tempfail:9 connect:ban:9" \
		"verdicts: rule dictionary delays, tempfails, then bans"
	is "$(dbq "SELECT DISTINCT delay_ms FROM verdicts WHERE rule = 'dictionary' AND action = 'delay'")" \
		1000 "verdicts: the delays are 1000 ms"
	db_is "SELECT key, source, reason, until_ms - created_ms FROM bans" \
		"127.5.5.0/24|floodgate:dictionary|rule dictionary: 9 > 4 in 10m|600000" \
		"bans: 127.5.5.0/24 for 10 minutes, by rule dictionary"
	db_is "SELECT group_concat(client || ':' || stage || ':' || action, ' ') FROM
	       (SELECT * FROM verdicts WHERE rule = 'ban' AND key = '127.5.5.0/24' ORDER BY id)" \
		"127.5.5.200:connect:disconnect 127.5.5.30:rcpt:disconnect$X_BAN_EXTRA" \
		"verdicts: what the ban refused afterwards (rule 'ban')"
	is "$(dbq "SELECT count(*) FROM verdicts WHERE client = '127.9.9.2'")" 0 \
		"verdicts: none for the legitimate client"
}

# ---- 8. reload --------------------------------------------------------

sc_reload() {
	echo "# ---- SIGUSR1: recipients_per_message 3 -> 1 with a session open"
	local out
	held reload "$FGS_PORT" 127.4.4.3 ehlo:r.test mail:r@example.org "rcpt:alice@$FGS_DOM" \
		wait:reload "rcpt:bob@$FGS_DOM" "rcpt:carol@$FGS_DOM" data dot quit
	held_at reload "rcpt:<alice@$FGS_DOM>"
	ok "reload with the lower limit" fgs_reload \
		's/network = "127.4.4.0\/24"; limit = 3;/network = "127.4.4.0\/24"; limit = 1;/'
	release reload
	held_done reload
	out=$(held_out reload); show "open across reload" "$out"
	is "$(code "$out" "rcpt:<bob@$FGS_DOM>") $(code "$out" "rcpt:<carol@$FGS_DOM>") $(code "$out" dot) $(code "$out" quit) $(status "$out")" \
		"250 250 250 221 ok" "the session open across the reload completes under its old limit"
	out=$(smtp 127.4.4.4 --rcpt "alice@$FGS_DOM" --rcpt "bob@$FGS_DOM"); show "after reload" "$out"
	like "$(reply "$out" "rcpt:<alice@$FGS_DOM>")" "$X_OK_RCPT" "a new session: recipient 1 passes"
	like "$(reply "$out" "rcpt:<bob@$FGS_DOM>")" "$X_452" "a new session: recipient 2 gets 452 (new limit 1)"
	ok "floodgate did not restart" kill -0 "$FGS_FG_PID"
}

# ---- 6b. monitor mode -------------------------------------------------

sc_monitor() {
	echo "# ---- monitor = true (SIGUSR1): nothing refused, everything recorded"
	local out
	ok "reload with monitor = true" fgs_reload 's/^monitor = false;/monitor = true;/'
	out=$(smtp 127.5.5.7 --rcpt "alice@$FGS_DOM" --data); show "monitor banned" "$out"
	is "$(code "$out" connect) $(code "$out" "rcpt:<alice@$FGS_DOM>") $(code "$out" dot)" \
		"220 250 250" "monitor: the banned network passes"
	out=$(smtp 127.2.2.2 --rcpt "alice@$FGS_DOM")
	is "$(code "$out" connect) $(code "$out" "rcpt:<alice@$FGS_DOM>")" "220 250" \
		"monitor: the flooding address passes"
	out=$(smtp 127.6.6.3 --rcpt "m1@$FGS_DOM" --rcpt "m2@$FGS_DOM" --rcpt "m3@$FGS_DOM")
	took "$out" "rcpt:<m3@$FGS_DOM>" 0 "$FGS_PASS_MAX" "monitor: no throttle delay"
	db_is "SELECT count(*) FROM verdicts WHERE monitor = 1 AND client = '127.5.5.7' AND rule = 'ban'" \
		4 "verdict rows with monitor = 1 for the banned client (connect, HELO, MAIL, RCPT)"
	db_is "SELECT group_concat(stage || ':' || action || ':' || monitor, ' ') FROM
	       (SELECT * FROM verdicts WHERE rule = 'conn-rate' AND monitor = 1 ORDER BY id)" \
		"connect:disconnect:1 mail:disconnect:1" "verdict rows: conn-rate would disconnect (connect, MAIL), monitor = 1"
	db_is "SELECT group_concat(action || ':' || monitor, ' ') FROM verdicts WHERE rule = 'bad-rcpt-throttle' AND client = '127.6.6.3'" \
		"delay:1 delay:1" "verdict rows: the throttle would delay, monitor = 1"
	db_is "SELECT DISTINCT action FROM verdicts WHERE client = '127.5.5.7'" disconnect \
		"verdict rows: the ban would disconnect"
	ok "log: monitor: would ... banned" grep -q 'monitor: would .*client=127\.5\.5\.7 .*banned key=127\.5\.5\.0/24' "$T/fg.log"
	ok "log: monitor: would ... conn-rate (would=disconnect)" \
		grep -q 'monitor: would .*rule=conn-rate .*would=disconnect' "$T/fg.log"
	ok "reload with monitor = false" fgs_reload 's/^monitor = true;/monitor = false;/'
	out=$(smtp 127.5.5.8 --rcpt "alice@$FGS_DOM")
	like "$(reply "$out" connect)" "$X_CONNECT_421" "monitor off: the ban is enforced again"
}

# ---- 9 and 7. floodgate down, then restarted on the same database -----

sc_down_and_restart() {
	echo "# ---- floodgate down: the MTA's default action; then restarted"
	local out t0=$SECONDS
	fg_stop "$FGS_FG_PID"
	is "$?" 0 "floodgate stops (SIGTERM) with status 0"
	fgs_forget "$FGS_FG_PID"
	echo "# floodgate took $((SECONDS - t0)) s to stop"
	mv "$T/fg.log" "$T/fg.log.1"

	out=$(smtp 127.9.9.3 --rcpt "alice@$FGS_DOM" --data); show "down, contrib settings" "$out"
	like "$(reply "$out" connect)" "$X_BANNER" "floodgate down, contrib settings: banner as usual"
	like "$(reply "$out" mail)" "$X_DOWN_MAIL" "floodgate down, contrib settings: MAIL tempfailed"
	out=$(mta_smtp "$FGS_PORT2" 127.9.9.3 --timeout 30 --rcpt "alice@$FGS_DOM" \
		--rcpt "nobody@$FGS_DOM" --data); show "down, fail-open" "$out"
	is "$(code "$out" mail) $(code "$out" "rcpt:<alice@$FGS_DOM>") $(code "$out" dot)" "250 250 250" \
		"floodgate down, fail-open settings: mail flows"
	like "$(reply "$out" "rcpt:<nobody@$FGS_DOM>")" "$X_UNKNOWN" "... and the MTA still refuses unknown users itself"

	if ! fg_start fg "$FGS_CONF"; then
		echo "Bail out! floodgate did not start again"; exit 1
	fi
	FGS_FG_PID=$FG_PID
	out=$(smtp 127.5.5.9 --rcpt "alice@$FGS_DOM"); show "after restart" "$out"
	like "$(reply "$out" connect)" "$X_CONNECT_421" "after a restart, the banned /24 is still refused at connect"
	ok "log: the refusal names the ban" grep -q 'client=127\.5\.5\.9 .*banned key=127\.5\.5\.0/24' "$T/fg.log"
	legit "after the restart"
	out=$(mta_smtp "$FGS_PORT2" 127.9.9.3 --timeout 30 --rcpt "alice@$FGS_DOM" --data)
	is "$(code "$out" "rcpt:<alice@$FGS_DOM>") $(code "$out" dot)" "250 250" \
		"the fail-open instance uses floodgate again"
	db_is "SELECT count(*) FROM events WHERE client = '127.9.9.3' AND kind = 'rcpt'" 1 \
		"... (its session is recorded; those while floodgate was down are not)"
}

# ---- all of it --------------------------------------------------------

mta_scenarios_run() {
	local t0=$SECONDS sc
	fgs_setup
	# FGS_SCENARIOS="matrix dictionary ...": a subset, for debugging
	for sc in ${FGS_SCENARIOS:-matrix rcpts_per_message conn_rate concurrency \
	    throttle exempt harvest dictionary reload monitor down_and_restart}; do
		"sc_$sc"
	done
	ok "floodgate never logged an internal error" bash -c \
		"! grep -hE 'answering (tempfail|continue)|AddressSanitizer|runtime error' '$T'/fg.log*"
	echo "# $MTA scenarios took $((SECONDS - t0)) s"
}
