#!/usr/bin/env bash
# Runs every fuzz target of the openflow crate for SECONDS each (default 20).
# cargo-fuzz needs nightly compiler flags; on a stable toolchain RUSTC_BOOTSTRAP=1 unlocks them.
# A crash leaves its input in artifacts/TARGET/; copy it to ../tests/data/fuzz-regressions/
# so that `cargo test` replays it forever.
set -euo pipefail
secs="${1:-20}"
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi
export RUSTC_BOOTSTRAP=1
mkdir -p corpus
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
for target in $(cargo fuzz list); do
    echo "== fuzzing $target for ${secs}s"
    mkdir -p "corpus/$target"
    if ! cargo fuzz run "$target" "corpus/$target" -- -max_total_time="$secs" -max_len=4096 >"$log" 2>&1; then
        grep -v '^#[0-9]' "$log" | tail -n 60
        echo "fuzz: $target FAILED; the input is in $here/artifacts/$target/"
        exit 1
    fi
    grep -E '^Done [0-9]+ runs' "$log" || tail -n 3 "$log"
done
echo "fuzz: all targets ran ${secs}s without a crash"
