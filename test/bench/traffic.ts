import { MeshNode } from '../../mesh/index.js'
import { generateKeyPair } from '../../shared/index.js'
import { round, waitUntil, within } from './measure.js'

/**
 * Section "traffic": bytes and frames each node sends and receives per reading published, for
 * meshes of growing size, every device publishing one reading a second, in three scenarios: one
 * collector subscribing to everything (a gateway), every node subscribing to everything, and the same with the broadcast tree on (`tree`). The nodes run in this
 * process on real TCP links over 127.0.0.1 (encrypted and authenticated as on a LAN); each dials
 * three random others, so degrees stay bounded whatever the size. The routing goal: per-node
 * traffic per reading grows no faster than the logarithm of the fleet size.
 * Every wait has a deadline (ROUTES_DEADLINE_MS, DELIVERY_DEADLINE_MS, STOP_DEADLINE_MS): a run that
 * misses one still gives its figures, with `complete: false` and `incomplete` saying what was missing.
 */
export async function benchTraffic (quick: boolean): Promise<Record<string, unknown>> {
  const sizes = quick ? [5, 20] : [5, 20, 50, 100]
  const out: Record<string, unknown> = {}
  for (const scenario of ['collector', 'all', 'tree'] as const) {
    const runs: Record<string, Figures> = {}
    for (const size of sizes) runs[`n${size}`] = await run(size, scenario, quick ? 3 : 6)
    const first = runs[`n${sizes[0]}`] as { bytes_per_node_per_reading: number }
    const last = runs[`n${sizes.at(-1)}`] as { bytes_per_node_per_reading: number }
    out[scenario] = {
      ...runs,
      growth_bytes_per_node_per_reading: round(last.bytes_per_node_per_reading / first.bytes_per_node_per_reading),
      growth_of_log_fleet_size: round(Math.log(sizes.at(-1) as number) / Math.log(sizes[0] as number)),
      growth_of_fleet_size: round((sizes.at(-1) as number) / (sizes[0] as number)),
      // The goal is stated from 5 to 50 nodes: that growth too, when 50 was run.
      ...(runs.n50 === undefined ? {} : { growth_bytes_per_node_per_reading_to_n50: round((runs.n50 as { bytes_per_node_per_reading: number }).bytes_per_node_per_reading / first.bytes_per_node_per_reading) }),
      // A growth taken from a run that missed deliveries (or routes, or a stop) says so.
      complete: Object.values(runs).every((r) => r.complete === true)
    }
  }
  return {
    traffic: {
      ...out,
      scenarios: {
        collector: 'one node subscribes to every reading (a gateway); every node publishes one reading a second',
        all: 'every node subscribes to every reading (the worst case: each reading must reach every node)',
        tree: 'as all, with the broadcast tree on (routing.broadcastTree, off by default: mesh/routing/tree.ts)'
      }
    }
  }
}

type Scenario = 'collector' | 'all' | 'tree'

let seed = 7
const random = (): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31 }

type Figures = Record<string, number | boolean | string>

async function run (size: number, scenario: Scenario, rounds: number): Promise<Figures> {
  process.stderr.write(`bench: traffic, ${scenario}, ${size} nodes…\n`)
  const nodes: MeshNode[] = []
  let figures: Figures | undefined
  try {
    figures = await measure(nodes, size, scenario, rounds)
  } finally {
    const stopping = nodes.map((n) => ({ node: n, done: false }))
    const stopped = await within(Promise.all(stopping.map(async (s) => { await s.node.stop().finally(() => { s.done = true }) })), STOP_DEADLINE_MS)
    if (!stopped.settled) {
      const stuck = stopping.filter((s) => !s.done).map((s) => s.node.name)
      const why = `stop: ${stuck.length} of ${size} nodes had not stopped after ${STOP_DEADLINE_MS} ms (${stuck.slice(0, 5).join(', ')}${stuck.length > 5 ? ', …' : ''})`
      process.stderr.write(`bench: traffic, ${scenario}, ${size} nodes: ${why}\n`)
      if (figures !== undefined) incomplete(figures, why)
    }
  }
  return figures as Figures
}

