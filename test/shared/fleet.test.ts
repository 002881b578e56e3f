import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import {
  COSE_SIGN_TAG, CREDENTIAL_CONTENT_FORMAT, HEADER_CONTENT_TYPE, RevocationSet, addSignature, cborHead, concatBytes, cosign, decodeCoseSign, deviceIdToBytes, encodeCbor,
  enroll, fleetDocumentKind, parseFleetPolicy, revoke, signCoseSign, toBase64url, verifiedSigners, verifyCredential, verifyRevocation,
  type Ed25519, type KeyPair
} from '../../shared/index.js'
import { defaultEd25519 } from '../../shared/crypto/ed25519-default.js'
import { codeOf, seededKeys } from './support.js'

/**
 * Fleet owners sign together (shared/cose-sign.ts, shared/fleet.ts): a COSE_Sign (RFC 9052 §4.1)
 * checked by an independent implementation, enrollment credentials (CWT, RFC 8392, with a
 * confirmation key, RFC 8747) that count only with the threshold of owner signatures, and
 * revocations; every refusal with its code.
 */

const alice = seededKeys(101)
const bob = seededKeys(102)
const carol = seededKeys(103)
const mallory = seededKeys(104)
const device = seededKeys(105)
const T = 1_800_000_000
const cti = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8)

const policyOf = (threshold: number, owners: KeyPair[] = [alice, bob, carol], fleet = 'home'): ReturnType<typeof parseFleetPolicy> =>
  parseFleetPolicy({ fleet, threshold, owners: owners.map((o, i) => ({ name: `owner${i}`, key: toBase64url(o.publicKey) })) })

/** Counts the verifications it is asked for: what an attacker's message costs. */
function counting (): { ed: Ed25519, verifies: () => number } {
  let n = 0
  return { ed: { ...defaultEd25519, verify: (sig, msg, key) => { n++; return defaultEd25519.verify(sig, msg, key) } }, verifies: () => n }
}

describe('COSE_Sign: several signers, one payload', () => {
  it('signs, co-signs in any order, and verifies each signer; an independent implementation (Python cbor2 + cryptography) agrees', () => {
    const first = signCoseSign({ protectedHeader: new Map([[HEADER_CONTENT_TYPE, 0]]), payload: new TextEncoder().encode('hello'), signers: [alice] })
    const both = addSignature(first, bob)
    expect(addSignature(both, bob)).toBe(both) // a second signature of the same signer changes nothing
    const message = decodeCoseSign(both)
    expect(message.signatures.map((s) => s.signer)).toEqual([alice.id, bob.id])
    const keys = new Map([[alice.id, alice.publicKey], [bob.id, bob.publicKey]])
    expect(verifiedSigners(message, (id) => keys.get(id))).toEqual([alice.id, bob.id])
    expect(both[0]).toBe(0xd8) // tag 98 in one extra byte
    expect(both[1]).toBe(COSE_SIGN_TAG)

    const python = '/usr/bin/python3'
    const probe = existsSync(python) ? spawnSync(python, ['-c', 'import cbor2, cryptography'], { encoding: 'utf8' }) : undefined
    if (probe?.status !== 0) throw new Error('Debian\'s python3-cbor2 and python3-cryptography are needed for the interoperability check (.ci/run installs them)')
    const script = [
      'import sys, cbor2',
      'from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey',
      'msg = cbor2.loads(bytes.fromhex(sys.argv[1]))',
      'assert msg.tag == 98',
      'body_protected, unprotected, payload, signatures = msg.value',
      'keys = {bytes.fromhex(k): bytes.fromhex(v) for k, v in (a.split(":") for a in sys.argv[2:])}',
      'for sign_protected, _, signature in signatures:',
      '    kid = cbor2.loads(sign_protected)[4]',
      '    tbs = cbor2.dumps(["Signature", body_protected, sign_protected, b"", payload])',
      '    Ed25519PublicKey.from_public_bytes(keys[kid]).verify(signature, tbs)',
      '    print(kid.hex())'
    ].join('\n')
    const r = spawnSync(python, ['-c', script, Buffer.from(both).toString('hex'),
      ...[alice, bob].map((k) => `${Buffer.from(deviceIdToBytes(k.id)).toString('hex')}:${Buffer.from(k.publicKey).toString('hex')}`)], { encoding: 'utf8' })
    expect(r.stderr).toBe('')
    expect(r.stdout.trim().split('\n')).toHaveLength(2)
  })

  it('refuses what is not one: another tag, no signatures, over 16, a signer twice, a signature without kid', () => {
    const one = decodeCoseSign(signCoseSign({ protectedHeader: new Map(), payload: Uint8Array.of(1), signers: [alice] }))
    const sig = [one.signatures[0]?.protectedBytes, new Map(), one.signatures[0]?.signature]
    const raw = (signatures: unknown[], tag = COSE_SIGN_TAG): Uint8Array => concatBytes(cborHead(6, tag), encodeCbor([one.protectedBytes, new Map(), one.payload, signatures]))
    expect(decodeCoseSign(raw([sig])).signatures).toHaveLength(1)
    expect(codeOf(() => decodeCoseSign(raw([sig], 18)))).not.toBeUndefined()
    expect(codeOf(() => decodeCoseSign(raw([])))).toBe('ERR_NOT_COSE_SIGN')
    expect(codeOf(() => decodeCoseSign(raw(Array.from({ length: 17 }, () => sig))))).not.toBeUndefined()
    expect(codeOf(() => decodeCoseSign(raw([sig, sig])))).toBe('ERR_DUPLICATE_KEY')
    expect(codeOf(() => decodeCoseSign(raw([[encodeCbor(new Map([[1, -19]])), new Map(), one.signatures[0]?.signature]])))).toBe('ERR_BAD_HEADER')
  })
})

