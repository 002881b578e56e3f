import {
  DEFAULT_FLEET, checkDeviceTopic, createReplayGuard, decodeFrame, deviceIdFromBytes, deviceIdFromPublicKey, deviceIdToBytes, encodeFrame,
  isMeshError, memorySequence, nodeEd25519, verifyFrame,
  type DeviceId, type Ed25519, type ErrorCode, type KeyPair, type PublicKey, type ReplayGuard, type SenmlRecord, type SequenceSource
} from '../../shared/index.js'
import { every, systemClock, type Clock, type TimerHandle } from '../clock.js'
import { TypedEmitter } from '../events.js'
import type { Link } from '../links/types.js'
import { History } from './history.js'
import { Keyring } from './keyring.js'
import { MSG, chunks, decodeMessage, encodeData, encodeMessage, type PeerEntry, type RoutingMessage, type WantEntry } from './messages.js'
import { Subscription, type Delivery } from './subscription.js'
import { InterestTable } from './interest.js'
import { newCounters, type RouterCounters } from './counters.js'

/**
 * Routing: publish/subscribe over authenticated links, multi-hop, with catch-up.
 *
 * Frames are routed by declared subscriptions, as Zenoh does (interest.ts): subscribers flood
 * versioned INTEREST declarations as a distance vector, and a frame goes only to the next hop
 * towards each subscriber whose filter matches it, and only from the node on that subscriber's
 * route (a neighbour that routes it elsewhere has sent it there). A reading therefore costs one transmission and one verification
 * per hop of the shortest path to each interested subscriber, not one per device in the mesh:
 * the fleet's traffic grows with the number of readings times the path length (about the log of
 * the fleet size), which is what lets one gateway collect a thousand devices' readings. Why not
 * a broadcast (Plumtree, gossipsub): README "Routing".
 *
 * Catch-up after partitions, and repair of anything a link lost: every node keeps a bounded
 * history per origin; DIGESTs of per-origin high-water marks go to each neighbour for the origins
 * it leads to subscribers of (in full when a link forms or a route moves to it, incrementally
 * every `syncInterval`), and the neighbour asks (WANT) for what it lacks.
 *
 * Every frame is verified once, before it is delivered or relayed; duplicates are recognised by
 * (origin, seq) before verification, so a duplicate costs a lookup, not a signature check.
 */

export interface RouterInit {
  fleet?: string
  /** Frames that travelled more links than this are dropped (ERR_HOP_LIMIT). */
  hopLimit?: number
  /** How often lazy neighbours get a DIGEST of what changed, ms. */
  syncInterval?: number
  /** How long to wait for the direct path before asking for what a DIGEST shows missing, ms. */
  graftDelay?: number
  /** A subscriber re-declares its interest this often, ms (default 10 s); routes not refreshed for 3 periods expire, and a route lost to a failure comes back with the next declaration. */
  interestRefresh?: number
  /** How long before asking again for the same origin, ms. */
  wantRetry?: number
  /** Frames held per origin for catch-up. */
  historyPerOrigin?: number
  /** Bytes of history held in all. */
  historyBytes?: number
  /** Replay window per origin, in sequence numbers (at least historyPerOrigin). */
  replayWindow?: number
  /** Frames from an unknown signer are held this long while its key is asked for, ms. */
  keyWait?: number
  /** Closed mode: only these keys may publish or link. */
  roster?: Iterable<PublicKey>
  /** Link port and addresses announced in HELLO (for peer exchange). */
  port?: number
  addresses?: () => string[]
}

export interface RouterComponents {
  keys: KeyPair
  clock?: Clock
  ed25519?: Ed25519
  /** Where this node's sequence numbers come from (a file for real devices). */
  sequence?: SequenceSource
  /** Wall clock in ms (for sampling times and delivery stamps). */
  now?: () => number
}

export interface DropInfo { code: ErrorCode, origin?: DeviceId, seq?: number, from?: DeviceId }

export interface RouterEvents {
  delivery: [delivery: Delivery]
  drop: [info: DropInfo]
  hello: [info: { peer: DeviceId, fleet: string, port: number, addresses: string[] }]
  peers: [peers: PeerEntry[], from: DeviceId]
  'link:open': [peer: DeviceId]
  'link:close': [peer: DeviceId]
}

export const ROUTING_VERSION = 1

interface LinkState {
  readonly link: Link
  readonly peer: DeviceId
  /** Origins whose key this neighbour has been sent (or knows). */
  readonly told: Set<DeviceId>
  /** Origins whose eager push to this neighbour failed (backpressure): announce in the next DIGEST. */
  readonly missed: Set<DeviceId>
  readonly detach: () => void
}

