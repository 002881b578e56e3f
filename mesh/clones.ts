import { meshError, systemClock, toHex, type Clock, type DeviceId } from '../shared/index.js'

/**
 * Cloned identities at the link layer (issue 13): one SD-card image flashed onto many Raspberry
 * Pis gives them one key. Each node draws a random instance id once per process start and shows it
 * in every link handshake (links/handshake.ts, extension type 2). A restarted device shows a new
 * instance id and never its old one again; two live devices with one key keep replacing each
 * other's link, so an instance id this node saw before, older than the latest one of that key,
 * comes back: that is a clone, reported with ERR_CLONED_IDENTITY and not silently merged. The key
 * is then kept out for `holdMs` (every instance: which one is the original is not this node's to
 * say), and each side is told the code when it dials. Peers that show no instance id (older
 * nodes) are not judged. Bounded: `maxDevices` keys, `history` instance ids each.
 */

export interface InstanceBookInit {
  /** How long a key found cloned is refused (default 10 minutes). */
  holdMs?: number
  /** Keys remembered (default 4,096; the least recently seen first out). */
  maxDevices?: number
  /** Instance ids remembered per key (default 4). */
  history?: number
}

export class InstanceBook {
  readonly #holdMs: number
  readonly #maxDevices: number
  readonly #history: number
  readonly #clock: Clock
  readonly #seen = new Map<DeviceId, string[]>()
  readonly #flagged = new Map<DeviceId, number>()
  /** Clones found (each key once per hold). */
  clones = 0

  constructor (init: InstanceBookInit = {}, clock: Clock = systemClock) {
    this.#holdMs = init.holdMs ?? 600_000
    this.#maxDevices = Math.max(1, init.maxDevices ?? 4096)
    this.#history = Math.max(2, init.history ?? 4)
    this.#clock = clock
  }

  /** True while `id` is kept out as cloned. */
  cloned (id: DeviceId): boolean {
    const until = this.#flagged.get(id)
    if (until === undefined) return false
    if (this.#clock.now() < until) return true
    this.#flagged.delete(id)
    return false
  }

  /** At a handshake: throws ERR_CLONED_IDENTITY for a cloned key (found now, or still held), else remembers the instance. */
  check (id: DeviceId, instance: Uint8Array | undefined): void {
    if (this.cloned(id)) throw cloned(id, 'found earlier: every instance is kept out for a while')
    if (instance === undefined) return
    const key = toHex(instance)
    const seen = this.#seen.get(id) ?? []
    this.#seen.delete(id) // re-inserted: most recently seen last
    const at = seen.indexOf(key)
    if (at === -1) {
      seen.push(key)
      if (seen.length > this.#history) seen.shift()
    }
    if (this.#seen.size >= this.#maxDevices) this.#seen.delete(this.#seen.keys().next().value as DeviceId)
    this.#seen.set(id, seen)
    if (at === -1 || at === seen.length - 1) return // a new instance (first seen, or a restart), or the latest again
    this.clones++
    this.#flagged.set(id, this.#clock.now() + this.#holdMs)
    throw cloned(id, `instance ${key.slice(0, 8)}… came back after a newer one: two devices are running with this key at once`)
  }
}

function cloned (id: DeviceId, why: string): Error {
  return meshError('ERR_CLONED_IDENTITY', `${id} is a cloned identity (${why}); give each device its own key (iotmesh keygen) and enroll it`, { details: { id } })
}
