#!/usr/bin/env bash
# Runs every test of the workspace against real servers the tests start themselves.
# Usage: scripts/test.sh [extra cargo-nextest arguments]
source "$(dirname "$0")/lib.sh"
ensure_dependencies
cd "$REPO_ROOT"
log "building and testing (target dir $CARGO_TARGET_DIR)"
cargo nextest run --workspace --locked --profile "${NEXTEST_PROFILE:-default}" "$@"