interface Held { bytes: Uint8Array, hops: number, from: DeviceId | undefined }

export class Router extends TypedEmitter<RouterEvents> {
  readonly id: DeviceId
  readonly fleet: string
  readonly counters: RouterCounters = newCounters()
  readonly keyring: Keyring
  readonly #keys: KeyPair
  readonly #init: Required<Pick<RouterInit, 'hopLimit' | 'syncInterval' | 'graftDelay' | 'wantRetry' | 'keyWait' | 'interestRefresh'>> & RouterInit
  readonly #clock: Clock
  readonly #ed: Ed25519
  readonly #sequence: SequenceSource
  readonly #now: () => number
  readonly #guard: ReplayGuard
  readonly #history: History
  readonly #links = new Map<DeviceId, LinkState>()
  readonly interest: InterestTable
  /** Neighbours owed a full DIGEST (a link formed, or a route moved to it). */
  readonly #digestDue = new Set<DeviceId>()
  readonly #toAdvertise = new Set<DeviceId>()
  readonly #changed = new Set<DeviceId>()
  readonly #wantedAt = new Map<DeviceId, number>()
  readonly #held = new Map<DeviceId, { frames: Held[], timer: TimerHandle }>()
  readonly #subs = new Set<Subscription>()
  readonly #timers = new Set<TimerHandle>()
  #stopSync: (() => void) | undefined
  #stopRefresh: (() => void) | undefined
  #running = false

  constructor (init: RouterInit, components: RouterComponents) {
    super()
    this.#keys = components.keys
    this.id = components.keys.id
    this.fleet = init.fleet ?? DEFAULT_FLEET
    this.#init = { hopLimit: 32, syncInterval: 2000, graftDelay: 250, wantRetry: 1500, keyWait: 3000, interestRefresh: 10_000, ...init }
    this.#clock = components.clock ?? systemClock
    this.#ed = components.ed25519 ?? nodeEd25519
    this.#now = components.now ?? Date.now
    // Without a store, start from the wall clock in microseconds: a restarted process starts above
    // every number it used before unless it published faster than a million frames a second.
    this.#sequence = components.sequence ?? memorySequence(this.#now() * 1000)
    const perOrigin = init.historyPerOrigin ?? 256
    this.#guard = createReplayGuard({ window: Math.max(init.replayWindow ?? 1024, perOrigin) })
    this.#history = new History({ perOrigin, ...(init.historyBytes === undefined ? {} : { maxBytes: init.historyBytes }) })
    this.keyring = new Keyring(init.roster === undefined ? {} : { roster: init.roster })
    this.keyring.learn(components.keys.publicKey)
    this.interest = new InterestTable(this.id, 0)
  }

