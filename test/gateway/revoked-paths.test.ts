import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { expect, it, onTestFinished } from 'vitest'
import { cosign, frameTopic, parseFleetPolicy, revoke, toBase64url, type KeyPair } from '../../shared/index.js'
import { createGateway, type DropEvent, type Gateway, type Reading } from '../../gateway/index.js'
import { tempDir } from '../shared/support.js'
import { revocationTopic } from '../../gateway/revocations.js'
import { createMemoryNetwork } from '../../mesh/testing.js'
import { describeNet } from '../helpers/netns.js'
import {
  MESH_LINK, MESH_ROUTING, connectClient, connectDevice, findBinary, freePort, linked, spawnServer, makeFrame, meshAddress, mqttUrl, nextEvent, seededKeys, startGateway, startMeshGateway, startMeshNode
} from './support.js'

/**
 * A revoked device's frames are refused at the gateway by whatever path they come (issue 13,
 * gateway/ingest.ts `revoked`), not only on its own MQTT session (gateway/revocations.ts closes that):
 * relayed by another client's session, waiting in the holding pen for a key when the revocation
 * came, relayed by an honest mesh node that has not heard, or handed over by the mesh bridge after
 * the gateway's node took it (a delivery buffered before the revocation), or published on an external
 * broker (a real Mosquitto) that closes no session: the gateway reads the revocations retained there
 * (iotmesh/<fleet>/$revocations/+, checking at most 20 new ones a second: a flood of forgeries is
 * dropped unchecked) and refuses what follows. An honest publisher's
 * readings keep arriving throughout.
 */

const alice = seededKeys(81)
const bob = seededKeys(82)
const victim = seededKeys(83)
const honest = seededKeys(84)
const latecomer = seededKeys(85)
const policy = parseFleetPolicy({ fleet: 'default', threshold: 2, owners: [alice, bob].map((o: KeyPair) => ({ key: toBase64url(o.publicKey) })) })
const revocationOf = (device: KeyPair): Buffer => Buffer.from(cosign(revoke({ policy, device: device.id, reason: 'stolen', owners: [alice] }), policy, bob))
const READER = { reader: 'reader-secret-1' }

function dropsOf (gateway: Gateway): DropEvent[] {
  const drops: DropEvent[] = []
  gateway.on('drop', (d) => { drops.push(d) })
  return drops
}

