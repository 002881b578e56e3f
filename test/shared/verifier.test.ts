import { describe, expect, it } from 'vitest'
import {
  Verifier, VERIFIER_DEFAULTS, encodeFrame, generateKeyPair, manualClock, type Admission, type KeyPair, type TelemetryFrame
} from '../../shared/index.js'

/** The one verifier that both the mesh router and the gateway's ingest use (shared/verifier.ts). */

const keysOf = (seed: number): KeyPair => generateKeyPair(new Uint8Array(32).fill(seed))
const alice = keysOf(1)
const bob = keysOf(2)
const frameOf = (keys: KeyPair, seq: number): Uint8Array => encodeFrame({ keys, seq, time: 1_767_225_600, records: [{ n: 'temp', v: seq }] })

function decoded<T> (v: Verifier<T>, bytes: Uint8Array): TelemetryFrame {
  const result = v.decode(bytes)
  if (!result.ok) throw new Error(`not decoded: ${result.refusal.code}`)
  return result.frame
}

const verdict = (a: Admission): string => a.verdict === 'refused' ? `${a.refusal}:${a.code}` : a.verdict

describe('Verifier', () => {
  it('accepts a frame once its key is known, then calls the same (origin, seq) a duplicate', () => {
    const v = new Verifier()
    v.learnKey(alice.publicKey)
    const frame = decoded(v, frameOf(alice, 1))
    expect(verdict(v.admit(frame))).toBe('accepted')
    expect(verdict(v.admit(frame))).toBe('duplicate')
  })

  it('refuses malformed bytes at decode with the codec code, never throwing', () => {
    const v = new Verifier()
    const result = v.decode(Uint8Array.of(0xd2, 0x84, 0x40))
    expect(result.ok).toBe(false)
    if (!result.ok) expect(result.refusal).toMatchObject({ refusal: 'malformed', code: 'ERR_TRUNCATED' })
  })

  it('does not burn a sequence number on a forged frame: the genuine one is accepted after it', () => {
    const v = new Verifier()
    v.learnKey(alice.publicKey)
    const forged = decoded(v, encodeFrame({ keys: { ...bob, id: alice.id }, seq: 5, time: 1_767_225_600, records: [{ n: 'temp', v: 1 }] }))
    expect(verdict(v.admit(forged))).toBe('bad-signature:ERR_BAD_SIGNATURE')
    expect(verdict(v.admit(decoded(v, frameOf(alice, 5))))).toBe('accepted')
  })

  it('holds frames of an unknown signer and hands them back when the key arrives', () => {
    const clock = manualClock()
    const v = new Verifier<string>({}, { clock })
    const expired: string[] = []
    const hold = (item: string) => ({ item, onExpire: (i: string) => { expired.push(i) } })
    expect(v.admit(decoded(v, frameOf(alice, 1)), hold('first'))).toMatchObject({ verdict: 'held', first: true })
    expect(v.admit(decoded(v, frameOf(alice, 2)), hold('second'))).toMatchObject({ verdict: 'held', first: false })
    expect(v.heldCount).toBe(2)
    const learned = v.learnKey(alice.publicKey)
    expect(learned).toMatchObject({ result: 'added', id: alice.id, released: ['first', 'second'] })
    expect(v.heldCount).toBe(0)
    clock.advance(VERIFIER_DEFAULTS.holdMs * 2)
    expect(expired).toEqual([])
  })

  it('a held frame whose key never comes expires after holdMs; without a hold request it is refused at once', () => {
    const clock = manualClock()
    const v = new Verifier<string>({ holdMs: 500 }, { clock })
    const expired: string[] = []
    v.admit(decoded(v, frameOf(alice, 1)), { item: 'x', onExpire: (i) => { expired.push(i) } })
    clock.advance(499)
    expect(expired).toEqual([])
    clock.advance(1)
    expect(expired).toEqual(['x'])
    expect(verdict(v.admit(decoded(v, frameOf(alice, 2))))).toBe('unknown-signer:ERR_UNKNOWN_SIGNER')
  })

  it('bounds the pen per signer and in total', () => {
    const v = new Verifier<number>({ maxHeld: 3, maxHeldPerSigner: 2 }, { clock: manualClock() })
    const hold = (n: number) => ({ item: n, onExpire: () => {} })
    const verdicts = [1, 2, 3].map((seq) => verdict(v.admit(decoded(v, frameOf(alice, seq)), hold(seq))))
    expect(verdicts).toEqual(['held', 'held', 'unknown-signer:ERR_UNKNOWN_SIGNER'])
    const others = [1, 2].map((seq) => verdict(v.admit(decoded(v, frameOf(bob, seq)), hold(seq))))
    expect(others).toEqual(['held', 'unknown-signer:ERR_UNKNOWN_SIGNER'])
  })

  it('in closed mode refuses signers outside the roster, and their keys', () => {
    const v = new Verifier({ roster: [alice.publicKey] })
    expect(verdict(v.admit(decoded(v, frameOf(bob, 1))))).toBe('not-in-roster:ERR_NOT_IN_ROSTER')
    expect(v.learnKey(bob.publicKey).result).toBe('not-in-roster')
    expect(verdict(v.admit(decoded(v, frameOf(alice, 1))))).toBe('accepted')
  })

  it('refuses a frame below the replay window as too old (ERR_REPLAY)', () => {
    const v = new Verifier({ replayWindow: 64 })
    v.learnKey(alice.publicKey)
    expect(verdict(v.admit(decoded(v, frameOf(alice, 100))))).toBe('accepted')
    expect(verdict(v.admit(decoded(v, frameOf(alice, 20))))).toBe('too-old:ERR_REPLAY')
  })

  it('a key that does not derive to the id given is a mismatch and releases nothing', () => {
    const v = new Verifier<string>({}, { clock: manualClock() })
    v.admit(decoded(v, frameOf(alice, 1)), { item: 'held', onExpire: () => {} })
    expect(v.learnKey(bob.publicKey, alice.id)).toMatchObject({ result: 'mismatch', released: [] })
    expect(v.heldCount).toBe(1)
  })
})

