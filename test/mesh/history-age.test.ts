import { describe, expect, it } from 'vitest'
import { createMemoryNetwork } from '../../mesh/testing.js'
import { addr, linked, seededKeys, startNode, until, Inbox } from '../helpers/memory-mesh.js'

/**
 * A relay forgets the history of an origin it no longer carries (mesh/routing/history.ts `forgetIdle`,
 * issue 11's soak: relays' histories took on every origin whose route ever moved through them).
 */
describe('repair history by age, in a running mesh', () => {
  it('a relay forgets an origin idle past historyIdleMs, the device keeps its own, and the path delivers what follows once each', async () => {
    const net = createMemoryNetwork({ seed: 5 })
    const routing = { historyIdleMs: 1000 }
    const g = await startNode(net, 'g', seededKeys(1), [], { routing })
    const r = await startNode(net, 'r', seededKeys(3), [addr(g)], { routing })
    const d = await startNode(net, 'd', seededKeys(2), [addr(r)], { routing })
    await linked(r, g.id, d.id)
    const inbox = new Inbox(g)
    await until(() => d.interest().some((s) => s.subscriber === g.id), 'the route to g at d')
    for (let i = 0; i < 20; i++) d.publish('telemetry', [{ n: 'i', v: i }])
    await inbox.waitFor(d.id, 20)
    expect(r.counters.history.origins).toBeGreaterThanOrEqual(1)
    const before = r.counters.historyForgotten
    // Nothing from d for longer than the idle time: the relay's tick (every second) forgets it.
    await until(() => r.counters.historyForgotten > before, 'the relay forgets d', 5000)
    expect(r.counters.history.origins).toBe(0)
    expect(d.counters.history.origins).toBe(1) // its own frames stay
    expect(d.counters.historyForgotten).toBe(0)
    for (let i = 20; i < 40; i++) d.publish('telemetry', [{ n: 'i', v: i }])
    await inbox.waitFor(d.id, 40)
    await new Promise((resolve) => setTimeout(resolve, 300))
    const seqs = inbox.from(d.id).map((x) => x.seq)
    expect(new Set(seqs).size).toBe(40)
    expect(seqs).toHaveLength(40)
    expect(r.counters.history.origins).toBe(1) // carried again
  })
})