describeNet('a revoked device, by every path', () => {
  it('through another client\'s session, and a frame that waited for its key when the revocation came: refused (ERR_REVOKED); the honest device carries on', async () => {
    const gateway = await startGateway({ allowAnonymous: false, credentials: READER, fleetPolicy: policy })
    const drops = dropsOf(gateway)
    const url = mqttUrl(gateway)
    const reader = await connectClient(url, { username: 'reader', password: READER.reader })
    await reader.client.subscribeAsync('iotmesh/default/+/telemetry', { qos: 1 })
    const relay = await connectDevice(url, honest, { authenticate: true })
    const stolen = await connectDevice(url, victim, { authenticate: true })
    await stolen.publishFrame(1, makeFrame(victim, 1))
    await relay.publishFrame(1, makeFrame(honest, 1))
    expect(gateway.devices.get(victim.id)?.readings).toBe(1)

    // A frame of a device whose key the gateway does not know yet waits in the holding pen (its PUBACK waits too).
    const waiting = relay.client.publishAsync(frameTopic('default', latecomer.id, 'telemetry'), makeFrame(latecomer, 1), { qos: 1 })
    await nextEvent(gateway, 'held', (h: { deviceId: string }) => h.deviceId === latecomer.id)

    const closed = new Promise((resolve) => { stolen.client.once('close', () => { resolve(undefined) }) })
    const owner = await connectClient(url, { username: 'reader', password: READER.reader })
    await owner.client.publishAsync(revocationTopic('default', victim.id), revocationOf(victim), { qos: 1, retain: true })
    await owner.client.publishAsync(revocationTopic('default', latecomer.id), revocationOf(latecomer), { qos: 1, retain: true })
    await closed

    // The honest device's session relays a frame the stolen device signed (a client may relay what another device signed).
    await relay.client.publishAsync(frameTopic('default', victim.id, 'telemetry'), makeFrame(victim, 2), { qos: 1 })
    // The latecomer's key arrives: its held frame is judged now, and refused.
    gateway.learnKey(latecomer.publicKey)
    await waiting
    await relay.publishFrame(2, makeFrame(honest, 2))
    await reader.next((topic, payload) => topic.includes(honest.id) && Buffer.compare(payload, makeFrame(honest, 2)) === 0)

    const revoked = drops.filter((d) => d.reason === 'revoked' && d.seq !== undefined)
    expect(revoked.map((d) => [d.code, d.deviceId, d.seq, d.path])).toEqual([['ERR_REVOKED', victim.id, 2, 'broker'], ['ERR_REVOKED', latecomer.id, 1, 'broker']])
    expect(gateway.devices.get(victim.id)?.readings).toBe(1)
    expect(gateway.devices.get(latecomer.id)?.readings ?? 0).toBe(0)
    expect(reader.messages.filter((m) => m.topic.includes(victim.id) || m.topic.includes(latecomer.id))).toHaveLength(1) // the victim's frame 1, before
    expect(gateway.devices.get(honest.id)?.readings).toBe(2)
  })

  it('through the mesh: relayed by an honest node that has not heard, or handed over by the bridge after the node took it; the honest node\'s readings keep arriving', async () => {
    const net = createMemoryNetwork({ seed: 83 })
    const gateway = await startMeshGateway(net, {
      fleetPolicy: policy,
      // The fleet's nodes here carry no credentials: links are not what is tested.
      mesh: { host: 'gw', mdns: false, dialTarget: 0, announceLinks: 0, link: MESH_LINK, routing: MESH_ROUTING, requireCredentials: false }
    })
    const drops = dropsOf(gateway)
    const relay = await startMeshNode(net, 'relay', honest, [meshAddress(gateway.mesh)]) // no fleet file: it relays whatever verifies
    const stolen = await startMeshNode(net, 'stolen', victim, [meshAddress(relay)])
    await linked(relay, gateway.mesh?.id ?? '', victim.id)
    const reading = async (node: typeof relay, value: number): Promise<Reading> => {
      const accepted = nextEvent<Reading>(gateway, 'reading', (r) => r.origin === node.id && r.records[0]?.v === value)
      node.publish('telemetry', [{ n: 'temp', v: value }])
      return await accepted
    }
    await reading(stolen, 1)
    await reading(relay, 1)

    const owner = await connectClient(mqttUrl(gateway))
    await owner.client.publishAsync(revocationTopic('default', victim.id), revocationOf(victim), { qos: 1, retain: true })
    expect(gateway.mesh?.revoked(victim.id)).toBe(true)

    // The stolen device publishes on; the honest relay forwards it (it holds no fleet file); the gateway's node refuses it.
    const refusedBefore = gateway.mesh?.counters.revokedRefused ?? 0
    stolen.publish('telemetry', [{ n: 'temp', v: 2 }])
    await reading(relay, 2)
    await expect.poll(() => gateway.mesh?.counters.revokedRefused ?? 0).toBeGreaterThan(refusedBefore)
    // A delivery the node accepted before it heard, handed to ingest by the bridge after: refused there.
    const late = gateway.submit(frameTopic('default', victim.id, 'telemetry'), makeFrame(victim, 1_000_000), { path: 'mesh', from: relay.id })
    expect(late).toMatchObject({ verdict: 'dropped', drop: { reason: 'revoked', code: 'ERR_REVOKED', deviceId: victim.id, path: 'mesh' } })
    await reading(relay, 3)
    expect(gateway.devices.get(victim.id)?.readings).toBe(1)
    expect(drops.filter((d) => d.reason === 'revoked').map((d) => d.deviceId)).toEqual([victim.id])
  })
})

const MOSQUITTO = findBinary('/usr/sbin/mosquitto', '/usr/bin/mosquitto')
if (MOSQUITTO === undefined) console.warn('SKIPPED: revocations through an external broker need mosquitto: apt-get install -y mosquitto')

