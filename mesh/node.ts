import { isIP } from 'node:net'
import { networkInterfaces } from 'node:os'
import {
  DEFAULT_FLEET, LINKS_TOPIC, Lifecycle, every, frameTopic, isDeviceId, isMeshError, meshError, readCredential, credentialId, systemClock, systemRandom, toHex,
  type Clock, type DeviceId, type Ed25519, type FleetPolicy, type KeyPair, type LearnResult, type PublicKey, type Random,
  type CommandResult, type ErrorCode, type SenmlRecord, type SequenceSource
} from '../shared/index.js'
import { TypedEmitter } from './events.js'
import {
  createMdnsDiscovery, createStaticDiscovery, parseStaticPeer, type Discovery, type DiscoveryCounters, type MdnsDiscoveryInit,
  type MdnsResponder, type PeerInfo as DiscoveredPeer, type StaticPeerInit
} from './discovery/index.js'
import {
  BanList, createConnectionManager, createTcpTransport, type BackoffInit, type ConnectionManager, type ConnectionManagerCounters,
  type Link, type LinkOptions, type RemotePeer, type Transport, type TransportAddress, type TransportCounters
} from './links/index.js'
import type { CloneInfo, DropInfo } from './routing/context.js'
import type { ConfigInfo, ConfigVerdict, FleetInfo, FleetVerdict, InjectResult } from './routing/handlers/index.js'
import { Router, type BanInfo, type CommandHandler, type RouterInit } from './routing/router.js'
import { commandOverMesh, type CommandOptions } from './command-client.js'
import { CredentialCheck } from './credentials.js'
import { InstanceBook } from './clones.js'
import { linksRecords } from './announce.js'
import { PeerRotation } from './peer-rotation.js'
import type { PeerRecord } from './routing/score.js'
import type { Delivery, Subscription } from './routing/subscription.js'
import type { RouterCounters } from './routing/counters.js'
import { DURABLE_FILTER, type Ack } from './routing/ack.js'
import type { PeerEntry } from './routing/messages.js'

/**
 * A mesh node: discovery (mDNS and/or static peers) feeds a connection manager that keeps a
 * bounded random set of authenticated links; the router carries signed telemetry over them.
 */

export interface MeshNodeInit {
  /** The device's name: its DNS-SD instance name. */
  name?: string
  fleet?: string
  /** Where links listen (default 0.0.0.0: every interface). */
  host?: string
  /** Link port (default 0: any free port, announced by DNS-SD). */
  port?: number
  /**
   * A leaf (a tool that joins for a while: watch, cmd): its HELLO names no port, so no peer takes it
   * as a candidate or passes it on (peer exchange); it is reached only over the links it opens
   * itself. Default false: a HELLO names the port this node listens on.
   */
  leaf?: boolean
  /** Announce and browse with mDNS/DNS-SD (default true); an object tunes it. */
  mdns?: boolean | Partial<Omit<MdnsDiscoveryInit, 'identity' | 'port' | 'name' | 'fleet'>>
  /** Peers always kept linked (`host:port`), for networks without multicast or other subnets. */
  peers?: readonly StaticPeerInit[]
  /** First contacts whose peer lists (peer exchange) find the rest of the mesh. */
  bootstrap?: readonly StaticPeerInit[]
  /** Discovered peers this node dials itself (default 3); others link to it too. */
  dialTarget?: number
  /**
   * Links peers open to this node, at most (default 12, or `maxLinks`). When they are all taken, a
   * newcomer evicts the least valuable inbound link (links/eviction.ts) or is refused; they never
   * take the slots this node dials with.
   */
  maxInbound?: number
  /** Links this node dials, at most (default: 8, or more if `dialTarget` and static peers need it). */
  maxOutbound?: number
  /** Deprecated: before inbound and outbound slots were apart, links at most in all; now the default of `maxInbound`. */
  maxLinks?: number
  /**
   * Most peers learned by peer exchange (PEERS) that this node remembers (default 128; oldest
   * first out, never one being dialed). Each link may send one PEERS message, of which at most
   * `exchangePerLink` (default 16) new peers are taken.
   */
  maxExchangePeers?: number
  exchangePerLink?: number
  /** Redial backoff for lost or unreachable peers (default 0.5 s doubling to 10 s, with jitter: a LAN heals fast). */
  backoff?: BackoffInit
  /**
   * Within this many ms of the start, and then ever less often, swap one dialed peer for a random
   * unlinked one (default 30000; 0: never). This is what merges an overlay that a partition split
   * into islands: while cut off, each side links within itself, and without rotation nothing would
   * make it dial across once healed (the peer sampling of HyParView and Cyclon serves the same
   * end). The wait doubles after each swap while the neighbourhood is quiet, up to
   * `rotateMaxInterval`, and is this again once a link dies or a peer not known before is
   * discovered; each wait is drawn in [½, 1] of it (mesh/peer-rotation.ts).
   */
  rotateInterval?: number
  /** The longest wait between two swaps of peer rotation (default 8 × `rotateInterval`; equal to it: a steady pace). */
  rotateMaxInterval?: number
  /** Closed mode: only these keys may link or publish. */
  roster?: readonly PublicKey[]
  /** This node's enrollment credential (iotmesh fleet enroll), shown in every link handshake. */
  credential?: Uint8Array
  /**
   * With a fleet file (`routing.fleetPolicy`): link only with peers that show a valid credential of
   * its owners (default true: a fleet closed by credential, mesh/credentials.ts); false links with
   * peers that show none (those that show one are still checked). Revoked peers are refused either way.
   */
  requireCredentials?: boolean
  /**
   * In a fleet closed by credential, refuse frames relayed from origins whose credential this node
   * does not hold (the credentials travel with the frames: routing/handlers/credential.ts; owners
   * need none). Default: true when this node checks its neighbours' credentials itself (its own TCP
   * transport, a fleet file, `requireCredentials`); a transport passed in `components` checks them
   * at its own handshake, so whoever passes it says.
   */
  checkOrigins?: boolean
  /**
   * This node's instance id, shown in every link handshake: two live peers showing one key with
   * different ones are a clone (mesh/clones.ts). true (default): random, drawn once per MeshNode; or
   * the 16 bytes; false: none (a node that sends no handshake extension links with nodes older than
   * the extensions; it is never judged as a clone at the link layer). Every node judges the ids it is shown.
   */
  instance?: Uint8Array | boolean
  /** Options for every link (frame limit, buffering, keepalive). */
  link?: LinkOptions
  /**
   * Every this many ms, publish this node's neighbours as a signed reading on the device topic
   * `mesh/links` (`vs`: space-separated ids), so a gateway can draw the topology (default 15000; 0: never).
   */
  announceLinks?: number
  /** Routing options (hop limit, sync interval, history). */
  routing?: Omit<RouterInit, 'fleet' | 'roster' | 'port' | 'addresses'>
}

