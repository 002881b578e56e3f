import { meshError, type Clock } from '../../shared/index.js'
import { Keepalive } from './keepalive.js'
import { CLOSE, DATA, PING, PONG, QueuedLink, type QueuedItem } from './queued-link.js'
import type { Turn } from './turn.js'
import { CLOSE_WHY, type LinkCloseInfo, type ReceiveBudget, type RemotePeer } from './types.js'

const RESET = 4
/** Pongs owed to a peer that does not read are not queued past this. */
const MAX_PONGS_QUEUED = 1024

export interface MemoryLinkOptions {
  maxMessageBytes: number
  maxBufferedBytes: number
  keepaliveInterval: number
  keepaliveTimeout: number
  receiveBudget: Required<ReceiveBudget> | false
  /** The event loop's slices (turn.ts; default: the process's shared turn). */
  turn?: Turn | undefined
}

/** Whether traffic between two devices is blocked right now (a partition). */
export type BlockedFn = (from: string, to: string) => boolean

/**
 * One end of an in-memory link. Messages are copied, queued and delivered to the other end in a
 * microtask, in order; a partition drops them at delivery time, as a real network drops packets
 * in flight. Keepalive runs as on TCP, so a partitioned link dies the same way. Flow control too:
 * while the receiving end stops reading (its budget, the event loop's turn), the sending end's
 * queue holds, fills, and its sends are refused with ERR_BACKPRESSURE, as on TCP. The queue has
 * two lanes (`lanes.ts`): control messages (`send(msg, { control: true })`) go out ahead of the
 * data that waits, within the control lane's own bound, and the peer takes them at once, also
 * while it does not read, up to its urgent allowance (base-link.ts `receivedUrgent`).
 */
export class MemoryLink extends QueuedLink {
  #peer: MemoryLink | undefined
  readonly #localId: string
  readonly #blocked: BlockedFn
  readonly #keepalive: Keepalive
  #flushScheduled = false
  #inputPaused = false

  constructor (localId: string, remote: RemotePeer, initiator: boolean, options: MemoryLinkOptions, clock: Clock, blocked: BlockedFn, remoteAddress?: string) {
    super({ remote, initiator, clock, budget: options.receiveBudget, maxMessageBytes: options.maxMessageBytes, remoteAddress, inboxLimit: options.maxBufferedBytes, turn: options.turn }, options)
    this.#localId = localId
    this.#blocked = blocked
    this.#keepalive = new Keepalive(clock, options.keepaliveInterval, options.keepaliveTimeout, {
      ping: () => { this.enqueue(PING, new Uint8Array(0), 0) },
      dead: (silentFor) => {
        this.destroy(meshError('ERR_LINK_CLOSED', `no frame from ${remote.id} for ${silentFor} ms; the link is dead`, { details: { reason: 'keepalive', silentFor } }))
      }
    })
  }

  /** Joins two ends; call once, before handing either out. */
  static pair (a: MemoryLink, b: MemoryLink): void {
    a.#peer = b
    b.#peer = a
    a.#keepalive.start()
    b.#keepalive.start()
  }

  /** While paused (nobody takes our messages), the peer keeps its queue: it fills, and its sends are refused. */
  protected pauseInput (paused: boolean): void {
    this.#inputPaused = paused
    this.#keepalive.suspend(paused)
    const peer = this.#peer
    if (!paused && peer !== undefined) peer.scheduleFlush()
  }

  protected scheduleFlush (): void {
    if (this.#flushScheduled) return
    this.#flushScheduled = true
    queueMicrotask(() => { this.#flush() })
  }

  #flush (): void {
    this.#flushScheduled = false
    const peer = this.#peer
    const lanes = this.lanes
    while (lanes.length > 0) {
      // While the peer does not read, control messages still go as long as it takes them at once.
      const paused = peer !== undefined && peer.#inputPaused
      const item = paused ? (peer.takesUrgent() ? lanes.shiftControl() : undefined) : lanes.shift()
      if (item === undefined) break
      if (peer !== undefined && !this.#blocked(this.#localId, this.remote.id)) peer.#receive(item)
    }
    if (lanes.length === 0) this.drained()
  }

  #receive (item: QueuedItem): void {
    if (!this.open) return
    this.#keepalive.heard()
    switch (item.type) {
      case DATA:
        this.counters.bytesIn += item.data.length
        if (item.control === true) this.receivedUrgent(item.data, item.data.length)
        else this.receivedMessage(item.data, item.data.length)
        break
      case PING:
        this.receivedControl(item.data.length)
        if (this.lanes.length < MAX_PONGS_QUEUED) this.enqueue(PONG, item.data, item.token) // pings from a peer that never reads go unanswered
        break
      case PONG:
        this.receivedPong(item.token)
        break
      case CLOSE: {
        const why = new TextDecoder().decode(item.data)
        this.#end(CLOSE_WHY.test(why) ? { reason: 'remote', why } : { reason: 'remote' })
        break
      }
      case RESET:
        this.#end({ reason: 'remote', error: meshError('ERR_LINK_CLOSED', `${this.remote.id} reset the link`) })
        break
    }
  }

  #end (info: LinkCloseInfo): void {
    this.beginClose(info)
    this.#keepalive.stop()
    queueMicrotask(() => { this.finishClose(info) })
  }

  protected end (info: LinkCloseInfo): void { this.#end(info) }

  destroy (err?: Error): void {
    if (!this.open) return
    this.lanes.clear()
    const peer = this.#peer
    queueMicrotask(() => { // like a TCP reset, it does not wait behind a paused reader
      if (peer !== undefined && !this.#blocked(this.#localId, this.remote.id)) peer.#receive({ type: RESET, data: new Uint8Array(0), token: 0, bytes: 0 })
    })
    this.#end(err === undefined ? { reason: 'local' } : { reason: 'error', error: err })
  }
}
