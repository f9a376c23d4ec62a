# lib_shared.sh - helpers of the tests that share counts through Redis
# (sourced after lib.sh, bash).
#
# A private redis-server on 127.0.0.1 at a free port, in its own
# directory under $T, and floodgate daemons named after their nodes
# (a, b, c), each with its own socket, database, pid file and log
# ($T/NAME.sock, .db, .pid, .log; the log is appended to across
# restarts).  Every process started here gets SIGKILL from the kernel if
# the test's shell dies, even by kill -9 (setpriv --pdeathsig), and is
# stopped on a normal exit (the EXIT trap), stopped or not.
#
#   redis_start [redis-server options...]   sets REDIS_PORT, REDIS_PID
#   redis_restart [options...]              a fresh, empty server, same port
#   redis_kill9 | redis_sigstop | redis_sigcont
#   rcli ARGS...                            redis-cli against it
#   node_conf NAME FILE [SERVER]            writes NAME's configuration
#   node_start NAME [ENV=VALUE...]          sets NODE_PID[NAME]
#   node_stop NAME | node_kill9 NAME
#   event NAME ADDR USER                    one session with an unknown
#                                           recipient: prints pass or refused
#   proxy_start TARGET-PORT                 the delay proxy; sets PROXY_PORT
#   proxy_mode "delay MS" | pass | blackhole | rst

REDIS_SERVER=${REDIS_SERVER:-redis-server}
REDIS_CLI=${REDIS_CLI:-redis-cli}
REDIS_PORT='' REDIS_PID='' REDIS_DIR=$T/redis
PROXY_PID='' PROXY_PORT='' PROXY_CTL=$T/proxy.mode
declare -A NODE_PID=()

# A port on 127.0.0.1 nobody listens on right now.
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The processes of this file, and what the test left stopped.
shared_cleanup() {
	local p
	for p in "${NODE_PID[@]}" $REDIS_PID $PROXY_PID; do
		kill -CONT "$p" 2>/dev/null    # a stopped process ignores TERM
	done
	for p in $REDIS_PID $PROXY_PID; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in $REDIS_PID $PROXY_PID; do
		# (bounded: redis-server in DEBUG SLEEP answers TERM late)
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	REDIS_PID='' PROXY_PID=''
}
trap 'shared_cleanup; fg_cleanup' EXIT

# Spawn a command in the background that dies with this shell.  (Call it
# from the test's shell itself, not from $(...): the parent that counts is
# the one that forked it.)
spawn_bound() {
	setpriv --pdeathsig KILL "$@" &
}

rcli() {
	"$REDIS_CLI" -h 127.0.0.1 -p "$REDIS_PORT" --no-auth-warning ${REDIS_AUTH:+"${REDIS_AUTH[@]}"} "$@"
}

redis_up() { [ "$(rcli ping 2>/dev/null)" = PONG ]; }

# redis_start [options...]: a server at a free port (a few tries, in case
# another process takes the port between the probe and the bind).
redis_start() {
	local try
	for try in 1 2 3 4 5; do
		REDIS_PORT=$(free_port)
		redis_spawn "$@" && return 0
		echo "# redis-server did not start at port $REDIS_PORT (try $try):"
		tail -3 "$REDIS_DIR/redis.log" 2>/dev/null | sed 's/^/#   /'
	done
	return 1
}

