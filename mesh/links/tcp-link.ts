import type { Socket } from 'node:net'
import { isMeshError, meshError, type Clock, type TimerHandle } from '../../shared/index.js'
import { BaseLink, closeInfo } from './base-link.js'
import type { FrameDecoder } from './framing.js'
import type { SessionSecrets } from './handshake.js'
import { Keepalive } from './keepalive.js'
import { SendLanes } from './lanes.js'
import { inTurnEnd } from './turn.js'
import { ITEM_CLOSE, ITEM_DATA, ITEM_HEADER_BYTES, ITEM_PING, ITEM_PONG, RecordBuilder, readRecord } from './record.js'
import { FRAME_OVERHEAD, ReceiveCipher, SendCipher, TAG_BYTES } from './secure.js'
import { CLOSE_WHY, type LinkCloseInfo, type ReceiveBudget, type RemotePeer, type SendOptions } from './types.js'

const EMPTY = new Uint8Array(0)
/** A record holds at least this much, so small messages batch well whatever the message limit. */
const MIN_RECORD_BYTES = 64 * 1024

/** A message that waits for the socket to drain. */
interface Waiting {
  readonly payload: Uint8Array
  readonly bytes: number
}

export interface TcpLinkOptions {
  maxMessageBytes: number
  maxBufferedBytes: number
  keepaliveInterval: number
  keepaliveTimeout: number
  closeTimeout: number
  receiveBudget: Required<ReceiveBudget> | false
}

/**
 * An established, encrypted link over one TCP socket. The handshake driver hands over the socket
 * and its frame decoder; from then on this class owns both. Items sent within one turn of the
 * event loop (messages, pings, pongs, close) are collected in one record, sealed once and written
 * once at the end of the turn (`setImmediate`, after the microtasks; or as soon as the record is
 * full): no timer, one AEAD operation per batch.
 * While the socket holds more than its high-water mark, messages wait unsealed in two lanes
 * (`lanes.ts`) and go into records as it drains, control messages (`send(msg, { control: true })`)
 * ahead of the data that waits: a revocation passes a backlog of readings.
 */
export class TcpLink extends BaseLink {
  readonly #socket: Socket
  readonly #decoder: FrameDecoder
  readonly #tx: SendCipher
  readonly #rx: ReceiveCipher
  readonly #keepalive: Keepalive
  readonly #options: TcpLinkOptions
  readonly #maxBuffered: number
  readonly #record: RecordBuilder
  readonly #lanes: SendLanes<Waiting>
  readonly #flush = (): void => { this.#flushScheduled = false; this.#sealRecord() }
  #flushScheduled = false
  #inputPaused = false
  #owesDrain = false
  #closeTimer: TimerHandle | undefined

