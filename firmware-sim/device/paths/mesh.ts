import { decodeFrame, meshError, type Clock } from '../../../shared/index.js'
import type { MeshNode } from '../../../mesh/index.js'
import type { OutboxEntry } from '../../outbox/types.js'
import type { PathSender, SendOutcome } from '../types.js'

/**
 * The mesh delivery path: the device's frames enter its own MeshNode through `node.inject`,
 * which verifies, deduplicates, keeps them in the router's history, delivers them to local
 * subscribers and routes them on (the origin being the node itself). The device signs each frame
 * once, with its own sequence source, so hybrid devices send the same bytes on both paths.
 *
 * The mesh routes by declared interest (mesh/routing/interest.ts): a frame goes only towards
 * subscribers whose filters match it. So:
 * - the path is **up** when a link is open and the router knows a route to a subscriber of this
 *   device's readings; a lone device, or one whose neighbours lead to no subscriber (a gateway
 *   partitioned away), is down, and its frames wait in the outbox, not injected;
 * - a frame is **delivered** once handed to the router while it had a next hop towards a
 *   subscriber of its topic: the router pushes it there, or, if that link is congested,
 *   announces it in the next DIGEST and serves it from its history (the router's repair);
 * - a frame whose topic no reachable subscriber wants (say `events/door` when the only
 *   subscriber takes `…/telemetry`) is **unwanted**: injected (history keeps it for a subscriber
 *   that comes soon) and acknowledged, so it never holds back the frames behind it.
 * Frames go oldest first, so every receiver sees this origin's numbers in order and none falls
 * below its replay window because a newer one overtook it.
 *
 * The node has no event for a route that appears or goes; the path looks again on link events
 * and every `checkMs` (a stopgap: see the report on the device runtime).
 */
export class MeshPath implements PathSender {
  readonly path = 'mesh' as const
  /** inject() is synchronous: a send settles at once. */
  readonly window = 64
  readonly #node: MeshNode
  readonly #clock: Clock
  readonly #checkMs: number
  readonly #listeners: Array<(up: boolean, reason?: string) => void> = []
  #timer: unknown
  #wasUp = false
  #stopped = false

  constructor (node: MeshNode, init: { clock: Clock, checkMs?: number }) {
    this.#node = node
    this.#clock = init.clock
    this.#checkMs = init.checkMs ?? 250
    // On link:close the closing link is still listed; look once the close has run its course.
    const later = (): void => { queueMicrotask(() => { this.#check() }) }
    node.on('link:open', later)
    node.on('link:close', later)
  }

  get up (): boolean {
    return !this.#stopped && this.links > 0 && this.#node.wanted()
  }

  /** Open links now. */
  get links (): number {
    let n = 0
    for (const link of this.#node.links.values()) if (link.open) n++
    return n
  }

  onChange (listener: (up: boolean, reason?: string) => void): void {
    this.#listeners.push(listener)
  }

  /** Starts watching for routes to subscribers. */
  start (): void {
    if (this.#stopped || this.#timer !== undefined) return
    const tick = (): void => {
      this.#check()
      if (!this.#stopped) this.#timer = this.#clock.setTimeout(tick, this.#checkMs)
    }
    this.#timer = this.#clock.setTimeout(tick, this.#checkMs)
  }

  async send (entry: OutboxEntry): Promise<SendOutcome> {
    if (!this.up) throw meshError('ERR_LINK_CLOSED', 'no mesh link leads to a subscriber: the frame waits in the outbox')
    const wanted = this.#node.nextHops(decodeFrame(entry.frame).topic).length > 0
    // Refused by our own node (below its replay window): no link will ever carry it from here.
    if (this.#node.inject(entry.frame).verdict === 'refused') return 'refused'
    return wanted ? 'delivered' : 'unwanted'
  }

  /** No more up/down reports (the node is stopping). */
  stop (): void {
    this.#stopped = true
    this.#listeners.length = 0
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #check (): void {
    const up = this.up
    if (up === this.#wasUp) return
    this.#wasUp = up
    const reason = this.links === 0 ? 'no mesh link is open' : 'no link leads to a subscriber of this device'
    for (const listener of this.#listeners) listener(up, up ? undefined : reason)
  }
}
