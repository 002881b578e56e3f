import type { DeviceId } from '../../shared/index.js'
import type { Claim } from './interest.js'

/**
 * INTEREST claims waiting to be checked (interest.ts `update`), so that no message, and no
 * neighbour, takes the event loop for long: a message files its claims here, and they are
 * checked at once while the turn's work budget lasts (`workPerTurn` units, interest.ts WORK_*,
 * shared by every message of the turn), the rest on the clock's next turns (macrotasks), one
 * neighbour after the other (round robin), so a neighbour that floods waits behind its own
 * claims while the others' go through. Honest traffic is checked without delay.
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
  #budget: number
  #fresh = true
  /** Set while the next turn is scheduled (the router's business). */
  scheduled = false

  constructor (init: { perNeighbour: number, workPerTurn: number }) {
    this.perNeighbour = Math.max(1, init.perNeighbour)
    this.workPerTurn = Math.max(1, init.workPerTurn)
    this.#budget = this.workPerTurn
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

  /** What is left of this turn's work budget. */
  get budget (): number { return this.#budget }

  /** A new turn: the whole budget again (the router calls it from a clock timer, a macrotask). */
  refill (): void {
    this.#budget = this.workPerTurn
    this.#fresh = true
  }

  /**
   * Hands claims to `check`, one neighbour after another, while this turn's budget lasts (`cost`
   * says what the next claim would take; on a fresh turn one claim is taken whatever it costs).
   * Messages that arrive in one turn share its budget, however many they are. Returns true
   * while claims are left for another turn.
   */
  drain (cost: (claim: Claim) => number, check: (via: DeviceId, claim: Claim) => void): boolean {
    while (this.#size > 0) {
      const [via, queue] = this.#pending.entries().next().value as [DeviceId, Map<DeviceId, Claim>]
      const [subscriber, claim] = queue.entries().next().value as [DeviceId, Claim]
      const work = cost(claim)
      if (!this.#fresh && work > this.#budget) break
      this.#fresh = false
      this.#budget -= work
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
