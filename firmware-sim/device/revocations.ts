import { readFile } from 'node:fs/promises'
import { meshError, parseFleetPolicy, type FleetPolicy } from '../../shared/index.js'
import type { MeshNode } from '../../mesh/index.js'
import { listKeeper, loadKeptList } from './kept-list.js'

/**
 * A device's fleet file and the revocations its node learned (mesh/routing/handlers/revoke.ts),
 * kept in `<dataDir>/revocations.json` (a JSON list of base64url revocations, rewritten whole and
 * renamed into place on each new one), so a restarted device refuses a revoked peer from its first
 * link, before any neighbour tells it again.
 */

const FILE = 'revocations.json'

/** A fleet policy from a fleet file's path (or as given), checked. */
export async function loadFleetPolicy (fleetFile: string | FleetPolicy): Promise<FleetPolicy> {
  if (typeof fleetFile !== 'string') return fleetFile
  let text: string
  try {
    text = await readFile(fleetFile, 'utf8')
  } catch (err) {
    throw meshError('ERR_BAD_ARGUMENT', `cannot read the fleet file ${fleetFile} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err })
  }
  try {
    return parseFleetPolicy(JSON.parse(text), fleetFile)
  } catch (err) {
    if (err instanceof SyntaxError) throw meshError('ERR_BAD_ARGUMENT', `the fleet file ${fleetFile} is not JSON: ${err.message}`)
    throw err
  }
}

/** The revocations kept under `dataDir` (none when there is no file yet, or it cannot be read: the mesh hands them on again). */
export async function loadRevocations (dataDir: string | undefined): Promise<Uint8Array[]> {
  return await loadKeptList(dataDir, FILE)
}

/** Keeps every revocation `node` takes from now on; errors go to `onError`. */
export function keepRevocations (node: MeshNode, dataDir: string | undefined, onError: (error: Error) => void): void {
  if (dataDir === undefined) return
  node.on('revoked', listKeeper(dataDir, FILE, () => node.revocations(), onError))
}
