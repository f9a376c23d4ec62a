#!/bin/bash
# valid_recipients end to end: the operator's list of valid recipients,
# through the real milter socket, into the events table and the
# invalid_recipients limit; reloaded on SIGUSR1; refused by -n when the
# file is missing, unreadable or has a bad line.  What is checked is what
# floodgate.conf(5) documents: case does not matter, "user@domain" is a
# valid recipient, "@domain" says the list covers that domain, a recipient
# the MTA accepted is invalid when its domain is covered and it is not
# listed, recipients of other domains are left to the MTA.
. "$(dirname "$0")/lib.sh"

list=$T/valid-recipients
cat >"$list" <<'EOF2'
# valid recipients of example.org (mixed case on purpose)
@Example.ORG
alice@example.org
Bob@EXAMPLE.org     # a comment after an entry
# a user of a domain the list does not cover
carol@third.test
EOF2

fg_conf "$T/r.conf" <<EOF2
exempt = { networks = [ ]; };
valid_recipients = "$list";
rules = (
	{ name = "dict"; type = "invalid_recipients"; mask = false; per = "network";
	  prefix4 = 24; limit = 3; window = "1h"; action = "tempfail";
	  reply = { code = 451; status = "4.7.1";
	            text = "Too many unknown recipients"; }; }
);
EOF2

# ---- check mode: the good file, then broken lists ----
out=$("$FG_BIN" -n -c "$T/r.conf" 2>&1); rc=$?
is "$rc" 0 "-n accepts a configuration with a good list"
is "$out" "configuration OK" "and prints configuration OK"

# check_list NAME LIST: a copy of r.conf naming LIST; sets out and rc.
check_list() {
	sed "s|^valid_recipients = .*|valid_recipients = \"$2\";|" \
		"$T/r.conf" >"$T/$1.conf"
	out=$("$FG_BIN" -n -c "$T/$1.conf" 2>&1); rc=$?
}
# The line of valid_recipients in the copies, for file:line messages.
vline=$(grep -n '^valid_recipients' "$T/r.conf" | cut -d: -f1)

check_list missing "$T/no-such-list"
ok "-n refuses a missing list" [ "$rc" -ne 0 ]
is "$out" "$T/missing.conf:$vline: valid_recipients: $T/no-such-list: cannot open: No such file or directory" \
	"as conf:line: valid_recipients: list: reason"

printf '@example.org\nalice@example.org\nnot-an-address\n@\n' >"$T/bad-list"
check_list badline "$T/bad-list"
ok "-n refuses a list with bad lines" [ "$rc" -ne 0 ]
is "$out" "$T/badline.conf:$vline: valid_recipients: $T/bad-list:3: expected user@domain or @domain
$T/badline.conf:$vline: valid_recipients: $T/bad-list:4: not a domain" \
	"every bad line is reported with the list's file:line"

mkdir "$T/list-dir"
check_list dir "$T/list-dir"
ok "-n refuses a list that is a directory (unreadable)" [ "$rc" -ne 0 ]
is "$out" "$T/dir.conf:$vline: valid_recipients: $T/list-dir: cannot read: Is a directory" "and says why"

cp "$list" "$T/unreadable-list"; chmod 0000 "$T/unreadable-list"
if [ "$(id -u)" != 0 ]; then
	check_list unr "$T/unreadable-list"
elif command -v setpriv >/dev/null; then
	# root reads anything: check as nobody.
	sed "s|^valid_recipients = .*|valid_recipients = \"$T/unreadable-list\";|" \
		"$T/r.conf" >"$T/unr.conf"
	chmod 0644 "$T/unr.conf"
	out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups \
		"$FG_BIN" -n -c "$T/unr.conf" 2>&1); rc=$?
else
	rc=skip
fi
if [ "$rc" != skip ]; then
	ok "-n refuses a list it may not read" [ "$rc" -ne 0 ]
	is "$out" "$T/unr.conf:$vline: valid_recipients: $T/unreadable-list: cannot open: Permission denied" "and says why"
else
	echo "# skipping the unreadable list as root (no setpriv)"
fi

# ---- the daemon ----
fg_start r "$T/r.conf" || { echo "not ok - the daemon starts"; exit 1; }
db=$T/r.db
q() { sqlite3 "$db" "$1"; }

