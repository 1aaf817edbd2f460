#!/usr/bin/env bash
# Local backing services for tests and `make up`: PostgreSQL, Redis and a MongoDB-compatible
# server (FerretDB embedded in scripts/ferretdb), each private under .data/, on its own port.
# A store whose URL the user configured (PG_URL, REDIS_URL, MONGO_URL) is not started, and its URL is never
# written: `start` records only the URLs of the stores it runs, as DEV_PG_URL, DEV_REDIS_URL, DEV_MONGO_URL in
# .data/services.env. scripts/env.sh exports those and copies each into PG_URL (...) when unset, so a PG_URL
# equal to DEV_PG_URL is that copy, not the user's (issue 19).
# Usage: services.sh start | stop [postgres|redis|mongo]... | status
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DATA="$ROOT/.data"
# Ports: the environment wins; else the ones this checkout's stores used before (.data/ports.env);
# else the defaults. A default port taken by someone else's server moves to the next free one.
ENV_PG_PORT="${PG_PORT:-}"; ENV_REDIS_PORT="${REDIS_PORT:-}"; ENV_MONGO_PORT="${MONGO_PORT:-}"
PORTS_FILE="$DATA/ports.env"
# shellcheck disable=SC1090
[ -f "$PORTS_FILE" ] && . "$PORTS_FILE"
PG_PORT="${ENV_PG_PORT:-${PG_PORT:-55432}}"
REDIS_PORT="${ENV_REDIS_PORT:-${REDIS_PORT:-56379}}"
MONGO_PORT="${ENV_MONGO_PORT:-${MONGO_PORT:-57017}}"
mkdir -p "$DATA"
bash "$ROOT/scripts/secrets.sh"
set -a; . "$DATA/secrets.env"; set +a

