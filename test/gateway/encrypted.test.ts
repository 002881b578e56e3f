import { expect, it } from 'vitest'
import {
  decodeFrame, decryptFrame, encodeFrame, generateReaderKey, jsonTopic, memorySequence, parseFleetPolicy, readerPublic, signReaderGrants, telemetryTopic, toBase64url,
  verifyFrame, type ReaderKey
} from '../../shared/index.js'
import { createMemoryOutbox, type Outbox } from '../../firmware-sim/index.js'
import { describeNet } from '../helpers/netns.js'
import { join } from 'node:path'
import { codeOf, tempDir } from '../shared/support.js'
import { Waiter, gateway, keysFor, startDevice, subscriber } from '../firmware/device-support.js'
import { createMemoryNetwork } from '../../mesh/testing.js'
import type { Reading } from '../../gateway/index.js'
import {
  barrier, connectClient, connectDevice, linked, meshAddress, mqttUrl, nextDelivery, nextEvent, seededKeys, startGateway, startMeshGateway, startMeshNode
} from './support.js'

/**
 * Readings only authorized readers can read (issue 13), end to end over a real MQTT broker: a
 * device encrypts to the owner-granted readers before its outbox; the gateway's broker verifies
 * and forwards without reading; a gateway holding a granted reader key mirrors JSON, one without
 * forwards and counts the ciphertext; a plain MQTT subscriber sees only ciphertext.
 */

const owner = seededKeys(401)
const policy = parseFleetPolicy({ fleet: 'default', owners: [{ name: 'owner', key: toBase64url(owner.publicKey) }] })
const gwReader = generateReaderKey()
const bob = generateReaderKey()
const eve = generateReaderKey()
const grants = (version: number, ...readers: ReaderKey[]): Uint8Array =>
  signReaderGrants({ policy, version, readers: readers.map((r, i) => ({ publicKey: r.publicKey, name: `r${i}` })), owners: [owner] })

/** A real memory outbox whose puts are recorded: what the device keeps while a path is down. */
function watchedOutbox (): { outbox: Outbox, puts: Uint8Array[] } {
  const inner = createMemoryOutbox({ paths: ['broker'] })
  const puts: Uint8Array[] = []
  const outbox = new Proxy(inner, {
    get (target, property) {
      if (property === 'put') return async (seq: number, frame: Uint8Array) => { puts.push(frame); await target.put(seq, frame) }
      const value = Reflect.get(target, property) as unknown
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value
    }
  })
  return { outbox, puts }
}

const contains = (haystack: Uint8Array, needle: string): boolean => Buffer.from(haystack).includes(Buffer.from(needle))

