import { BaseLink, closeInfo, type LinkInit } from './base-link.js'
import { SendLanes } from './lanes.js'
import type { LinkCloseInfo, SendOptions } from './types.js'

/** One item in a queued link's send lanes. */
export interface QueuedItem {
  /** DATA, PING, PONG or CLOSE (a memory link adds RESET). */
  readonly type: number
  readonly data: Uint8Array
  readonly token: number
  /** What it counts against its lane's bound: its data's length. */
  readonly bytes: number
  /** Sent in the control lane: the peer delivers it at once while its urgent allowance lasts (base-link.ts receivedUrgent). */
  readonly control?: boolean
}

/** The kinds of item. */
export const DATA = 0, PING = 1, PONG = 2, CLOSE = 3

/** The two bounds of a queued link's send queue (MemoryLinkOptions has them). */
export interface QueueBounds {
  readonly maxMessageBytes: number
  readonly maxBufferedBytes: number
}

/**
 * What the in-process links (memory-link.ts, port-link.ts) share on the sending side: a send queue
 * in two lanes (lanes.ts) bounded by `maxBufferedBytes` (data) and half of it (control), the
 * refusal past the bound (ERR_BACKPRESSURE) and the `drain` owed after it, and a close: a CLOSE item
 * (with the `why`, or empty when replaced) queued behind what was sent. The subclass moves what
 * waits to its peer (`scheduleFlush`), calls `drained()` once the lanes are empty, and ends the link
 * on its side (`end`).
 */
export abstract class QueuedLink extends BaseLink {
  /** The frame limit and the data lane's bound. */
  protected readonly options: QueueBounds
  /** What waits to go to the peer: data, and control ahead of it (the control lane holds half the data lane's bound). */
  protected readonly lanes: SendLanes<QueuedItem>
  #owesDrain = false

  constructor (init: LinkInit, options: QueueBounds) {
    super(init)
    this.options = options
    this.lanes = new SendLanes(Math.floor(options.maxBufferedBytes / 2))
  }

  get writable (): boolean {
    // Writable means the largest message would still be accepted.
    return this.open && !this.#owesDrain && this.lanes.dataBytes + this.options.maxMessageBytes <= this.options.maxBufferedBytes
  }

  get bufferedBytes (): number {
    return this.lanes.bytes
  }

  send (msg: Uint8Array, options: SendOptions = {}): void {
    this.checkSend(msg, this.options.maxMessageBytes)
    const control = options.control === true
    const lanes = this.lanes
    const max = this.options.maxBufferedBytes
    if (control ? !lanes.controlFits(msg.length) : lanes.dataBytes + msg.length > max) {
      this.#owesDrain = true
      throw control ? this.backpressureError(true, lanes.controlBytes, lanes.controlLimit) : this.backpressureError(false, lanes.dataBytes, max)
    }
    this.enqueue(DATA, new Uint8Array(msg), 0, control)
    if (!control && lanes.dataBytes + this.options.maxMessageBytes > max) this.#owesDrain = true
    this.counters.framesOut++
    this.counters.bytesOut += msg.length
  }

  protected sendPing (token: number): void {
    this.enqueue(PING, new Uint8Array(0), token)
  }

  protected enqueue (type: number, data: Uint8Array, token: number, control = false): void {
    this.lanes.push({ type, data, token, bytes: data.length, control }, control)
    this.scheduleFlush()
  }

  async close (options: { why?: string } = {}): Promise<void> {
    if (this.open) {
      const info = closeInfo(options.why)
      this.enqueue(CLOSE, new TextEncoder().encode(info.why ?? ''), 0)
      this.end(info)
    }
    await this.closedPromise
  }

  replace (): void {
    if (!this.open) return
    this.enqueue(CLOSE, new Uint8Array(0), 0)
    this.end({ reason: 'replaced' })
  }

  /** Arranges for what waits in the lanes to go to the peer (soon, not re-entrantly). */
  protected abstract scheduleFlush (): void

  /** Closes this end after a CLOSE item was queued (what is queued still goes). */
  protected abstract end (info: LinkCloseInfo): void

  /** Call when the lanes are empty: emits the `drain` a refused (or nearly full) send is owed. */
  protected drained (): void {
    if (this.#owesDrain && this.open) {
      this.#owesDrain = false
      this.emit('drain')
    }
  }
}
