import { isMeshError, meshError, systemRandom, type DeviceId, type MeshError, type PublicKey, type Random } from '../../shared/index.js'
import { TypedEmitter } from '../events.js'
import { Backoff, type BackoffInit } from './backoff.js'
import { systemClock, type Clock, type TimerHandle } from '../clock.js'
import type { Link, LinkCloseInfo, Transport } from './types.js'

/** Where a peer can be reached, as discovery (or static configuration) reports it. */
export interface ManagedPeer {
  /** Absent for a static peer known only by address: learned from the first link. */
  id?: DeviceId
  publicKey?: PublicKey
  addresses: readonly string[]
  port: number
}

export interface ConnectionManagerInit {
  /** Links kept at most (the node's degree); further peers wait, further inbound links are closed (default 32). */
  maxLinks?: number
  backoff?: BackoffInit
}

export interface ConnectionManagerComponents {
  transport: Transport
  clock?: Clock
  /** Jitter; inject `seededRandom` so a test replays exactly. */
  random?: Random
}

export interface ConnectionManagerEvents {
  'link:open': [link: Link]
  'link:close': [link: Link, info: LinkCloseInfo]
  /** Every address of a peer failed; the next attempt is in `retryIn` ms. */
  'dial:error': [error: MeshError, peer: ManagedPeer, retryIn: number]
}

interface Entry {
  readonly key: string
  info: ManagedPeer
  id: DeviceId | undefined
  state: 'idle' | 'dialing' | 'waiting' | 'linked'
  timer: TimerHandle | undefined
  abort: AbortController | undefined
  readonly backoff: Backoff
}

/**
 * Keeps the peers it is given connected: dials each (its addresses in turn), keeps at most one
 * link per device and at most `maxLinks` in all, and redials a lost peer after an exponential
 * backoff with jitter. Inbound links count too. Links belong to the transport: `stop()` stops
 * dialing and reporting, and leaves open links to whoever stops the transport.
 */
export class ConnectionManager extends TypedEmitter<ConnectionManagerEvents> {
  readonly #transport: Transport
  readonly #clock: Clock
  readonly #random: Random
  readonly #maxLinks: number
  readonly #backoff: BackoffInit
  readonly #entries = new Map<string, Entry>()
  readonly #byId = new Map<DeviceId, Entry>()
  readonly #links = new Map<DeviceId, Link>()
  #dialing = 0
  /** Links reported by `link:open` whose `link:close` is still due. */
  readonly #reported = new Set<Link>()
  #running = false
  readonly #onInbound = (link: Link): void => { this.#attach(link) }

  constructor (init: ConnectionManagerInit, components: ConnectionManagerComponents) {
    super()
    this.#transport = components.transport
    this.#clock = components.clock ?? systemClock
    this.#random = components.random ?? systemRandom
    this.#maxLinks = init.maxLinks ?? 32
    this.#backoff = init.backoff ?? {}
  }

  /** Open links this manager reports, one per device. */
  get links (): ReadonlyMap<DeviceId, Link> {
    return this.#links
  }

