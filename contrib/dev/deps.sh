#!/bin/bash
# Install everything floodgate needs to build and test on Debian 12.
#
#   sudo contrib/dev/deps.sh        (or as root; CI runs it with no stdin)
#
# Idempotent: when every package is already installed it does not touch apt
# at all, so repeated runs take well under a second.
#
# postfix is installed as a *package only*: debconf is preseeded with
# "No configuration" and a temporary /usr/sbin/policy-rc.d forbids starting
# services, so no system mail service is configured or started.  The tests
# run their own private Postfix instances (t/mta/mta.sh).
#
# sendmail is NOT installed: it conflicts with postfix as a package.  The
# tests unpack it into the build tree instead (t/mta/fetch-sendmail.sh),
# which needs m4 (installed here) to build its .cf.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config
  libmilter-dev libsqlite3-dev sqlite3 libconfig-dev
  libsystemd-dev  # sd_notify, sd_watchdog_enabled (milter/notify.c)
  mandoc python3
  clang          # a second compiler, and fuzzing:
  libclang-rt-14-dev  # libFuzzer and sanitizer runtimes (Debian 12: clang 14)
  m4             # builds sendmail .cf files for the sendmail integration tests
  postfix        # package only; private instances in tests
  procps         # ps, pgrep (t/mta/selftest.sh)
  dpkg-dev debhelper lintian fakeroot  # the .deb from debian/ (t/integration/test_package.sh)
  clang-tidy cppcheck  # static analysis (contrib/dev/lint.sh)
  faketime       # a wall clock stepped back under the daemon (t/integration/test_tarpit.sh)
  prometheus     # promtool checks floodgatectl metrics (t/integration/test_status.sh); not started
  redis-server libhiredis-dev  # counts shared between hosts (lib/share_redis.c, its tests)
)

missing=()
for p in "${PKGS[@]}"; do
  st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$st" = installed ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps.sh: all packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: missing packages: ${missing[*]}; run as root" >&2
  exit 1
fi

echo "deps.sh: installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

# Never let postfix (or anything else) configure or start a system service.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
created_policy=
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\n# temporary, created by floodgate contrib/dev/deps.sh\nexit 101\n' \
    > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  created_policy=1
fi
cleanup() { if [ -n "$created_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi; }
trap cleanup EXIT

apt-get update -q </dev/null
apt-get install "${APT_OPTS[@]}" "${missing[@]}" </dev/null

echo "deps.sh: done"
