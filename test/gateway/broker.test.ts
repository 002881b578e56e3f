import { once } from 'node:events'
import { connect as connectTcp } from 'node:net'
import { describe, expect, it } from 'vitest'
import {
  deviceBaseName, fromBase64, jsonTopic, offlineStatus, onlineStatus, openFrame, statusTopic, telemetryTopic, toHex, topicFilters, valueTopic
} from '../../shared/index.js'
import { type DropEvent } from '../../gateway/index.js'
import { describeNet } from '../helpers/netns.js'
import { connectClient, connectDevice, makeFrame, mqttUrl, nextEvent, seededKeys, startGateway } from './support.js'

const alice = seededKeys(11)
const bob = seededKeys(12)

describeNet('embedded broker', () => {
  it('round trip: device -> broker -> subscriber, which verifies the exact bytes with only the pk from the status', async () => {
    const gateway = await startGateway()
    const url = mqttUrl(gateway)
    const subscriber = await connectClient(url)
    await subscriber.client.subscribeAsync([topicFilters.status(), topicFilters.telemetry(), topicFilters.json()], { qos: 1 })
    const device = await connectDevice(url, alice, { name: 'kitchen' })
    const frame = makeFrame(alice, 1)
    const accepted = nextEvent(gateway, 'reading')
    await device.publishFrame(1, frame)
    await accepted

    const status = await subscriber.next((t) => t === statusTopic('default', alice.id))
    const pk = fromBase64((JSON.parse(status.payload.toString()) as { pk: string }).pk)
    const got = await subscriber.next((t) => t === telemetryTopic('default', alice.id))
    expect(toHex(got.payload)).toBe(toHex(frame))
    expect(openFrame(got.payload, pk ?? new Uint8Array()).origin).toBe(alice.id)

    const json = await subscriber.next((t) => t === jsonTopic('default', alice.id))
    expect(JSON.parse(json.payload.toString())).toEqual([{ bn: deviceBaseName(alice.id), bt: 1_767_225_601, n: 'temp', u: 'Cel', v: 20.1, seq: 1 }])
    expect(gateway.devices.get(alice.id)).toMatchObject({ online: true, name: 'kitchen', readings: 1, lastSeq: 1, path: 'broker' })
    expect(gateway.counters).toMatchObject({ accepted: 1, jsonPublished: 1 })
  })

  it('serves MQTT over WebSocket too', async () => {
    const gateway = await startGateway()
    const subscriber = await connectClient(`ws://127.0.0.1:${gateway.ports.ws ?? 0}/mqtt`)
    await subscriber.client.subscribeAsync(topicFilters.json(), { qos: 1 })
    const device = await connectDevice(mqttUrl(gateway), alice)
    await device.publishFrame(1)
    const json = await subscriber.next()
    expect(json.topic).toBe(jsonTopic('default', alice.id))
  })

  it('status: retained online on connect, offline by last will when the connection dies', async () => {
    const gateway = await startGateway()
    const url = mqttUrl(gateway)
    const online = nextEvent(gateway, 'status', (e: { deviceId: string }) => e.deviceId === alice.id)
    const device = await connectDevice(url, alice)
    await online
    expect(gateway.devices.get(alice.id)?.online).toBe(true)

    const late = await connectClient(url)
    await late.client.subscribeAsync(statusTopic('default', alice.id), { qos: 1 })
    const retained = await late.next()
    expect(retained.retain).toBe(true)
    expect(JSON.parse(retained.payload.toString())).toMatchObject({ state: 'online' })

    const offline = nextEvent(gateway, 'status', (e: { status?: { state: string } }) => e.status?.state === 'offline')
    device.client.stream.destroy() // no DISCONNECT: the broker publishes the will (MQTT 3.1.1 §3.1.2.5)
    await offline
    const will = await late.next()
    expect(JSON.parse(will.payload.toString())).toEqual({ state: 'offline' })
    expect(gateway.devices.get(alice.id)?.online).toBe(false)

    const later = await connectClient(url)
    await later.client.subscribeAsync(statusTopic('default', alice.id), { qos: 1 })
    expect(JSON.parse((await later.next()).payload.toString())).toEqual({ state: 'offline' })
  })

  it('ignores and counts a status whose pk does not derive to the topic id; it is neither forwarded nor retained', async () => {
    const gateway = await startGateway()
    const url = mqttUrl(gateway)
    const watcher = await connectClient(url)
    await watcher.client.subscribeAsync(topicFilters.status(), { qos: 1 })
    const liar = await connectClient(url)
    const drop = nextEvent<DropEvent>(gateway, 'drop')
    await liar.client.publishAsync(statusTopic('default', alice.id), onlineStatus({ publicKey: bob.publicKey }), { qos: 1, retain: true })
    expect(await drop).toMatchObject({ reason: 'status_key_mismatch', code: 'ERR_WRONG_KEY', deviceId: alice.id })
    expect(gateway.counters.dropped.status_key_mismatch).toBe(1)
    // The liar cannot mark Alice offline either: it never claimed her id.
    await liar.client.publishAsync(statusTopic('default', alice.id), offlineStatus(), { qos: 1, retain: true })
    expect(gateway.counters.dropped.status_not_claimed).toBe(1)
    // The honest status goes through, and is the only one anyone saw.
    await connectDevice(url, alice)
    const seen = await watcher.next()
    expect(JSON.parse(seen.payload.toString())).toMatchObject({ state: 'online', pk: onlineStatus({ publicKey: alice.publicKey }).match(/"pk":"([^"]+)"/)?.[1] })
    expect(watcher.messages).toHaveLength(1)
  })

  it('a frame from a signer with no key yet is held, and forwarded once the status arrives', async () => {
    const gateway = await startGateway()
    const url = mqttUrl(gateway)
    const subscriber = await connectClient(url)
    await subscriber.client.subscribeAsync(topicFilters.telemetry(), { qos: 1 })
    const relay = await connectClient(url) // publishes Alice's frame before anyone knows her key
    const frame = makeFrame(alice, 3)
    const held = nextEvent(gateway.ingest, 'held')
    const published = relay.client.publishAsync(telemetryTopic('default', alice.id), frame, { qos: 1 })
    expect(await held).toMatchObject({ deviceId: alice.id, seq: 3 })
    expect(gateway.ingest.heldCount).toBe(1)
    expect(subscriber.messages).toHaveLength(0)
    await connectDevice(url, alice)
    await published
    expect(toHex((await subscriber.next()).payload)).toBe(toHex(frame))
    expect(gateway.counters).toMatchObject({ held: 1, released: 1, accepted: 1 })
  })

  it('a frame from an unknown signer is dropped after the hold time, never forwarded', async () => {
    const gateway = await startGateway({ holdMs: 200 })
    const url = mqttUrl(gateway)
    const subscriber = await connectClient(url)
    await subscriber.client.subscribeAsync(topicFilters.telemetry(), { qos: 1 })
    const stranger = await connectDevice(url, alice, { status: false })
    const drop = nextEvent<DropEvent>(gateway, 'drop')
    await stranger.publishFrame(1) // QoS 1: acknowledged (MQTT-3.3.5-2), not delivered
    expect(await drop).toMatchObject({ reason: 'unknown_signer', code: 'ERR_UNKNOWN_SIGNER', deviceId: alice.id, seq: 1 })
    // The stranger's connection is intact and later frames work once it announces itself.
    await stranger.client.publishAsync(statusTopic('default', alice.id), onlineStatus({ publicKey: alice.publicKey }), { qos: 1, retain: true })
    await stranger.publishFrame(2)
    const got = await subscriber.next()
    expect(toHex(got.payload)).toBe(toHex(makeFrame(alice, 2)))
    expect(subscriber.messages).toHaveLength(1)
  })

  it('refuses a frame published under another device id; the broker and other clients carry on', async () => {
    const gateway = await startGateway()
    const url = mqttUrl(gateway)
    const subscriber = await connectClient(url)
    await subscriber.client.subscribeAsync(topicFilters.telemetry(), { qos: 1 })
    const mallory = await connectDevice(url, bob)
    const honest = await connectDevice(url, alice)
    const drop = nextEvent<DropEvent>(gateway, 'drop')
    await mallory.publishFrame(1, makeFrame(bob, 1), telemetryTopic('default', alice.id))
    expect(await drop).toMatchObject({ reason: 'topic_mismatch', code: 'ERR_TOPIC_MISMATCH' })
    await honest.publishFrame(1)
    await mallory.publishFrame(2)
    const first = await subscriber.next()
    const second = await subscriber.next()
    expect([first.topic, second.topic].sort()).toEqual([telemetryTopic('default', alice.id), telemetryTopic('default', bob.id)].sort())
    expect(mallory.client.connected).toBe(true)
    expect(subscriber.messages).toHaveLength(2)
  })

  it("with onRefusal 'disconnect', closes the connection that broke the rules", async () => {
    const gateway = await startGateway({ onRefusal: 'disconnect' })
    const url = mqttUrl(gateway)
    const mallory = await connectDevice(url, bob)
    const closed = nextEvent(mallory.client, 'close')
    mallory.client.publish(telemetryTopic('default', alice.id), makeFrame(bob, 1), { qos: 0 })
    await closed
    expect(gateway.counters.dropped.topic_mismatch).toBe(1)
  })

  it('drops bad signatures, malformed, oversized, unknown-fleet frames and client …/json, counted, delivering nothing', async () => {
    const gateway = await startGateway({ fleet: 'plant-a' })
    const url = mqttUrl(gateway)
    const subscriber = await connectClient(url)
    await subscriber.client.subscribeAsync('iotmesh/#', { qos: 1 })
    const device = await connectDevice(url, alice, { fleet: 'plant-a' })
    await subscriber.next() // the status
    const topic = telemetryTopic('plant-a', alice.id)
    const forged = makeFrame(alice, 1)
    forged[forged.length - 1] = (forged[forged.length - 1] as number) ^ 0x80
    await device.publishFrame(1, forged, topic)
    await device.publishFrame(2, Buffer.from('hello'), topic)
    await device.publishFrame(3, Buffer.alloc(20_000, 0xd2), topic)
    await device.publishFrame(4, makeFrame(alice, 4), telemetryTopic('plant-b', alice.id))
    await device.client.publishAsync(jsonTopic('plant-a', alice.id), '[{"n":"temp","v":99}]', { qos: 1 })
    await device.publishFrame(5, undefined, topic)
    const next = await subscriber.next((t) => t === topic)
    expect(toHex(next.payload)).toBe(toHex(makeFrame(alice, 5)))
    await subscriber.next((t) => t === jsonTopic('plant-a', alice.id))
    await subscriber.next((t) => t === valueTopic('plant-a', alice.id, 'temp'))
    // Nothing else reached the subscriber: the status, then frame 5, its JSON and its value for Home Assistant (…/value/temp).
    expect(subscriber.messages.map((m) => m.topic.split('/').pop()).sort()).toEqual(['json', 'status', 'telemetry', 'temp'])
    expect(gateway.counters.dropped).toMatchObject({ bad_signature: 1, malformed: 1, frame_too_large: 1, unknown_fleet: 1, json_forbidden: 1 })
    expect(gateway.devices.get(alice.id)).toMatchObject({ signatureFailures: 1, readings: 1 })
    expect(device.client.connected).toBe(true)
  })

  it('requires credentials when a credentials map is given', async () => {
    const gateway = await startGateway({ credentials: { sensor: 's3cret' } })
    const url = mqttUrl(gateway)
    await expect(connectClient(url, { username: 'sensor', password: 'wrong' })).rejects.toThrow()
    await expect(connectClient(url)).rejects.toThrow()
    const ok = await connectClient(url, { username: 'sensor', password: 's3cret' })
    expect(ok.client.connected).toBe(true)
  })

  it('mesh path (bridge extension point): a submitted frame is published on MQTT; the same reading by the broker too appears once', async () => {
    const gateway = await startGateway()
    const url = mqttUrl(gateway)
    const subscriber = await connectClient(url)
    await subscriber.client.subscribeAsync([topicFilters.telemetry(), topicFilters.json()], { qos: 1 })
    expect(gateway.learnKey(alice.publicKey, { source: 'mdns' })).toBe('added')
    const frame = makeFrame(alice, 1)
    expect(gateway.submit(telemetryTopic('default', alice.id), frame, { path: 'mesh', from: 'neighbour' }).verdict).toBe('accepted')
    expect(toHex((await subscriber.next((t) => t.endsWith('/telemetry'))).payload)).toBe(toHex(frame))
    await subscriber.next((t) => t.endsWith('/json'))
    // A hybrid device also sends it to the broker: a duplicate, acknowledged and not delivered again.
    const device = await connectDevice(url, alice)
    const drop = nextEvent<DropEvent>(gateway, 'drop')
    await device.publishFrame(1, frame)
    expect(await drop).toMatchObject({ reason: 'duplicate', code: 'ERR_REPLAY' })
    await device.publishFrame(2)
    await subscriber.next((t) => t.endsWith('/telemetry'))
    expect(subscriber.messages.filter((m) => m.topic.endsWith('/telemetry'))).toHaveLength(2)
    expect(gateway.devices.get(alice.id)).toMatchObject({ readings: 2, path: 'both' })
    expect(gateway.counters.acceptedByPath).toEqual({ broker: 1, mesh: 1 })
  })

  it('start and stop are idempotent; stop disconnects clients, closes ports and emits nothing after', async () => {
    const gateway = await startGateway()
    await gateway.start()
    const port = gateway.ports.mqtt ?? 0
    const device = await connectDevice(mqttUrl(gateway), alice)
    let events = 0
    gateway.on('reading', () => { events++ })
    const closed = nextEvent(device.client, 'close')
    await Promise.all([gateway.stop(), gateway.stop()])
    await closed
    await gateway.stop()
    expect(events).toBe(0)
    const refused = connectTcp(port, '127.0.0.1')
    const [err] = await once(refused, 'error') as [NodeJS.ErrnoException]
    expect(err.code).toBe('ECONNREFUSED')
    await expect(gateway.start()).rejects.toMatchObject({ code: 'ERR_BAD_ARGUMENT' })
  })

  it('supports await using', async () => {
    const ports: number[] = []
    {
      await using gateway = await startGateway()
      ports.push(gateway.ports.mqtt ?? 0)
    }
    const port = ports[0] ?? 0
    expect(port).toBeGreaterThan(0)
    const socket = connectTcp(port, '127.0.0.1')
    const [err] = await once(socket, 'error') as [NodeJS.ErrnoException]
    expect(err.code).toBe('ECONNREFUSED')
  })
})

describe('gateway without start', () => {
  it('stop before start is a no-op', async () => {
    const { Gateway } = await import('../../gateway/index.js')
    const gateway = new Gateway()
    await gateway.stop()
    await gateway.stop()
    expect(gateway.ports).toEqual({})
  })
})
