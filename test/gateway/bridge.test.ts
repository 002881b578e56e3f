import { expect, it, onTestFinished } from 'vitest'
import { deviceBaseName, jsonTopic, publicKeyText, telemetryTopic, toHex, topicFilters } from '../../shared/index.js'
import { MeshNode, encodeData, type DiscoveredPeer } from '../../mesh/index.js'
import { createMemoryNetwork } from '../../mesh/testing.js'
import { type DropEvent, type Gateway, type Reading } from '../../gateway/index.js'
import { describeNet } from '../helpers/netns.js'
import {
  MESH_LINK, barrier, connectClient, connectDevice, linked, makeFrame, meshAddress, mqttUrl, nextDelivery, nextEvent, seededKeys, startMeshGateway,
  startGateway, startMeshNode, type TestClient
} from './support.js'

/** Bridge tests: mesh nodes on the in-memory transport, the gateway's embedded broker on 127.0.0.1:0. */

async function subscriber (gateway: Gateway): Promise<TestClient> {
  const client = await connectClient(mqttUrl(gateway))
  await client.client.subscribeAsync([topicFilters.telemetry(), topicFilters.json()], { qos: 1 })
  return client
}

const sameBytes = (a: Uint8Array) => (_topic: string, payload: Buffer): boolean => toHex(payload) === toHex(a)

