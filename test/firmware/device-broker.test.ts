import { expect, it, onTestFinished } from 'vitest'
import { connect as mqttConnect, type IClientOptions } from 'mqtt'
import { decodeFrame, memorySequence, parseStatus, statusTopic, verifyFrame } from '../../shared/index.js'
import { Device, createMemoryOutbox } from '../../firmware-sim/index.js'
import { describeNet } from '../helpers/netns.js'
import { LINK, ROUTING, Waiter, addressOf, gateway, increasing, keysFor, meshInit, memoryNet, startDevice, startPeer, subscriber } from './device-support.js'

const FAST_RECONNECT = { initial: 50, max: 200, jitter: 0 }

describeNet('device runtime: broker mode (MQTT, embedded gateway)', () => {
  it('publishes its status and each reading at QoS 1; a subscriber verifies them end to end; goodbye on stop', async () => {
    const waiter = new Waiter()
    const { url } = await gateway(waiter)
    const keys = keysFor(11)
    const sub = await subscriber(url, `iotmesh/default/${keys.id}/telemetry`, waiter)
    const statuses: string[] = []
    await sub.client.subscribeAsync(statusTopic('default', keys.id), { qos: 1 })
    sub.client.on('message', (topic, payload) => { if (topic.endsWith('/status')) { statuses.push(payload.toString()); waiter.kick() } })
    const { device, signed, delivered } = await startDevice({ mode: 'broker', name: 'kitchen', broker: url, sensors: 'temperature,humidity' }, { keys }, waiter)
    await waiter.until(() => sub.from(keys.id).length >= 5 && delivered.broker?.length === signed.length, 'five readings at the subscriber')
    // The retained online status carries the key that verifies every frame.
    const online = parseStatus(Buffer.from(statuses[0] ?? ''), keys.id)
    expect(online).toMatchObject({ ok: true, status: { state: 'online', name: 'kitchen' } })
    const publicKey = online.ok && online.status?.state === 'online' ? online.status.publicKey : new Uint8Array(32)
    for (const frame of sub.frames.values()) verifyFrame(decodeFrame(frame), publicKey)
    expect(increasing(sub.from(keys.id))).toBe(true)
    expect(sub.from(keys.id)).toEqual(signed.slice(0, sub.from(keys.id).length))
    await device.stop()
    await waiter.until(() => statuses.includes('{"state":"offline"}'), 'the goodbye status')
    expect(device.counters.paths.broker).toMatchObject({ up: false, pending: 0, refused: 0 })
  })

  it('crash(): no goodbye, so the broker publishes the last will; a device started on the same state goes on', async () => {
    const waiter = new Waiter()
    const { gateway: gw, readings, url } = await gateway(waiter)
    const offline: string[] = []
    gw.on('status', (s) => { if (s.status?.state === 'offline') offline.push(s.from ?? '') })
    const keys = keysFor(15)
    const state = { keys, sequence: memorySequence(1000), outbox: createMemoryOutbox({ paths: ['broker'] }) }
    const first = await startDevice({ mode: 'broker', broker: { url }, sensors: 'temperature' }, state, waiter)
    await waiter.until(() => readings.length >= 3, 'three readings')
    await first.device.crash()
    await waiter.until(() => offline.length === 1, 'the last will')
    const second = await startDevice({ mode: 'broker', broker: { url }, sensors: 'temperature' }, state, waiter)
    await waiter.until(() => second.signed.length >= 3 && second.signed.every((s) => readings.some((r) => r.seq === s)), 'three readings after the restart')
    expect(Math.min(...second.signed)).toBeGreaterThan(Math.max(...first.signed))
    const seqs = readings.map((r) => r.seq)
    for (const seq of first.signed) expect(seqs).toContain(seq) // what was in flight at the crash went after the restart
    expect(increasing(seqs)).toBe(true)
    expect(gw.counters.dropped.too_old).toBe(0)
  })

  it('a broker host that does not resolve is said once, with the host and the code, not only "broker down"', async () => {
    const waiter = new Waiter()
    const keys = keysFor(16)
    const device = new Device({ mode: 'broker', broker: { url: 'mqtt://no-such-host.invalid:1883' }, sensors: 'temperature', interval: 100, stopTimeout: 1000 }, { keys, sequence: memorySequence(1), outbox: createMemoryOutbox({ paths: ['broker'] }) })
    const warnings: string[] = []
    device.on('warning', ({ error }) => { warnings.push(error.message); waiter.kick() })
    device.on('tick', waiter.kick)
    onTestFinished(async () => { await device.stop() })
    await device.start()
    // The test's namespace has no DNS: the lookup fails at once (EAI_AGAIN, or ENOTFOUND where a resolver answers).
    await waiter.until(() => warnings.some((w) => w.includes('does not resolve')), 'the warning')
    await waiter.until(() => device.counters.readings >= 4, 'a few more attempts')
    expect(warnings.filter((w) => w.includes('does not resolve'))).toHaveLength(1)
    expect(warnings.find((w) => w.includes('does not resolve'))).toMatch(/the broker host no-such-host\.invalid \(mqtt:\/\/no-such-host\.invalid:1883\) does not resolve \((EAI_AGAIN|ENOTFOUND)\)/)
  })

  it('keeps readings while the broker is down and drains them, in order, when it is back on the same port', async () => {
    const waiter = new Waiter()
    const first = await gateway(waiter)
    const port = first.gateway.ports.mqtt as number
    const keys = keysFor(12)
    const filter = `iotmesh/default/${keys.id}/telemetry`
    const before = await subscriber(first.url, filter, waiter)
    // Connection attempts go through this gate, so the test's second subscriber is in place before
    // the device reconnects (a subscriber that came later would miss the drain: nothing is retained).
    let gateOpen = true
    const connect = (url: string, options: IClientOptions): ReturnType<typeof mqttConnect> => mqttConnect(gateOpen ? url : 'mqtt://127.0.0.1:1', options)
    const { device, signed, delivered } = await startDevice({ mode: 'broker', broker: { url: first.url, reconnect: FAST_RECONNECT }, sensors: 'temperature' }, { keys, connect }, waiter)
    await waiter.until(() => before.from(keys.id).length >= 3, 'three readings before the outage')

    gateOpen = false
    const downs: string[] = []
    device.on('path:down', ({ path }) => { downs.push(path) })
    await first.gateway.stop()
    await waiter.until(() => downs.length === 1, 'the broker path to go down')
    const deliveredAtOutage = delivered.broker?.length ?? 0
    const signedAtOutage = signed.length
    const pending: number[] = []
    device.on('reading', () => { pending.push(device.counters.paths.broker?.pending ?? 0) })
    await waiter.until(() => signed.length >= signedAtOutage + 5, 'five readings during the outage')
    expect(delivered.broker?.length).toBe(deliveredAtOutage) // nothing delivered while down
    expect(increasing(pending)).toBe(true) // the outbox grows with every reading
    expect(device.counters.paths.broker).toMatchObject({ up: false })

    const second = await gateway(waiter, { port })
    expect(second.gateway.ports.mqtt).toBe(port)
    const after = await subscriber(second.url, filter, waiter)
    gateOpen = true
    const target = signed.length + 2
    await waiter.until(() => signed.length >= target && new Set([...before.from(keys.id), ...after.from(keys.id)]).size >= target, 'the drain and two fresh readings')
    const seen = [...before.from(keys.id), ...after.from(keys.id)]
    const unique = [...new Set(seen)].sort((a, b) => a - b)
    expect(unique).toEqual(signed.slice(0, unique.length)) // every sequence number, no gap
    expect(increasing(after.from(keys.id))).toBe(true) // drained oldest first
    // At most the frames in flight when the broker died arrive twice; the app drops them by seq.
    expect(seen.length - unique.length).toBeLessThanOrEqual(16)
    expect(second.gateway.counters.dropped.too_old).toBe(0)
    await waiter.until(() => device.counters.paths.broker?.pending === 0, 'an empty outbox')
  })
})

