#!/usr/bin/env python3
"""Benchmark driver behind bench/run.sh (stdlib only; needs wrk and nginx on PATH).

Measures, against one upstream (the reference forge on loopback, seeded with 200 orgs):
  (a) the upstream directly,
  (b) nginx as a plain pass-through reverse proxy (keepalive upstream pool),
  (c) forgebridge same-dialect pass-through (Gitea client -> gitea-dialect upstream),
  (d) forgebridge translating (GitHub client -> gitea-dialect upstream),
for GET one org, list orgs and create (POST) an org, saturated (as fast as answers come back);
GET and the 100-org list again at a fixed load (wrk/paced.lua) for latency; plus start-up time
and the RSS of a forgebridge holding 1,000 idle keep-alive connections. Writes bench/results/latest.md and
bench/results/latest.json. Loopback only, ports 19100-19119.

Run it through bench/run.sh, which installs wrk/nginx and builds forgebridge first:
    python3 bench/bench.py --bin target/release/forgebridge [--duration 10] [--connections 64]
"""

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WRK_DIR = os.path.join(HERE, "wrk")

HOST = "127.0.0.1"
PORT_REF = 19100
PORT_NGINX = 19101
PORT_FB_GITEA = 19102  # forgebridge -> gitea-dialect upstream (cases c, d)
PORT_FB_GITHUB = 19103  # forgebridge -> github-dialect upstream (list-100 same-dialect case)
PORT_IDLE = 19104  # fresh forgebridge for the 1,000-idle-connections measurement
PORT_QUIET_LOG = 19105  # forgebridge -> gitea upstream with log level warn
PORT_STARTUP = 19110

ADMIN_TOKEN = "forgebridge-admin-token"
BENCH_TOKEN = "bench-token"
N_ORGS = 200
N_BENCH_MEMBER = 100  # the "bench" user belongs to the first 100 orgs


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------------------ processes
class Proc:
    """A child process we started; stopped by its own pid only."""

    def __init__(self, name, argv, logdir, env=None):
        self.name = name
        self.logpath = os.path.join(logdir, f"{name}.log")
        self.logf = open(self.logpath, "ab")
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.started = time.perf_counter()
        self.p = subprocess.Popen(
            argv, stdout=self.logf, stderr=subprocess.STDOUT, env=full_env
        )
        self.pid = self.p.pid

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.logf.close()


def http_get(port, path, timeout=2.0, headers=None):
    """One HTTP/1.1 GET on a fresh connection; returns (status, body) or raises."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        s.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n{extra}Connection: close\r\n\r\n".encode()
        )
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body


def wait_healthy(port, proc=None, timeout=20.0, poll=0.0005):
    """Polls GET /healthz until it answers 200; returns seconds waited."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc is not None and proc.p.poll() is not None:
            raise RuntimeError(f"{proc.name} exited early; see {proc.logpath}")
        try:
            status, _ = http_get(port, "/healthz", timeout=1.0)
            if status == 200:
                return time.perf_counter() - t0
        except OSError:
            pass
        time.sleep(poll)
    raise RuntimeError(f"port {port} did not become healthy")


def wait_port(port, timeout=20.0):
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.01)
    raise RuntimeError(f"port {port} did not open")


