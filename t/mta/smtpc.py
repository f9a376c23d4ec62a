#!/usr/bin/env python3
"""smtpc.py - a tiny, transparent SMTP client for floodgate's integration tests.

Talks to HOST:PORT from a chosen source address (any 127.x.y.z works on
Linux loopback without configuration) and prints every reply the server
gives, one line per command, with how long the server took to answer.

    smtpc.py HOST PORT [SOURCE_ADDR] [options]

The session is: greeting, EHLO (or HELO), MAIL FROM, one RCPT TO per
--rcpt, DATA if --data was given, each --cmd verbatim, QUIT.

Options:
    --helo NAME        name given in EHLO/HELO (default: client.test)
    --use-helo         send HELO instead of EHLO
    --no-helo          send no EHLO/HELO at all
    --from ADDR        envelope sender (default: sender@example.org);
                       --from '' sends MAIL FROM:<>
    --no-mail          send no MAIL (and so no RCPT/DATA)
    --rcpt ADDR        envelope recipient; repeatable
    --rcpt-file FILE   more recipients, one per line ('-' = stdin)
    --data [TEXT]      send DATA with TEXT (default: a minimal message);
                       '\\n' in TEXT becomes CRLF; '@FILE' reads FILE.
                       Write --data=TEXT, or put a bare --data last.
    --cmd LINE         send LINE verbatim after the transaction; repeatable
    --no-quit          do not send QUIT; just close the connection
    --timeout SEC      how long to wait for each reply (default 120)
    --json             print one JSON object instead of text lines

Text output, one line per step (fields separated by single spaces):

    STEP CODE ELAPSED TEXT

STEP is connect, ehlo, helo, mail, rcpt:<ADDR>, data, dot, cmd:VERB
(the --cmd line's first word, lower case) or quit; CODE is the 3-digit
reply code ("---" when the server sent none); ELAPSED is the seconds from
sending the command to the complete reply; TEXT is the reply text without
the code, the lines of a multi-line reply joined with " | " (for a failed
connect: the error).  A last line "status STATUS" follows, where STATUS is:

    ok            the session ran to its end (QUIT answered, or --no-quit)
    closed        the server closed the connection (e.g. after a 421); the
                  421, if any, is printed first
    timeout       no complete reply within --timeout seconds
    connect-error the TCP connection could not be made (exit status 1)

Exit status: 0 whenever a session took place (whatever the replies or
STATUS), 1 when no connection could be made, 2 for usage errors.

With --json: {"status": ..., "source": ..., "steps": [{"step", "cmd",
"code", "text", "lines", "elapsed"}, ...], "elapsed": TOTAL}, where
"lines" are the raw reply lines and "code" is an int or null.

Python 3 standard library only; raw sockets instead of smtplib so every
reply, including unexpected ones, is visible.
"""

import argparse
import json
import socket
import sys
import time


class Closed(Exception):
    pass


class Timeout(Exception):
    pass


class Conn:
    def __init__(self, sock, timeout):
        self.sock = sock
        self.buf = b""
        self.sock.settimeout(timeout)

    def send(self, line):
        try:
            self.sock.sendall(line.encode("utf-8", "surrogateescape") + b"\r\n")
        except OSError as e:  # EPIPE, ECONNRESET: the server is gone
            raise Closed(str(e))

    def sendraw(self, data):
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise Closed(str(e))

    def readline(self):
        while b"\n" not in self.buf:
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise Timeout()
            except OSError as e:
                raise Closed(str(e))
            if not chunk:
                raise Closed("EOF")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self):
        """Read one (possibly multi-line) reply.  Returns (code, lines).
        On EOF/timeout in the middle of a reply, the partial lines travel
        in the exception's .lines attribute."""
        lines = []
        while True:
            try:
                line = self.readline()
            except (Closed, Timeout) as e:
                e.lines = lines
                raise
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                break
        code = lines[-1][:3]
        return (int(code) if code.isdigit() else None), lines


def reply_text(lines):
    return " | ".join(l[4:] if len(l) > 3 else "" for l in lines)


