#!/usr/bin/env bash
# Runs every fuzz target of the openflow crate for SECONDS each (default 20).
# cargo-fuzz needs nightly compiler flags; on a stable toolchain RUSTC_BOOTSTRAP=1 unlocks them.
set -euo pipefail
secs="${1:-20}"
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi
export RUSTC_BOOTSTRAP=1
mkdir -p corpus
for target in $(cargo fuzz list); do
    echo "== fuzzing $target for ${secs}s"
    mkdir -p "corpus/$target"
    cargo fuzz run "$target" "corpus/$target" -- -max_total_time="$secs" -max_len=4096 2>&1 | tail -n 5
done
echo "fuzz: all targets ran ${secs}s without a crash"
