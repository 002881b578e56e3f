import { MessageChannel, type MessagePort } from 'node:worker_threads'
import { afterAll, describe, expect, it, onTestFinished } from 'vitest'
import { isMeshError, systemClock, type KeyPair } from '../../shared/index.js'
import { createTcpTransport, type Link, type LinkOptions, type Transport } from '../../mesh/links/index.js'
import { PortLink, Trunk, applyFaults, createFaultModel, createMemoryNetwork } from '../../mesh/testing.js'
import { describeNet } from '../helpers/netns.js'
import { testKeys } from '../helpers/keys.js'

/**
 * The link contract, run against every transport (libp2p's interface-compliance-tests):
 * idempotent start/stop, nothing emitted after close, ordered delivery both ways, close
 * propagation, the frame size limit, backpressure, identity checks.
 */

/** Lets queued I/O callbacks and microtasks run (no timer, no sleep). */
const settle = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }

type MakeTransport = (keys: KeyPair, init?: LinkOptions) => Transport

async function expectCode (promise: Promise<unknown>, code: string): Promise<void> {
  await expect(promise).rejects.toSatisfy((err: unknown) => isMeshError(err) && err.code === code)
}

function expectThrowsCode (fn: () => unknown, code: string): void {
  let caught: unknown
  try {
    fn()
  } catch (err) {
    caught = err
  }
  expect(isMeshError(caught) ? caught.code : caught).toBe(code)
}

