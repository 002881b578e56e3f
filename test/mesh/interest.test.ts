import { describe, expect, it } from 'vitest'
import {
  decodeFrame, encodeCbor, encodeFrame, isMeshError, manualClock, telemetryTopic, type Ed25519, type KeyPair
} from '../../shared/index.js'
import { nodeEd25519 } from '../../shared/node.js'
import { CHAIN_ELEMENT_BYTES, HashChain, chainSeed, chainStep } from '../../mesh/routing/chain.js'
import { MAX_FILTERS, checkDeclarable, openDeclaration, signDeclaration } from '../../mesh/routing/declaration.js'
import { InterestIntake } from '../../mesh/routing/intake.js'
import { MSG, decodeMessage, encodeMessage } from '../../mesh/routing/messages.js'
import { InterestTable, UNREACHABLE, WORK_VERIFY, type Claim } from '../../mesh/routing/interest.js'
import { seededKeys } from '../helpers/memory-mesh.js'

/** Ed25519 that counts its work, to show what is verified (and signed) once. */
function counting (): Ed25519 & { verified: number, signed: number } {
  const ed = {
    name: 'node' as const,
    verified: 0,
    signed: 0,
    getPublicKey: (sk: Uint8Array) => nodeEd25519.getPublicKey(sk),
    sign: (m: Uint8Array, sk: Uint8Array) => { ed.signed++; return nodeEd25519.sign(m, sk) },
    verify: (s: Uint8Array, m: Uint8Array, pk: Uint8Array) => { ed.verified++; return nodeEd25519.verify(s, m, pk) }
  }
  return ed
}

function table (keys: KeyPair, init: { maxSubscribers?: number, maxPerNeighbour?: number, maxBytesPerNeighbour?: number } = {}, ed25519: Ed25519 = nodeEd25519): InterestTable {
  return new InterestTable(init, { keys, clock: manualClock(), ed25519 })
}

/** A subscriber's own claim (distance 0) and, for a relay at distance d, its claim with e_d. */
function subscriber (keys: KeyPair, filters: string[], ed25519?: Ed25519): { own: Claim, at: (hops: number) => Claim, table: InterestTable } {
  const t = table(keys, {}, ed25519)
  for (const f of filters) t.setLocal(f, 1)
  const own = t.own() as Claim
  const at = (hops: number): Claim => {
    let proof = own.proof
    for (let i = 0; i < hops; i++) proof = chainStep(proof)
    return { ...own, hops, proof }
  }
  return { own, at, table: t }
}

