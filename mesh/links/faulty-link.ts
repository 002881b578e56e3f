import { meshError, mulberry32, systemClock, type Clock, type TimerHandle } from '../../shared/index.js'
import type { Link, LinkCloseInfo, LinkCounters, LinkEvents, LinkFlowCounters, RemotePeer, SendOptions } from './types.js'

/**
 * Seeded loss, delay and duplication on the sending side of any link — the project's netem
 * (the kernel's `tc netem` is not available everywhere, NETWORK.md). The same seed and the same
 * sequence of sends (and of setting changes) give the same fate to every message: while any
 * fault is set, each send draws exactly four numbers from a mulberry32 stream (loss, duplicate,
 * delay of each copy), whatever the outcome; with none set, a send draws nothing and goes
 * straight through (unless partitioned). With a delay range, messages overtake each other, as
 * on a real network path.
 */
export interface LinkFaults {
  /** Probability in [0, 1] that a message is dropped. */
  loss?: number
  /** Probability in [0, 1] that a message is sent twice. */
  duplicate?: number
  /** Delay in ms, fixed or drawn uniformly from [min, max]. */
  delay?: number | readonly [min: number, max: number]
  /** Messages held back at most (netem's `limit`); beyond it they are dropped (default 10,000). */
  limit?: number
}

export interface FaultInit extends LinkFaults {
  seed: number
  /** Drops every message while it returns true (a partition). */
  blocked?: () => boolean
}

export interface FaultStats {
  sent: number
  dropped: number
  duplicated: number
  delayed: number
}

export interface FaultyLink extends Link {
  readonly faults: Readonly<FaultStats>
  /** The link underneath. */
  readonly inner: Link
}

/** What a faulty link consults on every send: its own stream, the current settings, the partition. */
export interface FaultSource {
  readonly next: () => number
  readonly settings: () => Readonly<LinkFaults>
  readonly blocked: () => boolean
}

const DEFAULT_LIMIT = 10_000

class FaultInjector implements FaultyLink {
  readonly inner: Link
  readonly faults: FaultStats = { sent: 0, dropped: 0, duplicated: 0, delayed: 0 }
  readonly #source: FaultSource
  readonly #clock: Clock
  readonly #timers = new Set<TimerHandle>()

  constructor (inner: Link, source: FaultSource, clock: Clock) {
    this.inner = inner
    this.#source = source
    this.#clock = clock
    inner.once('close', () => { this.#clearTimers() })
  }

  get remote (): RemotePeer { return this.inner.remote }
  get initiator (): boolean { return this.inner.initiator }
  get open (): boolean { return this.inner.open }
  get writable (): boolean { return this.inner.writable }
  get bufferedBytes (): number { return this.inner.bufferedBytes }
  get counters (): Readonly<LinkCounters> { return this.inner.counters }
  get flow (): Readonly<LinkFlowCounters> { return this.inner.flow }
  get remoteAddress (): string | undefined { return this.inner.remoteAddress }
  get openedAt (): number { return this.inner.openedAt }
  get lastMessageAt (): number { return this.inner.lastMessageAt }
  get pending (): number { return this.inner.pending }
  get closeInfo (): LinkCloseInfo | undefined { return this.inner.closeInfo }

  send (msg: Uint8Array, options?: SendOptions): void {
    if (!this.inner.open) throw meshError('ERR_LINK_CLOSED', `the link to ${this.inner.remote.id} is closed; wait for a new link`)
    const { next, blocked } = this.#source
    const settings = this.#source.settings()
    if (!faulty(settings)) {
      this.faults.sent++
      if (blocked()) this.faults.dropped++
      else this.inner.send(msg, options)
      return
    }
    const lose = next() < (settings.loss ?? 0)
    const twice = next() < (settings.duplicate ?? 0)
    const delays = [delayOf(settings, next()), delayOf(settings, next())]
    this.faults.sent++
    if (lose || blocked()) {
      this.faults.dropped++
      return
    }
    if (twice) this.faults.duplicated++
    const copies = twice ? 2 : 1
    for (let i = 0; i < copies; i++) {
      const delay = delays[i] as number
      if (delay <= 0) {
        this.inner.send(msg, options)
        continue
      }
      if (this.#timers.size >= (settings.limit ?? DEFAULT_LIMIT)) {
        this.faults.dropped++
        continue
      }
      this.faults.delayed++
      const copy = new Uint8Array(msg)
      const timer = this.#clock.setTimeout(() => {
        this.#timers.delete(timer)
        if (blocked() || !this.inner.open) {
          this.faults.dropped++
          return
        }
        try {
          this.inner.send(copy, options)
        } catch {
          this.faults.dropped++ // backpressure or closed by now: the network lost it
        }
      }, delay)
      this.#timers.add(timer)
    }
  }

  #clearTimers (): void {
    for (const timer of this.#timers) this.#clock.clearTimeout(timer)
    this.#timers.clear()
  }

  async ping (options?: { signal?: AbortSignal }): Promise<number> { return await this.inner.ping(options) }

  /** Messages still held back by a delay are lost. */
  async close (options?: { why?: string }): Promise<void> {
    this.#clearTimers()
    await this.inner.close(options)
  }

  destroy (err?: Error): void {
    this.#clearTimers()
    this.inner.destroy(err)
  }

  on<K extends keyof LinkEvents & string> (event: K, listener: (...args: LinkEvents[K]) => void): this {
    this.inner.on(event, listener)
    return this
  }

  once<K extends keyof LinkEvents & string> (event: K, listener: (...args: LinkEvents[K]) => void): this {
    this.inner.once(event, listener)
    return this
  }

  off<K extends keyof LinkEvents & string> (event: K, listener: (...args: LinkEvents[K]) => void): this {
    this.inner.off(event, listener)
    return this
  }

  async next<K extends keyof LinkEvents & string> (event: K, options?: { signal?: AbortSignal }): Promise<LinkEvents[K]> {
    return await this.inner.next(event, options)
  }

  listenerCount<K extends keyof LinkEvents & string> (event: K): number {
    return this.inner.listenerCount(event)
  }
}

function faulty (settings: Readonly<LinkFaults>): boolean {
  return (settings.loss ?? 0) > 0 || (settings.duplicate ?? 0) > 0 || (settings.delay ?? 0) !== 0
}

function delayOf (settings: Readonly<LinkFaults>, draw: number): number {
  const delay = settings.delay ?? 0
  if (typeof delay === 'number') return delay
  return delay[0] + draw * (delay[1] - delay[0])
}

const never = (): boolean => false

/** Wraps `link` so that what it sends is lost, delayed and duplicated as `source` says at each send. */
export function faultyLink (link: Link, source: FaultSource, clock: Clock): FaultyLink {
  return new FaultInjector(link, source, clock)
}

/** Wraps `link` so that what it sends is lost, delayed and duplicated as `init` says, reproducibly. */
export function withFaults (link: Link, init: FaultInit, components: { clock?: Clock } = {}): FaultyLink {
  return faultyLink(link, { next: mulberry32(init.seed), settings: () => init, blocked: init.blocked ?? never }, components.clock ?? systemClock)
}
