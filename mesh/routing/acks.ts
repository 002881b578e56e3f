import { type Clock, type DeviceId, type Ed25519, type KeyPair } from '../../shared/index.js'
import { MAX_HOLES, ackOf, signAck, type Ack } from './ack.js'

/**
 * The acknowledgement state of one node (ack.ts is the wire format, handlers/ack.ts the handler):
 *
 * - as a **durable subscriber**: which origins delivered something since their last ack (`due`),
 *   and which were active lately (`active`, refreshed every `refreshMs` for `lingerMs`, so a lost
 *   ack is sent again and an origin that only re-sends old frames is answered);
 * - as a **relay**: where each origin's frames came from (`upstream`: the reverse path an ack
 *   takes), and the newest ack forwarded per (subscriber, origin) (`seen`: an ack goes on once),
 *   with the holes it lists (`lacking`: a frame offered again that a subscriber beyond this node
 *   lacks goes on towards it, handlers/data.ts);
 * - as an **origin**: the newest ack of each subscriber (`lacking`, for `MeshNode.reoffer`); the
 *   router emits each verified ack addressed to it.
 *
 * Every table is bounded (least recently used first out), whatever peers send.
 */

export interface AckInit {
  /**
   * How often a durable subscriber sends the acks due, ms (default 50): an ack due goes within about
   * this delay (which acks are due: `delayMs`), and one origin costs at most one signature per
   * interval however fast it sends.
   */
  intervalMs?: number
  /**
   * Delayed acks, ms (default 1000; 0: an ack for every frame at the next tick). As TCP acks every
   * second full segment and delays the others (RFC 9293 §3.8.6.3, RFC 1122 §4.2.3.2), a durable
   * subscriber acks an origin at the next tick once two new frames of it arrived since its last
   * ack, at once for a copy of what it holds (the origin offered it again: it is waiting), and
   * otherwise `delayMs` after the first frame not acked yet. Each ack is a signature here and a
   * check at every relay back and at the origin, as much as the frame itself: with readings every
   * second, half the acks go. The delay stays under an origin's re-offer timeout (2 s at least,
   * firmware-sim mesh-acks.ts), which measures it with the round trip.
   */
  delayMs?: number
  /** A durable subscriber sends the ack of an active origin again this often, ms (default 5000). */
  refreshMs?: number
  /** How long an origin counts as active after its last frame, ms (default 120,000). */
  lingerMs?: number
  /** Most origins in each table (default 4096). */
  maxOrigins?: number
  /** Most (subscriber, origin) pairs whose last forwarded ack is remembered (default 4096). */
  maxPairs?: number
}

export const ACK_DEFAULTS = { intervalMs: 50, delayMs: 1000, refreshMs: 5000, lingerMs: 120_000, maxOrigins: 4096, maxPairs: 4096 } as const

/** A frame offered again is passed on from one node at most once in this long, ms (`passedLately`). */
export const PASS_AGAIN_MS = 1000

/** Most acks one tick of a durable subscriber signs (one ACK message's worth). */
export const ACKS_PER_TICK = 200

export interface AckSource {
  /** Highest number held of `origin`, if any. */
  high: (origin: DeviceId) => number | undefined
  /** Ranges of numbers in [from, to] not held and still inside the replay window, ascending, at most `maxRanges` (ReplayGuard.gaps). */
  gaps: (origin: DeviceId, from: number, to: number, maxRanges: number) => Array<[number, number]>
  /** True while the application still keeps frames of `origin` (a database write pending): its ack waits, still due. */
  holding?: (origin: DeviceId) => boolean
}

export class AckState {
  readonly options: Required<AckInit>
  /** Local durable subscriptions (counted). */
  durable = 0
  readonly #keys: KeyPair
  readonly #clock: Clock
  readonly #ed: Ed25519 | undefined
  readonly #window: number
  readonly #due = new Set<DeviceId>()
  /** origin → when the one frame it sent since its last ack came (a delayed ack), oldest first. */
  readonly #unacked = new Map<DeviceId, number>()
  /** origin → last delivery (clock.now()), oldest first. */
  readonly #active = new Map<DeviceId, number>()
  /** origin → when its ack was last sent. */
  readonly #sent = new Map<DeviceId, number>()
  /** origin → the neighbour its last accepted frame came from, oldest first. */
  readonly #upstream = new Map<DeviceId, DeviceId>()
  /** `${subscriber} ${origin}` → time of the newest ack forwarded or taken. */
  readonly #seen = new Map<string, number>()
  /**
   * origin → subscriber → its newest ack here, for acks that list holes only (an origin whose
   * subscribers hold everything costs one lookup per duplicate); at most `maxPairs` acks in all,
   * the origin least recently acked first out.
   */
  readonly #holes = new Map<DeviceId, Map<DeviceId, Ack>>()
  #holeCount = 0
  /** `${origin} ${seq}` → when a copy offered again was last passed on from here, oldest first. */
  readonly #passed = new Map<string, number>()
  #time = 0

