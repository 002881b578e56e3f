import {
  ALG_ED25519, DEFAULT_CBOR_LIMITS, HEADER_ALG, HEADER_CONTENT_TYPE, HEADER_KID, decodeCbor, decodeSign1, deviceIdFromBytes, deviceIdToBytes,
  encodeCbor, isMeshError, keyMatchesId, meshError, signSign1, validateFilter, verifySign1,
  type DeviceId, type Ed25519, type ErrorCode, type KeyPair, type PublicKey
} from '../../shared/index.js'
import { CHAIN_ELEMENT_BYTES } from './chain.js'

/**
 * A subscriber's declaration of interest: a COSE_Sign1 (RFC 9052 §4.2) that only the subscriber
 * can make, so that no relay can declare, replace or refresh another node's interest.
 *
 *   protected header = { 1 (alg): -19 (Ed25519, RFC 9864), 3 (content type): 65000, 4 (kid): subscriber id bytes }
 *   payload          = CBOR [version, [filter…], anchor, length]
 *
 * `version` is the subscriber's own, monotonic counter (a higher one replaces a lower one);
 * `anchor` is e_N of the version's hash chain and `length` its N (chain.ts, SEAD): what a
 * distance claim in INTEREST is checked against. The content type, a CoAP Content-Format in the
 * experimental range (RFC 7252 §12.3), keeps a declaration from ever being taken for a
 * telemetry frame or the other way round (their payloads differ too).
 */

export const DECLARATION_CONTENT_FORMAT = 65_000
/** Most filters in one declaration, and the longest filter (UTF-16 code units). */
export const MAX_FILTERS = 32
export const MAX_FILTER_LENGTH = 256
/** Largest declaration, in bytes. */
export const MAX_DECLARATION_BYTES = DEFAULT_CBOR_LIMITS.maxBytes

export interface Declaration {
  readonly subscriber: DeviceId
  readonly version: number
  readonly filters: readonly string[]
  readonly anchor: Uint8Array
  readonly length: number
}

/** Signs one version of our declaration. Throws ERR_BAD_ARGUMENT when peers would refuse it. */
export function signDeclaration (input: { keys: KeyPair, version: number, filters: readonly string[], anchor: Uint8Array, length: number, ed25519?: Ed25519 }): Uint8Array {
  const { keys, version, filters, anchor, length } = input
  checkDeclarable(filters)
  const bytes = signSign1({
    protectedHeader: new Map<number, unknown>([[HEADER_ALG, ALG_ED25519], [HEADER_CONTENT_TYPE, DECLARATION_CONTENT_FORMAT], [HEADER_KID, deviceIdToBytes(keys.id)]]),
    payload: encodeCbor([version, [...filters], anchor, length]),
    secretKey: keys.secretKey,
    ed25519: input.ed25519
  })
  if (bytes.length > MAX_DECLARATION_BYTES) throw meshError('ERR_BAD_ARGUMENT', `the declaration is ${bytes.length} bytes, over ${MAX_DECLARATION_BYTES}; subscribe to fewer or shorter filters`)
  return bytes
}

/** Throws ERR_BAD_ARGUMENT when a node with these filters could not declare them (peers would refuse the declaration). */
export function checkDeclarable (filters: readonly string[]): void {
  if (filters.length > MAX_FILTERS) throw meshError('ERR_BAD_ARGUMENT', `a node declares at most ${MAX_FILTERS} distinct filters, this one would have ${filters.length}; subscribe to fewer, wider filters`)
  const long = filters.find((f) => f.length > MAX_FILTER_LENGTH)
  if (long !== undefined) throw meshError('ERR_BAD_ARGUMENT', `a declared filter is at most ${MAX_FILTER_LENGTH} characters, ${JSON.stringify(long.slice(0, 40))}… has ${long.length}`)
  // Headers, version, anchor and signature take under 160 bytes; each filter its UTF-8 and a head.
  const bytes = filters.reduce((sum, f) => sum + Buffer.byteLength(f) + 3, 160)
  if (bytes > MAX_DECLARATION_BYTES) throw meshError('ERR_BAD_ARGUMENT', `these ${filters.length} filters make a declaration of about ${bytes} bytes, over ${MAX_DECLARATION_BYTES}; subscribe to fewer or shorter filters`)
}

export type Opened = { ok: true, declaration: Declaration } | { ok: false, code: ErrorCode }

/**
 * Checks a declaration claimed for `subscriber` at `version` with the key carried beside it:
 * shape, that the key derives to the subscriber id (ids are self-certifying, identity.ts), that
 * kid and version inside are the ones claimed, and the signature. Never throws.
 */
export function openDeclaration (bytes: Uint8Array, publicKey: PublicKey, claimed: { subscriber: DeviceId, version: number, length: number }, ed25519?: Ed25519): Opened {
  if (!keyMatchesId(publicKey, claimed.subscriber)) return { ok: false, code: 'ERR_WRONG_KEY' }
  let sign1
  let payload: unknown
  try {
    if (bytes.length > MAX_DECLARATION_BYTES) return { ok: false, code: 'ERR_BAD_DECLARATION' }
    sign1 = decodeSign1(bytes)
    payload = decodeCbor(sign1.payload, DEFAULT_CBOR_LIMITS)
  } catch (err) {
    return { ok: false, code: isMeshError(err) ? err.code : 'ERR_BAD_DECLARATION' }
  }
  const kid = sign1.protectedHeader.get(HEADER_KID)
  if (sign1.protectedHeader.get(HEADER_CONTENT_TYPE) !== DECLARATION_CONTENT_FORMAT || !(kid instanceof Uint8Array) || kid.length !== 16) return { ok: false, code: 'ERR_BAD_DECLARATION' }
  if (deviceIdFromBytes(kid) !== claimed.subscriber) return { ok: false, code: 'ERR_BAD_DECLARATION' }
  const declaration = parsePayload(claimed.subscriber, payload)
  if (declaration === undefined || declaration.version !== claimed.version || declaration.length !== claimed.length) return { ok: false, code: 'ERR_BAD_DECLARATION' }
  if (!verifySign1(sign1, publicKey, ed25519)) return { ok: false, code: 'ERR_BAD_SIGNATURE' }
  return { ok: true, declaration }
}

function parsePayload (subscriber: DeviceId, payload: unknown): Declaration | undefined {
  if (!Array.isArray(payload) || payload.length !== 4) return undefined
  const [version, filters, anchor, length] = payload as unknown[]
  if (!Number.isSafeInteger(version) || (version as number) < 0 || !Number.isSafeInteger(length) || (length as number) < 1) return undefined
  if (!(anchor instanceof Uint8Array) || anchor.length !== CHAIN_ELEMENT_BYTES) return undefined
  if (!Array.isArray(filters) || filters.length > MAX_FILTERS) return undefined
  for (const f of filters) {
    if (typeof f !== 'string' || f.length > MAX_FILTER_LENGTH) return undefined
    try { validateFilter(f) } catch { return undefined }
  }
  return { subscriber, version: version as number, filters: filters as string[], anchor: new Uint8Array(anchor), length: length as number }
}
