import {
  TOPIC_ROOT, bytesEqual, filterCoversDevice, ownBytes, telemetryTopic, topicMatches,
  type Clock, type DeviceId, type Ed25519, type ErrorCode, type KeyPair, type PublicKey
} from '../../shared/index.js'
import { HashChain } from './chain.js'
import { openDeclaration } from './declaration.js'
import { FilterIndex } from './filter-index.js'
import { UNREACHABLE, type Claim } from './claim.js'
import { LocalInterest } from './local-interest.js'
import { MatchCache } from './match-cache.js'

/**
 * Declared interest: who subscribes to what, and which neighbour leads to them.
 *
 * Every node with subscriptions declares them and the declaration floods the mesh as a distance
 * vector: each node keeps, per subscriber, the hop distance advertised by each neighbour, routes
 * through the nearest, and re-advertises its own distance whenever it changes, with split horizon
 * and poisoned reverse (a node tells its next hop towards S that it is unreachable through it, so
 * two nodes never route S through each other). A subscriber re-declares every `refresh` ms with a
 * new version; routes not refreshed for three periods are dropped.
 *
 * Loops longer than two nodes (which poisoned reverse cannot see) are kept out by Babel's
 * feasibility condition (RFC 8966 §2.4): within one version of a declaration, a node accepts a
 * route only through a neighbour whose distance is strictly below the smallest distance this node
 * has had itself (its feasibility distance). A node that loses its route does not count up to
 * infinity through its neighbours; it is unreachable until the subscriber's next version, which it
 * asks for at once (ROUTEREQ, handlers/route-request.ts, RFC 8966 §3.8.2.1). A node
 * re-advertises only when what it advertises changes (a route that was unreachable and stays so
 * is not news), so a lost route is retracted once per node and the exchange ends.
 *
 * Hostile neighbours. Only a subscriber can declare or refresh its interest: a declaration is a
 * COSE_Sign1 of the subscriber over its version, filters and a hash-chain anchor
 * (declaration.ts), verified once per (subscriber, version) and then recognised by its bytes. A
 * relay cannot make a route look shorter than it is: a distance d is proven by the chain element
 * e_d (chain.ts, SEAD), and a node that heard e_d can only advertise d or more; distance 0 is the
 * subscriber's own and is taken only from the subscriber itself. What remains: a relay may repeat
 * its neighbour's distance (one hop shorter than true) and a relay on the path may drop frames
 * (README "Routing under attack"). The table is bounded: `maxSubscribers` routes in all, and
 * `maxPerNeighbour` subscribers (`maxBytesPerNeighbour` bytes of their declarations) that one
 * neighbour may have an entry for; updates are O(1) in the table's size (per-neighbour index),
 * and the subscribers a topic or an origin interests are found in a trie of their filters
 * (filter-index.ts: filters that do not match cost nothing), cached per topic until some
 * route's filters change.
 *
 * Frames then travel only towards subscribers whose filters match them, along shortest paths,
 * instead of to every node: in a fleet whose readings flow to one gateway, each reading costs
 * one verification per hop of its path, not one per device.
 */

export const INTEREST_DEFAULTS = {
  /** Most subscribers this node keeps routes for, in all. */
  maxSubscribers: 4096,
  /** Most subscribers one neighbour may have an entry for (so one neighbour cannot fill the table). */
  maxPerNeighbour: 1024,
  /**
   * Most bytes of declarations (each at most 8 KiB) of the subscribers one neighbour has an entry
   * for: an honest neighbour with 1,024 subscribers needs ~300 KiB; one that declares the largest
   * declarations gets ~128 of them in, not 1,024 (what they hold with their filters and chains is
   * about three times their bytes).
   */
  maxBytesPerNeighbour: 1024 * 1024,
  /**
   * How long the last version of a subscriber whose routes expired is remembered (ms): until then
   * a claim of that version or an older one is refused (ERR_REPLAY), so no neighbour, replaying
   * what it kept, brings the routes of a subscriber that left back to life. The router passes
   * 30 `interestRefresh` periods (5 minutes by default).
   */
  departedMs: 300_000
} as const

