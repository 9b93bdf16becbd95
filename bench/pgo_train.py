#!/usr/bin/env python3
"""bench/pgo_train.py: the training load of a profile-guided build (bench/pgo.sh).

Runs an instrumented forgebridge as a seeded reference forge and as proxies onto it in the
Gitea, GitHub and GitLab dialects, and sends each the requests clients send most: reads of
one org, lists, members, creates and updates, and the common errors. The processes write
their profiles when they stop. Standard library only (the Dockerfile's builder runs it), and
every answer's status is checked, so that a broken build never trains the optimizer on
error paths alone.

    python3 bench/pgo_train.py --bin target/pgo-train/release/forgebridge
"""

import argparse
import asyncio
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402  (process helpers and the benchmark's seed)
from faults import read_message  # noqa: E402  (one HTTP/1.1 answer off a stream)

PORT_REF = 19150
PORTS = {"gitea": 19151, "github": 19152, "gitlab": 19153}
ADMIN = {"Authorization": f"token {B.ADMIN_TOKEN}", "Content-Type": "application/json"}
BENCH = {"Authorization": f"token {B.BENCH_TOKEN}"}

# (weight, method, path, headers, body or None, expected status). A weight is how many times
# each round sends it: reads of one org and lists dominate, as they do for bots and CI jobs.
READS = [
    (8, "GET", "/api/v3/orgs/acme", BENCH, None, 200),
    (6, "GET", "/api/v1/orgs/acme", BENCH, None, 200),
    (4, "GET", "/api/v4/groups/acme", BENCH, None, 200),
    (2, "GET", "/api/v3/user/orgs?per_page=100", BENCH, None, 200),
    (2, "GET", "/api/v1/user/orgs?limit=50", BENCH, None, 200),
    (1, "GET", "/api/v4/groups?per_page=50", BENCH, None, 200),
    (1, "GET", "/api/v3/organizations?per_page=100", BENCH, None, 200),
    (1, "GET", "/api/v3/orgs/acme/members?per_page=100", BENCH, None, 200),
    (1, "GET", "/api/v1/orgs/acme/members", BENCH, None, 200),
    (1, "GET", "/api/v1/orgs/acme/public_members", BENCH, None, 200),
    (1, "GET", "/api/v3/orgs/acme/events", BENCH, None, 200),
    (2, "GET", "/api/v3/orgs/no-such-org", BENCH, None, 404),
    (1, "GET", "/api/v1/orgs/no-such-org", BENCH, None, 404),
    (1, "GET", "/api/v4/groups/no-such-org", BENCH, None, 404),
]


# What a GitLab upstream has no counterpart for: forgebridge answers 501 in the client's dialect.
UNSUPPORTED = {"gitlab": {"/api/v1/orgs/acme/public_members", "/api/v3/orgs/acme/events"}}


def writes(name):
    """One round of writes that create and change an org of its own, named `name`."""
    return [
        ("POST", "/api/v3/admin/organizations", ADMIN, {"login": name, "admin": "admin"}, 201),
        ("PATCH", f"/api/v3/orgs/{name}", ADMIN, {"description": "trained"}, 200),
        ("POST", "/api/v1/orgs", ADMIN, {"username": name + "-g"}, 201),
        ("POST", "/api/v3/admin/organizations", ADMIN, {"admin": "admin"}, 422),
    ]


async def client(dialect, port, rounds, tag, failures):
    """One kept-alive connection sending `rounds` rounds of READS, and writes every tenth."""
    unsupported = UNSUPPORTED.get(dialect, set())
    reader, writer = await asyncio.open_connection(B.HOST, port)

    async def send(method, path, headers, body, want):
        data = b"" if body is None else json.dumps(body).encode()
        head = f"{method} {path} HTTP/1.1\r\nHost: {B.HOST}:{port}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        head += f"Content-Length: {len(data)}\r\n\r\n" if data else "\r\n"
        writer.write(head.encode() + data)
        status, _, _ = await read_message(reader)
        if path in unsupported:
            want = 501
        if status != want:
            failures.append(f":{port} {method} {path} answered {status}, expected {want}")

    try:
        for n in range(rounds):
            for weight, method, path, headers, body, want in READS:
                for _ in range(weight):
                    await send(method, path, headers, body, want)
            if n % 10 == 0:
                for method, path, headers, body, want in writes(f"train-{tag}-{n}"):
                    await send(method, path, headers, body, want)
    except (OSError, ValueError, asyncio.IncompleteReadError) as e:
        failures.append(f":{port} {type(e).__name__}: {e}")
    finally:
        writer.close()


async def load(rounds, clients, failures):
    """`clients` connections to each proxy at once, as a loaded server sees them."""
    await asyncio.gather(
        *(
            client(dialect, port, rounds, f"{dialect}{i}", failures)
            for dialect, port in PORTS.items()
            for i in range(clients)
        )
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True, help="instrumented forgebridge binary")
    ap.add_argument("--rounds", type=int, default=40, help="rounds per connection (default 40)")
    ap.add_argument("--clients", type=int, default=16, help="connections per proxy (default 16)")
    args = ap.parse_args()

    logdir = tempfile.mkdtemp(prefix="forgebridge-pgo-")
    seed = os.path.join(logdir, "seed.json")
    B.write_seed(seed)
    procs = [B.start_reference(args.bin, seed, logdir, port=PORT_REF)]
    failures = []
    try:
        upstream = f"http://{B.HOST}:{PORT_REF}"
        for dialect, port in PORTS.items():
            procs.append(B.start_proxy(args.bin, port, upstream, dialect, logdir, f"proxy-{dialect}"))
        asyncio.run(load(args.rounds, args.clients, failures))
    finally:
        # A clean stop (SIGTERM) is what writes each process's profile.
        for p in reversed(procs):
            p.stop()
    if failures:
        print(f"pgo_train: {len(failures)} unexpected answers (logs in {logdir}):", file=sys.stderr)
        for f in failures[:10]:
            print("  " + f, file=sys.stderr)
        sys.exit(1)
    print(f"pgo_train: done (logs in {logdir})")


if __name__ == "__main__":
    main()
