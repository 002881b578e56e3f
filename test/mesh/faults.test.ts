import { describe, expect, it, onTestFinished } from 'vitest'
import { isMeshError, type KeyPair } from '../../shared/index.js'
import { createTcpTransport, type Link, type Transport } from '../../mesh/links/index.js'
import { applyFaults, createFaultModel, createMemoryNetwork, type FaultModel, type FaultyLink } from '../../mesh/testing.js'
import { testKeys } from '../helpers/keys.js'
import { describeNet } from '../helpers/netns.js'

/**
 * The one fault model (mesh/links/faults.ts): partitions as sets of devices, and the same seeded
 * faults and partitions applied to any transport (`applyFaults`). The in-memory network's own
 * use of it is in links.test.ts ("memory network faults").
 */

const [A, B, C, D] = [1, 2, 3, 4].map((n) => testKeys(90 + n).id) as [string, string, string, string]

describe('fault model partitions', () => {
  it('one group is one side against all the rest; cuts add up; heal lifts every cut', () => {
    const model = createFaultModel()
    expect(model.partitioned).toBe(false)
    model.partition([[A]])
    expect(model.partitioned).toBe(true)
    expect([model.blocked(A, B), model.blocked(B, A), model.blocked(B, C), model.blocked(C, D)]).toEqual([true, true, false, false])
    model.partition([[B, C]])
    expect([model.blocked(A, B), model.blocked(B, C), model.blocked(B, D), model.blocked(C, D)]).toEqual([true, false, true, true])
    model.heal()
    expect(model.partitioned).toBe(false)
    expect([model.blocked(A, B), model.blocked(B, D)]).toEqual([false, false])
  })

  it('groups, with the rest isolated: each group talks within itself, a device in no group to no one', () => {
    const model = createFaultModel()
    model.partition([[A, B], [C]], { rest: 'isolated' })
    expect([model.blocked(A, B), model.blocked(A, C), model.blocked(B, C)]).toEqual([false, true, true])
    expect([model.blocked(D, A), model.blocked(D, C), model.blocked(C, D)]).toEqual([true, true, true])
    model.heal()
    model.partition([[A, B], [C]]) // the rest (D) as one more group
    expect([model.blocked(D, A), model.blocked(D, C), model.blocked(A, C)]).toEqual([true, true, true])
  })

  it('changes settings by parts, keeping the others', () => {
    const model = createFaultModel({ seed: 3, loss: 0.1, delay: [1, 5] })
    model.configure({ duplicate: 0.2 })
    model.configure({ loss: 0 })
    expect(model.settings).toEqual({ loss: 0, delay: [1, 5], duplicate: 0.2 })
    expect(model.seed).toBe(3)
  })
})

/** Lets queued I/O callbacks and microtasks run (no timer, no sleep). */
const settle = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }

/** Sends 0..count-1 on `link`, then a marker (255) on the link underneath; returns what `peer` got before the marker. */
async function pattern (link: Link, peer: Link, count: number): Promise<number[]> {
  const got: number[] = []
  const marker = new Promise<void>((resolve) => {
    peer.on('message', (msg) => { if (msg[0] === 255) resolve(); else got.push(msg[0]!) })
  })
  for (let i = 0; i < count; i++) link.send(Uint8Array.of(i))
  ;(link as FaultyLink).inner.send(Uint8Array.of(255))
  await marker
  return got
}

describeNet('the fault model on TCP links', () => {
  async function tcp (keys: KeyPair, model: FaultModel): Promise<Transport> {
    const transport = applyFaults(createTcpTransport({}, { keys }), model)
    onTestFinished(async () => { await transport.close() })
    await transport.listen({ host: '127.0.0.1', port: 0 })
    return transport
  }

  async function linked (a: Transport, b: Transport): Promise<[Link, Link]> {
    const arrived = b.next('link')
    const outbound = await a.dial(b.address!)
    return [outbound, (await arrived)[0]]
  }

  it('gives every message the same fate as on the in-memory network, for the same seed and devices', async () => {
    const settings = { seed: 99, loss: 0.3, duplicate: 0.2 }
    const model = createFaultModel(settings)
    const overTcp = await pattern(...await linked(await tcp(testKeys(31), model), await tcp(testKeys(32), model)), 120)

    const net = createMemoryNetwork(settings)
    const [ma, mb] = [31, 32].map((n) => net.createTransport({}, { keys: testKeys(n) })) as [Transport, Transport]
    onTestFinished(async () => { await Promise.all([ma.close(), mb.close()]) })
    await mb.listen()
    const overMemory = await pattern(...await linked(ma, mb), 120)

    expect(overTcp).toEqual(overMemory)
    expect(overTcp.length).toBeGreaterThan(60) // ~30 % lost, ~20 % of the rest twice
    expect(overTcp.length).toBeLessThan(120)
    expect(new Set(overTcp).size).toBeLessThan(overTcp.length)
  })

  it('applies settings changed at run time to links already open', async () => {
    const model = createFaultModel({ seed: 5 })
    const [outbound, inbound] = await linked(await tcp(testKeys(33), model), await tcp(testKeys(34), model))
    model.configure({ loss: 1 })
    expect(await pattern(outbound, inbound, 20)).toEqual([])
    expect((outbound as FaultyLink).faults).toMatchObject({ sent: 20, dropped: 20 })
    model.configure({ loss: 0 })
    expect(await pattern(outbound, inbound, 20)).toEqual([...Array(20).keys()])
  })

  it('refuses dials across a partition, turns away links arriving across it, drops what open links carry; heal lifts it', async () => {
    const model = createFaultModel({ seed: 6 })
    const [a, b, c] = await Promise.all([35, 36, 37].map(async (n) => await tcp(testKeys(n), model)))
    const [ab, ba] = await linked(a!, b!)
    model.partition([[a!.localId]])

    expect(await pattern(ab, ba, 10)).toEqual([]) // dropped on the way: the link stays up, as on a real network until keepalive
    expect((ab as FaultyLink).faults.dropped).toBe(10)
    let arrived = 0
    c!.on('link', () => { arrived++ })
    const partitioned = (err: unknown): boolean => isMeshError(err, 'ERR_LINK_CLOSED') && err.details?.partitioned === true
    await expect(a!.dial(c!.address!, { expectedId: c!.localId })).rejects.toSatisfy(partitioned) // refused before connecting
    await expect(a!.dial(c!.address!)).rejects.toSatisfy(partitioned) // connected, then cut
    await settle()
    expect(arrived).toBe(0)
    expect([a!.links.has(c!.localId), c!.links.has(a!.localId)]).toEqual([false, false])

    model.heal()
    expect(await pattern(ab, ba, 3)).toEqual([0, 1, 2])
    const [ac] = await linked(a!, c!)
    expect(ac.remote.id).toBe(c!.localId)
    expect(arrived).toBe(1)
  })
})