export interface MeshNodeComponents {
  keys: KeyPair
  /** Default: authenticated, encrypted TCP. Tests and the simulator pass an in-memory transport. */
  transport?: Transport
  /** A responder shared by many nodes in one process (a simulated fleet). */
  responder?: MdnsResponder
  clock?: Clock
  random?: Random
  ed25519?: Ed25519
  sequence?: SequenceSource
}

export interface MeshCounters extends RouterCounters {
  /** Open links. */
  peers: number
  /** Bytes on the wire over every link this node has had (handshakes excluded). */
  bytesIn: number
  bytesOut: number
  discovery: DiscoveryCounters[]
  /** Neighbours kept out now (their score fell below the threshold). */
  banned: number
  /** The link layer: inbound connections and handshakes turned away (transport), links evicted, refused, banned (manager). */
  links: { transport: TransportCounters, manager: ConnectionManagerCounters }
  /** What the repair history holds now (routing/history.ts): origins and bytes (frames plus their bookkeeping). */
  history: { origins: number, bytes: number }
  /**
   * Peer rotation (mesh/peer-rotation.ts): steps taken since the node last started (a step swaps a
   * dialed peer when an unlinked candidate is left) and the current wait between steps, ms (0:
   * no rotation). A wait stuck at its base on a quiet network means links keep dying or peers
   * keep appearing: each step then opens a new link.
   */
  rotation: { steps: number, waitMs: number }
}

export interface MeshPeer {
  id: DeviceId
  linked: boolean
  addresses: readonly string[]
  port: number
  name?: string
  source: 'mdns' | 'static' | 'exchange' | 'inbound' | 'banned'
  /** This node's score of the peer and what it is made of (routing/score.ts), once it sent anything. */
  score?: PeerRecord
  /** Other instances of its key refused here as clones right now (ERR_CLONED_IDENTITY, mesh/clones.ts). */
  clones?: number
}

export interface MeshNodeEvents {
  delivery: [delivery: Delivery]
  drop: [info: DropInfo]
  'link:open': [peer: DeviceId]
  'link:close': [peer: DeviceId]
  'peer:discovered': [peer: DiscoveredPeer]
  /** A neighbour's score fell below the threshold: disconnected, and kept out until `until` (the clock's now(), ms). */
  'peer:banned': [info: BanInfo]
  /** Two devices hold one key (ERR_CLONED_IDENTITY): two different, validly signed frames for one (origin, seq), or a second live instance at a handshake. */
  clone: [info: CloneInfo]
  /**
   * A durable subscriber acknowledged this node's frames (verified, newer than its last): every
   * sequence number ≤ `high` outside `holes` is held by `subscriber` (routing/ack.ts).
   */
  ack: [ack: Ack]
  /** A new owner-signed revocation was taken and passed on (routing/handlers/revoke.ts): keep `bytes` across restarts. */
  revoked: [info: { device: DeviceId, reason: string, bytes: Uint8Array }]
  /** A signed configuration: a new highest version for its target (verified), or a lower one than held (routing/handlers/config.ts). */
  config: [info: ConfigInfo]
  /** A new owner-signed fleet file is in force (routing/handlers/fleet.ts): keep `bytes` across restarts (`routing.fleetFiles`). */
  fleet: [info: FleetInfo]
  /**
   * A peer refused this node's dial with a code it told (ERR_REVOKED, ERR_NO_CREDENTIAL, ERR_NOT_IN_ROSTER, …): what the
   * refused side logs. (Peers this node refuses are `drop`s with their code.)
   */
  'link:refused': [info: { code: ErrorCode, peer: DeviceId | undefined, address: string }]
}

/** A subscriber this node knows of, and how it reaches it. */
export interface InterestRoute {
  subscriber: DeviceId
  filters: readonly string[]
  /** The neighbour on the best route, and the distance in hops; undefined when unreachable. */
  via?: DeviceId
  hops?: number
  /** True when its signed declaration says it acknowledges what it receives (a durable subscriber); absent otherwise. */
  durable?: true
}

/** Peers shared in answer to a HELLO, and the most addresses taken for one peer. */
const EXCHANGE_SHARE = 16
/** How long a peer that refused us (no inbound slot, banned, a credential refused) waits: the connection manager's `refusedRetryMs`, and the time it stays out of the selection. */
const REFUSED_RETRY_MS = 30_000
const MAX_PEER_ADDRESSES = 8

/** An IP literal or the shape of a host name (RFC 1123 §2.1 characters), nothing else. */
const isHostAddress = (a: unknown): boolean => typeof a === 'string' && (isIP(a) !== 0 || /^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$/.test(a))

interface Candidate { key: string, id?: DeviceId, publicKey?: PublicKey, addresses: readonly string[], port: number, name?: string, source: MeshPeer['source'] }

