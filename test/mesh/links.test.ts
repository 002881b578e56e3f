import { once } from 'node:events'
import { connect } from 'node:net'
import { describe, expect, it, onTestFinished } from 'vitest'
import { isMeshError, mulberry32, seededRandom, type KeyPair } from '../../shared/index.js'
import { nodeEd25519 } from '../../shared/node.js'
import {
  createConnectionManager, createTcpTransport, type ConnectionManager, type Link, type TcpTransportInit, type Transport
} from '../../mesh/links/index.js'
import { createMemoryNetwork, withFaults, type FaultyLink, type MemoryNetwork } from '../../mesh/testing.js'
import { InitiatorHandshake } from '../../mesh/links/handshake.js'
import { FrameDecoder, encodeFrame } from '../../mesh/links/framing.js'
import { FRAME_OVERHEAD } from '../../mesh/links/secure.js'
import { ITEM_HEADER_BYTES } from '../../mesh/links/record.js'
import { ManualClock } from '../helpers/clock.js'
import { orderedKeys, testKeys } from '../helpers/keys.js'
import { describeNet } from '../helpers/netns.js'
import { startProxy } from '../helpers/tcp-proxy.js'

const HELLO_FRAME = 110
const AUTH_FRAME = 71
/** Lets queued I/O callbacks and microtasks run (no timer, no sleep). */
const settle = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }

async function tcp (keys: KeyPair, init: TcpTransportInit = {}, clock?: ManualClock): Promise<Transport> {
  const transport = createTcpTransport(init, clock === undefined ? { keys } : { keys, clock })
  onTestFinished(async () => { await transport.close() })
  await transport.listen({ host: '127.0.0.1', port: 0 })
  return transport
}

/** Collects `count` messages (copied) from a link. */
async function collect (link: Link, count: number): Promise<Buffer[]> {
  const got: Buffer[] = []
  if (count === 0) return got
  return await new Promise((resolve) => {
    link.on('message', (msg) => {
      got.push(Buffer.from(msg))
      if (got.length === count) resolve(got)
    })
  })
}

