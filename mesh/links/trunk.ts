import { EventEmitter } from 'node:events'
import type { MessagePort } from 'node:worker_threads'

/**
 * One MessagePort between two threads, carrying many channels (the links between them and their
 * handshakes). A message posted on a port wakes the other thread and is cloned on its own; a fleet
 * split over two workers has about 1,500 links across threads, and a port per link made one wake-up
 * per link per turn (and one per credit given back). A trunk sends what its channels posted during
 * a turn's microtasks as one port message (`[id, message]` pairs, the buffers of all of them
 * transferred), in order per channel.
 *
 * Channel ids: each side opens its own (even on side 0, odd on side 1), so both may open at once.
 * A channel the other side opens comes with its first message (`onOpen`); at most
 * MAX_CHANNELS live on a trunk (one more is closed at once). Closing a channel tells the other
 * side (`close` there too, as a MessagePort's); a trunk whose port closes closes all its channels.
 */

/** Channels open on one trunk at most (both sides' together, as this side counts them). */
export const MAX_CHANNELS = 65_536
/** Pairs in one port message at most, as a receiver takes them (a longer one is cut off, its channels told nothing more). */
const MAX_PAIRS = 65_536

const CLOSE = '$close'

/** What a link and its handshake need of a port: a MessagePort has it, and so has a trunk's channel. */
export interface LinkPort {
  postMessage (msg: unknown, transfer?: readonly ArrayBuffer[]): void
  on (event: 'message', listener: (msg: unknown) => void): unknown
  off (event: 'message', listener: (msg: unknown) => void): unknown
  off (event: 'close', listener: () => void): unknown
  once (event: 'close', listener: () => void): unknown
  removeAllListeners (): unknown
  close (): void
}

export class TrunkChannel extends EventEmitter implements LinkPort {
  readonly id: number
  readonly #trunk: Trunk
  #closed = false

  constructor (trunk: Trunk, id: number) {
    super()
    this.#trunk = trunk
    this.id = id
  }

  postMessage (msg: unknown, transfer: readonly ArrayBuffer[] = []): void {
    if (!this.#closed) this.#trunk.send(this.id, msg, transfer)
  }

  close (): void {
    if (this.#closed) return
    this.#trunk.send(this.id, CLOSE, [])
    this.ended()
  }

  /** Closed here or there: `close` once, in a later microtask (as a MessagePort emits it). */
  ended (): void {
    if (this.#closed) return
    this.#closed = true
    this.#trunk.forget(this.id)
    queueMicrotask(() => { this.emit('close') })
  }
}

/** One side of a trunk: the channels over one MessagePort between two threads (see above). */
export class Trunk {
  readonly #port: MessagePort
  readonly #side: 0 | 1
  #next = 0
  readonly #channels = new Map<number, TrunkChannel>()
  #pairs: Array<[number, unknown]> = []
  #transfer: ArrayBuffer[] = []
  #scheduled = false
  #closed = false
  /** The highest id the other side opened: its ids only grow, so a lower unknown one is a channel closed here since. */
  #highestRemote = -1
  /** A channel the other side opened, with its first message (a dial): whoever listens takes it. */
  onOpen: ((channel: TrunkChannel, first: unknown) => void) | undefined

  /** `side`: 0 on one end of the port, 1 on the other (the lower thread takes 0). */
  constructor (port: MessagePort, side: 0 | 1) {
    this.#port = port
    this.#side = side
    port.on('message', (msg: unknown) => { this.#receive(msg) })
    port.once('close', () => { this.close() })
  }

  get channels (): number { return this.#channels.size }

  /** A new channel to the other side; closed at once (its `close` follows) when the trunk is closed or full. */
  open (): TrunkChannel {
    const channel = new TrunkChannel(this, this.#next++ * 2 + this.#side)
    if (this.#closed || this.#channels.size >= MAX_CHANNELS) channel.ended()
    else this.#channels.set(channel.id, channel)
    return channel
  }

  /** Queues `msg` for channel `id`; what a turn's microtasks queue goes in one port message. */
  send (id: number, msg: unknown, transfer: readonly ArrayBuffer[]): void {
    if (this.#closed) return
    this.#pairs.push([id, msg])
    for (const buffer of transfer) this.#transfer.push(buffer)
    if (this.#scheduled) return
    this.#scheduled = true
    queueMicrotask(() => { this.#flush() })
  }

  forget (id: number): void {
    this.#channels.delete(id)
  }

  #flush (): void {
    this.#scheduled = false
    if (this.#closed || this.#pairs.length === 0) return
    const pairs = this.#pairs
    const transfer = this.#transfer
    this.#pairs = []
    this.#transfer = []
    this.#port.postMessage(pairs, transfer)
  }

  #receive (msg: unknown): void {
    if (!Array.isArray(msg)) return
    const pairs = msg as unknown[]
    for (let i = 0; i < pairs.length && i < MAX_PAIRS; i++) {
      const pair = pairs[i]
      if (!Array.isArray(pair) || pair.length !== 2 || !Number.isSafeInteger(pair[0])) continue
      const [id, body] = pair as [number, unknown]
      const channel = this.#channels.get(id)
      if (channel !== undefined) {
        if (body === CLOSE) channel.ended()
        else channel.emit('message', body)
        continue
      }
      // Unknown: a channel the other side opens (its ids have the other parity), else one closed here since.
      if (body === CLOSE || id <= this.#highestRemote || id % 2 === this.#side) continue
      this.#highestRemote = id
      const opened = new TrunkChannel(this, id)
      if (this.#channels.size >= MAX_CHANNELS || this.onOpen === undefined) {
        this.send(id, CLOSE, [])
        continue
      }
      this.#channels.set(id, opened)
      this.onOpen(opened, body)
    }
  }

  /** Closes every channel (each emits `close`) and the port; idempotent. */
  close (): void {
    if (this.#closed) return
    this.#flush()
    this.#closed = true
    for (const channel of [...this.#channels.values()]) channel.ended()
    this.#port.close()
  }
}
