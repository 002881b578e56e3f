import { FleetFileChain, decodeFleetFiles, isMeshError, meshError, type Ed25519, type FleetPolicy } from '../../shared/index.js'
import { listKeeper } from './kept-list.js'

/**
 * The fleet files a device in broker mode takes from the gateway's broker (issue 13): the gateway
 * retains the chain its mesh node holds on iotmesh/<fleet>/$fleet/files (shared/fleet-file.ts,
 * gateway/gateway.ts), so a device that hears no FLEET gossip still follows an owner rotation, an
 * added owner or a new threshold. Each file of the message is taken in order, exactly as from a
 * neighbour (mesh/routing/handlers/fleet.ts): `take` is a hybrid device's node (`updateFleet`: it
 * verifies, spreads and keeps it) or a broker-only device's own chain (`brokerFleetChain`). A
 * refusal (ERR_BAD_FLEET_FILE, ERR_FLEET_STALE, ERR_NOT_OWNER, ERR_TOO_FEW_OWNERS,
 * ERR_UNKNOWN_FLEET) goes to `onError` with its code and changes nothing.
 */
export function brokerFleetFiles (take: (bytes: Uint8Array) => string, onError: (error: Error) => void): (payload: Uint8Array) => void {
  return (payload) => {
    let files: Uint8Array[]
    try {
      files = decodeFleetFiles(payload)
    } catch (err) {
      onError(isMeshError(err) ? err : meshError('ERR_BAD_FLEET_FILE', String(err)))
      return
    }
    for (const bytes of files) {
      const verdict = take(bytes)
      if (verdict !== 'added' && verdict !== 'known' && verdict !== 'ignored') {
        onError(meshError(verdict as 'ERR_BAD_FLEET_FILE', `a fleet file retained at the broker was refused (${verdict}): the fleet file in force stays`))
      }
    }
  }
}

/**
 * A broker-only device's chain of fleet files: from the fleet file it was given and those it kept
 * (`files`, device/fleet-files.ts), each new one verified against the one in force (FleetFileChain,
 * the same checks and codes as gossip), kept in `<dataDir>/fleet-files.json` (the file a mesh device
 * keeps) and handed to `onPolicy` (its revocations and signed configurations judge by the new owners).
 */
export function brokerFleetChain (
  init: { given: FleetPolicy, files: readonly Uint8Array[], dataDir: string | undefined, ed25519?: Ed25519 | undefined },
  onPolicy: (policy: FleetPolicy) => void,
  onError: (error: Error) => void
): (bytes: Uint8Array) => string {
  const chain = new FleetFileChain(init.given)
  for (const bytes of init.files) {
    try { chain.add(bytes, init.ed25519) } catch { /* not a successor of the file in force: skipped */ }
  }
  const keep = init.dataDir === undefined ? undefined : listKeeper(init.dataDir, 'fleet-files.json', () => chain.all(), onError)
  return (bytes) => {
    try {
      const { verdict, policy } = chain.add(bytes, init.ed25519)
      if (verdict === 'added') {
        keep?.()
        onPolicy(policy)
      }
      return verdict
    } catch (err) {
      return isMeshError(err) ? err.code : 'ERR_BAD_FLEET_FILE'
    }
  }
}
