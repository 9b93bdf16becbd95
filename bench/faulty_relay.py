#!/usr/bin/env python3
"""A faulty HTTP/1.1 relay for bench/faults.sh (stdlib asyncio only).

Sits between forgebridge and a real upstream (the reference forge) and, for each request, by a
seeded random choice, either relays it or injects a fault:

  pass         relay normally (keep-alive towards forgebridge)
  slow         wait 50-500 ms, then relay
  slow_before  wait --long-delay s (past forgebridge's upstream timeout), then relay anyway
  slow_after   relay, then wait --long-delay s before answering
  drop_before  read the request, close the connection without forwarding it
  drop_after   forward the request, read the upstream's answer, close without answering
  error_500    answer 500 in Gitea's error shape without forwarding
  close_after  relay, answer, then close the keep-alive connection

It counts what it received and what it forwarded: per POST, by the organization name in the
body (every client create uses a unique name, so a name forwarded twice is a create performed
twice, and a name received twice is a POST the proxy retried); per GET, by path.
`GET /__relay/stats` (answered by the relay itself) returns the counters as JSON.

    python3 bench/faulty_relay.py --listen 127.0.0.1:19201 --upstream 127.0.0.1:19200 --seed 5
"""

import argparse
import asyncio
import collections
import json
import random
import re
import time

FAULTS = [
    # name, default probability
    ("slow", 0.10),
    ("slow_before", 0.02),
    ("slow_after", 0.02),
    ("drop_before", 0.04),
    ("drop_after", 0.03),
    ("error_500", 0.05),
    ("close_after", 0.04),
]

NAME_RE = re.compile(rb'"(?:username|login)"\s*:\s*"([^"]+)"')


class Stats:
    def __init__(self):
        self.started = time.time()
        self.faults = collections.Counter()
        self.methods = collections.Counter()
        self.post_received = collections.Counter()
        self.post_forwarded = collections.Counter()
        self.get_received = collections.Counter()
        self.get_forwarded = collections.Counter()
        self.upstream_errors = 0
        self.connections = 0
        self.bad_requests = 0

    def as_json(self):
        return {
            "uptime_s": round(time.time() - self.started, 1),
            "connections": self.connections,
            "faults": dict(self.faults),
            "methods": dict(self.methods),
            "post_received": dict(self.post_received),
            "post_forwarded": dict(self.post_forwarded),
            "get_received_total": sum(self.get_received.values()),
            "get_forwarded_total": sum(self.get_forwarded.values()),
            "get_received": dict(self.get_received),
            "upstream_errors": self.upstream_errors,
            "bad_requests": self.bad_requests,
        }


async def read_chunked(reader):
    """The body of a chunked HTTP/1.1 message, after its head (trailers are not expected)."""
    chunks = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return b"".join(chunks)
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)


