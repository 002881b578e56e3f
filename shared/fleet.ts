import { fromBase64, toBase64url } from './bytes.js'
import { DEFAULT_CBOR_LIMITS, decodeCbor, encodeCbor } from './cbor.js'
import { HEADER_CONTENT_TYPE } from './cose.js'
import { addSignature, decodeCoseSign, signCoseSign, verifiedSigners, type CoseSign } from './cose-sign.js'
import type { Ed25519, PublicKey } from './crypto/ed25519.js'
import { defaultEd25519 } from './crypto/ed25519-default.js'
import { isMeshError, meshError, type ErrorCode } from './errors.js'
import { deviceIdFromPublicKey, isDeviceId, keyMatchesId, type DeviceId, type KeyPair } from './identity.js'
import { verifyHandover, type Handover } from './handover.js'
import { isFleetName } from './topics.js'

/**
 * A fleet's owners and what they sign together (issue 13, first layer): enrollment credentials and
 * revocations, each a COSE_Sign (shared/cose-sign.ts) that counts only with `threshold` distinct
 * owner signatures, so no single administrator's laptop is a single point of compromise.
 *
 * The fleet file (the trust anchor, given to every node as a roster is):
 *   { "fleet": "home", "threshold": 2, "owners": [ { "name": "alice", "key": "<base64url Ed25519 public key>" }, … ] }
 *
 * An enrollment credential is a CWT (RFC 8392) whose claims set is the COSE_Sign's payload, under
 * the content type 65004 (a CoAP Content-Format in the experimental range, RFC 7252 §12.3, as the
 * mesh's own signed messages use 65000–65003):
 *   1 iss  text  "iotmesh:<fleet>"                 (RFC 8392 §3.1.1)
 *   2 sub  text  the device id                      (§3.1.2)
 *   4 exp  int   expiry, seconds since the epoch    (§3.1.4)
 *   6 iat  int   issued at                          (§3.1.6)
 *   7 cti  bstr  8 random bytes: the credential's id (§3.1.7)
 *   8 cnf  map   {1: COSE_Key} (RFC 8747 §3.1): the device's public key, {1 kty: 1 OKP, -1 crv: 6
 *                Ed25519, -2 x: 32 bytes} (RFC 9053 §7.2); the device proves possession by signing
 *                with it (its link handshake, its frames)
 *   "name"  text, "roles" [text…]                  private claims (RFC 8392 §4)
 *   "prev"  text  the device id this key replaces (a rotation: shared/handover.ts), private claim
 * A revocation (content type 65005) has the payload {1: "iotmesh:<fleet>", 2: the revoked device
 * id, 3: reason (text), 6: issued at}. A rotation is a revocation with the reserved reason
 * "rotated" that also carries {7: the successor's device id, 8: the handover (shared/handover.ts),
 * signed by the revoked key}: owners end the old key and name its successor in one document, which
 * spreads by the revocation machinery everywhere a revocation does; no other reason carries 7 or 8,
 * and "rotated" never comes without them.
 */

export const CREDENTIAL_CONTENT_FORMAT = 65_004
export const REVOCATION_CONTENT_FORMAT = 65_005
export const OWNER_ROTATION_CONTENT_FORMAT = 65_008
/** A signed fleet file (shared/fleet-file.ts FLEET_FILE_CONTENT_FORMAT; here so fleetDocumentKind needs no import cycle). */
const FLEET_FILE_CONTENT_FORMAT_ = 65_009
/** The reason of a revocation that ends a key because it was rotated (it carries the handover). */
export const ROTATED = 'rotated'
/** The longest a credential may live, seconds (10 years: a Pi in a wall), and the default (1 year). */
export const MAX_CREDENTIAL_SECONDS = 10 * 365 * 86_400
export const DEFAULT_CREDENTIAL_SECONDS = 365 * 86_400

