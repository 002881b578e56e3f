import type { DeviceId } from './identity.js'

/**
 * A per-origin anti-replay window, as IPsec's (RFC 4303 §3.4.3, RFC 6479): for each origin the
 * highest sequence number accepted and a bitmap of the `window` numbers below it. A number is
 * refused when it was already accepted, or when it is `window` or more below the highest.
 *
 * Memory is bounded whatever the number of origins, and strangers cannot evict what is known.
 * Windows live in two tiers:
 *   - known origins (`protect`): devices vouched for by a trusted source (`'pin'`: a roster, a
 *     link handshake, DNS-SD, a retained status, an operator) or that earned it with verified
 *     frames (`'earn'`). At most `maxOrigins` of them; a pin may evict the least recently used
 *     earned window (then the least recently used pinned one), an earn never evicts anything:
 *     when the tier is full the origin stays a stranger.
 *   - strangers: every other origin, at most `maxStrangers`, least recently used first out. A
 *     flood of fresh origins churns this tier only, so it can never make a known device's old
 *     frame fresh again (an evicted stranger's history is forgotten: size the tiers above the fleet).
 * Both tiers evict into `evictions`. Defaults: 65,536 known + 4,096 strangers × 1,024-bit windows
 * (128 bytes each), about 9 MiB at most.
 *
 * Each window may also remember a fingerprint of the last `prints` frames it accepted (`mark`,
 * `print`): two different frames signed for one (origin, seq) are a cloned identity (verifier.ts).
 */

export type ReplayVerdict = 'ok' | 'replay' | 'too-old'

/** How an origin becomes known: vouched for by a trusted source, or earned with verified frames. */
export type Trust = 'pin' | 'earn'

interface OriginWindow {
  /** Highest accepted; -1 while nothing was (a window made by `protect`). */
  high: number
  bits: Uint8Array
  /** Frames accepted while a stranger. */
  hits: number
  /** Ring of (seq, fingerprint) of recent frames, allocated on the first `mark`. */
  seqs?: Float64Array
  prints?: Uint32Array
}

/** A window to put back (`ReplayGuard.restore`). */
export interface ReplayRestore {
  origin: DeviceId
  high: number
  seen: Iterable<number>
  floor?: number
  trust?: Trust
}

export interface ReplayGuardInit {
  /** Sequence numbers per window (rounded up to whole bytes, at least 8). Default 1024. */
  window?: number
  /** Most known origins. Default 65,536. */
  maxOrigins?: number
  /** Most strangers (origins nobody vouched for). Default min(maxOrigins, 4096). */
  maxStrangers?: number
  /** Fingerprints remembered per origin (`mark`). Default 16. */
  prints?: number
}

export interface ReplayGuard {
  /** What `accept` would say, without recording anything. */
  check (origin: DeviceId, seq: number): ReplayVerdict
  /** Records `seq` when it is fresh; returns the verdict. */
  accept (origin: DeviceId, seq: number): ReplayVerdict
  /**
   * Takes back the acceptance of `seq` (still inside the window), so the same number is fresh
   * again: for an accepted frame whose keeping failed (a gateway database write), which its sender
   * will send again because it was never acknowledged. `high` stays.
   */
  forget (origin: DeviceId, seq: number): void
  /** Highest sequence number accepted from `origin`, if tracked. */
  high (origin: DeviceId): number | undefined
  /**
   * Up to `limit` numbers in [from, to] not accepted yet and still inside the window: what a
   * node asks its peers for when they announce they have more (catch-up after a partition).
   */
  missing (origin: DeviceId, from: number, to: number, limit?: number): number[]
  /**
   * The numbers `missing` lists, as ranges: each [first, last] of numbers in [from, to] not
   * accepted yet and inside the window, ascending, at most `maxRanges` (default 16) of them. What a
   * durable subscriber's acks list as holes (mesh/routing/ack.ts), found without a list of every number.
   */
  gaps (origin: DeviceId, from: number, to: number, maxRanges?: number): Array<[number, number]>
  /**
   * Makes `origin` known (see above); false when earning and the known tier is full (the origin
   * stays a stranger). Idempotent; a pin upgrades an earned origin.
   */
  protect (origin: DeviceId, trust?: Trust): boolean
  /** True when `origin` is in the known tier. */
  known (origin: DeviceId): boolean
  /** Frames accepted from `origin` while it was a stranger (0 when known or untracked). */
  hits (origin: DeviceId): number
  /** Remembers a fingerprint of the frame just accepted as (origin, seq). */
  mark (origin: DeviceId, seq: number, print: number): void
  /** The fingerprint remembered for (origin, seq), if it is still in the origin's ring. */
  print (origin: DeviceId, seq: number): number | undefined
  /**
   * Puts back a window saved elsewhere (a restarted gateway's database): `high` and the numbers
   * accepted inside the window below it (`seen`); every number at or below `floor` counts as
   * accepted too (its record was pruned). `trust` puts it in the known tier, none among strangers.
   * Replaces what the guard held for `origin`. Numbers outside (high - window, high] are ignored.
   */
  restore (state: ReplayRestore): void
  /** Sequence numbers per window (as rounded). */
  readonly window: number
  /** Origins tracked, both tiers. */
  readonly size: number
  /** Of which strangers. */
  readonly strangers: number
  readonly evictions: number
}

