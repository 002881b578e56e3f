import { describe, expect, it } from 'vitest'
import { DeviceRegistry, type Reading, type StatusEvent } from '../../gateway/index.js'
import { seededKeys } from './support.js'

/** The registry's side of a key rotation (gateway/devices.ts `rotate`): one device under its current key, all keys listed, idempotent, across a restore. */

const [a, b, c] = [seededKeys(971), seededKeys(972), seededKeys(973)]
const reading = (id: string, seq: number): Reading =>
  ({ origin: id, fleet: 'default', seq, time: 1_800_000_000 + seq, deviceTopic: 'telemetry', records: [{ n: 'temp', v: seq }], frame: new Uint8Array(), path: 'mesh', receivedAt: seq })
const status = (id: string, publicKey: Uint8Array, name: string): StatusEvent => ({ deviceId: id, fleet: 'default', status: { state: 'online', publicKey, name }, path: 'broker' })

describe('DeviceRegistry: key rotation', () => {
  it('moves the old key\'s counters and readings under the new id, lists every key (a chain of two rotations), and ignores a retired key\'s status', () => {
    const registry = new DeviceRegistry({ gapSettleMs: 0 })
    registry.applyStatus(status(a.id, a.publicKey, 'attic'))
    for (const seq of [1, 2, 4]) registry.recordReading(reading(a.id, seq))
    expect(registry.rotate(a.id, b.id, 100)).toBe(true)
    expect(registry.rotate(a.id, b.id, 100)).toBe(false) // known: nothing changes
    registry.recordReading(reading(b.id, 5))
    expect(registry.rotate(b.id, c.id, 200)).toBe(true)
    registry.recordReading(reading(c.id, 6))
    expect(registry.list().map((d) => d.id)).toEqual([c.id])
    const device = registry.get(a.id) // any of its ids finds it
    expect(device).toMatchObject({ id: c.id, name: 'attic', readings: 5, seqGaps: 1 })
    expect(device?.keys).toEqual([{ id: a.id, pk: Buffer.from(a.publicKey).toString('base64url'), retiredAt: 100 }, { id: b.id, retiredAt: 200 }, { id: c.id }])
    expect(registry.readings(b.id)?.map((r) => r.seq)).toEqual([1, 2, 4, 5, 6])
    expect(registry.keyIds(c.id)).toEqual([a.id, b.id, c.id])
    // A retired key's retained status (still on the broker) makes no row of its own.
    registry.applyStatus(status(a.id, a.publicKey, 'old'))
    registry.applyKey(b.id, b.publicKey)
    expect(registry.list().map((d) => [d.id, d.name])).toEqual([[c.id, 'attic']])
    expect(registry.rotate(c.id, a.id, 300)).toBe(false) // a cycle is no rotation
  })

  it('after a restart (restore from the saved devices, old entries included) it is one device again, counted once', () => {
    const first = new DeviceRegistry()
    for (const seq of [1, 2]) first.recordReading(reading(a.id, seq))
    const savedOld = first.takeChanged()
    first.rotate(a.id, b.id, 100)
    first.recordReading(reading(b.id, 3))
    const saved = [...savedOld, ...first.takeChanged()] // the store keeps the old key's row as it was last written
    const second = new DeviceRegistry()
    second.restore(saved)
    expect(second.list().map((d) => [d.id, d.readings])).toEqual([[b.id, 3]])
    // The rotation arrives again (the mesh hands every revocation to a new link): nothing is added twice.
    expect(second.rotate(a.id, b.id, 100)).toBe(false)
    expect(second.get(a.id)?.readings).toBe(3)
  })
})
