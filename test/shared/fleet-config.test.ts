import { describe, expect, it } from 'vitest'
import {
  CONFIG_CONTENT_FORMAT, ConfigBook, HEADER_CONTENT_TYPE, MAX_CONFIG_BYTES, checkNewer, configTarget, configTopic, cosign, decodeCoseSign, encodeCbor,
  parseFleetPolicy, peekFleetConfig, revoke, signCoseSign, signFleetConfig, toBase64url, verifyFleetConfig, type Ed25519, type KeyPair
} from '../../shared/index.js'
import { defaultEd25519 } from '../../shared/crypto/ed25519-default.js'
import { codeOf, seededKeys } from './support.js'

/**
 * Owner-signed, versioned configuration (shared/fleet-config.ts): a COSE_Sign under content type
 * 65006 that counts only with the fleet's threshold of owner signatures; a book that keeps the
 * highest version per target and spends no signature check on a version it already has or beats.
 */

const alice = seededKeys(601)
const bob = seededKeys(602)
const mallory = seededKeys(603)
const device = seededKeys(604)
const T = 1_800_000_000
const policyOf = (threshold: number, owners: KeyPair[] = [alice, bob], fleet = 'home'): ReturnType<typeof parseFleetPolicy> =>
  parseFleetPolicy({ fleet, threshold, owners: owners.map((o) => ({ key: toBase64url(o.publicKey) })) })
const one = policyOf(1)
const two = policyOf(2)

function counting (): { ed: Ed25519, verifies: () => number } {
  let n = 0
  return { ed: { ...defaultEd25519, verify: (sig, msg, key) => { n++; return defaultEd25519.verify(sig, msg, key) } }, verifies: () => n }
}

