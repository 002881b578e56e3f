import { describe, expect, it } from 'vitest'
import { deviceIdToBytes, type DeviceId } from '../../shared/index.js'
import type { MeshNode } from '../../mesh/index.js'
import { createFaultModel, createMemoryNetwork, type MemoryNetwork } from '../../mesh/testing.js'
import { kindOf } from '../../mesh/routing/budget.js'
import { MSG, decodeMessage, encodeMessage, type RoutingMessage } from '../../mesh/routing/messages.js'
import { RouteRequests } from '../../mesh/routing/route-requests.js'
import { Inbox, addr, linked, rawLink, seededKeys, startNode, until } from '../helpers/memory-mesh.js'

/**
 * A route lost with its link comes back at once (issue 14's leftover, RFC 8966 §3.8.2.1): the node
 * that lost it asks its neighbours for a newer version of the subscriber's declaration (ROUTEREQ),
 * the request travels towards the subscriber, and the subscriber's new version gives everyone a
 * feasible route again. Before, a node whose route went by the lost link had only unfeasible
 * routes left (its other neighbours were never nearer than it had been) and readings went nowhere
 * until the subscriber's next periodic declaration (10 s by default; 30 s here, so a test without
 * requests fails for certain).
 */

const REFRESH = 30_000
const routing = { interestRefresh: REFRESH }

/** A memory network on which one link can be cut (a partition cuts groups apart; this cuts a pair): what it carries is dropped, dials refused. */
function pairNetwork (seed: number): { net: MemoryNetwork, cut: (a: DeviceId, b: DeviceId) => void } {
  const faults = createFaultModel({ seed })
  const cuts = new Set<string>()
  const partitioned = faults.blocked
  // Read by every link when it is made (memory.ts): set before the first.
  ;(faults as { blocked: (x: DeviceId, y: DeviceId) => boolean }).blocked = (x, y) => cuts.has(`${x}/${y}`) || cuts.has(`${y}/${x}`) || partitioned(x, y)
  return { net: createMemoryNetwork({}, { faults }), cut: (a, b) => { cuts.add(`${a}/${b}`) } }
}

/** Publishes every 20 ms until stopped; remembers when each sequence number was published. */
function publisher (node: MeshNode): { stop: () => void, publishedAt: Map<number, number> } {
  const publishedAt = new Map<number, number>()
  const timer = setInterval(() => { const { seq } = node.publish('telemetry', [{ n: 'x', v: 1 }]); publishedAt.set(seq, Date.now()) }, 20)
  return { stop: () => { clearInterval(timer) }, publishedAt }
}

/** Cuts `from`–`lost`, then: how long after `from` saw the link close the first reading it published after that reached `inbox`, ms. */
async function silenceAfterCut (cut: (a: DeviceId, b: DeviceId) => void, from: MeshNode, lost: MeshNode, inbox: Inbox, ms = 8000): Promise<number> {
  const pub = publisher(from)
  try {
    await inbox.waitFor(from.id, 10)
    const closed = from.next('link:close', { signal: AbortSignal.timeout(5000) })
    cut(from.id, lost.id)
    await closed
    const closedAt = Date.now()
    const fresh = (): number | undefined => inbox.from(from.id).find((d) => (pub.publishedAt.get(d.seq) ?? 0) > closedAt)?.receivedAt
    await until(() => fresh() !== undefined, `a reading of ${from.name} published after the cut at ${inbox.node.name}`, ms)
    const silence = (fresh() as number) - closedAt
    if (process.env.IOTMESH_ROUTE_FIGURES !== undefined) console.log(`route-request: ${from.name} silent for ${silence} ms after its link to ${lost.name} closed`)
    return silence
  } finally {
    pub.stop()
  }
}