describe('Verifier: state strangers cannot evict (issue 10)', () => {
  const strangers = Array.from({ length: 40 }, (_, i) => keysOf(100 + i))

  it('fresh origins past maxOrigins do not make a vouched-for device\'s old frame fresh again', () => {
    const v = new Verifier({ maxOrigins: 8, maxStrangers: 8 })
    v.learnKey(alice.publicKey) // a trusted source: DNS-SD, a handshake, a status
    const old = decoded(v, frameOf(alice, 1))
    expect(verdict(v.admit(old))).toBe('accepted')
    for (const k of strangers) {
      v.learnKey(k.publicKey, undefined, 'gossip')
      expect(verdict(v.admit(decoded(v, frameOf(k, 1))))).toBe('accepted')
    }
    expect(verdict(v.admit(old))).toBe('duplicate')
    expect(v.known(alice.id)).toBe(true)
    expect(v.replay.strangers).toBe(8)
  })

  it('a gossiped key earns its place with promoteAfter verified frames, then survives the flood too', () => {
    const v = new Verifier({ maxOrigins: 8, maxStrangers: 8, maxStrangerKeys: 8, promoteAfter: 3 })
    v.learnKey(bob.publicKey, undefined, 'gossip')
    expect(v.keys.trust(bob.id)).toBe('stranger')
    for (const seq of [1, 2]) v.admit(decoded(v, frameOf(bob, seq)))
    expect(v.known(bob.id)).toBe(false)
    v.admit(decoded(v, frameOf(bob, 3)))
    expect(v.known(bob.id)).toBe(true)
    expect(v.keys.trust(bob.id)).toBe('earn')
    for (const k of strangers) {
      v.learnKey(k.publicKey, undefined, 'gossip')
      v.admit(decoded(v, frameOf(k, 1)))
    }
    expect(verdict(v.admit(decoded(v, frameOf(bob, 1))))).toBe('duplicate')
    expect(v.keys.get(bob.id)).toBeDefined()
  })

  it('random KEYs churn the stranger keys only: a pinned key stays, and memory is bounded', () => {
    const v = new Verifier({ maxKeys: 16, maxStrangerKeys: 16 })
    v.learnKey(alice.publicKey)
    for (let i = 0; i < 10_000; i++) v.learnKey(Uint8Array.from({ length: 32 }, (_, j) => (i * 131 + j * 7 + (i >> 8)) & 0xff), undefined, 'gossip')
    expect(v.keys.get(alice.id)).toBeDefined()
    expect(v.keys.size).toBe(17)
    expect(v.keys.strangers).toBe(16)
  })

  it('a roster\'s devices are known from the start', () => {
    const v = new Verifier({ roster: [alice.publicKey], maxOrigins: 4 })
    expect(v.known(alice.id)).toBe(true)
  })
})

describe('Verifier: cloned identities (issue 10)', () => {
  /** Another frame for the same (origin, seq): same key, other contents. */
  const other = (keys: KeyPair, seq: number): Uint8Array => encodeFrame({ keys, seq, time: 1_767_225_601, records: [{ n: 'temp', v: -seq }] })

  it('keeps the first copy; a second, different, validly signed frame for that (origin, seq) is refused as ERR_CLONED_IDENTITY', () => {
    const v = new Verifier()
    v.learnKey(alice.publicKey)
    expect(verdict(v.admit(decoded(v, frameOf(alice, 7))))).toBe('accepted')
    expect(verdict(v.admit(decoded(v, other(alice, 7))))).toBe('cloned:ERR_CLONED_IDENTITY')
    expect(verdict(v.admit(decoded(v, frameOf(alice, 7))))).toBe('duplicate') // the first copy again: a plain duplicate
    expect(v.clones).toBe(1)
  })

  it('a second copy with a forged signature is a bad signature, not a clone', () => {
    const v = new Verifier()
    v.learnKey(alice.publicKey)
    v.admit(decoded(v, frameOf(alice, 7)))
    const forged = other(alice, 7)
    forged[forged.length - 1] = (forged[forged.length - 1] as number) ^ 1
    expect(verdict(v.admit(decoded(v, forged)))).toBe('bad-signature:ERR_BAD_SIGNATURE')
    expect(v.clones).toBe(0)
  })

  it('secondCopy judges a copy the caller found different (beyond the fingerprint ring)', () => {
    const v = new Verifier()
    v.learnKey(alice.publicKey)
    expect(verdict(v.secondCopy(decoded(v, other(alice, 1))))).toBe('cloned:ERR_CLONED_IDENTITY')
    expect(verdict(new Verifier().secondCopy(decoded(v, other(alice, 1))))).toBe('duplicate') // no key: it cannot be judged
  })

  it('a frame this node signed itself is recorded with its fingerprint: a clone of this node is caught too', () => {
    const v = new Verifier()
    v.learnKey(alice.publicKey)
    const own = decoded(v, frameOf(alice, 3))
    v.recordOwn(alice.id, 3, own)
    expect(verdict(v.admit(own))).toBe('duplicate')
    expect(verdict(v.admit(decoded(v, other(alice, 3))))).toBe('cloned:ERR_CLONED_IDENTITY')
  })
})
