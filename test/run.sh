#!/usr/bin/env bash
# Runs vitest inside a private network namespace (../shared/NETWORK.md, "A LAN of several hosts"):
# a new user, network and mount namespace with only `lo`, and a private /run/netns so tests can
# create namespace hosts (`ip netns add`) joined by veth pairs on a bridge. Nothing a test sends
# can reach a real interface. Where user namespaces are unavailable we say so and run vitest with
# IOTMESH_NETNS unset: tests that need the network are then skipped by name, never run on the host.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${IOTMESH_NETNS:-}" = "1" ]; then exec npx vitest run "$@"; fi

# PostgreSQL for the gateway's server store (test/gateway/store-postgres.test.ts), from Debian's
# packages, started here, before the namespace: inside `unshare -r` only uid 0 is mapped and
# PostgreSQL refuses to run as root. As root it runs as the `postgres` user; otherwise as us. It
# listens on no TCP port, only on a Unix socket in a temporary folder, which the tests reach from
# inside the namespace (a socket is a file: network namespaces do not separate it). Stopped on exit.
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
    -o "-c listen_addresses='' -k $PG_DIR -c fsync=off -c max_connections=200" start >/dev/null \
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
trap stop_postgres EXIT
# A server that will not start skips its tests (the CI check in test/gateway/store.test.ts then fails), never the suite.
start_postgres || echo "iotmesh: PostgreSQL could not be started; its tests are skipped" >&2

if unshare -rnm --propagation private true 2>/dev/null; then
  status=0
  unshare -rnm --propagation private bash -c '
    set -e
    mount -t tmpfs none /run && mkdir -p /run/netns
    ip link set lo up
    export IOTMESH_NETNS=1
    exec npx vitest run "$@"' bash "$@" || status=$?
  exit "$status"
fi

echo "iotmesh: user/network namespaces are unavailable here (unshare -rnm failed)." >&2
echo "iotmesh: tests that open sockets or multicast are SKIPPED; run as root or enable user namespaces to run them." >&2
status=0
npx vitest run "$@" || status=$?
exit "$status"
