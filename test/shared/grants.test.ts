import { describe, expect, it } from 'vitest'
import {
  ConfigBook, GRANTS_CONTENT_FORMAT, GRANTS_TARGET, HEADER_CONTENT_TYPE, MAX_GRANTS, checkNewer, cosign, decodeCoseSign, encodeCbor, grantAllows, grantScope,
  parseFleetPolicy, parseGrantee, peekCommandGrants, signCommandGrants, signCoseSign, signFleetConfig, toBase64url, verifyCommandGrants, verifyFleetConfig,
  type KeyPair
} from '../../shared/index.js'
import { codeOf, seededKeys } from './support.js'

/**
 * Grants for commands (shared/grants.ts): an owner-signed, versioned policy under content type
 * 65022 for the reserved configuration target "$grants"; its codec, its threshold, its matching.
 */

const alice = seededKeys(701)
const bob = seededKeys(702)
const mallory = seededKeys(703)
const lamp = seededKeys(704)
const panel = seededKeys(705)
const T = 1_800_000_000
const policyOf = (threshold: number, owners: KeyPair[] = [alice, bob]): ReturnType<typeof parseFleetPolicy> =>
  parseFleetPolicy({ fleet: 'home', threshold, owners: owners.map((o) => ({ key: toBase64url(o.publicKey) })) })
const one = policyOf(1)
const two = policyOf(2)
const lampSelf = { id: lamp.id, groups: ['kitchen'], roles: ['light'] }

