import mqtt from 'mqtt'
import { expect, it, onTestFinished } from 'vitest'
import { encodeFrame, telemetryTopic, toHex, topicFilters } from '../../shared/index.js'
import { createGateway, type DropEvent } from '../../gateway/index.js'
import { describeNet } from '../helpers/netns.js'
import { connectClient, connectDevice, makeFrame, mqttUrl, nextEvent, seededKeys, startGateway } from './support.js'

describeNet('the embedded broker restarts', () => {
  it('stop then start listens again on the same port, and clients reconnect', async () => {
    const gateway = await createGateway({ host: '127.0.0.1', port: 0, wsPort: false, allowAnonymous: true }) // an anonymous client: an open LAN broker
    onTestFinished(async () => { await gateway.stop() })
    const port = gateway.ports.mqtt as number
    const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 50 })
    onTestFinished(async () => { await client.endAsync(true) })
    await new Promise<void>((resolve) => { client.once('connect', () => { resolve() }) })
    await gateway.stopBroker()
    await new Promise<void>((resolve) => { client.once('offline', () => { resolve() }) })
    await gateway.startBroker()
    expect(gateway.ports.mqtt).toBe(port)
    await new Promise<void>((resolve) => { client.once('connect', () => { resolve() }) })
    expect(gateway.connectedClients).toBe(1)
  })

  it('the gatekeeper survives restarts: after each, a forged frame, a replay and a frame on another id reach no subscriber', async () => {
    const alice = seededKeys(41)
    const mallory = seededKeys(42)
    const gateway = await startGateway()
    const url = mqttUrl(gateway)
    const device = await connectDevice(url, alice, { mqtt: { reconnectPeriod: 50 } })
    const attacker = await connectDevice(url, mallory, { mqtt: { reconnectPeriod: 50 } })
    const watcher = await connectClient(url, { reconnectPeriod: 50 })
    await watcher.client.subscribeAsync(topicFilters.telemetry(), { qos: 1 })
    let seq = 0
    for (let restart = 0; restart < 3; restart++) {
      const reconnected = Promise.all([device, attacker, watcher].map(async (c) => { await new Promise((resolve) => c.client.once('connect', resolve)) }))
      await gateway.stopBroker()
      await gateway.startBroker()
      await reconnected
      await watcher.client.subscribeAsync(topicFilters.telemetry(), { qos: 1 }) // a new broker has no sessions
      // The device announces itself again (retained status) and publishes one honest frame.
      seq++
      const honest = makeFrame(alice, seq)
      const accepted = nextEvent(gateway, 'reading', (r: { seq: number }) => r.seq === seq)
      await device.publishFrame(seq, honest)
      await accepted
      const forged = Buffer.from(encodeFrame({ keys: { ...mallory, id: alice.id }, seq: seq + 1000, time: 1_767_225_600, records: [{ n: 'temp', v: 99 }] }))
      const drops: DropEvent[] = []
      const onDrop = (d: DropEvent): void => { drops.push(d) }
      gateway.on('drop', onDrop)
      await attacker.client.publishAsync(telemetryTopic('default', alice.id), forged, { qos: 1 })
      await attacker.client.publishAsync(telemetryTopic('default', alice.id), honest, { qos: 1 }) // a replay
      await attacker.client.publishAsync(telemetryTopic('default', mallory.id), honest, { qos: 1 }) // Alice's frame under Mallory's id
      gateway.off('drop', onDrop)
      expect(drops.map((d) => d.reason).sort()).toEqual(['bad_signature', 'duplicate', 'topic_mismatch'])
      // The honest frame reached the watcher; nothing the gateway refused did.
      const got = await watcher.next((_t, p) => toHex(p) === toHex(honest))
      expect(toHex(got.payload)).toBe(toHex(honest))
    }
    const honestFrames = new Set([1, 2, 3].map((s) => toHex(makeFrame(alice, s))))
    expect(watcher.messages.filter((m) => !honestFrames.has(toHex(m.payload)))).toEqual([])
  })
})
