#!/usr/bin/env python3
"""dgram_sink.py SOCKET FILE - a unix datagram receiver for the tests.

Stands in for a syslog daemon (/dev/log) or for systemd's notification
socket ($NOTIFY_SOCKET): binds SOCKET (mode 0666, so that a daemon that
dropped its privileges can still write), and appends every datagram to
FILE as one line, its own newlines written as a literal \\n.  Runs until
killed.
"""
import os
import socket
import sys

path, out = sys.argv[1], sys.argv[2]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
os.chmod(path, 0o666)
with open(out, "ab", buffering=0) as f:
    while True:
        data = sock.recv(65536)
        f.write(data.rstrip(b"\n").replace(b"\n", b"\\n") + b"\n")