export interface FleetOwner { name: string | undefined, id: DeviceId, publicKey: PublicKey }
/** `version`: 0 (or absent) for a hand-written fleet file; a signed one (shared/fleet-file.ts) carries its own. */
export interface FleetPolicy { fleet: string, threshold: number, owners: FleetOwner[], version?: number }

export interface Credential {
  fleet: string
  device: DeviceId
  publicKey: PublicKey
  name: string | undefined
  roles: string[]
  issuedAt: number
  expiresAt: number
  cti: Uint8Array
  /** The device id this key replaces (claim "prev": a re-enrollment after a rotation). */
  previous: DeviceId | undefined
  /** Owners whose signatures hold (only after `verifyCredential`). */
  signers: DeviceId[]
}

export interface Revocation {
  fleet: string
  device: DeviceId
  reason: string
  issuedAt: number
  signers: DeviceId[]
  /** A rotation (reason "rotated"): the key that replaced the revoked one, and the old key's handover. */
  successor?: DeviceId
  handover?: Handover
}

const ROLE = /^[a-z0-9][a-z0-9_-]{0,31}$/
const CLAIM = { iss: 1, sub: 2, exp: 4, iat: 6, cti: 7, cnf: 8 } as const
export const issuer = (fleet: string): string => `iotmesh:${fleet}`

// ---- the fleet file ----

/** Parses a fleet file's JSON; errors name the field (ERR_BAD_ARGUMENT). */
export function parseFleetPolicy (json: unknown, source = 'fleet file'): FleetPolicy {
  const o = json as Record<string, unknown> | null
  if (o === null || typeof o !== 'object' || !isFleetName(o.fleet) || !Array.isArray(o.owners)) {
    throw meshError('ERR_BAD_ARGUMENT', `${source}: expected {"fleet": NAME, "threshold": K, "owners": [{"name": …, "key": …}]}`)
  }
  const owners = o.owners.map((entry: unknown, i): FleetOwner => {
    const { key, name } = (entry ?? {}) as Record<string, unknown>
    const publicKey = typeof key === 'string' ? fromBase64(key) : undefined
    if (publicKey?.length !== 32) throw meshError('ERR_BAD_ARGUMENT', `${source}: owners[${i}].key is not a 32-byte Ed25519 public key in base64url`)
    if (name !== undefined && typeof name !== 'string') throw meshError('ERR_BAD_ARGUMENT', `${source}: owners[${i}].name is not text`)
    return { name, id: deviceIdFromPublicKey(publicKey), publicKey }
  })
  if (new Set(owners.map((w) => w.id)).size !== owners.length) throw meshError('ERR_BAD_ARGUMENT', `${source}: an owner is listed twice`)
  const threshold = o.threshold ?? 1
  if (owners.length === 0 || typeof threshold !== 'number' || !Number.isSafeInteger(threshold) || threshold < 1 || threshold > owners.length) {
    throw meshError('ERR_BAD_ARGUMENT', `${source}: threshold is how many owners must sign, 1 to ${owners.length}, got ${String(threshold)}`)
  }
  const version = o.version ?? 0
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 0) throw meshError('ERR_BAD_ARGUMENT', `${source}: version is a whole number, 0 or more, got ${String(version)}`)
  return { fleet: o.fleet, threshold, owners, ...(version === 0 ? {} : { version }) }
}

/** A fleet policy as plain JSON, as a fleet file stores it. */
export function fleetPolicyJson (policy: FleetPolicy): Record<string, unknown> {
  return {
    fleet: policy.fleet,
    threshold: policy.threshold,
    ...((policy.version ?? 0) === 0 ? {} : { version: policy.version }),
    owners: policy.owners.map((w) => ({ ...(w.name === undefined ? {} : { name: w.name }), key: toBase64url(w.publicKey) }))
  }
}

// ---- signing ----

