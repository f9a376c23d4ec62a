#!/bin/bash
# The daemon itself: check mode, unix and inet sockets, socket and database
# modes, pid file, SIGUSR1 reload (good and bad file) while answering,
# privilege drop, refusal to run as root, SIGTERM.
. "$(dirname "$0")/lib.sh"

# ---- check mode ----
out=$("$FG_BIN" -n -c "$FG_SOURCE_DIR/etc/floodgate.conf" 2>&1); rc=$?
is "$rc" 0 "-n on the example configuration exits 0"
is "$out" "configuration OK" "-n prints configuration OK"

printf 'socket = "tcp:1";\nqueue_size = 5;\ncolour = 1;\n' >"$T/bad.conf"
out=$("$FG_BIN" -n -c "$T/bad.conf" 2>&1); rc=$?
ok "-n on a bad file exits non-zero" [ "$rc" -ne 0 ]
is "$(echo "$out" | wc -l)" 3 "-n reports every error, not just the first"
ok "errors read file:line: key: reason" grep -q "^$T/bad.conf:2: queue_size: 5 is out of range" <<<"$out"
out=$("$FG_BIN" -n -c "$T/missing.conf" 2>&1); rc=$?
ok "-n on a missing file exits non-zero" [ "$rc" -ne 0 ]
ok "and says the file cannot be opened" grep -q "missing.conf: cannot open" <<<"$out"
out=$("$FG_BIN" -n -c "$FG_SOURCE_DIR/etc/floodgate.conf" -p "tcp:25" 2>&1); rc=$?
ok "-p is validated like the file" [ "$rc" -ne 0 ]
"$FG_BIN" -V | grep -q '^floodgate [0-9]'
ok "-V prints the version" [ $? -eq 0 ]

# An inet socket beyond the loopback only on purpose: the milter protocol
# has no authentication.
for spec in "inet:8891" "inet:8891@0.0.0.0" "inet6:8891@[::]" "inet:8891@192.0.2.1"; do
	printf 'log_level = "info";\nsocket = "%s";\n' "$spec" >"$T/pub.conf"
	out=$("$FG_BIN" -n -c "$T/pub.conf" 2>&1); rc=$?
	is "$rc" 1 "-n refuses socket = \"$spec\" without socket_public"
	ok "... and says why at file:line: socket:" \
		grep -qF "$T/pub.conf:2: socket: \"$spec\" " <<<"$out"
	ok "... and how to allow it" grep -q "set socket_public = true and firewall the port$" <<<"$out"
	printf 'socket_public = true;\n' >>"$T/pub.conf"
	out=$("$FG_BIN" -n -c "$T/pub.conf" 2>&1); rc=$?
	is "$rc:$out" "0:configuration OK" "... and accepts it with socket_public = true"
done
for spec in "inet:8891@127.0.0.1" "inet:8891@[127.0.0.2]" "inet6:8891@[::1]" "inet:8891@localhost"; do
	printf 'socket = "%s";\n' "$spec" >"$T/lo.conf"
	out=$("$FG_BIN" -n -c "$T/lo.conf" 2>&1)
	is "$out" "configuration OK" "-n accepts the loopback socket $spec"
done
out=$("$FG_BIN" -n -c "$T/lo.conf" -p "inet:8891" 2>&1); rc=$?
ok "-p inet:PORT is refused like the setting" [ "$rc" -ne 0 ]
ok "... as -p: socket:" grep -q '^-p:1: socket: "inet:8891" listens on every interface' <<<"$out"
printf 'socket_public = true;\n' >"$T/pubok.conf"
out=$("$FG_BIN" -n -c "$T/pubok.conf" -p "inet:8891" 2>&1)
is "$out" "configuration OK" "... and accepted when the file sets socket_public"

# ---- start on a unix socket ----
fg_conf "$T/a.conf" <<'EOF2'
rules = ( { name = "conn"; type = "connection_rate"; per = "address";
            limit = 100; window = "1m"; action = "disconnect"; } );
exempt = { networks = [ ]; };
EOF2
fg_start a "$T/a.conf"
ok "daemon starts on a unix socket" [ -S "$T/a.sock" ]
is "$(stat -c %a "$T/a.sock")" 660 "socket mode is 0660"
is "$(cat "$T/a.pid" 2>/dev/null)" "$FG_PID" "pid file holds the daemon's pid"
ok "database created" [ -f "$T/a.db" ]
is "$(stat -c %a "$T/a.db")" 640 "database mode is 0640"

session() {
	cat <<EOF2
connect host=client.example addr=$1 family=4 port=4321
expect $2
quit
EOF2
}
session 192.0.2.10 continue | miltc a -q
ok "a session is answered" [ $? -eq 0 ]

# Reload with a tighter limit: the next connection from the same address
# is over it.
sed -i 's/limit = 100;/limit = 1;/' "$T/a.conf"
kill -USR1 "$FG_PID"
wait_for "grep -q 'configuration reloaded' '$T/a.log'" 10
ok "SIGUSR1 reloads a good file" grep -q 'configuration reloaded' "$T/a.log"
session 192.0.2.10 421 | miltc a -q
ok "the reloaded limit applies (second connection gets 421)" [ $? -eq 0 ]

