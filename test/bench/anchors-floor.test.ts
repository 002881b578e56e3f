import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { assertBuilt } from '../helpers/fresh-build.js'
import { MeshProcs, type ChildEvent } from '../helpers/mesh-proc.js'

/**
 * test/bench/anchors-floor.ts as the anchors harness drives it (../shared/anchors-bench: `dial`,
 * `pubfast`, `rxmode`, `tput` with `ack`, `stats`): one signed record reaches every linked node
 * and is verified there, and the counting mode reports what the throughput section waits for.
 * Loopback only (the floor listens on 127.0.0.1).
 */

const FLOOR = fileURLToPath(new URL('../../dist/test/bench/anchors-floor.js', import.meta.url))
const procs = new MeshProcs()
afterAll(async () => { await procs.killAll() })

describe('the anchors floor adapter', () => {
  it('delivers one signed publish to every linked node, verified, and counts a windowed stream', async () => {
    assertBuilt(['test/bench', 'shared'])
    const signal = AbortSignal.timeout(20_000)
    const nodes = await Promise.all([0, 1, 2].map(async (i) => await procs.fork(`f${i}`, {}, signal, FLOOR)))
    const [a, b, c] = nodes as [typeof nodes[0], typeof nodes[0], typeof nodes[0]]
    const infos = await Promise.all(nodes.map(async (n) => await n.call<{ addrs: string[] }>('info')))
    await b.call('dial', { addrs: [infos[0]?.addrs[0]] })
    await c.call('dial', { addrs: [infos[0]?.addrs[0], infos[1]?.addrs[0]] })
    const linked = async (): Promise<number[]> => await Promise.all(nodes.map(async (n) => (await n.call<{ conns: number }>('status')).conns))
    while ((await linked()).some((n) => n < 2)) await new Promise((resolve) => setTimeout(resolve, 50))

    a.child.send({ cmd: 'pubfast', seq: 7, tag: 3 })
    const rx = (e: ChildEvent): boolean => e.ev === 'rx' && e.seq === 7 && e.tag === 3
    const got = await Promise.all([b, c].map(async (n) => await n.event(rx, signal, 'the publish')))
    for (const e of got) expect(e.lat).toBeGreaterThan(0)
    expect([b, c].flatMap((n) => n.events.filter((e) => e.ev === 'bad'))).toEqual([])
    expect(a.events.filter((e) => e.ev === 'rx')).toEqual([]) // nothing came back to the publisher

    await b.call('rxmode', { mode: 'count', every: 25 })
    b.child.on('message', (m: ChildEvent) => { if (m.ev === 'cnt') a.child.send({ cmd: 'ack', n: m.n }) })
    const sent = await a.call<{ sent: number }>('tput', { n: 200, window: 50, capMs: 10_000, tag: 1 })
    expect(sent.sent).toBe(200) // a window of 50 needs the acks to go on
    await b.event((e) => e.ev === 'cnt' && e.n === 200, signal, 'the count of 200')
    const stats = await b.call<{ cpuUs: number, sock: { read: number } }>('stats')
    expect(stats.cpuUs).toBeGreaterThan(0)
    expect(stats.sock.read).toBe(2 * 32 + 201 * 174) // the keys of a and c, then 201 records from a
  }, 30_000)
})