export interface EnrollInput {
  policy: FleetPolicy
  /** The device's public key. */
  publicKey: PublicKey
  name?: string
  roles?: string[]
  /** Seconds since the epoch (default now). */
  issuedAt?: number
  /** Lifetime in seconds (default a year, at most ten). */
  lifetime?: number
  cti: Uint8Array
  /** The device id the key replaces (a re-enrollment after a rotation: claim "prev"). */
  previous?: DeviceId
  /** The owners signing now (at least one; others may co-sign later: `cosign`). */
  owners: KeyPair[]
  ed25519?: Ed25519
}

/** An enrolment: the fleet's owners sign that a device belongs to the fleet. */
export function enroll (input: EnrollInput): Uint8Array {
  const device = deviceIdFromPublicKey(input.publicKey)
  const issuedAt = Math.floor(input.issuedAt ?? Date.now() / 1000)
  const lifetime = input.lifetime ?? DEFAULT_CREDENTIAL_SECONDS
  if (!(lifetime > 0 && lifetime <= MAX_CREDENTIAL_SECONDS)) throw meshError('ERR_BAD_ARGUMENT', `a credential lives more than 0 and at most ${MAX_CREDENTIAL_SECONDS} s`)
  const roles = input.roles ?? []
  for (const role of roles) if (!ROLE.test(role)) throw meshError('ERR_BAD_ARGUMENT', `${JSON.stringify(role)} is not a role: lower-case letters, digits, "_" or "-", at most 32`)
  if (input.name !== undefined && (input.name.length === 0 || input.name.length > 63)) throw meshError('ERR_BAD_ARGUMENT', 'a device name is 1 to 63 characters')
  checkSigners(input.policy, input.owners)
  const claims = new Map<number | string, unknown>([
    [CLAIM.iss, issuer(input.policy.fleet)], [CLAIM.sub, device], [CLAIM.exp, issuedAt + Math.floor(lifetime)], [CLAIM.iat, issuedAt], [CLAIM.cti, input.cti],
    [CLAIM.cnf, new Map([[1, new Map<number, unknown>([[1, 1], [-1, 6], [-2, input.publicKey]])]])]
  ])
  if (input.name !== undefined) claims.set('name', input.name)
  if (roles.length > 0) claims.set('roles', roles)
  if (input.previous !== undefined) {
    if (!isDeviceId(input.previous) || input.previous === device) throw meshError('ERR_BAD_DEVICE_ID', `${JSON.stringify(input.previous)} is not another device id`)
    claims.set('prev', input.previous)
  }
  return signCoseSign({
    protectedHeader: new Map([[HEADER_CONTENT_TYPE, CREDENTIAL_CONTENT_FORMAT]]), payload: encodeCbor(claims), signers: input.owners, ed25519: input.ed25519
  })
}

/** A revocation: the fleet's owners sign that a device no longer belongs to the fleet, with a reason. */
export function revoke (input: { policy: FleetPolicy, device: DeviceId, reason: string, issuedAt?: number, owners: KeyPair[], ed25519?: Ed25519 }): Uint8Array {
  if (input.reason === ROTATED) throw meshError('ERR_BAD_ARGUMENT', 'the reason "rotated" is reserved for a rotation, which carries the old key\'s handover (fleet enroll --replaces --handover)')
  return revocation(input, [])
}

/**
 * The owners' side of a rotation (shared/handover.ts): the revocation of the old key with reason
 * "rotated", naming the successor and carrying the old key's handover. The handover is checked
 * here (ERR_BAD_HANDOVER, ERR_UNKNOWN_FLEET) and again by every node that takes the revocation.
 */
export function rotate (input: { policy: FleetPolicy, handover: Uint8Array, issuedAt?: number, owners: KeyPair[], ed25519?: Ed25519 }): Uint8Array {
  const h = verifyHandover(input.handover, input.policy.fleet, { ...(input.ed25519 === undefined ? {} : { ed25519: input.ed25519 }) })
  return revocation({ ...input, device: h.device, reason: ROTATED }, [[7, h.successor], [8, input.handover]])
}

