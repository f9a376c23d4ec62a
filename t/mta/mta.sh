# shellcheck shell=bash
# mta.sh - start and stop private Postfix and sendmail instances for
# floodgate's integration tests.  Source it from a bash test script:
#
#   . "$FG_SOURCE_DIR/t/mta/mta.sh"
#   trap mta_stop_all EXIT
#   port=$(mta_free_port)
#   postfix_start  "$work/pf" "$port" "unix:$work/fg.sock" [main.cf lines...]
#   sendmail_start "$work/sm" "$port2" "unix:$work/fg.sock" [F=..] [T=..] [mc lines...]
#   mta_smtp "$port" 127.0.0.2 --rcpt alice@floodgate.test --rcpt x@floodgate.test
#   postfix_stop "$work/pf"; sendmail_stop "$work/sm"
#
# Functions:
#   postfix_start DIR PORT MILTER_SOCKET [MAIN_CF_LINE...]
#   postfix_stop DIR
#   sendmail_start DIR PORT MILTER_SOCKET [F=FLAGS] [T=TIMEOUTS] [MC_LINE...]
#   sendmail_stop DIR
#   mta_stop_all                 stop every MTA this shell started
#   mta_smtp PORT SOURCE_ADDR [smtpc.py options]   one SMTP session
#   mta_free_port [FIRST]        a TCP port nobody listens on
#   mta_postfix_milter SOCKET    libmilter socket spec -> Postfix's syntax
# The start functions return once 127.0.0.1:PORT answers 220, and write
# how long that took (seconds) to DIR/start-seconds.
#
# Both MTAs listen on 127.0.0.1:PORT only, accept mail for the local
# domain $FG_MTA_DOMAIN (floodgate.test) and the host name
# $FG_MTA_HOSTNAME (mx.floodgate.test), know the local users in
# $FG_MTA_USERS (alice bob carol postmaster), reject every other user
# there with "550 5.1.1" at RCPT time (and pass that recipient to the
# milter with {rcpt_mailer} = error when it asks for SMFIP_RCPT_REJ),
# refuse to relay to other domains (5.7.1; the milter never sees those on
# sendmail), and throw delivered mail away.  Clients should connect from
# 127.0.0.2 .. 127.0.0.253 or any other 127/8 address (all work on Linux
# loopback without configuration).  Differences to know:
#   - 127.0.0.1 is the MTAs' own address; sendmail lets it relay.
#   - sendmail also knows "root" (its private /etc/passwd has only root).
#   - The start functions run one probe session from $FG_MTA_PROBE_ADDR
#     (127.0.0.254): connect, 220, QUIT.  The milter sees it like any
#     other connection (FG_MTA_PROBE=0: only wait for the port to listen).
#
# Requirements: root (unshare; the MTAs want it too), bash, python3,
# util-linux (unshare, setpriv), postfix (installed, not configured:
# contrib/dev/deps.sh), m4 and cc for sendmail, and the unpacked sendmail
# tree of t/mta/fetch-sendmail.sh (fetched on demand into
# $FG_SENDMAIL_ROOT, by default $FG_BUILD_DIR/t/_sendmail).
#
# Each MTA runs in its own PID namespace (unshare --pid): stopping it kills
# the namespace's first process, and the kernel then kills every process in
# it, detached delivery children included.  If the test shell that started
# an MTA dies, the MTA dies with it (parent-death signal), unless it was
# started from a subshell such as $(...) or a pipeline -- do not do that.
#
# The milter socket: Postfix's smtpd runs as user postfix, so a unix
# socket must be writable by postfix (mode 0666, or group postfix and
# 0660) and every directory above it searchable (o+x) by postfix; the same
# holds for DIR itself (postfix_start checks).  Postfix runs unchrooted
# here, so the path is used as is.  sendmail connects as root but refuses
# ("local socket name ... unsafe") a socket in a group- or world-writable
# directory: keep it in the test's own directory (e.g. mode 0711).
#
# Milter settings come from contrib/postfix/main.cf.snippet and
# contrib/sendmail/floodgate.mc.snippet, the files operators are told to
# use, with only the socket (and F=/T= when given) replaced.
#
# Logs: Postfix logs to DIR/maillog (maillog_file, via postlogd).  sendmail
# logs to DIR/maillog as well, through an LD_PRELOAD shim that replaces
# syslog(3) (there is no /dev/log here); its pids there are those inside
# its namespace.  DIR/console.log has the launcher's own output.  On a
# start failure the tail of both is printed.
#
# Functions return non-zero on failure (they never exit the shell), so a
# test script with "set -e" stops there.