export class MeshNode extends TypedEmitter<MeshNodeEvents> {
  readonly id: DeviceId
  readonly name: string
  readonly fleet: string
  readonly #router: Router
  readonly #init: MeshNodeInit
  readonly #components: MeshNodeComponents
  readonly #clock: Clock
  readonly #random: Random
  readonly #lifecycle: Lifecycle
  #transport: Transport
  #manager: ConnectionManager
  /** True once the transport was closed: a new start needs a new one. */
  #spent = false
  #discoveries: Discovery[] = []
  readonly #candidates = new Map<string, Candidate>()
  /** Candidate key by device id (the same device may be known under several keys: the last one). */
  readonly #byId = new Map<DeviceId, string>()
  /** Keys of candidates learned by peer exchange, oldest first. */
  readonly #exchanged = new Set<string>()
  /** Neighbours whose PEERS message was taken (one per link). */
  readonly #peersFrom = new Set<DeviceId>()
  /** Neighbours whose HELLO was answered (one per link: a HELLO flood earns one PEERS). */
  readonly #greeted = new Set<DeviceId>()
  readonly #selected = new Set<string>()
  readonly #pinned = new Set<string>()
  /** Candidates that failed to link, and when they may be picked again. */
  readonly #cooldown = new Map<string, number>()
  readonly #closedBytes = { in: 0, out: 0 }
  /** Links the router took (a refused one is closed without a `link:open`, so it gets no `link:close`). */
  readonly #opened = new WeakSet<Link>()
  /** With a fleet file: what decides on a peer's credential at the handshake. */
  readonly credentials: CredentialCheck | undefined
  /** Instance ids of peers seen at handshakes: cloned keys (mesh/clones.ts). */
  readonly instances: InstanceBook
  readonly #instance: Uint8Array | undefined
  #address: TransportAddress | undefined
  /** A refill is due at the end of this microtask turn (`#refillSoon`). */
  #refillQueued = false
  /** The pace of peer rotation, while started with one. */
  #rotation: PeerRotation | undefined

