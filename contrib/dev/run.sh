#!/bin/bash
# Installs what is missing, builds floodgate, and runs the daemon in the
# foreground on the example configuration, with its socket and database in
# the build tree (build/run/).  Stop it with Ctrl-C.
#
#   contrib/dev/run.sh               as root on Debian 12
set -euo pipefail
cd "$(dirname "$0")/../.."
top=$PWD

bash contrib/dev/deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/release -j"$(nproc)"

# The unprivileged user floodgate runs as, as the Debian package creates it.
if ! getent passwd floodgate >/dev/null; then
	useradd --system --home-dir /var/lib/floodgate --no-create-home \
		--shell /usr/sbin/nologin floodgate
fi
mkdir -p build/run
chown floodgate: build/run
chmod 0750 build/run

build/release/milter/floodgate -n -c etc/floodgate.conf
exec build/release/milter/floodgate -f -c etc/floodgate.conf \
	-p "unix:$top/build/run/floodgate.sock" \
	-d "$top/build/run/floodgate.db" -P "$top/build/run/floodgate.pid"
