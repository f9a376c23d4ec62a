#!/bin/bash
# What an MTA cannot easily produce, through the real milter protocol:
# NULL hostaddr, IPv6 and IPv4-mapped clients, missing macros, a 64 KiB
# HELO, control characters, garbage and out-of-order commands, close
# without connect.  The daemon must answer sensibly, record safely and
# keep serving.
. "$(dirname "$0")/lib.sh"

fg_conf "$T/p.conf" <<'EOF2'
exempt = { networks = [ ]; };
rules = (
	{ name = "dict6"; type = "invalid_recipients"; mask = false; per = "network";
	  prefix4 = 24; prefix6 = 64; limit = 2; window = "1h";
	  action = "tempfail"; }
);
EOF2
fg_start p "$T/p.conf"
db=$T/p.db
q() { sqlite3 "$db" "$1"; }

unknown_rcpt() {	# unknown_rcpt ADDR: macros + rcpt of an unknown user
	printf 'macro stage=R {rcpt_mailer}=error {rcpt_host}=5.1.1 "{rcpt_addr}=User unknown"\nrcpt <%s>\n' "$1"
}

# NULL hostaddr: family U.
miltc p -q <<'EOF2'
connect host=localhost family=U
expect continue
helo local.example
expect continue
quit
EOF2
ok "a client without an address (NULL hostaddr) is served" [ $? -eq 0 ]

# IPv6, and IPv4-mapped IPv6.
miltc p -q <<'EOF2'
connect host=v6.example addr=2001:db8:1:2::10 family=6 port=25
expect continue
quit
EOF2
ok "an IPv6 client is served" [ $? -eq 0 ]
miltc p -q <<'EOF2'
connect host=mapped.example addr=::ffff:192.0.2.55 family=6 port=25
expect continue
quit
EOF2
ok "an IPv4-mapped client is served" [ $? -eq 0 ]

# Missing macros: no {rcpt_mailer}: counted as valid, logged.
miltc p -q <<'EOF2'
connect host=c.example addr=192.0.2.60 family=4 port=25
helo c.example
mail <a@c.example>
expect continue
rcpt <someone@example.org>
expect continue
quit
EOF2
ok "RCPT without any macro is answered" [ $? -eq 0 ]

# A HELO of almost 64 KiB (libmilter's packet limit is 65535 bytes) with
# control characters; and one over the limit, which libmilter drops.
big=$(head -c 65000 /dev/zero | tr '\0' 'h')
printf 'connect host=big.example addr=192.0.2.61 family=4 port=25\nhelo "evil\\r\\nInjected: yes\\x1b[31m%s"\nexpect continue\nquit\n' "$big" |
	miltc p -q
ok "a 64 KiB HELO with CR/LF and escapes is answered" [ $? -eq 0 ]
huge=$(head -c 70000 /dev/zero | tr '\0' 'h')
printf 'connect host=huge.example addr=192.0.2.64 family=4 port=25\nhelo %s\nexpect closed\n' "$huge" |
	miltc p -q
ok "a HELO over libmilter's packet limit only closes that connection" [ $? -eq 0 ]

# Garbage after negotiation: the connection is dropped, nothing else.
miltc p -q <<'EOF2'
negotiate
expect optneg
raw 00 00 00 05 5a 41 42 43 44
read
expect error
EOF2
miltc p -q <<'EOF2'
connect host=after.example addr=192.0.2.62 family=4 port=25
expect continue
quit
EOF2
ok "the daemon keeps serving after garbage" [ $? -eq 0 ]

# Out of order: RCPT before MAIL is ignored by libmilter (no reply).
"$MILTC" -s "unix:$T/p.sock" -t 2 -q - <<'EOF2'
connect host=ooo.example addr=192.0.2.63 family=4 port=25
expect continue
rcpt <x@example.org>
expect timeout
EOF2
ok "RCPT before MAIL gets no reply and does no harm" [ $? -eq 0 ]

# Close without connect: negotiate and quit.
miltc p -q <<'EOF2'
negotiate
expect optneg flags=RCPT_REJ
quit
EOF2
ok "negotiation asks for rejected recipients; quit right after is fine" [ $? -eq 0 ]

# An MTA that does not offer rejected recipients: said once, not per
# connection (0x1ff7ff: every protocol flag but SMFIP_RCPT_REJ).
for i in 1 2 3; do
	printf 'negotiate protocol=0x1ff7ff\nconnect host=n.example addr=192.0.2.99 family=4 port=25\nquit\n' |
		miltc p -q
done
ok "three sessions without SMFIP_RCPT_REJ are served" [ $? -eq 0 ]
is "$(grep -c 'does not offer rejected recipients' "$T/p.log")" 1 \
	"the missing SMFIP_RCPT_REJ is logged once, not per connection"

# IPv6 /64 aggregation: two addresses of one /64 share the count, a
# third address in another /64 does not.
{
	echo "connect host=a.example addr=2001:db8:5:5::1 family=6 port=25"
	echo "mail <x@a.example>"
	unknown_rcpt u1@example.org; echo "expect continue"
	unknown_rcpt u2@example.org; echo "expect continue"
	echo "quit"
	echo "connect host=b.example addr=2001:db8:5:5::2 family=6 port=25"
	echo "mail <x@b.example>"
	unknown_rcpt u3@example.org; echo "expect 451"
	echo "quit"
	echo "connect host=c.example addr=2001:db8:5:6::1 family=6 port=25"
	echo "mail <x@c.example>"
	unknown_rcpt u4@example.org; echo "expect continue"
	echo "quit"
} | miltc p -q
ok "IPv6 clients are limited per /64" [ $? -eq 0 ]

kill -0 "$FG_PID"
ok "the daemon is still running" [ $? -eq 0 ]
fg_stop "$FG_PID"
is "$?" 0 "and stops cleanly"

is "$(q "SELECT count(*) FROM events WHERE kind='connect' AND client IS NULL")" 1 \
	"the NULL-address connection is recorded without a client"
is "$(q "SELECT network FROM events WHERE client='2001:db8:1:2::10' LIMIT 1")" \
	"2001:db8:1:2::/64" "an IPv6 client is filed under its /64"
is "$(q "SELECT count(*) FROM events WHERE client='192.0.2.55' AND kind='connect'")" 1 \
	"an IPv4-mapped client is recorded as IPv4"
is "$(q "SELECT class FROM events WHERE rcpt='someone@example.org'")" valid \
	"a recipient without macros is counted as valid"
ok "the missing macro is logged" grep -q 'no {rcpt_mailer} macro' "$T/p.log"
helo=$(q "SELECT helo FROM events WHERE client='192.0.2.61' AND kind='helo'")
ok "the stored HELO is bounded" [ "${#helo}" -lt 300 ]
ok "the stored HELO has its control bytes escaped" grep -q '^evil\\x0d\\x0aInjected: yes\\x1b' <<<"$helo"
ok "no raw escape byte reached the log" bash -c "! grep -q $'\x1b' '$T/p.log'"
ok "no injected log line" bash -c "! grep -q '^Injected' '$T/p.log'"
is "$(q "SELECT count(*) FROM verdicts WHERE key='2001:db8:5:5::/64' AND action='tempfail'")" 1 \
	"the /64 verdict is recorded"

done_testing
