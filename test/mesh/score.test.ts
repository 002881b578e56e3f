import { describe, expect, it } from 'vitest'
import { DEFAULT_BUDGETS, DEFAULT_ORIGIN_RATE, LinkBudget, OriginBudgets, TokenBucket, budgetsOf, entriesOf, kindOf } from '../../mesh/routing/budget.js'
import { MSG, encodeData, encodeMessage } from '../../mesh/routing/messages.js'
import { DEFAULT_SCORE_PARAMS, PeerScores } from '../../mesh/routing/score.js'

/** The pure parts of the defences against hostile neighbours: token buckets (budget.ts) and peer scores (score.ts). */

const P = 'peerpeerpeerpeerpeerpeerpe'
const Q = 'qqqqqqqqqqqqqqqqqqqqqqqqqq'

describe('budgets: token buckets per link and message kind', () => {
  it('reads the kind of a routing message from its first two bytes, before decoding (RFC 8949 §3.1: an array, then a small uint)', () => {
    expect(kindOf(encodeData(1, Uint8Array.of(1, 2, 3)))).toBe('data')
    expect(kindOf(encodeMessage({ kind: MSG.HELLO, version: 1, fleet: 'f', port: 1, addresses: [] }))).toBe('hello')
    expect(kindOf(encodeMessage({ kind: MSG.KEY, keys: [new Uint8Array(32)] }))).toBe('key')
    expect(kindOf(encodeMessage({ kind: MSG.KEYREQ, kids: [] }))).toBe('keyreq')
    expect(kindOf(encodeMessage({ kind: MSG.WANT, entries: [] }))).toBe('want')
    expect(kindOf(encodeMessage({ kind: MSG.DIGEST, full: true, entries: [] }))).toBe('digest')
    expect(kindOf(encodeMessage({ kind: MSG.PEERS, peers: [] }))).toBe('peers')
    expect(kindOf(encodeMessage({ kind: MSG.CMD, entries: [] }))).toBe('cmd')
    expect(kindOf(encodeMessage({ kind: MSG.REVOKE, revocations: [] }))).toBe('revoke')
    for (const junk of [Uint8Array.of(), Uint8Array.of(0x83), Uint8Array.of(0xa1, 0x01), Uint8Array.of(0x83, 0x14), Uint8Array.of(0x83, 0x18, 0x01)]) {
      expect(kindOf(junk)).toBe('other')
    }
  })

  it('per origin: only accepted frames take a token; an unknown origin is allowed; eviction starts an origin again with a full burst', () => {
    expect(DEFAULT_ORIGIN_RATE).toEqual({ rate: 500, burst: 5000 })
    const origins = new OriginBudgets({ rate: 10, burst: 3 }, 2)
    expect(origins.allows(P, 0)).toBe(true)
    for (let i = 0; i < 3; i++) { expect(origins.allows(P, 0)).toBe(true); origins.take(P, 0) }
    expect(origins.allows(P, 0)).toBe(false)
    expect(origins.allows(P, 50)).toBe(false) // half a token
    expect(origins.allows(P, 100)).toBe(true)
    expect(origins.allows(Q, 100)).toBe(true) // another origin's budget is its own
    origins.take(Q, 100)
    origins.take('rrrrrrrrrrrrrrrrrrrrrrrrrr', 100) // a third origin: P, the oldest, is forgotten
    expect(origins.size).toBe(2)
    for (let i = 0; i < 3; i++) origins.take(P, 100)
    expect(origins.allows(P, 100)).toBe(false)
  })

  it('a decoded message costs its entries, at least 1', () => {
    expect(entriesOf({ kind: MSG.KEY, keys: Array.from({ length: 200 }, () => new Uint8Array(32)) })).toBe(200)
    expect(entriesOf({ kind: MSG.KEYREQ, kids: [] })).toBe(1)
    expect(entriesOf({ kind: MSG.DATA, hops: 1, frame: Uint8Array.of() })).toBe(1)
    expect(entriesOf({ kind: MSG.WANT, entries: [{ kid: new Uint8Array(16), from: 0, to: 9 }] })).toBe(1)
  })

  it('refills at its rate up to its burst, takes a token per message, and lets a charge run into debt of one burst at most', () => {
    const bucket = new TokenBucket({ rate: 10, burst: 5 }, 0)
    for (let i = 0; i < 5; i++) expect(bucket.take(0)).toBe(true)
    expect(bucket.take(0)).toBe(false)
    expect(bucket.take(99)).toBe(false) // 0.99 tokens
    expect(bucket.take(100)).toBe(true)
    bucket.charge(1000, 100)
    expect(bucket.tokens(100)).toBe(-5)
    expect(bucket.take(600)).toBe(false) // back to 0
    expect(bucket.take(700)).toBe(true)
    expect(bucket.tokens(10_000)).toBe(5) // never above the burst by refilling
  })

  it('credits frames asked for ahead of the budget, up to burst + cap', () => {
    const budget = new LinkBudget(budgetsOf({ data: { rate: 0, burst: 2 } }), 0)
    budget.credit('data', 100, 50, 0)
    expect(budget.tokens('data', 0)).toBe(52)
    let read = 0
    while (budget.admit('data', 0)) read++
    expect(read).toBe(52)
  })

  it('defaults are generous and overridable per kind', () => {
    expect(DEFAULT_BUDGETS.data.rate).toBeGreaterThanOrEqual(5000)
    expect(budgetsOf({ key: { rate: 1 } }).key).toEqual({ rate: 1, burst: DEFAULT_BUDGETS.key.burst })
    expect(budgetsOf({ hello: { burst: 0 } }).hello.burst).toBe(1)
  })
})

