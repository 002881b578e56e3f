import { meshError, type Clock } from '../../shared/index.js'
import { Keepalive } from './keepalive.js'
import type { BlockedFn, MemoryLinkOptions } from './memory-link.js'
import { CLOSE, DATA, PING, PONG, QueuedLink } from './queued-link.js'
import type { LinkPort } from './trunk.js'
import { CLOSE_WHY, type LinkCloseInfo, type RemotePeer } from './types.js'

/** Pongs owed to a peer that does not read are not queued past this (as on a memory link). */
const MAX_PONGS_QUEUED = 1024
/** What an item costs the window besides its bytes: a flood of empty messages is bounded too. */
export const ITEM_COST = 64
/** Items in one port message at most (a batch is what one flush takes; a larger one is a protocol error). */
const MAX_BATCH = 8192

/** One item on the port: [type, data, token, control 0|1]. */
type WireItem = [number, Uint8Array, number, number]

/**
 * One end of a link between two threads of one process (a fleet split over worker threads,
 * firmware-sim/fleet/workers.ts), over a channel of the trunk between the two threads (trunk.ts; or
 * a MessagePort of its own). The same contract as a memory link
 * (memory-link.ts), messages copied once at `send` and their buffers transferred, not copied
 * again: ordered, two send lanes (control ahead of data), keepalive, and backpressure. A thread
 * cannot look at its peer's state, so flow control is a credit window, as in HTTP/2 (RFC 9113
 * §5.2): the sender puts at most `window` bytes (the peer's `maxBufferedBytes`, each item plus
 * ITEM_COST) on the port before the peer gives them back; the peer gives them back once they are
 * in its link and its input is not paused (base-link.ts `pauseInput`: its receive budget, the
 * event loop's turn, nobody listening). So while the receiving node takes no messages, the
 * sender's queue holds, fills, and its sends are refused with ERR_BACKPRESSURE, as on TCP.
 *
 * What arrives on the port is from another thread, but it is still what a peer sent: every port
 * message is checked for shape, a message above the frame limit or a sender past its window
 * destroys the link (ERR_LINK_CLOSED), and the bytes go up to the node as from any link, to be
 * decoded and verified there.
 */
export class PortLink extends QueuedLink {
  readonly #port: LinkPort
  readonly #localId: string
  readonly #blocked: BlockedFn
  readonly #keepalive: Keepalive
  /** The peer's credit windows (its maxBufferedBytes; control: half of it, as its control lane). */
  readonly #window: number
  readonly #controlWindow: number
  #inflight = 0
  #inflightControl = 0
  /** What we received and have not given back yet, and the most the peer may have out. */
  #owed = 0
  #owedControl = 0
  readonly #receiveLimit: number
  /** Credit goes back once this much is owed (a quarter of the window the peer has from us; control: of its half). */
  readonly #giveBackAt: number
  readonly #giveBackControlAt: number
  #inputPaused = false
  #flushScheduled = false
  #portClosed = false

