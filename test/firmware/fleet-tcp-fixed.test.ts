import { describe, expect, it, onTestFinished } from 'vitest'
import { enroll, generateKeyPair, parseFleetPolicy, seededRandom, toBase64url, type DeviceId } from '../../shared/index.js'
import { Fleet } from '../../firmware-sim/index.js'

/**
 * A fleet on a fixed line over real TCP, each node with its own transport (FleetInit `nodeTransport`,
 * what `iotmesh experiment revocation --transport tcp` runs): the links are the line's (device i
 * dials i − 1, device 0 the gateway), and every handshake shows and checks a credential, so a device
 * enrolled by someone who is no owner is refused by its neighbours while the honest ones link. On
 * the fleet's own transport (in memory, or TCP without `nodeTransport`) no credential is shown and
 * that device would link like any other.
 */

async function until (check: () => boolean, what: () => string, ms: number): Promise<void> {
  const t0 = Date.now()
  while (!check()) {
    if (Date.now() - t0 > ms) throw new Error(`not within ${ms} ms: ${what()}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

describe('fleet simulator: a fixed line over TCP, each node its own transport', () => {
  it('links the line, checks a credential at every handshake, and refuses a device a stranger enrolled', async () => {
    const owners = [generateKeyPair(seededRandom(71).bytes(32)), generateKeyPair(seededRandom(72).bytes(32))]
    const policy = parseFleetPolicy({ fleet: 'default', threshold: 2, owners: owners.map((o) => ({ key: toBase64url(o.publicKey) })) })
    const stranger = generateKeyPair(seededRandom(73).bytes(32))
    const strangers = parseFleetPolicy({ fleet: 'default', threshold: 1, owners: [{ key: toBase64url(stranger.publicKey) }] })
    const forged = 3
    const fleet = new Fleet({
      devices: 4,
      mode: 'mesh',
      transport: 'tcp',
      nodeTransport: true,
      mdns: false,
      topology: 'line',
      interval: 60_000,
      enrollment: {
        policy,
        credential: (keys, index) => index === forged
          ? enroll({ policy: strangers, publicKey: keys.publicKey, name: 'forged', cti: seededRandom(80).bytes(8), owners: [stranger] })
          : enroll({ policy, publicKey: keys.publicKey, name: `sim-${index}`, cti: seededRandom(90 + index).bytes(8), owners })
      }
    })
    onTestFinished(async () => { await fleet.stop() })
    const refused: Array<{ code: string, from?: DeviceId }> = []
    await fleet.start()
    const node = (i: number): NonNullable<NonNullable<Fleet['devices'][number]['device']>['node']> => {
      const n = fleet.devices[i]?.device?.node
      if (n === undefined) throw new Error(`device ${i} has no node`)
      return n
    }
    const id = (i: number): DeviceId => fleet.devices[i]?.keys.id as DeviceId
    node(2).on('drop', (d) => { if (d.from === id(forged)) refused.push({ code: d.code, ...(d.from === undefined ? {} : { from: d.from }) }) })
    const gateway = fleet.gateway?.mesh
    if (gateway === undefined) throw new Error('no gateway node')
    const open = (a: { links: { get: (id: DeviceId) => { open: boolean } | undefined } }, b: DeviceId): boolean => a.links.get(b)?.open === true
    // The honest part of the line: gateway – 0 – 1 – 2, each link's credential verified at its handshake.
    await until(() => open(gateway, id(0)) && open(node(0), id(1)) && open(node(1), id(2)), () => `line links: ${[0, 1, 2].map((i) => [...node(i).links.keys()].length).join(', ')}`, 20_000)
    expect(node(1).credentials?.credentialOf(id(0))?.device).toBe(id(0))
    expect(node(1).credentials?.credentialOf(id(2))?.device).toBe(id(2))
    expect(gateway.credentials?.credentialOf(id(0))?.device).toBe(id(0))
    // The device a stranger enrolled dials 2 (its earlier neighbour) again and again: refused every time, never linked.
    await until(() => (node(2).credentials?.counters.refused.ERR_NOT_OWNER ?? 0) + (node(2).credentials?.counters.refused.ERR_TOO_FEW_OWNERS ?? 0) > 0, () => `refusals at device 2: ${JSON.stringify(node(2).credentials?.counters.refused)}`, 20_000)
    expect(open(node(2), id(forged))).toBe(false)
    expect(node(forged).links.size).toBe(0)
  }, 60_000)
})
