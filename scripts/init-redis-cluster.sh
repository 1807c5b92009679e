#!/usr/bin/env bash
# Forms a Redis Cluster of six nodes (three masters, one replica each) and waits until it
# serves every slot. Idempotent: a cluster that is already formed is left as it is.
#
#   scripts/init-redis-cluster.sh HOST:PORT x6              nodes already running (compose)
#   scripts/init-redis-cluster.sh --start DIR PORT x6       also start the six nodes on this
#                                                           machine (data, logs, pids in DIR)
#
# docker-compose.production.yml runs the first form in its redis-init service.
set -euo pipefail

log() { printf '==> %s\n' "$*" >&2; }

start_dir=""
if [ "${1:-}" = "--start" ]; then
    start_dir="$2"
    shift 2
fi
[ $# -eq 6 ] || { echo "usage: $0 [--start DIR PORT...] HOST:PORT x6" >&2; exit 64; }

nodes=()
for node in "$@"; do
    if [ -n "$start_dir" ]; then
        port="$node"
        mkdir -p "$start_dir/$port"
        redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
            --cluster-config-file "$start_dir/$port/nodes.conf" --cluster-node-timeout 2000 \
            --dir "$start_dir/$port" --appendonly yes --save "" \
            --daemonize yes --pidfile "$start_dir/$port/redis.pid" --logfile "$start_dir/$port/redis.log"
        node="127.0.0.1:$port"
    fi
    nodes+=("$node")
done

cli() { local node="$1"; shift; redis-cli -h "${node%:*}" -p "${node##*:}" "$@"; }

# `--cluster create` wants addresses: compose gives names.
resolve() {
    local host="${1%:*}" port="${1##*:}"
    if [[ "$host" =~ ^[0-9.]+$ ]]; then echo "$1"; else echo "$(getent hosts "$host" | awk '{print $1; exit}'):$port"; fi
}

for node in "${nodes[@]}"; do
    for _ in $(seq 150); do
        [ "$(cli "$node" ping 2>/dev/null)" = PONG ] && break
        sleep 0.2
    done
    [ "$(cli "$node" ping 2>/dev/null)" = PONG ] || { log "$node does not answer"; exit 1; }
done

if cli "${nodes[0]}" cluster info | grep -q '^cluster_state:ok' \
    && [ "$(cli "${nodes[0]}" cluster info | sed -n 's/^cluster_known_nodes:\([0-9]*\).*/\1/p')" -ge 6 ]; then
    log "cluster already formed"
    exit 0
fi

addresses=()
for node in "${nodes[@]}"; do addresses+=("$(resolve "$node")"); done
log "forming the cluster: ${addresses[*]}"
redis-cli --cluster create "${addresses[@]}" --cluster-replicas 1 --cluster-yes >&2

for _ in $(seq 150); do
    if cli "${nodes[0]}" cluster info | grep -q '^cluster_state:ok'; then
        log "cluster ready"
        exit 0
    fi
    sleep 0.2
done
log "the cluster did not become ready"
exit 1
