#!/bin/bash
# selftest.sh - prove the MTA test harness (t/mta/mta.sh) works, without
# floodgate: a tiny no-op milter (compiled here) that asks for rejected
# recipients (SMFIP_RCPT_REJ) and logs what it is told, a private Postfix
# and a private sendmail pointed at it, one SMTP session through each.
#
#   sudo bash t/mta/selftest.sh          (root; after contrib/dev/deps.sh)
#
# Environment: FG_BUILD_DIR (the unpacked sendmail goes to
# $FG_BUILD_DIR/t/_sendmail, default build/t/_sendmail), FG_KEEP=1 keeps
# the work directory.  Prints "ok"/"not ok" lines and "N passed, N failed";
# exits non-zero on any failure.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=t/mta/mta.sh
. "$here/mta.sh"

pass=0 fail=0 n=0
ok() { n=$((n + 1)); pass=$((pass + 1)); echo "ok $n - $*"; }
notok() { n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - $*"; }
check() {  # DESCRIPTION COMMAND...
  local d=$1; shift
  if "$@"; then ok "$d"; else notok "$d"; fi
}
has() { grep -qF -- "$2" <<<"$1"; }          # has TEXT NEEDLE
has_re() { grep -qE -- "$2" <<<"$1"; }       # has_re TEXT REGEX

if [ "$(id -u)" -ne 0 ]; then echo "Bail out! selftest.sh must run as root"; exit 1; fi
bash "$FG_MTA_SRC/contrib/dev/deps.sh" >/dev/null || { echo "Bail out! contrib/dev/deps.sh failed"; exit 1; }

work=$(mktemp -d /tmp/fg-mta-selftest.XXXXXX)
chmod 711 "$work"   # the postfix user must reach the milter socket
milter_pid=
cleanup() {
  mta_stop_all
  if [ -n "$milter_pid" ]; then kill "$milter_pid" 2>/dev/null; wait "$milter_pid" 2>/dev/null; fi
  if [ "${FG_KEEP:-0}" = 1 ]; then echo "# kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# ---------------------------------------------------------------- milter
cat >"$work/noop.c" <<'EOF'
/* no-op milter: ask for rejected recipients, log, always continue */
#include <libmilter/mfapi.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static FILE *logf;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static const char *mac(SMFICTX *ctx, const char *name) {
    const char *v = smfi_getsymval(ctx, (char *)name);
    return v ? v : "(unset)";
}
static void logln(const char *fmt, const char *a, const char *b, const char *c, const char *d) {
    pthread_mutex_lock(&mu);
    fprintf(logf, fmt, a, b, c, d);
    fflush(logf);
    pthread_mutex_unlock(&mu);
}
static sfsistat x_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
                            unsigned long f2, unsigned long f3, unsigned long *p0,
                            unsigned long *p1, unsigned long *p2, unsigned long *p3) {
    (void)ctx; (void)f0; (void)f2; (void)f3;
    if (!(f1 & SMFIP_RCPT_REJ)) {
        logln("negotiate: no SMFIP_RCPT_REJ offered%s%s%s%s\n", "", "", "", "");
        return SMFIS_REJECT;
    }
    *p0 = 0; *p1 = SMFIP_RCPT_REJ; *p2 = 0; *p3 = 0;
    return SMFIS_CONTINUE;
}
static sfsistat x_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *sa) {
    (void)sa;
    logln("connect host=%s j=%s daemon_name=%s%s\n", host, mac(ctx, "j"), mac(ctx, "{daemon_name}"), "");
    return SMFIS_CONTINUE;
}
static sfsistat x_envfrom(SMFICTX *ctx, char **argv) {
    logln("mail %s i=%s mail_mailer=%s%s\n", argv[0], mac(ctx, "i"), mac(ctx, "{mail_mailer}"), "");
    return SMFIS_CONTINUE;
}
static sfsistat x_envrcpt(SMFICTX *ctx, char **argv) {
    logln("rcpt %s rcpt_mailer=%s rcpt_host=%s rcpt_addr=%s\n", argv[0],
          mac(ctx, "{rcpt_mailer}"), mac(ctx, "{rcpt_host}"), mac(ctx, "{rcpt_addr}"));
    return SMFIS_CONTINUE;
}
static sfsistat x_close(SMFICTX *ctx) {
    (void)ctx;
    logln("close%s%s%s%s\n", "", "", "", "");
    return SMFIS_CONTINUE;
}
static struct smfiDesc desc = {
    "fg-noop", SMFI_VERSION, 0,
    x_connect, NULL, x_envfrom, x_envrcpt, NULL, NULL, NULL, NULL, NULL, x_close,
    NULL, NULL, x_negotiate,
};
int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: noop unix:SOCKET LOGFILE\n"); return 2; }
    logf = fopen(argv[2], "a");
    if (!logf) { perror(argv[2]); return 1; }
    if (smfi_setconn(argv[1]) == MI_FAILURE || smfi_register(desc) == MI_FAILURE) return 1;
    if (smfi_opensocket(1) == MI_FAILURE) { fprintf(stderr, "noop: cannot open %s\n", argv[1]); return 1; }
    /* Postfix's smtpd (user postfix) must be able to connect */
    if (strncmp(argv[1], "unix:", 5) == 0) chmod(argv[1] + 5, 0666);
    return smfi_main() == MI_SUCCESS ? 0 : 1;
}
EOF
if ! cc -Wall -O2 -o "$work/noop" "$work/noop.c" -lmilter -lpthread; then
  echo "Bail out! cannot compile the no-op milter"; exit 1
