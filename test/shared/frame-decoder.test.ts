import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  DEFAULT_FRAME_LIMITS, MeshError, cborHead, concatBytes, decodeCbor, recordFromCbor, toHex, type FrameLimits, type SenmlRecord
} from '../../shared/index.js'
import { telemetryHeader } from '../../shared/cose.js'
import { decodePack } from '../../shared/frame-decoder.js'

/**
 * The frame's pack read straight from its CBOR (shared/frame-decoder.ts) against the generic path
 * it replaced in decodeFrame: decodeCbor (scan, then cbor-x), then the pack checks and
 * recordFromCbor. Same records for every input that passes, same code and message for every
 * refusal, over random CBOR built item by item (floats of all three widths, nested containers,
 * unknown and must-understand labels, wrong types under known labels).
 */
function reference (payload: Uint8Array, limits: FrameLimits): SenmlRecord[] {
  const pack = decodeCbor(payload, limits)
  if (!Array.isArray(pack) || pack.length === 0) throw new MeshError('ERR_BAD_SENML', 'the payload is not a non-empty SenML pack (a CBOR array of records)')
  if (pack.length > limits.maxRecords) throw new MeshError('ERR_TOO_MANY_RECORDS', `${pack.length} records are over the ${limits.maxRecords}-record limit`)
  return pack.map((map, index) => recordFromCbor(map, index))
}

function outcome (fn: () => SenmlRecord[]): string {
  try {
    return JSON.stringify(fn(), (_k, v: unknown) => v instanceof Uint8Array ? `h'${toHex(v)}'` : Object.is(v, -0) ? '-0' : typeof v === 'number' && !Number.isFinite(v) ? String(v) : v)
  } catch (err) {
    if (!(err instanceof MeshError)) throw err
    return `${err.code}: ${err.message}`
  }
}

const b = (...parts: Uint8Array[]): Uint8Array => concatBytes(...parts)
const u8 = (...xs: number[]): Uint8Array => Uint8Array.from(xs)
const enc = new TextEncoder()

/** Raw CBOR items, written by hand so that every width and shape appears, not only what cbor-x writes. */
const uint = fc.oneof(fc.integer({ min: 0, max: 30 }), fc.integer({ min: 0, max: 70_000 }), fc.maxSafeInteger().map(Math.abs), fc.constant(2 ** 53 - 1))
const scalarItem: fc.Arbitrary<Uint8Array> = fc.oneof(
  uint.map((n) => cborHeadLong(0, n)),
  uint.map((n) => cborHeadLong(1, n)),
  fc.integer({ min: 0, max: 0xffff }).map((bits) => u8(0xf9, bits >> 8, bits & 0xff)), // float16, NaN and ±Infinity among them
  fc.float().map((x) => { const v = new DataView(new ArrayBuffer(5)); v.setUint8(0, 0xfa); v.setFloat32(1, x); return new Uint8Array(v.buffer) }),
  fc.double().map((x) => { const v = new DataView(new ArrayBuffer(9)); v.setUint8(0, 0xfb); v.setFloat64(1, x); return new Uint8Array(v.buffer) }),
  fc.string({ unit: 'grapheme', maxLength: 30 }).map((s) => { const t = enc.encode(s); return b(cborHead(3, t.length), t) }),
  fc.stringMatching(/^[a-z][a-z0-9]{0,40}$/).map((s) => { const t = enc.encode(s); return b(cborHead(3, t.length), t) }),
  fc.uint8Array({ maxLength: 40 }).map((x) => b(cborHead(2, x.length), x)),
  fc.constantFrom(u8(0xf4), u8(0xf5), u8(0xf6))
)
const item: fc.Arbitrary<Uint8Array> = fc.letrec<{ item: Uint8Array }>((tie) => ({
  item: fc.oneof({ depthSize: 'small', withCrossShrink: true },
    scalarItem,
    fc.array(tie('item'), { maxLength: 3 }).map((xs) => b(cborHead(4, xs.length), ...xs)),
    fc.uniqueArray(fc.tuple(fc.integer({ min: -30, max: 30 }), tie('item')), { maxLength: 3, selector: ([k]) => k }).map((es) => b(cborHead(5, es.length), ...es.flatMap(([k, v]) => [label(k), v]))))
})).item
/** SenML labels (RFC 8428 §6), the "seq" extension, unknown ones and a must-understand one. */
const labels = fc.oneof(fc.integer({ min: -7, max: 9 }), fc.constantFrom('seq', 'bt', 'x', 'x_', 'seq_'))
const record = fc.uniqueArray(fc.tuple(labels, fc.oneof({ weight: 4, arbitrary: scalarItem }, { weight: 1, arbitrary: item })), { maxLength: 6, selector: ([k]) => k })
  .map((es) => b(cborHead(5, es.length), ...es.flatMap(([k, v]) => [label(k), v])))
