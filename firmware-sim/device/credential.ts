import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { MAX_CREDENTIAL_BYTES, meshError, type DeviceId } from '../../shared/index.js'
import type { MeshNode } from '../../mesh/index.js'

/**
 * A device's enrollment credential (iotmesh fleet enroll: a COSE_Sign CWT, shared/fleet.ts): from
 * `--credential FILE`, or else `<dataDir>/credential.cbor` when that file exists. The device shows
 * it in every link handshake (mesh/links/handshake.ts) and in its retained status.
 */

export const CREDENTIAL_FILE = 'credential.cbor'

/** The credential bytes; undefined when none is configured and the data directory holds none. A configured file that cannot be read is an error. */
export async function loadCredential (file: string | Uint8Array | undefined, dataDir: string | undefined): Promise<Uint8Array | undefined> {
  if (file instanceof Uint8Array) return file
  const path = file ?? (dataDir === undefined ? undefined : join(dataDir, CREDENTIAL_FILE))
  if (path === undefined) return undefined
  let bytes: Uint8Array
  try {
    bytes = new Uint8Array(await readFile(path))
  } catch (err) {
    if (file === undefined && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw meshError('ERR_BAD_ARGUMENT', `cannot read the credential ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err })
  }
  if (bytes.length === 0 || bytes.length > MAX_CREDENTIAL_BYTES) throw meshError('ERR_BAD_CREDENTIAL', `${path} is ${bytes.length} bytes: not a credential (1 to ${MAX_CREDENTIAL_BYTES})`)
  return bytes
}

/** Why a link is refused for trust: credentials, revocation, roster (mesh/credentials.ts), a cloned key (mesh/clones.ts). */
const TRUST_CODES: ReadonlySet<string> = new Set(['ERR_CLONED_IDENTITY', 'ERR_REVOKED', 'ERR_NO_CREDENTIAL', 'ERR_BAD_CREDENTIAL', 'ERR_CREDENTIAL_EXPIRED', 'ERR_CREDENTIAL_MISMATCH',
  'ERR_NOT_OWNER', 'ERR_TOO_FEW_OWNERS', 'ERR_UNKNOWN_FLEET', 'ERR_NOT_IN_ROSTER'])

/** Reports links refused for trust, both ways: a peer told us its code (`link:refused`), or we refused a peer (a `drop` of a peer not linked). */
export function watchRefusals (node: MeshNode, report: (info: { by: 'peer' | 'us', code: string, peer?: DeviceId, address?: string }) => void): void {
  node.on('link:refused', ({ code, peer, address }) => { report(peer === undefined ? { by: 'peer', code, address } : { by: 'peer', code, peer, address }) })
  node.on('drop', ({ code, from }) => {
    if (from === undefined || !TRUST_CODES.has(code) || node.links.has(from)) return
    report({ by: 'us', code, peer: from })
  })
}
