import { decodeFrame, frameTopic, meshError, type Clock } from '../../../shared/index.js'
import type { MeshNode } from '../../../mesh/index.js'
import type { OutboxEntry } from '../../outbox/types.js'
import type { PathSender, SendOutcome } from '../types.js'
import { MeshAcks } from './mesh-acks.js'

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
 * - a frame that durable subscribers want (mesh-acks.ts: the gateway, or any node whose signed
 *   declaration says it acknowledges) is **delivered** only once each of them acknowledged it
 *   end to end (a signed cumulative ack, mesh/routing/ack.ts): until then it stays in the
 *   outbox, is offered again when not acknowledged in time, after a reconnect and after a reboot;
 * - a frame no durable subscriber wants is **delivered** once handed to the router while it had a
 *   next hop towards a subscriber of its topic: the router pushes it there, or, if that link is
 *   congested, announces it in the next DIGEST and serves it from its history (the router's repair);
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
  /** Frames awaiting their outcome (an end-to-end ack) at once; below the flow limit of mesh-acks.ts. */
  readonly window = 256
  /** Frames go on while earlier ones await their acks (mesh-acks.ts keeps them within the replay window). */
  readonly overlap = true
  readonly acks: MeshAcks
  readonly #node: MeshNode
  readonly #clock: Clock
  readonly #checkMs: number
  readonly #listeners: Array<(up: boolean, reason?: string) => void> = []
  #timer: unknown
  #wasUp = false
  #stopped = false

  constructor (node: MeshNode, init: { clock: Clock, checkMs?: number, reofferMs?: number, durableFile?: string }) {
    this.#node = node
    this.#clock = init.clock
    this.#checkMs = init.checkMs ?? 250
    this.acks = new MeshAcks(node, { clock: init.clock, reofferMs: init.reofferMs, ...(init.durableFile === undefined ? {} : { file: init.durableFile }) })
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
      if (this.up) this.acks.tick()
      if (!this.#stopped) this.#timer = this.#clock.setTimeout(tick, this.#checkMs)
    }
    this.#timer = this.#clock.setTimeout(tick, this.#checkMs)
  }

  async send (entry: OutboxEntry): Promise<SendOutcome> {
    if (!this.up) throw meshError('ERR_LINK_CLOSED', 'no mesh link leads to a subscriber: the frame waits in the outbox')
    const topic = decodeFrame(entry.frame).topic
    const full = frameTopic(this.#node.fleet, this.#node.id, topic)
    let needs = this.acks.needs(full)
    if (needs.length === 0) { this.acks.learn(); needs = this.acks.needs(full) } // a durable subscriber routed since the last check
    if (needs.length > 0) return await this.#sendDurable(entry, needs)
    const wanted = this.#node.nextHops(topic).length > 0
    // Refused by our own node (below its replay window): no link will ever carry it from here.
    if (this.#node.inject(entry.frame).verdict === 'refused') return 'refused'
    return wanted ? 'delivered' : 'unwanted'
  }

  /** A frame durable subscribers want: offered (again, if the node holds it already) and delivered once they all acknowledged it. */
  async #sendDurable (entry: OutboxEntry, needs: string[]): Promise<SendOutcome> {
    if (this.acks.covered(entry.seq, needs)) return 'delivered'
    await this.acks.room(entry.seq)
    if (!this.up) throw meshError('ERR_LINK_CLOSED', 'no mesh link leads to a subscriber: the frame waits in the outbox')
    const injected = this.#node.inject(entry.frame)
    if (injected.verdict === 'refused') return 'refused'
    if (injected.verdict === 'duplicate') this.#node.reoffer(entry.frame)
    return await this.acks.wait(entry.seq, entry.frame, needs)
  }

  /** No more up/down reports (the node is stopping). */
  stop (): void {
    this.#stopped = true
    this.acks.failAll(meshError('ERR_ABORTED', 'the mesh path stopped'))
    this.#listeners.length = 0
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #check (): void {
    const up = this.up
    if (up === this.#wasUp) return
    this.#wasUp = up
    if (!up) this.acks.failAll(meshError('ERR_LINK_CLOSED', 'the mesh path went down: the frames waiting for acks are offered again when it is back'))
    const reason = this.links === 0 ? 'no mesh link is open' : 'no link leads to a subscriber of this device'
    for (const listener of this.#listeners) listener(up, up ? undefined : reason)
  }
}
