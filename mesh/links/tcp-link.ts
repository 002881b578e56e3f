import type { Socket } from 'node:net'
import { isMeshError, meshError } from '../../shared/index.js'
import { BaseLink } from './base-link.js'
import type { Clock, TimerHandle } from './clock.js'
import type { FrameDecoder } from './framing.js'
import { Keepalive } from './keepalive.js'
import { FRAME_OVERHEAD, ReceiveCipher, SendCipher, TAG_BYTES } from './secure.js'
import type { SessionSecrets } from './handshake.js'
import type { LinkCloseInfo, RemotePeer } from './types.js'

/** Frame types, inside the encryption. Unknown types are ignored, for forward compatibility. */
const TYPE_DATA = 0
const TYPE_PING = 1
const TYPE_PONG = 2
const TYPE_CLOSE = 3
const EMPTY = new Uint8Array(0)

export interface TcpLinkOptions {
  maxMessageBytes: number
  maxBufferedBytes: number
  keepaliveInterval: number
  keepaliveTimeout: number
  closeTimeout: number
}

/**
 * An established, encrypted link over one TCP socket. The handshake driver hands over the socket
 * and its frame decoder; from then on this class owns both. Every send is sealed straight into
 * its wire frame (`secure.ts`); sends within one tick go out in one write (cork/uncork).
 */
export class TcpLink extends BaseLink {
  readonly #socket: Socket
  readonly #decoder: FrameDecoder
  readonly #tx: SendCipher
  readonly #rx: ReceiveCipher
  readonly #keepalive: Keepalive
  readonly #options: TcpLinkOptions
  readonly #maxBuffered: number
  #corked = false
  #inputPaused = false
  #owesDrain = false
  #closeTimer: TimerHandle | undefined

