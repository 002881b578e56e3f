import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { connect } from 'mqtt'
import { describe, expect, it, onTestFinished } from 'vitest'
import { configTopic, cosign, parseFleetPolicy, signFleetConfig, toBase64url, verifyFleetConfig, type KeyPair, type RemoteSettings } from '../../shared/index.js'
import type { DropEvent } from '../../gateway/index.js'
import { cli } from '../helpers/cli.js'
import { saveKeyFile } from '../../shared/node.js'
import { MeshNode } from '../../mesh/index.js'
import { LINK, ROUTING, TEST_READER_USER, Waiter, addressOf, gateway, keysFor, meshInit, memoryNet, startDevice, subscriber } from './device-support.js'
import { tempDir } from './support.js'

/**
 * Signed configuration on the broker path: `iotmesh fleet config push --broker` retains it on
 * iotmesh/<fleet>/$config/<target>; the gateway's guard (gateway/config-guard.ts) takes only one
 * the fleet's owners signed for that target, newer than the one it holds; a device in broker mode
 * reads the retained configuration of its targets and applies it; a flood of forged ones changes
 * nothing while an honest device and subscriber keep working.
 */

const alice = keysFor(851)
const bob = keysFor(852)
const mallory = keysFor(853)
const policy = parseFleetPolicy({ fleet: 'default', threshold: 2, owners: [alice, bob].map((o: KeyPair) => ({ key: toBase64url(o.publicKey) })) })
const signed = (target: string, version: number, settings: RemoteSettings): Uint8Array =>
  cosign(signFleetConfig({ policy, target, version, settings, owners: [alice] }), policy, bob)

async function reader (url: string): Promise<ReturnType<typeof connect>> {
  const client = connect(url, { reconnectPeriod: 0, connectTimeout: 5000, username: 'test-reader', password: TEST_READER_USER['test-reader'] })
  onTestFinished(async () => { await client.endAsync(true) })
  await new Promise<void>((resolve, reject) => { client.once('connect', () => { resolve() }); client.once('close', () => { reject(new Error('no connection')) }) })
  return client
}

describe('signed configuration retained on the broker', () => {
  it('a gateway without a fleet file takes none', async () => {
    const waiter = new Waiter()
    const { gateway: gw, url } = await gateway(waiter)
    const drops: DropEvent[] = []
    gw.on('drop', (d) => { drops.push(d) })
    const client = await reader(url)
    await client.publishAsync(configTopic('default', 'group:kitchen'), Buffer.from(signed('group:kitchen', 1, { interval: 500 })), { qos: 1, retain: true })
    await waiter.until(() => drops.length > 0, 'the refusal')
    expect(drops[0]).toMatchObject({ reason: 'bad_config', code: 'ERR_BAD_CONFIG' })
  })

  it('push --broker reaches a device in broker mode; the guard refuses forged, short, stale, misdirected and cleared ones; a flood leaves the honest device and subscriber working', async () => {
    const waiter = new Waiter()
    const { gateway: gw, url } = await gateway(waiter, { fleetPolicy: policy })
    const drops: DropEvent[] = []
    gw.on('drop', (d) => { if (d.reason === 'bad_config') drops.push(d) })
    const dir = await tempDir()
    const keys = keysFor(860)
    const { device, signed: seqs } = await startDevice({ mode: 'broker', name: 'kitchen', broker: url, sensors: 'battery', interval: 200, fleetFile: policy, groups: ['kitchen'], dataDir: dir }, { keys }, waiter)
    device.on('config', waiter.kick)
    await waiter.until(() => device.counters.paths.broker?.up === true, 'the device on the broker')

    const file = join(dir, 'fleet.json')
    await writeFile(file, JSON.stringify({ fleet: 'default', threshold: 2, owners: [alice, bob].map((o) => ({ key: toBase64url(o.publicKey) })) }))
    const [aliceKey, bobKey] = [join(dir, 'alice.key'), join(dir, 'bob.key')]
    await saveKeyFile(aliceKey, alice)
    await saveKeyFile(bobKey, bob)
    const settings = join(dir, 'kitchen.json')
    await writeFile(settings, JSON.stringify({ interval: 300 }))
    const pushed = await cli(['fleet', 'config', 'push', settings, '--to', 'kitchen', '--version', '2', '--owner-key', `${aliceKey},${bobKey}`, '--file', file, '--broker', url, '--json'])
    expect(pushed.code, pushed.stderr).toBe(0)
    await waiter.until(() => device.configState?.version === 2 && device.interval === 300, 'version 2 applied from the broker')
    expect(device.interval).toBe(300)
    await waiter.until(() => gw.devices.get(device.id)?.config?.version === 2, 'the gateway shows version 2')

    const client = await reader(url)
    const topic = configTopic('default', 'group:kitchen')
    const own = parseFleetPolicy({ fleet: 'default', owners: [{ key: toBase64url(mallory.publicKey) }] })
    const attempts: Array<[Uint8Array, string, string]> = [
      [signFleetConfig({ policy: own, target: 'group:kitchen', version: 99, settings: { interval: 100 }, owners: [mallory] }), topic, 'ERR_NOT_OWNER'],
      [signFleetConfig({ policy, target: 'group:kitchen', version: 98, settings: { interval: 100 }, owners: [alice] }), topic, 'ERR_TOO_FEW_OWNERS'],
      [signed('group:kitchen', 1, { interval: 100 }), topic, 'ERR_CONFIG_STALE'],
      [signed('group:hall', 97, { interval: 100 }), topic, 'ERR_BAD_CONFIG'],
      [new Uint8Array(0), topic, 'ERR_BAD_CONFIG']
    ]
    for (const [payload, t] of attempts) await client.publishAsync(t, Buffer.from(payload), { qos: 1, retain: true })
    await waiter.until(() => drops.length >= attempts.length, 'every attempt refused')
    expect(drops.map((d) => d.code)).toEqual(attempts.map(([, , code]) => code))

    // A flood of forged configurations beside the device and a subscriber: nothing changes, readings keep coming.
    const watcher = await subscriber(url, `iotmesh/default/${device.id}/telemetry`, waiter)
    const forged = Array.from({ length: 300 }, (_, i) => signFleetConfig({ policy: own, target: 'group:kitchen', version: 100 + i, settings: { interval: 100 }, owners: [mallory] }))
    await Promise.all(forged.map(async (payload) => { await client.publishAsync(topic, Buffer.from(payload), { qos: 1, retain: true }) }))
    await waiter.until(() => drops.length >= attempts.length + forged.length, 'the flood refused')
    const before = seqs.length
    await waiter.until(() => seqs.length >= before + 3 && watcher.seqs.length >= 3, 'readings go on')
    expect(device.configState?.version).toBe(2)
    // What a newcomer reads there is still version 2.
    const late = await reader(url)
    const retained = new Promise<Buffer>((resolve) => { late.on('message', (_t, payload) => { resolve(payload) }) })
    await late.subscribeAsync(topic, { qos: 1 })
    expect(verifyFleetConfig(new Uint8Array(await retained), policy)).toMatchObject({ version: 2, settings: { interval: 300 } })
  }, 30_000)
})

