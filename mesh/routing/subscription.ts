import { topicMatches, validateFilter, type DeviceId, type SenmlPack } from '../../shared/index.js'

/** A verified reading as the application receives it. */
export interface Delivery {
  /** Full topic: iotmesh/<fleet>/<origin>/<device topic>. */
  readonly topic: string
  readonly origin: DeviceId
  readonly seq: number
  /** Sampling time, seconds since the epoch. */
  readonly time: number
  readonly records: SenmlPack
  /** Links travelled: 0 for a local publication. */
  readonly hops: number
  /** The exact signed frame: anyone can verify it again with the origin's public key. */
  readonly frame: Uint8Array
  /** When this node accepted it (ms since the epoch). */
  readonly receivedAt: number
  /** The neighbour it came from; undefined for local publications and injected frames. */
  readonly from: DeviceId | undefined
  /**
   * True when this node asked for it (a WANT: catch-up after this node joined or a link healed,
   * or a frame lost on the way fetched again), not pushed to it as it happened. With a sampling
   * time before the subscription began, it is history, not a live reading (`iotmesh watch`).
   */
  readonly caughtUp?: true
}

/**
 * One `subscribe(filter)`: an async iterator the consumer pulls at its own pace. The buffer is
 * bounded; when the consumer falls behind, the oldest readings are dropped and counted.
 */
export class Subscription implements AsyncIterable<Delivery> {
  readonly filter: string
  readonly #max: number
  readonly #queue: Delivery[] = []
  readonly #waiters: Array<(result: IteratorResult<Delivery>) => void> = []
  readonly #onClose: () => void
  #closed = false
  dropped = 0

  constructor (filter: string, init: { buffer?: number, signal?: AbortSignal, onClose: () => void }) {
    validateFilter(filter)
    this.filter = filter
    this.#max = Math.max(1, init.buffer ?? 1024)
    this.#onClose = init.onClose
    init.signal?.addEventListener('abort', () => this.close(), { once: true })
    if (init.signal?.aborted === true) this.close()
  }

  get closed (): boolean { return this.#closed }

  matches (topic: string): boolean {
    return topicMatches(this.filter, topic)
  }

  push (delivery: Delivery): void {
    if (this.#closed) return
    const waiter = this.#waiters.shift()
    if (waiter !== undefined) {
      waiter({ value: delivery, done: false })
      return
    }
    if (this.#queue.length >= this.#max) {
      this.#queue.shift()
      this.dropped++
    }
    this.#queue.push(delivery)
  }

  close (): void {
    if (this.#closed) return
    this.#closed = true
    this.#onClose()
    for (const waiter of this.#waiters.splice(0)) waiter({ value: undefined, done: true })
  }

  [Symbol.asyncIterator] (): AsyncIterator<Delivery> {
    return {
      next: async () => {
        const value = this.#queue.shift()
        if (value !== undefined) return { value, done: false }
        if (this.#closed) return { value: undefined, done: true }
        return await new Promise<IteratorResult<Delivery>>((resolve) => this.#waiters.push(resolve))
      },
      return: async () => {
        this.close()
        return { value: undefined, done: true }
      }
    }
  }
}
