import type { Socket } from 'node:net'
import { isMeshError, meshError, type Clock, type MeshError, type TimerHandle } from '../../shared/index.js'
import { FrameDecoder, encodeFrame } from './framing.js'
import { MAX_HANDSHAKE_BYTES, refusalFor } from './handshake.js'

/** How long a refused socket may linger for its REFUSE message to flush before it is destroyed. */
const LINGER_MS = 1000

/**
 * The socket side of a handshake: reads one handshake message at a time (the decoder and the
 * socket pause after each, so bytes that follow FINISH stay queued for the link), writes
 * messages, enforces the handshake timeout and the caller's abort signal, and either refuses
 * (telling the peer why when `refusalFor` allows) or hands socket and decoder over to a link.
 */
export class HandshakeChannel {
  readonly socket: Socket
  readonly decoder: FrameDecoder
  readonly #clock: Clock
  readonly #signal: AbortSignal | undefined
  #frame: Buffer | undefined
  #waiter: { resolve: (frame: Buffer) => void, reject: (err: MeshError) => void } | undefined
  #failure: MeshError | undefined
  #timer: TimerHandle | undefined
  #connected: boolean
  readonly #connecting: Promise<void>
  #rejectConnecting: ((err: MeshError) => void) | undefined
  readonly #onData: (chunk: Buffer) => void
  readonly #onError: (err: NodeJS.ErrnoException) => void
  readonly #onClose: () => void
  readonly #onAbort = (): void => { this.#fail(meshError('ERR_ABORTED', 'the handshake was aborted', { cause: this.#signal?.reason })) }

  /** `peer` names the other end in error messages (`host:port`). */
  constructor (socket: Socket, clock: Clock, timeoutMs: number, signal: AbortSignal | undefined, peer: string) {
    this.socket = socket
    this.#clock = clock
    this.#signal = signal
    this.decoder = new FrameDecoder(MAX_HANDSHAKE_BYTES, (body) => {
      this.decoder.pause()
      socket.pause()
      this.#deliver(Buffer.from(body))
    })
    this.#onData = (chunk) => {
      try {
        this.decoder.push(chunk)
      } catch (err) {
        this.#fail(isMeshError(err) ? err : meshError('ERR_HANDSHAKE', 'unreadable handshake bytes', { cause: err }))
      }
    }
    this.#onError = (err) => {
      this.#fail(!this.#connected
        ? meshError('ERR_LINK_CLOSED', `could not connect to ${peer}: ${err.code ?? err.message}`, { cause: err, details: { peer, errno: err.code } })
        : meshError('ERR_HANDSHAKE', `the connection to ${peer} failed during the handshake: ${err.message}`, { cause: err }))
    }
    this.#connected = !socket.connecting
    this.#connecting = this.#connected
      ? Promise.resolve()
      : new Promise((resolve, reject) => {
        this.#rejectConnecting = reject
        socket.once('connect', () => { this.#connected = true; resolve() })
      })
    this.#connecting.catch(() => {}) // a failure is also reported by next()
    this.#onClose = () => { this.#fail(meshError('ERR_HANDSHAKE', `${peer} closed the connection during the handshake`)) }
    socket.on('data', this.#onData)
    socket.on('error', this.#onError)
    socket.on('close', this.#onClose)
    this.#timer = clock.setTimeout(() => {
      this.#fail(meshError('ERR_HANDSHAKE', `the handshake with ${peer} did not complete within ${timeoutMs} ms`, { details: { peer, timeout: timeoutMs } }))
    }, timeoutMs)
    if (signal?.aborted === true) this.#onAbort()
    else signal?.addEventListener('abort', this.#onAbort, { once: true })
  }

  /** Resolves once a dialed socket is connected. */
  async connected (): Promise<void> {
    if (this.#failure !== undefined) throw this.#failure
    await this.#connecting
  }

  /** The next handshake message. */
  async next (): Promise<Buffer> {
    if (this.#failure !== undefined) throw this.#failure
    const frame = this.#frame
    if (frame !== undefined) {
      this.#frame = undefined
      return frame
    }
    const wait = new Promise<Buffer>((resolve, reject) => { this.#waiter = { resolve, reject } })
    try {
      this.decoder.resume()
    } catch (err) {
      this.#fail(isMeshError(err) ? err : meshError('ERR_HANDSHAKE', 'unreadable handshake bytes', { cause: err }))
    }
    if (this.#failure === undefined) this.socket.resume()
    return await wait
  }

  /** Ends the handshake from outside (its place was taken for a newer one): `next()` rejects with `err`. */
  abort (err: MeshError): void {
    this.#fail(err)
  }

  send (msg: Uint8Array): void {
    if (this.#failure !== undefined) throw this.#failure
    this.socket.write(encodeFrame(msg))
  }

  #deliver (frame: Buffer): void {
    const waiter = this.#waiter
    if (waiter === undefined) {
      this.#frame = frame
      return
    }
    this.#waiter = undefined
    waiter.resolve(frame)
  }

  #fail (err: MeshError): void {
    if (this.#failure !== undefined) return
    this.#failure = err
    this.#rejectConnecting?.(err)
    const waiter = this.#waiter
    this.#waiter = undefined
    waiter?.reject(err)
    this.socket.destroy()
    this.#release()
  }

  #release (): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer)
    this.#timer = undefined
    this.#signal?.removeEventListener('abort', this.#onAbort)
    this.socket.off('data', this.#onData)
    this.socket.off('error', this.#onError)
    this.socket.off('close', this.#onClose)
  }

  /** Ends a failed handshake: sends a REFUSE when that is safe, then closes the socket. */
  refuse (err: unknown): void {
    this.#release()
    this.decoder.stop()
    const refusal = this.#failure === undefined ? refusalFor(err) : undefined
    this.#failure ??= isMeshError(err) ? err : meshError('ERR_HANDSHAKE', 'the handshake failed', { cause: err })
    this.socket.on('error', () => {})
    if (refusal === undefined || this.socket.destroyed) {
      this.socket.destroy()
      return
    }
    this.socket.end(encodeFrame(refusal))
    const timer = this.#clock.setTimeout(() => { this.socket.destroy() }, LINGER_MS)
    this.socket.once('close', () => { this.#clock.clearTimeout(timer) })
  }

  /** Ends a completed handshake that produced no link (a duplicate): flush and close. */
  end (): void {
    this.#release()
    this.decoder.stop()
    this.socket.on('error', () => {})
    this.socket.end()
    const timer = this.#clock.setTimeout(() => { this.socket.destroy() }, LINGER_MS)
    this.socket.once('close', () => { this.#clock.clearTimeout(timer) })
  }

  /** Stops listening to the socket: a link takes it and the decoder over. */
  handover (): { socket: Socket, decoder: FrameDecoder } {
    this.#release()
    return { socket: this.socket, decoder: this.decoder }
  }
}
