import { isMeshError, meshError, type DeviceId, type ErrorCode } from '../shared/index.js'
import type { GatewayStore, KeptDoc } from './store/index.js'

/**
 * What the gateway keeps of its fleet's trust across a restart (issue 13): the signed fleet files
 * it followed (FLEET gossip through its mesh node: mesh/routing/handlers/fleet.ts) and every
 * revocation it holds (gateway/revocations.ts), in its durable store (table `trust`,
 * gateway/store/sql.ts); with the memory store, none. A restarted gateway takes them again before
 * its broker and mesh node run, as if they had just arrived: the fleet files in order of version,
 * each verified against the file then in force (starting from the one it was given: a file that
 * does not follow is skipped with its code), then the revocations against the owners then in force.
 * Nothing is trusted because it is on disk: a row written without the owners' keys is refused as it
 * would be from a neighbour.
 */

/** A fleet file's key: its version, zero-padded so that keys sort by version. */
export function fleetFileKey (version: number): string {
  return String(version).padStart(10, '0')
}

export interface TrustTaker {
  /** Takes a kept fleet file (verified against the one in force); 'added', 'known', or the code it was refused with. */
  fleetFile: (bytes: Uint8Array) => string
  /** Takes a kept revocation (verified against the owners in force); throws its code when refused. */
  revocation: (bytes: Uint8Array) => void
}

export class KeptTrust {
  /** Documents kept, taken back at start, and refused at start (no longer verifying). */
  readonly counters = { kept: 0, restoredFleetFiles: 0, restoredRevocations: 0, refused: 0 }
  #writing = Promise.resolve()

  constructor (readonly store: GatewayStore, readonly onError: (error: Error) => void) {}

  /** Keeps a fleet file that is now in force (written after the ones before it). */
  keepFleetFile (version: number, bytes: Uint8Array): void {
    this.#keep({ kind: 'fleet-file', key: fleetFileKey(version), doc: new Uint8Array(bytes) })
  }

  /** Keeps a revocation the gateway holds. */
  keepRevocation (device: DeviceId, bytes: Uint8Array): void {
    this.#keep({ kind: 'revocation', key: device, doc: new Uint8Array(bytes) })
  }

  /** Takes back every document kept: fleet files first, by version, then revocations. Refusals go to `onError` with their code. */
  async restore (taker: TrustTaker): Promise<void> {
    const docs = await this.store.loadTrust?.() ?? []
    const refused = (doc: KeptDoc, code: ErrorCode): void => {
      this.counters.refused++
      this.onError(meshError(code, `the ${doc.kind} kept in ${this.store.location} under ${doc.key} does not verify against the fleet file in force (${code}): not taken`))
    }
    for (const doc of docs.filter((d) => d.kind === 'fleet-file')) {
      const verdict = taker.fleetFile(doc.doc)
      if (verdict === 'added') this.counters.restoredFleetFiles++
      else if (verdict !== 'known' && verdict !== 'ignored') refused(doc, verdict as ErrorCode)
    }
    for (const doc of docs.filter((d) => d.kind === 'revocation')) {
      try {
        taker.revocation(doc.doc)
        this.counters.restoredRevocations++
      } catch (err) {
        refused(doc, isMeshError(err) ? err.code : 'ERR_BAD_REVOCATION')
      }
    }
  }

  /** Waits for the writes queued so far. */
  async flushed (): Promise<void> { await this.#writing }

  #keep (doc: KeptDoc): void {
    const keep = this.store.keepTrust
    if (keep === undefined) return
    this.#writing = this.#writing.then(async () => {
      await keep.call(this.store, doc)
      this.counters.kept++
    }).catch((err: unknown) => { this.onError(err as Error) })
  }
}
