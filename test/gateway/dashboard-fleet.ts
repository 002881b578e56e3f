/**
 * A fleet for the dashboard's browser tests (dashboard-views.test.ts) and for docs/dashboard.png:
 * enrolled devices (a fleet file with two owners, one device revoked) that connect to the gateway's
 * broker, publish an hour of readings (three in four by the mesh too: hybrid) and announce mesh links
 * rooted at the gateway. Not a test file.
 */
import type { Gateway } from '../../gateway/index.js'
import { revocationTopic } from '../../gateway/revocations.js'
import {
  GRANTS_TARGET, configTopic, cosign, enroll, frameTopic, onlineStatus, parseFleetPolicy, revoke, seededRandom, signCommandGrants, statusTopic, toBase64url,
  type KeyPair, type SenmlRecord
} from '../../shared/index.js'
import { connectClient, makeFrame, mqttUrl, seededKeys, type TestClient } from './support.js'

export const ownerA = seededKeys(431)
export const ownerB = seededKeys(432)
export const policy = parseFleetPolicy({ fleet: 'default', threshold: 2, owners: [{ key: toBase64url(ownerA.publicKey), name: 'ana' }, { key: toBase64url(ownerB.publicKey), name: 'ben' }] })

const ROOMS = ['kitchen', 'cellar', 'attic', 'garage', 'greenhouse', 'boiler-room', 'hallway', 'bedroom', 'office', 'garden-shed', 'porch', 'laundry']

export interface FleetDevice { index: number, keys: KeyPair, name: string, client: TestClient, seq: number }

/** Every fourth device is a broker device; the others are hybrid (broker and mesh). */
export const hybrid = (index: number): boolean => index % 4 !== 3

/** Device `index`'s keys (seeds 500…, distinct from the owners' and the gateway's). */
export const deviceKeys = (index: number): KeyPair => seededKeys(500 + index)
export const deviceName = (index: number): string => ROOMS[index] ?? `sensor-${String(index + 1).padStart(3, '0')}`

/** A room's readings at `t` (seconds): temperature, humidity, and pressure in Pa on every third device. */
function records (index: number, t: number): SenmlRecord[] {
  const phase = t / 600 + index
  const out: SenmlRecord[] = [
    { n: 'temp', u: 'Cel', v: Math.round((19 + (index % 5) * 0.8 + Math.sin(phase) * 1.2) * 100) / 100 },
    { n: 'hum', u: '%RH', v: Math.round((42 + (index % 7) * 3 + Math.cos(phase / 2) * 4) * 10) / 10 }
  ]
  if (index % 3 === 0) out.push({ n: 'pressure', u: 'Pa', v: Math.round(101_300 + Math.sin(phase / 3) * 180 + index * 7) })
  return out
}

/**
 * Devices `from`…`to - 1` join: each claims its id with an online status (enrolled when
 * `enrolled`), publishes `history` readings spread over the last hour and the last five minutes.
 */
export async function joinDevices (gateway: Gateway, from: number, to: number, options: { history: 'hour' | 'recent', enrolled: boolean }): Promise<FleetDevice[]> {
  const url = mqttUrl(gateway)
  const now = Date.now() / 1000
  // The last hour every 4 min, the last 5 min every 30 s; or only the last 2 min.
  const ages = options.history === 'hour' ? [...Array.from({ length: 14 }, (_, i) => 3600 - i * 240), ...Array.from({ length: 10 }, (_, i) => 270 - i * 30)] : [120, 60, 0]
  const devices: FleetDevice[] = []
  for (let index = from; index < to; index++) {
    const keys = deviceKeys(index)
    const client = await connectClient(url) // one connection claims one device (its online status)
    const credential = options.enrolled ? enroll({ policy, publicKey: keys.publicKey, name: deviceName(index), roles: index === 0 ? ['hub'] : [], cti: Uint8Array.of(index >> 8, index & 0xff), owners: [ownerA, ownerB] }) : undefined
    await client.client.publishAsync(statusTopic('default', keys.id), onlineStatus({ publicKey: keys.publicKey, name: deviceName(index), ...(credential === undefined ? {} : { credential }) }), { qos: 1, retain: true })
    const device = { index, keys, name: deviceName(index), client, seq: 0 }
    for (const age of ages) {
      device.seq++
      const frame = makeFrame(keys, device.seq, { time: now - age, records: records(index, now - age) })
      await client.client.publishAsync(frameTopic('default', keys.id), frame, { qos: 1 })
      // Hybrid devices (three in four, as `npm start` runs them) send each reading by the mesh too: the same bytes, as
      // the gateway's mesh bridge hands them to the ingest (gateway/bridge.ts). The table shows their path as "both".
      if (hybrid(index)) gateway.ingest.handle(frameTopic('default', keys.id), frame, { path: 'mesh' })
    }
    devices.push(device)
  }
  return devices
}

/**
 * Each device announces its mesh links (mesh/links, as mesh/node.ts does): the first `direct` to
 * the gateway's mesh node, every later one to one or two earlier devices (seeded), so the mesh is
 * a tree with a few cross links, several hops deep.
 */
export async function announceLinks (gateway: Gateway, devices: FleetDevice[], all: FleetDevice[], direct = 4): Promise<void> {
  const random = seededRandom(16)
  const gatewayId = gateway.mesh?.id
  for (const device of devices) {
    const peers = new Set<string>()
    if (device.index < direct && gatewayId !== undefined) peers.add(gatewayId)
    else {
      // A parent among the earlier devices (as the fleet simulator's devices dial random earlier ones), sometimes two.
      const earlier = all.filter((d) => d.index < device.index)
      for (let k = 0; k < (random.float() < 0.3 ? 2 : 1); k++) {
        const parent = earlier[Math.floor(random.float() * earlier.length)]
        if (parent !== undefined) peers.add(parent.keys.id)
      }
    }
    device.seq++
    const links = [{ n: 'links', vs: [...peers].join(' ') }, { n: 'degree', v: peers.size }]
    await device.client.client.publishAsync(frameTopic('default', device.keys.id, 'mesh/links'), makeFrame(device.keys, device.seq, { time: Date.now() / 1000, records: links, topic: 'mesh/links' }), { qos: 1 })
  }
}

/** The owners revoke one device and publish a grant policy: the trust panel has something to show. */
export async function ownersAct (gateway: Gateway, revoked: KeyPair): Promise<void> {
  const owner = await connectClient(mqttUrl(gateway))
  const revocation = Buffer.from(cosign(revoke({ policy, device: revoked.id, reason: 'lost in the move', owners: [ownerA] }), policy, ownerB))
  await owner.client.publishAsync(revocationTopic('default', revoked.id), revocation, { qos: 1, retain: true })
  const grants = Buffer.from(signCommandGrants({ policy, version: 2, owners: [ownerA, ownerB], grants: [{ to: 'role:hub', actions: ['relay/#'], on: ['*'], name: 'hubs' }] }))
  await owner.client.publishAsync(configTopic('default', GRANTS_TARGET), grants, { qos: 1, retain: true })
}
