import { Decoder } from 'cbor-x/decode'
import { Encoder } from 'cbor-x/encode'
import { meshError } from './errors.js'

/**
 * CBOR for untrusted bytes (RFC 8949).
 *
 * Every byte string from the network goes through `scanCbor` first: a non-recursive walk over the
 * item heads that enforces hard limits (size, nesting depth, string length, container length)
 * and the subset of CBOR iotmesh accepts (definite lengths only, no tags except where allowed,
 * integers within ±2^53, simple values false/true/null only). Only bytes that pass are handed
 * to cbor-x, so cbor-x never sees a shape that could make it throw, recurse deeply or allocate
 * a claimed length. cbor-x is configured for plain interoperable CBOR: no record/structure
 * extensions, no tag 64 on byte strings, maps decoded as `Map` so integer labels stay integers.
 *
 * `cbor-x/decode` and `cbor-x/encode` resolve (on Node) to cbor-x's pure-JS build: the optional
 * native string extractor (cbor-extract) is not used, so a fresh clone behaves the same whether or
 * not its install script ran (package.json `allowScripts` denies it; see README "Dependencies").
 * Elsewhere (browsers, bundlers) they resolve to decode.js and encode.js, and only the latter
 * exports Encoder: hence two imports.
 */

export interface CborLimits {
  /** Largest input accepted, in bytes. */
  maxBytes: number
  /** Deepest nesting of arrays, maps and tags. */
  maxDepth: number
  /** Longest text or byte string, in bytes. */
  maxStringBytes: number
  /** Most entries in one array or map. */
  maxItems: number
  /** Tags accepted, and only at the outermost level (COSE_Sign1 is tag 18). */
  allowedTopTags: readonly number[]
}

export const DEFAULT_CBOR_LIMITS: CborLimits = {
  maxBytes: 8192,
  maxDepth: 8,
  maxStringBytes: 1024,
  maxItems: 256,
  allowedTopTags: []
}

export const cborEncoder = new Encoder({
  useRecords: false,
  mapsAsObjects: false,
  tagUint8Array: false,
  structuredClone: false,
  pack: false,
  variableMapSize: true,
  useTag259ForMaps: false
} as ConstructorParameters<typeof Encoder>[0])

const decoder = new Decoder({
  useRecords: false,
  mapsAsObjects: false,
  structuredClone: false,
  // 64-bit integers as numbers: scanCbor has already refused any beyond 2^53.
  int64AsNumber: true
} as ConstructorParameters<typeof Decoder>[0])

/**
 * cbor-x writes every number outside the 32-bit range as a float64; RFC 8949 §3.1 (and any strict
 * decoder) wants integers as major types 0/1. So integers beyond 32 bits go to cbor-x as BigInt,
 * which it writes as uint64/nint.
 */
function integersAsCbor (value: unknown): unknown {
  if (typeof value === 'number') {
    return Number.isSafeInteger(value) && (value > 0xffffffff || value < -0x100000000) ? BigInt(value) : value
  }
  if (Array.isArray(value)) return value.map(integersAsCbor)
  if (value instanceof Map) return new Map([...value].map(([k, v]) => [integersAsCbor(k), integersAsCbor(v)]))
  return value
}

export function encodeCbor (value: unknown): Uint8Array {
  const out = cborEncoder.encode(integersAsCbor(value))
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength)
}

/** Scans and decodes one complete CBOR item; throws MeshError (ERR_BAD_CBOR, ERR_TRUNCATED, …). */
export function decodeCbor (bytes: Uint8Array, limits: CborLimits = DEFAULT_CBOR_LIMITS): unknown {
  scanCbor(bytes, limits)
  try {
    return decoder.decode(bytes)
  } catch (err) {
    throw meshError('ERR_BAD_CBOR', `CBOR decoding failed: ${(err as Error).message}`, { cause: err })
  }
}

