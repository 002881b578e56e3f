/**
 * A set of sequence numbers kept as sorted disjoint ranges: a device's readings arrive mostly in
 * order, so a fleet that counts distinct readings at its gateway holds one range per device plus
 * one per gap, not one entry per reading (a Set of `origin/seq` strings grew by ~1 MiB a minute
 * in a 300-device soak and never shrank).
 */
export class SeqSet {
  /** [low, high] inclusive, ascending, never touching (a gap of at least one between two). */
  readonly #ranges: Array<[number, number]> = []
  #size = 0

  get size (): number { return this.#size }
  /** Ranges held: 1 when every number from the first to the last is in. */
  get ranges (): number { return this.#ranges.length }

  has (seq: number): boolean {
    const i = this.#find(seq)
    const r = this.#ranges[i]
    return r !== undefined && r[0] <= seq && seq <= r[1]
  }

  /** Adds `seq`; false when it was already in. */
  add (seq: number): boolean {
    const ranges = this.#ranges
    const last = ranges[ranges.length - 1]
    if (last !== undefined && seq === last[1] + 1) { // the common case: the next one in order
      last[1] = seq
      this.#size++
      return true
    }
    const i = this.#find(seq)
    const at = ranges[i]
    if (at !== undefined && at[0] <= seq && seq <= at[1]) return false
    const before = ranges[i - 1]
    // `at` is the first range starting above seq (or none); `before` the one below it.
    const joinsBefore = before !== undefined && before[1] + 1 === seq
    const joinsAt = at !== undefined && at[0] - 1 === seq
    if (joinsBefore && joinsAt) {
      before[1] = at[1]
      ranges.splice(i, 1)
    } else if (joinsBefore) {
      before[1] = seq
    } else if (joinsAt) {
      at[0] = seq
    } else {
      ranges.splice(i, 0, [seq, seq])
    }
    this.#size++
    return true
  }

  /** Index of the range holding seq, else of the first range starting above it (binary search). */
  #find (seq: number): number {
    let lo = 0
    let hi = this.#ranges.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      const r = this.#ranges[mid] as [number, number]
      if (r[1] < seq) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}