describe('a route lost with its link is asked for at once (ROUTEREQ)', () => {
  it('line a-b-c with a longer second path a-d-e-c: a loses the link to b, and its readings reach c again within ~1 s, by d', async () => {
    const { net, cut } = pairNetwork(61)
    const c = await startNode(net, 'c', seededKeys(3), [], { routing })
    const b = await startNode(net, 'b', seededKeys(2), [addr(c)], { routing })
    const e = await startNode(net, 'e', seededKeys(5), [addr(c)], { routing })
    const d = await startNode(net, 'd', seededKeys(4), [addr(e)], { routing })
    const a = await startNode(net, 'a', seededKeys(1), [addr(b), addr(d)], { routing })
    await linked(a, b.id, d.id)
    await linked(c, b.id, e.id)
    const inbox = new Inbox(c)
    await until(() => a.routeTo(c.id)?.via === b.id && d.routeTo(c.id)?.via === e.id, 'a routes by b (2 hops), d by e')
    const silence = await silenceAfterCut(cut, a, b, inbox)
    // The second path was there all along but unfeasible for a (d's 2 hops are not below a's 2).
    expect(a.routeTo(c.id)).toEqual({ via: d.id, hops: 3 })
    expect(silence).toBeLessThan(2000) // ~0.1 s on a quiet machine; without requests, until c's next declaration (~28 s)
    expect(a.counters.routeRequestsOut).toBeGreaterThan(0)
    expect(d.counters.routeRequestsPassed + e.counters.routeRequestsPassed).toBeGreaterThanOrEqual(2)
    expect(c.counters.redeclared).toBe(1)
  }, 30_000)

  it('a device loses its link to the subscriber itself (the gateway evicted it): a neighbour passes the request on, readings flow again within ~1 s', async () => {
    const { net, cut } = pairNetwork(62)
    const g = await startNode(net, 'g', seededKeys(3), [], { routing })
    const n = await startNode(net, 'n', seededKeys(2), [addr(g)], { routing })
    const v = await startNode(net, 'v', seededKeys(1), [addr(g), addr(n)], { routing })
    await linked(v, g.id, n.id)
    const inbox = new Inbox(g)
    await until(() => v.routeTo(g.id)?.via === g.id && n.routeTo(g.id)?.via === g.id, 'v and n route to g directly')
    const silence = await silenceAfterCut(cut, v, g, inbox)
    expect(v.routeTo(g.id)).toEqual({ via: n.id, hops: 2 })
    expect(silence).toBeLessThan(2000)
    expect(g.counters.redeclared).toBe(1)
  }, 30_000)
})

describe('ROUTEREQ on the wire', () => {
  it('round-trips, is budgeted as its own kind, and refuses malformed entries', () => {
    const kid = deviceIdToBytes(seededKeys(1).id)
    const bytes = encodeMessage({ kind: MSG.ROUTEREQ, entries: [{ kid, version: 1_765_000_000_000, hops: 64 }] })
    expect(MSG.ROUTEREQ).toBe(14)
    expect(kindOf(bytes)).toBe('routereq')
    expect(decodeMessage(bytes)).toEqual({ kind: MSG.ROUTEREQ, entries: [{ kid, version: 1_765_000_000_000, hops: 64 }] })
    for (const entry of [{ kid, version: 1, hops: 65 }, { kid: kid.subarray(0, 15), version: 1, hops: 3 }, { kid, version: -1, hops: 3 }]) {
      expect(() => decodeMessage(encodeMessage({ kind: MSG.ROUTEREQ, entries: [entry] }))).toThrow(expect.objectContaining({ code: 'ERR_BAD_CBOR' }))
    }
  })

  it('the state is bounded: one pass per subscriber per window, tries with backoff, re-declarations from a bucket', () => {
    const r = new RouteRequests({ maxSubscribers: 2, windowMs: 1000, redeclare: { rate: 0.5, burst: 2 } }, 0)
    const [s1, s2, s3] = ['s1', 's2', 's3'] as [DeviceId, DeviceId, DeviceId]
    expect([r.pass(s1, 0), r.pass(s1, 10), r.pass(s1, 999), r.pass(s1, 1000)]).toEqual([true, false, false, true])
    r.pass(s2, 0)
    r.pass(s3, 0)
    expect(r.passed).toBe(2) // oldest out
    expect([r.ask(s1, 5), r.ask(s1, 5), r.ask(s2, 5), r.ask(s3, 5)]).toEqual([true, false, true, false])
    expect([r.backoff(1), r.backoff(2), r.backoff(3)]).toEqual([1000, 2000, 4000])
    expect(r.retry(s1, true, 6)).toEqual({ version: 6, tries: 2 })
    expect(r.retry(s1, true, 6)).toEqual({ version: 6, tries: 3 })
    expect(r.retry(s1, true, 6)).toBeUndefined() // 3 tries, then the next periodic declaration
    expect(r.retry(s2, false, 5)).toBeUndefined() // answered
    expect(r.asking).toBe(0)
    expect([r.redeclare(0), r.redeclare(0), r.redeclare(0)]).toEqual([0, 0, 2000])
    expect(r.redeclare(2000)).toBe(0)
  })
})