/** Reads the head of the item at `offset` (RFC 8949 §3): major type, argument, head length. */
export function readHead (bytes: Uint8Array, offset: number): { major: number, info: number, arg: number, next: number } {
  if (offset >= bytes.length) throw meshError('ERR_TRUNCATED', `CBOR input ends at byte ${offset} where an item should start`)
  const initial = bytes[offset] as number
  const major = initial >> 5
  const info = initial & 0x1f
  if (info < 24) return { major, info, arg: info, next: offset + 1 }
  if (info > 27) {
    throw meshError('ERR_BAD_CBOR', info === 31
      ? `indefinite-length CBOR at byte ${offset} is not accepted (iotmesh reads definite lengths only)`
      : `reserved CBOR additional information ${info} at byte ${offset}`)
  }
  const size = 1 << (info - 24)
  if (offset + 1 + size > bytes.length) throw meshError('ERR_TRUNCATED', `CBOR input ends inside the head at byte ${offset}`)
  let arg = 0
  for (let i = 1; i <= size; i++) {
    arg = arg * 256 + (bytes[offset + i] as number)
  }
  // RFC 8949 §3.1 simple values and floats keep their raw argument; ints above 2^53 are refused.
  if (arg > Number.MAX_SAFE_INTEGER && major !== 7) throw meshError('ERR_BAD_CBOR', `CBOR integer or length at byte ${offset} exceeds 2^53`)
  return { major, info, arg, next: offset + 1 + size }
}

/** Walks one item without recursion; checks limits; returns the offset just past it. */
export function scanCbor (bytes: Uint8Array, limits: CborLimits = DEFAULT_CBOR_LIMITS, start = 0, requireEnd = true): number {
  if (bytes.length > limits.maxBytes) {
    throw meshError('ERR_FRAME_TOO_LARGE', `input is ${bytes.length} bytes, over the ${limits.maxBytes}-byte limit`, { details: { size: bytes.length, limit: limits.maxBytes } })
  }
  // `pending` holds how many items remain in each open container; depth = pending.length.
  const pending: number[] = []
  let offset = start
  let remaining = 1
  for (;;) {
    while (remaining === 0) {
      if (pending.length === 0) {
        if (requireEnd && offset !== bytes.length) throw meshError('ERR_BAD_CBOR', `${bytes.length - offset} unexpected bytes after the CBOR item`)
        return offset
      }
      remaining = pending.pop() as number
    }
    remaining--
    const at = offset
    const head = readHead(bytes, offset)
    offset = head.next
    switch (head.major) {
      case 0: case 1: break
      case 2: case 3:
        if (head.arg > limits.maxStringBytes) throw meshError('ERR_STRING_TOO_LONG', `a ${head.arg}-byte string is over the ${limits.maxStringBytes}-byte limit`)
        if (offset + head.arg > bytes.length) throw meshError('ERR_TRUNCATED', `CBOR input ends inside a ${head.arg}-byte string`)
        offset += head.arg
        break
      case 4: case 5: case 6: {
        const isTag = head.major === 6
        if (isTag && (at !== start || !limits.allowedTopTags.includes(head.arg))) {
          throw meshError('ERR_BAD_CBOR', `CBOR tag ${head.arg} is not accepted here`)
        }
        if (!isTag && head.arg > limits.maxItems) throw meshError('ERR_TOO_MANY_RECORDS', `a CBOR ${head.major === 4 ? 'array' : 'map'} of ${head.arg} entries is over the ${limits.maxItems}-entry limit`)
        if (pending.length + 1 > limits.maxDepth) throw meshError('ERR_TOO_DEEP', `CBOR nesting is deeper than ${limits.maxDepth}`)
        pending.push(remaining)
        remaining = isTag ? 1 : head.major === 5 ? head.arg * 2 : head.arg
        break
      }
      default: // major 7: RFC 8949 §3.3
        if (head.info < 24 && (head.arg < 20 || head.arg > 22)) throw meshError('ERR_BAD_CBOR', `CBOR simple value ${head.arg} is not accepted`)
        if (head.info === 24) throw meshError('ERR_BAD_CBOR', 'CBOR one-byte simple values are not accepted')
    }
  }
}

/** The head of a CBOR item of `major` type with argument `length` (RFC 8949 §3, preferred serialization). */
export function cborHead (major: number, length: number): Uint8Array {
  const m = major << 5
  if (length < 24) return Uint8Array.of(m | length)
  if (length < 0x100) return Uint8Array.of(m | 24, length)
  if (length < 0x10000) return Uint8Array.of(m | 25, length >> 8, length & 0xff)
  return Uint8Array.of(m | 26, (length >>> 24) & 0xff, (length >> 16) & 0xff, (length >> 8) & 0xff, length & 0xff)
}
