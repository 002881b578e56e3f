/**
 * Delivery in slices of the event loop. A TCP chunk may hold a 64 KiB record of hundreds of
 * messages, and an in-memory link hands over its whole queue in one microtask; the router
 * verifies a signature for each (50–400 µs). Delivered in one go, one busy neighbour holds the
 * event loop for tens of milliseconds and the node's own timers (sampling, keepalive) run late.
 * So every link of the process delivers while the current turn of the event loop has time left
 * (`SLICE_MS`), then stops reading and continues in a later turn (`setImmediate`: after the
 * timers and I/O that waited), round robin between the links that waited. This is a yield, not a
 * delay. Time comes from the caller's clock (`now()`): the system clock measures the real time the
 * turn took; a manual clock (a seeded fleet replayed on it) never ends a turn, so delivery stays
 * synchronous and a replay is event for event the same (real-time slices would make it depend on
 * how busy the machine was). Links on different clocks in one process share a turn harmlessly: at
 * worst one yields a turn early.
 */

/** Time a turn of the event loop may spend delivering messages, across every link of the process. */
export const SLICE_MS = 4

export class Turn {
  readonly sliceMs: number
  #start: number | undefined
  #waiting: Array<() => void> = []
  #starved: Array<() => void> = []
  #armed = false

  constructor (sliceMs = SLICE_MS) {
    this.sliceMs = sliceMs
  }

  /** True while this turn has time left; the first call in a turn starts it. */
  open (now: number): boolean {
    if (this.#start === undefined) {
      this.#start = now
      this.#arm()
      return true
    }
    return now - this.#start < this.sliceMs
  }

  /**
   * Runs `fn` in a later turn, after the timers and I/O that were waiting; in the order asked,
   * except that `starved` ones (they found the turn used up before they delivered anything) go
   * first: otherwise a busy link, asking again as soon as it used up a turn, would always be ahead
   * of a quiet one that asked in the same turn, and the quiet one would wait for as long as the
   * busy one had messages (round robin, not first come).
   */
  later (fn: () => void, starved = false): void {
    if (starved) this.#starved.push(fn)
    else this.#waiting.push(fn)
    this.#arm()
  }

  #arm (): void {
    if (this.#armed) return
    this.#armed = true
    setImmediate(() => {
      this.#armed = false
      this.#start = undefined
      const waiting = [...this.#starved, ...this.#waiting]
      this.#starved = []
      this.#waiting = []
      for (const fn of waiting) fn()
    })
  }
}

/** The turn every link of this process shares (they share one event loop). */
export const sharedTurn = new Turn()
