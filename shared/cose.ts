import { concatBytes, toHex } from './bytes.js'
import { DEFAULT_CBOR_LIMITS, cborHead, decodeCbor, encodeCbor, readHead, scanCbor, type CborLimits } from './cbor.js'
import { meshError } from './errors.js'
import type { Ed25519, PublicKey, SecretKey } from './crypto/ed25519.js'
import { defaultEd25519 } from './crypto/ed25519-default.js'

/**
 * COSE_Sign1 (RFC 9052 §4.2) with Ed25519, independent of what the payload holds.
 *
 *   COSE_Sign1 = #6.18([ protected: bstr .cbor header_map, unprotected: header_map,
 *                        payload: bstr, signature: bstr ])
 *
 * Decoding keeps the exact received bytes of the protected header and the payload, and the
 * signature is checked over a Sig_structure assembled from those bytes (RFC 9052 §4.4): nothing
 * is re-encoded before verifying.
 */

export const COSE_SIGN1_TAG = 18
/** RFC 9052 §3.1 common header labels. */
export const HEADER_ALG = 1
export const HEADER_CONTENT_TYPE = 3
export const HEADER_KID = 4
/** RFC 9864 §2.2: "Ed25519", fully specified; signs exactly as EdDSA does with this curve. */
export const ALG_ED25519 = -19
/** RFC 9053 §2.2: "EdDSA" (deprecated in favour of -19 by RFC 9864, still accepted on input). */
export const ALG_EDDSA = -8
export const ACCEPTED_ALGS: readonly number[] = [ALG_ED25519, ALG_EDDSA]

export type HeaderMap = Map<number | string, unknown>

export interface Sign1 {
  /** The complete frame as received. */
  readonly bytes: Uint8Array
  /** The serialized protected header exactly as received (the bstr's content). */
  readonly protectedBytes: Uint8Array
  readonly protectedHeader: HeaderMap
  readonly unprotectedHeader: HeaderMap
  readonly payload: Uint8Array
  readonly signature: Uint8Array
  readonly alg: number
}

/** Limits for the outer structure: one tag, small headers. */
const OUTER_LIMITS: CborLimits = { ...DEFAULT_CBOR_LIMITS, allowedTopTags: [COSE_SIGN1_TAG] }

/** RFC 9052 §4.4: Sig_structure = ["Signature1", body_protected, external_aad, payload]. */
export function sigStructure (protectedBytes: Uint8Array, payload: Uint8Array, externalAad: Uint8Array = new Uint8Array(0)): Uint8Array {
  return concatBytes(
    SIG_STRUCTURE_PREFIX,
    cborHead(2, protectedBytes.length), protectedBytes,
    cborHead(2, externalAad.length), externalAad,
    cborHead(2, payload.length), payload)
}
// 0x84 = array(4); 0x6a "Signature1" = text(10)
const SIG_STRUCTURE_PREFIX = concatBytes(Uint8Array.of(0x84), cborHead(3, 10), new TextEncoder().encode('Signature1'))

/** Serializes a header map; an empty map is the zero-length bstr (RFC 9052 §3). */
export function encodeHeader (header: HeaderMap): Uint8Array {
  return header.size === 0 ? new Uint8Array(0) : encodeCbor(header)
}

export interface SignOptions {
  protectedHeader: HeaderMap
  unprotectedHeader?: HeaderMap
  payload: Uint8Array
  secretKey: SecretKey
  ed25519?: Ed25519
}

/** Builds a tagged COSE_Sign1. */
export function signSign1 (options: SignOptions): Uint8Array {
  const ed = options.ed25519 ?? defaultEd25519
  const protectedBytes = encodeHeader(options.protectedHeader)
  const signature = ed.sign(sigStructure(protectedBytes, options.payload), options.secretKey)
  const unprotected = encodeCbor(options.unprotectedHeader ?? new Map())
  return concatBytes(
    cborHead(6, COSE_SIGN1_TAG), cborHead(4, 4),
    cborHead(2, protectedBytes.length), protectedBytes,
    unprotected,
    cborHead(2, options.payload.length), options.payload,
    cborHead(2, signature.length), signature)
}

