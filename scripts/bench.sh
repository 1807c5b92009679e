#!/usr/bin/env bash
# Runs a benchmark from a release build; prints a Markdown table for docs/BENCHMARKS.md.
# Usage: scripts/bench.sh ledger|queue|payments|receiver|admin-api|e2e [options; see obentchi-bench --help,
# or for queue: cargo run --release -p apalis-redis-streams --example throughput -- --help]
source "$(dirname "$0")/lib.sh"
ensure_apt_packages
ensure_secantusd
cd "$REPO_ROOT"
command -v wrk >/dev/null || { as_root apt-get update -qq; as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
if [ "${1:-}" = queue ]; then
    # The queue crate's own benchmark (apalis-redis-streams/README.md).
    shift
    exec cargo run --release --locked --quiet -p apalis-redis-streams --example throughput -- "$@"
fi
cargo build --release --locked -p obentchi-bench -p obentchi-bot -p obentchi-http -p obentchi-workers --quiet
if [ "${1:-}" = e2e ]; then
    # The peer, grammY in reply mode, from ../shared/peers (copied: that folder is read-only).
    shift
    peers="$REPO_ROOT/../shared/peers"
    peer_args=()
    if [ -d "$peers" ]; then
        command -v npm >/dev/null || { as_root apt-get update -qq; as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }
        [ -d /tmp/peers/node/node_modules/grammy ] || { rm -rf /tmp/peers; cp -r "$peers" /tmp/peers; (cd /tmp/peers/node && npm install --no-audit --no-fund --silent); }
        peer_args=(--peer-dir /tmp/peers/node)
    fi
    exec "$CARGO_TARGET_DIR/release/obentchi-bench" e2e "${peer_args[@]}" "$@"
fi
if [ "${1:-}" = receiver ]; then
    shift
    exec "$CARGO_TARGET_DIR/release/obentchi-bench" receiver --bot "$CARGO_TARGET_DIR/release/obentchi-bot" "$@"
fi
if [ "${1:-}" = admin-api ]; then
    shift
    exec "$CARGO_TARGET_DIR/release/obentchi-bench" admin-api --http "$CARGO_TARGET_DIR/release/obentchi-http" "$@"
fi
exec "$CARGO_TARGET_DIR/release/obentchi-bench" "$@"
