import { isMeshError, meshError, systemClock, type Clock, type DeviceId, type KeyPair } from '../../shared/index.js'
import { TypedEmitter } from '../events.js'
import { checkAuthorized, checkExpected, checkNotSelf } from './checks.js'
import { FaultModel, type FaultModelInit } from './faults.js'
import { applyFaults } from './faulty-transport.js'
import { resolveBudget } from './base-link.js'
import { MemoryLink, type MemoryLinkOptions } from './memory-link.js'
import { acceptAcross, dialAcross, type BridgeEnd, type ThreadBridge } from './thread-bridge.js'
import type { Turn } from './turn.js'
import {
  DEFAULT_KEEPALIVE_INTERVAL, DEFAULT_KEEPALIVE_TIMEOUT, DEFAULT_MAX_BUFFERED_BYTES, DEFAULT_MAX_MESSAGE_BYTES, emptyTransportCounters,
  type Admit, type Authorize, type DialOptions, type Link, type LinkOptions, type ListenOptions, type Transport,
  type TransportAddress, type TransportCounters, type TransportEvents
} from './types.js'

/**
 * Links without sockets: the Link/Transport contract in one process, for fast tests and the
 * fleet simulator. The network is a switchboard of listening addresses. Its faults are a
 * `FaultModel` (faults.ts), applied to every transport as to any other (`applyFaults`): seeded
 * loss, delay and duplication per link end, so a run with the same seed delivers the same
 * messages in the same way, and partitions. A partition refuses dials across it and drops what
 * is in flight across it, keepalive pings included, so keepalive closes the links it cuts, as
 * it would on TCP.
 */
export interface MemoryNetworkInit extends FaultModelInit {
  /** Ports picked for `listen({ port: 0 })` count up from here (default 40000): joined networks keep apart. */
  firstPort?: number
}

export interface MemoryNetworkComponents {
  clock?: Clock
  /** The event loop's slices for this network's links (turn.ts; default: the process's shared turn). */
  turn?: Turn
  /** A fault model shared with other transports (a fleet's); default one built from `init`. */
  faults?: FaultModel
  /**
   * Joins this network to memory networks in other threads of the process (thread-bridge.ts): a
   * dial to an address nobody listens on here goes to the thread `bridge.route` names.
   */
  bridge?: ThreadBridge
}

export interface MemoryNetwork {
  /** Loss, delay, duplication and partitions on this network (`faults.partition(...)`, `faults.heal()`). */
  readonly faults: FaultModel
  /** A transport for one device on this network. */
  createTransport (init: LinkOptions, components: { keys: KeyPair, clock?: Clock }): Transport
  /** Stops taking dials from other threads (a bridged network); idempotent. Transports close on their own. */
  close (): void
}

class Network implements MemoryNetwork {
  readonly faults: FaultModel
  readonly turn: Turn | undefined
  readonly #clock: Clock
  readonly listeners = new Map<string, MemoryTransport>()
  readonly #ports = new Map<string, number>()
  readonly #firstPort: number
  readonly bridge: ThreadBridge | undefined
  #stopAccepting: (() => void) | undefined

  constructor (faults: FaultModel, clock: Clock, turn?: Turn, bridge?: ThreadBridge, firstPort = 40_000) {
    this.faults = faults
    this.#clock = clock
    this.turn = turn
    this.bridge = bridge
    this.#firstPort = firstPort
    if (bridge !== undefined) this.#stopAccepting = acceptAcross(bridge, (key) => this.listeners.get(key)?.bridgeEnd, faults.blocked)
  }

  close (): void {
    this.#stopAccepting?.()
    this.#stopAccepting = undefined
  }

  createTransport (init: LinkOptions, components: { keys: KeyPair, clock?: Clock }): Transport {
    const clock = components.clock ?? this.#clock
    return applyFaults(new MemoryTransport(this, init, components.keys, clock), this.faults, { clock })
  }

  allocate (host: string, port: number): number {
    if (port !== 0) return port
    const next = (this.#ports.get(host) ?? this.#firstPort) + 1
    this.#ports.set(host, next)
    return next
  }
}

class MemoryTransport extends TypedEmitter<TransportEvents> implements Transport {
  readonly localId: DeviceId
  readonly keys: KeyPair
  readonly authorize: Authorize | undefined
  readonly admit: Admit | undefined
  readonly credential: Uint8Array | undefined
  readonly #network: Network
  readonly #clock: Clock
  readonly #options: MemoryLinkOptions
  readonly #links = new Map<DeviceId, Link>()
  readonly counters: TransportCounters = emptyTransportCounters()
  #address: TransportAddress | undefined
  #closing: Promise<void> | undefined

  constructor (network: Network, init: LinkOptions, keys: KeyPair, clock: Clock) {
    super()
    this.#network = network
    this.keys = keys
    this.localId = keys.id
    this.authorize = init.authorize
    this.admit = init.admit
    this.credential = init.credential
    this.#clock = clock
    this.#options = {
      maxMessageBytes: init.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
      maxBufferedBytes: init.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES,
      keepaliveInterval: init.keepaliveInterval ?? DEFAULT_KEEPALIVE_INTERVAL,
      keepaliveTimeout: init.keepaliveTimeout ?? DEFAULT_KEEPALIVE_TIMEOUT,
      receiveBudget: resolveBudget(init.receiveBudget),
      turn: network.turn
    }
  }

