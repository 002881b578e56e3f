import {
  DEFAULT_FLEET, Verifier, deviceIdFromBytes, deviceIdFromPublicKey, deviceTopicOf, signFrame, frameTopic, isMeshError, memorySequence,
  meshError, checkDeviceTopic, every, ownBytes, systemClock, validateFilter,
  type Clock, type DeviceId, type Ed25519, type KeyPair, type KeySource, type LearnResult, type PublicKey, type SenmlRecord, type SequenceSource,
  type TelemetryFrame, type TimerHandle, type VerifierInit, type Command, type CommandResult, type ErrorCode, RevocationSet, ConfigBook, FleetFileChain, HoldPen, type FleetPolicy
} from '../../shared/index.js'
import type { CredentialCheck } from '../credentials.js'
import { TypedEmitter } from '../events.js'
import type { Link, SendOptions } from '../links/types.js'
import { LinkBudget, OriginBudgets, budgetsOf, entriesOf, kindOf, type BudgetKind, type Budgets, type Rate } from './budget.js'
import { LATE_PROMISE_MS, type CloneInfo, type DropInfo, type HeldFrame, type LinkState, type RouterContext, type RouterOptions, type WantPromise } from './context.js'
import { newCounters, type RouterCounters } from './counters.js'
import { askRoutes, dispatch, ingest, pushOwn, release, routeSigned, sendAcks, sendConfigs, sendInterest, sendRevocations, sync, endSync, takeConfig, takeRevocation, tellKey,
  sendFleetFiles, takeFleetFile, type ConfigInfo, type ConfigVerdict, type FleetInfo, type FleetVerdict, type InjectResult } from './handlers/index.js'
import { DURABLE_FILTER, type Ack } from './ack.js'
import { AckState, type AckInit } from './acks.js'
import { COMMAND_FILTER, CommandRoutes, type CommandRoutesInit } from './commands.js'
import { History } from './history.js'
import { INTEREST_DEFAULTS, InterestTable, UNREACHABLE } from './interest.js'
import { InterestIntake } from './intake.js'
import { CONTROL_KINDS, MSG, decodeMessage, encodeData, encodeMessage, chunks, type PeerEntry, type RoutingMessage, type WantEntry } from './messages.js'
import { PeerScores, type ScoreEvent, type ScoreInit } from './score.js'
import { flush, sendFrame } from './backlog.js'
import { Subscription, type Delivery } from './subscription.js'
import { checkDeclarable } from './declaration.js'
import { RouteRequests, type ROUTE_REQUEST_DEFAULTS } from './route-requests.js'
import { EarlyRelay } from './early.js'
import { OwnPacer, type Paced } from './pacer.js'
import { BroadcastTree, type TreeInit } from './tree.js'

/**
 * Routing: publish/subscribe over authenticated links, multi-hop, with catch-up. Internal to
 * mesh/: MeshNode (node.ts) is the API; this class owns the state and the dispatcher, and the
 * handlers (handlers/*.ts, one per message kind) do the protocol work.
 *
 * Frames are routed by declared subscriptions, as Zenoh does (interest.ts): subscribers flood
 * versioned INTEREST declarations as a distance vector, and a frame goes only to the next hop
 * towards each subscriber whose filter matches it, and only from the node on that subscriber's
 * route (a neighbour that routes it elsewhere has sent it there). A reading therefore costs one
 * transmission and one verification per hop of the shortest path to each interested subscriber,
 * not one per device in the mesh. A frame that interests most of the fleet goes down its origin's
 * broadcast tree instead, the reverse of the routes towards the origin (tree.ts, `#route`); why not
 * a broadcast for everything: README "Routing".
 *
 * Catch-up after partitions and repair: handlers/sync.ts (DIGEST) and handlers/want.ts (WANT).
 * Every frame is verified once, by the one verifier (shared/verifier.ts), before it is delivered
 * or relayed.
 *
 * Hostile neighbours: every message is admitted against its sender's budget for its kind before it
 * is decoded (budget.ts), and what a neighbour sends is scored (score.ts); a neighbour whose score
 * falls below the threshold is disconnected and kept out for a growing backoff.
 */

