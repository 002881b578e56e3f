import { FleetFileChain, type Ed25519, type FleetPolicy } from '../../shared/index.js'
import type { MeshNode } from '../../mesh/index.js'
import { listKeeper, loadKeptList } from './kept-list.js'

/**
 * The signed fleet files a device's node took (mesh/routing/handlers/fleet.ts: an owner rotation,
 * an added owner, a new threshold), kept in `<dataDir>/fleet-files.json` (a JSON list of base64url
 * files, oldest first, rewritten whole and renamed into place on each new one). At start each is
 * verified again against the one before it, from the fleet file the device was given, so a restarted
 * device judges by the newest owners from its first link. Kept: the newest 16 (FleetFileChain).
 */

const FILE = 'fleet-files.json'

/** The files kept under `dataDir` (none when there is no file yet, or it cannot be read: the mesh hands them on again). */
export async function loadFleetFiles (dataDir: string | undefined): Promise<Uint8Array[]> {
  return await loadKeptList(dataDir, FILE)
}

/** The fleet file in force after `files` (each verified against the one before; one that does not follow is skipped). */
export function newestFleetPolicy (given: FleetPolicy, files: readonly Uint8Array[], ed25519?: Ed25519): FleetPolicy {
  const chain = new FleetFileChain(given)
  for (const bytes of files) {
    try { chain.add(bytes, ed25519) } catch { /* not a successor of the file in force: skipped */ }
  }
  return chain.policy
}

/** The fleet file in force at start (`given`, then the files kept under `dataDir` that follow it) and those files. */
export async function fleetFileInForce (given: FleetPolicy | undefined, dataDir: string | undefined, ed25519?: Ed25519): Promise<{ policy: FleetPolicy | undefined, fleetFiles: Uint8Array[] }> {
  if (given === undefined) return { policy: undefined, fleetFiles: [] }
  const fleetFiles = await loadFleetFiles(dataDir)
  return { policy: newestFleetPolicy(given, fleetFiles, ed25519), fleetFiles }
}

/** Keeps every fleet file `node` takes from now on; errors go to `onError`. */
export function keepFleetFiles (node: MeshNode, dataDir: string | undefined, onError: (error: Error) => void): void {
  if (dataDir === undefined) return
  node.on('fleet', listKeeper(dataDir, FILE, () => node.fleetFiles(), onError))
}
