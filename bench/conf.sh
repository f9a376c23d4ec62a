# shellcheck shell=bash
# bench/conf.sh - sourced by the benchmark scripts: the benchmark's copy
# of a configuration.
#
# bench_conf POLICY WORK OUT: POLICY (etc/floodgate.conf, or a file of
# the same form) with its policy as it is; only the daemon's place
# changes (root, a socket in WORK that Postfix can reach, no pid file)
# and the loopback is no longer exempt (the clients are 127.x).  Dies
# (the caller's die) if a line to change is missing, so that a reworded
# etc/floodgate.conf cannot quietly leave the benchmark on other
# settings.
bench_conf() {
	local policy=$1 work=$2 out=$3 want
	sed -e 's|^socket = .*|socket = "unix:'"$work"'/unused.sock";|' \
		-e 's|^socket_mode = .*|socket_mode = "0666";|' \
		-e 's|^database = .*|database = "'"$work"'/unused.db";|' \
		-e 's|^user = .*|user = "";|' \
		-e 's|^allow_root = .*|allow_root = true;|' \
		-e 's|^pid_file = .*|pid_file = "";|' \
		-e 's|networks = \[ "127.0.0.0/8", "::1" \];|networks = [ "::1" ];|' \
		"$policy" >"$out"
	for want in 'user = "";' 'allow_root = true;' 'socket_mode = "0666";' \
		'pid_file = "";' 'networks = [ "::1" ];'; do
		grep -qF "$want" "$out" || die "$policy: cannot set $want"
	done
}
