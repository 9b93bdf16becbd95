#!/usr/bin/env bash
# bench/run.sh — forgebridge against a plain reverse proxy, in one command (issue 5).
#
#   bash bench/run.sh            # install wrk + nginx if missing, build (PGO), run, report
#
# What it does:
#   1. installs wrk and nginx from Debian's apt when they are missing (as root, no sudo);
#   2. builds forgebridge as the Dockerfile does, profile-guided (bench/pgo.sh, two release
#      builds), unless FORGEBRIDGE_BIN names a binary (BENCH_BUILD=plain: `cargo build --release`);
#   3. runs bench/bench.py, which seeds a reference forge (200 orgs, 21 users) on 127.0.0.1:19100
#      and measures against that one upstream, with wrk (2 threads, 64 connections, 3 s warm-up,
#      then 10 s per case):
#        (a) the upstream directly           (b) nginx pass-through, keepalive upstream pool
#        (c) forgebridge Gitea -> gitea       (d) forgebridge GitHub -> gitea (translating)
#      for GET one org (plus (d) again with the access log off), a 50-org list (Gitea's largest
#      page), a 100-org list (asked in GitHub's dialect from every target), and create (POST,
#      unique names, 5 s bounded, a fresh stack per target); GET and the 100-org list again for
#      (a), (b), (d) at a fixed load (half of the slowest one's throughput, wrk/paced.lua), where
#      p99 is each request's own path rather than a queue (three rounds each, like the saturated
#      cases: one run's p99 is noisy); then start-up time (process start
#      -> /healthz 200) and the RSS of a proxy holding 1,000 idle keep-alive connections.
#      Before each case it waits (4 min at most per run) for other work on the machine to calm
#      down, and it reports the CPU other processes used during each case;
#   4. writes bench/results/latest.md (+ latest.json, logs/) — bench/results/ is gitignored;
#      bench/RESULTS.md is the committed copy of a run, with notes.
#
# Environment knobs: FORGEBRIDGE_BIN=path (skip the build), BENCH_BUILD=plain, BENCH_DURATION
# (s, default 10), BENCH_CONNECTIONS (default 64), BENCH_ARGS (extra arguments for bench.py,
# e.g. "--only get"). Everything runs on loopback (127.0.0.1, ports 19100-19119) and stops by
# itself; the whole run takes about 15 minutes plus the build (about 12 minutes for PGO's two).
# Results on a shared 2-core machine are noisy: the load generator, the proxy and the upstream
# compete for the same cores.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
cd "$ROOT"

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v python3 >/dev/null || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]} (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d keeps the package from starting a system nginx on port 80.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin"

# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
forgebridge_bin

echo "== benchmark ($BIN)"
# shellcheck disable=SC2086
python3 "$HERE/bench.py" --bin "$BIN" \
  --duration "${BENCH_DURATION:-10}" --connections "${BENCH_CONNECTIONS:-64}" ${BENCH_ARGS:-}