describe('grant policy', () => {
  it('round-trips under content type 65022 for "$grants": keys and roles, actions, scopes, names', () => {
    const bytes = signCommandGrants({
      policy: one, version: 4, issuedAt: T, owners: [alice],
      grants: [{ to: panel.publicKey, actions: ['relay/#'], on: [lamp.id], name: 'panel' }, { to: 'role:hub', actions: ['+/get'], on: ['group:kitchen', '*'] }]
    })
    expect(decodeCoseSign(bytes).protectedHeader.get(HEADER_CONTENT_TYPE)).toBe(GRANTS_CONTENT_FORMAT)
    const g = verifyCommandGrants(bytes, one)
    expect(g).toMatchObject({ fleet: 'home', target: GRANTS_TARGET, version: 4, issuedAt: T, settings: {}, signers: [alice.id] })
    expect(g.grants).toEqual([
      { to: { key: panel.publicKey, id: panel.id }, actions: ['relay/#'], on: [lamp.id], name: 'panel' },
      { to: { role: 'hub' }, actions: ['+/get'], on: ['group:kitchen', '*'], name: undefined }
    ])
    expect(peekCommandGrants(bytes)).toMatchObject({ fleet: 'home', version: 4 })
    // An empty list is a valid policy: nobody may command.
    expect(verifyCommandGrants(signCommandGrants({ policy: one, version: 5, owners: [alice], grants: [] }), one).grants).toEqual([])
  })

  it('counts only with the threshold of owner signatures: ERR_NOT_OWNER, ERR_TOO_FEW_OWNERS until co-signed', () => {
    const grants = [{ to: panel.publicKey, actions: ['#'], on: ['*'] }]
    expect(codeOf(() => signCommandGrants({ policy: one, version: 1, owners: [mallory], grants }))).toBe('ERR_NOT_OWNER')
    const forged = signCommandGrants({ policy: policyOf(1, [mallory]), version: 9, owners: [mallory], grants })
    expect(codeOf(() => verifyCommandGrants(forged, one))).toBe('ERR_NOT_OWNER')
    const partial = signCommandGrants({ policy: two, version: 1, owners: [alice], grants })
    expect(codeOf(() => verifyCommandGrants(partial, two))).toBe('ERR_TOO_FEW_OWNERS')
    expect(verifyCommandGrants(cosign(partial, two, bob), two).signers.sort()).toEqual([alice.id, bob.id].sort())
  })

  it('refuses malformed ones (ERR_BAD_CONFIG), and keeps grants and configurations apart', () => {
    const payload = (list: unknown, target = GRANTS_TARGET): Uint8Array => encodeCbor(new Map<number, unknown>([[1, 'iotmesh:home'], [2, target], [4, 1], [5, list], [6, T]]))
    const raw = (list: unknown, type = GRANTS_CONTENT_FORMAT, target = GRANTS_TARGET): Uint8Array =>
      signCoseSign({ protectedHeader: new Map([[HEADER_CONTENT_TYPE, type]]), payload: payload(list, target), signers: [alice] })
    const grant = (to: unknown, actions: unknown = ['#'], on: unknown = ['*']): Map<number, unknown> => new Map([[1, to], [2, actions], [3, on]])
    expect(verifyCommandGrants(raw([grant(panel.publicKey)]), one).grants).toHaveLength(1)
    for (const list of [
      'no list', [grant(new Uint8Array(31))], [grant('role:Bad Role')], [grant(panel.publicKey, [])], [grant(panel.publicKey, ['relay/#/x'])],
      [grant(panel.publicKey, ['#'], ['kitchen'])], [grant(panel.publicKey, ['#'], [])], Array.from({ length: MAX_GRANTS + 1 }, () => grant(panel.publicKey))
    ]) {
      expect(codeOf(() => verifyFleetConfig(raw(list), one)), JSON.stringify(list, (_k, v: unknown) => v instanceof Map ? [...v] : v)).toBe('ERR_BAD_CONFIG')
    }
    // The reserved target only with content type 65022, and 65022 only for it: neither passes for the other.
    expect(codeOf(() => verifyFleetConfig(raw({ interval: 1000 }, 65_006), one))).toBe('ERR_BAD_CONFIG')
    expect(codeOf(() => verifyFleetConfig(raw([], GRANTS_CONTENT_FORMAT, lamp.id), one))).toBe('ERR_BAD_CONFIG')
    const config = signFleetConfig({ policy: one, target: lamp.id, version: 1, settings: { interval: 1000 }, owners: [alice] })
    expect(codeOf(() => verifyCommandGrants(config, one))).toBe('ERR_BAD_CONFIG')
    expect(verifyFleetConfig(config, one)).not.toHaveProperty('grants')
    expect(codeOf(() => signCommandGrants({ policy: one, version: 1, owners: [alice], grants: [{ to: 'nobody', actions: ['#'], on: ['*'] }] }))).toBe('ERR_BAD_ARGUMENT')
  })

  it('is versioned as a configuration: the book keeps the highest, an older one is stale (ERR_CONFIG_STALE on a device)', () => {
    const book = new ConfigBook(one)
    const v = (version: number, owners = [alice]): Uint8Array => signCommandGrants({ policy: one, version, owners, grants: [{ to: panel.publicKey, actions: ['#'], on: ['*'] }] })
    expect(book.add(v(2)).verdict).toBe('added')
    expect(book.add(v(2)).verdict).toBe('known')
    expect(book.add(v(1)).verdict).toBe('stale')
    expect(codeOf(() => checkNewer(1, 2, GRANTS_TARGET))).toBe('ERR_CONFIG_STALE')
    // A peer cannot raise the version without owners: a forged v99 is refused, the book keeps v2.
    const forged = signCommandGrants({ policy: policyOf(1, [mallory]), version: 99, owners: [mallory], grants: [{ to: mallory.publicKey, actions: ['#'], on: ['*'] }] })
    expect(codeOf(() => book.add(forged))).toBe('ERR_NOT_OWNER')
    expect(book.get(GRANTS_TARGET)?.version).toBe(2)
  })

  it('matches: the issuer by key or credential role, the device by id, group, role or *, the action by pattern', () => {
    const grants = verifyCommandGrants(signCommandGrants({
      policy: one, version: 1, owners: [alice],
      grants: [
        { to: panel.publicKey, actions: ['relay/#'], on: [lamp.id] },
        { to: 'role:hub', actions: ['+/get'], on: ['group:kitchen'] },
        { to: 'role:admin', actions: ['#'], on: ['role:light'] },
        { to: mallory.publicKey, actions: ['#'], on: ['group:garage'] }
      ]
    }), one).grants
    expect(grantAllows(grants, lampSelf, panel.id, [], 'relay/set')).toBe(true)
    expect(grantAllows(grants, lampSelf, panel.id, [], 'light/set')).toBe(false)
    expect(grantAllows(grants, { ...lampSelf, id: alice.id }, panel.id, [], 'relay/set')).toBe(false)
    expect(grantAllows(grants, lampSelf, mallory.id, ['hub'], 'state/get')).toBe(true)
    expect(grantAllows(grants, lampSelf, mallory.id, ['hub'], 'relay/set')).toBe(false)
    expect(grantAllows(grants, { ...lampSelf, groups: [] }, mallory.id, ['hub'], 'state/get')).toBe(false)
    expect(grantAllows(grants, lampSelf, bob.id, ['admin'], 'anything/at/all')).toBe(true)
    expect(grantAllows(grants, { ...lampSelf, roles: [] }, bob.id, ['admin'], 'relay/set')).toBe(false)
    expect(grantAllows(grants, lampSelf, mallory.id, [], 'relay/set')).toBe(false)
  })

  it('parses grantees and scopes from the command line', () => {
    expect(parseGrantee('role:hub')).toBe('role:hub')
    expect(parseGrantee(toBase64url(panel.publicKey))).toEqual(panel.publicKey)
    expect(codeOf(() => parseGrantee('hub'))).toBe('ERR_BAD_ARGUMENT')
    expect(grantScope('kitchen')).toBe('group:kitchen')
    expect(grantScope('*')).toBe('*')
    expect(grantScope(lamp.id)).toBe(lamp.id)
    expect(grantScope('role:light')).toBe('role:light')
    expect(codeOf(() => grantScope('role:'))).toBe('ERR_BAD_ARGUMENT')
  })
})
