#!/usr/bin/env python3
"""Load under faults, behind bench/faults.sh (stdlib only).

Starts, on loopback (ports 19200-19202):
  reference forge (seeded, 200 orgs) :19200  <-  faulty_relay.py :19201  <-  forgebridge :19202
forgebridge speaks Gitea to the relay (upstream timeout 2 s, request deadline 10 s); the relay
slows, drops and fails requests by a seeded random choice (see faulty_relay.py). Then
--clients concurrent GitHub-dialect clients (keep-alive, one connection each) run for
--duration seconds: GET one org, GET a 50-org list, GET a missing org, and create an org
(POST /api/v3/admin/organizations, a unique name per request).

Checks (any failure -> exit 1):
  1. every request got an answer (no connection closed without one);
  2. no request hung: none hit the client-side timeout (--client-timeout, well past the
     proxy's own 10 s deadline);
  3. every answer is in the GitHub dialect: status expected for the call, JSON body of the
     right shape (org object, list, created org, or {message, documentation_url} error);
  4. no panic in forgebridge's log, and forgebridge is still running;
  5. forgebridge's RSS returns near its baseline after the load (within
     max(16 MiB, 25% of the peak's growth) of the baseline, 10 s after the clients close);
     with --rounds N the load repeats and RSS is read after each round (a plateau is allocator
     retention, steady growth a leak); with --trim-probe, malloc_trim(0) is then called through
     gdb to show how much of the RSS was free memory glibc kept;
  6. retries only for idempotent methods: the relay received every POSTed name at most once;
  7. no create was performed twice: the relay forwarded every POSTed name at most once, and
     each name exists on the reference forge at most once;
  8. no false success: every create answered 201 was forwarded and exists on the reference.
"""

import argparse
import asyncio
import collections
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench as B  # noqa: E402
from faulty_relay import read_chunked  # noqa: E402

PORT_REF = 19200
PORT_RELAY = 19201
PORT_FB = 19202
HOST = "127.0.0.1"
ADMIN = "forgebridge-admin-token"
MiB = 1024


class Tally:
    def __init__(self):
        self.sent = collections.Counter()  # by kind
        self.status = collections.Counter()  # (kind, status)
        self.no_answer = collections.Counter()
        self.timeouts = collections.Counter()
        self.bad_shape = []
        self.missing_media_type = collections.Counter()
        self.creates = {}  # name -> status or "timeout"/"no_answer"
        self.latency = []