def main():
    ap = argparse.ArgumentParser(
        description="transparent SMTP client for tests (see module doc)")
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("source", nargs="?", default=None,
                    help="source address to bind to, e.g. 127.0.0.2")
    ap.add_argument("--helo", default="client.test")
    ap.add_argument("--use-helo", action="store_true")
    ap.add_argument("--no-helo", action="store_true")
    ap.add_argument("--from", dest="sender", default="sender@example.org")
    ap.add_argument("--no-mail", action="store_true")
    ap.add_argument("--rcpt", action="append", default=[])
    ap.add_argument("--rcpt-file")
    ap.add_argument("--data", nargs="?", const="", default=None)
    ap.add_argument("--cmd", action="append", default=[])
    ap.add_argument("--no-quit", action="store_true")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    rcpts = list(a.rcpt)
    if a.rcpt_file:
        f = sys.stdin if a.rcpt_file == "-" else open(a.rcpt_file)
        rcpts += [l.strip() for l in f if l.strip()]

    steps = []
    status = "ok"
    t_start = time.monotonic()

    def emit(step, cmd, code, lines, elapsed, text=None):
        rec = {"step": step, "cmd": cmd, "code": code,
               "text": reply_text(lines) if text is None else text,
               "lines": lines, "elapsed": round(elapsed, 4)}
        steps.append(rec)
        if not a.json:
            c = "%03d" % code if code is not None else "---"
            print("%s %s %.3f %s" % (step, c, elapsed, rec["text"]), flush=True)

    def finish(rc=0):
        if a.json:
            print(json.dumps({"status": status, "source": a.source,
                              "host": a.host, "port": a.port, "steps": steps,
                              "elapsed": round(time.monotonic() - t_start, 4)}))
        else:
            print("status %s" % status, flush=True)
        sys.exit(rc)

    t0 = time.monotonic()
    try:
        src = (a.source, 0) if a.source else None
        sock = socket.create_connection((a.host, a.port), timeout=a.timeout,
                                        source_address=src)
    except OSError as e:
        status = "connect-error"
        emit("connect", None, None, [], time.monotonic() - t0, text=str(e))
        finish(1)
    conn = Conn(sock, a.timeout)

    def transact(step, cmd, raw=None):
        """Send cmd (or raw bytes), read the reply, emit it.  Returns code."""
        nonlocal status
        t = time.monotonic()
        try:
            if raw is not None:
                conn.sendraw(raw)
            elif cmd is not None:
                conn.send(cmd)
            code, lines = conn.reply()
        except Closed as e:
            status = "closed"
            lines = getattr(e, "lines", [])
            code = None
            if lines and lines[-1][:3].isdigit():
                code = int(lines[-1][:3])
            emit(step, cmd, code, lines, time.monotonic() - t)
            raise
        except Timeout as e:
            status = "timeout"
            emit(step, cmd, None, getattr(e, "lines", []), time.monotonic() - t)
            raise
        emit(step, cmd, code, lines, time.monotonic() - t)
        if code == 421:
            # The server is closing the connection: it must not be used on.
            status = "closed"
            raise Closed("421")
        return code

    try:
        transact("connect", None)
        if not a.no_helo:
            verb = "HELO" if a.use_helo else "EHLO"
            transact(verb.lower(), "%s %s" % (verb, a.helo))
        if not a.no_mail:
            transact("mail", "MAIL FROM:<%s>" % a.sender)
            for r in rcpts:
                transact("rcpt:<%s>" % r, "RCPT TO:<%s>" % r)
            if a.data is not None:
                code = transact("data", "DATA")
                if code == 354:
                    text = a.data
                    if text.startswith("@"):
                        with open(text[1:], "r", errors="surrogateescape") as f:
                            text = f.read()
                    else:
                        text = text.replace("\\n", "\n")
                    if not text:
                        text = ("From: <%s>\nTo: <%s>\nSubject: floodgate test\n"
                                "\nTest message.\n" % (a.sender,
                                                       rcpts[0] if rcpts else "x"))
                    text = text.replace("\r\n", "\n")
                    if text.endswith("\n"):
                        text = text[:-1]
                    body = "".join(("." + l if l.startswith(".") else l) + "\r\n"
                                   for l in text.split("\n"))
                    transact("dot", None,
                             raw=body.encode("utf-8", "surrogateescape") + b".\r\n")
        for c in a.cmd:
            transact("cmd:%s" % c.split(" ")[0].lower(), c)
        if not a.no_quit:
            transact("quit", "QUIT")
    except (Closed, Timeout):
        pass
    try:
        sock.close()
    except OSError:
        pass
    finish(0)


if __name__ == "__main__":
    main()