# Reload a broken file: the old policy stays and the daemon answers.
printf 'queue_size = 1;\nmonitor = "maybe";\n' >>"$T/a.conf"
kill -USR1 "$FG_PID"
wait_for "grep -q 'reload failed' '$T/a.log'" 10
ok "a bad file is refused on reload" grep -q 'reload failed' "$T/a.log"
ok "every error of the bad file is logged" grep -q 'queue_size: 1 is out of range' "$T/a.log"
ok "... each of them" grep -q 'monitor: expected true or false' "$T/a.log"
session 192.0.2.10 421 | miltc a -q
ok "the old policy stays in force" [ $? -eq 0 ]
session 192.0.2.99 continue | miltc a -q
ok "and the daemon keeps answering" [ $? -eq 0 ]

fg_stop "$FG_PID"; rc=$?
is "$rc" 0 "SIGTERM stops the daemon with status 0"
ok "pid file removed at stop" [ ! -e "$T/a.pid" ]
ok "the stop is logged" grep -q 'stopped' "$T/a.log"
n=$(sqlite3 "$T/a.db" "SELECT sum(n) FROM events WHERE kind = 'connect'")
is "$n" 4 "a clean stop flushed every event"

# ---- signals during start-up ----
# SIGUSR1 from the moment main() runs (its configuration file is open,
# kept slow by a long valid_recipients list) until well after the start:
# every one of them is held for the signal thread, none kills the daemon.
awk 'BEGIN { for (i = 0; i < 600000; i++) printf "user%d@d%d.example\n", i, i % 997 }' >"$T/sig-list"
fg_conf "$T/sig.conf" <<EOF2
valid_recipients = "$T/sig-list";
EOF2
"$FG_BIN" -f -c "$T/sig.conf" -p "unix:$T/sig.sock" -d "$T/sig.db" -P "" 2>"$T/sig.log" &
spid=$!; fg_pids+=("$spid")
for ((i = 0; i < 3000; i++)); do
	ls -l "/proc/$spid/fd" 2>/dev/null | grep -q "$T/sig.conf" && break
	kill -0 "$spid" 2>/dev/null && ! grep -q started "$T/sig.log" || break
done
early=0
while kill -USR1 "$spid" 2>/dev/null && ! grep -q started "$T/sig.log"; do
	early=$((early + 1))
done
for ((i = 0; i < 200; i++)); do kill -USR1 "$spid" 2>/dev/null; done
echo "# $early SIGUSR1 sent while the daemon started"
ok "SIGUSR1 was sent while the configuration loaded" [ "$early" -gt 0 ]
wait_for "[ -S '$T/sig.sock' ] && grep -q 'configuration reloaded' '$T/sig.log'" 30
ok "the daemon survives SIGUSR1 from the moment it starts" kill -0 "$spid"
ok "... and reloads once it is up" grep -q 'configuration reloaded' "$T/sig.log"
session 192.0.2.13 continue | miltc sig -q
ok "... and serves a milter session" [ $? -eq 0 ]
fg_stop "$spid"; is "$?" 0 "... and stops cleanly"

# ---- inet socket ----
port=$((20000 + RANDOM % 20000))
fg_conf "$T/b.conf" </dev/null
"$FG_BIN" -f -c "$T/b.conf" -p "inet:$port@127.0.0.1" -d "$T/b.db" -P "" \
	2>"$T/b.log" &
bpid=$!; fg_pids+=("$bpid")
wait_for "grep -q started '$T/b.log'" 15
session 192.0.2.11 continue | "$MILTC" -s "inet:$port@127.0.0.1" -t 10 -q -
ok "daemon answers on an inet socket" [ $? -eq 0 ]
fg_stop "$bpid"

# ---- root and privileges ----
if [ "$(id -u)" = 0 ]; then
	printf 'user = "";\n' >"$T/root.conf"
	out=$("$FG_BIN" -f -c "$T/root.conf" -p "unix:$T/r.sock" -d "$T/r.db" -P "" 2>&1); rc=$?
	ok "refuses to run as root without a user" [ "$rc" -ne 0 ]
	ok "and says why" grep -q 'refusing to run as root' <<<"$out"

	mkdir -m 0750 "$T/priv"; chown nobody:nogroup "$T/priv"
	printf 'user = "nobody"; socket_group = "nogroup"; pid_file = "";\n' >"$T/priv.conf"
	"$FG_BIN" -f -c "$T/priv.conf" -p "unix:$T/priv/fg.sock" -d "$T/priv/fg.db" \
		2>"$T/priv.log" &
	ppid=$!; fg_pids+=("$ppid")
	wait_for "grep -q started '$T/priv.log'" 15
	uid=$(awk '/^Uid:/ {print $2 $3 $4 $5}' /proc/$ppid/status)
	nuid=$(id -u nobody)
	is "$uid" "$nuid$nuid$nuid$nuid" "runs as nobody after binding (real, effective, saved, fs)"
	is "$(stat -c %G "$T/priv/fg.sock")" nogroup "socket group is socket_group"
	is "$(stat -c %U "$T/priv/fg.db")" nobody "database belongs to the user"
	session 192.0.2.12 continue | "$MILTC" -s "unix:$T/priv/fg.sock" -t 10 -q -
	ok "the unprivileged daemon answers and records" [ $? -eq 0 ]
	fg_stop "$ppid"
	n=$(sqlite3 "$T/priv/fg.db" "SELECT count(*) FROM events WHERE kind <> 'close'")
	is "$n" 1 "the unprivileged daemon wrote its event"
	is "$(stat -c %a "$T/priv/fg.db")" 640 "database still 0640"
else
	echo "# skipping root-only checks (not root)"
fi

done_testing