  constructor (init: AckInit & { window: number }, components: { keys: KeyPair, clock: Clock, ed25519?: Ed25519 }) {
    this.options = {
      intervalMs: init.intervalMs ?? ACK_DEFAULTS.intervalMs,
      delayMs: Math.max(0, init.delayMs ?? ACK_DEFAULTS.delayMs),
      refreshMs: init.refreshMs ?? ACK_DEFAULTS.refreshMs,
      lingerMs: init.lingerMs ?? ACK_DEFAULTS.lingerMs,
      maxOrigins: Math.max(1, init.maxOrigins ?? ACK_DEFAULTS.maxOrigins),
      maxPairs: Math.max(1, init.maxPairs ?? ACK_DEFAULTS.maxPairs)
    }
    this.#window = init.window
    this.#keys = components.keys
    this.#clock = components.clock
    this.#ed = components.ed25519
  }

  /** A frame of `origin` was accepted here, from neighbour `from` (undefined: injected). */
  accepted (origin: DeviceId, from: DeviceId | undefined): void {
    if (origin === this.#keys.id) return
    if (from !== undefined) touch(this.#upstream, origin, from, this.options.maxOrigins)
    if (this.durable <= 0) return
    if (!this.#unacked.has(origin) && this.options.delayMs > 0 && !this.#due.has(origin)) {
      // The first frame since the last ack: delayed (`due` takes it after delayMs), unless a second comes.
      if (this.#unacked.size >= this.options.maxOrigins) this.#takeDelayed(this.#unacked.keys().next().value as DeviceId)
      this.#unacked.set(origin, this.#clock.now())
      touch(this.#active, origin, this.#clock.now(), this.options.maxOrigins)
      return
    }
    this.seen(origin)
  }

  /** Moves a delayed ack to the ones due at the next tick. */
  #takeDelayed (origin: DeviceId): void {
    this.#unacked.delete(origin)
    if (this.#due.size < this.options.maxOrigins) this.#due.add(origin)
  }

  /** A frame of `origin` reached this node (first copy or duplicate): a durable subscriber owes it an ack. */
  seen (origin: DeviceId): void {
    if (this.durable <= 0 || origin === this.#keys.id) return
    if (this.#due.size < this.options.maxOrigins) this.#due.add(origin)
    touch(this.#active, origin, this.#clock.now(), this.options.maxOrigins)
  }

  /** The neighbour towards `origin` (the reverse path of its frames), if known. */
  upstream (origin: DeviceId): DeviceId | undefined { return this.#upstream.get(origin) }

  /** The neighbour went away: its reverse paths with it. Costs O(origins); links close rarely. */
  forgetVia (peer: DeviceId): void {
    for (const [origin, via] of this.#upstream) if (via === peer) this.#upstream.delete(origin)
  }

  /**
   * True (and remembered) when `ack` is newer than every ack of its (subscriber, origin) seen
   * here: an ack is forwarded and taken once, and an old one replayed is refused.
   */
  fresh (ack: Pick<Ack, 'subscriber' | 'origin' | 'time'>): boolean {
    const key = `${ack.subscriber} ${ack.origin}`
    const last = this.#seen.get(key)
    return last === undefined || ack.time > last
  }

  /** Remembers `ack` as the newest of its (subscriber, origin), with its holes. */
  remember (ack: Ack): void {
    touch(this.#seen, `${ack.subscriber} ${ack.origin}`, ack.time, this.options.maxPairs)
    let bySubscriber = this.#holes.get(ack.origin)
    if (bySubscriber?.delete(ack.subscriber) === true) { // its previous ack's holes are replaced
      this.#holeCount--
      if (bySubscriber.size === 0) this.#holes.delete(ack.origin)
    }
    if (ack.holes.length === 0) return
    if (bySubscriber === undefined || bySubscriber.size === 0) {
      bySubscriber = new Map()
    } else {
      this.#holes.delete(ack.origin) // most recent last
    }
    this.#holes.set(ack.origin, bySubscriber)
    bySubscriber.set(ack.subscriber, ack)
    this.#holeCount++
    while (this.#holeCount > this.options.maxPairs) {
      const [oldest, subscribers] = this.#holes.entries().next().value as [DeviceId, Map<DeviceId, Ack>]
      this.#holeCount -= subscribers.size
      this.#holes.delete(oldest)
    }
  }

  /**
   * The durable subscribers whose newest ack seen here lists `seq` of `origin` as a hole: signed
   * word that they lack it although they hold later frames (a frame lost on its way to them).
   */
  lacking (origin: DeviceId, seq: number): DeviceId[] {
    const bySubscriber = this.#holes.get(origin)
    if (bySubscriber === undefined) return []
    const out: DeviceId[] = []
    for (const [subscriber, ack] of bySubscriber) if (ack.holes.some(([from, to]) => seq >= from && seq <= to)) out.push(subscriber)
    return out
  }

  /**
   * True when `seq` of `origin` was passed on from here in the last `PASS_AGAIN_MS` (`passed`):
   * one frame costs at most one send per hop per interval, however often neighbours send it (an
   * origin offers again every 2 s, mesh-acks.ts). Marked only once a copy's signature held, so a
   * forged copy cannot take the turn of the genuine one.
   */
  passedLately (origin: DeviceId, seq: number): boolean {
    return this.#clock.now() - (this.#passed.get(`${origin} ${seq}`) ?? -Infinity) < PASS_AGAIN_MS
  }

  passed (origin: DeviceId, seq: number): void {
    touch(this.#passed, `${origin} ${seq}`, this.#clock.now(), this.options.maxPairs)
  }

  /**
   * One tick of a durable subscriber: signs the acks due, then refreshes active origins not acked
   * for `refreshMs`; at most ACKS_PER_TICK signatures. Returns [origin, signed ack] pairs.
   */
  due (source: AckSource, reachable: (origin: DeviceId) => boolean): Array<[DeviceId, Uint8Array]> {
    if (this.durable <= 0) { this.#due.clear(); this.#unacked.clear(); return [] }
    const now = this.#clock.now()
    // Delayed acks whose time came (oldest first: the map is in the order their first frame came).
    for (const [origin, since] of this.#unacked) {
      if (now - since < this.options.delayMs || this.#due.size >= this.options.maxOrigins) break // the rest at a later tick
      this.#takeDelayed(origin)
    }
    const origins: DeviceId[] = []
    for (const origin of this.#due) {
      if (origins.length >= ACKS_PER_TICK) break
      this.#due.delete(origin)
      this.#unacked.delete(origin) // this ack covers them
      origins.push(origin)
    }
    for (const [origin, at] of this.#active) {
      if (origins.length >= ACKS_PER_TICK) break
      if (now - at > this.options.lingerMs) { this.#active.delete(origin); this.#sent.delete(origin); continue }
      if (this.#unacked.has(origin)) continue // a delayed ack: its own time comes
      if (now - (this.#sent.get(origin) ?? -Infinity) >= this.options.refreshMs && !origins.includes(origin)) origins.push(origin)
    }
    const out: Array<[DeviceId, Uint8Array]> = []
    for (const origin of origins) {
      if (!reachable(origin)) continue // no reverse path yet: refreshed once its frames come through a link
      if (source.holding?.(origin) === true) {
        if (this.#due.size < this.options.maxOrigins) this.#due.add(origin) // acked at the first tick after the write
        continue
      }
      let high = source.high(origin)
      if (high === undefined || high < 0) continue
      // One range more than an ack lists: where the ack must stop when they do not all fit (ackOf).
      const gaps = source.gaps(origin, Math.max(0, high - this.#window + 1), high, MAX_HOLES + 1)
      // The highest numbers taken back (MeshNode.unaccept: their keeping failed) are not held: the ack
      // stops below them. A range that ends at `high` is the last one, whatever the cap above.
      const top = gaps[gaps.length - 1]
      if (top !== undefined && top[1] === high) { high = top[0] - 1; gaps.pop() }
      if (high < 0) continue
      const ack = ackOf(high, gaps)
      this.#time = Math.max(this.#time + 1, Math.floor(this.#clock.wall()))
      out.push([origin, signAck({ keys: this.#keys, origin, high: ack.high, holes: ack.holes, time: this.#time, ed25519: this.#ed })])
      touch(this.#sent, origin, now, this.options.maxOrigins)
    }
    return out
  }

  clear (): void {
    this.#due.clear()
    this.#unacked.clear()
    this.#active.clear()
    this.#sent.clear()
    this.#upstream.clear()
    this.#seen.clear()
    this.#holes.clear()
    this.#holeCount = 0
    this.#passed.clear()
  }
}

/** Sets `key` as the most recent entry of `map`, evicting the oldest past `max`. */
function touch<K, V> (map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key)
  map.set(key, value)
  if (map.size > max) map.delete(map.keys().next().value as K)
}