/** Parses a tagged COSE_Sign1 without verifying it. Throws MeshError with a stable code. */
export function decodeSign1 (bytes: Uint8Array, limits: CborLimits = DEFAULT_CBOR_LIMITS): Sign1 {
  if (bytes.length > 0 && bytes.length <= limits.maxBytes) {
    // Another COSE tag (COSE_Mac0 17, COSE_Sign 98, …) is not a COSE_Sign1, rather than a tag the scanner refuses.
    const first = readHead(bytes, 0)
    if (first.major === 6 && first.arg !== COSE_SIGN1_TAG) throw meshError('ERR_NOT_COSE_SIGN1', `expected CBOR tag 18 (COSE_Sign1), found tag ${first.arg}`)
  }
  // The protected header and the payload are byte strings here, each scanned on its own with the
  // full limits below: at this level only the frame size bounds them.
  scanCbor(bytes, { ...limits, maxStringBytes: limits.maxBytes, allowedTopTags: OUTER_LIMITS.allowedTopTags })
  let offset = 0
  const tag = readHead(bytes, offset)
  if (tag.major !== 6 || tag.arg !== COSE_SIGN1_TAG) throw meshError('ERR_NOT_COSE_SIGN1', `expected CBOR tag 18 (COSE_Sign1), found major type ${tag.major}`)
  const array = readHead(bytes, tag.next)
  if (array.major !== 4 || array.arg !== 4) throw meshError('ERR_NOT_COSE_SIGN1', 'a COSE_Sign1 is an array of 4 items')
  offset = array.next
  const protectedBytes = readBstr(bytes, offset, 'protected header')
  offset = protectedBytes.next
  // The usual unprotected header is the empty map (a0): no second scan and decode for it.
  const unprotectedEnd = bytes[offset] === 0xa0 ? offset + 1 : scanCbor(bytes, limits, offset, false)
  const unprotectedHeader = unprotectedEnd === offset + 1 && bytes[offset] === 0xa0 ? new Map() : decodeCbor(bytes.subarray(offset, unprotectedEnd), limits)
  if (!(unprotectedHeader instanceof Map)) throw meshError('ERR_BAD_HEADER', 'the COSE unprotected header is not a map')
  const payload = readBstr(bytes, unprotectedEnd, 'payload')
  const signature = readBstr(bytes, payload.next, 'signature')

  const protectedHeader = protectedBytes.value.length === 0 ? new Map() : decodeCbor(protectedBytes.value, limits)
  if (!(protectedHeader instanceof Map)) throw meshError('ERR_BAD_HEADER', 'the COSE protected header is not a map')
  const alg = protectedHeader.get(HEADER_ALG)
  if (typeof alg !== 'number') throw meshError('ERR_BAD_HEADER', 'the COSE protected header has no alg (label 1)')
  if (!ACCEPTED_ALGS.includes(alg)) throw meshError('ERR_UNSUPPORTED_ALG', `COSE alg ${alg} is not accepted (iotmesh accepts Ed25519 -19 and EdDSA -8)`, { details: { alg } })
  if (unprotectedHeader.has(HEADER_ALG)) throw meshError('ERR_BAD_HEADER', 'alg must be in the protected header only (RFC 9052 §3.1)')
  // RFC 9052 §3: a label in both buckets should be refused (else the protected one wins); a reader
  // that looked in the other bucket first would see another kid or topic than the signer vouched for.
  for (const label of unprotectedHeader.keys()) {
    if (protectedHeader.has(label)) throw meshError('ERR_DUPLICATE_KEY', `the COSE header label ${String(label)} is in both the protected and the unprotected header (RFC 9052 §3)`)
  }

  return { bytes, protectedBytes: protectedBytes.value, protectedHeader, unprotectedHeader, payload: payload.value, signature: signature.value, alg }
}

function readBstr (bytes: Uint8Array, offset: number, what: string): { value: Uint8Array, next: number } {
  const head = readHead(bytes, offset)
  if (head.major !== 2) throw meshError('ERR_NOT_COSE_SIGN1', `the COSE_Sign1 ${what} is not a byte string`)
  return { value: bytes.subarray(head.next, head.next + head.arg), next: head.next + head.arg }
}

/** True when the signature holds over the exact received bytes. Never throws. */
export function verifySign1 (message: Sign1, publicKey: PublicKey, ed: Ed25519 = defaultEd25519): boolean {
  return ed.verify(message.signature, sigStructure(message.protectedBytes, message.payload), publicKey)
}

/** A short printable summary of a header map for people (`iotmesh inspect`). */
export function describeHeader (header: HeaderMap): Record<string, unknown> {
  const names: Record<string, string> = { 1: 'alg', 3: 'content type', 4: 'kid' }
  const out: Record<string, unknown> = {}
  for (const [label, value] of header) {
    out[names[String(label)] ?? String(label)] = value instanceof Uint8Array ? `h'${toHex(value)}'` : value
  }
  return out
}
