import { describe, expect, it } from 'vitest'
import {
  HANDOVER_CONTENT_FORMAT, HEADER_ALG, HEADER_CONTENT_TYPE, HEADER_KID, ALG_ED25519, RevocationSet, applyOwnerRotation, cosign, createHandover, decodeCoseSign, deviceIdToBytes,
  encodeCbor, enroll, fleetDocumentKind, parseFleetPolicy, rotationOf, revoke, rotate, rotateOwner, signCoseSign, signSign1, toBase64url, verifyCredential,
  verifyHandover, verifyOwnerRotation, verifyRevocation, type KeyPair
} from '../../shared/index.js'
import { defaultEd25519 } from '../../shared/crypto/ed25519-default.js'
import { codeOf, seededKeys } from './support.js'

/**
 * Key rotation (shared/handover.ts, shared/fleet.ts `rotate`, shared/owner-rotation.ts): the old
 * key signs the handover, the owners (k of n) sign the rotation; a forged handover, one not signed
 * by the old key, a rotation by a non-owner or by too few owners, each refused with its code.
 */

const alice = seededKeys(901)
const bob = seededKeys(902)
const mallory = seededKeys(903)
const oldKey = seededKeys(904)
const newKey = seededKeys(905)
const other = seededKeys(906)
const T = 1_800_000_000
const policy = parseFleetPolicy({ fleet: 'home', threshold: 2, owners: [alice, bob].map((o: KeyPair, i) => ({ name: `owner${i}`, key: toBase64url(o.publicKey) })) })
const handover = createHandover({ fleet: 'home', oldKeys: oldKey, newPublicKey: newKey.publicKey, issuedAt: T })
const both = (bytes: Uint8Array): Uint8Array => cosign(bytes, policy, bob)

describe('the handover: signed by the old key', () => {
  it('verifies, and names the old and the new key', () => {
    const h = verifyHandover(handover, 'home')
    expect(h).toMatchObject({ fleet: 'home', device: oldKey.id, successor: newKey.id, issuedAt: T })
    expect(h.successorKey).toEqual(newKey.publicKey)
    expect(codeOf(() => verifyHandover(handover, 'work'))).toBe('ERR_UNKNOWN_FLEET')
  })

  it('is refused (ERR_BAD_HANDOVER) when another key signed it, a byte changed, or it is not a handover', () => {
    // Mallory signs "oldKey hands over to me" with her own key, under oldKey's kid and old key claim.
    const claims = new Map<number | string, unknown>([[1, 'iotmesh:home'], [2, oldKey.id], [6, T],
      [8, new Map([[1, new Map<number, unknown>([[1, 1], [-1, 6], [-2, mallory.publicKey]])]])], ['prev', oldKey.publicKey]])
    const header = new Map<number, unknown>([[HEADER_ALG, ALG_ED25519], [HEADER_CONTENT_TYPE, HANDOVER_CONTENT_FORMAT], [HEADER_KID, deviceIdToBytes(oldKey.id)]])
    const forged = signSign1({ protectedHeader: header, payload: encodeCbor(claims), secretKey: mallory.secretKey })
    expect(codeOf(() => verifyHandover(forged, 'home'))).toBe('ERR_BAD_HANDOVER')
    // Her own key as "prev" does not derive to oldKey's id.
    claims.set('prev', mallory.publicKey)
    expect(codeOf(() => verifyHandover(signSign1({ protectedHeader: header, payload: encodeCbor(claims), secretKey: mallory.secretKey }), 'home'))).toBe('ERR_BAD_HANDOVER')
    // A handover of her own key (valid) is not oldKey's.
    const hers = createHandover({ fleet: 'home', oldKeys: mallory, newPublicKey: newKey.publicKey, issuedAt: T })
    expect(verifyHandover(hers, 'home').device).toBe(mallory.id)
    for (let i = 0; i < handover.length; i += 7) {
      const changed = handover.slice()
      changed[i] = (changed[i] ?? 0) ^ 0x01
      expect(codeOf(() => verifyHandover(changed, 'home'))).toMatch(/^ERR_BAD_HANDOVER$|^ERR_UNKNOWN_FLEET$/)
    }
    expect(codeOf(() => verifyHandover(new Uint8Array(600), 'home'))).toBe('ERR_BAD_HANDOVER')
    expect(codeOf(() => createHandover({ fleet: 'home', oldKeys: oldKey, newPublicKey: oldKey.publicKey }))).toBe('ERR_BAD_ARGUMENT')
  })
})

