import { describe, expect, it, onTestFinished } from 'vitest'
import { decodeFrame, verifyFrame, type KeyPair, type SenmlRecord } from '../../shared/index.js'
import { Device, batchByTopic, createDevice, silentLogger, type SensorNotice } from '../../firmware-sim/index.js'
import { MeshError } from '../../shared/index.js'
import { MeshNode, type Transport } from '../../mesh/index.js'
import { rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { codeOfAsync, tempDir } from './support.js'
import { Waiter, addressOf, increasing, keysFor, meshInit, memoryNet, startDevice, startPeer } from './device-support.js'

describe('device runtime: mesh mode (memory links)', () => {
  it('a peer receives every reading, once, in order, with the exact signed bytes', async () => {
    const net = memoryNet(1)
    const waiter = new Waiter()
    const peer = await startPeer(net, 'peer', keysFor(2))
    const keys = keysFor(1)
    const got: Array<{ seq: number, frame: Uint8Array, topic: string }> = []
    const sub = peer.subscribe('iotmesh/#', { buffer: 1000 })
    void (async () => { for await (const d of sub) { got.push({ seq: d.seq, frame: d.frame, topic: d.topic }); waiter.kick() } })()
    const { device, signed, delivered } = await startDevice({ mode: 'mesh', sensors: 'temperature,humidity,door', sensorOptions: { seed: 7 }, mesh: meshInit('dev', [addressOf(peer)]) },
      { keys, transport: net.createTransport({}, { keys }) }, waiter)
    await waiter.until(() => signed.length >= 8 && got.length >= signed.length && delivered.mesh?.length === signed.length, '8 readings at the peer')
    sub.close()
    const seqs = got.map((g) => g.seq)
    expect(increasing(seqs)).toBe(true)
    expect(seqs.slice(0, signed.length)).toEqual(signed.slice(0, seqs.length))
    for (const { frame, topic } of got) {
      const decoded = decodeFrame(frame)
      verifyFrame(decoded, device.publicKey)
      expect(decoded.origin).toBe(device.id)
      expect(topic).toBe(`iotmesh/default/${device.id}/${decoded.topic}`)
    }
    // temperature and humidity share one telemetry frame per interval
    const telemetry = got.map((g) => decodeFrame(g.frame)).filter((f) => f.topic === 'telemetry')
    expect(telemetry[0]?.records.map((r) => r.n)).toEqual(['temperature', 'humidity'])
    expect(device.counters.paths.mesh).toMatchObject({ up: true, refused: 0 })
  })

  it('a lone device delivers nothing: readings wait in the outbox until a link opens, then go oldest first', async () => {
    const net = memoryNet(2)
    const waiter = new Waiter()
    const keys = keysFor(1)
    const { device, signed, delivered } = await startDevice({ mode: 'mesh', sensors: 'temperature', mesh: meshInit('dev') },
      { keys, transport: net.createTransport({}, { keys }) }, waiter)
    await waiter.until(() => signed.length >= 5, 'five readings while alone')
    expect(delivered.mesh).toEqual([])
    expect(device.counters.paths.mesh).toMatchObject({ up: false, delivered: 0 })
    expect(device.counters.paths.mesh?.pending).toBe(signed.length)
    const ups: string[] = []
    device.on('path:up', ({ path }) => ups.push(path))
    // A peer appears and links to the device: the backlog drains, oldest first.
    const peerKeys = keysFor(2)
    const peer = new MeshNode({ name: 'peer', host: 'peer', mdns: false, peers: [addressOf(device.node)], dialTarget: 0, announceLinks: 0 },
      { keys: peerKeys, transport: net.createTransport({}, { keys: peerKeys }) })
    const got: number[] = []
    const sub = peer.subscribe('iotmesh/#', { buffer: 1000 })
    void (async () => { for await (const d of sub) { got.push(d.seq); waiter.kick() } })()
    await peer.start()
    try {
      await waiter.until(() => got.length >= 8 && got.length === signed.length, 'the backlog and new readings at the peer')
      expect(ups).toEqual(['mesh'])
      expect(got).toEqual(signed.slice(0, got.length))
      expect(increasing(got)).toBe(true)
      await waiter.until(() => (device.counters.paths.mesh?.pending ?? 1) <= 1, 'the outbox to empty')
    } finally {
      sub.close()
      await peer.stop()
    }
  })

  it('is down while its links lead to no subscriber; frames of a topic nobody wants do not hold the rest back', async () => {
    const net = memoryNet(8)
    const waiter = new Waiter()
    const peer = await startPeer(net, 'peer', keysFor(2))
    const keys = keysFor(1)
    const { device, signed, delivered } = await startDevice({ mode: 'mesh', sensors: 'temperature,door', mesh: meshInit('dev', [addressOf(peer)]) },
      { keys, transport: net.createTransport({}, { keys }) }, waiter)
    await waiter.until(() => device.counters.links === 1 && signed.length >= 4, 'a link and four readings')
    // Linked, but nobody subscribes: nothing is delivered, everything waits.
    expect(device.counters.paths.mesh).toMatchObject({ up: false, delivered: 0, pending: signed.length })
    const got: string[] = []
    const sub = peer.subscribe('iotmesh/+/+/telemetry', { buffer: 1000 })
    void (async () => { for await (const d of sub) { got.push(`${d.seq}`); waiter.kick() } })()
    try {
      await waiter.until(() => device.counters.paths.mesh?.up === true && (device.counters.paths.mesh?.pending ?? 1) === 0 && signed.length >= 7, 'the path up and the outbox empty')
      const { delivered: n, unwanted } = device.counters.paths.mesh ?? { delivered: 0, unwanted: 0 }
      expect(unwanted).toBeGreaterThanOrEqual(1) // the door's first report: no subscriber takes events/door
      expect(n + unwanted).toBeGreaterThanOrEqual(signed.length - 1)
      await waiter.until(() => got.length === delivered.mesh?.length, 'the telemetry at the peer')
      expect(got.map(Number)).toEqual(delivered.mesh)
    } finally {
      sub.close()
    }
  })

  it('keeps its key, numbers and backlog in its data directory across restarts; refuses a sequence file behind the outbox', async () => {
    const dir = await tempDir()
    const net = memoryNet(7)
    const waiter = new Waiter()
    const init = { mode: 'mesh' as const, sensors: 'temperature', dataDir: dir, mesh: meshInit('dev') }
    const transport = (keys: KeyPair): Transport => net.createTransport({}, { keys })
    const first = await startDevice(init, { transport }, waiter)
    expect(first.device.keyCreated).toBe(true)
    const id = first.device.id
    await waiter.until(() => first.signed.length >= 3, 'three readings')
    await first.device.stop()
    expect((await stat(join(dir, 'device.key'))).mode & 0o777).toBe(0o600)
    // The key is loaded, not made again; the lone device's backlog is still there; numbers move on.
    const second = await startDevice(init, { transport }, waiter)
    expect([second.device.id, second.device.keyCreated]).toEqual([id, false])
    await waiter.until(() => second.signed.length >= 1, 'a reading after the restart')
    expect(Math.min(...second.signed)).toBeGreaterThan(Math.max(...first.signed))
    expect(second.device.counters.paths.mesh?.pending).toBeGreaterThanOrEqual(first.signed.length + 1)
    await second.device.stop()
    // Lose the sequence file but keep the outbox: starting would reuse numbers, so it refuses.
    await rm(join(dir, 'device.seq'))
    expect(await codeOfAsync(() => createDevice(init, { transport, logger: silentLogger }))).toBe('ERR_SEQUENCE_STORE')
  })

  it('applies clock skew to sampling times, and may change it while running', async () => {
    const net = memoryNet(3)
    const waiter = new Waiter()
    const keys = keysFor(1)
    const now = (): number => 1_767_225_600_000
    const { device } = await startDevice({ mode: 'mesh', sensors: 'temperature', skewMs: -5000, interval: 50, mesh: meshInit('dev') },
      { keys, transport: net.createTransport({}, { keys }), now }, waiter)
    const times: number[] = []
    device.on('reading', (r) => { times.push(r.time) })
    await waiter.until(() => times.length >= 1, 'a reading')
    expect(times[0]).toBe(1_767_225_595_000)
    device.skewMs = 2500
    const [reading] = await device.sample()
    expect(reading?.time).toBe(1_767_225_602_500)
    expect(() => { device.skewMs = Number.NaN }).toThrow(MeshError)
  })

  it('reports a missing sensor once and keeps publishing the others', async () => {
    const net = memoryNet(4)
    const keys = keysFor(1)
    const notices: SensorNotice[] = []
    const logger = { warn: (_m: string, n: SensorNotice) => { notices.push(n) } }
    // No /dev/i2c-* here (nor in CI): the BME280 is absent; the battery (simulated) is not.
    const device = new Device({ mode: 'mesh', interval: 50, sensors: 'battery,bme280', mesh: meshInit('dev'), announceLinks: 0 }, { keys, transport: net.createTransport({}, { keys }), logger })
    const absent: SensorNotice[] = []
    const records: SenmlRecord[][] = []
    const waiter = new Waiter()
    device.on('sensor:absent', (n) => { absent.push(n); waiter.kick() })
    device.on('reading', (r) => { records.push(r.records); waiter.kick() })
    onTestFinished(async () => { await device.stop() })
    await device.start()
    await waiter.until(() => records.length >= 4, 'four readings')
    expect(absent.map((n) => n.sensor)).toEqual(['bme280'])
    expect(notices.filter((n) => n.sensor === 'bme280')).toHaveLength(1)
    expect(records.every((rs) => rs.some((r) => r.n === 'battery') && !rs.some((r) => r.n === 'pressure'))).toBe(true)
    expect(device.running).toBe(true)
  })

  it('has an idempotent lifecycle and emits nothing after stop', async () => {
    const net = memoryNet(5)
    const keys = keysFor(1)
    const device = new Device({ mode: 'mesh', interval: 20, sensors: 'temperature', mesh: meshInit('dev'), announceLinks: 0 }, { keys, transport: net.createTransport({}, { keys }), logger: silentLogger })
    expect(() => device.id).toThrow(MeshError)
    await device.stop() // before start: a no-op
    const again = new Device({ mode: 'mesh', interval: 20, sensors: 'temperature', mesh: meshInit('dev2'), announceLinks: 0 }, { keys, transport: net.createTransport({}, { keys }), logger: silentLogger })
    await Promise.all([again.start(), again.start()])
    expect(again.id).toBe(keys.id)
    let after = 0
    await again.next('reading', { signal: AbortSignal.timeout(5000) })
    await Promise.all([again.stop(), again.stop()])
    again.on('reading', () => { after++ })
    await again.stop()
    expect(again.running).toBe(false)
    expect(await codeOfAsync(() => again.sample())).toBe('ERR_ABORTED')
    expect(after).toBe(0)
  })

  it('refuses a broker mode without a broker, and a bad interval', async () => {
    expect(() => new Device({ mode: 'broker' })).toThrow(expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }) as Error)
    expect(() => new Device({ interval: 0 })).toThrow(expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }) as Error)
    expect(await codeOfAsync(() => createDevice({ sensors: 'thermometer', mesh: { mdns: false } }, { transport: memoryNet(6).createTransport({}, { keys: keysFor(1) }), keys: keysFor(1) }))).toBe('ERR_BAD_ARGUMENT')
  })

  it('groups a sample by topic: one frame per device topic, events apart', () => {
    const batches = batchByTopic([
      { sensor: 'temperature', topic: 'telemetry', records: [{ n: 'temperature', v: 20 }] },
      { sensor: 'door', topic: 'events/door', records: [{ n: 'door', vb: true }] },
      { sensor: 'humidity', topic: 'telemetry', records: [{ n: 'humidity', v: 40 }] }
    ])
    expect(batches).toEqual([
      { topic: 'telemetry', records: [{ n: 'temperature', v: 20 }, { n: 'humidity', v: 40 }], sensors: ['temperature', 'humidity'] },
      { topic: 'events/door', records: [{ n: 'door', vb: true }], sensors: ['door'] }
    ])
    expect(batchByTopic([{ sensor: 'a', topic: 't', records: [{ n: 'a', v: 1 }] }, { sensor: 'b', topic: 't', records: [{ n: 'b', v: 1 }] }], 1)).toHaveLength(2)
  })
})
