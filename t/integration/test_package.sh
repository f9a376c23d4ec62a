#!/bin/bash
# The Debian package (CPack block of CMakeLists.txt, contrib/debian/):
# built from a tree configured with -DCMAKE_INSTALL_PREFIX=/usr (the build
# tree itself if it is one, else a quick build of the two programs in $T),
# then its control data, its file list, and the programs unpacked with
# dpkg -x into a scratch root.  Nothing is installed on this machine.
. "$(dirname "$0")/lib.sh"

for tool in dpkg-deb dpkg cpack cmake; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "# skipped: $tool not installed (contrib/dev/deps.sh)"
		done_testing
	fi
done
if ! command -v dpkg-shlibdeps >/dev/null 2>&1; then
	echo "# skipped: dpkg-shlibdeps not installed (package dpkg-dev)"
	done_testing
fi

cache() {	# cache VAR: its value in the build tree's CMakeCache.txt
	sed -n "s/^$1:[A-Z]*=//p" "$FG_BUILD_DIR/CMakeCache.txt"
}
version=$("$FG_BIN" -V | awk '{print $2}')
arch=$(dpkg --print-architecture)
deb_name=floodgate_${version}_${arch}.deb

# ---- which tree ----
if [ "$(cache CMAKE_INSTALL_PREFIX)" = /usr ]; then
	tree=$FG_BUILD_DIR
	echo "# packaging the build tree (prefix /usr)"
else
	# This tree's prefix would give binaries that look for
	# /usr/local/etc/floodgate/floodgate.conf: cpack must refuse.
	out=$(cpack -G DEB --config "$FG_BUILD_DIR/CPackConfig.cmake" \
		-B "$T/refused" 2>&1); rc=$?
	ok "cpack refuses a tree with prefix $(cache CMAKE_INSTALL_PREFIX)" [ "$rc" -ne 0 ]
	ok "and says which prefix it needs" grep -q 'CMAKE_INSTALL_PREFIX=/usr' <<<"$out"
	ok "without writing a package" [ -z "$(find "$T/refused" -name '*.deb' 2>/dev/null)" ]

	tree=$T/build
	echo "# configuring and building $tree with prefix /usr"
	if ! cmake -S "$FG_SOURCE_DIR" -B "$tree" -DCMAKE_INSTALL_PREFIX=/usr \
		-DCMAKE_BUILD_TYPE=RelWithDebInfo -DFG_BENCH=OFF -DBUILD_TESTING=OFF \
		>"$T/configure.log" 2>&1; then
		sed 's/^/#   /' "$T/configure.log"
	fi
	if ! cmake --build "$tree" -j "$(nproc)" >"$T/build.log" 2>&1; then
		tail -20 "$T/build.log" | sed 's/^/#   /'
	fi
fi

# ---- build the package ----
out=$(cpack -G DEB --config "$tree/CPackConfig.cmake" -B "$T/pkg" 2>&1); rc=$?
is "$rc" 0 "cpack -G DEB succeeds"
[ "$rc" -eq 0 ] || sed 's/^/#   /' <<<"$out"
DEB=$T/pkg/$deb_name
ok "the package is named $deb_name" [ -f "$DEB" ]
if [ ! -f "$DEB" ]; then
	ls "$T/pkg" | sed 's/^/#   /'
	done_testing
fi

# ---- control data (dpkg-deb -I) ----
field() { dpkg-deb -f "$DEB" "$1"; }
is "$(field Package)" floodgate "Package: floodgate"
is "$(field Version)" "$version" "Version: $version"
is "$(field Architecture)" "$arch" "Architecture: $arch"
is "$(field Section)" mail "Section: mail"
is "$(field Maintainer)" "floodgate maintainers" "Maintainer"
ok "Description has a summary and a long text" \
	[ "$(field Description | wc -l)" -gt 2 ]
depends=$(field Depends)
echo "# Depends: $depends"
for dep in libmilter1.0.1 libsqlite3-0 libconfig9 libc6 adduser; do
	ok "Depends: $dep" grep -qE "(^|, )$dep( |,|$)" <<<"$depends"
