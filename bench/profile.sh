#!/usr/bin/env bash
# bench/profile.sh — where forgebridge spends its instructions on the translating path.
#
#   bash bench/profile.sh      # needs valgrind (apt) and python3; builds a profiling binary
#
# Builds forgebridge --release with line tables (CARGO_PROFILE_RELEASE_DEBUG=1, in
# target/bench-profile; Cargo.toml is not touched), starts a reference forge (200 orgs, as
# bench/run.sh seeds it) natively on 127.0.0.1:19300, and a forgebridge proxy (gitea upstream)
# under `valgrind --tool=callgrind` on 127.0.0.1:19301 with instrumentation off. After start-up
# and a warm-up it switches instrumentation on and sends, one keep-alive connection, in turn:
#   1. PROFILE_GETS (default 2000) x GET /api/v3/orgs/acme                  -> dump "get"
#   2. PROFILE_LISTS (default 200) x GET /api/v3/user/orgs?per_page=100    -> dump "list"
# (GitHub client, Gitea upstream: the list is two upstream pages of 50, re-paginated.)
# Writes bench/results/profile/{callgrind.out.*,get-self.txt,get-inclusive.txt,list-*.txt}.
# (`perf stat -e instructions` is not supported in this VM, so callgrind it is.)
# FORGEBRIDGE_BIN=path skips the build (a binary with debug line tables is best).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
cd "$ROOT"

command -v valgrind >/dev/null || {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends valgrind >/dev/null
}

if [ -n "${FORGEBRIDGE_BIN:-}" ]; then
  BIN="$FORGEBRIDGE_BIN"
else
  echo "== cargo build --release (with line tables) into target/bench-profile"
  CARGO_PROFILE_RELEASE_DEBUG=1 CARGO_PROFILE_RELEASE_STRIP=none \
    cargo build --release --target-dir "$ROOT/target/bench-profile"
  BIN="$ROOT/target/bench-profile/release/forgebridge"
fi

OUT="$HERE/results/profile"
rm -rf "$OUT" && mkdir -p "$OUT"
GETS="${PROFILE_GETS:-2000}"
LISTS="${PROFILE_LISTS:-200}"

HERE_DIR="$HERE" python3 - "$BIN" "$OUT" "$GETS" "$LISTS" <<'PY'
import http.client, os, subprocess, sys, time
sys.path.insert(0, os.environ["HERE_DIR"])
import bench as B

bin_path, out, gets, lists = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
seed = os.path.join(out, "seed.json")
B.write_seed(seed)
ref = B.start_reference(bin_path, seed, out, port=19300, name="reference")
cg = B.Proc("callgrind", [
    "valgrind", "--tool=callgrind", "--instr-atstart=no",
    f"--callgrind-out-file={out}/callgrind.out.%p",
    bin_path, "serve", "--listen", "127.0.0.1:19301",
    "--upstream", "http://127.0.0.1:19300", "--upstream-dialect", "gitea",
], out, env={"NO_COLOR": "1"})
try:
    B.wait_healthy(19301, cg, timeout=120)
    conn = http.client.HTTPConnection("127.0.0.1", 19301, timeout=60)

    def run(path, n, token=None):
        headers = {"Authorization": f"token {token}"} if token else {}
        for _ in range(n):
            conn.request("GET", path, headers=headers)
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                raise SystemExit(f"GET {path} answered {r.status}")

    def ctl(*args):
        subprocess.run(["callgrind_control", *args, str(cg.pid)], check=True, capture_output=True)

    run("/api/v3/orgs/acme", 50)
    run("/api/v3/user/orgs?per_page=100", 10, "bench-token")
    ctl("-i", "on")
    t = time.time()
    run("/api/v3/orgs/acme", gets)
    ctl("-d", "get")
    print(f"profiled {gets} GETs in {time.time() - t:.1f} s", flush=True)
    t = time.time()
    run("/api/v3/user/orgs?per_page=100", lists, "bench-token")
    ctl("-d", "list")
    print(f"profiled {lists} lists in {time.time() - t:.1f} s", flush=True)
    ctl("-i", "off")
finally:
    cg.stop()
    ref.stop()
PY

for part in get list; do
  f="$(ls "$OUT"/callgrind.out.*."$part" 2>/dev/null | head -1 || true)"
  [ -z "$f" ] && f="$(grep -l "^desc: Trigger: .*$part" "$OUT"/callgrind.out.* | head -1)"
  callgrind_annotate --inclusive=no "$f" > "$OUT/$part-self.txt" 2>/dev/null || true
  callgrind_annotate --inclusive=yes "$f" > "$OUT/$part-inclusive.txt" 2>/dev/null || true
  echo "== $part: top self cost ($f)"
  sed -n '1,45p' "$OUT/$part-self.txt" | grep -E '^ *[0-9,]+ \(' | head -30
done
echo "== full listings in $OUT"