describe('enrollment credentials: k of n owners', () => {
  it('counts only with the threshold of owner signatures; owners co-sign one after the other', () => {
    const policy = policyOf(2)
    const alone = enroll({ policy, publicKey: device.publicKey, name: 'kitchen', roles: ['sensor'], issuedAt: T, lifetime: 86_400, cti, owners: [alice] })
    expect(fleetDocumentKind(alone)).toBe('credential')
    expect(codeOf(() => verifyCredential(alone, policy, { now: T + 10 }))).toBe('ERR_TOO_FEW_OWNERS')
    const signed = cosign(alone, policy, carol)
    const credential = verifyCredential(signed, policy, { now: T + 10 })
    expect(credential).toMatchObject({ fleet: 'home', device: device.id, name: 'kitchen', roles: ['sensor'], issuedAt: T, expiresAt: T + 86_400 })
    expect(credential.signers.sort()).toEqual([alice.id, carol.id].sort())
    expect(decodeCoseSign(signed).protectedHeader.get(HEADER_CONTENT_TYPE)).toBe(CREDENTIAL_CONTENT_FORMAT)
    // One owner's fleet (threshold 1) takes it with one signature.
    expect(verifyCredential(alone, policyOf(1), { now: T }).device).toBe(device.id)
  })

  it('refuses, each with its code: expired, no owner signed, a non-owner signing, another fleet, a tampered claim, a key that is not the device\'s', () => {
    const policy = policyOf(1)
    const good = enroll({ policy, publicKey: device.publicKey, issuedAt: T, lifetime: 100, cti, owners: [alice] })
    expect(codeOf(() => verifyCredential(good, policy, { now: T + 100 }))).toBe('ERR_CREDENTIAL_EXPIRED')
    expect(codeOf(() => enroll({ policy, publicKey: device.publicKey, cti, owners: [mallory] }))).toBe('ERR_NOT_OWNER')
    // Mallory signs as the owner of a fleet of her own, with the same fleet name.
    const forged = enroll({ policy: policyOf(1, [mallory]), publicKey: device.publicKey, issuedAt: T, cti, owners: [mallory] })
    expect(codeOf(() => verifyCredential(forged, policy, { now: T }))).toBe('ERR_NOT_OWNER')
    expect(codeOf(() => verifyCredential(good, policyOf(1, [alice], 'office'), { now: T }))).toBe('ERR_UNKNOWN_FLEET')
    // A byte of the claims changed after signing: no owner's signature holds any more.
    const message = decodeCoseSign(good)
    const at = Buffer.from(good).indexOf(Buffer.from(message.payload)) + message.payload.length - 3
    const tampered = good.slice()
    tampered[at] = (tampered[at] as number) ^ 1
    expect(['ERR_NOT_OWNER', 'ERR_BAD_CREDENTIAL']).toContain(codeOf(() => verifyCredential(tampered, policy, { now: T })))
    // Owners signing a credential whose confirmation key is not the device's: refused before any signature check.
    const claims = new Map<number | string, unknown>([[1, 'iotmesh:home'], [2, device.id], [4, T + 100], [6, T], [7, cti],
      [8, new Map([[1, new Map<number, unknown>([[1, 1], [-1, 6], [-2, mallory.publicKey]])]])]])
    const swapped = signCoseSign({ protectedHeader: new Map([[HEADER_CONTENT_TYPE, CREDENTIAL_CONTENT_FORMAT]]), payload: encodeCbor(claims), signers: [alice] })
    expect(codeOf(() => verifyCredential(swapped, policy, { now: T }))).toBe('ERR_BAD_CREDENTIAL')
  })

  it('a signature of a kid that is no owner costs no verification; the fleet file is checked', () => {
    const policy = policyOf(1, [alice])
    const many = [mallory, bob, carol, device].reduce((bytes, k) => addSignature(bytes, k), enroll({ policy, publicKey: device.publicKey, issuedAt: T, cti, owners: [alice] }))
    const { ed, verifies } = counting()
    expect(verifyCredential(many, policy, { now: T, ed25519: ed }).signers).toEqual([alice.id])
    expect(verifies()).toBe(1)
    for (const bad of [{ fleet: 'home', owners: [] }, { fleet: 'a b', owners: [{ key: toBase64url(alice.publicKey) }] },
      { fleet: 'home', threshold: 2, owners: [{ key: toBase64url(alice.publicKey) }] }, { fleet: 'home', owners: [{ key: 'short' }] },
      { fleet: 'home', owners: [{ key: toBase64url(alice.publicKey) }, { key: toBase64url(alice.publicKey) }] }]) {
      expect(codeOf(() => parseFleetPolicy(bad)), JSON.stringify(bad)).toBe('ERR_BAD_ARGUMENT')
    }
  })
})

