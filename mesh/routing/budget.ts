import type { RoutingMessage } from './messages.js'

/**
 * Per-peer budgets: how much of each message kind one neighbour may make this node read, as token
 * buckets (one per link and kind, refilled at `rate` units a second up to `burst`). A message is
 * admitted before it is decoded when its kind's bucket holds a token, and dropped unread (counted,
 * ERR_OVER_BUDGET) when it does not; once decoded, a control message is charged for its entries
 * (a KEY of 200 keys costs 200), so a bucket may go into debt (at most one burst) and the next
 * messages of that kind wait for it to refill. A DATA message costs 1. One bucket is not a message
 * kind: `fresh`, spent by a frame of an origin this node holds no replay window for, once decoded
 * and before its signature is checked (handlers/data.ts), whose excess is refused without blame.
 *
 * The defaults are generous: an honest neighbour never meets them (a relay of a 1,000-device fleet
 * opens a link with 1,000 KEYs and a DIGEST of 1,000 origins; the `paths` benchmark pushes about
 * 4,500 frames a second over one link), and frames this node asked for (WANT) are credited ahead,
 * so catch-up after a partition is never throttled. What exceeds them costs the sender its peer
 * score (score.ts), `fresh` excepted.
 */

export interface Rate {
  /** Units a second. */
  rate: number
  /** Most units at once (the bucket's size). */
  burst: number
}

export type BudgetKind = 'data' | 'fresh' | 'hello' | 'digest' | 'want' | 'interest' | 'key' | 'keyreq' | 'peers' | 'ack' | 'cmd' | 'revoke' | 'config' | 'cred' | 'fleet' | 'routereq' | 'other'

export type Budgets = Record<BudgetKind, Rate>

/** Per link. Data in frames; fresh in frames of origins this node holds no replay window for; control kinds in entries (keys, kids, origins, subscribers, peers). */
export const DEFAULT_BUDGETS: Readonly<Budgets> = Object.freeze({
  data: { rate: 5000, burst: 10_000 },
  // Frames of fresh origins (no replay state here yet), checked before their signature (handlers/data.ts): each costs a
  // signature check and new state in every table an origin has (key, replay window, history, origin budget, the next
  // DIGEST), which a flood of fresh origins made the node's longest work (test/adversarial/data.test.ts, 65,536 origins).
  // An honest relay meets it only on a new link to a fleet of over 2,048 devices that all publish in its first seconds; a
  // subscriber fetches what was refused (WANT: frames asked for are exempt). No blame: what a flood costs is bounded here.
  // The rate keeps one flooding link to about 2 % of a core (a signature check and the state: ~0.3 ms an origin), and
  // the 12 inbound slots of Sybils together to about a quarter.
  fresh: { rate: 64, burst: 2048 },
  // One HELLO opens every link; a second one is never needed.
  hello: { rate: 1 / 60, burst: 4 },
  digest: { rate: 2000, burst: 10_000 },
  want: { rate: 1000, burst: 4000 },
  interest: { rate: 2000, burst: 10_000 },
  key: { rate: 2000, burst: 10_000 },
  keyreq: { rate: 1000, burst: 4000 },
  peers: { rate: 100, burst: 1000 },
  // Each ack entry may cost a signature check: a durable subscriber sends at most one per origin per 50 ms.
  ack: { rate: 1000, burst: 4000 },
  // Commands and results relayed or taken: no signature is checked on the way (the target checks), and what a
  // neighbour may have in flight is bounded apart (commands.ts); a device executes 5 a second per issuer.
  cmd: { rate: 200, burst: 1000 },
  // Revocations: a link opens with the whole set (a fleet's worth); a new one costs at most one check per owner.
  revoke: { rate: 20, burst: 4000 },
  // Configurations: a link opens with the fleet's (one per target); a new version costs at most one check per owner.
  config: { rate: 20, burst: 2000 },
  // Credentials of origins and issuers (handlers/credential.ts): one per origin a neighbour relays to this node, before its
  // first frame (a link that opens onto a fleet's traffic: one per origin, as KEY). One held already costs a decode and a lookup;
  // a new one at most one check per owner, and one that fails costs its sender its score (a forger is banned within a few).
  cred: { rate: 1000, burst: 10_000 },
  // Signed fleet files (handlers/fleet.ts): a link opens with the chain (at most 16); a new version costs at most one check per owner.
  fleet: { rate: 1, burst: 32 },
  // Route requests (handlers/route-request.ts): one entry per subscriber a neighbour lost its route to, asked again
  // at most 3 times in 3 s; each costs a lookup and at most one entry sent on (de-duplicated per subscriber, 1 a second).
  routereq: { rate: 500, burst: 4096 },
  // Messages of no known kind (they are refused as malformed once read).
  other: { rate: 10, burst: 100 }
})

/** The budgets with the given overrides, each checked (a rate of 0 is allowed: the kind is never read past its burst). */
export function budgetsOf (overrides: Partial<Record<BudgetKind, Partial<Rate>>> = {}): Budgets {
  const out = {} as Budgets
  for (const kind of Object.keys(DEFAULT_BUDGETS) as BudgetKind[]) {
    const rate = overrides[kind]?.rate ?? DEFAULT_BUDGETS[kind].rate
    const burst = overrides[kind]?.burst ?? DEFAULT_BUDGETS[kind].burst
    out[kind] = { rate: Math.max(0, rate), burst: Math.max(1, burst) }
  }
  return out
}

/** Routing message kinds (messages.ts MSG) by their number. */
const KINDS: readonly BudgetKind[] = ['hello', 'data', 'digest', 'want', 'interest', 'key', 'keyreq', 'peers', 'ack', 'cmd', 'revoke', 'config', 'cred', 'fleet', 'routereq']

