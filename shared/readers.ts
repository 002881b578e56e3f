import { DEFAULT_CBOR_LIMITS, decodeCbor, encodeCbor } from './cbor.js'
import { HEADER_CONTENT_TYPE } from './cose.js'
import { decodeCoseSign, signCoseSign, verifiedSigners } from './cose-sign.js'
import { MAX_READERS, X25519_KEY_BYTES, readerId, readerKid, type ReaderPublic } from './cose-encrypt.js'
import type { Ed25519 } from './crypto/ed25519.js'
import { isMeshError, meshError } from './errors.js'
import type { FleetPolicy } from './fleet.js'
import type { KeyPair } from './identity.js'
import { checkDeviceTopic, topicMatches, validateFilter } from './topics.js'

/**
 * Who may read a fleet's encrypted readings (issue 13): an owner-signed reader grant list, a
 * COSE_Sign (RFC 9052 §4.1, shared/cose-sign.ts) that counts only with the fleet's threshold of
 * owner signatures, as enrollments and revocations do (shared/fleet.ts), under content type 65021:
 *
 *   payload = { 1: "iotmesh:<fleet>", 2: version (uint: the highest valid one wins),
 *               3: [ { 1: X25519 public key (32 bytes), 2: name (text, optional) }, … ] (0 to 16 readers),
 *               4: [ device-topic filters to encrypt, e.g. "telemetry", "events/#" ] (optional: every topic),
 *               6: issued at (seconds) }
 *
 * A device given the list encrypts each reading on a listed topic to every reader on it
 * (shared/cose-encrypt.ts). Granting or revoking a reader is a new version of the list: a reader
 * left out of a later version cannot read the frames sent after the device took that version.
 * An empty list (every reader revoked) leaves encryption on with nobody to read: the device then
 * refuses to send those readings rather than send them in the clear.
 */

export const READER_GRANTS_CONTENT_FORMAT = 65_021
const MAX_NAME = 63
const MAX_TOPICS = 16

export interface ReaderGrant extends ReaderPublic {
  readonly name: string | undefined
}

export interface ReaderGrants {
  readonly fleet: string
  readonly version: number
  readonly readers: readonly ReaderGrant[]
  /** Device-topic filters whose readings are encrypted; undefined: every topic. */
  readonly topics: readonly string[] | undefined
  readonly issuedAt: number
  /** Owners whose signatures hold (after `verifyReaderGrants`). */
  readonly signers: readonly string[]
}

export interface ReaderGrantsInput {
  policy: FleetPolicy
  version: number
  readers: ReadonlyArray<{ publicKey: Uint8Array, name?: string | undefined }>
  topics?: readonly string[] | undefined
  issuedAt?: number
  owners: KeyPair[]
  ed25519?: Ed25519
}

const issuer = (fleet: string): string => `iotmesh:${fleet}`

/** A new reader grant list, signed by `owners` (others co-sign later: `cosign` in shared/fleet.ts). */
export function signReaderGrants (input: ReaderGrantsInput): Uint8Array {
  if (!Number.isSafeInteger(input.version) || input.version < 1) throw meshError('ERR_BAD_ARGUMENT', `a grant list version is a positive integer, got ${input.version}`)
  if (input.readers.length > MAX_READERS) throw meshError('ERR_BAD_ARGUMENT', `at most ${MAX_READERS} readers, got ${input.readers.length}`)
  for (const o of input.owners) {
    if (!input.policy.owners.some((w) => w.id === o.id)) throw meshError('ERR_NOT_OWNER', `${o.id} is not an owner of fleet ${input.policy.fleet}`)
  }
  const readers = input.readers.map((r) => {
    readerKid(r.publicKey) // checks the length
    if (r.name !== undefined && (r.name.length === 0 || r.name.length > MAX_NAME)) throw meshError('ERR_BAD_ARGUMENT', `a reader name is 1 to ${MAX_NAME} characters`)
    return new Map<number, unknown>(r.name === undefined ? [[1, r.publicKey]] : [[1, r.publicKey], [2, r.name]])
  })
  const payload = new Map<number, unknown>([[1, issuer(input.policy.fleet)], [2, input.version], [3, readers]])
  if (input.topics !== undefined) payload.set(4, checkTopics(input.topics, 'ERR_BAD_ARGUMENT'))
  payload.set(6, Math.floor(input.issuedAt ?? Date.now() / 1000))
  const bytes = signCoseSign({
    protectedHeader: new Map([[HEADER_CONTENT_TYPE, READER_GRANTS_CONTENT_FORMAT]]), payload: encodeCbor(payload), signers: input.owners, ed25519: input.ed25519
  })
  readGrants(bytes) // refuse to sign what receivers refuse (a reader twice)
  return bytes
}