describeNet('TCP links', () => {
  it('show a passive observer nothing of the readings', async () => {
    const a = await tcp(testKeys(21))
    const b = await tcp(testKeys(22))
    const proxy = await startProxy(b.address!)
    onTestFinished(async () => { await proxy.close() })
    const arrived = b.next('link')
    const outbound = await a.dial(proxy.address, { expectedId: b.localId })
    const [inbound] = await arrived
    const marker = 'SECRET-READING-temperature=21.5C'
    const atB = collect(inbound, 100)
    const atA = collect(outbound, 100)
    for (let i = 0; i < 100; i++) {
      outbound.send(Buffer.from(`${marker}#${i}`))
      inbound.send(Buffer.from(`${marker}#reply${i}`))
    }
    expect((await atB)[99]!.toString()).toBe(`${marker}#99`)
    expect((await atA)[0]!.toString()).toBe(`${marker}#reply0`)
    const wire = Buffer.concat([proxy.captured('up'), proxy.captured('down')])
    expect(wire.length).toBeGreaterThan(200 * marker.length)
    expect(wire.includes(marker)).toBe(false)
    expect(wire.includes('SECRET')).toBe(false)
    expect(wire.includes('21.5')).toBe(false)
    expect(outbound.counters.bytesOut).toBe(proxy.captured('up').length - HELLO_FRAME - AUTH_FRAME)
  })

  it('destroys the link with ERR_DECRYPT when a ciphertext byte is flipped', async () => {
    const a = await tcp(testKeys(21))
    const b = await tcp(testKeys(22))
    const target = HELLO_FRAME + AUTH_FRAME + 4 + 3 // inside the first frame after the handshake
    const proxy = await startProxy(b.address!, (chunk, direction, offset) => {
      if (direction === 'up' && target >= offset && target < offset + chunk.length) chunk[target - offset]! ^= 0x01
      return chunk
    })
    onTestFinished(async () => { await proxy.close() })
    const arrived = b.next('link')
    const outbound = await a.dial(proxy.address)
    const [inbound] = await arrived
    const closed = inbound.next('close')
    const remoteClosed = outbound.next('close')
    let delivered = 0
    inbound.on('message', () => { delivered++ })
    outbound.send(Buffer.from('open the valve'))
    const [info] = await closed
    expect(info.reason).toBe('error')
    expect(isMeshError(info.error, 'ERR_DECRYPT')).toBe(true)
    expect(delivered).toBe(0)
    await remoteClosed
  })

  it('destroys the link on a frame header above the limit, without allocating it', async () => {
    const b = await tcp(testKeys(22), { maxMessageBytes: 1024 })
    const arrived = b.next('link')
    const socket = connect(b.address!)
    onTestFinished(() => { socket.destroy() })
    socket.on('error', () => {})
    await once(socket, 'connect')
    const handshake = new InitiatorHandshake({ keys: testKeys(21), ed25519: nodeEd25519, random: seededRandom(1) })
    const frames: Buffer[] = []
    let wake: (() => void) | undefined
    const decoder = new FrameDecoder(4096, (body) => { frames.push(Buffer.from(body)); wake?.() })
    socket.on('data', (chunk: Buffer) => { decoder.push(chunk) })
    const next = async (): Promise<Buffer> => {
      while (frames.length === 0) await new Promise<void>((resolve) => { wake = resolve })
      return frames.shift()!
    }
    socket.write(encodeFrame(handshake.hello(1)))
    handshake.readReply(await next())
    socket.write(encodeFrame(handshake.auth()))
    expect(handshake.readFinish(await next()).verdict).toBe('accept')
    const [inbound] = await arrived
    const closed = inbound.next('close')
    const before = process.memoryUsage().arrayBuffers
    socket.write(Buffer.from([0x7f, 0xff, 0xff, 0xff, 1, 2, 3]))
    const [info] = await closed
    expect(isMeshError(info.error, 'ERR_FRAME_TOO_LARGE')).toBe(true)
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * 1024 * 1024)
  })

  it('keeps an idle link alive with pings, and closes a silent one within timeout + interval', async () => {
    const clockA = new ManualClock()
    const init = { keepaliveInterval: 1000, keepaliveTimeout: 3000 }
    const a = await tcp(testKeys(21), init, clockA)
    const b = await tcp(testKeys(22), init, new ManualClock())
    const proxy = await startProxy(b.address!)
    onTestFinished(async () => { await proxy.close() })
    const arrived = b.next('link')
    const outbound = await a.dial(proxy.address)
    const [inbound] = await arrived
    clockA.advance(1000) // the handshake counts as heard: no ping yet
    clockA.advance(1000) // a whole silent interval: ping
    const echoed = outbound.next('message')
    inbound.once('message', () => { inbound.send(Uint8Array.of(2)) }) // after B answered the ping
    outbound.send(Uint8Array.of(1))
    await echoed
    // Sent in one tick, the ping and the message share one record; so do B's pong and reply.
    const record = FRAME_OVERHEAD + (ITEM_HEADER_BYTES + 4) + (ITEM_HEADER_BYTES + 1)
    expect(outbound.counters).toEqual({ framesIn: 1, framesOut: 1, bytesIn: record, bytesOut: record })
    expect(inbound.counters.bytesIn).toBe(record)

    proxy.pause('both') // the path goes silent: no FIN, no RST, nothing
    const closed = outbound.next('close')
    const start = clockA.now()
    for (let t = 1; t <= 3; t++) {
      clockA.advance(1000)
      expect(outbound.open, `open at +${t}s`).toBe(true)
    }
    clockA.advance(1000)
    expect(outbound.open).toBe(false)
    expect(clockA.now() - start).toBeLessThanOrEqual(3000 + 1000)
    const [info] = await closed
    expect(info.reason).toBe('error')
    expect(isMeshError(info.error, 'ERR_LINK_CLOSED')).toBe(true)
    expect((info.error as { details?: { reason?: string } }).details?.reason).toBe('keepalive')
  })

  it('bounds the send queue when the peer stops reading, then drains', async () => {
    const maxBufferedBytes = 256 * 1024
    const a = await tcp(testKeys(21), { maxBufferedBytes })
    const b = await tcp(testKeys(22))
    const proxy = await startProxy(b.address!)
    onTestFinished(async () => { await proxy.close() })
    const arrived = b.next('link')
    const outbound = await a.dial(proxy.address)
    const [inbound] = await arrived
    proxy.pause('up') // the receiving side stops reading
    const msg = new Uint8Array(1000)
    let sent = 0
    let refusal: unknown
    while (refusal === undefined && sent < 1_000_000) {
      try {
        for (let i = 0; i < 64; i++, sent++) outbound.send(msg)
      } catch (err) {
        refusal = err
      }
      expect(outbound.bufferedBytes).toBeLessThanOrEqual(maxBufferedBytes)
      await settle()
    }
    expect(isMeshError(refusal, 'ERR_BACKPRESSURE')).toBe(true)
    expect(outbound.writable).toBe(false)
    expect(sent * 1000).toBeLessThan(64 * 1024 * 1024) // kernel buffers plus our bound, not the sender's appetite
    const all = collect(inbound, sent)
    const drained = outbound.next('drain')
    proxy.resume('up')
    await drained
    expect(outbound.writable).toBe(true)
    expect((await all).length).toBe(sent)
  })

  it('keeps one link per pair when both devices dial each other at once', async () => {
    for (let round = 0; round < 25; round++) {
      const [small, large] = orderedKeys(30 + round * 2, 31 + round * 2)
      const a = await tcp(small)
      const b = await tcp(large)
      let inboundEvents = 0
      a.on('link', () => { inboundEvents++ })
      b.on('link', () => { inboundEvents++ })
      const [fromA, fromB] = await Promise.all([
        a.dial(b.address!, { expectedId: b.localId }),
        b.dial(a.address!, { expectedId: a.localId })
      ])
      expect(a.links.size).toBe(1)
      expect(b.links.size).toBe(1)
      expect(a.links.get(b.localId)).toBe(fromA)
      expect(b.links.get(a.localId)).toBe(fromB)
      expect(fromA.initiator, `round ${round}: the smaller id's dial wins`).toBe(true)
      expect(fromB.initiator).toBe(false)
      expect(inboundEvents).toBe(1)
      const got = fromB.next('message')
      fromA.send(Uint8Array.of(round))
      expect((await got)[0][0]).toBe(round)
      await Promise.all([a.close(), b.close()])
    }
  })

  it('replaces an older link when the same device dials again', async () => {
    const a = await tcp(testKeys(21))
    const b = await tcp(testKeys(22))
    const first = await a.dial(b.address!)
    const replaced = first.next('close')
    const second = await a.dial(b.address!)
    expect(second).not.toBe(first)
    expect((await replaced)[0].reason).toBe('replaced')
    expect(a.links.get(b.localId)).toBe(second)
    expect([...b.links.values()].map((l) => l.open)).toEqual([true])
  })

  it('injects the same seeded loss into a TCP link as into a memory link', async () => {
    const pattern = async (link: Link, peer: Link): Promise<number[]> => {
      const faulty = withFaults(link, { seed: 5, loss: 0.3 })
      const got: number[] = []
      peer.on('message', (msg) => { got.push(msg[0]!) })
      for (let i = 0; i < 100; i++) faulty.send(Uint8Array.of(i))
      const done = peer.next('message')
      link.send(Uint8Array.of(255)) // a marker after the faulty traffic, on the raw link
      await done
      while (got.at(-1) !== 255) await peer.next('message')
      return got.slice(0, -1)
    }
    const a = await tcp(testKeys(21))
    const b = await tcp(testKeys(22))
    const arrived = b.next('link')
    const overTcp = await pattern(await a.dial(b.address!), (await arrived)[0])
    const net = createMemoryNetwork({ seed: 1 })
    const ma = net.createTransport({}, { keys: testKeys(21) })
    const mb = net.createTransport({}, { keys: testKeys(22) })
    onTestFinished(async () => { await Promise.all([ma.close(), mb.close()]) })
    const memArrived = mb.next('link')
    const overMemory = await pattern(await ma.dial(await mb.listen()), (await memArrived)[0])
    expect(overTcp).toEqual(overMemory)
    expect(overTcp.length).toBeGreaterThan(50)
    expect(overTcp.length).toBeLessThan(90)
  })
})