describe('peer scores (gossipsub v1.1 "Peer Scoring")', () => {
  it('useful deliveries raise a score, up to a cap', () => {
    const scores = new PeerScores()
    expect(scores.add(P, 'useful', 10)).toBe(10)
    expect(scores.add(P, 'useful', 1000)).toBe(DEFAULT_SCORE_PARAMS.useful.cap)
  })

  it('invalid frames weigh squared: a handful puts an honest-looking peer below the threshold', () => {
    const scores = new PeerScores()
    scores.add(P, 'useful', 50)
    expect(scores.add(P, 'invalid', 2)).toBe(50 - 40)
    expect(scores.failing(P)).toBe(false)
    scores.add(P, 'invalid', 2)
    expect(scores.score(P)).toBe(50 - 160)
    expect(scores.failing(P)).toBe(true)
  })

  it('misbehaviour (over budget, broken promises, unknown signers, duplicates past a ratio) is free up to a threshold, then squared', () => {
    const scores = new PeerScores()
    expect(scores.add(P, 'overBudget', 5)).toBe(0)
    expect(scores.add(P, 'brokenPromise', 3)).toBe(0)
    expect(scores.add(P, 'unknownSigner', 2)).toBe(0) // 10: the threshold
    expect(scores.add(P, 'unknownSigner', 10)).toBe(-100)
    // duplicates: 4 per useful frame and 200 more are free
    expect(scores.add(Q, 'useful', 10)).toBe(10)
    expect(scores.add(Q, 'duplicate', 240)).toBe(10)
    expect(scores.add(Q, 'duplicate', 20)).toBe(10 - 100)
  })

  it('counters decay each interval and reach zero; a peer gone longer than retainMs is forgotten', () => {
    const scores = new PeerScores({ retainMs: 10_000 })
    scores.add(P, 'invalid', 4)
    scores.linked(P, true, 0)
    expect(scores.failing(P)).toBe(true)
    for (let t = 1; t <= 200; t++) scores.decay(t * 1000)
    expect(scores.score(P)).toBeCloseTo(-10 * (4 * 0.99 ** 200) ** 2, 6) // invalid decays 0.99 a second, squared in the score
    expect(scores.failing(P)).toBe(false)
    scores.linked(Q, true, 200_000)
    scores.add(Q, 'useful', 1)
    scores.decay(200_500)
    expect(scores.score(Q)).toBe(0.95)
    for (let i = 0; i < 100; i++) scores.decay(200_500)
    expect(scores.score(Q)).toBe(0) // below decayToZero: zero, not a long tail
    scores.linked(P, false, 200_000)
    scores.decay(205_000)
    expect(scores.record(P, 205_000)).toBeDefined()
    scores.decay(210_001)
    expect(scores.record(P, 210_001)).toBeUndefined()
    expect(scores.record(Q, 210_001)).toBeDefined() // linked: kept whatever its age
  })

  it('bans for a backoff that doubles with each ban within retainMs, up to maxBanMs', () => {
    const scores = new PeerScores({ banMs: 1000, maxBanMs: 5000, retainMs: 60_000 })
    expect(scores.ban(P, 0)).toBe(1000)
    expect(scores.banned(P, 999)).toBe(1000)
    expect(scores.banned(P, 1000)).toBeUndefined()
    expect(scores.ban(P, 2000)).toBe(4000) // 2 s
    expect(scores.ban(P, 5000)).toBe(9000) // 4 s
    expect(scores.ban(P, 10_000)).toBe(15_000) // 5 s: the cap
    expect(scores.record(P, 10_000)).toMatchObject({ bans: 4, bannedUntil: 15_000 })
    expect(scores.ban(P, 100_000)).toBe(101_000) // a minute after the last ban ended: a first offence again
  })

  it('records are bounded: the oldest unlinked, never-banned peer makes room first', () => {
    const scores = new PeerScores({ maxPeers: 3 })
    scores.linked('a', true, 0)
    scores.ban('b', 0)
    scores.add('c', 'useful')
    scores.add('d', 'useful')
    expect(scores.size).toBe(3)
    expect([...scores.peers()].sort()).toEqual(['a', 'b', 'd'])
  })
})
