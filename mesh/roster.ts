import { readFile } from 'node:fs/promises'
import { deviceIdFromPublicKey, fromBase64, keyMatchesId, meshError, type DeviceId, type PublicKey } from '../shared/index.js'

/**
 * A fleet roster for closed mode: the public keys allowed to link and publish. JSON, either an
 * array of base64url keys or of `{ "pk": "…", "id": "…", "name": "…" }` objects (an `id` given
 * must derive from its `pk`), so the output of `iotmesh keygen --json` can be collected as is.
 */
export interface RosterEntry { id: DeviceId, publicKey: PublicKey, name?: string }

export function parseRoster (json: unknown, source = 'roster'): RosterEntry[] {
  if (!Array.isArray(json)) throw meshError('ERR_BAD_ARGUMENT', `${source} must be a JSON array of public keys or {pk, id?, name?} objects`)
  return json.map((item, index) => {
    const text = typeof item === 'string' ? item : (item as { pk?: unknown, publicKey?: unknown })?.pk ?? (item as { publicKey?: unknown })?.publicKey
    const publicKey = typeof text === 'string' ? fromBase64(text) : undefined
    if (publicKey?.length !== 32) throw meshError('ERR_BAD_ARGUMENT', `${source} entry ${index}: no 32-byte base64url public key`)
    const id = (item as { id?: unknown })?.id
    if (id !== undefined && (typeof id !== 'string' || !keyMatchesId(publicKey, id))) throw meshError('ERR_BAD_ARGUMENT', `${source} entry ${index}: id ${JSON.stringify(id)} does not derive from its public key`)
    const name = (item as { name?: unknown })?.name
    return { id: deviceIdFromPublicKey(publicKey), publicKey, ...(typeof name === 'string' ? { name } : {}) }
  })
}

export async function loadRoster (path: string): Promise<RosterEntry[]> {
  let json: unknown
  try {
    json = JSON.parse(await readFile(path, 'utf8'))
  } catch (err) {
    throw meshError('ERR_BAD_ARGUMENT', `cannot read roster ${path}: ${(err as Error).message}`, { cause: err })
  }
  return parseRoster(json, path)
}
