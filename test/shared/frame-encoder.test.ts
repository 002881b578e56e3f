import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  ALG_ED25519, DEFAULT_FRAME_LIMITS, HEADER_ALG, HEADER_KID, MeshError, checkPack, decodeFrame, deviceIdToBytes,
  encodeCbor, encodeFrame, recordFromCbor, recordToCbor, signFrame, signSign1, toHex, type EncodeFrameInput, type SenmlPack, type SenmlRecord
} from '../../shared/index.js'
import { checkDeviceTopic } from '../../shared/topics.js'
import { seededKeys } from './support.js'

/**
 * The hand-written encoder of plain frames (shared/frame-encoder.ts) against the generic path it
 * replaced: cbor-x through encodeCbor, then signSign1 (frame.ts before issue 15's change, kept
 * here as the reference). Ed25519 is deterministic (RFC 8032 §5.1.6), so the same input must give
 * the same bytes, signature included; and the same refusals, with the same codes.
 */
function referenceFrame (input: EncodeFrameInput): Uint8Array {
  const { keys, seq, records } = input
  if (!Number.isSafeInteger(seq) || seq < 0) throw new MeshError('ERR_BAD_ARGUMENT', 'seq')
  if (records.length === 0) throw new MeshError('ERR_BAD_SENML', 'empty')
  if (records.length > DEFAULT_FRAME_LIMITS.maxRecords) throw new MeshError('ERR_TOO_MANY_RECORDS', 'records')
  const first = records[0] as SenmlRecord
  const time = input.time ?? first.bt ?? Date.now() / 1000
  const pack: SenmlPack = [{ ...first, bt: time, seq }, ...records.slice(1)]
  const maps = pack.map(recordToCbor)
  maps.forEach((map, index) => recordFromCbor(map, index))
  checkPack(pack, time)
  const payload = encodeCbor(maps)
  const protectedHeader = new Map<number | string, unknown>([[HEADER_ALG, ALG_ED25519], [HEADER_KID, deviceIdToBytes(keys.id)]])
  if (input.topic !== undefined && input.topic !== 'telemetry') protectedHeader.set('tp', checkDeviceTopic(input.topic))
  const frame = signSign1({ protectedHeader, payload, secretKey: keys.secretKey })
  if (frame.length > DEFAULT_FRAME_LIMITS.maxBytes) throw new MeshError('ERR_FRAME_TOO_LARGE', 'size')
  decodeFrame(frame) // what the generic signFrame parsed (and refused: strings over 1,024 bytes)
  return frame
}

const keys = seededKeys(7)

/** Numbers at every boundary of CBOR's integer heads and of cbor-x's number paths. */
const edgeNumbers = [0, -0, 1, 23, 24, 255, 256, 65_535, 65_536, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 2 ** 60,
  -1, -24, -25, -256, -257, -65_536, -65_537, -(2 ** 31), -(2 ** 31) - 1, -(2 ** 32), -(2 ** 32) - 1, -(2 ** 53) + 1, -(2 ** 53),
  0.5, -0.5, 21.37, 1e300, -1e-300, 5e-324, 1_700_000_000.123]
const number = fc.oneof(fc.constantFrom(...edgeNumbers), fc.integer(), fc.maxSafeInteger(), fc.double({ noNaN: true, noDefaultInfinity: true }))
const text = fc.oneof(fc.string({ maxLength: 30 }), fc.string({ unit: 'grapheme', maxLength: 40 }), fc.stringMatching(/^[a-z][a-z0-9:._-]{0,70}$/))
const bytes = fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ minLength: 1000, maxLength: 1100 }).map((b) => Buffer.from(b)))

/** Records with any subset of the SenML fields (RFC 8428 §4.1), values of the right type and, sometimes, of the wrong one. */
const record: fc.Arbitrary<SenmlRecord> = fc.record({
  bver: fc.oneof(fc.nat(), number), bn: text, bt: number, bu: text, bv: number, bs: number,
  n: text, u: text, v: number, vs: text, vb: fc.boolean(), s: number, t: number, ut: number, vd: bytes,
  seq: fc.nat()
}, { requiredKeys: [] }).map((r) => r as SenmlRecord)
const valueRecord = fc.record({ n: fc.stringMatching(/^[a-z][a-z0-9]{0,8}$/), u: fc.constantFrom('Cel', '%RH', 'V', undefined), v: number }, { requiredKeys: ['n', 'v'] })
  .map((r) => (r.u === undefined ? { n: r.n, v: r.v } : r) as SenmlRecord)

