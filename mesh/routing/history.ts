import { ownBytes, type DeviceId } from '../../shared/index.js'

/**
 * A bounded recent history of verified frames per origin, for catch-up after partitions: a peer
 * that announces (in a DIGEST) less than we hold gets the rest on request (WANT). Bounded three
 * times: `perOrigin` frames per origin; `maxBytes` overall, counting each origin's and each frame's
 * bookkeeping as well as its bytes (oldest frames of the origins holding the most go first); and
 * `maxStrangers` origins nobody vouched for (the verifier's stranger tier, shared/replay.ts),
 * whose histories go least recently added first. So a flood of fresh origins, one frame each,
 * churns the strangers' share and never evicts a known device's frames (the adversarial
 * fresh-origins test kept +28 MB after a full collection before, about +7 MB with the share).
 * And by age: an origin nothing was added for in `idleMs` (default 10 minutes) is forgotten
 * (`forgetIdle`, from the router's tick), except the node's own. A relay takes on the history of
 * every origin whose route moves through it and, before, kept it until `maxBytes` pushed it out:
 * the one-hour soak of 300 devices grew its heap +0.27 MiB/min as the histories held summed over
 * nodes went from 1,206 origins to 2,134 (issue 11). What a relay no longer carries is no use for
 * catch-up: the neighbours on the origin's path hold newer frames, and the origin's outbox keeps
 * what its durable subscribers have not acknowledged. Duplicates are told by the replay window
 * (shared/replay.ts), not by the history, so nothing forgotten here is accepted twice.
 */

export interface StoredFrame {
  readonly seq: number
  readonly bytes: Uint8Array
  readonly hops: number
}

/**
 * One origin's frames in two parts, so the lowest number held is known in O(1) and exactly:
 * `frames` holds what arrived in ascending order (each above every number held then), so its
 * first key is its oldest; `late` holds what arrived below the highest number held (a catch-up's
 * older frames, a device's own frame offered again after the history evicted it), with its
 * numbers kept sorted in `lateSeqs`. The oldest frame held is the lower of the two first ones.
 */
interface OriginHistory {
  readonly frames: Map<number, StoredFrame>
  readonly late: Map<number, StoredFrame>
  readonly lateSeqs: number[]
  /** The highest number held (or held once: never lowered by an eviction). */
  high: number
  /** The highest number the eager path brought (not a catch-up, `add`'s `asked`); never lowered. */
  carriedHigh: number
  /** When a frame was last added (or offered again), ms on the history's clock. */
  touched: number
}

