import { meshError } from './errors.js'
import { ALG_ED25519, COSE_SIGN1_TAG, HEADER_ALG, HEADER_KID } from './cose.js'
import type { CborLimits } from './cbor.js'
import { deviceIdToBytes, type KeyPair } from './identity.js'
import { SENML_LABELS, type SenmlRecord } from './senml.js'

/**
 * The plain telemetry frame (frame.ts) written by hand, for its one fixed shape: a COSE_Sign1
 * (RFC 9052 §4.2) whose protected header is { 1: -19, 4: kid } or { 1: -19, 4: kid, "tp": topic },
 * whose unprotected header is {}, and whose payload is a SenML pack (RFC 8428 §6) of records
 * already validated (`checkedRecord`). Byte for byte what the generic path (cbor-x through
 * `encodeCbor`, then `signSign1`) writes for the same input: preferred serialization (RFC 8949
 * §4.2.1) for every head, map entries in the order SENML_LABELS lists the fields, integers up to
 * ±2^53 as integers (major types 0/1), every other number as a float64, `-0` as the integer 0.
 * `test/shared/frame-encoder.test.ts` checks the equality over random packs with fast-check.
 *
 * Why: on a publishing node the generic path (a Map per record, cbor-x, a copy of every part,
 * a parse of the result) cost several times the Ed25519 signature itself (issue 15, README
 * "One hop against the floor"). Encrypted frames keep the generic path.
 */

type Field = keyof SenmlRecord
const FIELDS = Object.keys(SENML_LABELS) as Field[]
const SEQ_LABEL = Uint8Array.of(0x63, 0x73, 0x65, 0x71) // text(3) "seq"
const TOPIC_LABEL = Uint8Array.of(0x62, 0x74, 0x70) // text(2) "tp"
const TEXT = new TextEncoder()

/** A growable output buffer with the few CBOR writers the frame needs. */
class Writer {
  buf = new Uint8Array(1024)
  view = new DataView(this.buf.buffer)
  pos = 0

  room (n: number): void {
    if (this.pos + n <= this.buf.length) return
    const next = new Uint8Array(Math.max(2 * this.buf.length, this.pos + n))
    next.set(this.buf.subarray(0, this.pos))
    this.buf = next
    this.view = new DataView(next.buffer)
  }

  /** RFC 8949 §3: a head in preferred serialization (§4.2.1), arguments up to 2^53. */
  head (major: number, arg: number): void {
    this.room(9)
    const m = major << 5
    const b = this.buf
    if (arg < 24) b[this.pos++] = m | arg
    else if (arg < 0x100) { b[this.pos++] = m | 24; b[this.pos++] = arg }
    else if (arg < 0x10000) { b[this.pos++] = m | 25; this.view.setUint16(this.pos, arg); this.pos += 2 } else if (arg < 0x100000000) { b[this.pos++] = m | 26; this.view.setUint32(this.pos, arg); this.pos += 4 } else {
      b[this.pos++] = m | 27
      this.view.setUint32(this.pos, Math.floor(arg / 0x100000000))
      this.view.setUint32(this.pos + 4, arg >>> 0)
      this.pos += 8
    }
  }

  /** As cbor-x with `integersAsCbor` (cbor.ts): safe integers as integers, everything else as a float64. */
  number (value: number): void {
    if (Number.isSafeInteger(value)) {
      if (value >= 0) this.head(0, value) // -0 too, as cbor-x writes it
      else this.head(1, -1 - value)
      return
    }
    this.room(9)
    this.buf[this.pos++] = 0xfb
    this.view.setFloat64(this.pos, value)
    this.pos += 8
  }

  bytes (major: number, value: Uint8Array): void {
    this.head(major, value.length)
    this.raw(value)
  }

  raw (value: Uint8Array): void {
    this.room(value.length)
    this.buf.set(value, this.pos)
    this.pos += value.length
  }

  /** UTF-8 (well-formed: the text fields were checked for lone surrogates before). */
  text (value: string): void {
    let ascii = value.length < 24
    for (let i = 0; ascii && i < value.length; i++) ascii = value.charCodeAt(i) < 0x80
    if (ascii) {
      this.room(1 + value.length)
      const b = this.buf
      b[this.pos++] = 0x60 | value.length
      for (let i = 0; i < value.length; i++) b[this.pos++] = value.charCodeAt(i)
      return
    }
    this.bytes(3, TEXT.encode(value))
  }

