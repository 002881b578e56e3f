import { describe, expect, it } from 'vitest'
import { GATEWAY_PSEUDO_ID, Topology } from '../../gateway/index.js'
import { seededKeys } from './support.js'

const [a, b, c, d, gw] = [1, 2, 3, 4, 5].map((n) => seededKeys(70 + n).id) as [string, string, string, string, string]
const links = (...ids: string[]) => [{ n: 'links', vs: ids.join(' ') }, { n: 'degree', v: ids.length }]

describe('Topology', () => {
  it('draws one undirected edge per link, announced by either end or both', () => {
    const topology = new Topology()
    expect(topology.record(a, links(b, c), 0)).toBe(true)
    expect(topology.record(b, links(a), 0)).toBe(true)
    expect(topology.record(b, links(a), 1000)).toBe(false) // the same neighbours again
    const snapshot = topology.snapshot(1000)
    expect(snapshot.gateway).toBe(GATEWAY_PSEUDO_ID)
    expect(snapshot.edges).toHaveLength(2)
    expect(snapshot.edges.every((e) => e.kind === 'mesh' && e.source < e.target)).toBe(true)
    expect(snapshot.nodes.map((n) => n.id).sort()).toEqual([a, b, c, GATEWAY_PSEUDO_ID].sort())
    expect(snapshot.nodes.find((n) => n.id === a)).toMatchObject({ kind: 'mesh', announcedAt: 0 })
    expect(snapshot.nodes.find((n) => n.id === c)?.announcedAt).toBeUndefined()
  })

  it("adds the gateway's own links and the broker's devices; the gateway is a node of its own kind", () => {
    const topology = new Topology()
    topology.record(a, links(b, gw), 0)
    const snapshot = topology.snapshot(0, { self: { id: gw, links: [a, c] }, brokerDevices: [d, a] })
    expect(snapshot.gateway).toBe(gw)
    expect(snapshot.nodes.find((n) => n.id === gw)?.kind).toBe('gateway')
    expect(snapshot.nodes.find((n) => n.id === a)?.kind).toBe('mesh') // on the mesh and on the broker: drawn as a mesh node
    expect(snapshot.nodes.find((n) => n.id === d)?.kind).toBe('broker')
    const key = (x: string, y: string): string => [x, y].sort().join(' ')
    const edges = new Map(snapshot.edges.map((e) => [`${e.source} ${e.target}`, e.kind]))
    expect(edges.get(key(gw, a))).toBe('mesh')
    expect(edges.get(key(gw, c))).toBe('mesh')
    expect(edges.get(key(a, b))).toBe('mesh')
    expect(edges.get(key(gw, d))).toBe('mqtt')
    expect(snapshot.edges).toHaveLength(4)
  })

  it('forgets announcements after the TTL, ignores ids that are not device ids, self links and readings without links', () => {
    const topology = new Topology({ ttlMs: 100, maxLinksPerNode: 2 })
    topology.record(a, links(b, 'not-an-id', a, c, d), 0)
    expect(topology.snapshot(0).edges).toHaveLength(2) // b and c: at most two, sorted
    expect(topology.record(b, [{ n: 'temp', v: 1 }], 0)).toBe(false)
    expect(topology.expire(50)).toBe(false)
    expect(topology.snapshot(101).edges).toHaveLength(0)
    expect(topology.expire(101)).toBe(true)
  })

  it('keeps at most maxNodes announcers, least recently announced out first', () => {
    const topology = new Topology({ maxNodes: 2 })
    topology.record(a, links(b), 0)
    topology.record(c, links(d), 0)
    topology.record(b, links(a), 0)
    const announcers = topology.snapshot(0).nodes.filter((n) => n.announcedAt !== undefined).map((n) => n.id)
    expect(announcers.sort()).toEqual([b, c].sort())
  })
})
