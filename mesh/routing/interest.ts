import { filterCoversDevice, telemetryTopic, topicMatches, type DeviceId } from '../../shared/index.js'

/**
 * Declared interest: who subscribes to what, and which neighbour leads to them.
 *
 * Every node with subscriptions declares them (INTEREST: subscriber, version, filters) and the
 * declaration floods the mesh as a distance vector: each node keeps, per subscriber, the hop
 * distance advertised by each neighbour, routes through the nearest, and re-advertises its own
 * distance whenever it changes, with split horizon and poisoned reverse (a node tells its next
 * hop towards S that it is unreachable through it, so two nodes never route S through each other).
 * Versions let a subscriber replace its filters and let routes age out: a subscriber re-declares
 * every `refresh` ms and routes not refreshed for three periods are dropped.
 *
 * Loops longer than two nodes (which poisoned reverse cannot see) are kept out by Babel's
 * feasibility condition (RFC 8966 §2.4): within one version of a declaration, a node accepts a
 * route only through a neighbour whose distance is strictly below the smallest distance this node
 * has had itself (its feasibility distance). A node that loses its route does not count up to
 * infinity through its neighbours; it is unreachable until the subscriber's next version.
 *
 * Frames then travel only towards subscribers whose filters match them, along shortest paths,
 * instead of to every node: in a fleet whose readings flow to one gateway, each reading costs
 * one verification per hop of its path, not one per device.
 */

/** A distance at or above this is "unreachable" (RFC 1058 §2.2 uses 16; meshes may be deeper). */
export const UNREACHABLE = 64

export interface Advert { subscriber: DeviceId, version: number, hops: number, filters: string[] }

interface Route {
  version: number
  filters: string[]
  /** Feasibility distance: the smallest distance this node has had for this version. */
  fd: number
  /** Distance advertised by each neighbour (its own distance to the subscriber). */
  vias: Map<DeviceId, number>
  refreshedAt: number
}

export class InterestTable {
  readonly self: DeviceId
  readonly #routes = new Map<DeviceId, Route>()
  readonly #local = new Map<string, number>() // filter -> subscription count
  #version: number

  constructor (self: DeviceId, version: number) {
    this.self = self
    this.#version = version
  }