async def read_message(reader):
    """Reads one HTTP/1.1 message head and its Content-Length body.
    Returns (start_line, headers[list of (name, value)], body) or None at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    except asyncio.LimitOverrunError:
        raise ValueError("header too large")
    lines = head[:-4].split(b"\r\n")
    start = lines[0].decode("latin-1")
    headers = []
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers.append((k.strip().decode("latin-1"), v.strip().decode("latin-1")))
    hmap = {k.lower(): v for k, v in headers}
    body = b""
    if hmap.get("transfer-encoding", "").lower() == "chunked":
        body = await read_chunked(reader)
        headers = [(k, v) for k, v in headers if k.lower() != "transfer-encoding"]
        headers.append(("Content-Length", str(len(body))))
    elif "content-length" in hmap:
        body = await reader.readexactly(int(hmap["content-length"]))
    return start, headers, body


def serialize(start, headers, body, close):
    out = [start]
    for k, v in headers:
        if k.lower() in ("connection", "keep-alive", "content-length", "transfer-encoding"):
            continue
        out.append(f"{k}: {v}")
    out.append(f"Content-Length: {len(body)}")
    out.append("Connection: close" if close else "Connection: keep-alive")
    return ("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + body


class Relay:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.stats = Stats()
        self.up_host, up_port = args.upstream.rsplit(":", 1)
        self.up_port = int(up_port)
        self.pool = []  # idle keep-alive connections to the upstream: (reader, writer, idle since)
        self.tasks = set()
        self.faults = []
        acc = 0.0
        for name, p in FAULTS:
            acc += getattr(args, name)
            self.faults.append((acc, name))

    def choose(self):
        x = self.rng.random()
        for bound, name in self.faults:
            if x < bound:
                return name
        return "pass"

    async def forward(self, method, target, headers, body):
        """Sends one request to the upstream on a pooled keep-alive connection (never
        re-sent: a failure is the caller's 502); returns (status line, headers, body)."""
        conn = None
        while self.pool:
            r, w, since = self.pool.pop()
            if time.monotonic() - since < 4.0 and not r.at_eof():
                conn = (r, w)
                break
            w.close()
        if conn is None:
            conn = await asyncio.open_connection(self.up_host, self.up_port)
        r, w = conn
        ok = False
        try:
            hs = [(k, v) for k, v in headers if k.lower() not in ("host", "connection", "keep-alive")]
            hs.append(("Host", f"{self.up_host}:{self.up_port}"))
            w.write(serialize(f"{method} {target} HTTP/1.1", hs, body, close=False))
            await w.drain()
            msg = await read_message(r)
            if msg is None:
                raise ConnectionError("upstream closed without answering")
            ok = not any(k.lower() == "connection" and v.lower() == "close" for k, v in msg[1])
            return msg
        finally:
            if ok and len(self.pool) < 256:
                self.pool.append((r, w, time.monotonic()))
            else:
                w.close()

    async def handle(self, reader, writer):
        self.stats.connections += 1
        # A strong reference: when the proxy gives up and closes its side, nothing else keeps
        # this task alive while it waits for the upstream, and the GC would destroy it midway.
        task = asyncio.current_task()
        self.tasks.add(task)
        try:
            while True:
                try:
                    msg = await read_message(reader)
                except (ValueError, asyncio.IncompleteReadError, ConnectionError):
                    self.stats.bad_requests += 1
                    return
                if msg is None:
                    return
                start, headers, body = msg
                method, target, _ = start.split(" ", 2)
                if target == "/__relay/stats":
                    data = json.dumps(self.stats.as_json()).encode()
                    writer.write(serialize("HTTP/1.1 200 OK", [("Content-Type", "application/json")], data, True))
                    await writer.drain()
                    return
                self.stats.methods[method] += 1
                key = None
                if method == "POST":
                    m = NAME_RE.search(body)
                    key = m.group(1).decode() if m else f"<no name> {target}"
                    self.stats.post_received[key] += 1
                elif method == "GET":
                    key = target
                    self.stats.get_received[key] += 1
                fault = self.choose()
                self.stats.faults[fault] += 1

                if fault == "drop_before":
                    return
                if fault == "error_500":
                    err = json.dumps({"message": "injected internal error", "url": "http://relay/api/swagger"}).encode()
                    writer.write(serialize("HTTP/1.1 500 Internal Server Error",
                                           [("Content-Type", "application/json;charset=utf-8")], err, False))
                    await writer.drain()
                    continue
                if fault == "slow":
                    await asyncio.sleep(self.rng.uniform(0.05, 0.5))
                if fault == "slow_before":
                    await asyncio.sleep(self.args.long_delay)
                if method == "POST":
                    self.stats.post_forwarded[key] += 1
                elif method == "GET":
                    self.stats.get_forwarded[key] += 1
                try:
                    status, up_headers, up_body = await self.forward(method, target, headers, body)
                except (OSError, ConnectionError, asyncio.IncompleteReadError) as e:
                    self.stats.upstream_errors += 1
                    err = json.dumps({"message": f"relay: upstream failed: {e}", "url": ""}).encode()
                    writer.write(serialize("HTTP/1.1 502 Bad Gateway", [("Content-Type", "application/json")], err, True))
                    await writer.drain()
                    return
                if fault == "drop_after":
                    return
                if fault == "slow_after":
                    await asyncio.sleep(self.args.long_delay)
                close = fault == "close_after"
                writer.write(serialize(status, up_headers, up_body, close))
                await writer.drain()
                if close:
                    return
        except (ConnectionError, OSError):
            return
        finally:
            self.tasks.discard(task)
            try:
                writer.close()
            except Exception:
                pass


async def main_async(args):
    relay = Relay(args)
    host, port = args.listen.rsplit(":", 1)
    server = await asyncio.start_server(relay.handle, host, int(port), backlog=4096, limit=1 << 20)
    print(f"faulty relay on {args.listen} -> {args.upstream}, seed {args.seed}", flush=True)
    async with server:
        await server.serve_forever()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", default="127.0.0.1:19201")
    ap.add_argument("--upstream", default="127.0.0.1:19200")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--long-delay", type=float, default=3.0)
    for name, p in FAULTS:
        ap.add_argument(f"--{name.replace('_', '-')}", dest=name, type=float, default=p)
    args = ap.parse_args()
    try:
        asyncio.run(main_async(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
