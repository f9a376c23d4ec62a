#!/usr/bin/env python3
"""harvest.py - the client side of bench/harvest.sh: a recipient harvest
from several /24s and legitimate mail from other networks, through a real
SMTP server on 127.0.0.1, from bound loopback source addresses.

    harvest.py users N                    the N real mailboxes, one a line
    harvest.py attack --port P --out FILE [options]
    harvest.py summary --transcript FILE --label L [--db FLOODGATE_DB]
    harvest.py table RESULTS.jsonl        the table of the summaries

attack runs the harvester and the legitimate clients at the same time
and writes one JSON line per SMTP session to FILE.  The harvester walks
a list of guesses (a share of them real mailboxes of "users", the rest
names of the same form that do not exist), GUESSES_PER_SESSION a session,
with C sessions at once; session k comes from a random host of attack
network k mod n.  It never retries a guess: one refused is lost to it.
The legitimate clients send a message to 1 to 3 real mailboxes every
LEGIT_INTERVAL seconds, from hosts of their own networks, at least
LEGIT_SESSIONS of them and for as long as the harvest runs.  Both stop
when they are done or after SECONDS.

summary reads the transcript as the harvester cannot: it knows which
guesses were real.  An unknown user always gets the server's own "550
5.1.1 ... User unknown" (Postfix answers those before any milter).  So:
  - a real guess is exposed when its answer is anything else: accepted
    (2xx), or refused in a way unknown ones are not (451, 421, ...);
  - an unknown guess is answered when it got that 550 and floodgate (its
    database, --db) did not mask that recipient: while a session is
    masked, real guesses get the same 550, and the answer tells nothing;
  - answered guesses = exposed real ones + answered unknown ones;
  - exposed later: real ones exposed although floodgate saw them after
    its first refusal of their network (by its database, --db).
It also gives, per attack network, the time from the start of the attack
to its first session refused at connect (421 or any refusal of the
greeting, or the connection closed before it) and before RCPT (at
connect, HELO or MAIL), and how many legitimate sessions got anything but
success.  The summary is one JSON line.
"""
import argparse
import json
import random
import re
import socket
import sqlite3
import sys
import threading
import time

DOMAIN = "floodgate.test"
SYL = ["ka", "lo", "mi", "ne", "ru", "ta", "vi", "so", "de", "ha",
       "jo", "pe", "ma", "li", "an", "el"]


def names():
    """Every name of the form the harvester guesses, in a fixed order."""
    firsts = [a + b for a in SYL for b in SYL[:5]]       # 80
    lasts = [a + b + "n" for a in SYL for b in SYL[5:9]]  # 64
    return [f + "." + l for f in firsts for l in lasts]


def real_users(n):
    rng = random.Random(17)
    return sorted(rng.sample(names(), n))


# ---- SMTP ---------------------------------------------------------------

class Closed(Exception):
    pass


class Smtp:
    """One session; reply() gives (code, text) or raises Closed."""

    def __init__(self, port, src, timeout):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.bind((src, 0))
        self.s.connect(("127.0.0.1", port))
        self.f = self.s.makefile("rb")

    def reply(self):
        lines = []
        while True:
            line = self.f.readline()
            if not line:
                raise Closed()
            line = line.decode("latin-1").rstrip("\r\n")
            lines.append(line[4:])
            if len(line) < 4 or line[3] != "-":
                try:
                    return int(line[:3]), " | ".join(lines)
                except ValueError:
                    raise Closed()

    def cmd(self, text):
        self.s.sendall(text.encode() + b"\r\n")
        return self.reply()

    def close(self):
        try:
            self.s.sendall(b"QUIT\r\n")
            self.reply()
        except (OSError, Closed):
            pass
        self.s.close()


def session(port, src, helo, sender, rcpts, data, timeout, t0):
    """Runs one session; returns its record."""
    rec = {"src": src, "t": round(time.monotonic() - t0, 3), "stage": "connect",
           "code": None, "rcpts": [], "done": False}
    try:
        c = Smtp(port, src, timeout)
    except OSError as e:
        rec["error"] = str(e)
        return rec
    try:
        code, text = c.reply()
        rec["code"] = code
        if code != 220:
            return rec
        for stage, line, want in (("helo", "EHLO " + helo, 250),
                                  ("mail", "MAIL FROM:<%s>" % sender, 250)):
            rec["stage"] = stage
            code, text = c.cmd(line)
            rec["code"] = code
            if code != want:
                return rec
        rec["stage"] = "rcpt"
        for r in rcpts:
            code, text = c.cmd("RCPT TO:<%s>" % r)
            rec["rcpts"].append([r, code, text, round(time.monotonic() - t0, 3)])
            if code == 421:
                return rec
        if data:
            rec["stage"] = "data"
            code, text = c.cmd("DATA")
            rec["code"] = code
            if code != 354:
                return rec
            rec["stage"] = "dot"
            code, text = c.cmd("Subject: hello\r\n\r\nhello\r\n.")
            rec["code"] = code
            if code != 250:
                return rec
        rec["done"] = True
    except (OSError, Closed) as e:
        rec["closed"] = True
        if isinstance(e, OSError):
            rec["error"] = str(e)
    finally:
        rec["t_end"] = round(time.monotonic() - t0, 3)
        c.close()
    return rec


