import type { PublicKey } from './crypto/ed25519.js'
import { deviceIdFromPublicKey, keyMatchesId, type DeviceId } from './identity.js'
import type { Trust } from './replay.js'

export type LearnResult = 'added' | 'known' | 'mismatch' | 'not-in-roster'

/**
 * Where a key came from: `'pin'` a trusted source (a roster, a link handshake, DNS-SD, a retained
 * status, an operator), `'gossip'` anyone else (a KEY message relayed by a neighbour). Both are
 * checked the same way (the key must derive to the id); they differ in what may evict them.
 */
export type KeySource = 'pin' | 'gossip'

/**
 * Device id -> public key: the one key store of iotmesh, used by the mesh router and the gateway
 * alike (through the verifier, verifier.ts). Ids are self-certifying (id = H(pk)[0..16],
 * identity.ts), so a key from anyone (a retained status, DNS-SD, a link handshake, a KEY message)
 * is accepted when it derives to the id; nothing else has to be trusted for the binding.
 *
 * Open mode: keys live in two tiers, so that strangers cannot push known keys out:
 *   - known: pinned keys (from a trusted source) and keys promoted when their device earned it
 *     with verified frames (`promote`), at most `max`; a pin evicts the least recently learned
 *     promoted key first, then the least recently learned pinned one; a promotion never evicts.
 *   - strangers: gossiped keys nobody vouched for yet, at most `maxStrangers`, least recently
 *     learned first out (a flood of random KEYs churns this tier and nothing else).
 * Closed mode (a roster): only the roster's keys; nothing is ever learned or evicted.
 */
export class KeyStore {
  readonly #pinned = new Map<DeviceId, PublicKey>()
  readonly #promoted = new Map<DeviceId, PublicKey>()
  readonly #strangers = new Map<DeviceId, PublicKey>()
  readonly #roster: ReadonlySet<DeviceId> | undefined
  readonly #max: number
  readonly #maxStrangers: number

  constructor (init: { roster?: Iterable<PublicKey>, max?: number, maxStrangers?: number } = {}) {
    this.#max = Math.max(1, init.max ?? 100_000)
    this.#maxStrangers = Math.max(1, init.maxStrangers ?? Math.min(this.#max, 4096))
    if (init.roster !== undefined) {
      const ids = new Set<DeviceId>()
      for (const pk of init.roster) {
        const id = deviceIdFromPublicKey(pk)
        ids.add(id)
        this.#pinned.set(id, new Uint8Array(pk))
      }
      this.#roster = ids
    }
  }

  get closed (): boolean { return this.#roster !== undefined }
  /** Keys held, both tiers. */
  get size (): number { return this.#pinned.size + this.#promoted.size + this.#strangers.size }
  /** Of which gossiped keys nobody vouched for yet. */
  get strangers (): number { return this.#strangers.size }

  allowed (id: DeviceId): boolean {
    return this.#roster === undefined || this.#roster.has(id)
  }

  /** Every id whose key is held, both tiers. */
  * ids (): IterableIterator<DeviceId> {
    yield * this.#pinned.keys()
    yield * this.#promoted.keys()
    yield * this.#strangers.keys()
  }

  get (id: DeviceId): PublicKey | undefined {
    return this.#pinned.get(id) ?? this.#promoted.get(id) ?? this.#strangers.get(id)
  }

  /** How `id`'s key is held: known (pinned or promoted), a stranger, or not at all. */
  trust (id: DeviceId): Trust | 'stranger' | undefined {
    return this.#pinned.has(id) ? 'pin' : this.#promoted.has(id) ? 'earn' : this.#strangers.has(id) ? 'stranger' : undefined
  }

  /** Learns `publicKey` (for `id` when given: it must derive to it); `source` says which tier it may enter. */
  learn (publicKey: PublicKey, id?: DeviceId, source: KeySource = 'pin'): { result: LearnResult, id: DeviceId } {
    const derived = id !== undefined && keyMatchesId(publicKey, id) ? id : deviceIdFromPublicKey(publicKey)
    if (id !== undefined && derived !== id) return { result: 'mismatch', id }
    if (!this.allowed(derived)) return { result: 'not-in-roster', id: derived }
    if (this.#pinned.has(derived)) return { result: 'known', id: derived }
    if (source === 'gossip') {
      if (this.#promoted.has(derived) || this.#strangers.has(derived)) return { result: 'known', id: derived }
      if (this.#strangers.size >= this.#maxStrangers) this.#strangers.delete(this.#strangers.keys().next().value as DeviceId)
      this.#strangers.set(derived, new Uint8Array(publicKey))
      return { result: 'added', id: derived }
    }
    const had = this.#promoted.get(derived) ?? this.#strangers.get(derived)
    this.#promoted.delete(derived)
    this.#strangers.delete(derived)
    if (had === undefined && this.#pinned.size + this.#promoted.size >= this.#max) {
      const tier = this.#promoted.size > 0 ? this.#promoted : this.#pinned
      tier.delete(tier.keys().next().value as DeviceId)
    }
    this.#pinned.set(derived, had ?? new Uint8Array(publicKey))
    return { result: had === undefined ? 'added' : 'known', id: derived }
  }

  /**
   * Moves a stranger's key into the known tier (its device earned it with verified frames);
   * false when the known tier is full (it stays a stranger) or no stranger key is held for `id`.
   */
  promote (id: DeviceId): boolean {
    const key = this.#strangers.get(id)
    if (key === undefined) return this.#pinned.has(id) || this.#promoted.has(id)
    if (this.#pinned.size + this.#promoted.size >= this.#max) return false
    this.#strangers.delete(id)
    this.#promoted.set(id, key)
    return true
  }
}
