import { fromBase64 } from './bytes.js'
import type { PublicKey } from './crypto/ed25519.js'
import { meshError } from './errors.js'
import { deviceIdFromPublicKey, isDeviceId, type DeviceId } from './identity.js'
import { topicMatches, validateFilter } from './topics.js'

/**
 * Grants for commands (issue 13, "Grants"): which keys, or which credential roles, may command
 * which actions on which devices. The list travels inside an owner-signed policy (COSE_Sign,
 * RFC 9052 §4.1, the fleet's threshold of owner signatures) under content type 65022 (CoAP
 * Content-Format, experimental range, RFC 7252 §12.3; 65000–65006 and 65020–65021 are taken), laid
 * out as a signed configuration (shared/fleet-config.ts) for the reserved target "$grants":
 *
 *   payload = { 1: "iotmesh:<fleet>", 2: "$grants", 4: version (the highest valid one wins),
 *               5: [ grant… ] (0 to MAX_GRANTS), 6: issued at (seconds) }
 *   grant   = { 1: to: an Ed25519 public key (32 bytes) or "role:<R>" (a credential role),
 *               2: [ action patterns ] (1 to 16: MQTT topic filters matched level by level, 3.1.1 §4.7),
 *               3: [ on: a device id, "group:<G>", "role:<R>" or "*" ] (1 to 16),
 *               4: name (text, optional) }
 *
 * So the policy spreads exactly as configurations do (CONFIG gossip, retained `$config/$grants` on
 * MQTT, the gateway's guard), one version sequence of its own. This file is the list's codec and
 * its matching; signing and verifying are in shared/fleet-config.ts (signCommandGrants,
 * verifyCommandGrants).
 */

export const GRANTS_CONTENT_FORMAT = 65_022
/** The reserved configuration target a grant policy is signed for (never a device id or a group). */
export const GRANTS_TARGET = '$grants'
export const MAX_GRANTS = 64
const MAX_PATTERNS = 16
const MAX_NAME = 63
const NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/

/** Who a grant is to: one key, or every device whose credential carries a role. */
export type Grantee = { key: PublicKey, id: DeviceId } | { role: string }

export interface CommandGrant {
  readonly to: Grantee
  readonly actions: readonly string[]
  /** Device ids, "group:<G>", "role:<R>" or "*". */
  readonly on: readonly string[]
  readonly name: string | undefined
}

export interface GrantInput {
  to: PublicKey | string
  actions: readonly string[]
  on: readonly string[]
  name?: string | undefined
}

/** "role:<R>", or a base64url Ed25519 public key, as a grantee; ERR_BAD_ARGUMENT otherwise. */
export function parseGrantee (text: string): PublicKey | string {
  if (text.startsWith('role:')) {
    if (!NAME.test(text.slice(5))) throw meshError('ERR_BAD_ARGUMENT', `${JSON.stringify(text)}: a role is lower-case letters, digits, "_" or "-", at most 32`)
    return text
  }
  const key = fromBase64(text)
  if (key?.length !== 32) throw meshError('ERR_BAD_ARGUMENT', `${JSON.stringify(text)} is neither "role:<R>" nor a 32-byte Ed25519 public key in base64url (iotmesh keygen prints it)`)
  return key
}

/** A grant's `on`: a device id, "group:<G>", "role:<R>" or "*"; a bare name is taken as a group. */
export function grantScope (text: string): string {
  const scope = text === '*' || text.startsWith('group:') || text.startsWith('role:') || isDeviceId(text) ? text : `group:${text}`
  if (!isScope(scope)) throw meshError('ERR_BAD_ARGUMENT', `${JSON.stringify(text)} is not a device id, "group:<G>", "role:<R>" or "*"`)
  return scope
}

function isScope (s: unknown): s is string {
  if (typeof s !== 'string') return false
  if (s === '*' || isDeviceId(s)) return true
  const m = /^(group|role):(.*)$/.exec(s)
  return m !== null && NAME.test(m[2] as string)
}

