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

/** The smallest argument each head size may carry in preferred serialization (RFC 8949 §4.1, §4.2.1). */
const PREFERRED_MIN = [24, 0x100, 0x10000, 0x100000000]

/**
 * Reads the head of the item at `offset` (RFC 8949 §3): major type, argument, head length. Integers,
 * lengths and tags must be in preferred serialization (RFC 8949 §4.1, §4.2.1: the shortest head
 * that holds the argument), so that every value iotmesh accepts has one encoding; floats (major
 * type 7) keep the width they were sent with.
 */
export function readHead (bytes: Uint8Array, offset: number): { major: number, info: number, arg: number, next: number } {
  if (offset >= bytes.length) throw meshError('ERR_TRUNCATED', `CBOR input ends at byte ${offset} where an item should start`)
  const initial = bytes[offset] as number
  const major = initial >> 5
  const info = initial & 0x1f
  if (info < 24) return { major, info, arg: info, next: offset + 1 }
  return { major, info, arg: longArgument(bytes, offset, major, info), next: offset + 1 + (1 << (info - 24)) }
}

/** The argument of a head whose additional information is 24 or more (RFC 8949 §3); the head is 1 + 2^(info-24) bytes. */
function longArgument (bytes: Uint8Array, offset: number, major: number, info: number): number {
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
  if (major !== 7) {
    // RFC 8949 §3.3 simple values and floats keep their raw argument; ints above 2^53 are refused.
    if (arg > Number.MAX_SAFE_INTEGER) throw meshError('ERR_BAD_CBOR', `CBOR integer or length at byte ${offset} exceeds 2^53`)
    if (arg < (PREFERRED_MIN[info - 24] as number)) {
      throw meshError('ERR_NOT_PREFERRED', `the CBOR head at byte ${offset} spends ${size + 1} bytes on ${arg}: iotmesh accepts only the shortest form (RFC 8949 §4.2.1)`, { details: { offset, arg } })
    }
  }
  return arg
}

/**
 * True when bytes[start, end) is well-formed UTF-8 (RFC 3629 §4; RFC 8949 §3.1 requires it of
 * text strings): no overlong forms, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF.
 */
export function isUtf8 (bytes: Uint8Array, start = 0, end = bytes.length): boolean {
  let i = start
  while (i < end) {
    const b = bytes[i] as number
    if (b < 0x80) { i++; continue }
    let n: number
    let lo = 0x80
    let hi = 0xbf
    if (b >= 0xc2 && b <= 0xdf) n = 1
    else if (b >= 0xe0 && b <= 0xef) {
      n = 2
      if (b === 0xe0) lo = 0xa0 // overlong
      else if (b === 0xed) hi = 0x9f // surrogates
    } else if (b >= 0xf0 && b <= 0xf4) {
      n = 3
      if (b === 0xf0) lo = 0x90 // overlong
      else if (b === 0xf4) hi = 0x8f // above U+10FFFF
    } else return false
    if (i + n >= end) return false // the sequence runs past the string
    const second = bytes[i + 1] as number
    if (second < lo || second > hi) return false
    for (let k = 2; k <= n; k++) {
      const c = bytes[i + k] as number
      if (c < 0x80 || c > 0xbf) return false
    }
    i += n + 1
  }
  return true
}

/**
 * Walks one item without recursion; checks limits and the subset of CBOR iotmesh accepts; returns
 * the offset just past it. Besides the limits, refused with a stable code:
 *   - heads not in preferred serialization (ERR_NOT_PREFERRED, RFC 8949 §4.2.1; see readHead);
 *   - text strings that are not valid UTF-8 (ERR_BAD_UTF8, RFC 8949 §3.1 major type 3);
 *   - map keys that are not an integer or a text string (ERR_BAD_LABEL): every map iotmesh reads
 *     is a map of labels, COSE headers (RFC 9052 §3: label = int / tstr) or SenML records
 *     (RFC 8428 §6);
 *   - a key twice in one map (ERR_DUPLICATE_KEY): RFC 9052 §3 says such messages MUST NOT be
 *     processed, RFC 8949 §5.6 leaves it to the protocol. With preferred heads and only integer and
 *     text keys, two keys are equal exactly when their encoded bytes are.
 */
