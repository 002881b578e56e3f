import { decodeCbor, encodeCbor } from './cbor.js'
import { HEADER_CONTENT_TYPE } from './cose.js'
import { signCoseSign } from './cose-sign.js'
import type { Ed25519, PublicKey } from './crypto/ed25519.js'
import { meshError } from './errors.js'
import { checkSigners, issuer, open, ownerSignatures, payloadMap, type FleetOwner, type FleetPolicy } from './fleet.js'
import { deviceIdFromPublicKey, type DeviceId, type KeyPair } from './identity.js'
import { TOPIC_ROOT } from './topics.js'

/**
 * A signed fleet file (issue 13, "the fleet file spreads by gossip"): the next owners and threshold
 * of a fleet, versioned, signed by the threshold of the owners of the fleet file a node holds NOW
 * (k of n, COSE_Sign RFC 9052 §4.1). An owner rotation (shared/owner-rotation.ts), an added or
 * removed owner and a new threshold all become one of these, so they spread through the mesh as
 * revocations do (mesh/routing/handlers/fleet.ts) instead of being handed to every node.
 *
 * Content type 65009 (the experimental CoAP Content-Format range, RFC 7252 §12.3, as 65004–65008),
 * payload a CBOR map:
 *   1  text  "iotmesh:<fleet>"
 *   2  uint  version, 1 to 2^32-1 (a hand-written fleet file without one is version 0)
 *   3  uint  threshold of the NEW file
 *   4  [[key (32-byte Ed25519), name (text or null)]…]  the NEW owners, 1 to 16
 *   6  int   issued at, seconds since the epoch
 *
 * A node takes one only when its version is above the one it holds (ERR_FLEET_STALE otherwise: no
 * rollback by replaying an older file) and the owners of the file it holds signed it with their
 * threshold (ERR_NOT_OWNER, ERR_TOO_FEW_OWNERS). Every check but the signatures comes first, so a
 * stale or malformed file costs no signature check.
 */

export const FLEET_FILE_CONTENT_FORMAT = 65_009
/** The largest signed fleet file a node takes (16 owners and 16 signatures are about 2.3 KiB). */
export const MAX_FLEET_FILE_BYTES = 4096
export const MAX_FLEET_OWNERS = 16
export const MAX_FLEET_VERSION = 0xffff_ffff

export interface SignFleetFileInput {
  /** The fleet file in force: its owners sign (co-signers add theirs: shared/fleet.ts `cosign`). */
  current: FleetPolicy
  /** The next owners and threshold. */
  next: { threshold: number, owners: ReadonlyArray<{ name?: string | undefined, publicKey: PublicKey }> }
  /** Above the current file's version (default: one above it). */
  version?: number
  issuedAt?: number
  owners: KeyPair[]
  ed25519?: Ed25519
}

export function signFleetFile (input: SignFleetFileInput): Uint8Array {
  const version = input.version ?? (input.current.version ?? 0) + 1
  checkNext(input.current.fleet, version, input.next.threshold, input.next.owners.length)
  if (version <= (input.current.version ?? 0)) throw meshError('ERR_FLEET_STALE', `version ${version} is not above the fleet file's ${input.current.version ?? 0}`)
  if (new Set(input.next.owners.map((o) => deviceIdFromPublicKey(o.publicKey))).size !== input.next.owners.length) throw meshError('ERR_BAD_ARGUMENT', 'an owner is listed twice')
  checkSigners(input.current, input.owners)
  const owners = input.next.owners.map((o) => [o.publicKey, o.name ?? null])
  const payload = new Map<number, unknown>([[1, issuer(input.current.fleet)], [2, version], [3, input.next.threshold], [4, owners], [6, Math.floor(input.issuedAt ?? Date.now() / 1000)]])
  const bytes = signCoseSign({ protectedHeader: new Map([[HEADER_CONTENT_TYPE, FLEET_FILE_CONTENT_FORMAT]]), payload: encodeCbor(payload), signers: input.owners, ed25519: input.ed25519 })
  if (bytes.length > MAX_FLEET_FILE_BYTES) throw meshError('ERR_BAD_ARGUMENT', `the signed fleet file is ${bytes.length} bytes; at most ${MAX_FLEET_FILE_BYTES}`)
  return bytes
}

/**
 * Every check but the signatures: the layout (ERR_BAD_FLEET_FILE), the fleet (ERR_UNKNOWN_FLEET),
 * the size; returns the policy it describes (its `signers` unchecked). Never verifies a signature.
 */
