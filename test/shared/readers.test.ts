import { describe, expect, it } from 'vitest'
import {
  cosign, decryptFrame, decodeFrame, encodeFrame, generateReaderKey, parseFleetPolicy, readGrants, readersFor, seededRandom, signReaderGrants, toBase64url,
  verifyReaderGrants, type KeyPair
} from '../../shared/index.js'
import { encryptionFor } from '../../firmware-sim/device/encrypt.js'
import { codeOf, seededKeys } from './support.js'

/** The owner-signed reader grant list (shared/readers.ts): who may read a fleet's encrypted readings; every refusal with its code. */

const [alice, bob, mallory, device] = [seededKeys(501), seededKeys(502), seededKeys(503), seededKeys(504)]
const random = seededRandom(5)
const [gw, phone] = [generateReaderKey(random), generateReaderKey(random)]
const policyOf = (threshold: number, owners: KeyPair[] = [alice, bob], fleet = 'home'): ReturnType<typeof parseFleetPolicy> =>
  parseFleetPolicy({ fleet, threshold, owners: owners.map((o) => ({ key: toBase64url(o.publicKey) })) })

describe('reader grant lists', () => {
  it('counts with the threshold of owner signatures; co-signed in turn; a non-owner, too few owners and another fleet are refused', () => {
    const policy = policyOf(2)
    const one = signReaderGrants({ policy, version: 1, readers: [{ publicKey: gw.publicKey, name: 'gateway' }, { publicKey: phone.publicKey }], owners: [alice], issuedAt: 1000 })
    expect(codeOf(() => verifyReaderGrants(one, policy))).toBe('ERR_TOO_FEW_OWNERS')
    const both = cosign(one, policy, bob)
    const grants = verifyReaderGrants(both, policy)
    expect(grants).toMatchObject({ fleet: 'home', version: 1, topics: undefined, issuedAt: 1000 })
    expect(grants.readers.map((r) => r.name)).toEqual(['gateway', undefined])
    expect([...grants.signers].sort()).toEqual([alice.id, bob.id].sort())
    expect(codeOf(() => signReaderGrants({ policy, version: 1, readers: [], owners: [mallory] }))).toBe('ERR_NOT_OWNER')
    expect(codeOf(() => verifyReaderGrants(signReaderGrants({ policy: policyOf(1, [mallory]), version: 1, readers: [], owners: [mallory] }), policyOf(1)))).toBe('ERR_NOT_OWNER')
    expect(codeOf(() => verifyReaderGrants(both, policyOf(2, [alice, bob], 'other')))).toBe('ERR_UNKNOWN_FLEET')
    expect(codeOf(() => signReaderGrants({ policy, version: 1, readers: [{ publicKey: gw.publicKey }, { publicKey: gw.publicKey }], owners: [alice] }))).toBe('ERR_BAD_READER_GRANT')
    expect(codeOf(() => signReaderGrants({ policy, version: 0, readers: [], owners: [alice] }))).toBe('ERR_BAD_ARGUMENT')
    expect(codeOf(() => readGrants(Uint8Array.of(0xd8, 0x62, 0x80)))).toBe('ERR_BAD_READER_GRANT')
  })

  it('per topic: only the listed topics are encrypted, to every reader on the list; an empty list refuses to send rather than send in the clear', () => {
    const policy = policyOf(1)
    const grants = verifyReaderGrants(signReaderGrants({ policy, version: 3, readers: [{ publicKey: gw.publicKey }], topics: ['telemetry', 'events/#'], owners: [alice] }), policy)
    expect(readersFor(grants, 'telemetry')).toHaveLength(1)
    expect(readersFor(grants, 'events/door')).toHaveLength(1)
    expect(readersFor(grants, 'mesh/links')).toBeUndefined()
    expect(encryptionFor(grants, 'mesh/links')).toBeUndefined()
    const sealed = decodeFrame(encodeFrame({ keys: device, seq: 1, time: 1_800_000_000, records: [{ n: 'door', vb: true }], topic: 'events/door', encrypt: encryptionFor(grants, 'events/door') }))
    expect(sealed.encrypted).toBeDefined()
    expect(decryptFrame(sealed, gw).records[0]?.vb).toBe(true)
    expect(codeOf(() => decryptFrame(sealed, phone))).toBe('ERR_NOT_A_READER')
    const empty = verifyReaderGrants(signReaderGrants({ policy, version: 4, readers: [], owners: [alice] }), policy)
    expect(codeOf(() => encryptionFor(empty, 'telemetry'))).toBe('ERR_NOT_A_READER')
    expect(codeOf(() => signReaderGrants({ policy, version: 1, readers: [], topics: ['a/+/#/b'], owners: [alice] }))).toBe('ERR_BAD_ARGUMENT')
  })
})
