import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createReplayGuard, type ReplayVerdict } from '../../shared/index.js'

const A = 'aaaaaaaaaaaaaaaaaaaaaaaaaa'
const B = 'bbbbbbbbbbbbbbbbbbbbbbbbba'

describe('replay guard (an RFC 4303 §3.4.3 window per origin)', () => {
  it('accepts a number once; a duplicate is a replay', () => {
    const guard = createReplayGuard()
    expect(guard.accept(A, 1)).toBe('ok')
    expect(guard.accept(A, 1)).toBe('replay')
    expect(guard.accept(A, 2)).toBe('ok')
    expect(guard.accept(A, 2)).toBe('replay')
    expect(guard.accept(A, 1)).toBe('replay')
  })

  it('forget makes one accepted number fresh again (a write that failed), and nothing else', () => {
    const guard = createReplayGuard({ window: 64 })
    for (const seq of [10, 11, 12]) expect(guard.accept(A, seq)).toBe('ok')
    guard.forget(A, 11)
    guard.forget(A, 12) // the highest: fresh again, the high stays
    guard.forget(A, 500) // above the high: nothing to take back
    guard.forget(B, 11) // untracked origin: nothing
    expect(guard.high(A)).toBe(12)
    expect(guard.check(A, 10)).toBe('replay')
    expect(guard.accept(A, 11)).toBe('ok')
    expect(guard.accept(A, 11)).toBe('replay')
    expect(guard.accept(A, 12)).toBe('ok')
    expect(guard.accept(A, 12)).toBe('replay')
    expect(guard.accept(A, 100)).toBe('ok')
    guard.forget(A, 20) // slid out of the window: stays too old
    expect(guard.check(A, 20)).toBe('too-old')
    expect(guard.high(B)).toBeUndefined()
  })

  it('keeps origins apart', () => {
    const guard = createReplayGuard()
    expect(guard.accept(A, 5)).toBe('ok')
    expect(guard.accept(B, 5)).toBe('ok')
    expect(guard.high(A)).toBe(5)
    expect(guard.high(B)).toBe(5)
    expect(guard.high('cccccccccccccccccccccccccc')).toBeUndefined()
  })

  it('accepts out-of-order numbers inside the window, once each', () => {
    const guard = createReplayGuard({ window: 64 })
    expect(guard.accept(A, 100)).toBe('ok')
    for (const seq of [99, 50, 37, 98]) expect(guard.accept(A, seq)).toBe('ok')
    for (const seq of [99, 50, 37, 98, 100]) expect(guard.accept(A, seq)).toBe('replay')
    expect(guard.high(A)).toBe(100)
  })

  it('refuses numbers `window` or more below the highest as too old', () => {
    const guard = createReplayGuard({ window: 64 })
    guard.accept(A, 100)
    expect(guard.accept(A, 37)).toBe('ok') // 100 - 63: the oldest still inside
    expect(guard.accept(A, 36)).toBe('too-old') // 100 - 64
    expect(guard.accept(A, 0)).toBe('too-old')
  })

  it('rounds the window up to whole bytes (at least 8)', () => {
    const guard = createReplayGuard({ window: 10 }) // -> 16
    guard.accept(A, 100)
    expect(guard.check(A, 85)).toBe('ok')
    expect(guard.check(A, 84)).toBe('too-old')
    const tiny = createReplayGuard({ window: 1 }) // -> 8
    tiny.accept(A, 100)
    expect(tiny.check(A, 93)).toBe('ok')
    expect(tiny.check(A, 92)).toBe('too-old')
  })

  it('check tells what accept would, without recording', () => {
    const guard = createReplayGuard({ window: 64 })
    expect(guard.check(A, 1)).toBe('ok')
    expect(guard.check(A, 1)).toBe('ok')
    expect(guard.size).toBe(0)
    guard.accept(A, 1)
    expect(guard.check(A, 1)).toBe('replay')
  })

  it('huge jumps forward clear the window; numbers after the jump behave', () => {
    const guard = createReplayGuard({ window: 64 })
    for (let s = 1; s <= 64; s++) guard.accept(A, s)
    expect(guard.accept(A, 1_000_000)).toBe('ok')
    expect(guard.accept(A, 999_999)).toBe('ok') // its bit was cleared, not left over from s = 999_999 mod 64
    expect(guard.accept(A, 999_937)).toBe('ok')
    expect(guard.accept(A, 999_936)).toBe('too-old')
    expect(guard.accept(A, 64)).toBe('too-old')
    expect(guard.accept(A, Number.MAX_SAFE_INTEGER)).toBe('ok')
    expect(guard.accept(A, Number.MAX_SAFE_INTEGER)).toBe('replay')
    expect(guard.accept(A, Number.MAX_SAFE_INTEGER - 1)).toBe('ok')
    expect(guard.accept(A, Number.MAX_SAFE_INTEGER - 64)).toBe('too-old')
  })

  it('jumps shorter than the window forget exactly the numbers that slid out', () => {
    const guard = createReplayGuard({ window: 16 })
    for (let s = 0; s <= 15; s++) guard.accept(A, s)
    expect(guard.accept(A, 20)).toBe('ok') // window is now 5..20
    for (let s = 5; s <= 15; s++) expect(guard.check(A, s)).toBe('replay')
    for (let s = 16; s <= 19; s++) expect(guard.check(A, s)).toBe('ok')
    for (let s = 0; s <= 4; s++) expect(guard.check(A, s)).toBe('too-old')
  })
})