function revocation (input: { policy: FleetPolicy, device: DeviceId, reason: string, issuedAt?: number, owners: KeyPair[], ed25519?: Ed25519 }, extra: Array<[number, unknown]>): Uint8Array {
  if (!isDeviceId(input.device)) throw meshError('ERR_BAD_DEVICE_ID', `${JSON.stringify(input.device)} is not a device id`)
  if (input.reason.length === 0 || input.reason.length > 200) throw meshError('ERR_BAD_ARGUMENT', 'a revocation gives a reason of 1 to 200 characters')
  checkSigners(input.policy, input.owners)
  const payload = new Map<number, unknown>([[1, issuer(input.policy.fleet)], [2, input.device], [3, input.reason], [6, Math.floor(input.issuedAt ?? Date.now() / 1000)], ...extra])
  return signCoseSign({ protectedHeader: new Map([[HEADER_CONTENT_TYPE, REVOCATION_CONTENT_FORMAT]]), payload: encodeCbor(payload), signers: input.owners, ed25519: input.ed25519 })
}

/** Adds an owner's signature to a credential or revocation (k of n owners, each on their own machine). */
export function cosign (bytes: Uint8Array, policy: FleetPolicy, owner: KeyPair, ed25519?: Ed25519): Uint8Array {
  checkSigners(policy, [owner])
  return addSignature(bytes, owner, ed25519)
}

/** Throws ERR_NOT_OWNER unless every one of `owners` is an owner of the fleet. */
export function checkSigners (policy: FleetPolicy, owners: KeyPair[]): void {
  if (owners.length === 0) throw meshError('ERR_BAD_ARGUMENT', 'at least one owner signs')
  for (const o of owners) {
    if (!policy.owners.some((w) => w.id === o.id)) throw meshError('ERR_NOT_OWNER', `${o.id} is not an owner of fleet ${policy.fleet}`)
  }
}

// ---- verifying ----

export interface VerifyOptions {
  /** Seconds since the epoch (default now). */
  now?: number
  ed25519?: Ed25519
  /** The key the presenter proved (its link handshake): the credential must bind it (ERR_CREDENTIAL_MISMATCH), checked before any signature. */
  publicKey?: PublicKey
}

/** The largest credential a node takes (one with 16 owner signatures is about 1.9 KiB; 3 owners, under 600 bytes). */
export const MAX_CREDENTIAL_BYTES = 2048

/**
 * Checks a credential against the fleet file: the layout, the fleet, the key binding (cnf derives
 * to sub), expiry, then owner signatures, at most one check per owner (a kid that is no owner costs
 * nothing). Throws ERR_BAD_CREDENTIAL, ERR_UNKNOWN_FLEET, ERR_CREDENTIAL_MISMATCH (another key than
 * `publicKey`), ERR_CREDENTIAL_EXPIRED, ERR_NOT_OWNER (no owner signature holds), ERR_TOO_FEW_OWNERS
 * (fewer than the threshold).
 */
export function verifyCredential (bytes: Uint8Array, policy: FleetPolicy, options: VerifyOptions = {}): Credential {
  const { credential, message } = readCredentialMessage(bytes, policy, options)
  return { ...credential, signers: ownerSignatures(message, policy, options.ed25519) }
}

/**
 * Every check of `verifyCredential` but the owner signatures (no signature is verified): what a
 * node looks at before it spends a signature check, or to find a credential's id (cti) in a cache.
 * The result's `signers` is empty: it is not a verified credential.
 */
export function readCredential (bytes: Uint8Array, policy: FleetPolicy, options: Omit<VerifyOptions, 'ed25519'> = {}): Credential {
  return readCredentialMessage(bytes, policy, options).credential
}