describeNet('a revoked device on an external broker', () => {
  it.skipIf(MOSQUITTO === undefined)('the gateway takes the revocation retained on the broker and refuses the device\'s later frames, which the broker still delivers; the honest device carries on', async () => {
    const dir = await tempDir()
    const port = await freePort()
    const config = join(dir, 'mosquitto.conf')
    await writeFile(config, [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'user root', 'persistence false', 'log_dest stderr', 'log_type error', 'log_type information', ''].join('\n'))
    await spawnServer(MOSQUITTO ?? 'mosquitto', ['-c', config], /mosquitto version [\d.]+ running/)
    const url = `mqtt://127.0.0.1:${port}`
    const stolen = await connectDevice(url, victim)
    const device = await connectDevice(url, honest)
    const gateway = await createGateway({ broker: url, fleetPolicy: policy })
    onTestFinished(async () => { await gateway.stop() })
    const drops = dropsOf(gateway)
    const accepted = async (keys: KeyPair, seq: number, publish: () => Promise<void>): Promise<void> => {
      const reading = nextEvent<Reading>(gateway, 'reading', (r) => r.origin === keys.id && r.seq === seq)
      await publish()
      await reading
    }
    await accepted(victim, 1, async () => { await stolen.publishFrame(1, makeFrame(victim, 1)) })
    await accepted(honest, 1, async () => { await device.publishFrame(1, makeFrame(honest, 1)) })

    // A forgery on the revocations topic is counted and changes nothing; the owners' revocation is taken.
    const owner = await connectClient(url)
    const bad = nextEvent<DropEvent>(gateway, 'drop', (d) => d.reason === 'bad_revocation')
    await owner.client.publishAsync(revocationTopic('default', honest.id), Buffer.from(revoke({ policy, device: honest.id, reason: 'one owner only', owners: [alice] })), { qos: 1, retain: true })
    expect(await bad).toMatchObject({ code: 'ERR_TOO_FEW_OWNERS' })
    // A flood of forgeries that each would cost owner signature checks (the owners' kids, a flipped signature byte):
    // at most 20 a second are checked (50 at once), the rest dropped unchecked, counted; the honest device's readings go on.
    const forged = Buffer.from(revocationOf(honest))
    forged[forged.length - 1] = (forged.at(-1) ?? 0) ^ 0x01
    const t0 = Date.now()
    await Promise.all(Array.from({ length: 300 }, async () => { await owner.client.publishAsync(revocationTopic('default', honest.id), forged, { qos: 1 }) }))
    await accepted(honest, 2, async () => { await device.publishFrame(2, makeFrame(honest, 2)) })
    await expect.poll(() => drops.filter((d) => d.reason === 'bad_revocation').length).toBe(301)
    const checked = drops.filter((d) => d.reason === 'bad_revocation' && d.code !== 'ERR_RATE_LIMITED').length - 1
    expect(checked).toBeLessThanOrEqual(50 + Math.ceil(20 * (Date.now() - t0) / 1000))
    expect(drops.filter((d) => d.code === 'ERR_RATE_LIMITED').length).toBeGreaterThanOrEqual(300 - checked)
    await new Promise((resolve) => setTimeout(resolve, 300)) // the budget refills: a genuine revocation is checked again
    await owner.client.publishAsync(revocationTopic('default', victim.id), revocationOf(victim), { qos: 1, retain: true })
    await expect.poll(() => gateway.revocations?.has(victim.id)).toBe(true)
    expect(gateway.trust?.toJSON().revocations.map((r) => [r.device, r.reason])).toEqual([[victim.id, 'stolen']])

    // The external broker still delivers the stolen device's frames: the gateway refuses them.
    const refused = nextEvent<DropEvent>(gateway, 'drop', (d) => d.reason === 'revoked')
    await stolen.publishFrame(2, makeFrame(victim, 2))
    expect(await refused).toMatchObject({ code: 'ERR_REVOKED', deviceId: victim.id, seq: 2, path: 'broker' })
    await accepted(honest, 3, async () => { await device.publishFrame(3, makeFrame(honest, 3)) })
    expect(gateway.devices.get(victim.id)?.readings).toBe(1)
    expect(gateway.revocations?.has(honest.id)).toBe(false)
    expect(drops.filter((d) => d.reason === 'revoked')).toHaveLength(1)
  })
})