export { UNREACHABLE, type Claim } from './claim.js'

/** What became of one claim; `cost` is the work it took (WORK_*), for the caller's budget. */
export interface UpdateResult { changed: boolean, cost: number, code?: ErrorCode }

/**
 * Work units: one SHA-256 of a chain element is 1 (~2.5 µs on Node with a Hash object per step);
 * opening a declaration (CBOR decode and an Ed25519 verification, node:crypto) was measured at
 * ~140 of them on a loaded 2-core EPYC, so it counts 100 (with @noble/ed25519, in a browser, it
 * costs more: lower `interestWork`). chain.ts now hashes with the one-shot `hash` (~1.2 µs a
 * step): the units are unchanged, so a turn's budget bounds its time as before or tighter.
 */
export const WORK_CLAIM = 1
export const WORK_VERIFY = 100

interface Route {
  version: number
  declaration: Uint8Array
  publicKey: PublicKey
  filters: readonly string[]
  chain: HashChain
  /** Feasibility distance: the smallest distance this node has had for this version. */
  fd: number
  /** Distance advertised by each neighbour (its own distance to the subscriber). */
  vias: Map<DeviceId, number>
  /**
   * The distances of the version before, for neighbours that have not sent this one yet: not a
   * route (feasibility holds within a version), only what `advertised` answers meanwhile, so a
   * new version's wave across the mesh does not make frames go twice.
   */
  previous: ReadonlyMap<DeviceId, number>
  /** When this version was installed here (only a new version, signed by the subscriber, refreshes a route). */
  refreshedAt: number
  /**
   * Claims of a newer version that came without its declaration, from neighbours that have an entry
   * here: at most one per neighbour (the latest), taken when that version is installed (`update`).
   */
  pending?: Map<DeviceId, Pending>
}

/** A claim of a version not installed yet, held until its declaration arrives. */
interface Pending { version: number, hops: number, proof: Uint8Array }

type Best = { via: DeviceId, hops: number, version: number } | undefined

/** What `wants` derives from one origin (`#keysOf`). */
interface OriginKeys { generation: number, fleet: string, topic: string, matchKey: string, device: DeviceId, cacheKey: string }
/** Origins whose keys `wants` keeps (each a few short strings): past it, it starts over. */
const MAX_ORIGIN_KEYS = 4096

/** A device level no filter can have (validateFilter refuses NUL): stands for every origin no filter names (`#matchKey`). */
const ANY_ORIGIN = '\u0000' as DeviceId

/**
 * The neighbour of the nearest feasible route (RFC 8966 §2.4: only a distance below the
 * feasibility distance), ties to the lowest id; undefined when none. Allocates nothing: it runs for
 * every frame and every sync round.
 */
function nearest (route: Route): DeviceId | undefined {
  let via: DeviceId | undefined
  let hops = UNREACHABLE
  for (const v of route.vias.keys()) {
    const h = route.vias.get(v) as number
    if (h + 1 >= UNREACHABLE || h >= route.fd) continue
    if (via === undefined || h + 1 < hops || (h + 1 === hops && v < via)) { via = v; hops = h + 1 }
  }
  return via
}

/** SEAD: distance d is proven by e_d, and distance 0 is the subscriber's alone (a neighbour that is not it cannot claim it). */
function proves (chain: HashChain, via: DeviceId, subscriber: DeviceId, hops: number, proof: Uint8Array): boolean {
  return (hops !== 0 || via === subscriber) && chain.check(hops, proof)
}

