import { deviceIdFromPublicKey, keyMatchesId, type DeviceId, type PublicKey } from '../../shared/index.js'

/**
 * Who signed what: device id -> public key. Ids are self-certifying (id = H(pk), shared/identity.ts),
 * so a key learned from anyone (a link handshake, a TXT record, a KEY message, a retained MQTT
 * status) is accepted when it derives to the id; nothing needs to be trusted for the binding.
 *
 * Trust mode: open (any key whose id matches) or closed (only keys in the fleet roster).
 */
export class Keyring {
  readonly #keys = new Map<DeviceId, PublicKey>()
  readonly #roster: ReadonlySet<DeviceId> | undefined
  readonly #max: number

  constructor (init: { roster?: Iterable<PublicKey>, max?: number } = {}) {
    this.#max = init.max ?? 100_000
    if (init.roster !== undefined) {
      const ids = new Set<DeviceId>()
      for (const pk of init.roster) {
        const id = deviceIdFromPublicKey(pk)
        ids.add(id)
        this.#keys.set(id, pk)
      }
      this.#roster = ids
    }
  }

  get closed (): boolean { return this.#roster !== undefined }

  /** True when `id` may take part: always in open mode; in closed mode only roster members. */
  allowed (id: DeviceId): boolean {
    return this.#roster === undefined || this.#roster.has(id)
  }

  get (id: DeviceId): PublicKey | undefined {
    return this.#keys.get(id)
  }

  /**
   * Learns a key. Returns 'ok', 'mismatch' when `id` is given and the key does not derive to it,
   * or 'not-in-roster' in closed mode for a key outside the roster.
   */
  learn (publicKey: PublicKey, id?: DeviceId): 'ok' | 'mismatch' | 'not-in-roster' {
    const derived = id !== undefined && keyMatchesId(publicKey, id) ? id : deviceIdFromPublicKey(publicKey)
    if (id !== undefined && derived !== id) return 'mismatch'
    if (!this.allowed(derived)) return 'not-in-roster'
    if (!this.#keys.has(derived)) {
      if (this.#keys.size >= this.#max && this.#roster === undefined) this.#keys.delete(this.#keys.keys().next().value as DeviceId)
      this.#keys.set(derived, publicKey)
    }
    return 'ok'
  }

  get size (): number { return this.#keys.size }
}
