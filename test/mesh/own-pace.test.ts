import { expect, it } from 'vitest'
import { createMemoryNetwork } from '../../mesh/testing.js'
import { addr, Inbox, routed, seededKeys, startNode } from '../helpers/memory-mesh.js'

/**
 * Issue 15 (the anchors harness's one-hop throughput: 163 frames a second of 20,000 offered): a
 * neighbour takes at most `originRate` frames of one origin and refuses the rest unchecked, counting
 * them against the sender (handlers/data.ts ERR_OVER_BUDGET). A node publishing faster than that had
 * its own frames refused by every neighbour. Its own frames now leave no faster than that rate
 * (mesh/routing/pacer.ts): the ones past it wait their turn, in order, and nothing is refused.
 */
it('a node publishing faster than its neighbours take one origin\'s frames paces itself: every frame arrives, none refused', async () => {
  const net = createMemoryNetwork({ seed: 191 })
  // Repair off: what arrives came by the eager path. Neighbours take a burst of 50, then 100 a second;
  // a node sends its own at 90 % of that (45, then 90 a second), and at most a burst (45) waits.
  const routing = { syncInterval: 3_600_000, originRate: { rate: 100, burst: 50 } }
  const b = await startNode(net, 'b', seededKeys(191), [], { routing })
  const inbox = new Inbox(b)
  const a = await startNode(net, 'a', seededKeys(192), [addr(b)], { routing })
  await routed(a, b)
  const seqs: number[] = []
  for (let i = 0; i < 80; i++) seqs.push(a.publish('telemetry', [{ n: 'i', v: i }]).seq)
  await inbox.waitFor(a.id, 80)
  expect(inbox.from(a.id).map((d) => d.seq)).toEqual(seqs) // in order
  expect(b.counters.rejected.ERR_OVER_BUDGET ?? 0).toBe(0)
  expect(a.counters.paced).toBeGreaterThan(0) // past the burst, frames waited (how many depends on how fast this machine signs)
  expect(a.counters.pacedOver).toBe(0)
})

it('past one burst of waiting frames, a node\'s own frames are left to DIGEST/WANT, and still arrive', async () => {
  const net = createMemoryNetwork({ seed: 193 })
  const routing = { syncInterval: 100, originRate: { rate: 50, burst: 10 } }
  const b = await startNode(net, 'b', seededKeys(193), [], { routing })
  const inbox = new Inbox(b)
  const a = await startNode(net, 'a', seededKeys(194), [addr(b)], { routing })
  await routed(a, b)
  for (let i = 0; i < 40; i++) a.publish('telemetry', [{ n: 'i', v: i }])
  expect(a.counters.paced).toBe(9) // 9 (90 % of the burst) went at once, 9 wait
  expect(a.counters.pacedOver).toBeGreaterThanOrEqual(18) // the rest only in the history (a token or two may come back during the loop)
  await inbox.waitFor(a.id, 40)
  expect(b.counters.rejected.ERR_OVER_BUDGET ?? 0).toBe(0)
})

it('frames a node asked for do not spend their origin\'s budget: the origin\'s next frames are taken', async () => {
  const net = createMemoryNetwork({ seed: 195 })
  // A burst of 10 and then one frame a second: whatever spends the budget shows at once.
  const routing = { syncInterval: 100, originRate: { rate: 1, burst: 10 } }
  const b = await startNode(net, 'b', seededKeys(195), [], { routing })
  const inbox = new Inbox(b)
  const a = await startNode(net, 'a', seededKeys(196), [], { routing })
  for (let i = 0; i < 10; i++) a.publish('telemetry', [{ n: 'i', v: i }]) // no link yet: only in a's history
  a.addPeer(addr(b))
  await inbox.waitFor(a.id, 10) // b asked for them (DIGEST/WANT)
  expect(b.counters.wantsSent).toBeGreaterThan(0)
  for (let i = 10; i < 15; i++) a.publish('telemetry', [{ n: 'i', v: i }])
  await inbox.waitFor(a.id, 15)
  expect(b.counters.rejected.ERR_OVER_BUDGET ?? 0).toBe(0) // before: the 10 asked for had taken b's burst, and these 5 were refused
})
