import type { DeviceId } from './identity.js'
import type { Clock } from './clock.js'

/**
 * Frames waiting for their signer's key, bounded in time (`holdMs`), in total (`max`) and per
 * signer (`maxPerSigner`), so a flood of frames from unknown signers costs a fixed amount of
 * memory. A held entry leaves by `release(id)` (its key arrived), by its timer (`onExpire`), or
 * by `clear()`.
 */
export class HoldPen<T> {
  readonly #bySigner = new Map<DeviceId, Array<{ item: T, timer: unknown }>>()
  readonly #clock: Clock
  readonly #holdMs: number
  readonly #max: number
  readonly #maxPerSigner: number
  #size = 0

  constructor (init: { clock: Clock, holdMs: number, max: number, maxPerSigner: number }) {
    this.#clock = init.clock
    this.#holdMs = init.holdMs
    this.#max = init.max
    this.#maxPerSigner = init.maxPerSigner
  }

  get size (): number { return this.#size }

  /** Items held for `id` now. */
  count (id: DeviceId): number { return this.#bySigner.get(id)?.length ?? 0 }

  /** Holds `item` under `id`; false (nothing held) when a bound is reached. */
  hold (id: DeviceId, item: T, onExpire: (item: T) => void): boolean {
    let list = this.#bySigner.get(id)
    if (this.#size >= this.#max || (list?.length ?? 0) >= this.#maxPerSigner) return false
    if (list === undefined) {
      list = []
      this.#bySigner.set(id, list)
    }
    const entry = { item, timer: undefined as unknown }
    entry.timer = this.#clock.setTimeout(() => {
      const current = this.#bySigner.get(id)
      const index = current?.indexOf(entry) ?? -1
      if (current === undefined || index < 0) return
      current.splice(index, 1)
      if (current.length === 0) this.#bySigner.delete(id)
      this.#size--
      onExpire(item)
    }, this.#holdMs)
    list.push(entry)
    this.#size++
    return true
  }

  /** Takes every item held for `id`, in arrival order. */
  release (id: DeviceId): T[] {
    const list = this.#bySigner.get(id)
    if (list === undefined) return []
    this.#bySigner.delete(id)
    this.#size -= list.length
    return list.map((entry) => {
      this.#clock.clearTimeout(entry.timer)
      return entry.item
    })
  }

  /** Takes everything (on stop). */
  clear (): T[] {
    return [...this.#bySigner.keys()].flatMap((id) => this.release(id))
  }
}