describe('missing(): what to ask peers for after a partition', () => {
  it('lists the numbers in [from, to] not accepted yet and still inside the window, up to a limit', () => {
    const guard = createReplayGuard({ window: 64 })
    for (const seq of [10, 12, 15]) guard.accept(A, seq)
    expect(guard.missing(A, 8, 16)).toEqual([8, 9, 11, 13, 14, 16])
    expect(guard.missing(A, 8, 16, 2)).toEqual([8, 9])
    expect(guard.missing('cccccccccccccccccccccccccc', 3, 5)).toEqual([3, 4, 5])
    guard.accept(A, 100)
    expect(guard.missing(A, 0, 40)).toEqual([37, 38, 39, 40]) // 0..36 are too old to be accepted anyway
  })
})

describe('bounded memory', () => {
  it('tracks at most maxOrigins, evicting the least recently used, and counts evictions', () => {
    const guard = createReplayGuard({ maxOrigins: 3 })
    const id = (i: number): string => `origin-${i}`
    for (let i = 0; i < 3; i++) guard.accept(id(i), 1)
    expect(guard.size).toBe(3)
    expect(guard.evictions).toBe(0)
    guard.accept(id(0), 2) // origin-0 is now the most recent; origin-1 the least
    guard.accept(id(3), 1)
    expect(guard.size).toBe(3)
    expect(guard.evictions).toBe(1)
    expect(guard.high(id(1))).toBeUndefined()
    expect(guard.high(id(0))).toBe(2)
    // an evicted origin's history is forgotten: its old number is fresh again (documented)
    expect(guard.accept(id(1), 1)).toBe('ok')
    expect(guard.evictions).toBe(2)
  })

  it('a refused number does not refresh an origin', () => {
    const guard = createReplayGuard({ maxOrigins: 2 })
    guard.accept(A, 1)
    guard.accept(B, 1)
    expect(guard.accept(A, 1)).toBe('replay')
    guard.accept('cccccccccccccccccccccccccc', 1)
    expect(guard.high(A)).toBeUndefined()
    expect(guard.high(B)).toBe(1)
  })

  it('size never exceeds maxOrigins, however many origins arrive', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 20 }), fc.array(fc.tuple(fc.nat({ max: 200 }), fc.nat({ max: 1000 })), { maxLength: 300 }), (maxOrigins, events) => {
      const guard = createReplayGuard({ window: 64, maxOrigins })
      const distinct = new Set<number>()
      for (const [origin, seq] of events) {
        guard.accept(`o${origin}`, seq)
        distinct.add(origin)
        expect(guard.size).toBeLessThanOrEqual(maxOrigins)
      }
      expect(guard.size).toBe(Math.min(maxOrigins, distinct.size))
    }), { seed: 61, numRuns: 200 })
  })
})

