import { scanCbor, type CborLimits } from './cbor.js'
import { meshError } from './errors.js'
import { checkRecord, putRecordEntry, type SenmlRecord } from './senml.js'

/**
 * A frame's SenML pack (RFC 8428 §6) read straight from its CBOR, for the one shape a frame
 * carries: an array of maps of labels to scalars. The bytes pass `scanCbor` first, as before
 * (every strictness and limit of cbor.ts: preferred heads, UTF-8, labels, no duplicate keys,
 * sizes), so what is read here is well-formed; then records are built field by field with the
 * checks and codes of `recordFromCbor`, in the order it made them, without the generic cbor-x
 * decoding into Maps first. The result equals `decodeCbor` + `recordFromCbor`, refusals
 * included (test/shared/frame-decoder.test.ts, fast-check against that path). Why: on a
 * receiving node the generic decoding cost about as much as the Ed25519 verification (issue 15).
 */

const TEXT = new TextDecoder()
/** A container where a scalar belongs: refused by the field's check like any other wrong type. */
const NOT_A_SCALAR: unknown = Object.freeze({})

interface Cursor { bytes: Uint8Array, view: DataView, at: number }

/** The argument of the head at the cursor (RFC 8949 §3); the scan has checked it is well-formed. */
function head (c: Cursor): { major: number, info: number, arg: number } {
  const initial = c.bytes[c.at++] as number
  const major = initial >> 5
  const info = initial & 0x1f
  if (info < 24) return { major, info, arg: info }
  const size = 1 << (info - 24)
  let arg = 0
  for (let i = 0; i < size; i++) arg = arg * 256 + (c.bytes[c.at + i] as number)
  c.at += size
  return { major, info, arg }
}

/** Past one complete item, whatever it holds. */
function skip (c: Cursor): void {
  let remaining = 1
  while (remaining > 0) {
    remaining--
    const { major, arg } = head(c)
    if (major === 2 || major === 3) c.at += arg
    else if (major === 4) remaining += arg
    else if (major === 5) remaining += 2 * arg
    else if (major === 6) remaining += 1
  }
}

/** RFC 8949 §3.3, Appendix D: a half-precision float. */
function half (bits: number): number {
  const exponent = (bits >> 10) & 0x1f
  const fraction = bits & 0x3ff
  const sign = (bits & 0x8000) !== 0 ? -1 : 1
  if (exponent === 0) return sign * fraction * 2 ** -24
  if (exponent === 31) return fraction === 0 ? sign * Infinity : Number.NaN
  return sign * (1024 + fraction) * 2 ** (exponent - 25)
}

/** A scalar (number, text, bytes, false/true/null) as cbor-x decodes it; NOT_A_SCALAR (skipped) for a container. */
function scalar (c: Cursor): unknown {
  const start = c.at
  const { major, info, arg } = head(c)
  switch (major) {
    case 0: return arg
    case 1: return -1 - arg
    case 2: c.at += arg; return c.bytes.subarray(c.at - arg, c.at)
    case 3: c.at += arg; return TEXT.decode(c.bytes.subarray(c.at - arg, c.at))
    case 7:
      if (info === 20) return false
      if (info === 21) return true
      if (info === 22) return null
      if (info === 25) return half(arg)
      if (info === 26) return c.view.getFloat32(start + 1)
      return c.view.getFloat64(start + 1)
    default:
      c.at = start
      skip(c)
      return NOT_A_SCALAR
  }
}

/** Decodes the payload of a plain frame into its records; throws as `decodeCbor` + `recordFromCbor` did. */
export function decodePack (payload: Uint8Array, limits: CborLimits & { maxRecords: number }): SenmlRecord[] {
  scanCbor(payload, limits)
  const c: Cursor = { bytes: payload, view: new DataView(payload.buffer, payload.byteOffset, payload.byteLength), at: 0 }
  const top = head(c)
  if (top.major !== 4 || top.arg === 0) throw meshError('ERR_BAD_SENML', 'the payload is not a non-empty SenML pack (a CBOR array of records)')
  if (top.arg > limits.maxRecords) throw meshError('ERR_TOO_MANY_RECORDS', `${top.arg} records are over the ${limits.maxRecords}-record limit`)
  const records: SenmlRecord[] = []
  for (let index = 0; index < top.arg; index++) {
    const map = head(c)
    if (map.major !== 5) throw meshError('ERR_BAD_SENML', `SenML record ${index} is not a CBOR map`)
    const record: Record<string, unknown> = {}
    for (let i = 0; i < map.arg; i++) {
      const key = head(c)
      let label: number | string
      if (key.major === 3) {
        c.at += key.arg
        label = TEXT.decode(payload.subarray(c.at - key.arg, c.at))
      } else label = key.major === 0 ? key.arg : -1 - key.arg // the scan let only integers and text through as keys
      putRecordEntry(record, label, scalar(c), index)
    }
    records.push(checkRecord(record as SenmlRecord, index))
  }
  return records
}
