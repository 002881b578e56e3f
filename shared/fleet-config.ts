import { DEFAULT_CBOR_LIMITS, decodeCbor, encodeCbor } from './cbor.js'
import { HEADER_CONTENT_TYPE } from './cose.js'
import { decodeCoseSign, signCoseSign, verifiedSigners, type CoseSign } from './cose-sign.js'
import type { Ed25519 } from './crypto/ed25519.js'
import { defaultEd25519 } from './crypto/ed25519-default.js'
import { isMeshError, meshError } from './errors.js'
import { isDeviceId, type DeviceId, type KeyPair } from './identity.js'
import type { FleetPolicy } from './fleet.js'
import { TOPIC_ROOT } from './topics.js'
import { GRANTS_CONTENT_FORMAT, GRANTS_TARGET, encodeGrantList, parseGrantList, type CommandGrant, type GrantInput } from './grants.js'

/**
 * Owner-signed, versioned device configuration (issue 13, "Signed configuration"): a COSE_Sign
 * (RFC 9052 §4.1) that counts only with the fleet's threshold of owner signatures, as credentials
 * and revocations do (shared/fleet.ts), under the content type 65006 (CoAP Content-Format,
 * experimental range, RFC 7252 §12.3; 65000–65005 are taken). Its payload is a CBOR map:
 *   1  text  "iotmesh:<fleet>"
 *   2  text  the target: a device id, or "group:<name>" (a credential role or a configured group)
 *   4  uint  the version, 1 to 2^32 - 1: a device applies only a higher one than it holds
 *   6  uint  issued at, seconds since the epoch
 *   5  map   the settings, a JSON object with only the keys of REMOTE_SETTINGS; their values are
 *            checked here for shape only (what a relay can check), and by the device with the same
 *            validators its configuration file goes through (firmware-sim/device/signed-config.ts)
 * A signed configuration is at most MAX_CONFIG_BYTES. On MQTT it is retained, raw, on
 * `iotmesh/<fleet>/$config/<target>` (configTopic).
 */

export const CONFIG_CONTENT_FORMAT = 65_006
export const MAX_CONFIG_BYTES = 8192
export const MAX_CONFIG_VERSION = 0xffff_ffff
/** The settings a signed configuration may change; anything else is ERR_BAD_CONFIG. */
export const REMOTE_SETTINGS = ['interval', 'sensors', 'actuators', 'rules'] as const
export type RemoteSetting = typeof REMOTE_SETTINGS[number]
export type RemoteSettings = Partial<Record<RemoteSetting, unknown>>
export const CONFIG_LEVEL = '$config'

export interface FleetConfig {
  fleet: string
  target: string
  version: number
  issuedAt: number
  settings: RemoteSettings
  /** Owners whose signatures hold (only after `verifyFleetConfig`). */
  signers: DeviceId[]
  /** A grant policy's grants (content type 65022, target "$grants": shared/grants.ts); its settings are then empty. */
  grants?: CommandGrant[]
}

const GROUP = /^group:[a-z0-9][a-z0-9_-]{0,31}$/
const issuer = (fleet: string): string => `iotmesh:${fleet}`

/** A device id, or "group:<name>" (a bare group name is taken as one). ERR_BAD_ARGUMENT otherwise. */
export function configTarget (to: string): string {
  const target = to.startsWith('group:') || isDeviceId(to) ? to : `group:${to}`
  if (!isConfigTarget(target)) throw meshError('ERR_BAD_ARGUMENT', `${JSON.stringify(to)} is neither a device id nor a group (lower-case letters, digits, "_" or "-", at most 32)`)
  return target
}

/** Whether a value names what a signed configuration may apply to (a device id, or `group:<name>`). */
export function isConfigTarget (target: unknown): target is string {
  return typeof target === 'string' && (isDeviceId(target) || GROUP.test(target))
}

/** The retained MQTT topic of a target's configuration. */
export function configTopic (fleet: string, target: string): string {
  return `${TOPIC_ROOT}/${fleet}/${CONFIG_LEVEL}/${target}`
}

/** The targets a device answers to: its id and its groups. */
export function configTargetsOf (device: DeviceId, groups: readonly string[] = []): string[] {
  return [device, ...groups.map((g) => `group:${g}`)]
}

