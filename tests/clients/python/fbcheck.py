"""Shared helpers for the real-client scripts: argument parsing, checks and reporting.

Every script is run as `python SCRIPT --base http://127.0.0.1:PORT --upstream DIALECT` against a
forgebridge proxy whose upstream is a seeded reference forge (see tests/common/mod.rs). Tokens
default to the seed's and may be overridden by flags or FB_* environment variables.

A script is a list of sections. A section stops at its first failed check and the script goes on
with the next section; the script exits 1 if any check failed. Each failure is printed as one line

    FAIL [client] call: what was expected; received: what came back

so the Rust test that drives the scripts (tests/clients_python.rs) can show it.
"""

import argparse
import os
import sys
import traceback

# The calls each upstream dialect cannot perform, from the README's matrix: a client must get its
# own dialect's 501 for them, naming the operation.
UNSUPPORTED = {
    "github": set(),
    "gitea": {"member.set_role", "user.get_by_id"},
    "gitlab": {
        "org.list_for_user",
        "public_member.list",
        "public_member.check",
        "public_member.publicize",
        "public_member.conceal",
        "activity.list",
    },
}


class CheckFailed(Exception):
    pass


def parse_args(description):
    p = argparse.ArgumentParser(description=description)
    env = os.environ.get
    p.add_argument("--base", default=env("FB_BASE"), help="proxy origin, e.g. http://127.0.0.1:8081")
    p.add_argument(
        "--upstream",
        default=env("FB_UPSTREAM"),
        choices=sorted(UNSUPPORTED),
        help="dialect of the proxy's upstream (decides which calls must be 501)",
    )
    p.add_argument("--admin-token", default=env("FB_ADMIN_TOKEN", "test-admin-token"))
    for user in ("alice", "bob", "carol", "dave"):
        p.add_argument(f"--{user}-token", default=env(f"FB_{user.upper()}_TOKEN", f"{user}-token"))
    args = p.parse_args()
    if not args.base or not args.upstream:
        p.error("--base and --upstream (or FB_BASE and FB_UPSTREAM) are required")
    args.base = args.base.rstrip("/")
    return args


