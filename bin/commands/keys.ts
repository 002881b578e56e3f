import { homedir } from 'node:os'
import { join } from 'node:path'
import { fromBase64, fromHex, meshError, PUBLIC_KEY_LENGTH } from '../../shared/index.js'
import { loadKeyFile } from '../../shared/node.js'

/** Where a device keeps its key unless told otherwise: $IOTMESH_HOME/device.key, else ~/.iotmesh/device.key. */
export function defaultKeyPath (env: NodeJS.ProcessEnv): string {
  return join(env.IOTMESH_HOME ?? join(homedir(), '.iotmesh'), 'device.key')
}

/** A public key given on the command line: base64url/base64 or hex of 32 bytes, or a key file path. */
export async function parsePublicKey (text: string): Promise<Uint8Array> {
  const trimmed = text.trim()
  const bytes = (/^[0-9a-fA-F]{64}$/.test(trimmed) ? fromHex(trimmed) : undefined) ?? fromBase64(trimmed)
  if (bytes !== undefined && bytes.length === PUBLIC_KEY_LENGTH) return bytes
  if (trimmed.includes('/') || trimmed.endsWith('.key') || trimmed.endsWith('.pem')) return (await loadKeyFile(trimmed)).publicKey
  throw meshError('ERR_BAD_ARGUMENT', `--key must be a 32-byte Ed25519 public key (base64url or hex) or a key file, got ${JSON.stringify(text)}`)
}
