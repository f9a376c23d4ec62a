#!/bin/bash
# Where the daemon's lines go: daemonized, to syslog with facility mail
# (or the configured one) and each line's priority; in the foreground
# under systemd ($JOURNAL_STREAM naming its stderr), with journald's
# "<N>" level prefixes and without its own name.  A local receiver on a
# unix datagram socket (syslog_socket) stands in for the syslog daemon:
# the machine's /dev/log is never touched, and no journald is needed.
. "$(dirname "$0")/lib.sh"

SINK=$FG_SOURCE_DIR/t/tools/dgram_sink.py

# ---- daemonized: syslog ----
python3 "$SINK" "$T/log.sock" "$T/syslog" &
fg_pids+=("$!")
wait_for "[ -S '$T/log.sock' ]" 10
conf() {	# conf USER: the test configuration, running as USER
	printf '%s\n' "user = \"$1\"; allow_root = true; log_level = \"debug\";" \
		"syslog_socket = \"$T/log.sock\";"
}
conf "" >"$T/s.conf"
"$FG_BIN" -c "$T/s.conf" -p "unix:$T/s.sock" -d "$T/s.db" -P "$T/s.pid"
is "$?" 0 "without -f the starting process exits 0"
wait_for "[ -s '$T/s.pid' ] && grep -q started '$T/syslog'" 15
pid=$(cat "$T/s.pid" 2>/dev/null)
[ -n "$pid" ] && fg_pids+=("$pid")

# <PRI>Mmm dd hh:mm:ss floodgate[pid]: text; PRI = facility * 8 + level.
hdr='[A-Z][a-z][a-z] [ 1-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-6][0-9] floodgate\['"$pid"'\]: '
ok "the start line: mail.info (<22>), the header, the name once" \
	grep -qE "^<22>$hdr"'floodgate [^ ]+ started on ' "$T/syslog"
is "$(grep -cvE "^<[0-9]+>$hdr" "$T/syslog")" 0 "every line has the syslog header"
is "$(grep -cE "^<[0-9]+>$hdr(floodgate: |.*: (info|debug): )" "$T/syslog")" 0 \
	"no line says the name or the level again"

# A reload that changes the user warns (mail.warning, <20>), a broken
# file is refused with errors (mail.err, <19>).
conf nobody >"$T/s.conf"
kill -USR1 "$pid"
wait_for "grep -q 'take effect at the next restart' '$T/syslog'" 10
ok "a warning is mail.warning (<20>) and says \"warning: \"" \
	grep -qE "^<20>${hdr}warning: socket, database and user changes" "$T/syslog"
conf "" >"$T/s.conf"
echo 'rules = ( { name = "x"; type = "nonsense"; } );' >>"$T/s.conf"
kill -USR1 "$pid"
wait_for "grep -q 'reload failed' '$T/syslog'" 10
ok "an error is mail.err (<19>) and says \"error: \"" \
	grep -qE "^<19>${hdr}error: reload failed .*keeping the running" "$T/syslog"
ok "the configuration's own error too" \
	grep -qE "^<19>${hdr}error: $T/s.conf:[0-9]+: rules" "$T/syslog"
{ conf ""; echo 'syslog_facility = "local3";'; } >"$T/s.conf"
kill -USR1 "$pid"
wait_for "grep -q '^<158>.*configuration reloaded' '$T/syslog'" 10
ok "syslog_facility takes effect at a reload: local3.info (<158>)" \
	grep -qE "^<158>${hdr}configuration reloaded" "$T/syslog"

# The receiver restarted (a syslog daemon restarting): lines find it again.
kill -TERM "${fg_pids[0]}"; wait "${fg_pids[0]}" 2>/dev/null
rm -f "$T/log.sock"
python3 "$SINK" "$T/log.sock" "$T/syslog2" &
fg_pids+=("$!")
wait_for "[ -S '$T/log.sock' ]" 10
kill -USR1 "$pid"
wait_for "grep -q 'configuration reloaded' '$T/syslog2'" 10
ok "a restarted syslog daemon gets the next lines" \
	grep -q 'configuration reloaded' "$T/syslog2"
kill -TERM "$pid"
wait_for "! kill -0 $pid 2>/dev/null" 20
wait_for "grep -q 'stopped' '$T/syslog2'" 10
ok "the stop line" grep -qE "^<158>${hdr}stopped$" "$T/syslog2"

# ---- foreground under systemd: the journal's level prefixes ----
fg_conf "$T/j.conf" </dev/null
: >"$T/j.log"
js=$(stat -c '%d:%i' "$T/j.log")
JOURNAL_STREAM=$js "$FG_BIN" -f -c "$T/j.conf" -p "unix:$T/j.sock" \
	-d "$T/j.db" -P "" 2>>"$T/j.log" &
jpid=$!
fg_pids+=("$jpid")
wait_for "grep -q started '$T/j.log'" 15
ok "the start line: <6> and the text, the name left to journald" \
	grep -qE '^<6>floodgate [^ ]+ started on ' "$T/j.log"
is "$(grep -cvE '^<[3467]>' "$T/j.log")" 0 "every line has its level prefix"
is "$(grep -cE '^<[0-9]>(floodgate: |(info|debug): )' "$T/j.log")" 0 \
	"no line names the program or says info:"
echo 'bogus = 1;' >>"$T/j.conf"
kill -USR1 "$jpid"
wait_for "grep -q 'reload failed' '$T/j.log'" 10
ok "an error is <3> and says \"error: \"" \
	grep -qE '^<3>error: reload failed' "$T/j.log"
fg_stop "$jpid"
is "$?" 0 "SIGTERM stops it with status 0"
out=$(JOURNAL_STREAM=$js "$FG_BIN" -n -c "$T/j.conf" 2>>"$T/j.log")
ok "the check (ExecReload's -n) gives its errors <3> too" \
	grep -qE "^<3>$T/j.conf:[0-9]+: bogus: unknown setting" "$T/j.log"
# Someone else's stream (the variable inherited, stderr elsewhere): plain.
JOURNAL_STREAM=$js "$FG_BIN" -n -c "$T/j.conf" 2>"$T/plain.log"
ok "stderr that is not the journal stream: no prefixes" \
	grep -qE "^$T/j.conf:[0-9]+: bogus: " "$T/plain.log"

done_testing
