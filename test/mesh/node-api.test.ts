import { createServer } from 'node:net'
import { describe, expect, it, onTestFinished } from 'vitest'
import { encodeFrame, generateKeyPair, telemetryTopic, type KeyPair } from '../../shared/index.js'
import { MeshNode } from '../../mesh/index.js'
import { createMemoryNetwork, type MemoryNetwork } from '../../mesh/testing.js'
import { describeNet } from '../helpers/netns.js'

/** MeshNode's own API (the router is private): inject, keys, interest, lifecycle. */

const keysOf = (seed: number): KeyPair => generateKeyPair(new Uint8Array(32).fill(seed))
const frameOf = (keys: KeyPair, seq: number): Uint8Array => encodeFrame({ keys, seq, time: 1_767_225_600, records: [{ n: 'temp', v: seq }] })

function node (net: MemoryNetwork, name: string, keys: KeyPair, peers: string[] = []): MeshNode {
  const n = new MeshNode({ name, host: name, mdns: false, peers, dialTarget: 0, announceLinks: 0 }, { keys, transport: net.createTransport({}, { keys }) })
  onTestFinished(async () => { await n.stop() })
  return n
}

async function until (check: () => boolean): Promise<void> {
  const end = Date.now() + 5000
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met within 5 s')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

describe('MeshNode API', () => {
  it('inject says what became of a frame: accepted, duplicate, held, refused with a code', async () => {
    const net = createMemoryNetwork()
    const a = node(net, 'a', keysOf(1))
    await a.start()
    const alice = keysOf(2)
    expect(a.inject(frameOf(alice, 1))).toEqual({ verdict: 'held' })
    expect(a.learnKey(alice.publicKey, alice.id)).toBe('added')
    expect(a.keyOf(alice.id)).toEqual(alice.publicKey)
    expect(a.inject(frameOf(alice, 2))).toEqual({ verdict: 'accepted' })
    expect(a.inject(frameOf(alice, 2))).toEqual({ verdict: 'duplicate' })
    expect(a.inject(Uint8Array.of(0x82, 1, 2))).toMatchObject({ verdict: 'refused', code: 'ERR_NOT_COSE_SIGN1' })
    expect(a.learnKey(keysOf(3).publicKey, alice.id)).toBe('mismatch')
    expect(a.counters.delivered).toBe(2) // the held frame was released when the key came
  })

  it('shows interest: the route to a subscriber, whether its own frames are wanted, and where they go next', async () => {
    const net = createMemoryNetwork()
    const a = node(net, 'a', keysOf(11))
    await a.start()
    const b = node(net, 'b', keysOf(12), [`a:${a.address?.port}`])
    await b.start()
    expect(a.wanted()).toBe(false)
    const sub = b.subscribe(telemetryTopic(a.fleet, a.id))
    onTestFinished(() => { sub.close() })
    await until(() => a.routeTo(b.id) !== undefined)
    expect(a.routeTo(b.id)).toEqual({ via: b.id, hops: 1 })
    expect(a.wanted()).toBe(true)
    expect(a.nextHops('telemetry')).toEqual([b.id])
    expect(a.nextHops('events/door')).toEqual([])
    expect(a.interest()).toEqual([{ subscriber: b.id, filters: [telemetryTopic(a.fleet, a.id)], via: b.id, hops: 1 }])
  })

  it('a stop during start wins; nothing is emitted after stop; a stopped node starts again', async () => {
    const net = createMemoryNetwork()
    const a = node(net, 'a', keysOf(21))
    const starting = a.start()
    await a.stop()
    await expect(starting).rejects.toMatchObject({ code: 'ERR_ABORTED' })
    expect(a.running).toBe(false)
    let deliveries = 0
    a.on('delivery', () => { deliveries++ })
    a.publish('telemetry', [{ n: 'x', v: 1 }])
    expect(deliveries).toBe(0)
  })
})

describeNet('MeshNode lifecycle over TCP', () => {
  it('a failed start (port taken) can be retried once the port is free', async () => {
    const blocker = createServer()
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
    const port = (blocker.address() as { port: number }).port
    const keys = keysOf(31)
    const n = new MeshNode({ host: '127.0.0.1', port, mdns: false, announceLinks: 0 }, { keys })
    onTestFinished(async () => { await n.stop() })
    await expect(n.start()).rejects.toBeDefined()
    expect(n.running).toBe(false)
    await new Promise<void>((resolve) => blocker.close(() => { resolve() }))
    await n.start()
    expect(n.running).toBe(true)
    expect(n.address?.port).toBe(port)
    await n.stop()
    await n.start() // a stopped node with its own TCP transport starts again
    expect(n.running).toBe(true)
  })
})
