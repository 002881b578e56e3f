import { isMeshError, meshError, type KeyPair, type PublicKey } from '../shared/index.js'
import { loadKeyFile } from '../shared/node.js'
import { loadRoster } from '../mesh/index.js'

/**
 * Closed mode on the command line (`--roster FILE`, `--key FILE` of `iotmesh device`, `watch`,
 * `sim`): a file that cannot be read is a usage error naming its flag.
 */

export async function readRosterFlag (path: string): Promise<PublicKey[]> {
  try {
    return (await loadRoster(path)).map((entry) => entry.publicKey)
  } catch (err) {
    throw meshError('ERR_BAD_ARGUMENT', `--roster: ${(err as Error).message}`, { cause: err })
  }
}

export async function readKeyFlag (path: string): Promise<KeyPair> {
  try {
    return await loadKeyFile(path)
  } catch (err) {
    // A key file that others can read keeps its own code (as ssh refuses an open key); anything else is a bad --key.
    if (isMeshError(err) && err.code === 'ERR_KEY_PERMISSIONS') throw meshError(err.code, `--key: ${err.message}`, { cause: err })
    throw meshError('ERR_BAD_ARGUMENT', `--key: ${isMeshError(err) ? err.message : `${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`}`, { cause: err })
  }
}