describe('a device rotation: a revocation "rotated" with the handover, and the new key re-enrolled', () => {
  it('owners sign it; it verifies as a revocation naming the successor; the new credential says which key it replaces', () => {
    const rotation = both(rotate({ policy, handover, owners: [alice], issuedAt: T }))
    expect(fleetDocumentKind(rotation)).toBe('revocation')
    const r = verifyRevocation(rotation, policy)
    expect(r).toMatchObject({ device: oldKey.id, reason: 'rotated', successor: newKey.id })
    expect(r.signers.sort()).toEqual([alice.id, bob.id].sort())
    expect(rotationOf(rotation)).toEqual({ successor: newKey.id, issuedAt: T })
    // Spread and kept like any revocation: the RevocationSet takes it.
    const set = new RevocationSet(policy)
    expect(set.add(rotation).revocation.successor).toBe(newKey.id)
    expect(set.has(oldKey.id)).toBe(true)
    const credential = both(enroll({ policy, publicKey: newKey.publicKey, previous: oldKey.id, cti: Uint8Array.of(9), owners: [alice], issuedAt: T }))
    expect(verifyCredential(credential, policy, { now: T + 1 }).previous).toBe(oldKey.id)
  })

  it('is refused with its code: too few owners, a non-owner, a forged handover, a handover of another key, "rotated" without a handover', () => {
    expect(codeOf(() => verifyRevocation(rotate({ policy, handover, owners: [alice] }), policy))).toBe('ERR_TOO_FEW_OWNERS')
    expect(codeOf(() => rotate({ policy, handover, owners: [mallory] }))).toBe('ERR_NOT_OWNER')
    const malloryFleet = parseFleetPolicy({ fleet: 'home', owners: [{ key: toBase64url(mallory.publicKey) }] })
    expect(codeOf(() => verifyRevocation(rotate({ policy: malloryFleet, handover, owners: [mallory] }), policy))).toBe('ERR_NOT_OWNER')
    // Owners sign a rotation whose handover is not the old key's: every node refuses it.
    const claims = new Map<number, unknown>([[1, 'iotmesh:home'], [2, oldKey.id], [3, 'rotated'], [6, T], [7, mallory.id],
      [8, createHandover({ fleet: 'home', oldKeys: other, newPublicKey: mallory.publicKey })]])
    const wrongHandover = signCoseSign({ protectedHeader: new Map([[HEADER_CONTENT_TYPE, 65_005]]), payload: encodeCbor(claims), signers: [alice, bob] })
    expect(codeOf(() => verifyRevocation(wrongHandover, policy))).toBe('ERR_BAD_HANDOVER')
    // ... or one whose successor is not the handover's.
    claims.set(8, handover)
    const wrongSuccessor = signCoseSign({ protectedHeader: new Map([[HEADER_CONTENT_TYPE, 65_005]]), payload: encodeCbor(claims), signers: [alice, bob] })
    expect(codeOf(() => verifyRevocation(wrongSuccessor, policy))).toBe('ERR_BAD_HANDOVER')
    claims.delete(8)
    const noHandover = signCoseSign({ protectedHeader: new Map([[HEADER_CONTENT_TYPE, 65_005]]), payload: encodeCbor(claims), signers: [alice, bob] })
    expect(codeOf(() => verifyRevocation(noHandover, policy))).toBe('ERR_BAD_REVOCATION')
    expect(codeOf(() => revoke({ policy, device: oldKey.id, reason: 'rotated', owners: [alice] }))).toBe('ERR_BAD_ARGUMENT')
    // A re-enrollment signed by a non-owner is no credential of this fleet.
    const byMallory = enroll({ policy: malloryFleet, publicKey: newKey.publicKey, previous: oldKey.id, cti: Uint8Array.of(9), owners: [mallory], issuedAt: T })
    expect(codeOf(() => verifyCredential(byMallory, policy, { now: T + 1 }))).toBe('ERR_NOT_OWNER')
  })
})