describe('SEAD hash chains (chain.ts)', () => {
  const seed = chainSeed(seededKeys(1).secretKey, 7)

  it('e_{i+1} = H(e_i) from a keyed seed, and the seed depends on the key and the version', () => {
    const chain = HashChain.fromSeed(seed, UNREACHABLE)
    expect(chain.low).toBe(0)
    for (let i = 0; i < UNREACHABLE; i++) expect(chain.element(i + 1)).toEqual(chainStep(chain.element(i) as Uint8Array))
    expect(chain.element(0)).toEqual(seed)
    expect(seed).toHaveLength(CHAIN_ELEMENT_BYTES)
    expect(chainSeed(seededKeys(1).secretKey, 7)).toEqual(seed)
    expect(chainSeed(seededKeys(1).secretKey, 8)).not.toEqual(seed)
    expect(chainSeed(seededKeys(2).secretKey, 7)).not.toEqual(seed)
  })

  it('checks e_d against the anchor with H^(N-d), learns what it proved, and refuses anything else', () => {
    const full = HashChain.fromSeed(seed, UNREACHABLE)
    const known = HashChain.fromAnchor(full.anchor, UNREACHABLE)
    expect(known.cost(10)).toBe(UNREACHABLE - 10)
    expect(known.check(10, full.element(10) as Uint8Array)).toBe(true)
    expect(known.low).toBe(10)
    expect(known.cost(12)).toBe(0) // known now: a comparison
    expect(known.check(12, full.element(12) as Uint8Array)).toBe(true)
    expect(known.check(3, full.element(3) as Uint8Array)).toBe(true) // 7 hashes down to e_10
    expect(known.low).toBe(3)
    // e_d at another distance, a flipped bit, a wrong length, out of range: refused, nothing learned.
    expect(known.check(2, full.element(3) as Uint8Array)).toBe(false)
    const flipped = (full.element(1) as Uint8Array).slice()
    flipped[0] = (flipped[0] as number) ^ 1
    expect(known.check(1, flipped)).toBe(false)
    expect(known.check(1, new Uint8Array(15))).toBe(false)
    expect(known.check(UNREACHABLE + 1, full.anchor)).toBe(false)
    expect(known.check(-1, full.anchor)).toBe(false)
    expect(known.low).toBe(3)
    // A node that knows e_3 can make e_4…e_N, not e_2.
    expect(known.element(2)).toBeUndefined()
    // What it hashed through on the way down is learned too, each element at its own distance.
    for (let d = 3; d <= UNREACHABLE; d++) expect(known.element(d)).toEqual(full.element(d))
  })

  it('H is SHA-256 truncated to 16 bytes (known answers: every node must compute the same chain)', () => {
    const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
    // sha256(16 zero bytes) and sha256 of its first 16 bytes, truncated (Python hashlib).
    const e1 = chainStep(new Uint8Array(16))
    expect(hex(e1)).toBe('374708fff7719dd5979ec875d56cd228')
    expect(hex(chainStep(e1))).toBe('f75dbe115a677184d86eda0e51fee357')
    // Its own 16 bytes, not a window on a longer digest that a caller could keep alive or read past.
    expect(e1.byteLength).toBe(CHAIN_ELEMENT_BYTES)
    expect(e1.buffer.byteLength).toBe(CHAIN_ELEMENT_BYTES)
    // A chain known from its anchor proves e_1 (63 hashes in one check) when the elements are these.
    const own = HashChain.fromSeed(new Uint8Array(16), UNREACHABLE)
    expect(own.element(1)).toEqual(e1)
    expect(HashChain.fromAnchor(own.anchor, UNREACHABLE).check(1, e1)).toBe(true)
  })
})

describe('declarations (declaration.ts)', () => {
  const keys = seededKeys(1)
  const anchor = HashChain.fromSeed(chainSeed(keys.secretKey, 5), UNREACHABLE).anchor
  const claimed = { subscriber: keys.id, version: 5, length: UNREACHABLE }
  const bytes = signDeclaration({ keys, version: 5, filters: ['iotmesh/default/#'], anchor, length: UNREACHABLE })

  it('round-trips: version, filters and anchor under the subscriber signature', () => {
    const opened = openDeclaration(bytes, keys.publicKey, claimed)
    expect(opened).toEqual({ ok: true, declaration: { subscriber: keys.id, version: 5, filters: ['iotmesh/default/#'], anchor, length: UNREACHABLE } })
  })

  it('refuses a flipped byte, another key, another version or length, and a telemetry frame, each with its code', () => {
    const flipped = bytes.slice()
    flipped[flipped.length - 5] = (flipped[flipped.length - 5] as number) ^ 1
    expect(openDeclaration(flipped, keys.publicKey, claimed)).toEqual({ ok: false, code: 'ERR_BAD_SIGNATURE' })
    expect(openDeclaration(bytes, seededKeys(2).publicKey, claimed)).toEqual({ ok: false, code: 'ERR_WRONG_KEY' })
    expect(openDeclaration(bytes, keys.publicKey, { ...claimed, version: 6 })).toEqual({ ok: false, code: 'ERR_BAD_DECLARATION' })
    expect(openDeclaration(bytes, keys.publicKey, { ...claimed, length: 16 })).toEqual({ ok: false, code: 'ERR_BAD_DECLARATION' })
    expect(openDeclaration(bytes, keys.publicKey, { ...claimed, subscriber: seededKeys(2).id })).toEqual({ ok: false, code: 'ERR_WRONG_KEY' })
    const frame = encodeFrame({ keys, seq: 5, time: 1_700_000_000, records: [{ n: 'x', v: 1 }] })
    expect(openDeclaration(frame, keys.publicKey, claimed)).toEqual({ ok: false, code: 'ERR_BAD_DECLARATION' })
    expect(openDeclaration(Uint8Array.of(0x82, 1), keys.publicKey, claimed)).toMatchObject({ ok: false })
    // …and a declaration is never a telemetry frame.
    expect(() => decodeFrame(bytes)).toThrow()
  })

  it(`a node declares at most ${MAX_FILTERS} filters of at most 256 characters (ERR_BAD_ARGUMENT, before anything is sent)`, () => {
    const code = (fn: () => void): string | undefined => { try { fn() } catch (err) { return isMeshError(err) ? err.code : 'other' } }
    expect(code(() => { checkDeclarable(Array.from({ length: MAX_FILTERS }, (_, i) => `a/${i}`)) })).toBeUndefined()
    expect(code(() => { checkDeclarable(Array.from({ length: MAX_FILTERS + 1 }, (_, i) => `a/${i}`)) })).toBe('ERR_BAD_ARGUMENT')
    expect(code(() => { checkDeclarable(['a/'.repeat(129)]) })).toBe('ERR_BAD_ARGUMENT')
    expect(code(() => { checkDeclarable(Array.from({ length: 32 }, (_, i) => `${'x'.repeat(250)}/${i}`)) })).toBe('ERR_BAD_ARGUMENT') // over 8 KiB
  })
})

