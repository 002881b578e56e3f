import { describe, expect, it } from 'vitest'
import { History } from '../../mesh/routing/history.js'

/** The catch-up history's bounds (mesh/routing/history.ts): per origin, in bytes with bookkeeping, and a strangers' share. */

const frame = (seq: number, size = 150): { seq: number, bytes: Uint8Array, hops: number } => ({ seq, bytes: new Uint8Array(size), hops: 1 })
const id = (i: number): string => `origin-${String(i).padStart(19, '0')}`

describe('catch-up history', () => {
  it('a flood of fresh strangers, one frame each, churns their share only: a known device keeps every frame it had', () => {
    const h = new History({ perOrigin: 256, maxStrangers: 64 })
    for (let seq = 1; seq <= 200; seq++) h.add('known', frame(seq))
    for (let i = 0; i < 66_000; i++) h.add(id(i), frame(1), true)
    expect(h.size).toBe(1 + 64)
    expect(h.range('known')).toEqual({ low: 1, high: 200 })
    expect(h.inRange('known', 1, 200)).toHaveLength(200)
    // The newest strangers are the ones kept.
    expect(h.get(id(65_999), 1)).toBeDefined()
    expect(h.get(id(0), 1)).toBeUndefined()
  })

  it('a stranger that becomes known leaves the strangers\' share and is not churned out with it', () => {
    const h = new History({ maxStrangers: 4 })
    h.add('promoted', frame(1), true)
    h.add('promoted', frame(2), false) // its third verified frame earned it a known window (shared/replay.ts)
    for (let i = 0; i < 100; i++) h.add(id(i), frame(1), true)
    expect(h.inRange('promoted', 1, 2)).toHaveLength(2)
    expect(h.size).toBe(1 + 4)
  })

  it('counts each origin\'s and frame\'s bookkeeping into maxBytes, and frees it with them', () => {
    const h = new History({ maxBytes: 64 * 1024, maxStrangers: 100_000 })
    for (let i = 0; i < 10_000; i++) h.add(id(i), frame(1, 10))
    // 10-byte frames: what bounds them is the bookkeeping. Without it, 10,000 origins would sit in "100 KB".
    expect(h.bytes).toBeLessThanOrEqual(64 * 1024)
    expect(h.size).toBeLessThan(200)
    expect(h.size).toBeGreaterThan(50)
    const h2 = new History({})
    h2.add('a', frame(1))
    const oneFrame = h2.bytes
    h2.add('a', frame(2))
    const perFrame = h2.bytes - oneFrame
    expect(perFrame).toBeGreaterThan(150) // the frame's bytes and more
    for (let seq = 3; seq <= 300; seq++) h2.add('a', frame(seq))
    expect(h2.inRange('a', 1, 300)).toHaveLength(256) // perOrigin
    expect(h2.bytes).toBe(oneFrame + 255 * perFrame)
    // Evicting down to nothing gives every byte back.
    const h3 = new History({ maxBytes: 1024, maxStrangers: 1 })
    h3.add('x', frame(1, 100), true)
    h3.add('y', frame(1, 100), true) // x, the older stranger, is forgotten
    expect(h3.size).toBe(1)
    expect(h3.bytes).toBe(oneFrame - 50)
  })

  it('over maxBytes, frees a sixteenth at once: the oldest frames of the origins holding the most, cut together', () => {
    const cap = 64 * 1024
    const h = new History({ maxBytes: cap, perOrigin: 100_000 })
    for (let seq = 1; seq <= 10; seq++) h.add('small', frame(seq))
    for (let seq = 1; seq <= 60; seq++) h.add('mid', frame(seq))
    let seq = 0
    while (h.bytes + 300 <= cap) h.add('big', frame(++seq))
    const full = h.bytes
    h.add('big', frame(++seq)) // over the cap: one shrink
    expect(h.bytes).toBeLessThanOrEqual(cap - cap / 16)
    expect(full - h.bytes).toBeGreaterThan(cap / 16 - 1000) // a batch, not one frame per add
    expect(h.range('small')).toEqual({ low: 1, high: 10 })
    expect(h.range('mid')).toEqual({ low: 1, high: 60 }) // the largest pays first…
    expect(h.range('big')?.high).toBe(seq)
    expect(h.range('big')?.low).toBeGreaterThan(1) // …its oldest frames
    // The next adds evict nothing until the cap is reached again.
    const after = h.bytes
    h.add('big', frame(seq + 1))
    expect(h.bytes).toBeGreaterThan(after)
    // Two origins of one size are cut together, to one level.
    const even = new History({ maxBytes: cap, perOrigin: 100_000 })
    for (let n = 1; even.bytes + 600 <= cap; n++) { even.add('a', frame(n)); even.add('b', frame(n)) }
    even.add('c', frame(1))
    even.add('c', frame(2))
    for (let n = 3; n < 20; n++) even.add('c', frame(n))
    const a = even.inRange('a', 0, 1e9).length
    const b = even.inRange('b', 0, 1e9).length
    expect(Math.abs(a - b)).toBeLessThanOrEqual(1)
    expect(even.range('c')).toEqual({ low: 1, high: 19 })
  })

  it('range() never claims a frame it does not hold, also when older numbers arrive late (a catch-up)', () => {
    const h = new History({ perOrigin: 1000 })
    for (let seq = 100; seq <= 200; seq++) h.add('a', frame(seq))
    for (let seq = 1; seq <= 50; seq++) h.add('a', frame(seq)) // late, older
    const r = h.range('a') as { low: number, high: number }
    expect(r.high).toBe(200)
    expect(h.get('a', r.low)).toBeDefined()
  })

  it('range() starts at the oldest frame held, late ones included: a catch-up\'s older frames are announced', () => {
    const h = new History({ perOrigin: 1000 })
    for (let seq = 100; seq <= 200; seq++) h.add('a', frame(seq))
    for (let seq = 1; seq <= 50; seq++) h.add('a', frame(seq))
    expect(h.range('a')).toEqual({ low: 1, high: 200 })
    expect(h.carriedSince('a')).toBe(100) // what came in order, not the catch-up
    h.add('a', frame(150)) // held already: nothing changes
    expect(h.inRange('a', 0, 1e9).map((f) => f.seq)).toEqual([...Array.from({ length: 50 }, (_, i) => i + 1), ...Array.from({ length: 101 }, (_, i) => i + 100)])
    expect(h.inRange('a', 45, 105).map((f) => f.seq)).toEqual([45, 46, 47, 48, 49, 50, 100, 101, 102, 103, 104, 105])
  })

  it('a frame offered again after it was evicted is kept and announced (a device re-offering what its gateway never acknowledged)', () => {
    const h = new History({ perOrigin: 16 })
    for (let seq = 1; seq <= 40; seq++) h.add('a', frame(seq))
    expect(h.range('a')).toEqual({ low: 25, high: 40 })
    h.add('a', frame(5)) // evicted long ago, offered again
    expect(h.get('a', 5)).toBeDefined()
    expect(h.range('a')).toEqual({ low: 5, high: 40 })
    expect(h.get('a', 25)).toBeUndefined() // the oldest other frame made room
    h.add('a', frame(41))
    expect(h.get('a', 5)).toBeUndefined() // then it is the oldest, and goes first
    expect(h.range('a')).toEqual({ low: 26, high: 41 })
    expect(h.inRange('a', 0, 1e9)).toHaveLength(16)
  })

  it('evicts the oldest frame held, late or not, and counts late frames\' bytes out with them', () => {
    const h = new History({ perOrigin: 4 })
    for (const seq of [10, 20, 30, 15, 25, 5]) h.add('a', frame(seq, 100))
    expect(h.inRange('a', 0, 100).map((f) => f.seq)).toEqual([5, 20, 25, 30])
    expect(h.range('a')).toEqual({ low: 5, high: 30 })
    const bytes = h.bytes
    for (let seq = 31; seq <= 34; seq++) h.add('a', frame(seq, 100))
    expect(h.bytes).toBe(bytes)
    expect(h.range('a')).toEqual({ low: 31, high: 34 })
  })
})