export class InterestTable {
  readonly self: DeviceId
  readonly limits: { readonly maxSubscribers: number, readonly maxPerNeighbour: number, readonly maxBytesPerNeighbour: number }
  /** This node's own subscriptions and declaration. */
  readonly local: LocalInterest
  readonly #ed: Ed25519 | undefined
  readonly #routes = new Map<DeviceId, Route>()
  /** Subscribers each neighbour has an entry for: O(its entries) to forget a neighbour, O(1) to count. */
  readonly #byVia = new Map<DeviceId, Set<DeviceId>>()
  /** Bytes of the declarations of the subscribers each neighbour has an entry for. */
  readonly #bytesVia = new Map<DeviceId, number>()
  /** Every route's filters, by level (what a topic or an origin interests costs its matches, not the table). */
  readonly #filters = new FilterIndex()
  /** Subscribers whose filters match a topic (or want an origin), until some route's filters change. */
  readonly #matches = new MatchCache()
  readonly #originKeys = new Map<DeviceId, OriginKeys>()
  /**
   * Subscribers whose routes expired: the last version held and when it went (oldest first; at
   * most `maxSubscribers`, the oldest forgotten first). Only a newer version installs a route again.
   */
  readonly #departed = new Map<DeviceId, { version: number, at: number }>()
  readonly #departedMs: number
  readonly #clock: Clock

  constructor (init: { maxSubscribers?: number, maxPerNeighbour?: number, maxBytesPerNeighbour?: number, departedMs?: number }, components: { keys: KeyPair, clock: Clock, ed25519?: Ed25519 }) {
    this.self = components.keys.id
    this.local = new LocalInterest(components)
    this.#ed = components.ed25519
    this.#departedMs = Math.max(0, init.departedMs ?? INTEREST_DEFAULTS.departedMs)
    this.#clock = components.clock
    this.limits = {
      maxSubscribers: Math.max(1, init.maxSubscribers ?? INTEREST_DEFAULTS.maxSubscribers),
      maxPerNeighbour: Math.max(1, init.maxPerNeighbour ?? INTEREST_DEFAULTS.maxPerNeighbour),
      maxBytesPerNeighbour: Math.max(1, init.maxBytesPerNeighbour ?? INTEREST_DEFAULTS.maxBytesPerNeighbour)
    }
  }

