import { afterAll, beforeAll, expect, it, onTestFinished } from 'vitest'
import { describeNet } from '../helpers/netns.js'
import { createLan, type Lan, type LanHost } from '../../firmware-sim/fleet/lan.js'
import { uniqueFleet } from '../helpers/mdns.js'
import { MeshProcs, assertFreshBuild, sorted, type MeshProc } from '../helpers/mesh-proc.js'

/**
 * End to end, with real processes over real TCP: multi-hop delivery on a line of static links,
 * a relay killed with SIGKILL on a redundant topology, and a namespace host cut off the LAN and
 * put back. Every assertion is by origin and sequence number: each reading exactly once.
 */

const addrOf = async (proc: MeshProc): Promise<string> => (await proc.call<{ addrs: string[] }>('info')).addrs[0] as string

/** `from` keeps a static link to each of `to` (the child's `dial`: MeshNode.addPeer). */
async function dial (from: MeshProc, ...to: MeshProc[]): Promise<void> {
  await from.call('dial', { addrs: await Promise.all(to.map(addrOf)) })
}

/** Static links only: no mDNS, a node dials nobody but the peers it is told to. */
const STATIC = { IOTMESH_CHILD_EVENTS: '1' } as const

describeNet('end to end over static TCP links', () => {
  beforeAll(() => { assertFreshBuild() })

  it('a line A-B-C-D carries a reading from A to D with hops 3, exactly once, and stays a line', async () => {
    const procs = new MeshProcs()
    onTestFinished(async () => { await procs.killAll() })
    const [a, b, c, d] = await Promise.all(['A', 'B', 'C', 'D'].map(async (label) => await procs.fork(label, STATIC))) as [MeshProc, MeshProc, MeshProc, MeshProc]
    await dial(b, a)
    await dial(c, b)
    await dial(d, c)
    const signal = AbortSignal.timeout(10_000)
    await b.linked([a.id, c.id], signal)
    await c.linked([b.id, d.id], signal)
    await d.linked([c.id], signal)
    // A first reading may go out before the subscriptions have spread along the line (INTEREST):
    // it then arrives by catch-up (DIGEST, WANT), possibly after later ones. Readings published
    // once it has arrived travel the line in order.
    const first = await a.publish(0)
    for (const node of [b, c, d]) await node.received(a.id, [first], signal)
    const seqs = [await a.publish(1), await a.publish(2), await a.publish(3)]
    for (const [node, hops, from] of [[b, 1, a], [c, 2, b], [d, 3, c]] as const) {
      await node.received(a.id, seqs, signal)
      expect(node.readings.map((r) => ({ origin: r.origin, seq: r.seq, hops: r.hops, from: r.from }))).toEqual([first, ...seqs].map((seq) => ({ origin: a.id, seq, hops, from: from.id })))
      expect(await node.call('seen')).toEqual({ [a.id]: 4 })
    }
    // Peer exchange taught A about C and D, but with no dial target nobody linked beyond its neighbours.
    expect(a.events.filter((e) => e.ev === 'link').map((e) => e.peer)).toEqual([b.id])
    expect(d.events.filter((e) => e.ev === 'link').map((e) => e.peer)).toEqual([c.id])
  })

  it('SIGKILL of the relay D last heard A through, mid-stream (A-B-D, A-C-D): D still gets every reading exactly once', async () => {
    const procs = new MeshProcs()
    onTestFinished(async () => { await procs.killAll() })
    const [a, b, c, d] = await Promise.all(['A', 'B', 'C', 'D'].map(async (label) => await procs.fork(label, STATIC))) as [MeshProc, MeshProc, MeshProc, MeshProc]
    await dial(b, a)
    await dial(c, a)
    await dial(d, b, c)
    const signal = AbortSignal.timeout(20_000)
    await a.linked([b.id, c.id], signal)
    await d.linked([b.id, c.id], signal)
    await a.call('stream', { every: 20 })
    await d.until('10 readings from A', () => d.seqsFrom(a.id).length >= 10 ? true : undefined, signal)
    const relay = d.readings.at(-1)?.from === b.id ? b : c
    const other = relay === b ? c : b
    await relay.kill()
    await d.event((e) => e.ev === 'link' && e.peer === relay.id && e.up === false, signal, 'the link to the killed relay closed')
    const closed = d.readings.length
    // Delivery goes on through the other relay within a couple of seconds (what the dead relay
    // dropped is asked for again: DIGEST, WANT), and A keeps publishing meanwhile.
    await d.until('20 readings after the link closed', () => d.readings.length - closed >= 20 ? true : undefined, AbortSignal.timeout(5000))
    const { seqs } = await a.call<{ seqs: number[] }>('streamStop')
    await d.received(a.id, seqs, AbortSignal.timeout(5000))
    await other.received(a.id, seqs, signal)
    expect(d.readings.slice(closed).every((r) => r.from === other.id)).toBe(true)
    expect(sorted(d.seqsFrom(a.id))).toEqual(seqs)
    expect(sorted(other.seqsFrom(a.id))).toEqual(seqs)
    expect(await d.call('seen')).toEqual({ [a.id]: seqs.length })
  })
})