/** Records of the right types under each label: mostly accepted. */
const numberItem = fc.oneof(uint.map((n) => cborHeadLong(0, n)), uint.map((n) => cborHeadLong(1, n)),
  fc.integer({ min: 0, max: 0x7bff }).map((bits) => u8(0xf9, bits >> 8, bits & 0xff)),
  fc.float({ noNaN: true, noDefaultInfinity: true }).map((x) => { const v = new DataView(new ArrayBuffer(5)); v.setUint8(0, 0xfa); v.setFloat32(1, x); return new Uint8Array(v.buffer) }),
  fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e12, max: 1e12 }).map((x) => { const v = new DataView(new ArrayBuffer(9)); v.setUint8(0, 0xfb); v.setFloat64(1, x); return new Uint8Array(v.buffer) }))
const nameItem = fc.stringMatching(/^[a-z][a-z0-9]{0,12}$/).map((x) => { const t = enc.encode(x); return b(cborHead(3, t.length), t) })
const typed: Record<string, fc.Arbitrary<Uint8Array>> = {
  '-1': uint.map((n) => cborHeadLong(0, n)), '-2': nameItem, '-3': numberItem, '-4': nameItem, '-5': numberItem, '-6': numberItem,
  0: nameItem, 1: nameItem, 2: numberItem, 3: scalarItem, 4: fc.constantFrom(u8(0xf4), u8(0xf5)), 5: numberItem, 6: numberItem, 7: numberItem,
  8: fc.uint8Array({ maxLength: 30 }).map((x) => b(cborHead(2, x.length), x)), seq: uint.map((n) => cborHeadLong(0, n))
}
const typedRecord = fc.uniqueArray(fc.constantFrom(...Object.keys(typed)), { maxLength: 5 })
  .chain((ks) => fc.tuple(...ks.map((k) => (typed[k] as fc.Arbitrary<Uint8Array>).map((v): [number | string, Uint8Array] => [k === 'seq' ? k : Number(k), v]))))
  .map((es) => b(cborHead(5, es.length), ...es.flatMap(([k, v]) => [label(k), v])))
const payload = fc.oneof(
  { weight: 6, arbitrary: fc.array(record, { maxLength: 5 }).map((rs) => b(cborHead(4, rs.length), ...rs)) },
  { weight: 6, arbitrary: fc.array(typedRecord, { minLength: 1, maxLength: 3 }).map((rs) => b(cborHead(4, rs.length), ...rs)) },
  { weight: 1, arbitrary: item },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 30 }) }
)

function label (k: number | string): Uint8Array {
  if (typeof k === 'string') { const t = enc.encode(k); return b(cborHead(3, t.length), t) }
  return k >= 0 ? cborHeadLong(0, k) : cborHeadLong(1, -1 - k)
}

/** cborHead, and the 8-byte head beyond 32 bits (RFC 8949 §3). */
function cborHeadLong (major: number, n: number): Uint8Array {
  if (n < 0x100000000) return cborHead(major, n)
  const v = new DataView(new ArrayBuffer(9))
  v.setUint8(0, (major << 5) | 27)
  v.setUint32(1, Math.floor(n / 0x100000000))
  v.setUint32(5, n >>> 0)
  return new Uint8Array(v.buffer)
}

describe('frame decoder (the pack read by hand)', () => {
  it('gives the records the generic path gave, and refuses what it refused, with the same code and message', () => {
    let packs = 0
    const tight: FrameLimits = { ...DEFAULT_FRAME_LIMITS, maxRecords: 2, maxStringBytes: 20 }
    fc.assert(fc.property(payload, fc.boolean(), (bytes, useTight) => {
      const limits = useTight ? tight : DEFAULT_FRAME_LIMITS
      const expected = outcome(() => reference(bytes, limits))
      expect(outcome(() => decodePack(bytes, limits))).toBe(expected)
      if (!expected.startsWith('ERR_')) packs++
    }), { numRuns: 4000 })
    expect(packs).toBeGreaterThan(800) // accepted packs are compared too, not only refusals
  })

  it('takes the plain telemetry header by its bytes, as decodeCbor reads it, and leaves any other to the generic path', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.nat(20), fc.nat(255), (kid, at, x) => {
      const bytes = b(u8(0xa2, 0x01, 0x32, 0x04, 0x50), kid)
      expect(telemetryHeader(bytes, DEFAULT_FRAME_LIMITS)).toEqual(decodeCbor(bytes))
      const other = new Uint8Array(bytes)
      other[at] = x
      if (at < 5 && x !== bytes[at]) expect(telemetryHeader(other, DEFAULT_FRAME_LIMITS)).toBeUndefined()
    }))
    expect(telemetryHeader(b(u8(0xa2, 0x01, 0x32, 0x04, 0x50), new Uint8Array(16)), { ...DEFAULT_FRAME_LIMITS, maxStringBytes: 8 })).toBeUndefined()
  })
})
