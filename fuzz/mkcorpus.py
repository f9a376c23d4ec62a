#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/<target>/ from scratch.

    python3 fuzz/mkcorpus.py

The seeds are committed; run this only after changing an input format
(the encoders below mirror the readers in fuzz_policy.c, fuzz_session.c
and fuzz_glue.c)
or to add seeds.  It removes and rewrites fuzz/corpus/ entirely.
"""
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "corpus")


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("latin-1")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- config ---------------------------------------------------------------

def corpus_config():
    put("config", "floodgate.conf",
        open(os.path.join(ROOT, "etc", "floodgate.conf"), "rb").read())
    tdir = os.path.join(ROOT, "t", "config")
    for name in sorted(os.listdir(tdir)):
        if name.endswith(".conf"):
            put("config", "t-" + name,
                open(os.path.join(tdir, name), "rb").read())
    seeds = {
        "empty": "",
        "comment-only": "# nothing\n",
        "daemon": 'socket = "inet:8891@127.0.0.1";\nsocket_mode = "0600";\n'
                  'socket_group = "postfix";\ndatabase = "/tmp/fg.db";\n'
                  'user = "";\nallow_root = true;\npid_file = "";\n'
                  'log_level = "debug";\non_error = "accept";\n'
                  'milter_timeout = "1h";\n',
        "store": 'retention = "30d";\nflush_interval = "250ms";\n'
                 'queue_size = 1024;\nnetwork_prefix4 = 16;\n'
                 'network_prefix6 = 48;\n',
        "durations": 'max_delay = 5;\nmta_timeout = "1h";\n'
                     'retention = "2w";\nflush_interval = "100ms";\n',
        "banned": 'banned_action = "reject";\nbanned_reply = { code = 554; '
                  'status = "5.7.1"; text = [ "banned ${count}", "100%" ]; };\n',
        "banned-bad": 'banned_action = "delay";\nbanned_reply = { code = 250;'
                      ' status = "4.7"; text = [ ]; colour = 1; };\n',
        "exempt": 'exempt = { networks = [ "10.0.0.0/8", "192.0.2", '
                  '"2001:db8::/32", "::ffff:1.2.3.4", "10.0.0.0/8" ];\n'
                  '  authenticated = false; hostnames = [ ".Example.ORG", '
                  '"*.x.example", "" ]; daemons = [ "MSA", "sub mission" ]; };\n',
        "exempt-string": 'exempt = { networks = "127.0.0.1"; hostnames = '
                         '"localhost"; daemons = "ORIG"; };\n',
        "escapes": 'socket = "unix:/run/\\n/x";\nuser = "a\\tb";\n'
                   'pid_file = "rel\\x01ative";\nlog_level = "\\x1b[31m";\n',
        "unknown": 'colour = "red";\nexempt = { colour = 1; };\n'
                   'rules = ( { name = "x"; type = "helo_rate"; colour = 2; '
                   'limit = 1; window = "1m"; } );\n',
        "types": 'socket = 1;\nallow_root = "yes";\nqueue_size = "big";\n'
                 'max_delay = true;\nsocket_mode = 660;\nmonitor = 1;\n'
                 'rules = { };\nexempt = [ ];\n',
        "ranges": 'queue_size = 9999999999;\nnetwork_prefix4 = 33;\n'
                  'max_delay = "1000s";\nmta_timeout = "0s";\n'
                  'retention = "99999999999999999999d";\n',
        "cross": 'max_delay = "10s";\nmta_timeout = "10s";\n'
                 'retention = "1h";\nrules = ( { name = "w"; type = '
                 '"mail_rate"; limit = 1; window = "300d"; } );\n',
        "rule-types": 'rules = (\n' + ''.join(
            '  { name = "r%d"; type = "%s"; limit = %d;%s },\n' % (
                i, t, i + 1,
                '' if t in ("concurrency", "bad_recipient_throttle",
                            "recipients_per_message") else ' window = "1m";')
            for i, t in enumerate([
                "connection_rate", "concurrency", "invalid_recipients",
                "recipient_rate", "rejected_recipients", "helo_rate",
                "mail_rate", "bad_recipient_throttle",
                "recipients_per_message"])) +
            '  { name = "last"; type = "mail_rate"; limit = 0; window = 60; }\n);\n',
        "per": 'rules = (\n' + ''.join(
            '  { name = "p%d"; type = "recipient_rate"; per = "%s"; '
            'limit = 5; window = "1h"; },\n' % (i, p)
            for i, p in enumerate(["address", "network", "helo",
                                   "recipient_domain", "sender_domain",
                                   "global", "session", "message"])) +
            '  { name = "p9"; type = "bad_recipient_throttle"; per = "global";'
            ' limit = 1; }\n);\n',
        "ladder": 'max_delay = "8s";\nrules = ( { name = "d"; type = '
                  '"invalid_recipients"; per = "network"; prefix4 = 20; '
                  'prefix6 = 56; limit = 20; window = "1h"; ratio = 0.3; '
                  'min_sample = 50; decay = "2h";\n  ladder = (\n'
                  '    { over = 1; action = "delay"; delay = "2s"; growth = '
                  '"linear"; then = "tempfail"; reply = { code = 451; status'
                  ' = "4.7.1"; text = "Slow ${count}/${limit} ${window} '
                  '${delay}"; }; },\n    { over = 10; action = "tempfail"; },\n'
                  '    { over = 20; action = "reject"; reply = { code = 550; '
                  'text = [ "a", "b", "c" ]; }; },\n    { over = 30; action = '
                  '"ban"; ban = "1h"; }\n  );\n  networks = ( { network = '
                  '"192.0.2"; limit = 0; }, { network = "2001:db8::/32"; '
                  'limit = 50; } ); } );\n',
        "ladder-bad": 'rules = ( { name = "d"; type = "mail_rate"; limit = 1;'
                      ' window = "1m"; action = "reject"; ladder = (\n'
                      '  { over = 2; action = "delay"; },\n'
                      '  { over = 2; action = "ban"; delay = "1s"; then = '
                      '"ban"; },\n  { action = "tempfail"; reply = { code = '
                      '550; }; },\n  5,\n  { over = 0; action = "continue"; '
                      'reply = { code = 451; text = "x"; }; }\n ); } );\n',
        "ladder-long": 'rules = ( { name = "l"; type = "helo_rate"; limit = 1;'
                       ' window = "1m"; ladder = (' + ', '.join(
                           '{ over = %d; action = "tempfail"; }' % (i + 1)
                           for i in range(17)) + ' ); } );\n',
        "shorthand": 'rules = (\n  { name = "a"; type = "connection_rate"; '
                     'limit = 5; window = "1m"; action = "delay"; delay = '
                     '"500ms"; growth = "doubling"; then = "disconnect"; },\n'
                     '  { name = "b"; type = "concurrency"; limit = 2; action'
                     ' = "ban"; ban = "10m"; reply = { code = 421; status = '
                     '"4.7.0"; text = "bye"; }; },\n  { name = "c"; type = '
                     '"recipients_per_message"; limit = 50; action = '
                     '"reject"; },\n  { name = "d"; type = '
                     '"bad_recipient_throttle"; limit = 3; delay = "2s"; '
                     'monitor = true; }\n);\n',
        "overrides": 'rules = ( { name = "o"; type = "connection_rate"; per ='
                     ' "network"; limit = 10; window = "1m"; networks = (\n'
                     '  { network = "192.0.2"; limit = 0; },\n'
                     '  { network = "192.0.2.0/24"; limit = 1; },\n'
                     '  { network = "300.0.0.1"; limit = 1; },\n'
                     '  { network = "10/8"; limit = -1; },\n'
                     '  { network = "::/0"; limit = 1000000001; },\n'
                     '  { limit = 3; },\n  "x",\n'
                     '  { network = "fe80::1%eth0"; limit = 1; net = 2; }\n'
                     ' ); } );\n',
        "names": 'rules = (\n  { name = "dup"; type = "helo_rate"; limit = 1;'
                 ' window = "1m"; },\n  { name = "dup"; type = "helo_rate"; '
                 'limit = 1; window = "1m"; },\n  { name = "bad name!"; type '
                 '= "helo_rate"; limit = 1; window = "1m"; },\n  { name = "'
                 + "n" * 70 + '"; type = "nope"; },\n  { type = '
                 '"mail_rate"; },\n  7\n);\n',
        "reply-escapes": 'banned_action = "tempfail";\nbanned_reply = { code '
                         '= 451; status = "4.7.1"; text = [ "a\\nb", '
                         '"\\x7f", "' + "%" * 500 + '" ]; };\n',
        "syntax-error": 'rules = ( { name = "x" type = "helo_rate"; } );\n',
        "syntax-string": 'x = "unterminated;\n',
        "syntax-concat": 'socket = "unix:" "/run/x" "";\n',
        "list-types": 'rules = ( { name = "x"; type = "helo_rate"; limit = 1;'
                      ' window = [ "1m" ]; ladder = { over = 1; }; networks '
                      '= [ 1, 2 ]; } );\n',
        "groups": 'exempt = { networks = ( "10.0.0.0/8", 5 ); hostnames = '
                  '[ 1 ]; daemons = { a = 1; }; };\n',
        "int64": 'queue_size = 2048L;\nrules = ( { name = "x"; type = '
                 '"helo_rate"; limit = 5L; window = 60L; min_sample = 1L; '
                 'ratio = 1; } );\n',
        "float": 'rules = ( { name = "x"; type = "invalid_recipients"; '
                 'limit = 5; window = "1h"; ratio = 1.5e0; min_sample = '
                 '0.5; decay = 0.5; } );\n',
        "monitor": 'monitor = true;\nrules = ( { name = "x"; type = '
                   '"helo_rate"; per = "helo"; limit = 5; window = "1m"; '
                   'monitor = true; action = "ban"; ban = "1d"; } );\n',
    }
    for name, text in seeds.items():
        put("config", name + ".conf", text)


# ---- net ----------------------------------------------------------------

def corpus_net():
    groups = {
        "v4": ["192.0.2.1", "0.0.0.0", "255.255.255.255", "10.0.0.1",
               "1.2.3", "192.168", "10", "01.2.3.4", "256.1.1.1",
               "1.2.3.4.5", "1..2.3", " 1.2.3.4", "1.2.3.4 "],
        "v6": ["::", "::1", "2001:db8::1", "2001:DB8:0:0:0:0:0:1",
               "2001:db8:0:0:1:0:0:1", "fe80::1:2:3:4",
               "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8",
               "1::", "1:2:3:4:5:6:7:8:9", ":::", "1:::2", "12345::",
               "g::1", "fe80::1%eth0"],
        "v6-embedded": ["::ffff:192.0.2.1", "::192.0.2.1",
                        "64:ff9b::192.0.2.33", "1:2:3:4:5:6:1.2.3.4",
                        "::ffff:1.2.3", "1.2.3.4::", "::FFFF:0:0"],
        "brackets": ["[192.0.2.1]", "[2001:db8::1]", "[IPv6:2001:db8::1]",
                     "IPv6:2001:db8::1", "ipv6:::1", "IPv6:192.0.2.1",
                     "[", "[]", "[::1", "::1]", "[[::1]]"],
        "prefixes": ["192.0.2.0/24", "192.0.2.7/24", "0.0.0.0/0",
                     "10.0.0.0/8", "192.0.2.1/32", "192.0.2.1/33",
                     "192.0.2.0/024", "192.0.2.0/", "/24", "2001:db8::/32",
                     "2001:db8::1/128", "::/0", "::/129", "::ffff:0:0/96",
                     "::ffff:192.0.2.0/120", "::ffff:0:0/95",
                     "[2001:db8::]/32", "192.0.2/24"],
        "keys": ["*", "helo:mx.Example.ORG", "HELO:X Y", "rcpt-domain:"
                 "Example.org...", "sender-domain:a@b", "rcpt-domain:",
                 "helo:", "192.0.2.7/32", "2001:db8::1/64", "**",
                 "helo\x00x", "bogus"],
        "table": ["0.0.0.0/0", "10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24",
                  "10.1.2.3", "10.1.2.3/32", "10.128.0.0/9", "11.0.0.0/8",
                  "::/0", "2001:db8::/32", "2001:db8:8000::/33",
                  "2001:db8::1", "2001:db8::/32", "10.1.2.4"],
        "table-deep": ["1.2.3.%d" % i for i in range(0, 40, 3)] +
                      ["1.2.3.0/%d" % i for i in range(24, 33)] +
                      ["2001:db8::%x/%d" % (i, 120 + i % 9) for i in range(8)],
    }
    for name, toks in groups.items():
        put("net", name, "\n".join(toks))
        for i, t in enumerate(toks[:6]):
            put("net", "%s-%d" % (name, i), t)
    put("net", "raw-v4mapped", b"\0" * 10 + b"\xff\xff\xc0\x00\x02\x01")
    put("net", "raw-v6", bytes(range(1, 17)))
    put("net", "empty", b"")


# ---- text -----------------------------------------------------------------

def corpus_text():
    seeds = {
        "helo-plain": (0, ["mx.example.org"]),
        "helo-crlf": (0, ["evil\r\nInjected: line\r\n"]),
        "helo-ansi": (0, ["\x1b[2J\x1b[31mred\x07\x7f"]),
        "helo-high": (0, ["m\xe9ll\xf6.example\xff\x80"]),
        "helo-long": (0x30, ["A" * 400]),
        "helo-backslash": (0, ["\\x41\\\\\\"]),
        "helo-spaces": (0, ["  MX . Example . ORG  "]),
        "helo-literal": (0, ["[192.0.2.1]"]),
        "addr-plain": (0, ["<user@Example.ORG>"]),
        "addr-route": (0, ["<@a.example,@b.example:user@c.example>"]),
        "addr-quoted": (0, ['<"a@b"@example.org>']),
        "addr-dots": (0, ["<user@example.org...>  \t"]),
        "addr-nodomain": (0, ["<postmaster>"]),
        "addr-null": (0, ["<>"]),
        "addr-junk": (0, ["user@exa mple\x01.org>\x00"]),
        "addr-many-at": (0, ["a@b@c@@d@"]),
        "rcpt-postfix": (0, ["error", "5.1.1", "Recipient address rejected:"
                             " User unknown in local recipient table"]),
        "rcpt-sendmail": (0, ["error", "5.1.1", "550 5.1.1 User unknown"]),
        "rcpt-relay": (0, ["error", "5.7.1", "Relay access denied"]),
        "rcpt-temp": (0, ["ERROR", "450 4.1.1", "no such user here"]),
        "rcpt-local": (0, ["local", "example.org", "user"]),
        "rcpt-virtual": (0, ["virtual", "", "user@example.org"]),
        "rcpt-nohost": (2, ["error", "", "mailbox unavailable"]),
        "rcpt-noaddr": (4, ["error", "5.1.10", ""]),
        "rcpt-none": (7, ["error", "5.1.1", "x"]),
        "rcpt-status-only": (0, ["error", "5.1.1 ", ""]),
        "rcpt-short": (0, ["error", "5", "5.1"]),
        "size-seed": (0xf8, ["x" * 50, "y\x01" * 30, "\\" * 40]),
    }
    for name, (flags, fields) in seeds.items():
        put("text", name, bytes([flags]) +
            b"\0".join(f.encode("latin-1") for f in fields))


# ---- policy -----------------------------------------------------------------

def count(n):
    """fz_count()"""
    if n < 240:
        return bytes([n])
    if n < 65536:
        return bytes([240]) + struct.pack(">H", n)
    if n < 2 ** 32:
        return bytes([241]) + struct.pack(">I", n)
    if n == 2 ** 63 - 1:
        return bytes([242])
    return bytes([250]) + struct.pack(">Q", n << 1)


def s(text):
    b = text.encode("latin-1")
    return bytes([len(b)]) + b


def policy(cfg=0, stage=0, addr=None, auth=False, helo=None, sender=None,
           rcpt=None, host=None, daemon=None, rclass=1, inval=0, mrcpts=0,
           delayed=0, now=("base", 0), counts=(0,) * 8, conc=(0,) * 4,
           bans=0, levels=((0, 0, 0),) * 4, neg=False):
    flags = 0
    if addr is not None:
        flags |= 1
        if len(addr) == 16:
            flags |= 2
    if auth:
        flags |= 4
    for bit, v in ((8, helo), (16, sender), (32, rcpt), (64, host),
                   (128, daemon)):
        if v is not None:
            flags |= bit
    out = bytes([cfg | (0x80 if neg else 0), flags, stage])
    if addr is not None:
        out += bytes(addr)
    out += bytes([rclass]) + count(inval) + count(mrcpts) + count(delayed)
    kind, val = now
    if kind == "base":
        out += bytes([4]) + struct.pack(">I", val)
    elif kind == "zero":
        out += bytes([0])
    elif kind == "raw":
        out += bytes([1]) + struct.pack(">Q", val)
    elif kind == "neg":
        out += bytes([2]) + struct.pack(">I", val)
    else:
        out += bytes([3])
    for c in counts:
        out += count(c)
    for c in conc:
        out += count(c)
    out += bytes([bans])
    for found, level, age in levels:
        # the reader takes (b >> 2) % 20, bit 7 included
        b = (1 if found else 0) | (((level - 12) % 20) << 2) | 0x80
        out += bytes([b & 0xff]) + struct.pack(">I", age)
    for v in (helo, sender, rcpt, host, daemon):
        if v is not None:
            out += s(v)
    return out


def corpus_policy():
    v4 = [198, 51, 100, 7]
    v4b = [203, 0, 113, 70]
    v6 = [0x20, 0x01, 0x0d, 0xb8] + [0] * 11 + [7]
    mapped = [0] * 10 + [0xff, 0xff, 192, 0, 2, 9]
    exempt = [192, 0, 2, 200]
    big = (500, 1000, 30, 70, 25, 1000, 99, 3)
    full = dict(helo="mx.example.org", sender="<a@example.net>",
                rcpt="<b@example.org>")
    seeds = {
        "connect-quiet": policy(addr=v4),
        "connect-rate": policy(addr=v4, counts=(61,) * 8),
        "connect-conc": policy(addr=v4, conc=(11, 11, 11, 11)),
        "connect-banned": policy(addr=v4, bans=0xff),
        "connect-v6": policy(addr=v6, counts=big, conc=(600,) * 4),
        "connect-mapped": policy(addr=mapped, counts=big),
        "connect-noaddr": policy(counts=big),
        "connect-exempt": policy(addr=exempt, counts=big, bans=0xff),
        "helo-rate": policy(stage=1, addr=v4, helo="MX.Example.ORG",
                            counts=(31,) * 8),
        "helo-banned": policy(stage=1, addr=v4, helo="bad\r\nhelo",
                              bans=0x55),
        "mail-rate": policy(stage=2, addr=v4, counts=(52,) * 8, **full),
        "mail-levels": policy(stage=2, addr=v4b, counts=big,
                              levels=((1, 4, 10),) * 4, **full),
        "rcpt-dictionary": policy(stage=3, addr=v4, rclass=2, inval=1,
                                  mrcpts=1, counts=(25, 26, 30, 40, 50, 60,
                                                    21, 22), **full),
        "rcpt-ratio": policy(stage=3, addr=v4, rclass=2, counts=(25, 1000,
                             25, 1000, 25, 1000, 25, 1000), **full),
        "rcpt-throttle": policy(stage=3, addr=v4, rclass=2, inval=6,
                                mrcpts=6, **full),
        "rcpt-throttle-nobudget": policy(stage=3, addr=v4, rclass=2, inval=6,
                                         delayed=60, **full),
        "rcpt-rpm": policy(stage=3, addr=v4, rclass=1, mrcpts=101, **full),
        "rcpt-huge": policy(stage=3, addr=v6, rclass=2, inval=2 ** 63 - 1,
                            mrcpts=2 ** 63 - 1, counts=(2 ** 63 - 1,) * 8,
                            conc=(2 ** 63 - 1,) * 4, **full),
        "rcpt-override": policy(stage=3, addr=[203, 0, 113, 65], rclass=2,
                                counts=(5,) * 8, **full),
        "rcpt-monitor": policy(cfg=2, stage=3, addr=v4, rclass=2,
                               counts=big, inval=50, **full),
        "rcpt-nodelay": policy(cfg=1, stage=3, addr=v4, rclass=2,
                               counts=big, inval=50, **full),
        "banned-b": policy(cfg=1, stage=2, addr=v4, bans=0xff, **full),
        "banned-c": policy(cfg=2, stage=0, addr=v4, bans=0xff),
        "exempt-auth": policy(stage=3, addr=v4, auth=True, counts=big,
                              **full),
        "exempt-host": policy(stage=0, addr=v4, host="mail.Trusted.Example.",
                              counts=big),
        "exempt-wild": policy(stage=0, addr=v4, host="a.wild.example",
                              counts=big),
        "exempt-daemon": policy(stage=0, addr=v4, daemon="msa", counts=big),
        "now-zero": policy(stage=3, addr=v4, now=("zero", 0), counts=big,
                           levels=((1, 3, 0),) * 4, **full),
        "now-max": policy(stage=3, addr=v4, now=("max", 0), counts=big,
                          levels=((1, 19, 0),) * 4, **full),
        "now-neg": policy(stage=3, addr=v4, now=("neg", 5000), counts=big,
                          **full),
        "negative-counts": policy(stage=3, addr=v4, neg=True,
                                  counts=(100,) * 8, **full),
        "hostile-strings": policy(stage=3, addr=v4, rclass=2, counts=big,
                                  helo="\x1b[31m" + "H" * 200,
                                  sender="<%s@%n\r\n>", rcpt="<@>" * 20,
                                  host="\x00x", daemon="\xff"),
    }
    for name, data in seeds.items():
        put("policy", name, data)


# ---- glue -------------------------------------------------------------------

CONNECT, HELO, MAIL, RCPT, EOM, ABORT, CLOSE, MACRO, CLEAR, NEGOTIATE, \
    REJMACROS, BURST = range(12)
MACROS = ["{daemon_name}", "i", "{auth_authen}", "{rcpt_mailer}",
          "{rcpt_host}", "{rcpt_addr}", "j", "{daemon_port}",
          "{client_connections}", "{mail_addr}", "{auth_type}", "{i}",
          "_", "{client_addr}", "{mail_mailer}", "{if_addr}"]


class Glue:
    def __init__(self, cfg=0):
        self.b = bytes([cfg])

    def op(self, kind, ctx=0):
        self.b += bytes([kind | (0x80 if ctx else 0)])
        return self

    def str(self, text, maybe_null=True):
        if maybe_null:
            if text is None:
                self.b += bytes([0])
                return self
            self.b += bytes([1])
        self.str_plain(text)
        return self

    def str_plain(self, text):
        self.b += s(text)

    def connect(self, family=4, addr=(198, 51, 100, 7), host="mx.example.net",
                ctx=0, port=25):
        self.op(CONNECT, ctx)
        if family == 0:
            self.b += bytes([0])
        elif family == 4:
            self.b += bytes([1]) + struct.pack(">H", port) + bytes(addr)
        elif family == 6:
            self.b += bytes([2]) + struct.pack(">H", port) + bytes(addr)
        else:
            self.b += bytes([3])
        return self.str(host)

    def helo(self, name, ctx=0):
        return self.op(HELO, ctx).str(name)

    def argv(self, args):
        if args is None:
            self.b += bytes([0xff])
        else:
            self.b += bytes([len(args)])
            for a in args:
                self.str_plain(a)
        return self

    def mail(self, args, ctx=0):
        return self.op(MAIL, ctx).argv(args)

    def rcpt(self, args, ctx=0, burst=0):
        if burst:
            self.op(BURST, ctx)
            self.b += bytes([burst - 1])
            return self.argv(args)
        return self.op(RCPT, ctx).argv(args)

    def macro(self, name, value, ctx=0):
        self.op(MACRO, ctx)
        self.b += bytes([MACROS.index(name)])
        return self.str(value)

    def rejected(self, host_idx=0, addr_idx=0, ctx=0):
        # mailer "error", host and addr from the fixed tables
        b = 1 | 2 | 4 | 8 | (host_idx << 4)
        self.op(REJMACROS, ctx)
        self.b += bytes([b & 0xff])
        return self

    def negotiate(self, f=(0x3f, 0x1fffff, 0, 0), ctx=0):
        self.op(NEGOTIATE, ctx)
        for v in f:
            self.b += struct.pack(">I", v)
        return self

    def simple(self, kind, ctx=0):
        return self.op(kind, ctx)


def corpus_glue():
    seeds = {}
    g = Glue().negotiate().connect().helo("mx.example.net")
    g.macro("i", "4Q1X2Y").mail(["<a@example.net>", "SIZE=100"])
    g.rcpt(["<b@example.org>"]).simple(EOM).simple(CLOSE)
    seeds["session-clean"] = g

    g = Glue().connect().helo("harvester").mail(["<x@spam.example>"])
    for i in range(8):
        g.rejected(host_idx=0, addr_idx=0).rcpt(["<u%d@example.org>" % i])
    g.simple(ABORT).simple(CLOSE)
    seeds["dictionary"] = g

    g = Glue().connect().mail(["<>"]).rejected().rcpt(["<a@x>"], burst=16)
    seeds["burst-invalid"] = g

    g = Glue().connect().mail(["<s@example.net>"])
    g.rcpt(["<r@example.org>"], burst=10).simple(EOM)
    seeds["too-many-rcpts"] = g

    g = Glue()
    for i in range(6):
        g.connect(addr=(198, 51, 100, 9)).simple(CLOSE)
    seeds["connection-rate"] = g

    g = Glue().connect(ctx=0).connect(ctx=1).helo("a", ctx=1)
    g.mail(["<a@b>"], ctx=0).simple(CLOSE, ctx=1)
    seeds["concurrency"] = g

    g = Glue().connect(family=6, addr=[0x20, 0x01, 0x0d, 0xb8] + [0] * 11 +
                       [1]).helo("v6.example")
    g.mail(["<a@b>"]).rejected(host_idx=2).rcpt(["<c@d>"], burst=8)
    seeds["ipv6-rejected"] = g

    g = Glue().connect(family=6, addr=[0] * 10 + [0xff, 0xff, 192, 0, 2, 1])
    g.helo("mapped").mail(["<a@b>"])
    seeds["ipv4-mapped"] = g

    g = Glue().connect(family=0, host=None).helo(None).mail(None)
    g.rcpt(None).simple(EOM)
    seeds["all-null"] = g

    g = Glue().connect(family=9, host="localhost").helo("[127.0.0.1]")
    seeds["unix-socket"] = g

    g = Glue().simple(CLOSE).simple(HELO).str(None).simple(EOM)
    g.simple(ABORT).mail(["<a@b>"]).rcpt(["<c@d>"])
    seeds["no-connect"] = g

    g = Glue().connect(addr=(127, 0, 0, 1)).mail(["<a@b>"])
    g.rejected().rcpt(["<x@y>"], burst=16)
    seeds["exempt-loopback"] = g

    g = Glue().macro("{daemon_name}", "submission").connect()
    g.macro("{auth_authen}", "alice").mail(["<alice@example.org>"])
    g.rejected().rcpt(["<x@y>"], burst=16)
    seeds["exempt-daemon-auth"] = g

    g = Glue().connect(host="relay.trusted.example").mail(["<a@b>"])
    seeds["exempt-host"] = g

    g = Glue().connect(host="evil\r\nhost\x1b[0m").helo("\x00\xff\r\n%s%n")
    g.macro("i", "Q\r\nID%").mail(["<%@\x7f>", "\r\n"])
    g.macro("{rcpt_mailer}", "error").macro("{rcpt_host}", "5.1.1 \x01")
    g.macro("{rcpt_addr}", "User unknown\n").rcpt(["<\\x41@b>"], burst=5)
    seeds["hostile-text"] = g

    g = Glue(cfg=1).connect().helo("h1").helo("h2").helo("h3").helo("h4")
    g.helo("h5").mail(["<a@b>"]).rejected().rcpt(["<c@d>"], burst=6)
    seeds["config-b"] = g

    g = Glue(cfg=1).connect(ctx=0).connect(ctx=1, addr=(10, 0, 0, 1))
    seeds["config-b-global-conc"] = g

    g = Glue(cfg=2).connect().helo("x").mail(["<a@b>"]).rcpt(["<c@d>"])
    seeds["no-config"] = g

    g = Glue().connect().mail(["<a@one.example>"]).simple(EOM)
    g.mail(["<a@one.example>"]).simple(ABORT).mail(["<a@one.example>"])
    g.mail(["<a@one.example>"]).rcpt(["<r@x>"])
    seeds["mail-rate"] = g

    g = Glue().connect().negotiate(f=(0, 0, 0, 0)).negotiate(
        f=(0xffffffff,) * 4)
    seeds["negotiate"] = g

    g = Glue().connect().macro("{rcpt_mailer}", "local").macro(
        "{rcpt_host}", "example.org").rcpt(["<a@example.org>"])
    g.simple(CLEAR).rcpt(["<b@example.org>"])
    seeds["valid-and-nomacro"] = g

    for name, g in seeds.items():
        put("glue", name, g.b)


# ---- session ----------------------------------------------------------------

class Sess:
    """A program for fuzz_session.c: config, start time, then steps."""

    def __init__(self, cfg=0):
        self.b = bytes([cfg]) + bytes([0, 0, 0])

    def op(self, kind, sess=0):
        self.b += bytes([(sess << 5) | kind])
        return self

    def opt(self, text):
        self.b += bytes([1]) + s(text) if text is not None else bytes([0])
        return self

    def connect(self, addr=(192, 0, 2, 7), host="mx.example.net",
                daemon=None, sess=0):
        self.op(0, sess)
        if addr is None:
            self.b += bytes([0])
        elif len(addr) == 4:
            self.b += bytes([1 | 4]) + bytes(addr)
        else:
            self.b += bytes([2 | 4]) + bytes(addr)
        return self.opt(host).opt(daemon)

    def helo(self, name, sess=0):
        return self.op(1, sess).opt(name)

    def mail(self, sender, qid=None, auth=False, sess=0):
        self.op(2, sess).opt(sender).opt(qid)
        self.b += bytes([1 if auth else 0])
        return self

    def rcpt(self, addr, cls=2, status="5.1.1", burst=0, sess=0):
        self.op(4 if burst else 3, sess).opt(addr)
        self.b += bytes([cls]) + (bytes([1]) + s(status) if status else bytes([0]))
        if burst:
            self.b += bytes([burst])
        return self.opt(None)

    def simple(self, kind, sess=0):
        return self.op(kind, sess)

    def later(self, ms):
        self.op(8)
        self.b += struct.pack(">I", ms)[1:]
        return self


def corpus_session():
    seeds = {}
    seeds["attack"] = Sess().connect().helo("x.example").mail(
        "<a@x.example>").rcpt("<u1@example.org>", burst=20).simple(6)
    seeds["delays"] = Sess(0).connect().helo("h").mail("<>").rcpt(
        "<u@example.org>", burst=23).simple(7).rcpt("<v@example.org>",
                                                    burst=23)
    seeds["three"] = Sess(1).connect(sess=0).connect(
        addr=(0x20, 0x01, 0x0d, 0xb8) + (0,) * 11 + (1,), sess=1).connect(
        addr=None, sess=2).mail("<b@y>", auth=True, sess=1).rcpt(
        "<x@y>", cls=1, status=None, sess=1).later(70000).simple(6, sess=2)
    seeds["monitor"] = Sess(2).connect(daemon="submission").mail(
        "<c@z>", qid="Q1").rcpt("<r@z>", cls=5, burst=5).simple(5).simple(9)
    for name, g in seeds.items():
        put("session", name, g.b)


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    corpus_config()
    corpus_net()
    corpus_text()
    corpus_policy()
    corpus_session()
    corpus_glue()
    for t in sorted(os.listdir(OUT)):
        print("%-8s %3d files" % (t, len(os.listdir(os.path.join(OUT, t)))))


if __name__ == "__main__":
    main()