export interface SignConfigInput {
  policy: FleetPolicy
  target: string
  version: number
  settings: RemoteSettings
  /** Seconds since the epoch (default now). */
  issuedAt?: number
  /** The owners signing now (others may co-sign later: shared/fleet.ts `cosign`). */
  owners: KeyPair[]
  ed25519?: Ed25519
}

/** A configuration for the fleet's devices, signed by its owners (COSE_Sign1, RFC 9052). */
export function signFleetConfig (input: SignConfigInput): Uint8Array {
  if (!isConfigTarget(input.target)) throw meshError('ERR_BAD_ARGUMENT', `${JSON.stringify(input.target)} is not a config target (a device id or "group:<name>")`)
  checkVersion(input.version)
  checkSettingsShape(input.settings)
  if (input.owners.length === 0) throw meshError('ERR_BAD_ARGUMENT', 'at least one owner signs')
  for (const o of input.owners) {
    if (!input.policy.owners.some((w) => w.id === o.id)) throw meshError('ERR_NOT_OWNER', `${o.id} is not an owner of fleet ${input.policy.fleet}`)
  }
  const payload = new Map<number, unknown>([
    [1, issuer(input.policy.fleet)], [2, input.target], [4, input.version], [5, input.settings], [6, Math.floor(input.issuedAt ?? Date.now() / 1000)]
  ])
  const bytes = signCoseSign({ protectedHeader: new Map([[HEADER_CONTENT_TYPE, CONFIG_CONTENT_FORMAT]]), payload: encodeCbor(payload), signers: input.owners, ed25519: input.ed25519 })
  if (bytes.length > MAX_CONFIG_BYTES) throw meshError('ERR_BAD_CONFIG', `the signed configuration is ${bytes.length} bytes; at most ${MAX_CONFIG_BYTES}`)
  return bytes
}

/**
 * Reads a configuration's fields without checking a signature (cheap: what a node looks at before
 * it spends signature checks). Throws ERR_BAD_CONFIG for anything not the layout above.
 */
export function peekFleetConfig (bytes: Uint8Array): Omit<FleetConfig, 'signers' | 'fleet'> & { issuer: string, message: CoseSign } {
  const bad = (why: string): never => { throw meshError('ERR_BAD_CONFIG', `the signed configuration ${why}`) }
  if (bytes.length > MAX_CONFIG_BYTES) bad(`is ${bytes.length} bytes; at most ${MAX_CONFIG_BYTES}`)
  let message: CoseSign
  try {
    message = decodeCoseSign(bytes)
  } catch (err) {
    throw meshError('ERR_BAD_CONFIG', `not a COSE_Sign: ${(err as Error).message}`, { cause: err })
  }
  const type = message.protectedHeader.get(HEADER_CONTENT_TYPE)
  if (type !== CONFIG_CONTENT_FORMAT && type !== GRANTS_CONTENT_FORMAT) bad(`has the content type (label 3) ${String(type)}, not ${CONFIG_CONTENT_FORMAT} (or ${GRANTS_CONTENT_FORMAT}: grants)`)
  let fields: unknown
  try {
    fields = decodeCbor(message.payload, DEFAULT_CBOR_LIMITS)
  } catch (err) {
    throw meshError('ERR_BAD_CONFIG', `its payload is not strict CBOR: ${isMeshError(err) ? err.message : String(err)}`, { cause: err })
  }
  if (!(fields instanceof Map)) return bad('payload is not a CBOR map')
  const [iss, target, version, settings, issuedAt] = [fields.get(1), fields.get(2), fields.get(4), fields.get(5), fields.get(6)]
  if (typeof iss !== 'string' || !iss.startsWith('iotmesh:')) bad('has no iotmesh issuer (1)')
  checkVersion(version)
  if (!Number.isSafeInteger(issuedAt) || (issuedAt as number) < 0) bad('has no issue time (6)')
  if (type === GRANTS_CONTENT_FORMAT || target === GRANTS_TARGET) {
    // A grant policy (shared/grants.ts): the reserved target and content type go together, so neither passes for the other.
    if (type !== GRANTS_CONTENT_FORMAT || target !== GRANTS_TARGET) bad(`is for "${GRANTS_TARGET}" only with the content type ${GRANTS_CONTENT_FORMAT}, and the reverse`)
    const grants = parseGrantList(settings)
    return { issuer: iss as string, target: GRANTS_TARGET, version: version as number, issuedAt: issuedAt as number, settings: {}, grants, message }
  }
  if (!isConfigTarget(target)) bad('names no target (2: a device id or "group:<name>")')
  const plain = toPlain(settings)
  checkSettingsShape(plain)
  return { issuer: iss as string, target: target as string, version: version as number, issuedAt: issuedAt as number, settings: plain as RemoteSettings, message }
}