function linkCompliance (name: string, make: MakeTransport, host: string): void {
  const started = async (label: number, init?: LinkOptions): Promise<Transport> => {
    const transport = make(testKeys(label), init)
    onTestFinished(async () => { await transport.close() })
    await transport.listen({ host, port: 0 })
    return transport
  }

  /** A linked pair: `a` dialed `b`; `inbound` is b's end. */
  const linked = async (init?: LinkOptions): Promise<{ a: Transport, b: Transport, outbound: Link, inbound: Link }> => {
    const a = await started(1, init)
    const b = await started(2, init)
    const arrived = b.next('link')
    const outbound = await a.dial(b.address!, { expectedId: b.localId })
    const [inbound] = await arrived
    return { a, b, outbound, inbound }
  }

  describe(`${name} links`, () => {
    it('listen and close are idempotent; a closed transport refuses work', async () => {
      const transport = make(testKeys(3))
      onTestFinished(async () => { await transport.close() })
      const first = await transport.listen({ host, port: 0 })
      const again = await transport.listen({ host, port: 0 })
      expect(again).toEqual(first)
      expect(transport.address).toEqual(first)
      await transport.close()
      await transport.close()
      await expectCode(transport.listen({ host }), 'ERR_LINK_CLOSED')
      await expectCode(transport.dial(first), 'ERR_LINK_CLOSED')
      const never = make(testKeys(4))
      await never.close() // stop before start
      await never.close()
    })

    it('emits nothing after close, and a closed transport is not reachable', async () => {
      const { a, b, outbound, inbound } = await linked()
      const late: string[] = []
      const aClosed = outbound.next('close')
      const bClosed = inbound.next('close')
      await a.close()
      await Promise.all([aClosed, bClosed])
      for (const event of ['link', 'refused'] as const) a.on(event, () => late.push(`a:${event}`))
      outbound.on('message', () => late.push('outbound:message'))
      outbound.on('close', () => late.push('outbound:close'))
      expect(outbound.open).toBe(false)
      expectThrowsCode(() => { outbound.send(new Uint8Array(1)) }, 'ERR_LINK_CLOSED')
      await expectCode(b.dial(a.address!, { expectedId: a.localId }), 'ERR_LINK_CLOSED')
      expect(a.links.size).toBe(0)
      expect(late).toEqual([])
    })

    it('delivers messages in order, both ways, and counts them', async () => {
      const { outbound, inbound } = await linked()
      const count = 500
      const atB: number[] = []
      const atA: number[] = []
      const doneB = new Promise<void>((resolve) => {
        inbound.on('message', (msg) => { atB.push(new DataView(msg.buffer, msg.byteOffset).getUint32(0)); if (atB.length === count) resolve() })
      })
      const doneA = new Promise<void>((resolve) => {
        outbound.on('message', (msg) => { atA.push(new DataView(msg.buffer, msg.byteOffset).getUint32(0)); if (atA.length === count) resolve() })
      })
      const msg = new Uint8Array(100)
      for (let i = 0; i < count; i++) {
        new DataView(msg.buffer).setUint32(0, i)
        outbound.send(msg) // the buffer is reused: send must have consumed it
        new DataView(msg.buffer).setUint32(0, count + i)
        inbound.send(msg)
      }
      await Promise.all([doneA, doneB])
      expect(atB).toEqual(Array.from({ length: count }, (_, i) => i))
      expect(atA).toEqual(Array.from({ length: count }, (_, i) => count + i))
      expect(outbound.counters.framesOut).toBe(count)
      expect(inbound.counters.framesIn).toBe(count)
      expect(inbound.counters.bytesIn).toBeGreaterThanOrEqual(count * 100)
      expect(outbound.initiator).toBe(true)
      expect(inbound.initiator).toBe(false)
      expect(outbound.remote.id).toBe(testKeys(2).id)
      expect(inbound.remote.id).toBe(testKeys(1).id)
    })

    it('propagates a graceful close to the other end', async () => {
      const { a, b, outbound, inbound } = await linked()
      const remoteClosed = inbound.next('close')
      const localClosed = outbound.next('close')
      await outbound.close()
      expect((await localClosed)[0].reason).toBe('local')
      expect((await remoteClosed)[0].reason).toBe('remote')
      expect(inbound.open).toBe(false)
      expect(a.links.size).toBe(0)
      expect(b.links.size).toBe(0)
      await outbound.close() // idempotent
      outbound.destroy()
    })

    it('delivers what was sent before a graceful close, then the close', async () => {
      const { outbound, inbound } = await linked()
      const events: string[] = []
      inbound.on('message', (msg) => events.push(`message ${msg[0]!}`))
      const closed = inbound.next('close')
      inbound.on('close', (info) => events.push(`close ${info.reason}`))
      for (let i = 0; i < 5; i++) outbound.send(Uint8Array.of(i))
      await outbound.close()
      await closed
      expect(events).toEqual(['message 0', 'message 1', 'message 2', 'message 3', 'message 4', 'close remote'])
    })

    it('reports a forceful destroy here, and an abrupt end there', async () => {
      const { outbound, inbound } = await linked()
      const here = outbound.next('close')
      const there = inbound.next('close')
      const boom = new Error('boom')
      outbound.destroy(boom)
      outbound.destroy() // idempotent
      expect(outbound.open).toBe(false)
      expect((await here)[0]).toEqual({ reason: 'error', error: boom })
      const [info] = await there
      expect(info.reason).toBe('remote')
      expect(isMeshError(info.error, 'ERR_LINK_CLOSED')).toBe(true)
    })

    it('destroys the link, not the node, when a message listener throws', async () => {
      const { outbound, inbound } = await linked()
      const closed = inbound.next('close')
      inbound.on('message', () => { throw new Error('handler bug') })
      outbound.send(Uint8Array.of(1))
      const [info] = await closed
      expect(info.reason).toBe('error')
      expect(isMeshError(info.error, 'ERR_LINK_CLOSED')).toBe(true)
      expect((info.error?.cause as Error).message).toBe('handler bug')
    })

    it('refuses a message above the frame limit and keeps the link', async () => {
      const { outbound, inbound } = await linked({ maxMessageBytes: 1024 })
      expectThrowsCode(() => { outbound.send(new Uint8Array(1025)) }, 'ERR_FRAME_TOO_LARGE')
      const got = inbound.next('message')
      outbound.send(new Uint8Array(1024).fill(7))
      const [msg] = await got
      expect(msg.length).toBe(1024)
      expect(outbound.open).toBe(true)
    })

    it('refuses to queue beyond its bound, then drains', async () => {
      const { outbound, inbound } = await linked({ maxBufferedBytes: 256 * 1024 })
      inbound.on('message', () => {}) // the peer reads
      const msg = new Uint8Array(1000)
      let sent = 0
      let refusal: unknown
      try {
        for (; sent < 100_000; sent++) outbound.send(msg)
      } catch (err) {
        refusal = err
      }
      expect(isMeshError(refusal, 'ERR_BACKPRESSURE')).toBe(true)
      expect(outbound.writable).toBe(false)
      expect(outbound.bufferedBytes).toBeLessThanOrEqual(512 * 1024)
      await outbound.next('drain')
      expect(outbound.writable).toBe(true)
      outbound.send(msg)
    })

    it('pushes back on the sender while the receiving node takes no messages, then delivers all in order', async () => {
      const maxBufferedBytes = 128 * 1024
      const { outbound, inbound } = await linked({ maxBufferedBytes }) // nobody listens on inbound yet
      const msg = new Uint8Array(1000)
      let sent = 0
      for (let refused = false; !refused && sent < 1_000_000; await settle()) {
        try {
          for (let i = 0; i < 64; i++, sent++) { new DataView(msg.buffer).setUint32(0, sent); outbound.send(msg) }
        } catch (err) {
          expect(isMeshError(err, 'ERR_BACKPRESSURE')).toBe(true)
          refused = true
        }
      }
      expect(inbound.counters.framesIn * 1000).toBeLessThan(maxBufferedBytes + 256 * 1024)
      const all: number[] = []
      await new Promise<void>((resolve) => {
        inbound.on('message', (m) => { all.push(new DataView(m.buffer, m.byteOffset).getUint32(0)); if (all.length === sent) resolve() })
      })
      expect(all).toEqual(Array.from({ length: sent }, (_, i) => i))
    })

    it('keeps one link per pair: dialing again returns the open link', async () => {
      const { a, b, outbound } = await linked()
      const again = await a.dial(b.address!, { expectedId: b.localId })
      expect(again).toBe(outbound)
      expect(a.links.get(b.localId)).toBe(outbound)
      expect(b.links.size).toBe(1)
    })

    it('honours an abort signal', async () => {
      const a = await started(10)
      const b = await started(11)
      await expectCode(a.dial(b.address!, { signal: AbortSignal.abort() }), 'ERR_ABORTED')
      expect(a.links.size).toBe(0)
    })

    it('answers pings', async () => {
      const { outbound, inbound } = await linked()
      expect(await outbound.ping()).toBeGreaterThanOrEqual(0)
      expect(await inbound.ping()).toBeGreaterThanOrEqual(0)
    })

    it('refuses a peer other than the one announced', async () => {
      const a = await started(5)
      const b = await started(6)
      await expectCode(a.dial(b.address!, { expectedId: testKeys(7).id }), 'ERR_PEER_KEY_MISMATCH')
      await expectCode(a.dial(b.address!, { expectedPublicKey: testKeys(7).publicKey }), 'ERR_PEER_KEY_MISMATCH')
      expect(a.links.size).toBe(0)
    })

    it('refuses a device outside the roster, and says so', async () => {
      const a = await started(8)
      const b = await started(9, { authorize: (remote) => remote.id !== a.localId })
      const refused = b.next('refused')
      await expectCode(a.dial(b.address!), 'ERR_NOT_IN_ROSTER')
      expect((await refused)[0].code).toBe('ERR_NOT_IN_ROSTER')
      expect(b.links.size).toBe(0)
    })
  })
}