export interface RouterInit extends Pick<VerifierInit,
  'maxKeys' | 'maxOrigins' | 'maxStrangers' | 'maxStrangerKeys' | 'promoteAfter' | 'maxHeld' | 'maxHeldPerSigner'> {
  fleet?: string
  /** Frames that travelled more links than this are dropped (ERR_HOP_LIMIT). */
  hopLimit?: number
  /**
   * Relay a frame before verifying it (default false): the next hop starts on the frame while this
   * node checks its signature. Only a new (origin, seq) of a known key, from a neighbour with no
   * invalid frame on its record, while no forgery went on unverified in the last `earlyHoldoffMs`
   * (handlers/data.ts `relayEarly`). The frame is still verified before it is delivered here, and
   * every node verifies before delivering, so a forgery reaches no application; what it costs is
   * in the README ("Relaying before verifying").
   */
  relayBeforeVerify?: boolean
  /**
   * The eager/lazy broadcast tree for frames that interest most of the fleet (tree.ts: reverse-path
   * forwarding over the interest routes, DIGEST/WANT as the lazy half), for frames of at least
   * `minSubscribers` (8) subscribers and half the nodes this node knows of. Off by default (every
   * frame by interest routing); true or `{ enabled: true }` turns it on. README "Routing".
   */
  broadcastTree?: boolean | TreeInit
  /** How often lazy neighbours get a DIGEST of what changed, ms. */
  syncInterval?: number
  /** How long to wait for the direct path before asking for what a DIGEST shows missing, ms. */
  graftDelay?: number
  /**
   * A subscriber re-declares its interest this often, ms (default 10 s); routes not refreshed for 3
   * periods expire. Each declaration is a new signed version: one signature here, one verification
   * at every node. A route lost to a failure is asked for at once (ROUTEREQ, `routeRequests`).
   */
  interestRefresh?: number
  /** Route requests for lost routes (route-requests.ts ROUTE_REQUEST_DEFAULTS): retries, the redundancy window, how often this node re-declares for them. */
  routeRequests?: Partial<Omit<typeof ROUTE_REQUEST_DEFAULTS, 'redeclare'>> & { redeclare?: Partial<Rate> }
  /** How long before asking again for the same origin, ms. */
  wantRetry?: number
  /** Most frames one WANT may make this node send (default 4096); each held frame is looked at once, whatever range the WANT names. */
  wantBudget?: number
  /** Most origins whose last WANT time is remembered for `wantRetry` (default 4096; oldest first out). */
  maxWanted?: number
  /** Most subscribers this node keeps interest routes for (default 4096); claims beyond are refused (ERR_TABLE_FULL). */
  maxSubscribers?: number
  /**
   * Most subscribers one neighbour may have an entry for, and most INTEREST claims of one
   * neighbour waiting to be checked (default 1024): one neighbour cannot fill the table.
   */
  maxSubscribersPerNeighbour?: number
  /**
   * Most distinct new subscribers (ones this node has no route for) one neighbour may name in
   * INTEREST within two windows of three `interestRefresh` periods (default: `maxSubscribers`, at
   * least 4096, what an honest neighbour's whole table can hold); each beyond is refused
   * (ERR_TABLE_FULL) and counts against its score (introductions.ts, handlers/interest.ts).
   */
  maxNewSubscribersPerNeighbour?: number
  /**
   * Most bytes of signed declarations (each at most 8 KiB) held for the subscribers one neighbour
   * has an entry for, and again for its claims waiting to be checked (default 1 MiB; an honest
   * neighbour with 1,024 subscribers needs ~300 KiB).
   */
  maxInterestBytesPerNeighbour?: number
  /**
   * Work spent checking INTEREST claims per turn of the event loop, in units of one SHA-256 (an
   * Ed25519 verification counts 100; default 1000: about ten new declarations or a thousand claims of
   * versions already verified, 1–4 ms on Node): the rest waits for the next turn.
   */
  interestWork?: number
  /** Frames held per origin for catch-up. */
  historyPerOrigin?: number
  /** Bytes of history held in all, frames and their bookkeeping (default 16 MiB); origins nobody vouched for share 1,024 histories. */
  historyBytes?: number
  /** An origin's history is forgotten when nothing was added for it this long, ms (default 10 minutes; the node's own is kept). */
  historyIdleMs?: number
  /** Replay window per origin, in sequence numbers (at least historyPerOrigin). */
  replayWindow?: number
  /** Frames from an unknown signer are held this long while its key is asked for, ms. */
  keyWait?: number
  /** Closed mode: only these keys may publish or link. */
  roster?: Iterable<PublicKey>
  /**
   * Link port and addresses announced in HELLO (for peer exchange); a function is asked at each
   * HELLO (a node that listens on port 0 knows its port only once listening). Port 0: none, and
   * peers pass this node on to no one.
   */
  port?: number | (() => number)
  addresses?: () => string[]
  /** What one neighbour may make this node read, per message kind, and its frames of fresh origins (budget.ts DEFAULT_BUDGETS: generous). */
  budgets?: Partial<Record<BudgetKind, Partial<Rate>>>
  /**
   * Frames of one origin this node accepts from neighbours, whoever relays them (budget.ts
   * DEFAULT_ORIGIN_RATE: 500 a second, burst 5,000); beyond it they are refused unchecked
   * (ERR_OVER_BUDGET) and count against the neighbour's score.
   */
  originRate?: Partial<Rate>
  /** Peer scoring: weights, decay, threshold, bans (score.ts DEFAULT_SCORE_PARAMS). */
  score?: ScoreInit
  /** Most frames of one neighbour's held while their signer's key is asked for (default 256). */
  maxHeldPerPeer?: number
  /** End-to-end acknowledgements: how often a durable subscriber acks, and the bounds of the ack tables (acks.ts). */
  acks?: AckInit
  /** Commands on their way: how many paths are remembered, per neighbour and in all (commands.ts). */
  commands?: CommandRoutesInit
  /** The fleet file (shared/fleet.ts): with it, this node takes, spreads and enforces owner-signed revocations (handlers/revoke.ts). */
  fleetPolicy?: FleetPolicy
  /** Revocations to start with (kept by the device across restarts); each is verified. */
  revocations?: Iterable<Uint8Array>
  /** Signed configurations to start with (kept by the device across restarts); each is verified (handlers/config.ts). */
  configs?: Iterable<Uint8Array>
  /** Signed fleet files to start with, oldest first (kept by the device across restarts); each is verified against the one before (handlers/fleet.ts). */
  fleetFiles?: Iterable<Uint8Array>
}

/**
 * Executes a command for this node and returns its signed result (or undefined: nothing to send
 * back, e.g. a command refused before its signature was checked). Called for every copy that
 * reaches this node, retransmissions included: the executor answers a repeat from its journal.
 */
export type CommandHandler = (signed: Uint8Array, command: Command) => Uint8Array | undefined

/** Most unanswered WANTs remembered per neighbour (the oldest is then counted as broken). */
const MAX_PROMISES = 16
const CONTROL: SendOptions = Object.freeze({ control: true })
const NOW: SendOptions = Object.freeze({ now: true })
const constant = (port: number) => (): number => port

export interface RouterComponents {
  keys: KeyPair
  /** Timers, and the wall clock of sampling times and delivery stamps. */
  clock?: Clock
  ed25519?: Ed25519
  /** Where this node's sequence numbers come from (a file for real devices). */
  sequence?: SequenceSource
}

