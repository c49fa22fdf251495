#!/usr/bin/env bash
# Start a throwaway Redis server on 127.0.0.1 for the gateway's shared-state tests (limits,
# budgets and circuit breakers held by several replicas).
#
#   export LLMSWITCH_TEST_REDIS_URL="$(bash .ci/redis.sh)"
#
# Installs the Debian package `redis-server` when the binary is missing (needs root), starts
# it daemonized on loopback only at $LLMSWITCH_REDIS_PORT (default 63790), without persistence
# (test use only), its files in $LLMSWITCH_REDIS_DIR (default /tmp/llmswitch-redis).
# Idempotent: a server already answering there is reused. Prints the URL on stdout
# (everything else goes to stderr).
set -euo pipefail

PORT="${LLMSWITCH_REDIS_PORT:-63790}"
DATA="${LLMSWITCH_REDIS_DIR:-/tmp/llmswitch-redis}"
URL="redis://127.0.0.1:${PORT}/0"

log() { echo "redis.sh: $*" >&2; }

if ! command -v redis-server >/dev/null 2>&1; then
  log "installing redis-server (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq redis-server >&2
fi

if ! redis-cli -h 127.0.0.1 -p "$PORT" ping >/dev/null 2>&1; then
  mkdir -p "$DATA"
  log "starting on 127.0.0.1:$PORT"
  redis-server --bind 127.0.0.1 --port "$PORT" --protected-mode yes --save "" \
    --appendonly no --dir "$DATA" --daemonize yes --logfile "$DATA/redis.log" \
    --pidfile "$DATA/redis.pid" >&2
  for _ in $(seq 1 100); do  # up to 10 s
    redis-cli -h 127.0.0.1 -p "$PORT" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  redis-cli -h 127.0.0.1 -p "$PORT" ping >/dev/null
fi

echo "$URL"
