import type { DeviceId } from '../../shared/index.js'
import { TokenBucket, type Rate } from './budget.js'

/**
 * The state of route requests (ROUTEREQ, handlers/route-request.ts), RFC 8966 §3.8.2.1 and
 * §3.8.1.2 applied to declared interest: what this node asked for, what it passed on, and how
 * often it re-declares its own interest because someone asked. All of it is bounded and none of
 * it is per neighbour:
 *
 * - asked: the subscribers this node lost its route to and asked for (at most `maxSubscribers`,
 *   the interest table's bound), each asked at most `tries` times, `retryMs` apart and doubling
 *   (§3.8.2.1: a request not answered is sent again, with backoff);
 * - passed: per subscriber, when a request for it was last passed on (at most `maxSubscribers`,
 *   oldest first out): another within `windowMs` is redundant and goes no further (§3.8.1.2), so
 *   however many neighbours ask, a relay passes on at most one request per subscriber per window.
 *   §3.8.1.2 passes on a request with a higher seqno all the same; here the version a request
 *   names is not signed (anyone can name any), so a higher one waits for the window too, else a
 *   flood of ever higher versions would go through every relay to the subscriber. An honest
 *   requester asks again after `retryMs`, past the window;
 * - redeclare: a token bucket on this node's own new versions made for requests (each costs a
 *   signature here and a verification at every node that routes to us): at most `redeclare.burst`
 *   at once and `redeclare.rate` a second after that, whoever asks; one asked for beyond it is
 *   made when the next token comes, once.
 */

export const ROUTE_REQUEST_DEFAULTS = {
  /** How far a request travels (RFC 8966 §3.8.2.1 suggests 64; our routes are at most UNREACHABLE - 1 hops long). */
  hops: 64,
  /** First wait before asking again, ms (doubling). */
  retryMs: 1000,
  /** Most times one loss is asked for. */
  tries: 3,
  /** A request passed on for a subscriber makes others for it at or below its version redundant this long, ms. */
  windowMs: 1000,
  /** New versions of this node's own declaration made because neighbours asked: 4 at once, then one every 2 s. */
  redeclare: { rate: 0.5, burst: 4 } satisfies Rate
} as const

interface Asked { version: number, tries: number }

export class RouteRequests {
  readonly hops: number
  readonly retryMs: number
  readonly tries: number
  readonly windowMs: number
  readonly #max: number
  readonly #asked = new Map<DeviceId, Asked>()
  readonly #passed = new Map<DeviceId, number>()
  readonly #redeclare: TokenBucket
  readonly #redeclareRate: Rate
  /** A new version of our own was asked for beyond the bucket: made when the next token comes. */
  redeclarePending = false

  constructor (init: { maxSubscribers: number, hops?: number, retryMs?: number, tries?: number, windowMs?: number, redeclare?: Partial<Rate> }, now: number) {
    const d = ROUTE_REQUEST_DEFAULTS
    this.#max = Math.max(1, init.maxSubscribers)
    this.hops = Math.max(1, Math.min(d.hops, init.hops ?? d.hops))
    this.retryMs = Math.max(1, init.retryMs ?? d.retryMs)
    this.tries = Math.max(1, init.tries ?? d.tries)
    this.windowMs = Math.max(0, init.windowMs ?? d.windowMs)
    this.#redeclareRate = { rate: Math.max(0, init.redeclare?.rate ?? d.redeclare.rate), burst: Math.max(1, init.redeclare?.burst ?? d.redeclare.burst) }
    this.#redeclare = new TokenBucket(this.#redeclareRate, now)
  }

  /** Subscribers asked for and not answered yet. */
  get asking (): number { return this.#asked.size }

  /** A loss of the route to `subscriber` (whose version we hold is `version`): true when it is to be asked for now (not already being asked). */
  ask (subscriber: DeviceId, version: number): boolean {
    if (this.#asked.has(subscriber) || this.#asked.size >= this.#max) return false
    this.#asked.set(subscriber, { version, tries: 1 })
    return true
  }

  /** When to look again at a request sent `tries` times, ms from now. */
  backoff (tries: number): number { return this.retryMs * 2 ** (tries - 1) }

  /**
   * At a retry: the version to ask for again when it is still unanswered and has tries left
   * (`lost`: the route is still lost), else undefined (and it is forgotten).
   */
  retry (subscriber: DeviceId, lost: boolean, version: number): Asked | undefined {
    const asked = this.#asked.get(subscriber)
    if (asked === undefined) return undefined
    if (!lost || asked.tries >= this.tries) {
      this.#asked.delete(subscriber)
      return undefined
    }
    asked.tries++
    asked.version = version
    return asked
  }

  /** True when a request for `subscriber` is to be passed on (none within the window: not redundant, RFC 8966 §3.8.1.2); records it. */
  pass (subscriber: DeviceId, now: number): boolean {
    const last = this.#passed.get(subscriber)
    if (last !== undefined && now - last < this.windowMs) return false
    this.#passed.delete(subscriber)
    if (this.#passed.size >= this.#max) this.#passed.delete(this.#passed.keys().next().value as DeviceId)
    this.#passed.set(subscriber, now)
    return true
  }

  /** Requests remembered as passed on (for tests). */
  get passed (): number { return this.#passed.size }

  /**
   * Someone asked for a newer version of our own declaration: 0 when one may be made now (a token
   * taken), else the ms until the next token (the caller makes it then, once: `redeclarePending`).
   */
  redeclare (now: number): number {
    if (this.#redeclare.take(now)) return 0
    const rate = this.#redeclareRate.rate / 1000
    return rate <= 0 ? Infinity : Math.ceil((1 - this.#redeclare.tokens(now)) / rate)
  }

  clear (): void {
    this.#asked.clear()
    this.#passed.clear()
    this.redeclarePending = false
  }
}