  /** This node's own filters, version and declaration (local-interest.ts). */
  get localFilters (): readonly string[] { return this.local.filters }
  get version (): number { return this.local.version }
  setLocal (filter: string, delta: 1 | -1): boolean { return this.local.set(filter, delta) }
  bump (): void { this.local.bump() }
  own (): Claim | undefined { return this.local.claim() }
  /** Subscribers with a route (reachable or not). */
  get size (): number { return this.#routes.size }
  /** True when this node has a route (reachable or not) for `subscriber`. */
  has (subscriber: DeviceId): boolean { return this.#routes.has(subscriber) }
  /** The version of `subscriber`'s declaration this node holds (undefined: no route at all). */
  versionOf (subscriber: DeviceId): number | undefined { return this.#routes.get(subscriber)?.version }

  /**
   * True when `subscriber`'s routes expired within `departedMs` at `version` or a later one: a
   * claim of `version` is then a replay of what the subscriber declared before it left.
   */
  #gone (subscriber: DeviceId, version: number, now: number): boolean {
    const gone = this.#departed.get(subscriber)
    if (gone === undefined) return false
    if (gone.at <= now - this.#departedMs) {
      this.#departed.delete(subscriber)
      return false
    }
    return version <= gone.version
  }

  /**
   * The work `update` would take for this claim (WORK_*), to schedule it within a budget. A replay
   * of a departed subscriber's declaration is refused unchecked (`#gone`), so it costs a claim, not
   * the verification a new version costs: it spends no more of its neighbour's budget than it takes.
   */
  cost (claim: Claim, now = this.#clock.now()): number {
    const route = this.#routes.get(claim.subscriber)
    if (claim.hops >= UNREACHABLE || (route !== undefined && claim.version < route.version) || (claim.declaration === undefined && route?.version !== claim.version)) return WORK_CLAIM
    if (route === undefined && this.#gone(claim.subscriber, claim.version, now)) return WORK_CLAIM
    if (route === undefined || claim.version > route.version) return WORK_CLAIM + WORK_VERIFY + UNREACHABLE - claim.hops
    return WORK_CLAIM + route.chain.cost(claim.hops)
  }

  /**
   * Takes a claim from neighbour `via`: checks the declaration (once per version) and the
   * distance proof, within the table's bounds. `changed` is true when what this node advertises
   * of the subscriber changed (its distance, next hop or version), i.e. when it must re-advertise.
   */
  update (via: DeviceId, claim: Claim, now: number): UpdateResult {
    const { subscriber } = claim
    if (subscriber === this.self) return { changed: false, cost: WORK_CLAIM }
    let route = this.#routes.get(subscriber)
    if (route !== undefined && claim.version < route.version) return { changed: false, cost: WORK_CLAIM } // stale: a newer version is known
    const isNew = route === undefined || claim.version > route.version
    let cost = WORK_CLAIM
    const hops = Math.min(claim.hops, UNREACHABLE)
    if (isNew && hops === UNREACHABLE) {
      // "I cannot reach S" needs no proof, and teaches nothing of a version: a new version is
      // installed only with a distance. It still withdraws what `via` offered before.
      if (route === undefined || !route.vias.has(via)) return { changed: false, cost }
      const before = this.best(subscriber)
      route.vias.set(via, UNREACHABLE)
      return { changed: differs(before, this.#select(subscriber)), cost }
    }
    const { declaration, publicKey } = claim
    if (isNew && (declaration === undefined || publicKey === undefined)) {
      // A version we do not hold, without its declaration: nothing to check it with yet. A neighbour
      // sends a new version so when we were one hop from the subscriber, which sends us the
      // declaration itself (handlers/interest.ts `sendInterest`); the claim waits for it, one per
      // neighbour that has an entry here (so within the table's bounds), the latest replacing the
      // last. Checked like any claim once the version is installed; a version never signed never is.
      if (route !== undefined && (this.#byVia.get(via)?.has(subscriber) ?? false)) (route.pending ??= new Map()).set(via, { version: claim.version, hops, proof: ownBytes(claim.proof) })
      return { changed: false, cost }
    }
    // A claim that would install the routes of a subscriber that left, at the version it left with (or older): a replay.
    if (route === undefined && this.#gone(subscriber, claim.version, now)) return { changed: false, cost, code: 'ERR_REPLAY' }
    if (!isNew && declaration !== undefined && !bytesEqual(declaration, (route as Route).declaration)) return { changed: false, cost, code: 'ERR_BAD_DECLARATION' }
    const entered = this.#byVia.get(via)?.has(subscriber) ?? false
    // A new version's declaration replaces the old one's in what this neighbour's entries hold.
    const size = isNew ? (declaration as Uint8Array).length : (route as Route).declaration.length
    if (!this.#fits(via, entered ? (route as Route).declaration.length : undefined, size)) return { changed: false, cost, code: 'ERR_TABLE_FULL' }
    if (route === undefined && this.#routes.size >= this.limits.maxSubscribers) return { changed: false, cost, code: 'ERR_TABLE_FULL' }
    let chain = route?.chain
    let opened: ReturnType<typeof openDeclaration> | undefined
    if (isNew) {
      cost += WORK_VERIFY
      opened = openDeclaration(declaration as Uint8Array, publicKey as PublicKey, { subscriber, version: claim.version, length: UNREACHABLE }, this.#ed)
      if (!opened.ok) return { changed: false, cost, code: opened.code }
      chain = HashChain.fromAnchor(opened.declaration.anchor, UNREACHABLE)
    }
    if (hops < UNREACHABLE) {
      cost += (chain as HashChain).cost(hops)
      if (!proves(chain as HashChain, via, subscriber, hops, claim.proof)) return { changed: false, cost, code: 'ERR_ROUTE_PROOF' }
    }
    const before = this.best(subscriber)
    const waiting = isNew ? route?.pending : undefined
    if (isNew && opened?.ok === true) {
      const filters = opened.declaration.filters
      if (route === undefined || !sameFilters(route.filters, filters)) {
        this.#matches.invalidate()
        this.#indexFilters(subscriber, route?.filters ?? [], -1)
        this.#indexFilters(subscriber, filters, 1)
      }
      if (route !== undefined) for (const v of route.vias.keys()) this.#unindex(v, subscriber, route.declaration.length)
      route = {
        version: claim.version,
        declaration: ownBytes(declaration as Uint8Array),
        publicKey: ownBytes(publicKey as PublicKey),
        filters,
        chain: chain as HashChain,
        fd: UNREACHABLE,
        vias: new Map(),
        previous: route?.vias ?? new Map(),
        refreshedAt: now
      }
      this.#routes.set(subscriber, route)
      this.#departed.delete(subscriber)
    }
    // A route lives by its subscriber's versions alone (refreshedAt is set when a version is
    // installed): claims of a version already held, which any relay can repeat, refresh nothing.
    const r = route as Route
    r.vias.set(via, hops)
    this.#index(via, subscriber, r.declaration.length)
    if (waiting !== undefined) cost += this.#takePending(subscriber, r, via, waiting)
    const after = this.#select(subscriber)
    return { changed: differs(before, after), cost }
  }

  /**
   * The claims of `route`'s new version that arrived before its declaration (`pending`): each
   * checked as `update` checks one (its distance proof, distance 0 from the subscriber alone, the
   * per-neighbour bounds) and entered. A claim that fails is dropped; its sender gets nothing.
   * Returns the work done.
   */
  #takePending (subscriber: DeviceId, route: Route, from: DeviceId, waiting: Map<DeviceId, Pending>): number {
    let cost = 0
    for (const [via, claim] of waiting) {
      if (via === from || claim.version !== route.version) continue // a neighbour that has since sent this version itself, or another version
      cost += WORK_CLAIM
      // Its entry went with the old version (`update` unindexed every neighbour's): it enters afresh.
      if (claim.hops >= UNREACHABLE || !this.#fits(via, undefined, route.declaration.length)) continue
      cost += route.chain.cost(claim.hops)
      if (!proves(route.chain, via, subscriber, claim.hops, claim.proof)) continue
      route.vias.set(via, claim.hops)
      this.#index(via, subscriber, route.declaration.length)
    }
    return cost
  }

  /**
   * The per-neighbour bounds, for `update` and `#takePending` alike: whether `via` may hold an
   * entry of `size` bytes, in place of the one of `held` bytes it holds for the same subscriber
   * (undefined: a new entry, which must also fit `maxPerNeighbour`).
   */
  #fits (via: DeviceId, held: number | undefined, size: number): boolean {
    if (held === undefined && this.countVia(via) >= this.limits.maxPerNeighbour) return false
    return this.bytesVia(via) - (held ?? 0) + size <= this.limits.maxBytesPerNeighbour
  }

  /** Picks the best feasible route and lowers the feasibility distance to it. */
  #select (subscriber: DeviceId): Best {
    const best = this.best(subscriber)
    const route = this.#routes.get(subscriber)
    if (best !== undefined && route !== undefined && best.hops < route.fd) route.fd = best.hops
    return best
  }

  /** The nearest feasible neighbour towards `subscriber` and our distance (its distance + 1). */
  best (subscriber: DeviceId): Best {
    const route = this.#routes.get(subscriber)
    if (route === undefined) return undefined
    const via = nearest(route)
    return via === undefined ? undefined : { via, hops: (route.vias.get(via) as number) + 1, version: route.version }
  }

  /** Whether a subscription of this node's own matches `topic`. */
  #subscribedHere (topic: string): boolean {
    for (const f of this.local.filters) if (topicMatches(f, topic)) return true
    return false
  }

  /** The next hop towards `subscriber`: `best(subscriber)?.via` without the object. */
  #nextHop (subscriber: DeviceId): DeviceId | undefined {
    const route = this.#routes.get(subscriber)
    return route === undefined ? undefined : nearest(route)
  }

  /** Whether this node has a route to `subscriber` (through `via`, when given). */
  #reaches (subscriber: DeviceId, via: DeviceId | undefined): boolean {
    const next = this.#nextHop(subscriber)
    return next !== undefined && (via === undefined || next === via)
  }

  /** What `via` told us its distance to `subscriber` is (UNREACHABLE when nothing). */
  advertised (via: DeviceId, subscriber: DeviceId): number {
    if (via === subscriber) return 0
    const route = this.#routes.get(subscriber)
    return route?.vias.get(via) ?? route?.previous.get(via) ?? UNREACHABLE
  }

  /** Forgets a neighbour; returns the subscribers whose best route changed. O(its entries). */
  dropVia (via: DeviceId): DeviceId[] {
    const changed: DeviceId[] = []
    for (const subscriber of this.#byVia.get(via) ?? []) {
      const route = this.#routes.get(subscriber)
      if (route === undefined) continue
      const before = this.best(subscriber)
      route.vias.delete(via)
      route.pending?.delete(via)
      if (differs(before, this.#select(subscriber))) changed.push(subscriber)
    }
    this.#byVia.delete(via)
    this.#bytesVia.delete(via)
    return changed
  }

  /**
   * Drops routes whose version was installed before `before` (no newer one since), and remembers
   * each one's version for `departedMs` from `now` (see `#departed`); returns the subscribers dropped.
   */
  expire (before: number, now = before): DeviceId[] {
    const dropped: DeviceId[] = []
    for (const [subscriber, route] of this.#routes) {
      if (route.refreshedAt >= before) continue
      for (const via of route.vias.keys()) this.#unindex(via, subscriber, route.declaration.length)
      this.#indexFilters(subscriber, route.filters, -1)
      this.#routes.delete(subscriber)
      dropped.push(subscriber)
      this.#departed.delete(subscriber)
      this.#departed.set(subscriber, { version: route.version, at: now })
    }
    for (const [subscriber, gone] of this.#departed) {
      if (this.#departed.size <= this.limits.maxSubscribers && gone.at > now - this.#departedMs) break
      this.#departed.delete(subscriber)
    }
    if (dropped.length > 0) this.#matches.invalidate()
    return dropped
  }

  /** Claims to send to neighbour `to`: our distance to each subscriber with its proof, poisoned towards its next hop. */
  advertsFor (to: DeviceId, subscribers: Iterable<DeviceId> = this.#routes.keys()): Claim[] {
    const out: Claim[] = []
    for (const subscriber of subscribers) {
      if (subscriber === to) continue
      if (subscriber === this.self) {
        const own = this.own()
        if (own !== undefined) out.push(own)
        continue
      }
      const route = this.#routes.get(subscriber)
      if (route === undefined) continue
      const best = this.best(subscriber)
      const hops = best === undefined || best.via === to ? UNREACHABLE : best.hops
      const proof = route.chain.element(hops)
      if (proof === undefined) continue // cannot happen: best.hops is one more than a proven distance
      out.push({ subscriber, version: route.version, hops, proof, declaration: route.declaration, publicKey: route.publicKey })
    }
    return out
  }

  /**
   * The neighbours a frame on `topic` goes to: the next hop towards every subscriber whose filter
   * matches, unless the neighbour it came from (`from`) has its own route to that subscriber.
   */
  targets (topic: string, origin: DeviceId, from: DeviceId | undefined): Set<DeviceId> {
    const out = new Set<DeviceId>()
    let theirs: DeviceId[] | undefined
    let through = false // `from` routes some matching subscriber through us, as far as we know
    for (const subscriber of this.#matching(this.#matchKey(topic, origin))) {
      if (subscriber === origin || subscriber === from) continue
      const next = this.#nextHop(subscriber)
      if (from !== undefined && this.advertised(from, subscriber) >= UNREACHABLE) through = true
      if (next === undefined || next === from) continue
      // With poisoned reverse, a neighbour that routes `subscriber` through us advertises it to us
      // as unreachable. A real distance means `from` routes it elsewhere and has sent it there:
      // then it is not our job (no duplicates on two equal paths, none in a full mesh).
      if (from !== undefined && this.advertised(from, subscriber) < UNREACHABLE) { (theirs ??= []).push(next); continue }
      out.add(next)
    }
    // Unless what we know of `from` is out of date: it sent us the frame, so it routes some matching
    // subscriber through us, yet it claims a route of its own to each. Its route moved to us and its
    // new claim has not been applied here yet (still on its way, or waiting in the intake for this
    // turn's budget, intake.ts): dropped, the frame was left to DIGEST/WANT (issue 15). It goes on,
    // once, as any frame does; a neighbour that keeps sending us what it routes elsewhere gains no
    // copies by it (each frame is forwarded at most once, after the replay check). Not when a
    // subscription of our own matches the frame: then that is why `from` sent it, and its claims
    // are what they say (in a full mesh where every node subscribes, every node forwarded every
    // frame to every other, 2.9 copies per delivery: issue 15, anchors M).
    if (theirs !== undefined && !through && !this.#subscribedHere(topic)) for (const via of theirs) out.add(via)
    return out
  }

  /**
   * How many subscribers a frame on `topic` of `origin` interests: those this node has a route to
   * whose filters match it (the origin aside), and this node when a subscription of its own does
   * (what the broadcast tree's rule counts, tree.ts `uses`). O(matching subscribers), cached as `targets` is.
   */
  matching (topic: string, origin: DeviceId): number {
    let n = 0
    for (const subscriber of this.#matching(this.#matchKey(topic, origin))) {
      if (subscriber !== origin && this.#reaches(subscriber, undefined)) n++
    }
    if (origin !== this.self && this.#subscribedHere(topic)) n++
    return n
  }

  /** Whether a subscription of this node's own (not one it relays to) covers `origin`'s readings. */
  wantsHere (origin: DeviceId, fleet: string, topic = telemetryTopic(fleet, origin)): boolean {
    for (const f of this.local.filters) if (topicMatches(f, topic) || filterCoversDevice(f, fleet, origin)) return true
    return false
  }

  /** True when frames of `origin` interest this node or a subscriber it routes to. */
  wants (origin: DeviceId, fleet: string, via?: DeviceId): boolean {
    const keys = this.#keysOf(origin, fleet)
    if (via === undefined && this.wantsHere(origin, fleet, keys.topic)) return true
    if (via !== undefined && !this.#byVia.has(via)) return false // no route through `via` at all
    let subscribers = this.#matches.peek(keys.cacheKey)
    if (subscribers === undefined) {
      const covering = this.#filters.covering([TOPIC_ROOT, fleet, keys.device])
      subscribers = this.#matches.set(keys.cacheKey, [...new Set([...this.#filters.match(keys.matchKey), ...covering])])
    }
    for (const subscriber of subscribers) {
      if (subscriber !== origin && this.#reaches(subscriber, via)) return true
    }
    return false
  }

  /** The subscribers whose filters match `key` (a `#matchKey`), cached until filters change. */
  #matching (key: string): DeviceId[] {
    return this.#matches.peek(key) ?? this.#matches.set(key, [...this.#filters.match(key)])
  }

  /**
   * What `wants` derives from an origin alone, kept until filters change (the match cache's
   * generation): its telemetry topic, the key its topic is matched under (`#matchKey`), and the
   * key its answer is cached under. Asked for every origin on every link each sync round and by a
   * device before every reading: derived again each time, these strings were a tenth of what a
   * simulated fleet allocated. Bounded: `MAX_ORIGIN_KEYS` origins, then it starts over.
   */
  #keysOf (origin: DeviceId, fleet: string): OriginKeys {
    const generation = this.#matches.generation
    const hit = this.#originKeys.get(origin)
    if (hit !== undefined && hit.generation === generation && hit.fleet === fleet) return hit
    const topic = telemetryTopic(fleet, origin)
    const matchKey = this.#matchKey(topic, origin)
    const device = matchKey === topic ? origin : ANY_ORIGIN
    const keys: OriginKeys = { generation, fleet, topic, matchKey, device, cacheKey: `\u0000${fleet}\u0000${device}` }
    if (this.#originKeys.size >= MAX_ORIGIN_KEYS) this.#originKeys.clear()
    this.#originKeys.set(origin, keys)
    return keys
  }

  /**
   * What a frame topic of `origin` (iotmesh/<fleet>/<origin>/…) is matched and cached under: the
   * topic itself when some filter names `origin` literally; else the topic with ANY_ORIGIN as its
   * device level, which all such origins share (a filter that does not name an origin matches every
   * one of them alike). So a stream of origins nobody subscribed to by name, fresh ones above all
   * (a flood of 65,536 new origins, each a new topic), costs one trie walk in all, not one each,
   * and does not push the topics of known devices out of the cache.
   */
  #matchKey (topic: string, origin: DeviceId): string {
    const a = topic.indexOf('/')
    const b = a < 0 ? -1 : topic.indexOf('/', a + 1)
    const end = b + 1 + origin.length
    if (b < 0 || !topic.startsWith(origin, b + 1) || (end < topic.length && topic[end] !== '/')) return topic
    if (this.#filters.names([topic.slice(0, a), topic.slice(a + 1, b)], origin)) return topic
    return topic.slice(0, b + 1) + ANY_ORIGIN + topic.slice(end)
  }

  subscribers (): DeviceId[] { return [...this.#routes.keys()] }

  /** Matches of a topic or an origin computed so far, rather than found in the cache (for tests and benchmarks). */
  get matchesComputed (): number { return this.#matches.computed }

  /** The filters `subscriber` declared (its latest version). */
  filtersOf (subscriber: DeviceId): readonly string[] { return this.#routes.get(subscriber)?.filters ?? [] }

  /** The key `subscriber` signed its declaration with (what its acks are checked with, handlers/ack.ts). */
  keyOf (subscriber: DeviceId): PublicKey | undefined { return this.#routes.get(subscriber)?.publicKey }

  /** Claims waiting for their version's declaration (`pending`), over every route: at most one per (neighbour, subscriber) entry. O(routes). */
  get pendingClaims (): number {
    let n = 0
    for (const route of this.#routes.values()) n += route.pending?.size ?? 0
    return n
  }

  /** Subscribers with an entry from `via`. */
  countVia (via: DeviceId): number { return this.#byVia.get(via)?.size ?? 0 }

  /** Bytes of the declarations of the subscribers with an entry from `via`. */
  bytesVia (via: DeviceId): number { return this.#bytesVia.get(via) ?? 0 }

  #indexFilters (subscriber: DeviceId, filters: readonly string[], delta: 1 | -1): void {
    for (const filter of new Set(filters)) this.#filters.update(subscriber, filter, delta)
  }

  #index (via: DeviceId, subscriber: DeviceId, bytes: number): void {
    let set = this.#byVia.get(via)
    if (set === undefined) this.#byVia.set(via, set = new Set())
    if (set.has(subscriber)) return
    set.add(subscriber)
    this.#bytesVia.set(via, this.bytesVia(via) + bytes)
  }

  #unindex (via: DeviceId, subscriber: DeviceId, bytes: number): void {
    const set = this.#byVia.get(via)
    if (set === undefined || !set.delete(subscriber)) return
    if (set.size === 0) {
      this.#byVia.delete(via)
      this.#bytesVia.delete(via)
    } else this.#bytesVia.set(via, this.bytesVia(via) - bytes)
  }
}

/** True when a change of best route changes what this node advertises: a route unreachable before and after is no news. */
function differs (before: Best, after: Best): boolean {
  if (before === undefined || after === undefined) return before !== after
  return before.via !== after.via || before.hops !== after.hops || before.version !== after.version
}

function sameFilters (a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((f, i) => f === b[i])
}
