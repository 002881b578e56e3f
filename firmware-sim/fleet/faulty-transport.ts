import { meshError, type DeviceId } from '../../shared/index.js'
import {
  TypedEmitter, withFaults, type DialOptions, type FaultInit, type Link, type ListenOptions, type Transport,
  type TransportAddress, type TransportEvents
} from '../../mesh/index.js'

/**
 * A transport wrapper through which a simulated fleet injects faults into real links (the kernel's
 * `tc netem` is not available everywhere, ../shared/NETWORK.md): seeded loss, delay and duplication
 * on every link (mesh/links/faults.ts), and partitions: a dial across groups is refused and a link
 * across groups drops everything, until `heal()`; the fleet also closes such links, as a real
 * partition eventually does through keepalive.
 */
export interface LinkFaults { loss?: number, delay?: number | readonly [number, number], duplicate?: number }

export class FaultPlan {
  #groups: Map<DeviceId, number> | undefined
  faults: LinkFaults = {}
  readonly seed: number

  constructor (seed: number) { this.seed = seed }

  /** Splits the fleet: devices in different groups cannot talk; devices in no group talk to no one. */
  partition (groups: ReadonlyArray<readonly DeviceId[]>): void {
    this.#groups = new Map()
    groups.forEach((group, i) => { for (const id of group) this.#groups?.set(id, i) })
  }

  heal (): void { this.#groups = undefined }

  get partitioned (): boolean { return this.#groups !== undefined }

  blocked (a: DeviceId, b: DeviceId): boolean {
    if (this.#groups === undefined) return false
    const ga = this.#groups.get(a)
    return ga === undefined || ga !== this.#groups.get(b)
  }
}

export class FaultyTransport extends TypedEmitter<TransportEvents> implements Transport {
  readonly #inner: Transport
  readonly #plan: FaultPlan
  readonly #wrapped = new WeakMap<Link, Link>()
  #count = 0

  constructor (inner: Transport, plan: FaultPlan) {
    super()
    this.#inner = inner
    this.#plan = plan
    inner.on('link', (link) => {
      if (this.#plan.blocked(this.localId, link.remote.id)) { link.destroy(); return }
      this.emit('link', this.#wrap(link))
    })
    inner.on('refused', (err, from) => this.emit('refused', err, from))
  }

  get localId (): DeviceId { return this.#inner.localId }
  get address (): TransportAddress | undefined { return this.#inner.address }
  get links (): ReadonlyMap<DeviceId, Link> {
    return new Map([...this.#inner.links].map(([id, link]) => [id, this.#wrap(link)]))
  }

  async listen (options?: ListenOptions): Promise<TransportAddress> { return await this.#inner.listen(options) }

  async dial (address: TransportAddress, options: DialOptions = {}): Promise<Link> {
    if (options.expectedId !== undefined && this.#plan.blocked(this.localId, options.expectedId)) {
      throw meshError('ERR_LINK_CLOSED', `could not reach ${address.host}:${address.port}: partitioned`, { details: { partitioned: true } })
    }
    const link = await this.#inner.dial(address, options)
    if (this.#plan.blocked(this.localId, link.remote.id)) {
      link.destroy()
      throw meshError('ERR_LINK_CLOSED', `could not reach ${address.host}:${address.port}: partitioned`, { details: { partitioned: true } })
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
      const remote = link.remote.id
      const faults = this.#plan.faults
      const init: FaultInit = {
        seed: (this.#plan.seed * 7919 + ++this.#count) >>> 0,
        blocked: () => this.#plan.blocked(this.localId, remote),
        ...(faults.loss === undefined ? {} : { loss: faults.loss }),
        ...(faults.delay === undefined ? {} : { delay: faults.delay }),
        ...(faults.duplicate === undefined ? {} : { duplicate: faults.duplicate })
      }
      wrapped = withFaults(link, init)
      this.#wrapped.set(link, wrapped)
    }
    return wrapped
  }
}
