#!/usr/bin/env python3
"""delay_proxy.py - a TCP proxy that delays, swallows or resets traffic,
for tests of floodgate's sharing through Redis across a slow or broken
network (tc netem is not available everywhere; shaping lo disturbs
every other test on the machine).

  delay_proxy.py --listen HOST:PORT --target HOST:PORT
                 [--control FILE] [--port-file FILE] [--mode MODE]

--listen with port 0 takes a free port; --port-file receives the port
once the proxy listens.  The mode is one line, given by --mode at start
and read again from the --control file whenever it changes (polled every
20 ms; write a new file and rename it over the old one):

  pass        forward at once
  delay MS    forward each chunk MS milliseconds after it came, in both
              directions (the round trip grows by 2 * MS), order kept
  blackhole   accept connections and read them, forward nothing and
              answer nothing (a hung server, a dead route)
  rst         reset every open connection and each new one (SO_LINGER 0)

Only the two addresses given are ever contacted.  Logs one line per
mode change on standard error.  Stops on SIGTERM or SIGINT.
"""
import argparse
import asyncio
import os
import signal
import socket
import struct
import sys
import time


def parse_addr(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def parse_mode(line):
    words = line.split()
    if not words:
        raise ValueError("empty mode")
    if words[0] in ("pass", "blackhole", "rst") and len(words) == 1:
        return (words[0], 0.0)
    if words[0] == "delay" and len(words) == 2:
        ms = float(words[1])
        if not 0 <= ms <= 60000:
            raise ValueError("delay out of range 0..60000 ms")
        return ("delay", ms / 1000.0)
    raise ValueError("unknown mode %r" % line.strip())


class Proxy:
    def __init__(self, target, mode):
        self.target = target
        self.mode = mode
        self.conns = set()

    def reset(self, writer):
        sock = writer.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                struct.pack("ii", 1, 0))
            except OSError:
                pass
        writer.transport.abort()

    def set_mode(self, mode):
        if mode == self.mode:
            return
        self.mode = mode
        print("delay_proxy: mode %s%s" % (
            mode[0], " %g ms" % (mode[1] * 1000) if mode[0] == "delay" else ""),
            file=sys.stderr, flush=True)
        if mode[0] == "rst":
            for conn in list(self.conns):
                for w in conn:
                    self.reset(w)

    async def pump(self, reader, writer, conn):
        """Copy reader to writer, each chunk due at its arrival plus the
        delay of the moment; blackhole swallows."""
        queue = asyncio.Queue()

        async def send():
            while True:
                item = await queue.get()
                if item is None:
                    break
                due, data = item
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if self.mode[0] == "blackhole":
                    continue
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()

        sender = asyncio.ensure_future(send())
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if self.mode[0] == "blackhole":
                    continue
                queue.put_nowait((time.monotonic() + self.mode[1], data))
            queue.put_nowait(None)
            await sender
        except (ConnectionError, OSError):
            pass
        finally:
            sender.cancel()
            for w in conn:
                w.transport.abort()

    async def handle(self, creader, cwriter):
        if self.mode[0] == "rst":
            self.reset(cwriter)
            return
        if self.mode[0] == "blackhole":
            # Hold the connection open, read and drop, until the mode
            # changes or the client goes.
            try:
                while self.mode[0] == "blackhole":
                    try:
                        data = await asyncio.wait_for(creader.read(65536), 0.1)
                    except asyncio.TimeoutError:
                        continue
                    if not data:
                        break
            finally:
                cwriter.transport.abort()
            return
        try:
            sreader, swriter = await asyncio.open_connection(*self.target)
        except OSError:
            self.reset(cwriter)
            return
        conn = (cwriter, swriter)
        self.conns.add(conn)
        try:
            await asyncio.gather(self.pump(creader, swriter, conn),
                                 self.pump(sreader, cwriter, conn))
        finally:
            self.conns.discard(conn)


async def watch(proxy, path):
    last = None
    while True:
        try:
            st = os.stat(path)
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
            if stamp != last:
                last = stamp
                with open(path) as f:
                    proxy.set_mode(parse_mode(f.read()))
        except FileNotFoundError:
            pass
        except ValueError as e:
            print("delay_proxy: %s: %s" % (path, e), file=sys.stderr, flush=True)
        await asyncio.sleep(0.02)


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--control")
    ap.add_argument("--port-file")
    ap.add_argument("--mode", default="pass")
    a = ap.parse_args()
    try:
        mode = parse_mode(a.mode)
    except ValueError as e:
        ap.error(str(e))
    proxy = Proxy(parse_addr(a.target), mode)
    host, port = parse_addr(a.listen)
    server = await asyncio.start_server(proxy.handle, host, port)
    port = server.sockets[0].getsockname()[1]
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, a.port_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    tasks = [asyncio.ensure_future(stop.wait())]
    if a.control:
        tasks.append(asyncio.ensure_future(watch(proxy, a.control)))
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    server.close()
    for conn in list(proxy.conns):
        for w in conn:
            w.transport.abort()


if __name__ == "__main__":
    asyncio.run(main())
