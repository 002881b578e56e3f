import { describe, expect, it } from 'vitest'
import { jsonTopic, statusTopic, telemetryTopic, toHex, topicFilters } from '../../shared/index.js'
import { type Gateway } from '../../gateway/index.js'
import { redisOptions } from '../../gateway/cluster.js'
import { describeNet } from '../helpers/netns.js'
import { connectClient, connectDevice, findBinary, freePort, makeFrame, mqttUrl, nextEvent, seededKeys, spawnServer, startGateway } from './support.js'

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
