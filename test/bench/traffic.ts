import { MeshNode } from '../../mesh/index.js'
import { generateKeyPair } from '../../shared/index.js'
import { round } from './measure.js'

/**
 * Section "traffic": bytes and frames each node sends and receives per reading published, for
 * meshes of growing size, every device publishing one reading a second. The nodes run in this
 * process on real TCP links over 127.0.0.1 (encrypted and authenticated as on a LAN); each dials
 * three random others, so degrees stay bounded whatever the size. The routing goal: per-node
 * traffic per reading grows no faster than the logarithm of the fleet size.
 */
export async function benchTraffic (quick: boolean): Promise<Record<string, unknown>> {
  const sizes = quick ? [5, 20] : [5, 20, 50]
  const rounds = quick ? 3 : 6
  const out: Record<string, unknown> = {}
  let seed = 7
  const random = (): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31 }
  for (const size of sizes) {
    process.stderr.write(`bench: traffic with ${size} nodes…\n`)
    const nodes: MeshNode[] = []
    try {
      for (let i = 0; i < size; i++) {
        const node = new MeshNode({ host: '127.0.0.1', mdns: false, dialTarget: 0, announceLinks: 0 }, { keys: generateKeyPair() })
        await node.start()
        const others = [...nodes].sort(() => random() - 0.5).slice(0, 3)
        for (const other of others) node.addPeer(`127.0.0.1:${other.address?.port}`)
        nodes.push(node)
      }
      // Connected: a probe from the last node reaches everyone.
      nodes.at(-1)?.publish('probe', [{ n: 'probe', v: 1 }])
      await until(() => nodes.every((n) => n.counters.delivered >= 1), 30_000)
      const before = nodes.map((n) => n.counters)
      const t0 = Date.now()
      for (let r = 0; r < rounds; r++) {
        for (const node of nodes) node.publish('telemetry', [{ n: 'temp', u: 'Cel', v: 20 + r }])
        await new Promise((resolve) => setTimeout(resolve, 1000))
      }
      const expected = 1 + size * rounds
      await until(() => nodes.every((n) => n.counters.delivered >= expected), 30_000)
      await new Promise((resolve) => setTimeout(resolve, 2100)) // one sync interval: the lazy DIGESTs of the last round
      const after = nodes.map((n) => n.counters)
      const readings = size * rounds
      const sum = (f: (a: MeshNode['counters'], b: MeshNode['counters']) => number): number => after.reduce((acc, a, i) => acc + f(a, before[i] as MeshNode['counters']), 0)
      const perNode = (x: number): number => round(x / size / readings, 2)
      out[`n${size}`] = {
        nodes: size,
        readings,
        seconds: round((Date.now() - t0) / 1000, 1),
        links_per_node: round(nodes.reduce((a, n) => a + n.links.size, 0) / size, 1),
        bytes_per_node_per_reading: perNode(sum((a, b) => a.bytesIn + a.bytesOut - b.bytesIn - b.bytesOut)),
        data_frames_in_per_node_per_reading: perNode(sum((a, b) => a.framesIn - b.framesIn)),
        control_msgs_per_node_per_reading: perNode(sum((a, b) => a.controlIn + a.controlOut - b.controlIn - b.controlOut)),
        duplicates_per_node_per_reading: perNode(sum((a, b) => a.duplicates - b.duplicates)),
        delivered_everywhere: after.every((c) => c.delivered >= expected)
      }
    } finally {
      await Promise.all(nodes.map(async (n) => await n.stop()))
    }
  }
  const first = out[`n${sizes[0]}`] as { bytes_per_node_per_reading: number }
  const last = out[`n${sizes.at(-1)}`] as { bytes_per_node_per_reading: number }
  return {
    traffic: {
      ...out,
      growth_bytes_per_node_per_reading: round(last.bytes_per_node_per_reading / first.bytes_per_node_per_reading),
      growth_of_log_fleet_size: round(Math.log(sizes.at(-1) as number) / Math.log(sizes[0] as number)),
      growth_of_fleet_size: round((sizes.at(-1) as number) / (sizes[0] as number))
    }
  }
}

async function until (check: () => boolean, timeoutMs: number): Promise<void> {
  const t0 = Date.now()
  while (!check()) {
    if (Date.now() - t0 > timeoutMs) throw new Error('timed out')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