/**
 * The kind of a routing message from its first two bytes, before it is decoded: every routing
 * message is a CBOR array (major type 4, RFC 8949 §3.1) whose first item is the kind, a small
 * unsigned integer. Anything else is `other`.
 */
export function kindOf (bytes: Uint8Array): BudgetKind {
  const head = bytes[0]
  const kind = bytes[1]
  if (head === undefined || kind === undefined || head >> 5 !== 4 || kind > 23) return 'other'
  return KINDS[kind] ?? 'other'
}

/** What a decoded message costs: its entries (keys, kids, origins, subscribers, peers), at least 1. */
export function entriesOf (message: RoutingMessage): number {
  const m = message as { entries?: unknown[], keys?: unknown[], kids?: unknown[], peers?: unknown[], revocations?: unknown[], configs?: unknown[], credentials?: unknown[], files?: unknown[] }
  return Math.max(1, m.entries?.length ?? m.keys?.length ?? m.kids?.length ?? m.peers?.length ?? m.revocations?.length ?? m.configs?.length ?? m.credentials?.length ?? m.files?.length ?? 1)
}

/** One token bucket; time in ms from a monotonic clock. */
export class TokenBucket {
  #tokens: number
  #last: number
  readonly #rate: number
  readonly #burst: number

  constructor (rate: Rate, now: number) {
    this.#rate = rate.rate / 1000
    this.#burst = rate.burst
    this.#tokens = rate.burst
    this.#last = now
  }

  tokens (now: number): number {
    if (now > this.#last) {
      this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#last) * this.#rate)
      this.#last = now
    }
    return this.#tokens
  }

  /** Takes one token when there is one. */
  take (now: number): boolean {
    if (this.tokens(now) < 1) return false
    this.#tokens -= 1
    return true
  }

  /** Charges `n` more (after the fact); the debt is bounded by one burst. */
  charge (n: number, now: number): void {
    this.#tokens = Math.max(-this.#burst, this.tokens(now) - n)
  }

  /** Adds `n` tokens ahead of what was asked for, up to `burst + cap` in all. */
  credit (n: number, cap: number, now: number): void {
    this.#tokens = Math.max(this.tokens(now), Math.min(this.#tokens + n, this.#burst + cap))
  }
}

/** The buckets of one link. */
export class LinkBudget {
  readonly #buckets: Record<BudgetKind, TokenBucket>

  constructor (budgets: Budgets, now: number) {
    this.#buckets = {} as Record<BudgetKind, TokenBucket>
    for (const kind of Object.keys(budgets) as BudgetKind[]) this.#buckets[kind] = new TokenBucket(budgets[kind], now)
  }

  /** Before decoding: true (and one unit taken) when a message of `kind` may be read. */
  admit (kind: BudgetKind, now: number): boolean {
    return this.#buckets[kind].take(now)
  }

  /** After decoding: the rest of what the message costs. */
  charge (kind: BudgetKind, units: number, now: number): void {
    if (units > 0) this.#buckets[kind].charge(units, now)
  }

  /** Frames asked for (WANT): admitted ahead of the data budget, up to `cap` beyond it. */
  credit (kind: BudgetKind, units: number, cap: number, now: number): void {
    this.#buckets[kind].credit(units, cap, now)
  }

  tokens (kind: BudgetKind, now: number): number {
    return this.#buckets[kind].tokens(now)
  }
}

/**
 * How many frames of one origin (one signer) this node accepts from its neighbours, whoever relays
 * them: a device publishes on a schedule, so an origin far above any schedule is a flood, also when
 * every frame is validly signed and new (the link budgets above hold per neighbour, and a flooder's
 * own frames are all first copies). Frames this node signs or that are injected (the gateway's
 * broker bridge) are not counted. Default 500 frames a second with a burst of 5,000 (catch-up
 * after a partition re-delivers at most `historyPerOrigin`, 256, per origin): an honest relay never
 * meets it, because it accepted, and so forwards, no more. Raise it for throughput benchmarks.
 */
export const DEFAULT_ORIGIN_RATE: Readonly<Rate> = Object.freeze({ rate: 500, burst: 5000 })

/**
 * One token bucket per origin, for at most `max` origins (oldest first out: an origin evicted
 * starts again with a full burst, so eviction only ever errs towards accepting). Tokens are taken
 * only by frames that verified and were new, so frames that merely claim an origin (forged
 * signatures, replays) cannot spend an honest device's budget.
 */
export class OriginBudgets {
  readonly #rate: Rate
  readonly #max: number
  readonly #buckets = new Map<string, TokenBucket>()

  constructor (rate: Partial<Rate> = {}, max = 4096) {
    this.#rate = { rate: Math.max(0, rate.rate ?? DEFAULT_ORIGIN_RATE.rate), burst: Math.max(1, rate.burst ?? DEFAULT_ORIGIN_RATE.burst) }
    this.#max = Math.max(1, max)
  }

  get size (): number { return this.#buckets.size }

  /** True when `origin` has a token left (none is taken: see `take`). */
  allows (origin: string, now: number): boolean {
    const bucket = this.#buckets.get(origin)
    return bucket === undefined || bucket.tokens(now) >= 1
  }

  /** A frame of `origin` was accepted: takes its token. */
  take (origin: string, now: number): void {
    let bucket = this.#buckets.get(origin)
    if (bucket === undefined) {
      if (this.#buckets.size >= this.#max) this.#buckets.delete(this.#buckets.keys().next().value as string)
      bucket = new TokenBucket(this.#rate, now)
      this.#buckets.set(origin, bucket)
    }
    bucket.take(now)
  }
}
