#!/bin/bash
# selftest.sh - builds miltc, echo_milter and fake_milter with cc (no
# CMake), then drives the real libmilter (echo_milter) and a misbehaving
# server (fake_milter) through miltc and checks every reply.
#
#   bash t/tools/selftest.sh
#
# Environment: CC (default cc); SANITIZE (default "address,undefined"; empty
# for a plain -O2 build); KEEP=1 keeps the work directory.  Needs libmilter
# (libmilter-dev).  Prints TAP-style lines and "N passed, M failed"; exits
# non-zero on any failure.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
CC=${CC:-cc}
SANITIZE=${SANITIZE-address,undefined}
W=$(mktemp -d "${TMPDIR:-/tmp}/miltc-selftest.XXXXXX")
PIDS=()
npass=0
nfail=0
n=0

cleanup() {
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null
	done
	if [ "${KEEP:-0}" = 1 ]; then
		echo "# kept $W"
	else
		rm -rf "$W"
	fi
}
trap cleanup EXIT

ok() { n=$((n + 1)); npass=$((npass + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); nfail=$((nfail + 1)); echo "not ok $n - $*"; }
show() { sed 's/^/#   | /' "$@" 2>/dev/null | head -40; }

# ---- build ----
CFLAGS="-std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -g"
if [ -n "$SANITIZE" ]; then
	CFLAGS="$CFLAGS -O1 -fsanitize=$SANITIZE -fno-sanitize-recover=all -fno-omit-frame-pointer"
else
	CFLAGS="$CFLAGS -O2"
fi
build() {
	local out=$1; shift
	# shellcheck disable=SC2086
	if $CC $CFLAGS -o "$W/$out" "$@" >"$W/build-$out.log" 2>&1; then
		ok "build $out"
	else
		not_ok "build $out"
		show "$W/build-$out.log"
		echo "0 passed, 1 failed"
		exit 1
	fi
}
build miltc "$HERE/miltc.c" "$HERE/milterproto.c" -lpthread
build echo_milter "$HERE/echo_milter.c" -lmilter -lpthread
build fake_milter "$HERE/fake_milter.c"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# ---- helpers ----
wait_socket() {   # path pid
	for _ in $(seq 1 100); do
		[ -S "$1" ] && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# start_echo NAME SOCKSPEC SOCKPATH [flags]: echo_milter, pid in ECHO_PID
start_echo() {
	local name=$1 spec=$2 path=$3; shift 3
	"$W/echo_milter" -p "$spec" -l "$W/$name.log" "$@" 2>"$W/$name.stderr" &
	ECHO_PID=$!
	PIDS+=("$ECHO_PID")
	if [ -n "$path" ]; then
		wait_socket "$path" "$ECHO_PID"
	else
		sleep 0.5
		kill -0 "$ECHO_PID" 2>/dev/null
	fi
}

# stop_milter PID NAME: SIGTERM, then it must exit 0 without sanitizer reports
stop_milter() {
	local pid=$1 name=$2 rc
	kill "$pid" 2>/dev/null
	wait "$pid"
	rc=$?
	if [ "$rc" -eq 0 ] && ! grep -q 'Sanitizer\|runtime error' "$W/$name.stderr"; then
		ok "$name exits cleanly"
	else
		not_ok "$name exit status $rc or sanitizer report"
		show "$W/$name.stderr"
	fi
}

# run NAME WANT_RC MILTC-ARGS... (script on stdin): exit status, no sanitizer
run() {
	local name=$1 want=$2 rc; shift 2
	cat >"$W/$name.scr"
	"$W/miltc" "$@" "$W/$name.scr" >"$W/$name.out" 2>"$W/$name.err"
	rc=$?
	if grep -q 'Sanitizer\|runtime error' "$W/$name.err"; then
		not_ok "$name: sanitizer report"
		show "$W/$name.err"
		return 1
	fi
	if [ "$rc" -ne "$want" ]; then
		not_ok "$name: exit $rc, want $want"
		show "$W/$name.out" "$W/$name.err"
		return 1
	fi
	ok "$name: exit $rc"
}

# has FILE STRING [what]: FILE contains STRING (fixed)
has() {
	if grep -qF -- "$2" "$1"; then
		ok "${3:-$(basename "$1") has $2}"
	else
		not_ok "${3:-$(basename "$1") has $2}"
		show "$1"
	fi
}

hasnt() {
	if grep -qF -- "$2" "$1"; then
		not_ok "${3:-$(basename "$1") lacks $2}"
		show "$1"
	else
		ok "${3:-$(basename "$1") lacks $2}"
	fi
}

S="unix:$W/echo.sock"
if start_echo echo "$S" "$W/echo.sock"; then
	ok "echo_milter listens on $S"
else
	not_ok "echo_milter did not start"
	show "$W/echo.stderr"
	echo "$npass passed, $nfail failed"
	exit 1
fi
EPID=$ECHO_PID

# ---- 1. the example session, with macros ----
run session 0 -s "$S" <<'EOF'
connect host=client.example addr=192.0.2.7 family=4 port=4321
expect continue
macro stage=C j=mx.example {daemon_name}=smtpd v=Postfix
helo mx.attacker.example
expect continue
macro stage=M i=ABC123
mail <a@b.example>
expect continue
macro stage=R {rcpt_mailer}=error {rcpt_host}=5.1.1 "{rcpt_addr}=Recipient address rejected: User unknown"
rcpt <nobody@example.org>
expect continue
abort
quit
EOF
has "$W/session.out" "1 1 negotiate optneg - "
has "$W/session.out" "1 10 rcpt continue - "
has "$W/echo.log" "connect host=client.example addr=192.0.2.7 port=4321" \
	"milter saw the IPv4 client and port"
has "$W/echo.log" "echo[ABC123] mail <a@b.example> i=ABC123" "milter saw macro i"
has "$W/echo.log" "rcpt <nobody@example.org> {rcpt_mailer}=error {rcpt_host}=5.1.1 {rcpt_addr}=Recipient address rejected: User unknown" \
	"milter saw the rcpt macros, quoted value intact"
has "$W/echo.log" "echo[ABC123] abort" "milter saw abort"

# ---- 2. negotiation: RCPT_REJ and the symbol lists ----
run negotiate 0 -s "$S" <<'EOF'
negotiate
expect optneg flags=RCPT_REJ macro=connect:{daemon_name} macro=rcpt:{rcpt_addr} macro=rcpt:i
quit
EOF
has "$W/negotiate.out" 'flags=RCPT_REJ macros.connect="j {daemon_name} v _" macros.rcpt="i {rcpt_mailer} {rcpt_host} {rcpt_addr}"'
has "$W/echo.log" "negotiate actions=0x1ff protocol=0x1fffff" \
	"offer is version 6 with all actions and steps (as Postfix)"

# ---- 3. every kind of reply ----
run replies 0 -s "$S" <<'EOF'
connect host=client.example addr=192.0.2.7
helo h.example
mail <a@b.example>
rcpt <tempfail@x.example>
expect 451 text="451 4.7.1 try later" lines=1
expect 4xx
rcpt <reject@x.example>
expect 550 text="550 5.7.1 go away"
rcpt <multi@x.example>
expect 550 lines=3 text="550-5.7.1 line one\r\n550-5.7.1 line two\r\n550 5.7.1 line three"
rcpt <plaintempfail@x.example>
expect tempfail
rcpt <plainreject@x.example>
expect reject
rcpt <discard@x.example>
expect discard
rcpt <ok@x.example>
expect continue
rcpt <accept@x.example>
expect accept
mail <c@d.example>
rcpt <disconnect@x.example>
expect 421 text="421 4.7.0 closing connection"
quit
EOF
has "$W/replies.out" 'rcpt replycode 550 ' "multi-line reply reported"
has "$W/replies.out" '"550-5.7.1 line one\r\n550-5.7.1 line two\r\n550 5.7.1 line three"' \
	"multi-line text printed with escaped CRLF"
has "$W/replies.out" 'rcpt replycode 421 ' "421 reported"

# ---- 4. the ~2 s callback, and a message with body and EOM modification ----
run delay 0 -s "$S" <<'EOF'
connect host=client.example addr=192.0.2.7
mail <a@b.example>
rcpt <sleep2@x.example>
expect continue min_ms=1900 max_ms=4000
data
header Subject "hello world"
eoh
body "line 1\r\nline 2\r\n"
eob
expect continue mod="addheader X-Echo: yes"
quit
EOF
us=$(awk '$3 == "rcpt" { print $6 }' "$W/delay.out")
if [ -n "$us" ] && [ "$us" -ge 1900000 ] && [ "$us" -lt 4000000 ]; then
	ok "sleep2 took ${us} us"
else
	not_ok "sleep2 took '${us}' us, want about 2000000"
fi
has "$W/echo.log" "header Subject: hello world" "milter saw the header"
has "$W/echo.log" "body 16 bytes" "milter saw the body"

# ---- 5. connect families: unknown (NULL hostaddr), IPv6, unix ----
run families 0 -s "$S" <<'EOF'
connect host=unknown family=U
expect continue
helo nohost.example
expect continue
quit
connect host=v6.example addr=2001:db8::7 port=2525
expect continue
quit
connect host=local.example family=L addr=/run/client.sock
expect continue
quit
EOF
has "$W/echo.log" "connect host=unknown addr=NULL port=0" \
	"family U reaches xxfi_connect with a NULL hostaddr"
has "$W/echo.log" "connect host=v6.example addr=2001:db8::7 port=2525" "IPv6 connect"
has "$W/echo.log" "connect host=local.example addr=unix:/run/client.sock" "unix connect"

# ---- 6. garbage: libmilter drops the connection, miltc reports it ----
run garbage 0 -s "$S" -t 5 <<'EOF'
# an unknown command after OPTNEG
negotiate
packet Z "junk"
read
expect closed
# a length over libmilter's limit
negotiate
raw 7fffffff 41
read
expect closed
# HTTP instead of OPTNEG
open
raw 474554202f20485454502f312e300d0a0d0a
read
expect closed
# CONNECT without a family
negotiate
packet C "host"
read
expect closed
# MAIL without data
negotiate
packet M ""
read
expect closed
# a truncated packet, then hang up
negotiate
raw 0000000a 43 41
close
# the milter still serves
connect host=after.example addr=192.0.2.9
expect continue
quit
EOF
if kill -0 "$EPID" 2>/dev/null; then ok "echo_milter survived the garbage"; else not_ok "echo_milter died"; fi
has "$W/garbage.out" "read closed" "garbage answered by a closed connection"

# ---- 7. timeouts ----
run timeout 0 -s "$S" -t 1 <<'EOF'
connect host=client.example addr=192.0.2.7
mail <a@b.example>
rcpt <sleep2@x.example>
expect timeout min_ms=900 max_ms=1900
connect host=again.example addr=192.0.2.7
expect continue
quit
EOF
has "$W/timeout.out" "rcpt timeout - " "timeout reported"

# ---- 8. exit status: failed expect, unexpected errors, bad scripts ----
run expect-fails 1 -s "$S" <<'EOF'
connect host=client.example addr=192.0.2.7
mail <a@b.example>
rcpt <reject@x.example>
expect continue
quit
EOF
has "$W/expect-fails.err" "expect continue: want continue, got replycode 550"
run unexpected-error 1 -s "$S" -t 1 <<'EOF'
connect host=client.example addr=192.0.2.7
mail <a@b.example>
rcpt <sleep2@x.example>
quit
EOF
has "$W/unexpected-error.err" "rcpt: no reply length within 1000 ms"
run no-socket 1 -s "unix:$W/nonexistent.sock" <<'EOF'
connect host=client.example addr=192.0.2.7
EOF
has "$W/no-socket.out" "open error"
run bad-spec 1 -s "inet:localhost:1234" <<'EOF'
connect host=client.example addr=192.0.2.7
EOF
has "$W/bad-spec.out" "not libmilter syntax"
run script-error 2 -s "$S" <<'EOF'
connect host=client.example addr=192.0.2.7
frobnicate now
helo "unterminated
EOF
has "$W/script-error.err" "script-error.scr:2: unknown command"
has "$W/script-error.err" "script-error.scr:3: unterminated"
run runtime-script-error 2 -s "$S" <<'EOF'
connect host=client.example addr=192.0.2.7 port=99999
EOF
has "$W/runtime-script-error.err" "runtime-script-error.scr:1: bad port"

# ---- 9. JSON ----
run json 0 -s "$S" --json <<'EOF'
connect host=client.example addr=192.0.2.7
mail <a@b.example>
rcpt <multi@x.example>
expect 550
quit
EOF
if command -v python3 >/dev/null; then
	if python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
r = [x for x in rows if x["cmd"] == "rcpt"][0]
assert r["kind"] == "replycode" and r["code"] == 550 and r["lines"] == 3, r
assert r["text"].split("\r\n")[2] == "550 5.7.1 line three", r
n = [x for x in rows if x["cmd"] == "negotiate"][0]
assert "RCPT_REJ" in n["flags"] and "{rcpt_addr}" in n["macros"]["rcpt"], n
' "$W/json.out" 2>"$W/json.py.err"; then
		ok "JSON lines parse and carry code, text, flags, macros"
	else
		not_ok "JSON check"
		show "$W/json.out" "$W/json.py.err"
	fi
else
	ok "JSON check skipped (no python3)"
fi

# ---- 10. many sessions, concurrently ----
# Arrivals 100 ms apart: libmilter's worker pool counts a worker it has
# just woken as still idle, so a burst of simultaneous connections can
# queue behind a sleeping callback (seen: 12 at once took 6 s, not 2 s).
start=$(date +%s%N)
run concurrent 0 -s "$S" -n 6 -c 6 -q <<'EOF'
sleep ${n}00
connect host=client.example addr=192.0.2.7
mail <a@b.example>
rcpt <sleep2@x.example>
expect continue min_ms=1900
quit
EOF
ms=$(( ($(date +%s%N) - start) / 1000000 ))
if [ "$ms" -lt 4500 ]; then ok "6 sleeping sessions on 6 threads took ${ms} ms"; else not_ok "6 sleeping sessions took ${ms} ms (not concurrent?)"; fi
has "$W/concurrent.err" "6 sessions, 0 failed"
run load 0 -s "$S" -n 200 -c 8 -q --stats <<'EOF'
connect host=load${n}.example addr=192.0.2.7
macro stage=M i=Q${n}
mail <a@b.example>
rcpt <ok${t}@x.example>
expect continue
rcpt <reject@x.example>
expect 550
quit
EOF
has "$W/load.err" "200 sessions, 0 failed"
has "$W/echo.log" "echo[Q200] mail" "\${n} expands per session"

# ---- 11. QUIT_NC: the next session on the same connection ----
run quit-nc 0 -s "$S" <<'EOF'
connect host=first.example addr=192.0.2.7
mail <a@b.example>
rcpt <ok@x.example>
eob
quit_nc
connect host=second.example addr=192.0.2.8
expect continue
quit
EOF
c=$(grep -c " negotiate " "$W/quit-nc.out")
if [ "$c" = 1 ]; then ok "quit_nc kept the connection (one negotiation)"; else not_ok "quit_nc: $c negotiations"; fi
has "$W/echo.log" "connect host=second.example" "second session reached the milter"

# ---- 12. SMFIP_NOHELO and SMFIP_NR_HDR: skipped and no-reply steps ----
if start_echo echo-nr "unix:$W/nr.sock" "$W/nr.sock" -f 0x82; then
	run no-reply 0 -s "unix:$W/nr.sock" <<'EOF'
negotiate
expect optneg flags=RCPT_REJ|NOHELO|NR_HDR
connect host=client.example addr=192.0.2.7
helo skipped.example
expect skipped
mail <a@b.example>
rcpt <ok@x.example>
data
header Subject one
expect noreply
header X-Two two
expect noreply
eoh
expect continue
eob
expect continue
quit
EOF
	run send-all 0 -s "unix:$W/nr.sock" --send-all <<'EOF'
connect host=client.example addr=192.0.2.7
helo sent.example
expect continue
quit
EOF
	hasnt "$W/echo-nr.log" "helo skipped.example" "NOHELO: helo not sent"
	has "$W/echo-nr.log" "helo sent.example" "--send-all sends it anyway"
	has "$W/echo-nr.log" "header X-Two: two" "headers arrive without replies"
	stop_milter "$ECHO_PID" echo-nr
else
	not_ok "echo_milter -f 0x82 did not start"
fi

# ---- 13. inet sockets ----
started=0
for _ in 1 2 3 4 5; do
	port=$((20000 + RANDOM % 40000))
	if start_echo echo-inet "inet:$port@127.0.0.1" ""; then
		started=1
		break
	fi
done
if [ "$started" = 1 ]; then
	run inet 0 -s "inet:$port@127.0.0.1" <<'EOF'
connect host=client.example addr=192.0.2.7
expect continue
quit
EOF
	run inet-default-host 0 -s "inet:$port" <<'EOF'
connect host=client.example addr=192.0.2.7
expect continue
quit
EOF
	stop_milter "$ECHO_PID" echo-inet
else
	not_ok "echo_milter on inet did not start"
fi

# ---- 14. a misbehaving milter: errors, never crashes ----
OPTNEG="0000000d 4f 00000006 00000000 00000000"
fake_n=0
# fake NAME WANT_RC MILTC-ARGS... -- RESPONSES... (script on stdin)
fake() {
	local name=$1 want=$2 args=() sock
	shift 2
	while [ "$1" != "--" ]; do args+=("$1"); shift; done
	shift
	fake_n=$((fake_n + 1))
	sock="$W/fake$fake_n.sock"
	"$W/fake_milter" -p "$sock" "$@" 2>"$W/$name.fake.err" &
	local fpid=$!
	PIDS+=("$fpid")
	if ! wait_socket "$sock" "$fpid"; then
		not_ok "$name: fake_milter did not start"
		show "$W/$name.fake.err"
		return
	fi
	run "$name" "$want" -s "unix:$sock" "${args[@]}"
	kill "$fpid" 2>/dev/null
	wait "$fpid" 2>/dev/null
}
fake fake-toobig 0 -- "$OPTNEG" "7fffffff 63" <<'EOF'
connect host=h addr=192.0.2.1
expect proto
EOF
has "$W/fake-toobig.out" "over the limit"
fake fake-zero 0 -- "$OPTNEG" "00000000" <<'EOF'
connect host=h addr=192.0.2.1
expect proto
EOF
has "$W/fake-zero.out" "bad packet length 0"
fake fake-unknown 0 -- "$OPTNEG" "00000001 5a" <<'EOF'
connect host=h addr=192.0.2.1
expect proto
EOF
fake fake-trailing 0 -- "$OPTNEG" "00000002 63 00" <<'EOF'
connect host=h addr=192.0.2.1
expect proto
EOF
fake fake-reply-nonul 0 -- "$OPTNEG" "00000004 79 343531" <<'EOF'
connect host=h addr=192.0.2.1
expect proto
EOF
fake fake-reply-2xx 0 -- "$OPTNEG" "00000008 79 323030206f6b00" <<'EOF'
connect host=h addr=192.0.2.1
expect proto
EOF
fake fake-truncated 0 -- "$OPTNEG" "0000000a 79 3435!" <<'EOF'
connect host=h addr=192.0.2.1
expect closed
EOF
fake fake-silent 0 -t 0.5 -- "$OPTNEG" "silent" <<'EOF'
connect host=h addr=192.0.2.1
expect timeout min_ms=400 max_ms=1500
EOF
fake fake-progress 0 -- "$OPTNEG" "00000001 70 00000001 70 00000001 63" <<'EOF'
connect host=h addr=192.0.2.1
expect continue
EOF
has "$W/fake-progress.out" "connect continue - " "progress packets skipped"
has "$W/fake-progress.out" "progress=2" "progress packets counted"
fake fake-mod-at-rcpt 0 -- "$OPTNEG" "00000001 63" "00000001 63" "00000005 68 58007900" <<'EOF'
connect host=h addr=192.0.2.1
mail <a@b>
rcpt <c@d>
expect proto
EOF
fake fake-mods-at-eob 0 -- "$OPTNEG" "00000005 68 58007900 00000005 2b 3c7a3e00 00000001 63" <<'EOF'
eob
expect continue mod="addheader X: y" mod="addrcpt <z>"
EOF
fake fake-optneg-stage 0 -- "00000013 4f 00000006 00000000 00000000 00000063 6a00" <<'EOF'
negotiate
expect proto
EOF
has "$W/fake-optneg-stage.out" "unknown stage 99"
fake fake-optneg-version 0 -- "0000000d 4f 00000007 00000000 00000000" <<'EOF'
negotiate
expect proto
EOF
fake fake-optneg-actions 0 -- "0000000d 4f 00000006 00000003 00000000" <<'EOF'
negotiate actions=1
expect proto
EOF
fake fake-optneg-short 0 -- "00000005 4f 00000006" <<'EOF'
negotiate
expect proto
EOF
fake fake-optneg-unterminated 0 -- "00000012 4f 00000006 00000000 00000000 00000000 6a" <<'EOF'
negotiate
expect proto
EOF
fake fake-optneg-wrong 0 -- "00000001 63" <<'EOF'
negotiate
expect proto
EOF

# ---- the real milter ends cleanly ----
stop_milter "$EPID" echo

echo "$npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
