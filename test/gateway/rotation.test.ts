import { join } from 'node:path'
import { expect, it, onTestFinished } from 'vitest'
import { cosign, createHandover, encodeFrame, enroll, parseFleetPolicy, rotate, toBase64url, verifyCredential, type KeyPair } from '../../shared/index.js'
import { MeshNode, type DropInfo } from '../../mesh/index.js'
import { createMemoryNetwork, type MemoryNetwork } from '../../mesh/testing.js'
import type { DeviceInfo, Reading } from '../../gateway/index.js'
import { describeNet } from '../helpers/netns.js'
import { tempDir } from '../shared/support.js'
import { MESH_LINK, MESH_ROUTING, barrier, linked, meshAddress, nextEvent, seededKeys, startMeshGateway } from './support.js'

/**
 * A device rotates its key (issue 13): the old key signs the handover, the owners (2 of 2) sign the
 * rotation (a revocation "rotated" naming the successor) and re-enroll the new key. At the gateway
 * the device stays one row with both keys listed, its history holds the readings of both keys, also
 * after a restart from the store; the old key is refused from then on: its link, and its frames.
 */

const alice = seededKeys(951)
const bob = seededKeys(952)
const oldKey = seededKeys(953)
const newKey = seededKeys(954)
const policy = parseFleetPolicy({ fleet: 'default', threshold: 2, owners: [alice, bob].map((o: KeyPair) => ({ key: toBase64url(o.publicKey) })) })
const routing = { ...MESH_ROUTING, fleetPolicy: policy }
const T0 = 1_800_000_000

async function device (net: MemoryNetwork, name: string, keys: KeyPair, peers: string[]): Promise<MeshNode> {
  const node = new MeshNode({ name, host: name, mdns: false, peers, dialTarget: 0, announceLinks: 0, link: MESH_LINK, routing }, { keys, transport: net.createTransport(MESH_LINK, { keys }) })
  onTestFinished(async () => { await node.stop() })
  await node.start()
  return node
}

async function publishTo (gatewayReadings: () => Promise<Reading>, node: MeshNode, v: number): Promise<Reading> {
  const waiting = gatewayReadings()
  node.publish('telemetry', [{ n: 'temp', u: 'Cel', v }], { time: T0 + v })
  return await waiting
}