  value (value: unknown): void {
    if (typeof value === 'number') this.number(value)
    else if (typeof value === 'string') this.text(value)
    else if (typeof value === 'boolean') { this.room(1); this.buf[this.pos++] = value ? 0xf5 : 0xf4 } else this.bytes(2, value as Uint8Array)
  }

  take (): Uint8Array {
    const out = this.buf.slice(0, this.pos)
    this.pos = 0
    return out
  }
}

/** One writer, reused: encoding is synchronous and never re-entered. */
const out = new Writer()

/** The payload: a CBOR array of records, each a map of its defined fields in SENML_LABELS order (RFC 8428 §6). */
export function encodePack (pack: readonly SenmlRecord[]): Uint8Array {
  out.head(4, pack.length)
  for (const record of pack) {
    let size = 0
    for (const field of FIELDS) if (record[field] !== undefined) size++
    out.head(5, size)
    for (const field of FIELDS) {
      const value = record[field]
      if (value === undefined) continue
      const label = SENML_LABELS[field]
      if (typeof label === 'number') out.number(label)
      else out.raw(SEQ_LABEL)
      out.value(value)
    }
  }
  return out.take()
}

/** Protected headers of plain telemetry, per key pair: the same bytes for every frame it signs. */
const telemetryHeaders = new WeakMap<KeyPair, { id: string, bytes: Uint8Array }>()

/** The protected header (RFC 9052 §3): { 1 (alg): -19, 4 (kid): id bytes [, "tp": topic] }. */
export function encodeProtected (keys: KeyPair, topic: string | undefined): Uint8Array {
  if (topic === undefined) {
    const cached = telemetryHeaders.get(keys)
    if (cached !== undefined && cached.id === keys.id) return cached.bytes
  }
  const kid = deviceIdToBytes(keys.id)
  out.head(5, topic === undefined ? 2 : 3)
  out.number(HEADER_ALG)
  out.number(ALG_ED25519)
  out.number(HEADER_KID)
  out.bytes(2, kid)
  if (topic !== undefined) {
    out.raw(TOPIC_LABEL)
    out.text(topic)
  }
  const bytes = out.take()
  if (topic === undefined) telemetryHeaders.set(keys, { id: keys.id, bytes })
  return bytes
}

const SIG_PREFIX = Uint8Array.of(0x84, 0x6a, ...TEXT.encode('Signature1'))

/** RFC 9052 §4.4: Sig_structure = ["Signature1", body_protected, external_aad (empty), payload]. */
export function sigStructureOf (protectedBytes: Uint8Array, payload: Uint8Array): Uint8Array {
  out.raw(SIG_PREFIX)
  out.bytes(2, protectedBytes)
  out.head(2, 0)
  out.bytes(2, payload)
  return out.take()
}

/** The tagged COSE_Sign1: #6.18([ bstr protected, {}, bstr payload, bstr signature ]). */
export function encodeSign1 (protectedBytes: Uint8Array, payload: Uint8Array, signature: Uint8Array): Uint8Array {
  out.head(6, COSE_SIGN1_TAG)
  out.head(4, 4)
  out.bytes(2, protectedBytes)
  out.head(5, 0)
  out.bytes(2, payload)
  out.bytes(2, signature)
  return out.take()
}

/** Strings and byte strings a receiver's scan refuses (cbor.ts `scanCbor`: ERR_STRING_TOO_LONG), refused before signing. */
export function checkStringLengths (pack: readonly SenmlRecord[], limits: CborLimits): void {
  for (const record of pack) {
    for (const field of FIELDS) {
      const value = record[field]
      const length = typeof value === 'string' ? utf8Length(value) : value instanceof Uint8Array ? value.length : 0
      if (length > limits.maxStringBytes) throw meshError('ERR_STRING_TOO_LONG', `a ${length}-byte string is over the ${limits.maxStringBytes}-byte limit`)
    }
  }
}

function utf8Length (value: string): number {
  let n = 0
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if (c < 0x80) n += 1
    else if (c < 0x800) n += 2
    else if ((c & 0xfc00) === 0xd800) { n += 4; i++ } else n += 3 // a pair (lone surrogates were refused before)
  }
  return n
}
