import type { TelemetryFrame } from '../../shared/index.js'
import { DEFAULT_ORIGIN_RATE, TokenBucket, type Rate } from './budget.js'

/** The share of a neighbour's origin rate (and burst) our own frames use. */
const MARGIN = 0.9

/** One of this node's own frames waiting for its turn. */
export interface Paced { readonly frame: TelemetryFrame, readonly bytes: Uint8Array, readonly hops: number }

/**
 * This node's own frames leave at most as fast as a neighbour takes frames of one origin
 * (`originRate`, budget.ts: 500 a second after a burst of 5,000 by default). A neighbour refuses
 * what comes faster, unchecked, and counts it against the sender's score (handlers/data.ts
 * ERR_OVER_BUDGET): an honest node that published faster than that had its frames refused, left to
 * DIGEST/WANT, and its standing lowered with every neighbour (the anchors harness's one-hop
 * throughput: 163 frames a second against 20,000 offered, issue 15). Frames past the rate wait
 * here, in order, and go on at 90 % of that rate; the node assumes its neighbours take the rate it takes
 * itself (a fleet sets one `originRate` for all). At most one burst waits; beyond
 * that a frame is not pushed at all, only kept in the history, and DIGEST/WANT brings it to
 * whoever asks (frames asked for are outside the origin budget).
 */
export class OwnPacer {
  readonly #bucket: TokenBucket
  readonly #max: number
  #queue: Paced[] = []
  #head = 0

  constructor (rate: Partial<Rate> | undefined, now: number) {
    const theirs = { rate: Math.max(0, rate?.rate ?? DEFAULT_ORIGIN_RATE.rate), burst: Math.max(1, rate?.burst ?? DEFAULT_ORIGIN_RATE.burst) }
    // A margin: a neighbour's bucket empties when our frames arrive there, a little after ours, so
    // it refills a little later; at the full rate the first frame after a burst came a few ms early.
    const r = { rate: theirs.rate * MARGIN, burst: Math.max(1, Math.floor(theirs.burst * MARGIN)) }
    this.#bucket = new TokenBucket(r, now)
    this.#max = r.burst
    this.interval = r.rate > 0 ? Math.max(10, Math.ceil(1000 / r.rate)) : 1000
  }

  /** How long a frame waits for the next token at most, ms: when to look again while frames wait. */
  readonly interval: number

  /** Frames waiting. */
  get size (): number { return this.#queue.length - this.#head }

  /** True when a frame may go now: nothing waits before it and a token is left (taken). */
  take (now: number): boolean {
    return this.size === 0 && this.#bucket.take(now)
  }

  /** Queues a frame for later; false when `max` already wait. */
  hold (item: Paced): boolean {
    if (this.size >= this.#max) return false
    this.#queue.push(item)
    return true
  }

  /** The waiting frames whose turn has come, oldest first. */
  due (now: number): Paced[] {
    const out: Paced[] = []
    while (this.size > 0 && this.#bucket.take(now)) out.push(this.#queue[this.#head++] as Paced)
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) { this.#queue = this.#queue.slice(this.#head); this.#head = 0 }
    return out
  }

  /** Forgets what waits (the node stops). */
  clear (): void { this.#queue = []; this.#head = 0 }
}
