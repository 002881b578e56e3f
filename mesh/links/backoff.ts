import type { Random } from '../../shared/index.js'

/**
 * Exponential backoff with jitter (hyperswarm's `lib/retry-timer.js` in spirit): attempt n waits
 * `min(max, initial * factor^n)` ms, shortened by up to `jitter` of itself with a draw from the
 * injected `Random`, so peers that lost the same link do not retry in lockstep, and a test with a
 * seeded `Random` sees exactly the same delays every run.
 */
export interface BackoffInit {
  /** First delay in ms (default 1,000). */
  initial?: number
  /** Largest delay in ms (default 60,000). */
  max?: number
  /** Growth per attempt (default 2). */
  factor?: number
  /** Fraction in [0, 1] of a delay that jitter may take off (default 0.5). */
  jitter?: number
}

export class Backoff {
  readonly #initial: number
  readonly #max: number
  readonly #factor: number
  readonly #jitter: number
  readonly #random: Random
  #attempts = 0

  constructor (init: BackoffInit, random: Random) {
    this.#initial = init.initial ?? 1000
    this.#max = init.max ?? 60_000
    this.#factor = init.factor ?? 2
    this.#jitter = Math.min(1, Math.max(0, init.jitter ?? 0.5))
    this.#random = random
  }

  /** Failed attempts since the last reset. */
  get attempts (): number {
    return this.#attempts
  }

  /** The delay before the next attempt, in whole ms. */
  next (): number {
    const base = Math.min(this.#max, this.#initial * this.#factor ** this.#attempts)
    this.#attempts++
    return Math.round(base * (1 - this.#jitter * this.#random.float()))
  }

  reset (): void {
    this.#attempts = 0
  }
}
