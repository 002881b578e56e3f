import { readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fromBase64, toBase64url } from '../../shared/index.js'

/**
 * A list of signed documents a device keeps under its data directory (revocations, fleet files):
 * `<dataDir>/<file>`, a JSON list of base64url byte strings, rewritten whole and renamed into place
 * on each change, so a restarted device has them before any neighbour tells it again.
 */

/** The list kept as `file` under `dataDir` (none when there is no file yet, or it cannot be read: the mesh hands them on again). */
export async function loadKeptList (dataDir: string | undefined, file: string): Promise<Uint8Array[]> {
  if (dataDir === undefined) return []
  try {
    const list = JSON.parse(await readFile(join(dataDir, file), 'utf8')) as unknown
    return Array.isArray(list) ? list.flatMap((x) => { const b = typeof x === 'string' ? fromBase64(x) : undefined; return b === undefined ? [] : [b] }) : []
  } catch {
    return []
  }
}

/** Returns a function that writes `list()` as `file` under `dataDir`, one write after another; errors go to `onError`. */
export function listKeeper (dataDir: string, file: string, list: () => readonly Uint8Array[], onError: (error: Error) => void): () => void {
  let writing = Promise.resolve()
  return () => {
    const all = list().map((b) => toBase64url(b))
    writing = writing.then(async () => {
      const path = join(dataDir, file)
      await writeFile(`${path}.tmp`, JSON.stringify(all), { mode: 0o600 })
      await rename(`${path}.tmp`, path)
    }).catch((err: unknown) => { onError(err as Error) })
  }
}
