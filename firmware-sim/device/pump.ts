import { isMeshError, type Clock } from '../../shared/index.js'
import type { Outbox } from '../outbox/types.js'
import type { AckBook } from './acks.js'
import { TokenBucket, sleep, timeoutSignal } from './rate.js'
import type { PathSender, SendOutcome } from './types.js'

/**
 * Moves one path's frames from the outbox to the path: oldest first, paced by a token bucket,
 * at most `sender.window` awaiting their outcome. A frame leaves the path's queue only when the
 * path took it (acknowledged in the outbox); a send that fails because the path went down
 * leaves it there, and the next drain, when the path is back, starts again from the oldest
 * frame not taken. So frames reach each path in sequence order, and none is lost to a dead path
 * (only to the outbox's bound, which drops the oldest and counts it).
 *
 * A drain resumes after the last frame handed to the path (`#after`), not from the oldest frame
 * not acknowledged: on the mesh path up to `window` (256) frames await their end-to-end acks at
 * once, and walking past them at every wake (every reading put, every send settled) cost
 * O(window) async steps per wake (5 % of a 300-device TCP fleet's thread, 50 entries walked per
 * frame sent). Every send that ends without the frame acknowledged in the outbox (failed, or its
 * ack failed) moves the place back to before that frame, and the drain under way stops there, so
 * the frame goes again before newer ones.
 */
export interface PumpCallbacks {
  onOutcome: (seq: number, outcome: SendOutcome) => void
  onFailed: (seq: number, error: unknown) => void
  onError: (error: Error) => void
}

export class Pump {
  readonly #outbox: Outbox
  readonly #sender: PathSender
  readonly #acks: AckBook
  readonly #clock: Clock
  readonly #bucket: TokenBucket
  readonly #callbacks: PumpCallbacks
  readonly #inflight = new Set<number>()
  readonly #controller = new AbortController()
  /** The seq after which the next drain starts: the last frame handed to the path, or before one that went back. */
  #after = 0
  /** A send ended without its frame acknowledged since the drain under way started: that drain stops. */
  #rewound = false
  /** Resolvers of whoever waits for a change: a wake-up, a send settled. */
  #waiters = new Set<() => void>()
  #dirty = true
  #running: Promise<void> | undefined

  constructor (init: { outbox: Outbox, sender: PathSender, acks: AckBook, clock: Clock, rate: number, burst: number }, callbacks: PumpCallbacks) {
    this.#outbox = init.outbox
    this.#sender = init.sender
    this.#acks = init.acks
    this.#clock = init.clock
    this.#bucket = new TokenBucket({ rate: init.rate, burst: init.burst }, init.clock)
    this.#callbacks = callbacks
  }

  get inflight (): number { return this.#inflight.size }

  start (): void {
    this.#running ??= this.#loop(this.#controller.signal)
  }

  /** Something changed: a frame was put, the path came up. */
  wake (): void {
    this.#dirty = true
    this.#notify()
  }

  /** Stops taking frames, then waits (at most `timeoutMs`) for those in flight to settle. */
  async stop (timeoutMs: number): Promise<void> {
    this.#controller.abort()
    this.#notify()
    await this.#running
    if (this.#inflight.size === 0) return
    const signal = timeoutSignal(this.#clock, timeoutMs)
    await this.#until(() => this.#inflight.size === 0, signal).catch(() => {})
  }

  async #loop (signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        if (!this.#dirty) await this.#until(() => this.#dirty, signal)
        this.#dirty = false
        if (!this.#sender.up) continue
        // Sends from an earlier drain settle first: a frame whose send failed goes again before newer
        // ones. Not on a path whose sends settle only after a round trip (the mesh's end-to-end acks):
        // there new frames go at once, and the path keeps the order within its receivers' replay window.
        if (this.#sender.overlap !== true) await this.#until(() => this.#inflight.size === 0 || !this.#sender.up, signal)
        await this.#drain(signal)
      } catch (err) {
        if (signal.aborted) return
        this.#callbacks.onError(err as Error)
        await sleep(this.#clock, 1000, signal).catch(() => {})
      }
    }
  }

  async #drain (signal: AbortSignal): Promise<void> {
    this.#rewound = false
    for await (const entry of this.#outbox.pending(this.#sender.path, { signal, after: this.#after })) {
      if (!this.#sender.up || this.#rewound) return
      if (this.#inflight.has(entry.seq)) continue // after a rewind: the frames before the one that went back may still be in flight
      await this.#bucket.take(signal)
      await this.#until(() => this.#inflight.size < this.#sender.window || !this.#sender.up, signal)
      if (!this.#sender.up || this.#rewound) return
      this.#after = entry.seq
      this.#send(entry.seq, this.#sender.send(entry))
    }
  }

  #send (seq: number, sending: Promise<SendOutcome>): void {
    this.#inflight.add(seq)
    let acked = false
    sending.then(async (outcome) => {
      await this.#acks.ack(this.#sender.path, seq, outcome) // in the outbox before it leaves #inflight: never sent twice
      acked = true
      this.#callbacks.onOutcome(seq, outcome)
    }, (err: unknown) => {
      this.#callbacks.onFailed(seq, err)
    }).catch((err: unknown) => {
      if (!(isMeshError(err, 'ERR_ABORTED'))) this.#callbacks.onError(err as Error)
    }).finally(() => {
      this.#inflight.delete(seq)
      if (!acked) this.#rewind(seq) // out of #inflight first, so the drain that follows takes it
      this.#notify()
    })
  }

  /** `seq` was not taken: the next drain starts at it (sent again once the path is back), and the one under way stops. */
  #rewind (seq: number): void {
    this.#after = Math.min(this.#after, seq - 1)
    this.#rewound = true
    this.#dirty = true
  }

  #notify (): void {
    const waiters = this.#waiters
    this.#waiters = new Set()
    for (const resolve of waiters) resolve()
  }

  /** Resolves once `condition` holds, checking it after every change; ERR_ABORTED-like rejection on `signal`. */
  async #until (condition: () => boolean, signal: AbortSignal): Promise<void> {
    while (!condition()) {
      if (signal.aborted) throw signal.reason
      await new Promise<void>((resolve) => {
        const done = (): void => { signal.removeEventListener('abort', done); this.#waiters.delete(done); resolve() }
        this.#waiters.add(done)
        signal.addEventListener('abort', done, { once: true })
      })
    }
  }
}
