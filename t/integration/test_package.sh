#!/bin/bash
# The Debian package, as a new user meets it on Debian's own Postfix.
#
# Builds floodgate's .deb from a copy of the tree (dpkg-buildpackage -b,
# nocheck), runs lintian (no error, no warning), installs it with dpkg,
# and runs a Postfix laid out as Debian ships it: master.cf from the
# postfix package (smtpd chrooted), queue_directory /var/spool/postfix
# with the chroot populated by the package's own configure-instance.sh,
# local delivery into a real mailbox, and README.Debian's postconf line
# applied and reloaded.  floodgate runs as the unit would start it: the
# installed binary, as root dropping to user floodgate, on the installed
# configuration -- with two changes only, made in a copy: loopback is no
# longer exempt (the test clients are 127.x hosts) and the dictionary rule
# bans after a few guesses instead of tarpitting for minutes.  A message
# is delivered, a dictionary attack is refused, "floodgatectl doctor"
# says OK everywhere; then one thing is broken at a time (the socket
# outside the chroot; milter_command_timeout below max_delay; unknown
# recipients accepted at RCPT) and doctor must FAIL on it.  Finally the
# package is purged and what is left is checked.
#
# The machine's own /var/spool/postfix is never touched: the test runs in
# a private mount namespace with a tmpfs there (and private copies of
# /etc/passwd and /etc/group with one mail user added, once the package's
# postinst has made its system user).  dpkg itself works on the real
# system: the package is installed and purged for real, so the test
# refuses to run when floodgate is already installed.
#
# Needs root, dpkg-dev, debhelper, lintian, postfix (contrib/dev/deps.sh).

if [ "${FG_PKG_NS:-}" != 1 ] && [ "$(id -u)" -eq 0 ] &&
	command -v unshare >/dev/null; then
	FG_PKG_NS=1 exec unshare --mount --propagation private bash "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
. "$FG_SOURCE_DIR/t/mta/mta.sh"

if [ "$(id -u)" -ne 0 ] || [ "${FG_PKG_NS:-}" != 1 ]; then
	echo "# SKIP: needs root (dpkg -i, a private mount namespace)"
	done_testing
fi
for tool in dpkg-buildpackage dh lintian postconf; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "# SKIP: $tool not installed (contrib/dev/deps.sh)"
		done_testing
	fi
done
if [ "$(dpkg-query -W -f='${db:Status-Status}' floodgate 2>/dev/null)" != "" ] &&
	[ "$(dpkg-query -W -f='${db:Status-Status}' floodgate 2>/dev/null)" != not-installed ]; then
	echo "# floodgate is installed on this machine; this test installs and"
	echo "# purges its own package and will not touch that one"
	ok "no floodgate package installed before the test" false
	done_testing
fi

installed=0
fgd_pid=
cleanup() {
	mta_stop_all
	if [ -n "$fgd_pid" ]; then
		kill -TERM "$fgd_pid" 2>/dev/null
		wait "$fgd_pid" 2>/dev/null
	fi
	if [ "$installed" = 1 ]; then
		dpkg --purge floodgate >/dev/null 2>&1
	fi
	fg_cleanup
}
trap cleanup EXIT

# ---- build ----
SRC=$T/src
mkdir -p "$SRC"
if git -C "$FG_SOURCE_DIR" rev-parse --git-dir >/dev/null 2>&1; then
	git -C "$FG_SOURCE_DIR" ls-files -co --exclude-standard -z |
		grep -zv '^build' | tar -C "$FG_SOURCE_DIR" --null -cf - -T - |
		tar -C "$SRC" -xf -
else
	tar -C "$FG_SOURCE_DIR" --exclude='./build*' -cf - . | tar -C "$SRC" -xf -
