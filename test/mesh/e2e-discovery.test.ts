import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, expect, it, onTestFinished } from 'vitest'
import { describeNet } from '../helpers/netns.js'
import { createLan, type Lan, type LanHost } from '../../firmware-sim/fleet/lan.js'
import { uniqueFleet } from '../helpers/mdns.js'
import { MeshProcs, assertFreshBuild, sorted, type MeshProc, type PeerView } from '../helpers/mesh-proc.js'

/**
 * End to end, with real processes and real networking (lab/children/mesh-child.ts from the build):
 * devices discover each other by mDNS/DNS-SD, link over authenticated TCP and exchange signed
 * readings; a device that stops says goodbye (RFC 6762 §10.1) and is dropped at once. First on
 * one host (loopback), then on a LAN of namespace hosts with their own addresses (NETWORK.md).
 */

const tag = randomBytes(3).toString('hex')

const portOf = async (proc: MeshProc): Promise<number> => {
  const { addrs } = await proc.call<{ addrs: string[] }>('info')
  return Number((addrs[0] as string).split(':')[1])
}

/** Each device publishes `n` readings; every other device must get each exactly once. */
async function exchange (nodes: readonly MeshProc[], n: number): Promise<void> {
  const before = new Map(await Promise.all(nodes.map(async (node) => [node, { readings: node.readings.length, seen: await node.call<Record<string, number>>('seen') }] as const)))
  const published = new Map<string, number[]>()
  for (const node of nodes) {
    const seqs: number[] = []
    for (let i = 0; i < n; i++) seqs.push(await node.publish(i))
    published.set(node.id, seqs)
  }
  const signal = AbortSignal.timeout(10_000)
  for (const node of nodes) {
    for (const [origin, seqs] of published) if (origin !== node.id) await node.received(origin, seqs, signal)
  }
  for (const node of nodes) {
    const { readings, seen } = before.get(node) as { readings: number, seen: Record<string, number> }
    const fresh = node.readings.slice(readings)
    for (const [origin, seqs] of published) {
      expect(sorted(fresh.filter((r) => r.origin === origin).map((r) => r.seq)), `${node.label} from ${origin.slice(0, 8)}`).toEqual(origin === node.id ? [] : seqs)
    }
    expect(fresh.every((r) => published.has(r.origin))).toBe(true)
    // The child's own count of deliveries per origin: nothing twice, nothing else.
    expect(await node.call('seen')).toEqual({ ...seen, ...Object.fromEntries(nodes.filter((o) => o !== node).map((o) => [o.id, (seen[o.id] ?? 0) + n])) })
  }
}

/** Resolves once `node` lists exactly `others` as mDNS peers, each linked, with its own port and addresses. */
async function discovered (node: MeshProc, others: ReadonlyArray<{ id: string, port: number, addresses: string[] }>, signal: AbortSignal): Promise<PeerView[]> {
  const expected = [...others].sort((a, b) => a.id < b.id ? -1 : 1).map((o) => ({ id: o.id, linked: true, source: 'mdns', port: o.port, addresses: o.addresses }))
  const state = await node.state((s) => s.peers.length === others.length && s.peers.every((p) => p.linked && p.source === 'mdns'), signal, `${node.label}: ${others.length} linked mDNS peers`)
  expect(state.peers).toEqual(expected)
  return state.peers
}

describeNet('mesh processes on one host discover each other by mDNS', () => {
  beforeAll(() => { assertFreshBuild() })

  it('four devices link to each other and every device gets every reading of the others exactly once', async () => {
    const procs = new MeshProcs()
    onTestFinished(async () => { await procs.killAll() })
    const fleet = uniqueFleet('e2e-host') // test files share the namespace's loopback
    const nodes = await Promise.all([0, 1, 2, 3].map(async (i) => await procs.fork(`d${i}`, {
      IOTMESH_CHILD_MDNS: '1', IOTMESH_CHILD_FLEET: fleet, IOTMESH_CHILD_NAME: `e2e-${i}-${tag}`, IOTMESH_CHILD_EVENTS: '1'
    })))
    const ports = await Promise.all(nodes.map(portOf))
    const signal = AbortSignal.timeout(15_000)
    for (const node of nodes) {
      // A loopback-only host has no address records: the packet's source address is the peer's.
      await discovered(node, nodes.filter((o) => o !== node).map((o) => ({ id: o.id, port: ports[nodes.indexOf(o)] as number, addresses: ['127.0.0.1'] })), signal)
    }
    await exchange(nodes, 5)
  })
})

describeNet('mesh processes on a LAN of namespace hosts', () => {
  let lan: Lan
  const procs = new MeshProcs()
  let nodes: MeshProc[] = []
  let ports: number[] = []

  beforeAll(async () => {
    assertFreshBuild()
    lan = await createLan({ hosts: 3 })
    const fleet = uniqueFleet('e2e-lan')
    nodes = await Promise.all(lan.hosts.map(async (host, i) => await procs.spawn(lan, host, `h${i}`, {
      IOTMESH_CHILD_HOST: host.address, IOTMESH_CHILD_MDNS: '1', IOTMESH_CHILD_FLEET: fleet, IOTMESH_CHILD_NAME: `e2e-lan-${i}`, IOTMESH_CHILD_EVENTS: '1'
    })))
    ports = await Promise.all(nodes.map(portOf))
  }, 30_000)

  afterAll(async () => {
    await procs.killAll()
    await lan?.destroy()
  })

  const others = (node: MeshProc): Array<{ id: string, port: number, addresses: string[] }> =>
    nodes.filter((o) => o !== node).map((o) => ({ id: o.id, port: ports[nodes.indexOf(o)] as number, addresses: [(lan.hosts[nodes.indexOf(o)] as LanHost).address] }))

  it('each host sees the others with their own address, links to them, and every reading arrives exactly once', async () => {
    const signal = AbortSignal.timeout(15_000)
    for (const node of nodes) await discovered(node, others(node), signal)
    await exchange(nodes, 5)
  })

  it('a device that stops says goodbye: the others drop its link and forget it within 3 s (its records live 120 s)', async () => {
    const [h0, h1, h2] = nodes as [MeshProc, MeshProc, MeshProc]
    const signal = AbortSignal.timeout(15_000)
    for (const node of nodes) await discovered(node, others(node), signal)
    const stoppedAt = performance.now()
    await h2.stop()
    for (const node of [h0, h1]) {
      await node.event((e) => e.ev === 'link' && e.peer === h2.id && e.up === false, signal, `${node.label}: link to h2 closed`)
      const state = await node.state((s) => !s.peers.some((p) => p.id === h2.id), signal, `${node.label}: h2 forgotten`)
      expect(performance.now() - stoppedAt).toBeLessThan(3_000)
      expect(state.peers.map((p) => p.id)).toEqual([(node === h0 ? h1 : h0).id])
    }
    expect(await h2.exited).toEqual({ code: 0, signal: null })
    // The two left still carry readings between them.
    await exchange([h0, h1], 2)
  })
})