def proc_status(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM"):
                    out[k] = int(v.split()[0])  # KiB
    except OSError:
        pass
    return out


def children(pid):
    try:
        out = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True
        ).stdout
        return [int(x) for x in out.split()]
    except Exception:
        return []


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_s(pids):
    """User + system CPU seconds used so far by these processes."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / CLK_TCK


def sys_busy_s():
    """Busy and total CPU seconds of the whole machine so far (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = v
    busy = user + nice + system + irq + softirq + steal
    return busy / CLK_TCK, (busy + idle + iowait) / CLK_TCK


def children_cpu_s():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class Foreign:
    """CPU used on the machine by processes other than this benchmark's, over an interval."""

    def __init__(self, our_pids):
        self.pids = our_pids
        self.b0, self.t0 = sys_busy_s()
        self.c0 = children_cpu_s()
        self.o0 = cpu_s(our_pids)

    def pct(self):
        b1, t1 = sys_busy_s()
        ours = (children_cpu_s() - self.c0) + (cpu_s(self.pids) - self.o0)
        span = max(1e-9, t1 - self.t0)
        return max(0.0, (b1 - self.b0 - ours) / span * 100)


QUIET_BUDGET = {"left": 0.0}


def wait_quiet(our_pids, threshold=15.0, max_wait=30.0):
    """Waits (bounded per case and per run) until other work on the machine uses under
    `threshold` % of the CPU, measured over 1 s."""
    t0 = time.monotonic()
    while True:
        f = Foreign(our_pids)
        time.sleep(1.0)
        pct = f.pct()
        waited = time.monotonic() - t0
        if pct < threshold or waited >= max_wait or QUIET_BUDGET["left"] <= waited:
            QUIET_BUDGET["left"] -= waited
            return pct


def reset_hwm(pids):
    for pid in pids:
        try:
            with open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass


def hwm_kib(pids):
    return sum(proc_status(p).get("VmHWM", 0) for p in pids)


def rss_kib(pids):
    return sum(proc_status(p).get("VmRSS", 0) for p in pids)


# ------------------------------------------------------------------------------ stack
def write_seed(path):
    users = [{"login": "bench", "token": BENCH_TOKEN}] + [
        {"login": f"user{i:03d}", "token": f"user{i:03d}-token"} for i in range(1, 21)
    ]
    orgs = []
    for i in range(1, N_ORGS + 1):
        members = [f"user{j:03d}" for j in range(1, 21) if (i + j) % 4 == 0]
        if i <= N_BENCH_MEMBER:
            members.append("bench")
        orgs.append(
            {
                "login": f"org{i:03d}",
                "display_name": f"Organization {i}",
                "description": f"Benchmark organization number {i}",
                "owners": ["admin"],
                "members": members,
                "public_members": members[:1],
            }
        )
    orgs[0]["login"] = "acme"
    with open(path, "w") as f:
        json.dump({"users": users, "orgs": orgs}, f)


def start_reference(bin_path, seed, logdir, port=PORT_REF, name="reference"):
    p = Proc(
        name,
        [bin_path, "serve", "--listen", f"{HOST}:{port}", "--reference-seed", seed],
        logdir,
        env={"NO_COLOR": "1"},
    )
    wait_healthy(port, p)
    return p


def start_proxy(bin_path, port, upstream, dialect, logdir, name, env=None):
    e = {"NO_COLOR": "1"}
    e.update(env or {})
    p = Proc(
        name,
        [
            bin_path, "serve", "--listen", f"{HOST}:{port}",
            "--upstream", upstream, "--upstream-dialect", dialect,
        ],
        logdir,
        env=e,
    )
    wait_healthy(port, p)
    return p


NGINX_CONF = """
worker_processes {workers};
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
daemon off;
events {{ worker_connections 8192; }}
http {{
    access_log {dir}/nginx-access.log;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream forge {{
        server {host}:{upstream_port};
        keepalive 64;
    }}
    server {{
        listen {host}:{port};
        location / {{
            proxy_pass http://forge;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
        }}
    }}
}}
"""


def start_nginx(logdir, workers):
    d = tempfile.mkdtemp(prefix="fb-bench-nginx-")
    os.chmod(d, 0o777)
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(
            NGINX_CONF.format(
                workers=workers, dir=d, host=HOST, upstream_port=PORT_REF, port=PORT_NGINX
            )
        )
    p = Proc("nginx", [shutil.which("nginx") or "nginx", "-c", conf, "-p", d], logdir)
    wait_port(PORT_NGINX)
    time.sleep(0.2)
    p.tmpdir = d
    return p


def nginx_pids(p):
    return [p.pid] + children(p.pid)


# ------------------------------------------------------------------------------ wrk
def run_wrk(url, duration, conns, threads, script, headers=None, env=None, timeout_s=10):
    argv = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", f"--timeout={timeout_s}s",
            "-s", script]
    for h in headers or []:
        argv += ["-H", h]
    argv.append(url)
    full_env = dict(os.environ)
    full_env.update(env or {})
    out = subprocess.run(argv, capture_output=True, text=True, env=full_env)
    for line in out.stdout.splitlines():
        if line.startswith("WRKJSON "):
            return json.loads(line[len("WRKJSON "):])
    raise RuntimeError(f"wrk gave no result: {out.stdout}\n{out.stderr}")


def check_once(port, path, headers, expect_items=None):
    status, body = http_get(port, path, headers=dict(h.split(": ", 1) for h in headers or []))
    if status != 200:
        raise RuntimeError(f"GET :{port}{path} answered {status}: {body[:300]!r}")
    data = json.loads(body)
    if expect_items is not None:
        if not isinstance(data, list) or len(data) != expect_items:
            got = len(data) if isinstance(data, list) else type(data).__name__
            raise RuntimeError(f"GET :{port}{path}: expected {expect_items} items, got {got}")
    return data