FG_MTA_HOME=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FG_MTA_SRC=${FG_SOURCE_DIR:-$(cd "$FG_MTA_HOME/../.." && pwd)}
: "${FG_MTA_DOMAIN:=floodgate.test}"
: "${FG_MTA_HOSTNAME:=mx.$FG_MTA_DOMAIN}"
: "${FG_MTA_USERS:=alice bob carol postmaster}"
: "${FG_MTA_PROBE_ADDR:=127.0.0.254}"
: "${FG_MTA_START_TIMEOUT:=30}"
: "${FG_SENDMAIL_ROOT:=${FG_BUILD_DIR:-$FG_MTA_SRC/build}/t/_sendmail}"
: "${FG_POSTFIX_SNIPPET:=$FG_MTA_SRC/contrib/postfix/main.cf.snippet}"
FG_SENDMAIL_SNIPPET=$FG_MTA_SRC/contrib/sendmail/floodgate.mc.snippet
FG_SMTPC=$FG_MTA_HOME/smtpc.py
# The system's python3, not a version manager's shim (slow to start).
if [ -z "${FG_PYTHON:-}" ]; then
  if [ -x /usr/bin/python3 ]; then FG_PYTHON=/usr/bin/python3; else FG_PYTHON=python3; fi
fi

_MTA_INSTANCES=()

_mta_err() { echo "mta.sh: $*" >&2; }

