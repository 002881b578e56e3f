import type { DeviceId } from '../../shared/index.js'

/**
 * The new subscribers each neighbour names: INTEREST claims of subscribers this node has no route
 * for, counted distinct per neighbour over a sliding window, so that a neighbour that keeps naming
 * new ones far beyond what an honest one can is found out and scored (handlers/interest.ts; a
 * behavioural penalty, gossipsub v1.1's P7). Each new name costs this node a signature check, and
 * the claims of fresh self-signed subscribers are valid in every part, so their number is the only
 * thing that tells a flood from a relay.
 *
 * What an honest neighbour names: its own table when the link opens (at most its `maxSubscribers`,
 * 4,096 by default, whatever this node takes of it), new versions of the same subscribers every
 * refresh (not new), and the few subscribers that join the fleet later. So a neighbour may name
 * `allowance` distinct new subscribers within two windows of `windowMs`: a name named again moves
 * to the current window (a subscriber this node refused, its table full, re-announced with each
 * version, counts once), and one not named for two windows is forgotten. A name beyond the
 * allowance is refused and not kept (each one an offence).
 *
 * Bounded: at most `allowance` names per neighbour; O(1) per claim. A neighbour's names are
 * forgotten when its link closes (its score is not: score.ts).
 */
export class NewSubscribers {
  readonly allowance: number
  readonly windowMs: number
  readonly #byVia = new Map<DeviceId, Generations>()

  constructor (init: { allowance: number, windowMs: number }) {
    this.allowance = Math.max(1, init.allowance)
    this.windowMs = Math.max(1, init.windowMs)
  }

  /** `via` names `subscriber`, which this node has no route for: true when within `via`'s allowance (kept), false beyond it. */
  name (via: DeviceId, subscriber: DeviceId, now: number): boolean {
    let g = this.#byVia.get(via)
    if (g === undefined) this.#byVia.set(via, g = { current: new Set(), previous: new Set(), since: now })
    this.#roll(g, now)
    if (g.current.has(subscriber)) return true
    if (g.previous.delete(subscriber)) {
      g.current.add(subscriber)
      return true
    }
    if (g.current.size + g.previous.size >= this.allowance) return false
    g.current.add(subscriber)
    return true
  }

  /** Distinct new subscribers `via` named within the last one or two windows. */
  named (via: DeviceId, now: number): number {
    const g = this.#byVia.get(via)
    if (g === undefined) return 0
    this.#roll(g, now)
    return g.current.size + g.previous.size
  }

  /** Forgets what `via` named (its link closed). */
  dropVia (via: DeviceId): void {
    this.#byVia.delete(via)
  }

  #roll (g: Generations, now: number): void {
    const age = now - g.since
    if (age < this.windowMs) return
    g.previous = age < 2 * this.windowMs ? g.current : new Set()
    g.current = new Set()
    g.since = now
  }
}

interface Generations {
  current: Set<DeviceId>
  previous: Set<DeviceId>
  /** When `current` began, ms. */
  since: number
}