describe('ROUTEREQ abused beside an honest publisher and subscriber', () => {
  it('a neighbour asking for the subscriber all the time gets a few new versions out of it, a flood gets it banned, and every reading arrives', async () => {
    const net = createMemoryNetwork({ seed: 63 })
    const s = await startNode(net, 's', seededKeys(3), [], { routing })
    const r = await startNode(net, 'r', seededKeys(2), [addr(s)], { routing })
    const p = await startNode(net, 'p', seededKeys(1), [addr(r)], { routing })
    const inbox = new Inbox(s)
    await until(() => p.routeTo(s.id) !== undefined, 'a route from p to s')
    const h = await rawLink(net, seededKeys(9), r)
    const banned: string[] = []
    r.on('peer:banned', (info) => { banned.push(info.peer) })
    const kid = deviceIdToBytes(s.id)
    const heardVersion = (): number => Math.max(0, ...h.heard.flatMap((m: RoutingMessage) => m.kind === MSG.INTEREST ? m.entries.filter((x) => x.kid.every((byte, i) => byte === kid[i])).map((x) => x.version) : []))
    await until(() => heardVersion() > 0, 'h heard s declared')
    const pub = publisher(p)
    const versionBefore = s.counters.redeclared
    // Within its budget (400 entries a second): the version s holds (passed on by r, once a window),
    // ever higher made-up ones, and strangers nobody routes to.
    const polite = Date.now()
    while (Date.now() - polite < 4000) {
      const strangers = [10, 11].map((i) => ({ kid: deviceIdToBytes(seededKeys(i).id), version: 1, hops: 64 }))
      h.link.send(encodeMessage({ kind: MSG.ROUTEREQ, entries: [{ kid, version: heardVersion(), hops: 64 }, { kid, version: 2 ** 40 + Date.now(), hops: 64 }, ...strangers] }))
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    const seconds = (Date.now() - polite) / 1000
    // r passed on at most one request a second (window 1 s); s re-declared at most 4 + 0.5 a second.
    expect(r.counters.routeRequestsPassed).toBeLessThanOrEqual(Math.ceil(seconds) + 1)
    expect(s.counters.redeclared - versionBefore).toBeLessThanOrEqual(4 + Math.ceil(seconds / 2) + 1)
    expect(banned).toEqual([])
    // A flood (200 entries a message, far over 500 a second): over budget, read no further, and banned.
    const entries = Array.from({ length: 200 }, () => ({ kid, version: heardVersion(), hops: 64 }))
    const flood = encodeMessage({ kind: MSG.ROUTEREQ, entries })
    for (let i = 0; i < 400 && h.link.open; i++) {
      try { h.link.send(flood) } catch { await new Promise((resolve) => setTimeout(resolve, 2)) } // its own queue full: wait
      if (i % 20 === 0) await new Promise((resolve) => setTimeout(resolve, 1))
    }
    await until(() => banned.includes(seededKeys(9).id), 'the flooder banned')
    expect(r.counters.routeRequestsPassed).toBeLessThanOrEqual(Math.ceil((Date.now() - polite) / 1000) + 1)
    // The honest publisher's readings all arrived, and nobody honest was cut.
    pub.stop()
    const published = p.counters.published
    await inbox.waitFor(p.id, published, 10_000)
    expect(new Set(inbox.from(p.id).map((x) => x.seq)).size).toBe(published)
    expect(banned).toEqual([seededKeys(9).id])
    expect(r.links.has(p.id) && r.links.has(s.id)).toBe(true)
  }, 40_000)
})