done
info=$(dpkg-deb -I "$DEB")
for f in conffiles postinst prerm postrm; do
	ok "control archive has $f" grep -qE "^ +[0-9]+ bytes, +[0-9]+ lines +\*? +$f( |$)" <<<"$info"
done
is "$(dpkg-deb -I "$DEB" conffiles)" /etc/floodgate/floodgate.conf \
	"conffiles lists /etc/floodgate/floodgate.conf, and only it"
dpkg-deb -e "$DEB" "$T/control"
for f in postinst prerm postrm; do
	ok "$f is executable" [ -x "$T/control/$f" ]
	ok "$f is contrib/debian/$f" cmp -s "$T/control/$f" "$FG_SOURCE_DIR/contrib/debian/$f"
	ok "$f parses (sh -n)" sh -n "$T/control/$f"
done
if command -v shellcheck >/dev/null 2>&1; then
	ok "shellcheck -s sh: postinst prerm postrm" \
		shellcheck -s sh "$T/control/postinst" "$T/control/prerm" "$T/control/postrm"
fi
ok "postinst creates the system user" \
	grep -q 'adduser .*--system' "$T/control/postinst"

# ---- contents (dpkg-deb -c) ----
list=$(dpkg-deb -c "$DEB")
files=$(awk '{print $6}' <<<"$list" | sed 's|^\./|/|')
for f in /usr/sbin/floodgate /usr/sbin/floodgatectl \
	/usr/share/man/man8/floodgate.8 /usr/share/man/man8/floodgatectl.8 \
	/usr/share/man/man5/floodgate.conf.5 /usr/share/man/man5/floodgate-schema.5 \
	/lib/systemd/system/floodgate.service /etc/floodgate/floodgate.conf
do
	ok "contains $f" grep -qx "$f" <<<"$files"
done
is "$(grep -E '^/usr/(local|etc)' <<<"$files")" "" "nothing under /usr/local or /usr/etc"
is "$(awk '$2 != "root/root"' <<<"$list")" "" "everything belongs to root:root"
is "$(awk '$6 ~ /\/usr\/sbin\/floodgate/ {print $1}' <<<"$list" | sort -u)" "-rwxr-xr-x" \
	"the programs are 0755"
is "$(grep -E '^/var/|^/run/' <<<"$files")" "" "no /var or /run (postinst and systemd make them)"

# ---- unpacked (dpkg -x) ----
R=$T/root
dpkg -x "$DEB" "$R"
ok "floodgate unpacked and executable" [ -x "$R/usr/sbin/floodgate" ]
ok "floodgatectl unpacked and executable" [ -x "$R/usr/sbin/floodgatectl" ]
ok "the config is etc/floodgate.conf" cmp -s "$R/etc/floodgate/floodgate.conf" "$FG_SOURCE_DIR/etc/floodgate.conf"
ok "the unit is contrib/systemd's" cmp -s "$R/lib/systemd/system/floodgate.service" \
	"$FG_SOURCE_DIR/contrib/systemd/floodgate.service"
out=$("$R/usr/sbin/floodgate" -n -c "$R/etc/floodgate/floodgate.conf" 2>&1); rc=$?
is "$out" "configuration OK" "the packaged floodgate accepts the packaged config"
is "$rc" 0 "... exit status 0"
is "$("$R/usr/sbin/floodgate" -V | awk '{print $1, $2}')" "floodgate $version" "floodgate -V"
ok "floodgate's default config is the conffile" \
	grep -q '(default /etc/floodgate/floodgate.conf)' <<<"$("$R/usr/sbin/floodgate" -h)"
ok "floodgatectl's default config is the conffile" \
	grep -q '(default /etc/floodgate/floodgate.conf)' <<<"$("$R/usr/sbin/floodgatectl" -h 2>&1)"
if command -v file >/dev/null 2>&1; then
	is "$(file -L "$R/usr/sbin/floodgate" "$R/usr/sbin/floodgatectl" | grep -c ', stripped$')" 2 \
		"the programs are stripped (CPACK_STRIP_FILES)"
fi
if command -v man >/dev/null 2>&1; then
	ok "man finds floodgate(8) in the package" \
		bash -c "MANPATH='$R/usr/share/man' man -w 8 floodgate >/dev/null 2>&1"
fi

done_testing
