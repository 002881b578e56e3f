import { describe, expect, it, onTestFinished } from 'vitest'
import { MeshNode, MSG, encodeMessage } from '../../mesh/index.js'
import { createMdnsResponder } from '../../mesh/discovery/index.js'
import { createConnectionManager } from '../../mesh/links/index.js'
import { createMemoryNetwork } from '../../mesh/testing.js'
import { ManualClock } from '../helpers/clock.js'
import { testKeys } from '../helpers/keys.js'
import { rawLink, seededKeys, startNode, until } from '../helpers/memory-mesh.js'
import { fixedRandom } from '../helpers/random.js'
import { uniqueFleet } from '../helpers/mdns.js'
import { describeNet } from '../helpers/netns.js'

/**
 * Issue 15, link churn in a TCP fleet after start: 200 devices went on opening about 1,300 links a
 * minute (each an X25519 and Ed25519 handshake at both ends, then a full DIGEST, keys, credentials
 * and claims). Most were peer rotation at a fixed 10 s pace; the rest were a loop at full nodes:
 * a dialer evicted from one kept it selected, came back 30 s later, and evicted another dialer.
 */

const settle = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }

describe('peer selection against link churn', () => {
  it('a dialed peer that evicts us gives its place to another at once', async () => {
    const net = createMemoryNetwork()
    const quiet = { keepaliveInterval: 0 } // no pings: a link is as idle as its messages say
    // Fixed ports: peer exchange passes on no peer whose port is 0.
    const hub = await startNode(net, 'hub', seededKeys(1), [], { maxInbound: 2, port: 7001, link: quiet })
    const other = await startNode(net, 'other', seededKeys(2), [], { port: 7002 })
    const a = new MeshNode({ name: 'a', host: 'a', mdns: false, dialTarget: 1, announceLinks: 0, rotateInterval: 0, link: quiet, routing: { syncInterval: 60_000 } },
      { keys: seededKeys(4), transport: net.createTransport(quiet, { keys: seededKeys(4) }), random: fixedRandom(0) })
    onTestFinished(async () => { await a.stop() })
    await a.start()
    // A neighbour tells A of both (peer exchange); A selects one of them to dial (the first: the hub).
    const { link } = await rawLink(net, seededKeys(5), a)
    link.send(encodeMessage({ kind: MSG.PEERS, peers: [{ id: hub.id, port: 7001, addresses: ['hub'] }, { id: other.id, port: 7002, addresses: ['other'] }] }))
    await until(() => hub.links.get(a.id)?.open === true, 'A linked the hub')
    // The hub's other inbound slot: a link from A's address (the group eviction takes from), busier than A's.
    const sameAddress = net.createTransport(quiet, { keys: seededKeys(6) })
    onTestFinished(async () => { await sameAddress.close() })
    await sameAddress.listen({ host: 'a', port: 9001 })
    const busy = await sameAddress.dial(hub.address!)
    await until(() => hub.links.get(seededKeys(6).id)?.open === true, 'the second link')
    busy.send(encodeMessage({ kind: MSG.HELLO, version: 2, fleet: hub.fleet, port: 0, addresses: [] }))
    await busy.ping()
    // A newcomer: the hub evicts the idlest link of the largest address group, A's.
    const newcomer = net.createTransport(quiet, { keys: seededKeys(7) })
    onTestFinished(async () => { await newcomer.close() })
    await newcomer.dial(hub.address!)
    await until(() => hub.counters.links.manager.evicted > 0, 'the hub evicted a link')
    expect(hub.links.get(a.id)?.open ?? false).toBe(false)
    // Before: the hub stayed selected and was dialed again after 30 s (evicting another), and the other peer never.
    await until(() => a.links.get(other.id)?.open === true, 'A linked the other peer in its place')
    expect(a.links.get(hub.id)?.open ?? false).toBe(false)
  })

  it('a peer that closes a new link at once for lack of room is dialed again after refusedRetryMs, not on the backoff', async () => {
    const clock = new ManualClock()
    const net = createMemoryNetwork({ seed: 3 }, { clock })
    const init = { keepaliveInterval: 0 }
    const hub = net.createTransport(init, { keys: testKeys(63) })
    const occupant = net.createTransport(init, { keys: testKeys(64) })
    const a = net.createTransport(init, { keys: testKeys(65) })
    onTestFinished(async () => { await Promise.all([hub, occupant, a].map(async (t) => { await t.close() })) })
    const hubManager = createConnectionManager({ maxInbound: 1 }, { transport: hub, clock })
    const manager = createConnectionManager({ backoff: { initial: 500, max: 10_000 }, refusedRetryMs: 30_000 }, { transport: a, clock })
    onTestFinished(async () => { await Promise.all([hubManager.stop(), manager.stop()]) })
    hubManager.start()
    manager.start()
    const at = await hub.listen({ host: 'hub', port: 7001 })
    await occupant.listen({ host: 'x', port: 7002 })
    await occupant.dial(at) // the hub's one inbound slot, from one address alone and not idle: a newcomer is refused ('full')
    const failed = manager.next('dial:error')
    manager.add({ id: hub.localId, addresses: ['hub'], port: 7001 })
    const [err, , retryIn] = await failed
    expect(hubManager.counters.full).toBe(1)
    expect(err.code).toBe('ERR_LINK_CLOSED')
    expect(err.details).toEqual({ why: 'full' }) // not `remote`: no trust refusal (MeshNode 'link:refused') to report
    expect(retryIn).toBe(30_000) // before: the backoff's 500 ms, and each redial a handshake at both ends
    clock.advance(29_999)
    await settle()
    expect(hubManager.counters.full).toBe(1)
  })
})

