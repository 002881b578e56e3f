import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { connect } from 'mqtt'
import { expect, it, onTestFinished } from 'vitest'
import {
  configTopic, cosign, decodeFleetFiles, encodeCbor, signFleetConfig, encodeFleetFiles, fleetFilesTopic, isMeshError, parseFleetPolicy, revoke, signFleetFile, toBase64url, type KeyPair
} from '../../shared/index.js'
import type { DropEvent } from '../../gateway/index.js'
import { brokerFleetChain, brokerFleetFiles } from '../../firmware-sim/device/broker-fleet-files.js'
import { describeNet } from '../helpers/netns.js'
import { tempDir } from './support.js'
import { TEST_READER_USER, Waiter, gateway, keysFor, startDevice } from './device-support.js'

/**
 * Issue 13, "broker-only devices get the fleet file": a device on the broker alone hears no FLEET
 * gossip, so the gateway retains the fleet files its mesh node holds on iotmesh/<fleet>/$fleet/files
 * and the device takes them as a mesh node does (the same checks and codes), keeps them in
 * DATA_DIR/fleet-files.json and judges by the new owners. Only the gateway publishes there: a
 * client's publish is refused (fleet_file_forbidden, ERR_FORBIDDEN) and changes nothing.
 */

const FAST_RECONNECT = { initial: 50, max: 200, jitter: 0 }
const [alice, bob, carol] = [keysFor(151), keysFor(152), keysFor(153)]
const owners = (...keys: KeyPair[]): Array<{ key: string }> => keys.map((o) => ({ key: toBase64url(o.publicKey) }))
const v0 = parseFleetPolicy({ fleet: 'default', threshold: 2, owners: owners(alice, bob) })
// v1: alice (whose laptop was stolen) is replaced by carol; signed by the owners of v0.
const v1 = cosign(signFleetFile({ current: v0, version: 1, next: { threshold: 2, owners: [carol, bob] }, owners: [alice] }), v0, bob)
const p1 = parseFleetPolicy({ fleet: 'default', threshold: 2, owners: owners(carol, bob), version: 1 })

