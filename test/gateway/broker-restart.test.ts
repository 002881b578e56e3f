import { spawn } from 'node:child_process'
import { connect } from 'node:net'
import mqtt from 'mqtt'
import { expect, it, onTestFinished } from 'vitest'
import { encodeFrame, onlineStatus, signDeviceToken, statusTopic, telemetryTopic, toHex, topicFilters, type KeyPair } from '../../shared/index.js'
import { createGateway, type DropEvent } from '../../gateway/index.js'
import { describeNet } from '../helpers/netns.js'
import { connectClient, connectDevice, findBinary, makeFrame, mqttUrl, nextEvent, seededKeys, startGateway } from './support.js'

const SUB = findBinary('/usr/bin/mosquitto_sub')

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

  it('a stop is an outage at once: a connection that never sent CONNECT does not hold it for the connect timeout', async () => {
    const gateway = await createGateway({ host: '127.0.0.1', port: 0, wsPort: false })
    onTestFinished(async () => { await gateway.stop() })
    const silent = connect(gateway.ports.mqtt as number, '127.0.0.1')
    silent.on('error', () => {})
    await new Promise((resolve) => silent.once('connect', resolve))
    const closed = new Promise((resolve) => silent.once('close', resolve))
    const started = performance.now()
    await gateway.stopBroker()
    // Aedes destroys a client that sent nothing after its connect timeout, 30 s; the stop waited for it.
    expect(performance.now() - started).toBeLessThan(5_000)
    await closed
    await gateway.startBroker()
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

  it('secure by default, after every restart: anonymous clients refused, old tokens refused, device rules kept, forged frames reach no one', async () => {
    const alice = seededKeys(43)
    const mallory = seededKeys(44)
    const gateway = await startGateway({ allowAnonymous: false, credentials: { reader: 'r' } })
    const url = mqttUrl(gateway)
    const token = (keys: KeyPair, clientId: string): string => signDeviceToken({ keys, clientId, fleet: 'default', now: Date.now(), cti: crypto.getRandomValues(new Uint8Array(8)) })
    const drops: Array<{ reason: string, code: string }> = []
    gateway.on('drop', (d) => { drops.push({ reason: d.reason, code: d.code }) })
    let seq = 0
    const honest = new Set<string>()
    let lastToken: string | undefined
    for (let restart = 0; restart < 3; restart++) {
      await gateway.stopBroker()
      await gateway.startBroker()
      drops.length = 0
      if (lastToken !== undefined) {
        // The token Alice used before the restart: a captured password, replayed to the new broker.
        const replay = await connectClient(url, { clientId: 'alice', username: alice.id, password: lastToken }).then(() => 'connected', () => 'refused')
        expect(replay).toBe('refused')
        expect(drops.splice(0).map((d) => d.code)).toEqual(['ERR_REPLAY'])
      }
      lastToken = token(alice, 'alice')
      // Every client signs in anew: devices with a fresh token, people with their password.
      const watcher = await connectClient(url, { username: 'reader', password: 'r' })
      await watcher.client.subscribeAsync(topicFilters.telemetry(), { qos: 1 })
      const device = await connectClient(url, { clientId: 'alice', username: alice.id, password: lastToken })
      const attacker = await connectClient(url, { clientId: 'mallory', username: mallory.id, password: token(mallory, 'mallory') })
      await device.client.publishAsync(statusTopic('default', alice.id), onlineStatus({ publicKey: alice.publicKey }), { qos: 1, retain: true })
      seq++
      const frame = makeFrame(alice, seq)
      honest.add(toHex(frame))
      await device.client.publishAsync(telemetryTopic('default', alice.id), frame, { qos: 1 })
      const forged = Buffer.from(encodeFrame({ keys: { ...mallory, id: alice.id }, seq: seq + 1000, time: 1_767_225_600, records: [{ n: 'temp', v: 99 }] }))
      await attacker.client.publishAsync(telemetryTopic('default', alice.id), forged, { qos: 1 })
      await attacker.client.publishAsync(telemetryTopic('default', alice.id), frame, { qos: 1 }) // a replay
      await attacker.client.publishAsync(telemetryTopic('default', mallory.id), frame, { qos: 1 }) // Alice's frame under Mallory's id
      await attacker.client.publishAsync(statusTopic('default', alice.id), '{"state":"offline"}', { qos: 1, retain: true })
      const denied = await attacker.client.subscribeAsync(topicFilters.telemetry(), { qos: 1 }).then(() => 'granted', () => 'denied')
      expect(denied).toBe('denied')
      if (SUB !== undefined) {
        const anonymous = spawn(SUB, ['-h', '127.0.0.1', '-p', String(gateway.ports.mqtt), '-t', '#', '-C', '1', '-W', '2'], { stdio: 'ignore' })
        onTestFinished(() => { if (anonymous.exitCode === null) anonymous.kill('SIGKILL') })
        expect(await new Promise((resolve) => anonymous.once('exit', resolve))).not.toBe(0)
      }
      expect((await watcher.next((_t, p) => toHex(p) === toHex(frame))).payload).toEqual(frame)
      expect(drops.map((d) => d.reason).sort()).toEqual([...(SUB === undefined ? [] : ['anonymous']), 'bad_signature', 'duplicate', 'status_not_claimed', 'subscribe_forbidden', 'topic_mismatch'])
      expect(watcher.messages.filter((m) => !honest.has(toHex(m.payload)))).toEqual([])
      expect(gateway.devices.get(alice.id)?.online).toBe(true)
      await Promise.all([watcher, device, attacker].map(async (c) => { await c.client.endAsync(true) }))
    }
  })
})