const sizeOf = (entry: OriginHistory): number => entry.frames.size + entry.late.size
const frameOf = (entry: OriginHistory, seq: number): StoredFrame | undefined => entry.frames.get(seq) ?? entry.late.get(seq)

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
  readonly #idleMs: number
  readonly #own: DeviceId | undefined
  readonly #now: () => number
  /** Least recently touched first (each `add` moves its origin to the end), so `forgetIdle` stops at the first it keeps. */
  readonly #origins = new Map<DeviceId, OriginHistory>()
  /** Origins whose frames were added as a stranger's, oldest first. */
  readonly #strangers = new Set<DeviceId>()
  #bytes = 0

  constructor (init: { perOrigin?: number, maxBytes?: number, maxStrangers?: number, idleMs?: number, own?: DeviceId, now?: () => number } = {}) {
    this.#perOrigin = Math.max(1, init.perOrigin ?? 256)
    this.#maxBytes = Math.max(1024, init.maxBytes ?? 16 * 1024 * 1024)
    this.#maxStrangers = Math.max(1, init.maxStrangers ?? 1024)
    this.#idleMs = Math.max(1000, init.idleMs ?? 10 * 60_000)
    this.#own = init.own
    this.#now = init.now ?? Date.now
  }

  get bytes (): number { return this.#bytes }
  get size (): number { return this.#origins.size }

  /**
   * Keeps `frame` (its bytes in a buffer of their own: a view into a received message would keep
   * the whole message alive, uncounted); `stranger`: its origin is in nobody's trust (a share of
   * `maxStrangers` origins); `asked`: it came in answer to a WANT, not by the eager path.
   */
  add (origin: DeviceId, frame: StoredFrame, stranger = false, asked = false): void {
    if (stranger) {
      this.#strangers.delete(origin)
      this.#strangers.add(origin)
      if (this.#strangers.size > this.#maxStrangers) this.#forget(this.#strangers.values().next().value as DeviceId)
    } else {
      this.#strangers.delete(origin)
    }
    let entry = this.#origins.get(origin)
    if (entry === undefined) {
      entry = { frames: new Map(), late: new Map(), lateSeqs: [], high: -Infinity, carriedHigh: -Infinity, touched: 0 }
      this.#bytes += ORIGIN_COST
    } else {
      this.#origins.delete(origin)
    }
    this.#origins.set(origin, entry)
    entry.touched = this.#now()
    const { seq } = frame
    if (!asked && seq > entry.carriedHigh) entry.carriedHigh = seq
    if (frameOf(entry, seq) !== undefined) return
    // Room first, then the frame: a late one is often the oldest, and must not be the one evicted.
    while (sizeOf(entry) >= this.#perOrigin) this.#evictOldest(origin, entry, false)
    const bytes = ownBytes(frame.bytes)
    if (bytes !== frame.bytes) frame = { seq, bytes, hops: frame.hops }
    if (seq > entry.high) {
      entry.frames.set(seq, frame)
      entry.high = seq
    } else {
      entry.late.set(seq, frame)
      entry.lateSeqs.splice(sortedIndex(entry.lateSeqs, seq), 0, seq)
    }
    this.#bytes += frame.bytes.length + FRAME_COST
    if (this.#bytes > this.#maxBytes) this.#shrink()
  }

  get (origin: DeviceId, seq: number): StoredFrame | undefined {
    const entry = this.#origins.get(origin)
    return entry === undefined ? undefined : frameOf(entry, seq)
  }

  /**
   * The frames held for `origin` with numbers in [from, to], in ascending order. Costs
   * O(min(to - from + 1, frames held)): it walks what is held, never the numbers asked for.
   */
  inRange (origin: DeviceId, from: number, to: number): StoredFrame[] {
    const entry = this.#origins.get(origin)
    if (entry === undefined || to < from) return []
    const out: StoredFrame[] = []
    if (to - from < sizeOf(entry)) {
      for (let seq = from; seq <= to; seq++) {
        const frame = frameOf(entry, seq)
        if (frame !== undefined) out.push(frame)
      }
      return out
    }
    for (const frame of entry.frames.values()) if (frame.seq >= from && frame.seq <= to) out.push(frame)
    for (const frame of entry.late.values()) if (frame.seq >= from && frame.seq <= to) out.push(frame)
    return out.sort((x, y) => x.seq - y.seq)
  }

  /**
   * The lowest and highest sequence numbers held for `origin`, for a DIGEST, in O(1) (scanning
   * every frame here made each DIGEST cost O(entries × perOrigin): with 300 origins it took a
   * simulated fleet's whole core once histories filled, issue 11's soak). Exact at the low end,
   * late frames included: an estimate that skipped them left a device's own frame, offered again
   * after the history had evicted it (firmware-sim's mesh-acks.ts), out of every DIGEST for good,
   * and its gateway never asked for it (test/mesh/partition-heal-fleet.test.ts lost 5 to 9).
   */
  range (origin: DeviceId): { low: number, high: number } | undefined {
    const entry = this.#origins.get(origin)
    if (entry === undefined || sizeOf(entry) === 0) return undefined
    return { low: oldestOf(entry), high: entry.high }
  }

  /**
   * The oldest frame of `origin` held that arrived above every number held then: since when the
   * eager path has carried the origin here, leaving out what came late (a catch-up). A relay
   * repairs on incremental DIGESTs only above it (handlers/sync.ts): from `range().low`, each
   * catch-up would lower the bound the next one starts from, and relays would copy each other's
   * histories again (issue 11's collapse: repaired frames 0.9 per relayed one in a 100-device soak).
   */
  carriedSince (origin: DeviceId): number | undefined {
    const first = this.#origins.get(origin)?.frames.keys().next()
    return first === undefined || first.done === true ? undefined : first.value
  }

  /**
   * The newest frame of `origin` the eager path brought here (not a catch-up): a relay repairs
   * gaps below it, never what came after it (handlers/sync.ts). Beyond it the origin's frames
   * went by another path, or are still on their way; pulled on every DIGEST of a neighbour on the
   * new path, each route that moved away from a relay became a second path costing a repair per
   * reading (issue 11's soak: repairs grew with every move until a 300-device fleet saturated its
   * core and collapsed at minute 13).
   */
  carriedHigh (origin: DeviceId): number | undefined {
    const high = this.#origins.get(origin)?.carriedHigh
    return high === undefined || high === -Infinity ? undefined : high
  }

  origins (): IterableIterator<DeviceId> {
    return this.#origins.keys()
  }

  /**
   * Forgets every origin other than the node's own that nothing was added for in `idleMs`; returns
   * how many. Costs O(origins forgotten + 2): the origins are kept least recently touched first.
   */
  forgetIdle (): number {
    const before = this.#now() - this.#idleMs
    let forgotten = 0
    for (const [origin, entry] of this.#origins) {
      if (entry.touched > before) break
      if (origin === this.#own) continue // the node's own frames stay (passed over: one step more a call at most)
      this.#forget(origin)
      forgotten++
    }
    return forgotten
  }

  /** Drops `origin`'s oldest frame, and the origin with its last frame unless `forgetEmpty` is false (it is being added to). */
  #evictOldest (origin: DeviceId, entry: OriginHistory, forgetEmpty = true): void {
    const inOrder = entry.frames.keys().next()
    const late = entry.lateSeqs[0]
    let frame: StoredFrame | undefined
    if (late !== undefined && (inOrder.done === true || late < inOrder.value)) {
      entry.lateSeqs.shift()
      frame = entry.late.get(late)
      entry.late.delete(late)
    } else if (inOrder.done !== true) {
      frame = entry.frames.get(inOrder.value)
      entry.frames.delete(inOrder.value)
    }
    if (frame !== undefined) this.#bytes -= frame.bytes.length + FRAME_COST
    if (forgetEmpty && sizeOf(entry) === 0) this.#forget(origin)
  }

  /** Drops everything held for `origin`. */
  #forget (origin: DeviceId): void {
    this.#strangers.delete(origin)
    const entry = this.#origins.get(origin)
    if (entry === undefined) return
    for (const frame of entry.frames.values()) this.#bytes -= frame.bytes.length + FRAME_COST
    for (const frame of entry.late.values()) this.#bytes -= frame.bytes.length + FRAME_COST
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
    const largest = [...this.#origins].sort((a, b) => sizeOf(b[1]) - sizeOf(a[1]))
    let cut = 1 // the first `cut` origins are being cut, all to the same size
    while (this.#bytes > target) {
      const level = largest[0] === undefined ? 0 : sizeOf(largest[0][1])
      if (level === 0) return
      while (cut < largest.length && sizeOf((largest[cut] as [DeviceId, OriginHistory])[1]) >= level) cut++
      for (let i = 0; i < cut && this.#bytes > target; i++) {
        const [origin, entry] = largest[i] as [DeviceId, OriginHistory]
        if (sizeOf(entry) > 0) this.#evictOldest(origin, entry)
      }
    }
  }
}

/** The oldest number held: the first of the in-order frames or the lowest late one, whichever is lower. */
function oldestOf (entry: OriginHistory): number {
  const inOrder = entry.frames.keys().next()
  return Math.min(inOrder.done === true ? Infinity : inOrder.value, entry.lateSeqs[0] ?? Infinity)
}

/** Where `seq` goes in the ascending `seqs` (binary search). */
function sortedIndex (seqs: readonly number[], seq: number): number {
  let lo = 0
  let hi = seqs.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((seqs[mid] as number) < seq) lo = mid + 1
    else hi = mid
  }
  return lo
}
