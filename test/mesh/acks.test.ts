import fc from 'fast-check'
import { describe, expect, it, onTestFinished } from 'vitest'
import { createReplayGuard, encodeCbor, manualClock, signSign1, toBase32, ALG_ED25519, HEADER_ALG, HEADER_CONTENT_TYPE, HEADER_KID, deviceIdToBytes } from '../../shared/index.js'
import type { Ack } from '../../mesh/index.js'
import { createMemoryNetwork } from '../../mesh/testing.js'
import { ACK_CONTENT_FORMAT, MAX_HOLES, ackOf, covers, peekAck, signAck, verifyAck } from '../../mesh/routing/ack.js'
import { MSG, decodeMessage, encodeMessage } from '../../mesh/routing/messages.js'
import { AckState } from '../../mesh/routing/acks.js'
import { addr, linked, seededKeys, startNode, until, Inbox } from '../helpers/memory-mesh.js'

const gw = seededKeys(1)
const dev = seededKeys(2)
const relay = seededKeys(3)

describe('end-to-end ACK: wire format (mesh/routing/ack.ts)', () => {
  it('signs, parses and verifies; another key, a flipped byte or another content type fail', () => {
    const bytes = signAck({ keys: gw, origin: dev.id, high: 100, holes: [[10, 12], [50, 50]], time: 7 })
    const peeked = peekAck(bytes)
    if (!peeked.ok) throw new Error(peeked.code)
    expect(peeked.ack).toEqual({ subscriber: gw.id, origin: dev.id, high: 100, holes: [[10, 12], [50, 50]], time: 7 })
    expect(verifyAck(peeked, gw.publicKey)).toBe(true)
    expect(verifyAck(peeked, relay.publicKey)).toBe(false)
    const flipped = bytes.slice()
    flipped[flipped.length - 1] = (flipped[flipped.length - 1] as number) ^ 1
    const again = peekAck(flipped)
    expect(again.ok && verifyAck(again, gw.publicKey)).toBe(false)
    // A relay signing an ack in the subscriber's name: its own key does not verify as the subscriber's.
    const forged = signAck({ keys: { ...relay, id: gw.id }, origin: dev.id, high: 1e9, holes: [], time: 8 })
    const f = peekAck(forged)
    expect(f.ok && f.ack.subscriber === gw.id && verifyAck(f, gw.publicKey)).toBe(false)
  })

  it('refuses malformed acks with ERR_BAD_ACK (holes out of order, at or above high, too many; wrong content type)', () => {
    const sign = (payload: unknown, type = ACK_CONTENT_FORMAT): Uint8Array => signSign1({
      protectedHeader: new Map<number, unknown>([[HEADER_ALG, ALG_ED25519], [HEADER_CONTENT_TYPE, type], [HEADER_KID, deviceIdToBytes(gw.id)]]),
      payload: encodeCbor(payload),
      secretKey: gw.secretKey
    })
    const origin = deviceIdToBytes(dev.id)
    const code = (b: Uint8Array): string | undefined => { const p = peekAck(b); return p.ok ? undefined : p.code }
    expect(code(sign([origin, 10, [[5, 6]], 1]))).toBeUndefined()
    expect(code(sign([origin, 10, [[5, 6]], 1], 65_000))).toBe('ERR_BAD_ACK')
    expect(code(sign([origin, 10, [[5, 6], [4, 4]], 1]))).toBe('ERR_BAD_ACK')
    expect(code(sign([origin, 10, [[5, 10]], 1]))).toBe('ERR_BAD_ACK')
    expect(code(sign([origin, 10, [[6, 5]], 1]))).toBe('ERR_BAD_ACK')
    expect(code(sign([origin.subarray(1), 10, [], 1]))).toBe('ERR_BAD_ACK')
    expect(code(sign([origin, 10, [], -1]))).toBe('ERR_BAD_ACK')
    const many = Array.from({ length: MAX_HOLES + 1 }, (_, i) => [i * 2, i * 2])
    expect(code(sign([origin, 100, many, 1]))).not.toBeUndefined()
    expect(code(new Uint8Array(600))).toBe('ERR_BAD_ACK')
  })

  it('ackOf lists the holes below high and lowers high below the first range that does not fit', () => {
    expect(ackOf(10, [])).toEqual({ high: 10, holes: [] })
    expect(ackOf(10, [[2, 4], [7, 7]])).toEqual({ high: 10, holes: [[2, 4], [7, 7]] })
    expect(ackOf(10, [[2, 4], [8, 12]])).toEqual({ high: 10, holes: [[2, 4], [8, 9]] }) // a range past high: cut at it
    const missing = Array.from({ length: MAX_HOLES + 3 }, (_, i) => i * 3)
    const ack = ackOf(1000, missing.map((seq) => [seq, seq] as const))
    expect(ack.holes).toHaveLength(MAX_HOLES)
    expect(ack.high).toBe(MAX_HOLES * 3 - 1)
    for (const seq of missing) expect(covers(ack, seq)).toBe(false)
    expect(covers(ack, 1)).toBe(true)
    expect(covers(ack, ack.high + 1)).toBe(false)
  })

  it('ACK messages round-trip through the routing codec, and oversized entries are refused', () => {
    const ack = signAck({ keys: gw, origin: dev.id, high: 5, holes: [], time: 1 })
    expect(decodeMessage(encodeMessage({ kind: MSG.ACK, entries: [{ hops: 2, ack }] }))).toEqual({ kind: MSG.ACK, entries: [{ hops: 2, ack }] })
    expect(() => decodeMessage(encodeMessage({ kind: MSG.ACK, entries: [{ hops: 2, ack: new Uint8Array(513) }] }))).toThrow(/ACK entry/)
  })
})

