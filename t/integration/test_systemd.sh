#!/bin/bash
# contrib/systemd/floodgate.service: the keys it must have, its paths
# against the example configuration, "systemd-analyze verify" on it (with
# the build tree's binary), the copy the build installs, the notification
# protocol of Type=notify against a receiver standing in for systemd, and
# - as root - the daemon started the way the unit starts it: unprivileged
# from the first instruction, with the configured user already in effect.
. "$(dirname "$0")/lib.sh"

UNIT=$FG_SOURCE_DIR/contrib/systemd/floodgate.service
CONF=$FG_SOURCE_DIR/etc/floodgate.conf

ok "the unit exists" [ -f "$UNIT" ]

# ---- it parses as an INI file ----
# Every line is blank, a comment, a [Section] or Key=Value; keys only
# after a section; the three sections once each.
bad=$(awk '
	/^[ \t]*($|[#;])/ { next }
	/^\[[A-Za-z]+\]$/ { sect = $0; seen[$0]++; next }
	/^[A-Za-z][A-Za-z0-9]*=/ { if (sect == "") print NR ": key before any section"; next }
	{ print NR ": " $0 }
	END { for (s in seen) if (seen[s] > 1) print s " twice" }' "$UNIT")
is "$bad" "" "every line is a comment, a [Section] or Key=Value"
sections=$(grep -E '^\[' "$UNIT" | tr '\n' ' ')
is "$sections" "[Unit] [Service] [Install] " "sections [Unit], [Service], [Install]"

# key SECTION KEY=VALUE: the exact line is in that section.
key() {
	awk -v s="[$1]" -v l="$2" '
		/^\[/ { in_s = ($0 == s); next }
		in_s && $0 == l { found = 1 }
		END { exit !found }' "$UNIT"
}
for line in \
	'Type=notify' \
	'NotifyAccess=main' \
	'WatchdogSec=30s' \
	'SyslogFacility=mail' \
	'SyslogLevelPrefix=yes' \
	'User=floodgate' \
	'Group=floodgate' \
	'ExecStart=/usr/sbin/floodgate -f -c /etc/floodgate/floodgate.conf' \
	'ExecReload=/bin/kill -USR1 $MAINPID' \
	'Restart=on-failure' \
	'RuntimeDirectory=floodgate' \
	'StateDirectory=floodgate' \
	'UMask=0027' \
	'NoNewPrivileges=yes' \
	'ProtectSystem=strict' \
	'ProtectHome=yes' \
	'PrivateTmp=yes' \
	'ReadWritePaths=/var/lib/floodgate /run/floodgate' \
	'ProtectKernelTunables=yes' \
	'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' \
	'SystemCallArchitectures=native'
do
	ok "[Service] $line" key Service "$line"
done
ok "[Install] WantedBy=multi-user.target" key Install 'WantedBy=multi-user.target'
ok "[Unit] Description=" grep -q '^Description=.' "$UNIT"
# The reload runs kill last: a failing check (the line before) fails it.
is "$(grep '^ExecReload=' "$UNIT" | tail -1)" 'ExecReload=/bin/kill -USR1 $MAINPID' \
	"the last ExecReload= is the SIGUSR1"
ok "the unit explains the socket group for Postfix" \
	grep -q '^#.*SupplementaryGroups=postfix' "$UNIT"

# ---- the example configuration's paths are where the unit lets it write ----
ok "socket in RuntimeDirectory" grep -qx 'socket = "unix:/run/floodgate/floodgate.sock";' "$CONF"
ok "pid file in RuntimeDirectory" grep -qx 'pid_file = "/run/floodgate/floodgate.pid";' "$CONF"
ok "database in StateDirectory" grep -qx 'database = "/var/lib/floodgate/floodgate.db";' "$CONF"
ok "user is the unit's User=" grep -qx 'user = "floodgate";' "$CONF"

# ---- systemd-analyze verify ----
if command -v systemd-analyze >/dev/null 2>&1; then
	# verify wants existing executables: the build tree's binary and
	# the example configuration stand in for the installed ones.  It also
	# looks up Documentation= man pages: give it the tree's.
	mkdir -p "$T/unit" "$T/man/man5" "$T/man/man8"
	sed -e "s|/usr/sbin/floodgate |$FG_BIN |" \
	    -e "s| /etc/floodgate/floodgate.conf| $CONF|" \
	    "$UNIT" >"$T/unit/floodgate.service"
	ok "ExecStart= points at the build tree" \
		grep -qx "ExecStart=$FG_BIN -f -c $CONF" "$T/unit/floodgate.service"
	cp "$FG_SOURCE_DIR"/man/*.5 "$T/man/man5/"
	cp "$FG_SOURCE_DIR"/man/*.8 "$T/man/man8/"
	if command -v man >/dev/null 2>&1; then
		out=$(cd "$T/unit" && MANPATH=$T/man systemd-analyze verify floodgate.service 2>&1)
	else
		out=$(cd "$T/unit" && systemd-analyze verify --man=no floodgate.service 2>&1)
	fi
	rc=$?
	# verify also loads the units ours names (network.target,
	# postfix.service, ...) and speaks of any other unit of the machine
	# it comes across: only what it says of floodgate.service counts.
	# It exits 0 on "Unknown key", "Unknown system call group" and the
	# like: any word about our unit is a failure.
	ours=$(grep -E '(^|/)floodgate\.service([:]|$)' <<<"$out")
	others=$(grep -vE '(^|/)floodgate\.service([:]|$)' <<<"$out" | grep -c .)
	is "$ours" "" "systemd-analyze verify has nothing to say of floodgate.service"
	[ "$others" -gt 0 ] &&
		echo "# systemd-analyze verify: $others lines about other units, not ours"
	ok "systemd-analyze verify exits 0, or fails only over other units" \
		[ "$rc" -eq 0 -o \( -z "$ours" -a "$others" -gt 0 \) ]
	if out=$(cd "$T/unit" && systemd-analyze security --offline=yes \
	         floodgate.service 2>/dev/null | tail -1); then
		echo "# systemd-analyze security: ${out#→ }"
	fi
else
	echo "# skipped: systemd-analyze verify (systemd-analyze not installed)"
fi

# ---- the copy the build installs ----
unitdir=$(sed -n 's/^FG_SYSTEMD_UNITDIR:PATH=//p' "$FG_BUILD_DIR/CMakeCache.txt")
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$FG_BUILD_DIR/CMakeCache.txt")
if [ -n "$unitdir" ]; then
	gen=$FG_BUILD_DIR/floodgate.service
	ok "the build generates its unit" [ -f "$gen" ]
	is "$(diff <(grep -v '^Exec' "$UNIT") <(grep -v '^Exec' "$gen"))" "" \
		"it differs from contrib/systemd only in Exec lines"
	ok "its ExecStart= has this prefix ($prefix)" \
		grep -qE "^ExecStart=$prefix/[a-z]+/floodgate -f -c /.*/floodgate/floodgate.conf$" "$gen"
	if [ "$prefix" = /usr ]; then
		is "$(grep '^Exec' "$gen")" "$(grep '^Exec' "$UNIT")" \
			"with prefix /usr it is contrib/systemd's unit"
	fi
else
	echo "# skipped: generated unit (FG_SYSTEMD_UNITDIR is empty)"
fi

# ---- Type=notify: the notifications, without systemd ----
# A datagram receiver as $NOTIFY_SOCKET, as systemd would give; a
# watchdog of 400 ms as WatchdogSec= would ($WATCHDOG_USEC).
python3 "$FG_SOURCE_DIR/t/tools/dgram_sink.py" "$T/notify.sock" "$T/notify" &
fg_pids+=("$!")
wait_for "[ -S '$T/notify.sock' ]" 10
fg_conf "$T/n.conf" </dev/null
: >"$T/notify"
NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=400000 fg_start n "$T/n.conf"
n_pid=$FG_PID
wait_for "grep -q '^READY=1' '$T/notify'" 10
ok "READY=1 once started" grep -q '^READY=1\\nSTATUS=serving on unix:' "$T/notify"
ok "... not before the socket was open and the start logged" \
	[ -S "$T/n.sock" ] && grep -q started "$T/n.log"
wait_for "[ \$(grep -c '^WATCHDOG=1$' '$T/notify') -ge 3 ]" 10
ok "WATCHDOG=1, again and again, with WATCHDOG_USEC set" \
	[ "$(grep -c '^WATCHDOG=1$' "$T/notify")" -ge 3 ]
: >"$T/notify"
kill -USR1 "$n_pid"
wait_for "grep -q '^READY=1' '$T/notify'" 10
is "$(grep -v '^WATCHDOG=1$' "$T/notify" | sed 's/\\n.*//' | tr '\n' ' ')" \
	"RELOADING=1 READY=1 " "SIGUSR1: RELOADING=1, then READY=1"
ok "RELOADING=1 carries MONOTONIC_USEC" \
	grep -qE '^RELOADING=1\\nMONOTONIC_USEC=[0-9]+\\nSTATUS=reloading ' "$T/notify"
: >"$T/notify"
echo 'bogus = 1;' >>"$T/n.conf"
kill -USR1 "$n_pid"
wait_for "grep -q '^READY=1' '$T/notify'" 10
ok "a failed reload: READY=1 again, and the status says so" \
	grep -q '^READY=1\\nSTATUS=reload of .* failed' "$T/notify"
: >"$T/notify"
fg_stop "$n_pid"
is "$?" 0 "SIGTERM stops it with status 0"
ok "STOPPING=1 at the stop" grep -q '^STOPPING=1' "$T/notify"
# Without $NOTIFY_SOCKET (the daemon as before): nothing is sent.
: >"$T/notify"
fg_conf "$T/n2.conf" </dev/null
fg_start n2 "$T/n2.conf"
fg_stop "$FG_PID"
is "$(cat "$T/notify")" "" "without NOTIFY_SOCKET nothing is sent"

# ---- the daemon as the unit starts it ----
# User=floodgate: floodgate starts unprivileged, with "user" naming the
# user it already is (or, in the example file, any user: not root, it
# does not switch).  setpriv stands in for systemd: another uid from the
# start, no new privileges, UMask=0027; $T/run and $T/state for
# RuntimeDirectory= and StateDirectory=.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1; then
	as_unit() {	# as_unit LOG floodgate-args...
		local log=$1; shift
		( umask 0027
		  exec setpriv --reuid=nobody --regid=nogroup --init-groups \
			--no-new-privs "$FG_BIN" -f "$@" ) 2>"$log" &
		UPID=$!
		fg_pids+=("$UPID")
	}
	install -d -o nobody -g nogroup -m 0755 "$T/run"
	install -d -o nobody -g nogroup -m 0750 "$T/state"
	nuid=$(id -u nobody)

	# Three daemons at once (a stop takes libmilter a few seconds):
	# ex: the example configuration, its paths moved into $T;
	# u:  user names the user it already is, socket_group one of its groups;
	# g:  socket_group the user is not in (no SupplementaryGroups=).
	printf '%s\n' 'user = "nobody"; socket_group = "nogroup";' \
		"pid_file = \"$T/run/u.pid\";" 'flush_interval = "100ms";' \
		'exempt = { networks = [ ]; };' >"$T/u.conf"
	printf '%s\n' 'user = "nobody"; socket_group = "root"; pid_file = "";' >"$T/g.conf"
	chmod 0644 "$T/u.conf" "$T/g.conf"
	as_unit "$T/ex.log" -c "$CONF" -p "unix:$T/run/ex.sock" \
		-d "$T/state/ex.db" -P "$T/run/ex.pid"
	ex_pid=$UPID
	as_unit "$T/u.log" -c "$T/u.conf" -p "unix:$T/run/u.sock" -d "$T/state/u.db"
	u_pid=$UPID
	as_unit "$T/g.log" -c "$T/g.conf" -p "unix:$T/run/g.sock" -d "$T/state/g.db"
	g_pid=$UPID
	for n in ex u g; do
		wait_for "[ -S '$T/run/$n.sock' ] && grep -qs started '$T/$n.log'" 15
	done

	ok "unprivileged on the example file (user = \"floodgate\"): starts" \
		grep -q "running as uid $nuid" "$T/ex.log"

	ok "already the configured user: starts" grep -q "running as uid $nuid" "$T/u.log"
	is "$(grep -c -E 'warning|error' "$T/u.log")" 0 "without a warning"
	uid=$(awk '/^Uid:/ {print $2 $3 $4 $5}' /proc/$u_pid/status 2>/dev/null)
	is "$uid" "$nuid$nuid$nuid$nuid" "runs as that user (real, effective, saved, fs)"
	is "$(stat -c '%a %U:%G' "$T/run/u.sock" 2>/dev/null)" "660 nobody:nogroup" \
		"socket 0660 in socket_group"
	is "$(stat -c '%a %U' "$T/state/u.db" 2>/dev/null)" "640 nobody" "database 0640, its own"
	is "$(stat -c '%a' "$T/run/u.pid" 2>/dev/null)" 640 "pid file 0640 under UMask=0027"
	is "$(cat "$T/run/u.pid" 2>/dev/null)" "$u_pid" "pid file holds the pid"
	printf 'connect host=c.example addr=192.0.2.20 family=4 port=4321\nexpect continue\nquit\n' |
		"$MILTC" -s "unix:$T/run/u.sock" -t 10 -q -
	ok "it answers a session" [ $? -eq 0 ]
	kill -USR1 "$u_pid"
	wait_for "grep -q 'configuration reloaded' '$T/u.log'" 10
	ok "ExecReload's SIGUSR1 reloads" grep -q 'configuration reloaded' "$T/u.log"
	out=$(setpriv --reuid=nobody --regid=nogroup --init-groups --no-new-privs \
		"$FG_BIN" -n -c "$T/u.conf" 2>&1)
	is "$out" "configuration OK" "ExecReload's check (-n) works as the user"

	ok "socket_group without membership: still starts" grep -q started "$T/g.log"
	ok "and warns that it cannot set the socket's group" \
		grep -q "warning: socket $T/run/g.sock: cannot set group root: Operation not permitted" "$T/g.log"
	is "$(stat -c %G "$T/run/g.sock" 2>/dev/null)" nogroup "the socket keeps the user's group"

	kill -TERM "$ex_pid" "$u_pid" "$g_pid" 2>/dev/null
	for n in ex u g; do
		eval "wait \$${n}_pid"; rc=$?
		is "$rc" 0 "SIGTERM stops $n with status 0"
	done
	ok "pid files removed" [ ! -e "$T/run/u.pid" -a ! -e "$T/run/ex.pid" ]
	n=$(sqlite3 "$T/state/u.db" "SELECT count(*) FROM events WHERE kind <> 'close'" 2>/dev/null)
	is "$n" 1 "the event was written"
else
	echo "# skipped: the daemon as the unit runs it (needs root and setpriv)"
fi

done_testing
