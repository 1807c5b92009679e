#!/usr/bin/env bash
# Runs a benchmark from a release build; prints a Markdown table for docs/BENCHMARKS.md.
# Usage: scripts/bench.sh ledger [--postings N --users N --concurrency N]
source "$(dirname "$0")/lib.sh"
ensure_apt_packages
ensure_secantusd
cd "$REPO_ROOT"
cargo build --release --locked -p obentchi-bench --quiet
exec "$CARGO_TARGET_DIR/release/obentchi-bench" "$@"
