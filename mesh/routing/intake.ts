import type { DeviceId } from '../../shared/index.js'
import type { Claim } from './interest.js'
import { NewSubscribers } from './introductions.js'

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
 * declaration of the one it replaces when it has none of its own for the same version), and
 * their declarations hold at most `bytesPerNeighbour` bytes. Before a claim is filed, the new
 * subscribers each neighbour names are counted (`newSubscribers`, introductions.ts: at most
 * `newPerNeighbour` distinct ones within two windows of `newWindowMs`).
 */
export class InterestIntake {
  readonly perNeighbour: number
  readonly bytesPerNeighbour: number
  readonly workPerTurn: number
  /** The new subscribers each neighbour named (introductions.ts). */
  readonly newSubscribers: NewSubscribers
  readonly #pending = new Map<DeviceId, Map<DeviceId, Claim>>()
  /** Bytes of the declarations waiting, per neighbour. */
  readonly #bytes = new Map<DeviceId, number>()
  #size = 0
  #budget: number
  #fresh = true
  /** Set while the next turn is scheduled (the router's business). */
  scheduled = false

  constructor (init: { perNeighbour: number, workPerTurn: number, bytesPerNeighbour?: number, newPerNeighbour?: number, newWindowMs?: number }) {
    this.newSubscribers = new NewSubscribers({ allowance: init.newPerNeighbour ?? Infinity, windowMs: init.newWindowMs ?? 30_000 })
    this.perNeighbour = Math.max(1, init.perNeighbour)
    this.bytesPerNeighbour = Math.max(1, init.bytesPerNeighbour ?? Infinity)
    this.workPerTurn = Math.max(1, init.workPerTurn)
    this.#budget = this.workPerTurn
  }

  /** Claims waiting, all neighbours together. */
  get size (): number { return this.#size }

  /** Files a claim from `via`; false when `via` already has `perNeighbour` claims, or `bytesPerNeighbour` bytes of declarations, waiting (refused). */
  offer (via: DeviceId, claim: Claim): boolean {
    let queue = this.#pending.get(via)
    const waiting = queue?.get(claim.subscriber)
    // A claim sent without the declaration relies on the one sent before it for that version.
    if (claim.declaration === undefined && waiting !== undefined && waiting.version === claim.version && waiting.declaration !== undefined) {
      claim = { ...claim, declaration: waiting.declaration, publicKey: waiting.publicKey }
    }
    if (waiting === undefined && (queue?.size ?? 0) >= this.perNeighbour) return false
    const bytes = this.bytesOf(via) - (waiting?.declaration?.length ?? 0) + (claim.declaration?.length ?? 0)
    if (bytes > this.bytesPerNeighbour) return false
    if (waiting === undefined) this.#size++
    if (queue === undefined) this.#pending.set(via, queue = new Map())
    queue.delete(claim.subscriber)
    queue.set(claim.subscriber, claim)
    this.#bytes.set(via, bytes)
    return true
  }

  /** Bytes of declarations `via` has waiting. */
  bytesOf (via: DeviceId): number { return this.#bytes.get(via) ?? 0 }

  /** Forgets what `via` filed (its link closed). */
  dropVia (via: DeviceId): void {
    this.newSubscribers.dropVia(via)
    this.#size -= this.#pending.get(via)?.size ?? 0
    this.#pending.delete(via)
    this.#bytes.delete(via)
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
      this.#bytes.set(via, this.bytesOf(via) - (claim.declaration?.length ?? 0))
      // Round robin: this neighbour goes to the back of the line.
      this.#pending.delete(via)
      if (queue.size > 0) this.#pending.set(via, queue)
      check(via, claim)
    }
    return this.#size > 0
  }
}