describe('model test: the guard agrees with a naive Set-based model', () => {
  /** Every accepted number kept in a Set; the same window rule; LRU by array order. */
  function createModel (window: number, maxOrigins: number): { accept: (origin: string, seq: number) => ReplayVerdict, evictions: () => number, size: () => number } {
    const seen = new Map<string, { high: number, accepted: Set<number> }>()
    let evictions = 0
    return {
      accept (origin, seq) {
        const entry = seen.get(origin)
        let verdict: ReplayVerdict = 'ok'
        if (entry !== undefined && seq <= entry.high) {
          verdict = seq <= entry.high - window ? 'too-old' : entry.accepted.has(seq) ? 'replay' : 'ok'
        }
        if (verdict !== 'ok') return verdict
        if (entry === undefined) {
          if (seen.size >= maxOrigins) {
            seen.delete(seen.keys().next().value as string)
            evictions++
          }
          seen.set(origin, { high: seq, accepted: new Set([seq]) })
        } else {
          seen.delete(origin)
          entry.accepted.add(seq)
          entry.high = Math.max(entry.high, seq)
          seen.set(origin, entry)
        }
        return 'ok'
      },
      evictions: () => evictions,
      size: () => seen.size
    }
  }

  const event = fc.record({
    origin: fc.constantFrom('o1', 'o2', 'o3', 'o4', 'o5'),
    // mostly near each other, sometimes far ahead
    seq: fc.oneof({ weight: 9, arbitrary: fc.nat({ max: 300 }) }, { weight: 1, arbitrary: fc.nat({ max: 100_000 }) })
  })

  it.each([
    [8, 100], [16, 100], [64, 100], [64, 3], [128, 2]
  ])('window %i, maxOrigins %i', (window, maxOrigins) => {
    fc.assert(fc.property(fc.array(event, { maxLength: 400 }), (events) => {
      const guard = createReplayGuard({ window, maxOrigins })
      const model = createModel(window, maxOrigins)
      for (const { origin, seq } of events) {
        const expected = model.accept(origin, seq)
        expect(guard.check(origin, seq)).toBe(expected)
        expect(guard.accept(origin, seq)).toBe(expected)
      }
      expect(guard.size).toBe(model.size())
      expect(guard.evictions).toBe(model.evictions())
    }), { seed: 62, numRuns: 150 })
  })

  it('check agrees with the model\'s verdict before each accept', () => {
    fc.assert(fc.property(fc.array(event, { maxLength: 300 }), (events) => {
      const guard = createReplayGuard({ window: 32 })
      const shadow = createModel(32, 1000)
      for (const { origin, seq } of events) {
        const before = guard.check(origin, seq)
        expect(guard.accept(origin, seq)).toBe(before)
        expect(shadow.accept(origin, seq)).toBe(before)
      }
    }), { seed: 63, numRuns: 150 })
  })
})

describe('strangers cannot evict known origins (issue 10)', () => {
  const id = (i: number): string => `stranger-${i}`

  it('a flood of fresh origins churns the strangers only: a pinned origin keeps its window', () => {
    const guard = createReplayGuard({ window: 64, maxOrigins: 4, maxStrangers: 8 })
    expect(guard.protect(A)).toBe(true)
    expect(guard.accept(A, 10)).toBe('ok')
    for (let i = 0; i < 100_000; i++) guard.accept(id(i), 1)
    expect(guard.accept(A, 10)).toBe('replay') // on a single LRU it would have been forgotten: 'ok'
    expect(guard.known(A)).toBe(true)
    expect(guard.strangers).toBe(8)
    expect(guard.size).toBe(9)
    expect(guard.evictions).toBe(100_000 - 8)
  })

  it('protect makes an empty window known before any frame; a stranger moves over with its history', () => {
    const guard = createReplayGuard({ window: 64, maxOrigins: 4, maxStrangers: 4 })
    guard.protect(A)
    expect(guard.high(A)).toBeUndefined()
    expect(guard.missing(A, 0, 3)).toEqual([0, 1, 2, 3])
    guard.accept(B, 7)
    expect(guard.hits(B)).toBe(1)
    expect(guard.protect(B, 'earn')).toBe(true)
    expect(guard.hits(B)).toBe(0)
    expect(guard.strangers).toBe(0)
    expect(guard.accept(B, 7)).toBe('replay')
  })

  it('an earned origin never evicts: when the known tier is full it stays a stranger; a pin evicts the least recently used earned one first', () => {
    const guard = createReplayGuard({ window: 64, maxOrigins: 2, maxStrangers: 4 })
    guard.protect(A, 'pin')
    guard.accept('e1', 1)
    expect(guard.protect('e1', 'earn')).toBe(true)
    guard.accept('e2', 1)
    expect(guard.protect('e2', 'earn')).toBe(false) // full: A and e1
    expect(guard.known('e2')).toBe(false)
    expect(guard.protect(B, 'pin')).toBe(true) // evicts e1 (earned), not A (pinned)
    expect(guard.known(A)).toBe(true)
    expect(guard.known('e1')).toBe(false)
    expect(guard.protect('c', 'pin')).toBe(true) // only pinned ones left: the least recently used of them goes
    expect(guard.known(A)).toBe(false)
    expect(guard.known(B)).toBe(true)
  })

  it('a pin upgrades an earned origin; protecting twice is a no-op', () => {
    const guard = createReplayGuard({ maxOrigins: 2 })
    guard.protect(A, 'earn')
    guard.protect(A, 'pin')
    guard.protect(A, 'pin')
    guard.protect(B, 'pin')
    expect(guard.size).toBe(2)
    guard.protect('c', 'pin') // both pinned now: A, the least recently used, goes
    expect(guard.known(A)).toBe(false)
  })

  it('size stays within both bounds whatever is accepted and protected', () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.nat({ max: 50 }), fc.constantFrom('accept', 'pin', 'earn')), { maxLength: 400 }), (events) => {
      const guard = createReplayGuard({ window: 16, maxOrigins: 5, maxStrangers: 3 })
      for (const [o, what] of events) {
        if (what === 'accept') guard.accept(`o${o}`, o)
        else guard.protect(`o${o}`, what)
        expect(guard.size - guard.strangers).toBeLessThanOrEqual(5)
        expect(guard.strangers).toBeLessThanOrEqual(3)
      }
    }), { seed: 64, numRuns: 200 })
  })
})