describeNet('link compliance: TCP', () => {
  linkCompliance('tcp', (keys, init) => createTcpTransport({ ...init }, { keys }), '127.0.0.1')
})

describeNet('link compliance: TCP under a fault model (no faults set)', () => {
  const faults = createFaultModel({ seed: 7 })
  linkCompliance('tcp+faults', (keys, init) => applyFaults(createTcpTransport({ ...init }, { keys }), faults), '127.0.0.1')
})

describe('link compliance: memory', () => {
  const network = createMemoryNetwork({ seed: 7 })
  linkCompliance('memory', (keys, init) => network.createTransport({ ...init }, { keys }), 'memory')
})

describe('link compliance: across threads (memory networks joined by MessagePorts)', () => {
  // Two memory networks, as two threads of a fleet hold them (firmware-sim/fleet/workers.ts), joined
  // by a trunk (one MessagePort: mesh/links/trunk.ts); transports alternate between them, so every link
  // of the suite crosses the trunk, on a channel of its own (mesh/links/port-link.ts). A MessagePort
  // behaves the same within a thread as across threads (test/firmware/fleet-workers.test.ts runs real workers).
  const { port1, port2 } = new MessageChannel()
  const [one, two] = [new Trunk(port1, 0), new Trunk(port2, 1)]
  const near = createMemoryNetwork({ seed: 7, firstPort: 40_000 }, { bridge: { route: () => one, trunks: [one] } })
  const far = createMemoryNetwork({ seed: 7, firstPort: 50_000 }, { bridge: { route: () => two, trunks: [two] } })
  afterAll(() => { near.close(); far.close(); one.close() })
  let made = 0
  linkCompliance('cross-thread', (keys, init) => (made++ % 2 === 0 ? near : far).createTransport({ ...init }, { keys }), 'memory')

  it('a trunk drops what is not a channel message, and a channel opened by the wrong side, and keeps working', async () => {
    const { port1: raw, port2 } = new MessageChannel()
    const trunk = new Trunk(port2, 0)
    onTestFinished(() => { trunk.close() })
    const opened: unknown[] = []
    trunk.onOpen = (channel, first) => { opened.push(first); channel.close() }
    const echoed = new Promise<unknown>((resolve) => { raw.on('message', resolve) })
    for (const junk of ['text', 42, [[1]], [['x', {}]], [[2, { k: 'dial' }]], [[-1, { k: 'dial' }]], [[3, '$close']]]) raw.postMessage(junk)
    raw.postMessage([[5, { k: 'dial' }], [5, 'more'], [3, { k: 'dial' }]]) // 5 opens (odd: side 1's); 3 is lower than 5: a closed one
    expect(await echoed).toEqual([[5, '$close']]) // the channel onOpen closed, told
    expect(opened).toEqual([{ k: 'dial' }])
    expect(trunk.channels).toBe(0)
    raw.close()
  })

  it('destroys a cross-thread link whose peer breaks the protocol or sends past its window', async () => {
    const options = { maxMessageBytes: 1024, maxBufferedBytes: 8192, keepaliveInterval: 0, keepaliveTimeout: 0, receiveBudget: false as const }
    const open = (): { link: PortLink, peer: MessagePort } => {
      const { port1: mine, port2: peer } = new MessageChannel()
      const link = new PortLink(testKeys(30).id, { id: testKeys(31).id, publicKey: testKeys(31).publicKey }, true, options, systemClock, () => false, mine, 8192)
      onTestFinished(() => { link.destroy(); peer.close() })
      return { link, peer }
    }
    const hostile: unknown[] = [
      'text',
      { k: 'items', items: [[0, 'not bytes', 0, 0]] },
      { k: 'items', items: [[9, new Uint8Array(1), 0, 0]] },
      { k: 'items', items: [[0, new Uint8Array(1025), 0, 0]] }, // above the frame limit
      { k: 'items', items: Array.from({ length: 40 }, () => [0, new Uint8Array(1000), 0, 0]) }, // far past the window, nobody reading
      { k: 'ack', data: 1, control: 0 }, // credit back for nothing sent
      { k: 'what' }
    ]
    for (const msg of hostile) {
      const { link, peer } = open()
      const closed = link.next('close')
      peer.postMessage(msg)
      const [info] = await closed
      expect(info.reason, JSON.stringify(msg, (_k, v: unknown) => v instanceof Uint8Array ? v.length : v)).toBe('error')
      expect(isMeshError(info.error, 'ERR_LINK_CLOSED')).toBe(true)
    }
  })
})
