import {
  isMeshError, meshError, systemClock, systemRandom, type Clock, type DeviceId, type MeshError, type PublicKey,
  type Random, type TimerHandle
} from '../../shared/index.js'
import { TypedEmitter } from '../events.js'
import { Backoff, type BackoffInit } from './backoff.js'
import { BanList, type BanEntry, type BanListInit, type BanOptions } from './bans.js'
import { pickVictim, type EvictionPolicy } from './eviction.js'
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
  /** Links kept at most in all (default `maxInbound + maxOutbound`); further peers wait, further inbound links are closed. */
  maxLinks?: number
  /**
   * Links other peers dialed, at most (default 24). Peers this manager keeps (`add`) always have
   * room; a stranger finds room, or takes the slot of the least valuable inbound link (eviction.ts),
   * or is closed with `why: 'full'`.
   */
  maxInbound?: number
  /** Links this manager dials, at most (default 8): inbound links never take them. */
  maxOutbound?: number
  eviction?: EvictionPolicy
  /** A peer that closed our link saying `evicted`, `full` or `banned`, or refused a dial with ERR_BANNED or a credential code (ERR_REVOKED, ERR_NO_CREDENTIAL, …), is dialed again after this long at the soonest (default 30 s). */
  refusedRetryMs?: number
  backoff?: BackoffInit
  /** The ban list's bound, when the manager makes its own. */
  bans?: BanListInit
}

export interface ConnectionManagerComponents {
  transport: Transport
  clock?: Clock
  /** Jitter; inject `seededRandom` so a test replays exactly. */
  random?: Random
  /** The ban list (give the same one to the TCP transport, which then refuses banned peers before any work); default a new one. */
  bans?: BanList
  /**
   * How much an inbound link is worth keeping when a newcomer needs its slot: higher is better,
   * below 0 marks it evictable even alone from its address; undefined, no opinion (idleness
   * decides). The router's peer score plugs in here.
   */
  value?: (link: Link) => number | undefined
}

/** What the manager turned away or closed, by reason. */
export interface ConnectionManagerCounters {
  /** Inbound links closed to make room for a newcomer. */
  evicted: number
  /** Inbound links closed at once: no slot, and no link worth evicting. */
  full: number
  /** Links closed or not dialed because the peer is banned. */
  banned: number
}

/** Links in use and the limits. */
export interface LinkSlots {
  inbound: number
  outbound: number
  maxInbound: number
  maxOutbound: number
  maxLinks: number
}

/** Close reasons (`LinkCloseInfo.why`) after which a peer is not redialed at once. */
const REFUSALS: ReadonlySet<string> = new Set(['evicted', 'full', 'banned'])
/** Codes a dial fails with (told by the peer, or decided here) that will not change within seconds (ERR_BANNED: for a while; the rest: until an owner acts). */
const SLOW_RETRY: ReadonlySet<string> = new Set(['ERR_BANNED', 'ERR_CLONED_IDENTITY', 'ERR_REVOKED', 'ERR_NO_CREDENTIAL', 'ERR_BAD_CREDENTIAL', 'ERR_CREDENTIAL_EXPIRED',
  'ERR_CREDENTIAL_MISMATCH', 'ERR_NOT_OWNER', 'ERR_TOO_FEW_OWNERS', 'ERR_UNKNOWN_FLEET'])

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
 * link per device, and redials a lost peer after an exponential backoff with jitter. Inbound and
 * outbound links have slots apart, so links peers open to this node can never stop it from
 * dialing (11 idle links from one attacker used to take every slot); a full inbound side makes
 * room for a newcomer by evicting the least valuable inbound link (eviction.ts). A ban list keeps
 * peers out for a while (`ban`, `disconnect`). Links belong to the transport: `stop()` stops
 * dialing and reporting, and leaves open links to whoever stops the transport.
 */
export class ConnectionManager extends TypedEmitter<ConnectionManagerEvents> {
  readonly #transport: Transport
  readonly #clock: Clock
  readonly #random: Random
  readonly #maxLinks: number
  readonly #maxInbound: number
  readonly #maxOutbound: number
  readonly #eviction: EvictionPolicy
  readonly #refusedRetryMs: number
  readonly #value: ((link: Link) => number | undefined) | undefined
  readonly #counters: ConnectionManagerCounters = { evicted: 0, full: 0, banned: 0 }
  readonly bans: BanList
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
    this.#maxInbound = init.maxInbound ?? 24
    this.#maxOutbound = init.maxOutbound ?? 8
    this.#maxLinks = init.maxLinks ?? this.#maxInbound + this.#maxOutbound
    this.#eviction = init.eviction ?? {}
    this.#refusedRetryMs = init.refusedRetryMs ?? 30_000
    this.#value = components.value
    this.bans = components.bans ?? new BanList(init.bans ?? {}, this.#clock)
    this.#backoff = init.backoff ?? {}
  }

  /** Open links this manager reports, one per device. */
  get links (): ReadonlyMap<DeviceId, Link> {
    return this.#links
  }

  get counters (): Readonly<ConnectionManagerCounters> {
    return this.#counters
  }