# ------------------------------------------------------------------------------ measurements
def measure_startup(bin_path, seed, logdir, runs):
    """Process start -> /healthz 200, for a proxy (mappings loaded and validated at start-up)
    and for the seeded reference forge."""
    results = {}
    kinds = {
        "proxy (gitea upstream)": [
            bin_path, "serve", "--listen", f"{HOST}:{PORT_STARTUP}",
            "--upstream", f"http://{HOST}:{PORT_REF}", "--upstream-dialect", "gitea",
        ],
        f"reference forge ({N_ORGS} orgs seeded)": [
            bin_path, "serve", "--listen", f"{HOST}:{PORT_STARTUP}", "--reference-seed", seed,
        ],
    }
    for kind, argv in kinds.items():
        times = []
        for i in range(runs):
            p = Proc("startup", argv, logdir, env={"NO_COLOR": "1"})
            t0 = p.started
            try:
                while True:
                    if p.p.poll() is not None:
                        raise RuntimeError(f"forgebridge exited during start-up; see {p.logpath}")
                    try:
                        status, _ = http_get(PORT_STARTUP, "/healthz", timeout=1.0)
                        if status == 200:
                            break
                    except OSError:
                        pass
                    if time.perf_counter() - t0 > 20:
                        raise RuntimeError("start-up took more than 20 s")
                    time.sleep(0.0005)
                times.append((time.perf_counter() - t0) * 1000)
            finally:
                p.stop()
        results[kind] = {
            "median_ms": statistics.median(times),
            "min_ms": min(times),
            "max_ms": max(times),
            "runs": runs,
        }
        log(f"start-up {kind}: median {statistics.median(times):.1f} ms over {runs} runs")
    return results


def measure_idle(bin_path, logdir, n_conns, hold_s):
    """RSS of a fresh forgebridge proxy holding n_conns idle keep-alive connections, each of
    which has completed one request (GET /healthz)."""
    p = start_proxy(bin_path, PORT_IDLE, f"http://{HOST}:{PORT_REF}", "gitea", logdir, "fb-idle")
    try:
        # One translated request so the upstream client, mappings and logging are warm.
        check_once(PORT_IDLE, "/api/v3/orgs/acme", None)
        time.sleep(0.5)
        base = proc_status(p.pid)
        socks = []
        req = f"GET /healthz HTTP/1.1\r\nHost: {HOST}:{PORT_IDLE}\r\n\r\n".encode()
        for _ in range(n_conns):
            s = socket.create_connection((HOST, PORT_IDLE), timeout=5)
            s.sendall(req)
            socks.append(s)
        answered = 0
        for s in socks:
            data = b""
            while b"\r\n\r\n" not in data or not data.endswith(b'{"status":"ok"}'):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            if data.startswith(b"HTTP/1.1 200"):
                answered += 1
        time.sleep(hold_s)
        held = proc_status(p.pid)
        # Still open? Each socket must not have been closed by the server.
        still_open = 0
        for s in socks:
            s.setblocking(False)
            try:
                if s.recv(1) == b"":
                    continue
            except BlockingIOError:
                still_open += 1
            except OSError:
                continue
        for s in socks:
            s.close()
        time.sleep(2)
        after = proc_status(p.pid)
        res = {
            "connections": n_conns,
            "answered": answered,
            "still_open_after_hold": still_open,
            "hold_s": hold_s,
            "rss_baseline_kib": base.get("VmRSS"),
            "rss_with_conns_kib": held.get("VmRSS"),
            "hwm_with_conns_kib": held.get("VmHWM"),
            "rss_after_close_kib": after.get("VmRSS"),
        }
        log(f"idle connections: {json.dumps(res)}")
        return res
    finally:
        p.stop()


def machine_info(bin_path):
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_kib = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem_kib = int(line.split()[1])

    def version(argv):
        try:
            r = subprocess.run(argv, capture_output=True, text=True)
            return (r.stdout + r.stderr).strip().splitlines()[0]
        except Exception:
            return "?"

    commit = version(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(
        ["git", "-C", ROOT, "status", "--porcelain", "--", "src", "mappings", "Cargo.toml"],
        capture_output=True, text=True,
    ).stdout.strip()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "mem_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "wrk": version(["wrk", "-v"]),
        "nginx": version(["nginx", "-v"]),
        "python": platform.python_version(),
        "binary": bin_path,
        "build": (
            "profile-guided release build (bench/pgo.sh)" if "/target/pgo/" in bin_path
            else "plain release build" if "/target/release/" in bin_path
            else "binary given by FORGEBRIDGE_BIN"
        ),
        "commit": commit + (" (working tree differs in src/mappings)" if dirty else ""),
        "loadavg_start": open("/proc/loadavg").read().split()[:3],
    }


