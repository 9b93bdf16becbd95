#!/usr/bin/env bash
# bench/pgo.sh — a profile-guided release build of forgebridge (issue 5).
#
#   bash bench/pgo.sh            # -> target/pgo/release/forgebridge
#
# 1. builds forgebridge instrumented (`-Cprofile-generate`) into target/pgo-train;
# 2. runs bench/pgo_train.py: the instrumented binary as a seeded reference forge and as
#    proxies in three dialects, under the requests clients send most (checked answers);
# 3. merges the profiles with llvm-profdata (rustup's llvm-tools component, added if missing);
# 4. builds again with the profile (`-Cprofile-use`) into target/pgo.
# Two release builds: about 12 minutes on two cores. The Dockerfile and bench/run.sh use it;
# `cargo build --release` stays the plain build. Flags in RUSTFLAGS are kept.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
cd "$ROOT"

host="$(rustc -vV | sed -n 's/^host: //p')"
profdata="$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata"
if [ ! -x "$profdata" ]; then
  echo "== rustup component add llvm-tools"
  rustup component add llvm-tools
fi

work="$ROOT/target/pgo-profile"
rm -rf "$work" && mkdir -p "$work"

echo "== instrumented build (target/pgo-train)"
RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-generate=$work/raw" \
  cargo build --release --locked --target-dir "$ROOT/target/pgo-train"
# Build scripts and proc macros were instrumented too and wrote their own profiles.
rm -rf "$work/raw"

echo "== training (bench/pgo_train.py)"
python3 "$HERE/pgo_train.py" --bin "$ROOT/target/pgo-train/release/forgebridge"
"$profdata" merge -o "$work/merged.profdata" "$work"/raw/*.profraw
# Cargo rebuilds when RUSTFLAGS change, not when a file they name does: the profile's name
# carries its digest, so a new profile means a new build.
profile="$work/forgebridge-$(sha256sum "$work/merged.profdata" | cut -c1-16).profdata"
mv "$work/merged.profdata" "$profile"

echo "== optimized build (target/pgo)"
RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-use=$profile" \
  cargo build --release --locked --target-dir "$ROOT/target/pgo"
echo "== built $ROOT/target/pgo/release/forgebridge"
