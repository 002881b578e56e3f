import { TokenBucket } from './token-bucket.js'
import { emptyTransportCounters, type HandshakeRefusal, type TransportCounters } from './types.js'

/**
 * What an unauthenticated peer may cost a listening node, checked before the node does the work:
 * a connection (one file descriptor, one timer) is admitted only while its source address, and
 * the node in all, have few enough handshakes in progress; a HELLO is answered (one Ed25519
 * signature, one X25519 key) only while the source, and the node in all, have budget left
 * (token buckets, RFC 2697 §2). A stateless cookie (DTLS's HelloVerifyRequest, RFC 6347 §4.2.1;
 * WireGuard's cookie reply) would only prove that the source address is real, and over TCP the
 * three-way handshake has proven that already: so the address is what budgets are kept by.
 *
 * Loopback is one host: every process on it shares one address, so a simulated fleet on one
 * machine would be held to one source's share. Loopback sources are held to the totals only,
 * unless `limitLoopback` is set (tests of the per-source limits set it).
 */
export interface HandshakeLimits {
  /**
   * Handshakes in progress at most, counting connections that wait for their first message and
   * refused ones still flushing their REFUSE (default 64). Past it, the oldest of the source with
   * the most in progress is dropped to make room (a newcomer from that very source is refused).
   */
  maxPending?: number
  /** Handshakes in progress per source address (default 8); past it, new connections are closed at once. */
  maxPendingPerSource?: number
  /** Signed replies per second in all (default 100, in bursts of up to twice that). */
  repliesPerSecond?: number
  /** Signed replies per second per source address (default 10, in bursts of up to twice that). */
  repliesPerSecondPerSource?: number
  /** Hold loopback sources to the per-source limits too (default false). */
  limitLoopback?: boolean
  /** Source addresses whose reply budget is remembered at most (default 4,096); full buckets are forgotten first. */
  maxSources?: number
  /**
   * Signed replies per second (bursts of twice that) kept, once the total is spent, for returning
   * peers: a HELLO that claims an id this node was linked with, from the address that link had
   * (default 20). A flood from many addresses spends the total; it does not stop the node's own
   * peers from coming back after a restart unless the attacker also sends from their addresses.
   */
  returningPerSecond?: number
}

/**
 * The defaults, and why. An honest device dials a neighbour once per (re)connect, a few times a
 * minute at worst: 8 at once and 10 a second per address never refuse one. A node answers 100
 * HELLOs a second in all (2–15 ms of signing a second: 0.2–1.5 % of a core) — a 50-device fleet
 * restarting together dials each node about 3 times. 64 handshakes in progress bound what
 * half-open connections hold (the 1,000 took 1,030 file descriptors).
 */
export const DEFAULT_HANDSHAKE_LIMITS: Required<HandshakeLimits> = {
  maxPending: 64,
  maxPendingPerSource: 8,
  repliesPerSecond: 100,
  repliesPerSecondPerSource: 10,
  limitLoopback: false,
  maxSources: 4096,
  returningPerSecond: 20
}

interface Pending {
  readonly source: string
  readonly evict: () => void
}

/** 127.0.0.0/8 and ::1, also as IPv4-mapped IPv6. */
export function isLoopback (address: string): boolean {
  const plain = address.startsWith('::ffff:') ? address.slice(7) : address
  return plain === '::1' || plain.startsWith('127.')
}

export class HandshakeAdmission {
  readonly counters: TransportCounters = emptyTransportCounters()
  readonly limits: Required<HandshakeLimits>
  readonly #now: () => number
  /** In admission order: the first of a source is its oldest. */
  readonly #pending = new Set<Pending>()
  readonly #bySource = new Map<string, Set<Pending>>()
  /** Reply budgets by source, least recently used first. */
  readonly #buckets = new Map<string, TokenBucket>()
  readonly #total: TokenBucket
  readonly #returning: TokenBucket
  /** The address each peer this node was linked with last had (at most `maxSources`, least recently linked first). */
  readonly #lastAddress = new Map<string, string>()

  constructor (limits: HandshakeLimits, now: () => number) {
    const d = DEFAULT_HANDSHAKE_LIMITS
    this.limits = {
      maxPending: limits.maxPending ?? d.maxPending,
      maxPendingPerSource: limits.maxPendingPerSource ?? d.maxPendingPerSource,
      repliesPerSecond: limits.repliesPerSecond ?? d.repliesPerSecond,
      repliesPerSecondPerSource: limits.repliesPerSecondPerSource ?? d.repliesPerSecondPerSource,
      limitLoopback: limits.limitLoopback ?? d.limitLoopback,
      maxSources: limits.maxSources ?? d.maxSources,
      returningPerSecond: limits.returningPerSecond ?? d.returningPerSecond
    }
    this.#now = now
    this.#total = new TokenBucket(this.limits.repliesPerSecond, 2 * this.limits.repliesPerSecond, now())
    this.#returning = new TokenBucket(this.limits.returningPerSecond, 2 * this.limits.returningPerSecond, now())
  }

