import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { cosign, parseFleetPolicy, signFleetConfig, toBase64url, type KeyPair, type RemoteSettings } from '../../shared/index.js'
import { MeshNode } from '../../mesh/index.js'
import { checkRemoteSettings, createDevice, silentLogger, type Device } from '../../firmware-sim/index.js'
import { startMeshGateway } from '../gateway/support.js'
import { LINK, ROUTING, Waiter, addressOf, keysFor, meshInit, memoryNet } from './device-support.js'
import { codeOf, tempDir } from './support.js'

/**
 * A device applies owner-signed configurations (firmware-sim/device/signed-config.ts) that reach it
 * through the mesh: the highest valid version for its id or one of its groups, the interval at
 * once, the rest at its next start; it refuses an older version (ERR_CONFIG_STALE) and one whose
 * settings do not hold (ERR_BAD_CONFIG), and the gateway shows the version applied and the reason
 * of the last refusal; what it applied survives a restart.
 */

const alice = keysFor(801)
const bob = keysFor(802)
const policy = parseFleetPolicy({ fleet: 'default', threshold: 2, owners: [alice, bob].map((o: KeyPair) => ({ key: toBase64url(o.publicKey) })) })
const signed = (target: string, version: number, settings: RemoteSettings): Uint8Array =>
  cosign(signFleetConfig({ policy, target, version, settings, owners: [alice] }), policy, bob)