function checkTopics (topics: readonly unknown[], code: 'ERR_BAD_ARGUMENT' | 'ERR_BAD_READER_GRANT'): string[] {
  if (topics.length === 0 || topics.length > MAX_TOPICS) throw meshError(code, `1 to ${MAX_TOPICS} topic filters, got ${topics.length}`)
  return topics.map((t) => {
    if (typeof t !== 'string' || t.length > 64) throw meshError(code, 'a topic filter is text of at most 64 bytes')
    try { validateFilter(t) } catch (err) { throw meshError(code, `${JSON.stringify(t)} is not a topic filter`, { cause: err }) }
    return t
  })
}

/** The list's content without checking signatures (what `iotmesh fleet readers` shows). Throws ERR_BAD_READER_GRANT. */
export function readGrants (bytes: Uint8Array): Omit<ReaderGrants, 'signers'> & { fleetIssuer: string } {
  let payload: unknown
  try {
    const message = decodeCoseSign(bytes)
    if (message.protectedHeader.get(HEADER_CONTENT_TYPE) !== READER_GRANTS_CONTENT_FORMAT) throw meshError('ERR_BAD_READER_GRANT', `the content type is not ${READER_GRANTS_CONTENT_FORMAT}`)
    payload = decodeCbor(message.payload, DEFAULT_CBOR_LIMITS)
  } catch (err) {
    if (isMeshError(err, 'ERR_BAD_READER_GRANT')) throw err
    throw meshError('ERR_BAD_READER_GRANT', `not a reader grant list: ${(err as Error).message}`, { cause: err })
  }
  if (!(payload instanceof Map)) throw meshError('ERR_BAD_READER_GRANT', 'its payload is not a CBOR map')
  const [fleetIssuer, version, list, topics, issuedAt] = [payload.get(1), payload.get(2), payload.get(3), payload.get(4), payload.get(6)]
  if (typeof fleetIssuer !== 'string' || !fleetIssuer.startsWith('iotmesh:') || typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1 ||
    !Array.isArray(list) || list.length > MAX_READERS || !Number.isSafeInteger(issuedAt) || (topics !== undefined && !Array.isArray(topics))) {
    throw meshError('ERR_BAD_READER_GRANT', `a reader grant list is {1: fleet, 2: version, 3: [0 to ${MAX_READERS} readers], 4?: [topic filters], 6: issued at}`)
  }
  const seen = new Set<string>()
  const readers = list.map((entry: unknown): ReaderGrant => {
    const publicKey = entry instanceof Map ? entry.get(1) : undefined
    const name = entry instanceof Map ? entry.get(2) : undefined
    if (!(publicKey instanceof Uint8Array) || publicKey.length !== X25519_KEY_BYTES || (name !== undefined && (typeof name !== 'string' || name.length > MAX_NAME))) {
      throw meshError('ERR_BAD_READER_GRANT', 'a reader is {1: X25519 public key (32 bytes), 2?: name}')
    }
    const id = readerId(publicKey)
    if (seen.has(id)) throw meshError('ERR_BAD_READER_GRANT', `reader ${id} is granted twice`)
    seen.add(id)
    return { kid: readerKid(publicKey), publicKey, name: name as string | undefined }
  })
  return {
    fleetIssuer, fleet: fleetIssuer.slice('iotmesh:'.length), version, readers,
    topics: topics === undefined ? undefined : checkTopics(topics as unknown[], 'ERR_BAD_READER_GRANT'), issuedAt: issuedAt as number
  }
}

/** Checks a reader grant list against the fleet file (ERR_BAD_READER_GRANT, ERR_UNKNOWN_FLEET, ERR_NOT_OWNER, ERR_TOO_FEW_OWNERS). */
export function verifyReaderGrants (bytes: Uint8Array, policy: FleetPolicy, options: { ed25519?: Ed25519 } = {}): ReaderGrants {
  const { fleetIssuer, ...grants } = readGrants(bytes)
  if (fleetIssuer !== issuer(policy.fleet)) throw meshError('ERR_UNKNOWN_FLEET', `the reader grants are for ${fleetIssuer}, not ${issuer(policy.fleet)}`)
  const byId = new Map(policy.owners.map((w) => [w.id, w.publicKey]))
  const signers = verifiedSigners(decodeCoseSign(bytes), (id) => byId.get(id), options.ed25519)
  if (signers.length === 0) throw meshError('ERR_NOT_OWNER', `no signature of an owner of fleet ${policy.fleet} holds on the reader grants`)
  if (signers.length < policy.threshold) {
    throw meshError('ERR_TOO_FEW_OWNERS', `${signers.length} of the ${policy.threshold} owner signatures fleet ${policy.fleet} requires (iotmesh fleet cosign adds one)`)
  }
  return { ...grants, signers }
}

/** The readers a reading on `topic` is encrypted to; undefined when the list leaves that topic in the clear. */
export function readersFor (grants: Pick<ReaderGrants, 'readers' | 'topics'>, topic: string): readonly ReaderPublic[] | undefined {
  checkDeviceTopic(topic)
  if (grants.topics !== undefined && !grants.topics.some((f) => topicMatches(f, topic))) return undefined
  return grants.readers
}
