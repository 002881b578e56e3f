import { describe, expect, it, onTestFinished } from 'vitest'
import { generateKeyPair, telemetryTopic, type KeyPair } from '../../shared/index.js'
import { MeshNode } from '../../mesh/index.js'
import { createConnectionManager, type Link, type LinkCloseInfo, type Transport } from '../../mesh/links/index.js'
import { createMemoryNetwork, type MemoryNetwork } from '../../mesh/testing.js'
import { ManualClock } from '../helpers/clock.js'

/**
 * Issue 10, link slots: "11 idle authenticated links: maxLinks counts inbound links, so a new
 * subscriber got no readings". Inbound and outbound slots are apart, and a full inbound side makes
 * room for a newcomer by evicting the idlest link of the address holding the most (eviction.ts).
 */

const keysOf = (seed: number): KeyPair => generateKeyPair(new Uint8Array(32).fill(seed))

function node (net: MemoryNetwork, name: string, keys: KeyPair, peers: string[] = []): MeshNode {
  const n = new MeshNode({ name, host: name, mdns: false, peers, dialTarget: 0, announceLinks: 0 }, { keys, transport: net.createTransport({}, { keys }) })
  onTestFinished(async () => { await n.stop() })
  return n
}

/** Why `link` closed: now if it is closing already, else when it does. */
async function closed (link: Link): Promise<LinkCloseInfo | undefined> {
  return link.open ? (await link.next('close'))[0] : link.closeInfo
}

async function until (what: string, check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!check()) {
    if (Date.now() > end) throw new Error(`not within ${ms} ms: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/** An attacker's transport: a valid key, listening on the attacker's host so its links carry that address. */
async function sybil (net: MemoryNetwork, port: number): Promise<Transport> {
  const t = net.createTransport({}, { keys: generateKeyPair() })
  onTestFinished(async () => { await t.close() })
  await t.listen({ host: 'evil', port })
  return t
}

describe('link slots against Sybil links', () => {
  it('12 idle authenticated links from one attacker, redialing all along, lock out neither a new subscriber nor the peers the node dials', async () => {
    const net = createMemoryNetwork()
    const a = node(net, 'a', keysOf(1)) // defaults: 12 inbound slots, 8 outbound
    await a.start()
    const target = a.address!
    for (let i = 0; i < 12; i++) await (await sybil(net, 9000 + i)).dial(target)
    await until('12 Sybil links', () => a.links.size === 12)
    // The attacker keeps dialing with fresh identities, as fast as a link opens.
    let port = 9100
    let stopped = false
    const redial = (async () => {
      while (!stopped) {
        await (await sybil(net, port++)).dial(target).catch(() => {})
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    })()
    onTestFinished(async () => { stopped = true; await redial })

    // A new subscriber dials the node: it gets a slot, its interest routes, it gets every reading.
    const b = node(net, 'b', keysOf(2), [`a:${target.port}`])
    await b.start()
    const sub = b.subscribe(telemetryTopic(a.fleet, a.id))
    onTestFinished(() => { sub.close() })
    let got = 0
    void (async () => { for await (const _ of sub) got++ })()
    await until('a route to the subscriber', () => a.routeTo(b.id) !== undefined)
    // The node dials a peer of its own while every inbound slot is taken: an outbound slot is free.
    const c = node(net, 'c', keysOf(3))
    await c.start()
    a.addPeer(`c:${c.address!.port}`)
    await until('the node linked to the peer it dials', () => a.links.get(c.id)?.open === true)

    const sent = 100
    for (let i = 0; i < sent; i++) {
      a.publish('telemetry', [{ n: 'temp', v: i }])
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    await until('every reading delivered', () => got >= sent, 2000).catch(() => {})
    stopped = true
    await redial
    const inbound = [...a.links.values()].filter((l) => l.open && !l.initiator)
    console.log('slots:', { got, sent, inbound: inbound.length, manager: a.counters.links.manager, attackerDials: port - 9100 })
    expect(got).toBeGreaterThanOrEqual(Math.ceil(sent * 0.99))
    expect(a.links.get(b.id)?.open).toBe(true)
    expect(a.links.get(c.id)?.initiator).toBe(true)
    expect(inbound.length).toBeLessThanOrEqual(12)
    expect(a.counters.links.manager.evicted).toBeGreaterThan(port - 9100 - 5) // each redial evicted another Sybil
  })

  it('evicts by address group, then idleness; a peer alone from its address stays unless idle for idleMs or scored below 0', async () => {
    const clock = new ManualClock()
    const net = createMemoryNetwork({}, { clock })
    const init = { keepaliveInterval: 0 }
    const hub = net.createTransport(init, { keys: keysOf(10) })
    onTestFinished(async () => { await hub.close() })
    const hubAddress = await hub.listen({ host: 'hub', port: 1 })
    let score: (link: Link) => number | undefined = () => undefined
    const manager = createConnectionManager({ maxInbound: 3, maxOutbound: 1, eviction: { idleMs: 60_000 } }, { transport: hub, clock, value: (l) => score(l) })
    onTestFinished(async () => { await manager.stop() })
    manager.start()
    const dialer = async (seed: number, host: string): Promise<Link> => {
      const t = net.createTransport(init, { keys: keysOf(seed) })
      onTestFinished(async () => { await t.close() })
      await t.listen({ host, port: seed })
      return await t.dial(hubAddress)
    }
    const settle = async (): Promise<void> => { for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve)) }
    const honest1 = await dialer(11, 'h1')
    clock.advance(1000)
    const honest2 = await dialer(12, 'h2')
    clock.advance(1000)
    const honest3 = await dialer(13, 'h3')
    await settle()
    expect(manager.slots).toMatchObject({ inbound: 3, maxInbound: 3 })
    // Three honest peers from three addresses: a newcomer is refused ('full'); nobody is churned out.
    const refused = await dialer(14, 'h4')
    expect(await closed(refused)).toMatchObject({ reason: 'remote', why: 'full' })
    expect([honest1, honest2, honest3].every((l) => l.open)).toBe(true)
    // One of them idle for a minute: it gives its slot (the idlest, honest1: it never sent a message).
    honest2.send(Uint8Array.of(1))
    honest3.send(Uint8Array.of(1))
    clock.advance(60_000)
    honest2.send(Uint8Array.of(1))
    honest3.send(Uint8Array.of(1))
    await settle()
    await dialer(15, 'h5')
    expect(await closed(honest1)).toMatchObject({ reason: 'remote', why: 'evicted' })
    expect(honest2.open && honest3.open).toBe(true)
    // A score below 0 makes a link evictable at once, even alone and busy.
    score = (l) => l.remote.id === keysOf(12).id ? -1 : undefined
    await dialer(16, 'h6')
    expect(await closed(honest2)).toMatchObject({ reason: 'remote', why: 'evicted' })
    expect(manager.counters).toMatchObject({ evicted: 2, full: 1 })
  })
})