describe('a device applies owner-signed configuration', () => {
  it('checks remote settings with the device configuration\'s validators (ERR_BAD_CONFIG naming the setting)', () => {
    expect(checkRemoteSettings({ interval: 500, sensors: 'battery', actuators: ['relay'] }, 'test')).toMatchObject({ interval: 500, sensors: ['battery'] })
    expect(codeOf(() => checkRemoteSettings({ interval: 5 }, 'test'))).toBe('ERR_BAD_CONFIG')
    expect(codeOf(() => checkRemoteSettings({ sensors: ['warp-drive'] }, 'test'))).toBe('ERR_BAD_CONFIG')
    expect(codeOf(() => checkRemoteSettings({ actuators: 'heater' }, 'test'))).toBe('ERR_BAD_CONFIG')
    expect(codeOf(() => checkRemoteSettings({ rules: { rules: [{ nonsense: true }] } }, 'test'))).toBe('ERR_BAD_CONFIG')
    // A device without a mesh path cannot run rules: refused, or it would not start again.
    const hall = keysFor(820).id
    const rules = { rules: [{ name: 'fan', when: { all: [{ device: hall, sensor: 'temp', above: 30 }] }, then: [{ device: hall, action: 'relay/set', args: { on: true } }] }] }
    expect(codeOf(() => checkRemoteSettings({ rules }, 'test'))).toBe('no error')
    expect(codeOf(() => checkRemoteSettings({ rules }, 'test', { rules: false }))).toBe('ERR_BAD_CONFIG')
  })

  it('applies a new interval at once, refuses an older version and invalid settings with a reason the gateway shows, and keeps what it applied across a restart', async () => {
    const net = memoryNet(61)
    const waiter = new Waiter()
    const dataDir = await tempDir()
    const ownerKeys = keysFor(810)
    const owner = new MeshNode({ name: 'owner', host: 'owner', mdns: false, dialTarget: 0, announceLinks: 0, link: LINK, routing: { ...ROUTING, fleetPolicy: policy } },
      { keys: ownerKeys, transport: net.createTransport(LINK, { keys: ownerKeys }) })
    await owner.start()
    const keys = keysFor(811)
    const start = async (): Promise<Device> => {
      const device = await createDevice({
        name: 'kitchen', interval: 200, sensors: ['battery'], stopTimeout: 1000, announceLinks: 0, meshCheckMs: 50, dataDir, fleetFile: policy, groups: ['kitchen'],
        mesh: meshInit('dev', [addressOf(owner)])
      }, { logger: silentLogger, keys, transport: net.createTransport(LINK, { keys }) })
      device.on('config', waiter.kick)
      device.on('tick', waiter.kick)
      return device
    }
    let device = await start()
    const gw = await startMeshGateway(net, { mesh: { host: 'gw', mdns: false, dialTarget: 0, announceLinks: 0, peers: [addressOf(device.node)], link: LINK, routing: ROUTING } })
    gw.on('reading', waiter.kick)
    try {
      await waiter.until(() => device.node?.links.has(owner.id) === true, 'the device linked to the owner node')
      expect(device.configState).toEqual({})
      // Version 2 for the device's group: the interval changes while it runs.
      expect(owner.configure(signed('group:kitchen', 2, { interval: 300 }))).toBe('added')
      await waiter.until(() => device.configState?.version === 2 && device.interval === 300, 'version 2 applied')
      expect(device.interval).toBe(300)
      await waiter.until(() => gw.devices.get(device.id)?.config?.version === 2, 'the gateway shows version 2')

      // Version 1 for the device itself (a new target for the mesh, so it spreads): older than 2, refused.
      expect(owner.configure(signed(device.id, 1, { interval: 100 }))).toBe('added')
      await waiter.until(() => device.configState?.refused !== undefined, 'version 1 refused')
      expect(device.configState?.refused).toMatchObject({ version: 1, code: 'ERR_CONFIG_STALE' })
      expect(device.interval).toBe(300)
      await waiter.until(() => gw.devices.get(device.id)?.config?.refused?.version === 1, 'the refusal at the gateway')
      expect(gw.devices.get(device.id)?.config?.refused?.reason).toMatch(/^ERR_CONFIG_STALE: /)

      // Version 3 with an interval the device's configuration does not allow: refused, naming the setting.
      expect(owner.configure(signed(device.id, 3, { interval: 5 }))).toBe('added')
      await waiter.until(() => device.configState?.refused?.version === 3, 'version 3 refused')
      expect(device.configState?.refused?.code).toBe('ERR_BAD_CONFIG')
      await waiter.until(() => gw.devices.get(device.id)?.config?.refused?.version === 3, 'the reason at the gateway')
      expect(gw.devices.get(device.id)?.config).toMatchObject({ version: 2, refused: { version: 3 } })
      expect(gw.devices.get(device.id)?.config?.refused?.reason).toMatch(/^ERR_BAD_CONFIG: interval from signed configuration v3 must be an integer from 100/)
      expect(device.interval).toBe(300)

      // Version 4 changes the sensors: applied, waiting for the next start.
      expect(owner.configure(signed(device.id, 4, { sensors: ['battery', 'temperature'], interval: 400 }))).toBe('added')
      await waiter.until(() => device.configState?.version === 4 && device.interval === 400, 'version 4 applied')
      expect(device.configState?.restart).toEqual(['sensors'])
      expect(device.interval).toBe(400)
      const kept = JSON.parse(await readFile(join(dataDir, 'signed-config.json'), 'utf8')) as { applied: string }
      expect(typeof kept.applied).toBe('string')

      // A restart: version 4 applied from disk before the first sample (its sensors now), the refusal still reported.
      await device.stop()
      device = await start()
      expect(device.configState).toMatchObject({ version: 4, target: device.id, refused: { version: 3, code: 'ERR_BAD_CONFIG' } })
      expect(device.configState?.restart).toBeUndefined()
      expect(device.interval).toBe(400)
      const reading = await new Promise<string[]>((resolve) => { device.on('reading', (r) => { if (r.topic === 'telemetry') resolve(r.records.map((x) => x.n ?? '')) }) })
      expect(reading.some((n) => n.includes('temp'))).toBe(true)
      // Replaying version 2 to the restarted device changes nothing.
      const replay = signed('group:kitchen', 2, { interval: 300 })
      expect(device.node?.configure(replay)).toBe('known')
      expect(device.configState?.version).toBe(4)
    } finally {
      await device.stop()
      await owner.stop()
    }
  })
})