  /** A link with `id` opened, its peer at `address`: a later HELLO claiming `id` from there is a returning peer. */
  linked (id: string, address: string | undefined): void {
    if (address === undefined || address === '') return
    this.#lastAddress.delete(id)
    if (this.#lastAddress.size >= this.limits.maxSources) {
      const oldest = this.#lastAddress.keys().next().value
      if (oldest !== undefined) this.#lastAddress.delete(oldest)
    }
    this.#lastAddress.set(id, address)
  }

  /** Handshakes in progress now. */
  get pending (): number {
    return this.#pending.size
  }

  #limited (source: string): boolean {
    return this.limits.limitLoopback || !isLoopback(source)
  }

  /**
   * A new connection from `source`. Admitted: returns the function that releases its place (call it
   * once the socket closes or becomes a link). Refused: returns why (counted). `evict` is called if
   * the place is taken back later for a newer connection (`pending-total`).
   */
  admit (source: string, evict: () => void): (() => void) | HandshakeRefusal {
    this.counters.connections++
    const mine = this.#bySource.get(source)
    if (this.#limited(source) && (mine?.size ?? 0) >= this.limits.maxPendingPerSource) return this.#refuse('pending-per-source')
    if (this.#pending.size >= this.limits.maxPending) {
      const victim = this.#oldestOfBusiest()
      if (victim === undefined || victim.source === source) return this.#refuse('pending-total')
      this.#refuse('pending-total')
      this.#release(victim)
      victim.evict()
    }
    const entry: Pending = { source, evict }
    this.#pending.add(entry)
    let set = this.#bySource.get(source)
    if (set === undefined) this.#bySource.set(source, set = new Set())
    set.add(entry)
    return () => { this.#release(entry) }
  }

  /**
   * Before signing a reply to a HELLO from `source` claiming `claimedId`: undefined when the budget
   * allows it (and spends it), else why not (counted). A returning peer (`linked`) may use the
   * reserve once the total is spent; the claim is not proven yet, so the reserve is bounded too.
   */
  reply (source: string, claimedId?: string): HandshakeRefusal | undefined {
    const now = this.#now()
    if (this.#limited(source) && !this.#bucket(source, now).take(1, now)) return this.#refuse('rate-per-source')
    if (!this.#total.take(1, now)) {
      const returning = claimedId !== undefined && this.#lastAddress.get(claimedId) === source
      if (!returning || !this.#returning.take(1, now)) return this.#refuse('rate-total')
    }
    this.counters.replies++
    return undefined
  }

  #refuse (why: HandshakeRefusal): HandshakeRefusal {
    this.counters.refused[why]++
    return why
  }

  #release (entry: Pending): void {
    if (!this.#pending.delete(entry)) return
    const set = this.#bySource.get(entry.source)
    set?.delete(entry)
    if (set?.size === 0) this.#bySource.delete(entry.source)
  }

  /** The oldest handshake of the source with the most in progress (ties: the one holding the oldest). */
  #oldestOfBusiest (): Pending | undefined {
    let busiest: Set<Pending> | undefined
    for (const set of this.#bySource.values()) if (busiest === undefined || set.size > busiest.size) busiest = set
    return busiest?.values().next().value
  }

  #bucket (source: string, now: number): TokenBucket {
    let bucket = this.#buckets.get(source)
    if (bucket !== undefined) {
      this.#buckets.delete(source) // most recently used last
    } else {
      if (this.#buckets.size >= this.limits.maxSources) this.#forgetOne(now)
      const rate = this.limits.repliesPerSecondPerSource
      bucket = new TokenBucket(rate, 2 * rate, now)
    }
    this.#buckets.set(source, bucket)
    return bucket
  }

  /** Forgets a full bucket (it remembers nothing) among the least recently used, else the least recently used. */
  #forgetOne (now: number): void {
    let scanned = 0
    for (const [source, bucket] of this.#buckets) {
      if (bucket.full(now)) {
        this.#buckets.delete(source)
        return
      }
      if (++scanned >= 64) break
    }
    const oldest = this.#buckets.keys().next().value
    if (oldest !== undefined) this.#buckets.delete(oldest)
  }
}
