# bench/lib.sh — sourced by bench/run.sh and bench/faults.sh: the binary they measure.

# Sets BIN: $FORGEBRIDGE_BIN when given; else the profile-guided build of bench/pgo.sh, the
# one the Dockerfile ships; with BENCH_BUILD=plain, a plain `cargo build --release`.
forgebridge_bin() {
  if [ -n "${FORGEBRIDGE_BIN:-}" ]; then
    BIN="$FORGEBRIDGE_BIN"
  elif [ "${BENCH_BUILD:-pgo}" = plain ]; then
    echo "== cargo build --release"
    cargo build --release
    BIN="$ROOT/target/release/forgebridge"
  else
    bash "$ROOT/bench/pgo.sh"
    BIN="$ROOT/target/pgo/release/forgebridge"
  fi
}
