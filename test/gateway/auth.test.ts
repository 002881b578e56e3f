import { spawn } from 'node:child_process'
import { connect as netConnect } from 'node:net'
import mqtt from 'mqtt'
import { describe, expect, it, onTestFinished } from 'vitest'
import {
  jsonTopic, onlineStatus, signDeviceToken, statusTopic, telemetryTopic, toBase64url, topicFilters, type KeyPair
} from '../../shared/index.js'
import type { DropEvent, Gateway, GatewayInit } from '../../gateway/index.js'
import { describeNet } from '../helpers/netns.js'
import { connectClient, findBinary, makeFrame, mqttUrl, nextEvent, seededKeys, startGateway } from './support.js'

/**
 * A broker that knows its clients (issue 11): every refusal provoked with a real anonymous
 * mosquitto_sub/mosquitto_pub (Debian mosquitto-clients) or a wrong device token, each asserted by
 * its code in the gateway's drop events (the gateway's log and live log) and counters (/metrics).
 */

const SUB = findBinary('/usr/bin/mosquitto_sub')
const PUB = findBinary('/usr/bin/mosquitto_pub')
if (SUB === undefined || PUB === undefined) console.warn('SKIPPED: the broker refusal tests need mosquitto_sub and mosquitto_pub: apt-get install -y mosquitto-clients')

const alice = seededKeys(61)
const mallory = seededKeys(62)
const READER = { reader: 'reader-secret-1' }

/** A secure gateway (the default: no allowAnonymous) with one user. */
async function secureGateway (init: GatewayInit = {}): Promise<Gateway> {
  return await startGateway({ allowAnonymous: false, credentials: READER, ...init })
}

/** A token as the device makes it, for `clientId`, at the gateway's time unless told otherwise. */
function token (keys: KeyPair, clientId: string, options: { now?: number, lifetimeSeconds?: number, cti?: Uint8Array, fleet?: string } = {}): string {
  return signDeviceToken({ keys, clientId, fleet: options.fleet ?? 'default', now: options.now ?? Date.now(), cti: options.cti ?? crypto.getRandomValues(new Uint8Array(8)), ...(options.lifetimeSeconds === undefined ? {} : { lifetimeSeconds: options.lifetimeSeconds }) })
}