  get slots (): LinkSlots {
    let inbound = 0
    let outbound = 0
    for (const link of this.#links.values()) {
      if (!link.open) continue
      if (link.initiator) outbound++
      else inbound++
    }
    return { inbound, outbound, maxInbound: this.#maxInbound, maxOutbound: this.#maxOutbound, maxLinks: this.#maxLinks }
  }

  /**
   * Keeps `target` out (its id, its address, or both) until the ban ends: its open links are closed
   * (`why: 'banned'`, so an iotmesh peer backs off), it is not dialed, and a transport sharing the
   * ban list refuses it before any handshake work.
   */
  ban (target: { id?: DeviceId, address?: string }, options: BanOptions = {}): BanEntry {
    const entry = this.bans.ban(target, options)
    for (const link of [...this.#links.values()]) {
      if (!link.open || !this.#isBanned(link)) continue
      this.#counters.banned++
      void link.close({ why: 'banned' })
    }
    this.#pump()
    return entry
  }

  /**
   * Closes the link to `id` gracefully, telling the peer `why` (default `local`); with `banMs` or
   * `until`, also bans the id for that long (the router does this to a peer whose score fell).
   */
  async disconnect (id: DeviceId, options: { why?: string, banMs?: number, until?: number } = {}): Promise<void> {
    if (options.banMs !== undefined || options.until !== undefined) {
      this.bans.ban({ id }, { reason: options.why ?? 'manual', until: options.until, forMs: options.banMs })
    }
    const link = this.#links.get(id)
    if (link !== undefined) await link.close({ why: options.why ?? (this.bans.banned({ id }) ? 'banned' : 'local') })
    this.#pump()
  }

  #isBanned (link: Link): boolean {
    return this.bans.banned({ id: link.remote.id, address: link.remoteAddress })
  }

  #entryBan (entry: Entry): BanEntry | undefined {
    const byId = entry.id === undefined ? undefined : this.bans.find({ id: entry.id })
    if (byId !== undefined) return byId
    for (const address of entry.info.addresses) {
      const ban = this.bans.find({ address })
      if (ban !== undefined) return ban
    }
    return undefined
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

  /** Dials idle peers while there are outbound slots; a banned one waits for its ban to end. */
  #pump (): void {
    if (!this.#running) return
    const { outbound } = this.slots
    const open = [...this.#links.values()].filter((l) => l.open).length
    for (const entry of this.#entries.values()) {
      if (outbound + this.#dialing >= this.#maxOutbound || open + this.#dialing >= this.#maxLinks) return
      if (entry.state !== 'idle') continue
      const ban = this.#entryBan(entry)
      if (ban !== undefined) {
        this.#counters.banned++
        this.#retry(entry, ban.until - this.#clock.now())
        continue
      }
      void this.#dial(entry) // counts itself in #dialing before it awaits anything
    }
  }

  async #dial (entry: Entry): Promise<void> {
    entry.state = 'dialing'
    this.#dialing++
    const abort = entry.abort = new AbortController()
    try {
      let failure: MeshError | undefined
      /** A refusal (`REFUSALS`) the peer closed the new link with before it could be taken here. */
      let refused: string | undefined
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
          const info = link.closeInfo
          if (info?.reason === 'remote' && info.why !== undefined && REFUSALS.has(info.why)) refused = info.why
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
      // A peer that banned us says so (ERR_BANNED), or refused our credential, or closed the link at
      // once for lack of room (as after `link:open`, `#detach`): asking again at once only spends its
      // time and ours (and, evicting another dialer, that one's).
      const slow = (failure !== undefined && SLOW_RETRY.has(failure.code)) || refused !== undefined
      const delay = this.#retry(entry, slow ? this.#refusedRetryMs : 0)
      const error = failure ?? (refused === undefined
        ? meshError('ERR_LINK_CLOSED', 'every address of the peer failed')
        : meshError('ERR_LINK_CLOSED', `the peer closed the link at once (${refused}); dialed again in ${delay} ms`, { details: { why: refused } }))
      this.emit('dial:error', error, entry.info, delay)
    } finally {
      this.#dialing--
    }
  }
  /** Schedules the entry's next attempt after its backoff (and at least `atLeast` ms); returns the delay. */
  #retry (entry: Entry, atLeast = 0): number {
    const delay = Math.max(entry.backoff.next(), Math.ceil(atLeast))
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
    if (this.#isBanned(link)) {
      this.#counters.banned++
      void link.close({ why: 'banned' })
      return
    }
    if (!link.initiator && entry === undefined && this.#links.get(id)?.open !== true && !this.#roomForInbound()) {
      this.#counters.full++
      void link.close({ why: 'full' }) // no slot, and no inbound link worth evicting for a stranger
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

  /** True when an inbound slot is free, or was freed by evicting the least valuable inbound link. */
  #roomForInbound (): boolean {
    const open = [...this.#links.values()].filter((l) => l.open)
    const inbound = open.filter((l) => !l.initiator)
    if (inbound.length < this.#maxInbound && open.length < this.#maxLinks) return true
    const candidates = inbound.filter((l) => !this.#byId.has(l.remote.id)).map((l) => ({
      item: l, address: l.remoteAddress, openedAt: l.openedAt, lastMessageAt: l.lastMessageAt, value: this.#value?.(l)
    }))
    const victim = pickVictim(candidates, this.#clock.now(), this.#eviction)
    if (victim === undefined) return false
    this.#counters.evicted++
    void victim.close({ why: 'evicted' })
    return true
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
    if (entry !== undefined && this.#entries.get(entry.key) === entry && entry.state === 'linked') {
      // A peer that closed for lack of room, or banned us, is not dialed again at once.
      this.#retry(entry, info.reason === 'remote' && info.why !== undefined && REFUSALS.has(info.why) ? this.#refusedRetryMs : 0)
    }
    this.#pump()
  }

  async [Symbol.asyncDispose] (): Promise<void> {
    await this.stop()
  }
}

export function createConnectionManager (init: ConnectionManagerInit, components: ConnectionManagerComponents): ConnectionManager {
  return new ConnectionManager(init, components)
}
