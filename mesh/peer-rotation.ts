import type { Clock, Random, TimerHandle } from '../shared/index.js'

/**
 * When a node next swaps one dialed peer for a random unlinked one (MeshNode `rotateInterval`).
 * Rotation is what merges an overlay that a partition split into islands, but every swap costs a
 * new link (a TCP connect, X25519 and Ed25519 at both ends, then a full DIGEST, keys, credentials
 * and route claims) and moves the routes that ran over the old one. So the pace backs off while
 * the neighbourhood is quiet: after each step the wait doubles, up to `maxInterval`, the way
 * RFC 6206's Trickle timer slows its gossip while everything is consistent; anything that may mean
 * the network changed (`unsettle`: a link that died, a peer discovered that was not known) brings
 * it back to `interval`, and a step due later than that is drawn again within `interval`. Each
 * wait is drawn in [w/2, w), as Trickle draws its t (RFC 6206 §4.2), so that nodes started
 * together do not all swap in the same second. The links a partition kills bring its islands back
 * to the fast pace; after a heal, any node's next step may pick a peer across (its pool is every
 * candidate not linked), at most `maxInterval` later.
 */
export interface PeerRotationInit {
  /** The first and shortest wait, ms (> 0). */
  interval: number
  /** The longest wait, ms (default 8 × `interval`; never below `interval`). */
  maxInterval?: number
}

export class PeerRotation {
  readonly #clock: Clock
  readonly #random: Random
  readonly #step: () => void
  readonly #interval: number
  readonly #max: number
  #wait: number
  #due = 0
  #timer: TimerHandle | undefined
  #running = false
  #steps = 0

  constructor (init: PeerRotationInit, components: { clock: Clock, random: Random }, step: () => void) {
    this.#clock = components.clock
    this.#random = components.random
    this.#step = step
    this.#interval = init.interval
    this.#max = Math.max(init.interval, init.maxInterval ?? 8 * init.interval)
    this.#wait = this.#interval
  }

  /** The current wait, ms: the next step comes within it (after it, doubled unless unsettled). */
  get wait (): number { return this.#wait }

  /** Steps taken since this pacer was made. */
  get steps (): number { return this.#steps }

  start (): void {
    if (this.#running) return
    this.#running = true
    this.#wait = this.#interval
    this.#arm(this.#interval)
  }

  stop (): void {
    this.#running = false
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer)
    this.#timer = undefined
  }

  /** The neighbourhood changed: the next waits are `interval` again, and the next step comes within it. */
  unsettle (): void {
    this.#wait = this.#interval
    if (!this.#running || this.#due - this.#clock.now() <= this.#interval) return
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer)
    this.#arm(this.#interval)
  }

  #arm (wait: number): void {
    const ms = Math.floor(wait / 2 + this.#random.float() * wait / 2)
    this.#due = this.#clock.now() + ms
    this.#timer = this.#clock.setTimeout(() => { this.#tick() }, ms)
  }

  #tick (): void {
    this.#timer = undefined
    if (!this.#running) return
    this.#wait = Math.min(this.#wait * 2, this.#max)
    this.#steps++
    this.#step() // may unsettle: the wait is then `interval` again
    if (this.#running && this.#timer === undefined) this.#arm(this.#wait)
  }
}