# Is process $1 alive (and not a zombie waiting to be reaped)?
_mta_alive() {
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

_mta_now() { printf '%s\n' "${EPOCHREALTIME/,/.}"; }
_mta_since() { awk -v a="$1" -v b="$(_mta_now)" 'BEGIN { printf "%.2f\n", b - a }'; }

_mta_abs() { case $1 in /*) printf '%s\n' "${1%/}" ;; *) printf '%s\n' "$PWD/${1%/}" ;; esac; }

# Is anything listening on TCP port $1 (on ADDR $2 if given, any address
# otherwise)?  Reads /proc/net/tcp{,6}, so it opens no connection.
_mta_listening() {
  local port addr=${2:-} want=''
  port=$(printf '%04X' "$1")
  if [ -n "$addr" ]; then
    local IFS=.
    # shellcheck disable=SC2086
    set -- $addr
    want=$(printf '%02X%02X%02X%02X' "$4" "$3" "$2" "$1")
  fi
  awk -v p="$port" -v a="$want" '
    $4 == "0A" { split($2, la, ":"); if (la[2] == p && (a == "" || la[1] == a)) f = 1 }
    END { exit !f }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# Convert a libmilter socket spec to Postfix's smtpd_milters syntax.
#   unix:/p, local:/p, /p -> unix:/p;  inet:PORT@HOST -> inet:HOST:PORT;
#   inet:PORT -> inet:127.0.0.1:PORT;  inet6:PORT@HOST -> inet:[HOST]:PORT
mta_postfix_milter() {
  local s=$1
  case $s in
    unix:*) printf '%s\n' "$s" ;;
    local:*) printf 'unix:%s\n' "${s#local:}" ;;
    /*) printf 'unix:%s\n' "$s" ;;
    inet:*@*) s=${s#inet:}; printf 'inet:%s:%s\n' "${s#*@}" "${s%%@*}" ;;
    inet:*) printf 'inet:127.0.0.1:%s\n' "${s#inet:}" ;;
    inet6:*@*) s=${s#inet6:}; printf 'inet:[%s]:%s\n' "${s#*@}" "${s%%@*}" ;;
    inet6:*) printf 'inet:[::1]:%s\n' "${s#inet6:}" ;;
    *) _mta_err "unknown milter socket syntax: $s"; return 1 ;;
  esac
}

# mta_free_port [FIRST] - print a TCP port >= FIRST (default: 20000 plus
# a number derived from this shell's pid) on which nothing listens.
mta_free_port() {
  local p=${1:-$((20000 + ($$ * 7) % 20000))}
  while _mta_listening "$p"; do p=$((p + 1)); done
  printf '%s\n' "$p"
}

# mta_smtp PORT SOURCE_ADDR [smtpc.py options...] - one SMTP session to
# 127.0.0.1:PORT from SOURCE_ADDR; see t/mta/smtpc.py for the output.
mta_smtp() {
  local port=$1 src=$2
  shift 2
  "$FG_PYTHON" "$FG_SMTPC" 127.0.0.1 "$port" "$src" "$@"
}

# Start "$@" (after the unshare options given in MTA_UNSHARE) in a new PID
# namespace, in the background; record pids in $dir.
_mta_launch() {
  local dir=$1; shift
  local pdeath=(setpriv --pdeathsig KILL)
  if [ "${BASHPID:-$$}" != "$$" ]; then
    _mta_err "warning: started from a subshell: the MTA will not die with the test shell"
    pdeath=()
  fi
  # shellcheck disable=SC2086
  "${pdeath[@]}" unshare --pid --fork --kill-child $MTA_UNSHARE -- "$@" \
    </dev/null >>"$dir/console.log" 2>&1 &
  local up=$! init=''
  echo "$up" >"$dir/unshare.pid"
  for _ in $(seq 200); do
    init=$(cat "/proc/$up/task/$up/children" 2>/dev/null) || true
    init=${init%% *}
    [ -n "$init" ] && break
    _mta_alive "$up" || break
    sleep 0.01
  done
  if [ -z "$init" ]; then
    _mta_err "could not start $*"
    return 1
  fi
  echo "$init" >"$dir/init.pid"
  readlink "/proc/$init/ns/pid" >"$dir/pidns" 2>/dev/null || true
  _MTA_INSTANCES+=("$dir")
}

# Wait until 127.0.0.1:PORT listens and answers 220 to a probe session.
_mta_wait_ready() {
  local dir=$1 port=$2 what=$3 t0=$SECONDS up
  up=$(cat "$dir/unshare.pid")
  while ! _mta_listening "$port" 127.0.0.1; do
    if ! _mta_alive "$up" || [ $((SECONDS - t0)) -ge "$FG_MTA_START_TIMEOUT" ]; then
      _mta_err "$what did not start listening on 127.0.0.1:$port"
      _mta_dump "$dir"
      _mta_kill "$dir"
      return 1
    fi
    sleep 0.02
  done
  [ "${FG_MTA_PROBE:-1}" = 1 ] || return 0
  local out
  out=$("$FG_PYTHON" "$FG_SMTPC" 127.0.0.1 "$port" "$FG_MTA_PROBE_ADDR" --no-helo --no-mail \
        --timeout "$FG_MTA_START_TIMEOUT" 2>&1) || true
  case $out in
    "connect 220 "*) return 0 ;;
  esac
  _mta_err "$what on port $port did not answer 220: $out"
  _mta_dump "$dir"
  _mta_kill "$dir"
  return 1
}

_mta_dump() {
  local f
  for f in "$1/console.log" "$1/maillog"; do
    [ -s "$f" ] || continue
    echo "---- tail of $f" >&2
    tail -n 25 "$f" >&2
  done
}

# Kill the PID namespace of the instance in $1 and wait until every process
# in it is gone.
_mta_kill() {
  local dir=$1 up init ns p left
  up=$(cat "$dir/unshare.pid" 2>/dev/null) || return 0
  init=$(cat "$dir/init.pid" 2>/dev/null) || init=
  ns=$(cat "$dir/pidns" 2>/dev/null) || ns=
  if [ -n "$init" ] && [ -n "$ns" ] && [ "$(readlink "/proc/$init/ns/pid" 2>/dev/null)" = "$ns" ]; then
    kill -KILL "$init" 2>/dev/null || true
  fi
  # unshare itself: it exits once its child is gone; --kill-child makes
  # killing it kill the namespace too.
  if _mta_alive "$up" && [ "$(cat "/proc/$up/comm" 2>/dev/null)" = unshare ]; then
    kill -KILL "$up" 2>/dev/null || true
  fi
  for _ in $(seq 500); do
    left=
    if [ -n "$ns" ]; then
      for p in /proc/[0-9]*/ns/pid; do
        if [ "$(readlink "$p" 2>/dev/null)" = "$ns" ]; then left=${p#/proc/}; left=${left%%/*}; break; fi
      done
    fi
    [ -z "$left" ] && break
    sleep 0.01
  done
  { wait "$up"; } 2>/dev/null || true   # (braces: no "Killed" job notice)
  rm -f "$dir/unshare.pid" "$dir/init.pid" "$dir/pidns"
  local keep=() d
  for d in "${_MTA_INSTANCES[@]}"; do [ "$d" = "$dir" ] || keep+=("$d"); done
  _MTA_INSTANCES=("${keep[@]}")
  if [ -n "$left" ]; then
    _mta_err "process $left of $dir survived"
    return 1
  fi
}

_mta_running() {
  local up
  up=$(cat "$1/unshare.pid" 2>/dev/null) || return 1
  _mta_alive "$up" && [ "$(cat "/proc/$up/comm" 2>/dev/null)" = unshare ]
}

# mta_stop_all - stop every MTA started by this shell (for trap ... EXIT).
mta_stop_all() {
  local d rc=0
  for d in "${_MTA_INSTANCES[@]}"; do _mta_kill "$d" || rc=1; done
  return $rc
}

_mta_check_start() {  # DIR PORT WHAT
  if [ "$(id -u)" -ne 0 ]; then _mta_err "$3 needs root"; return 1; fi
  if _mta_running "$1"; then _mta_err "$3 in $1 is already running"; return 1; fi
  if _mta_listening "$2"; then _mta_err "port $2 is already in use"; return 1; fi
}

########################################################################
# Postfix

_mta_as_postfix() { setpriv --reuid=postfix --regid=postfix --init-groups "$@" 2>/dev/null; }

# postfix_start DIR PORT MILTER_SOCKET [MAIN_CF_LINE...]
#   DIR            instance directory (created): etc/ (main.cf, master.cf),
#                  spool/ (queue_directory), data/, maillog
#   PORT           smtpd listens on 127.0.0.1:PORT
#   MILTER_SOCKET  libmilter syntax (unix:/path, inet:PORT@HOST), converted
#                  to Postfix's syntax
#   MAIN_CF_LINE   "name = value" lines applied last with postconf -e, e.g.
#                  "milter_default_action = accept" or
#                  "smtpd_authorized_xclient_hosts = 127.0.0.0/8"
# Environment, for a Postfix laid out as a distribution ships it:
#   FG_POSTFIX_MASTER_CF  a master.cf to use instead of the generated one
#                  (chroot columns and all); its "smtp inet" service is
#                  made to listen on 127.0.0.1:PORT
#   FG_POSTFIX_QUEUE      queue_directory instead of DIR/spool
#   FG_POSTFIX_SNIPPET    main.cf milter settings (default: the snippet
#                  of contrib/postfix; /dev/null for none)
postfix_start() {
  if [ $# -lt 3 ]; then _mta_err "usage: postfix_start DIR PORT MILTER_SOCKET [main.cf lines...]"; return 1; fi
  local dir port=$2 sock=$3 pfsock t0
  t0=$(_mta_now)
  dir=$(_mta_abs "$1"); shift 3
  _mta_check_start "$dir" "$port" postfix || return 1
  [ -x /usr/sbin/postfix ] || { _mta_err "postfix is not installed (contrib/dev/deps.sh)"; return 1; }
  pfsock=$(mta_postfix_milter "$sock") || return 1

  local spool=${FG_POSTFIX_QUEUE:-$dir/spool}
  mkdir -p "$dir/etc" "$spool" "$dir/data" || return 1
  chmod 755 "$dir" "$dir/etc" "$spool"
  chown postfix:postfix "$dir/data"
  if ! _mta_as_postfix test -x "$dir/data"; then
    _mta_err "user postfix cannot reach $dir: make every directory above it searchable (chmod o+x)"
    return 1
  fi
  case $pfsock in
    unix:*)
      if [ -S "${pfsock#unix:}" ] && ! _mta_as_postfix test -w "${pfsock#unix:}"; then
        _mta_err "warning: user postfix cannot write to the milter socket ${pfsock#unix:}"
      fi ;;
  esac
  # The queue as "postfix check" would create it.  Creating it here lets
  # the start skip postfix-script's checks (quick-start), which take ~2 s.
  local q
  for q in active bounce corrupt defer deferred flush hold incoming private saved trace; do
    mkdir -p "$spool/$q"; chown postfix:root "$spool/$q"; chmod 700 "$spool/$q"
  done
  mkdir -p "$spool/maildrop" "$spool/public" "$spool/pid"
  chown postfix:postdrop "$spool/maildrop" "$spool/public"
  chmod 730 "$spool/maildrop"; chmod 710 "$spool/public"; chmod 755 "$spool/pid"
  if [ "${FG_POSTFIX_CHECK:-0}" != 1 ]; then touch "$spool/quick-start"; fi
  rm -f "$dir/console.log" "$spool/pid/master.pid"
  : >"$dir/maillog"

  local users=() u
  for u in $FG_MTA_USERS; do users+=("$u=ok"); done
  {
    cat <<EOF
# Generated by t/mta/mta.sh postfix_start: a private test instance.
compatibility_level = 3.6
queue_directory = $spool
data_directory = $dir/data
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
myhostname = $FG_MTA_HOSTNAME
mydomain = $FG_MTA_DOMAIN
myorigin = \$mydomain
mydestination = \$mydomain, \$myhostname, localhost
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
# Relaying is denied even to mynetworks: the test clients are 127.x hosts.
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions =
smtpd_client_restrictions =
smtpd_helo_restrictions =
smtpd_sender_restrictions =
# Known users only; everyone else in mydestination: 550 5.1.1.
local_recipient_maps = inline:{ ${users[*]} }
unknown_local_recipient_reject_code = 550
alias_maps =
alias_database =
# Nothing is delivered (see master.cf: local, smtp, relay are discard).
# (the transports keep their usual names, so the milter sees
# {rcpt_mailer} = local and {mail_mailer} = smtp as on a real server)
local_transport = local
default_transport = smtp
relay_transport = relay
# No DNS, no reverse lookups.
smtp_dns_support_level = disabled
smtp_host_lookup = native
smtpd_peername_lookup = no
# Postfix's own limits must not cut long test sessions short.
smtpd_client_connection_rate_limit = 0
smtpd_client_connection_count_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_client_recipient_rate_limit = 0
smtpd_client_new_tls_session_rate_limit = 0
smtpd_hard_error_limit = 10000
smtpd_soft_error_limit = 10000
smtpd_error_sleep_time = 0
smtpd_junk_command_limit = 10000
smtpd_recipient_limit = 10000
smtpd_recipient_overshoot_limit = 10000
in_flow_delay = 0
biff = no
smtpd_banner = \$myhostname ESMTP Postfix
EOF
    echo "# Milter settings from contrib/postfix/main.cf.snippet:"
    sed -n 's/^\([a-z_0-9]*\)[[:space:]]*=[[:space:]]*\(.*[^[:space:]]\)[[:space:]]*$/\1 = \2/p' \
      "$FG_POSTFIX_SNIPPET" |
      sed "s|^smtpd_milters = .*|smtpd_milters = $pfsock|"
  } >"$dir/etc/main.cf"

  if [ -n "${FG_POSTFIX_MASTER_CF:-}" ]; then
    sed "s/^smtp\([[:space:]]\{1,\}inet[[:space:]]\)/127.0.0.1:$port\1/" \
      "$FG_POSTFIX_MASTER_CF" >"$dir/etc/master.cf" || return 1
    grep -q "^127.0.0.1:$port[[:space:]]" "$dir/etc/master.cf" ||
      { _mta_err "no 'smtp inet' service in $FG_POSTFIX_MASTER_CF"; return 1; }
  else
  cat >"$dir/etc/master.cf" <<EOF
# Generated by t/mta/mta.sh postfix_start.  Nothing is chrooted.
127.0.0.1:$port inet n  -       n       -       -       smtpd
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
# delivery: thrown away, but under the usual transport names
local     unix  -       n       n       -       -       discard
smtp      unix  -       -       n       -       -       discard
relay     unix  -       -       n       -       -       discard
EOF
  fi

  if [ $# -gt 0 ]; then
    postconf -c "$dir/etc" -e "$@" || { _mta_err "postconf -e failed"; return 1; }
  fi

  # Postfix re-reads a main.cf changed within the last ~2 seconds, in
  # 300 ms steps, until it is older (dict_load_fp): backdate the files.
  touch -d '-1 minute' "$dir/etc/main.cf" "$dir/etc/master.cf"

  # bash, not postfix, is the namespace's first process: the parent-death
  # signal set by unshare --kill-child survives in bash, but Postfix clears
  # it.  ("postfix start-fg" then runs "master -s" in the foreground.)
  MTA_UNSHARE='' _mta_launch "$dir" bash -c '"$@" & wait' init \
    /usr/sbin/postfix -c "$dir/etc" start-fg || return 1
  _mta_wait_ready "$dir" "$port" postfix || return 1
  _mta_since "$t0" >"$dir/start-seconds"
}

# postfix_stop DIR
postfix_stop() {
  local dir
  dir=$(_mta_abs "$1")
  _mta_kill "$dir"
}

########################################################################
# sendmail

# LD_PRELOAD shim: syslog(3) -> the file named by FG_SYSLOG_FILE (read in
# a constructor: sendmail empties its environment at startup).
_mta_syslog_shim_src() {
  cat <<'EOF'
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
static char fg_path[4096];
static char fg_ident[64] = "sendmail";
__attribute__((constructor)) static void fg_init(void) {
    const char *p = getenv("FG_SYSLOG_FILE");
    if (p) snprintf(fg_path, sizeof fg_path, "%s", p);
}
static void fg_log(const char *fmt, va_list ap) {
    if (!fg_path[0]) return;
    char buf[8192];
    time_t t = time(NULL); struct tm tm; localtime_r(&t, &tm);
    size_t n = strftime(buf, sizeof buf, "%b %e %H:%M:%S ", &tm);
    n += (size_t)snprintf(buf + n, sizeof buf - n, "%s[%d]: ", fg_ident, (int)getpid());
    if (n < sizeof buf) { int m = vsnprintf(buf + n, sizeof buf - n, fmt, ap); if (m > 0) n += (size_t)m; }
    if (n > sizeof buf - 2) n = sizeof buf - 2;
    if (buf[n - 1] != '\n') buf[n++] = '\n';
    /* open/write/close each time: sendmail closes descriptors it does not know */
    int fd = open(fg_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return;
    ssize_t w = write(fd, buf, n); (void)w;
    close(fd);
}
void openlog(const char *ident, int option, int facility) {
    (void)option; (void)facility;
    if (ident) snprintf(fg_ident, sizeof fg_ident, "%s", ident);
}
void closelog(void) {}
void vsyslog(int pri, const char *fmt, va_list ap) { (void)pri; fg_log(fmt, ap); }
void syslog(int pri, const char *fmt, ...) { va_list ap; va_start(ap, fmt); fg_log(fmt, ap); va_end(ap); (void)pri; }
void __vsyslog_chk(int pri, int flag, const char *fmt, va_list ap) { (void)pri; (void)flag; fg_log(fmt, ap); }
void __syslog_chk(int pri, int flag, const char *fmt, ...) { va_list ap; va_start(ap, fmt); fg_log(fmt, ap); va_end(ap); (void)pri; (void)flag; }
EOF
}

# Build (once, cached beside the unpacked tree) the syslog shim.
_mta_syslog_shim() {
  local src sum out
  src=$(_mta_syslog_shim_src)
  sum=$(printf '%s' "$src" | cksum | cut -d' ' -f1)
  out=$FG_SENDMAIL_ROOT/.fg-syslog-$sum.so
  if [ ! -f "$out" ]; then
    printf '%s\n' "$src" | cc -shared -fPIC -O2 -x c -o "$out.tmp.$$" - || return 1
    mv -f "$out.tmp.$$" "$out"
  fi
  printf '%s\n' "$out"
}

# The INPUT_MAIL_FILTER line of the snippet with S= (and F=, T= when given)
# replaced.
_mta_sendmail_filter() {  # SOCKET FLAGS-or-"" TIMEOUTS-or-"" (use "-" for "keep")
  local line
  line=$(grep -m1 '^INPUT_MAIL_FILTER(' "$FG_SENDMAIL_SNIPPET") || {
    _mta_err "no INPUT_MAIL_FILTER line in $FG_SENDMAIL_SNIPPET"; return 1; }
  line=$(printf '%s\n' "$line" | sed "s|S=[^,']*|S=$1|")
  if [ "$2" != - ]; then line=$(printf '%s\n' "$line" | sed "s|F=[^,']*|F=$2|"); fi
  if [ "$3" != - ]; then line=$(printf '%s\n' "$line" | sed "s|T=[^,']*|T=$3|"); fi
  printf '%s\n' "$line"
}

# sendmail_start DIR PORT MILTER_SOCKET [F=FLAGS] [T=TIMEOUTS] [MC_LINE...]
#   DIR            instance directory (created): sendmail.mc, sendmail.cf,
#                  queue/, aliases, maillog, ...
#   PORT           the daemon listens on 127.0.0.1:PORT (and nowhere else)
#   MILTER_SOCKET  libmilter syntax: unix:/path or inet:PORT@HOST
#   F=FLAGS        the filter's F= (default: the snippet's; "F=" = none)
#   T=TIMEOUTS     the filter's T=, e.g. "T=C:10s;S:10s;R:2s;E:30s"
#   MC_LINE        more .mc lines, inserted before the MAILER lines, e.g.
#                  "define(\`confBAD_RCPT_THROTTLE', \`3')"
# sendmail runs as root in its own PID, UTS (host name $FG_MTA_HOSTNAME)
# and mount namespaces; in the last, /etc/hosts, /etc/nsswitch.conf
# (files only: no DNS) and /etc/passwd (root only) are private copies, so
# local users are exactly $FG_MTA_USERS (aliases to /dev/null) plus root.
sendmail_start() {
  if [ $# -lt 3 ]; then _mta_err "usage: sendmail_start DIR PORT MILTER_SOCKET [F=flags] [T=timeouts] [mc lines...]"; return 1; fi
  local dir port=$2 sock=$3 flags=- timeouts=- extra=() t0
  t0=$(_mta_now)
  dir=$(_mta_abs "$1"); shift 3
  while [ $# -gt 0 ]; do
    case $1 in
      F=*) flags=${1#F=} ;;
      T=*) timeouts=${1#T=} ;;
      *) extra+=("$1") ;;
    esac
    shift
  done
  _mta_check_start "$dir" "$port" sendmail || return 1
  local sm=$FG_SENDMAIL_ROOT
  if [ ! -f "$sm/.fetched" ]; then
    bash "$FG_MTA_HOME/fetch-sendmail.sh" "$sm" || return 1
  fi
  command -v m4 >/dev/null || { _mta_err "m4 is missing (contrib/dev/deps.sh)"; return 1; }
  local cfdir=$sm/usr/share/sendmail/cf multiarch shim filter
  multiarch=("$sm"/usr/lib/*-linux-gnu)
  shim=$(_mta_syslog_shim) || { _mta_err "cannot build the syslog shim"; return 1; }
  filter=$(_mta_sendmail_filter "$sock" "$flags" "$timeouts") || return 1

  mkdir -p "$dir/queue" || return 1
  chmod 711 "$dir"; chmod 700 "$dir/queue"
  rm -f "$dir/console.log" "$dir/sendmail.pid"
  : >"$dir/maillog"

  local u
  {
    for u in $FG_MTA_USERS MAILER-DAEMON; do printf '%s: /dev/null\n' "$u"; done
    printf 'root: /dev/null\n'
  } | sort -u >"$dir/aliases"
  printf '127.0.0.1\t%s %s localhost\n' "$FG_MTA_HOSTNAME" "${FG_MTA_HOSTNAME%%.*}" >"$dir/hosts"
  printf '%s\n' 'passwd: files' 'group: files' 'shadow: files' 'hosts: files' \
    'networks: files' 'services: files' 'protocols: files' >"$dir/nsswitch.conf"
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' >"$dir/passwd"
  printf '%s\n' 'hosts files' 'aliases files' >"$dir/service.switch"

  {
    cat <<EOF
divert(-1)
# Generated by t/mta/mta.sh sendmail_start: a private test instance.
divert(0)dnl
VERSIONID(\`floodgate test instance')dnl
OSTYPE(\`linux')dnl
define(\`confDOMAIN_NAME', \`$FG_MTA_HOSTNAME')dnl
define(\`QUEUE_DIR', \`$dir/queue')dnl
define(\`STATUS_FILE', \`$dir/statistics')dnl
define(\`ALIAS_FILE', \`$dir/aliases')dnl
define(\`HELP_FILE', \`$sm/etc/mail/helpfile')dnl
define(\`confPID_FILE', \`$dir/sendmail.pid')dnl
define(\`confSERVICE_SWITCH_FILE', \`$dir/service.switch')dnl
define(\`confHOSTS_FILE', \`$dir/hosts')dnl
define(\`confCW_FILE', \`-o $dir/local-host-names')dnl
define(\`confCT_FILE', \`-o $dir/trusted-users')dnl
dnl no interface probing, no ident, no load-average throttling
define(\`confDONT_PROBE_INTERFACES', \`true')dnl
define(\`confTO_IDENT', \`0')dnl
define(\`confQUEUE_LA', \`999')dnl
define(\`confREFUSE_LA', \`999')dnl
define(\`confDELAY_LA', \`0')dnl
define(\`confMAX_DAEMON_CHILDREN', \`0')dnl
define(\`confCONNECTION_RATE_THROTTLE', \`0')dnl
define(\`confBAD_RCPT_THROTTLE', \`0')dnl
define(\`confPRIVACY_FLAGS', \`authwarnings')dnl
define(\`confLOG_LEVEL', \`9')dnl
define(\`confMILTER_LOG_LEVEL', \`9')dnl
dnl the instance directory may lie under /tmp (sticky, world-writable)
define(\`confDONT_BLAME_SENDMAIL', \`TrustStickyBit')dnl
dnl local users exist only as aliases to /dev/null; no procmail
define(\`LOCAL_MAILER_PATH', \`/bin/true')dnl
define(\`LOCAL_MAILER_ARGS', \`true \$u')dnl
FEATURE(\`no_default_msa')dnl
FEATURE(\`nocanonify')dnl
FEATURE(\`accept_unresolvable_domains')dnl
FEATURE(\`accept_unqualified_senders')dnl
LOCAL_DOMAIN(\`$FG_MTA_DOMAIN')dnl
DAEMON_OPTIONS(\`Family=inet, Name=MTA, Port=$port, Addr=127.0.0.1')dnl
dnl milter, from contrib/sendmail/floodgate.mc.snippet:
${filter}dnl
EOF
    for u in "${extra[@]}"; do printf '%s\n' "$u"; done
    printf '%s\n' "MAILER(\`local')dnl" "MAILER(\`smtp')dnl"
  } >"$dir/sendmail.mc"
  (cd "$cfdir" && m4 -D_CF_DIR_="$cfdir/" m4/cf.m4 "$dir/sendmail.mc") >"$dir/sendmail.cf.tmp" ||
    { _mta_err "m4 failed on $dir/sendmail.mc"; return 1; }
  mv -f "$dir/sendmail.cf.tmp" "$dir/sendmail.cf"
  chmod 644 "$dir/sendmail.cf"

  # The namespace's first process: private host name and /etc files, the
  # alias database, then the daemon in the foreground.
  cat >"$dir/init.sh" <<EOF
set -e
hostname '$FG_MTA_HOSTNAME'
mount --bind '$dir/hosts' /etc/hosts
mount --bind '$dir/nsswitch.conf' /etc/nsswitch.conf
mount --bind '$dir/passwd' /etc/passwd
export LD_LIBRARY_PATH='${multiarch[0]}' LD_PRELOAD='$shim' FG_SYSLOG_FILE='$dir/maillog'
'$sm/usr/libexec/sendmail/sendmail' -C '$dir/sendmail.cf' -bi
'$sm/usr/libexec/sendmail/sendmail' -C '$dir/sendmail.cf' -bD &
wait
EOF
  MTA_UNSHARE="--uts --mount" _mta_launch "$dir" bash "$dir/init.sh" || return 1
  _mta_wait_ready "$dir" "$port" sendmail || return 1
  _mta_since "$t0" >"$dir/start-seconds"
}

# sendmail_stop DIR
sendmail_stop() {
  local dir
  dir=$(_mta_abs "$1")
  _mta_kill "$dir"
}
