#!/usr/bin/env bash
# The llmswitch gateway as a candidate of the shared gateway harness (shared/bench/gateway):
# writes a config from the harness's BENCH_* variables, then execs the server.
#   llmswitch-bench.sh [uvicorn|granian|hypercorn]     (default: uvicorn = `llmswitch serve`)
# What is on, as in production: routing (each model name is a fallback route), the spend
# ledger (SQLite, batched writer) with traces, key checks (every request must carry the
# harness's key), the JSON-lines access log (to a file), metrics.
# LLMSWITCH_BENCH_VENV picks the virtual environment (default: this checkout's .venv);
# LLMSWITCH_BENCH_SERVE replaces the `llmswitch serve` command (e.g. memwatch.py, soak.py).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
VENV=${LLMSWITCH_BENCH_VENV:-$HERE/../../.venv}
SERVER=${1:-uvicorn}
STATE=/tmp/llmswitch-bench-$BENCH_PORT
rm -rf "$STATE" && mkdir -p "$STATE"
cat > "$STATE/llmswitch.yaml" <<YAML
providers:
  mockfast: {base_url: "$BENCH_UPSTREAM_FAST", api_key: sk-upstream, timeout: 30}
  mockslow: {base_url: "$BENCH_UPSTREAM_SLOW", api_key: sk-upstream, timeout: 30}
models:
  fast: {provider: mockfast, name: mock-fast, context_window: 128000, max_output_tokens: 4096,
         input_per_mtok: 0.15, output_per_mtok: 0.6}
  slow: {provider: mockslow, name: mock-slow, context_window: 128000, max_output_tokens: 4096,
         input_per_mtok: 0.15, output_per_mtok: 0.6}
routes:
  mock-fast: {strategy: fallback, targets: [fast], retries: 0}
  mock-slow: {strategy: fallback, targets: [slow], retries: 0}
observe:
  ledger: $STATE/ledger.sqlite
  traces: true
gateway:
  access_log: $STATE/access.jsonl
YAML
export LLMSWITCH_ADMIN_KEY="$BENCH_API_KEY"
export LLMSWITCH_SERVE_OPTIONS="{\"config\": \"$STATE/llmswitch.yaml\"}"
case "$SERVER" in
  uvicorn)
    # shellcheck disable=SC2086  # the replacement command is split on purpose
    exec ${LLMSWITCH_BENCH_SERVE:-"$VENV/bin/llmswitch" serve} --config "$STATE/llmswitch.yaml" --host 127.0.0.1 \
      --port "$BENCH_PORT" --workers "$BENCH_WORKERS" ;;
  granian)
    exec "$VENV/bin/granian" --interface asgi --factory --host 127.0.0.1 --port "$BENCH_PORT" \
      --workers "$BENCH_WORKERS" --loop uvloop --no-ws --log-level warning \
      llmswitch.gateway.server:worker_app ;;
  hypercorn)
    exec "$VENV/bin/hypercorn" --bind "127.0.0.1:$BENCH_PORT" --workers "$BENCH_WORKERS" \
      -k uvloop --log-level warning "llmswitch.gateway.server:worker_app()" ;;
  *) echo "unknown server $SERVER (uvicorn, granian, hypercorn)" >&2; exit 2 ;;
esac
