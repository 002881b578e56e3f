import { DEFAULT_CBOR_LIMITS, decodeCbor, encodeCbor } from './cbor.js'
import { ALG_ED25519, HEADER_ALG, HEADER_CONTENT_TYPE, HEADER_KID, decodeSign1, signSign1, verifySign1, type Sign1 } from './cose.js'
import type { Ed25519, PublicKey } from './crypto/ed25519.js'
import { defaultEd25519 } from './crypto/ed25519-default.js'
import { isMeshError, meshError } from './errors.js'
import { deviceIdFromBytes, deviceIdFromPublicKey, deviceIdToBytes, isDeviceId, keyMatchesId, type DeviceId, type KeyPair } from './identity.js'

/**
 * A key handover (issue 13, rotation): the old key's own word that a new key takes its place. A
 * device id is derived from its key (shared/identity.ts), so a new key is a new id; the handover is
 * what lets the fleet treat both as one device. It is a COSE_Sign1 (RFC 9052 §4.2) signed by the
 * OLD key (kid: the old device id), content type 65007, whose payload is a CWT claims set (RFC 8392):
 *
 *   1 iss  text  "iotmesh:<fleet>"                  (§3.1.1)
 *   2 sub  text  the old device id                  (§3.1.2)
 *   6 iat  int   issued at, seconds since the epoch (§3.1.6)
 *   8 cnf  map   {1: COSE_Key} (RFC 8747 §3.1): the NEW Ed25519 public key, as in a credential
 *   "prev" bstr  the old public key (32 bytes), so the handover verifies on its own (private claim, §4)
 *
 * A handover alone changes nothing: owners act on it. `iotmesh fleet enroll NEWKEY --replaces OLD
 * --handover FILE` checks it, issues the new key's credential (with the claim "prev": the old id) and
 * a revocation of the old id with reason "rotated" that carries the handover (shared/fleet.ts). That
 * revocation spreads like any other (REVOKE gossip, retained on the broker), so the old key stops
 * being accepted wherever it arrives, and it is what the gateway reads to list both keys as one
 * device. The same handover, signed by an old owner key, rotates an owner (shared/owner-rotation.ts).
 */

export const HANDOVER_CONTENT_FORMAT = 65_007
/** The largest handover a node takes (a real one is about 200 bytes). */
export const MAX_HANDOVER_BYTES = 512

export interface Handover {
  fleet: string
  /** The old key's device id, and the old key. */
  device: DeviceId
  publicKey: PublicKey
  /** The new key's device id, and the new key. */
  successor: DeviceId
  successorKey: PublicKey
  issuedAt: number
}

/** Signs a handover from `oldKeys` to `newPublicKey` (with the old key: only the holder of the old key can). */
export function createHandover (input: { fleet: string, oldKeys: KeyPair, newPublicKey: PublicKey, issuedAt?: number, ed25519?: Ed25519 }): Uint8Array {
  if (input.newPublicKey.length !== 32) throw meshError('ERR_BAD_KEY', `the new public key is ${input.newPublicKey.length} bytes, not 32`)
  if (deviceIdFromPublicKey(input.newPublicKey) === input.oldKeys.id) throw meshError('ERR_BAD_ARGUMENT', 'a key cannot hand over to itself: create a new key first')
  const claims = new Map<number | string, unknown>([
    [1, `iotmesh:${input.fleet}`], [2, input.oldKeys.id], [6, Math.floor(input.issuedAt ?? Date.now() / 1000)],
    [8, new Map([[1, new Map<number, unknown>([[1, 1], [-1, 6], [-2, input.newPublicKey]])]])],
    ['prev', input.oldKeys.publicKey]
  ])
  return signSign1({
    protectedHeader: new Map<number, unknown>([[HEADER_ALG, ALG_ED25519], [HEADER_CONTENT_TYPE, HANDOVER_CONTENT_FORMAT], [HEADER_KID, deviceIdToBytes(input.oldKeys.id)]]),
    payload: encodeCbor(claims), secretKey: input.oldKeys.secretKey, ...(input.ed25519 === undefined ? {} : { ed25519: input.ed25519 })
  })
}

/**
 * Checks a handover: its layout, its fleet, that the old key derives to the old id (and to the
 * kid), then the old key's signature (one Ed25519 check). Throws ERR_BAD_HANDOVER (malformed, or
 * not signed by the key it hands over from), ERR_UNKNOWN_FLEET.
 */
export function verifyHandover (bytes: Uint8Array, fleet: string, options: { ed25519?: Ed25519 } = {}): Handover {
  const bad = (why: string, cause?: unknown): never => { throw meshError('ERR_BAD_HANDOVER', `the handover ${why}`, cause === undefined ? undefined : { cause }) }
  if (bytes.length === 0 || bytes.length > MAX_HANDOVER_BYTES) bad(`is ${bytes.length} bytes, not 1 to ${MAX_HANDOVER_BYTES}`)
  let message: Sign1
  let claims: unknown
  try {
    message = decodeSign1(bytes)
    claims = decodeCbor(message.payload, DEFAULT_CBOR_LIMITS)
  } catch (err) {
    return bad(`is not a COSE_Sign1 over a CBOR map: ${isMeshError(err) ? err.code : String(err)}`, err)
  }
  if (message.protectedHeader.get(HEADER_CONTENT_TYPE) !== HANDOVER_CONTENT_FORMAT) bad(`has content type ${String(message.protectedHeader.get(HEADER_CONTENT_TYPE))}, not ${HANDOVER_CONTENT_FORMAT}`)
  if (!(claims instanceof Map)) return bad('payload is not a CBOR map')
  const [iss, sub, iat, prev] = [claims.get(1), claims.get(2), claims.get(6), claims.get('prev')]
  const key = ((claims.get(8) as Map<number, unknown> | undefined)?.get(1) as Map<number, unknown> | undefined)
  const x = key?.get(-2)
  const kid = message.protectedHeader.get(HEADER_KID)
  if (typeof iss !== 'string' || !isDeviceId(sub) || !Number.isSafeInteger(iat)) bad('is not {1: issuer, 2: old device id, 6: issued at, 8: cnf, "prev": old key}')
  if (iss !== `iotmesh:${fleet}`) throw meshError('ERR_UNKNOWN_FLEET', `the handover is for ${String(iss)}, not iotmesh:${fleet}`)
  if (key?.get(1) !== 1 || key.get(-1) !== 6 || !(x instanceof Uint8Array) || x.length !== 32) bad('has no new Ed25519 key (claim 8, RFC 8747)')
  if (!(prev instanceof Uint8Array) || !keyMatchesId(prev, sub as DeviceId)) bad('has no old key that derives to its old device id (claim "prev", claim 2)')
  if (!(kid instanceof Uint8Array) || kid.length !== 16 || deviceIdFromBytes(kid) !== sub) bad('is not signed under the old device id (kid, label 4)')
  const successor = deviceIdFromPublicKey(x as PublicKey)
  if (successor === sub) bad('hands a key over to itself')
  if (!verifySign1(message, prev as PublicKey, options.ed25519 ?? defaultEd25519)) bad(`is not signed by the key of ${sub as string}`)
  return { fleet, device: sub as DeviceId, publicKey: prev as PublicKey, successor, successorKey: x as PublicKey, issuedAt: iat as number }
}
