#!/usr/bin/env bash
# bench/faults.sh — forgebridge under load while its upstream misbehaves (issue 5).
#
#   bash bench/faults.sh        # build as bench/run.sh does (unless FORGEBRIDGE_BIN is set), then run
#
# 1,000 concurrent GitHub-dialect clients for 60 s go through forgebridge to a Gitea-dialect
# upstream: the reference forge behind bench/faulty_relay.py, which slows requests, drops
# connections (before and after forwarding) and answers 500s by a seeded random choice, and
# counts what it forwarded per POSTed org name. bench/faults.py then checks that every request
# got an answer in GitHub's dialect (status and JSON shape), none hung, forgebridge did not
# panic, its RSS came back near the baseline, only idempotent requests were retried, no create
# was performed twice, and every 201 is real. Exits non-zero if any check fails.
# Writes bench/results/faults-latest.md; logs in bench/results/faults-logs/.
#
# Knobs: FORGEBRIDGE_BIN=path, FAULT_CLIENTS (default 1000), FAULT_DURATION (s, default 60),
# FAULT_SEED (default 5), FAULT_ARGS (more faults.py options, e.g. "--rounds 3" to tell a leak
# from allocator retention, "--fb-env MALLOC_ARENA_MAX=1"). Loopback only (127.0.0.1:19200-19202);
# bounded in time (about 1.5 minutes per 60 s round).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
cd "$ROOT"

# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
forgebridge_bin

# gdb: after the load, malloc_trim(0) is called in forgebridge to tell memory the allocator
# keeps cached from live memory (a diagnostic printed with the RSS check; it decides nothing).
command -v gdb >/dev/null || {
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends gdb >/dev/null; } ||
    echo "(gdb not installed: no malloc_trim probe)"
}

ulimit -n 65536 2>/dev/null || true
exec python3 "$HERE/faults.py" --bin "$BIN" --trim-probe \
  --clients "${FAULT_CLIENTS:-1000}" --duration "${FAULT_DURATION:-60}" --seed "${FAULT_SEED:-5}" \
  ${FAULT_ARGS:-}