const input = fc.record({
  seq: fc.oneof(fc.nat(), fc.constantFrom(2 ** 32, 2 ** 53 - 1)),
  time: fc.oneof(fc.constant(undefined), fc.constantFrom(1_700_000_000, 1_700_000_000.25, 0, -0), fc.double({ min: -8e12, max: 8e12, noNaN: true })),
  records: fc.oneof(fc.array(valueRecord, { minLength: 1, maxLength: 40 }), fc.array(record, { minLength: 1, maxLength: 4 })),
  topic: fc.constantFrom(undefined, 'telemetry', 'events/door', 'status', 'a/b_c-d.e')
}).map((x) => ({
  keys,
  seq: x.seq,
  records: x.records,
  // Without a time or a first bt the frame takes the clock's: the two paths would differ by when they ran.
  ...(x.time === undefined && x.records[0]?.bt === undefined ? { time: 1_700_000_000.5 } : x.time === undefined ? {} : { time: x.time }),
  ...(x.topic === undefined ? {} : { topic: x.topic })
}))

function outcome (fn: () => Uint8Array): string {
  try {
    return toHex(fn())
  } catch (err) {
    if (!(err instanceof MeshError)) throw err
    return err.code
  }
}

describe('frame encoder (plain frames by hand)', () => {
  it('writes the bytes the generic cbor-x path wrote, and refuses what it refused, with the same code', () => {
    let frames = 0
    fc.assert(fc.property(input, (x) => {
      const expected = outcome(() => referenceFrame(x))
      expect(outcome(() => encodeFrame(x))).toBe(expected)
      expect(outcome(() => signFrame(x).bytes)).toBe(expected)
      if (!expected.startsWith('ERR_')) frames++
    }), { numRuns: 1500 })
    expect(frames).toBeGreaterThan(300) // most inputs make a frame: the comparison is not only of refusals
  })

  it('gives the frame as decodeFrame reads it back (signFrame no longer parses its own frame)', () => {
    fc.assert(fc.property(input, (x) => {
      let frame
      try { frame = signFrame(x) } catch { return }
      const decoded = decodeFrame(frame.bytes)
      // Views by content: cbor-x leaves its own `dataView` on a byte string it decoded (decodeFrame's payload).
      const plain = (f: typeof frame): unknown => ({ ...f, protectedBytes: toHex(f.protectedBytes), payload: toHex(f.payload), signature: toHex(f.signature), bytes: toHex(f.bytes) })
      expect(plain(frame)).toEqual(plain(decoded))
      for (const [a, b] of [[frame.records, decoded.records], [[frame.time, frame.seq], [decoded.time, decoded.seq]]]) {
        expect(JSON.stringify(a, (_k, v: unknown) => Object.is(v, -0) ? '-0' : v)).toBe(JSON.stringify(b, (_k, v: unknown) => Object.is(v, -0) ? '-0' : v))
      }
    }), { numRuns: 800 })
  })

  it('refuses before signing a string the receivers refuse (over 1,024 bytes), which encodeFrame once signed', () => {
    const records: SenmlRecord[] = [{ n: 'blob', vd: new Uint8Array(1025) }]
    expect(() => encodeFrame({ keys, seq: 1, time: 1_700_000_000, records })).toThrow(expect.objectContaining({ code: 'ERR_STRING_TOO_LONG' }))
    expect(() => signFrame({ keys, seq: 1, time: 1_700_000_000, records })).toThrow(expect.objectContaining({ code: 'ERR_STRING_TOO_LONG' }))
    expect(encodeFrame({ keys, seq: 1, time: 1_700_000_000, records: [{ n: 'blob', vd: new Uint8Array(1024) }] }).length).toBeGreaterThan(1024)
  })
})