/** How long a wait of this section lasts at most; past it the run is labelled incomplete, with what was missing. */
const ROUTES_DEADLINE_MS = 30_000
const DELIVERY_DEADLINE_MS = 30_000
const STOP_DEADLINE_MS = 20_000
/** MeshNode's default `maxInbound`. */
const INBOUND_SLOTS = 12

function incomplete (figures: Figures, why: string): void {
  figures.complete = false
  figures.incomplete = typeof figures.incomplete === 'string' ? `${figures.incomplete}; ${why}` : why
}

async function measure (nodes: MeshNode[], size: number, scenario: Scenario, rounds: number): Promise<Figures> {
  // Each node dials three random earlier ones that still have an inbound slot (MeshNode's default
  // maxInbound, 12). Drawn among all earlier nodes, the first few were dialed by ~3 ln N others (up
  // to 16 at 50 nodes): past 12 each newcomer evicted a link, the evicted peer dialed again 30 s later
  // and evicted another, and the run measured that churn (full DIGESTs, route requests, repairs).
  const inbound = new Map<MeshNode, number>()
  const closed = { links: 0 }
  for (let i = 0; i < size; i++) {
    const node = new MeshNode({ host: '127.0.0.1', mdns: false, dialTarget: 0, announceLinks: 0, rotateInterval: 0, ...(scenario === 'tree' ? { routing: { broadcastTree: true } } : {}) }, { keys: generateKeyPair() })
    nodes.push(node)
    await node.start()
    node.on('link:close', () => { closed.links++ })
    const cap = process.env.IOTMESH_TRAFFIC_UNBOUNDED === '1' ? Infinity : INBOUND_SLOTS // the draw before this change, for comparison
    for (const other of chooseDials(nodes.slice(0, -1), inbound, cap, 3, random)) node.addPeer(`127.0.0.1:${other.address?.port}`)
  }
  const problems: string[] = []
  const subscribers = scenario === 'collector' ? [nodes[0] as MeshNode] : nodes
  for (const node of subscribers) node.subscribe('#', { buffer: 1_000_000 })
  // Routes formed: every subscriber has a route from every publisher.
  const unrouted = (): number => nodes.reduce((acc, n) => acc + subscribers.filter((s) => s !== n && n.routeTo(s.id) === undefined).length, 0)
  const routes = await waitUntil(() => unrouted() === 0, ROUTES_DEADLINE_MS,
    () => `routes: ${unrouted()} publisher-to-subscriber routes of ${size * subscribers.length - subscribers.length} missing after ${ROUTES_DEADLINE_MS} ms`, 100)
  if (routes.missing !== undefined) problems.push(routes.missing)
  const before = nodes.map((n) => n.counters)
  const closedBefore = closed.links
  const t0 = Date.now()
  for (let r = 0; r < rounds; r++) {
    for (const node of nodes) node.publish('telemetry', [{ n: 'temp', u: 'Cel', v: 20 + r }])
    await new Promise((resolve) => setTimeout(resolve, 1000))
  }
  const readings = size * rounds
  const short = (): number[] => subscribers.map((s) => Math.max(0, readings - (s.counters.delivered - (before[nodes.indexOf(s)]?.delivered ?? 0))))
  const missing = (): number => short().reduce((a, b) => a + b, 0)
  // Polled every 200 ms (a node's counters are not free, and 50 subscribers at 20 ms took CPU from the mesh);
  // the samples tell a slow run (deliveries still arriving at the deadline) from a stuck one.
  const samples: Array<{ t: number, missing: number }> = []
  const settled = (): boolean => {
    const m = missing()
    samples.push({ t: performance.now(), missing: m })
    return m === 0
  }
  const delivered = await waitUntil(settled, DELIVERY_DEADLINE_MS, () => {
    const gaps = short()
    const last = samples.at(-1)
    const earlier = samples.findLast((x) => last !== undefined && x.t <= last.t - 5000)
    const rejected: Record<string, number> = {}
    for (const n of nodes) for (const [code, k] of Object.entries({ ...n.counters.rejected, ...prefix('over-budget:', n.counters.overBudget) })) rejected[code] = (rejected[code] ?? 0) + (k ?? 0)
    return `deliveries: ${gaps.reduce((a, b) => a + b, 0)} of ${readings * subscribers.length} missing at ${gaps.filter((g) => g > 0).length} of ${subscribers.length} subscribers ` +
      `${DELIVERY_DEADLINE_MS} ms after the last round, ${earlier === undefined || last === undefined ? '?' : earlier.missing - last.missing} of them delivered in its last 5 s ` +
      `(refused or dropped in the mesh since its start: ${JSON.stringify(rejected)})`
  }, 200)
  if (delivered.missing !== undefined) problems.push(delivered.missing)
  const missingDeliveries = missing()
  await new Promise((resolve) => setTimeout(resolve, 2100)) // one sync interval: the DIGESTs of the last round
  const after = nodes.map((n) => n.counters)
  const evicted = after.reduce((acc, a, i) => acc + a.links.manager.evicted + a.links.manager.full - (before[i]?.links.manager.evicted ?? 0) - (before[i]?.links.manager.full ?? 0), 0)
  const per = nodes.map((_, i) => {
    const a = after[i] as MeshNode['counters']
    const b = before[i] as MeshNode['counters']
    return { bytes: a.bytesIn + a.bytesOut - b.bytesIn - b.bytesOut, frames: a.framesIn + a.framesOut - b.framesIn - b.framesOut, control: a.controlIn + a.controlOut - b.controlIn - b.controlOut, dups: a.duplicates - b.duplicates }
  })
  const mean = (f: (x: typeof per[number]) => number): number => round(per.reduce((acc, x) => acc + f(x), 0) / size / readings, 2)
  const figures: Figures = {
    nodes: size,
    readings,
    seconds: round((Date.now() - t0) / 1000, 1),
    links_per_node: round(nodes.reduce((a, n) => a + n.links.size, 0) / size, 1),
    bytes_per_node_per_reading: mean((x) => x.bytes),
    max_bytes_per_node_per_reading: round(Math.max(...per.map((x) => x.bytes)) / readings, 2),
    data_frames_per_node_per_reading: mean((x) => x.frames),
    control_msgs_per_node_per_reading: mean((x) => x.control),
    duplicates_per_node_per_reading: mean((x) => x.dups),
    // Frames sent on by the broadcast tree per reading (routing/tree.ts; undefined in builds without it).
    tree_frames_per_reading: round(nodes.reduce((acc, n, i) => acc + ((n.counters as { treeFrames?: number }).treeFrames ?? 0) - (((before[i] as { treeFrames?: number }).treeFrames) ?? 0), 0) / readings, 2),
    delivery_wait_ms: delivered.waitedMs,
    // Links that closed while measured (counted at each end), and inbound links closed for want of a slot.
    link_closes: closed.links - closedBefore,
    links_evicted: evicted,
    delivered_to_every_subscriber: missingDeliveries === 0,
    missing_deliveries: missingDeliveries,
    complete: true
  }
  for (const why of problems) {
    process.stderr.write(`bench: traffic, ${scenario}, ${size} nodes: incomplete: ${why}\n`)
    incomplete(figures, why)
  }
  return figures
}

/**
 * `k` of `earlier`, drawn at random among those dialed fewer than `cap` times so far (counted in
 * `inbound`, which this updates): no node is dialed past its inbound slots.
 */
export function chooseDials<T> (earlier: T[], inbound: Map<T, number>, cap: number, k: number, draw: () => number): T[] {
  const chosen = earlier.filter((n) => (inbound.get(n) ?? 0) < cap).sort(() => draw() - 0.5).slice(0, k)
  for (const n of chosen) inbound.set(n, (inbound.get(n) ?? 0) + 1)
  return chosen
}

function prefix (p: string, counts: Partial<Record<string, number>>): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).map(([k, v]) => [`${p}${k}`, v ?? 0]))
}