fi
(cd "$SRC" && DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" \
	dpkg-buildpackage -us -uc -b >"$T/build.log" 2>&1)
rc=$?
is "$rc" 0 "dpkg-buildpackage -us -uc -b builds the package"
[ "$rc" -eq 0 ] || tail -30 "$T/build.log" | sed 's/^/#   /'
version=$(cd "$SRC" && dpkg-parsechangelog -S Version)
DEB=$T/floodgate_${version}_$(dpkg --print-architecture).deb
CHANGES=$T/floodgate_${version}_$(dpkg --print-architecture).changes
ok "it made $(basename "$DEB")" [ -f "$DEB" ]
[ -f "$DEB" ] || done_testing
is "$(dpkg-deb -f "$DEB" Version)" "$("$FG_BIN" -V | awk '{print $2}')" \
	"the package's version is floodgate -V's"

out=$(lintian --fail-on error,warning "$CHANGES" 2>&1); rc=$?
grep -v 'running with root privileges' <<<"$out" | sed 's/^/#   /'
is "$rc" 0 "lintian: no error, no warning"
is "$(grep -cE '^[EW]: ' <<<"$out")" 0 "lintian lists no E: or W: tag"

files=$(dpkg-deb -c "$DEB" | awk '{print $6}' | sed 's|^\./|/|')
for f in /usr/sbin/floodgate /usr/sbin/floodgatectl \
	/usr/share/man/man8/floodgatectl.8.gz /usr/share/doc/floodgate/copyright \
	/usr/share/doc/floodgate/README.Debian /lib/systemd/system/floodgate.service \
	/lib/systemd/system/floodgate.service.d/postfix-socket.conf
do
	ok "the package has $f" grep -qx "$f" <<<"$files"
done
is "$(dpkg-deb -I "$DEB" conffiles)" /etc/floodgate/floodgate.conf \
	"the configuration is the one conffile"

# ---- install, into a Postfix spool of our own ----
mount -t tmpfs -o mode=0755 fg-spool /var/spool/postfix || {
	ok "a private /var/spool/postfix" false; done_testing; }
out=$(dpkg -i "$DEB" 2>&1); rc=$?
is "$rc" 0 "dpkg -i installs it"
[ "$rc" -eq 0 ] && installed=1
[ "$rc" -eq 0 ] || { sed 's/^/#   /' <<<"$out"; done_testing; }
ok "the postinst made the system user floodgate" getent passwd floodgate
is "$(stat -c '%U:%G %a' /var/lib/floodgate)" "floodgate:floodgate 750" \
	"/var/lib/floodgate is floodgate:floodgate 0750"
is "$(stat -c '%U:%G %a' /var/spool/postfix/floodgate)" "floodgate:postfix 2750" \
	"/var/spool/postfix/floodgate is floodgate:postfix 2750"
CONF=/etc/floodgate/floodgate.conf
is "$(/usr/sbin/floodgate -n -c "$CONF" 2>&1)" "configuration OK" \
	"the installed floodgate accepts the installed configuration"
ok "its socket is inside Postfix's chroot" \
	grep -qx 'socket = "unix:/var/spool/postfix/floodgate/floodgate.sock";' "$CONF"
ok "with group postfix" grep -qx 'socket_group = "postfix";' "$CONF"

# The test's copy: loopback not exempt, a quick dictionary rule.
TCONF=$T/floodgate.conf
awk '
	/^rules = \($/ { skip = 1
		print "rules = ({ name = \"dictionary\"; type = \"invalid_recipients\";"
		print "  per = \"network\"; limit = 5; window = \"1h\";"
		print "  ladder = ({ over = 1; action = \"tempfail\"; },"
		print "            { over = 5; action = \"ban\"; ban = \"1h\"; }); });"
		next }
	skip && /^\);$/ { skip = 0; next }
	skip { next }
	{ sub(/networks = \[ "127.0.0.0\/8", "::1" \];/, "networks = [ ];"); print }
' "$CONF" >"$TCONF"
is "$(/usr/sbin/floodgate -n -c "$TCONF" 2>&1)" "configuration OK" "the test's copy loads"
is "$(diff "$CONF" "$TCONF" | grep -c '^> socket')" 0 "... with the installed socket"

# A mail user (private passwd and group), mailboxes in $T/mail.
uid=64000
while getent passwd "$uid" >/dev/null || getent group "$uid" >/dev/null; do
	uid=$((uid + 1))
done
cp /etc/passwd "$T/passwd"; cp /etc/group "$T/group"
echo "fgmail:x:$uid:$uid:floodgate test:/nonexistent:/usr/sbin/nologin" >>"$T/passwd"
echo "fgmail:x:$uid:" >>"$T/group"
chmod 644 "$T/passwd" "$T/group"
mount --bind "$T/passwd" /etc/passwd && mount --bind "$T/group" /etc/group
mkdir -m 1777 "$T/mail"

# The chroot, as Debian's postfix service prepares it.
mkdir -p "$T/prep"
printf '%s\n' 'compatibility_level = 3.6' 'queue_directory = /var/spool/postfix' \
	>"$T/prep/main.cf"
cp /usr/share/postfix/master.cf.dist "$T/prep/master.cf"
ok "configure-instance.sh populates the chroot" \
	env MAIL_CONFIG="$T/prep" sh /usr/lib/postfix/configure-instance.sh -
ok "... with etc/services" [ -f /var/spool/postfix/etc/services ]

PF=$T/pf/etc
port=$(mta_free_port)
FG_POSTFIX_MASTER_CF=/usr/share/postfix/master.cf.dist \
FG_POSTFIX_QUEUE=/var/spool/postfix FG_POSTFIX_SNIPPET=/dev/null \
	postfix_start "$T/pf" "$port" unix:/unused \
	'local_recipient_maps = proxy:unix:passwd.byname $alias_maps' \
	"mail_spool_directory = $T/mail" 'smtpd_milters =' ||
	{ ok "Postfix starts" false; done_testing; }
is "$(postconf -c "$PF" -M | awk -v s="127.0.0.1:$port" '$1 == s {print $5}')" y \
	"smtpd runs chrooted, as master.cf ships"

# README.Debian's line, then a reload (inside Postfix's PID namespace,
# where its pid file makes sense).
line=$(sed -n "/^    postconf -e 'smtpd_milters/,/[^\\\\]$/p" \
	"$FG_SOURCE_DIR/debian/README.Debian" | tr -d '\\\n')
echo "# README.Debian: $line"
pf_reload() {
	nsenter --target "$(cat "$T/pf/init.pid")" --pid -- \
		/usr/sbin/postfix -c "$PF" reload >/dev/null 2>&1
	sleep 1
}
eval "set -- ${line#*postconf }"
ok "README.Debian's postconf line applies" postconf -c "$PF" "$@"
ok "postfix reload" pf_reload

# ---- floodgate as the unit runs it ----
install -d -o floodgate -g floodgate -m 0755 /run/floodgate
fgd_start() {	# fgd_start CONFIG [options]
	# shellcheck disable=SC2086
	${FGD_AS:-} /usr/sbin/floodgate -f -c "$@" 2>"$T/fgd.log" &
	fgd_pid=$!
	wait_for "grep -q started '$T/fgd.log'" 15 ||
		{ sed 's/^/#   /' "$T/fgd.log"; return 1; }
}
fgd_stop() { kill -TERM "$fgd_pid"; wait "$fgd_pid"; fgd_pid=; }
ok "floodgate starts" fgd_start "$TCONF"
is "$(ps -o user= -p "$fgd_pid")" floodgate "... and runs as user floodgate"
# Started as root, the socket is made before the privileges are dropped
# and stays root's; its group is what Postfix needs.
is "$(stat -c '%U:%G %a' /var/spool/postfix/floodgate/floodgate.sock)" \
	"root:postfix 660" "its socket is root:postfix 0660"

# As the unit starts it: User=floodgate from the start, not a member of
# group postfix.  The setgid directory gives the socket its group.
fgd_stop
FGD_AS="setpriv --reuid=floodgate --regid=floodgate --init-groups"
ok "floodgate starts as user floodgate, as the unit runs it" fgd_start "$TCONF"
FGD_AS=
is "$(ps -o user= -p "$fgd_pid")" floodgate "... and runs as floodgate"
is "$(stat -c '%U:%G %a' /var/spool/postfix/floodgate/floodgate.sock)" \
	"floodgate:postfix 660" "... and its socket is floodgate:postfix 0660 too"
is "$(grep -c 'chown' "$T/fgd.log")" 0 "... with no chown warning"

out=$(mta_smtp "$port" 127.0.1.2 --rcpt fgmail@floodgate.test \
	--data='Subject: hello\n\nfirst message' 2>&1)
ok "a message to a local user is taken" grep -q '^dot 250' <<<"$out"
ok "... and delivered into the mailbox" \
	wait_for "grep -q 'first message' '$T/mail/fgmail' 2>/dev/null" 20

for s in 1 2 3 4; do
	mta_smtp "$port" 127.0.2.$((s + 10)) --rcpt "nobody$s@floodgate.test" \
		--rcpt "admin$s@floodgate.test" --rcpt "info$s@floodgate.test" >/dev/null 2>&1
done
out=$(mta_smtp "$port" 127.0.2.99 --rcpt fgmail@floodgate.test 2>&1)
echo "$out" | sed 's/^/#   /'
ok "after 12 guessed recipients the network is refused" \
	grep -qE '^(connect|mail|rcpt:[^ ]*) 4[0-9][0-9] ' <<<"$out"
out=$(mta_smtp "$port" 127.0.1.3 --rcpt fgmail@floodgate.test --data 2>&1)
ok "another network still gets its mail through" grep -q '^dot 250' <<<"$out"
ok "the installed floodgatectl lists the ban" \
	wait_for "/usr/sbin/floodgatectl -c '$TCONF' bans 2>/dev/null | grep -q '127\.0\.2\.0/24'" 10

# ---- doctor ----
DOC=/usr/sbin/floodgatectl
doctor() {	# doctor [floodgatectl options]: output in $T/doc.out, DOC_RC
	"$DOC" "$@" doctor --postfix-config "$PF" >"$T/doc.out" 2>&1
	DOC_RC=$?
	sed 's/^/#   /' "$T/doc.out"
}
level() { awk -v c="$1:" '$2 == c { print $1 }' "$T/doc.out"; }
fails_only() {
	[ "$(level "$1")" = FAIL ] && [ "$DOC_RC" -eq 2 ] &&
		[ "$(grep -c '^FAIL' "$T/doc.out")" -eq 1 ]
}
doctor
ok "doctor on the installed configuration: all OK, exit 0" \
	eval '[ "$DOC_RC" -eq 0 ] && ! grep -qv "^OK " "$T/doc.out"'
is "$(grep -c '^OK ' "$T/doc.out")" 8 "... eight checks"
ok "... and it tried the socket inside the chroot" \
	grep -q '^OK    postfix-reach: smtpd (service 127.0.0.1:[0-9]*) runs chrooted in /var/spool/postfix' "$T/doc.out"

# 1. The socket outside the chroot: where it was before the package.
fgd_stop
sed 's|^socket = .*|socket = "unix:/run/floodgate/floodgate.sock";|' "$TCONF" >"$T/outside.conf"
fgd_start "$T/outside.conf"
postconf -c "$PF" -e 'smtpd_milters = unix:/run/floodgate/floodgate.sock'
pf_reload
out=$(mta_smtp "$port" 127.0.1.4 --rcpt fgmail@floodgate.test 2>&1)
ok "socket outside the chroot: Postfix cannot reach floodgate (451)" \
	grep -q '^mail 451 ' <<<"$out"
doctor -c "$T/outside.conf"
ok "doctor: postfix-reach FAILs, and nothing else" fails_only postfix-reach
ok "... saying the socket is outside the chroot" \
	grep -q '^FAIL  postfix-reach: socket outside the chroot' "$T/doc.out"
fgd_stop
fgd_start "$TCONF"
postconf -c "$PF" -e 'smtpd_milters = unix:/floodgate/floodgate.sock'
pf_reload

# 2. max_delay (8s) above the MTA's timeout.
postconf -c "$PF" -e 'milter_command_timeout = 5s'
doctor
ok "milter_command_timeout 5s: postfix-timeout FAILs, and nothing else" \
	fails_only postfix-timeout
postconf -c "$PF" -X milter_command_timeout

# 3. Unknown recipients accepted at RCPT time.
postconf -c "$PF" -e 'local_recipient_maps ='
pf_reload
out=$(mta_smtp "$port" 127.0.1.5 --rcpt nosuchuser@floodgate.test 2>&1)
ok "empty local_recipient_maps: an unknown user is accepted at RCPT" \
	grep -q '^rcpt:<nosuchuser@floodgate.test> 250 ' <<<"$out"
sed 's/^/#   /' <<<"$out"
doctor
ok "doctor: postfix-recipients FAILs, and nothing else" fails_only postfix-recipients

# ---- purge ----
fgd_stop
postfix_stop "$T/pf"
out=$(dpkg --purge floodgate 2>&1); rc=$?
is "$rc" 0 "dpkg --purge floodgate"
[ "$rc" -eq 0 ] && installed=0
[ "$rc" -eq 0 ] || sed 's/^/#   /' <<<"$out"
ok "the package is gone from dpkg's database" \
	eval '[ "$(dpkg-query -W -f="\${db:Status-Status}" floodgate 2>/dev/null)" = "" ] ||
	      [ "$(dpkg-query -W -f="\${db:Status-Status}" floodgate 2>/dev/null)" = not-installed ]'

for p in /etc/floodgate /var/lib/floodgate /var/spool/postfix/floodgate \
	/run/floodgate /usr/sbin/floodgate /usr/sbin/floodgatectl \
	/lib/systemd/system/floodgate.service /usr/share/doc/floodgate
do
	ok "purge leaves no $p" [ ! -e "$p" ]
done
is "$(find /etc/systemd -name 'floodgate*' 2>/dev/null)" "" \
	"no unit links left in /etc/systemd"
ok "the system user floodgate stays (files may still carry its uid)" \
	getent passwd floodgate

done_testing
