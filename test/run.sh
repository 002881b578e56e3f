#!/usr/bin/env bash
# Runs vitest inside a private network namespace (../shared/NETWORK.md, "A LAN of several hosts"):
# a new user, network and mount namespace with only `lo`, and a private /run/netns so tests can
# create namespace hosts (`ip netns add`) joined by veth pairs on a bridge. Nothing a test sends
# can reach a real interface. Where user namespaces are unavailable we say so and run vitest with
# IOTMESH_NETNS unset: tests that need the network are then skipped by name, never run on the host.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${IOTMESH_NETNS:-}" = "1" ]; then exec npx vitest run "$@"; fi

if unshare -rnm --propagation private true 2>/dev/null; then
  exec unshare -rnm --propagation private bash -c '
    set -e
    mount -t tmpfs none /run && mkdir -p /run/netns
    ip link set lo up
    export IOTMESH_NETNS=1
    exec npx vitest run "$@"' bash "$@"
fi

echo "iotmesh: user/network namespaces are unavailable here (unshare -rnm failed)." >&2
echo "iotmesh: tests that open sockets or multicast are SKIPPED; run as root or enable user namespaces to run them." >&2
exec npx vitest run "$@"
