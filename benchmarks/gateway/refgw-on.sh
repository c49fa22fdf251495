#!/usr/bin/env bash
# The harness's reference forwarder (refgw.py, a raw ASGI app) on one of three ASGI servers,
# to compare the servers alone (same app, same venv):  refgw-on.sh uvicorn|granian|hypercorn
# Run by the shared harness as an --extra target (it sets BENCH_* and the working directory
# to the harness folder, where refgw.py lives).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
VENV=${LLMSWITCH_BENCH_VENV:-$HERE/../../.venv}
export REFGW_MODELS="$BENCH_MODELS" REFGW_KEY="$BENCH_API_KEY" PYTHONPATH="$PWD"
case "$1" in
  uvicorn)
    exec "$VENV/bin/uvicorn" refgw:app --host 127.0.0.1 --port "$BENCH_PORT" --workers 1 \
      --loop uvloop --http httptools --no-access-log --log-level warning ;;
  granian)
    exec "$VENV/bin/granian" --interface asgi --host 127.0.0.1 --port "$BENCH_PORT" \
      --workers 1 --loop uvloop --no-ws --log-level warning refgw:app ;;
  hypercorn)
    exec "$VENV/bin/hypercorn" --bind "127.0.0.1:$BENCH_PORT" --workers 1 -k uvloop \
      --log-level warning refgw:app ;;
  *) echo "usage: refgw-on.sh uvicorn|granian|hypercorn" >&2; exit 2 ;;
esac
