import { meshError, type Clock, type TimerHandle } from '../../shared/index.js'

/**
 * A token bucket (RFC 2697's "committed burst" in its simplest form): `burst` sends at once, then
 * `rate` per second. It paces a path draining its backlog, so a device coming back after an
 * outage does not flood its links or the broker. Time comes from the injected clock.
 */
export class TokenBucket {
  readonly #rate: number
  readonly #burst: number
  readonly #clock: Clock
  #tokens: number
  #at: number

  constructor (init: { rate: number, burst: number }, clock: Clock) {
    if (!(init.rate > 0) || !Number.isFinite(init.rate)) throw meshError('ERR_BAD_ARGUMENT', `drain rate must be a number of frames per second > 0, got ${init.rate}`)
    if (!Number.isSafeInteger(init.burst) || init.burst < 1) throw meshError('ERR_BAD_ARGUMENT', `drain burst must be an integer ≥ 1, got ${init.burst}`)
    this.#rate = init.rate
    this.#burst = init.burst
    this.#clock = clock
    this.#tokens = init.burst
    this.#at = clock.now()
  }

  /** Ms to wait before the next token is there (0: take one now). */
  wait (): number {
    this.#refill()
    return this.#tokens >= 1 ? 0 : Math.ceil(((1 - this.#tokens) / this.#rate) * 1000)
  }

  /** Takes a token, waiting for it when the bucket is empty; ERR_ABORTED when `signal` fires first. */
  async take (signal: AbortSignal): Promise<void> {
    for (let ms = this.wait(); ms > 0; ms = this.wait()) await sleep(this.#clock, ms, signal)
    this.#tokens -= 1
  }

  #refill (): void {
    const now = this.#clock.now()
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#at) / 1000) * this.#rate)
    this.#at = now
  }
}

/** Waits `ms` on `clock`; rejects with ERR_ABORTED when `signal` fires. */
export async function sleep (clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) throw meshError('ERR_ABORTED', 'stopped while waiting', { cause: signal.reason })
  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clock.clearTimeout(timer)
      reject(meshError('ERR_ABORTED', 'stopped while waiting', { cause: signal.reason }))
    }
    const timer: TimerHandle = clock.setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

/** An AbortSignal that fires after `ms` on `clock` (AbortSignal.timeout, but through the injected clock). */
export function timeoutSignal (clock: Clock, ms: number): AbortSignal {
  const controller = new AbortController()
  clock.setTimeout(() => controller.abort(meshError('ERR_ABORTED', `gave up after ${ms} ms`)), ms)
  return controller.signal
}