function readCredentialMessage (bytes: Uint8Array, policy: FleetPolicy, options: Omit<VerifyOptions, 'ed25519'>): { credential: Credential, message: CoseSign } {
  if (bytes.length > MAX_CREDENTIAL_BYTES) throw meshError('ERR_BAD_CREDENTIAL', `the credential is ${bytes.length} bytes, more than the ${MAX_CREDENTIAL_BYTES} a node takes`)
  const message = open(bytes, CREDENTIAL_CONTENT_FORMAT, 'ERR_BAD_CREDENTIAL')
  const claims = payloadMap(message, 'ERR_BAD_CREDENTIAL')
  const bad = (why: string): never => { throw meshError('ERR_BAD_CREDENTIAL', `the credential ${why}`) }
  const iss = claims.get(CLAIM.iss)
  const sub = claims.get(CLAIM.sub)
  const exp = claims.get(CLAIM.exp)
  const iat = claims.get(CLAIM.iat)
  const cti = claims.get(CLAIM.cti)
  const key = ((claims.get(CLAIM.cnf) as Map<number, unknown> | undefined)?.get(1) as Map<number, unknown> | undefined)
  const x = key?.get(-2)
  if (typeof iss !== 'string' || !iss.startsWith('iotmesh:')) bad('has no iotmesh issuer (claim 1)')
  if (iss !== issuer(policy.fleet)) throw meshError('ERR_UNKNOWN_FLEET', `the credential is for ${String(iss)}, not ${issuer(policy.fleet)}`)
  if (!isDeviceId(sub)) bad('names no device id (claim 2)')
  if (!Number.isSafeInteger(exp) || !Number.isSafeInteger(iat) || (exp as number) <= (iat as number)) bad('has no valid iat/exp (claims 6, 4)')
  if (!(cti instanceof Uint8Array) || cti.length === 0 || cti.length > 32) bad('has no id (claim 7)')
  if (key?.get(1) !== 1 || key.get(-1) !== 6 || !(x instanceof Uint8Array) || x.length !== 32) bad('has no Ed25519 confirmation key (claim 8, RFC 8747)')
  if (!keyMatchesId(x as PublicKey, sub as DeviceId)) bad('binds a key that is not the device\'s (cnf does not derive to sub)')
  if (options.publicKey !== undefined && !keyMatchesId(options.publicKey, sub as DeviceId)) {
    throw meshError('ERR_CREDENTIAL_MISMATCH', `the credential is ${sub as string}'s, not the presenter's (${deviceIdFromPublicKey(options.publicKey)})`)
  }
  const name = claims.get('name')
  const roles = claims.get('roles') ?? []
  const previous = claims.get('prev')
  if (previous !== undefined && (!isDeviceId(previous) || previous === sub)) bad('names as the key it replaces (claim "prev") no other device id')
  if (name !== undefined && typeof name !== 'string') bad('has a name that is not text')
  if (!Array.isArray(roles) || !roles.every((r) => typeof r === 'string' && ROLE.test(r))) bad('has roles that are not a list of role names')
  const now = options.now ?? Date.now() / 1000
  if ((exp as number) <= now) throw meshError('ERR_CREDENTIAL_EXPIRED', `the credential of ${sub as string} expired at ${new Date((exp as number) * 1000).toISOString()}`)
  const credential: Credential = {
    fleet: policy.fleet, device: sub as DeviceId, publicKey: x as PublicKey, name: name as string | undefined, roles: roles as string[],
    issuedAt: iat as number, expiresAt: exp as number, cti: cti as Uint8Array, previous: previous as DeviceId | undefined, signers: []
  }
  return { credential, message }
}

/**
 * Checks a revocation against the fleet file (ERR_BAD_REVOCATION, ERR_UNKNOWN_FLEET, ERR_NOT_OWNER,
 * ERR_TOO_FEW_OWNERS); a rotation's handover after the owners' signatures (ERR_BAD_HANDOVER: not
 * the revoked key's, or naming another successor), so a document no owner signed costs no more.
 */