describe('the interest table (interest.ts)', () => {
  const s = seededKeys(1)
  const [n1, n2, n3] = [seededKeys(2), seededKeys(3), seededKeys(4)]
  const me = seededKeys(9)

  it('verifies a declaration once per (subscriber, version), however many neighbours relay it', () => {
    const ed = counting()
    const t = table(me, {}, ed)
    const sub = subscriber(s, ['x/#'])
    expect(t.update(s.id, sub.own, 0)).toMatchObject({ changed: true })
    expect(t.update(n1.id, sub.at(1), 0)).toMatchObject({ changed: false })
    expect(t.update(n2.id, sub.at(2), 0)).toMatchObject({ changed: false })
    expect(ed.verified).toBe(1)
    expect(t.best(s.id)).toEqual({ via: s.id, hops: 1, version: sub.own.version })
  })

  it('signs our own declaration once per version; versions start at the wall clock and only grow', () => {
    const ed = counting()
    const clock = manualClock({ wallStart: 1_800_000_000_000 })
    const t = new InterestTable({}, { keys: s, clock, ed25519: ed })
    expect(t.own()).toBeUndefined() // nothing declared yet
    t.setLocal('x/#', 1)
    const v1 = t.version
    expect(v1).toBeGreaterThanOrEqual(1_800_000_000_000)
    t.own()
    t.own()
    expect(ed.signed).toBe(1)
    t.bump()
    expect(t.version).toBeGreaterThan(v1)
    expect(t.own()?.version).toBe(t.version)
    expect(ed.signed).toBe(2)
  })

  it('a lower version is stale; other bytes for a known version are refused unverified', () => {
    const ed = counting()
    const t = table(me, {}, ed)
    const sub = subscriber(s, ['x/#'])
    const old = sub.own
    sub.table.bump()
    const newer = sub.table.own() as Claim
    expect(t.update(s.id, newer, 0).changed).toBe(true)
    expect(t.update(n1.id, { ...old, hops: 1, proof: chainStep(old.proof) }, 0)).toEqual({ changed: false, cost: 1 })
    const other = subscriber(s, ['y/#']) // the same subscriber, another declaration (not the verified one)
    const twin = { ...other.own, version: newer.version }
    expect(t.update(n1.id, { ...twin, hops: 1, proof: chainStep(twin.proof) }, 0)).toMatchObject({ changed: false, code: 'ERR_BAD_DECLARATION' })
    expect(ed.verified).toBe(1)
    expect(t.filtersOf(s.id)).toEqual(['x/#'])
  })

  it('a claim without its declaration is taken for a version already verified, and ignored for any other', () => {
    const t = table(me)
    const sub = subscriber(s, ['x/#'])
    const bare = (c: Claim): Claim => ({ subscriber: c.subscriber, version: c.version, hops: c.hops, proof: c.proof })
    expect(t.update(n1.id, bare(sub.at(1)), 0)).toEqual({ changed: false, cost: 1 })
    expect(t.best(s.id)).toBeUndefined()
    expect(t.update(n1.id, sub.at(1), 0).changed).toBe(true)
    expect(t.update(n2.id, bare(sub.at(2)), 0).code).toBeUndefined()
    expect(t.advertised(n2.id, s.id)).toBe(2)
    expect(t.update(n2.id, { ...bare(sub.at(2)), hops: 1 }, 0).code).toBe('ERR_ROUTE_PROOF')
  })

  it('a claim of a newer version without its declaration waits, per neighbour with an entry, until the subscriber sends that version', () => {
    const t = table(me)
    const sub = subscriber(s, ['x/#'])
    const bare = (c: Claim): Claim => ({ subscriber: c.subscriber, version: c.version, hops: c.hops, proof: c.proof })
    expect(t.update(s.id, sub.own, 0).changed).toBe(true)
    expect(t.update(n1.id, sub.at(1), 0).code).toBeUndefined()
    expect(t.update(n2.id, sub.at(1), 0).code).toBeUndefined()
    sub.table.bump()
    const next = sub.table.own() as Claim
    const at = (hops: number): Claim => { let proof = next.proof; for (let i = 0; i < hops; i++) proof = chainStep(proof); return { ...next, hops, proof } }
    // n1 passes the new version on first, without the declaration (we were one hop from s); n2 with a
    // forged proof; n3, with no entry here, is not held at all.
    expect(t.update(n1.id, bare(at(1)), 0)).toEqual({ changed: false, cost: 1 })
    expect(t.update(n2.id, { ...bare(at(1)), proof: at(3).proof }, 0)).toEqual({ changed: false, cost: 1 })
    expect(t.update(n3.id, bare(at(1)), 0)).toEqual({ changed: false, cost: 1 })
    expect(t.best(s.id)?.version).toBe(sub.own.version) // nothing installed without the declaration
    // One slot per neighbour with an entry, however many versions it names (versions never signed stay there, unused).
    for (let v = 1; v <= 1000; v++) t.update(n1.id, { ...bare(at(1)), version: next.version + v }, 0)
    expect(t.pendingClaims).toBe(2)
    t.update(n1.id, bare(at(1)), 0)
    // The subscriber's own claim brings the declaration: n1's claim is taken with it, n2's and n3's are not.
    expect(t.update(s.id, next, 0).changed).toBe(true)
    expect(t.best(s.id)).toEqual({ via: s.id, hops: 1, version: next.version })
    expect(t.advertised(n1.id, s.id)).toBe(1)
    expect(t.advertised(n2.id, s.id)).toBe(1) // the version before's (`previous`), not the forgery
    expect(t.advertised(n3.id, s.id)).toBe(UNREACHABLE)
    expect(t.countVia(n1.id)).toBe(1)
    expect(t.countVia(n2.id)).toBe(0)
    // A neighbour that is gone leaves nothing waiting.
    sub.table.bump()
    const third = sub.table.own() as Claim
    expect(t.update(n1.id, bare({ ...third, hops: 1, proof: chainStep(third.proof) }), 0).changed).toBe(false)
    t.dropVia(n1.id)
    expect(t.update(s.id, third, 0).changed).toBe(true)
    expect(t.advertised(n1.id, s.id)).toBe(UNREACHABLE)
  })

  it('distance 0 is the subscriber alone, and a distance needs its chain element', () => {
    const t = table(me)
    const sub = subscriber(s, ['x/#'])
    expect(t.update(n1.id, sub.own, 0)).toMatchObject({ changed: false, code: 'ERR_ROUTE_PROOF' })
    expect(t.update(n1.id, { ...sub.at(1), hops: 0 }, 0)).toMatchObject({ code: 'ERR_ROUTE_PROOF' })
    expect(t.update(n1.id, { ...sub.at(2), hops: 1 }, 0)).toMatchObject({ code: 'ERR_ROUTE_PROOF' })
    expect(t.best(s.id)).toBeUndefined()
    expect(t.update(n1.id, sub.at(1), 0)).toMatchObject({ changed: true })
    expect(t.best(s.id)).toMatchObject({ via: n1.id, hops: 2 })
    // Repeating a neighbour's distance is the one shortening left (README): n2 claims n1's distance.
    expect(t.update(n2.id, sub.at(1), 0).code).toBeUndefined()
    expect(t.best(s.id)?.hops).toBe(2)
  })

  it('holds at most maxSubscribers in all and maxPerNeighbour per neighbour (ERR_TABLE_FULL), and forgets a neighbour in O(its entries)', () => {
    const t = table(me, { maxSubscribers: 5, maxPerNeighbour: 3 })
    const subs = Array.from({ length: 8 }, (_, i) => subscriber(seededKeys(20 + i), ['x/#']))
    const results = subs.map((sub) => t.update(n1.id, sub.at(1), 0).code)
    expect(results).toEqual([undefined, undefined, undefined, 'ERR_TABLE_FULL', 'ERR_TABLE_FULL', 'ERR_TABLE_FULL', 'ERR_TABLE_FULL', 'ERR_TABLE_FULL'])
    expect(t.countVia(n1.id)).toBe(3)
    expect(subs.slice(3).map((sub) => t.update(n2.id, sub.at(1), 0).code)).toEqual([undefined, undefined, 'ERR_TABLE_FULL', 'ERR_TABLE_FULL', 'ERR_TABLE_FULL'])
    expect(t.size).toBe(5)
    // n1 still refreshes the subscribers it has; it may not add one.
    expect(t.update(n1.id, subs[0]?.at(1) as Claim, 0).code).toBeUndefined()
    expect(t.dropVia(n1.id).sort()).toEqual(subs.slice(0, 3).map((sub) => sub.own.subscriber).sort())
    expect(t.countVia(n1.id)).toBe(0)
    // The cost of a claim is known before it is checked: a new version costs a verification.
    expect(t.cost(subs[7]?.at(1) as Claim)).toBe(1 + WORK_VERIFY + UNREACHABLE - 1)
  })

  it('holds at most maxBytesPerNeighbour bytes of declarations per neighbour (ERR_TABLE_FULL), a new version replacing the old one\'s', () => {
    const filters = Array.from({ length: 30 }, (_, i) => `iotmesh/${'x'.repeat(200)}/${i}`) // ~6.5 KB declarations
    const subs = [1, 2, 3].map((n) => subscriber(seededKeys(40 + n), filters))
    const size = subs[0]?.own.declaration?.length as number
    const t = table(me, { maxBytesPerNeighbour: 2 * size + 100 })
    expect(subs.map((sub) => t.update(n1.id, sub.at(1), 0).code)).toEqual([undefined, undefined, 'ERR_TABLE_FULL'])
    expect(t.bytesVia(n1.id)).toBe(2 * size)
    expect(t.update(n2.id, subs[2]?.at(1) as Claim, 0).code).toBeUndefined() // another neighbour is not held back
    subs[0]?.table.bump()
    const next = subs[0]?.table.own() as Claim
    expect(t.update(n1.id, { ...next, hops: 1, proof: chainStep(next.proof) }, 0).code).toBeUndefined()
    expect(t.bytesVia(n1.id)).toBe(size + (next.declaration?.length as number))
    expect(t.dropVia(n1.id)).toHaveLength(2)
    expect(t.bytesVia(n1.id)).toBe(0)
    expect(t.update(n1.id, subs[2]?.at(1) as Claim, 0).code).toBeUndefined()
  })

  it('only a new version of the subscriber refreshes its route: claims a relay repeats do not keep it alive', () => {
    const t = table(me)
    const sub = subscriber(s, ['x/#'])
    expect(t.update(n1.id, sub.at(1), 0).changed).toBe(true)
    for (let at = 1000; at <= 30_000; at += 1000) t.update(n1.id, sub.at(1), at) // the same version, again and again
    expect(t.expire(30_000 - 1)).toEqual([s.id]) // installed at 0: gone after 3 periods of 10 s all the same
    // A replay of that version is refused for departedMs (5 minutes by default) from the expiry, not past it.
    expect(t.update(n1.id, sub.at(1), 31_000)).toMatchObject({ changed: false, code: 'ERR_REPLAY' })
    expect(t.has(s.id)).toBe(false)
    expect(t.update(n1.id, sub.at(1), 29_999 + 300_000).changed).toBe(true)
    sub.table.bump()
    expect(t.update(n1.id, { ...(sub.table.own() as Claim), hops: 1, proof: chainStep((sub.table.own() as Claim).proof) }, 340_000).changed).toBe(true)
    expect(t.expire(340_000 - 1)).toEqual([])
  })

  it('a subscriber that left: its last version and older ones are refused, a newer one is taken at once, and at most maxSubscribers are remembered', () => {
    const t = new InterestTable({ maxSubscribers: 2 }, { keys: me, clock: manualClock(), ed25519: nodeEd25519 })
    const sub = subscriber(s, ['x/#'])
    const now = (): Claim => { const own = sub.table.own() as Claim; return { ...own, hops: 1, proof: chainStep(own.proof) } }
    const old = now()
    sub.table.bump()
    const left = now()
    expect(left.version).toBeGreaterThan(old.version)
    expect(t.update(n1.id, left, 0).changed).toBe(true)
    expect(t.expire(1, 1)).toEqual([s.id])
    // A replay is priced as what it costs: a claim refused unchecked, not a new version's verification.
    expect(t.cost(left, 2)).toBe(1)
    expect(t.update(n1.id, left, 2)).toMatchObject({ changed: false, code: 'ERR_REPLAY', cost: 1 }) // the version it left with
    expect(t.update(n1.id, old, 2)).toMatchObject({ changed: false, code: 'ERR_REPLAY' }) // an older one
    expect(t.has(s.id)).toBe(false)
    // Two other subscribers come and go: the first is forgotten, and its replay is taken again.
    for (const other of [subscriber(seededKeys(41), ['y/#']), subscriber(seededKeys(42), ['z/#'])]) {
      expect(t.update(n1.id, other.at(1), 3).changed).toBe(true)
      expect(t.expire(4, 4)).toEqual([other.own.subscriber])
    }
    expect(t.update(n1.id, left, 5).changed).toBe(true)
    // A newer version after an expiry is never refused.
    expect(t.expire(6, 6)).toEqual([s.id])
    sub.table.bump()
    expect(t.cost(now(), 7)).toBeGreaterThan(WORK_VERIFY) // a new version: its declaration to verify
    expect(t.update(n1.id, now(), 7).changed).toBe(true)
  })

  it('re-advertises only what changed: a route unreachable before and after is no news (no retraction ping-pong)', () => {
    const t = table(me)
    const sub = subscriber(s, ['x/#'])
    expect(t.update(n1.id, sub.at(1), 0).changed).toBe(true)
    const unreachable = { ...sub.at(1), hops: UNREACHABLE, proof: sub.at(UNREACHABLE).proof }
    expect(t.update(n1.id, unreachable, 0).changed).toBe(true) // the route is lost: retract once
    expect(t.update(n1.id, unreachable, 0).changed).toBe(false)
    expect(t.update(n2.id, unreachable, 0).changed).toBe(false)
    // A new version is learned only with a distance; "unreachable" of a new version only withdraws.
    sub.table.bump()
    const next = sub.table.own() as Claim
    expect(t.update(n3.id, { ...next, hops: UNREACHABLE }, 0)).toEqual({ changed: false, cost: 1 })
    expect(t.advertsFor(n2.id)[0]).toMatchObject({ version: sub.own.version, hops: UNREACHABLE })
  })

  it('advertises its distance with the proof a neighbour can check, poisoned towards its next hop', () => {
    const t = table(me)
    const sub = subscriber(s, ['x/#'])
    t.update(n1.id, sub.at(2), 0)
    const [toN2] = t.advertsFor(n2.id)
    expect(toN2).toMatchObject({ subscriber: s.id, hops: 3 })
    const checker = table(n2.id === me.id ? n3 : n2)
    expect(checker.update(me.id, toN2 as Claim, 0)).toMatchObject({ changed: true })
    expect(t.advertsFor(n1.id)[0]).toMatchObject({ hops: UNREACHABLE }) // poisoned reverse
  })

  it('targets follow filter changes (per-topic cache invalidated)', () => {
    const t = table(me)
    const topic = telemetryTopic('default', n3.id)
    const a = subscriber(s, ['iotmesh/default/#'])
    expect(t.targets(topic, n3.id, undefined).size).toBe(0)
    t.update(n1.id, a.at(1), 0)
    expect([...t.targets(topic, n3.id, undefined)]).toEqual([n1.id])
    a.table.setLocal('iotmesh/default/#', -1)
    a.table.setLocal('other/#', 1)
    t.update(n1.id, { ...(a.table.own() as Claim), hops: 1, proof: chainStep((a.table.own() as Claim).proof) }, 0)
    expect(t.targets(topic, n3.id, undefined).size).toBe(0)
    expect(t.wants(n3.id, 'default')).toBe(false)
  })

  it('origins no filter names share one cached match: 5,000 fresh origins cost one walk each for targets and wants, not 5,000', () => {
    const t = table(me)
    t.update(n1.id, subscriber(s, ['iotmesh/default/+/telemetry']).at(1), 0)
    t.update(n2.id, subscriber(n2, [`iotmesh/default/${n3.id}/#`]).own, 0) // n2 names n3's frames
    const topic = (o: string): string => telemetryTopic('default', o)
    expect(new Set(t.targets(topic(n3.id), n3.id, undefined))).toEqual(new Set([n1.id, n2.id]))
    expect([t.wants(n3.id, 'default', n1.id), t.wants(n3.id, 'default', n2.id)]).toEqual([true, true])
    const before = t.matchesComputed
    for (let i = 0; i < 5000; i++) {
      const origin = `fresh${i}`
      expect([...t.targets(topic(origin), origin, undefined)]).toEqual([n1.id])
      expect(t.targets(`iotmesh/default/${origin}/other`, origin, undefined).size).toBe(0)
      expect([t.wants(origin, 'default', n1.id), t.wants(origin, 'default', n2.id), t.wants(origin, 'default', n3.id)]).toEqual([true, false, false])
    }
    expect(t.matchesComputed - before).toBeLessThanOrEqual(3)
    // The named origin keeps its own answer, and a filter that comes to name another origin counts at once.
    expect(t.wants(n3.id, 'default', n2.id)).toBe(true)
    const again = subscriber(n2, [`iotmesh/default/${n3.id}/#`, 'iotmesh/default/fresh7/other'])
    t.update(n2.id, again.own, 0)
    expect([...t.targets('iotmesh/default/fresh7/other', 'fresh7', undefined)]).toEqual([n2.id])
    expect(t.targets('iotmesh/default/fresh8/other', 'fresh8', undefined).size).toBe(0)
  })
})