  constructor (localId: string, remote: RemotePeer, initiator: boolean, options: MemoryLinkOptions, clock: Clock, blocked: BlockedFn, port: LinkPort, peerWindow: number, remoteAddress?: string) {
    super({ remote, initiator, clock, budget: options.receiveBudget, maxMessageBytes: options.maxMessageBytes, remoteAddress, inboxLimit: options.maxBufferedBytes, turn: options.turn }, options)
    this.#localId = localId
    this.#blocked = blocked
    this.#port = port
    const item = options.maxMessageBytes + ITEM_COST
    this.#window = Math.max(peerWindow, 2 * item)
    this.#controlWindow = Math.max(Math.floor(peerWindow / 2), 2 * item)
    // What the peer may have out, by the same rule from our own bound, plus one batch's rounding.
    this.#receiveLimit = Math.max(options.maxBufferedBytes, 2 * item) + Math.max(Math.floor(options.maxBufferedBytes / 2), 2 * item) + 2 * item
    this.#giveBackAt = Math.max(1, Math.floor(options.maxBufferedBytes / 4))
    this.#giveBackControlAt = Math.max(1, Math.floor(options.maxBufferedBytes / 8))
    this.#keepalive = new Keepalive(clock, options.keepaliveInterval, options.keepaliveTimeout, {
      ping: () => { this.enqueue(PING, new Uint8Array(0), 0) },
      dead: (silentFor) => {
        this.destroy(meshError('ERR_LINK_CLOSED', `no frame from ${remote.id} for ${silentFor} ms; the link is dead`, { details: { reason: 'keepalive', silentFor } }))
      }
    })
    port.on('message', (msg: unknown) => { this.#onPortMessage(msg) })
    port.once('close', () => { this.#onPortClose() })
    this.#keepalive.start()
  }

  /** While paused, what arrived is not given back: the peer's window empties and its queue holds. */
  protected pauseInput (paused: boolean): void {
    this.#inputPaused = paused
    this.#keepalive.suspend(paused)
    if (!paused) this.#giveBack()
  }

  protected scheduleFlush (): void {
    if (this.#flushScheduled || this.#portClosed) return
    this.#flushScheduled = true
    queueMicrotask(() => { this.#flush() })
  }

  /** Puts what the windows allow on the port, in one message. */
  #flush (): void {
    this.#flushScheduled = false
    if (this.#portClosed) return
    const lanes = this.lanes
    const most = this.options.maxMessageBytes + ITEM_COST
    const batch: WireItem[] = []
    const transfer: ArrayBuffer[] = []
    const blocked = this.#blocked(this.#localId, this.remote.id)
    while (lanes.length > 0 && batch.length < MAX_BATCH) {
      const dataRoom = this.#inflight + most <= this.#window
      const controlRoom = this.#inflightControl + most <= this.#controlWindow
      const item = dataRoom && controlRoom ? lanes.shift() : controlRoom ? lanes.shiftControl() : dataRoom && lanes.controlBytes === 0 ? lanes.shift() : undefined
      if (item === undefined) break
      if (blocked) continue // a partition drops what is in flight, as a network drops packets
      const cost = item.data.length + ITEM_COST
      if (item.control === true) this.#inflightControl += cost
      else this.#inflight += cost
      batch.push([item.type, item.data, item.token, item.control === true ? 1 : 0])
      if (item.data.byteLength > 0) transfer.push(item.data.buffer as ArrayBuffer)
    }
    if (batch.length > 0) this.#post({ k: 'items', items: batch }, transfer)
    if (lanes.length > 0) {
      if (batch.length >= MAX_BATCH) this.scheduleFlush()
      return
    }
    this.drained()
  }

  #post (msg: unknown, transfer: ArrayBuffer[] = []): void {
    if (this.#portClosed) return
    try {
      this.#port.postMessage(msg, transfer)
    } catch (err) {
      this.destroy(meshError('ERR_LINK_CLOSED', `the port to ${this.remote.id} refused a message: ${(err as Error).message}`, { cause: err }))
    }
  }

  /**
   * Gives the peer its credit back, unless our input is paused (then it waits, and so does the peer),
   * once a quarter of its window is owed: below that it still has room (at least half its window: its
   * window is at least our maxBufferedBytes and two largest messages), so it never waits for less.
   */
  #giveBack (): void {
    if (this.#inputPaused && this.open) return
    if (this.open && this.#owed < this.#giveBackAt && this.#owedControl < this.#giveBackControlAt) return
    if (this.#owed === 0 && this.#owedControl === 0) return
    this.#post({ k: 'ack', data: this.#owed, control: this.#owedControl })
    this.#owed = this.#owedControl = 0
  }

  #onPortMessage (msg: unknown): void {
    if (typeof msg !== 'object' || msg === null) { this.#protocolError('not an object'); return }
    const m = msg as { k?: unknown, items?: unknown, data?: unknown, control?: unknown }
    if (m.k === 'items') this.#onItems(m.items)
    else if (m.k === 'ack') this.#onAck(m.data, m.control)
    else if (m.k === 'reset') this.#end({ reason: 'remote', error: meshError('ERR_LINK_CLOSED', `${this.remote.id} reset the link`) }, true)
    else this.#protocolError(`unknown kind ${String(m.k).slice(0, 16)}`)
  }

  #onAck (data: unknown, control: unknown): void {
    if (!Number.isSafeInteger(data) || !Number.isSafeInteger(control) || (data as number) < 0 || (control as number) < 0 ||
      (data as number) > this.#inflight || (control as number) > this.#inflightControl) {
      this.#protocolError('an ack for more than was sent')
      return
    }
    this.#inflight -= data as number
    this.#inflightControl -= control as number
    if (this.lanes.length > 0) this.scheduleFlush()
  }

  #onItems (items: unknown): void {
    if (!Array.isArray(items) || items.length > MAX_BATCH) { this.#protocolError('a batch that is not a list, or too long'); return }
    for (const raw of items as unknown[]) {
      if (!Array.isArray(raw) || raw.length !== 4) { this.#protocolError('an item that is not [type, data, token, control]'); return }
      const [type, data, token, control] = raw as unknown[]
      if (typeof type !== 'number' || !(data instanceof Uint8Array) || typeof token !== 'number' || (control !== 0 && control !== 1) ||
        !Number.isSafeInteger(type) || type < DATA || type > CLOSE || !Number.isSafeInteger(token) || token < 0 || token > 0xffff_ffff) {
        this.#protocolError('a malformed item')
        return
      }
      if (data.length > this.options.maxMessageBytes) { this.#protocolError(`a ${data.length}-byte message above the frame limit`); return }
      const cost = data.length + ITEM_COST
      if (control === 1) this.#owedControl += cost
      else this.#owed += cost
      if (this.#owed + this.#owedControl > this.#receiveLimit) { this.#protocolError('the peer sent past its window'); return }
      this.#receive(type, data, token, control === 1)
    }
    this.#giveBack()
  }

  #receive (type: number, data: Uint8Array, token: number, control: boolean): void {
    if (!this.open) return
    this.#keepalive.heard()
    switch (type) {
      case DATA:
        this.counters.bytesIn += data.length
        if (control) this.receivedUrgent(data, data.length)
        else this.receivedMessage(data, data.length)
        break
      case PING:
        this.receivedControl(data.length)
        if (this.lanes.length < MAX_PONGS_QUEUED) this.enqueue(PONG, new Uint8Array(0), token)
        break
      case PONG:
        this.receivedPong(token)
        break
      case CLOSE: {
        const why = new TextDecoder().decode(data)
        this.#end(CLOSE_WHY.test(why) ? { reason: 'remote', why } : { reason: 'remote' }, true)
        break
      }
    }
  }

  #protocolError (what: string): void {
    this.destroy(meshError('ERR_LINK_CLOSED', `${this.remote.id} broke the cross-thread link protocol (${what}); the link is destroyed`, { details: { reason: 'protocol' } }))
  }

  /** The port closed under us (the other end destroyed it, or its thread ended): an abrupt end, as a TCP reset. */
  #onPortClose (): void {
    this.#portClosed = true
    this.lanes.clear()
    this.#end({ reason: 'remote', error: meshError('ERR_LINK_CLOSED', `the link to ${this.remote.id} ended abruptly (its thread closed the port)`) })
    this.#port.removeAllListeners()
  }

  /** `last`: nothing more will come or go (the peer closed or reset): the port is closed. */
  #end (info: LinkCloseInfo, last = false): void {
    this.beginClose(info)
    this.#keepalive.stop()
    queueMicrotask(() => { this.finishClose(info) })
    if (last) this.#closePort()
  }

  #closePort (): void {
    if (this.#portClosed) return
    this.#portClosed = true
    this.lanes.clear()
    this.#port.close()
  }

  protected end (info: LinkCloseInfo): void { this.#end(info) }

  destroy (err?: Error): void {
    if (!this.open) return
    this.lanes.clear()
    this.#post({ k: 'reset' })
    this.#end(err === undefined ? { reason: 'local' } : { reason: 'error', error: err }, true)
  }
}
