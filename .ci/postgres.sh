#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on 127.0.0.1 for the ledger tests.
#
#   export LLMSWITCH_TEST_POSTGRES_DSN="$(bash .ci/postgres.sh)"
#
# Installs the Debian package `postgresql` when its binaries are missing (needs root), creates
# a cluster in $LLMSWITCH_PG_DIR (default /tmp/llmswitch-pg) owned by the `postgres` user,
# listening on loopback only at $LLMSWITCH_PG_PORT (default 54329), with trust auth for the
# loopback (test use only). Idempotent: a server already running there is reused.
# Prints the DSN on stdout (everything else goes to stderr); when sourced, also exports it.
set -euo pipefail

PORT="${LLMSWITCH_PG_PORT:-54329}"
DATA="${LLMSWITCH_PG_DIR:-/tmp/llmswitch-pg}"
DB=llmswitch_test
DSN="postgresql://postgres@127.0.0.1:${PORT}/${DB}"

log() { echo "postgres.sh: $*" >&2; }

pg_bin() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
  [ -n "$dir" ] && [ -x "$dir/initdb" ] && echo "$dir"
}

BIN="$(pg_bin || true)"
if [ -z "$BIN" ]; then
  log "installing postgresql (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
  BIN="$(pg_bin)"
fi

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

if ! "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
  if [ ! -f "$DATA/PG_VERSION" ]; then
    log "creating a cluster in $DATA"
    mkdir -p "$DATA"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$DATA"
    as_pg "$BIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 >&2
  fi
  log "starting on 127.0.0.1:$PORT"
  as_pg "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DATA -c fsync=off" start >&2
fi

if ! "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname='${DB}'" | grep -q 1; then
  "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres "$DB"
fi

export LLMSWITCH_TEST_POSTGRES_DSN="$DSN"
echo "$DSN"
