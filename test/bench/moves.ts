import { MeshNode } from '../../mesh/index.js'
import { createMemoryNetwork } from '../../mesh/testing.js'
import { generateKeyPair } from '../../shared/index.js'
import { round, waitUntil, within } from './measure.js'

/**
 * Section "moves": how often routes move at an interest refresh (issue 15). A mesh of 40 nodes on
 * memory links (no delay, no loss), a random graph with cycles (each node links to two or three
 * earlier ones, seeded), every node subscribing to everything and publishing one reading every
 * 2 s, every subscriber re-declaring every 2 s (`interestRefresh` 2 s; at 1 s the 40 nodes in one
 * process on a shared 2-core machine fell behind, before this change and after: 14–30 % of the
 * readings undelivered 30 s later). It counts the
 * route moves (`counters.routeMoves`: a claim taken moved a route from one next hop to another)
 * and the duplicate frames while nothing in the graph changes: every move is one that a new
 * version of some subscriber's declaration caused, not a link that went.
 */
export async function benchMoves (quick: boolean): Promise<Record<string, unknown>> {
  // IOTMESH_MOVES_NODES / _REFRESH_MS / _PUBLISH=0 change the shape for a look at one factor.
  const size = Number(process.env.IOTMESH_MOVES_NODES ?? (quick ? 20 : 40))
  const seconds = quick ? 4 : 12
  const refresh = Number(process.env.IOTMESH_MOVES_REFRESH_MS ?? 2000)
  const publishing = process.env.IOTMESH_MOVES_PUBLISH !== '0'
  let seed = 40
  const random = (): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31 }
  const net = createMemoryNetwork({ seed: 15 })
  const nodes: MeshNode[] = []
  let closes = 0
  try {
    for (let i = 0; i < size; i++) {
      const keys = generateKeyPair(Uint8Array.from({ length: 32 }, (_, k) => (k * 7 + i * 31 + 1) & 0xff))
      const node = new MeshNode({
        name: `m${i}`, host: `m${i}`, mdns: false, dialTarget: 0, announceLinks: 0, rotateInterval: 0, routing: { interestRefresh: refresh }
      }, { keys, transport: net.createTransport({}, { keys }) })
      nodes.push(node)
      await node.start()
      node.on('link:close', () => { closes++ })
      const earlier = nodes.slice(0, -1)
      const dials = new Set<MeshNode>()
      while (dials.size < Math.min(earlier.length, 2 + (random() < 0.5 ? 1 : 0))) dials.add(earlier[Math.floor(random() * earlier.length)] as MeshNode)
      for (const other of dials) node.addPeer(`${other.address?.host}:${other.address?.port}`)
    }
    for (const node of nodes) node.subscribe('#', { buffer: 1_000_000 })
    const unrouted = (): number => nodes.reduce((acc, n) => acc + nodes.filter((s) => s !== n && n.routeTo(s.id) === undefined).length, 0)
    const routes = await waitUntil(() => unrouted() === 0, 30_000, () => `routes: ${unrouted()} missing`, 100)
    // Two refresh periods to settle (the first versions spread while links were still coming up).
    await new Promise((resolve) => setTimeout(resolve, 2 * refresh))
    const before = nodes.map((n) => n.counters)
    const closedBefore = closes
    const t0 = Date.now()
    // Half the nodes publish each second, the other half the next (one reading per node per 2 s).
    for (let s = 0; s < seconds; s++) {
      nodes.forEach((node, i) => { if (publishing && i % 2 === s % 2) node.publish('telemetry', [{ n: 'temp', u: 'Cel', v: s }]) })
      await new Promise((resolve) => setTimeout(resolve, 1000))
    }
    // Every reading at every node (each subscribes to everything), or 30 s: what came late is counted too.
    const readingsAll = publishing ? size * seconds / 2 : 0
    const short = (): number => nodes.reduce((acc, n, i) => acc + Math.max(0, readingsAll - (n.counters.delivered - (before[i] as MeshNode['counters']).delivered)), 0)
    const delivered = await waitUntil(() => short() === 0, 30_000, () => `deliveries: ${short()} of ${readingsAll * size} missing 30 s after the last round`, 200)
    const elapsed = (Date.now() - t0) / 1000
    const after = nodes.map((n) => n.counters)
    const sum = (f: (c: MeshNode['counters']) => number): number => after.reduce((acc, a, i) => acc + f(a) - f(before[i] as MeshNode['counters']), 0)
    const refreshes = elapsed * 1000 / refresh
    const readings = size * seconds / 2
    const moves = sum((c) => (c as { routeMoves?: number }).routeMoves ?? Number.NaN)
    return {
      moves: {
        nodes: size,
        links_per_node: round(nodes.reduce((a, n) => a + n.links.size, 0) / size, 1),
        seconds: round(elapsed, 1),
        interest_refresh_ms: refresh,
        route_moves_per_node_per_refresh: round(moves / size / refreshes, 2),
        route_moves_per_route_per_refresh: round(moves / (size * (size - 1)) / refreshes, 3),
        duplicates_per_node_per_reading: round(sum((c) => c.duplicates) / size / readings, 3),
        data_frames_per_node_per_reading: round(sum((c) => c.framesIn + c.framesOut) / size / readings, 2),
        bytes_per_node_per_reading: round(sum((c) => c.bytesIn + c.bytesOut) / size / readings, 1),
        delivered_per_node_per_reading: round(sum((c) => c.delivered) / size / readings, 3),
        relayed_per_node_per_reading: round(sum((c) => c.relayed) / size / readings, 3),
        repaired_per_node_per_reading: round(sum((c) => c.repaired) / size / readings, 3),
        wants_per_node_per_reading: round(sum((c) => c.wantsSent) / size / readings, 3),
        delivery_wait_ms: delivered.waitedMs,
        link_closes: closes - closedBefore,
        route_requests_per_node: round(sum((c) => c.routeRequestsOut) / size, 2),
        kinds: (globalThis as unknown as { __moves?: Record<string, number> }).__moves,
        complete: routes.missing === undefined && delivered.missing === undefined,
        ...(routes.missing === undefined && delivered.missing === undefined ? {} : { incomplete: [routes.missing, delivered.missing].filter((x) => x !== undefined).join('; ') })
      }
    }
  } finally {
    await within(Promise.all(nodes.map(async (n) => { await n.stop() })), 20_000)
    net.close()
  }
}