export function scanCbor (bytes: Uint8Array, limits: CborLimits = DEFAULT_CBOR_LIMITS, start = 0, requireEnd = true): number {
  if (bytes.length > limits.maxBytes) {
    throw meshError('ERR_FRAME_TOO_LARGE', `input is ${bytes.length} bytes, over the ${limits.maxBytes}-byte limit`, { details: { size: bytes.length, limit: limits.maxBytes } })
  }
  const s = scratch(limits.maxDepth, bytes.length - start)
  // The open containers, innermost last (s.*[0 .. depth-1]): items left in each, where its keys
  // start in s.keyStart/s.keyEnd (-1 for arrays and tags), its Set of keys when a large map.
  let depth = 0
  let keys = 0
  let offset = start
  let remaining = 1
  let base = -1
  let set: Set<string> | undefined
  for (;;) {
    while (remaining === 0) {
      if (depth === 0) {
        if (requireEnd && offset !== bytes.length) throw meshError('ERR_BAD_CBOR', `${bytes.length - offset} unexpected bytes after the CBOR item`)
        return offset
      }
      if (base >= 0) keys = base // a map closed: forget its keys
      depth--
      remaining = s.pending[depth] as number
      base = s.base[depth] as number
      set = s.sets[depth]
    }
    // In a map of n entries, 2n items remain at its start: a key when an even number remain.
    const isKey = base >= 0 && (remaining & 1) === 0
    remaining--
    const at = offset
    // The head (RFC 8949 §3), read inline: this loop runs once per item of every frame.
    if (offset >= bytes.length) throw meshError('ERR_TRUNCATED', `CBOR input ends at byte ${offset} where an item should start`)
    const initial = bytes[offset] as number
    const major = initial >> 5
    const info = initial & 0x1f
    let arg = info
    if (info < 24) offset++
    else {
      arg = longArgument(bytes, offset, major, info)
      offset += 1 + (1 << (info - 24))
    }
    if (isKey && major !== 0 && major !== 1 && major !== 3) {
      throw meshError('ERR_BAD_LABEL', `a CBOR map key at byte ${at} is of major type ${major}: map keys are labels, an integer or a text string (RFC 9052 §3, RFC 8428 §6)`)
    }
    switch (major) {
      case 0: case 1: break
      case 2: case 3:
        if (arg > limits.maxStringBytes) throw meshError('ERR_STRING_TOO_LONG', `a ${arg}-byte string is over the ${limits.maxStringBytes}-byte limit`)
        if (offset + arg > bytes.length) throw meshError('ERR_TRUNCATED', `CBOR input ends inside a ${arg}-byte string`)
        if (major === 3 && !isUtf8(bytes, offset, offset + arg)) {
          throw meshError('ERR_BAD_UTF8', `the CBOR text string at byte ${at} is not valid UTF-8 (RFC 8949 §3.1, RFC 3629 §4)`)
        }
        offset += arg
        break
      case 4: case 5: case 6: {
        const isTag = major === 6
        if (isTag && (at !== start || !limits.allowedTopTags.includes(arg))) {
          throw meshError('ERR_BAD_CBOR', `CBOR tag ${arg} is not accepted here`)
        }
        if (!isTag && arg > limits.maxItems) throw meshError('ERR_TOO_MANY_RECORDS', `a CBOR ${major === 4 ? 'array' : 'map'} of ${arg} entries is over the ${limits.maxItems}-entry limit`)
        if (depth + 1 > limits.maxDepth) throw meshError('ERR_TOO_DEEP', `CBOR nesting is deeper than ${limits.maxDepth}`)
        s.pending[depth] = remaining
        s.base[depth] = base
        s.sets[depth] = set
        depth++
        remaining = isTag ? 1 : major === 5 ? arg * 2 : arg
        base = major === 5 ? keys : -1
        set = major === 5 && arg > SMALL_MAP ? new Set() : undefined
        break
      }
      default: // major 7: RFC 8949 §3.3
        if (info < 24 && (arg < 20 || arg > 22)) throw meshError('ERR_BAD_CBOR', `CBOR simple value ${arg} is not accepted`)
        if (info === 24) throw meshError('ERR_BAD_CBOR', 'CBOR one-byte simple values are not accepted')
    }
    if (isKey) {
      if (set === undefined ? seenKey(bytes, s, base, keys, at, offset) : seenInSet(set, bytes, at, offset)) {
        throw meshError('ERR_DUPLICATE_KEY', `the CBOR map key at byte ${at} appears twice in one map (RFC 9052 §3, RFC 8949 §5.6)`, { details: { offset: at } })
      }
      s.keyStart[keys] = at
      s.keyEnd[keys] = offset
      keys++
    }
  }
}

/** Maps of up to this many entries are checked for duplicate keys by comparing bytes; larger ones through a Set. */
const SMALL_MAP = 16

interface Scratch { pending: Float64Array, base: Int32Array, sets: Array<Set<string> | undefined>, keyStart: Int32Array, keyEnd: Int32Array }
let shared: Scratch = newScratch(16, 256)

function newScratch (depth: number, keys: number): Scratch {
  return { pending: new Float64Array(depth), base: new Int32Array(depth), sets: new Array<undefined>(depth).fill(undefined), keyStart: new Int32Array(keys), keyEnd: new Int32Array(keys) }
}

/**
 * The scan's stacks, reused across calls: the scan is synchronous and never re-entered, and this
 * saves five allocations per call (a frame is scanned three times). A key takes at least one
 * byte, so `bytes` bounds the keys held at once.
 */
function scratch (maxDepth: number, bytes: number): Scratch {
  if (shared.pending.length < maxDepth || shared.keyStart.length < bytes) {
    shared = newScratch(Math.max(shared.pending.length, maxDepth), Math.max(shared.keyStart.length, bytes))
  }
  return shared
}

function seenKey (bytes: Uint8Array, s: Scratch, base: number, keys: number, at: number, end: number): boolean {
  const length = end - at
  for (let k = base; k < keys; k++) {
    const from = s.keyStart[k] as number
    if ((s.keyEnd[k] as number) - from !== length) continue
    let i = 0
    while (i < length && bytes[from + i] === bytes[at + i]) i++
    if (i === length) return true
  }
  return false
}

function seenInSet (set: Set<string>, bytes: Uint8Array, at: number, end: number): boolean {
  let key = ''
  for (let i = at; i < end; i++) key += String.fromCharCode(bytes[i] as number)
  if (set.has(key)) return true
  set.add(key)
  return false
}

/** The head of a CBOR item of `major` type with argument `length` (RFC 8949 §3, preferred serialization). */
export function cborHead (major: number, length: number): Uint8Array {
  const m = major << 5
  if (length < 24) return Uint8Array.of(m | length)
  if (length < 0x100) return Uint8Array.of(m | 24, length)
  if (length < 0x10000) return Uint8Array.of(m | 25, length >> 8, length & 0xff)
  return Uint8Array.of(m | 26, (length >>> 24) & 0xff, (length >> 16) & 0xff, (length >> 8) & 0xff, length & 0xff)
}