class Run:
    """Runs sections of checks for one client library against one upstream dialect."""

    def __init__(self, client, upstream):
        self.client = client
        self.upstream = upstream
        self.failures = 0
        self.checks = 0
        self.known_bugs = []

    # ------------------------------------------------------------------ reporting
    def fail(self, call, message):
        raise CheckFailed(f"{call}: {message}")

    def ok(self, call):
        self.checks += 1
        print(f"ok   [{self.client}] {call}", flush=True)

    def section(self, name, fn):
        """Runs one section; a failed check or an unexpected exception ends only this section."""
        self._begin(name)
        try:
            fn()
        except Exception as e:
            self._end(name, e)

    async def asection(self, name, fn):
        """section() for a coroutine function."""
        self._begin(name)
        try:
            await fn()
        except Exception as e:
            self._end(name, e)

    def _begin(self, name):
        print(f"---- [{self.client}] {name} (upstream {self.upstream})", flush=True)

    def _end(self, name, e):
        self.failures += 1
        if isinstance(e, CheckFailed):
            print(f"FAIL [{self.client}] {e}", flush=True)
        else:  # an exception the section did not expect
            print(f"FAIL [{self.client}] {name}: unexpected {describe(e)}", flush=True)
            traceback.print_exc(file=sys.stdout)

    def finish(self):
        for bug in self.known_bugs:
            print(f"KNOWN BUG [{self.client}] {bug}", flush=True)
        print(
            f"[{self.client}] upstream {self.upstream}: {self.checks} checks passed, "
            f"{self.failures} sections failed, {len(self.known_bugs)} known bugs",
            flush=True,
        )
        sys.exit(1 if self.failures else 0)

    # ------------------------------------------------------------------ checks
    def call(self, call, fn):
        """Calls fn(); any exception is a failure of `call` showing what was received."""
        try:
            return fn()
        except CheckFailed:
            raise
        except Exception as e:
            self.fail(call, f"expected success; received {describe(e)}")

    async def acall(self, call, awaitable):
        """call() for an awaitable."""
        try:
            return await awaitable
        except CheckFailed:
            raise
        except Exception as e:
            self.fail(call, f"expected success; received {describe(e)}")

    def eq(self, call, actual, expected):
        if actual != expected:
            self.fail(call, f"expected {expected!r}; received {actual!r}")
        self.ok(f"{call} == {expected!r}")
        return actual

    def true(self, call, cond, received):
        if not cond:
            self.fail(call, f"check failed; received {received!r}")
        self.ok(call)

    def url_on_proxy(self, call, url, prefix):
        """A URL the client will follow must point at the proxy, under the dialect's prefix."""
        if not isinstance(url, str) or not url.startswith(prefix):
            self.fail(call, f"expected a URL starting with {prefix!r}; received {url!r}")
        self.ok(f"{call} on proxy: {url}")

    def known_bug(self, bug, fn):
        """KNOWN BUG: runs the checks in fn(), which state the correct behaviour. While the bug is
        there they fail; that is reported as a known bug (with what was received) instead of a
        failure, so the rest of the script runs. When they pass, the marker should be removed."""
        try:
            fn()
        except CheckFailed as e:
            self._known_bug_seen(bug, e)
            return
        self._known_bug_seen(bug, None)

    def _known_bug_seen(self, bug, failure):
        """Reports a known bug's checks: failing (still there) or passing (fixed)."""
        if failure is not None:
            self.known_bugs.append(f"{bug}: {failure}")
            print(f"BUG  [{self.client}] KNOWN BUG {bug}: {failure}", flush=True)
        else:
            print(
                f"NOTE [{self.client}] KNOWN BUG no longer reproduces, remove its marker: {bug}",
                flush=True,
            )

    async def aknown_bug(self, bug, awaitable):
        """known_bug() for an awaitable."""
        try:
            await awaitable
        except CheckFailed as e:
            self._known_bug_seen(bug, e)
            return
        self._known_bug_seen(bug, None)

    def supported(self, op):
        return op not in UNSUPPORTED[self.upstream]

    def expect_error(self, call, fn, status, extract, message_contains=None):
        """fn() must raise the library's exception for `status`; extract(e) -> (status, body) or
        None for exceptions that are no HTTP error. Returns the error body."""
        try:
            result = fn()
        except CheckFailed:
            raise
        except Exception as e:
            return self._judge_error(call, e, status, extract, message_contains)
        self.fail(call, f"expected HTTP {status}; received success {result!r}")

    async def aexpect_error(self, call, awaitable, status, extract, message_contains=None):
        """expect_error() for an awaitable."""
        try:
            result = await awaitable
        except CheckFailed:
            raise
        except Exception as e:
            return self._judge_error(call, e, status, extract, message_contains)
        self.fail(call, f"expected HTTP {status}; received success {result!r}")

    def _judge_error(self, call, e, status, extract, message_contains):
        got = extract(e)
        if got is None:
            self.fail(call, f"expected HTTP {status}; received {describe(e)}")
        got_status, body = got
        if got_status != status:
            self.fail(call, f"expected HTTP {status}; received {got_status} {body!r}")
        if message_contains is not None and message_contains not in str(body):
            self.fail(call, f"expected HTTP {status} mentioning {message_contains!r}; received {body!r}")
        self.ok(f"{call} -> {status}")
        return body


def describe(e):
    """One line describing an exception, with status and body where the library keeps them."""
    parts = [type(e).__name__]
    for attr in ("status", "response_code", "status_code"):
        v = getattr(e, attr, None)
        if v is not None:
            parts.append(f"{attr}={v}")
            break
    for attr in ("data", "error_message", "body"):
        v = getattr(e, attr, None)
        if v is not None:
            parts.append(f"{attr}={v!r}")
            break
    text = str(e).replace("\n", " ")
    if len(text) > 400:
        text = text[:400] + "…"
    parts.append(f"({text})")
    return " ".join(parts)


def unsupported_message(op, upstream):
    """The detail forgebridge gives in every dialect's 501 body."""
    return f"operation {op} is not supported by the {upstream} upstream"
