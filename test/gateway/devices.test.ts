import { describe, expect, it } from 'vitest'
import { DeviceRegistry, type Path, type Reading, type StatusEvent } from '../../gateway/index.js'
import { seededKeys } from './support.js'

const keys = seededKeys(31)
let clock = 1_000_000

function reading (seq: number, path: Path = 'broker', id = keys.id): Reading {
  clock += 1000
  return { origin: id, fleet: 'default', seq, time: 1_767_225_600 + seq, deviceTopic: 'telemetry', records: [{ n: 'temp', v: seq }], frame: new Uint8Array(), path, receivedAt: clock }
}

const online: StatusEvent = { deviceId: keys.id, fleet: 'default', status: { state: 'online', publicKey: keys.publicKey, name: 'attic' }, path: 'broker' }
const offline: StatusEvent = { deviceId: keys.id, fleet: 'default', status: { state: 'offline' }, path: 'broker' }

describe('DeviceRegistry', () => {
  it('tracks presence, name, key and last seen from statuses', () => {
    const registry = new DeviceRegistry({}, { now: () => 42 })
    registry.applyStatus(online)
    expect(registry.get(keys.id)).toMatchObject({ id: keys.id, online: true, name: 'attic', lastSeen: 42, restarts: 0, readings: 0 })
    expect(registry.get(keys.id)?.pk).toBe(Buffer.from(keys.publicKey).toString('base64url'))
    registry.applyStatus(offline)
    expect(registry.get(keys.id)?.online).toBe(false)
  })

  it('a first status after mesh readings (a hybrid device) is no restart; online again after offline is one', () => {
    const registry = new DeviceRegistry()
    registry.recordReading(reading(1, 'mesh'))
    registry.recordReading(reading(2, 'mesh'))
    registry.applyStatus(online)
    expect(registry.get(keys.id)?.restarts).toBe(0)
    registry.applyStatus(offline)
    registry.applyStatus(online)
    expect(registry.get(keys.id)?.restarts).toBe(1)
  })

  it('keeps the actuators\' state its readings report (shared/actuators.ts); a late catch-up reading does not replace it; a sensor named alike with the wrong type is no actuator', () => {
    const registry = new DeviceRegistry()
    const at = (seq: number, records: Reading['records']): Reading => ({ ...reading(seq), records })
    registry.recordReading(at(1, [{ n: 'temp', v: 20 }]))
    expect(registry.get(keys.id)?.actuators).toBeUndefined()
    registry.recordReading(at(3, [{ n: 'relay', vb: true }, { n: 'light', vb: false }, { n: 'light/level', v: 40 }]))
    registry.recordReading(at(2, [{ n: 'relay', vb: false }])) // sampled before: a catch-up
    registry.recordReading(at(4, [{ n: 'light/level', v: 60 }, { n: 'valve', v: 1 }]))
    const info = registry.get(keys.id)
    expect(info?.actuators).toEqual({ relay: { relay: true }, light: { light: false, 'light/level': 60 } })
    // A snapshot is a copy: changing it changes nothing in the registry.
    if (info?.actuators?.relay !== undefined) info.actuators.relay.relay = false
    expect(registry.get(keys.id)?.actuators?.relay).toEqual({ relay: true })
  })

  it('counts sequence gaps between consecutive readings; late arrivals fill them; a restart skip is not a loss', () => {
    const registry = new DeviceRegistry({ gapSettleMs: 0 })
    registry.applyStatus(online)
    for (const seq of [1, 2, 5, 6]) registry.recordReading(reading(seq))
    expect(registry.get(keys.id)).toMatchObject({ seqGaps: 2, lastSeq: 6, readings: 4 })
    registry.recordReading(reading(4)) // late, inside the replay window
    expect(registry.get(keys.id)?.seqGaps).toBe(1)
    // The device restarts: its sequence store skips the rest of a reserved block (shared/sequence.ts).
    registry.applyStatus(offline)
    registry.applyStatus(online)
    registry.recordReading(reading(1001))
    expect(registry.get(keys.id)).toMatchObject({ seqGaps: 1, restarts: 1, lastSeq: 1001 })
    registry.recordReading(reading(1003))
    expect(registry.get(keys.id)?.seqGaps).toBe(2)
  })

  it('reports the path: broker, mesh, or both while both were seen recently', () => {
    const registry = new DeviceRegistry({ pathWindowMs: 5000 })
    registry.recordReading(reading(1, 'broker'))
    expect(registry.get(keys.id)?.path).toBe('broker')
    registry.recordReading(reading(2, 'mesh'))
    expect(registry.get(keys.id)?.path).toBe('both')
    for (let seq = 3; seq < 10; seq++) registry.recordReading(reading(seq, 'mesh'))
    expect(registry.get(keys.id)?.path).toBe('mesh')
  })

  it('keeps a bounded history, filtered by sampling time', () => {
    const registry = new DeviceRegistry({ historySize: 3 })
    for (let seq = 1; seq <= 5; seq++) registry.recordReading(reading(seq))
    expect(registry.readings(keys.id)?.map((r) => r.seq)).toEqual([3, 4, 5])
    expect(registry.readings(keys.id, { since: 1_767_225_600 + 3 })?.map((r) => r.seq)).toEqual([4, 5])
    expect(registry.readings(keys.id, { limit: 1 })?.map((r) => r.seq)).toEqual([5])
    expect(registry.readings('nobody')).toBeUndefined()
  })

  it('counts drops against known devices only, and bounds the number of devices', () => {
    const registry = new DeviceRegistry({ maxDevices: 2 })
    registry.recordDrop({ reason: 'bad_signature', code: 'ERR_BAD_SIGNATURE', message: '', deviceId: keys.id })
    expect(registry.size).toBe(0)
    registry.applyStatus(online)
    registry.recordDrop({ reason: 'bad_signature', code: 'ERR_BAD_SIGNATURE', message: '', deviceId: keys.id })
    expect(registry.get(keys.id)).toMatchObject({ signatureFailures: 1, drops: { bad_signature: 1 } })
    registry.recordReading(reading(1, 'broker', seededKeys(32).id))
    registry.recordReading(reading(1, 'broker', seededKeys(33).id))
    expect(registry.size).toBe(2)
    expect(registry.get(keys.id)).toBeUndefined()
    expect(registry.evictions).toBe(1)
  })

  it('mesh devices, which publish no status, are online while their readings come through the mesh', () => {
    let now = 0
    const registry = new DeviceRegistry({ presenceMs: 10_000 }, { now: () => now })
    registry.recordReading({ ...reading(1, 'mesh'), receivedAt: 0 })
    expect(registry.get(keys.id)).toMatchObject({ online: true, path: 'mesh' })
    expect(registry.get(keys.id)?.status).toBeUndefined()
    expect(registry.onMesh(keys.id)).toBe(true)
    now = 10_001
    expect(registry.get(keys.id)?.online).toBe(false)
    expect(registry.list()[0]?.online).toBe(false)
    // A hybrid device whose MQTT connection died (last will) is still present on the mesh.
    registry.applyStatus(online)
    registry.applyStatus(offline)
    registry.recordReading({ ...reading(2, 'mesh'), receivedAt: now })
    expect(registry.get(keys.id)).toMatchObject({ online: true, status: 'offline' })
    registry.markAllOffline()
    expect(registry.get(keys.id)?.online).toBe(false)
  })

  it('a duplicate by another path counts that path when it is trustworthy: the mesh, or the connection that announced the device', () => {
    const registry = new DeviceRegistry({}, { now: () => clock })
    registry.applyStatus({ ...online, from: 'client-1' })
    registry.recordReading(reading(1, 'mesh'))
    const duplicate = { reason: 'duplicate' as const, code: 'ERR_REPLAY' as const, message: '', deviceId: keys.id, seq: 1, path: 'broker' as const }
    registry.recordDrop({ ...duplicate, from: 'someone-else' })
    expect(registry.get(keys.id)?.path).toBe('mesh')
    registry.recordDrop({ ...duplicate, from: 'client-1' })
    expect(registry.get(keys.id)).toMatchObject({ path: 'both', readings: 1, drops: { duplicate: 2 } })

    const other = seededKeys(34)
    registry.recordReading(reading(1, 'broker', other.id))
    registry.recordDrop({ ...duplicate, deviceId: other.id, path: 'mesh' })
    expect(registry.get(other.id)?.path).toBe('both')
  })

  it('a jump in sequence numbers beyond restartJump is a restart (a fresh in-memory sequence), not a loss', () => {
    const registry = new DeviceRegistry({ restartJump: 1000, gapSettleMs: 0 })
    registry.recordReading(reading(5, 'mesh'))
    registry.recordReading(reading(5 + 1001 + 1, 'mesh'))
    expect(registry.get(keys.id)).toMatchObject({ seqGaps: 0, restarts: 1 })
    registry.recordReading(reading(5 + 1001 + 1 + 3, 'mesh'))
    expect(registry.get(keys.id)).toMatchObject({ seqGaps: 2, restarts: 1 })
  })

  it('remembers when the last signature failure was seen', () => {
    const registry = new DeviceRegistry({}, { now: () => 77 })
    registry.recordReading(reading(1))
    registry.recordDrop({ reason: 'bad_signature', code: 'ERR_BAD_SIGNATURE', message: '', deviceId: keys.id, path: 'mesh' })
    expect(registry.get(keys.id)).toMatchObject({ signatureFailures: 1, lastSignatureFailure: 77 })
  })

  it('marks a cloned identity: how many second copies were refused, since when, the latest seq', () => {
    let now = 100
    const registry = new DeviceRegistry({}, { now: () => now })
    registry.recordReading(reading(1))
    expect(registry.get(keys.id)?.clone).toBeUndefined()
    const clone = { reason: 'cloned_identity' as const, code: 'ERR_CLONED_IDENTITY' as const, message: '', deviceId: keys.id, path: 'mesh' as const }
    registry.recordDrop({ ...clone, seq: 1 })
    now = 200
    registry.recordDrop({ ...clone, seq: 2 })
    expect(registry.get(keys.id)).toMatchObject({ clone: { code: 'ERR_CLONED_IDENTITY', copies: 2, since: 100, last: 200, seq: 2 }, drops: { cloned_identity: 2 } })
    const snapshot = registry.get(keys.id)
    registry.recordDrop({ ...clone, seq: 3 })
    expect(snapshot?.clone?.copies).toBe(2) // a snapshot, not a live view
  })
})