/** Checks a configuration against the fleet file: ERR_BAD_CONFIG, ERR_UNKNOWN_FLEET, ERR_NOT_OWNER, ERR_TOO_FEW_OWNERS. */
export function verifyFleetConfig (bytes: Uint8Array, policy: FleetPolicy, options: { ed25519?: Ed25519 } = {}): FleetConfig {
  const { issuer: iss, message, ...fields } = peekFleetConfig(bytes)
  if (iss !== issuer(policy.fleet)) throw meshError('ERR_UNKNOWN_FLEET', `the configuration is for ${iss}, not ${issuer(policy.fleet)}`)
  const byId = new Map(policy.owners.map((w) => [w.id, w.publicKey]))
  const signers = verifiedSigners(message, (id) => byId.get(id), options.ed25519 ?? defaultEd25519)
  if (signers.length === 0) throw meshError('ERR_NOT_OWNER', `no signature of an owner of fleet ${policy.fleet} holds on the configuration`)
  if (signers.length < policy.threshold) {
    throw meshError('ERR_TOO_FEW_OWNERS', `${signers.length} of the ${policy.threshold} owner signatures fleet ${policy.fleet} requires (iotmesh fleet config cosign adds one)`)
  }
  return { fleet: policy.fleet, ...fields, signers }
}

/** ERR_CONFIG_STALE unless `version` is above the one applied: no rollback by replaying an older configuration. */
export function checkNewer (version: number, applied: number | undefined, target: string): void {
  if (applied !== undefined && version <= applied) {
    throw meshError('ERR_CONFIG_STALE', `configuration version ${version} for ${target} is not newer than the applied version ${applied}: refused (owners push a higher --version)`)
  }
}

function checkVersion (version: unknown): void {
  if (!Number.isSafeInteger(version) || (version as number) < 1 || (version as number) > MAX_CONFIG_VERSION) {
    throw meshError('ERR_BAD_CONFIG', `a configuration version is an integer from 1 to ${MAX_CONFIG_VERSION}, got ${String(version)}`)
  }
}

function checkSettingsShape (settings: unknown): void {
  if (settings === null || typeof settings !== 'object' || Array.isArray(settings)) throw meshError('ERR_BAD_CONFIG', 'the settings are not an object')
  const keys = Object.keys(settings)
  if (keys.length === 0) throw meshError('ERR_BAD_CONFIG', `the settings are empty; a configuration sets some of ${REMOTE_SETTINGS.join(', ')}`)
  for (const key of keys) {
    if (!(REMOTE_SETTINGS as readonly string[]).includes(key)) {
      throw meshError('ERR_BAD_CONFIG', `${JSON.stringify(key)} cannot be set remotely; a signed configuration sets ${REMOTE_SETTINGS.join(', ')}`, { details: { setting: key } })
    }
  }
}

/** CBOR maps with text keys (as cbor-x decodes a JSON object) back into plain objects; anything else as is. */
function toPlain (value: unknown): unknown {
  if (value instanceof Map) {
    const out: Record<string, unknown> = {}
    for (const [k, v] of value) {
      if (typeof k !== 'string' || k === '__proto__') throw meshError('ERR_BAD_CONFIG', 'the settings hold a key that is not text')
      out[k] = toPlain(v)
    }
    return out
  }
  return Array.isArray(value) ? value.map(toPlain) : value
}

/**
 * The configurations a node holds: per target, only the highest valid version (a lower or equal
 * one costs a lookup and no signature check), at most `max` targets.
 */