describe('the intake (intake.ts)', () => {
  const claim = (subscriber: string, version = 1): Claim => ({ subscriber, version, hops: 1, proof: new Uint8Array(16), declaration: new Uint8Array(0), publicKey: new Uint8Array(32) })

  it('keeps the latest claim per (neighbour, subscriber), at most perNeighbour per neighbour', () => {
    const intake = new InterestIntake({ perNeighbour: 2, workPerTurn: 100 })
    expect(intake.offer('n1', claim('s1'))).toBe(true)
    expect(intake.offer('n1', claim('s1', 2))).toBe(true) // replaces
    expect(intake.offer('n1', claim('s2'))).toBe(true)
    expect(intake.offer('n1', claim('s3'))).toBe(false)
    expect(intake.offer('n2', claim('s3'))).toBe(true)
    expect(intake.size).toBe(3)
    intake.dropVia('n2')
    expect(intake.size).toBe(2)
    const seen: Array<[string, string, number]> = []
    intake.drain(() => 1, (via, c) => seen.push([via, c.subscriber, c.version]))
    expect(seen).toEqual([['n1', 's1', 2], ['n1', 's2', 1]])
  })

  it('holds at most bytesPerNeighbour bytes of declarations waiting per neighbour', () => {
    const intake = new InterestIntake({ perNeighbour: 100, bytesPerNeighbour: 1000, workPerTurn: 100 })
    const big = (subscriber: string, version = 1): Claim => ({ ...claim(subscriber, version), declaration: new Uint8Array(400) })
    expect(intake.offer('n1', big('s1'))).toBe(true)
    expect(intake.offer('n1', big('s2'))).toBe(true)
    expect(intake.offer('n1', big('s3'))).toBe(false)
    expect(intake.offer('n1', { ...big('x'), declaration: new Uint8Array(2000) })).toBe(false) // alone over the bound: nothing filed
    expect(intake.offer('n1', big('s2', 2))).toBe(true) // replaces the waiting one: no more bytes
    expect(intake.offer('n2', big('s3'))).toBe(true)
    expect(intake.bytesOf('n1')).toBe(800)
    intake.drain(() => 1, () => {})
    expect([intake.bytesOf('n1'), intake.bytesOf('n2'), intake.size]).toEqual([0, 0, 0])
    expect(intake.offer('n1', big('s3'))).toBe(true)
  })

  it('a claim without a declaration that replaces one with it, for the same version, keeps it', () => {
    const intake = new InterestIntake({ perNeighbour: 4, workPerTurn: 100 })
    const declared = { ...claim('s1', 5), declaration: Uint8Array.of(1), publicKey: new Uint8Array(32) }
    intake.offer('n1', declared)
    intake.offer('n1', { subscriber: 's1', version: 5, hops: 3, proof: new Uint8Array(16) })
    intake.offer('n2', { ...declared, subscriber: 's2' })
    intake.offer('n2', { subscriber: 's2', version: 6, hops: 3, proof: new Uint8Array(16) }) // another version: nothing kept
    const seen: Claim[] = []
    intake.drain(() => 1, (_via, c) => seen.push(c))
    expect(seen.map((c) => [c.subscriber, c.hops, c.declaration])).toEqual([['s1', 3, Uint8Array.of(1)], ['s2', 3, undefined]])
  })

  it('spends at most workPerTurn per turn, shared by every drain of the turn (one claim on a fresh turn), neighbours in turn', () => {
    const intake = new InterestIntake({ perNeighbour: 100, workPerTurn: 100 })
    for (let i = 0; i < 10; i++) intake.offer('flood', claim(`f${i}`))
    intake.offer('honest', claim('h'))
    const seen: string[] = []
    expect(intake.drain(() => 45, (via) => seen.push(via))).toBe(true)
    expect(seen).toEqual(['flood', 'honest']) // 90 units: the honest neighbour's claim went second
    expect(intake.budget).toBe(10)
    expect(intake.drain(() => 45, (via) => seen.push(via))).toBe(true) // the same turn: nothing left
    expect(seen).toHaveLength(2)
    intake.refill()
    expect(intake.drain(() => 500, (via) => seen.push(via))).toBe(true) // over budget: one claim on a fresh turn
    expect(seen).toHaveLength(3)
    expect(intake.budget).toBe(-400)
  })
})