# ---- attack -------------------------------------------------------------

def attack(a):
    users = real_users(a.users)
    userset = set(users)
    rng = random.Random(a.seed)
    nvalid = min(len(users), int(a.guesses * a.valid_share + 0.5))
    unknown = [n for n in names() if n not in userset]
    rng.shuffle(unknown)
    guesses = rng.sample(users, nvalid) + unknown[:a.guesses - nvalid]
    rng.shuffle(guesses)
    guesses = [g + "@" + DOMAIN for g in guesses]
    per = a.per_session
    plan = [guesses[i:i + per] for i in range(0, len(guesses), per)]
    nets = a.attack_nets.split()
    legit_nets = a.legit_nets.split()
    out = open(a.out, "w")
    lock = threading.Lock()
    t0 = time.monotonic()
    deadline = t0 + a.seconds
    stop = threading.Event()
    nxt = [0]

    def write(kind, net, rec):
        rec["kind"] = kind
        rec["net"] = net
        with lock:
            out.write(json.dumps(rec) + "\n")

    def attacker(i):
        r = random.Random(a.seed * 1000 + i)
        while time.monotonic() < deadline:
            with lock:
                k = nxt[0]
                nxt[0] += 1
            if k >= len(plan):
                break
            net = nets[k % len(nets)]
            src = "%s.%d" % (net, r.randint(1, 254))
            rec = session(a.port, src, "ylmf-pc", "info%d@example.com" % k,
                          plan[k], False, a.timeout, t0)
            rec["planned"] = plan[k]
            write("attack", net, rec)
        stop.set()

    def legit():
        r = random.Random(a.seed * 7 + 1)
        k = 0
        while (k < a.legit_sessions or not stop.is_set()) and \
                time.monotonic() < deadline:
            net = legit_nets[k % len(legit_nets)]
            src = "%s.%d" % (net, r.randint(1, 254))
            rcpts = [u + "@" + DOMAIN for u in r.sample(users, r.randint(1, 3))]
            rec = session(a.port, src, "mail%d.example.net" % (k % 7),
                          "news%d@example.net" % k, rcpts, True, a.timeout, t0)
            write("legit", net, rec)
            k += 1
            time.sleep(a.legit_interval)

    threads = [threading.Thread(target=attacker, args=(i,)) for i in range(a.c)]
    threads.append(threading.Thread(target=legit))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with lock:
        out.write(json.dumps({"kind": "meta", "guesses": len(guesses),
                              "valid": nvalid, "sessions_planned": len(plan),
                              "nets": nets, "legit_nets": legit_nets,
                              "seconds": round(time.monotonic() - t0, 2)}) + "\n")
    out.close()


# ---- summary ------------------------------------------------------------

UNKNOWN = re.compile(r"^5\.1\.1 <[^>]*>: Recipient address rejected: "
                     r"User unknown in local recipient table$")


def masked_rcpts(db):
    """The recipients floodgate masked: the <ADDR> of its mask replies."""
    if not db:
        return set()
    # (stop floodgate first: it commits everything when it stops)
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    rows = con.execute("SELECT reply FROM verdicts WHERE action = 'mask'")
    got = set()
    for (reply,) in rows:
        m = re.search(r"<([^>]+)>", reply or "")
        if m:
            got.add(m.group(1).lower())
    con.close()
    return got


def decided_after_refusal(db, nets):
    """The recipients floodgate saw from an attack network after its
    first refusal of that network (a verdict other than delay on the
    network's /24 or /16, or on one of its clients), by floodgate's own
    clock: the client's clock orders replies of concurrent sessions
    only as they happened to arrive."""
    if not db:
        return set()
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    got = set()
    for net in nets:
        o = net.split(".")
        row = con.execute(
            "SELECT min(ts_ms) FROM verdicts WHERE monitor = 0 AND"
            " action NOT IN ('delay', 'continue') AND"
            " (client LIKE ? OR key IN (?, ?))",
            (net + ".%", net + ".0/24", "%s.%s.0.0/16" % (o[0], o[1]))).fetchone()
        if row[0] is None:
            continue
        for (rcpt,) in con.execute(
                "SELECT rcpt FROM events WHERE kind = 'rcpt' AND client LIKE ?"
                " AND ts_ms > ?", (net + ".%", row[0])):
            got.add((rcpt or "").strip("<>").lower())
    con.close()
    return got


