import { meshError, type Clock } from '../../shared/index.js'
import { BaseLink, closeInfo } from './base-link.js'
import { Keepalive } from './keepalive.js'
import { SendLanes } from './lanes.js'
import type { Turn } from './turn.js'
import { CLOSE_WHY, type LinkCloseInfo, type ReceiveBudget, type RemotePeer, type SendOptions } from './types.js'

const DATA = 0
const PING = 1
const PONG = 2
const CLOSE = 3
const RESET = 4
/** Pongs owed to a peer that does not read are not queued past this. */
const MAX_PONGS_QUEUED = 1024

interface Item {
  readonly type: number
  readonly data: Uint8Array
  readonly token: number
  /** What it counts against its lane's bound: its data's length. */
  readonly bytes: number
  /** Sent in the control lane: the peer delivers it at once while its urgent allowance lasts (base-link.ts receivedUrgent). */
  readonly control?: boolean
}

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
export class MemoryLink extends BaseLink {
  #peer: MemoryLink | undefined
  readonly #localId: string
  readonly #blocked: BlockedFn
  readonly #options: MemoryLinkOptions
  readonly #keepalive: Keepalive
  readonly #lanes: SendLanes<Item>
  #flushScheduled = false
  #owesDrain = false
  #inputPaused = false

  constructor (localId: string, remote: RemotePeer, initiator: boolean, options: MemoryLinkOptions, clock: Clock, blocked: BlockedFn, remoteAddress?: string) {
    super({ remote, initiator, clock, budget: options.receiveBudget, maxMessageBytes: options.maxMessageBytes, remoteAddress, inboxLimit: options.maxBufferedBytes, turn: options.turn })
    this.#localId = localId
    this.#options = options
    this.#blocked = blocked
    this.#lanes = new SendLanes(Math.floor(options.maxBufferedBytes / 2))
    this.#keepalive = new Keepalive(clock, options.keepaliveInterval, options.keepaliveTimeout, {
      ping: () => { this.#enqueue(PING, new Uint8Array(0), 0) },
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

  get writable (): boolean {
    // Writable means the largest message would still be accepted.
    return this.open && !this.#owesDrain && this.#lanes.dataBytes + this.#options.maxMessageBytes <= this.#options.maxBufferedBytes
  }

  get bufferedBytes (): number {
    return this.#lanes.bytes
  }

  send (msg: Uint8Array, options: SendOptions = {}): void {
    if (!this.open) throw this.closedError()
    if (msg.length > this.#options.maxMessageBytes) {
      throw meshError('ERR_FRAME_TOO_LARGE', `a ${msg.length}-byte message exceeds the link limit of ${this.#options.maxMessageBytes} bytes; split it`, { details: { length: msg.length, limit: this.#options.maxMessageBytes } })
    }
    const control = options.control === true
    const lanes = this.#lanes
    if (control ? !lanes.controlFits(msg.length) : lanes.dataBytes + msg.length > this.#options.maxBufferedBytes) {
      this.#owesDrain = true
      const [held, limit] = control ? [lanes.controlBytes, lanes.controlLimit] : [lanes.dataBytes, this.#options.maxBufferedBytes]
      throw meshError('ERR_BACKPRESSURE', `the ${control ? 'control' : 'send'} queue to ${this.remote.id} holds ${held} bytes (limit ${limit}); wait for 'drain'`, { details: { bufferedBytes: held, limit, control } })
    }
    this.#enqueue(DATA, new Uint8Array(msg), 0, control)
    if (!control && lanes.dataBytes + this.#options.maxMessageBytes > this.#options.maxBufferedBytes) this.#owesDrain = true
    this.counters.framesOut++
    this.counters.bytesOut += msg.length
  }

  protected sendPing (token: number): void {
    this.#enqueue(PING, new Uint8Array(0), token)
  }

  /** While paused (nobody takes our messages), the peer keeps its queue: it fills, and its sends are refused. */
  protected pauseInput (paused: boolean): void {
    this.#inputPaused = paused
    this.#keepalive.suspend(paused)
    const peer = this.#peer
    if (!paused && peer !== undefined) peer.#scheduleFlush()
  }

  #enqueue (type: number, data: Uint8Array, token: number, control = false): void {
    this.#lanes.push({ type, data, token, bytes: data.length, control }, control)
    this.#scheduleFlush()
  }

  #scheduleFlush (): void {
    if (this.#flushScheduled) return
    this.#flushScheduled = true
    queueMicrotask(() => { this.#flush() })
  }

  #flush (): void {
    this.#flushScheduled = false
    const peer = this.#peer
    const lanes = this.#lanes
    while (lanes.length > 0) {
      // While the peer does not read, control messages still go as long as it takes them at once.
      const paused = peer !== undefined && peer.#inputPaused
      const item = paused ? (peer.takesUrgent() ? lanes.shiftControl() : undefined) : lanes.shift()
      if (item === undefined) break
      if (peer !== undefined && !this.#blocked(this.#localId, this.remote.id)) peer.#receive(item)
    }
    if (lanes.length > 0) return
    if (this.#owesDrain && this.open) {
      this.#owesDrain = false
      this.emit('drain')
    }
  }

  #receive (item: Item): void {
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
        if (this.#lanes.length < MAX_PONGS_QUEUED) this.#enqueue(PONG, item.data, item.token) // pings from a peer that never reads go unanswered
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

  async close (options: { why?: string } = {}): Promise<void> {
    if (this.open) {
      const info = closeInfo(options.why)
      this.#enqueue(CLOSE, new TextEncoder().encode(info.why ?? ''), 0)
      this.#end(info)
    }
    await this.closedPromise
  }

  replace (): void {
    if (!this.open) return
    this.#enqueue(CLOSE, new Uint8Array(0), 0)
    this.#end({ reason: 'replaced' })
  }

  destroy (err?: Error): void {
    if (!this.open) return
    this.#lanes.clear()
    const peer = this.#peer
    queueMicrotask(() => { // like a TCP reset, it does not wait behind a paused reader
      if (peer !== undefined && !this.#blocked(this.#localId, this.remote.id)) peer.#receive({ type: RESET, data: new Uint8Array(0), token: 0, bytes: 0 })
    })
    this.#end(err === undefined ? { reason: 'local' } : { reason: 'error', error: err })
  }
}