describe('end-to-end ACK over memory links', () => {
  it('a durable subscriber acks through a relay; the origin hears it, signed; a non-durable subscriber acks nothing', async () => {
    const net = createMemoryNetwork({ seed: 11 })
    const g = await startNode(net, 'g', gw, [], { routing: { acks: { intervalMs: 50 } } })
    const r = await startNode(net, 'r', relay, [addr(g)])
    const d = await startNode(net, 'd', dev, [addr(r)])
    await linked(r, g.id, d.id)
    const sub = g.subscribe('iotmesh/#', { durable: true, buffer: 1000 })
    onTestFinished(() => sub.close())
    const watcher = new Inbox(r) // a plain subscriber on the relay: it acknowledges nothing
    await until(() => d.interest().some((s) => s.subscriber === g.id && s.durable === true), 'the durable declaration at the device')
    expect(d.interest().find((s) => s.subscriber === r.id)?.durable).toBeUndefined()
    const acks: Ack[] = []
    d.on('ack', (a) => acks.push(a))
    let last = 0
    for (let i = 0; i < 20; i++) last = d.publish('telemetry', [{ n: 'i', v: i }]).seq
    await until(() => acks.some((a) => a.high >= last), 'an ack of the last frame')
    expect(acks.every((a) => a.subscriber === g.id && a.origin === d.id)).toBe(true)
    expect(acks.at(-1)?.holes.every(([, to]) => to < (acks.at(-1)?.high ?? 0))).toBe(true)
    expect(r.counters.acksIn).toBeGreaterThan(0) // verified at the relay before it went on
    expect(r.counters.acksOut).toBeGreaterThan(0)
    expect(watcher.from(d.id).length).toBeGreaterThanOrEqual(20)
  })

  it('a relay refuses an ack whose signature is not the subscriber\'s, and blames the neighbour that sent it', async () => {
    const net = createMemoryNetwork({ seed: 12 })
    const g = await startNode(net, 'g', gw, [], { routing: { acks: { intervalMs: 50 } } })
    const d = await startNode(net, 'd', dev, [addr(g)])
    await linked(d, g.id)
    const sub = g.subscribe('iotmesh/#', { durable: true })
    onTestFinished(() => sub.close())
    await until(() => d.interest().some((s) => s.subscriber === g.id && s.durable === true), 'the durable declaration at the device')
    // A raw node that links to the device and sends it a forged ack in the gateway's name.
    const liar = seededKeys(9)
    const transport = net.createTransport({}, { keys: liar })
    onTestFinished(async () => { await transport.close() })
    const link = await transport.dial({ host: d.address?.host ?? 'd', port: d.address?.port ?? 0 })
    const acks: Ack[] = []
    d.on('ack', (a) => acks.push(a))
    const forged = signAck({ keys: { ...liar, id: gw.id }, origin: dev.id, high: 1e9, holes: [], time: Date.now() * 2 })
    link.send(encodeMessage({ kind: MSG.ACK, entries: [{ hops: 1, ack: forged }] }))
    link.send(encodeMessage({ kind: MSG.ACK, entries: [{ hops: 1, ack: Uint8Array.of(1, 2, 3) }] }))
    await until(() => (d.counters.rejected.ERR_BAD_SIGNATURE ?? 0) >= 1, 'the forged ack refused')
    await until(() => Object.keys(d.counters.rejected).some((c) => c !== 'ERR_BAD_SIGNATURE'), 'the malformed ack refused')
    expect(acks).toEqual([])
    expect(d.peers().find((p) => p.id === liar.id)?.score?.score ?? 0).toBeLessThan(0)
  })

  it('bounded: a replayed ack is taken once, an ack of a subscriber that never declared itself durable goes nowhere, unverified', async () => {
    const net = createMemoryNetwork({ seed: 13 })
    const g = await startNode(net, 'g', gw, [], { routing: { acks: { intervalMs: 50 } } })
    const d = await startNode(net, 'd', dev, [addr(g)])
    await linked(d, g.id)
    const sub = g.subscribe('iotmesh/#', { durable: true })
    onTestFinished(() => sub.close())
    await until(() => d.interest().some((s) => s.subscriber === g.id && s.durable === true), 'the durable declaration at the device')
    const liar = seededKeys(10)
    const transport = net.createTransport({}, { keys: liar })
    onTestFinished(async () => { await transport.close() })
    const link = await transport.dial({ host: d.address?.host ?? 'd', port: d.address?.port ?? 0 })
    const acks: Ack[] = []
    d.on('ack', (a) => acks.push(a))
    // A genuine ack, sent 50 times: taken once.
    const genuine = signAck({ keys: gw, origin: dev.id, high: 3, holes: [], time: Date.now() * 4 })
    for (let i = 0; i < 50; i++) link.send(encodeMessage({ kind: MSG.ACK, entries: [{ hops: 1, ack: genuine }] }))
    await until(() => acks.some((a) => a.high === 3), 'the genuine ack')
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(acks.filter((a) => a.high === 3)).toHaveLength(1)
    // 200 acks signed by a node the device knows of no durable declaration for: refused before any signature check.
    const strangers = Array.from({ length: 200 }, (_, i) => ({ hops: 1, ack: signAck({ keys: liar, origin: dev.id, high: i, holes: [], time: i + 1 }) }))
    const before = d.counters.rejected.ERR_UNKNOWN_SIGNER ?? 0
    link.send(encodeMessage({ kind: MSG.ACK, entries: strangers }))
    await until(() => (d.counters.rejected.ERR_UNKNOWN_SIGNER ?? 0) >= before + 200, 'the strangers\' acks refused')
    expect(acks.filter((a) => a.subscriber === liar.id)).toEqual([])
    expect(d.counters.rejected.ERR_BAD_SIGNATURE ?? 0).toBe(0)
  })
})

