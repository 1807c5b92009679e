#!/usr/bin/env bash
# The chaos run from release builds: the whole platform as processes (2 receivers, 2 consumers,
# 2 workers, 2 schedulers, the API, a 6-node Redis Cluster, the MongoDB-wire server) under
# every fault kind, traffic only through the public edges, then the invariant checker.
# Usage: scripts/chaos.sh [--profile full|small] [--seed N] [--report docs/RELIABILITY-run.md]
# Exits 1 on any violation; a failing seed replays with the same --seed.
source "$(dirname "$0")/lib.sh"
ensure_apt_packages
ensure_secantusd
cd "$REPO_ROOT"
cargo build --release --locked -p obentchi-chaos -p obentchi-bot -p obentchi-workers -p obentchi-scheduler -p obentchi-http --quiet
args=("$@")
[[ " ${args[*]} " == *" --profile "* ]] || args+=(--profile full)
exec "$CARGO_TARGET_DIR/release/obentchi-chaos" --machine "$(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -m)" "${args[@]}"