/** A replay guard: per origin, a window of sequence numbers seen, refusing one seen before or too old. */
export function createReplayGuard (init: ReplayGuardInit = {}): ReplayGuard {
  const window = Math.max(8, Math.ceil((init.window ?? 1024) / 8) * 8)
  const maxOrigins = Math.max(1, init.maxOrigins ?? 65_536)
  const maxStrangers = Math.max(1, init.maxStrangers ?? Math.min(maxOrigins, 4096))
  const ring = Math.max(1, init.prints ?? 16)
  // Map order is the LRU order of each tier (a use deletes and re-inserts).
  const pinned = new Map<DeviceId, OriginWindow>()
  const earned = new Map<DeviceId, OriginWindow>()
  const strangers = new Map<DeviceId, OriginWindow>()
  let evictions = 0

  const find = (origin: DeviceId): OriginWindow | undefined => pinned.get(origin) ?? earned.get(origin) ?? strangers.get(origin)
  const tierOf = (origin: DeviceId): Map<DeviceId, OriginWindow> | undefined =>
    pinned.has(origin) ? pinned : earned.has(origin) ? earned : strangers.has(origin) ? strangers : undefined
  const fresh = (): OriginWindow => ({ high: -1, bits: new Uint8Array(window / 8), hits: 0 })
  const evictOldest = (tier: Map<DeviceId, OriginWindow>): void => {
    tier.delete(tier.keys().next().value as DeviceId)
    evictions++
  }

  const bit = (w: OriginWindow, seq: number): boolean => (((w.bits[(seq % window) >> 3] as number) >> (seq & 7)) & 1) === 1
  const verdict = (w: OriginWindow | undefined, seq: number): ReplayVerdict => {
    if (w === undefined || seq > w.high) return 'ok'
    if (seq <= w.high - window) return 'too-old'
    return bit(w, seq) ? 'replay' : 'ok'
  }

  return {
    check: (origin, seq) => verdict(find(origin), seq),
    accept (origin, seq) {
      let tier = tierOf(origin)
      let w = tier?.get(origin)
      const result = verdict(w, seq)
      if (result !== 'ok') return result
      if (w === undefined || tier === undefined) {
        w = fresh()
        tier = strangers
        if (strangers.size >= maxStrangers) evictOldest(strangers)
      } else {
        tier.delete(origin) // re-inserted below: Map order is the LRU order
        if (w.high >= 0 && seq > w.high) {
          if (seq - w.high >= window) w.bits.fill(0)
          else for (let s = w.high + 1; s < seq; s++) w.bits[(s % window) >> 3] = (w.bits[(s % window) >> 3] as number) & ~(1 << (s & 7))
        }
      }
      w.bits[(seq % window) >> 3] = (w.bits[(seq % window) >> 3] as number) | (1 << (seq & 7))
      if (seq > w.high) w.high = seq
      if (tier === strangers) w.hits++
      tier.set(origin, w)
      return 'ok'
    },
    forget (origin, seq) {
      const w = find(origin)
      if (w === undefined || seq > w.high || seq <= w.high - window) return
      w.bits[(seq % window) >> 3] = (w.bits[(seq % window) >> 3] as number) & ~(1 << (seq & 7))
    },
    high (origin) {
      const high = find(origin)?.high
      return high === undefined || high < 0 ? undefined : high
    },
    missing (origin, from, to, limit = 256) {
      const w = find(origin)
      const out: number[] = []
      const start = Math.max(from, w === undefined || w.high < 0 ? from : w.high - window + 1, 0)
      for (let seq = start; seq <= to && out.length < limit; seq++) {
        if (verdict(w, seq) === 'ok') out.push(seq)
      }
      return out
    },
    gaps (origin, from, to, maxRanges = 16) {
      const w = find(origin)
      const out: Array<[number, number]> = []
      if (maxRanges < 1) return out
      if (w === undefined || w.high < 0) {
        const start = Math.max(from, 0)
        if (start <= to) out.push([start, to]) // nothing accepted: all of it is fresh
        return out
      }
      const start = Math.max(from, w.high - window + 1, 0)
      // Within the window the bits say; above `high` every number is fresh (one range to `to`).
      const last = Math.min(to, w.high)
      let open = -1
      for (let seq = start; seq <= last; seq++) {
        const fresh = !bit(w, seq)
        if (fresh && open < 0) open = seq
        else if (!fresh && open >= 0) {
          out.push([open, seq - 1])
          open = -1
          if (out.length >= maxRanges) return out
        }
      }
      if (open >= 0) out.push([open, last])
      if (to > last && Math.max(start, last + 1) <= to) {
        const top = out[out.length - 1]
        if (top !== undefined && top[1] === last) top[1] = to
        else if (out.length < maxRanges) out.push([Math.max(start, last + 1), to])
      }
      return out
    },
    protect (origin, trust = 'pin') {
      if (pinned.has(origin)) return true
      const w = earned.get(origin)
      if (w !== undefined) {
        if (trust === 'pin') { earned.delete(origin); pinned.set(origin, w) }
        return true
      }
      if (pinned.size + earned.size >= maxOrigins) {
        if (trust === 'earn') return false
        evictOldest(earned.size > 0 ? earned : pinned)
      }
      const stranger = strangers.get(origin)
      strangers.delete(origin)
      ;(trust === 'pin' ? pinned : earned).set(origin, stranger ?? fresh())
      return true
    },
    known: (origin) => pinned.has(origin) || earned.has(origin),
    hits: (origin) => strangers.get(origin)?.hits ?? 0,
    mark (origin, seq, print) {
      const w = find(origin)
      if (w === undefined) return
      if (w.seqs === undefined || w.prints === undefined) {
        w.seqs = new Float64Array(ring).fill(-1)
        w.prints = new Uint32Array(ring)
      }
      w.seqs[seq % ring] = seq
      w.prints[seq % ring] = print >>> 0
    },
    print (origin, seq) {
      const w = find(origin)
      if (w?.seqs === undefined || w.prints === undefined || w.seqs[seq % ring] !== seq) return undefined
      return w.prints[seq % ring]
    },
    restore ({ origin, high, seen, floor = -1, trust }) {
      if (!Number.isSafeInteger(high) || high < 0) return
      pinned.delete(origin)
      earned.delete(origin)
      strangers.delete(origin)
      const w = fresh()
      w.high = high
      const set = (s: number): void => { w.bits[(s % window) >> 3] = (w.bits[(s % window) >> 3] as number) | (1 << (s & 7)) }
      for (let s = Math.max(0, high - window + 1); s <= Math.min(high, floor); s++) set(s)
      for (const s of seen) if (Number.isSafeInteger(s) && s <= high && s > high - window) set(s)
      set(high)
      const tier = trust === 'pin' ? pinned : trust === 'earn' ? earned : strangers
      if (tier === strangers) {
        if (strangers.size >= maxStrangers) evictOldest(strangers)
      } else if (pinned.size + earned.size >= maxOrigins) {
        evictOldest(earned.size > 0 ? earned : pinned)
      }
      tier.set(origin, w)
    },
    window,
    get size () { return pinned.size + earned.size + strangers.size },
    get strangers () { return strangers.size },
    get evictions () { return evictions }
  }
}