describeNet('peer selection over DNS-SD', () => {
  it('a node that joins a shared responder picks among every peer its cache holds, not the first it is told of', async () => {
    const responder = createMdnsResponder()
    onTestFinished(async () => { await responder.stop() })
    await responder.start()
    const fleet = uniqueFleet('pick')
    const start = async (name: string, seed: number, init: { dialTarget: number, random?: number }): Promise<MeshNode> => {
      const n = new MeshNode({ name, fleet, host: '127.0.0.1', dialTarget: init.dialTarget, rotateInterval: 0, announceLinks: 0 },
        { keys: seededKeys(seed), responder, ...(init.random === undefined ? {} : { random: fixedRandom(init.random) }) })
      onTestFinished(async () => { await n.stop() })
      await n.start()
      return n
    }
    const five: MeshNode[] = []
    for (let i = 0; i < 5; i++) five.push(await start(`pick-${i}`, 20 + i, { dialTarget: 0 }))
    await until(() => five.every((n) => n.peers().filter((p) => p.source === 'mdns').length === 4), 'the five see each other', 10_000)
    // It learns the five from the shared cache, one after the other, in one go; it draws the last of its pool.
    const x = await start('pick-x', 30, { dialTarget: 1, random: 0.99 })
    await until(() => [...x.links.values()].some((l) => l.initiator), 'x dialed a peer', 10_000)
    const known = x.peers().filter((p) => p.source === 'mdns').map((p) => p.id)
    const dialed = [...x.links.values()].filter((l) => l.initiator).map((l) => l.remote.id)
    expect(known).toHaveLength(5)
    // Before: it selected the first peer reported, from a pool of one, as every device joining the fleet did.
    expect(dialed).toEqual([known[4]])
  })
})

describe('the pace of peer rotation on a node', () => {
  it('backs off while nothing changes, and a link that dies brings it back to its base pace', async () => {
    const clock = new ManualClock()
    const net = createMemoryNetwork({}, { clock })
    const quiet = { keepaliveInterval: 0 }
    const peer = await startNode(net, 'peer', seededKeys(11), [], { port: 7011, link: quiet })
    const keys = seededKeys(12)
    const x = new MeshNode({ name: 'x', host: 'x', mdns: false, peers: ['peer:7011'], dialTarget: 1, announceLinks: 0, rotateInterval: 1000, link: quiet, routing: { syncInterval: 600_000, interestRefresh: 600_000 } },
      { keys, transport: net.createTransport(quiet, { keys, clock }), clock, random: fixedRandom(0.99) })
    onTestFinished(async () => { await x.stop() })
    await x.start()
    await until(() => x.links.get(peer.id)?.open === true, 'x linked its static peer')
    const advance = async (ms: number): Promise<void> => {
      for (let t = 0; t < ms; t += 100) { clock.advance(100); await settle() }
    }
    // Quiet: each step doubles the wait, 1 s, 2 s, 4 s, then 8 s (8 × the base) for good.
    await advance(20_000)
    expect(x.counters.rotation.waitMs).toBe(8000)
    // Just after a step at the slow pace, the next is 4 s or more away.
    const before = x.counters.rotation.steps
    while (x.counters.rotation.steps === before) await advance(100)
    await advance(1000)
    expect(x.counters.rotation.steps).toBe(before + 1)
    // A link dies (no close frame: a partition, say): the next step comes within the base wait, then 2 s, 4 s…
    x.links.get(peer.id)?.destroy(new Error('the cable was cut'))
    await settle()
    expect(x.counters.rotation.waitMs).toBe(1000)
    await advance(1000)
    expect(x.counters.rotation.steps).toBe(before + 2)
    expect(x.counters.rotation.waitMs).toBe(2000)
  })
})
