import { describe, expect, it } from 'vitest'
import { HandshakeAdmission, isLoopback } from '../../../mesh/links/admission.js'
import { BanList } from '../../../mesh/links/bans.js'
import { pickVictim, type EvictionCandidate } from '../../../mesh/links/eviction.js'
import { TokenBucket } from '../../../mesh/links/token-bucket.js'
import { ManualClock } from '../../helpers/clock.js'

/** The link layer's limits as pure code (the attacks themselves: test/mesh/link-*.test.ts). */

describe('TokenBucket (RFC 2697 §2, one rate)', () => {
  it('starts full, refills at its rate, never above capacity; a charge goes into debt at most one capacity deep', () => {
    const b = new TokenBucket(10, 20, 0)
    for (let i = 0; i < 20; i++) expect(b.take(1, 0)).toBe(true)
    expect(b.take(1, 0)).toBe(false)
    expect(b.waitFor(1, 0)).toBe(100)
    expect(b.take(1, 100)).toBe(true)
    expect(b.tokens(1_000_000)).toBe(20)
    b.charge(1000, 1_000_000)
    expect(b.tokens(1_000_000)).toBe(-20)
    expect(b.take(1, 1_000_000 + 2000)).toBe(false) // 21 tokens owed at 10 a second
    expect(b.take(1, 1_000_000 + 2100)).toBe(true)
  })
})

describe('HandshakeAdmission', () => {
  it('caps handshakes in progress per source; past the total, the oldest of the busiest source makes room (never for itself)', () => {
    const a = new HandshakeAdmission({ maxPending: 4, maxPendingPerSource: 3 }, () => 0)
    const evicted: string[] = []
    const admit = (source: string, name: string): unknown => a.admit(source, () => { evicted.push(name) })
    expect(typeof admit('10.0.0.1', 'x1')).toBe('function')
    expect(typeof admit('10.0.0.1', 'x2')).toBe('function')
    expect(typeof admit('10.0.0.1', 'x3')).toBe('function')
    expect(admit('10.0.0.1', 'x4')).toBe('pending-per-source')
    expect(typeof admit('10.0.0.2', 'y1')).toBe('function')
    expect(admit('10.0.0.1', 'x5')).toBe('pending-per-source')
    expect(typeof admit('10.0.0.3', 'z1')).toBe('function') // full: x1, the oldest of the busiest, goes
    expect(evicted).toEqual(['x1'])
    expect(a.counters.refused).toMatchObject({ 'pending-per-source': 2, 'pending-total': 1 })
  })

  it('releases a place once; loopback sources are held to the totals only unless limitLoopback', () => {
    const a = new HandshakeAdmission({ maxPending: 2, maxPendingPerSource: 1 }, () => 0)
    const r1 = a.admit('127.0.0.1', () => {})
    expect(typeof a.admit('127.0.0.1', () => {})).toBe('function') // loopback: no per-source cap
    expect(typeof r1).toBe('function')
    ;(r1 as () => void)()
    ;(r1 as () => void)()
    expect(typeof a.admit('::ffff:127.0.0.2', () => {})).toBe('function')
    const strict = new HandshakeAdmission({ maxPendingPerSource: 1, limitLoopback: true }, () => 0)
    strict.admit('127.0.0.1', () => {})
    expect(strict.admit('127.0.0.1', () => {})).toBe('pending-per-source')
    expect(isLoopback('::1') && isLoopback('127.9.9.9') && !isLoopback('10.0.0.1')).toBe(true)
  })

  it('signs a reply only within the per-source and the total budget, and counts what it refused', () => {
    let now = 0
    const a = new HandshakeAdmission({ repliesPerSecond: 30, repliesPerSecondPerSource: 5 }, () => now)
    let ok = 0
    for (let i = 0; i < 50; i++) if (a.reply('10.0.0.1') === undefined) ok++
    expect(ok).toBe(10) // burst: twice the rate
    expect(a.reply('10.0.0.1')).toBe('rate-per-source')
    for (let s = 2; s < 20; s++) for (let i = 0; i < 10; i++) if (a.reply(`10.0.0.${s}`) === undefined) ok++
    expect(ok).toBe(60) // the total's burst
    expect(a.counters.refused['rate-total']).toBeGreaterThan(0)
    now += 1000
    expect(a.reply('10.0.0.1')).toBeUndefined()
    expect(a.counters.replies).toBe(61)
  })

  it('remembers at most maxSources per-source budgets', () => {
    const a = new HandshakeAdmission({ maxSources: 8, repliesPerSecond: 1e6 }, () => 0)
    for (let i = 0; i < 1000; i++) a.reply(`10.1.${i >> 8}.${i & 255}`)
    expect(a.counters.replies).toBe(1000)
  })
})

describe('pickVictim (inbound eviction)', () => {
  const c = (item: string, address: string | undefined, lastMessageAt: number, value?: number): EvictionCandidate<string> =>
    ({ item, address, openedAt: 0, lastMessageAt, value })

  it('takes the idlest of the address with the most links', () => {
    expect(pickVictim([c('h1', 'a', 0), c('s1', 'evil', 50), c('s2', 'evil', 40), c('h2', 'b', 10)], 100)).toBe('s2')
  })

  it('with one link per address: only one idle for idleMs or valued below 0, else no one', () => {
    expect(pickVictim([c('h1', 'a', 50), c('h2', 'b', 60)], 100, { idleMs: 60_000 })).toBeUndefined()
    expect(pickVictim([c('h1', 'a', 50), c('h2', 'b', 60)], 60_060, { idleMs: 60_000 })).toBe('h1')
    expect(pickVictim([c('h1', 'a', 50, 5), c('h2', 'b', 90, -1)], 100, { idleMs: 60_000 })).toBe('h2')
  })

  it('ranks by value first when a hook gives one', () => {
    expect(pickVictim([c('s1', 'evil', 0, 10), c('s2', 'evil', 90, 1)], 100)).toBe('s2')
  })
})

describe('BanList', () => {
  it('bans by id or address until its expiry, keeps the longer ban, and stays bounded', () => {
    const clock = new ManualClock()
    const bans = new BanList({ maxEntries: 3 }, clock)
    bans.ban({ id: 'dev1', address: '10.0.0.9' }, { forMs: 1000, reason: 'score' })
    expect(bans.banned({ address: '10.0.0.9' })).toBe(true)
    expect(bans.find({ id: 'dev1' })?.reason).toBe('score')
    bans.ban({ id: 'dev1' }, { forMs: 10 }) // shorter: the longer stays
    clock.advance(500)
    expect(bans.banned({ id: 'dev1' })).toBe(true)
    clock.advance(501)
    expect(bans.banned({ id: 'dev1' })).toBe(false)
    for (let i = 0; i < 10; i++) bans.ban({ address: `10.0.1.${i}` }, { forMs: 1000 + i })
    expect(bans.size).toBeLessThanOrEqual(3)
    expect(bans.banned({ address: '10.0.1.9' })).toBe(true) // the ones that end soonest went
    expect(bans.unban({ address: '10.0.1.9' })).toBe(true)
    expect(bans.banned({ address: '10.0.1.9' })).toBe(false)
  })
})
