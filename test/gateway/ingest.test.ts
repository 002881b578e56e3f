import { describe, expect, it } from 'vitest'
import { ERROR_CODES, frameTopic, fromHex, generateKeyPair, onlineStatus, statusTopic, telemetryTopic, toHex, type KeyPair } from '../../shared/index.js'
import {
  DROP_REASONS, DROP_REASON_NAMES, Ingest, type DropEvent, type DropReason, type IngestInit, type Outcome, type Reading
} from '../../gateway/index.js'
import { manualClock } from './clock.js'
import { makeFrame, seededKeys } from './support.js'

const broker = { path: 'broker' as const, from: 'client-1' }

function setup (init: IngestInit = {}): { ingest: Ingest, clock: ReturnType<typeof manualClock>, readings: Reading[], drops: DropEvent[] } {
  const clock = manualClock({ wallStart: 1_000_000 })
  const ingest = new Ingest({ holdMs: 3000, ...init }, { clock })
  const readings: Reading[] = []
  const drops: DropEvent[] = []
  ingest.on('reading', (r) => readings.push(r))
  ingest.on('drop', (d) => drops.push(d))
  return { ingest, clock, readings, drops }
}

function announce (ingest: Ingest, keys: KeyPair, fleet = 'default'): Outcome {
  return ingest.handle(statusTopic(fleet, keys.id), Buffer.from(onlineStatus({ publicKey: keys.publicKey, name: 'kitchen' })), broker)
}

function dropped (outcome: Outcome): { reason: DropReason, code: string } | string {
  return outcome.verdict === 'dropped' ? { reason: outcome.drop.reason, code: outcome.drop.code } : outcome.verdict
}

const alice = seededKeys(1)
const bob = seededKeys(2)

