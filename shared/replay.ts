import type { DeviceId } from './identity.js'

/**
 * A per-origin anti-replay window, as IPsec's (RFC 4303 §3.4.3, RFC 6479): for each origin the
 * highest sequence number accepted and a bitmap of the `window` numbers below it. A number is
 * refused when it was already accepted, or when it is `window` or more below the highest.
 *
 * Memory is bounded whatever the number of origins: at most `maxOrigins` are tracked (least
 * recently used first out, counted in `evictions`). An evicted origin's history is forgotten,
 * so size `maxOrigins` above the fleet: the default (65,536 origins × 1,024-bit window) is 8 MiB.
 */

export type ReplayVerdict = 'ok' | 'replay' | 'too-old'

interface OriginWindow {
  high: number
  bits: Uint8Array
}

export interface ReplayGuard {
  /** What `accept` would say, without recording anything. */
  check (origin: DeviceId, seq: number): ReplayVerdict
  /** Records `seq` when it is fresh; returns the verdict. */
  accept (origin: DeviceId, seq: number): ReplayVerdict
  /** Highest sequence number accepted from `origin`, if tracked. */
  high (origin: DeviceId): number | undefined
  /**
   * Up to `limit` numbers in [from, to] not accepted yet and still inside the window: what a
   * node asks its peers for when they announce they have more (catch-up after a partition).
   */
  missing (origin: DeviceId, from: number, to: number, limit?: number): number[]
  readonly size: number
  readonly evictions: number
}

export function createReplayGuard (init: { window?: number, maxOrigins?: number } = {}): ReplayGuard {
  const window = Math.max(8, Math.ceil((init.window ?? 1024) / 8) * 8)
  const maxOrigins = init.maxOrigins ?? 65_536
  const origins = new Map<DeviceId, OriginWindow>()
  let evictions = 0

  const bit = (w: OriginWindow, seq: number): boolean => (((w.bits[(seq % window) >> 3] as number) >> (seq & 7)) & 1) === 1
  const verdict = (w: OriginWindow | undefined, seq: number): ReplayVerdict => {
    if (w === undefined || seq > w.high) return 'ok'
    if (seq <= w.high - window) return 'too-old'
    return bit(w, seq) ? 'replay' : 'ok'
  }

  return {
    check: (origin, seq) => verdict(origins.get(origin), seq),
    accept (origin, seq) {
      let w = origins.get(origin)
      const result = verdict(w, seq)
      if (result !== 'ok') return result
      if (w === undefined) {
        w = { high: seq, bits: new Uint8Array(window / 8) }
        if (origins.size >= maxOrigins) {
          origins.delete(origins.keys().next().value as DeviceId)
          evictions++
        }
      } else {
        origins.delete(origin) // re-inserted below: Map order is the LRU order
        if (seq > w.high) {
          if (seq - w.high >= window) w.bits.fill(0)
          else for (let s = w.high + 1; s < seq; s++) w.bits[(s % window) >> 3] = (w.bits[(s % window) >> 3] as number) & ~(1 << (s & 7))
          w.high = seq
        }
      }
      w.bits[(seq % window) >> 3] = (w.bits[(seq % window) >> 3] as number) | (1 << (seq & 7))
      if (seq > w.high) w.high = seq
      origins.set(origin, w)
      return 'ok'
    },
    high: (origin) => origins.get(origin)?.high,
    missing (origin, from, to, limit = 256) {
      const w = origins.get(origin)
      const out: number[] = []
      const start = Math.max(from, w === undefined ? from : w.high - window + 1, 0)
      for (let seq = start; seq <= to && out.length < limit; seq++) {
        if (verdict(w, seq) === 'ok') out.push(seq)
      }
      return out
    },
    get size () { return origins.size },
    get evictions () { return evictions }
  }
}
