import { MeshNode } from '../../mesh/index.js'
import { generateKeyPair } from '../../shared/index.js'
import { round } from './measure.js'

/**
 * Section "traffic": bytes and frames each node sends and receives per reading published, for
 * meshes of growing size, every device publishing one reading a second, in two scenarios: one
 * collector subscribing to everything (a gateway), and every node subscribing to everything. The nodes run in this
 * process on real TCP links over 127.0.0.1 (encrypted and authenticated as on a LAN); each dials
 * three random others, so degrees stay bounded whatever the size. The routing goal: per-node
 * traffic per reading grows no faster than the logarithm of the fleet size.
 */
export async function benchTraffic (quick: boolean): Promise<Record<string, unknown>> {
  const sizes = quick ? [5, 20] : [5, 20, 50]
  const out: Record<string, unknown> = {}
  for (const scenario of ['collector', 'all'] as const) {
    const runs: Record<string, Record<string, number | boolean>> = {}
    for (const size of sizes) runs[`n${size}`] = await run(size, scenario, quick ? 3 : 6)
    const first = runs[`n${sizes[0]}`] as { bytes_per_node_per_reading: number }
    const last = runs[`n${sizes.at(-1)}`] as { bytes_per_node_per_reading: number }
    out[scenario] = {
      ...runs,
      growth_bytes_per_node_per_reading: round(last.bytes_per_node_per_reading / first.bytes_per_node_per_reading),
      growth_of_log_fleet_size: round(Math.log(sizes.at(-1) as number) / Math.log(sizes[0] as number)),
      growth_of_fleet_size: round((sizes.at(-1) as number) / (sizes[0] as number))
    }
  }
  return {
    traffic: {
      ...out,
      scenarios: {
        collector: 'one node subscribes to every reading (a gateway); every node publishes one reading a second',
        all: 'every node subscribes to every reading (the worst case: each reading must reach every node)'
      }
    }
  }
}

let seed = 7
const random = (): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31 }

async function run (size: number, scenario: 'collector' | 'all', rounds: number): Promise<Record<string, number | boolean>> {
  process.stderr.write(`bench: traffic, ${scenario}, ${size} nodes…\n`)
  const nodes: MeshNode[] = []
  try {
    for (let i = 0; i < size; i++) {
      const node = new MeshNode({ host: '127.0.0.1', mdns: false, dialTarget: 0, announceLinks: 0, rotateInterval: 0 }, { keys: generateKeyPair() })
      await node.start()
      const others = [...nodes].sort(() => random() - 0.5).slice(0, 3)
      for (const other of others) node.addPeer(`127.0.0.1:${other.address?.port}`)
      nodes.push(node)
    }
    const subscribers = scenario === 'collector' ? [nodes[0] as MeshNode] : nodes
    for (const node of subscribers) node.subscribe('#', { buffer: 1_000_000 })
    // Routes formed: every subscriber has a route from every publisher.
    await until(() => nodes.every((n) => subscribers.every((s) => s === n || n.routeTo(s.id) !== undefined)), 30_000)
    const before = nodes.map((n) => n.counters)
    const t0 = Date.now()
    for (let r = 0; r < rounds; r++) {
      for (const node of nodes) node.publish('telemetry', [{ n: 'temp', u: 'Cel', v: 20 + r }])
      await new Promise((resolve) => setTimeout(resolve, 1000))
    }
    const readings = size * rounds
    await until(() => subscribers.every((s) => s.counters.delivered - (before[nodes.indexOf(s)]?.delivered ?? 0) >= readings), 30_000)
    await new Promise((resolve) => setTimeout(resolve, 2100)) // one sync interval: the DIGESTs of the last round
    const after = nodes.map((n) => n.counters)
    const per = nodes.map((_, i) => {
      const a = after[i] as MeshNode['counters']
      const b = before[i] as MeshNode['counters']
      return { bytes: a.bytesIn + a.bytesOut - b.bytesIn - b.bytesOut, frames: a.framesIn + a.framesOut - b.framesIn - b.framesOut, control: a.controlIn + a.controlOut - b.controlIn - b.controlOut, dups: a.duplicates - b.duplicates }
    })
    const mean = (f: (x: typeof per[number]) => number): number => round(per.reduce((acc, x) => acc + f(x), 0) / size / readings, 2)
    return {
      nodes: size,
      readings,
      seconds: round((Date.now() - t0) / 1000, 1),
      links_per_node: round(nodes.reduce((a, n) => a + n.links.size, 0) / size, 1),
      bytes_per_node_per_reading: mean((x) => x.bytes),
      max_bytes_per_node_per_reading: round(Math.max(...per.map((x) => x.bytes)) / readings, 2),
      data_frames_per_node_per_reading: mean((x) => x.frames),
      control_msgs_per_node_per_reading: mean((x) => x.control),
      duplicates_per_node_per_reading: mean((x) => x.dups),
      delivered_to_every_subscriber: true
    }
  } finally {
    await Promise.all(nodes.map(async (n) => await n.stop()))
  }
}

async function until (check: () => boolean, timeoutMs: number): Promise<void> {
  const t0 = Date.now()
  while (!check()) {
    if (Date.now() - t0 > timeoutMs) throw new Error('timed out')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