describeNet('mesh ⇄ MQTT bridge', () => {
  it('mesh-only device: its readings appear on MQTT as the exact frame and as SenML JSON; path mesh; keys from the mesh, nothing held', async () => {
    const net = createMemoryNetwork({ seed: 11 })
    const gateway = await startMeshGateway(net)
    const keySources = new Map<string, string>()
    gateway.on('key', (k) => keySources.set(k.deviceId, k.source))
    const a = await startMeshNode(net, 'a', seededKeys(101), [meshAddress(gateway.mesh)])
    const b = await startMeshNode(net, 'b', seededKeys(102), [meshAddress(a)]) // two hops away: its key arrives in a KEY message
    await linked(a, gateway.mesh?.id ?? '', b.id)
    await linked(gateway.mesh!, a.id)
    await barrier([a, gateway.mesh], [b, a]) // the gateway's interest in the fleet has reached b
    const mqtt = await subscriber(gateway)

    const { frame, seq } = b.publish('telemetry', [{ n: 'temp', u: 'Cel', v: 21.5 }, { n: 'hum', u: '%RH', v: 40 }])
    const raw = await mqtt.next((t) => t === telemetryTopic('default', b.id))
    expect(toHex(raw.payload)).toBe(toHex(frame))
    const json = await mqtt.next((t) => t === jsonTopic('default', b.id))
    expect(JSON.parse(json.payload.toString())).toEqual([
      expect.objectContaining({ bn: deviceBaseName(b.id), n: 'temp', u: 'Cel', v: 21.5, seq }),
      expect.objectContaining({ n: 'hum', u: '%RH', v: 40 })
    ])
    expect(gateway.devices.get(b.id)).toMatchObject({ path: 'mesh', online: true, readings: 1, lastSeq: seq })
    expect(gateway.counters).toMatchObject({ held: 0, acceptedByPath: { broker: 0, mesh: 1 } })
    expect(keySources.get(a.id)).toBe('link')
    expect(keySources.get(b.id)).toBe('mesh')
    expect(gateway.bridge?.counters).toMatchObject({ fromMesh: 1, meshAccepted: 1, injected: 0 })

    // The reading reached MQTT once: the next one arrives, and nothing else came in between.
    b.publish('telemetry', [{ n: 'temp', u: 'Cel', v: 21.6 }])
    await mqtt.next((t) => t === telemetryTopic('default', b.id))
    expect(mqtt.messages.filter((m) => m.topic === telemetryTopic('default', b.id))).toHaveLength(2)
    // The gateway's own announcements stay in the mesh (the next reading of b is the barrier).
    gateway.mesh?.announceLinks()
    const third = b.publish('telemetry', [{ n: 'temp', u: 'Cel', v: 21.7 }])
    await mqtt.next(sameBytes(third.frame))
    expect(gateway.devices.get(gateway.mesh?.id ?? '')).toBeUndefined()
    expect(mqtt.messages.some((m) => m.topic.includes(gateway.mesh?.id ?? '?'))).toBe(false)
  })

  it('broker-only device: its readings are injected into the mesh once, and reach MQTT subscribers once (no loop on a triangle)', async () => {
    const net = createMemoryNetwork({ seed: 12 })
    const gateway = await startMeshGateway(net)
    const gw = meshAddress(gateway.mesh)
    const a = await startMeshNode(net, 'a', seededKeys(111), [gw])
    const c = await startMeshNode(net, 'c', seededKeys(113), [gw, meshAddress(a)])
    await linked(c, a.id, gateway.mesh?.id ?? '')
    const mqtt = await subscriber(gateway)
    const dev = seededKeys(110)
    const device = await connectDevice(mqttUrl(gateway), dev, { name: 'shed' })

    const frame = makeFrame(dev, 1)
    await linked(gateway.mesh!, a.id, c.id)
    const atA = nextDelivery(a, (d) => d.origin === dev.id)
    const atC = nextDelivery(c, (d) => d.origin === dev.id)
    await barrier([gateway.mesh, a], [gateway.mesh, c])
    await device.publishFrame(1, frame)
    const [da, dc] = await Promise.all([atA, atC])
    expect(toHex(da.frame)).toBe(toHex(frame))
    expect(toHex(dc.frame)).toBe(toHex(frame))
    expect(da.topic).toBe(telemetryTopic('default', dev.id))

    await device.publishFrame(2)
    await mqtt.next((t, p) => t === telemetryTopic('default', dev.id) && toHex(p) !== toHex(frame))
    expect(mqtt.messages.filter((m) => toHex(m.payload) === toHex(frame))).toHaveLength(1)
    expect(mqtt.messages.filter((m) => m.topic === jsonTopic('default', dev.id))).toHaveLength(2)
    expect(gateway.devices.get(dev.id)).toMatchObject({ path: 'broker', readings: 2, name: 'shed' })
    expect(gateway.bridge?.counters).toMatchObject({ injected: 2, fromMesh: 0 })
    expect(gateway.counters.dropped.duplicate).toBe(0)
    expect(a.counters.rejected).toEqual({})
  })

  it('with injectBrokerReadings false, broker readings stay out of the mesh', async () => {
    const net = createMemoryNetwork({ seed: 13 })
    const gateway = await startMeshGateway(net, { injectBrokerReadings: false })
    const a = await startMeshNode(net, 'a', seededKeys(121), [meshAddress(gateway.mesh)])
    await linked(a, gateway.mesh?.id ?? '')
    const dev = seededKeys(120)
    const device = await connectDevice(mqttUrl(gateway), dev)
    await linked(gateway.mesh!, a.id)
    const first = nextDelivery(a)
    await barrier([gateway.mesh, a])
    const accepted = nextEvent<Reading>(gateway, 'reading', (r) => r.origin === dev.id)
    await device.publishFrame(1)
    await accepted
    // Had the reading been injected, it would have crossed the gateway→a link before this one.
    gateway.mesh?.publish('telemetry', [{ n: 'marker', v: 1 }])
    expect((await first).origin).toBe(gateway.mesh?.id)
    expect(gateway.bridge?.counters.injected).toBe(0)
  })

  it('hybrid device, mesh copy first: once on MQTT, path both', async () => {
    const net = createMemoryNetwork({ seed: 14 })
    const gateway = await startMeshGateway(net)
    const hKeys = seededKeys(130)
    const h = await startMeshNode(net, 'h', hKeys, [meshAddress(gateway.mesh)])
    await linked(h, gateway.mesh?.id ?? '')
    await linked(gateway.mesh!, h.id)
    await barrier([h, gateway.mesh])
    const mqtt = await subscriber(gateway)
    const device = await connectDevice(mqttUrl(gateway), hKeys, { name: 'hybrid' })

    const { frame, seq } = h.publish('telemetry', [{ n: 'temp', u: 'Cel', v: 19 }])
    await mqtt.next(sameBytes(frame))
    const duplicate = nextEvent<DropEvent>(gateway, 'drop', (d) => d.reason === 'duplicate')
    await device.publishFrame(seq, Buffer.from(frame))
    expect(await duplicate).toMatchObject({ path: 'broker', deviceId: hKeys.id, seq })
    // A later reading is the barrier: everything about the first one has happened by then.
    const next = h.publish('telemetry', [{ n: 'temp', u: 'Cel', v: 19.5 }])
    await mqtt.next(sameBytes(next.frame))
    expect(mqtt.messages.filter((m) => toHex(m.payload) === toHex(frame))).toHaveLength(1)
    expect(mqtt.messages.filter((m) => m.topic === jsonTopic('default', hKeys.id))).toHaveLength(2)
    expect(gateway.devices.get(hKeys.id)).toMatchObject({ path: 'both', readings: 2, name: 'hybrid', online: true })
  })

  it('hybrid device, broker copy first: once on MQTT, not injected (the mesh brought its own copy), path both', async () => {
    const net = createMemoryNetwork({ seed: 15 })
    const gateway = await startMeshGateway(net)
    const hKeys = seededKeys(140)
    const h = await startMeshNode(net, 'h', hKeys, [meshAddress(gateway.mesh)])
    await linked(h, gateway.mesh?.id ?? '')
    await linked(gateway.mesh!, h.id)
    await barrier([h, gateway.mesh])
    const mqtt = await subscriber(gateway)
    const device = await connectDevice(mqttUrl(gateway), hKeys)

    const seq = 1_000
    const frame = makeFrame(hKeys, seq, { time: Date.now() / 1000 })
    const accepted = nextEvent<Reading>(gateway, 'reading', (r) => r.seq === seq)
    await device.publishFrame(seq, frame)
    expect((await accepted).path).toBe('broker')
    expect(gateway.bridge?.counters.pending).toBe(1) // h is on the mesh: its own copy is awaited
    const duplicate = nextEvent<DropEvent>(gateway, 'drop', (d) => d.reason === 'duplicate')
    h.inject(frame) // the device sends the same frame into the mesh
    expect(await duplicate).toMatchObject({ path: 'mesh', seq })
    expect(gateway.bridge?.counters).toMatchObject({ injected: 0, notInjected: 1, pending: 0, meshDuplicates: 1 })
    await device.publishFrame(seq + 1, makeFrame(hKeys, seq + 1, { time: Date.now() / 1000 }))
    await mqtt.next((t, p) => t === telemetryTopic('default', hKeys.id) && toHex(p) !== toHex(frame))
    expect(mqtt.messages.filter((m) => toHex(m.payload) === toHex(frame))).toHaveLength(1)
    expect(mqtt.messages.filter((m) => m.topic === jsonTopic('default', hKeys.id))).toHaveLength(2)
    expect(gateway.devices.get(hKeys.id)).toMatchObject({ path: 'both', readings: 2 })
  })

  it('hybrid device whose mesh copy never comes: its broker reading is injected after the delay', async () => {
    const net = createMemoryNetwork({ seed: 16 })
    const gateway = await startMeshGateway(net, { injectDelayMs: 50 })
    const hKeys = seededKeys(150)
    const h = await startMeshNode(net, 'h', hKeys, [meshAddress(gateway.mesh)])
    const a = await startMeshNode(net, 'a', seededKeys(151), [meshAddress(gateway.mesh)])
    await linked(gateway.mesh!, h.id, a.id)
    const device = await connectDevice(mqttUrl(gateway), hKeys)
    const atA = nextDelivery(a, (d) => d.origin === hKeys.id)
    await barrier([gateway.mesh, a])
    const frame = makeFrame(hKeys, 7, { time: Date.now() / 1000 })
    await device.publishFrame(7, frame)
    expect(toHex((await atA).frame)).toBe(toHex(frame))
    expect(gateway.bridge?.counters).toMatchObject({ injected: 1, notInjected: 0, pending: 0 })
  })

  it('a frame with a bad signature from a neighbour never reaches MQTT, and counts against the device it claims', async () => {
    const net = createMemoryNetwork({ seed: 17 })
    const gateway = await startMeshGateway(net)
    const aKeys = seededKeys(161)
    const a = await startMeshNode(net, 'a', aKeys, [meshAddress(gateway.mesh)])
    await linked(a, gateway.mesh?.id ?? '')
    await linked(gateway.mesh!, a.id)
    await barrier([a, gateway.mesh])
    const mqtt = await subscriber(gateway)
    const good = a.publish('telemetry', [{ n: 'v', v: 1 }])
    await mqtt.next(sameBytes(good.frame))
    const bad = makeFrame(aKeys, good.seq + 1, { time: Date.now() / 1000 })
    bad[bad.length - 5] = (bad[bad.length - 5] as number) ^ 1
    const mallory = net.createTransport(MESH_LINK, { keys: seededKeys(169) })
    onTestFinished(async () => { await mallory.close() })
    const link = await mallory.dial(gateway.mesh!.address!)
    const refused = nextEvent<DropEvent>(gateway, 'drop', (d) => d.reason === 'bad_signature')
    link.send(encodeData(1, bad))
    expect(await refused).toMatchObject({ deviceId: aKeys.id, path: 'mesh', code: 'ERR_BAD_SIGNATURE' })
    const after = a.publish('telemetry', [{ n: 'v', v: 2 }])
    await mqtt.next(sameBytes(after.frame))
    expect(mqtt.messages.filter((m) => toHex(m.payload) === toHex(bad))).toHaveLength(0)
    expect(gateway.devices.get(aKeys.id)).toMatchObject({ signatureFailures: 1, readings: 2 })
  })

  it('over DNS-SD and TCP: the gateway finds a node on the LAN, learns its key and name from its TXT record, and bridges its readings', async () => {
    const gateway = await startGateway({ mesh: { host: '127.0.0.1', announceLinks: 0 } }, { keys: seededKeys(170) })
    const keys = seededKeys(171)
    const node = new MeshNode({ name: 'porch-sensor', host: '127.0.0.1', announceLinks: 0 }, { keys })
    onTestFinished(async () => { await node.stop() })
    const mesh = gateway.mesh!
    const found = (async (): Promise<DiscoveredPeer> => {
      const signal = AbortSignal.timeout(10_000)
      for (;;) {
        const [peer] = await mesh.next('peer:discovered', { signal })
        if (peer.id === keys.id) return peer
      }
    })()
    await node.start()
    expect(await found).toMatchObject({ source: 'mdns', name: 'porch-sensor' })
    expect(gateway.devices.get(keys.id)).toMatchObject({ name: 'porch-sensor', pk: publicKeyText(keys.publicKey) })
    await linked(node, gateway.mesh!.id)
    await linked(gateway.mesh!, node.id)
    await barrier([node, gateway.mesh])
    const accepted = nextEvent<Reading>(gateway, 'reading', (r) => r.origin === keys.id)
    node.publish('telemetry', [{ n: 'temp', u: 'Cel', v: 12 }])
    expect((await accepted).path).toBe('mesh')
    expect(gateway.counters.held).toBe(0)
    expect(gateway.devices.get(keys.id)).toMatchObject({ name: 'porch-sensor', path: 'mesh', online: true })
  })
})