export function readFleetFile (bytes: Uint8Array, fleet: string): FleetPolicy & { version: number, issuedAt: number } {
  if (bytes.length > MAX_FLEET_FILE_BYTES) throw meshError('ERR_BAD_FLEET_FILE', `the fleet file is ${bytes.length} bytes, more than the ${MAX_FLEET_FILE_BYTES} a node takes`)
  const fields = payloadMap(open(bytes, FLEET_FILE_CONTENT_FORMAT, 'ERR_BAD_FLEET_FILE'), 'ERR_BAD_FLEET_FILE')
  const [iss, version, threshold, list, issuedAt] = [fields.get(1), fields.get(2), fields.get(3), fields.get(4), fields.get(6)]
  if (typeof iss !== 'string' || !Number.isSafeInteger(version) || !Number.isSafeInteger(threshold) || !Array.isArray(list) || !Number.isSafeInteger(issuedAt)) {
    throw meshError('ERR_BAD_FLEET_FILE', 'a signed fleet file is {1: fleet, 2: version, 3: threshold, 4: [[key, name]…], 6: issued at}')
  }
  if (iss !== issuer(fleet)) throw meshError('ERR_UNKNOWN_FLEET', `the fleet file is for ${iss}, not ${issuer(fleet)}`)
  try {
    checkNext(fleet, version as number, threshold as number, list.length)
  } catch (err) {
    throw meshError('ERR_BAD_FLEET_FILE', (err as Error).message)
  }
  const owners = list.map((entry): FleetOwner => {
    const [key, name] = Array.isArray(entry) ? entry as unknown[] : []
    if (!(key instanceof Uint8Array) || key.length !== 32 || (name !== null && (typeof name !== 'string' || name.length > 63))) {
      throw meshError('ERR_BAD_FLEET_FILE', 'an owner is [32-byte Ed25519 key, name or null]')
    }
    return { name: name ?? undefined, id: deviceIdFromPublicKey(key), publicKey: key }
  })
  if (new Set(owners.map((o) => o.id)).size !== owners.length) throw meshError('ERR_BAD_FLEET_FILE', 'an owner is listed twice')
  return { fleet, version: version as number, threshold: threshold as number, owners, issuedAt: issuedAt as number }
}

/**
 * Checks a signed fleet file against the one in force (`current`): every check of `readFleetFile`,
 * then its version above the current one (ERR_FLEET_STALE), then the CURRENT owners' signatures
 * with the current threshold (ERR_NOT_OWNER, ERR_TOO_FEW_OWNERS). Returns the next fleet file.
 */
export function verifyFleetFile (bytes: Uint8Array, current: FleetPolicy, options: { ed25519?: Ed25519 } = {}): FleetPolicy & { version: number, signers: DeviceId[] } {
  const next = readFleetFile(bytes, current.fleet)
  if (next.version <= (current.version ?? 0)) {
    throw meshError('ERR_FLEET_STALE', `fleet file version ${next.version} is not above version ${current.version ?? 0} held: refused, so an older one cannot be replayed`)
  }
  const signers = ownerSignatures(open(bytes, FLEET_FILE_CONTENT_FORMAT, 'ERR_BAD_FLEET_FILE'), current, options.ed25519)
  return { fleet: next.fleet, version: next.version, threshold: next.threshold, owners: next.owners, signers }
}

function checkNext (fleet: string, version: number, threshold: number, owners: number): void {
  if (!(version >= 1 && version <= MAX_FLEET_VERSION)) throw meshError('ERR_BAD_ARGUMENT', `a fleet file version is 1 to ${MAX_FLEET_VERSION}, got ${version}`)
  if (owners < 1 || owners > MAX_FLEET_OWNERS) throw meshError('ERR_BAD_ARGUMENT', `fleet ${fleet} has 1 to ${MAX_FLEET_OWNERS} owners, got ${owners}`)
  if (!(threshold >= 1 && threshold <= owners)) throw meshError('ERR_BAD_ARGUMENT', `the threshold is 1 to ${owners} (the owners), got ${threshold}`)
}

/**
 * The signed fleet files a node holds: the newest `max` of its chain, oldest first, each verified
 * against the one before it. A node hands a new neighbour the whole chain, so a neighbour up to
 * `max` versions behind catches up file by file (a file signed by owners it does not know yet
 * verifies once the file that made them owners is in force).
 */