  /** This node's own filters. */
  get localFilters (): string[] { return [...this.#local.keys()] }
  get version (): number { return this.#version }

  /** Adds or removes one local subscription; returns true when the declared set changed. */
  setLocal (filter: string, delta: 1 | -1): boolean {
    const count = (this.#local.get(filter) ?? 0) + delta
    const changed = count <= 0 ? this.#local.delete(filter) : !this.#local.has(filter)
    if (count > 0) this.#local.set(filter, count)
    if (changed) this.#version++
    return changed
  }

  /** A new version of our own declaration (periodic refresh). */
  bump (): void { this.#version++ }

  /** Our own declaration, as sent to neighbours. */
  own (): Advert | undefined {
    return this.#local.size === 0 && this.#version === 0 ? undefined : { subscriber: this.self, version: this.#version, hops: 0, filters: this.localFilters }
  }

  /**
   * Takes an advertisement from `via`. Returns true when our best distance to the subscriber or
   * its version/filters changed, i.e. when we must re-advertise.
   */
  update (via: DeviceId, advert: Advert, now: number): boolean {
    if (advert.subscriber === this.self) return false
    const before = this.best(advert.subscriber)
    let route = this.#routes.get(advert.subscriber)
    if (route === undefined || advert.version > route.version) {
      route = { version: advert.version, filters: advert.filters, fd: UNREACHABLE, vias: new Map(), refreshedAt: now }
      this.#routes.set(advert.subscriber, route)
    } else if (advert.version < route.version) {
      return false // stale
    }
    route.refreshedAt = now
    route.vias.set(via, Math.min(advert.hops, UNREACHABLE))
    const after = this.#select(advert.subscriber)
    return before === undefined || after === undefined || before.via !== after.via || before.hops !== after.hops || before.version !== after.version
  }

  /** Picks the best feasible route and lowers the feasibility distance to it. */
  #select (subscriber: DeviceId): { via: DeviceId, hops: number, version: number } | undefined {
    const best = this.best(subscriber)
    const route = this.#routes.get(subscriber)
    if (best !== undefined && route !== undefined && best.hops < route.fd) route.fd = best.hops
    return best
  }

  /** The nearest feasible neighbour towards `subscriber` and our distance (its distance + 1). */
  best (subscriber: DeviceId): { via: DeviceId, hops: number, version: number } | undefined {
    const route = this.#routes.get(subscriber)
    if (route === undefined) return undefined
    let best: { via: DeviceId, hops: number, version: number } | undefined
    for (const [via, hops] of route.vias) {
      if (hops + 1 >= UNREACHABLE || hops >= route.fd) continue // RFC 8966 §2.4: only feasible routes
      if (best === undefined || hops + 1 < best.hops || (hops + 1 === best.hops && via < best.via)) best = { via, hops: hops + 1, version: route.version }
    }
    return best
  }

  /** What `via` told us its distance to `subscriber` is (UNREACHABLE when nothing). */
  advertised (via: DeviceId, subscriber: DeviceId): number {
    if (via === subscriber) return 0
    return this.#routes.get(subscriber)?.vias.get(via) ?? UNREACHABLE
  }

  /** Forgets a neighbour; returns the subscribers whose best route changed. */
  dropVia (via: DeviceId): DeviceId[] {
    const changed: DeviceId[] = []
    for (const [subscriber, route] of this.#routes) {
      if (!route.vias.has(via)) continue
      const before = this.best(subscriber)
      route.vias.delete(via)
      this.#select(subscriber)
      if (before?.via === via) changed.push(subscriber)
    }
    return changed
  }

  /** Drops routes not refreshed since `before`; returns the subscribers dropped. */
  expire (before: number): DeviceId[] {
    const dropped: DeviceId[] = []
    for (const [subscriber, route] of this.#routes) {
      if (route.refreshedAt < before) { this.#routes.delete(subscriber); dropped.push(subscriber) }
    }
    return dropped
  }

  /** Adverts to send to neighbour `to`: our distance to each subscriber, poisoned towards its next hop. */
  advertsFor (to: DeviceId, subscribers: Iterable<DeviceId> = this.#routes.keys()): Advert[] {
    const out: Advert[] = []
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
      out.push({ subscriber, version: route.version, hops, filters: route.filters })
    }
    return out
  }

  /**
   * The neighbours a frame on `topic` goes to: the next hop towards every subscriber whose filter
   * matches, unless the neighbour it came from (`from`) has its own route to that subscriber.
   */
  targets (topic: string, origin: DeviceId, from: DeviceId | undefined): Set<DeviceId> {
    const out = new Set<DeviceId>()
    for (const [subscriber, route] of this.#routes) {
      if (subscriber === origin || subscriber === from || !route.filters.some((f) => topicMatches(f, topic))) continue
      const best = this.best(subscriber)
      if (best === undefined || best.via === from) continue
      // With poisoned reverse, a neighbour that routes `subscriber` through us advertises it to us
      // as unreachable. A real distance means `from` routes it elsewhere and has sent it there:
      // then it is not our job (no duplicates on two equal paths, none in a full mesh).
      if (from !== undefined && this.advertised(from, subscriber) < UNREACHABLE) continue
      out.add(best.via)
    }
    return out
  }

  /** True when frames of `origin` interest this node or a subscriber it routes to. */
  wants (origin: DeviceId, fleet: string, via?: DeviceId): boolean {
    const topic = telemetryTopic(fleet, origin)
    const matches = (filters: string[]): boolean => filters.some((f) => topicMatches(f, topic) || filterCoversDevice(f, fleet, origin))
    if (via === undefined && matches(this.localFilters)) return true
    for (const [subscriber, route] of this.#routes) {
      if (subscriber === origin || !matches(route.filters)) continue
      const best = this.best(subscriber)
      if (best !== undefined && (via === undefined || best.via === via)) return true
    }
    return false
  }

  subscribers (): DeviceId[] { return [...this.#routes.keys()] }

  /** The filters `subscriber` declared (its latest version). */
  filtersOf (subscriber: DeviceId): readonly string[] { return this.#routes.get(subscriber)?.filters ?? [] }
}
