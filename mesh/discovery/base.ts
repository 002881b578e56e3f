import { meshError } from '../../shared/index.js'
import { TypedEmitter } from '../events.js'
import {
  INVALID_REASONS, type Discovery, type DiscoveryCounters, type DiscoveryEvents, type InvalidEvent, type InvalidReason,
  type PeerInfo, type PeerSource
} from './types.js'

type State = 'stopped' | 'starting' | 'started' | 'stopping'

/**
 * Lifecycle, peer table and counters shared by every Discovery (libp2p `startable.ts`):
 * start/stop are idempotent and may overlap, the subclass's own AbortSignal is aborted on stop,
 * and nothing is emitted unless started — in particular nothing after `stop()` was called.
 */
export abstract class DiscoveryBase extends TypedEmitter<DiscoveryEvents> implements Discovery {
  abstract readonly kind: PeerSource
  #state: State = 'stopped'
  #transition: Promise<void> = Promise.resolve()
  #controller = new AbortController()
  readonly #peers = new Map<string, PeerInfo>()
  #found = 0
  #lost = 0
  #errors = 0
  readonly #invalid = Object.fromEntries(INVALID_REASONS.map((r) => [r, 0])) as Record<InvalidReason, number>

  /** Opens sockets, timers; `signal` aborts when stop() is called (or the caller's signal aborts). */
  protected abstract onStart (signal: AbortSignal): Promise<void>
  /** Closes everything onStart opened, awaiting it. */
  protected abstract onStop (options: { goodbye: boolean }): Promise<void>

  get started (): boolean { return this.#state === 'started' }
  /** True from start() until stop(): the window in which events may be emitted. */
  protected get live (): boolean { return this.#state === 'started' || this.#state === 'starting' }

  async start (options: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#state === 'started' || this.#state === 'starting') { await this.#transition; return }
    await this.#transition // a stop in progress finishes first
    if (this.#state !== 'stopped') { await this.#transition; return }
    if (options.signal?.aborted === true) throw meshError('ERR_ABORTED', `starting ${this.kind} discovery was aborted`, { cause: options.signal.reason })
    this.#state = 'starting'
    this.#controller = new AbortController()
    const signal = options.signal === undefined ? this.#controller.signal : AbortSignal.any([this.#controller.signal, options.signal])
    this.#transition = (async () => {
      try {
        await this.onStart(signal)
        if (this.#state === 'starting') this.#state = 'started'
      } catch (err) {
        this.#state = 'stopping'
        this.#controller.abort(err)
        await this.onStop({ goodbye: true }).catch(() => {})
        this.#peers.clear()
        this.#state = 'stopped'
        throw err
      }
    })()
    await this.#transition
  }

  async stop (options: { goodbye?: boolean } = {}): Promise<void> {
    if (this.#state === 'stopped' || this.#state === 'stopping') { await this.#transition.catch(() => {}); return }
    const starting = this.#transition
    this.#state = 'stopping' // from here on nothing is emitted
    this.#controller.abort(meshError('ERR_ABORTED', `${this.kind} discovery stopped`))
    this.#transition = (async () => {
      await starting.catch(() => {})
      try {
        await this.onStop({ goodbye: options.goodbye !== false })
      } finally {
        this.#peers.clear()
        this.#state = 'stopped'
      }
    })()
    await this.#transition
  }

  async [Symbol.asyncDispose] (): Promise<void> { await this.stop() }

  peers (): PeerInfo[] { return [...this.#peers.values()] }

  get counters (): DiscoveryCounters {
    return { found: this.#found, lost: this.#lost, invalid: { ...this.#invalid }, errors: this.#errors }
  }

  /** A new peer, or news about a known one; emits `peer`. */
  protected upsert (peer: PeerInfo): void {
    if (!this.live) return
    const known = this.#peers.get(peer.key)
    if (known !== undefined && samePeer(known, peer)) return
    this.#peers.set(peer.key, peer)
    if (known === undefined) this.#found++
    this.emit('peer', peer)
  }

  protected has (key: string): boolean { return this.#peers.has(key) }
  protected get (key: string): PeerInfo | undefined { return this.#peers.get(key) }

  protected drop (key: string): void {
    const last = this.#peers.get(key)
    if (last === undefined || !this.live) return
    this.#peers.delete(key)
    this.#lost++
    this.emit('peer:lost', key, last)
  }

  protected invalid (event: InvalidEvent): void {
    this.#invalid[event.reason]++
    if (this.live) this.emit('invalid', event)
  }

  protected failed (): void { this.#errors++ }
}

function samePeer (a: PeerInfo, b: PeerInfo): boolean {
  return JSON.stringify(a, replacer) === JSON.stringify(b, replacer)
}

function replacer (_key: string, value: unknown): unknown {
  return value instanceof Uint8Array ? Buffer.from(value).toString('base64') : value
}
