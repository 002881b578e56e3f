import { meshError, systemClock, type Clock, type DeviceId } from '../../shared/index.js'
import { TypedEmitter } from '../events.js'
import type { FaultModel } from './faults.js'
import type {
  DialOptions, Link, ListenOptions, Transport, TransportAddress, TransportCounters, TransportEvents
} from './types.js'

/**
 * A transport seen through a fault model: every link it makes or accepts is wrapped in the
 * model's seeded loss, delay and duplication, and a partition refuses dials across it, turns away
 * links arriving across it and drops what links across it carry. Keepalive pings are the inner
 * link's own, so over TCP a link cut by a partition stays open until its owner closes it (the
 * fleet does at once); the in-memory network also drops pings, and keepalive ends such links.
 */
class FaultyTransport extends TypedEmitter<TransportEvents> implements Transport {
  readonly #inner: Transport
  readonly #model: FaultModel
  readonly #clock: Clock
  readonly #wrapped = new WeakMap<Link, Link>()

  constructor (inner: Transport, model: FaultModel, clock: Clock) {
    super()
    this.#inner = inner
    this.#model = model
    this.#clock = clock
    inner.on('link', (link) => {
      if (this.#model.blocked(this.localId, link.remote.id)) { link.destroy(); return }
      this.emit('link', this.#wrap(link))
    })
    inner.on('refused', (err, from) => this.emit('refused', err, from))
  }

  get localId (): DeviceId { return this.#inner.localId }
  get address (): TransportAddress | undefined { return this.#inner.address }
  get counters (): Readonly<TransportCounters> { return this.#inner.counters }

  /** Open links, as this transport handed them out. */
  get links (): ReadonlyMap<DeviceId, Link> {
    const links = new Map<DeviceId, Link>()
    for (const [id, link] of this.#inner.links) {
      const wrapped = this.#wrapped.get(link)
      if (wrapped !== undefined) links.set(id, wrapped)
    }
    return links
  }

  async listen (options?: ListenOptions): Promise<TransportAddress> { return await this.#inner.listen(options) }

  async dial (address: TransportAddress, options: DialOptions = {}): Promise<Link> {
    const peer = `${address.host}:${address.port}`
    const refused = (): Error => meshError('ERR_LINK_CLOSED', `could not reach ${peer}: partitioned`, { details: { peer, partitioned: true } })
    if (options.expectedId !== undefined && this.#model.blocked(this.localId, options.expectedId)) throw refused()
    const link = await this.#inner.dial(address, options)
    if (this.#model.blocked(this.localId, link.remote.id)) {
      link.destroy()
      throw refused()
    }
    return this.#wrap(link)
  }

  async close (): Promise<void> {
    await this.#inner.close()
    this.removeAllListeners()
  }

  async [Symbol.asyncDispose] (): Promise<void> { await this.close() }

  #wrap (link: Link): Link {
    let wrapped = this.#wrapped.get(link)
    if (wrapped === undefined) {
      wrapped = this.#model.wrap(link, this.localId, this.#clock)
      this.#wrapped.set(link, wrapped)
    }
    return wrapped
  }
}

/** `transport` with `model`'s faults and partitions on every link (TCP, memory or any other). */
export function applyFaults (transport: Transport, model: FaultModel, components: { clock?: Clock } = {}): Transport {
  return new FaultyTransport(transport, model, components.clock ?? systemClock)
}