describe('INTEREST on the wire (messages.ts)', () => {
  const kid = new Uint8Array(16).fill(1)
  const proof = new Uint8Array(16).fill(2)

  it('carries a claim with its declaration and key, or without both', () => {
    const full = { kid, version: 3, hops: 1, proof, declaration: Uint8Array.of(0xd2, 0x84), publicKey: new Uint8Array(32).fill(3) }
    const bare = { kid, version: 3, hops: 1, proof }
    expect(decodeMessage(encodeMessage({ kind: MSG.INTEREST, entries: [full, bare] }))).toEqual({ kind: MSG.INTEREST, entries: [full, bare] })
  })

  it('refuses entries of another shape: five fields, a short proof, a key of 31 bytes', () => {
    const code = (entry: unknown[]): string | undefined => {
      try { decodeMessage(encodeCbor([MSG.INTEREST, [entry]])) } catch (err) { return isMeshError(err) ? err.code : 'other' }
    }
    expect(code([kid, 3, 1, proof, Uint8Array.of(1)])).toBe('ERR_BAD_CBOR')
    expect(code([kid, 3, 1, new Uint8Array(15)])).toBe('ERR_BAD_CBOR')
    expect(code([kid, 3, 1, proof, Uint8Array.of(1), new Uint8Array(31)])).toBe('ERR_BAD_CBOR')
    expect(code([new Uint8Array(15), 3, 1, proof])).toBe('ERR_BAD_CBOR')
    expect(code([kid, 3, 1, proof])).toBeUndefined()
  })
})