describeNet('end to end on a LAN of namespace hosts: partition and heal', () => {
  let lan: Lan
  const procs = new MeshProcs()
  let nodes: MeshProc[] = []

  beforeAll(async () => {
    assertFreshBuild()
    lan = await createLan({ hosts: 3 })
    const fleet = uniqueFleet('e2e-partition')
    nodes = await Promise.all(lan.hosts.map(async (host, i) => await procs.spawn(lan, host, `h${i}`, {
      IOTMESH_CHILD_HOST: host.address,
      IOTMESH_CHILD_MDNS: '1',
      IOTMESH_CHILD_FLEET: fleet,
      IOTMESH_CHILD_NAME: `e2e-part-${i}`,
      IOTMESH_CHILD_EVENTS: '1',
      // A partition is noticed within about a second instead of 30 s; lazy links sync every 200 ms.
      IOTMESH_CHILD_KEEPALIVE_INTERVAL: '200',
      IOTMESH_CHILD_KEEPALIVE_TIMEOUT: '1000',
      IOTMESH_CHILD_SYNC_INTERVAL: '200'
    })))
  }, 30_000)

  afterAll(async () => {
    await procs.killAll()
    await lan?.destroy()
  })

  it('a host cut off the LAN keeps publishing; after healing every reading of the partition arrives once, both ways', async () => {
    const [a, b, c] = nodes as [MeshProc, MeshProc, MeshProc]
    const hostA = lan.hosts[0] as LanHost
    const signal = AbortSignal.timeout(30_000)
    for (const node of nodes) await node.linked(nodes.filter((o) => o !== node).map((o) => o.id), signal)
    const before = [await a.publish(0), await a.publish(1)]
    for (const node of [b, c]) await node.received(a.id, before, signal)

    const linkEvents = (node: MeshProc): number => node.events.filter((e) => e.ev === 'link').length
    const mark = new Map(nodes.map((n) => [n, linkEvents(n)]))
    const since = (node: MeshProc, peer: string, up: boolean) => (e: Record<string, unknown>): boolean =>
      e.ev === 'link' && e.peer === peer && e.up === up && node.events.indexOf(e as never) >= (mark.get(node) as number)
    await lan.connect(hostA, false)
    await a.call('stream', { every: 20, count: 200 })
    // Keepalive notices on both sides of the cut.
    for (const [node, peer] of [[b, a], [c, a], [a, b], [a, c]] as const) await node.event(since(node, peer.id, false), signal, `${node.label}: link to ${peer.label} closed`)
    // Meanwhile the rest of the LAN carries on: B's readings reach C, not A.
    const fromB = [await b.publish(10), await b.publish(11), await b.publish(12)]
    await c.received(b.id, fromB, signal)
    expect(a.seqsFrom(b.id).filter((s) => fromB.includes(s))).toEqual([])
    // Nothing A published since the cut got across.
    expect(sorted(b.seqsFrom(a.id))).toEqual(before)
    expect(sorted(c.seqsFrom(a.id))).toEqual(before)

    mark.clear()
    for (const n of nodes) mark.set(n, linkEvents(n))
    await lan.connect(hostA, true)
    for (const node of [b, c]) await node.event(since(node, a.id, true), signal, `${node.label}: link to A again`)
    const { seqs: during } = await a.call<{ seqs: number[] }>('streamStop')
    expect(during.length).toBeGreaterThan(0)
    const after = [await a.publish(100)]
    const all = [...before, ...during, ...after]
    for (const node of [b, c]) {
      await node.received(a.id, all, signal)
      expect(sorted(node.seqsFrom(a.id)), node.label).toEqual(all)
    }
    await a.received(b.id, fromB, signal)
    expect(sorted(a.seqsFrom(b.id))).toEqual(fromB)
    for (const node of [b, c]) expect((await node.call<Record<string, number>>('seen'))[a.id]).toBe(all.length)
    // The partition's readings came by catch-up (DIGEST, WANT), not by a live push.
    expect((await b.call<{ wantsSent: number }>('counters')).wantsSent + (await c.call<{ wantsSent: number }>('counters')).wantsSent).toBeGreaterThan(0)
  })
})