  get address (): TransportAddress | undefined { return this.#address }
  get links (): ReadonlyMap<DeviceId, Link> { return this.#links }

  async listen (options: ListenOptions = {}): Promise<TransportAddress> {
    this.#assertOpen()
    if (this.#address !== undefined) return this.#address
    options.signal?.throwIfAborted()
    const host = options.host ?? 'memory'
    const port = this.#network.allocate(host, options.port ?? 0)
    const key = `${host}:${port}`
    if (this.#network.listeners.has(key)) throw meshError('ERR_LINK_CLOSED', `cannot listen on ${key}: the address is in use`)
    this.#network.listeners.set(key, this)
    this.#address = { host, port }
    return this.#address
  }

  async dial (address: TransportAddress, options: DialOptions = {}): Promise<Link> {
    this.#assertOpen()
    if (options.signal?.aborted === true) throw meshError('ERR_ABORTED', 'the dial was aborted', { cause: options.signal.reason })
    await Promise.resolve() // a dial never completes synchronously, as on a socket
    this.#assertOpen()
    const peer = `${address.host}:${address.port}`
    const target = this.#network.listeners.get(peer)
    const trunk = target === undefined ? this.#network.bridge?.route(address) : undefined
    if (trunk !== undefined) return await dialAcross(this.bridgeEnd, trunk, address, options, this.#network.faults.blocked)
    if (target === undefined || target.#closing !== undefined) throw meshError('ERR_LINK_CLOSED', `could not connect to ${peer}: nothing listens there`, { details: { peer } })
    if (this.#network.faults.blocked(this.localId, target.localId)) {
      throw meshError('ERR_LINK_CLOSED', `could not connect to ${peer}: unreachable (partitioned)`, { details: { peer, partitioned: true } })
    }
    const remote = { id: target.localId, publicKey: target.keys.publicKey, ...(target.credential === undefined ? {} : { credential: target.credential }) }
    const local = { id: this.localId, publicKey: this.keys.publicKey, ...(this.credential === undefined ? {} : { credential: this.credential }) }
    checkNotSelf(remote, this.keys.publicKey)
    checkExpected(remote, options)
    checkAuthorized(remote, this.authorize)
    try {
      target.admit?.(local)
      checkAuthorized(local, target.authorize)
    } catch (err) {
      if (isMeshError(err)) target.emit('refused', err, this.#address)
      const code = isMeshError(err) ? err.code : 'ERR_NOT_IN_ROSTER'
      throw meshError(code, `the peer refused the link: ${code}`, { details: { remote: true } })
    }
    this.admit?.(remote)
    const existing = this.#links.get(remote.id)
    if (existing?.open === true) return existing
    target.counters.connections++
    target.counters.handshakes++
    const { blocked } = this.#network.faults
    const ours = new MemoryLink(this.localId, remote, true, this.#options, this.#clock, blocked, address.host)
    const theirs = new MemoryLink(target.localId, local, false, target.#options, target.#clock, blocked, this.#address?.host)
    MemoryLink.pair(ours, theirs)
    const link = this.#adopt(ours)
    target.#adopt(theirs)
    return link
  }

  /** What a dial from or to another thread needs of this transport (thread-bridge.ts). */
  get bridgeEnd (): BridgeEnd {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const transport = this
    return {
      localId: this.localId,
      keys: this.keys,
      authorize: this.authorize,
      admit: this.admit,
      credential: this.credential,
      options: this.#options,
      clock: this.#clock,
      counters: this.counters,
      links: this.#links,
      get address () { return transport.#address },
      get closed () { return transport.#closing !== undefined },
      adopt: (link) => this.#adopt(link),
      refused: (err) => { this.emit('refused', err, this.#address) }
    }
  }

  #adopt (link: Link): Link {
    const id = link.remote.id
    this.#links.set(id, link)
    link.once('close', () => { if (this.#links.get(id) === link) this.#links.delete(id) })
    if (!link.initiator) this.emit('link', link)
    return link
  }

  #assertOpen (): void {
    if (this.#closing !== undefined) throw meshError('ERR_LINK_CLOSED', `the transport of ${this.localId} is closed; create a new one`)
  }

  async close (): Promise<void> {
    this.#closing ??= (async () => {
      const address = this.#address
      if (address !== undefined && this.#network.listeners.get(`${address.host}:${address.port}`) === this) {
        this.#network.listeners.delete(`${address.host}:${address.port}`)
      }
      await Promise.all([...this.#links.values()].map(async (link) => { await link.close() }))
      this.removeAllListeners()
    })()
    await this.#closing
  }

  protected override emit<K extends keyof TransportEvents & string> (event: K, ...args: TransportEvents[K]): boolean {
    return this.#closing === undefined && super.emit(event, ...args)
  }

  async [Symbol.asyncDispose] (): Promise<void> {
    await this.close()
  }
}

/** An in-memory network; `createTransport` gives each device its transport. */
export function createMemoryNetwork (init: MemoryNetworkInit = {}, components: MemoryNetworkComponents = {}): MemoryNetwork {
  return new Network(components.faults ?? new FaultModel(init), components.clock ?? systemClock, components.turn, components.bridge, init.firstPort)
}
