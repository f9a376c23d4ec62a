#!/bin/bash
# Privileges and untrusted text.
#
#   - the sources: no SQL text is ever built from data (checked for any
#     user; the method is described at the checker below);
#   - as root: the daemon runs as its user after binding (uids, gids,
#     supplementary groups, no capabilities left), the unix socket is 0660
#     with socket_group, the database and its -wal/-shm are 0640 and the
#     user's, it refuses root without user unless allow_root = true;
#   - format specifiers sent by a client (HELO, host name, addresses) are
#     data: the daemon survives, logs and stores them literally, and every
#     '%' of a reply is doubled on the wire for the MTA's format.
. "$(dirname "$0")/lib.sh"

# ---- no SQL built from data --------------------------------------------
#
# Method: a small C-aware scan (comments removed, string literals kept
# whole, parentheses balanced) of lib/ ctl/ milter/.  The SQL sinks are
# sqlite3_prepare*, sqlite3_exec, and every function that passes its own
# `const char *sql` parameter to a sink (found to a fixpoint: the
# project's fg_query_prepare, pragma_int, query_int, prune_table ...).  At
# every call of a sink, the SQL argument must be one of
#   (1) a constant expression: string literals, constant macros (#defines
#       whose bodies are literals, numbers or other constant macros), or
#       COND ? CONST : CONST;
#   (2) an element of a table whose initialisers are constant (such as
#       statements[i].sql, top_sql[by], a local static const sql[]);
#   (3) the enclosing function's own `sql` parameter, when that function
#       is itself a sink (its callers are checked the same way);
#   (4) a local char buffer whose only writer is one snprintf with a
#       literal format of integer conversions (%d %u %ld ...) and constant
#       arguments (store_schema.c's "PRAGMA user_version = %d" line).
# Anything else fails, and sqlite3_mprintf / sqlite3_vmprintf /
# sqlite3_snprintf / sqlite3_str_* / asprintf may not appear at all.  The
# checker is itself checked on a bad sample first.
sqlcheck() {		# sqlcheck DIR...: prints "checked N" and "FAIL ..." lines
	perl - "$@" <<'PERL'
use strict; use warnings;
my (%src, %macro, %fmacro);
for my $dir (@ARGV) {
	for my $f (sort glob("$dir/*.c"), sort glob("$dir/*.h")) {
		local $/; open(my $fh, '<', $f) or die "$f: $!"; my $t = <$fh>;
		# Comments out, literals kept, newlines kept for line numbers.
		$t =~ s{("(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*')|/\*.*?\*/|//[^\n]*}
		       {defined $1 ? $1 : do { my $c = $&; $c =~ s/[^\n]/ /g; $c }}gse;
		$src{$f} = $t;
		while ($t =~ /^[ \t]*#[ \t]*define[ \t]+([A-Z_][A-Z0-9_]*)[ \t]+((?:[^\n\\]|\\\n)*)/mg) {
			$macro{$1} = $2;
		}
		while ($t =~ /^[ \t]*#[ \t]*define[ \t]+([A-Z_][A-Z0-9_]*)\(([^)]*)\)((?:[^\n\\]|\\\n)*)/mg) {
			$fmacro{$1} = [[map { s/^\s+|\s+$//gr } split /,/, $2], $3];
		}
	}
}
my $lit = qr/"(?:\\.|[^"\\\n])*"/;
sub strip_lits { my $e = shift; $e =~ s/$lit/ /g; $e =~ s/'(?:\\.|[^'\\])*'/ /g; $e }
my %const_macro_seen;
sub const_macro {
	my $m = shift;
	return 0 unless exists $macro{$m};
	return 1 if $const_macro_seen{$m}++;	# recursion guard
	return const_text($macro{$m});
}
sub const_text {	# literals, numbers, constant macros, operators
	my $e = shift;
	# A function-like macro: constant when its arguments are and its
	# body is, with the parameters standing for constants.
	while ($e =~ /\b([A-Z_][A-Z0-9_]*)\s*\(/g) {
		my $m = $1; my $at = $-[0];
		next unless $fmacro{$m};
		my ($args) = map { $_->[1] } grep { $_->[0] == pos($e) } calls($e, $m);
		return 0 unless defined $args;
		for my $a (split_args($args)) { return 0 unless const_text($a) }
		my ($params, $body) = @{$fmacro{$m}};
		for my $p (@$params) { $body =~ s/\b\Q$p\E\b/""/g }
		return 0 unless const_text($body);
		substr($e, $at, pos($e) - $at + length($args) + 1) = ' ';
		pos($e) = $at;
	}
	$e = strip_lits($e);
	$e =~ s/\\\n/ /g;
	for my $w ($e =~ /\b([A-Za-z_]\w*)\b/g) {
		next if $w =~ /^(?:sizeof|offsetof)$/;
		return 0 unless $w =~ /^[A-Z_][A-Z0-9_]*$/ && const_macro($w);
	}
	$e =~ s/\b[A-Za-z_]\w*\b/ /g;	# checked above
	return $e =~ /^[\s\d()+\-*\/|&<>~^,.xXa-fA-FuUlL]*$/;
}
sub split_args {	# top-level comma split of the text inside (...)
	my $s = shift; my @a; my ($d, $cur) = (0, '');
	while ($s =~ /\G($lit|'(?:\\.|[^'\\])*'|[(\[{]|[)\]}]|,|[^"'(\[{)\]},]+)/gc) {
		my $tok = $1;
		if ($tok =~ /^[(\[{]$/) { $d++ } elsif ($tok =~ /^[)\]}]$/) { $d-- }
		if ($tok eq ',' && $d == 0) { push @a, $cur; $cur = '' } else { $cur .= $tok }
	}
	push @a, $cur; return map { s/^\s+|\s+$//gr } @a;
}
sub calls {	# calls TEXT NAME: [offset, argtext] of every call
	my ($t, $name) = @_; my @r;
	while ($t =~ /\b\Q$name\E\s*\(/g) {
		my $start = pos($t); my $d = 1; my $i = $start;
		while ($d > 0 && $i < length $t) {
			my $rest = substr($t, $i);
			if ($rest =~ /^($lit|'(?:\\.|[^'\\])*')/) { $i += length $1; next }
			my $c = substr($t, $i, 1);
			$d++ if $c eq '('; $d-- if $c eq ')'; $i++;
		}
		push @r, [$start, substr($t, $start, $i - $start - 1)];
	}
	return @r;
}
sub line_of { my ($t, $off) = @_; return 1 + (substr($t, 0, $off) =~ tr/\n//) }
sub functions {	# [name, params, body_start, body_end] of every definition
	my $t = shift; my @f;
	while ($t =~ /^([a-z_]\w*)\s*\(([^()]*)\)\s*\{/mg) {
		my ($n, $p, $b) = ($1, $2, pos($t)); my $d = 1; my $i = $b;
		while ($d > 0 && $i < length $t) {
			my $rest = substr($t, $i);
			if ($rest =~ /^($lit|'(?:\\.|[^'\\])*')/) { $i += length $1; next }
			my $c = substr($t, $i, 1); $d++ if $c eq '{'; $d-- if $c eq '}'; $i++;
		}
		push @f, [$n, $p, $b, $i];
	}
	return @f;
}
sub enclosing { my ($fs, $off) = @_; for (@$fs) { return $_ if $off >= $_->[2] && $off < $_->[3] } undef }
sub table_const {	# NAME FILE-TEXT: NAME is a table of constant initialisers
	my ($name, $t) = @_;
	while ($t =~ /\bconst\b(?:\s+struct\s*\w*\s*\{[^{}]*\})?[^;{}]*\b\Q$name\E\s*\[[^\]]*\]\s*=\s*\{/g) {
		my $b = pos($t); my $d = 1; my $i = $b;
		while ($d > 0 && $i < length $t) {
			my $rest = substr($t, $i);
			if ($rest =~ /^($lit)/) { $i += length $1; next }
			my $c = substr($t, $i, 1); $d++ if $c eq '{'; $d-- if $c eq '}'; $i++;
		}
		my $init = strip_lits(substr($t, $b, $i - $b - 1));
		$init =~ s/\boffsetof\s*\([^()]*\)/ /g;	# field offsets
		$init =~ s/\b[A-Z_][A-Z0-9_]*\s*\(\s*[a-z_]\w*\s*,/ /g;	# STMT(field, ...
		$init =~ s/\.\w+\s*=|\[\s*\w+\s*\]\s*=/ /g;	# designators
		$init =~ tr/{}/  /;
		return const_text($init);
	}
	return 0;
}
my %sink = (sqlite3_prepare => 1, sqlite3_prepare_v2 => 1, sqlite3_prepare_v3 => 1,
            sqlite3_prepare16 => 1, sqlite3_prepare16_v2 => 1, sqlite3_exec => 1);
# Wrappers: a function handing its own sql parameter to a sink.
for (my $grew = 1; $grew;) {
	$grew = 0;
	for my $f (keys %src) {
		for my $fn (functions($src{$f})) {
			my ($n, $p) = @$fn;
			next if $sink{$n};
			my @params = split_args($p);
			my ($idx) = grep { $params[$_] =~ /\bconst\s+char\s*\*\s*sql$/ } 0 .. $#params;
			next unless defined $idx;
			my $body = substr($src{$f}, $fn->[2], $fn->[3] - $fn->[2]);
			for my $s (keys %sink) {
				for my $c (calls($body, $s)) {
					my @a = split_args($c->[1]);
					if (($a[$sink{$s}] // '') eq 'sql') { $sink{$n} = $idx; $grew = 1 }
				}
			}
		}
	}
}
my ($checked, @fail) = (0);
for my $f (sort keys %src) {
	my $t = $src{$f};
	while ($t =~ /\b(sqlite3_v?mprintf|sqlite3_v?snprintf|sqlite3_str_\w+|v?asprintf)\s*\(/g) {
		push @fail, "$f:" . line_of($t, pos $t) . ": $1 builds text that could reach SQL";
	}
	my @fs = functions($t);
	for my $s (sort keys %sink) {
		for my $c (calls($t, $s)) {
			my $fn = enclosing(\@fs, $c->[0]);
			# A definition (name at column 0) or a prototype, not a call.
			my $bol = rindex($t, "\n", $c->[0]) + 1;
			my $pre = substr($t, $bol, $c->[0] - $bol);
			$pre =~ s/\b\Q$s\E\s*\($//;
			next if $pre eq '' || ($pre =~ /^(?:(?:static|extern|const|unsigned|struct)\s+)*\w+[\s*]+$/ && $pre !~ /\breturn\b/);
			my @a = split_args($c->[1]);
			my $e = $a[$sink{$s}] // '';
			my $where = "$f:" . line_of($t, $c->[0]) . ": $s";
			$checked++;
			my $ok = 0;
			my $cexpr = sub {
				my $x = shift;
				return 1 if $x =~ /$lit/ && const_text($x);
				if ($x =~ /^(.*?)\?(.*):(.*)$/s) {	# COND ? A : B
					my ($a, $b) = ($2, $3);
					return 1 if $a =~ /$lit/ && const_text($a) && $b =~ /$lit/ && const_text($b);
				}
				return 0;
			};
			if ($cexpr->($e)) { $ok = 1 }
			elsif ($e =~ /^(\w+)\s*\[[^\]]*\](?:\s*\.\s*\w+)?$/) { $ok = table_const($1, $t) }
			elsif ($e =~ /^\w+$/ && $fn) {
				my @params = split_args($fn->[1]);
				if (grep { /\bconst\s+char\s*\*\s*\Q$e\E$/ } @params) {
					$ok = exists $sink{$fn->[0]};
				} else {	# rule 4: a local buffer
					my $body = substr($t, $fn->[2], $fn->[3] - $fn->[2]);
					my @w = grep { (split_args($_->[1]))[0] eq $e } calls($body, 'snprintf');
					my @other = grep { /\b(?:strcpy|strcat|strncpy|strncat|memcpy|sprintf|vsnprintf)\s*\(\s*\Q$e\E\b/ } ($body);
					if (@w == 1 && !@other && $body =~ /\bchar\s+\Q$e\E\s*\[/) {
						my @sa = split_args($w[0][1]);
						my ($fmt, @args) = @sa[2 .. $#sa];
						my $fs = $fmt =~ /^$lit$/ ? $fmt : '';
						(my $conv = $fs) =~ s/%%//g;
						my @convs = $conv =~ /%[-+ #0]*\d*(?:\.\d+)?([a-zA-Z]+)/g;
						# Only integer conversions: whatever the
						# arguments, the text is the literal format
						# and digits (a number a PRAGMA needs).
						$ok = $fs ne '' && !grep({ !/^(?:d|i|u|ld|lu|lld|llu|x)$/ } @convs);
					}
				}
			}
			push @fail, "$where: SQL argument is not constant: $e" unless $ok;
		}
	}
}
print "checked $checked\n";
print "FAIL $_\n" for @fail;
PERL
}

mkdir -p "$T/bad"
cat >"$T/bad/bad.c" <<'EOF'
static int
lookup(sqlite3 *db, const char *key)
{
	char buf[256];
	sqlite3_stmt *s;

	snprintf(buf, sizeof(buf), "SELECT * FROM bans WHERE key = '%s'", key);
	return sqlite3_prepare_v2(db, buf, -1, &s, NULL);
}

static int
wrap(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

static int
use(sqlite3 *db, const char *name)
{
	char *q = sqlite3_mprintf("DELETE FROM %q", name);
	wrap(db, "SELECT 1");
	return wrap(db, q);
}
EOF
out=$(sqlcheck "$T/bad")
ok "the SQL checker flags a %s-built statement" grep -q 'FAIL .*bad.c:8: sqlite3_prepare_v2: SQL argument is not constant: buf' <<<"$out"
ok "... sqlite3_mprintf" grep -q 'FAIL .*sqlite3_mprintf' <<<"$out"
ok "... and a wrapper called with built text" grep -q 'FAIL .*bad.c:22: wrap: SQL argument is not constant: q' <<<"$out"
ok "... but not a wrapper called with a literal" bash -c "! grep -q 'bad.c:21' <<<'$out'"

out=$(cd "$FG_SOURCE_DIR" && sqlcheck lib ctl milter)
n=$(sed -n 's/^checked //p' <<<"$out")
echo "# $n SQL calls checked in lib/ ctl/ milter/"
ok "the scan found the SQL calls ($n, at least 40)" [ "${n:-0}" -ge 40 ]
fails=$(grep '^FAIL' <<<"$out")
[ -n "$fails" ] && sed 's/^/#   /' <<<"$fails"
is "$(grep -c '^FAIL' <<<"$out")" 0 "no SQL statement is built from data"

if [ "$(id -u)" != 0 ]; then
	echo "# skipping the daemon checks: they need root (start as root, become another user)"
	done_testing
fi

# ---- run as the user, after binding -------------------------------------
user=nobody
ugroup=$(id -gn "$user")
sgroup=mail
getent group "$sgroup" >/dev/null || sgroup=$ugroup
mkdir -m 0750 "$T/priv"; chown "$user:$ugroup" "$T/priv"
cat >"$T/p.conf" <<EOF
user = "$user"; socket_group = "$sgroup"; pid_file = "";
log_level = "info"; flush_interval = "100ms";
exempt = { networks = [ ]; };
rules = (
	{ name = "sender"; type = "mail_rate"; per = "sender_domain";
	  limit = 1; window = "1m"; action = "tempfail";
	  reply = { code = 451; status = "4.7.1"; text = "100% busy %s %n %x"; }; },
	{ name = "rcpt-rate"; type = "recipient_rate"; per = "address";
	  limit = 1; window = "1m"; action = "tempfail"; }
);
EOF
"$FG_BIN" -f -c "$T/p.conf" -p "unix:$T/priv/fg.sock" -d "$T/priv/fg.db" 2>"$T/p.log" &
ppid=$!; fg_pids+=("$ppid")
wait_for "[ -S '$T/priv/fg.sock' ] && grep -q started '$T/p.log'" 15
ok "the daemon starts as root with user = $user" kill -0 "$ppid"

uid=$(id -u "$user"); gid=$(id -g "$user")
is "$(awk '/^Uid:/ { print $2, $3, $4, $5 }' /proc/$ppid/status)" "$uid $uid $uid $uid" \
	"Uid: real, effective, saved and filesystem are $user's"
is "$(awk '/^Gid:/ { print $2, $3, $4, $5 }' /proc/$ppid/status)" "$gid $gid $gid $gid" \
	"Gid: real, effective, saved and filesystem are $ugroup's"
is "$(awk '/^Groups:/ { $1 = ""; print }' /proc/$ppid/status | tr ' ' '\n' | sed '/^$/d' | sort -n | tr '\n' ' ')" \
	"$(id -G "$user" | tr ' ' '\n' | sort -n | tr '\n' ' ')" \
	"Groups: exactly $user's groups (root's are gone)"
is "$(awk '/^CapEff:/ { print $2 }' /proc/$ppid/status)" 0000000000000000 "no effective capabilities left"
is "$(awk '/^CapPrm:/ { print $2 }' /proc/$ppid/status)" 0000000000000000 "no permitted capabilities left"
ok "the log says which uid it runs as" grep -q "running as uid $uid" "$T/p.log"

is "$(stat -c '%a %U %G' "$T/priv/fg.sock")" "660 root $sgroup" \
	"the socket is born 0660 with group socket_group ($sgroup), and stays root's"

printf 'connect host=ok.example addr=192.0.2.1 family=4 port=25\nexpect continue\nhelo ok.example\nexpect continue\nquit\n' |
	"$MILTC" -s "unix:$T/priv/fg.sock" -t 10 -q -
ok "the unprivileged daemon answers" [ $? -eq 0 ]
wait_for "[ \"\$(sqlite3 '$T/priv/fg.db' 'SELECT count(*) FROM events')\" -ge 2 ]" 5
for f in fg.db fg.db-wal fg.db-shm; do
	if [ -e "$T/priv/$f" ]; then
		is "$(stat -c '%a %U' "$T/priv/$f")" "640 $user" "$f is 0640 and $user's"
	else
		ok "$f exists while the daemon runs" false
	fi
done

# ---- files placed beforehand in the user's directories --------------------
# Whoever runs as the user owns the database directory and may put links
# there before a root start; nothing root does may follow them.  The
# target is a root-owned file; after each start it must be as it was.
printf 'root only\n' >"$T/target"; chmod 0600 "$T/target"
target_is_intact() {
	[ "$(stat -c '%a %U %G %s' "$T/target")" = "600 root root 10" ] &&
		[ "$(cat "$T/target")" = "root only" ]
}
swap_start() {		# swap_start NAME FILES...: links FILES to the target, starts
	local name=$1 f; shift
	mkdir -m 0750 "$T/$name"
	for f in "$@"; do ln -s "$T/target" "$T/$name/$f"; done
	chown -h "$user:$ugroup" "$T/$name" "$T/$name"/*
	"$FG_BIN" -f -c "$T/p.conf" -p "unix:$T/$name/fg.sock" -d "$T/$name/fg.db" \
		2>"$T/$name.log" &
	SWAP_PID=$!; fg_pids+=("$SWAP_PID")
	wait_for "! kill -0 $SWAP_PID 2>/dev/null || grep -q started '$T/$name.log'" 15
	if kill -0 "$SWAP_PID" 2>/dev/null; then
		fg_stop "$SWAP_PID"
		SWAP_RC=started
	else
		wait "$SWAP_PID"; SWAP_RC=$?
	fi
}
swap_start swap1 fg.db-wal fg.db-shm
ok "-wal and -shm linked to a root file: the target keeps its owner, mode and content" target_is_intact
is "$SWAP_RC" 74 "... and the start is refused (exit 74)"
ok "... saying which file is a link" grep -q "fg.db-wal: is a symbolic link" "$T/swap1.log"
swap_start swap2 fg.db-shm
ok "-shm alone linked: the target is intact" target_is_intact
ok "... and the link is refused" grep -q "fg.db-shm: is a symbolic link" "$T/swap2.log"
swap_start swap3 fg.db
ok "the database itself linked: the target is intact" target_is_intact
ok "... and the link is refused" grep -q "fg.db: is a symbolic link" "$T/swap3.log"
# The swap itself: as the user, wait for the -wal and -shm the start
# creates and put a link to the target in the place of each at once (a
# rename over them), while the daemon goes on starting.
mkdir -m 0750 "$T/race"; chown "$user:$ugroup" "$T/race"
cat >"$T/swap.py" <<'PY'
import os, stat, sys, time
d, target, mark = sys.argv[1:4]
open(mark, "w").close()
done, deadline = [], time.monotonic() + 20
while len(done) < 2 and time.monotonic() < deadline:
    for suf in ("-wal", "-shm"):
        p = os.path.join(d, "fg.db" + suf)
        if suf in done:
            continue
        try:
            if not stat.S_ISREG(os.lstat(p).st_mode):
                continue
        except FileNotFoundError:
            continue
        os.symlink(target, p + ".new")
        os.rename(p + ".new", p)
        done.append(suf)
print(" ".join(sorted(done)))
PY
setpriv --reuid="$user" --regid="$ugroup" --clear-groups \
	/usr/bin/python3 "$T/swap.py" "$T/race" "$T/target" "$T/race/.ready" >"$T/swap.out" 2>&1 &
swapper=$!
wait_for "[ -e '$T/race/.ready' ]" 10
"$FG_BIN" -f -c "$T/p.conf" -p "unix:$T/race/fg.sock" -d "$T/race/fg.db" 2>"$T/race.log" &
race_pid=$!; fg_pids+=("$race_pid")
wait "$swapper"
echo "# swapped for links: $(cat "$T/swap.out")"
is "$(cat "$T/swap.out")" "-shm -wal" "the user swapped -wal and -shm for links to a root file during the start"
wait_for "! kill -0 $race_pid 2>/dev/null || grep -q started '$T/race.log'" 15
ok "... and the target keeps its owner, mode and content" target_is_intact
kill -0 "$race_pid" 2>/dev/null && fg_stop "$race_pid"

mkdir -m 0750 "$T/pidd"; chown "$user:$ugroup" "$T/pidd"
ln "$T/target" "$T/priv.pid"
"$FG_BIN" -f -c "$T/p.conf" -p "unix:$T/pidd/fg.sock" -d "$T/pidd/fg.db" -P "$T/priv.pid" \
	2>"$T/pid.log" &
pid_pid=$!; fg_pids+=("$pid_pid")
wait_for "grep -q started '$T/pid.log'" 15
ok "a pid file path hard-linked to a root file: the target is intact" target_is_intact
is "$(cat "$T/priv.pid" 2>/dev/null)" "$pid_pid" "... and the pid file is a new file with the pid"
is "$(stat -c '%h %U' "$T/priv.pid")" "1 root" "... of its own (one link), root's"
fg_stop "$pid_pid"

# ---- a database other users can write ------------------------------------
# (bounded: a daemon that took the file would run on)
mkdir -m 0750 "$T/ww"; chown "$user:$ugroup" "$T/ww"
sqlite3 "$T/ww/fg.db" 'PRAGMA user_version = 0; VACUUM;' && chown "$user:$ugroup" "$T/ww/fg.db"
chmod 0666 "$T/ww/fg.db"
out=$(timeout 20 "$FG_BIN" -f -c "$T/p.conf" -p "unix:$T/ww/fg.sock" -d "$T/ww/fg.db" 2>&1); rc=$?
is "$rc" 74 "a world-writable database placed beforehand is refused (exit 74)"
ok "... saying why" grep -q "fg.db: mode 0666 lets other users write it; chmod go-w it" <<<"$out"
is "$(stat -c %a "$T/ww/fg.db")" 666 "... and left as it was"
chmod 0640 "$T/ww/fg.db"; chmod 0777 "$T/ww"
out=$(timeout 20 "$FG_BIN" -f -c "$T/p.conf" -p "unix:$T/priv/ww.sock" -d "$T/ww/fg.db" 2>&1); rc=$?
is "$rc" 74 "a database directory every user can write is refused"
ok "... saying why" grep -q "$T/ww: mode 0777 lets other users write it" <<<"$out"
chmod 0750 "$T/ww"; chown daemon "$T/ww/fg.db"
out=$(timeout 20 "$FG_BIN" -f -c "$T/p.conf" -p "unix:$T/priv/ww.sock" -d "$T/ww/fg.db" 2>&1); rc=$?
is "$rc" 74 "a database of a third user is refused"
ok "... saying whose it is" grep -q "fg.db: owned by uid $(id -u daemon), not by uid $(id -u "$user") or root" <<<"$out"

# ---- client text with format specifiers ------------------------------------
{
	echo 'connect host=%s%n%x%p.example addr=192.0.2.50 family=4 port=25'
	echo 'expect continue'
	echo 'helo "%n%n%n%s%s%s%x%p%99999999d"'
	echo 'expect continue'
	echo 'mail <%s%n@%x%n.example>'
	echo 'expect continue'
	echo 'macro stage=R {rcpt_mailer}=local {rcpt_host}=localhost "{rcpt_addr}=%n%s@%s"'
	echo 'rcpt <%n%s@%s%s.example>'
	echo 'expect continue'
	echo 'rcpt <%x%x%x%n@%s.example>'
	echo 'expect 451'
	echo 'abort'
	echo 'mail <%s%n@%x%n.example>'
	echo 'expect 451 text="100%% busy %%s %%n %%x"'
	echo 'quit'
} | "$MILTC" -s "unix:$T/priv/fg.sock" -t 10 - >"$T/fmt.out" 2>&1
ok "a session full of format specifiers is answered as configured" [ $? -eq 0 ]
ok "every % of the reply is doubled on the wire (smfi_setreply is a format for the MTA)" \
	grep -q '"451 4.7.1 100%% busy %%s %%n %%x"' "$T/fmt.out"
printf 'connect host=after.example addr=192.0.2.51 family=4 port=25\nexpect continue\nquit\n' |
	"$MILTC" -s "unix:$T/priv/fg.sock" -t 10 -q -
ok "the daemon survives and keeps answering" [ $? -eq 0 ]
ok "... still the same process" kill -0 "$ppid"
ok "the log shows the HELO literally" grep -qF 'helo=%n%n%n%s%s%s%x%p%99999999d' "$T/p.log"
ok "... the host name literally" grep -qF 'host=%s%n%x%p.example' "$T/p.log"
ok "... and the sender domain key literally" grep -qF 'sender-domain:%x%n.example' "$T/p.log"
ok "no (null) or expanded pointer in the log" bash -c "! grep -qE '\(null\)|0x[0-9a-f]{6,}|\(nil\)' '$T/p.log'"
fg_stop "$ppid"; is "$?" 0 "the unprivileged daemon stops cleanly"
db="$T/priv/fg.db"
is "$(sqlite3 "$db" "SELECT helo FROM events WHERE client = '192.0.2.50' AND kind = 'helo'")" \
	'%n%n%n%s%s%s%x%p%99999999d' "the database stores the HELO literally"
is "$(sqlite3 "$db" "SELECT rcpt FROM events WHERE client = '192.0.2.50' AND kind = 'rcpt' ORDER BY id LIMIT 1")" \
	'%n%s@%s%s.example' "... and the recipient, bare"
is "$(stat -c '%a %U' "$db")" "640 $user" "the database is still 0640 and $user's after the stop"

# ---- root without a user ------------------------------------------------
printf 'user = ""; pid_file = "";\n' >"$T/root.conf"
out=$("$FG_BIN" -f -c "$T/root.conf" -p "unix:$T/r.sock" -d "$T/r.db" 2>&1); rc=$?
is "$rc" 78 "as root without a user: refuses to start (exit 78, EX_CONFIG)"
ok "... and says why" grep -q 'refusing to run as root' <<<"$out"
ok "... before touching the socket or the database" [ ! -e "$T/r.sock" -a ! -e "$T/r.db" ]
printf 'user = ""; allow_root = true; pid_file = "";\n' >"$T/root.conf"
"$FG_BIN" -f -c "$T/root.conf" -p "unix:$T/r.sock" -d "$T/r.db" 2>"$T/r.log" &
rpid=$!; fg_pids+=("$rpid")
wait_for "grep -q started '$T/r.log' 2>/dev/null" 15
is "$(awk '/^Uid:/ { print $2 }' /proc/$rpid/status 2>/dev/null)" 0 "with allow_root = true it starts, and stays root"
fg_stop "$rpid"; is "$?" 0 "and stops cleanly"
ok "no sanitizer report in any daemon log" \
	bash -c "! grep -lE 'ThreadSanitizer|AddressSanitizer|LeakSanitizer|runtime error:' '$T'/*.log"

done_testing
