#!/bin/bash
# The ratio guard that padding cannot fool, and rules on a shared key
# that act on the client's network, through the real milter protocol.
#
# Under the shipped etc/floodgate.conf (socket, database and user
# overridden): a harvest that pads every session with 8 x postmaster
# beside 3 guesses gets its /24 refused before RCPT, while a sender with
# 2% typos over 2,000 recipients in sessions of 1 to 20 is never refused.
# Under a rule per HELO name: two networks share a HELO and one of them
# floods with it; act_on = "network" refuses only that one, act_on =
# "key" both.
. "$(dirname "$0")/lib.sh"

CTL=$FG_BUILD_DIR/ctl/floodgatectl

# The shipped file, run as root in the test directory.
sed -e 's/^user = .*/user = "";/' -e 's/^allow_root = .*/allow_root = true;/' \
	"$FG_SOURCE_DIR/etc/floodgate.conf" >"$T/shipped.conf"
fg_start s "$T/shipped.conf"

unknown() {	# unknown LOCAL: an RCPT the MTA rejected as an unknown user
	printf 'macro stage=R {rcpt_mailer}=error {rcpt_host}=5.1.1 "{rcpt_addr}=User unknown"\nrcpt <%s@example.org>\n' "$1"
}
valid() {	# valid LOCAL: an RCPT the MTA accepted
	printf 'macro stage=R {rcpt_mailer}=local {rcpt_host}=localhost {rcpt_addr}=%s\nrcpt <%s@example.org>\n' "$1" "$1"
}
start() {	# start ADDR: connect, HELO, MAIL
	printf 'connect host=h.example addr=%s family=4 port=25\nhelo h.example\nmail <s@h.example>\n' "$1"
}

not() { ! "$@"; }

# Whether a session from ADDR on socket NAME is refused before RCPT: a
# 4xx or 5xx at connect, HELO or MAIL.
refused_early() {	# refused_early NAME ADDR [HELO]
	printf 'connect host=h.example addr=%s family=4 port=25\nhelo %s\nmail <s@h.example>\nquit\n' \
		"$2" "${3:-h.example}" | miltc "$1" 2>/dev/null |
		awk '$3 ~ /^(connect|helo|mail)$/ && $5 ~ /^[45][0-9][0-9]$/ { r = 1 } END { exit !r }'
}

harvest_session() {	# harvest_session N [PAD]: PAD (8) x postmaster, 3 guesses
	{
		start "198.51.100.$1"
		for ((i = 0; i < ${2:-8}; i++)); do valid postmaster; done
		for i in 1 2 3; do unknown "guess$1-$i"; done
		echo quit
	} | miltc s -q >"$T/harvest$1.out" 2>&1
}

# Session after session, each from another host of the /24, until the
# network is refused before RCPT (a refused session would wait for
# replies to its RCPTs that never come); 20 sessions are 60 guesses.
# The first session pads with 50, so that the guard speaks from the
# start (min_sample) rather than only after the limit has been passed.
refused_at=0
for n in $(seq 1 20); do
	if refused_early s "198.51.100.$((100 + n))"; then
		refused_at=$n
		break
	fi
	harvest_session "$n" "$([ "$n" -eq 1 ] && echo 50 || echo 8)"
done
echo "# refused before session $refused_at"
ok "a harvest padded with 8 x postmaster per 3 guesses: its /24 is refused" \
	[ "$refused_at" -gt 1 ]
ok "... another network is not" \
	not refused_early s 192.0.2.9

# The sender with typos: 2,000 distinct recipients, one in 50 unknown,
# in sessions of 1 to 20 from the hosts of one /24.
{
	n=0 s=0
	while [ "$n" -lt 2000 ]; do
		size=$((1 + s % 20)) s=$((s + 1))
		start "203.0.113.$((1 + s % 100))"
		echo 'expect continue'
		for ((j = 0; j < size && n < 2000; j++)); do
			n=$((n + 1))
			if [ $((n % 50)) -eq 0 ]; then unknown "typo$n"; else valid "user$n"; fi
			echo 'expect continue'
		done
		echo quit
	done
} >"$T/typos.scr"
miltc s -q -t 10 <"$T/typos.scr" >"$T/typos.out" 2>&1
ok "a sender with 2% typos over 2000 recipients is never delayed or refused" [ $? -eq 0 ]
ok "... and is not refused afterwards" not refused_early s 203.0.113.250
# The counts reach the database within a flush interval.
why() { "$CTL" -d "$T/s.db" -c "$T/shipped.conf" why 203.0.113.7 2>&1; }
ok "why shows the guard holding it, by its sample" \
	wait_for "why | grep -q 'ratio guard: 40 unknown in a sample of'" 15
why | grep 'ratio guard' | sed 's/^/# /'

# ---- a rule on a shared HELO name -------------------------------------------

for mode in network key; do
	fg_conf "$T/$mode.conf" <<EOF2
exempt = { networks = [ ]; };
rules = (
	{ name = "shared-helo"; type = "helo_rate"; per = "helo"; act_on = "$mode";
	  limit = 10; window = "1h";
	  ladder = ( { over = 1; action = "tempfail"; },
	             { over = 5; action = "ban"; ban = "1h"; } ); }
);
EOF2
	fg_start "$mode" "$T/$mode.conf"
	for i in $(seq 1 20); do
		printf 'connect host=a.example addr=198.51.100.%d family=4 port=25\nhelo mx.shared.example\nquit\n' "$i"
	done | miltc "$mode" -q >/dev/null 2>&1
	ok "act_on = $mode: the flooding network is refused with the shared HELO" \
		refused_early "$mode" 198.51.100.99 mx.shared.example
	if [ "$mode" = network ]; then
		ok "act_on = network: another network with the same HELO is not" \
			not refused_early $mode 203.0.113.5 mx.shared.example
		ok "act_on = network: the ban is on the pair" \
			wait_for "'$CTL' -d '$T/$mode.db' bans 2>&1 | grep -q '198.51.100.0/24,helo:mx.shared.example'" 10
		"$CTL" -d "$T/$mode.db" unban 198.51.100.99 --covering >/dev/null 2>&1
		ok "act_on = network: unban --covering of an address lifts the pair" \
			wait_for "! refused_early $mode 198.51.100.99 mx.shared.example" 10
	else
		ok "act_on = key: another network with the same HELO is refused too" \
			refused_early "$mode" 203.0.113.5 mx.shared.example
	fi
done

done_testing
