import { meshError, type MeshError } from '../../shared/index.js'
import { TypedEmitter } from '../events.js'
import type { Clock } from '../clock.js'
import type { Link, LinkCloseInfo, LinkCounters, LinkEvents, RemotePeer } from './types.js'

interface PendingPing {
  readonly start: number
  resolve (rtt: number): void
  reject (err: Error): void
}

/**
 * What every link implementation shares: counters, the open → closing → closed lifecycle with
 * exactly one `close` event and nothing after it, ping bookkeeping, and an inbox that holds
 * messages arriving before anyone listens. A link handed out by `dial()` or the `link` event may
 * already have messages in flight; they wait in the inbox (bounded: input is paused once it holds
 * `inboxLimit` bytes, which pushes back on the peer) until a `message` listener is attached.
 */
export abstract class BaseLink extends TypedEmitter<LinkEvents> implements Link {
  readonly remote: RemotePeer
  readonly initiator: boolean
  readonly counters: LinkCounters = { framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0 }
  protected readonly clock: Clock
  #state: 'open' | 'closing' | 'closed' = 'open'
  #closeInfo: LinkCloseInfo | undefined
  readonly #closed: Promise<void>
  #resolveClosed!: () => void
  readonly #pings = new Map<number, PendingPing>()
  #nextPing = 1
  readonly #inboxLimit: number
  #inbox: Uint8Array[] = []
  #inboxBytes = 0
  #flushing = false

  constructor (remote: RemotePeer, initiator: boolean, clock: Clock, inboxLimit: number) {
    super()
    this.remote = remote
    this.initiator = initiator
    this.clock = clock
    this.#inboxLimit = inboxLimit
    this.#closed = new Promise((resolve) => { this.#resolveClosed = resolve })
  }

  get open (): boolean {
    return this.#state === 'open'
  }

  abstract get writable (): boolean
  abstract get bufferedBytes (): number
  abstract send (msg: Uint8Array): void
  abstract close (): Promise<void>
  abstract destroy (err?: Error): void
  /** Sends a ping frame carrying `token`; the peer echoes it in a pong. */
  protected abstract sendPing (token: number): void
  /** Stops (true) or restarts (false) reading from the peer. */
  protected abstract pauseInput (paused: boolean): void

  override on<K extends keyof LinkEvents & string> (event: K, listener: (...args: LinkEvents[K]) => void): this {
    super.on(event, listener)
    if (event === 'message' && this.#inbox.length > 0) this.#scheduleFlush()
    return this
  }

  override once<K extends keyof LinkEvents & string> (event: K, listener: (...args: LinkEvents[K]) => void): this {
    super.once(event, listener)
    if (event === 'message' && this.#inbox.length > 0) this.#scheduleFlush()
    return this
  }

  async ping (options: { signal?: AbortSignal } = {}): Promise<number> {
    if (this.#state !== 'open') throw this.closedError()
    options.signal?.throwIfAborted()
    const token = this.#nextPing
    this.#nextPing = this.#nextPing >= 0xffff_ffff ? 1 : this.#nextPing + 1
    return await new Promise<number>((resolve, reject) => {
      const onAbort = (): void => {
        this.#pings.delete(token)
        reject(meshError('ERR_ABORTED', 'ping aborted', { cause: options.signal?.reason }))
      }
      options.signal?.addEventListener('abort', onAbort, { once: true })
      this.#pings.set(token, {
        start: this.clock.now(),
        resolve: (rtt) => { options.signal?.removeEventListener('abort', onAbort); resolve(rtt) },
        reject: (err) => { options.signal?.removeEventListener('abort', onAbort); reject(err) }
      })
      this.sendPing(token)
    })
  }

  /** Call when a pong arrives; token 0 is a keepalive ping nobody waits for. */
  protected receivedPong (token: number): void {
    const ping = this.#pings.get(token)
    if (ping === undefined) return
    this.#pings.delete(token)
    ping.resolve(this.clock.now() - ping.start)
  }

  /** Call for each message received, in order; counts it and delivers it (or holds it in the inbox). */
  protected receivedMessage (msg: Uint8Array): void {
    if (this.#state !== 'open') return
    this.counters.framesIn++
    if (this.#inbox.length === 0 && this.listenerCount('message') > 0) {
      this.#deliver(msg)
      return
    }
    this.#inbox.push(msg)
    this.#inboxBytes += msg.length
    if (this.#inboxBytes >= this.#inboxLimit) this.pauseInput(true)
  }

  /** A listener that throws does not unwind into the transport: the link is destroyed with its error. */
  #deliver (msg: Uint8Array): void {
    try {
      this.emit('message', msg)
    } catch (err) {
      this.destroy(meshError('ERR_LINK_CLOSED', `a 'message' listener threw (${err instanceof Error ? err.message : String(err)}); the link is destroyed`, { cause: err }))
    }
  }

  #scheduleFlush (): void {
    if (this.#flushing) return
    this.#flushing = true
    queueMicrotask(() => {
      this.#flushing = false
      while (this.#state === 'open' && this.#inbox.length > 0 && this.listenerCount('message') > 0) {
        const msg = this.#inbox.shift() as Uint8Array
        this.#inboxBytes -= msg.length
        this.#deliver(msg)
      }
      if (this.#state === 'open' && this.#inboxBytes < this.#inboxLimit) this.pauseInput(false)
    })
  }

  /** Moves to `closing` once; returns false if already closing or closed. The first reason given wins. */
  protected beginClose (info: LinkCloseInfo): boolean {
    if (this.#state !== 'open') return false
    this.#state = 'closing'
    this.#closeInfo = info
    this.#inbox = []
    this.#inboxBytes = 0
    return true
  }

  /** Emits `close` exactly once and silences the link for good. */
  protected finishClose (fallback: LinkCloseInfo): void {
    if (this.#state === 'closed') return
    this.#state = 'closed'
    const info = this.#closeInfo ?? fallback
    this.#closeInfo = info
    const err = this.closedError()
    for (const ping of this.#pings.values()) ping.reject(err)
    this.#pings.clear()
    this.emit('close', info)
    this.removeAllListeners()
    this.#resolveClosed()
  }

  protected get closedPromise (): Promise<void> {
    return this.#closed
  }

  /** Why the link closed, once it is closing. */
  get closeInfo (): LinkCloseInfo | undefined {
    return this.#closeInfo
  }

  protected closedError (): MeshError {
    return meshError('ERR_LINK_CLOSED', `the link to ${this.remote.id} is closed${this.#closeInfo === undefined ? '' : ` (${this.#closeInfo.reason})`}; wait for a new link`, { cause: this.#closeInfo?.error })
  }

  /** Closes gracefully with reason `replaced`: the transport keeps another link to the same device. */
  abstract replace (): void

  async [Symbol.asyncDispose] (): Promise<void> {
    await this.close()
  }
}
