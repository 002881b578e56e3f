import { describe, expect, it } from 'vitest'
import { cosign, parseFleetPolicy, revoke, toBase64url, type KeyPair } from '../../shared/index.js'
import type { DropEvent, Gateway } from '../../gateway/index.js'
import { revocationTopic, revocationsFilter } from '../../gateway/revocations.js'
import { describeNet } from '../helpers/netns.js'
import { connectClient, connectDevice, makeFrame, mqttUrl, seededKeys, startGateway } from './support.js'

/**
 * Revocations at the gateway's broker (gateway/revocations.ts, issue 13): a revocation that arrives
 * by MQTT or by the mesh closes the revoked device's open session within moments and is retained
 * on iotmesh/<fleet>/$revocations/<id>; the device's next CONNECT is refused (CONNACK 5,
 * ERR_REVOKED); anything on a $revocations topic that is not a valid owner-signed revocation of
 * the device it names is refused with its code and never retained. An honest device publishes and
 * a reader reads throughout.
 */

const alice = seededKeys(71)
const bob = seededKeys(72)
const mallory = seededKeys(73)
const victim = seededKeys(74)
const honest = seededKeys(75)
const policy = parseFleetPolicy({ fleet: 'default', threshold: 2, owners: [alice, bob].map((o: KeyPair) => ({ key: toBase64url(o.publicKey) })) })
const READER = { reader: 'reader-secret-1' }
// One signed revocation per device: signed again in another second, the bytes (issuedAt) would differ.
const revocations = new Map<string, Uint8Array>()
const revocationOf = (device: KeyPair): Uint8Array => revocations.get(device.id) ?? revocations.set(device.id, cosign(revoke({ policy, device: device.id, reason: 'stolen', owners: [alice] }), policy, bob)).get(device.id) as Uint8Array

async function gatewayWithFleet (mesh = false): Promise<{ gateway: Gateway, drops: DropEvent[] }> {
  const gateway = await startGateway({ allowAnonymous: false, credentials: READER, fleetPolicy: policy, ...(mesh ? { mesh: { host: '127.0.0.1', mdns: false } } : {}) })
  const drops: DropEvent[] = []
  gateway.on('drop', (d) => { drops.push(d) })
  return { gateway, drops }
}

async function honestTraffic (gateway: Gateway): Promise<() => Promise<void>> {
  const url = mqttUrl(gateway)
  const reader = await connectClient(url, { username: 'reader', password: READER.reader })
  await reader.client.subscribeAsync(`iotmesh/default/${honest.id}/telemetry`, { qos: 1 })
  const device = await connectDevice(url, honest, { authenticate: true })
  let seq = 0
  return async () => {
    await device.publishFrame(++seq, makeFrame(honest, seq))
    await reader.next((topic, payload) => topic.endsWith('/telemetry') && Buffer.compare(payload, makeFrame(honest, seq)) === 0)
  }
}

describeNet('revocations at the broker', () => {
  it('by MQTT: the revoked device\'s session is closed, the revocation retained, its next CONNECT refused (ERR_REVOKED); the honest carry on', async () => {
    const { gateway, drops } = await gatewayWithFleet()
    const url = mqttUrl(gateway)
    const traffic = await honestTraffic(gateway)
    await traffic()
    const stolen = await connectDevice(url, victim, { authenticate: true })
    const closed = new Promise((resolve) => { stolen.client.once('close', () => { resolve(undefined) }) })
    const owner = await connectClient(url, { username: 'reader', password: READER.reader })
    const t0 = Date.now()
    await owner.client.publishAsync(revocationTopic('default', victim.id), Buffer.from(revocationOf(victim)), { qos: 1, retain: true })
    await closed
    expect(Date.now() - t0).toBeLessThan(2000)
    expect(gateway.revocations?.has(victim.id)).toBe(true)

    const late = await connectClient(url, { username: 'reader', password: READER.reader })
    await late.client.subscribeAsync(revocationsFilter('default'), { qos: 1 })
    const kept = await late.next((topic) => topic === revocationTopic('default', victim.id))
    expect(kept.retain).toBe(true)
    expect(Buffer.compare(kept.payload, Buffer.from(revocationOf(victim)))).toBe(0)

    await expect(connectDevice(url, victim, { authenticate: true })).rejects.toThrow()
    expect(drops.filter((d) => d.code === 'ERR_REVOKED').map((d) => [d.reason, d.deviceId])).toEqual([['revoked', victim.id]])
    await traffic()
  })

  it('by the mesh: the same, within moments of the gateway\'s node taking it', async () => {
    const { gateway } = await gatewayWithFleet(true)
    const url = mqttUrl(gateway)
    const traffic = await honestTraffic(gateway)
    const stolen = await connectDevice(url, victim, { authenticate: true })
    const closed = new Promise((resolve) => { stolen.client.once('close', () => { resolve(undefined) }) })
    expect(gateway.mesh?.revoke(revocationOf(victim))).toBe('added')
    await closed
    const late = await connectClient(url, { username: 'reader', password: READER.reader })
    await late.client.subscribeAsync(revocationsFilter('default'), { qos: 1 })
    expect((await late.next((topic) => topic === revocationTopic('default', victim.id))).retain).toBe(true)
    await traffic()
  })

  it('retains only valid owner-signed revocations of the device the topic names; the rest is refused with its code', async () => {
    const { gateway, drops } = await gatewayWithFleet()
    const url = mqttUrl(gateway)
    const traffic = await honestTraffic(gateway)
    const mallorys = parseFleetPolicy({ fleet: 'default', owners: [{ key: toBase64url(mallory.publicKey) }] })
    const cases: Array<[string, Uint8Array, string]> = [
      [victim.id, revoke({ policy, device: victim.id, reason: 'one owner', owners: [alice] }), 'ERR_TOO_FEW_OWNERS'],
      [victim.id, revoke({ policy: mallorys, device: victim.id, reason: 'not an owner', owners: [mallory] }), 'ERR_NOT_OWNER'],
      [victim.id, Uint8Array.of(1, 2, 3), 'ERR_BAD_REVOCATION'],
      [honest.id, revocationOf(victim), 'ERR_TOPIC_MISMATCH'],
      ['not-an-id', revocationOf(victim), 'ERR_BAD_REVOCATION']
    ]
    const device = await connectDevice(url, mallory, { authenticate: true, status: false })
    for (const [id, bytes] of cases) await device.client.publishAsync(`iotmesh/default/$revocations/${id}`, Buffer.from(bytes), { qos: 1, retain: true })
    await traffic()
    expect(drops.filter((d) => d.reason === 'bad_revocation').map((d) => d.code)).toEqual(cases.map(([, , code]) => code))
    // The ERR_TOPIC_MISMATCH one was valid: taken (the victim is revoked), but not retained under the honest device's id.
    const late = await connectClient(url, { username: 'reader', password: READER.reader })
    await late.client.subscribeAsync(revocationsFilter('default'), { qos: 1 })
    await late.next((topic) => topic === revocationTopic('default', victim.id))
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(late.messages.map((m) => m.topic)).toEqual([revocationTopic('default', victim.id)])
    expect(gateway.revocations?.has(honest.id)).toBe(false)
    await traffic()
  })
})

describe('revocation topics', () => {
  it('sit under iotmesh/<fleet>/$revocations/<id>', () => {
    expect(revocationTopic('home', victim.id)).toBe(`iotmesh/home/$revocations/${victim.id}`)
    expect(revocationsFilter('home')).toBe('iotmesh/home/$revocations/+')
  })
})
