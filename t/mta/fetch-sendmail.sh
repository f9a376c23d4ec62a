#!/bin/bash
# fetch-sendmail.sh DESTDIR - unpack Debian's sendmail into DESTDIR for tests.
#
# sendmail conflicts with postfix as a package, so it is not installed: its
# .debs (sendmail-bin, sendmail-cf and whichever library packages it needs
# that are not installed, e.g. libwrap0) are fetched with "apt-get download"
# into a cache directory and unpacked with "dpkg -x".  The result:
#
#   DESTDIR/usr/libexec/sendmail/sendmail   the binary (setgid bit cleared,
#                                           so LD_LIBRARY_PATH and
#                                           LD_PRELOAD work for it)
#   DESTDIR/usr/share/sendmail/cf/          the m4 tree to build a .cf
#   DESTDIR/usr/lib/x86_64-linux-gnu/       unpacked runtime libraries
#   DESTDIR/.fetched                        marker: versions unpacked
#
# Idempotent: does nothing when DESTDIR/.fetched is present and the binary
# runs its library check.  The cache is $FG_DEB_CACHE, by default
# DESTDIR.debs (next to DESTDIR); reuse of cached .debs needs no network.
# Needs apt (Debian 12) and m4 (contrib/dev/deps.sh installs it); must run
# as root only when the apt lists are missing (it then runs apt-get update).
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 DESTDIR" >&2
  exit 2
fi
dest=$1
case $dest in /*) ;; *) dest=$PWD/$dest ;; esac
dest=${dest%/}
cache=${FG_DEB_CACHE:-$dest.debs}
bin=$dest/usr/libexec/sendmail/sendmail
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
libdir=$dest/usr/lib/$multiarch

missing_libs() {  # sonames the unpacked binary cannot find, one a line
  LD_LIBRARY_PATH=$libdir ldd "$1" 2>/dev/null | awk '/not found/ {print $1}'
}

if [ -f "$dest/.fetched" ] && [ -x "$bin" ] && [ -z "$(missing_libs "$bin")" ]; then
  exit 0
fi

log() { echo "fetch-sendmail: $*" >&2; }

# Parallel test runs may all ask for the tree at once: one fetches, the
# others wait for it and then find it done.
mkdir -p "$(dirname "$dest")"
exec 9>"$dest.lock"
flock 9
if [ -f "$dest/.fetched" ] && [ -x "$bin" ] && [ -z "$(missing_libs "$bin")" ]; then
  exit 0
fi

mkdir -p "$cache"
cd "$cache"

download() {  # apt-get download PKG...; refresh the lists once if that fails
  if ! apt-get download -q -o APT::Sandbox::User=root "$@" </dev/null >/dev/null; then
    if [ "$(id -u)" -eq 0 ]; then
      log "apt-get download failed; running apt-get update and retrying"
      apt-get update -q </dev/null >/dev/null
      apt-get download -q -o APT::Sandbox::User=root "$@" </dev/null >/dev/null
    else
      log "apt-get download $* failed (run as root to refresh the apt lists)"
      return 1
    fi
  fi
}

# Library packages that sendmail-bin depends on (directly or through another
# library) and that are not installed here.
installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]; }
lib_deps() {
  apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances "$1" 2>/dev/null |
    awk '/^ *(Pre)?Depends: lib/ {print $2}' | tr -d '<>' | sort -u
}
want=(sendmail-bin sendmail-cf)
declare -A seen=()
queue=(sendmail-bin)
while [ ${#queue[@]} -gt 0 ]; do
  p=${queue[0]}; queue=("${queue[@]:1}")
  for d in $(lib_deps "$p"); do
    d=${d%%:*}
    [ -n "${seen[$d]:-}" ] && continue
    seen[$d]=1
    if ! installed "$d"; then
      want+=("$d")
      queue+=("$d")
    fi
  done
done

need=()
for p in "${want[@]}"; do
  ls "$cache/${p}"_*.deb >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  log "downloading ${need[*]}"
  download "${need[@]}"
fi

# Unpack into a fresh directory beside DESTDIR, then move it into place, so
# an interrupted run never leaves a half-unpacked tree that looks complete.
tmp=$(mktemp -d "$dest.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
versions=()
for p in "${want[@]}"; do
  deb=$(ls -t "$cache/${p}"_*.deb | head -n1)
  dpkg -x "$deb" "$tmp"
  versions+=("$(dpkg-deb -f "$deb" Package) $(dpkg-deb -f "$deb" Version)")
done
# The binary is setgid smmsp/mail: the loader would ignore LD_LIBRARY_PATH
# and LD_PRELOAD.  The tests run it as root and do not need the bit.
chmod -R g-s,u-s "$tmp/usr/libexec/sendmail" "$tmp/usr/sbin" 2>/dev/null || true

left=$(LD_LIBRARY_PATH=$tmp/usr/lib/$multiarch ldd "$tmp/usr/libexec/sendmail/sendmail" |
       awk '/not found/ {print $1}' | paste -sd' ')
if [ -n "$left" ]; then
  log "sendmail still misses libraries: $left"
  log "install or download the packages that provide them"
  exit 1
fi
printf '%s\n' "${versions[@]}" > "$tmp/.fetched"

if [ -e "$dest" ]; then
  # Replace only what looks like an earlier (partial) unpack of ours.
  if [ -n "$(ls -A "$dest" 2>/dev/null)" ] && [ ! -e "$dest/.fetched" ] &&
     [ ! -d "$dest/usr/libexec/sendmail" ]; then
    log "$dest exists and is not an unpacked sendmail tree; not touching it"
    exit 1
  fi
  rm -rf "$dest"
fi
mv "$tmp" "$dest"
trap - EXIT
chmod 755 "$dest"
log "unpacked into $dest: $(paste -sd, "$dest/.fetched" | sed "s/,/, /g")"