/** The CBOR form of a grant list (payload key 5); ERR_BAD_ARGUMENT for anything a device would refuse. */
export function encodeGrantList (grants: readonly GrantInput[]): Array<Map<number, unknown>> {
  const list = grants.map((g) => {
    const to = typeof g.to === 'string' ? parseGrantee(g.to) : g.to
    const entry = new Map<number, unknown>([[1, to], [2, [...g.actions]], [3, [...g.on]]])
    if (g.name !== undefined) entry.set(4, g.name)
    return entry
  })
  parseGrantList(list, 'ERR_BAD_ARGUMENT')
  return list
}

/** Reads a grant list (payload key 5) as decoded from CBOR; `code` for anything not the layout above. */
export function parseGrantList (value: unknown, code: 'ERR_BAD_CONFIG' | 'ERR_BAD_ARGUMENT' = 'ERR_BAD_CONFIG'): CommandGrant[] {
  const bad = (why: string): never => { throw meshError(code, `the grant policy ${why}`) }
  if (!Array.isArray(value)) return bad(`holds no grant list (5: an array of 0 to ${MAX_GRANTS} grants)`)
  if (value.length > MAX_GRANTS) bad(`holds ${value.length} grants; at most ${MAX_GRANTS}`)
  return value.map((entry: unknown, i): CommandGrant => {
    if (!(entry instanceof Map)) return bad(`grant ${i} is not a map`)
    const [to, actions, on, name] = [entry.get(1), entry.get(2), entry.get(3), entry.get(4)]
    let grantee: Grantee
    if (to instanceof Uint8Array && to.length === 32) grantee = { key: to, id: deviceIdFromPublicKey(to) }
    else if (typeof to === 'string' && to.startsWith('role:') && NAME.test(to.slice(5))) grantee = { role: to.slice(5) }
    else return bad(`grant ${i} is to neither a 32-byte public key nor "role:<R>" (1)`)
    if (!Array.isArray(actions) || actions.length === 0 || actions.length > MAX_PATTERNS) bad(`grant ${i} has not 1 to ${MAX_PATTERNS} action patterns (2)`)
    for (const p of actions as unknown[]) {
      if (typeof p !== 'string' || p.length > 64) bad(`grant ${i} has an action pattern that is not text of at most 64 bytes`)
      try { validateFilter(p as string) } catch { bad(`grant ${i}: ${JSON.stringify(p)} is not an action pattern`) }
    }
    if (!Array.isArray(on) || on.length === 0 || on.length > MAX_PATTERNS || !on.every(isScope)) {
      bad(`grant ${i} is not on 1 to ${MAX_PATTERNS} of: a device id, "group:<G>", "role:<R>", "*" (3)`)
    }
    if (name !== undefined && (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME)) bad(`grant ${i} has a name that is not 1 to ${MAX_NAME} characters (4)`)
    return { to: grantee, actions: actions as string[], on: on as string[], name: name as string | undefined }
  })
}

/** What a device knows of itself when it matches a grant's `on`. */
export interface GrantSubject {
  id: DeviceId
  groups: readonly string[]
  roles: readonly string[]
}

/** True when the grant covers `device`. */
export function grantCovers (grant: CommandGrant, device: GrantSubject): boolean {
  return grant.on.some((s) => s === '*' || s === device.id ||
    (s.startsWith('group:') && device.groups.includes(s.slice(6))) || (s.startsWith('role:') && device.roles.includes(s.slice(5))))
}

/** True when the grant is to this issuer: its key, or one of the roles its verified credential carries. */
export function grantIsTo (grant: CommandGrant, issuer: DeviceId, roles: readonly string[]): boolean {
  return 'id' in grant.to ? grant.to.id === issuer : roles.includes(grant.to.role)
}

/** True when some grant lets `issuer` (with `roles`) command `action` on `device`. */
export function grantAllows (grants: readonly CommandGrant[], device: GrantSubject, issuer: DeviceId, roles: readonly string[], action: string): boolean {
  return grants.some((g) => grantIsTo(g, issuer, roles) && grantCovers(g, device) && g.actions.some((p) => topicMatches(p, action)))
}

/** The grantee as text: "role:<R>" or the key's device id. */
export function granteeText (to: Grantee): string {
  return 'id' in to ? to.id : `role:${to.role}`
}