describeNet('encrypted readings over MQTT', () => {
  it('a device encrypts before its outbox; the broker and a plain subscriber see ciphertext only; the gateway reader mirrors JSON; a revoked reader reads no new frame', async () => {
    const waiter = new Waiter()
    const { gateway: gw, readings, url } = await gateway(waiter, { readerKey: gwReader })
    const keys = keysFor(41)
    const plain = await subscriber(url, telemetryTopic('default', keys.id), waiter)
    await plain.client.subscribeAsync(jsonTopic('default', keys.id), { qos: 1 })
    const mirrored: unknown[] = []
    plain.client.on('message', (topic, payload) => { if (topic === jsonTopic('default', keys.id)) { mirrored.push(JSON.parse(payload.toString())); waiter.kick() } })
    const { outbox, puts } = watchedOutbox()
    const state = { keys, sequence: memorySequence(1), outbox }
    const first = await startDevice({ mode: 'broker', broker: { url }, sensors: 'temperature', fleetFile: policy, encrypt: { readers: grants(1, gwReader, bob) } }, state, waiter)
    await waiter.until(() => plain.seqs.length >= 3 && mirrored.length >= 3, 'three encrypted readings and their JSON mirror')
    await first.device.stop()

    // The outbox and the wire hold only the encrypted form: no sensor name in the clear.
    expect(puts.length).toBeGreaterThanOrEqual(3)
    const names = new Set<string | undefined>()
    for (const frame of [...puts, ...plain.frames.values()]) {
      expect(contains(frame, 'temperature')).toBe(false)
      const decoded = decodeFrame(frame)
      verifyFrame(decoded, keys.publicKey) // anyone verifies the origin
      expect(decoded.records).toEqual([])
      for (const r of decryptFrame(decoded, bob).records) names.add(r.n) // bob, a granted reader, reads
      expect(codeOf(() => decryptFrame(decoded, eve))).toBe('ERR_NOT_A_READER')
    }
    expect(names).toContain('temperature')
    // The gateway, a reader, decrypted them for its registry and its JSON mirror.
    expect(readings.every((r) => r.encrypted?.readable === true && r.records.length > 0)).toBe(true)
    expect(readings.some((r) => r.records.some((x) => x.n === 'temperature'))).toBe(true)
    expect(mirrored.some((m) => (m as Array<{ n?: string, u?: string }>).some((r) => r.n === 'temperature' && r.u === 'Cel'))).toBe(true)
    expect(gw.ingest.decryptor.counters.decrypted).toBe(readings.length)

    // The owners revoke bob (version 2): frames the device sends with it are not readable by bob.
    const seen = plain.seqs.length
    const second = await startDevice({ mode: 'broker', broker: { url }, sensors: 'temperature', fleetFile: policy, encrypt: { readers: grants(2, gwReader) } }, state, waiter)
    await waiter.until(() => plain.seqs.length >= seen + 2, 'two readings after the revocation')
    await second.device.stop()
    const after = plain.seqs.slice(seen).map((seq) => decodeFrame(plain.frames.get(seq) as Uint8Array))
    for (const frame of after) {
      expect(codeOf(() => decryptFrame(frame, bob))).toBe('ERR_NOT_A_READER')
      expect(decryptFrame(frame, gwReader).records.length).toBeGreaterThan(0)
    }
  })

  it('a gateway without a reader key forwards and stores the ciphertext, counts it, mirrors no JSON, and does not crash', async () => {
    const gw = await startGateway({ http: { host: '127.0.0.1', port: 0 } })
    const device = seededKeys(402)
    const client = await connectDevice(mqttUrl(gw), device, { name: 'sealed' })
    const watcher = await connectClient(mqttUrl(gw))
    await watcher.client.subscribeAsync([telemetryTopic('default', device.id), jsonTopic('default', device.id)], { qos: 1 })
    const frame = Buffer.from(encodeFrame({ keys: device, seq: 1, time: 1_800_000_000, records: [{ n: 'temp', u: 'Cel', v: 21.5 }], encrypt: { readers: [readerPublic(bob.publicKey)] } }))
    const accepted = nextEvent(gw, 'reading')
    await client.publishFrame(1, frame)
    const reading = await accepted as { records: unknown[], encrypted?: { readable: boolean } }
    expect(reading.records).toEqual([])
    expect(reading.encrypted).toEqual({ readable: false })
    const got = await watcher.next((t) => t === telemetryTopic('default', device.id))
    expect(Buffer.from(got.payload).equals(frame)).toBe(true)
    expect(decryptFrame(decodeFrame(got.payload), bob).records[0]?.v).toBe(21.5)
    expect(gw.ingest.decryptor.counters).toEqual({ decrypted: 0, unread: 1 })
    expect(gw.counters).toMatchObject({ accepted: 1, jsonPublished: 0 })
    expect(gw.devices.get(device.id)).toMatchObject({ readings: 1, lastSeq: 1 })
    const metrics = await fetch(`http://127.0.0.1:${gw.ports.http ?? 0}/metrics`)
    expect(await metrics.text()).toMatch(/^iotmesh_gateway_encrypted_readings_total\{read="no"[^}]*\} 1$/m)
    expect(watcher.messages.some((m) => m.topic === jsonTopic('default', device.id))).toBe(false)
  })

  it('the store keeps the ciphertext; the history API of a gateway with the reader key decrypts it, one without shows no values', async () => {
    const db = join(await tempDir(), 'gateway.db')
    const device = seededKeys(403)
    const T0 = 1_800_000_000
    const send = (gw: Awaited<ReturnType<typeof startGateway>>, seq: number): void => {
      const frame = encodeFrame({ keys: device, seq, time: T0 + seq, records: [{ n: 'temp', u: 'Cel', v: seq }], encrypt: { readers: [readerPublic(gwReader.publicKey)] } })
      expect(gw.submit(telemetryTopic('default', device.id), frame, { path: 'broker' }).verdict).toBe('accepted')
    }
    const reader = await startGateway({ http: { host: '127.0.0.1', port: 0 }, store: db, readerKey: gwReader })
    reader.learnKey(device.publicKey, { source: 'api' })
    for (let seq = 1; seq <= 3; seq++) send(reader, seq)
    await reader.state?.settled()
    const stored = await reader.state?.store.history({ origin: device.id, limit: 10 })
    expect(stored?.map((r) => decodeFrame(r.frame).encrypted !== undefined)).toEqual([true, true, true]) // ciphertext at rest
    const history = async (gw: Awaited<ReturnType<typeof startGateway>>, q: string): Promise<Record<string, unknown>> =>
      await (await fetch(`http://127.0.0.1:${gw.ports.http ?? 0}/api/devices/${device.id}/history${q}`)).json() as Record<string, unknown>
    const read = await history(reader, '')
    expect((read.readings as Array<{ values: unknown[] }>).map((r) => r.values)).toEqual([1, 2, 3].map((v) => [{ n: 'temp', u: 'Cel', t: T0 + v, v }]))
    const chart = await history(reader, `?since=${T0}&until=${T0 + 60}&step=1m`)
    expect(chart.series).toEqual([{ n: 'temp', u: 'Cel', points: [{ t: T0, avg: 2, min: 1, max: 3, count: 3 }] }])
    await reader.stop()

    const blind = await startGateway({ http: { host: '127.0.0.1', port: 0 }, store: db })
    const unread = await history(blind, '')
    expect((unread.readings as Array<{ seq: number, values: unknown[] }>).map((r) => [r.seq, r.values])).toEqual([[1, []], [2, []], [3, []]])
  })

  it('over the mesh: a relay routes, verifies and delivers encrypted frames unread; the gateway two hops away reads them', async () => {
    const net = createMemoryNetwork({ seed: 43 })
    const a = await startMeshNode(net, 'a', seededKeys(404))
    const relay = await startMeshNode(net, 'relay', seededKeys(405), [meshAddress(a)])
    const gw = await startMeshGateway(net, { readerKey: gwReader, mesh: { host: 'gw', mdns: false, dialTarget: 0, announceLinks: 0, peers: [meshAddress(relay)] } })
    await linked(relay, a.id)
    await linked(gw.mesh!, relay.id)
    await barrier([gw.mesh, relay], [relay, a], [a, relay], [relay, gw.mesh])
    const atRelay = nextDelivery(relay, (d) => d.origin === a.id)
    const atGateway = nextEvent<Reading>(gw, 'reading', (r) => r.origin === a.id)
    const frame = encodeFrame({ keys: seededKeys(404), seq: 7, time: 1_800_000_000, records: [{ n: 'temp', u: 'Cel', v: 19.5 }], encrypt: { readers: [readerPublic(gwReader.publicKey)] } })
    expect(a.inject(frame).verdict).not.toBe('refused')
    const relayed = await atRelay
    expect(relayed.records).toEqual([]) // the relay verified and delivered it without reading it
    expect(contains(relayed.frame, 'temp')).toBe(false)
    const reading = await atGateway
    expect([reading.path, reading.seq, reading.encrypted, reading.records]).toEqual(['mesh', 7, { readable: true }, [{ n: 'temp', u: 'Cel', v: 19.5, bt: 1_800_000_000, seq: 7 }]])
  })
})
