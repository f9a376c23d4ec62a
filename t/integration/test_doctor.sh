#!/bin/bash
# floodgatectl doctor against the MTAs the other tests run: a real
# sendmail 8.17 and a Postfix without chroot (t/mta/mta.sh), both on the
# build tree's floodgate.  Everything right: every line OK, exit 0.  Then
# one thing broken at a time, and doctor must FAIL on that check and name
# it.  The chrooted Postfix of Debian's package: test_package.sh.
. "$(dirname "$0")/lib.sh"
. "$FG_SOURCE_DIR/t/mta/mta.sh"

if [ "$(id -u)" -ne 0 ]; then
	echo "# SKIP: private MTAs need root"
	done_testing
fi
trap 'mta_stop_all; fg_cleanup' EXIT

CTL=$FG_BUILD_DIR/ctl/floodgatectl
SOCK=$T/fg.sock
{
	echo "socket = \"unix:$SOCK\";"
	echo 'socket_mode = "0660"; socket_group = "postfix"; max_delay = "8s";'
} | fg_conf "$T/fg.conf"

# doctor ARGS...: doctor on $T/fg.conf; output in $T/doc.out, exit
# status in DOC_RC.
doctor() {
	"$CTL" -c "$T/fg.conf" doctor "$@" >"$T/doc.out" 2>&1
	DOC_RC=$?
	sed 's/^/#   /' "$T/doc.out"
}
# level CHECK: the level doctor gave CHECK.
level() { awk -v c="$1:" '$2 == c { print $1 }' "$T/doc.out"; }
# fails_only CHECK: CHECK is FAIL, exit status 2, no other line FAILs.
fails_only() {
	[ "$(level "$1")" = FAIL ] && [ "$DOC_RC" -eq 2 ] &&
		[ "$(grep -c '^FAIL' "$T/doc.out")" -eq 1 ]
}
all_ok() {
	[ "$DOC_RC" -eq 0 ] && ! grep -qv '^OK ' "$T/doc.out"
}

fg_start fg "$T/fg.conf" || done_testing

# ---- sendmail ----
sm_port=$(mta_free_port)
if sendmail_start "$T/sm" "$sm_port" "unix:$SOCK"; then
	out=$(mta_smtp "$sm_port" 127.0.0.2 --rcpt alice@floodgate.test --data 2>&1)
	ok "sendmail passes mail through floodgate" grep -q '^dot 250' <<<"$out"
	CF=$T/sm/sendmail.cf
	doctor --sendmail-cf "$CF"
	ok "sendmail as the snippet says: every check OK, exit 0" all_ok
	for c in socket reach protocol default-action timeout recipients; do
		is "$(level "sendmail-$c")" OK "sendmail-$c is checked"
	done
	is "$(level floodgate-answers)" OK "floodgate-answers is checked"

	sed 's/R:10s/R:5s/' "$CF" >"$T/bad.cf"
	doctor --sendmail-cf "$T/bad.cf"
	ok "T=R:5s below max_delay 8s: sendmail-timeout FAILs" fails_only sendmail-timeout
	ok "... and the fix names R:" grep -q '^FAIL  sendmail-timeout: .*fix: .*R:18s' "$T/doc.out"

	sed "s|S=unix:$SOCK|S=unix:$T/elsewhere.sock|" "$CF" >"$T/bad.cf"
	doctor --sendmail-cf "$T/bad.cf"
	ok "a filter on another socket: sendmail-socket FAILs" fails_only sendmail-socket

	sed 's/^\(Xfloodgate.*\)F=T/\1F=R/' "$CF" >"$T/bad.cf"
	doctor --sendmail-cf "$T/bad.cf"
	ok "F=R: sendmail-default-action FAILs" fails_only sendmail-default-action

	sed 's/^\(Xfloodgate.*\)F=T, /\1/' "$CF" >"$T/bad.cf"
	doctor --sendmail-cf "$T/bad.cf"
	is "$(level sendmail-default-action)" WARN "no F= at all: sendmail-default-action WARNs"
	is "$DOC_RC" 1 "... exit status 1"

	{ cat "$CF"; echo 'DLlocal:luser'; } >"$T/bad.cf"
	doctor --sendmail-cf "$T/bad.cf"
	ok "a luser relay: sendmail-recipients FAILs" fails_only sendmail-recipients
	sendmail_stop "$T/sm"
else
	ok "sendmail starts" false
fi

# ---- Postfix without chroot ----
pf_port=$(mta_free_port $((sm_port + 1)))
if postfix_start "$T/pf" "$pf_port" "unix:$SOCK"; then
	PF=$T/pf/etc
	out=$(mta_smtp "$pf_port" 127.0.0.2 --rcpt alice@floodgate.test --data 2>&1)
	ok "Postfix passes mail through floodgate" grep -q '^dot 250' <<<"$out"
	doctor --postfix-config "$PF"
	ok "Postfix as the snippet says: every check OK, exit 0" all_ok
	for c in socket reach protocol default-action timeout recipients; do
		is "$(level "postfix-$c")" OK "postfix-$c is checked"
	done

	chmod 0600 "$SOCK"
	doctor --postfix-config "$PF"
	ok "socket mode 0600: postfix-reach FAILs" fails_only postfix-reach
	ok "... and says user postfix cannot write" \
		grep -q 'postfix-reach: user postfix cannot write' "$T/doc.out"
	chmod 0660 "$SOCK"

	postconf -c "$PF" -e 'local_recipient_maps ='
	doctor --postfix-config "$PF"
	ok "empty local_recipient_maps: postfix-recipients FAILs" fails_only postfix-recipients
	postconf -c "$PF" -e 'milter_command_timeout = 8s' \
		'local_recipient_maps = inline:{ alice=ok }'
	doctor --postfix-config "$PF"
	ok "milter_command_timeout 8s: postfix-timeout FAILs" fails_only postfix-timeout
	postconf -c "$PF" -e 'milter_command_timeout = 10s'
	postconf -c "$PF" -X milter_default_action
	doctor --postfix-config "$PF"
	is "$(level postfix-default-action)" WARN "milter_default_action left to the default: WARN"
	is "$DOC_RC" 1 "... exit status 1"
	postfix_stop "$T/pf"
else
	ok "Postfix starts" false
fi

# ---- floodgate down ----
fg_stop "$FG_PID"
doctor --sendmail-cf "$T/sm/sendmail.cf"
ok "floodgate stopped: floodgate-answers FAILs" fails_only floodgate-answers

done_testing
