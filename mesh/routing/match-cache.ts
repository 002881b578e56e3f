import type { DeviceId } from '../../shared/index.js'

/**
 * Which subscribers a topic (or an origin) interests, remembered until some route's filters
 * change: a frame then costs a lookup, not a match of every filter of every subscriber (a table
 * of thousands of subscribers with 32 filters each would otherwise cost each frame ~10^5 matches).
 * Bounded: `maxKeys` keys (oldest out) and `maxIds` subscriber ids in all (then it starts over).
 */
export class MatchCache {
  readonly #maxKeys: number
  readonly #maxIds: number
  readonly #entries = new Map<string, { generation: number, subscribers: DeviceId[] }>()
  #generation = 0
  #ids = 0
  #computed = 0

  constructor (init: { maxKeys?: number, maxIds?: number } = {}) {
    this.#maxKeys = Math.max(1, init.maxKeys ?? 1024)
    this.#maxIds = Math.max(1, init.maxIds ?? 65_536)
  }

  /** Answers computed rather than found (for tests and benchmarks). */
  get computed (): number { return this.#computed }

  /** Every answer is stale from now on (a route came, went, or changed its filters). */
  invalidate (): void { this.#generation++ }

  /** Bumped by `invalidate`: what was derived from the filters before it is stale. */
  get generation (): number { return this.#generation }

  /** The subscribers for `key` if known since the last change (a miss: compute them and `set` them). */
  peek (key: string): DeviceId[] | undefined {
    const hit = this.#entries.get(key)
    return hit?.generation === this.#generation ? hit.subscribers : undefined
  }

  /** Remembers the subscribers computed for `key` (within the bounds); returns them. */
  set (key: string, subscribers: DeviceId[]): DeviceId[] {
    const hit = this.#entries.get(key)
    this.#computed++
    if (hit !== undefined) this.#ids -= hit.subscribers.length
    else if (this.#entries.size >= this.#maxKeys) {
      const [oldest, entry] = this.#entries.entries().next().value as [string, { subscribers: DeviceId[] }]
      this.#entries.delete(oldest)
      this.#ids -= entry.subscribers.length
    }
    if (this.#ids + subscribers.length > this.#maxIds) {
      this.#entries.clear()
      this.#ids = 0
    }
    this.#entries.set(key, { generation: this.#generation, subscribers })
    this.#ids += subscribers.length
    return subscribers
  }
}
