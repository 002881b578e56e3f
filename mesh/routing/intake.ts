import type { DeviceId } from '../../shared/index.js'
import type { Claim } from './interest.js'

/**
 * INTEREST claims waiting to be checked (interest.ts `update`), so that no message, and no
 * neighbour, takes the event loop for long: a message only files its claims here; they are
 * checked later on the clock's macrotasks, a bounded amount of work per turn (`workPerTurn`
 * units, interest.ts WORK_*), one neighbour after the other (round robin), so a neighbour that
 * floods waits behind its own claims while the others' go through.
 *
 * Bounded: at most `perNeighbour` claims wait per neighbour, one per subscriber (a newer claim
 * for the same subscriber replaces the waiting one: only the latest matters; it keeps the
 * declaration of the one it replaces when it has none of its own for the same version).
 */
export class InterestIntake {
  readonly perNeighbour: number
  readonly workPerTurn: number
  readonly #pending = new Map<DeviceId, Map<DeviceId, Claim>>()
  #size = 0
  /** Set while a drain is scheduled (router's business). */
  scheduled = false

  constructor (init: { perNeighbour: number, workPerTurn: number }) {
    this.perNeighbour = Math.max(1, init.perNeighbour)
    this.workPerTurn = Math.max(1, init.workPerTurn)
  }

  /** Claims waiting, all neighbours together. */
  get size (): number { return this.#size }

  /** Files a claim from `via`; false when `via` already has `perNeighbour` claims waiting (refused). */
  offer (via: DeviceId, claim: Claim): boolean {
    let queue = this.#pending.get(via)
    if (queue === undefined) this.#pending.set(via, queue = new Map())
    const waiting = queue.get(claim.subscriber)
    if (waiting !== undefined) {
      queue.delete(claim.subscriber)
      this.#size--
      // A claim sent without the declaration relies on the one sent before it for that version.
      if (claim.declaration === undefined && waiting.version === claim.version && waiting.declaration !== undefined) {
        claim = { ...claim, declaration: waiting.declaration, publicKey: waiting.publicKey }
      }
    } else if (queue.size >= this.perNeighbour) return false
    queue.set(claim.subscriber, claim)
    this.#size++
    return true
  }

  /** Forgets what `via` filed (its link closed). */
  dropVia (via: DeviceId): void {
    this.#size -= this.#pending.get(via)?.size ?? 0
    this.#pending.delete(via)
  }

  /**
   * Hands claims to `check`, one neighbour after another, until `workPerTurn` units are spent
   * (`cost` says what the next claim would take; one claim is always taken). Returns true while
   * claims are left for another turn.
   */
  drain (cost: (claim: Claim) => number, check: (via: DeviceId, claim: Claim) => void): boolean {
    let budget = this.workPerTurn
    let first = true
    while (this.#size > 0) {
      const [via, queue] = this.#pending.entries().next().value as [DeviceId, Map<DeviceId, Claim>]
      const [subscriber, claim] = queue.entries().next().value as [DeviceId, Claim]
      const work = cost(claim)
      if (!first && work > budget) break
      first = false
      budget -= work
      queue.delete(subscriber)
      this.#size--
      // Round robin: this neighbour goes to the back of the line.
      this.#pending.delete(via)
      if (queue.size > 0) this.#pending.set(via, queue)
      check(via, claim)
    }
    return this.#size > 0
  }
}
