import { describe, expect, it, onTestFinished } from 'vitest'
import { MeshNode, MSG, encodeMessage } from '../../mesh/index.js'
import { PeerRotation } from '../../mesh/peer-rotation.js'
import { createMemoryNetwork } from '../../mesh/testing.js'
import { ManualClock } from '../helpers/clock.js'
import { rawLink, seededKeys, startNode, until } from '../helpers/memory-mesh.js'
import { fixedRandom } from '../helpers/random.js'

/**
 * Issue 15, link churn in a TCP fleet after start: 200 devices went on opening about 1,300 links a
 * minute (each an X25519 and Ed25519 handshake at both ends, then a full DIGEST, keys, credentials
 * and claims). Most were peer rotation at a fixed 10 s pace; the rest were a loop at full nodes:
 * a dialer evicted from one kept it selected, came back 30 s later, and evicted another dialer.
 */

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
})

describe('PeerRotation', () => {
  // fixedRandom(0.5): each wait drawn at 3/4 of its range's top ([w/2, w)).
  const steps = (clock: ManualClock, init: { interval: number, maxInterval?: number }, draw = 0.5): { rotation: PeerRotation, at: number[] } => {
    const at: number[] = []
    const rotation = new PeerRotation(init, { clock, random: fixedRandom(draw) }, () => { at.push(clock.now()) })
    onTestFinished(() => { rotation.stop() })
    return { rotation, at }
  }

  it('doubles the wait after each step while quiet, up to maxInterval (8 × interval by default)', () => {
    const clock = new ManualClock()
    const { rotation, at } = steps(clock, { interval: 1000 })
    rotation.start()
    clock.advance(24_000)
    // Waits 1, 2, 4, 8, 8, 8 s, each drawn at 0.75 of it: 750, 1,500, 3,000, 6,000, 6,000, 6,000 ms.
    expect(at).toEqual([750, 2250, 5250, 11_250, 17_250, 23_250])
    expect(rotation.wait).toBe(8000)
  })

  it('draws each wait in [w/2, w), so that nodes started together do not step together', () => {
    const clock = new ManualClock()
    const { rotation, at } = steps(clock, { interval: 1000, maxInterval: 1000 }, 0)
    rotation.start()
    clock.advance(2000)
    expect(at).toEqual([500, 1000, 1500, 2000])
  })

  it('unsettle: the waits start again from interval, and a step due later comes within it', () => {
    const clock = new ManualClock()
    const { rotation, at } = steps(clock, { interval: 1000, maxInterval: 16_000 })
    rotation.start()
    clock.advance(15_000)
    expect(at).toEqual([750, 2250, 5250, 11_250]) // the next was due at 23,250
    rotation.unsettle()
    clock.advance(1000)
    expect(at.at(-1)).toBe(15_750)
    clock.advance(2000)
    expect(at.at(-1)).toBe(17_250) // 1,500 after: doubled again from interval; the next is due at 20,250
    clock.advance(1500)
    rotation.unsettle() // due within interval already: left as it is
    clock.advance(1000)
    expect(at.at(-1)).toBe(20_250)
    clock.advance(1500)
    expect(at.at(-1)).toBe(21_750) // and the wait after it doubled from interval
  })

  it('nothing after stop; start and stop are idempotent', () => {
    const clock = new ManualClock()
    const { rotation, at } = steps(clock, { interval: 1000 })
    rotation.stop()
    rotation.start()
    rotation.start()
    clock.advance(750)
    rotation.stop()
    rotation.stop()
    rotation.unsettle()
    clock.advance(60_000)
    expect(at).toEqual([750])
    expect(clock.pending).toBe(0)
  })

  it('a steady pace when maxInterval is interval', () => {
    const clock = new ManualClock()
    const { rotation, at } = steps(clock, { interval: 1000, maxInterval: 1000 })
    rotation.start()
    clock.advance(4000)
    expect(at).toEqual([750, 1500, 2250, 3000, 3750])
  })
})