describeNet('key rotation at the gateway', () => {
  it('one device, both keys, readings before and after in one history; the old key refused at the link and for its frames', async () => {
    const path = join(await tempDir(), 'gateway.db')
    const net = createMemoryNetwork({ seed: 95 })
    const http = { host: '127.0.0.1', port: 0 }
    const gw = await startMeshGateway(net, { fleetPolicy: policy, store: path, http })
    const api = async (p: string): Promise<any> => await (await fetch(`http://127.0.0.1:${gw.ports.http ?? 0}${p}`)).json() // eslint-disable-line @typescript-eslint/no-explicit-any

    const before = await device(net, 'sensor', oldKey, [meshAddress(gw.mesh)])
    await linked(gw.mesh!, oldKey.id)
    await barrier([gw.mesh, before], [before, gw.mesh])
    for (const v of [1, 2]) await publishTo(async () => await nextEvent<Reading>(gw, 'reading', (r) => r.origin === oldKey.id), before, v)

    // The rotation: the old key hands over, the owners sign it and re-enroll the new key.
    const handover = createHandover({ fleet: 'default', oldKeys: oldKey, newPublicKey: newKey.publicKey })
    const rotation = cosign(rotate({ policy, handover, owners: [alice] }), policy, bob)
    const credential = cosign(enroll({ policy, publicKey: newKey.publicKey, previous: oldKey.id, name: 'sensor', cti: Uint8Array.of(7), owners: [alice] }), policy, bob)
    expect(verifyCredential(credential, policy).previous).toBe(oldKey.id)
    const rotated = nextEvent<{ from: string, to: string }>(gw, 'rotated')
    const refused: DropInfo[] = []
    gw.mesh!.on('drop', (info) => { if (info.code === 'ERR_REVOKED') refused.push(info) })
    expect(before.revoke(rotation)).toBe('added') // spread from any node: here the device's own, by gossip to the gateway
    expect(await rotated).toEqual({ from: oldKey.id, to: newKey.id })
    expect(gw.revocations?.has(oldKey.id)).toBe(true)
    // The gateway dropped the old key's link; it dials again and is refused at the link.
    while (refused.length === 0) await gw.mesh!.next('drop', { signal: AbortSignal.timeout(5000) })
    expect(gw.mesh!.links.has(oldKey.id)).toBe(false)

    const after = await device(net, 'sensor-2', newKey, [meshAddress(gw.mesh)])
    await linked(gw.mesh!, newKey.id)
    await barrier([gw.mesh, after], [after, gw.mesh])
    for (const v of [3, 4]) await publishTo(async () => await nextEvent<Reading>(gw, 'reading', (r) => r.origin === newKey.id), after, v)
    // A frame signed by the old key after the rotation is refused wherever the rotation reached: the new device's node and the gateway's.
    const late = encodeFrame({ keys: oldKey, seq: 1_000_000, time: T0 + 5, records: [{ n: 'temp', u: 'Cel', v: 5 }] })
    expect(after.inject(late)).toMatchObject({ verdict: 'refused', code: 'ERR_REVOKED' })
    expect(gw.mesh!.inject(late)).toMatchObject({ verdict: 'refused', code: 'ERR_REVOKED' })

    const check = async (): Promise<void> => {
      const { devices } = await api('/api/devices') as { devices: DeviceInfo[] }
      expect(devices.map((d) => d.id)).toEqual([newKey.id]) // one row
      const row = devices[0] as DeviceInfo
      expect(row.keys?.map((k) => k.id)).toEqual([oldKey.id, newKey.id])
      expect(row.keys?.[0]?.retiredAt).toBeTypeOf('number')
      expect(row.readings).toBe(4)
      for (const id of [newKey.id, oldKey.id]) {
        const history = await api(`/api/devices/${id}/history`) as { readings: Array<{ values: Array<{ v: number }>, origin?: string }> }
        expect(history.readings.map((r) => r.values[0]?.v)).toEqual([1, 2, 3, 4])
        const chart = await api(`/api/devices/${id}/history?since=${T0}&until=${T0 + 60}&step=1m`) as { series: Array<{ points: Array<{ count: number }> }> }
        expect(chart.series[0]?.points[0]?.count).toBe(4)
      }
      const page = await api(`/api/devices/${newKey.id}/history?limit=3`) as { readings: Array<{ values: Array<{ v: number }>, origin?: string }>, next: string }
      expect(page.readings.map((r) => [r.values[0]?.v, r.origin])).toEqual([[1, oldKey.id], [2, oldKey.id], [3, undefined]])
      const rest = await api(`/api/devices/${newKey.id}/history?limit=3&cursor=${page.next}`) as { readings: Array<{ values: Array<{ v: number }> }> }
      expect(rest.readings.map((r) => r.values[0]?.v)).toEqual([4])
      const recent = await api(`/api/devices/${newKey.id}/readings?limit=3`) as { readings: Array<{ values: Array<{ v: number }> }> }
      expect(recent.readings.map((r) => r.values[0]?.v)).toEqual([2, 3, 4])
    }
    await check()
    // The registry is saved behind (every second); after a restart it is one device still, with both keys.
    await gw.stop()
    await before.stop()
    const again = await startMeshGateway(net, { fleetPolicy: policy, store: path, http })
    const url = `http://127.0.0.1:${again.ports.http ?? 0}`
    const { devices } = await (await fetch(`${url}/api/devices`)).json() as { devices: DeviceInfo[] }
    expect(devices.map((d) => [d.id, d.keys?.length, d.readings])).toEqual([[newKey.id, 2, 4]])
    const history = await (await fetch(`${url}/api/devices/${oldKey.id}/history`)).json() as { readings: unknown[] }
    expect(history.readings).toHaveLength(4)
  })
})