describe('memory network faults', () => {
  async function run (seed: number): Promise<{ delivered: number[], faults: FaultyLink['faults'] }> {
    const clock = new ManualClock()
    const net = createMemoryNetwork({ seed, loss: 0.2, duplicate: 0.1, delay: [1, 20] }, { clock })
    const init = { keepaliveInterval: 0 }
    const a = net.createTransport(init, { keys: testKeys(41) })
    const b = net.createTransport(init, { keys: testKeys(42) })
    onTestFinished(async () => { await Promise.all([a.close(), b.close()]) })
    const arrived = b.next('link')
    const link = await a.dial(await b.listen()) as FaultyLink
    const [inbound] = await arrived
    const delivered: number[] = []
    inbound.on('message', (msg) => { delivered.push(new DataView(msg.buffer, msg.byteOffset).getUint16(0)) })
    const msg = new Uint8Array(2)
    for (let i = 0; i < 300; i++) {
      new DataView(msg.buffer).setUint16(0, i)
      link.send(msg)
    }
    for (let t = 0; t < 25; t++) {
      clock.advance(1)
      await settle()
    }
    const { sent, dropped, duplicated } = link.faults
    expect(delivered.length).toBe(sent - dropped + duplicated)
    return { delivered, faults: { ...link.faults } }
  }

  it('delivers the same messages in the same order for the same seed', async () => {
    const first = await run(1234)
    const again = await run(1234)
    const other = await run(4321)
    expect(again).toEqual(first)
    expect(other.delivered).not.toEqual(first.delivered)
    expect(first.faults.dropped).toBeGreaterThan(30) // ~20 % of 300
    expect(first.faults.dropped).toBeLessThan(90)
    expect(first.faults.duplicated).toBeGreaterThan(10)
    expect(new Set(first.delivered).size).toBeLessThan(first.delivered.length) // duplicates arrived
    expect(first.delivered).not.toEqual([...first.delivered].sort((x, y) => x - y)) // and overtook each other
  })

  it('partitions sets of devices and heals', async () => {
    const clock = new ManualClock()
    const net: MemoryNetwork = createMemoryNetwork({ seed: 9 }, { clock })
    const init = { keepaliveInterval: 1000, keepaliveTimeout: 3000 }
    const [a, b, c] = [51, 52, 53].map((n) => net.createTransport(init, { keys: testKeys(n) })) as [Transport, Transport, Transport]
    onTestFinished(async () => { await Promise.all([a.close(), b.close(), c.close()]) })
    const [addrB, addrC] = [await b.listen(), await c.listen()]
    const ab = await a.dial(addrB)
    const ac = await a.dial(addrC)
    const bc = await b.dial(addrC)
    net.faults.partition([[a.localId]])
    expect(net.faults.blocked(a.localId, b.localId)).toBe(true)
    expect(net.faults.blocked(b.localId, c.localId)).toBe(false)
    let crossed = 0
    b.links.get(a.localId)!.on('message', () => { crossed++ })
    ab.send(Uint8Array.of(1))
    const got = c.links.get(b.localId)!.next('message')
    bc.send(Uint8Array.of(2))
    expect((await got)[0][0]).toBe(2)
    expect(crossed).toBe(0)
    const abClosed = ab.next('close')
    const acClosed = ac.next('close')
    for (let t = 0; t < 5; t++) {
      clock.advance(1000)
      await settle()
    }
    expect((await abClosed)[0].reason).toBe('error')
    await acClosed
    expect(bc.open).toBe(true) // pings cross freely between B and C
    await expect(a.dial(addrB)).rejects.toSatisfy((err: unknown) => isMeshError(err, 'ERR_LINK_CLOSED'))
    net.faults.heal()
    const again = await a.dial(addrB)
    const back = b.links.get(a.localId)!.next('message')
    again.send(Uint8Array.of(3))
    expect((await back)[0][0]).toBe(3)
  })
})

