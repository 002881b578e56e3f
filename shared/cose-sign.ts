import { concatBytes } from './bytes.js'
import { DEFAULT_CBOR_LIMITS, cborHead, decodeCbor, encodeCbor, type CborLimits } from './cbor.js'
import { ACCEPTED_ALGS, ALG_ED25519, HEADER_ALG, HEADER_KID, encodeHeader, type HeaderMap } from './cose.js'
import type { Ed25519, PublicKey, SecretKey } from './crypto/ed25519.js'
import { defaultEd25519 } from './crypto/ed25519-default.js'
import { meshError } from './errors.js'
import { DEVICE_ID_BYTES, deviceIdFromBytes, deviceIdToBytes, type DeviceId } from './identity.js'

/**
 * COSE_Sign (RFC 9052 §4.1): one payload, several signers. What several owners of a fleet sign
 * together (an enrollment, a revocation: shared/fleet.ts), so that no single owner's key decides:
 *
 *   COSE_Sign = 98([ protected: bstr .cbor header_map, unprotected: header_map, payload: bstr,
 *                    signatures: [+ COSE_Signature] ])
 *   COSE_Signature = [ protected: bstr .cbor {1 (alg): -19, 4 (kid): signer's 16 id bytes},
 *                      unprotected: {}, signature: bstr ]
 *
 * Each signer signs Sig_structure = ["Signature", body_protected, sign_protected, external_aad (empty),
 * payload] (§4.4), so a signature covers the body's protected header and the payload, not the other
 * signatures: owners sign one after the other on their own machines (`addSignature`), in any order.
 * Decoding is strict and bounded: at most MAX_SIGNERS signatures, one per kid.
 */

export const COSE_SIGN_TAG = 98
export const MAX_SIGNERS = 16
const LIMITS: CborLimits = { ...DEFAULT_CBOR_LIMITS, maxBytes: 8192, maxItems: MAX_SIGNERS + 8 }

export interface CoseSignature {
  /** The signer's device id (kid). */
  readonly signer: DeviceId
  readonly protectedBytes: Uint8Array
  readonly signature: Uint8Array
}

export interface CoseSign {
  readonly protectedBytes: Uint8Array
  readonly protectedHeader: HeaderMap
  readonly payload: Uint8Array
  readonly signatures: readonly CoseSignature[]
}

function sigStructure (bodyProtected: Uint8Array, signProtected: Uint8Array, payload: Uint8Array): Uint8Array {
  return encodeCbor(['Signature', bodyProtected, signProtected, new Uint8Array(0), payload])
}

function encode (message: CoseSign): Uint8Array {
  return concatBytes(cborHead(6, COSE_SIGN_TAG), encodeCbor([
    message.protectedBytes, new Map(), message.payload, message.signatures.map((s) => [s.protectedBytes, new Map(), s.signature])
  ]))
}

function signOne (protectedBytes: Uint8Array, payload: Uint8Array, signer: { id: DeviceId, secretKey: SecretKey }, ed: Ed25519): CoseSignature {
  const signProtected = encodeHeader(new Map<number, unknown>([[HEADER_ALG, ALG_ED25519], [HEADER_KID, deviceIdToBytes(signer.id)]]))
  return { signer: signer.id, protectedBytes: signProtected, signature: ed.sign(sigStructure(protectedBytes, signProtected, payload), signer.secretKey) }
}

/** A new COSE_Sign of `payload` under `protectedHeader`, signed by each of `signers`. */
export function signCoseSign (input: {
  protectedHeader: HeaderMap, payload: Uint8Array, signers: ReadonlyArray<{ id: DeviceId, secretKey: SecretKey }>, ed25519?: Ed25519
}): Uint8Array {
  if (input.signers.length === 0 || input.signers.length > MAX_SIGNERS) throw meshError('ERR_BAD_ARGUMENT', `a COSE_Sign has 1 to ${MAX_SIGNERS} signers`)
  const protectedBytes = encodeHeader(input.protectedHeader)
  const ed = input.ed25519 ?? defaultEd25519
  const seen = new Set<DeviceId>()
  const signatures = input.signers.filter((s) => !seen.has(s.id) && seen.add(s.id) !== undefined).map((s) => signOne(protectedBytes, input.payload, s, ed))
  return encode({ protectedBytes, protectedHeader: input.protectedHeader, payload: input.payload, signatures })
}