  constructor (socket: Socket, decoder: FrameDecoder, secrets: SessionSecrets, remote: RemotePeer, initiator: boolean, options: TcpLinkOptions, clock: Clock) {
    super({ remote, initiator, clock, budget: options.receiveBudget, maxMessageBytes: options.maxMessageBytes, remoteAddress: plainAddress(socket.remoteAddress), inboxLimit: options.maxBufferedBytes })
    this.#socket = socket
    this.#decoder = decoder
    this.#options = options
    const recordBytes = Math.max(MIN_RECORD_BYTES, options.maxMessageBytes + ITEM_HEADER_BYTES)
    this.#record = new RecordBuilder(recordBytes)
    // A refused send must always be followed by `drain`, which the socket only emits after a
    // write crossed its high-water mark: keep the limit above that mark plus one record.
    this.#maxBuffered = Math.max(options.maxBufferedBytes, socket.writableHighWaterMark + recordBytes + FRAME_OVERHEAD)
    this.#lanes = new SendLanes(Math.floor(this.#maxBuffered / 2))
    this.#tx = new SendCipher(secrets.send)
    this.#rx = new ReceiveCipher(secrets.receive)
    this.#keepalive = new Keepalive(clock, options.keepaliveInterval, options.keepaliveTimeout, {
      ping: () => { this.#queue(ITEM_PING, Uint8Array.of(0, 0, 0, 0)) },
      dead: (silentFor) => {
        this.destroy(meshError('ERR_LINK_CLOSED', `no frame from ${remote.id} for ${silentFor} ms; the link is dead`, { details: { reason: 'keepalive', silentFor } }))
      }
    })
    decoder.maxFrameBytes = recordBytes + TAG_BYTES
    decoder.onFrame = (body) => { this.#onFrame(body) }
    socket.on('data', (chunk: Buffer) => { this.#onData(chunk) })
    socket.on('drain', () => { this.#onDrain() })
    // The end and the close of the socket come after every byte it read: they wait behind the messages still to deliver.
    socket.on('end', () => {
      this.inOrder(() => { this.beginClose({ reason: 'remote', error: meshError('ERR_LINK_CLOSED', `${remote.id} ended the connection without a close frame`) }) })
    })
    socket.on('error', (err) => {
      this.beginClose({ reason: 'error', error: meshError('ERR_LINK_CLOSED', `the connection to ${remote.id} failed: ${err.message}`, { cause: err }) })
    })
    socket.on('close', () => { this.inOrder(() => { this.#onClose() }) })
    this.#keepalive.start()
    // Frames that followed FINISH wait in the decoder; the handshake left the socket paused.
    this.#onData(undefined)
    if (!this.#inputPaused && this.open) socket.resume()
  }

  get writable (): boolean {
    return this.open && !this.#socket.writableNeedDrain && this.#lanes.length === 0
  }

  get bufferedBytes (): number {
    return this.#socket.writableLength + this.#record.length + this.#lanes.bytes
  }

  send (msg: Uint8Array, options: SendOptions = {}): void {
    this.checkSend(msg, this.#options.maxMessageBytes)
    const control = options.control === true
    const lanes = this.#lanes
    const bytes = msg.length + ITEM_HEADER_BYTES
    const buffered = control ? lanes.controlBytes : this.bufferedBytes - lanes.controlBytes
    if (control ? !lanes.controlFits(bytes) : buffered + bytes > this.#maxBuffered) {
      this.#owesDrain = true
      throw this.backpressureError(control, buffered, control ? lanes.controlLimit : this.#maxBuffered)
    }
    if (lanes.length === 0 && !this.#socket.writableNeedDrain) {
      this.#queue(ITEM_DATA, msg)
      if (options.now === true) this.#sealRecord() // the scheduled flush then finds the record empty
    } else lanes.push({ payload: new Uint8Array(msg), bytes }, control)
    this.counters.framesOut++
  }

  /** Moves what waits into records, control first, while the socket takes more (`all`: whatever it holds, before a close). */
  #release (all: boolean): void {
    const lanes = this.#lanes
    while (lanes.length > 0 && (all || !this.#socket.writableNeedDrain)) this.#queue(ITEM_DATA, (lanes.shift() as Waiting).payload)
  }

  /** Adds an item to the current record; the record goes out at the end of the turn. */
  #queue (type: number, payload: Uint8Array): void {
    if (!this.#record.fits(payload.length)) this.#sealRecord()
    this.#record.append(type, payload)
    if (this.#flushScheduled) return
    this.#flushScheduled = true
    // At the end of this turn of the event loop, not at the next tick: a frame this node relays
    // goes out after its local subscribers took it (their for-await bodies are microtasks, which
    // run after process.nextTick). Written first, the relay woke the next hop, which on a shared
    // machine took the core from this node's own subscriber: paths bench, one hop p50 2.0 -> 1.2-1.4 ms
    // with relays behind it, three hops within the noise (README "Benchmarks", issue 15). The
    // relay's write waits for the synchronous part of those subscribers' handlers instead. Sent
    // while the links' delivery pump runs at the end of a turn (turn.ts), at the next tick: a
    // setImmediate there would wait for the end of the next turn (test/mesh/link-flow.test.ts:
    // the honest echo beside a flood, p99 up to 327 ms against 90-150 ms).
    if (inTurnEnd()) process.nextTick(this.#flush)
    else setImmediate(this.#flush)
  }

  #sealRecord (): void {
    if (this.#record.length === 0 || this.#socket.destroyed || this.#socket.writableEnded) return
    const frame = this.#tx.seal(this.#record.take())
    if (!this.#socket.write(frame)) this.#owesDrain = true
    this.counters.bytesOut += frame.length
  }

  protected sendPing (token: number): void {
    const payload = Buffer.allocUnsafe(4)
    payload.writeUInt32BE(token, 0)
    this.#queue(ITEM_PING, payload)
  }

  /** Stops reading the socket: what the peer sends waits in the kernel, then in the peer's own queue (TCP backpressure). */
  protected pauseInput (paused: boolean): void {
    this.#inputPaused = paused
    this.#keepalive.suspend(paused)
    if (paused) this.#socket.pause()
    else this.#socket.resume()
  }

  /** Decoding errors (an oversized frame, a failed decryption, a bad record) destroy the link. */
  #onData (chunk: Buffer | undefined): void {
    try {
      if (chunk === undefined) this.#decoder.resume()
      else this.#decoder.push(chunk)
    } catch (err) {
      this.destroy(isMeshError(err) ? err : meshError('ERR_LINK_CLOSED', 'failed to read from the link', { cause: err }))
    }
  }

  readonly #onItem = (type: number, payload: Buffer): void => {
    if (!this.open) return
    if (type === ITEM_DATA) {
      this.receivedMessage(payload)
    } else if (type === ITEM_PING) {
      this.receivedControl(0)
      // A peer that pings and never reads must not grow our send queue: past its bound, pings go unanswered.
      if (this.bufferedBytes + ITEM_HEADER_BYTES + payload.length <= this.#maxBuffered) this.#queue(ITEM_PONG, payload)
    } else if (type === ITEM_PONG) {
      if (payload.length === 4) this.receivedPong(payload.readUInt32BE(0))
    } else if (type === ITEM_CLOSE) {
      const why = payload.toString('latin1')
      this.inOrder(() => { this.#shutdown(CLOSE_WHY.test(why) ? { reason: 'remote', why } : { reason: 'remote' }, false) })
    }
  }

  #onFrame (body: Buffer): void {
    if (!this.open) return
    this.counters.bytesIn += body.length + 4
    this.receivedBytes(body.length + 4)
    this.#keepalive.heard()
    readRecord(this.#rx.open(body), this.#options.maxMessageBytes, this.#onItem)
  }

  #onDrain (): void {
    if (!this.open) return
    this.#release(false)
    if (!this.#owesDrain || this.#lanes.length > 0) return
    this.#owesDrain = false
    this.emit('drain')
  }

  #onClose (): void {
    if (this.#closeTimer !== undefined) this.clock.clearTimeout(this.#closeTimer)
    this.#keepalive.stop()
    this.#decoder.stop()
    this.finishClose({ reason: 'remote', error: meshError('ERR_LINK_CLOSED', `the connection to ${this.remote.id} closed`) })
  }

  /** Graceful: flushes what is queued, tells the peer (unless it told us), half-closes; destroys after `closeTimeout`. */
  #shutdown (info: LinkCloseInfo, tell: boolean): void {
    if (!this.beginClose(info)) return
    this.#keepalive.stop()
    this.#release(true)
    if (tell && this.#socket.writable) this.#queue(ITEM_CLOSE, info.why === undefined ? EMPTY : Buffer.from(info.why, 'latin1'))
    this.#sealRecord()
    this.#socket.end()
    // Read on to the peer's FIN, dropping what comes (nothing is delivered once closing): a socket
    // left paused by flow control (budget, turn, full inbox) never sees the FIN, so its `close`
    // waited for closeTimeout, and, its handle idle and every timer unref'd, a process with nothing
    // else to do exited 13 in the middle of stop() (`npm run bench`, traffic, issue 15).
    this.#decoder.stop()
    this.#socket.resume()
    this.#closeTimer = this.clock.setTimeout(() => { this.#socket.destroy() }, this.#options.closeTimeout)
  }

  async close (options: { why?: string } = {}): Promise<void> {
    this.#shutdown(closeInfo(options.why), true)
    await this.closedPromise
  }

  replace (): void {
    this.#shutdown({ reason: 'replaced' }, true)
  }

  destroy (err?: Error): void {
    this.#lanes.clear()
    this.beginClose(err === undefined ? { reason: 'local' } : { reason: 'error', error: err })
    this.#keepalive.stop()
    this.#decoder.stop()
    this.#socket.destroy()
  }
}

/** `::ffff:10.0.0.1` (an IPv4 peer on a dual-stack socket) as `10.0.0.1`. */
export function plainAddress (address: string | undefined): string | undefined {
  return address?.startsWith('::ffff:') === true && address.includes('.') ? address.slice(7) : address
}