def summary(a):
    recs = [json.loads(l) for l in open(a.transcript)]
    meta = [r for r in recs if r["kind"] == "meta"][0]
    users = set(u + "@" + DOMAIN for u in real_users(a.users))
    masked = masked_rcpts(a.db)
    exposed = unknown_answered = reached = 0
    exposed_addrs = set()
    nets = {n: {"refused_at_connect_s": None, "refused_before_rcpt_s": None,
                "sessions": 0} for n in meta["nets"]}
    legit = touched = 0
    after = decided_after_refusal(a.db, meta["nets"])
    exposed_after = 0
    for r in recs:
        if r["kind"] == "legit":
            legit += 1
            if not r.get("done"):
                touched += 1
            elif any(c != 250 for _, c, _, _ in r["rcpts"]):
                touched += 1
            continue
        if r["kind"] != "attack":
            continue
        n = nets[r["net"]]
        n["sessions"] += 1
        t_end = r.get("t_end", r["t"])
        if r["stage"] == "connect" and r.get("code") != 220 and "error" not in r:
            if n["refused_at_connect_s"] is None or t_end < n["refused_at_connect_s"]:
                n["refused_at_connect_s"] = t_end
        if r["stage"] in ("connect", "helo", "mail") and not r.get("done"):
            if n["refused_before_rcpt_s"] is None or t_end < n["refused_before_rcpt_s"]:
                n["refused_before_rcpt_s"] = t_end
        for addr, code, text, t in r["rcpts"]:
            reached += 1
            like_unknown = code == 550 and UNKNOWN.match(text) is not None
            if addr in users:
                if not like_unknown:
                    exposed += 1
                    exposed_addrs.add(addr)
                    if addr.lower() in after:
                        exposed_after += 1
            elif like_unknown and addr.lower() not in masked:
                unknown_answered += 1
    answered = exposed + unknown_answered
    g = meta["guesses"]
    refused = [n["refused_at_connect_s"] for n in nets.values()]
    out = {
        "label": a.label, "guesses": g, "valid_guesses": meta["valid"],
        "rcpts_reached": reached, "answered": answered,
        "answered_pct": round(100.0 * answered / g, 2) if g else 0,
        "unknown_answered": unknown_answered, "valid_exposed": exposed,
        "valid_exposed_distinct": len(exposed_addrs),
        "valid_exposed_after_first_refusal": exposed_after,
        "masked_rcpts": len(masked),
        "all_refused_at_connect_s":
            max(refused) if refused and None not in refused else None,
        "nets": nets, "legit_sessions": legit, "legit_touched": touched,
        "seconds": meta["seconds"],
    }
    print(json.dumps(out))


def table(a):
    rows = [json.loads(l) for l in open(a.results) if l.strip()]

    def s(v):
        return "never" if v is None else "%.1f" % v

    print("%-10s %7s %8s %7s %6s %8s %6s %13s %12s %6s %8s" % (
        "filter", "guesses", "answered", "answ_%", "valid", "exposed",
        "later", "refused_at_s", "before_rcpt", "legit", "touched"))
    for r in rows:
        before = [n["refused_before_rcpt_s"] for n in r["nets"].values()]
        print("%-10s %7d %8d %7.2f %6d %8d %6d %13s %12s %6d %8d" % (
            r["label"], r["guesses"], r["answered"], r["answered_pct"],
            r["valid_guesses"], r["valid_exposed"],
            r["valid_exposed_after_first_refusal"],
            s(r["all_refused_at_connect_s"]),
            s(max(before) if before and None not in before else None),
            r["legit_sessions"], r["legit_touched"]))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("users")
    u.add_argument("n", type=int)
    at = sub.add_parser("attack")
    at.add_argument("--port", type=int, required=True)
    at.add_argument("--out", required=True)
    at.add_argument("--users", type=int, default=400)
    at.add_argument("--guesses", type=int, default=4000)
    at.add_argument("--valid-share", type=float, default=0.08)
    at.add_argument("--per-session", type=int, default=8)
    at.add_argument("-c", type=int, default=8)
    at.add_argument("--attack-nets", default="127.1.1 127.1.2 127.1.3")
    at.add_argument("--legit-nets", default="127.9.1 127.10.2")
    at.add_argument("--legit-interval", type=float, default=0.2)
    at.add_argument("--legit-sessions", type=int, default=30)
    at.add_argument("--seconds", type=float, default=120)
    at.add_argument("--timeout", type=float, default=40)
    at.add_argument("--seed", type=int, default=1)
    su = sub.add_parser("summary")
    su.add_argument("--transcript", required=True)
    su.add_argument("--label", required=True)
    su.add_argument("--users", type=int, default=400)
    su.add_argument("--db")
    ta = sub.add_parser("table")
    ta.add_argument("results")
    a = p.parse_args()
    if a.cmd == "users":
        print("\n".join(real_users(a.n)))
    elif a.cmd == "attack":
        attack(a)
    elif a.cmd == "summary":
        summary(a)
    else:
        table(a)


if __name__ == "__main__":
    sys.exit(main())