describe('fingerprints of recent frames (clone detection)', () => {
  it('remembers a fingerprint per accepted (origin, seq) in a ring, and forgets it once the ring moved on', () => {
    const guard = createReplayGuard({ prints: 4 })
    guard.accept(A, 1)
    guard.mark(A, 1, 0xdeadbeef)
    expect(guard.print(A, 1)).toBe(0xdeadbeef)
    expect(guard.print(A, 2)).toBeUndefined()
    expect(guard.print(B, 1)).toBeUndefined()
    for (let s = 2; s <= 5; s++) { guard.accept(A, s); guard.mark(A, s, s) }
    expect(guard.print(A, 1)).toBeUndefined() // slot reused by 5
    expect(guard.print(A, 5)).toBe(5)
    guard.mark('untracked', 1, 1)
    expect(guard.print('untracked', 1)).toBeUndefined()
  })
})

describe('restore(): a window saved elsewhere (a restarted gateway, gateway/store/)', () => {
  it('puts back the highest and the numbers seen in the window; gaps stay open, older numbers are too old', () => {
    const guard = createReplayGuard({ window: 64 })
    guard.restore({ origin: A, high: 100, seen: [99, 97, 10] }) // 10 is outside (36, 100]: ignored
    expect(guard.high(A)).toBe(100)
    expect([100, 99, 97].map((s) => guard.check(A, s))).toEqual(['replay', 'replay', 'replay'])
    expect(guard.accept(A, 98)).toBe('ok') // a gap inside the window: a late reading
    expect(guard.check(A, 36)).toBe('too-old')
    expect(guard.accept(A, 101)).toBe('ok')
  })

  it('every number at or below the floor (pruned records) counts as seen', () => {
    const guard = createReplayGuard({ window: 64 })
    guard.restore({ origin: A, high: 100, seen: [], floor: 80 })
    expect(guard.check(A, 80)).toBe('replay')
    expect(guard.check(A, 50)).toBe('replay')
    expect(guard.check(A, 81)).toBe('ok')
  })

  it('puts the window in the tier it had; replaces what the guard held; ignores a negative high', () => {
    const guard = createReplayGuard({ window: 64 })
    guard.accept(A, 5)
    guard.restore({ origin: A, high: 3, seen: [], trust: 'pin' })
    expect(guard.known(A)).toBe(true)
    expect(guard.high(A)).toBe(3)
    guard.restore({ origin: B, high: 7, seen: [] })
    expect(guard.known(B)).toBe(false)
    expect(guard.strangers).toBe(1)
    guard.restore({ origin: 'cccccccccccccccccccccccccc', high: -1, seen: [] })
    expect(guard.size).toBe(2)
  })
})
