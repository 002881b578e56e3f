import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { MAX_CREDENTIAL_BYTES, meshError } from '../../shared/index.js'

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