describe('revocations', () => {
  it('need the threshold too; a revocation set is grow-only, one entry per device, and a known device costs no verification', () => {
    const policy = policyOf(2)
    const partial = revoke({ policy, device: device.id, reason: 'stolen', issuedAt: T, owners: [bob] })
    expect(fleetDocumentKind(partial)).toBe('revocation')
    expect(codeOf(() => verifyRevocation(partial, policy))).toBe('ERR_TOO_FEW_OWNERS')
    const full = cosign(partial, policy, alice)
    expect(verifyRevocation(full, policy)).toMatchObject({ device: device.id, reason: 'stolen', issuedAt: T })
    const set = new RevocationSet(policy)
    expect(codeOf(() => set.add(partial))).toBe('ERR_TOO_FEW_OWNERS')
    expect(set.has(device.id)).toBe(false)
    expect(set.add(full).verdict).toBe('added')
    const { ed, verifies } = counting()
    expect(set.add(revoke({ policy, device: device.id, reason: 'again', owners: [alice, carol] }), ed).verdict).toBe('known')
    expect(verifies()).toBe(0)
    expect(set.get(device.id)?.reason).toBe('stolen')
    expect(set.all()).toEqual([full])
    expect(codeOf(() => revoke({ policy, device: device.id, reason: '', owners: [alice] }))).toBe('ERR_BAD_ARGUMENT')
  })
})