fi
sock=unix:$work/milter.sock
mlog=$work/milter.log
: >"$mlog"
"$work/noop" "$sock" "$mlog" </dev/null >"$work/milter.out" 2>&1 &
milter_pid=$!
for _ in $(seq 100); do [ -S "$work/milter.sock" ] && break; sleep 0.02; done
check "no-op milter listens on $sock" test -S "$work/milter.sock"

# ---------------------------------------------------------------- MTAs
pf_port=$(mta_free_port)
sm_port=$(mta_free_port $((pf_port + 1)))
valid=alice@$FG_MTA_DOMAIN
unknown=nosuchuser@$FG_MTA_DOMAIN

check "postfix_start on port $pf_port" postfix_start "$work/postfix" "$pf_port" "$sock"
echo "# postfix started in $(cat "$work/postfix/start-seconds" 2>/dev/null) s"
check "sendmail_start on port $sm_port" sendmail_start "$work/sendmail" "$sm_port" "$sock"
sm_secs=$(cat "$work/sendmail/start-seconds" 2>/dev/null || echo 999)
echo "# sendmail started in $sm_secs s"
check "sendmail starts in under 10 s (took $sm_secs s)" awk -v s="$sm_secs" 'BEGIN { exit !(s < 10) }'

# Wait until the milter has logged the end of the session (its close
# callback may run just after the client's QUIT is answered).
wait_close() {  # LOG START_LINE
  local _
  for _ in $(seq 200); do
    tail -n +"$2" "$1" | grep -q '^close' && return 0
    sleep 0.02
  done
  return 1
}

session() {  # NAME PORT
  local name=$1 port=$2 start out seen
  start=$(($(wc -l <"$mlog") + 1))
  out=$(mta_smtp "$port" 127.0.0.2 --helo selftest.example --rcpt "$valid" --rcpt "$unknown" \
        --rcpt someone@example.org --data)
  wait_close "$mlog" "$start"
  seen=$(tail -n +"$start" "$mlog")
  echo "$out" | sed "s/^/# $name smtp: /"
  echo "$seen" | sed "s/^/# $name milter: /"
  check "$name: greeting 220" has_re "$out" '^connect 220 '
  check "$name: RCPT $valid -> 250" has_re "$out" "^rcpt:<$valid> 250 "
  check "$name: RCPT $unknown -> 550 5.1.1" has_re "$out" "^rcpt:<$unknown> 550 [0-9.]+ 5\\.1\\.1 "
  check "$name: relaying denied (5.7.1)" has_re "$out" "^rcpt:<someone@example.org> 55[04] [0-9.]+ 5\\.7\\.1 "
  check "$name: message accepted" has_re "$out" '^dot 250 '
  check "$name: session ended normally" has "$out" "status ok"
  check "$name: milter saw the client 127.0.0.2" has_re "$seen" '^connect host=\[127\.0\.0\.2\]'
  check "$name: milter saw $valid (not as error)" \
    has_re "$seen" "^rcpt <$valid> rcpt_mailer=local "
  check "$name: milter saw $unknown with {rcpt_mailer}=error {rcpt_host}=5.1.1" \
    has_re "$seen" "^rcpt <$unknown> rcpt_mailer=error rcpt_host=5\\.1\\.1 "
  # Relay denial: Postfix passes it on ({rcpt_host} = 5.7.1); sendmail
  # rejects it in check_rcpt, which never reaches the milter.
  if [ "$name" = postfix ]; then
    check "$name: milter saw the relay-denied recipient as error 5.7.1" \
      has_re "$seen" "^rcpt <someone@example.org> rcpt_mailer=error rcpt_host=5\\.7\\.1 "
  else
    check "$name: milter did not see the relay-denied recipient" \
      bash -c '! grep -qF "rcpt <someone@example.org>" <<<"$1"' _ "$seen"
  fi
}
session postfix "$pf_port"
session sendmail "$sm_port"