describeNet('fleet files for devices on the broker', () => {
  it('the owners sign v1, the gateway learns it, a broker-only device follows it and keeps it; a forged retained publish is refused and changes nothing', async () => {
    const waiter = new Waiter()
    const { gateway: gw, url } = await gateway(waiter, { fleetPolicy: v0, mesh: { host: '127.0.0.1', mdns: false, dialTarget: 0, announceLinks: 0 } }, { keys: keysFor(154) })
    const drops: DropEvent[] = []
    gw.on('drop', (d) => { drops.push(d); waiter.kick() })
    const dir = await tempDir()
    const warnings: Array<{ code?: string }> = []
    const { device } = await startDevice({ mode: 'broker', broker: { url, reconnect: FAST_RECONNECT }, sensors: 'temperature', dataDir: dir, fleetFile: v0, groups: ['kitchen'] }, { keys: keysFor(155) }, waiter)
    device.on('warning', (w) => { warnings.push({ code: (w.error as { code?: string }).code }) })
    const configs: Array<number | undefined> = []
    device.on('config', (state) => { configs.push(state.version); waiter.kick() })
    await waiter.until(() => device.counters.paths.broker?.up === true, 'the device on the broker')
    expect(device.node).toBeUndefined()
    expect(device.fleetPolicy?.version ?? 0).toBe(0)

    // As `iotmesh fleet sign-file --publish` hands it to the gateway's mesh node (or a neighbour gossips it).
    expect(gw.mesh?.updateFleet(v1)).toBe('added')
    await waiter.until(() => device.fleetPolicy?.version === 1, 'the broker-only device follows v1', 5000)
    expect(device.fleetPolicy?.owners.map((o) => o.id)).toEqual([carol.id, bob.id])
    const kept = async (): Promise<string[]> => { try { return JSON.parse(await readFile(join(dir, 'fleet-files.json'), 'utf8')) as string[] } catch { return [] } }
    await expect.poll(kept, { timeout: 5000 }).toEqual([toBase64url(v1)])
    // It judges by the new owners: their revocation reaches it through the broker and is kept.
    const victim = keysFor(156).id
    const revocation = cosign(revoke({ policy: p1, device: victim, reason: 'stolen', owners: [carol] }), p1, bob)
    expect(gw.revocations?.add(revocation, 'mesh').verdict).toBe('added')
    const revocations = async (): Promise<string[]> => { try { return JSON.parse(await readFile(join(dir, 'revocations.json'), 'utf8')) as string[] } catch { return [] } }
    await expect.poll(revocations, { timeout: 5000 }).toEqual([toBase64url(revocation)])
    // And a configuration only the new owners signed, retained through the broker's guard: applied.
    const config = cosign(signFleetConfig({ policy: p1, target: 'group:kitchen', version: 1, settings: { interval: 700 }, owners: [carol] }), p1, bob)
    const pusher = connect(url, { reconnectPeriod: 0, username: 'test-reader', password: TEST_READER_USER['test-reader'] })
    onTestFinished(async () => { await pusher.endAsync(true) })
    await new Promise<void>((resolve) => { pusher.once('connect', () => { resolve() }) })
    await pusher.publishAsync(configTopic('default', 'group:kitchen'), Buffer.from(config), { qos: 1, retain: true })
    await waiter.until(() => configs.includes(1), 'the broker-only device applied the new owners\' configuration', 5000)

    // A forged v2 (alice alone, no longer an owner), retained by a client of the broker: refused before any check, never retained.
    const v2forged = signFleetFile({ current: { ...v0, threshold: 1, version: 1 }, version: 2, next: { threshold: 1, owners: [alice] }, owners: [alice] })
    const client = connect(url, { reconnectPeriod: 0, username: 'test-reader', password: TEST_READER_USER['test-reader'] })
    onTestFinished(async () => { await client.endAsync(true) })
    client.on('error', () => {})
    await new Promise<void>((resolve) => { client.once('connect', () => { resolve() }) })
    const before = drops.length
    await client.publishAsync(fleetFilesTopic('default'), Buffer.from(encodeFleetFiles([v1, v2forged])), { qos: 1, retain: true })
    await client.publishAsync(fleetFilesTopic('default'), Buffer.alloc(0), { qos: 1, retain: true }) // nor may a client clear it
    await waiter.until(() => drops.length >= before + 2, 'both refused')
    expect(drops.slice(before).map((d) => [d.reason, d.code])).toEqual([['fleet_file_forbidden', 'ERR_FORBIDDEN'], ['fleet_file_forbidden', 'ERR_FORBIDDEN']])
    // What a new subscriber is handed is still the gateway's: v1 alone.
    const retained = await new Promise<Uint8Array>((resolve) => {
      client.on('message', (topic, payload) => { if (topic === fleetFilesTopic('default')) resolve(new Uint8Array(payload)) })
      void client.subscribeAsync(fleetFilesTopic('default'), { qos: 1 })
    })
    expect(decodeFleetFiles(retained).map((f) => toBase64url(f))).toEqual([toBase64url(v1)])
    expect(device.fleetPolicy?.version).toBe(1)
    expect(warnings.filter((w) => w.code?.startsWith('ERR_FLEET') === true || w.code === 'ERR_NOT_OWNER' || w.code === 'ERR_TOO_FEW_OWNERS')).toEqual([])
  }, 30_000)

  it('a hybrid device whose mesh has no neighbour hands the retained fleet files to its node, which keeps them', async () => {
    const waiter = new Waiter()
    const { gateway: gw, url } = await gateway(waiter, { fleetPolicy: v0, mesh: { host: '127.0.0.1', mdns: false, dialTarget: 0, announceLinks: 0 } }, { keys: keysFor(157) })
    expect(gw.mesh?.updateFleet(v1)).toBe('added') // retained before the device comes: handed on its subscription
    const dir = await tempDir()
    const { device } = await startDevice({ mode: 'hybrid', broker: { url, reconnect: FAST_RECONNECT }, mesh: { host: '127.0.0.1', mdns: false, dialTarget: 0 }, sensors: 'temperature', dataDir: dir, fleetFile: v0 }, { keys: keysFor(158) }, waiter)
    await waiter.until(() => device.node?.fleetPolicy?.version === 1, 'the hybrid device\'s node took v1 from the broker', 5000)
    expect(device.node?.links.size).toBe(0)
    await expect.poll(async () => { try { return JSON.parse(await readFile(join(dir, 'fleet-files.json'), 'utf8')) as string[] } catch { return [] } }, { timeout: 5000 }).toEqual([toBase64url(v1)])
  }, 30_000)
})

it('a broker device checks what it reads there as a mesh node would (an external broker checks nothing): the same codes, nothing changes', async () => {
  const errors: string[] = []
  const policies: number[] = []
  const onError = (e: Error): void => { errors.push(isMeshError(e) ? e.code : 'not a MeshError') }
  const take = brokerFleetFiles(brokerFleetChain({ given: v0, files: [], dataDir: undefined }, (p) => { policies.push(p.version ?? 0) }, onError), onError)
  const shortSigned = signFleetFile({ current: v0, version: 1, next: { threshold: 1, owners: [carol] }, owners: [alice] }) // one of two owners
  const stranger = signFleetFile({ current: { ...v0, threshold: 1, owners: parseFleetPolicy({ fleet: 'default', threshold: 1, owners: owners(carol) }).owners }, version: 1, next: { threshold: 1, owners: [carol] }, owners: [carol] })
  take(encodeFleetFiles([shortSigned]))
  take(encodeFleetFiles([stranger]))
  take(encodeCbor(['not bytes']))
  take(new Uint8Array([0xff, 0x00]))
  take(encodeCbor(Array.from({ length: 17 }, () => v1)))
  expect(errors).toEqual(['ERR_TOO_FEW_OWNERS', 'ERR_NOT_OWNER', 'ERR_BAD_FLEET_FILE', 'ERR_BAD_FLEET_FILE', 'ERR_BAD_FLEET_FILE'])
  expect(policies).toEqual([])
  take(encodeFleetFiles([v1]))
  take(encodeFleetFiles([v1])) // known: nothing checked, nothing reported
  expect(policies).toEqual([1])
  // An older file with other bytes than the one held: no rollback by replay.
  const other = cosign(signFleetFile({ current: v0, version: 1, next: { threshold: 1, owners: [alice] }, owners: [alice] }), v0, bob)
  take(encodeFleetFiles([other]))
  expect(errors.at(-1)).toBe('ERR_FLEET_STALE')
  expect(policies).toEqual([1])
})