describe('Ingest', () => {
  it('accepts a frame verified with the key from the retained status, once', () => {
    const { ingest, readings } = setup()
    expect(announce(ingest, alice).verdict).toBe('status')
    const frame = makeFrame(alice, 7)
    const outcome = ingest.handle(telemetryTopic('default', alice.id), frame, broker)
    expect(outcome.verdict).toBe('accepted')
    expect(readings).toHaveLength(1)
    const reading = readings[0] as Reading
    expect(reading).toMatchObject({ origin: alice.id, fleet: 'default', seq: 7, deviceTopic: 'telemetry', path: 'broker', from: 'client-1', receivedAt: 1_000_000 })
    expect(toHex(reading.frame)).toBe(toHex(frame))
    expect(reading.records[0]).toMatchObject({ n: 'temp', u: 'Cel', v: 20.7 })
    // The same (origin, seq) again, by any path: dropped, the reading appears once.
    expect(dropped(ingest.handle(telemetryTopic('default', alice.id), frame, { path: 'mesh' }))).toEqual({ reason: 'duplicate', code: 'ERR_REPLAY' })
    expect(readings).toHaveLength(1)
    expect(ingest.counters).toMatchObject({ accepted: 1, acceptedByPath: { broker: 1, mesh: 0 }, statuses: 1, keysLearned: 1 })
    expect(ingest.counters.dropped.duplicate).toBe(1)
  })

  it('ignores and counts a status whose pk does not derive to the id in its topic', () => {
    const { ingest, drops } = setup()
    const lie = ingest.handle(statusTopic('default', alice.id), Buffer.from(onlineStatus({ publicKey: bob.publicKey })), broker)
    expect(dropped(lie)).toEqual({ reason: 'status_key_mismatch', code: 'ERR_WRONG_KEY' })
    expect(ingest.counters.dropped.status_key_mismatch).toBe(1)
    expect(ingest.keys.get(alice.id)).toBeUndefined()
    expect(drops[0]).toMatchObject({ deviceId: alice.id, topic: statusTopic('default', alice.id) })
    // Alice's frame therefore still has no key: held, not accepted.
    expect(ingest.handle(telemetryTopic('default', alice.id), makeFrame(alice, 1), broker).verdict).toBe('held')
  })

  it('holds a frame from an unknown signer, then drops it as unknown signer', async () => {
    const { ingest, clock, readings, drops } = setup()
    const outcome = ingest.handle(telemetryTopic('default', alice.id), makeFrame(alice, 1), broker)
    expect(outcome.verdict).toBe('held')
    expect(ingest.heldCount).toBe(1)
    clock.advance(2999)
    expect(drops).toHaveLength(0)
    clock.advance(1)
    const settled = outcome.verdict === 'held' ? await outcome.settled : outcome
    expect(dropped(settled)).toEqual({ reason: 'unknown_signer', code: 'ERR_UNKNOWN_SIGNER' })
    expect(drops.map((d) => d.reason)).toEqual(['unknown_signer'])
    expect(readings).toHaveLength(0)
    expect(ingest.heldCount).toBe(0)
    expect(ingest.counters).toMatchObject({ held: 1, released: 0, accepted: 0 })
  })

  it('verifies held frames, in order, as soon as the key arrives (status or learnKey)', async () => {
    const { ingest, clock, readings } = setup()
    const first = ingest.handle(telemetryTopic('default', alice.id), makeFrame(alice, 1), broker)
    const second = ingest.handle(telemetryTopic('default', alice.id), makeFrame(alice, 2), broker)
    const other = ingest.handle(telemetryTopic('default', bob.id), makeFrame(bob, 1), broker)
    announce(ingest, alice)
    expect(readings.map((r) => r.seq)).toEqual([1, 2])
    for (const o of [first, second]) expect(o.verdict === 'held' && (await o.settled).verdict).toBe('accepted')
    expect(ingest.learnKey(bob.publicKey, { source: 'mdns' })).toBe('added')
    expect(other.verdict === 'held' && (await other.settled).verdict).toBe('accepted')
    expect(ingest.counters).toMatchObject({ held: 3, released: 3, accepted: 3 })
    clock.advance(10_000) // the timers were cleared: nothing more happens
    expect(ingest.counters.dropped.unknown_signer).toBe(0)
  })

  it('bounds the holding pen per signer and in total', () => {
    const { ingest } = setup({ maxHeldPerSigner: 2, maxHeld: 3 })
    const hold = (keys: KeyPair, seq: number): Outcome => ingest.handle(telemetryTopic('default', keys.id), makeFrame(keys, seq), broker)
    expect(hold(alice, 1).verdict).toBe('held')
    expect(hold(alice, 2).verdict).toBe('held')
    expect(dropped(hold(alice, 3))).toEqual({ reason: 'unknown_signer', code: 'ERR_UNKNOWN_SIGNER' })
    expect(hold(bob, 1).verdict).toBe('held')
    expect(dropped(hold(seededKeys(3), 1))).toEqual({ reason: 'unknown_signer', code: 'ERR_UNKNOWN_SIGNER' })
    expect(ingest.heldCount).toBe(3)
  })

  it('refuses a frame published under another device id, or another device topic', () => {
    const { ingest } = setup()
    announce(ingest, alice)
    announce(ingest, bob)
    expect(dropped(ingest.handle(telemetryTopic('default', bob.id), makeFrame(alice, 1), broker))).toEqual({ reason: 'topic_mismatch', code: 'ERR_TOPIC_MISMATCH' })
    const door = makeFrame(alice, 2, { topic: 'events/door', records: [{ n: 'door', vb: true }] })
    expect(dropped(ingest.handle(telemetryTopic('default', alice.id), door, broker))).toEqual({ reason: 'topic_mismatch', code: 'ERR_TOPIC_MISMATCH' })
    expect(ingest.handle(frameTopic('default', alice.id, 'events/door'), door, broker).verdict).toBe('accepted')
    expect(ingest.counters.dropped.topic_mismatch).toBe(2)
  })

  it('drops a frame whose signature fails, without burning its sequence number', () => {
    const { ingest, readings } = setup()
    announce(ingest, alice)
    const genuine = makeFrame(alice, 5)
    const forged = Buffer.from(genuine)
    forged[forged.length - 1] = (forged[forged.length - 1] as number) ^ 1
    expect(dropped(ingest.handle(telemetryTopic('default', alice.id), forged, broker))).toEqual({ reason: 'bad_signature', code: 'ERR_BAD_SIGNATURE' })
    const tampered = Buffer.from(genuine.toString('hex').replace('40348000', '40350000'), 'hex') // the value 20.5 → 21
    expect(toHex(tampered)).not.toBe(toHex(genuine))
    expect(dropped(ingest.handle(telemetryTopic('default', alice.id), tampered, broker))).toEqual({ reason: 'bad_signature', code: 'ERR_BAD_SIGNATURE' })
    expect(ingest.handle(telemetryTopic('default', alice.id), genuine, broker).verdict).toBe('accepted')
    expect(readings).toHaveLength(1)
  })

  it('counts malformed, oversized, unknown-fleet, badly named and forbidden messages under stable reasons', () => {
    const { ingest } = setup({ fleet: 'plant-a' })
    announce(ingest, alice, 'plant-a')
    const topic = telemetryTopic('plant-a', alice.id)
    expect(dropped(ingest.handle(topic, Buffer.from('not cbor at all'), broker))).toMatchObject({ reason: 'malformed' })
    expect(dropped(ingest.handle(topic, fromHex('a0') ?? new Uint8Array(), broker))).toEqual({ reason: 'malformed', code: 'ERR_NOT_COSE_SIGN1' })
    expect(dropped(ingest.handle(topic, new Uint8Array(0), broker))).toMatchObject({ reason: 'malformed' })
    expect(dropped(ingest.handle(topic, Buffer.alloc(9000), broker))).toEqual({ reason: 'frame_too_large', code: 'ERR_FRAME_TOO_LARGE' })
    expect(dropped(ingest.handle(telemetryTopic('default', alice.id), makeFrame(alice, 1), broker))).toEqual({ reason: 'unknown_fleet', code: 'ERR_UNKNOWN_FLEET' })
    expect(dropped(ingest.handle('iotmesh/plant-a/not-an-id/telemetry', makeFrame(alice, 1), broker))).toEqual({ reason: 'bad_topic', code: 'ERR_BAD_TOPIC' })
    expect(dropped(ingest.handle(`iotmesh/plant-a/${alice.id}/json`, Buffer.from('[]'), broker))).toEqual({ reason: 'json_forbidden', code: 'ERR_FORBIDDEN' })
    expect(dropped(ingest.handle(statusTopic('plant-a', alice.id), Buffer.from('{"state":"sleepy"}'), broker))).toEqual({ reason: 'bad_status', code: 'ERR_BAD_STATUS' })
    expect(ingest.handle('home/kitchen/light', Buffer.from('on'), broker).verdict).toBe('ignored')
    expect(ingest.counters.dropped).toMatchObject({ malformed: 3, frame_too_large: 1, unknown_fleet: 1, bad_topic: 1, json_forbidden: 1, bad_status: 1 })
    // And the pipeline still works after all that.
    expect(ingest.handle(topic, makeFrame(alice, 2), broker).verdict).toBe('accepted')
  })

  it('never throws on arbitrary bytes', () => {
    const { ingest } = setup()
    announce(ingest, alice)
    const frame = makeFrame(alice, 9)
    for (let i = 0; i < frame.length; i++) {
      for (const cut of [true, false]) {
        const bytes = cut ? frame.subarray(0, i) : Buffer.from(frame)
        if (!cut) bytes[i] = (bytes[i] as number) ^ 0x5a
        const outcome = ingest.handle(telemetryTopic('default', alice.id), bytes, broker)
        expect(['dropped', 'accepted', 'held']).toContain(outcome.verdict)
      }
    }
  })

  it('in closed mode trusts only the roster, without holding', () => {
    const { ingest } = setup({ roster: [alice.publicKey] })
    expect(ingest.keys.closed).toBe(true)
    expect(ingest.handle(telemetryTopic('default', alice.id), makeFrame(alice, 1), broker).verdict).toBe('accepted')
    expect(dropped(ingest.handle(telemetryTopic('default', bob.id), makeFrame(bob, 1), broker))).toEqual({ reason: 'not_in_roster', code: 'ERR_NOT_IN_ROSTER' })
    expect(dropped(announce(ingest, bob))).toEqual({ reason: 'not_in_roster', code: 'ERR_NOT_IN_ROSTER' })
    expect(ingest.learnKey(bob.publicKey)).toBe('not-in-roster')
    expect(ingest.heldCount).toBe(0)
  })

  it('learnKey refuses a key for the wrong id', () => {
    const { ingest } = setup()
    expect(ingest.learnKey(bob.publicKey, { deviceId: alice.id })).toBe('mismatch')
    expect(ingest.learnKey(alice.publicKey, { deviceId: alice.id })).toBe('added')
    expect(ingest.learnKey(alice.publicKey)).toBe('known')
  })

  it('drops held frames on stop and emits nothing after it', async () => {
    const { ingest, clock, drops } = setup()
    const outcome = ingest.handle(telemetryTopic('default', alice.id), makeFrame(alice, 1), broker)
    ingest.stop()
    ingest.stop()
    expect(outcome.verdict === 'held' && dropped(await outcome.settled)).toEqual({ reason: 'unknown_signer', code: 'ERR_UNKNOWN_SIGNER' })
    expect(clock.pending).toBe(0)
    announce(ingest, alice)
    ingest.handle(telemetryTopic('default', alice.id), Buffer.from('junk'), broker)
    expect(drops).toHaveLength(0)
  })

  it('a second, different, validly signed frame for an accepted (origin, seq) is a cloned identity: dropped, reported, the first copy kept', () => {
    const { ingest, readings, drops } = setup()
    const clones: unknown[] = []
    ingest.on('clone', (c) => clones.push(c))
    announce(ingest, alice)
    const topic = telemetryTopic('default', alice.id)
    expect(ingest.handle(topic, makeFrame(alice, 5), broker).verdict).toBe('accepted')
    const second = makeFrame(alice, 5, { records: [{ n: 'temp', v: -40 }] })
    expect(dropped(ingest.handle(topic, second, { path: 'mesh', from: 'node-x' }))).toEqual({ reason: 'cloned_identity', code: 'ERR_CLONED_IDENTITY' })
    expect(clones).toEqual([{ deviceId: alice.id, seq: 5, code: 'ERR_CLONED_IDENTITY', path: 'mesh', from: 'node-x' }])
    expect(drops.at(-1)).toMatchObject({ reason: 'cloned_identity', deviceId: alice.id, seq: 5 })
    expect(readings.map((r) => r.records[0]?.v)).toEqual([20.5])
    expect(dropped(ingest.handle(topic, makeFrame(alice, 5), broker))).toEqual({ reason: 'duplicate', code: 'ERR_REPLAY' }) // the first again
    expect(ingest.counters.dropped.cloned_identity).toBe(1)
  })

  it('a key relayed by the mesh is a stranger\'s: a flood of them never pushes a known device\'s key or window out', () => {
    const { ingest } = setup({ maxOrigins: 4, maxStrangers: 4, maxStrangerKeys: 4 })
    announce(ingest, alice)
    const topic = telemetryTopic('default', alice.id)
    expect(ingest.handle(topic, makeFrame(alice, 1), broker).verdict).toBe('accepted')
    for (let i = 0; i < 50; i++) {
      const stranger = generateKeyPair()
      expect(ingest.learnKey(stranger.publicKey, { deviceId: stranger.id, source: 'mesh' })).toBe('added')
      expect(ingest.handle(telemetryTopic('default', stranger.id), makeFrame(stranger, 1), { path: 'mesh' }).verdict).toBe('accepted')
    }
    expect(ingest.keys.get(alice.id)).toBeDefined()
    expect(dropped(ingest.handle(topic, makeFrame(alice, 1), broker))).toEqual({ reason: 'duplicate', code: 'ERR_REPLAY' })
  })

  it('maps every drop reason to a stable error code', () => {
    for (const reason of DROP_REASON_NAMES) {
      expect(Object.keys(ERROR_CODES)).toContain(DROP_REASONS[reason].code)
      expect(reason).toMatch(/^[a-z_]+$/)
    }
  })
})
