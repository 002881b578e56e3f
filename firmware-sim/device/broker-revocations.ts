import { rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { RevocationSet, isMeshError, toBase64url, type FleetPolicy } from '../../shared/index.js'
import { loadRevocations } from './revocations.js'

/**
 * Revocations a device in broker mode takes from the gateway's broker (retained on
 * iotmesh/<fleet>/$revocations/+, gateway/revocations.ts). A hybrid device hands them to its mesh
 * node (verified, spread, kept by device/revocations.ts); a broker-only device has no node, so it
 * verifies them here against its fleet file and keeps them in `<dataDir>/revocations.json`, the
 * same file a mesh device keeps. Invalid ones (not the owners', short of the threshold) are
 * reported through `onError` with their code and dropped. `set.policy` follows a newer fleet file
 * the device takes from the broker (device/broker-fleet-files.ts).
 */
export async function brokerRevocationKeeper (policy: FleetPolicy, dataDir: string | undefined, onError: (error: Error) => void): Promise<{ take: (bytes: Uint8Array) => void, set: RevocationSet }> {
  const set = new RevocationSet(policy)
  for (const bytes of await loadRevocations(dataDir)) {
    try { set.add(bytes) } catch { /* one that no longer verifies (another fleet file) is dropped */ }
  }
  let writing = Promise.resolve()
  const take = (bytes: Uint8Array): void => {
    try {
      if (set.add(bytes).verdict !== 'added') return
    } catch (err) {
      onError(isMeshError(err) ? err : new Error(String(err)))
      return
    }
    if (dataDir === undefined) return
    const all = set.all().map((b) => toBase64url(b))
    writing = writing.then(async () => {
      const path = join(dataDir, 'revocations.json')
      await writeFile(`${path}.tmp`, JSON.stringify(all), { mode: 0o600 })
      await rename(`${path}.tmp`, path)
    }).catch((err: unknown) => { onError(err as Error) })
  }
  return { take, set }
}
