import type { DeviceId } from '../../shared/index.js'

/**
 * A bounded recent history of verified frames per origin, for catch-up after partitions: a peer
 * that announces (in a DIGEST) less than we hold gets the rest on request (WANT). Bounded three
 * times: `perOrigin` frames per origin; `maxBytes` overall, counting each origin's and each frame's
 * bookkeeping as well as its bytes (oldest frames of the origins holding the most go first); and
 * `maxStrangers` origins nobody vouched for (the verifier's stranger tier, shared/replay.ts),
 * whose histories go least recently added first. So a flood of fresh origins, one frame each,
 * churns the strangers' share and never evicts a known device's frames (the adversarial
 * fresh-origins test kept +28 MB after a full collection before, about +7 MB with the share).
 */

export interface StoredFrame {
  readonly seq: number
  readonly bytes: Uint8Array
  readonly hops: number
}

interface OriginHistory {
  frames: Map<number, StoredFrame>
  high: number
}

/**
 * What the heap holds beyond a frame's bytes, counted into `maxBytes` (measured on Node 20: about
 * 660 bytes for an origin holding one 150-byte frame, its map, entry and ArrayBuffer).
 */
const ORIGIN_COST = 384
const FRAME_COST = 128

export class History {
  readonly #perOrigin: number
  readonly #maxBytes: number
  readonly #maxStrangers: number
  readonly #origins = new Map<DeviceId, OriginHistory>()
  /** Origins whose frames were added as a stranger's, oldest first. */
  readonly #strangers = new Set<DeviceId>()
  #bytes = 0

  constructor (init: { perOrigin?: number, maxBytes?: number, maxStrangers?: number } = {}) {
    this.#perOrigin = Math.max(1, init.perOrigin ?? 256)
    this.#maxBytes = Math.max(1024, init.maxBytes ?? 16 * 1024 * 1024)
    this.#maxStrangers = Math.max(1, init.maxStrangers ?? 1024)
  }

  get bytes (): number { return this.#bytes }
  get size (): number { return this.#origins.size }

  /** Keeps `frame`; `stranger`: its origin is in nobody's trust (a share of `maxStrangers` origins). */
  add (origin: DeviceId, frame: StoredFrame, stranger = false): void {
    if (stranger) {
      this.#strangers.delete(origin)
      this.#strangers.add(origin)
      if (this.#strangers.size > this.#maxStrangers) this.#forget(this.#strangers.values().next().value as DeviceId)
    } else {
      this.#strangers.delete(origin)
    }
    let entry = this.#origins.get(origin)
    if (entry === undefined) {
      entry = { frames: new Map(), high: frame.seq }
      this.#origins.set(origin, entry)
      this.#bytes += ORIGIN_COST
    }
    if (entry.frames.has(frame.seq)) return
    entry.frames.set(frame.seq, frame)
    if (frame.seq > entry.high) entry.high = frame.seq
    this.#bytes += frame.bytes.length + FRAME_COST
    while (entry.frames.size > this.#perOrigin) this.#evictOldest(origin, entry)
    if (this.#bytes > this.#maxBytes) this.#shrink()
  }

  get (origin: DeviceId, seq: number): StoredFrame | undefined {
    return this.#origins.get(origin)?.frames.get(seq)
  }

  /**
   * The frames held for `origin` with numbers in [from, to], in ascending order. Costs
   * O(min(to - from + 1, frames held)): it walks what is held, never the numbers asked for.
   */
  inRange (origin: DeviceId, from: number, to: number): StoredFrame[] {
    const entry = this.#origins.get(origin)
    if (entry === undefined || to < from) return []
    const out: StoredFrame[] = []
    if (to - from < entry.frames.size) {
      for (let seq = from; seq <= to; seq++) {
        const frame = entry.frames.get(seq)
        if (frame !== undefined) out.push(frame)
      }
      return out
    }
    for (const frame of entry.frames.values()) if (frame.seq >= from && frame.seq <= to) out.push(frame)
    return out.sort((x, y) => x.seq - y.seq)
  }

  /**
   * The lowest and highest sequence numbers held for `origin`, for a DIGEST. O(1): the low end is
   * the oldest of the first few frames kept (as #evictOldest finds it), never below what is held,
   * so a neighbour is never told of a frame this node does not have (that would be a broken
   * promise); a frame of an older number that came late may go unannounced. Scanning every frame
   * here made each DIGEST cost O(entries × perOrigin): with 300 origins it took a simulated fleet's
   * whole core once histories filled (issue 11's soak).
   */
  range (origin: DeviceId): { low: number, high: number } | undefined {
    const entry = this.#origins.get(origin)
    if (entry === undefined || entry.frames.size === 0) return undefined
    return { low: oldestOf(entry), high: entry.high }
  }

  origins (): IterableIterator<DeviceId> {
    return this.#origins.keys()
  }

  #evictOldest (origin: DeviceId, entry: OriginHistory): void {
    const oldest = oldestOf(entry)
    const frame = entry.frames.get(oldest)
    if (frame === undefined) return
    entry.frames.delete(oldest)
    this.#bytes -= frame.bytes.length + FRAME_COST
    if (entry.frames.size === 0) this.#forget(origin)
  }

  /** Drops everything held for `origin`. */
  #forget (origin: DeviceId): void {
    this.#strangers.delete(origin)
    const entry = this.#origins.get(origin)
    if (entry === undefined) return
    for (const frame of entry.frames.values()) this.#bytes -= frame.bytes.length + FRAME_COST
    this.#bytes -= ORIGIN_COST
    this.#origins.delete(origin)
  }

  /**
   * Over `maxBytes`: down to 15/16 of it in one go, the oldest frames of the origins holding the
   * most first (water-filling: the largest are cut to the size of the next, together, until enough
   * is freed). One sort of the origins per maxBytes / 16 added, not a scan of every origin per
   * frame: that scan, run on every frame once a node's history was full, took a simulated fleet of
   * 300 devices from 0.7 of a core to all of it and stopped its delivery (issue 11's soak).
   */
  #shrink (): void {
    const target = this.#maxBytes - Math.floor(this.#maxBytes / 16)
    const largest = [...this.#origins].sort((a, b) => b[1].frames.size - a[1].frames.size)
    let cut = 1 // the first `cut` origins are being cut, all to the same size
    while (this.#bytes > target) {
      const level = largest[0]?.[1].frames.size ?? 0
      if (level === 0) return
      while (cut < largest.length && (largest[cut] as [DeviceId, OriginHistory])[1].frames.size >= level) cut++
      for (let i = 0; i < cut && this.#bytes > target; i++) {
        const [origin, entry] = largest[i] as [DeviceId, OriginHistory]
        if (entry.frames.size > 0) this.#evictOldest(origin, entry)
      }
    }
  }
}

/**
 * The oldest of the first few frames kept for an origin, in O(1). Frames arrive mostly in order,
 * so the first key is nearly always the oldest; a catch-up that inserted older numbers late makes
 * this an overestimate, never one below what is held.
 */
function oldestOf (entry: OriginHistory): number {
  let oldest = Infinity
  let scanned = 0
  for (const seq of entry.frames.keys()) {
    if (seq < oldest) oldest = seq
    if (++scanned >= 8) break
  }
  return oldest
}