export interface RouterEvents {
  delivery: [delivery: Delivery]
  drop: [info: DropInfo]
  hello: [info: { peer: DeviceId, fleet: string, port: number, addresses: string[] }]
  peers: [peers: PeerEntry[], from: DeviceId]
  'link:open': [peer: DeviceId]
  'link:close': [peer: DeviceId]
  /** A neighbour's score fell below the threshold: disconnected, kept out until `until` (the clock's now(), ms). */
  'peer:banned': [info: BanInfo]
  /** A second, different, validly signed frame for an (origin, seq): two devices hold one key. */
  clone: [info: CloneInfo]
  /** A verified end-to-end ack of this node's frames from a durable subscriber (ack.ts). */
  ack: [ack: Ack]
  /** A result of one of this node's commands, not verified yet (mesh/command-client.ts verifies). */
  result: [result: CommandResult, signed: Uint8Array]
  /** A new revocation was taken (verified): keep `bytes` to hand it on after a restart. */
  revoked: [info: { device: DeviceId, reason: string, bytes: Uint8Array }]
  /** A signed configuration: a new highest version for its target (verified), or a lower one than held ('stale', not verified). */
  config: [info: ConfigInfo]
  /** A new signed fleet file is in force (handlers/fleet.ts): keep `bytes` to hand it on after a restart. */
  fleet: [info: FleetInfo]
}

export interface BanInfo { peer: DeviceId, score: number, until: number, bans: number, code: 'ERR_PEER_SCORE' }

/** Announced in HELLO. 2: INTEREST carries signed declarations and hash-chain proofs (not understood by 1). */
export const ROUTING_VERSION = 2

export class Router extends TypedEmitter<RouterEvents> implements RouterContext {
  readonly id: DeviceId
  readonly fleet: string
  readonly options: RouterOptions
  readonly clock: Clock
  readonly counters: RouterCounters = newCounters()
  readonly verifier: Verifier<HeldFrame>
  readonly history: History
  readonly interest: InterestTable
  readonly tree: BroadcastTree
  readonly intake: InterestIntake
  readonly routeRequests: RouteRequests
  readonly links = new Map<DeviceId, LinkState>()
  readonly digestDue = new Set<DeviceId>()
  readonly changed = new Set<DeviceId>()
  readonly wantedAt = new Map<DeviceId, number>()
  readonly scores: PeerScores
  readonly early: EarlyRelay
  readonly origins: OriginBudgets
  readonly acks: AckState
  /** Set by a durable subscriber that keeps frames elsewhere (MeshNode.holdAcks): its acks of an origin wait while this says so. */
  ackHold: ((origin: DeviceId) => boolean) | undefined
  readonly commands: CommandRoutes
  readonly revocations: RevocationSet | undefined
  readonly configs: ConfigBook | undefined
  readonly fleetFiles: FleetFileChain | undefined
  /** Set by the node (`useCredentials`): its credential cache, and whether relayed origins must be enrolled. */
  credentials: CredentialCheck | undefined
  checkOrigins = false
  readonly credentialWait: HoldPen<HeldFrame>
  #commandHandler: CommandHandler | undefined
  readonly #budgets: Budgets
  readonly #keys: KeyPair
  readonly #ed: Ed25519 | undefined
  readonly #sequence: SequenceSource
  readonly #toAdvertise = new Set<DeviceId>()
  #advertiseScheduled = false
  /** This node's own frames past the origin rate its neighbours take, waiting their turn (pacer.ts). */
  readonly #pacer: OwnPacer
  #paceScheduled = false
  /** Per subscriber, the next hop (and version) last told at once that it is ours (`#poisonNextHops`). */
  readonly #nextHopTold = new Map<DeviceId, { via: DeviceId, version: number }>()
  readonly #subs = new Set<Subscription>()
  readonly #timers = new Set<TimerHandle>()
  #stopSync: (() => void) | undefined
  #stopRefresh: (() => void) | undefined
  #stopDecay: (() => void) | undefined
  #stopAcks: (() => void) | undefined
  #running = false

  constructor (init: RouterInit, components: RouterComponents) {
    super()
    this.#keys = components.keys
    this.id = components.keys.id
    this.fleet = init.fleet ?? DEFAULT_FLEET
    this.options = {
      fleet: this.fleet,
      hopLimit: init.hopLimit ?? 32,
      relayBeforeVerify: init.relayBeforeVerify ?? false,
      syncInterval: init.syncInterval ?? 2000,
      graftDelay: init.graftDelay ?? 250,
      wantRetry: init.wantRetry ?? 1500,
      interestRefresh: init.interestRefresh ?? 10_000,
      wantBudget: init.wantBudget ?? 4096,
      maxWanted: init.maxWanted ?? 4096,
      maxHeldPerPeer: init.maxHeldPerPeer ?? 256,
      port: typeof init.port === 'function' ? init.port : constant(init.port ?? 0),
      addresses: init.addresses ?? (() => [])
    }
    this.clock = components.clock ?? systemClock
    this.#ed = components.ed25519
    // Without a store, start from the wall clock in microseconds: a restarted process starts above
    // every number it used before unless it published faster than a million frames a second.
    this.#sequence = components.sequence ?? memorySequence(Math.floor(this.clock.wall() * 1000))
    const perOrigin = init.historyPerOrigin ?? 256
    this.scores = new PeerScores(init.score)
    this.early = new EarlyRelay(this.scores.params)
    this.#budgets = budgetsOf(init.budgets)
    this.origins = new OriginBudgets(init.originRate)
    this.#pacer = new OwnPacer(init.originRate, this.clock.now())
    this.verifier = new Verifier<HeldFrame>({
      roster: init.roster,
      maxKeys: init.maxKeys,
      maxOrigins: init.maxOrigins,
      maxStrangers: init.maxStrangers,
      maxStrangerKeys: init.maxStrangerKeys,
      promoteAfter: init.promoteAfter,
      maxHeld: init.maxHeld,
      maxHeldPerSigner: init.maxHeldPerSigner,
      replayWindow: Math.max(init.replayWindow ?? 1024, perOrigin),
      holdMs: init.keyWait
    }, { clock: this.clock, ed25519: components.ed25519 })
    this.history = new History({ perOrigin, maxBytes: init.historyBytes, idleMs: init.historyIdleMs, own: this.id, now: () => this.clock.now() })
    const ackWindow = Math.max(init.replayWindow ?? 1024, perOrigin)
    this.acks = new AckState({ ...init.acks, window: ackWindow }, { keys: components.keys, clock: this.clock, ed25519: components.ed25519 })
    this.commands = new CommandRoutes(init.commands)
    this.fleetFiles = init.fleetPolicy === undefined ? undefined : new FleetFileChain(init.fleetPolicy)
    for (const bytes of init.fleetFiles ?? []) {
      try { this.fleetFiles?.add(bytes, components.ed25519) } catch { /* one that does not follow the file in force is dropped */ }
    }
    const policy = this.fleetFiles?.policy
    this.credentialWait = new HoldPen({ clock: this.clock, holdMs: init.keyWait ?? 3000, max: init.maxHeld ?? 1024, maxPerSigner: init.maxHeldPerSigner ?? 64 })
    this.revocations = policy === undefined ? undefined : new RevocationSet(policy)
    for (const bytes of init.revocations ?? []) {
      try { this.revocations?.add(bytes, components.ed25519) } catch { /* one that no longer verifies (another fleet file) is dropped */ }
    }
    this.configs = policy === undefined ? undefined : new ConfigBook(policy)
    for (const bytes of init.configs ?? []) {
      try { this.configs?.add(bytes, components.ed25519) } catch { /* as revocations */ }
    }
    this.verifier.learnKey(components.keys.publicKey)
    const perNeighbour = init.maxSubscribersPerNeighbour ?? INTEREST_DEFAULTS.maxPerNeighbour
    const bytesPerNeighbour = init.maxInterestBytesPerNeighbour ?? INTEREST_DEFAULTS.maxBytesPerNeighbour
    this.interest = new InterestTable(
      { maxSubscribers: init.maxSubscribers, maxPerNeighbour: perNeighbour, maxBytesPerNeighbour: bytesPerNeighbour, departedMs: 30 * this.options.interestRefresh },
      { keys: components.keys, clock: this.clock, ed25519: components.ed25519 }
    )
    this.intake = new InterestIntake({
      perNeighbour,
      bytesPerNeighbour,
      workPerTurn: init.interestWork ?? 1000,
      newPerNeighbour: init.maxNewSubscribersPerNeighbour ?? Math.max(INTEREST_DEFAULTS.maxSubscribers, this.interest.limits.maxSubscribers),
      newWindowMs: 3 * this.options.interestRefresh
    })
    this.routeRequests = new RouteRequests({ ...init.routeRequests, maxSubscribers: this.interest.limits.maxSubscribers }, this.clock.now())
    this.tree = new BroadcastTree(typeof init.broadcastTree === 'boolean' ? { enabled: init.broadcastTree } : init.broadcastTree)
  }