  start (): void {
    if (this.#running) return
    this.#running = true
    this.#stopSync = every(this.#clock, this.#init.syncInterval, () => this.#sync())
    this.#stopRefresh = every(this.#clock, this.#init.interestRefresh, () => this.#refreshInterest())
  }

  stop (): void {
    if (!this.#running) return
    this.#running = false
    this.#stopSync?.()
    this.#stopRefresh?.()
    for (const timer of this.#timers) this.#clock.clearTimeout(timer)
    this.#timers.clear()
    for (const { timer } of this.#held.values()) this.#clock.clearTimeout(timer)
    this.#held.clear()
    for (const state of this.#links.values()) state.detach()
    this.#links.clear()
    for (const sub of [...this.#subs]) sub.close()
    this.removeAllListeners()
  }

  get links (): ReadonlyMap<DeviceId, Link> {
    return new Map([...this.#links].map(([id, s]) => [id, s.link]))
  }

  /** Publishes readings under this node's identity; `topic` is device-relative ("telemetry") or full. */
  publish (topic: string, records: SenmlRecord[], options: { time?: number } = {}): { seq: number, frame: Uint8Array } {
    const deviceTopic = this.#deviceTopic(topic)
    const seq = this.#sequence.next()
    const time = options.time ?? this.#now() / 1000
    const frame = encodeFrame({ keys: this.#keys, seq, time, records, topic: deviceTopic, ed25519: this.#ed })
    this.#guard.accept(this.id, seq)
    this.#history.add(this.id, { seq, bytes: frame, hops: 0 })
    this.#changed.add(this.id)
    this.counters.published++
    const decoded = decodeFrame(frame)
    this.#deliver(decoded, frame, 0, undefined)
    this.#forward(decoded, frame, 1, undefined)
    return { seq, frame }
  }

  /** Subscribes; the filter is declared to the mesh (INTEREST) so matching readings are routed here. */
  subscribe (filter: string, options: { signal?: AbortSignal, buffer?: number } = {}): Subscription {
    const sub: Subscription = new Subscription(filter, {
      ...options,
      onClose: () => {
        if (this.#subs.delete(sub) && this.#running && this.interest.setLocal(filter, -1)) this.#advertise([this.id])
      }
    })
    if (!sub.closed) {
      this.#subs.add(sub)
      if (this.interest.setLocal(filter, 1)) this.#advertise([this.id])
    }
    return sub
  }

  /**
   * Takes a signed frame from outside the links (the gateway's broker path, a device's own
   * outbox): verified, deduplicated, delivered and disseminated like any other.
   */
  inject (frame: Uint8Array, hops = 0): void {
    this.#ingest(frame, hops, undefined)
  }

  /** Learns a key from discovery, a retained status or a roster; false when refused. */
  learnKey (publicKey: PublicKey, id?: DeviceId): boolean {
    const result = this.keyring.learn(publicKey, id)
    if (result === 'ok') this.#releaseHeld(id ?? deviceIdFromPublicKey(publicKey))
    else this.#drop({ code: result === 'mismatch' ? 'ERR_WRONG_KEY' : 'ERR_NOT_IN_ROSTER', ...(id === undefined ? {} : { origin: id }) })
    return result === 'ok'
  }

  addLink (link: Link): void {
    const peer = link.remote.id
    this.#links.get(peer)?.detach()
    if (this.keyring.learn(link.remote.publicKey, peer) !== 'ok') {
      this.#drop({ code: 'ERR_NOT_IN_ROSTER', from: peer })
      link.destroy()
      return
    }
    const onMessage = (msg: Uint8Array): void => this.#onMessage(state, msg)
    const onClose = (): void => this.#removeLink(state)
    link.on('message', onMessage)
    link.on('close', onClose)
    const state: LinkState = {
      link,
      peer,
      told: new Set([this.id, peer]),
      missed: new Set(),
      detach: () => { link.off('message', onMessage); link.off('close', onClose) }
    }
    this.#links.set(peer, state)
    this.#send(state, { kind: MSG.HELLO, version: ROUTING_VERSION, fleet: this.fleet, port: this.#init.port ?? 0, addresses: this.#init.addresses?.() ?? [] })
    this.#sendInterest(state, this.interest.advertsFor(peer, [this.id, ...this.interest.subscribers()]))
    this.emit('link:open', peer)
  }

  /** Sends a peer list to one neighbour (peer exchange, for bootstrap peers). */
  sendPeers (peer: DeviceId, peers: PeerEntry[]): void {
    const state = this.#links.get(peer)
    if (state !== undefined) for (const chunk of chunks(peers)) this.#send(state, { kind: MSG.PEERS, peers: chunk })
  }

  #removeLink (state: LinkState): void {
    if (this.#links.get(state.peer) !== state) return
    state.detach()
    this.#links.delete(state.peer)
    this.#digestDue.delete(state.peer)
    const changed = this.interest.dropVia(state.peer)
    if (changed.length > 0) this.#advertise(changed)
    this.emit('link:close', state.peer)
  }

  #onMessage (state: LinkState, bytes: Uint8Array): void {
    let message: RoutingMessage
    try {
      message = decodeMessage(bytes)
    } catch (err) {
      this.#drop({ code: isMeshError(err) ? err.code : 'ERR_BAD_CBOR', from: state.peer })
      return
    }
    if (message.kind !== MSG.DATA) this.counters.controlIn++
    try {
      this.#dispatch(state, message)
    } catch (err) {
      // A handler fed untrusted input catches, counts and drops: one bad message never stops a node.
      this.#drop({ code: isMeshError(err) ? err.code : 'ERR_BAD_CBOR', from: state.peer })
    }
  }

  /** One handler per message kind (aedes lib/handlers style). */
  #dispatch (state: LinkState, message: RoutingMessage): void {
    switch (message.kind) {
      case MSG.DATA: return this.#ingest(message.frame, message.hops, state.peer)
      case MSG.HELLO: return this.#onHello(state, message)
      case MSG.DIGEST: return this.#onDigest(state, message.entries, message.full)
      case MSG.WANT: return this.#onWant(state, message.entries)
      case MSG.INTEREST: return this.#onInterest(state, message.entries)
      case MSG.KEY: for (const key of message.keys) this.learnKey(key); return
      case MSG.KEYREQ: return this.#onKeyRequest(state, message.kids)
      case MSG.PEERS: this.emit('peers', message.peers, state.peer)
    }
  }

  #onHello (state: LinkState, hello: { version: number, fleet: string, port: number, addresses: string[] }): void {
    if (hello.fleet !== this.fleet) {
      this.#drop({ code: 'ERR_UNKNOWN_FLEET', from: state.peer })
      state.link.destroy()
      return
    }
    this.emit('hello', { peer: state.peer, fleet: hello.fleet, port: hello.port, addresses: hello.addresses })
  }

  #ingest (bytes: Uint8Array, hops: number, from: DeviceId | undefined): void {
    if (from !== undefined) this.counters.framesIn++
    if (hops > this.#init.hopLimit) return this.#drop({ code: 'ERR_HOP_LIMIT', ...(from === undefined ? {} : { from }) })
    let frame
    try {
      frame = decodeFrame(bytes)
    } catch (err) {
      return this.#drop({ code: isMeshError(err) ? err.code : 'ERR_BAD_CBOR', ...(from === undefined ? {} : { from }) })
    }
    const { origin, seq } = frame
    const verdict = this.#guard.check(origin, seq)
    if (verdict === 'replay') {
      this.counters.duplicates++
      return
    }
    const where = { origin, seq, ...(from === undefined ? {} : { from }) }
    if (verdict === 'too-old') return this.#drop({ code: 'ERR_REPLAY', ...where })
    if (!this.keyring.allowed(origin)) return this.#drop({ code: 'ERR_NOT_IN_ROSTER', ...where })
    const publicKey = this.keyring.get(origin)
    if (publicKey === undefined) return this.#hold(origin, { bytes: bytes.slice(), hops, from })
    try {
      verifyFrame(frame, publicKey, { ed25519: this.#ed, checkId: false })
    } catch (err) {
      return this.#drop({ code: isMeshError(err) ? err.code : 'ERR_BAD_SIGNATURE', ...where })
    }
    this.#guard.accept(origin, seq)
    const stored = bytes.slice() // the link's bytes may be a view into its receive buffer
    this.#history.add(origin, { seq, bytes: stored, hops })
    this.#changed.add(origin)
    this.#deliver(frame, stored, hops, from)
    this.#forward(frame, stored, hops + 1, from)
  }

  #deliver (frame: ReturnType<typeof decodeFrame>, bytes: Uint8Array, hops: number, from: DeviceId | undefined): void {
    this.counters.delivered++
    const delivery: Delivery = {
      topic: `iotmesh/${this.fleet}/${frame.origin}/${frame.topic}`,
      origin: frame.origin,
      seq: frame.seq,
      time: frame.time,
      records: frame.records,
      hops,
      frame: bytes,
      receivedAt: this.#now(),
      from
    }
    for (const sub of this.#subs) if (sub.matches(delivery.topic)) sub.push(delivery)
    this.emit('delivery', delivery)
  }

  /** Sends a verified frame on towards every subscriber it interests (interest.ts `targets`). */
  #forward (frame: { origin: DeviceId, topic: string }, bytes: Uint8Array, hops: number, from: DeviceId | undefined): void {
    if (hops > this.#init.hopLimit) return
    const { origin } = frame
    const targets = this.interest.targets(`iotmesh/${this.fleet}/${origin}/${frame.topic}`, origin, from)
    if (targets.size === 0) return
    const message = encodeData(hops, bytes)
    let sent = false
    for (const peer of targets) {
      const state = this.#links.get(peer)
      if (state === undefined) continue
      this.#tellKey(state, origin)
      if (this.#sendRaw(state, message)) {
        this.counters.framesOut++
        sent = true
      } else {
        state.missed.add(origin)
      }
    }
    if (sent && origin !== this.id) this.counters.relayed++
  }

  #onInterest (state: LinkState, entries: Array<{ kid: Uint8Array, version: number, hops: number, filters: string[] }>): void {
    const now = this.#clock.now()
    const changed: DeviceId[] = []
    for (const entry of entries) {
      const subscriber = this.#kidOrigin(entry.kid)
      if (!this.keyring.allowed(subscriber)) continue
      const before = this.interest.best(subscriber)?.via
      if (this.interest.update(state.peer, { subscriber, version: entry.version, hops: entry.hops, filters: entry.filters }, now)) changed.push(subscriber)
      const after = this.interest.best(subscriber)?.via
      if (after !== undefined && after !== before) this.#digestSoon(after)
    }
    if (changed.length > 0) this.#advertise(changed)
  }

  /**
   * Tells every neighbour our distance to these subscribers (split horizon, poisoned reverse),
   * once per turn of the event loop however many changes arrived in it.
   */
  #advertise (subscribers: DeviceId[]): void {
    const flush = this.#toAdvertise.size === 0
    for (const s of subscribers) this.#toAdvertise.add(s)
    if (!flush) return
    queueMicrotask(() => {
      const changed = [...this.#toAdvertise]
      this.#toAdvertise.clear()
      if (!this.#running) return
      for (const state of this.#links.values()) this.#sendInterest(state, this.interest.advertsFor(state.peer, changed))
    })
  }

  #sendInterest (state: LinkState, adverts: ReturnType<InterestTable['advertsFor']>): void {
    const entries = adverts.map((a) => ({ kid: deviceIdToBytes(a.subscriber), version: a.version, hops: a.hops, filters: a.filters }))
    for (const chunk of chunks(entries)) this.#send(state, { kind: MSG.INTEREST, entries: chunk })
  }

  #refreshInterest (): void {
    const expired = this.interest.expire(this.#clock.now() - 3 * this.#init.interestRefresh)
    if (this.interest.localFilters.length > 0) {
      this.interest.bump()
      this.#advertise([this.id])
    }
    if (expired.length > 0) this.#advertise(expired)
  }

  /** A full DIGEST to `peer` on the next turn of the event loop (coalesced). */
  #digestSoon (peer: DeviceId): void {
    if (this.#digestDue.has(peer)) return
    this.#digestDue.add(peer)
    queueMicrotask(() => {
      if (!this.#digestDue.delete(peer)) return
      const state = this.#links.get(peer)
      if (state !== undefined) this.#sendDigest(state, [...this.#history.origins()].filter((o) => this.interest.wants(o, this.fleet, peer)), true)
    })
  }

  /**
   * Every syncInterval: tell each neighbour what changed among the origins it leads to
   * subscribers of, and what a send to it failed to carry, so it can ask for anything lost.
   */
  #sync (): void {
    if (this.#changed.size === 0 && ![...this.#links.values()].some((s) => s.missed.size > 0)) return
    const changed = [...this.#changed]
    this.#changed.clear()
    for (const state of this.#links.values()) {
      const origins = changed.filter((o) => o !== state.peer && this.interest.wants(o, this.fleet, state.peer))
      for (const o of state.missed) if (!origins.includes(o)) origins.push(o)
      state.missed.clear()
      if (origins.length > 0) this.#sendDigest(state, origins, false)
    }
  }

  #sendDigest (state: LinkState, origins: DeviceId[], full: boolean): void {
    const entries = []
    for (const origin of origins) {
      const range = this.#history.range(origin)
      if (range !== undefined && origin !== state.peer) entries.push({ kid: deviceIdToBytes(origin), ...range })
    }
    if (entries.length === 0 && !full) return
    for (const chunk of entries.length === 0 ? [[]] : chunks(entries)) this.#send(state, { kind: MSG.DIGEST, full, entries: chunk })
  }

  #onDigest (state: LinkState, entries: Array<{ kid: Uint8Array, low: number, high: number }>, full: boolean): void {
    const announced: Array<{ origin: DeviceId, low: number, high: number }> = []
    for (const { kid, low, high } of entries) {
      const origin = this.#kidOrigin(kid)
      if (origin === this.id || !this.keyring.allowed(origin) || !this.interest.wants(origin, this.fleet)) continue
      if (this.#guard.missing(origin, low, high, 1).length > 0) announced.push({ origin, low, high })
    }
    if (announced.length === 0) return
    // After a fresh link (full digest) ask at once; otherwise give the eager path a moment first.
    if (full) this.#want(state, announced, true)
    else this.#later(this.#init.graftDelay, () => this.#want(state, announced, false))
  }

  #want (state: LinkState, announced: Array<{ origin: DeviceId, low: number, high: number }>, force: boolean): void {
    if (this.#links.get(state.peer) !== state) return
    const now = this.#clock.now()
    const entries: WantEntry[] = []
    for (const { origin, low, high } of announced) {
      if (!force && now - (this.#wantedAt.get(origin) ?? -Infinity) < this.#init.wantRetry) continue
      const missing = this.#guard.missing(origin, low, high, 1024)
      if (missing.length === 0) continue
      this.#wantedAt.set(origin, now)
      const kid = deviceIdToBytes(origin)
      let from = missing[0] as number
      let to = from
      for (const seq of missing.slice(1)) {
        if (seq === to + 1) { to = seq; continue }
        entries.push({ kid, from, to })
        from = to = seq
      }
      entries.push({ kid, from, to })
    }
    this.counters.wantsSent += entries.length
    for (const chunk of chunks(entries)) this.#send(state, { kind: MSG.WANT, entries: chunk })
  }

  #onWant (state: LinkState, entries: WantEntry[]): void {
    let budget = 4096
    for (const { kid, from, to } of entries) {
      const origin = this.#kidOrigin(kid)
      for (let seq = from; seq <= to && budget > 0; seq++) {
        const stored = this.#history.get(origin, seq)
        if (stored === undefined) continue
        budget--
        this.#tellKey(state, origin)
        if (!this.#sendRaw(state, encodeData(stored.hops + 1, stored.bytes))) return // the asker will ask again
        this.counters.framesOut++
        this.counters.repaired++
      }
    }
  }

  #onKeyRequest (state: LinkState, kids: Uint8Array[]): void {
    const keys = kids.map((kid) => this.keyring.get(this.#kidOrigin(kid))).filter((k): k is PublicKey => k !== undefined)
    if (keys.length > 0) this.#send(state, { kind: MSG.KEY, keys })
  }

  #tellKey (state: LinkState, origin: DeviceId): void {
    if (state.told.has(origin)) return
    const key = this.keyring.get(origin)
    if (key === undefined) return
    state.told.add(origin)
    this.#send(state, { kind: MSG.KEY, keys: [key] })
  }

  #hold (origin: DeviceId, held: Held): void {
    let entry = this.#held.get(origin)
    if (entry === undefined) {
      if (this.#held.size >= 256) return this.#drop({ code: 'ERR_UNKNOWN_SIGNER', origin })
      const timer = this.#later(this.#init.keyWait, () => {
        const expired = this.#held.get(origin)
        this.#held.delete(origin)
        for (const h of expired?.frames ?? []) this.#drop({ code: 'ERR_UNKNOWN_SIGNER', origin, ...(h.from === undefined ? {} : { from: h.from }) })
      })
      entry = { frames: [], timer }
      this.#held.set(origin, entry)
    }
    if (entry.frames.length >= 32) return this.#drop({ code: 'ERR_UNKNOWN_SIGNER', origin })
    entry.frames.push(held)
    const state = held.from === undefined ? undefined : this.#links.get(held.from)
    if (state !== undefined && entry.frames.length === 1) this.#send(state, { kind: MSG.KEYREQ, kids: [deviceIdToBytes(origin)] })
  }

  #releaseHeld (origin: DeviceId): void {
    const entry = this.#held.get(origin)
    if (entry === undefined) return
    this.#held.delete(origin)
    this.#clock.clearTimeout(entry.timer)
    this.#timers.delete(entry.timer)
    for (const h of entry.frames) this.#ingest(h.bytes, h.hops, h.from)
  }

  #drop (info: DropInfo): void {
    this.counters.rejected[info.code] = (this.counters.rejected[info.code] ?? 0) + 1
    this.emit('drop', info)
  }

  #send (state: LinkState, message: RoutingMessage): boolean {
    const ok = this.#sendRaw(state, encodeMessage(message))
    if (ok) this.counters.controlOut++
    return ok
  }

  #sendRaw (state: LinkState, bytes: Uint8Array): boolean {
    try {
      state.link.send(bytes)
      return true
    } catch {
      return false // ERR_BACKPRESSURE or ERR_LINK_CLOSED: the DIGEST/WANT exchange repairs it
    }
  }

  #later (ms: number, fn: () => void): TimerHandle {
    const timer: TimerHandle = this.#clock.setTimeout(() => { this.#timers.delete(timer); if (this.#running) fn() }, ms)
    this.#timers.add(timer)
    return timer
  }

  #kidOrigin (kid: Uint8Array): DeviceId {
    return deviceIdFromBytes(kid) // throws ERR_BAD_DEVICE_ID for a kid of the wrong size
  }

  #deviceTopic (topic: string): string {
    const prefix = `iotmesh/${this.fleet}/${this.id}/`
    return checkDeviceTopic(topic.startsWith(prefix) ? topic.slice(prefix.length) : topic)
  }
}