/** Runs a mosquitto client to its end (bounded): its exit code and what it printed. */
async function mosquitto (bin: string | undefined, gateway: Gateway, args: string[]): Promise<{ code: number | null, out: string }> {
  const child = spawn(bin ?? 'false', ['-h', '127.0.0.1', '-p', String(gateway.ports.mqtt), ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  onTestFinished(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let out = ''
  child.stdout.on('data', (c: Buffer) => { out += c.toString() })
  child.stderr.on('data', (c: Buffer) => { out += c.toString() })
  const code = await new Promise<number | null>((resolve) => { child.once('exit', resolve) })
  return { code, out }
}

/** The drops of `reason` the gateway reports while `act` runs (and a little after, for the broker to settle). */
async function dropsDuring (gateway: Gateway, act: () => Promise<unknown>): Promise<DropEvent[]> {
  const drops: DropEvent[] = []
  const on = (d: DropEvent): void => { drops.push(d) }
  gateway.on('drop', on)
  try {
    await act()
  } finally {
    gateway.off('drop', on)
  }
  return drops
}

describeNet('the broker knows its clients', () => {
  describe.skipIf(SUB === undefined || PUB === undefined)('refusals, with real mosquitto clients', () => {
    it('an anonymous mosquitto_sub gets nothing: CONNACK 5, ERR_NOT_AUTHORIZED counted and reported', async () => {
      const gateway = await secureGateway()
      const drops = await dropsDuring(gateway, async () => await mosquitto(SUB, gateway, ['-t', '#', '-C', '1', '-W', '3']).then((r) => {
        expect(r.code).not.toBe(0)
        expect(r.out).toMatch(/not authori[sz]ed/i)
      }))
      expect(drops.map((d) => [d.reason, d.code])).toEqual([['anonymous', 'ERR_NOT_AUTHORIZED']])
      expect(gateway.counters.dropped.anonymous).toBe(1)
      const metrics = await gateway.metrics.metrics()
      expect(metrics).toMatch(/iotmesh_gateway_dropped_total\{reason="anonymous",fleet="default"\} 1/)
    })

    it('an anonymous mosquitto_pub cannot publish or retain anything', async () => {
      const gateway = await secureGateway()
      const drops = await dropsDuring(gateway, async () => {
        const r = await mosquitto(PUB, gateway, ['-t', 'junk/retained', '-r', '-m', 'x'.repeat(1000)])
        expect(r.code).not.toBe(0)
      })
      expect(drops.map((d) => d.code)).toEqual(['ERR_NOT_AUTHORIZED'])
      // A user sees no retained message there.
      const user = await connectClient(mqttUrl(gateway), { username: 'reader', password: READER.reader })
      await user.client.subscribeAsync('junk/#', { qos: 1 })
      await expect(user.next(() => true, 300)).rejects.toThrow(/no matching/)
    })

    it('a user with a password reads telemetry and the JSON mirror; a wrong password is ERR_BAD_CREDENTIALS', async () => {
      const gateway = await secureGateway()
      const url = mqttUrl(gateway)
      const wrong = await dropsDuring(gateway, async () => {
        const r = await mosquitto(SUB, gateway, ['-u', 'reader', '-P', 'guess', '-t', '#', '-C', '1', '-W', '3'])
        expect(r.code).not.toBe(0)
        expect(r.out).toMatch(/bad user name or password|not authori[sz]ed/i)
        const nobody = await mosquitto(SUB, gateway, ['-u', 'nobody', '-P', 'guess', '-t', '#', '-C', '1', '-W', '3'])
        expect(nobody.code).not.toBe(0)
      })
      expect(wrong.map((d) => [d.reason, d.code])).toEqual([['bad_credentials', 'ERR_BAD_CREDENTIALS'], ['bad_credentials', 'ERR_BAD_CREDENTIALS']])
      const user = await connectClient(url, { username: 'reader', password: READER.reader })
      await user.client.subscribeAsync([topicFilters.telemetry(), jsonTopic('default', '+')], { qos: 1 })
      const device = await connectClient(url, { clientId: 'alice-1', username: alice.id, password: token(alice, 'alice-1') })
      await device.client.publishAsync(statusTopic('default', alice.id), onlineStatus({ publicKey: alice.publicKey }), { qos: 1, retain: true })
      await device.client.publishAsync(telemetryTopic('default', alice.id), makeFrame(alice, 1), { qos: 1 })
      expect((await user.next((t) => t.endsWith('/telemetry'))).payload).toEqual(makeFrame(alice, 1))
      expect((await user.next((t) => t.endsWith('/json'))).topic).toBe(jsonTopic('default', alice.id))
    })

    it('wrong device tokens through mosquitto_pub: each refused with its own code', async () => {
      const gateway = await secureGateway()
      const now = Date.now()
      const reused = token(alice, 'pub-replay')
      const forged = (() => {
        // Alice's key in the token, Mallory's signature over it.
        const good = Buffer.from(token(alice, 'pub-forged'), 'base64url')
        const bad = token(mallory, 'pub-forged')
        const sig = Buffer.from(bad, 'base64url').subarray(-64)
        return toBase64url(Buffer.concat([good.subarray(0, good.length - 64), sig]))
      })()
      const cases: Array<[string, string, string, string]> = [
        // [client id, user name, password, expected code]
        ['pub-garbage', alice.id, 'not-a-token', 'ERR_BAD_TOKEN'],
        ['pub-other-id', alice.id, token(alice, 'someone-else'), 'ERR_BAD_TOKEN'], // the token names another client id
        ['pub-mallory', alice.id, token(mallory, 'pub-mallory'), 'ERR_BAD_TOKEN'], // Mallory's token under Alice's name
        ['pub-forged', alice.id, forged, 'ERR_BAD_SIGNATURE'],
        ['pub-fleet', alice.id, token(alice, 'pub-fleet', { fleet: 'lab' }), 'ERR_UNKNOWN_FLEET'],
        ['pub-expired', alice.id, token(alice, 'pub-expired', { now: now - 200_000, lifetimeSeconds: 60 }), 'ERR_TOKEN_EXPIRED'],
        ['pub-clock', alice.id, token(alice, 'pub-clock', { now: 5_000 }), 'ERR_CLOCK_SKEW'], // a Raspberry Pi without RTC, at boot
        ['pub-replay', alice.id, reused, 'ERR_REPLAY']
      ]
      // The replayed token is first used once, legitimately.
      const first = await mosquitto(PUB, gateway, ['-i', 'pub-replay', '-u', alice.id, '-P', reused, '-t', 'hello', '-n'])
      expect(first.code).toBe(0)
      for (const [clientId, user, password, code] of cases) {
        const drops = await dropsDuring(gateway, async () => {
          const r = await mosquitto(PUB, gateway, ['-i', clientId, '-u', user, '-P', password, '-t', telemetryTopic('default', alice.id), '-m', 'x'])
          expect(r.code, clientId).not.toBe(0)
        })
        expect(drops.map((d) => d.code), clientId).toEqual([code])
        expect(drops[0]?.deviceId, clientId).toBe(alice.id)
      }
      expect(gateway.counters.dropped.bad_token).toBe(6)
      expect(gateway.counters.dropped.token_time).toBe(2)
    })

    it('closed mode: a device outside the roster is refused (ERR_NOT_IN_ROSTER); roster devices read the fleet', async () => {
      const gateway = await secureGateway({ roster: [alice.publicKey] })
      const drops = await dropsDuring(gateway, async () => {
        const r = await mosquitto(SUB, gateway, ['-i', 'm-1', '-u', mallory.id, '-P', token(mallory, 'm-1'), '-t', '#', '-C', '1', '-W', '3'])
        expect(r.code).not.toBe(0)
      })
      expect(drops.map((d) => [d.reason, d.code])).toEqual([['not_in_roster', 'ERR_NOT_IN_ROSTER']])
      const device = await connectClient(mqttUrl(gateway), { clientId: 'a-1', username: alice.id, password: token(alice, 'a-1') })
      const granted = await device.client.subscribeAsync(topicFilters.telemetry(), { qos: 1 })
      expect(granted[0]?.qos).toBe(1)
    })
  })

  describe('what an authenticated device may do', () => {
    it('in open mode a device reads its own subtree only: SUBACK 0x80 elsewhere (ERR_NOT_AUTHORIZED)', async () => {
      const gateway = await secureGateway()
      const device = await connectClient(mqttUrl(gateway), { clientId: 'm-1', username: mallory.id, password: token(mallory, 'm-1') })
      const drops = await dropsDuring(gateway, async () => {
        // mqtt.js rejects a SUBACK with a failure; the SUBACK's return codes (MQTT 3.1.1 §3.9.3) are on the error's packet.
        const granted = await device.client.subscribeAsync([`iotmesh/default/${mallory.id}/cmd/#`, topicFilters.telemetry(), '#', jsonTopic('default', alice.id)], { qos: 1 })
          .then(() => [], (err: { packet?: { granted?: number[] } }) => err.packet?.granted ?? [])
        expect(granted).toEqual([1, 128, 128, 128])
      })
      expect(drops.map((d) => [d.reason, d.code])).toEqual(Array(3).fill(['subscribe_forbidden', 'ERR_NOT_AUTHORIZED']))
    })

    it('a status is accepted only from the connection authenticated as that device', async () => {
      // An open LAN broker too: an anonymous client cannot speak for a device that signs in with its key.
      const gateway = await secureGateway({ allowAnonymous: true })
      const url = mqttUrl(gateway)
      const device = await connectClient(url, { clientId: 'a-1', username: alice.id, password: token(alice, 'a-1') })
      const online = nextEvent(gateway, 'status', (s: { deviceId: string }) => s.deviceId === alice.id)
      await device.client.publishAsync(statusTopic('default', alice.id), onlineStatus({ publicKey: alice.publicKey, name: 'alice' }), { qos: 1, retain: true })
      await online
      const attacker = await connectClient(url, { clientId: 'm-1', username: mallory.id, password: token(mallory, 'm-1') })
      const anonymous = await connectClient(url, { clientId: 'anon' })
      const drops = await dropsDuring(gateway, async () => {
        // Alice's own public key, in a retained status: it would rename her and then mark her offline.
        for (const client of [attacker, anonymous]) {
          await client.client.publishAsync(statusTopic('default', alice.id), onlineStatus({ publicKey: alice.publicKey, name: 'evil' }), { qos: 1, retain: true })
          await client.client.publishAsync(statusTopic('default', alice.id), '{"state":"offline"}', { qos: 1, retain: true })
        }
      })
      expect(drops.map((d) => [d.reason, d.code])).toEqual(Array(4).fill(['status_not_claimed', 'ERR_TOPIC_MISMATCH']))
      expect(gateway.devices.get(alice.id)?.name).toBe('alice')
      expect(gateway.devices.get(alice.id)?.online).toBe(true)
    })
  })

  describe('MQTT over WebSocket: the same rules', () => {
    it('anonymous refused, a device token accepted, per-address budget by the request\'s address', async () => {
      const gateway = await secureGateway({ connectRate: { burst: 3, perSecond: 0.01 } })
      const url = `ws://127.0.0.1:${gateway.ports.ws}/mqtt`
      const drops = await dropsDuring(gateway, async () => {
        await expect(connectClient(url)).rejects.toThrow()
        const device = await connectClient(url, { clientId: 'a-ws', username: alice.id, password: token(alice, 'a-ws') })
        await device.client.endAsync(true)
        await connectClient(url, { username: 'reader', password: READER.reader })
        await expect(connectClient(url, { username: 'reader', password: READER.reader, connectTimeout: 2000 })).rejects.toThrow()
      })
      expect(drops.map((d) => [d.reason, d.code])).toEqual([['anonymous', 'ERR_NOT_AUTHORIZED'], ['connect_rate', 'ERR_BUSY']])
      expect(drops[1]?.message).toContain('127.0.0.1')
    })
  })

  describe('sizes and quotas on every topic', () => {
    it('a message over maxMessageBytes is refused on any topic (ERR_MESSAGE_TOO_LARGE)', async () => {
      const gateway = await secureGateway({ quotas: { maxMessageBytes: 10_000 } })
      const user = await connectClient(mqttUrl(gateway), { username: 'reader', password: READER.reader })
      await user.client.subscribeAsync('junk/#', { qos: 1 })
      const drops = await dropsDuring(gateway, async () => {
        await user.client.publishAsync('junk/big', Buffer.alloc(10_001), { qos: 1 })
        await user.client.publishAsync('junk/small', Buffer.alloc(10), { qos: 1 })
        expect((await user.next()).topic).toBe('junk/small')
      })
      expect(drops.map((d) => [d.reason, d.code])).toEqual([['message_too_large', 'ERR_MESSAGE_TOO_LARGE']])
    })

    it('an MQTT packet over the limit closes its connection once its length is read, before its bytes are buffered', async () => {
      const gateway = await secureGateway({ quotas: { maxMessageBytes: 10_000 } })
      const socket = netConnect(gateway.ports.mqtt as number, '127.0.0.1')
      onTestFinished(() => { socket.destroy() })
      await new Promise<void>((resolve) => socket.once('connect', resolve))
      const drop = nextEvent<DropEvent>(gateway, 'drop')
      // A PUBLISH fixed header announcing 100 MB (Remaining Length, MQTT 3.1.1 §2.2.3), and only a few bytes of it.
      socket.write(Buffer.from([0x30, 0x80, 0xc2, 0xd7, 0x2f, 0x00, 0x01, 0x61]))
      const closed = new Promise<void>((resolve) => socket.once('close', () => { resolve() }))
      expect((await drop).code).toBe('ERR_MESSAGE_TOO_LARGE')
      await closed
    })

    it('retained messages outside iotmesh/ are bounded (ERR_QUOTA); clearing one makes room', async () => {
      const gateway = await secureGateway({ quotas: { maxRetained: 3, maxRetainedBytes: 1_000_000 } })
      const user = await connectClient(mqttUrl(gateway), { username: 'reader', password: READER.reader })
      const drops = await dropsDuring(gateway, async () => {
        for (let i = 0; i < 5; i++) await user.client.publishAsync(`junk/${i}`, Buffer.alloc(100, i), { qos: 1, retain: true })
        await user.client.publishAsync('junk/0', Buffer.alloc(0), { qos: 1, retain: true }) // clears one
        await user.client.publishAsync('junk/5', Buffer.alloc(100), { qos: 1, retain: true })
      })
      expect(drops.map((d) => [d.reason, d.code, d.topic])).toEqual([['retained_quota', 'ERR_QUOTA', 'junk/3'], ['retained_quota', 'ERR_QUOTA', 'junk/4']])
      const later = await connectClient(mqttUrl(gateway), { username: 'reader', password: READER.reader })
      await later.client.subscribeAsync('junk/#', { qos: 1 })
      const topics = [(await later.next()).topic, (await later.next()).topic, (await later.next()).topic].sort()
      expect(topics).toEqual(['junk/1', 'junk/2', 'junk/5'])
    })

    it('the retained bytes quota holds too', async () => {
      const gateway = await secureGateway({ quotas: { maxRetained: 100, maxRetainedBytes: 25_000 } })
      const user = await connectClient(mqttUrl(gateway), { username: 'reader', password: READER.reader })
      const drops = await dropsDuring(gateway, async () => {
        for (let i = 0; i < 3; i++) await user.client.publishAsync(`junk/${i}`, Buffer.alloc(10_000), { qos: 1, retain: true })
      })
      expect(drops.map((d) => d.code)).toEqual(['ERR_QUOTA'])
    })
  })

  describe('CONNECT attempts are bounded before any signature is checked', () => {
    it('per address: past the burst, connections close without a CONNACK (ERR_BUSY), and no token is verified', async () => {
      const gateway = await secureGateway({ connectRate: { burst: 3, perSecond: 0.01 } })
      const url = mqttUrl(gateway)
      const drops = await dropsDuring(gateway, async () => {
        for (let i = 0; i < 5; i++) {
          const client = mqtt.connect(url, { clientId: `flood-${i}`, username: alice.id, password: 'x', reconnectPeriod: 0, connectTimeout: 20_000 })
          client.on('error', () => {})
          const started = Date.now()
          await new Promise<void>((resolve) => client.once('close', () => { resolve() }))
          expect(Date.now() - started, 'closed at once, not after a timeout').toBeLessThan(10_000)
          client.end(true)
        }
      })
      expect(drops.map((d) => d.reason)).toEqual(['bad_token', 'bad_token', 'bad_token', 'connect_rate', 'connect_rate'])
      expect(drops.slice(3).map((d) => d.code)).toEqual(['ERR_BUSY', 'ERR_BUSY'])
    })

    it('token checks, all addresses together, have their own budget', async () => {
      const gateway = await secureGateway({ connectRate: { verifyBurst: 2, verifyPerSecond: 0.01 } })
      const url = mqttUrl(gateway)
      const reasons: string[] = []
      gateway.on('drop', (d) => { reasons.push(d.reason) })
      for (let i = 0; i < 3; i++) {
        const client = mqtt.connect(url, { clientId: `t-${i}`, username: alice.id, password: token(alice, `t-${i}`), reconnectPeriod: 0, connectTimeout: 2000 })
        client.on('error', () => {})
        const outcome = await new Promise<string>((resolve) => {
          client.once('connect', () => { resolve('connected') })
          client.once('close', () => { resolve('closed') })
        })
        await client.endAsync(true)
        expect(outcome, `attempt ${i}`).toBe(i < 2 ? 'connected' : 'closed')
      }
      expect(reasons).toEqual(['connect_rate'])
      // Users (no signature to check) still get in.
      await connectClient(url, { username: 'reader', password: READER.reader })
    })
  })
})
