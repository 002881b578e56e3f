import type { PublicKey } from './crypto/ed25519.js'
import { deviceIdFromPublicKey, keyMatchesId, type DeviceId } from './identity.js'

export type LearnResult = 'added' | 'known' | 'mismatch' | 'not-in-roster'

/**
 * Device id -> public key: the one key store of iotmesh, used by the mesh router and the gateway
 * alike (through the verifier, verifier.ts). Ids are self-certifying (id = H(pk)[0..16],
 * identity.ts), so a key from anyone (a retained status, DNS-SD, a link handshake, a KEY message)
 * is accepted when it derives to the id; nothing else has to be trusted for the binding.
 *
 * Open mode: any such key, at most `max` of them (least recently learned first out).
 * Closed mode (a roster): only the roster's keys; nothing is ever learned or evicted.
 */
export class KeyStore {
  readonly #keys = new Map<DeviceId, PublicKey>()
  readonly #roster: ReadonlySet<DeviceId> | undefined
  readonly #max: number

  constructor (init: { roster?: Iterable<PublicKey>, max?: number } = {}) {
    this.#max = Math.max(1, init.max ?? 100_000)
    if (init.roster !== undefined) {
      const ids = new Set<DeviceId>()
      for (const pk of init.roster) {
        const id = deviceIdFromPublicKey(pk)
        ids.add(id)
        this.#keys.set(id, new Uint8Array(pk))
      }
      this.#roster = ids
    }
  }

  get closed (): boolean { return this.#roster !== undefined }
  get size (): number { return this.#keys.size }

  allowed (id: DeviceId): boolean {
    return this.#roster === undefined || this.#roster.has(id)
  }

  get (id: DeviceId): PublicKey | undefined {
    return this.#keys.get(id)
  }

  /** Learns `publicKey` (for `id` when given: it must derive to it). */
  learn (publicKey: PublicKey, id?: DeviceId): { result: LearnResult, id: DeviceId } {
    const derived = id !== undefined && keyMatchesId(publicKey, id) ? id : deviceIdFromPublicKey(publicKey)
    if (id !== undefined && derived !== id) return { result: 'mismatch', id }
    if (!this.allowed(derived)) return { result: 'not-in-roster', id: derived }
    if (this.#keys.has(derived)) return { result: 'known', id: derived }
    if (this.#keys.size >= this.#max) this.#keys.delete(this.#keys.keys().next().value as DeviceId)
    this.#keys.set(derived, new Uint8Array(publicKey))
    return { result: 'added', id: derived }
  }
}