  constructor (init: MeshNodeInit, components: MeshNodeComponents) {
    super()
    this.#init = init
    this.#components = components
    this.id = components.keys.id
    this.fleet = init.fleet ?? DEFAULT_FLEET
    this.name = init.name ?? `iotmesh-${this.id.slice(0, 8)}`
    this.#random = components.random ?? systemRandom
    const clock = this.#clock = components.clock ?? systemClock
    this.#lifecycle = new Lifecycle(`mesh node ${this.name}`)
    this.#router = new Router({
      ...init.routing,
      fleet: this.fleet,
      ...(init.roster === undefined ? {} : { roster: init.roster }),
      port: () => init.leaf === true ? 0 : this.#address?.port ?? 0,
      addresses: () => this.#addresses()
    }, { keys: components.keys, clock, ed25519: components.ed25519, sequence: components.sequence })
    const policy = init.routing?.fleetPolicy
    if (policy !== undefined) {
      // Misconfigured (another device's credential, another fleet's) fails here, not at every peer; expiry is the peers' to judge.
      if (init.credential !== undefined) readCredential(init.credential, policy, { now: 0, publicKey: components.keys.publicKey })
      const revoked = (id: DeviceId): boolean => this.#router.revocations?.has(id) === true
      const required = init.requireCredentials ?? true
      this.credentials = new CredentialCheck({ policy, required }, { revoked, clock, ed25519: components.ed25519 })
      this.#router.useCredentials(this.credentials, init.checkOrigins ?? (required && components.transport === undefined))
    }
    this.instances = new InstanceBook({}, clock)
    const instance = init.instance ?? true
    this.#instance = instance === true ? this.#random.bytes(16) : instance === false ? undefined : instance
    ;[this.#transport, this.#manager] = this.#links()
  }

  /** The transport (TCP unless one was given) and the connection manager over it, sharing one ban list. */
  #links (): [Transport, ConnectionManager] {
    const authorize = (remote: { id: DeviceId }): boolean => this.#router.verifier.keys.allowed(remote.id)
    const { keys, ed25519 } = this.#components
    const bans = new BanList({}, this.#clock)
    const admit = (peer: RemotePeer): void => { this.#admit(peer) }
    const vouch = async (peer: RemotePeer, open: Link | undefined): Promise<void> => { await this.#vouch(peer, open) }
    const { credential } = this.#init
    const instance = this.#instance
    const transport = this.#components.transport ?? createTcpTransport({ ...this.#init.link, authorize, admit, vouch, credential, instance }, { keys, clock: this.#clock, ed25519, bans })
    const backoff = { initial: 500, max: 10_000, ...this.#init.backoff }
    const slots = { maxInbound: this.#maxInbound(), maxOutbound: this.#maxOutbound() }
    // The router's peer score ranks inbound links when a newcomer needs a slot (links/eviction.ts).
    const value = (link: Link): number => this.#router.scores.score(link.remote.id)
    return [transport, createConnectionManager({ ...slots, backoff, refusedRetryMs: REFUSED_RETRY_MS }, { transport, clock: this.#clock, random: this.#random, bans, value })]
  }

  /** A peer at its handshake: its credential, once per link (mesh/credentials.ts). A refusal is a drop with its code. */
  #admit (peer: RemotePeer): void {
    try {
      this.credentials?.check(peer)
    } catch (err) {
      const code = isMeshError(err) ? err.code : 'ERR_BAD_CREDENTIAL'
      if (code === 'ERR_REVOKED') this.#router.counters.revokedRefused++
      this.#router.drop(code === 'ERR_CLONED_IDENTITY' ? { code, origin: peer.id, from: peer.id } : { code, from: peer.id })
      throw err
    }
  }

  /** A peer that proved its key, beside the open link to that key: a second live instance is a clone (mesh/clones.ts), a drop with its code. */
  async #vouch (peer: RemotePeer, open: Link | undefined): Promise<void> {
    const found = this.instances.clones
    try {
      await this.instances.vouch(peer, open)
    } catch (err) {
      if (isMeshError(err, 'ERR_CLONED_IDENTITY')) {
        this.#router.drop({ code: err.code, origin: peer.id, from: peer.id }) // every refusal; the event once per clone found
        if (this.instances.clones > found) this.emit('clone', { origin: peer.id, code: 'ERR_CLONED_IDENTITY', from: peer.id, self: false, instance: toHex(peer.instance ?? new Uint8Array()) })
      }
      throw err
    }
  }

  #maxInbound (): number { return this.#init.maxInbound ?? this.#init.maxLinks ?? 12 }
  /** Room for the dial target, every static and bootstrap peer, and one more while rotation swaps a peer. */
  #maxOutbound (): number {
    return this.#init.maxOutbound ?? Math.max(8, (this.#init.dialTarget ?? 3) + (this.#init.peers?.length ?? 0) + (this.#init.bootstrap?.length ?? 0) + 1)
  }

  get address (): TransportAddress | undefined { return this.#address }
  get running (): boolean { return this.#lifecycle.started }
  get transport (): Transport { return this.#transport }

  /**
   * Listens, starts routing, links and discovery (shared/lifecycle.ts): a stop during start wins,
   * a failed start can be retried, and a stopped node can be started again (with a new TCP
   * transport; a transport passed in `components` cannot be reopened once closed).
   */
  async start (options: { signal?: AbortSignal } = {}): Promise<void> {
    await this.#lifecycle.start(async (signal, defer) => {
      if (this.#spent) [this.#transport, this.#manager] = this.#links()
      this.#address = await this.#transport.listen({ host: this.#init.host ?? '0.0.0.0', port: this.#init.port ?? 0, signal })
      defer('transport', async () => {
        this.#spent = true
        await this.#transport.close()
      })
      this.#router.start()
      this.#router.on('delivery', (d) => this.emit('delivery', d))
      this.#router.on('drop', (info) => this.emit('drop', info))
      this.#router.on('hello', (hello) => this.#onHello(hello))
      this.#router.on('peers', (peers, from) => this.#onPeers(peers, from))
      this.#router.on('peer:banned', (info) => this.#onBanned(info))
      this.#router.on('clone', (info) => this.emit('clone', info))
      this.#router.on('ack', (ack) => this.emit('ack', ack))
      this.#router.on('revoked', (info) => this.emit('revoked', info))
      this.#router.on('config', (info) => this.emit('config', info))
      this.#router.on('fleet', (info) => this.emit('fleet', info))
      defer('router', () => { this.#router.stop() })
      this.#manager.on('link:open', (link) => this.#onLink(link))
      this.#manager.on('link:close', (link) => this.#onLinkClose(link))
      this.#manager.on('dial:error', (err, peer, retryIn) => {
        if (err.details?.remote === true) this.emit('link:refused', { code: err.code, peer: peer.id, address: `${peer.addresses.join('|')}:${peer.port}` })
        this.#onDialError(peer.id, retryIn)
      })
      this.#manager.start()
      defer('links', async () => { await this.#manager.stop() })
      // Discovery stops first: its goodbye (RFC 6762 §10.1) tells peers to drop us at once.
      // A stop whose signal is aborted is a crash (firmware-sim Device.crash): no goodbye, as a device that lost power.
      defer('discovery', async (stop) => { await Promise.allSettled(this.#discoveries.map(async (d) => { await d.stop({ goodbye: !stop.aborted }) })) })
      await this.#startDiscovery(signal)
      const announce = this.#init.announceLinks ?? 15_000
      if (announce > 0) defer('announce', every(this.#clock, announce, () => { this.announceLinks() }))
      const rotate = this.#init.rotateInterval ?? 30_000
      if (rotate > 0) {
        const rotation = this.#rotation = new PeerRotation({ interval: rotate, maxInterval: this.#init.rotateMaxInterval }, { clock: this.#clock, random: this.#random }, () => { this.#rotate() })
        rotation.start()
        defer('rotate', () => { rotation.stop(); this.#rotation = undefined })
      }
    }, options)
  }

  /** Publishes this node's current neighbours on `mesh/links` (see `announceLinks`). */
  announceLinks (): void {
    this.publish(LINKS_TOPIC, linksRecords([...this.#manager.links.keys()].sort()))
  }

  /** Says goodbye on DNS-SD, closes links and the listener; nothing is emitted after it is called. Idempotent. */
  async stop (options: { signal?: AbortSignal } = {}): Promise<void> {
    await this.#lifecycle.stop(options)
  }

  protected override emit<K extends keyof MeshNodeEvents & string> (event: K, ...args: MeshNodeEvents[K]): boolean {
    return this.#lifecycle.live && super.emit(event, ...args)
  }

  async [Symbol.asyncDispose] (): Promise<void> { await this.stop() }

  publish (topic: string, records: SenmlRecord[], options: { time?: number } = {}): { seq: number, frame: Uint8Array } {
    return this.#router.publish(topic, records, options)
  }

  /**
   * Takes a frame signed elsewhere (a device's own outbox, the gateway's broker path): verified,
   * deduplicated, delivered and routed like one from a link. Says what became of it.
   */
  inject (frame: Uint8Array): InjectResult {
    return this.#router.inject(frame)
  }

  /**
   * Offers one of this node's own frames again, one its durable subscribers have not acknowledged:
   * kept in the history and announced in the next DIGEST, so every neighbour on the way that
   * lacks it asks for it. False for another origin's frame or one this node never took (inject it).
   */
  reoffer (frame: Uint8Array): boolean {
    return this.#router.reoffer(frame)
  }

  /**
   * For a durable subscriber that keeps what it receives somewhere else (the gateway's database):
   * while `holding(origin)` is true, no ack of `origin` goes out (it stays due, sent at the first
   * tick after), so a device drops a reading from its outbox only once it is kept. Undefined: none.
   */
  holdAcks (holding: ((origin: DeviceId) => boolean) | undefined): void {
    this.#router.ackHold = holding
  }

  /**
   * Takes back a frame this node accepted but its application could not keep: fresh again in the
   * replay window, so the next ack shows it missing, its origin offers it again, and it is taken.
   */
  unaccept (origin: DeviceId, seq: number): void {
    this.#router.verifier.replay.forget(origin, seq)
  }

  /** Learns a device key (DNS-SD, a retained status, a roster); frames held for that device are verified at once. */
  learnKey (publicKey: PublicKey, id?: DeviceId): LearnResult {
    return this.#router.learnKey(publicKey, id)
  }

  /** The key this node verifies `id`'s frames with, if it knows one. */
  keyOf (id: DeviceId): PublicKey | undefined {
    return this.#router.verifier.keys.get(id)
  }

  /** True when `id` may take part (always in open mode; roster members in closed mode). */
  allowed (id: DeviceId): boolean {
    return this.#router.verifier.keys.allowed(id)
  }

  /** The best route to a subscriber, if this node has one. */
  routeTo (subscriber: DeviceId): { via: DeviceId, hops: number } | undefined {
    const best = this.#router.interest.best(subscriber)
    return best === undefined ? undefined : { via: best.via, hops: best.hops }
  }

  /** True when some subscriber (here or reachable) wants frames of `origin` (default: this node's own). */
  wanted (origin: DeviceId = this.id): boolean {
    return this.#router.interest.wants(origin, this.fleet)
  }

  /** The neighbours a frame of this node on `deviceTopic` goes to now (towards its subscribers, or down its broadcast tree: routing/tree.ts). */
  nextHops (deviceTopic: string): DeviceId[] {
    return [...this.#router.nextHops(frameTopic(this.fleet, this.id, deviceTopic), this.id, undefined)]
  }



  /** Every subscriber this node knows of: its filters and the route to it. */
  interest (): InterestRoute[] {
    return this.#router.interest.subscribers().map((subscriber) => {
      const best = this.#router.interest.best(subscriber)
      const filters = this.#router.interest.filtersOf(subscriber)
      const durable = filters.includes(DURABLE_FILTER) ? { durable: true as const } : {}
      return { subscriber, filters, ...durable, ...(best === undefined ? {} : { via: best.via, hops: best.hops }) }
    })
  }

  /**
   * Subscribes to a topic filter. `durable: true` makes this node a durable subscriber: its
   * declaration says so, and it returns signed cumulative acknowledgements (routing/ack.ts) of
   * what it receives to every origin, which keeps each reading until its durable subscribers hold it.
   */
  subscribe (filter: string, options: { signal?: AbortSignal, buffer?: number, durable?: boolean } = {}): Subscription {
    return this.#router.subscribe(filter, options)
  }

  /**
   * Executes commands addressed to this node (shared/command.ts): its declaration says it takes
   * them, so the mesh routes them here; `handler` (a device's CommandExecutor) judges each copy and
   * returns the signed result, which goes back over the path the command took. Returns a function
   * that stops taking them.
   */
  serveCommands (handler: CommandHandler): () => void {
    return this.#router.serveCommands(handler)
  }

  /**
   * Sends a command this node signed (shared/command.ts encodeCommand with this node's keys) to its
   * target over the mesh and resolves with the target's verified result, whatever its status.
   * Rejects with ERR_NO_ROUTE (no route to the target before the deadline), ERR_TIMEOUT (sent, no
   * verified result), ERR_ABORTED or ERR_BAD_COMMAND (mesh/command-client.ts).
   */
  async command (signed: Uint8Array, options: CommandOptions = {}): Promise<CommandResult> {
    const router = this.#router
    const keyOf = (id: DeviceId): PublicKey | undefined => router.verifier.keys.get(id) ?? router.interest.keyOf(id)
    return await commandOverMesh({ router, clock: this.#clock, keyOf, ed25519: this.#components.ed25519 }, signed, options)
  }

  /**
   * Takes an owner-signed revocation (iotmesh fleet revoke) and spreads it through the mesh; needs
   * `routing.fleetPolicy`. 'added' (new: spreading, the device's link closed), 'known', 'ignored'
   * (no fleet file), or the code it was refused with (ERR_TOO_FEW_OWNERS, ERR_NOT_OWNER, …).
   */
  revoke (bytes: Uint8Array): 'added' | 'known' | 'ignored' | ErrorCode {
    return this.#router.revoke(bytes)
  }

  /** True when the fleet's owners revoked `id` and this node knows it. */
  revoked (id: DeviceId): boolean {
    return this.#router.revocations?.has(id) === true
  }

  /** Every revocation this node holds, signed (to keep across a restart: `routing.revocations`). */
  revocations (): Uint8Array[] {
    return this.#router.revocations?.all() ?? []
  }

  /**
   * Takes an owner-signed configuration (iotmesh fleet config push) and spreads it through the
   * mesh; needs `routing.fleetPolicy`. 'added' (a new highest version for its target), 'known',
   * 'stale' (a lower version than held), 'ignored' (no fleet file), or the code it was refused with.
   */
  configure (bytes: Uint8Array): ConfigVerdict {
    return this.#router.configure(bytes)
  }

  /** Every signed configuration this node holds, the highest version per target. */
  configs (): Uint8Array[] {
    return this.#router.configs?.all() ?? []
  }

  /**
   * Takes an owner-signed fleet file (iotmesh fleet sign-file) and spreads it through the mesh;
   * needs `routing.fleetPolicy`. 'added' (now in force), 'known', 'ignored' (no fleet file), or the
   * code it was refused with (ERR_FLEET_STALE, ERR_TOO_FEW_OWNERS, ERR_NOT_OWNER, …).
   */
  updateFleet (bytes: Uint8Array): FleetVerdict {
    return this.#router.updateFleet(bytes)
  }

  /** The fleet file in force (the one given, or a newer signed one taken since), if any. */
  get fleetPolicy (): FleetPolicy | undefined {
    return this.#router.fleetFiles?.policy
  }

  /** The signed fleet files this node holds, oldest first (to keep across a restart: `routing.fleetFiles`). */
  fleetFiles (): Uint8Array[] {
    return this.#router.fleetFiles?.all() ?? []
  }

  /** Keeps a peer at `host:port` linked from now on, as a configured static peer is. */
  addPeer (address: StaticPeerInit): void {
    const parsed = parseStaticPeer(address)
    if (!parsed.ok) throw meshError('ERR_BAD_ARGUMENT', parsed.detail)
    const { peer } = parsed
    const candidate: Candidate = { key: peer.key, addresses: peer.addresses, port: peer.port, source: 'static', ...(peer.id === undefined ? {} : { id: peer.id }), ...(peer.publicKey === undefined ? {} : { publicKey: peer.publicKey }) }
    this.#setCandidate(candidate)
    this.#pin(candidate)
  }

  /** Links open now, by peer id. */
  get links (): ReadonlyMap<DeviceId, Link> { return this.#manager.links }

  peers (): MeshPeer[] {
    const out = new Map<DeviceId, MeshPeer>()
    for (const c of this.#candidates.values()) {
      if (c.id === undefined) continue
      out.set(c.id, { id: c.id, linked: this.#manager.links.has(c.id), addresses: c.addresses, port: c.port, source: c.source, ...(c.name === undefined ? {} : { name: c.name }) })
    }
    for (const id of this.#manager.links.keys()) if (!out.has(id)) out.set(id, { id, linked: true, addresses: [], port: 0, source: 'inbound' })
    const now = this.#clock.now()
    for (const id of this.#router.scores.peers()) {
      const score = this.#router.scores.record(id, now)
      const peer = out.get(id)
      if (score === undefined) continue
      if (peer !== undefined) peer.score = score
      else if (score.bannedUntil !== undefined) out.set(id, { id, linked: false, addresses: [], port: 0, source: 'banned', score })
    }
    for (const peer of out.values()) {
      const clones = this.instances.cloned(peer.id)
      if (clones > 0) peer.clones = clones
    }
    return [...out.values()]
  }

  get counters (): MeshCounters {
    let bytesIn = this.#closedBytes.in
    let bytesOut = this.#closedBytes.out
    for (const link of this.#manager.links.values()) { bytesIn += link.counters.bytesIn; bytesOut += link.counters.bytesOut }
    const router = this.#router.counters
    return {
      ...router,
      rejected: { ...router.rejected },
      overBudget: { ...router.overBudget },
      peers: this.#manager.links.size,
      bytesIn,
      bytesOut,
      discovery: this.#discoveries.map((d) => d.counters),
      banned: this.#router.scores.bannedCount(this.#clock.now()),
      links: { transport: structuredClone(this.#transport.counters), manager: { ...this.#manager.counters } },
      history: { origins: this.#router.history.size, bytes: this.#router.history.bytes },
      rotation: { steps: this.#rotation?.steps ?? 0, waitMs: this.#rotation?.wait ?? 0 }
    }
  }

  async #startDiscovery (signal: AbortSignal): Promise<void> {
    this.#discoveries = []
    const port = this.#address?.port ?? 0
    if (this.#init.mdns !== false) {
      const options = typeof this.#init.mdns === 'object' ? this.#init.mdns : {}
      const identity = { id: this.id, publicKey: this.#components.keys.publicKey }
      const cti = this.#init.credential === undefined ? undefined : credentialId(this.#init.credential)
      this.#discoveries.push(createMdnsDiscovery({ ...options, identity, port, name: this.name, fleet: this.fleet, cti },
        { responder: this.#components.responder, clock: this.#clock, random: this.#random }))
    }
    if ((this.#init.peers?.length ?? 0) > 0 || (this.#init.bootstrap?.length ?? 0) > 0) {
      this.#discoveries.push(createStaticDiscovery({ peers: this.#init.peers ?? [], bootstrap: this.#init.bootstrap ?? [] }))
    }
    for (const discovery of this.#discoveries) {
      discovery.on('peer', (peer) => this.#onDiscovered(peer))
      discovery.on('peer:lost', (key) => this.#forget(key))
    }
    await Promise.all(this.#discoveries.map(async (d) => { await d.start({ signal }) }))
  }

  #onDiscovered (peer: DiscoveredPeer): void {
    if (peer.id === this.id) return
    if (peer.source === 'mdns') this.#router.learnKey(peer.publicKey, peer.id)
    if (!this.#candidates.has(peer.key)) this.#rotation?.unsettle() // a peer not known before: a healed partition, say
    const candidate: Candidate = {
      key: peer.key,
      addresses: peer.addresses,
      port: peer.port,
      source: peer.source,
      ...(peer.id === undefined ? {} : { id: peer.id }),
      ...(peer.publicKey === undefined ? {} : { publicKey: peer.publicKey }),
      ...(peer.source === 'mdns' ? { name: peer.name } : {})
    }
    this.#setCandidate(candidate)
    if (peer.source === 'static') this.#pin(candidate)
    else if (this.#selected.has(peer.key)) this.#manager.add(this.#peerInfo(candidate)) // refresh addresses
    this.emit('peer:discovered', peer)
    this.#refillSoon()
  }

  /**
   * A refill once the discoveries have told what they hold: a discovery reports the peers of a
   * response (or of the cache it joins) one after the other, and a refill after each picked among
   * those reported so far, so every device that joined a fleet's shared responder dialed the first
   * instances of its cache, which ended with 48 inbound links each and evicting all the time.
   */
  #refillSoon (): void {
    if (this.#refillQueued) return
    this.#refillQueued = true
    queueMicrotask(() => {
      this.#refillQueued = false
      if (this.#lifecycle.live) this.#refill()
    })
  }

  /** Static and bootstrap peers are always kept linked. */
  #pin (candidate: Candidate): void {
    this.#pinned.add(candidate.key)
    this.#manager.add(this.#peerInfo(candidate))
  }

  /** Keeps `dialTarget` randomly chosen discovered peers in the manager's hands. */
  #refill (): void {
    const target = this.#init.dialTarget ?? 3
    if (this.#selected.size >= target) return
    const linked = new Set(this.#manager.links.keys())
    const now = this.#clock.now()
    for (const [key, until] of this.#cooldown) if (until <= now) this.#cooldown.delete(key)
    const pool = [...this.#candidates.values()].filter((c) => !this.#selected.has(c.key) && !this.#pinned.has(c.key) && !this.#cooldown.has(c.key) && (c.id === undefined || !linked.has(c.id)))
    while (this.#selected.size < target && pool.length > 0) {
      const [pick] = pool.splice(Math.floor(this.#random.float() * pool.length), 1) as [Candidate]
      this.#selected.add(pick.key)
      this.#manager.add(this.#peerInfo(pick))
    }
  }

  /** One step of peer rotation (see `rotateInterval`). */
  #rotate (): void {
    const target = this.#init.dialTarget ?? 3
    if (target === 0) return
    const linked = new Set(this.#manager.links.keys())
    const fresh = [...this.#candidates.values()].some((c) => !this.#selected.has(c.key) && !this.#pinned.has(c.key) && !this.#cooldown.has(c.key) && (c.id === undefined || !linked.has(c.id)))
    if (!fresh) return
    const rotatable = [...this.#selected].filter((k) => !this.#pinned.has(k))
    if (rotatable.length >= target) {
      const out = rotatable[Math.floor(this.#random.float() * rotatable.length)] as string
      this.#selected.delete(out)
      this.#manager.remove(out)
      const id = this.#candidates.get(out)?.id
      // Keep the old link (routes may run over it) unless the node is at its outbound limit.
      if (id !== undefined && this.#manager.slots.outbound >= this.#maxOutbound() - 1) void this.#manager.links.get(id)?.close()
    }
    this.#refill()
  }

  #forget (key: string): void {
    this.#deleteCandidate(key)
    this.#cooldown.delete(key)
    this.#pinned.delete(key)
    if (this.#selected.delete(key)) this.#manager.remove(key)
    this.#refill()
  }

  /**
   * A selected peer that cannot be reached gives its place to another, and stays out of the pool
   * for its backoff delay: otherwise the refill would pick it again at once and redial it in a
   * tight loop (a vanished device, or a forged announcement, would make every node hammer a port).
   */
  #onDialError (id: DeviceId | undefined, retryIn: number): void {
    const key = this.#selectedKeyOf(id)
    if (key === undefined || this.#selected.size < 2) return
    this.#giveUp(key, Math.max(retryIn, 1000))
  }

  /** The key under which the peer `id` is selected, if it is (`undefined`: the first selected peer whose id is not known yet). */
  #selectedKeyOf (id: DeviceId | undefined): string | undefined {
    for (const key of this.#selected) if (this.#candidates.get(key)?.id === id) return key
    return undefined
  }

  /** Takes `key` out of the selection and the pool for `ms`, and picks another in its place. */
  #giveUp (key: string, ms: number): void {
    this.#selected.delete(key)
    this.#manager.remove(key)
    this.#cooldown.set(key, this.#clock.now() + ms)
    this.#clock.setTimeout(() => { if (this.#lifecycle.started) this.#refill() }, ms + 1)
    this.#refill()
  }

  #peerInfo (c: Candidate): { id?: DeviceId, publicKey?: PublicKey, addresses: readonly string[], port: number } {
    return { addresses: c.addresses, port: c.port, ...(c.id === undefined ? {} : { id: c.id }), ...(c.publicKey === undefined ? {} : { publicKey: c.publicKey }) }
  }

  #onLink (link: Link): void {
    if (!this.#router.addLink(link)) return
    this.#opened.add(link)
    this.emit('link:open', link.remote.id)
  }

  /**
   * A neighbour the router disconnected for its score: not dialed again before its ban ends (the
   * router refuses its links until then; the link layer's own ban list, when it has one, refuses
   * them before the handshake).
   */
  #onBanned (info: BanInfo): void {
    this.emit('peer:banned', info)
    // Onto the links' ban list too: the transport then refuses the peer at its HELLO, before signing anything.
    this.#manager.disconnect(info.peer, { why: 'score', until: info.until }).catch(() => {}) // the ban is kept at once; the router closed the link already
    const keys = [...this.#candidates.values()].filter((c) => c.id === info.peer).map((c) => c.key)
    for (const key of keys) {
      if (this.#pinned.has(key)) continue // a configured peer: the manager redials on its backoff, and the router refuses it until the ban ends
      this.#cooldown.set(key, info.until)
      if (this.#selected.delete(key)) this.#manager.remove(key)
    }
    const wait = Math.max(0, info.until - this.#clock.now()) + 1
    this.#clock.setTimeout(() => { if (this.#lifecycle.started) this.#refill() }, wait)
    this.#refill()
  }

  #onLinkClose (link: Link): void {
    this.#peersFrom.delete(link.remote.id)
    this.#greeted.delete(link.remote.id)
    this.#closedBytes.in += link.counters.bytesIn
    this.#closedBytes.out += link.counters.bytesOut
    if (this.#opened.delete(link)) this.emit('link:close', link.remote.id)
    if (link.closeInfo?.error !== undefined) this.#rotation?.unsettle() // died (keepalive, reset, no close frame): a partition, say
    const { reason, why } = link.closeInfo ?? {}
    if (link.initiator && reason === 'remote' && (why === 'evicted' || why === 'full')) {
      // A peer with no inbound slot for us gives its place in the selection to another, as a peer
      // that cannot be reached does. Kept selected, it was dialed again after the manager's 30 s,
      // took another dialer's slot, and that one came back 30 s later: a full node (the first ones
      // every device discovers) then turned links over for ever, each a handshake at both ends.
      const key = this.#selectedKeyOf(link.remote.id)
      if (key !== undefined && !this.#pinned.has(key)) this.#giveUp(key, REFUSED_RETRY_MS)
    }
  }

  /** Peer exchange: answer a link's HELLO (its first only) with some peers we know, so bootstrap peers lead further. */
  #onHello (hello: { peer: DeviceId, port: number, addresses: string[] }): void {
    if (this.#greeted.has(hello.peer) || !this.#manager.links.has(hello.peer)) return
    this.#greeted.add(hello.peer)
    this.#addExchanged({ id: hello.peer, port: hello.port, addresses: hello.addresses })
    const known: PeerEntry[] = []
    for (const c of this.#candidates.values()) {
      if (c.id !== undefined && c.id !== hello.peer && c.port > 0 && c.addresses.length > 0) known.push({ id: c.id, port: c.port, addresses: c.addresses.slice(0, MAX_PEER_ADDRESSES) })
      if (known.length >= EXCHANGE_SHARE) break
    }
    if (known.length > 0) this.#router.sendPeers(hello.peer, known)
  }

  /**
   * A neighbour's peer list. Bounded: one message per link is taken (the answer to our HELLO),
   * at most `exchangePerLink` new peers from it, into a table of `maxExchangePeers` (oldest out);
   * each entry costs O(1) (the index by id).
   */
  #onPeers (peers: PeerEntry[], from: DeviceId): void {
    if (this.#peersFrom.has(from) || !this.#manager.links.has(from)) return
    this.#peersFrom.add(from)
    let taken = 0
    const most = this.#init.exchangePerLink ?? EXCHANGE_SHARE
    const endpoints = this.#endpoints()
    for (const p of peers) {
      if (taken >= most) break
      if (this.#addExchanged(p, endpoints)) taken++
    }
    if (taken > 0) this.#refill()
  }

  /** Adds a peer learned by exchange unless known or malformed; true when added. */
  #addExchanged (p: PeerEntry, endpoints = this.#endpoints()): boolean {
    if (p.id === this.id || !isDeviceId(p.id) || this.#byId.has(p.id) || this.#candidates.has(p.id)) return false
    if (!Number.isInteger(p.port) || p.port < 1 || p.port > 65535) return false
    if (p.addresses.length === 0 || p.addresses.length > MAX_PEER_ADDRESSES || !p.addresses.every(isHostAddress)) return false
    // A candidate at that address already (a configured peer, its id not known): one device, one candidate.
    if (p.addresses.some((a) => endpoints.has(`${a}:${p.port}`))) return false
    const max = Math.max(0, this.#init.maxExchangePeers ?? 128)
    for (const key of this.#exchanged) {
      if (this.#exchanged.size < max) break
      if (this.#selected.has(key)) continue // being dialed: kept
      this.#deleteCandidate(key)
      this.#cooldown.delete(key)
    }
    if (this.#exchanged.size >= max) {
      this.emit('drop', { code: 'ERR_TABLE_FULL', origin: p.id })
      return false
    }
    this.#setCandidate({ key: p.id, id: p.id, addresses: [...p.addresses], port: p.port, source: 'exchange' })
    return true
  }

  /** `address:port` of every candidate (made once per HELLO or PEERS message taken). */
  #endpoints (): Set<string> {
    const out = new Set<string>()
    for (const c of this.#candidates.values()) for (const a of c.addresses) out.add(`${a}:${c.port}`)
    return out
  }

  #setCandidate (candidate: Candidate): void {
    const previous = this.#candidates.get(candidate.key)
    if (previous?.id !== undefined && previous.id !== candidate.id && this.#byId.get(previous.id) === candidate.key) this.#byId.delete(previous.id)
    this.#candidates.set(candidate.key, candidate)
    if (candidate.id !== undefined) this.#byId.set(candidate.id, candidate.key)
    if (candidate.source === 'exchange') this.#exchanged.add(candidate.key)
    else this.#exchanged.delete(candidate.key)
  }

  #deleteCandidate (key: string): void {
    const candidate = this.#candidates.get(key)
    if (candidate === undefined) return
    this.#candidates.delete(key)
    this.#exchanged.delete(key)
    if (candidate.id !== undefined && this.#byId.get(candidate.id) === key) this.#byId.delete(candidate.id)
  }

  #addresses (): string[] {
    const host = this.#init.host ?? '0.0.0.0'
    if (host !== '0.0.0.0' && host !== '::') return [host]
    const out: string[] = []
    for (const list of Object.values(networkInterfaces())) {
      for (const a of list ?? []) if (!a.internal && a.family === 'IPv4') out.push(a.address)
    }
    return out.length > 0 ? out : ['127.0.0.1']
  }
}

/** Builds and starts a mesh node (aedes `createBroker` style). */
export async function createMeshNode (init: MeshNodeInit, components: MeshNodeComponents): Promise<MeshNode> {
  const node = new MeshNode(init, components)
  await node.start()
  return node
}