export function verifyRevocation (bytes: Uint8Array, policy: FleetPolicy, options: Pick<VerifyOptions, 'ed25519'> = {}): Revocation {
  const message = open(bytes, REVOCATION_CONTENT_FORMAT, 'ERR_BAD_REVOCATION')
  const fields = payloadMap(message, 'ERR_BAD_REVOCATION')
  const [fleet, device, reason, issuedAt] = [fields.get(1), fields.get(2), fields.get(3), fields.get(6)]
  if (typeof fleet !== 'string' || !isDeviceId(device) || typeof reason !== 'string' || !Number.isSafeInteger(issuedAt)) {
    throw meshError('ERR_BAD_REVOCATION', 'a revocation is {1: fleet, 2: device id, 3: reason, 6: issued at}')
  }
  if (fleet !== issuer(policy.fleet)) throw meshError('ERR_UNKNOWN_FLEET', `the revocation is for ${fleet}, not ${issuer(policy.fleet)}`)
  const [successor, handoverBytes] = [fields.get(7), fields.get(8)]
  const rotation = reason === ROTATED || successor !== undefined || handoverBytes !== undefined
  if (rotation && (reason !== ROTATED || !isDeviceId(successor) || !(handoverBytes instanceof Uint8Array))) {
    throw meshError('ERR_BAD_REVOCATION', 'a rotation is a revocation with reason "rotated", 7: the successor\'s device id, 8: the handover; no other revocation carries 7 or 8')
  }
  const signers = ownerSignatures(message, policy, options.ed25519)
  const base: Revocation = { fleet: policy.fleet, device, reason, issuedAt: issuedAt as number, signers }
  if (!rotation) return base
  const handover = verifyHandover(handoverBytes as Uint8Array, policy.fleet, { ...(options.ed25519 === undefined ? {} : { ed25519: options.ed25519 }) })
  if (handover.device !== device || handover.successor !== successor) {
    throw meshError('ERR_BAD_HANDOVER', `the rotation of ${device} to ${successor as string} carries the handover of ${handover.device} to ${handover.successor}`)
  }
  return { ...base, successor: handover.successor, handover }
}

/**
 * A rotation's successor (field 7) and its time (field 6), without any check: only for bytes
 * verified already (a node's RevocationSet); undefined for any other revocation. Never throws.
 */
export function rotationOf (bytes: Uint8Array): { successor: DeviceId, issuedAt: number } | undefined {
  try {
    const fields = payloadMap(open(bytes, REVOCATION_CONTENT_FORMAT, 'ERR_BAD_REVOCATION'), 'ERR_BAD_REVOCATION')
    const [successor, issuedAt] = [fields.get(7), fields.get(6)]
    return isDeviceId(successor) && Number.isSafeInteger(issuedAt) ? { successor, issuedAt: issuedAt as number } : undefined
  } catch {
    return undefined
  }
}

/** A credential's id (cti, claim 7) without any check, or undefined (not a credential): for announcements (DNS-SD TXT). Never throws. */
export function credentialId (bytes: Uint8Array): Uint8Array | undefined {
  try {
    const cti = payloadMap(open(bytes, CREDENTIAL_CONTENT_FORMAT, 'ERR_BAD_CREDENTIAL'), 'ERR_BAD_CREDENTIAL').get(CLAIM.cti)
    return cti instanceof Uint8Array && cti.length > 0 && cti.length <= 32 ? cti : undefined
  } catch {
    return undefined
  }
}

/** What a signed fleet document is, by its content type; undefined for anything else. Never throws. */
export function fleetDocumentKind (bytes: Uint8Array): 'credential' | 'revocation' | 'owner-rotation' | 'fleet-file' | undefined {
  try {
    const type = decodeCoseSign(bytes).protectedHeader.get(HEADER_CONTENT_TYPE)
    return type === CREDENTIAL_CONTENT_FORMAT
      ? 'credential'
      : type === REVOCATION_CONTENT_FORMAT ? 'revocation' : type === OWNER_ROTATION_CONTENT_FORMAT ? 'owner-rotation' : type === FLEET_FILE_CONTENT_FORMAT_ ? 'fleet-file' : undefined
  } catch {
    return undefined
  }
}

