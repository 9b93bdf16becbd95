# bench/lib.sh — sourced by bench/run.sh and bench/faults.sh: the binary they measure.

# Sets BIN: $FORGEBRIDGE_BIN when given, else a fresh `cargo build --release` in $ROOT.
forgebridge_bin() {
  if [ -n "${FORGEBRIDGE_BIN:-}" ]; then
    BIN="$FORGEBRIDGE_BIN"
  else
    echo "== cargo build --release"
    cargo build --release
    BIN="$ROOT/target/release/forgebridge"
  fi
}