describe('the gateway bridges signed configurations between the mesh and the broker', () => {
  it('one retained by a client reaches a mesh-only device; one from the mesh is retained for a broker-mode device', async () => {
    const waiter = new Waiter()
    const net = memoryNet(62)
    const gwKeys = keysFor(870)
    const { gateway: gw, url } = await gateway(waiter, { fleetPolicy: policy, mesh: meshInit('gw') }, { keys: gwKeys, transport: net.createTransport(LINK, { keys: gwKeys }) })
    const meshKeys = keysFor(871)
    const { device: meshDevice } = await startDevice({ mode: 'mesh', name: 'hall', sensors: 'battery', fleetFile: policy, groups: ['hall'], mesh: meshInit('dev', [addressOf(gw.mesh)]) },
      { keys: meshKeys, transport: net.createTransport(LINK, { keys: meshKeys }) }, waiter)
    meshDevice.on('config', waiter.kick)
    const { device: brokerDevice } = await startDevice({ mode: 'broker', name: 'kitchen', broker: url, sensors: 'battery', fleetFile: policy, groups: ['kitchen'] }, { keys: keysFor(872) }, waiter)
    brokerDevice.on('config', waiter.kick)
    await waiter.until(() => meshDevice.node?.links.has(gw.mesh?.id ?? '') === true && brokerDevice.counters.paths.broker?.up === true, 'both devices up')

    const client = await reader(url)
    await client.publishAsync(configTopic('default', 'group:hall'), Buffer.from(signed('group:hall', 5, { interval: 700 })), { qos: 1, retain: true })
    await waiter.until(() => meshDevice.configState?.version === 5 && meshDevice.interval === 700, 'the mesh device applied the broker\'s configuration')

    const meshOwner = new MeshNode({ name: 'o2', host: 'o2', mdns: false, dialTarget: 0, announceLinks: 0, peers: [addressOf(gw.mesh)], link: LINK, routing: { ...ROUTING, fleetPolicy: policy } },
      { keys: keysFor(874), transport: net.createTransport(LINK, { keys: keysFor(874) }) })
    await meshOwner.start()
    onTestFinished(async () => { await meshOwner.stop() })
    expect(meshOwner.configure(signed('group:kitchen', 6, { interval: 800 }))).toBe('added')
    await waiter.until(() => brokerDevice.configState?.version === 6 && brokerDevice.interval === 800, 'the broker device applied the mesh\'s configuration')
    // The broker holds version 6 for the kitchen now: a client's older one is refused.
    const drops: DropEvent[] = []
    gw.on('drop', (d) => { if (d.reason === 'bad_config') drops.push(d) })
    await client.publishAsync(configTopic('default', 'group:kitchen'), Buffer.from(signed('group:kitchen', 4, { interval: 900 })), { qos: 1, retain: true })
    await waiter.until(() => drops.length === 1, 'the older one refused')
    expect(drops[0]?.message).toContain('ERR_CONFIG_STALE')
  }, 30_000)
})