/** The same message with one more signer (a co-signature); the same bytes when `signer` signed it already. */
export function addSignature (bytes: Uint8Array, signer: { id: DeviceId, secretKey: SecretKey }, ed25519: Ed25519 = defaultEd25519): Uint8Array {
  const message = decodeCoseSign(bytes)
  if (message.signatures.some((s) => s.signer === signer.id)) return bytes
  if (message.signatures.length >= MAX_SIGNERS) throw meshError('ERR_BAD_ARGUMENT', `a COSE_Sign has at most ${MAX_SIGNERS} signers`)
  return encode({ ...message, signatures: [...message.signatures, signOne(message.protectedBytes, message.payload, signer, ed25519)] })
}

/** Parses a tagged COSE_Sign without verifying it. Throws MeshError (ERR_NOT_COSE_SIGN, ERR_BAD_HEADER, CBOR codes). */
export function decodeCoseSign (bytes: Uint8Array): CoseSign {
  if (bytes.length === 0 || bytes.length > LIMITS.maxBytes) throw meshError('ERR_NOT_COSE_SIGN', `a COSE_Sign here is 1 to ${LIMITS.maxBytes} bytes, got ${bytes.length}`)
  const value = decodeCbor(bytes, { ...LIMITS, allowedTopTags: [COSE_SIGN_TAG] } as CborLimits)
  const tagged = value as { tag?: number, value?: unknown }
  const array = tagged?.tag === COSE_SIGN_TAG ? tagged.value : undefined
  if (!Array.isArray(array) || array.length !== 4) throw meshError('ERR_NOT_COSE_SIGN', 'expected CBOR tag 98 (COSE_Sign) around an array of 4 items')
  const [protectedBytes, unprotected, payload, signatures] = array as unknown[]
  if (!(protectedBytes instanceof Uint8Array) || !(payload instanceof Uint8Array) || !(unprotected instanceof Map) || !Array.isArray(signatures)) {
    throw meshError('ERR_NOT_COSE_SIGN', 'a COSE_Sign is [protected bstr, unprotected map, payload bstr, [signatures]]')
  }
  if (signatures.length === 0 || signatures.length > MAX_SIGNERS) throw meshError('ERR_NOT_COSE_SIGN', `a COSE_Sign has 1 to ${MAX_SIGNERS} signatures, this one ${signatures.length}`)
  const protectedHeader = protectedBytes.length === 0 ? new Map() : decodeCbor(protectedBytes, LIMITS)
  if (!(protectedHeader instanceof Map)) throw meshError('ERR_BAD_HEADER', 'the COSE_Sign protected header is not a map')
  const seen = new Set<DeviceId>()
  const parsed = signatures.map((entry): CoseSignature => {
    if (!Array.isArray(entry) || entry.length !== 3 || !(entry[0] instanceof Uint8Array) || !(entry[1] instanceof Map) || !(entry[2] instanceof Uint8Array)) {
      throw meshError('ERR_NOT_COSE_SIGN', 'a COSE_Signature is [protected bstr, unprotected map, signature bstr]')
    }
    const header = decodeCbor(entry[0], LIMITS)
    if (!(header instanceof Map)) throw meshError('ERR_BAD_HEADER', 'a COSE_Signature protected header is not a map')
    const alg = header.get(HEADER_ALG)
    if (typeof alg !== 'number' || !ACCEPTED_ALGS.includes(alg)) throw meshError('ERR_UNSUPPORTED_ALG', `a COSE_Signature alg must be Ed25519 (-19) or EdDSA (-8), got ${String(alg)}`)
    const kid = header.get(HEADER_KID)
    if (!(kid instanceof Uint8Array) || kid.length !== DEVICE_ID_BYTES) throw meshError('ERR_BAD_HEADER', `a COSE_Signature names its signer: kid (label 4), ${DEVICE_ID_BYTES} bytes, in its protected header`)
    const signer = deviceIdFromBytes(kid)
    if (seen.has(signer)) throw meshError('ERR_DUPLICATE_KEY', `${signer} signed this COSE_Sign twice`)
    seen.add(signer)
    return { signer, protectedBytes: entry[0], signature: entry[2] }
  })
  return { protectedBytes, protectedHeader: protectedHeader as HeaderMap, payload, signatures: parsed }
}

/** The signers whose signature holds, among those `keyOf` knows (others are not checked: no work for an unknown kid). */
export function verifiedSigners (message: CoseSign, keyOf: (signer: DeviceId) => PublicKey | undefined, ed: Ed25519 = defaultEd25519): DeviceId[] {
  const out: DeviceId[] = []
  for (const s of message.signatures) {
    const key = keyOf(s.signer)
    if (key !== undefined && ed.verify(s.signature, sigStructure(message.protectedBytes, s.protectedBytes, message.payload), key)) out.push(s.signer)
  }
  return out
}