describe('AckState remembers each subscriber\'s newest holes, within maxPairs', () => {
  const ack = (subscriber: Ack['subscriber'], origin: Ack['origin'], holes: Array<[number, number]>, time: number): Ack =>
    ({ subscriber, origin, high: 100, holes, time })

  it('a newer ack replaces the holes of the one before; one without holes forgets them; the pair count holds however often an ack is replaced', () => {
    const state = new AckState({ window: 1024, maxPairs: 2 }, { keys: relay, clock: manualClock() })
    const other = seededKeys(4)
    state.remember(ack(gw.id, other.id, [[5, 5]], 1)) // another origin, the oldest pair
    for (let t = 1; t <= 10; t++) state.remember(ack(gw.id, dev.id, [[t, t]], t)) // replaced 10 times: still one pair
    expect(state.lacking(dev.id, 10)).toEqual([gw.id])
    expect(state.lacking(dev.id, 9)).toEqual([]) // the older ack's hole is gone
    expect(state.lacking(other.id, 5)).toEqual([gw.id]) // not evicted: 2 pairs, not 11
    state.remember(ack(gw.id, dev.id, [], 11))
    expect(state.lacking(dev.id, 10)).toEqual([])
    state.remember(ack(relay.id, dev.id, [[1, 1]], 12))
    state.remember(ack(gw.id, dev.id, [[1, 1]], 13))
    expect(state.lacking(dev.id, 1)).toEqual([relay.id, gw.id])
    expect(state.lacking(other.id, 5)).toEqual([]) // a third pair: the origin acked least recently went out
  })
})