describe('connection manager', () => {
  /** A's manager keeps B connected; B listens only after `failures` failed attempts. */
  async function reconnects (seed: number, failures: number): Promise<{ delays: number[], manager: ConnectionManager }> {
    const clock = new ManualClock()
    const net = createMemoryNetwork({ seed: 1 }, { clock })
    const init = { keepaliveInterval: 0 }
    const a = net.createTransport(init, { keys: testKeys(61) })
    const b = net.createTransport(init, { keys: testKeys(62) })
    onTestFinished(async () => { await Promise.all([a.close(), b.close()]) })
    const manager = createConnectionManager({ backoff: { initial: 1000, max: 8000, jitter: 0.5 } }, { transport: a, clock, random: seededRandom(seed) })
    onTestFinished(async () => { await manager.stop() })
    manager.start()
    const delays: number[] = []
    let failed = manager.next('dial:error')
    manager.add({ id: b.localId, addresses: ['b'], port: 7001 })
    for (let n = 0; n < failures; n++) {
      const [err, peer, retryIn] = await failed
      expect(err.code).toBe('ERR_LINK_CLOSED')
      expect(peer.id).toBe(b.localId)
      delays.push(retryIn)
      if (n === failures - 1) await b.listen({ host: 'b', port: 7001 })
      failed = manager.next('dial:error')
      clock.advance(retryIn - 1)
      expect(manager.links.size).toBe(0)
      clock.advance(1)
    }
    const [link] = await manager.next('link:open')
    expect(link.remote.id).toBe(b.localId)
    // The peer drops the link: the manager redials after a fresh (reset) backoff.
    const closed = manager.next('link:close')
    const reopened = manager.next('link:open')
    b.links.get(a.localId)!.destroy()
    await closed
    const retryIn = clock.scheduled.at(-1)!
    delays.push(retryIn)
    clock.advance(retryIn)
    await reopened
    expect(manager.links.size).toBe(1)
    return { delays, manager }
  }

  it('redials with exponential backoff and seeded jitter, exactly reproducibly', async () => {
    const draw = mulberry32(77)
    const expected = [1000, 2000, 4000, 8000, 1000].map((base) => Math.round(base * (1 - 0.5 * draw())))
    const first = await reconnects(77, 4)
    expect(first.delays).toEqual(expected)
    expect((await reconnects(77, 4)).delays).toEqual(expected)
    expect((await reconnects(78, 4)).delays).not.toEqual(expected)
  })

  it('keeps at most maxLinks links and dials waiting peers when one frees up', async () => {
    const net = createMemoryNetwork({ seed: 2 })
    const hub = net.createTransport({}, { keys: testKeys(70) })
    const peers = [71, 72, 73, 74].map((n) => net.createTransport({}, { keys: testKeys(n) }))
    onTestFinished(async () => { await Promise.all([hub, ...peers].map(async (t) => { await t.close() })) })
    const manager = createConnectionManager({ maxLinks: 2 }, { transport: hub })
    onTestFinished(async () => { await manager.stop() })
    manager.start()
    const opened: string[] = []
    manager.on('link:open', (link) => { opened.push(link.remote.id) })
    const firstTwo = Promise.all([manager.next('link:open'), manager.next('link:open')])
    for (const peer of peers) {
      const address = await peer.listen()
      manager.add({ addresses: [address.host], port: address.port }) // static peers: no id
    }
    await firstTwo
    await settle()
    expect(manager.links.size).toBe(2)
    expect(hub.links.size).toBe(2)
    const third = manager.next('link:open')
    await manager.links.values().next().value!.close()
    await third
    expect(manager.links.size).toBe(2)
    expect(new Set(opened).size).toBe(3)
  })
})

describeNet('connection managers over TCP', () => {
  it('two managers that add each other end up with exactly one link', async () => {
    const [small, large] = orderedKeys(81, 82)
    const a = await tcp(small)
    const b = await tcp(large)
    const managers = [a, b].map((transport) => {
      const manager = createConnectionManager({}, { transport })
      onTestFinished(async () => { await manager.stop() })
      return manager
    }) as [ConnectionManager, ConnectionManager]
    const opened = Promise.all([managers[0].next('link:open'), managers[1].next('link:open')])
    for (const m of managers) m.start()
    managers[0].add({ id: b.localId, publicKey: large.publicKey, addresses: ['127.0.0.1'], port: b.address!.port })
    managers[1].add({ id: a.localId, publicKey: small.publicKey, addresses: ['127.0.0.1'], port: a.address!.port })
    const [[linkA], [linkB]] = await opened
    expect(linkA.initiator).toBe(true)
    expect(linkB.initiator).toBe(false)
    expect(managers[0].links.size).toBe(1)
    expect(managers[1].links.size).toBe(1)
    const got = linkB.next('message')
    linkA.send(Uint8Array.of(42))
    expect((await got)[0][0]).toBe(42)
  })
})
