import { readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fromBase64, meshError, parseFleetPolicy, toBase64url, type FleetPolicy } from '../../shared/index.js'
import type { MeshNode } from '../../mesh/index.js'

/**
 * A device's fleet file and the revocations its node learned (mesh/routing/handlers/revoke.ts),
 * kept in `<dataDir>/revocations.json` (a JSON list of base64url revocations, rewritten whole and
 * renamed into place on each new one), so a restarted device refuses a revoked peer from its first
 * link, before any neighbour tells it again.
 */

const FILE = 'revocations.json'

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
  if (dataDir === undefined) return []
  try {
    const list = JSON.parse(await readFile(join(dataDir, FILE), 'utf8')) as unknown
    return Array.isArray(list) ? list.flatMap((x) => { const b = typeof x === 'string' ? fromBase64(x) : undefined; return b === undefined ? [] : [b] }) : []
  } catch {
    return []
  }
}

/** Keeps every revocation `node` takes from now on; errors go to `onError`. */
export function keepRevocations (node: MeshNode, dataDir: string | undefined, onError: (error: Error) => void): void {
  if (dataDir === undefined) return
  let writing = Promise.resolve()
  node.on('revoked', () => {
    const all = node.revocations().map((b) => toBase64url(b))
    writing = writing.then(async () => {
      const path = join(dataDir, FILE)
      await writeFile(`${path}.tmp`, JSON.stringify(all), { mode: 0o600 })
      await rename(`${path}.tmp`, path)
    }).catch((err: unknown) => { onError(err as Error) })
  })
}