redis_spawn() {
	mkdir -p "$REDIS_DIR"
	rm -f "$REDIS_DIR"/*.rdb
	spawn_bound "$REDIS_SERVER" --bind 127.0.0.1 --port "$REDIS_PORT" \
		--save '' --appendonly no --enable-debug-command local \
		--daemonize no --dir "$REDIS_DIR" --logfile "$REDIS_DIR/redis.log" "$@"
	REDIS_PID=$!
	if ! wait_for "redis_up" 10; then
		kill -KILL "$REDIS_PID" 2>/dev/null; wait "$REDIS_PID" 2>/dev/null
		REDIS_PID=''
		return 1
	fi
}

# After redis_kill9 or redis_stop: an empty server at the same port.
redis_restart() {
	redis_stop
	redis_spawn "$@"
}

redis_stop() {
	[ -n "$REDIS_PID" ] || return 0
	kill -CONT "$REDIS_PID" 2>/dev/null
	kill -TERM "$REDIS_PID" 2>/dev/null
	for _ in $(seq 50); do kill -0 "$REDIS_PID" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$REDIS_PID" 2>/dev/null
	wait "$REDIS_PID" 2>/dev/null
	REDIS_PID=''
}

redis_kill9() {
	kill -KILL "$REDIS_PID" 2>/dev/null
	wait "$REDIS_PID" 2>/dev/null
	REDIS_PID=''
}
redis_sigstop() { kill -STOP "$REDIS_PID"; }
redis_sigcont() { kill -CONT "$REDIS_PID"; }

# ---- floodgate nodes ---------------------------------------------------

# The rules every node runs unless the test sets NODE_RULES, and extra
# lines of the shared group (NODE_SHARED_EXTRA).
NODE_RULES=${NODE_RULES:-'
	{ name = "dictionary"; type = "invalid_recipients"; per = "network";
	  prefix4 = 24; limit = 30; window = "1h"; action = "reject"; }'}
NODE_SYNC=${NODE_SYNC:-250ms}
NODE_SHARED_EXTRA=${NODE_SHARED_EXTRA:-}
NODE_SHARING=${NODE_SHARING:-1}

# node_conf NAME FILE [SERVER]: NAME's configuration, sharing through
# SERVER (default: the test's Redis) unless NODE_SHARING=0; a setting in
# NODE_SHARED_EXTRA replaces the one given here.
node_conf() {
	local name=$1 file=$2 server=${3:-127.0.0.1:$REDIS_PORT} kv
	{
		echo 'exempt = { networks = [ ]; };'
		echo "rules = ( $NODE_RULES );"
		if [ "$NODE_SHARING" = 1 ]; then
			echo 'shared = {'
			for kv in 'backend = "redis";' "server = \"$server\";" \
				"node = \"$name\";" "sync_interval = \"$NODE_SYNC\";"; do
				grep -Eq "(^|[; ])${kv%% *} *=" <<<"$NODE_SHARED_EXTRA" ||
					printf '\t%s\n' "$kv"
			done
			[ -n "$NODE_SHARED_EXTRA" ] && printf '\t%s\n' "$NODE_SHARED_EXTRA"
			echo '};'
		fi
	} | fg_conf "$file"
}

# node_start NAME [VAR=VALUE...]: the daemon of node NAME with
# $T/NAME.conf, in the environment given (e.g. LD_PRELOAD for faketime).
node_start() {
	local name=$1; shift
	rm -f "$T/$name.sock"
	echo "# ---- node $name starts" >>"$T/$name.log"
	local from
	from=$(wc -l <"$T/$name.log")
	spawn_bound env "$@" "$FG_BIN" -f -c "$T/$name.conf" -p "unix:$T/$name.sock" \
		-d "$T/$name.db" -P "$T/$name.pid" 2>>"$T/$name.log"
	NODE_PID[$name]=$!
	fg_pids+=("${NODE_PID[$name]}")
	if ! wait_for "[ -S '$T/$name.sock' ] && tail -n +$from '$T/$name.log' | grep -q started" 15; then
		echo "# node $name did not start:"; tail -n +"$from" "$T/$name.log" | sed 's/^/#   /'
		return 1
	fi
}

node_stop() {
	local pid=${NODE_PID[$1]}
	kill -CONT "$pid" 2>/dev/null
	kill -TERM "$pid" 2>/dev/null
	# libmilter notices TERM when its listener wakes: knock once.
	python3 -c 'import socket, sys; s = socket.socket(socket.AF_UNIX); s.settimeout(1); s.connect(sys.argv[1])' \
		"$T/$1.sock" 2>/dev/null
	wait "$pid"
}

node_kill9() {
	kill -KILL "${NODE_PID[$1]}" 2>/dev/null
	wait "${NODE_PID[$1]}" 2>/dev/null
}

# How many lines of NAME's log match the extended regex.
log_count() { grep -cE "$2" "$T/$1.log"; }

# ---- the attacker --------------------------------------------------------

# event NAME ADDR USER: one session from ADDR to node NAME with one
# unknown recipient; prints "pass" when the recipient got through to
# the filter's continue, "refused" when the filter refused the session
# at any stage, "error" when the filter did not answer.
event() {
	local out
	out=$(printf '%s\n' \
		"connect host=attacker.example addr=$2 family=4 port=2525" \
		"helo attacker.example" "mail <x@attacker.example>" \
		'macro stage=R {rcpt_mailer}=error {rcpt_host}=5.1.1 "{rcpt_addr}=User unknown"' \
		"rcpt <$3@example.org>" quit |
		"$MILTC" -s "unix:$T/$1.sock" -t 10 - 2>&1)
	case $(awk '$4 ~ /^(reject|tempfail|shutdown|replycode|discard)$/ { r = 1 }
		    $3 == "rcpt" && $4 == "continue" { p = 1 }
		    END { print r ? "refused" : p ? "pass" : "error" }' <<<"$out") in
	refused) echo refused ;;
	pass) echo pass ;;
	*) echo error; echo "# miltc against $1: $out" >&2 ;;
	esac
}

# probe NAME ADDR: a bare connect; prints the kind of the answer.
probe() {
	printf 'connect host=probe.example addr=%s family=4 port=2525\nquit\n' "$2" |
		"$MILTC" -s "unix:$T/$1.sock" -t 10 - 2>&1 |
		awk '$3 == "connect" { print $4; exit }'
}

# ---- the delay proxy ---------------------------------------------------------

# proxy_start TARGET-PORT: t/tools/delay_proxy.py in front of 127.0.0.1
# at TARGET-PORT, listening at PROXY_PORT, steered by proxy_mode.
proxy_start() {
	echo pass >"$PROXY_CTL"
	rm -f "$T/proxy.port"
	spawn_bound python3 "$FG_SOURCE_DIR/t/tools/delay_proxy.py" \
		--listen 127.0.0.1:0 --port-file "$T/proxy.port" \
		--target "127.0.0.1:$1" --control "$PROXY_CTL" 2>>"$T/proxy.log"
	PROXY_PID=$!
	wait_for "[ -s '$T/proxy.port' ]" 10 || return 1
	# shellcheck disable=SC2034  # (the tests read it)
	PROXY_PORT=$(cat "$T/proxy.port")
}

# proxy_mode MODE: "delay MS" (each way), pass, blackhole or rst; the
# proxy takes it within 50 ms.
proxy_mode() {
	echo "$*" >"$PROXY_CTL.new" && mv "$PROXY_CTL.new" "$PROXY_CTL"
	sleep 0.2
}