describeNet('device runtime: hybrid mode', () => {
  it('sends the same signed bytes on both paths; a gateway listening to both keeps each reading exactly once', async () => {
    const waiter = new Waiter()
    const { gateway: gw, readings, url } = await gateway(waiter)
    const net = memoryNet(21)
    // The gateway's mesh side: a node whose deliveries go to gateway.submit (what the bridge will do).
    const bridge = await startPeer(net, 'gateway', keysFor(20))
    const meshFrames = new Map<number, Uint8Array>()
    const sub = bridge.subscribe('iotmesh/#', { buffer: 1000 })
    void (async () => {
      for await (const d of sub) {
        meshFrames.set(d.seq, d.frame)
        gw.submit(d.topic, d.frame, { path: 'mesh', from: d.from ?? 'mesh' })
        waiter.kick()
      }
    })()
    onTestFinished(() => { sub.close() })
    const keys = keysFor(13)
    const { device, signed, delivered } = await startDevice({ mode: 'hybrid', broker: { url }, sensors: 'temperature,door', mesh: meshInit('dev', [addressOf(bridge)]) },
      { keys, transport: net.createTransport({}, { keys }) }, waiter)
    await waiter.until(() => signed.length >= 6 && delivered.mesh?.length === signed.length && delivered.broker?.length === signed.length &&
      meshFrames.size === signed.length && readings.length === signed.length && gw.counters.dropped.duplicate === signed.length, 'every reading on both paths')
    await device.stop()
    const accepted = readings.map((r) => r.seq)
    expect([...accepted].sort((a, b) => a - b)).toEqual(signed) // exactly once each
    expect(gw.counters.accepted).toBe(signed.length)
    expect(gw.counters.dropped.duplicate).toBe(signed.length) // the other path's copy
    expect(gw.counters.acceptedByPath.mesh + gw.counters.acceptedByPath.broker).toBe(signed.length)
    for (const r of readings) expect(Buffer.from(r.frame).equals(Buffer.from(meshFrames.get(r.seq) ?? []))).toBe(true)
  })

  it('against the gateway as a mesh member: each reading of a hybrid device is accepted once', async () => {
    const waiter = new Waiter()
    const net = memoryNet(22)
    const gwKeys = keysFor(30)
    const { gateway: gw, readings, url } = await gateway(waiter, { mesh: { host: 'gateway', mdns: false, dialTarget: 0, announceLinks: 0, link: LINK, routing: ROUTING } },
      { keys: gwKeys, transport: net.createTransport({}, { keys: gwKeys }) })
    const keys = keysFor(14)
    const { device, signed, delivered } = await startDevice({ mode: 'hybrid', broker: { url }, sensors: 'temperature', mesh: meshInit('dev', [addressOf(gw.mesh)]) },
      { keys, transport: net.createTransport({}, { keys }) }, waiter)
    await waiter.until(() => signed.length >= 6 && delivered.mesh?.length === signed.length && delivered.broker?.length === signed.length &&
      readings.filter((r) => r.origin === keys.id).length === signed.length, 'every reading at the gateway')
    await device.stop()
    const accepted = readings.filter((r) => r.origin === keys.id).map((r) => r.seq)
    expect([...accepted].sort((a, b) => a - b)).toEqual(signed)
    expect(gw.counters.dropped.too_old).toBe(0)
  })
})