async def read_message(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers[k.strip().decode("latin-1").lower()] = v.strip().decode("latin-1")
    body = b""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = await read_chunked(reader)
    elif "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    return status, headers, body


def check_shape(kind, status, headers, body, name=None, org=None):
    """Whether an answer is what a GitHub client expects; returns an error string or None."""
    ctype = headers.get("content-type", "")
    try:
        data = json.loads(body) if body else None
    except ValueError:
        return f"body is not JSON: {body[:120]!r}"
    if status >= 400:
        if status not in (404, 422, 500, 502, 503, 504):
            return f"unexpected error status {status}"
        if kind in ("get", "list", "create") and status in (404, 422):
            return f"{status} for a call that should succeed or fail upstream: {body[:200]!r}"
        if not (isinstance(data, dict) and isinstance(data.get("message"), str) and "documentation_url" in data):
            return f"error body not in GitHub's shape: {body[:200]!r}"
        if "application/json" not in ctype:
            return f"error content-type {ctype!r}"
        return None
    if "application/json" not in ctype:
        return f"content-type {ctype!r}"
    if kind == "get":
        if status != 200 or not isinstance(data, dict) or data.get("login") != org or "/api/v3/orgs/" not in str(data.get("url")):
            return f"GET org answered {status} {body[:200]!r}"
    elif kind == "missing":
        return f"missing org answered {status}"
    elif kind == "list":
        if status != 200 or not isinstance(data, list) or not all(isinstance(o, dict) and "login" in o for o in data):
            return f"list answered {status} {body[:200]!r}"
    elif kind == "create":
        if status != 201 or not isinstance(data, dict) or data.get("login") != name:
            return f"create answered {status} {body[:200]!r}"
    return None


async def client(cid, args, deadline, tally, rng):
    conn = None
    n = 0
    while time.monotonic() < deadline:
        x = rng.random()
        name = org = None
        if x < 0.45:
            kind = "get"
            org = f"org{rng.randint(2, 200):03d}"
            method, path, token, body = "GET", f"/api/v3/orgs/{org}", None, None
        elif x < 0.60:
            kind = "list"
            method, path, token, body = "GET", "/api/v3/user/orgs?per_page=50", "bench-token", None
        elif x < 0.65:
            kind = "missing"
            method, path, token, body = "GET", f"/api/v3/orgs/nosuch{rng.randint(1, 999)}", None, None
        else:
            kind = "create"
            n += 1
            name = f"flt-r{args.round}-c{cid}-{n}"
            method, path, token = "POST", "/api/v3/admin/organizations", ADMIN
            body = json.dumps({"login": name, "admin": "admin", "profile_name": f"Fault {cid} {n}"}).encode()
        tally.sent[kind] += 1
        req = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{PORT_FB}", "Accept: application/json"]
        if token:
            req.append(f"Authorization: token {token}")
        if body is not None:
            req += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        raw = ("\r\n".join(req) + "\r\n\r\n").encode() + (body or b"")
        t0 = time.monotonic()
        try:
            if conn is None:
                conn = await asyncio.wait_for(asyncio.open_connection(HOST, PORT_FB), 10)
            reader, writer = conn
            writer.write(raw)
            await writer.drain()
            status, headers, rbody = await asyncio.wait_for(read_message(reader), args.client_timeout)
        except asyncio.TimeoutError:
            tally.timeouts[kind] += 1
            if name:
                tally.creates[name] = "timeout"
            if conn:
                conn[1].close()
            conn = None
            continue
        except (OSError, asyncio.IncompleteReadError, ConnectionError, ValueError, IndexError) as e:
            tally.no_answer[kind] += 1
            if len(tally.bad_shape) < 50:
                tally.bad_shape.append(f"{kind}: no answer ({type(e).__name__}: {e})")
            if name:
                tally.creates[name] = "no_answer"
            if conn:
                conn[1].close()
            conn = None
            continue
        tally.latency.append(time.monotonic() - t0)
        tally.status[(kind, status)] += 1
        if "x-github-media-type" not in headers:
            tally.missing_media_type[status] += 1
        problem = check_shape(kind, status, headers, rbody, name=name, org=org)
        if problem:
            tally.bad_shape.append(f"{kind} {path}: {problem}")
        if name:
            tally.creates[name] = status
        if headers.get("connection", "").lower() == "close":
            conn[1].close()
            conn = None
    if conn:
        conn[1].close()


async def run_load(args, tally):
    deadline = time.monotonic() + args.duration
    master = random.Random(args.seed)
    tasks = []
    for cid in range(args.clients):
        tasks.append(asyncio.create_task(client(cid, args, deadline, tally, random.Random(master.random()))))
        if cid % 100 == 99:
            await asyncio.sleep(0.05)
    await asyncio.gather(*tasks)


def relay_stats():
    status, body = B.http_get(PORT_RELAY, "/__relay/stats", timeout=30)
    return json.loads(body)


def reference_logins():
    """Every org login on the reference forge (GitHub dialect, since cursor), with repeats."""
    logins = []
    since = 0
    while True:
        status, body = B.http_get(
            PORT_REF, f"/api/v3/organizations?per_page=100&since={since}", timeout=30,
            headers={"Authorization": f"token {ADMIN}"},
        )
        if status != 200:
            raise RuntimeError(f"listing the reference answered {status}")
        page = json.loads(body)
        if not page:
            return logins
        logins += [o["login"] for o in page]
        since = page[-1]["id"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--duration", type=int, default=60)
    ap.add_argument("--client-timeout", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=1,
                    help="load rounds of --duration s each, 10 s apart (more than one tells a leak from allocator retention)")
    ap.add_argument("--trim-probe", action="store_true",
                    help="after the load, call malloc_trim(0) in forgebridge through gdb (diagnostic; "
                         "runs after the RSS check's measurement)")
    ap.add_argument("--fb-env", action="append", default=[], metavar="KEY=VALUE",
                    help="extra environment for forgebridge (e.g. MALLOC_ARENA_MAX=2)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    os.makedirs(args.out, exist_ok=True)
    logdir = os.path.join(args.out, "faults-logs")
    os.makedirs(logdir, exist_ok=True)
    for f in os.listdir(logdir):
        os.remove(os.path.join(logdir, f))
    seed = os.path.join(logdir, "seed.json")
    B.write_seed(seed)

    procs = []
    checks = []
    try:
        ref = B.start_reference(args.bin, seed, logdir, port=PORT_REF, name="reference")
        procs.append(ref)
        relay = B.Proc("relay", [sys.executable, os.path.join(HERE, "faulty_relay.py"),
                                 "--listen", f"{HOST}:{PORT_RELAY}", "--upstream", f"{HOST}:{PORT_REF}",
                                 "--seed", str(args.seed)], logdir)
        procs.append(relay)
        B.wait_port(PORT_RELAY)
        fb = B.start_proxy(args.bin, PORT_FB, f"http://{HOST}:{PORT_RELAY}", "gitea", logdir, "forgebridge",
                           env=dict({"FORGEBRIDGE__UPSTREAM__TIMEOUT_SECS": "2",
                                     "FORGEBRIDGE__SERVER__REQUEST_TIMEOUT_SECS": "10"},
                                    **dict(kv.split("=", 1) for kv in args.fb_env)))
        procs.append(fb)

        # Warm-up (through the faults; answers not checked), then the baseline.
        for i in range(100):
            try:
                B.http_get(PORT_FB, f"/api/v3/orgs/org{i % 200 + 1:03d}", timeout=15)
            except OSError:
                pass
        time.sleep(2)
        warm_stats = relay_stats()
        baseline = B.proc_status(fb.pid)["VmRSS"]
        baseline_fds = len(os.listdir(f"/proc/{fb.pid}/fd"))
        B.reset_hwm([fb.pid])
        B.log(f"forgebridge RSS baseline {baseline / MiB:.1f} MiB; {args.clients} clients for {args.duration} s")

        tally = Tally()
        t0 = time.monotonic()
        samples = []

        async def sampler(stop):
            while not stop.is_set():
                samples.append((round(time.monotonic() - t0, 1), B.proc_status(fb.pid).get("VmRSS", 0)))
                try:
                    await asyncio.wait_for(stop.wait(), 1.0)
                except asyncio.TimeoutError:
                    pass

        async def everything():
            stop = asyncio.Event()
            s = asyncio.create_task(sampler(stop))
            await run_load(args, tally)
            stop.set()
            await s

        rounds = []  # (RSS 10 s after the round, open fds then)
        load_time = 0.0
        for rnd in range(1, args.rounds + 1):
            args.round = rnd
            t_round = time.monotonic()
            asyncio.run(everything())
            load_time += time.monotonic() - t_round
            B.log(f"round {rnd}: load done; waiting 10 s for the relay's delayed requests and for memory to settle")
            time.sleep(10)
            rounds.append((B.proc_status(fb.pid).get("VmRSS", 0), len(os.listdir(f"/proc/{fb.pid}/fd"))))
            B.log(f"round {rnd}: RSS {rounds[-1][0] / MiB:.1f} MiB, {rounds[-1][1]} open fds")
        elapsed = load_time
        peak = B.proc_status(fb.pid).get("VmHWM", 0)
        after = rounds[-1][0]
        trimmed = None
        if args.trim_probe and shutil.which("gdb"):
            # Diagnostic: ask glibc to give free memory back (malloc_trim(0)) and see how much of
            # the retained RSS was free-but-cached heap rather than live data.
            subprocess.run(["gdb", "-p", str(fb.pid), "-batch", "-ex", "call (int) malloc_trim(0)"],
                           capture_output=True, timeout=60)
            time.sleep(1)
            trimmed = B.proc_status(fb.pid).get("VmRSS", 0)
            B.log(f"after malloc_trim(0) via gdb: RSS {trimmed / MiB:.1f} MiB")
        fb_alive = fb.p.poll() is None
        stats = relay_stats()
        logins = reference_logins()
    finally:
        for p in reversed(procs):
            p.stop()

    fb_log = open(fb.logpath, errors="replace").read()
    panics = [l for l in fb_log.splitlines() if "panicked" in l or "internal error in forgebridge" in l]

    total_sent = sum(tally.sent.values())
    answered = sum(tally.status.values())
    on_ref = collections.Counter(logins)
    post_rx = stats["post_received"]
    post_fw = stats["post_forwarded"]
    created_201 = [n for n, s in tally.creates.items() if s == 201]

    def check(name, ok, detail):
        checks.append((name, ok, detail))

    check("every request got an answer", sum(tally.no_answer.values()) == 0,
          f"{answered} answered of {total_sent} sent; closed without answer: {dict(tally.no_answer)}")
    check("no hangs (client-side timeouts)", sum(tally.timeouts.values()) == 0,
          f"timeouts after {args.client_timeout:.0f} s: {dict(tally.timeouts)}")
    check("answers in the GitHub dialect (status + JSON shape)", not tally.bad_shape,
          f"{len(tally.bad_shape)} bad" + ("; first: " + " | ".join(tally.bad_shape[:5]) if tally.bad_shape else ""))
    check("no panics in the forgebridge log; still running", not panics and fb_alive,
          f"{len(panics)} panic lines; alive: {fb_alive}")
    allowed = max(16 * MiB, 0.25 * max(0, peak - baseline))
    check("RSS back near baseline after the load", after - baseline <= allowed,
          f"baseline {baseline / MiB:.1f} MiB, peak {peak / MiB:.1f} MiB, 10 s after {after / MiB:.1f} MiB "
          f"(allowed growth {allowed / MiB:.1f} MiB)")
    retried_posts = {n: c for n, c in post_rx.items() if c > 1}
    check("retries only for idempotent methods (no POST received twice)", not retried_posts,
          f"{len(post_rx)} POSTed names seen by the relay; received more than once: {len(retried_posts)} "
          + (str(list(retried_posts.items())[:5]) if retried_posts else ""))
    double = {n: c for n, c in post_fw.items() if c > 1}
    dup_ref = {n: c for n, c in on_ref.items() if c > 1}
    check("no create performed twice", not double and not dup_ref,
          f"forwarded more than once: {len(double)} {list(double.items())[:5] if double else ''}; "
          f"on the reference more than once: {len(dup_ref)}")
    false_ok = [n for n in created_201 if post_fw.get(n, 0) != 1 or on_ref.get(n, 0) != 1]
    check("every 201 create was forwarded once and exists", not false_ok,
          f"{len(created_201)} creates answered 201; inconsistent: {false_ok[:5]}")

    lat = sorted(tally.latency)
    pct = (lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000) if lat else (lambda p: 0)
    statuses = collections.Counter()
    for (kind, st), c in tally.status.items():
        statuses[f"{kind} {st}"] += c
    creates_err = collections.Counter(str(s) for s in tally.creates.values() if s != 201)
    err_created = sum(1 for n, s in tally.creates.items() if s != 201 and on_ref.get(n))
    get_client = tally.sent["get"] + tally.sent["missing"]
    lines = [
        "# forgebridge under faults",
        "",
        f"- {args.clients} concurrent GitHub-dialect clients for {args.duration} s"
        f"{f' x {args.rounds} rounds' if args.rounds > 1 else ''} (ran {elapsed:.1f} s), seed {args.seed}; "
        f"forgebridge (upstream timeout 2 s, deadline 10 s) -> faulty relay -> reference forge (gitea dialect)",
        f"- requests sent: {total_sent} ({dict(tally.sent)}); {answered / elapsed:.0f} answers/s; "
        f"latency p50 {pct(0.5):.0f} ms, p99 {pct(0.99):.0f} ms, max {pct(1.0):.0f} ms",
        f"- answers by call and status: {dict(sorted(statuses.items()))}",
        f"- relay faults injected: {stats['faults']}; relay upstream errors: {stats['upstream_errors']}",
        f"- creates: {len(tally.creates)} sent, {len(created_201)} answered 201; errors {dict(creates_err)}; "
        f"of the errored creates, {err_created} exist on the reference (performed upstream, answer lost: at most once)",
        f"- GETs: the relay received {stats['get_received_total'] - warm_stats['get_received_total']} GETs during the load "
        f"for {get_client} client GET-org calls, {tally.sent['list']} list calls (one upstream GET each) and "
        f"{tally.sent['create']} creates (one GET /user each: the site-administrator check); "
        f"any excess is retries, which are allowed for GETs",
        f"- answers without X-GitHub-Media-Type, by status: {dict(tally.missing_media_type)}",
        f"- forgebridge RSS (MiB) over time: {[(t, round(r / MiB, 1)) for t, r in samples[::5]]}",
        f"- forgebridge after each round (+10 s): RSS {[round(r / MiB, 1) for r, _ in rounds]} MiB, "
        f"open fds {[f for _, f in rounds]} (baseline {baseline / MiB:.1f} MiB, {baseline_fds} fds)"
        + (f"; extra environment {args.fb_env}" if args.fb_env else "")
        + (f"; after malloc_trim(0): {trimmed / MiB:.1f} MiB" if trimmed else ""),
        "",
        "| check | result | detail |",
        "|---|---|---|",
    ]
    for name, ok, detail in checks:
        lines.append(f"| {name} | {'PASS' if ok else '**FAIL**'} | {detail} |")
    report = "\n".join(lines) + "\n"
    print(report)
    with open(os.path.join(args.out, "faults-latest.md"), "w") as f:
        f.write(report)
    failed = [c for c in checks if not c[1]]
    if failed:
        print(f"FAILED: {len(failed)} check(s): {', '.join(c[0] for c in failed)}")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
