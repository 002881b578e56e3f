import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { cosign, parseFleetPolicy, revoke, signFleetFile, toBase64url, type KeyPair } from '../../shared/index.js'
import { MeshNode } from '../../mesh/index.js'
import type { Device } from '../../firmware-sim/index.js'
import { LINK, ROUTING, Waiter, addressOf, keysFor, meshInit, memoryNet, startDevice } from './device-support.js'
import { tempDir } from './support.js'

/**
 * A device keeps the signed fleet files its node took (firmware-sim/device/fleet-files.ts): after a
 * restart, with no neighbour yet, the newest owners are in force (a revocation they signed holds,
 * one signed by the rotated-out owner key does not).
 */

const [alice, bob, carol] = [keysFor(951), keysFor(952), keysFor(953)]
const owners = (...keys: KeyPair[]): Array<{ key: string }> => keys.map((o) => ({ key: toBase64url(o.publicKey) }))
const v0 = parseFleetPolicy({ fleet: 'default', threshold: 2, owners: owners(alice, bob) })
const p1 = parseFleetPolicy({ fleet: 'default', threshold: 2, owners: owners(carol, bob), version: 1 })
const v1 = cosign(signFleetFile({ current: v0, version: 1, next: { threshold: 2, owners: [carol, bob] }, owners: [alice] }), v0, bob)

describe('a device keeps the fleet files the mesh brought', () => {
  it('after a restart the newest owners are in force before any neighbour tells it', async () => {
    const waiter = new Waiter()
    const timer = setInterval(waiter.kick, 20)
    onTestFinished(() => { clearInterval(timer) })
    const net = memoryNet(95)
    const ownerKeys = keysFor(954)
    const owner = new MeshNode({ name: 'owner', host: 'owner', mdns: false, dialTarget: 0, announceLinks: 0, link: LINK, routing: { ...ROUTING, fleetPolicy: v0 } },
      { keys: ownerKeys, transport: net.createTransport(LINK, { keys: ownerKeys }) })
    onTestFinished(async () => { await owner.stop() })
    await owner.start()
    const dataDir = await tempDir()
    const keys = keysFor(955)
    const start = async (peers: string[]): Promise<Device> => (await startDevice({
      name: 'lamp', mode: 'mesh', sensors: 'battery', interval: 60_000, dataDir, fleetFile: v0, mesh: meshInit('lamp', peers)
    }, { keys, transport: (k: KeyPair) => net.createTransport(LINK, { keys: k }) }, waiter)).device
    let device = await start([addressOf(owner)])
    expect(owner.updateFleet(v1)).toBe('added')
    await waiter.until(() => device.node?.fleetPolicy?.version === 1, 'v1 at the lamp')
    const kept = join(dataDir, 'fleet-files.json')
    await waiter.until(() => existsSync(kept) && readFileSync(kept, 'utf8').includes(toBase64url(v1)), 'v1 kept in the data directory')
    await device.stop()

    device = await start([])
    expect(device.node?.fleetPolicy).toMatchObject({ version: 1, owners: [{ id: carol.id }, { id: bob.id }] })
    const victim = keysFor(956).id
    const byOld = cosign(revoke({ policy: v0, device: victim, reason: 'lost', owners: [alice] }), v0, bob)
    expect(device.node?.revoke(byOld)).toBe('ERR_TOO_FEW_OWNERS')
    const byNew = cosign(revoke({ policy: p1, device: victim, reason: 'lost', owners: [carol] }), p1, bob)
    expect(device.node?.revoke(byNew)).toBe('added')
  }, 30_000)
})
