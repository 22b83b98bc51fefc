#!/usr/bin/env python3
"""Slow and idle clients against a running jobsd, and a probe that times GET /healthz meanwhile.

  slow_clients.py --port P --pid PID --mode trickle|idle [--conns N] [--addrs A]
                  [--interval S] [--warmup S] [--duration S]

trickle: N connections, spread over A loopback source addresses 127.0.0.2.. (bind() before
  connect), each sending the start of a request and then one more header byte every
  --interval seconds, never finishing it; a connection the server closes is opened again at
  once, so N stay open (or waiting to be accepted) the whole time.
idle: N connections from the same addresses, each sends one complete GET /healthz with
  keep-alive, reads the answer and then stays idle (not reopened when closed).
Meanwhile, after --warmup seconds, a probe on 127.0.0.1 (another address) opens a new
connection every 0.5 s for --duration seconds and times a whole GET /healthz (5 s timeout).
Prints one JSON object: probe count, failures, p50 and max in ms, jobsd's RSS (max seen and
at the end) in KiB, how many client connections were open and how often the server closed
one. Exit status 0 when every probe was answered 200 within 1 s, else 1.
"""
import argparse
import errno
import json
import selectors
import socket
import statistics
import sys
import threading
import time

PREFIX = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "
FULL = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


class Clients:
    def __init__(self, port, conns, addrs, mode, interval):
        self.port, self.conns, self.addrs = port, conns, addrs
        self.mode, self.interval = mode, interval
        self.sel = selectors.DefaultSelector()
        self.socks = {}  # fd -> [sock, index, next_send, phase]
        self.closed_by_server = 0
        self.open_errors = 0
        self.stop = False

    def open_one(self, i):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.bind((f"127.0.0.{2 + i % self.addrs}", 0))
            rc = s.connect_ex(("127.0.0.1", self.port))
            if rc not in (0, errno.EINPROGRESS):
                raise OSError(rc, "connect")
        except OSError:
            s.close()
            self.open_errors += 1
            return
        first = PREFIX if self.mode == "trickle" else FULL
        now = time.monotonic()
        # Spread the ticks: connection i sends its next byte at a different moment.
        entry = [s, i, now + (i % 100) * self.interval / 100.0, "connecting", first]
        self.socks[s.fileno()] = entry
        self.sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, entry)

    def drop(self, entry, reopen):
        s = entry[0]
        try:
            self.sel.unregister(s)
        except (KeyError, ValueError):
            pass
        self.socks.pop(s.fileno(), None)
        s.close()
        if reopen and not self.stop:
            self.open_one(entry[1])

    def run(self):
        for i in range(self.conns):
            self.open_one(i)
        while not self.stop:
            now = time.monotonic()
            for key, ev in self.sel.select(timeout=0.05):
                entry = key.data
                s = entry[0]
                if ev & selectors.EVENT_WRITE and entry[3] == "connecting":
                    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        self.closed_by_server += 1
                        self.drop(entry, self.mode == "trickle")
                        continue
                    try:
                        s.send(entry[4])
                    except OSError:
                        self.closed_by_server += 1
                        self.drop(entry, self.mode == "trickle")
                        continue
                    entry[3] = "open"
                    self.sel.modify(s, selectors.EVENT_READ, entry)
                elif ev & selectors.EVENT_READ:
                    try:
                        data = s.recv(65536)
                    except OSError:
                        data = b""
                    if not data:
                        self.closed_by_server += 1
                        self.drop(entry, self.mode == "trickle")
            if self.mode == "trickle":
                for entry in list(self.socks.values()):
                    if entry[3] == "open" and entry[2] <= now:
                        entry[2] = now + self.interval
                        try:
                            entry[0].send(b"a")
                        except OSError:
                            self.closed_by_server += 1
                            self.drop(entry, True)
        for entry in list(self.socks.values()):
            self.drop(entry, False)


def probe(port, timeout):
    t0 = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(max(0.01, timeout - (time.monotonic() - t0)))
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            got = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        ok = got.startswith(b"HTTP/1.1 200 ")
    except OSError:
        ok = False
    return ok, (time.monotonic() - t0) * 1000.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--mode", choices=["trickle", "idle"], required=True)
    ap.add_argument("--conns", type=int, default=1000)
    ap.add_argument("--addrs", type=int, default=100)
    ap.add_argument("--interval", type=float, default=2.0)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--duration", type=float, default=20.0)
    a = ap.parse_args()

    c = Clients(a.port, a.conns, a.addrs, a.mode, a.interval)
    t = threading.Thread(target=c.run, daemon=True)
    t.start()
    time.sleep(a.warmup)
    lat, failures, rss_max = [], 0, 0
    end = time.monotonic() + a.duration
    while time.monotonic() < end:
        ok, ms = probe(a.port, 5.0)
        lat.append(ms)
        failures += 0 if ok else 1
        rss_max = max(rss_max, rss_kib(a.pid))
        time.sleep(max(0.0, 0.5 - ms / 1000.0))
    open_now = sum(1 for e in list(c.socks.values()) if e[3] == "open")
    rss_end = rss_kib(a.pid)
    c.stop = True
    t.join(timeout=10)
    out = {
        "mode": a.mode,
        "connections": a.conns,
        "addresses": a.addrs,
        "probes": len(lat),
        "failures": failures,
        "p50_ms": round(statistics.median(lat), 1) if lat else None,
        "max_ms": round(max(lat), 1) if lat else None,
        "rss_max_kib": rss_max,
        "rss_end_kib": rss_end,
        "client_open_at_end": open_now,
        "closed_by_server": c.closed_by_server,
        "open_errors": c.open_errors,
    }
    print(json.dumps(out))
    return 0 if failures == 0 and lat and max(lat) < 1000.0 else 1


if __name__ == "__main__":
    sys.exit(main())