# Recipient macros as Postfix sends them (SMFIP_RCPT_REJ): accepted ...
acc() {		# acc ADDR: a recipient the MTA accepted
	printf 'macro stage=R {rcpt_mailer}=local {rcpt_host}=mx.example.org "{rcpt_addr}=%s"\nrcpt <%s>\n' "$1" "$1"
}
# ... rejected as an unknown user, or rejected for another reason.
unk() {
	printf 'macro stage=R {rcpt_mailer}=error {rcpt_host}=5.1.1 "{rcpt_addr}=Recipient address rejected: User unknown in local recipient table"\nrcpt <%s>\n' "$1"
}
relay() {
	printf 'macro stage=R {rcpt_mailer}=error {rcpt_host}=5.7.1 "{rcpt_addr}=Relay access denied"\nrcpt <%s>\n' "$1"
}
conn() {	# conn ADDR
	printf 'connect host=client.example addr=%s family=4 port=2525\nexpect continue\nhelo client.example\nmail <sender@client.example>\nexpect continue\n' "$1"
}
# class CLIENT RCPT: the class recorded for RCPT (as sent, in brackets).
class() {
	q "SELECT group_concat(class) FROM events WHERE kind='rcpt' AND client='$1' AND rcpt='$2'"
}
flushed() {	# flushed CLIENT N: N rcpt events of CLIENT are in the file
	wait_for "[ \"\$(q \"SELECT count(*) FROM events WHERE kind='rcpt' AND client='$1'\")\" = $2 ]" 10
}

# ---- classification (each net stays under the limit of 3) ----
{
	conn 203.0.113.5
	acc alice@example.org;    echo "expect continue"
	acc ALICE@Example.ORG;    echo "expect continue"
	acc bob@example.org;      echo "expect continue"
	acc mallory@example.org;  echo "expect continue"
	acc Mallory@EXAMPLE.ORG;  echo "expect continue"
	acc anyone@other.test;    echo "expect continue"
	acc dave@third.test;      echo "expect continue"
	echo quit
} | miltc r -q
ok "listed and unlisted recipients under the limit are all answered continue" [ $? -eq 0 ]
{
	conn 203.0.114.5
	unk nobody@other.test;    echo "expect continue"
	unk alice@example.org;    echo "expect continue"
	relay zed@example.org;    echo "expect continue"
	acc carol@third.test;     echo "expect continue"
	echo quit
} | miltc r -q
ok "recipients the MTA rejected are answered continue" [ $? -eq 0 ]
flushed 203.0.113.5 7
flushed 203.0.114.5 4

c=203.0.113.5
is "$(class $c alice@example.org)" valid "a listed recipient is valid"
is "$(class $c ALICE@Example.ORG)" valid "case does not matter in the recipient"
is "$(class $c bob@example.org)" valid "case does not matter in the file (Bob@EXAMPLE.org)"
is "$(class $c mallory@example.org)" invalid \
	"an accepted, unlisted recipient of a covered domain is invalid"
is "$(class $c Mallory@EXAMPLE.ORG)" invalid "... whatever its case"
is "$(class $c anyone@other.test)" valid "a domain the list does not cover is left to the MTA (accepted: valid)"
is "$(class $c dave@third.test)" valid "listing carol@third.test does not cover third.test"
c=203.0.114.5
is "$(class $c nobody@other.test)" invalid "an uncovered domain: the MTA's unknown user stays invalid"
is "$(class $c alice@example.org)" invalid "the list does not overrule the MTA's unknown user"
is "$(class $c zed@example.org)" rejected "an MTA rejection for another reason stays rejected"
is "$(class $c carol@third.test)" valid "a listed user of an uncovered domain is valid"
is "$(q "SELECT count(*) FROM verdicts")" 0 "no verdict so far"

