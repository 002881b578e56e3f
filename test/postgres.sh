# Sourced by test/run.sh and test/bench/with-postgres.sh (not run by itself): a private PostgreSQL
# from Debian's packages, on a Unix socket in a temporary folder only (no TCP port), as the
# `postgres` user when we are root (PostgreSQL refuses to run as root). `start_postgres` exports
# IOTMESH_PG_URL; `stop_postgres` stops it and removes its folder. PG_FSYNC=off (the tests) trades
# durability for speed; the benchmark keeps PostgreSQL's default (on), like a real deployment.
PG_DIR=""
start_postgres () {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$bin" ] || [ ! -x "$bin/postgres" ]; then
    echo "iotmesh: PostgreSQL is not installed (Debian: apt-get install postgresql); its tests are skipped" >&2
    return 0
  fi
  PG_DIR=$(mktemp -d /tmp/iotmesh-pg.XXXXXX)
  chmod 755 "$PG_DIR"
  local as=()
  if [ "$(id -u)" = "0" ]; then
    chown postgres: "$PG_DIR"
    as=(runuser -u postgres --)
  fi
  "${as[@]}" "$bin/initdb" -D "$PG_DIR/data" --username=iotmesh --auth=trust --encoding=UTF8 >"$PG_DIR/initdb.log" 2>&1 \
    || { echo "iotmesh: initdb failed:" >&2; cat "$PG_DIR/initdb.log" >&2; return 1; }
  "${as[@]}" "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
    -o "-c listen_addresses='' -k $PG_DIR -c fsync=${PG_FSYNC:-on} -c max_connections=200" start >/dev/null \
    || { echo "iotmesh: PostgreSQL did not start:" >&2; cat "$PG_DIR/server.log" >&2; return 1; }
  export IOTMESH_PG_URL="postgres://iotmesh@localhost/postgres?host=$PG_DIR"
  PG_STOP=("${as[@]}" "$bin/pg_ctl" -D "$PG_DIR/data" -m immediate stop)
}
stop_postgres () {
  if [ -n "$PG_DIR" ]; then
    "${PG_STOP[@]}" >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
  fi
}
