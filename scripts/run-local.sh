#!/usr/bin/env bash
# Brings the platform up on this machine: Redis and the MongoDB-wire server (data kept in
# .local/), `migrate`, then every service. Ctrl-C stops everything it started.
# Ports: Redis 6380, MongoDB 27018, http 8080, bot 8081 (webhook receiver), workers 8082,
# scheduler 8083, update consumer 8084,
# fake payout provider 9099, fake Telegram Bot API 9098, and the Telegram simulator's chat page on
# http://127.0.0.1:9097/ (chat with the bot there: it posts updates to the receiver on 8081).
source "$(dirname "$0")/lib.sh"
ensure_apt_packages
ensure_secantusd
cd "$REPO_ROOT"

STATE="$REPO_ROOT/.local"
mkdir -p "$STATE/redis" "$STATE/mongo" "$STATE/logs"
PIDS=()
cleanup() {
    log "stopping"
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

log "building services"
cargo build --locked --bins --quiet
cargo build --locked --quiet -p obentchi-testkit --bin obentchi-fakes
BIN="$CARGO_TARGET_DIR/debug"

redis-server --bind 127.0.0.1 --port 6380 --dir "$STATE/redis" --appendonly yes --save "" \
    --daemonize no >"$STATE/logs/redis.log" 2>&1 &
PIDS+=($!)
"$SECANTUSD_BIN" --host 127.0.0.1 --port 27018 --storage-path "$STATE/mongo" \
    --cache-size 256M --log-file-max 8MB >"$STATE/logs/mongo.log" 2>&1 &
PIDS+=($!)

for _ in $(seq 100); do
    if redis-cli -p 6380 ping >/dev/null 2>&1 && grep -q "listening on" "$STATE/logs/mongo.log"; then break; fi
    sleep 0.1
done

"$BIN/obentchi-fakes" --payout-addr 127.0.0.1:9099 --bot-api-addr 127.0.0.1:9098 \
    --simulator-addr 127.0.0.1:9097 --webhook-url http://127.0.0.1:8081/telegram/webhook \
    --webhook-secret local-webhook-secret-for-development-only >"$STATE/logs/fakes.log" 2>&1 &
PIDS+=($!)

"$BIN/obentchi-http" --config config/local.toml migrate
ADMIN_TOKEN="$("$BIN/obentchi-http" --config config/local.toml token create --name local-admin --scope write)"

port=8080
# binary[:subcommand]
for service in http bot workers scheduler bot:consume; do
    binary="${service%%:*}"
    subcommand="${service#"$binary"}"
    subcommand="${subcommand#:}"
    name="${service//:/-}"
    OBENTCHI_LISTEN__ADDR="127.0.0.1:$port" "$BIN/obentchi-$binary" --config config/local.toml $subcommand \
        >"$STATE/logs/$name.log" 2>&1 &
    PIDS+=($!)
    log "$name: http://127.0.0.1:$port/readyz (log: .local/logs/$name.log)"
    port=$((port + 1))
done
log "queue dashboard: http://127.0.0.1:8080/admin/dashboard#token=$ADMIN_TOKEN"
log "admin API: curl -H 'Authorization: Bearer $ADMIN_TOKEN' http://127.0.0.1:8080/admin/queues (docs: http://127.0.0.1:8080/admin/docs/)"
log "platform is up; chat with the bot on http://127.0.0.1:9097/ (Ctrl-C stops everything)"
wait -n "${PIDS[@]}" || true
log "a process exited; see .local/logs"
