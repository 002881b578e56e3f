import { describe, expect, it } from 'vitest'
import { Verifier, defaultEd25519, encodeFrame, generateKeyPair, type Ed25519, type KeyPair } from '../../shared/index.js'

/** Verify once per process (shared/verified.ts): two verifiers of one process, one frame. */

const keysOf = (seed: number): KeyPair => generateKeyPair(new Uint8Array(32).fill(seed))

function counting (): { ed: Ed25519, checks: () => number } {
  let n = 0
  return { ed: { ...defaultEd25519, verify: (s, m, k) => { n++; return defaultEd25519.verify(s, m, k) } }, checks: () => n }
}

describe('verified marks', () => {
  it('a second verifier takes bytes the first accepted, and a copy only when `carry` gave it the mark', () => {
    const alice = keysOf(41)
    // Signed through a caller's backend: no mark from signing, so the first verifier checks it.
    const frame = encodeFrame({ keys: alice, seq: 1, time: 1_767_225_600, records: [{ n: 'v', v: 1 }], ed25519: { ...defaultEd25519 } })
    const one = counting()
    const two = counting()
    const first = new Verifier({}, { ed25519: one.ed })
    const second = new Verifier({}, { ed25519: two.ed })
    first.learnKey(alice.publicKey, alice.id)
    second.learnKey(alice.publicKey, alice.id)

    const decode = (bytes: Uint8Array): ReturnType<Verifier['admit']> => {
      const d = second.decode(bytes)
      if (!d.ok) throw new Error('decode')
      return second.admit(d.frame)
    }
    const d1 = first.decode(frame)
    if (!d1.ok) throw new Error('decode')
    expect(first.admit(d1.frame).verdict).toBe('accepted')
    expect([one.checks(), first.checked, first.vouched]).toEqual([1, 1, 0])

    expect(decode(frame).verdict).toBe('accepted')
    expect([two.checks(), second.vouched]).toEqual([0, 1])

    const frame2 = encodeFrame({ keys: alice, seq: 2, time: 1_767_225_601, records: [{ n: 'v', v: 2 }], ed25519: { ...defaultEd25519 } })
    const d2 = first.decode(frame2)
    if (!d2.ok) throw new Error('decode')
    expect(first.admit(d2.frame).verdict).toBe('accepted')
    const copy = frame2.slice()
    const other = frame2.slice()
    other[other.length - 1] = (other[other.length - 1] as number) ^ 1
    first.carry(frame2, copy)
    first.carry(frame2, other) // other bytes: no mark
    expect(decode(other).verdict).toBe('refused')
    expect(two.checks()).toBe(1)
    expect(decode(copy).verdict).toBe('accepted')
    expect([two.checks(), second.vouched]).toEqual([1, 2])
  })

  it('a mark holds only for the key it was made with', () => {
    const alice = keysOf(43)
    const frame = encodeFrame({ keys: alice, seq: 1, time: 1_767_225_600, records: [{ n: 'v', v: 1 }] }) // marked: iotmesh's own backend
    const c = counting()
    const v = new Verifier({}, { ed25519: c.ed })
    // A verifier whose key store holds another key under alice's id cannot exist (keys derive to ids),
    // so the test swaps the key the store returns for a copy of a different key.
    v.learnKey(alice.publicKey, alice.id)
    const wrong = keysOf(44).publicKey
    const keys = v.keys as unknown as { get: (id: string) => Uint8Array | undefined }
    keys.get = () => wrong
    const d = v.decode(frame)
    if (!d.ok) throw new Error('decode')
    expect(v.admit(d.frame)).toMatchObject({ verdict: 'refused', refusal: 'bad-signature' })
    expect([c.checks(), v.vouched]).toEqual([1, 0])
  })
})