log() { echo "services: $*" >&2; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for() { # name, seconds, command...
  local name="$1" secs="$2"; shift 2
  for _ in $(seq 1 $((secs * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  log "$name did not answer within ${secs}s"; return 1
}
# the user set this store's URL (not merely env.sh's copy of our dev URL)
configured() { local name="$1" dev="DEV_$1"; [ -n "${!name:-}" ] && [ "${!name}" != "${!dev:-}" ]; }
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
next_free_port() { local port="$1"; while port_open "$port"; do port=$((port + 1)); done; echo "$port"; }
# waits until the server of a pid file listens on its port (0), or its process died (1: its port was likely taken
# between our check and its bind, e.g. as another program's ephemeral port), or the time ran out (2)
listening_or_died() { # pidfile, port, seconds
  for _ in $(seq 1 $(($3 * 5))); do
    port_open "$2" && return 0
    [ -s "$1" ] && ! kill -0 "$(cat "$1")" 2>/dev/null && return 1
    sleep 0.2
  done
  return 2
}
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# our own cluster's postmaster is running (never someone else's server on the same port)
alive_pg() { [ -s "$1/postmaster.pid" ] && kill -0 "$(head -1 "$1/postmaster.pid")" 2>/dev/null; }

pg_bin() {
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && { echo "$d"; return; }; done
  dirname "$(command -v initdb)"
}

start_postgres() {
  configured PG_URL && { log "postgres: using the configured PG_URL, not starting one"; return; }
  local bin dir="$DATA/postgres" run="$DATA/postgres-run"
  bin="$(pg_bin)"
  if ! alive_pg "$dir"; then
    if port_open "$PG_PORT"; then PG_PORT="$(next_free_port "$PG_PORT")"; log "postgres: port taken by another server, using $PG_PORT"; fi
    mkdir -p "$run"
    if [ ! -s "$dir/PG_VERSION" ]; then
      log "postgres: initdb in $dir"
      mkdir -p "$dir"; local pw="$DATA/.pgpw"; (umask 077; printf '%s' "$PG_PASSWORD" > "$pw")
      if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$dir" "$run" "$pw"; fi
      as_pg "$bin/initdb" -D "$dir" -U postgres --pwfile="$pw" --auth=scram-sha-256 -E UTF8 >/dev/null
      rm -f "$pw"
    fi
    if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$run"; fi
    log "postgres: starting on $PG_PORT"
    as_pg "$bin/pg_ctl" -D "$dir" -l "$run/postgres.log" -w -t 60 \
      -o "-p $PG_PORT -k $run -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off" start >/dev/null
  else
    log "postgres: reusing server on $PG_PORT"
  fi
  wait_for postgres 60 "$bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"
  for db in accounting monitoring; do
    PGPASSWORD="$PG_PASSWORD" psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1 ||
      PGPASSWORD="$PG_PASSWORD" psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE DATABASE $db" >/dev/null
  done
}

start_redis() {
  configured REDIS_URL && { log "redis: using the configured REDIS_URL, not starting one"; return; }
  if ! command -v redis-server >/dev/null; then
    log "redis: installing Debian's redis-server"
    if [ "$(id -u)" = 0 ]; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server >/dev/null 2>&1 ||
        { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server >/dev/null; }
    else
      sudo DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server >/dev/null
    fi
  fi
  if alive "$DATA/redis.pid"; then log "redis: reusing server on $REDIS_PORT"; else
    if port_open "$REDIS_PORT"; then REDIS_PORT="$(next_free_port "$REDIS_PORT")"; log "redis: port taken by another server, using $REDIS_PORT"; fi
    mkdir -p "$DATA/redis"
    log "redis: starting on $REDIS_PORT"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$DATA/redis" --daemonize yes \
      --pidfile "$DATA/redis.pid" --logfile "$DATA/redis.log" --requirepass "$REDIS_PASSWORD" \
      --save "" --appendonly no >/dev/null
  fi
  wait_for redis 30 redis-cli -p "$REDIS_PORT" -a "$REDIS_PASSWORD" --no-auth-warning ping
}

start_mongo() {
  configured MONGO_URL && { log "mongo: using the configured MONGO_URL, not starting one"; return; }
  local bin="$ROOT/.tools/ferretdb-local"
  local src="$ROOT/scripts/ferretdb"
  # rebuild when our Go sources change (cached by a hash of them)
  local stamp; stamp="$(cat "$src/main.go" "$src/go.mod" "$src/go.sum" | sha256sum | cut -c1-16)"
  if [ ! -x "$bin" ] || [ "$(cat "$bin.stamp" 2>/dev/null)" != "$stamp" ]; then
    log "mongo: building FerretDB (first run only, takes a minute)"
    mkdir -p "$ROOT/.tools"
    (cd "$src" && go build -o "$bin" .) && echo "$stamp" > "$bin.stamp"
  fi
  if alive "$DATA/ferretdb.pid"; then
    log "mongo: reusing server on $MONGO_PORT"
    wait_for mongo 60 port_open "$MONGO_PORT"
    return
  fi
  if port_open "$MONGO_PORT"; then MONGO_PORT="$(next_free_port "$MONGO_PORT")"; log "mongo: port taken by another server, using $MONGO_PORT"; fi
  for attempt in 1 2 3; do
    log "mongo: starting FerretDB on $MONGO_PORT"
    nohup "$bin" -listen "127.0.0.1:$MONGO_PORT" -dir "$DATA/ferretdb" >"$DATA/ferretdb.log" 2>&1 &
    echo $! > "$DATA/ferretdb.pid"
    local state=0
    listening_or_died "$DATA/ferretdb.pid" "$MONGO_PORT" 60 || state=$?
    [ "$state" = 0 ] && return 0
    if [ "$state" = 1 ] && grep -q 'address already in use' "$DATA/ferretdb.log" && [ "$attempt" -lt 3 ]; then
      MONGO_PORT="$(next_free_port $((MONGO_PORT + 1)))"
      log "mongo: the port was taken before FerretDB could bind it; trying $MONGO_PORT (attempt $((attempt + 1)) of 3)"
      continue
    fi
    log "mongo did not answer (see $DATA/ferretdb.log)"; return 1
  done
}

write_env() {
  printf 'PG_PORT=%s\nREDIS_PORT=%s\nMONGO_PORT=%s\n' "$PG_PORT" "$REDIS_PORT" "$MONGO_PORT" > "$PORTS_FILE"
  local file="$DATA/services.env"
  {
    echo "# written by scripts/services.sh start: this checkout's own stores (never a URL you configured)"
    configured PG_URL || echo "DEV_PG_URL=postgres://postgres:$PG_PASSWORD@127.0.0.1:$PG_PORT"
    configured REDIS_URL || echo "DEV_REDIS_URL=redis://:$REDIS_PASSWORD@127.0.0.1:$REDIS_PORT"
    configured MONGO_URL || echo "DEV_MONGO_URL=mongodb://127.0.0.1:$MONGO_PORT/?directConnection=true"
  } > "$file.tmp"
  chmod 600 "$file.tmp"
  mv "$file.tmp" "$file"
}

# kill the process of a pid file and wait (bounded) until it is gone, so its port is free when we return
stop_pid() {
  local file="$1"
  if alive "$file"; then
    local pid; pid="$(cat "$file")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { log "$file: pid $pid still running after 10s, killing it"; kill -9 "$pid" 2>/dev/null || true; }
  fi
  rm -f "$file"
}

stop_store() {
  case "$1" in
    postgres) if [ -s "$DATA/postgres/postmaster.pid" ]; then as_pg "$(pg_bin)/pg_ctl" -D "$DATA/postgres" -m fast -w stop >/dev/null || true; fi;;
    redis) stop_pid "$DATA/redis.pid";;
    mongo) stop_pid "$DATA/ferretdb.pid";;
    *) echo "unknown store $1 (postgres, redis, mongo)" >&2; return 2;;
  esac
}

case "${1:-start}" in
  # one after the other: each may move its port, which write_env then records
  start) start_redis; start_mongo; start_postgres; write_env; log "ready ($DATA/services.env)";;
  # stop [postgres|redis|mongo]...: the named stores, or all three
  stop) shift; stores=("$@"); [ ${#stores[@]} -gt 0 ] || stores=(postgres redis mongo)
    for store in "${stores[@]}"; do stop_store "$store"; done; log "stopped: ${stores[*]}";;
  status) alive_pg "$DATA/postgres" && echo "postgres up"; alive "$DATA/redis.pid" && echo "redis up"; alive "$DATA/ferretdb.pid" && echo "mongo up"; true;;
  *) echo "usage: $0 start | stop [postgres|redis|mongo]... | status" >&2; exit 2;;
esac
