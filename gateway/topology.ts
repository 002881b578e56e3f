import { isDeviceId, type DeviceId, type SenmlPack } from '../shared/index.js'

/**
 * The mesh as the gateway sees it, for `/api/topology` and the dashboard. Pure: no timers, no
 * sockets. Each mesh node announces its neighbours every 15 s as a signed reading on the device
 * topic `mesh/links` (`[{n:'links', vs:'id1 id2 …'}, {n:'degree', v}]`, mesh/node.ts); the
 * latest announcement of each node replaces its previous one and expires after `ttlMs`. The
 * gateway adds its own links, which it knows first-hand. A link is undirected: announced by
 * either end, it is one edge.
 */

export interface TopologyInit {
  /** An announcement older than this no longer counts (ms). Default 60 s: four missed announcements. */
  ttlMs?: number
  /** Most nodes whose announcements are kept. Default 10,000. */
  maxNodes?: number
  /** Most neighbours read from one announcement. Default 64. */
  maxLinksPerNode?: number
}

export interface TopologyNode {
  id: DeviceId
  kind: 'gateway' | 'mesh' | 'broker'
  /** Its latest announcement (ms since the epoch), when it made one. */
  announcedAt?: number
}

export interface TopologyEdge {
  source: DeviceId
  target: DeviceId
  /** mesh: a link between mesh nodes; mqtt: a device connected to the gateway's broker. */
  kind: 'mesh' | 'mqtt'
}

export interface TopologySnapshot {
  /** The gateway's node: its mesh id, or the pseudo-id "gateway" when it has no mesh node. */
  gateway: string
  nodes: TopologyNode[]
  edges: TopologyEdge[]
}

export interface TopologyView {
  /** The gateway's mesh id and its open links, when it is a mesh member. */
  self?: { id: DeviceId, links: Iterable<DeviceId> }
  /** Devices connected to the broker right now (online by status, readings by MQTT). */
  brokerDevices?: Iterable<DeviceId>
}

export const LINKS_READING = 'links'
/** The gateway's node in a topology when it has no mesh identity. */
export const GATEWAY_PSEUDO_ID = 'gateway'

/** The mesh as the gateway sees it: nodes and their links, for the dashboard. */
export class Topology {
  readonly #announced = new Map<DeviceId, { at: number, links: DeviceId[] }>()
  readonly #ttlMs: number
  readonly #maxNodes: number
  readonly #maxLinks: number

  constructor (init: TopologyInit = {}) {
    this.#ttlMs = init.ttlMs ?? 60_000
    this.#maxNodes = Math.max(1, init.maxNodes ?? 10_000)
    this.#maxLinks = Math.max(1, init.maxLinksPerNode ?? 64)
  }

  /** Takes a verified `mesh/links` reading; false when it changed nothing or did not parse. */
  record (origin: DeviceId, records: SenmlPack, at: number): boolean {
    // Every `links` record: a node with more links than one string holds sends several (mesh/announce.ts).
    const parts = records.filter((r) => r.n === LINKS_READING).map((r) => r.vs)
    if (parts.length === 0 || parts.some((p) => typeof p !== 'string')) return false
    const text = parts.join(' ')
    const links = [...new Set(text.split(/\s+/).filter((id) => isDeviceId(id) && id !== origin))].slice(0, this.#maxLinks).sort()
    const previous = this.#announced.get(origin)
    this.#announced.delete(origin) // re-inserted: Map order is least recently announced first
    if (this.#announced.size >= this.#maxNodes) this.#announced.delete(this.#announced.keys().next().value as DeviceId)
    this.#announced.set(origin, { at, links })
    return previous === undefined || previous.links.join(' ') !== links.join(' ')
  }

  /** Forgets announcements older than the TTL; true when one expired. */
  expire (now: number): boolean {
    let changed = false
    for (const [id, entry] of this.#announced) {
      if (now - entry.at > this.#ttlMs) {
        this.#announced.delete(id)
        changed = true
      }
    }
    return changed
  }

  snapshot (now: number, view: TopologyView = {}): TopologySnapshot {
    const nodes = new Map<DeviceId, TopologyNode>()
    const edges = new Map<string, TopologyEdge>()
    const node = (id: DeviceId, kind: TopologyNode['kind']): TopologyNode => {
      let n = nodes.get(id)
      if (n === undefined) nodes.set(id, n = { id, kind })
      else if (kind === 'gateway' || (kind === 'mesh' && n.kind === 'broker')) n.kind = kind
      return n
    }
    const edge = (a: DeviceId, b: DeviceId, kind: TopologyEdge['kind']): void => {
      const [source, target] = a < b ? [a, b] : [b, a]
      const key = `${source} ${target}`
      if (!edges.has(key) || kind === 'mesh') edges.set(key, { source, target, kind })
    }
    const self = view.self
    if (self !== undefined) {
      node(self.id, 'gateway')
      for (const peer of self.links) {
        node(peer, 'mesh')
        edge(self.id, peer, 'mesh')
      }
    }
    for (const [id, entry] of this.#announced) {
      if (now - entry.at > this.#ttlMs) continue
      node(id, id === self?.id ? 'gateway' : 'mesh').announcedAt = entry.at
      for (const peer of entry.links) {
        node(peer, 'mesh')
        edge(id, peer, 'mesh')
      }
    }
    const hub = self?.id ?? GATEWAY_PSEUDO_ID
    node(hub, 'gateway')
    for (const id of view.brokerDevices ?? []) {
      if (id === hub) continue
      node(id, 'broker')
      edge(hub, id, 'mqtt')
    }
    return { gateway: hub, nodes: [...nodes.values()], edges: [...edges.values()] }
  }
}
