#!/bin/bash
# The benchmark's load generator, bench/fgload, against the no-op filter
# and the real daemon: it completes sessions without errors, --rate
# paces them, and --park lets sessions held in floodgate's tarpit give
# their place to new ones, which is what bench/run.sh reports for mixed
# traffic.  bench/harvest.sh --quick, where root and Postfix are at hand:
# its table and JSON lines are complete and well-formed.  (Speed is not
# asserted here: bench/run.sh and bench/harvest.sh measure it.)
. "$(dirname "$0")/lib.sh"

LOAD=$FG_BUILD_DIR/bench/fgload
NOOP=$FG_BUILD_DIR/bench/noop_milter
if [ "${FG_BENCH:-ON}" != ON ]; then
	echo "# bench/ is not built (FG_BENCH=OFF): nothing to test"
	done_testing
fi

# field JSON NAME: a number from fgload's JSON line.
field() { py "d['$2']" <<<"$1"; }
load() {	# load SOCKET-NAME fgload-options...: the JSON line
	local name=$1; shift
	"$LOAD" -q -s "unix:$T/$name.sock" "$@" 2>>"$T/load.err" |
		sed -n 's/^JSON //p'
}

# ---- the no-op filter ----
"$NOOP" -f -m 0600 -p "unix:$T/noop.sock" 2>"$T/noop.log" &
fg_pids+=("$!")
wait_for "[ -S '$T/noop.sock' ]" 15 || { echo "not ok - noop_milter did not start"; exit 1; }

j=$(load noop -c 4 -n 300 -t 60 -m mix)
is "$(field "$j" completed)" 300 "fgload completes 300 mixed sessions against the no-op filter"
is "$(field "$j" failed)" 0 "... without an error"
is "$(field "$j" parked)" 0 "... and parks none without --park"

# Session i starts no earlier than i / R s: 1 s at 50/s starts 50.
j=$(load noop -c 4 -n 1000 -t 1 -m legit --rate 50)
started=$(field "$j" started)
ok "--rate 50 for 1 s starts 45 to 50 sessions (started $started)" \
	test "$started" -ge 45 -a "$started" -le 50

# ---- floodgate's tarpit ----
fg_conf "$T/b.conf" <<'EOF2'
exempt = { networks = [ ]; };
rules = (
	{ name = "dictionary"; type = "invalid_recipients"; per = "network";
	  prefix4 = 24; limit = 2; window = "1h";
	  action = "delay"; delay = "1s"; }
);
EOF2
fg_start b "$T/b.conf" || exit 1

# Two connections, mixed traffic: both soon sit in the tarpit, 1 s a
# reply, unless they may give their place to the next session.
j=$(load b -c 2 -t 2 -m mix)
stuck=$(field "$j" completed)
j=$(load b -c 2 -t 2 -m mix --park 32)
parked=$(field "$j" parked) completed=$(field "$j" completed)
held=$(field "$j" held)
ok "with --park, sessions in the tarpit give their place (parked $parked)" \
	[ "$parked" -ge 2 ]
ok "... and more sessions complete than without ($completed > $stuck)" \
	[ "$completed" -gt "$stuck" ]
is "$(field "$j" failed)" 0 "... without an error"
served=$(py 'int(d["served_sessions_per_s"] * 2 + 0.5)' <<<"$j")
is "$served" "$(( $(field "$j" in_time) + held ))" \
	"served sessions/s counts the completed and the held ones"
ok "the tarpit shows as delayed replies" \
	[ "$(py 'sum(c["delayed"] for c in d["commands"].values())' <<<"$j")" -ge 1 ]

# ---- bench/shared.sh, quick: sharing off, on, and Redis stopped ----
if command -v redis-server >/dev/null; then
	bash "$FG_SOURCE_DIR/bench/shared.sh" --quick --build "$FG_BUILD_DIR" --no-build \
		>"$T/shared.out" 2>"$T/shared.err"
	is "$?" 0 "bench/shared.sh --quick runs"
	for mode in off on stopped; do
		ok "... and reports p99 latency and sessions/s with sharing $mode" \
			[ "$(grep -cE "^  $mode +[0-9]" "$T/shared.out")" = 2 ]
	done
	ok "... the sync thread's CPU and Redis's commands/s" \
		grep -Eq 'sync thread [0-9.]+ %' "$T/shared.out"
	ok "... and no failed run" bash -c "! grep -q '^  !' '$T/shared.out'"
	grep -q . "$T/shared.err" && sed 's/^/# /' "$T/shared.err"
else
	echo "# redis-server is missing: bench/shared.sh not run"
fi

# ---- the harvest benchmark, quick ----
if [ "$(id -u)" -ne 0 ] || [ ! -x /usr/sbin/postfix ]; then
	echo "# skipped bench/harvest.sh: it needs root and postfix"
else
	"$FG_SOURCE_DIR/bench/harvest.sh" --quick --build "$FG_BUILD_DIR" \
		>"$T/harvest.out" 2>"$T/harvest.err"
	is "$?" 0 "bench/harvest.sh --quick runs"
	sed 's/^/#   /' "$T/harvest.err"
	ok "it prints the table's header" \
		grep -qE '^filter +guesses +answered +answ_% +valid +exposed +later +refused_at_s +before_rcpt +legit +touched$' "$T/harvest.out"
	for f in none floodgate; do
		ok "... a row for $f" grep -qE "^$f +[0-9]+ +[0-9]+ +[0-9.]+ +[0-9]+ +[0-9]+ +[0-9]+ +([0-9.]+|never) +([0-9.]+|never) +[0-9]+ +[0-9]+\$" "$T/harvest.out"
	done
	sed -n 's/^JSON //p' "$T/harvest.out" >"$T/harvest.jsonl"
	ok "... and a JSON line for each, with every figure" python3 - "$T/harvest.jsonl" <<'EOF2'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert [r["label"] for r in rows] == ["none", "floodgate"], rows
num = (int, float)
for r in rows:
    for k in ("guesses", "valid_guesses", "answered", "answered_pct", "unknown_answered",
              "valid_exposed", "valid_exposed_after_first_refusal", "legit_sessions",
              "legit_touched", "masked_rcpts"):
        assert isinstance(r[k], num) and r[k] >= 0, (k, r)
    assert r["guesses"] == 800 and r["answered"] <= r["guesses"], r
    assert r["answered"] == r["unknown_answered"] + r["valid_exposed"], r
    assert len(r["nets"]) == 3, r
    for n in r["nets"].values():
        for k in ("refused_at_connect_s", "refused_before_rcpt_s"):
            assert n[k] is None or isinstance(n[k], num), n
# Without a milter, Postfix answers every guess.
assert rows[0]["answered"] == 800 and rows[0]["masked_rcpts"] == 0, rows[0]
EOF2
fi

ok "floodgate is still running" kill -0 "$FG_PID"
ok "no sanitizer report from fgload, noop_milter or floodgate" \
	bash -c "! grep -l 'Sanitizer' '$T/load.err' '$T/noop.log' '$T/b.log' '$T/shared.out' '$T/shared.err'"
done_testing