export function open (bytes: Uint8Array, contentFormat: number, code: ErrorCode): CoseSign {
  let message: CoseSign
  try {
    message = decodeCoseSign(bytes)
  } catch (err) {
    throw meshError(code, `not a COSE_Sign: ${(err as Error).message}`, { cause: err })
  }
  const type = message.protectedHeader.get(HEADER_CONTENT_TYPE)
  if (type !== contentFormat) throw meshError(code, `the content type (label 3) is ${String(type)}, not ${contentFormat}`)
  return message
}

export function payloadMap (message: CoseSign, code: ErrorCode): Map<unknown, unknown> {
  let value: unknown
  try {
    value = decodeCbor(message.payload, DEFAULT_CBOR_LIMITS)
  } catch (err) {
    throw meshError(code, `its payload is not strict CBOR: ${isMeshError(err) ? err.message : String(err)}`, { cause: err })
  }
  if (!(value instanceof Map)) throw meshError(code, 'its payload is not a CBOR map')
  return value
}

export function ownerSignatures (message: CoseSign, policy: FleetPolicy, ed: Ed25519 = defaultEd25519): DeviceId[] {
  const byId = new Map(policy.owners.map((w) => [w.id, w.publicKey]))
  const signers = verifiedSigners(message, (id) => byId.get(id), ed)
  if (signers.length === 0) throw meshError('ERR_NOT_OWNER', `no signature of an owner of fleet ${policy.fleet} holds`)
  if (signers.length < policy.threshold) {
    throw meshError('ERR_TOO_FEW_OWNERS', `${signers.length} of the ${policy.threshold} owner signatures fleet ${policy.fleet} requires (iotmesh fleet cosign adds one)`)
  }
  return signers
}

/**
 * Revocations a node holds: a grow-only set (merged by union: a revocation, once valid, is never
 * undone), at most one entry per device (the first valid one), bounded by the fleet's size.
 */
export class RevocationSet {
  readonly #byDevice = new Map<DeviceId, { revocation: Revocation, bytes: Uint8Array }>()
  /** `policy` changes when a new fleet file is in force (shared/fleet-file.ts); revocations held stay (a valid one is never undone). */
  constructor (public policy: FleetPolicy, readonly max = 100_000) {}

  get size (): number { return this.#byDevice.size }

  has (device: DeviceId): boolean { return this.#byDevice.has(device) }

  get (device: DeviceId): Revocation | undefined { return this.#byDevice.get(device)?.revocation }

  /** Verifies and adds: 'added', or 'known' (already revoked: no signature checked); throws the verification's code. */
  add (bytes: Uint8Array, ed25519?: Ed25519): { verdict: 'added' | 'known', revocation: Revocation } {
    const fields = payloadMap(open(bytes, REVOCATION_CONTENT_FORMAT, 'ERR_BAD_REVOCATION'), 'ERR_BAD_REVOCATION')
    const device = fields.get(2)
    const known = isDeviceId(device) ? this.#byDevice.get(device) : undefined
    if (known !== undefined) return { verdict: 'known', revocation: known.revocation }
    if (this.#byDevice.size >= this.max) throw meshError('ERR_TABLE_FULL', `${this.max} revocations held already`)
    const revocation = verifyRevocation(bytes, this.policy, { ...(ed25519 === undefined ? {} : { ed25519 }) })
    this.#byDevice.set(revocation.device, { revocation, bytes })
    return { verdict: 'added', revocation }
  }

  /** Every revocation's signed bytes (what a node gossips and persists). */
  all (): Uint8Array[] { return [...this.#byDevice.values()].map((e) => e.bytes) }
}
