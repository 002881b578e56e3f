import type { DeliveryPath, FsyncPolicy, Outbox } from '../outbox/types.js'
import type { SendOutcome } from './types.js'
import { type Clock, type TimerHandle } from '../../shared/index.js'

type Ack = [DeliveryPath, number, SendOutcome]

/**
 * Acknowledgements of delivered frames, made durable in batches. A disk outbox writes its ack
 * cursor only on flush() (outbox/cursor.ts), so without flushes a crash would send again every
 * frame delivered since the last segment was retired: thousands of repeats for receivers to
 * drop. After each batch of acks the book flushes, following the outbox's fsync policy: `always`
 * at once (coalesced: acks that arrive during a flush go in the next), N ms at most every N ms,
 * `never` only on close. `delivered` is reported once the ack is durable (at once in memory).
 */
export class AckBook {
  readonly #outbox: Outbox
  readonly #policy: FsyncPolicy
  readonly #clock: Clock
  readonly #onDurable: (path: DeliveryPath, seq: number, outcome: SendOutcome) => void
  readonly #onError: (error: Error) => void
  #batch: Ack[] = []
  #flushing: Promise<void> | undefined
  #timer: TimerHandle | undefined
  #lastFlush = -Infinity
  #closed = false

  constructor (init: { outbox: Outbox, policy: FsyncPolicy, clock: Clock, onDurable: (path: DeliveryPath, seq: number, outcome: SendOutcome) => void, onError: (error: Error) => void }) {
    this.#outbox = init.outbox
    this.#policy = init.policy
    this.#clock = init.clock
    this.#onDurable = init.onDurable
    this.#onError = init.onError
  }

  /** Marks `seq` done on `path`: at once in the outbox (so it is not sent again), durable soon. */
  async ack (path: DeliveryPath, seq: number, outcome: SendOutcome): Promise<void> {
    if (this.#closed) return
    await this.#outbox.ack(path, seq)
    this.#batch.push([path, seq, outcome])
    this.#schedule()
  }

  /** Flushes what is pending; no more flushes after. */
  async close (): Promise<void> {
    this.#closed = true
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer)
    this.#timer = undefined
    await this.#flushing
    if (this.#batch.length > 0) await this.#flush()
  }

  /** Forgets acks not yet durable, as a crash does (they are sent again after a restart). */
  abandon (): void {
    this.#closed = true
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer)
    this.#timer = undefined
    this.#batch = []
  }

  #schedule (): void {
    if (this.#closed || this.#flushing !== undefined || this.#timer !== undefined) return
    if (this.#policy === 'never') return this.#report(this.#batch.splice(0))
    const wait = this.#policy === 'always' ? 0 : Math.max(0, this.#lastFlush + this.#policy - this.#clock.now())
    if (wait === 0) {
      void this.#flush()
      return
    }
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined
      void this.#flush()
    }, wait)
  }

  async #flush (): Promise<void> {
    const batch = this.#batch.splice(0)
    this.#flushing = (async () => {
      try {
        await this.#outbox.flush()
      } catch (err) {
        if (!this.#closed) this.#onError(err as Error)
      }
    })()
    await this.#flushing
    this.#flushing = undefined
    this.#lastFlush = this.#clock.now()
    this.#report(batch)
    if (this.#batch.length > 0) this.#schedule()
  }

  #report (batch: Ack[]): void {
    for (const [path, seq, outcome] of batch) this.#onDurable(path, seq, outcome)
  }
}