describe('delayed acks (AckState, acks.ts delayMs)', () => {
  /** A durable subscriber's ack state on a manual clock, and what one tick of it signs. */
  const subscriber = (delayMs?: number): { state: AckState, clock: ReturnType<typeof manualClock>, tick: () => string[], held: Map<string, number> } => {
    const clock = manualClock()
    const state = new AckState({ window: 1024, ...(delayMs === undefined ? {} : { delayMs }) }, { keys: gw, clock })
    state.durable = 1
    const held = new Map<string, number>()
    const tick = (): string[] => state.due({ high: (o) => held.get(o), gaps: () => [] }, () => true).map(([origin]) => origin)
    return { state, clock, tick, held }
  }

  it('one new frame is acked delayMs after it came, two at the next tick, a copy of what it holds at once', () => {
    const { state, clock, tick, held } = subscriber()
    held.set(dev.id, 0)
    state.accepted(dev.id, relay.id)
    expect(tick()).toEqual([]) // one frame: delayed
    clock.advance(999)
    expect(tick()).toEqual([])
    clock.advance(1)
    expect(tick()).toEqual([dev.id]) // 1,000 ms: its time came
    expect(tick()).toEqual([])
    held.set(dev.id, 2)
    state.accepted(dev.id, relay.id)
    state.accepted(dev.id, relay.id)
    expect(tick()).toEqual([dev.id]) // two since the last ack: at once
    clock.advance(2000)
    expect(tick()).toEqual([]) // nothing left delayed: the ack covered both
    state.accepted(dev.id, relay.id)
    state.seen(dev.id) // a copy offered again: the origin is waiting
    expect(tick()).toEqual([dev.id])
  })

  it('delayMs 0 acks every frame at the next tick, as before; the delayed ones are bounded by maxOrigins', () => {
    const now = subscriber(0)
    now.held.set(dev.id, 0)
    now.state.accepted(dev.id, relay.id)
    expect(now.tick()).toEqual([dev.id])
    const { state, clock, tick, held } = subscriber()
    const origins = Array.from({ length: 5000 }, (_, i) => toBase32(Uint8Array.from({ length: 16 }, (_, k) => k < 2 ? (i >> (8 * k)) & 0xff : 7)) as Ack['origin'])
    for (const o of origins) { held.set(o, 0); state.accepted(o, relay.id) }
    // 4,096 delayed at most: the oldest were taken at once to make room (and are due now), the rest after the delay.
    const first = tick()
    expect(first.length).toBe(200) // ACKS_PER_TICK
    expect(first[0]).toBe(origins[0])
    clock.advance(1000)
    let total = first.length
    for (let i = 0; i < 40; i++) total += tick().length
    expect(total).toBe(5000)
  })
})