describe('signed configuration', () => {
  it('round-trips: target, version, settings, issue time, signers; content type 65006', () => {
    const bytes = signFleetConfig({ policy: one, target: device.id, version: 3, settings: { interval: 2000, sensors: ['battery'] }, issuedAt: T, owners: [alice] })
    expect(decodeCoseSign(bytes).protectedHeader.get(HEADER_CONTENT_TYPE)).toBe(CONFIG_CONTENT_FORMAT)
    expect(verifyFleetConfig(bytes, one)).toEqual({ fleet: 'home', target: device.id, version: 3, issuedAt: T, settings: { interval: 2000, sensors: ['battery'] }, signers: [alice.id] })
    const group = signFleetConfig({ policy: one, target: configTarget('kitchen'), version: 1, settings: { rules: { rules: [] } }, owners: [alice] })
    expect(verifyFleetConfig(group, one).target).toBe('group:kitchen')
    expect(configTopic('home', 'group:kitchen')).toBe('iotmesh/home/$config/group:kitchen')
  })

  it('refuses one not signed by owners (ERR_NOT_OWNER), one short of the threshold (ERR_TOO_FEW_OWNERS) until co-signed, one of another fleet', () => {
    const settings = { interval: 1000 }
    expect(codeOf(() => signFleetConfig({ policy: one, target: device.id, version: 1, settings, owners: [mallory] }))).toBe('ERR_NOT_OWNER')
    const malloryFleet = policyOf(1, [mallory], 'other')
    const forged = signFleetConfig({ policy: malloryFleet, target: device.id, version: 1, settings, owners: [mallory] })
    expect(codeOf(() => verifyFleetConfig(forged, one))).toBe('ERR_UNKNOWN_FLEET')
    const sameFleet = signFleetConfig({ policy: policyOf(1, [mallory], 'home'), target: device.id, version: 1, settings, owners: [mallory] })
    expect(codeOf(() => verifyFleetConfig(sameFleet, one))).toBe('ERR_NOT_OWNER')
    const partial = signFleetConfig({ policy: two, target: device.id, version: 1, settings, owners: [alice] })
    expect(codeOf(() => verifyFleetConfig(partial, two))).toBe('ERR_TOO_FEW_OWNERS')
    expect(verifyFleetConfig(cosign(partial, two, bob), two).signers.sort()).toEqual([alice.id, bob.id].sort())
    // A signature that does not hold (a changed byte of the target) counts for nothing.
    const flipped = signFleetConfig({ policy: one, target: 'group:kitchen', version: 1, settings: { interval: 1000 }, owners: [alice] })
    const at = Buffer.from(flipped).indexOf(Buffer.from('kitchen'))
    flipped[at] = 'j'.charCodeAt(0)
    expect(codeOf(() => verifyFleetConfig(flipped, one))).toBe('ERR_NOT_OWNER')
  })

  it('refuses malformed ones with ERR_BAD_CONFIG: settings that may not change remotely, a version out of range, no target, another document, too large', () => {
    const bad = (f: () => unknown): unknown => codeOf(f)
    expect(bad(() => signFleetConfig({ policy: one, target: device.id, version: 1, settings: { fleetFile: '/etc/x' } as never, owners: [alice] }))).toBe('ERR_BAD_CONFIG')
    expect(bad(() => signFleetConfig({ policy: one, target: device.id, version: 1, settings: {}, owners: [alice] }))).toBe('ERR_BAD_CONFIG')
    expect(bad(() => signFleetConfig({ policy: one, target: device.id, version: 0, settings: { interval: 1 }, owners: [alice] }))).toBe('ERR_BAD_CONFIG')
    expect(bad(() => signFleetConfig({ policy: one, target: device.id, version: 2 ** 32, settings: { interval: 1 }, owners: [alice] }))).toBe('ERR_BAD_CONFIG')
    expect(bad(() => signFleetConfig({ policy: one, target: device.id, version: 1, settings: { rules: 'x'.repeat(MAX_CONFIG_BYTES) }, owners: [alice] }))).toBe('ERR_BAD_CONFIG')
    expect(bad(() => configTarget('Kitchen!'))).toBe('ERR_BAD_ARGUMENT')
    // Hand-made payloads: no target; a settings key that is no setting.
    const raw = (payload: Map<number, unknown>): Uint8Array =>
      signCoseSign({ protectedHeader: new Map([[HEADER_CONTENT_TYPE, CONFIG_CONTENT_FORMAT]]), payload: encodeCbor(payload), signers: [alice] })
    expect(bad(() => peekFleetConfig(raw(new Map<number, unknown>([[1, 'iotmesh:home'], [4, 1], [5, { interval: 1000 }], [6, T]]))))).toBe('ERR_BAD_CONFIG')
    expect(bad(() => peekFleetConfig(raw(new Map<number, unknown>([[1, 'iotmesh:home'], [2, device.id], [4, 1], [5, new Map([[7, 1]])], [6, T]]))))).toBe('ERR_BAD_CONFIG')
    expect(bad(() => peekFleetConfig(revoke({ policy: one, device: device.id, reason: 'x', owners: [alice] })))).toBe('ERR_BAD_CONFIG')
    expect(bad(() => peekFleetConfig(Uint8Array.of(0xd8, 0x62, 0x80)))).toBe('ERR_BAD_CONFIG')
  })

  it('refuses an older or equal version than the applied one (ERR_CONFIG_STALE): no rollback by replay', () => {
    expect(codeOf(() => { checkNewer(2, 3, device.id) })).toBe('ERR_CONFIG_STALE')
    expect(codeOf(() => { checkNewer(3, 3, device.id) })).toBe('ERR_CONFIG_STALE')
    expect(() => { checkNewer(4, 3, device.id) }).not.toThrow()
    expect(() => { checkNewer(1, undefined, device.id) }).not.toThrow()
  })

  it('a book keeps only the highest valid version per target; an older or equal one costs no signature check; bounded', () => {
    const { ed, verifies } = counting()
    const book = new ConfigBook(two, 2)
    const v = (version: number, target = device.id): Uint8Array =>
      cosign(signFleetConfig({ policy: two, target, version, settings: { interval: 1000 * version }, owners: [alice] }), two, bob)
    expect(book.add(v(2), ed).verdict).toBe('added')
    expect(verifies()).toBe(2)
    expect(book.add(v(1), ed).verdict).toBe('stale')
    expect(book.add(v(2), ed).verdict).toBe('known')
    expect(verifies()).toBe(2)
    const partial = signFleetConfig({ policy: two, target: device.id, version: 5, settings: { interval: 5 }, owners: [alice] })
    expect(codeOf(() => book.add(partial, ed))).toBe('ERR_TOO_FEW_OWNERS')
    expect(book.get(device.id)?.version).toBe(2)
    expect(book.add(v(3), ed).verdict).toBe('added')
    expect(book.get(device.id)?.settings).toEqual({ interval: 3000 })
    expect(book.all()).toHaveLength(1)
    expect(book.add(v(1, 'group:a'), ed).verdict).toBe('added')
    expect(codeOf(() => book.add(v(1, 'group:b'), ed))).toBe('ERR_TABLE_FULL')
  })
})