export class ConfigBook {
  readonly #byTarget = new Map<string, { config: FleetConfig, bytes: Uint8Array }>()
  /** `policy` changes when a new fleet file is in force (shared/fleet-file.ts); configurations held stay. */
  constructor (public policy: FleetPolicy, readonly max = 10_000) {}

  get size (): number { return this.#byTarget.size }

  get (target: string): FleetConfig | undefined { return this.#byTarget.get(target)?.config }

  /** 'added' (verified, higher than held), 'known' (the same version held), 'stale' (a lower one: nothing checked); throws the verification's code. */
  add (bytes: Uint8Array, ed25519?: Ed25519): { verdict: 'added' | 'known' | 'stale', target: string, version: number, config?: FleetConfig } {
    const { target, version } = peekFleetConfig(bytes)
    const held = this.#byTarget.get(target)
    if (held !== undefined && version <= held.config.version) return { verdict: version === held.config.version ? 'known' : 'stale', target, version }
    if (held === undefined && this.#byTarget.size >= this.max) throw meshError('ERR_TABLE_FULL', `configurations of ${this.max} targets held already`)
    const config = verifyFleetConfig(bytes, this.policy, { ...(ed25519 === undefined ? {} : { ed25519 }) })
    this.#byTarget.set(target, { config, bytes })
    return { verdict: 'added', target, version, config }
  }

  /** Every configuration's signed bytes (what a node gossips). */
  all (): Uint8Array[] { return [...this.#byTarget.values()].map((e) => e.bytes) }
}

/** What `signCommandGrants` takes: the whole list of grants (a new version replaces the old one). */
export interface SignGrantsInput extends Omit<SignConfigInput, 'target' | 'settings'> {
  grants: readonly GrantInput[]
}

/** A grant policy for commands (shared/grants.ts), signed by `owners` (others co-sign it later: shared/fleet.ts `cosign`). */
export function signCommandGrants (input: SignGrantsInput): Uint8Array {
  checkVersion(input.version)
  if (input.owners.length === 0) throw meshError('ERR_BAD_ARGUMENT', 'at least one owner signs')
  for (const o of input.owners) {
    if (!input.policy.owners.some((w) => w.id === o.id)) throw meshError('ERR_NOT_OWNER', `${o.id} is not an owner of fleet ${input.policy.fleet}`)
  }
  const payload = new Map<number, unknown>([
    [1, issuer(input.policy.fleet)], [2, GRANTS_TARGET], [4, input.version], [5, encodeGrantList(input.grants)], [6, Math.floor(input.issuedAt ?? Date.now() / 1000)]
  ])
  const bytes = signCoseSign({ protectedHeader: new Map([[HEADER_CONTENT_TYPE, GRANTS_CONTENT_FORMAT]]), payload: encodeCbor(payload), signers: input.owners, ed25519: input.ed25519 })
  if (bytes.length > MAX_CONFIG_BYTES) throw meshError('ERR_BAD_ARGUMENT', `the signed grant policy is ${bytes.length} bytes; at most ${MAX_CONFIG_BYTES} (fewer grants)`)
  return bytes
}

/** Verifies a grant policy as a configuration (verifyFleetConfig's codes); ERR_BAD_CONFIG when it is a configuration of settings instead. */
export function verifyCommandGrants (bytes: Uint8Array, policy: FleetPolicy, options: { ed25519?: Ed25519 } = {}): FleetConfig & { grants: CommandGrant[] } {
  const config = verifyFleetConfig(bytes, policy, options)
  if (config.grants === undefined) throw meshError('ERR_BAD_CONFIG', `a configuration for ${config.target}, not a grant policy (content type ${GRANTS_CONTENT_FORMAT})`)
  return { ...config, grants: config.grants }
}

/** The grant policy's fields without checking a signature (what `iotmesh fleet grants` builds the next version on). */
export function peekCommandGrants (bytes: Uint8Array): { fleet: string, version: number, issuedAt: number, grants: CommandGrant[] } {
  const { issuer: iss, version, issuedAt, grants } = peekFleetConfig(bytes)
  if (grants === undefined) throw meshError('ERR_BAD_CONFIG', `not a grant policy (content type ${GRANTS_CONTENT_FORMAT})`)
  return { fleet: iss.slice('iotmesh:'.length), version, issuedAt, grants }
}