describe('delayed acks end to end', () => {
  it('an origin publishing every 100 ms gets about one ack per two frames, and every frame acked', async () => {
    const net = createMemoryNetwork({ seed: 14 })
    const g = await startNode(net, 'g', gw, [])
    const r = await startNode(net, 'r', relay, [addr(g)])
    const d = await startNode(net, 'd', dev, [addr(r)])
    await linked(r, g.id, d.id)
    const sub = g.subscribe('iotmesh/#', { durable: true, buffer: 1000 })
    onTestFinished(() => sub.close())
    await until(() => d.interest().some((s) => s.subscriber === g.id && s.durable === true), 'the durable declaration at the device')
    const acks: Ack[] = []
    d.on('ack', (a) => acks.push(a))
    const signed0 = g.counters.acksOut
    const checked0 = r.counters.acksIn
    let last = 0
    for (let i = 0; i < 30; i++) {
      last = d.publish('telemetry', [{ n: 'i', v: i }]).seq
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    await until(() => acks.some((a) => a.high >= last), 'an ack of the last frame', 5000)
    // Before (an ack at the next 50 ms tick for every frame): 30 signed at g and checked at r.
    expect(g.counters.acksOut - signed0).toBeLessThanOrEqual(20)
    expect(g.counters.acksOut - signed0).toBeGreaterThanOrEqual(10)
    expect(r.counters.acksIn - checked0).toBe(g.counters.acksOut - signed0)
  })
})

describe('holes of an ack from the replay window\'s ranges (ReplayGuard.gaps)', () => {
  /** The earlier way: every number the window lacks, the top ones taken off, then merged into ranges. */
  function reference (replay: ReturnType<typeof createReplayGuard>, origin: string, window: number): { high: number, holes: Array<[number, number]> } | undefined {
    let high = replay.high(origin as never)
    if (high === undefined || high < 0) return undefined
    const missing = replay.missing(origin as never, Math.max(0, high - window + 1), high, window)
    while (missing.length > 0 && missing[missing.length - 1] === high) { missing.pop(); high-- }
    if (high < 0) return undefined
    const holes: Array<[number, number]> = []
    for (const seq of missing) {
      if (seq >= high) break
      const last = holes[holes.length - 1]
      if (last !== undefined && seq === last[1] + 1) { last[1] = seq; continue }
      if (holes.length === MAX_HOLES) return { high: seq - 1, holes }
      holes.push([seq, seq])
    }
    return { high, holes }
  }

  it('signs the acks the list of every missing number gave, for any window (fast-check)', () => {
    const window = 128
    let holed = 0
    let capped = 0
    // Which numbers were accepted, one flag each (dense or sparse windows, many ranges or few), and some taken back.
    const flags = fc.array(fc.boolean(), { maxLength: 400, size: 'max' })
    fc.assert(fc.property(flags, fc.array(fc.nat(400), { maxLength: 20 }), (accepted, forgotten) => {
      const replay = createReplayGuard({ window })
      accepted.forEach((taken, seq) => { if (taken) replay.accept(dev.id, seq) })
      for (const seq of forgotten) replay.forget(dev.id, seq)
      const clock = manualClock()
      const state = new AckState({ window, delayMs: 0 }, { keys: gw, clock })
      state.durable = 1
      state.accepted(dev.id, relay.id)
      state.accepted(dev.id, relay.id)
      const signed = state.due({ high: (o) => replay.high(o), gaps: (o, from, to, max) => replay.gaps(o, from, to, max) }, () => true)
      const want = reference(replay, dev.id, window)
      if (want === undefined) { expect(signed).toEqual([]); return }
      const peeked = peekAck((signed[0] as [string, Uint8Array])[1])
      if (!peeked.ok) throw new Error(peeked.code)
      expect({ high: peeked.ack.high, holes: peeked.ack.holes }).toEqual(want)
      if (want.holes.length > 0) holed++
      if (want.holes.length === MAX_HOLES) capped++
    }), { numRuns: 600 })
    // Most windows have holes, and many more than an ack lists: neither the clean case nor the cap decides it alone.
    expect(holed).toBeGreaterThan(300)
    expect(capped).toBeGreaterThan(100)
  })

  it('gaps lists as ranges what missing lists number by number, above the window\'s high too', () => {
    fc.assert(fc.property(fc.array(fc.boolean(), { maxLength: 300, size: 'max' }), fc.nat(400), fc.nat(400), fc.integer({ min: 1, max: 20 }), (accepted, a, b, max) => {
      const replay = createReplayGuard({ window: 64 })
      accepted.forEach((taken, seq) => { if (taken) replay.accept(dev.id, seq) })
      const [from, to] = a <= b ? [a, b] : [b, a]
      const ranges: Array<[number, number]> = []
      for (const seq of replay.missing(dev.id, from, to, 100_000)) {
        const last = ranges[ranges.length - 1]
        if (last !== undefined && seq === last[1] + 1) last[1] = seq
        else ranges.push([seq, seq])
      }
      expect(replay.gaps(dev.id, from, to, max)).toEqual(ranges.slice(0, max))
    }), { numRuns: 500 })
  })
})

