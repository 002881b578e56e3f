import { describe, expect, it, onTestFinished } from 'vitest'
import { MeshNode } from '../../mesh/index.js'
import { openOutbox } from '../../firmware-sim/index.js'
import { LINK, ROUTING, Waiter, addressOf, keysFor, meshInit, memoryNet, startDevice } from './device-support.js'

/**
 * The mesh path's acknowledgement policy (firmware-sim/device/paths/mesh-acks.ts): a reading that
 * a durable subscriber wants leaves the outbox only once that subscriber acknowledged it end to
 * end, not when the device's own node took it.
 */
describe('device runtime: mesh readings wait for their durable subscriber\'s ack', () => {
  it('while the gateway is gone readings stay in the outbox (a plain subscriber on the way does not count); back, it gets every one', async () => {
    const net = memoryNet(21)
    const waiter = new Waiter()
    const gwKeys = keysFor(1)
    const startGateway = async (): Promise<{ node: MeshNode, seqs: number[] }> => {
      const init = { name: 'gw', host: 'gw', mdns: false, dialTarget: 0, announceLinks: 0, link: LINK, routing: { ...ROUTING, acks: { intervalMs: 50 } } }
      const node = new MeshNode(init,
        { keys: gwKeys, transport: net.createTransport(LINK, { keys: gwKeys }) })
      onTestFinished(async () => { await node.stop() })
      await node.start()
      const seqs: number[] = []
      const sub = node.subscribe('iotmesh/#', { durable: true, buffer: 10_000 })
      void (async () => { for await (const d of sub) { seqs.push(d.seq); waiter.kick() } })()
      return { node, seqs }
    }
    const first = await startGateway()
    const relayKeys = keysFor(3)
    const relayInit = {
      name: 'relay', host: 'relay', mdns: false, peers: [addressOf(first.node)], dialTarget: 0, announceLinks: 0, link: LINK, routing: ROUTING
    }
    const relay = new MeshNode(relayInit,
      { keys: relayKeys, transport: net.createTransport(LINK, { keys: relayKeys }) })
    onTestFinished(async () => { await relay.stop() })
    await relay.start()
    const watch = relay.subscribe('iotmesh/#', { buffer: 10_000 }) // keeps the device's path up while the gateway is gone
    onTestFinished(() => watch.close())
    const keys = keysFor(2)
    const outbox = await openOutbox({ paths: ['mesh'] })
    const { device, signed, delivered } = await startDevice({ mode: 'mesh', sensors: 'temperature', mesh: meshInit('dev', [addressOf(relay)]) },
      { keys, transport: net.createTransport({}, { keys }), outbox }, waiter)
    const timer = setInterval(waiter.kick, 50)
    onTestFinished(() => { clearInterval(timer) })
    const known = (): boolean => device.counters.paths.mesh?.durableSubscribers === 1
    await waiter.until(() => known() && (delivered.mesh?.length ?? 0) >= 3, 'the gateway known as durable, and readings acked')
    for (const seq of delivered.mesh ?? []) expect(first.seqs).toContain(seq)

    await first.node.stop()
    const before = signed.length
    await waiter.until(() => signed.length >= before + 10, 'ten readings while the gateway is gone')
    const acked = new Set(delivered.mesh)
    const waiting = signed.filter((s) => !acked.has(s))
    expect(waiting.length).toBeGreaterThanOrEqual(10)
    expect(device.counters.paths.mesh?.up).toBe(true) // the relay's plain subscription keeps the path up…
    expect(device.counters.paths.mesh?.pending).toBeGreaterThanOrEqual(10) // …but nothing leaves the outbox unacknowledged

    const second = await startGateway()
    relay.addPeer(addressOf(second.node))
    await waiter.until(() => waiting.every((s) => delivered.mesh?.includes(s) === true), 'every reading acknowledged by the gateway back', 20_000)
    const got = new Set([...first.seqs, ...second.seqs])
    for (const seq of delivered.mesh ?? []) expect(got.has(seq)).toBe(true)
    expect(device.counters.paths.mesh?.awaitingAck).toBeLessThanOrEqual(device.counters.paths.mesh?.pending ?? 0)
  })
})