describe('catch-up history by age', () => {
  it('forgets origins nothing was added for in idleMs, keeps the ones still carried and its own, and frees their bytes', () => {
    let now = 0
    const h = new History({ idleMs: 60_000, own: 'me', now: () => now })
    for (let seq = 1; seq <= 10; seq++) { h.add('me', frame(seq)); h.add('moved-away', frame(seq)); h.add('carried', frame(seq)) }
    now = 50_000
    h.add('carried', frame(11)) // still on this relay's path
    expect(h.forgetIdle()).toBe(0)
    now = 60_000
    // 'moved-away' and 'me' were last touched at 0: the relay forgets the first, never its own.
    expect(h.forgetIdle()).toBe(1)
    expect(h.range('moved-away')).toBeUndefined()
    expect(h.get('moved-away', 10)).toBeUndefined()
    expect(h.range('me')).toEqual({ low: 1, high: 10 })
    expect(h.range('carried')).toEqual({ low: 1, high: 11 })
    expect([...h.origins()].sort()).toEqual(['carried', 'me'])
    now = 200_000
    expect(h.forgetIdle()).toBe(1) // 'carried' went idle too
    expect([...h.origins()]).toEqual(['me'])
    // Only its own 10 frames are counted now: nothing of the forgotten ones is left in `bytes`.
    const own = new History({})
    for (let seq = 1; seq <= 10; seq++) own.add('me', frame(seq))
    expect(h.bytes).toBe(own.bytes)
  })

  it('an origin that comes back after it was forgotten starts a history afresh', () => {
    let now = 0
    const h = new History({ idleMs: 1000, now: () => now })
    for (let seq = 1; seq <= 5; seq++) h.add('o', frame(seq))
    now = 5000
    expect(h.forgetIdle()).toBe(1)
    h.add('o', frame(40))
    expect(h.range('o')).toEqual({ low: 40, high: 40 })
    expect(h.carriedSince('o')).toBe(40)
  })

  it('costs O(forgotten): a call with nothing idle stops at the least recently touched origin', () => {
    let now = 0
    const h = new History({ idleMs: 10_000, maxStrangers: 100_000, now: () => now })
    for (let i = 0; i < 20_000; i++) { now = i; h.add(id(i), frame(1, 10)) }
    now = 10_000 + 99 // ids 0..99 are idle
    expect(h.forgetIdle()).toBe(100)
    expect(h.size).toBe(19_900)
    // Touching an old origin moves it to the end: it outlives origins added after it.
    h.add(id(100), frame(2, 10))
    now = 10_000 + 200
    expect(h.forgetIdle()).toBe(100) // 101..200, not 100
    expect(h.get(id(100), 2)).toBeDefined()
  })
})

describe('catch-up history memory', () => {
  it('keeps a frame that arrived as a view into a larger message in a buffer of its own', () => {
    const h = new History({ perOrigin: 4 })
    const received = Buffer.alloc(64 * 1024, 1) // a record or receive buffer holding many messages
    h.add('o', { seq: 1, bytes: received.subarray(1000, 1150), hops: 1 })
    h.add('o', { seq: 2, bytes: received.slice(2000, 2150), hops: 1 }) // Buffer#slice is a view too
    for (const seq of [1, 2]) {
      const kept = h.get('o', seq)?.bytes
      expect(kept?.length).toBe(150)
      expect(kept?.buffer.byteLength, `frame ${seq} holds only its own bytes`).toBe(150)
    }
    expect(h.bytes).toBeLessThan(2 * 1024)
  })
})