  constructor (socket: Socket, decoder: FrameDecoder, secrets: SessionSecrets, remote: RemotePeer, initiator: boolean, options: TcpLinkOptions, clock: Clock) {
    super(remote, initiator, clock, options.maxBufferedBytes)
    this.#socket = socket
    this.#decoder = decoder
    this.#options = options
    // A refused send must always be followed by `drain`, which the socket only emits after a
    // write crossed its high-water mark: keep the limit above that mark plus one frame.
    this.#maxBuffered = Math.max(options.maxBufferedBytes, socket.writableHighWaterMark + options.maxMessageBytes + FRAME_OVERHEAD)
    this.#tx = new SendCipher(secrets.send)
    this.#rx = new ReceiveCipher(secrets.receive)
    this.#keepalive = new Keepalive(clock, options.keepaliveInterval, options.keepaliveTimeout, {
      ping: () => { this.#write(TYPE_PING, Uint8Array.of(0, 0, 0, 0)) },
      dead: (silentFor) => {
        this.destroy(meshError('ERR_LINK_CLOSED', `no frame from ${remote.id} for ${silentFor} ms; the link is dead`, { details: { reason: 'keepalive', silentFor } }))
      }
    })
    decoder.maxFrameBytes = 1 + options.maxMessageBytes + TAG_BYTES
    decoder.onFrame = (body) => { this.#onFrame(body) }
    socket.on('data', (chunk: Buffer) => { this.#onData(chunk) })
    socket.on('drain', () => { this.#onDrain() })
    socket.on('end', () => {
      this.beginClose({ reason: 'remote', error: meshError('ERR_LINK_CLOSED', `${remote.id} ended the connection without a close frame`) })
    })
    socket.on('error', (err) => {
      this.beginClose({ reason: 'error', error: meshError('ERR_LINK_CLOSED', `the connection to ${remote.id} failed: ${err.message}`, { cause: err }) })
    })
    socket.on('close', () => { this.#onClose() })
    this.#keepalive.start()
    // Frames that followed FINISH wait in the decoder; the handshake left the socket paused.
    this.#read(() => { decoder.resume() })
    if (!this.#inputPaused && this.open) socket.resume()
  }

  get writable (): boolean {
    return this.open && !this.#socket.writableNeedDrain
  }

  get bufferedBytes (): number {
    return this.#socket.writableLength
  }

  send (msg: Uint8Array): void {
    if (!this.open) throw this.closedError()
    if (msg.length > this.#options.maxMessageBytes) {
      throw meshError('ERR_FRAME_TOO_LARGE', `a ${msg.length}-byte message exceeds the link limit of ${this.#options.maxMessageBytes} bytes; split it`, { details: { length: msg.length, limit: this.#options.maxMessageBytes } })
    }
    if (this.#socket.writableLength + msg.length + FRAME_OVERHEAD > this.#maxBuffered) {
      this.#owesDrain = true
      throw meshError('ERR_BACKPRESSURE', `the send queue to ${this.remote.id} holds ${this.#socket.writableLength} bytes (limit ${this.#maxBuffered}); wait for 'drain'`, { details: { bufferedBytes: this.#socket.writableLength, limit: this.#maxBuffered } })
    }
    this.#write(TYPE_DATA, msg)
    this.counters.framesOut++
  }

  #write (type: number, payload: Uint8Array): void {
    const frame = this.#tx.seal(type, payload)
    if (!this.#corked) {
      this.#corked = true
      this.#socket.cork()
      process.nextTick(() => {
        this.#corked = false
        this.#socket.uncork()
      })
    }
    if (!this.#socket.write(frame)) this.#owesDrain = true
    this.counters.bytesOut += frame.length
  }

  protected sendPing (token: number): void {
    const payload = Buffer.allocUnsafe(4)
    payload.writeUInt32BE(token, 0)
    this.#write(TYPE_PING, payload)
  }

  protected pauseInput (paused: boolean): void {
    this.#inputPaused = paused
    if (paused) this.#socket.pause()
    else this.#socket.resume()
  }

  #onData (chunk: Buffer): void {
    this.#read(() => { this.#decoder.push(chunk) })
  }

  /** Runs decoding; an error from it (oversized frame, failed decryption) destroys the link. */
  #read (decode: () => void): void {
    try {
      decode()
    } catch (err) {
      this.destroy(isMeshError(err) ? err : meshError('ERR_LINK_CLOSED', 'failed to read from the link', { cause: err }))
    }
  }

  #onFrame (body: Buffer): void {
    if (!this.open) return
    this.counters.bytesIn += body.length + 4
    this.#keepalive.heard()
    const plain = this.#rx.open(body)
    const type = plain[0]
    if (type === TYPE_DATA) {
      this.receivedMessage(plain.length === 1 ? EMPTY : plain.subarray(1))
    } else if (type === TYPE_PING) {
      this.#write(TYPE_PONG, plain.subarray(1))
    } else if (type === TYPE_PONG) {
      if (plain.length === 5) this.receivedPong(plain.readUInt32BE(1))
    } else if (type === TYPE_CLOSE) {
      this.#shutdown({ reason: 'remote' }, false)
    }
  }

  #onDrain (): void {
    if (!this.#owesDrain || !this.open) return
    this.#owesDrain = false
    this.emit('drain')
  }

  #onClose (): void {
    if (this.#closeTimer !== undefined) this.clock.clearTimeout(this.#closeTimer)
    this.#keepalive.stop()
    this.#decoder.stop()
    this.finishClose({ reason: 'remote', error: meshError('ERR_LINK_CLOSED', `the connection to ${this.remote.id} closed`) })
  }

  /** Graceful: tells the peer (unless it told us), flushes, half-closes; destroys after `closeTimeout`. */
  #shutdown (info: LinkCloseInfo, tell: boolean): void {
    if (!this.beginClose(info)) return
    this.#keepalive.stop()
    if (tell && this.#socket.writable) this.#write(TYPE_CLOSE, EMPTY)
    this.#socket.end()
    this.#closeTimer = this.clock.setTimeout(() => { this.#socket.destroy() }, this.#options.closeTimeout)
  }

  async close (): Promise<void> {
    this.#shutdown({ reason: 'local' }, true)
    await this.closedPromise
  }

  replace (): void {
    this.#shutdown({ reason: 'replaced' }, true)
  }

  destroy (err?: Error): void {
    this.beginClose(err === undefined ? { reason: 'local' } : { reason: 'error', error: err })
    this.#keepalive.stop()
    this.#decoder.stop()
    this.#socket.destroy()
  }
}
