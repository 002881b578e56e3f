import { networkInterfaces } from 'node:os'
import { describe } from 'vitest'

/**
 * True only inside the private namespace that `test/run.sh` creates. A network test must run
 * under `describeNet`, which skips it (loudly, by name) anywhere else: a test never falls back
 * to the host's network.
 */
export function inPrivateNetns (): boolean {
  if (process.env.IOTMESH_NETNS !== '1') return false
  // Defence in depth: at the start of a run the namespace holds only `lo`; test-made interfaces
  // (br*, veth v*, eth0 inside a host) are the only others allowed.
  for (const name of Object.keys(networkInterfaces())) {
    if (name !== 'lo' && !/^(br|v\d|veth|eth0$|im)/.test(name)) return false
  }
  return true
}

/** `describe` for tests that open sockets or multicast; skipped outside the private namespace. */
export const describeNet = describe.skipIf(!inPrivateNetns())