# ------------------------------------------------------------------------------ report
TARGET_NAMES = {
    "a": "(a) upstream directly",
    "b": "(b) nginx pass-through",
    "c": "(c) forgebridge same-dialect",
    "d": "(d) forgebridge GitHub→Gitea",
}


def cpu_cell(v):
    return "—" if v is None else f"{v:.0f}"


def median_round(rounds, key):
    """Of one target's rounds, the one with the median `key` (req/s, p99), which keeps every
    round's value in `rounds_<key>` for the range shown beside it."""
    ordered = sorted(rounds, key=lambda r: r[key])
    keep = ordered[len(ordered) // 2]
    keep[f"rounds_{key}"] = [r[key] for r in ordered]
    return keep


def round_cell(r, key, fmt):
    """A figure of a row; for a case run in rounds, the median round's with the range."""
    rounds = r.get(f"rounds_{key}") or []
    if len(rounds) < 2:
        return fmt(r[key])
    return f"{fmt(r[key])} ({fmt(min(rounds))}–{fmt(max(rounds))})"


def fmt_ms(us):
    return f"{us / 1000:.2f}"


def fmt_rps(rps):
    return f"{rps:.0f}"


def socket_errors(r):
    return r["err_connect"] + r["err_read"] + r["err_write"] + r["err_timeout"]


def render(results, paced, info, startup, idle, args):
    lines = []
    w = lines.append
    w("# forgebridge benchmark results")
    w("")
    w(f"- date: {info['date']}")
    w(f"- machine: `nproc` = {info['nproc']}, CPU: {info['cpu']}, memory: {info['mem_gib']} GiB, kernel {info['kernel']}")
    w(f"- tools: {info['wrk']}; {info['nginx']}; Python {info['python']}")
    w(f"- forgebridge: `{info['binary']}`, commit {info['commit']}, {info['build']}, default settings (log level info, to a file)")
    w(f"- load: wrk, {args.threads} threads, {args.connections} connections, {args.duration} s per case after a {args.warmup} s warm-up "
      f"(creates: {args.create_duration} s after {args.create_warmup} s, each on a freshly started stack); "
      "load generator, proxies and upstream share the same cores")
    w(f"- rounds: the GET and list cases run {args.rounds} times, targets interleaved in each round; "
      "each row is the round with the median req/s (the range of all rounds in brackets), "
      "and the ratios come from those rows")
    w(f"- upstream: the reference forge (`forgebridge serve --reference-seed`, {N_ORGS} orgs, 21 users; "
      f"user `bench` is a member of {N_BENCH_MEMBER} orgs), on loopback")
    w("- nginx: plain `proxy_pass` to an upstream block with `keepalive 64`, HTTP/1.1 to the upstream, "
      f"worker_processes {args.nginx_workers}, access log to a file")
    w(f"- load average before the run: {' '.join(info['loadavg_start'])}; after: {' '.join(info.get('loadavg_end', ['?']))} "
      "(other work on the machine during the run skews the numbers)")
    w("")
    w("## Throughput and latency")
    w("")
    w("| case | target | request | req/s | p50 ms | p99 ms | errors / non-2xx | proxy CPU µs/req | upstream CPU µs/req | peak RSS of proxy (MiB) | other load on the machine |")
    w("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        errs = socket_errors(r)
        rss = f"{r['peak_rss_kib'] / 1024:.1f}" if r.get("peak_rss_kib") else "—"
        if r["target"] == "a":
            rss = f"(upstream: {r['upstream_peak_rss_kib'] / 1024:.1f})"
        w(f"| {r['case']} | {TARGET_NAMES[r['target']] if not r.get('target_label') else r['target_label']} | `{r['method']} {r['path']}` "
          f"| {round_cell(r, 'rps', fmt_rps)} | {fmt_ms(r['p50_us'])} | {fmt_ms(r['p99_us'])} | {errs} / {r['err_status']} "
          f"| {cpu_cell(r['proxy_cpu_us_per_req'])} | {cpu_cell(r['upstream_cpu_us_per_req'])} | {rss} "
          f"| {r.get('foreign_cpu_pct', 0):.0f}% |")
    w("")
    w("## Ratios against nginx pass-through (b)")
    w("")
    w("| case | (c)/(b) req/s | (d)/(b) req/s | p99 added by (c) over (b), ms | p99 added by (d) over (b), ms | p99 added by (d) over (a), ms | proxy CPU per request (d)/(b) |")
    w("|---|---:|---:|---:|---:|---:|---:|")
    cases = []
    for r in results:
        if r["case"] not in cases:
            cases.append(r["case"])
    summary = {}
    for case in cases:
        by = {r["target"]: r for r in results if r["case"] == case}
        b = by.get("b")
        if not b:
            continue
        cells = []
        for t in ("c", "d"):
            cells.append(f"{by[t]['rps'] / b['rps']:.2f}" if t in by else "—")
        for t, base in (("c", "b"), ("d", "b"), ("d", "a")):
            if t in by and base in by:
                cells.append(f"{(by[t]['p99_us'] - by[base]['p99_us']) / 1000:+.2f}")
            else:
                cells.append("—")
        if "d" in by and by["d"].get("proxy_cpu_us_per_req") and b.get("proxy_cpu_us_per_req"):
            cells.append(f"{by['d']['proxy_cpu_us_per_req'] / b['proxy_cpu_us_per_req']:.1f}×")
        else:
            cells.append("—")
        summary[case] = cells
        w(f"| {case} | " + " | ".join(cells) + " |")
    w("")
    w("## Latency at a fixed offered load")
    w("")
    w(f"The same {args.connections} connections, each waiting a fixed time (±25 %) before each request, so the offered load is "
      "half of what the slowest of (a), (b) and (d) managed above: no target is saturated, so p99 is the request's own "
      "path, not a queue. (Latency in the saturated runs above is mostly queueing: connections ÷ throughput.) "
      f"Each row is the round with the median p99 of {args.rounds} (targets interleaved; the range of all rounds' p99 "
      "in brackets), and the added latency comes from those rows.")
    w("")
    w("| case | target | offered req/s | achieved req/s | p50 ms | p99 ms | errors / non-2xx | p99 added over (b), ms | p99 added over (a), ms |")
    w("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in paced:
        by = {p["target"]: p for p in paced if p["case"] == r["case"]}
        errs = socket_errors(r)
        over = []
        for base in ("b", "a"):
            over.append("—" if r["target"] == base or base not in by or r["target"] == "a"
                        else f"{(r['p99_us'] - by[base]['p99_us']) / 1000:+.2f}")
        w(f"| {r['case']} | {TARGET_NAMES[r['target']]} | {r['offered_rps']:.0f} | {r['rps']:.0f} | {fmt_ms(r['p50_us'])} "
          f"| {round_cell(r, 'p99_us', fmt_ms)} | {errs} / {r['err_status']} | {over[0]} | {over[1]} |")
    w("")
    w("## Start-up and idle connections")
    w("")
    w("| measurement | value |")
    w("|---|---:|")
    for kind, s in startup.items():
        w(f"| start-up to `/healthz` 200, {kind} | median {s['median_ms']:.1f} ms (min {s['min_ms']:.1f}, max {s['max_ms']:.1f}, {s['runs']} runs) |")
    w(f"| RSS of a fresh proxy, before | {idle['rss_baseline_kib'] / 1024:.1f} MiB |")
    w(f"| RSS with {idle['connections']} idle keep-alive connections ({idle['answered']} answered, {idle['still_open_after_hold']} still open after {idle['hold_s']} s) | {idle['rss_with_conns_kib'] / 1024:.1f} MiB (peak {idle['hwm_with_conns_kib'] / 1024:.1f} MiB) |")
    w(f"| RSS 2 s after closing them | {idle['rss_after_close_kib'] / 1024:.1f} MiB |")
    w("")
    w("## Against the targets of issue 5")
    w("")
    w("| target | measured | met? |")
    w("|---|---|---|")
    def verdict(ok):
        return "yes" if ok else "**no**"
    for case in cases:
        by = {r["target"]: r for r in results if r["case"] == case}
        if "b" in by and "d" in by:
            ratio = by["d"]["rps"] / by["b"]["rps"]
            w(f"| translating throughput ≥ 0.9× nginx ({case}) | {ratio:.2f}× | {verdict(ratio >= 0.9)} |")
    for rows in (results, paced):
        for case in cases:
            by = {r["target"]: r for r in rows if r["case"] == case}
            if "b" in by and "d" in by:
                added = (by["d"]["p99_us"] - by["b"]["p99_us"]) / 1000
                load = "saturated" if rows is results else f"fixed load of {by['d']['offered_rps']:.0f} req/s"
                w(f"| added p99 < 1 ms at {args.connections} connections, {load}, (d) − (b) ({case}) "
                  f"| {added:+.2f} ms | {verdict(added < 1)} |")
    peak = idle["hwm_with_conns_kib"] / 1024
    w(f"| peak RSS < 40 MiB with {idle['connections']} open connections | {peak:.1f} MiB | {verdict(peak < 40)} |")
    for kind, s in startup.items():
        if kind.startswith("proxy"):
            w(f"| start-up < 100 ms ({kind}) | {s['median_ms']:.1f} ms | {verdict(s['median_ms'] < 100)} |")
    w("")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ main
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/forgebridge"))
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds of the GET and list cases (saturated and at a fixed load), targets interleaved; the median is kept")
    ap.add_argument("--create-duration", type=int, default=5)
    ap.add_argument("--create-warmup", type=int, default=2)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--nginx-workers", default="auto")
    ap.add_argument("--idle-connections", type=int, default=1000)
    ap.add_argument("--startup-runs", type=int, default=10)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--only", default="", help="comma-separated case names to run (debugging)")
    ap.add_argument("--label", default="", help="describes the binary (default: the repository's commit)")
    ap.add_argument("--quiet-budget", type=float, default=240,
                    help="seconds, per run, to wait for other work on the machine to calm down")
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 65536)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    QUIET_BUDGET["left"] = args.quiet_budget
    bin_path = os.path.abspath(args.bin)
    os.makedirs(args.out, exist_ok=True)
    logdir = os.path.join(args.out, "logs")
    shutil.rmtree(logdir, ignore_errors=True)
    os.makedirs(logdir)
    seed = os.path.join(logdir, "seed.json")
    write_seed(seed)
    info = machine_info(bin_path)
    if args.label:
        info["commit"] = args.label
    log(f"machine: {json.dumps(info)}")
    only = set(filter(None, args.only.split(",")))

    procs = []
    results = []
    report_lua = os.path.join(WRK_DIR, "report.lua")
    create_lua = os.path.join(WRK_DIR, "create.lua")
    paced_lua = os.path.join(WRK_DIR, "paced.lua")
    paced = []
    admin_h = [f"Authorization: token {ADMIN_TOKEN}"]
    bench_h = [f"Authorization: token {BENCH_TOKEN}"]

    def all_pids():
        pids = []
        for p in procs:
            pids.append(p.pid)
            if p.name == "nginx":
                pids += children(p.pid)
        return pids

    def measure(url, script, headers, ours, env=None, before=lambda: None):
        """One wrk case: a warm-up, a wait for the machine to calm down, `before()`, then the
        measured run, with the CPU other processes used meanwhile."""
        run_wrk(url, args.warmup, args.connections, args.threads, script, headers, env=env)
        quiet = wait_quiet(ours)
        before()
        foreign = Foreign(ours)
        r = run_wrk(url, args.duration, args.connections, args.threads, script, headers, env=env)
        r["foreign_cpu_pct"] = foreign.pct()
        r["foreign_before_pct"] = quiet
        r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
        return r

    def wrk_case(case, target, port, path, headers, proxy_pids, ref, expect_items=None, label=None):
        check_once(port, path, headers, expect_items)
        cpu0 = {}

        def before():
            reset_hwm(proxy_pids + [ref.pid])
            cpu0.update(proxy=cpu_s(proxy_pids), upstream=cpu_s([ref.pid]))

        r = measure(f"http://{HOST}:{port}{path}", report_lua, headers,
                    list(set(all_pids() + [ref.pid])), before=before)
        r["proxy_cpu_us_per_req"] = (cpu_s(proxy_pids) - cpu0["proxy"]) * 1e6 / max(1, r["requests"]) if proxy_pids else None
        r["upstream_cpu_us_per_req"] = (cpu_s([ref.pid]) - cpu0["upstream"]) * 1e6 / max(1, r["requests"])
        r.update(case=case, target=target, method="GET", path=path, target_label=label)
        r["peak_rss_kib"] = hwm_kib(proxy_pids) if proxy_pids else None
        r["upstream_peak_rss_kib"] = hwm_kib([ref.pid])
        results.append(r)
        log(f"{case} {target}: {r['rps']:.0f} req/s, p50 {fmt_ms(r['p50_us'])} ms, p99 {fmt_ms(r['p99_us'])} ms, "
            f"status errors {r['err_status']}, socket errors {socket_errors(r)}")

    def median_rounds(case):
        """Keeps, per target of `case`, the round with the median throughput (with the range of
        all rounds), in target order: one busy moment on the machine moves one round, not the
        result."""
        mine = [r for r in results if r["case"] == case]
        for r in mine:
            results.remove(r)
        by = {}
        for r in mine:
            by.setdefault(r["target"], []).append(r)
        for t in sorted(by):
            results.append(median_round(by[t], "rps"))

    def paced_cases(case, spec, headers):
        """Latency at one fixed offered load for every target of `spec` ({target: (port, path)}):
        half of what the slowest target of the saturated run above managed, so that no target
        queues and the added latency is the proxy's own work. Runs `args.rounds` rounds, targets
        interleaved, and keeps per target the round with the median p99 (with the range of all
        rounds): the p99 of one 10 s run moves by half a millisecond from run to run here."""
        slowest = min(r["rps"] for r in results if r["case"] == case and r["target"] in spec)
        rate = 0.5 * slowest
        pace_ms = max(1, round(args.connections / rate * 1000))
        by = {}
        for _ in range(args.rounds):
            for target, (port, path) in spec.items():
                r = measure(f"http://{HOST}:{port}{path}", paced_lua, headers, list(set(all_pids())),
                            env={"FB_PACE_MS": str(pace_ms)})
                r.update(case=case, target=target, path=path, pace_ms=pace_ms, offered_rps=rate)
                by.setdefault(target, []).append(r)
                log(f"{case} {target} at a fixed load ({pace_ms} ms between requests per connection): "
                    f"{r['rps']:.0f} req/s, p50 {fmt_ms(r['p50_us'])} ms, p99 {fmt_ms(r['p99_us'])} ms, "
                    f"status errors {r['err_status']}")
        for target in spec:
            paced.append(median_round(by[target], "p99_us"))

    try:
        # ------------------------------------------------------------------ GET and list
        ref = start_reference(bin_path, seed, logdir)
        procs.append(ref)
        ngx = start_nginx(logdir, args.nginx_workers)
        procs.append(ngx)
        fb = start_proxy(bin_path, PORT_FB_GITEA, f"http://{HOST}:{PORT_REF}", "gitea", logdir, "fb-gitea")
        procs.append(fb)
        fbg = start_proxy(bin_path, PORT_FB_GITHUB, f"http://{HOST}:{PORT_REF}/api/v3", "github", logdir, "fb-github")
        procs.append(fbg)
        ngx_p = nginx_pids(ngx)

        targets = {"a": (PORT_REF, []), "b": (PORT_NGINX, ngx_p), "c": (PORT_FB_GITEA, [fb.pid]), "d": (PORT_FB_GITEA, [fb.pid])}
        gitea_get = "/api/v1/orgs/acme"
        github_get = "/api/v3/orgs/acme"
        if not only or "get" in only:
            # (e): the same translated GET with the per-request access log off (log level
            # warn), to show what logging costs.
            quiet_fb = start_proxy(bin_path, PORT_QUIET_LOG, f"http://{HOST}:{PORT_REF}", "gitea", logdir,
                                   "fb-gitea-warn", env={"FORGEBRIDGE__LOG__LEVEL": "warn"})
            procs.append(quiet_fb)
            spec = {t: (*targets[t], gitea_get if t != "d" else github_get, None) for t in "abcd"}
            spec["e"] = (PORT_QUIET_LOG, [quiet_fb.pid], github_get,
                         "(d) with `log.level = warn` (no access log)")
            for _ in range(args.rounds):
                for t in "abcde":
                    port, pids, path, label = spec[t]
                    wrk_case("GET one org", t, port, path, None, pids, ref, label=label)
            procs.remove(quiet_fb)
            quiet_fb.stop()
            median_rounds("GET one org")
            paced_cases("GET one org", {"a": (PORT_REF, gitea_get), "b": (PORT_NGINX, gitea_get),
                                        "d": (PORT_FB_GITEA, github_get)}, None)
        if not only or "list50" in only:
            g50 = "/api/v1/user/orgs?limit=50&page=1"
            h50 = "/api/v3/user/orgs?per_page=50&page=1"
            for _ in range(args.rounds):
                for t in "abcd":
                    port, pids = targets[t]
                    path = g50 if t != "d" else h50
                    wrk_case("list 50 orgs", t, port, path, bench_h, pids, ref, expect_items=50)
            median_rounds("list 50 orgs")
        if not only or "list100" in only:
            # Gitea pages hold at most 50, so the 100-item list is asked in GitHub's dialect from
            # every target: the reference forge serves GitHub natively (a, b), a second proxy
            # passes GitHub to a github-dialect upstream (c'), and (d) translates it to two
            # Gitea pages of 50.
            h100 = "/api/v3/user/orgs?per_page=100&page=1"
            spec = {
                "a": (PORT_REF, [], None),
                "b": (PORT_NGINX, ngx_p, None),
                "c": (PORT_FB_GITHUB, [fbg.pid], "(c′) forgebridge same-dialect GitHub→GitHub"),
                "d": (PORT_FB_GITEA, [fb.pid], None),
            }
            for _ in range(args.rounds):
                for t in "abcd":
                    port, pids, label = spec[t]
                    wrk_case("list 100 orgs", t, port, h100, bench_h, pids, ref, expect_items=100, label=label)
            median_rounds("list 100 orgs")
            paced_cases("list 100 orgs", {"a": (PORT_REF, h100), "b": (PORT_NGINX, h100),
                                          "d": (PORT_FB_GITEA, h100)}, bench_h)
        for p in reversed(procs):
            p.stop()
        procs.clear()

        # ------------------------------------------------------------------ creates
        if not only or "create" in only:
            for t in "abcd":
                ref = start_reference(bin_path, seed, logdir, name=f"reference-create-{t}")
                procs.append(ref)
                if t == "a":
                    port, pids = PORT_REF, []
                elif t == "b":
                    ngx = start_nginx(logdir, args.nginx_workers)
                    procs.append(ngx)
                    port, pids = PORT_NGINX, nginx_pids(ngx)
                else:
                    fb = start_proxy(bin_path, PORT_FB_GITEA, f"http://{HOST}:{PORT_REF}", "gitea", logdir, f"fb-create-{t}")
                    procs.append(fb)
                    port, pids = PORT_FB_GITEA, [fb.pid]
                if t == "d":
                    dialect, path = "github", "/api/v3/admin/organizations"
                else:
                    dialect, path = "gitea", "/api/v1/orgs"
                url = f"http://{HOST}:{port}{path}"
                env = {"FB_CREATE_DIALECT": dialect, "FB_CREATE_PATH": path, "FB_CREATE_TOKEN": ADMIN_TOKEN}
                run_wrk(url, args.create_warmup, args.connections, args.threads, create_lua,
                        env=dict(env, FB_CREATE_PREFIX=f"warm{t}"))
                ours = pids + [ref.pid]
                quiet = wait_quiet(ours)
                reset_hwm(pids + [ref.pid])
                cpu0 = (cpu_s(pids), cpu_s([ref.pid]))
                foreign = Foreign(ours)
                r = run_wrk(url, args.create_duration, args.connections, args.threads, create_lua,
                            env=dict(env, FB_CREATE_PREFIX=f"bench{t}"))
                r["foreign_cpu_pct"] = foreign.pct()
                r["foreign_before_pct"] = quiet
                r["proxy_cpu_us_per_req"] = (cpu_s(pids) - cpu0[0]) * 1e6 / max(1, r["requests"]) if pids else None
                r["upstream_cpu_us_per_req"] = (cpu_s([ref.pid]) - cpu0[1]) * 1e6 / max(1, r["requests"])
                r.update(case="create org", target=t, method="POST", path=path, target_label=None)
                r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
                r["peak_rss_kib"] = hwm_kib(pids) if pids else None
                r["upstream_peak_rss_kib"] = hwm_kib([ref.pid])
                # Every create must have landed exactly once: count them on the reference.
                status, body = http_get(PORT_REF, f"/api/v1/orgs/bench{t}-t1-1")
                r["first_create_found"] = status == 200
                results.append(r)
                log(f"create {t}: {r['requests']} creates, {r['rps']:.0f} req/s, p50 {fmt_ms(r['p50_us'])} ms, "
                    f"p99 {fmt_ms(r['p99_us'])} ms, status errors {r['err_status']}")
                for p in reversed(procs):
                    p.stop()
                procs.clear()

        # ------------------------------------------------------------------ start-up, idle
        startup = measure_startup(bin_path, seed, logdir, args.startup_runs)
        ref = start_reference(bin_path, seed, logdir, name="reference-idle")
        procs.append(ref)
        idle = measure_idle(bin_path, logdir, args.idle_connections, hold_s=3)
    finally:
        for p in reversed(procs):
            p.stop()

    info["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    md = render(results, paced, info, startup, idle, args)
    with open(os.path.join(args.out, "latest.md"), "w") as f:
        f.write(md)
    with open(os.path.join(args.out, "latest.json"), "w") as f:
        json.dump({"machine": info, "results": results, "paced": paced, "startup": startup, "idle": idle}, f, indent=1)
    print(md)
    log(f"wrote {os.path.join(args.out, 'latest.md')}")


if __name__ == "__main__":
    main()