describe('what a rotation costs a node (hostile input)', () => {
  it('a forged rotation (no owner signed) costs no signature check, however big its handover; a valid one costs the owners\' checks and one more', () => {
    let n = 0
    const ed25519 = { ...defaultEd25519, verify: (sig: Uint8Array, msg: Uint8Array, key: Uint8Array) => { n++; return defaultEd25519.verify(sig, msg, key) } }
    const malloryFleet = parseFleetPolicy({ fleet: 'home', owners: [{ key: toBase64url(mallory.publicKey) }] })
    const forged = rotate({ policy: malloryFleet, handover, owners: [mallory] })
    expect(codeOf(() => verifyRevocation(forged, policy, { ed25519 }))).toBe('ERR_NOT_OWNER')
    expect(n).toBe(0)
    const claims = new Map<number, unknown>([[1, 'iotmesh:home'], [2, oldKey.id], [3, 'rotated'], [6, T], [7, newKey.id], [8, new Uint8Array(4000)]])
    const junk = signCoseSign({ protectedHeader: new Map([[HEADER_CONTENT_TYPE, 65_005]]), payload: encodeCbor(claims), signers: [mallory] })
    expect(codeOf(() => new RevocationSet(policy).add(junk, ed25519))).toBe('ERR_BAD_REVOCATION') // past the CBOR string limit: not even decoded
    claims.set(8, new Uint8Array(500))
    const junk2 = signCoseSign({ protectedHeader: new Map([[HEADER_CONTENT_TYPE, 65_005]]), payload: encodeCbor(claims), signers: [mallory] })
    expect(codeOf(() => new RevocationSet(policy).add(junk2, ed25519))).toBe('ERR_NOT_OWNER')
    expect(n).toBe(0)
    const set = new RevocationSet(policy)
    set.add(both(rotate({ policy, handover, owners: [alice] })), ed25519)
    expect(n).toBe(3) // two owners and the handover
    set.add(both(rotate({ policy, handover, owners: [alice], issuedAt: T + 1 })), ed25519)
    expect(n).toBe(3) // known: a lookup
  })
})

describe('an owner rotation: the old owner key hands over, the threshold of current owners signs', () => {
  const aliceNew = seededKeys(907)
  const ownerHandover = createHandover({ fleet: 'home', oldKeys: alice, newPublicKey: aliceNew.publicKey, issuedAt: T })

  it('gives the next fleet file: alice\'s entry holds her new key, her name and the threshold kept; her old key signs no more', () => {
    const bytes = both(rotateOwner({ policy, handover: ownerHandover, owners: [alice], issuedAt: T }))
    expect(fleetDocumentKind(bytes)).toBe('owner-rotation')
    expect(verifyOwnerRotation(bytes, policy)).toMatchObject({ owner: alice.id, successor: aliceNew.id })
    const next = applyOwnerRotation(bytes, policy)
    expect(next.owners.map((w) => [w.name, w.id])).toEqual([['owner0', aliceNew.id], ['owner1', bob.id]])
    expect(next.threshold).toBe(2)
    const byOld = cosign(revoke({ policy, device: other.id, reason: 'x', owners: [alice] }), policy, bob)
    expect(codeOf(() => verifyRevocation(byOld, next))).toBe('ERR_TOO_FEW_OWNERS')
    expect(verifyRevocation(cosign(revoke({ policy: next, device: other.id, reason: 'x', owners: [aliceNew] }), next, bob), next).signers).toHaveLength(2)
    // Applied once: against the next fleet file alice's old key is no owner.
    expect(codeOf(() => applyOwnerRotation(bytes, next))).toBe('ERR_TOO_FEW_OWNERS')
  })

  it('is refused with its code: too few owners, a non-owner, the handover of a key that is no owner, a malformed one', () => {
    expect(codeOf(() => applyOwnerRotation(rotateOwner({ policy, handover: ownerHandover, owners: [alice] }), policy))).toBe('ERR_TOO_FEW_OWNERS')
    expect(codeOf(() => rotateOwner({ policy, handover: ownerHandover, owners: [mallory] }))).toBe('ERR_NOT_OWNER')
    expect(codeOf(() => rotateOwner({ policy, handover, owners: [alice, bob] }))).toBe('ERR_NOT_OWNER') // oldKey is a device, not an owner
    const toBob = createHandover({ fleet: 'home', oldKeys: alice, newPublicKey: bob.publicKey })
    expect(codeOf(() => rotateOwner({ policy, handover: toBob, owners: [alice, bob] }))).toBe('ERR_BAD_ROTATION')
    const payload = encodeCbor(new Map<number, unknown>([[1, 'iotmesh:home'], [2, alice.id], [6, T]]))
    const noHandover = signCoseSign({ protectedHeader: new Map([[HEADER_CONTENT_TYPE, 65_008]]), payload, signers: [alice, bob] })
    expect(codeOf(() => verifyOwnerRotation(noHandover, policy))).toBe('ERR_BAD_ROTATION')
    expect(decodeCoseSign(noHandover).signatures).toHaveLength(2)
  })
})