# ---- the limit: unlisted recipients from one /24, listed from another ----
{
	conn 192.0.2.10
	acc harvest1@example.org; echo "expect continue"
	acc harvest2@example.org; echo "expect continue"
	acc harvest3@example.org; echo "expect continue"
	acc harvest4@example.org; echo 'expect 451 text="4.7.1 Too many unknown recipients"'
	echo quit
	# the legitimate network, interleaved: more listed recipients than
	# the limit, from two addresses of its /24
	conn 198.51.100.7
	for i in 1 2 3; do
		acc alice@example.org;  echo "expect continue"
		acc BOB@example.org;    echo "expect continue"
	done
	echo quit
	conn 198.51.100.8
	acc Alice@Example.Org;     echo "expect continue"
	acc bob@EXAMPLE.ORG;       echo "expect continue"
	echo quit
} | miltc r -q
ok "the 4th unlisted recipient from 192.0.2.0/24 gets the rule's reply; 8 listed ones from 198.51.100.0/24 do not" [ $? -eq 0 ]
# Counted per network, the rule refuses at connect too.
miltc r -q <<'EOF3'
connect host=client.example addr=192.0.2.11 family=4 port=2525
expect 451 text="4.7.1 Too many unknown recipients"
quit
EOF3
ok "another address of the limited /24 is refused at connect" [ $? -eq 0 ]
{
	conn 198.51.100.9
	acc alice@example.org;  echo "expect continue"
	echo quit
} | miltc r -q
ok "the listed network is still untouched" [ $? -eq 0 ]
flushed 198.51.100.9 1
is "$(q "SELECT count(*) FROM events WHERE kind='rcpt' AND client='192.0.2.10' AND class='invalid'")" 4 \
	"the unlisted recipients are recorded invalid"
is "$(q "SELECT count(*) FROM events WHERE kind='rcpt' AND network='198.51.100.0/24' AND class='valid'")" 9 \
	"the listed recipients are recorded valid"
is "$(q "SELECT count(*) FROM events WHERE kind='rcpt' AND network='198.51.100.0/24' AND class<>'valid'")" 0 \
	"and nothing else"
wait_for "[ \"\$(q \"SELECT count(*) FROM verdicts\")\" -ge 1 ]" 10
is "$(q "SELECT rule || ' ' || key || ' ' || action FROM verdicts WHERE client='192.0.2.10'")" \
	"dict 192.0.2.0/24 tempfail" "the verdict names the rule, the /24 and the action"
is "$(q "SELECT count(*) FROM verdicts WHERE key LIKE '198.51.100.%'")" 0 \
	"no verdict for the listed network"

# ---- SIGUSR1 reloads the list ----
cat >"$list" <<'EOF2'
@example.org
mallory@example.org
bob@example.org
@third.test
EOF2
kill -USR1 "$FG_PID"
wait_for "grep -q 'configuration reloaded' '$T/r.log'" 10
ok "SIGUSR1 reloads the configuration" grep -q 'configuration reloaded' "$T/r.log"
{
	conn 100.64.0.5
	acc alice@example.org;    echo "expect continue"
	acc mallory@example.org;  echo "expect continue"
	acc bob@example.org;      echo "expect continue"
	acc dave@third.test;      echo "expect continue"
	echo quit
} | miltc r -q
ok "recipients after the reload are answered" [ $? -eq 0 ]
flushed 100.64.0.5 4
c=100.64.0.5
is "$(class $c alice@example.org)" invalid "after reload: a recipient dropped from the list is invalid"
is "$(class $c mallory@example.org)" valid "after reload: a recipient added to the list is valid"
is "$(class $c bob@example.org)" valid "after reload: a recipient still listed is valid"
is "$(class $c dave@third.test)" invalid "after reload: a newly covered domain applies"

# A broken list on reload: refused, the running list stays.
printf '@example.org\nalice@example.org\nbad entry here\n' >"$list"
kill -USR1 "$FG_PID"
wait_for "grep -q 'reload failed' '$T/r.log'" 10
ok "a reload with a broken list fails" grep -q 'reload failed' "$T/r.log"
ok "and logs the bad line as file:line: reason" \
	grep -q "$list:3: expected user@domain or @domain" "$T/r.log"
{
	conn 100.64.1.5
	acc alice@example.org;    echo "expect continue"
	acc mallory@example.org;  echo "expect continue"
	echo quit
} | miltc r -q
ok "recipients after the failed reload are answered" [ $? -eq 0 ]
flushed 100.64.1.5 2
is "$(class 100.64.1.5 alice@example.org)" invalid "the running list stays (alice still unlisted)"
is "$(class 100.64.1.5 mallory@example.org)" valid "the running list stays (mallory still listed)"

kill -0 "$FG_PID"
ok "the daemon is still running" [ $? -eq 0 ]
fg_stop "$FG_PID"
is "$?" 0 "and stops cleanly"
ok "no sanitizer report" bash -c "! grep -q 'Sanitizer' '$T/r.log'"

done_testing