# JSON output of the client, once.
json=$(mta_smtp "$pf_port" 127.0.0.3 --rcpt "$unknown" --json)
check "smtpc.py --json" "$FG_PYTHON" -c '
import json, sys
d = json.loads(sys.argv[1])
assert d["status"] == "ok", d
assert [s["code"] for s in d["steps"]] == [220, 250, 250, 550, 221], d
' "$json"

# Restart Postfix in the same directory with extra main.cf lines; a low
# hard error limit makes it drop the session with 421: smtpc must print the
# 421, say "status closed" and exit 0.
check "postfix_stop" postfix_stop "$work/postfix"
check "postfix_start again, with extra main.cf lines" postfix_start "$work/postfix" "$pf_port" "$sock" \
  "smtpd_hard_error_limit = 2" "milter_default_action = accept"
check "extra main.cf lines applied" has "$(postconf -c "$work/postfix/etc" -n)" "smtpd_hard_error_limit = 2"
out=$(mta_smtp "$pf_port" 127.0.0.4 --rcpt "x1@$FG_MTA_DOMAIN" --rcpt "x2@$FG_MTA_DOMAIN" \
      --rcpt "x3@$FG_MTA_DOMAIN" --rcpt "x4@$FG_MTA_DOMAIN")
rc=$?
echo "$out" | sed "s/^/# postfix smtp: /"
check "smtpc.py shows the 421 and stops" has_re "$out" '^rcpt:<x[0-9]@[^>]*> 421 '
check "smtpc.py: status closed, exit 0 (rc=$rc)" test "$rc" = 0 -a -n "$(grep -x 'status closed' <<<"$out")"

# A detached process in sendmail's PID namespace (like a background
# delivery child that ignores SIGTERM) must die with sendmail_stop.
init=$(cat "$work/sendmail/init.pid")
nsenter --target "$init" --pid -- setsid -f sh -c 'trap "" TERM HUP; exec sleep 1000' \
  </dev/null >/dev/null 2>&1
orphan=
for p in $(pgrep -x sleep); do
  if [ "$(readlink "/proc/$p/ns/pid")" = "$(cat "$work/sendmail/pidns")" ]; then orphan=$p; fi
done
check "a detached process runs in sendmail's namespace" test -n "$orphan"

# ---------------------------------------------------------------- stop
check "sendmail_stop" sendmail_stop "$work/sendmail"
check "sendmail_stop killed the detached process" bash -c "! kill -0 ${orphan:-0} 2>/dev/null"
check "postfix_stop" postfix_stop "$work/postfix"
kill "$milter_pid" 2>/dev/null; wait "$milter_pid" 2>/dev/null; milter_pid=
left=$(ps -eo pid=,args= | grep -F "$work" | grep -v grep || true)
for d in postfix sendmail; do
  if [ -f "$work/$d/pidns" ]; then left="$left pidns-of-$d"; fi
done
check "no processes left behind" test -z "$left"
[ -z "$left" ] || echo "# left: $left"
check "ports $pf_port and $sm_port are free again" bash -c "! grep -qiE ':($(printf '%04X' "$pf_port")|$(printf '%04X' "$sm_port")) 00000000:0000 0A' /proc/net/tcp"

echo "1..$n"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