  get running (): boolean { return this.#running }
  get ed25519 (): Ed25519 | undefined { return this.#ed }

  start (): void {
    if (this.#running) return
    this.#running = true
    this.#stopSync = every(this.clock, this.options.syncInterval, () => { sync(this) })
    this.#stopRefresh = every(this.clock, this.options.interestRefresh, () => { this.#refreshInterest() })
    this.#stopDecay = every(this.clock, this.scores.params.decayInterval, () => { this.#tick() })
    this.#stopAcks = every(this.clock, this.acks.options.intervalMs, () => { this.#sendAcks() })
  }

  stop (): void {
    if (!this.#running) return
    this.#running = false
    this.#stopSync?.()
    endSync(this)
    this.#stopRefresh?.()
    this.#stopDecay?.()
    this.#stopAcks?.()
    this.acks.clear()
    this.commands.clear()
    for (const timer of this.#timers) this.clock.clearTimeout(timer)
    this.#timers.clear()
    this.#advertiseScheduled = false
    this.#paceScheduled = false
    this.#pacer.clear()
    this.#toAdvertise.clear()
    this.#nextHopTold.clear()
    this.intake.scheduled = false
    this.intake.refill()
    this.routeRequests.clear()
    this.digestDue.clear()
    for (const peer of this.links.keys()) this.intake.dropVia(peer)
    this.verifier.clear()
    this.credentialWait.clear()
    for (const state of this.links.values()) state.detach()
    this.links.clear()
    for (const sub of [...this.#subs]) sub.close()
    this.removeAllListeners()
  }

  /** Publishes readings under this node's identity; `topic` is device-relative ("telemetry") or full. */
  publish (topic: string, records: SenmlRecord[], options: { time?: number } = {}): { seq: number, frame: Uint8Array } {
    const deviceTopic = checkDeviceTopic(deviceTopicOf(this.fleet, this.id, topic) ?? topic)
    const seq = this.#sequence.next()
    const time = options.time ?? this.clock.wall() / 1000
    const decoded = signFrame({ keys: this.#keys, seq, time, records, topic: deviceTopic, ed25519: this.#ed }) // encoded and parsed once (issue 15)
    const frame = decoded.bytes
    this.verifier.recordOwn(this.id, seq, decoded)
    this.history.add(this.id, { seq, bytes: frame, hops: 0 })
    this.changed.add(this.id)
    this.counters.published++
    this.deliver(decoded, frame, 0, undefined)
    this.forward(decoded, frame, 1, undefined)
    return { seq, frame }
  }

  /** Subscribes; the filter is declared to the mesh (INTEREST) so matching readings are routed here. */
  subscribe (filter: string, options: { signal?: AbortSignal, buffer?: number, durable?: boolean } = {}): Subscription {
    validateFilter(filter)
    const durable = options.durable === true
    const adding = [filter, ...(durable ? [DURABLE_FILTER] : [])].filter((f) => !this.interest.localFilters.includes(f))
    if (adding.length > 0) checkDeclarable([...this.interest.localFilters, ...adding])
    const sub: Subscription = new Subscription(filter, {
      signal: options.signal,
      buffer: options.buffer,
      onClose: () => {
        if (!this.#subs.delete(sub) || !this.#running) return
        if (durable) this.acks.durable--
        const changed = this.interest.setLocal(filter, -1)
        const durableChanged = durable && this.interest.setLocal(DURABLE_FILTER, -1)
        if (changed || durableChanged) this.advertise([this.id])
      }
    })
    if (!sub.closed) {
      this.#subs.add(sub)
      if (durable) this.acks.durable++
      const changed = this.interest.setLocal(filter, 1)
      // A durable subscriber says so in its signed declaration (ack.ts DURABLE_FILTER): origins then keep their frames until it acks them.
      const durableChanged = durable && this.interest.setLocal(DURABLE_FILTER, 1)
      if (changed || durableChanged) this.advertise([this.id])
    }
    return sub
  }

  /**
   * Takes commands addressed to this node: COMMAND_FILTER goes into its signed declaration, so every
   * node routes commands for it here (commands.ts). Returns a function that stops taking them.
   */
  serveCommands (handler: CommandHandler): () => void {
    const first = this.#commandHandler === undefined
    this.#commandHandler = handler
    if (first) {
      checkDeclarable([...this.interest.localFilters, COMMAND_FILTER])
      if (this.interest.setLocal(COMMAND_FILTER, 1)) this.advertise([this.id])
    }
    return () => {
      if (this.#commandHandler !== handler) return
      this.#commandHandler = undefined
      if (this.interest.setLocal(COMMAND_FILTER, -1) && this.#running) this.advertise([this.id])
    }
  }

  /** Takes a revocation made or received outside the links and spreads it (handlers/revoke.ts). */
  revoke (bytes: Uint8Array): 'added' | 'known' | 'ignored' | ErrorCode {
    return takeRevocation(this, bytes, undefined)
  }

  /** Takes a signed configuration made or received outside the links and spreads it (handlers/config.ts). */
  configure (bytes: Uint8Array): ConfigVerdict {
    return takeConfig(this, bytes, undefined)
  }

  /** Takes a signed fleet file made or received outside the links and spreads it (handlers/fleet.ts). */
  updateFleet (bytes: Uint8Array): FleetVerdict {
    return takeFleetFile(this, bytes, undefined)
  }

  /** The node's credential cache (mesh/credentials.ts), judged by the fleet file in force; `checkOrigins`: relayed frames need their origin's credential. */
  useCredentials (credentials: CredentialCheck, checkOrigins: boolean): void {
    this.credentials = credentials
    this.checkOrigins = checkOrigins
    if (this.fleetFiles !== undefined) credentials.setPolicy(this.fleetFiles.policy)
  }

  /** Sends a signed command (or result) on its way from here. Undefined when it went; else why not (ERR_NO_ROUTE, ERR_TABLE_FULL, …). */
  sendSigned (signed: Uint8Array): ErrorCode | undefined {
    return routeSigned(this, signed, 1, undefined)
  }

  /**
   * Offers one of this node's own frames again (a device re-offering what its durable subscribers
   * have not acknowledged): back into the history if it was evicted, and announced in the next
   * DIGEST, so each neighbour on the way asks (WANT) for it only if it lacks it; and pushed
   * towards each durable subscriber beyond a neighbour whose ack lists it as a hole, past relays
   * that once had it (handlers/reoffer.ts). False for a frame of another origin, or one this node
   * never accepted.
   */
  reoffer (frame: Uint8Array): boolean {
    const decoded = this.verifier.decode(frame)
    if (!decoded.ok || decoded.frame.origin !== this.id) return false
    const { seq } = decoded.frame
    if (this.verifier.replay.check(this.id, seq) === 'ok') return false // never accepted here: inject it instead
    if (this.history.get(this.id, seq) === undefined) this.history.add(this.id, { seq, bytes: ownBytes(frame), hops: 0 })
    this.changed.add(this.id)
    pushOwn(this, seq, frame)
    return true
  }

  /**
   * Takes a signed frame from outside the links (the gateway's broker path, a device's own
   * outbox): verified, deduplicated, delivered and disseminated like any other.
   */
  inject (frame: Uint8Array, hops = 0): InjectResult {
    return ingest(this, frame, hops, undefined)
  }

  /**
   * Learns a key from discovery, a retained status or a roster (`'pin'`: its device's key and
   * replay window strangers cannot evict), or from a KEY message (`'gossip'`).
   */
  learnKey (publicKey: PublicKey, id?: DeviceId, source: KeySource = 'pin'): LearnResult {
    const learned = this.verifier.learnKey(publicKey, id, source)
    if (learned.result === 'mismatch' || learned.result === 'not-in-roster') {
      this.drop({ code: learned.result === 'mismatch' ? 'ERR_WRONG_KEY' : 'ERR_NOT_IN_ROSTER', origin: id ?? deviceIdFromPublicKey(publicKey) })
    }
    release(this, learned.released)
    return learned.result
  }

  /** Starts routing over a link; false (and the link destroyed) when its peer is refused: outside the roster, or kept out. */
  addLink (link: Link): boolean {
    const peer = link.remote.id
    const now = this.clock.now()
    // Kept out while banned; back too soon (its score, which decays, still below the threshold): banned again, for longer.
    let until = this.scores.banned(peer, now)
    if (until !== undefined) this.drop({ code: 'ERR_PEER_SCORE', from: peer })
    else if (this.scores.failing(peer)) until = this.#ban(peer, this.scores.score(peer))
    if (until !== undefined) {
      link.destroy(meshError('ERR_PEER_SCORE', `${peer} is kept out for ${Math.ceil((until - now) / 1000)} s more: its score fell below the threshold`))
      return false
    }
    if (this.revocations?.has(peer) === true) {
      this.counters.revokedRefused++
      this.drop({ code: 'ERR_REVOKED', from: peer })
      link.destroy(meshError('ERR_REVOKED', `${peer} was revoked by the fleet's owners (${this.revocations.get(peer)?.reason ?? ''})`))
      return false
    }
    this.links.get(peer)?.detach()
    const learned = this.verifier.learnKey(link.remote.publicKey, peer)
    if (learned.result !== 'added' && learned.result !== 'known') {
      this.drop({ code: 'ERR_NOT_IN_ROSTER', from: peer })
      link.destroy()
      return false
    }
    const onMessage = (msg: Uint8Array): void => { this.#onMessage(state, msg) }
    const onClose = (): void => { this.#removeLink(state) }
    const onDrain = (): void => { flush(this, state) }
    link.on('message', onMessage)
    link.on('close', onClose)
    link.on('drain', onDrain)
    const state: LinkState = {
      link,
      peer,
      told: new Set([this.id, peer]),
      missed: new Set(),
      backlog: new Map(),
      gossipDue: false,
      detach: () => { link.off('message', onMessage); link.off('close', onClose); link.off('drain', onDrain) },
      budget: new LinkBudget(this.#budgets, now),
      held: 0,
      promises: [],
      late: []
    }
    this.links.set(peer, state)
    this.scores.linked(peer, true, now)
    release(this, learned.released)
    this.send(state, { kind: MSG.HELLO, version: ROUTING_VERSION, fleet: this.fleet, port: this.options.port(), addresses: this.options.addresses() })
    sendInterest(this, state, this.interest.advertsFor(peer, [this.id, ...this.interest.subscribers()]))
    sendFleetFiles(this, state) // first: the owners in force sign what follows
    sendRevocations(this, state)
    sendConfigs(this, state)
    this.emit('link:open', peer)
    return true
  }

  /** Sends a peer list to one neighbour (peer exchange, for bootstrap peers). */
  sendPeers (peer: DeviceId, peers: PeerEntry[]): void {
    const state = this.links.get(peer)
    if (state !== undefined) for (const chunk of chunks(peers)) this.send(state, { kind: MSG.PEERS, peers: chunk })
  }

  // ---- RouterContext: what the handlers use ----

  send (state: LinkState, message: RoutingMessage): boolean {
    const ok = this.sendRaw(state, encodeMessage(message), CONTROL_KINDS.has(message.kind) ? CONTROL : undefined)
    if (ok) this.counters.controlOut++
    if (ok && message.kind === MSG.WANT) this.#promised(state, message.entries)
    return ok
  }

  sendRaw (state: LinkState, bytes: Uint8Array, options?: SendOptions): boolean {
    try {
      state.link.send(bytes, options)
      return true
    } catch {
      return false // ERR_BACKPRESSURE or ERR_LINK_CLOSED: the DIGEST/WANT exchange repairs it
    }
  }

  drop (info: DropInfo): void {
    const clean: DropInfo = { code: info.code }
    if (info.origin !== undefined) clean.origin = info.origin
    if (info.seq !== undefined) clean.seq = info.seq
    if (info.from !== undefined) clean.from = info.from
    this.counters.rejected[clean.code] = (this.counters.rejected[clean.code] ?? 0) + 1
    this.emit('drop', clean)
  }

  observe (peer: DeviceId | undefined, event: ScoreEvent, n = 1): void {
    if (peer === undefined) return
    const score = this.scores.add(peer, event, n)
    if (score < this.scores.params.threshold && this.scores.banned(peer, this.clock.now()) === undefined) this.#ban(peer, score)
  }

  clone (info: CloneInfo): void {
    this.counters.clones++
    this.drop({ code: info.code, origin: info.origin, seq: info.seq, ...(info.from === undefined ? {} : { from: info.from }) })
    this.emit('clone', info)
  }

  deliver (frame: TelemetryFrame, bytes: Uint8Array, hops: number, from: DeviceId | undefined, caughtUp = false): void {
    this.counters.delivered++
    this.acks.accepted(frame.origin, from)
    const delivery: Delivery = {
      topic: frameTopic(this.fleet, frame.origin, frame.topic),
      origin: frame.origin,
      seq: frame.seq,
      time: frame.time,
      records: frame.records,
      hops,
      frame: bytes,
      receivedAt: this.clock.wall(),
      from,
      ...(caughtUp ? { caughtUp: true as const } : {})
    }
    for (const sub of this.#subs) if (sub.matches(delivery.topic)) sub.push(delivery)
    this.emit('delivery', delivery)
  }

  /**
   * Sends a frame on towards every subscriber it interests (interest.ts `targets`): a verified one,
   * or with `early` one this node has still to verify (handlers/data.ts `relayEarly`), written at once.
   * True when it went to a neighbour or waits in a link's backlog.
   */
  forward (frame: TelemetryFrame, bytes: Uint8Array, hops: number, from: DeviceId | undefined, early = false, paced = false): boolean {
    if (hops > this.options.hopLimit) return false
    const { origin } = frame
    const { targets, tree } = this.#route(frameTopic(this.fleet, origin, frame.topic), origin, from)
    if (targets.size === 0) return false
    // Our own frames (published, or injected from our outbox) no faster than neighbours take one origin's.
    if (!paced && from === undefined && origin === this.id && !this.#pacer.take(this.clock.now())) return this.#hold({ frame, bytes, hops })
    const message = encodeData(hops, bytes)
    let sent = false
    for (const peer of targets) {
      const state = this.links.get(peer)
      if (state === undefined) continue
      if (sendFrame(this, state, origin, frame.seq, hops, message, early ? NOW : undefined)) sent = true
    }
    if (sent && origin !== this.id) this.counters.relayed++
    if (sent && tree) this.counters.treeFrames++
    return sent
  }

  /** One of our own frames past the origin rate: waits its turn (pacer.ts); false when too many wait (left to DIGEST/WANT). */
  #hold (item: Paced): boolean {
    if (!this.#pacer.hold(item)) { this.counters.pacedOver++; return false }
    this.counters.paced++
    this.#schedulePace()
    return true
  }

  /** Sends the waiting frames whose turn came, every `interval` ms while any wait; each is routed as it goes. */
  #schedulePace (): void {
    if (this.#paceScheduled || !this.#running) return
    this.#paceScheduled = true
    this.later(this.#pacer.interval, () => {
      this.#paceScheduled = false
      for (const p of this.#pacer.due(this.clock.now())) this.forward(p.frame, p.bytes, p.hops, undefined, false, true)
      if (this.#pacer.size > 0) this.#schedulePace()
    })
  }

  /** The neighbours a frame on `topic` of `origin` from `from` goes to now. */
  nextHops (topic: string, origin: DeviceId, from: DeviceId | undefined): Set<DeviceId> {
    return this.#route(topic, origin, from).targets
  }

  /**
   * Where a frame goes: by the broadcast tree (tree.ts) when it interests most of the fleet
   * (`BroadcastTree.uses`: at least `minSubscribers`, and half of the nodes this node knows of)
   * and this node has a route to its origin (it is its own, or the origin subscribes); else by
   * interest, to the next hop towards each subscriber it interests (interest.ts `targets`).
   */
  #route (topic: string, origin: DeviceId, from: DeviceId | undefined): { targets: Set<DeviceId>, tree: boolean } {
    const tree = this.tree.enabled && (origin === this.id || this.interest.best(origin) !== undefined) &&
      this.tree.uses(this.interest.matching(topic, origin), () => this.#knownNodes(), this.clock.now())
    return tree ? { targets: this.#children(origin, from), tree } : { targets: this.interest.targets(topic, origin, from), tree }
  }

  /**
   * The tree's eager links for a frame of `origin` (tree.ts): the neighbours that route `origin`
   * through this node (with poisoned reverse they advertise it here as unreachable) or have no
   * route to it, but the one the frame came by and the origin. O(links).
   */
  #children (origin: DeviceId, from: DeviceId | undefined): Set<DeviceId> {
    const out = new Set<DeviceId>()
    for (const peer of this.links.keys()) {
      if (peer !== from && peer !== origin && this.interest.advertised(peer, origin) >= UNREACHABLE) out.add(peer)
    }
    return out
  }

  /** Nodes this node knows of: O(subscribers + origins + links), bounded by their tables. */
  #knownNodes (): number {
    const known = new Set<DeviceId>(this.interest.subscribers())
    for (const origin of this.history.origins()) known.add(origin)
    for (const peer of this.links.keys()) known.add(peer)
    known.add(this.id)
    return known.size
  }

  /**
   * Tells every neighbour our distance to these subscribers (split horizon, poisoned reverse),
   * once per turn of the clock however many changes arrived before it. A macrotask, not a
   * microtask: over links that deliver in microtasks (memory links) a chain of adverts from node
   * to node would otherwise run without ever yielding to timers, I/O or signals.
   */
  advertise (subscribers: DeviceId[]): void {
    this.#poisonNextHops(subscribers)
    for (const s of subscribers) this.#toAdvertise.add(s)
    if (this.#advertiseScheduled || this.#toAdvertise.size === 0 || !this.#running) return
    this.#advertiseScheduled = true
    this.later(0, () => {
      this.#advertiseScheduled = false
      const changed = [...this.#toAdvertise]
      this.#toAdvertise.clear()
      for (const state of this.links.values()) sendInterest(this, state, this.interest.advertsFor(state.peer, changed), true)
    })
  }

  /**
   * A route that moved to a new next hop: that neighbour is told at once, before any frame goes to
   * it by the new route, that it is our next hop (poisoned reverse: "unreachable" through us). Until
   * then it holds our old claim, a distance of our own, and drops what we send it: a relay does not
   * forward a frame towards a subscriber its sender has its own route to (interest.ts `targets`).
   * Told at the next turn with the other adverts, as before, every frame sent in between was lost on
   * the eager path and left to DIGEST/WANT, hop by hop (issue 15). On a busy thread that turn came
   * hundreds of ms later, and routes move all the time (links rotate; each subscriber's periodic
   * new version reaches a node first by whichever path was quickest). One message per move, to one
   * neighbour, ordered before the frames on that link; the batch still goes to every neighbour at
   * the next turn. `#nextHopTold` holds at most one entry per subscriber with a route.
   */
  #poisonNextHops (subscribers: DeviceId[]): void {
    if (!this.#running) return
    if (this.#nextHopTold.size > this.interest.limits.maxSubscribers) this.#nextHopTold.clear() // routes gone without an advert: start over
    const byVia = new Map<DeviceId, DeviceId[]>()
    for (const s of subscribers) {
      const best = this.interest.best(s)
      if (best === undefined) { this.#nextHopTold.delete(s); continue }
      const told = this.#nextHopTold.get(s)
      if (told !== undefined && told.via === best.via && told.version === best.version) continue
      if (!this.links.has(best.via)) continue
      this.#nextHopTold.set(s, { via: best.via, version: best.version })
      const list = byVia.get(best.via)
      if (list === undefined) byVia.set(best.via, [s])
      else list.push(s)
    }
    for (const [via, subs] of byVia) {
      const state = this.links.get(via) as LinkState
      sendInterest(this, state, this.interest.advertsFor(via, subs))
    }
  }

  tellKey (state: LinkState, origin: DeviceId): void { tellKey(this, state, origin) }

  later (ms: number, fn: () => void): TimerHandle {
    const timer: TimerHandle = this.clock.setTimeout(() => { this.#timers.delete(timer); if (this.#running) fn() }, ms)
    this.#timers.add(timer)
    return timer
  }

  emitHello (info: { peer: DeviceId, fleet: string, port: number, addresses: string[] }): void { this.emit('hello', info) }
  emitPeers (peers: PeerEntry[], from: DeviceId): void { this.emit('peers', peers, from) }
  closeLink (state: LinkState): void { state.link.destroy() }
  emitAck (ack: Ack): void { this.emit('ack', ack) }
  emitResult (result: CommandResult, signed: Uint8Array): void { this.emit('result', result, signed) }
  emitRevoked (device: DeviceId, reason: string, bytes: Uint8Array): void { this.emit('revoked', { device, reason, bytes }) }
  emitConfig (info: ConfigInfo): void { this.emit('config', info) }
  emitFleet (info: FleetInfo): void { this.emit('fleet', info) }
  readmit (frames: HeldFrame[]): void { release(this, frames) }

  adoptPolicy (policy: FleetPolicy): void {
    if (this.revocations !== undefined) this.revocations.policy = policy
    if (this.configs !== undefined) this.configs.policy = policy
    this.credentials?.setPolicy(policy)
  }

  takeCommand (command: Command, signed: Uint8Array): void {
    const handler = this.#commandHandler
    if (handler === undefined) { this.drop({ code: 'ERR_NO_ROUTE', origin: command.issuer }); return }
    let answer: Uint8Array | undefined
    try {
      answer = handler(signed, command)
    } catch (err) {
      this.drop({ code: isMeshError(err) ? err.code : 'ERR_BAD_COMMAND', origin: command.issuer })
      return
    }
    if (answer !== undefined) routeSigned(this, answer, 1, undefined)
  }

  // ---- internals ----

  #removeLink (state: LinkState): void {
    if (this.links.get(state.peer) !== state) return
    state.detach()
    this.links.delete(state.peer)
    this.scores.linked(state.peer, false, this.clock.now())
    this.digestDue.delete(state.peer)
    this.intake.dropVia(state.peer)
    this.acks.forgetVia(state.peer)
    this.commands.forgetVia(state.peer)
    const changed = this.interest.dropVia(state.peer)
    if (changed.length > 0) {
      this.advertise(changed)
      askRoutes(this, changed) // routes lost with the link: asked for at once (handlers/route-request.ts, RFC 8966 §3.8.2.1)
    }
    this.emit('link:close', state.peer)
  }

  /** One message from a neighbour: admitted against its budget before it is read, then decoded and dispatched. */
  #onMessage (state: LinkState, bytes: Uint8Array): void {
    const kind = kindOf(bytes)
    const now = this.clock.now()
    if (!state.budget.admit(kind, now)) {
      this.counters.overBudget[kind] = (this.counters.overBudget[kind] ?? 0) + 1
      this.counters.rejected.ERR_OVER_BUDGET = (this.counters.rejected.ERR_OVER_BUDGET ?? 0) + 1
      this.observe(state.peer, 'overBudget')
      return
    }
    let message: RoutingMessage
    try {
      message = decodeMessage(bytes)
    } catch (err) {
      this.drop({ code: isMeshError(err) ? err.code : 'ERR_BAD_CBOR', from: state.peer })
      this.observe(state.peer, 'invalid')
      return
    }
    if (message.kind !== MSG.DATA) {
      this.counters.controlIn++
      state.budget.charge(kind, entriesOf(message) - 1, now)
    }
    try {
      dispatch(this, state, message, (key) => { this.learnKey(key, undefined, 'gossip') })
    } catch (err) {
      // A handler fed untrusted input catches, counts and drops: one bad message never stops a node.
      this.drop({ code: isMeshError(err) ? err.code : 'ERR_BAD_CBOR', from: state.peer })
      this.observe(state.peer, 'invalid')
    }
  }

  /** Disconnects a neighbour whose score fell below the threshold and keeps it out for its backoff. */
  #ban (peer: DeviceId, score: number): number {
    const until = this.scores.ban(peer, this.clock.now())
    const bans = this.scores.record(peer, this.clock.now())?.bans ?? 1
    this.counters.bans++
    this.drop({ code: 'ERR_PEER_SCORE', from: peer })
    this.emit('peer:banned', { peer, score: Math.round(score * 100) / 100, until, bans, code: 'ERR_PEER_SCORE' })
    const state = this.links.get(peer)
    if (state !== undefined) {
      this.#removeLink(state)
      this.scores.linked(peer, false, this.clock.now())
      state.link.destroy(meshError('ERR_PEER_SCORE', `${peer} scored ${Math.round(score)}, below the threshold ${this.scores.params.threshold}: disconnected and kept out`))
    }
    return until
  }

  /** A WANT sent: what it asked for is credited to the neighbour's data budget, and is a promise to keep. */
  #promised (state: LinkState, entries: WantEntry[]): void {
    const now = this.clock.now()
    const ranges = new Map<DeviceId, Array<[number, number]>>()
    let frames = 0
    for (const { kid, from, to } of entries) {
      const origin = deviceIdFromBytes(kid)
      const list = ranges.get(origin)
      if (list === undefined) ranges.set(origin, [[from, to]])
      else list.push([from, to])
      frames += to - from + 1
    }
    if (state.promises.length >= MAX_PROMISES) this.#expire(state, state.promises.shift() as WantPromise, now)
    state.promises.push({ ranges, deadline: now + this.scores.params.promiseMs, kept: false, left: frames })
    state.budget.credit('data', Math.min(frames, this.options.wantBudget), this.options.wantBudget, now)
  }

  /** Every `decayInterval`: scores decay, WANTs unanswered past their deadline count as broken promises, idle histories go. */
  #tick (): void {
    const now = this.clock.now()
    this.scores.decay(now)
    this.counters.historyForgotten += this.history.forgetIdle()
    for (const state of [...this.links.values()]) {
      while (state.late.length > 0 && (state.late[0] as WantPromise).deadline + LATE_PROMISE_MS <= now) state.late.shift()
      while (state.promises.length > 0 && (state.promises[0] as WantPromise).deadline <= now) this.#expire(state, state.promises.shift() as WantPromise, now)
    }
  }

  /**
   * A WANT past its deadline (or pushed out by newer ones): broken when nothing it asked for came
   * (score.ts), and kept a while for late answers (`LinkState.late`, handlers/data.ts `fulfil`).
   */
  #expire (state: LinkState, promise: WantPromise, now: number): void {
    if (!promise.kept) {
      promise.broken = true
      this.observe(state.peer, 'brokenPromise')
    }
    if (!this.links.has(state.peer)) return
    promise.deadline = Math.min(promise.deadline, now)
    if (state.late.length >= MAX_PROMISES) state.late.shift()
    state.late.push(promise)
  }

  /** A durable subscriber's tick: the acks due, signed and sent towards their origins (acks.ts, handlers/ack.ts). */
  #sendAcks (): void {
    if (this.acks.durable <= 0) return
    const replay = this.verifier.replay
    const reachable = (origin: DeviceId): boolean => this.links.has(origin) || this.links.has(this.acks.upstream(origin) ?? ('' as DeviceId))
    const due = this.acks.due({ high: (o) => replay.high(o), gaps: (o, from, to, max) => replay.gaps(o, from, to, max), holding: this.ackHold }, reachable)
    if (due.length > 0) sendAcks(this, due, 1)
  }

  #refreshInterest (): void {
    const now = this.clock.now()
    const expired = this.interest.expire(now - 3 * this.options.interestRefresh, now)
    if (this.interest.localFilters.length > 0) {
      this.interest.bump()
      this.advertise([this.id])
    }
    if (expired.length > 0) this.advertise(expired)
  }
}
