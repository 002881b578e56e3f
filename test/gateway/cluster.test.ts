import { describe, expect, it } from 'vitest'
import { encodeFrame, jsonTopic, onlineStatus, statusTopic, telemetryTopic, toHex, topicFilters } from '../../shared/index.js'
import { type Gateway } from '../../gateway/index.js'
import { redisOptions } from '../../gateway/cluster.js'
import { describeNet } from '../helpers/netns.js'
import { connectClient, connectDevice, deviceToken, findBinary, freePort, makeFrame, mqttUrl, nextEvent, seededKeys, spawnServer, startGateway } from './support.js'

const REDIS = findBinary('/usr/bin/redis-server', '/usr/sbin/redis-server')
if (REDIS === undefined) console.warn('SKIPPED: the cluster tests need redis-server (Debian package redis-server): apt-get install -y redis-server')

const alice = seededKeys(51)

async function startRedis (): Promise<string> {
  const port = await freePort()
  await spawnServer(REDIS ?? 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], /Ready to accept connections/)
  return `redis://127.0.0.1:${port}`
}

describe('cluster options', () => {
  it('reads redis:// URLs', () => {
    expect(redisOptions('redis://127.0.0.1:6380/2')).toEqual({ host: '127.0.0.1', port: 6380, db: 2 })
    expect(redisOptions('redis://:pw@h')).toEqual({ host: 'h', port: 6379, db: 0, password: 'pw' })
    expect(() => redisOptions('http://x')).toThrow(expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }))
  })
})

describeNet('two embedded gateways sharing state through a real Redis', () => {
  describe.skipIf(REDIS === undefined)('with redis-server installed', () => {
    it('a device connected to gateway 1 reaches a subscriber on gateway 2: frame, JSON and retained status', async () => {
      const redis = await startRedis()
      const one: Gateway = await startGateway({ cluster: { redis } })
      const two: Gateway = await startGateway({ cluster: { redis } })
      const subscriber = await connectClient(mqttUrl(two))
      await subscriber.client.subscribeAsync([topicFilters.telemetry(), topicFilters.json()], { qos: 1 })

      const learned = nextEvent(two, 'key', (k: { deviceId: string }) => k.deviceId === alice.id)
      const device = await connectDevice(mqttUrl(one), alice, { name: 'cellar' })
      await learned // gateway 2 follows statuses published on gateway 1
      expect(two.devices.get(alice.id)).toMatchObject({ online: true, name: 'cellar' })

      const frame = makeFrame(alice, 1)
      await device.publishFrame(1, frame)
      const got = await subscriber.next((t) => t === telemetryTopic('default', alice.id))
      expect(toHex(got.payload)).toBe(toHex(frame))
      const json = await subscriber.next((t) => t === jsonTopic('default', alice.id))
      expect(JSON.parse(json.payload.toString())[0]).toMatchObject({ n: 'temp', v: 20.1, seq: 1 })
      // Verified and mirrored once, by the gateway the device is connected to.
      expect(one.counters.accepted).toBe(1)
      expect(two.counters.accepted).toBe(0)
      expect(subscriber.messages.filter((m) => m.topic.endsWith('/json'))).toHaveLength(1)

      // The retained status lives in Redis: a client of gateway 2 gets it on subscribe.
      const late = await connectClient(mqttUrl(two))
      await late.client.subscribeAsync(statusTopic('default', alice.id), { qos: 1 })
      expect(JSON.parse((await late.next()).payload.toString())).toMatchObject({ state: 'online', name: 'cellar' })
    })

    it('failover in the secure default: the device moves to the other gateway, and forged frames reach no one on either, across restarts', async () => {
      const redis = await startRedis()
      const mallory = seededKeys(52)
      const secure = { cluster: { redis }, allowAnonymous: false, credentials: { reader: 'r' } }
      const one: Gateway = await startGateway(secure)
      const two: Gateway = await startGateway(secure)
      const watchers = await Promise.all([one, two].map(async (g) => {
        const w = await connectClient(mqttUrl(g), { username: 'reader', password: 'r' })
        await w.client.subscribeAsync(topicFilters.telemetry(), { qos: 1 })
        return w
      }))
      const honest = new Set<string>()
      const drops: string[] = []
      for (const g of [one, two]) g.on('drop', (d) => { drops.push(`${d.reason}:${d.code}`) })
      let seq = 0
      // Alice on gateway 1, then (gateway 1's broker down) on gateway 2, then back on gateway 1 restarted.
      for (const [step, at] of [[0, one], [1, two], [2, one]] as const) {
        if (step === 1) await one.stopBroker()
        if (step === 2) await one.startBroker()
        const watcher = step === 2 ? await connectClient(mqttUrl(one), { username: 'reader', password: 'r' }) : undefined
        await watcher?.client.subscribeAsync(topicFilters.telemetry(), { qos: 1 })
        const id = `alice-${step}`
        const device = await connectDevice(mqttUrl(at), alice, { mqtt: { clientId: id, username: alice.id, password: deviceToken(alice, id) } })
        const attacker = await connectClient(mqttUrl(at), { clientId: `m-${step}`, username: mallory.id, password: deviceToken(mallory, `m-${step}`) })
        seq++
        const frame = makeFrame(alice, seq)
        honest.add(toHex(frame))
        await device.publishFrame(seq, frame)
        const forged = Buffer.from(encodeFrame({ keys: { ...mallory, id: alice.id }, seq: seq + 1000, time: 1_767_225_600, records: [{ n: 'temp', v: 99 }] }))
        await attacker.client.publishAsync(telemetryTopic('default', alice.id), forged, { qos: 1 })
        await attacker.client.publishAsync(telemetryTopic('default', alice.id), frame, { qos: 1 })
        await attacker.client.publishAsync(statusTopic('default', alice.id), onlineStatus({ publicKey: alice.publicKey, name: 'evil' }), { qos: 1, retain: true })
        const live = step === 1 ? [watchers[1]] : [watchers[1], watcher ?? watchers[0]]
        for (const w of live) expect(toHex((await w?.next((_t, p) => toHex(p) === toHex(frame)))?.payload ?? Buffer.alloc(0))).toBe(toHex(frame))
      }
      for (const w of watchers) expect(w.messages.filter((m) => !honest.has(toHex(m.payload)))).toEqual([])
      expect(drops.sort()).toEqual([...Array(3).fill('bad_signature:ERR_BAD_SIGNATURE'), ...Array(3).fill('duplicate:ERR_REPLAY'), ...Array(3).fill('status_not_claimed:ERR_TOPIC_MISMATCH')].sort())
      expect(two.devices.get(alice.id)?.name).not.toBe('evil')
    })

    it('a gateway started later learns keys from the retained statuses in Redis', async () => {
      const redis = await startRedis()
      const one = await startGateway({ cluster: { redis } })
      const online = nextEvent(one, 'status')
      await connectDevice(mqttUrl(one), alice)
      await online
      const three = await startGateway({ cluster: { redis } })
      expect(three.ingest.keys.get(alice.id)).toBeDefined()
      expect(three.devices.get(alice.id)?.online).toBe(true)
    })
  })
})