  start (): void {
    if (this.#running) return
    this.#running = true
    this.#transport.on('link', this.#onInbound)
    for (const link of this.#transport.links.values()) this.#attach(link)
    this.#pump()
  }

  async stop (): Promise<void> {
    if (!this.#running) return
    this.#running = false
    this.#transport.off('link', this.#onInbound)
    for (const entry of this.#entries.values()) this.#halt(entry)
    this.#links.clear()
    this.#reported.clear()
    this.removeAllListeners()
  }

  /** Starts keeping `peer` connected; returns its key (its id, or a key made of its addresses). */
  add (peer: ManagedPeer): string {
    const key = peer.id ?? `static:${[...peer.addresses].sort().join(',')}:${peer.port}`
    const known = this.#entries.get(key)
    if (known !== undefined) {
      known.info = peer
      return key
    }
    const entry: Entry = { key, info: peer, id: peer.id, state: 'idle', timer: undefined, abort: undefined, backoff: new Backoff(this.#backoff, this.#random) }
    this.#entries.set(key, entry)
    if (entry.id !== undefined) {
      this.#byId.set(entry.id, entry)
      if (this.#links.has(entry.id)) entry.state = 'linked'
    }
    this.#pump()
    return key
  }

  /** Stops keeping a peer connected (by id or key). Its link, if open, stays until it closes. */
  remove (idOrKey: string): boolean {
    const entry = this.#entries.get(idOrKey) ?? this.#byId.get(idOrKey)
    if (entry === undefined) return false
    this.#halt(entry)
    this.#entries.delete(entry.key)
    if (entry.id !== undefined && this.#byId.get(entry.id) === entry) this.#byId.delete(entry.id)
    return true
  }

  #halt (entry: Entry): void {
    if (entry.timer !== undefined) this.#clock.clearTimeout(entry.timer)
    entry.timer = undefined
    entry.abort?.abort()
    entry.abort = undefined
  }

  /** Dials idle peers while there is room. */
  #pump (): void {
    if (!this.#running) return
    for (const entry of this.#entries.values()) {
      if (this.#links.size + this.#dialing >= this.#maxLinks) return
      if (entry.state === 'idle') void this.#dial(entry)
    }
  }

  async #dial (entry: Entry): Promise<void> {
    entry.state = 'dialing'
    this.#dialing++
    const abort = entry.abort = new AbortController()
    try {
      let failure: MeshError | undefined
      for (const host of entry.info.addresses) {
        try {
          const link = await this.#transport.dial({ host, port: entry.info.port }, { expectedId: entry.info.id, expectedPublicKey: entry.info.publicKey, signal: abort.signal })
          if (abort.signal.aborted || !this.#running) return
          if (link.open) {
            entry.abort = undefined
            this.#learn(entry, link.remote.id)
            entry.state = 'linked'
            this.#attach(link)
            return
          }
        } catch (err) {
          if (abort.signal.aborted || !this.#running) return
          failure = isMeshError(err) ? err : meshError('ERR_LINK_CLOSED', `dialing ${host}:${entry.info.port} failed`, { cause: err })
        }
      }
      entry.abort = undefined
      if (entry.id !== undefined && this.#links.has(entry.id)) {
        entry.state = 'linked' // the peer dialed us meanwhile
        return
      }
      const delay = this.#retry(entry)
      this.emit('dial:error', failure ?? meshError('ERR_LINK_CLOSED', 'every address of the peer failed'), entry.info, delay)
    } finally {
      this.#dialing--
    }
  }
  /** Schedules the entry's next attempt after its backoff; returns the delay. */
  #retry (entry: Entry): number {
    const delay = entry.backoff.next()
    entry.state = 'waiting'
    entry.timer = this.#clock.setTimeout(() => {
      entry.timer = undefined
      entry.state = 'idle'
      this.#pump()
    }, delay)
    return delay
  }

  #learn (entry: Entry, id: DeviceId): void {
    if (entry.id === undefined) entry.id = id
    if (!this.#byId.has(id)) this.#byId.set(id, entry)
  }

  #attach (link: Link): void {
    if (!this.#running || !link.open || this.#reported.has(link)) return
    const id = link.remote.id
    const entry = this.#byId.get(id)
    if (!this.#links.has(id) && entry === undefined && this.#links.size >= this.#maxLinks) {
      void link.close() // over the degree, and not a peer we were asked to keep
      return
    }
    if (entry !== undefined) {
      if (entry.timer !== undefined) this.#clock.clearTimeout(entry.timer)
      entry.timer = undefined
      if (entry.state !== 'dialing') entry.state = 'linked' // a dial in flight settles on its own
      entry.backoff.reset()
    }
    this.#links.set(id, link)
    this.#reported.add(link)
    link.once('close', (info) => { this.#detach(link, info) })
    this.emit('link:open', link)
  }

  #detach (link: Link, info: LinkCloseInfo): void {
    if (!this.#reported.delete(link) || !this.#running) return
    this.emit('link:close', link, info)
    const id = link.remote.id
    if (this.#links.get(id) !== link) return // already superseded by a newer link
    this.#links.delete(id)
    const successor = this.#transport.links.get(id)
    if (successor !== undefined && successor.open) {
      this.#attach(successor) // the transport replaced the link (simultaneous dial, reconnect)
      return
    }
    const entry = this.#byId.get(id)
    if (entry !== undefined && this.#entries.get(entry.key) === entry && entry.state === 'linked') this.#retry(entry)
    this.#pump()
  }

  async [Symbol.asyncDispose] (): Promise<void> {
    await this.stop()
  }
}

export function createConnectionManager (init: ConnectionManagerInit, components: ConnectionManagerComponents): ConnectionManager {
  return new ConnectionManager(init, components)
}
