import type { Clock } from '../../shared/index.js'

interface Timer {
  readonly id: number
  readonly at: number
  readonly fn: () => void
}

/**
 * A clock that moves only when told (in the spirit of MQTT.js's fake keepalive timer): timers run
 * synchronously inside `advance()`, in due order, and every `setTimeout` is logged in `scheduled`
 * so a test can assert the exact delays a component asked for.
 */
export class ManualClock implements Clock {
  #now = 0
  #nextId = 1
  readonly #timers = new Map<number, Timer>()
  /** The `ms` of every setTimeout call, in order. */
  readonly scheduled: number[] = []
  #waiters: Array<(ms: number) => void> = []

  now (): number {
    return this.#now
  }

  /** Wall time moves with the manual time, from a fixed epoch (2023-11-14). */
  wall (): number {
    return 1_700_000_000_000 + this.#now
  }

  setTimeout (fn: () => void, ms: number): number {
    const id = this.#nextId++
    this.#timers.set(id, { id, at: this.#now + Math.max(0, ms), fn })
    this.scheduled.push(ms)
    const waiters = this.#waiters
    this.#waiters = []
    for (const waiter of waiters) waiter(ms)
    return id
  }

  /** Resolves with the delay of the next timer anyone sets (an explicit signal to wait on). */
  async nextTimer (): Promise<number> {
    return await new Promise((resolve) => this.#waiters.push(resolve))
  }

  clearTimeout (handle: unknown): void {
    this.#timers.delete(handle as number)
  }

  /** Timers still to run. */
  get pending (): number {
    return this.#timers.size
  }

  /** Moves time forward by `ms`, running every timer that falls due (including ones they schedule). */
  advance (ms: number): void {
    const until = this.#now + ms
    for (;;) {
      let due: Timer | undefined
      for (const timer of this.#timers.values()) {
        if (timer.at <= until && (due === undefined || timer.at < due.at || (timer.at === due.at && timer.id < due.id))) due = timer
      }
      if (due === undefined) break
      this.#timers.delete(due.id)
      this.#now = due.at
      due.fn()
    }
    this.#now = until
  }
}
