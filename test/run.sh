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
PG_FSYNC=off
# shellcheck source=test/postgres.sh
. test/postgres.sh
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