export class FleetFileChain {
  #policy: FleetPolicy
  readonly #chain: Array<{ version: number, bytes: Uint8Array }> = []
  constructor (policy: FleetPolicy, readonly max = 16) { this.#policy = policy }

  /** The fleet file in force. */
  get policy (): FleetPolicy { return this.#policy }
  get version (): number { return this.#policy.version ?? 0 }

  /**
   * 'added' (verified, now in force), 'known' (these very bytes are in the chain: nothing checked);
   * throws ERR_FLEET_STALE (an older or equal version with other bytes: nothing checked) and the
   * verification's codes.
   */
  add (bytes: Uint8Array, ed25519?: Ed25519): { verdict: 'added' | 'known', policy: FleetPolicy } {
    const version = readFleetFile(bytes, this.#policy.fleet).version
    if (version <= this.version) {
      const same = this.#chain.find((e) => e.version === version)
      if (same !== undefined && same.bytes.length === bytes.length && same.bytes.every((b, i) => b === bytes[i])) return { verdict: 'known', policy: this.#policy }
      throw meshError('ERR_FLEET_STALE', `fleet file version ${version} is not above version ${this.version} held: refused, so an older one cannot be replayed`)
    }
    const next = verifyFleetFile(bytes, this.#policy, { ...(ed25519 === undefined ? {} : { ed25519 }) })
    this.#policy = { fleet: next.fleet, version: next.version, threshold: next.threshold, owners: next.owners }
    this.#chain.push({ version, bytes: new Uint8Array(bytes) })
    if (this.#chain.length > this.max) this.#chain.shift()
    return { verdict: 'added', policy: this.#policy }
  }

  /** The chain's signed files, oldest first (what a node gossips and keeps). */
  all (): Uint8Array[] { return this.#chain.map((e) => e.bytes) }
}

/**
 * The fleet files on MQTT, for devices that hear no FLEET gossip (broker mode, issue 13): the
 * gateway retains the chain it holds (FleetFileChain, the newest 16, oldest first) as ONE message on
 * `iotmesh/<fleet>/$fleet/files`, a CBOR array of the signed files (RFC 8949 §3.1, major type 4 of
 * byte strings), so a device several versions behind takes them in order, each verified against the
 * one before, exactly as from a neighbour. Only the gateway publishes there (gateway/authorize.ts).
 */
export const FLEET_FILES_LEVEL = '$fleet'
/** The most files one such message may hold. */
export const MAX_FLEET_FILES = 16
/** The most bytes one such message may hold: 16 files of at most 4 KiB, with their CBOR heads. */
export const MAX_FLEET_FILES_BYTES = MAX_FLEET_FILES * (MAX_FLEET_FILE_BYTES + 3) + 3

/** Where the gateway retains the fleet files of `fleet`. */
export function fleetFilesTopic (fleet: string): string {
  return `${TOPIC_ROOT}/${fleet}/${FLEET_FILES_LEVEL}/files`
}

/** The retained message: the newest 16 of `files` (oldest first) as a CBOR array of byte strings. */
export function encodeFleetFiles (files: readonly Uint8Array[]): Uint8Array {
  return encodeCbor(files.slice(-MAX_FLEET_FILES).map((f) => new Uint8Array(f)))
}

/** The signed files of a retained message, unverified (FleetFileChain.add verifies each); ERR_BAD_FLEET_FILE when it is no bounded list of byte strings. */
export function decodeFleetFiles (bytes: Uint8Array): Uint8Array[] {
  if (bytes.length > MAX_FLEET_FILES_BYTES) throw meshError('ERR_BAD_FLEET_FILE', `the fleet files message is ${bytes.length} bytes, more than the ${MAX_FLEET_FILES_BYTES} a device reads`)
  let list: unknown
  try {
    list = decodeCbor(bytes)
  } catch (err) {
    throw meshError('ERR_BAD_FLEET_FILE', `the fleet files message is not CBOR: ${(err as Error).message}`, { cause: err })
  }
  if (!Array.isArray(list) || list.length > MAX_FLEET_FILES || !list.every((f) => f instanceof Uint8Array && f.length <= MAX_FLEET_FILE_BYTES)) {
    throw meshError('ERR_BAD_FLEET_FILE', `the fleet files message is a CBOR array of at most ${MAX_FLEET_FILES} signed fleet files of at most ${MAX_FLEET_FILE_BYTES} bytes each`)
  }
  return list as Uint8Array[]
}
