/**
 * Sequence gaps of one device that are real losses: numbers the device used that never reached
 * the gateway. A gap counts only once it has stayed open for `settleMs`, the time a device's
 * outbox and the mesh's catch-up take to bring a late reading (a hybrid device's two paths, a
 * reconnect, a partition healing), so the figure does not rise and fall with every reordering.
 *
 * A restart is no loss. A device's sequence file reserves numbers in blocks (shared/node/sequence-file.ts:
 * each reservation is the previous one plus `block`, from 0), so after a crash the first number is the
 * first of a fresh block and the rest of the old block was never used. A forward jump that lands on
 * the first number of a block (seq ≡ 1 mod block), one that follows an online status after an earlier
 * one (a known restart), or one larger than `restartJump` (a fresh in-memory sequence) opens a *tail*:
 * numbers that may never have been used, so not counted. A reading that later arrives inside a tail
 * (the old run's outbox draining after the restart) proves that the numbers of that run below it were
 * used: they become an ordinary gap, counted if they never come.
 *
 * Bounded: at most `maxHoles` open ranges per device; past it the lowest range is closed (counted,
 * when it is a gap), so a device that signs numbers out of order costs a fixed amount of memory and
 * work per reading.
 */

export interface SeqGapsInit {
  /** How long a missing number may take to arrive before it counts. Default 120 s. */
  settleMs?: number
  /** Open ranges kept per device. Default 32. */
  maxHoles?: number
}

export type JumpKind = 'gap' | 'tail'

interface Hole {
  /** First and last missing number, inclusive. */
  from: number
  to: number
  kind: JumpKind
  /** When it opened (ms): a gap counts once `settleMs` has passed. */
  since: number
}

export class SeqGaps {
  readonly #settleMs: number
  readonly #maxHoles: number
  /** Sorted by `from`, disjoint. */
  #holes: Hole[] = []
  /** Numbers of gaps closed by the bound: counted for good. */
  #closed = 0

  constructor (init: SeqGapsInit = {}) {
    this.#settleMs = Math.max(0, init.settleMs ?? 120_000)
    this.#maxHoles = Math.max(1, init.maxHoles ?? 32)
  }

  /** A forward jump: the numbers `from`..`to` were skipped (a gap, or a restart's tail). */
  skipped (from: number, to: number, kind: JumpKind, now: number): void {
    if (to < from) return
    this.#holes.push({ from, to, kind, since: now })
    this.#bound()
  }

  /** A reading below the highest seen: it fills its number; below it, a tail's numbers become a gap. */
  late (seq: number, now: number): void {
    const i = this.#holes.findIndex((h) => h.from <= seq && seq <= h.to)
    if (i < 0) return
    const hole = this.#holes[i] as Hole
    const parts: Hole[] = []
    if (hole.from < seq) parts.push(hole.kind === 'tail' ? { from: hole.from, to: seq - 1, kind: 'gap', since: now } : { ...hole, to: seq - 1 })
    if (seq < hole.to) parts.push({ ...hole, from: seq + 1 })
    this.#holes.splice(i, 1, ...parts)
    this.#bound()
  }

  /** Numbers missing for longer than `settleMs` (and those closed by the bound). */
  lost (now: number): number {
    let n = this.#closed
    for (const h of this.#holes) if (h.kind === 'gap' && now - h.since >= this.#settleMs) n += h.to - h.from + 1
    return n
  }

  /** Numbers missing, not yet for `settleMs`: they may still come. */
  pending (now: number): number {
    let n = 0
    for (const h of this.#holes) if (h.kind === 'gap' && now - h.since < this.#settleMs) n += h.to - h.from + 1
    return n
  }

  /** Every gap counted as lost now, open ranges forgotten (a rotation folds an old key's entry into its successor's). */
  close (now: number): number {
    const n = this.lost(now) + this.pending(now)
    this.#holes = []
    this.#closed = 0
    return n
  }

  #bound (): void {
    this.#holes.sort((a, b) => a.from - b.from)
    while (this.#holes.length > this.#maxHoles) {
      const lowest = this.#holes.shift() as Hole
      if (lowest.kind === 'gap') this.#closed += lowest.to - lowest.from + 1
    }
  }
}

/**
 * What a forward jump from `last` to `seq` is: a restart's tail (the first number of a sequence-file
 * block, a known restart, a jump past `restartJump`) or a gap.
 */
export function jumpKind (last: number, seq: number, options: { block: number, restartJump: number, restartKnown: boolean }): JumpKind {
  if (options.restartKnown || seq - last - 1 > options.restartJump) return 'tail'
  return options.block > 1 && (seq - 1) % options.block === 0 ? 'tail' : 'gap'
}
