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
 *
 * A process that hosts a whole fleet (the simulator: 500 devices, 500 sampling timers and 2,000
 * path checks a second) spends tens of milliseconds per turn on timers, and a fixed 4 ms gave
 * delivery a shrinking share of the CPU: its devices kept 99.9 % of their schedule while their
 * frames piled up in the links' send queues (2.6 MB across 1,483 links, nothing dropped, nothing
 * counted) and half of them, or far fewer on a loaded machine, reached the gateway (issue 15). So a
 * Turn may take a `share`: after a turn that ran out of time (a backlog), the next may deliver for
 * `share` times as long as the rest of the loop took in between (at least `sliceMs`, at most
 * `maxSliceMs`), so delivery gets up to `share / (share + 1)` of the loop while timers still run
 * every turn. The fleet's memory network uses one with `share` SLICE_SHARE (firmware-sim/fleet).
 * The turn every link shares by default keeps the fixed 4 ms (share 0): one device per process,
 * where the rest of the loop is short, and where a longer slice let a neighbour's flood of validly
 * signed frames (test/adversarial/data.test.ts) take the device's sampling timer further off
 * its schedule.
 */

/** Time a turn of the event loop may spend delivering messages, across every link of the process, at least. */
export const SLICE_MS = 4
/** A fleet's share: delivery may take this many times as long as the rest of the loop took (3 / 4 of it while both have work). */
export const SLICE_SHARE = 3
/** …and never more than this in one turn (how late a timer of the process may run because of delivery). */
export const MAX_SLICE_MS = 50

export class Turn {
  readonly sliceMs: number
  readonly share: number
  readonly maxSliceMs: number
  #start: number | undefined
  /** This turn's slice (ms); when the turn before delivered for the last time (its `open` said yes), and whether it ran out. */
  #slice: number
  #lastOpen = 0
  #ranOut = false
  #waiting: Array<() => void> = []
  #starved: Array<() => void> = []
  #armed = false

  constructor (sliceMs = SLICE_MS, init: { share?: number, maxSliceMs?: number } = {}) {
    this.sliceMs = sliceMs
    this.share = Math.max(0, init.share ?? 0)
    this.maxSliceMs = Math.max(sliceMs, init.maxSliceMs ?? MAX_SLICE_MS)
    this.#slice = sliceMs
  }

  /** True while this turn has time left; the first call in a turn starts it. */
  open (now: number): boolean {
    if (this.#start === undefined) {
      // With a backlog (the turn before ran out), the rest of the loop is from its last delivery to now.
      const rest = this.#ranOut ? now - this.#lastOpen : 0
      this.#slice = Math.min(this.maxSliceMs, Math.max(this.sliceMs, rest * this.share))
      this.#ranOut = false
      this.#start = now
      this.#lastOpen = now
      this.#arm()
      return true
    }
    if (now - this.#start >= this.#slice) {
      this.#ranOut = true
      return false
    }
    this.#lastOpen = now
    return true
  }

  /** The slice of the current (or last) turn, ms. */
  get slice (): number { return this.#slice }

  /**
   * Runs `fn` in a later turn, after the timers and I/O that were waiting; in the order asked,
   * except that `starved` ones (they found the turn used up before they delivered anything) go
   * first: otherwise a busy link, asking again as soon as it used up a turn, would always be ahead
   * of a quiet one that asked in the same turn, and the quiet one would wait for as long as the
   * busy one had messages (round robin, not first come).
   *
   * Once a `fn` has used up the turn, the rest are not called in it: they stay queued, ahead of
   * the starved, in their order, for the next turn (as each would have queued itself again, having
   * found the turn used up). Calling each only to be told so cost a pass over every link waiting,
   * every turn: at 300 TCP devices in one process, thousands of links a turn and a tenth of the
   * thread (issue 15).
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
      let i = 0
      pumping++
      try {
        while (i < waiting.length) {
          (waiting[i++] as () => void)()
          if (this.#start !== undefined && this.#ranOut) break // used up: the rest wait for the next turn
        }
      } finally {
        pumping--
        if (i < waiting.length) {
          this.#starved = [...waiting.slice(i), ...this.#starved]
          this.#arm()
        }
      }
    })
  }
}

let pumping = 0

/**
 * True while a Turn runs what waited for a later turn: that is itself the end of a turn of the
 * event loop (a `setImmediate` callback), so what a link would leave for the end of the turn
 * (tcp-link.ts) goes at the next tick instead of waiting for the end of the next turn.
 */
export function inTurnEnd (): boolean {
  return pumping > 0
}

/** The turn every link of this process shares (they share one event loop): fixed 4 ms slices. */
export const sharedTurn = new Turn()
