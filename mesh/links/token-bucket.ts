/**
 * A token bucket (the meter of RFC 2697 §2, single rate): `rate` tokens a second flow in, up to
 * `capacity`; a unit of work takes its tokens or waits. Time comes from the caller (a `Clock`'s
 * `now()`, in ms), so a test with a manual clock replays exactly. `charge` may leave the bucket in
 * debt (work already done that cannot be refused, such as bytes already read); while in debt,
 * `take` fails until the debt is repaid. Debt is bounded by `capacity`, so one large charge never
 * stalls a link for longer than one burst's worth of time.
 */
export class TokenBucket {
  readonly rate: number
  readonly capacity: number
  #tokens: number
  #at: number

  /** `rate` tokens per second, at most `capacity` held; starts full at `now`. */
  constructor (rate: number, capacity: number, now: number) {
    this.rate = rate
    this.capacity = Math.max(capacity, 1)
    this.#tokens = this.capacity
    this.#at = now
  }

  #refill (now: number): void {
    if (now <= this.#at) return
    this.#tokens = Math.min(this.capacity, this.#tokens + (now - this.#at) * this.rate / 1000)
    this.#at = now
  }

  /** Tokens in the bucket now (negative while in debt). */
  tokens (now: number): number {
    this.#refill(now)
    return this.#tokens
  }

  /** Takes `n` tokens if the bucket holds them (a request above `capacity` needs a full bucket). */
  take (n: number, now: number): boolean {
    this.#refill(now)
    const need = Math.min(n, this.capacity)
    if (this.#tokens < need) return false
    this.#tokens -= need
    return true
  }

  /** Takes `n` tokens whatever the bucket holds, leaving it in debt (at most `capacity` deep). */
  charge (n: number, now: number): void {
    this.#refill(now)
    this.#tokens = Math.max(-this.capacity, this.#tokens - n)
  }

  /** Milliseconds until the bucket holds `n` tokens (0 if it does now). */
  waitFor (n: number, now: number): number {
    this.#refill(now)
    const need = Math.min(n, this.capacity)
    return this.#tokens >= need ? 0 : Math.ceil((need - this.#tokens) * 1000 / this.rate)
  }

  /** True when the bucket is full: it remembers nothing a fresh bucket would not. */
  full (now: number): boolean {
    this.#refill(now)
    return this.#tokens >= this.capacity
  }
}
