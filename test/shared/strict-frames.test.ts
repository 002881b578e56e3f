import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  MAX_TIME_SECONDS, Verifier, cborHead, concatBytes, decodeFrame, defaultEd25519, deviceIdToBytes, encodeCbor, encodeFrame,
  frameReadings, packToJson, sigStructure, type KeyPair
} from '../../shared/index.js'
import { codeOf, seededKeys } from './support.js'

/**
 * Strict input at decode (issue 10): validly signed frames that are malformed in ways a lenient
 * decoder would let through. Each is refused by decodeFrame, and so by the one Verifier that the
 * mesh router and the gateway's ingest both use, before anything is delivered or relayed.
 */

const keys = seededKeys(1)
const T = 1_700_000_000
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)
const int = (n: number): Uint8Array => encodeCbor(n)
const text = (content: Uint8Array | string): Uint8Array => {
  const bytes = typeof content === 'string' ? utf8(content) : content
  return concatBytes(cborHead(3, bytes.length), bytes)
}
const bstr = (content: Uint8Array): Uint8Array => concatBytes(cborHead(2, content.length), content)
/** A map from encoded keys and values, in order, duplicates and all. */
const map = (...entries: Array<[Uint8Array, Uint8Array]>): Uint8Array => concatBytes(cborHead(5, entries.length), ...entries.flat())
const array = (...items: Uint8Array[]): Uint8Array => concatBytes(cborHead(4, items.length), ...items)

const ALG: [Uint8Array, Uint8Array] = [int(1), int(-19)]
const kid = (k: KeyPair = keys): [Uint8Array, Uint8Array] => [int(4), bstr(deviceIdToBytes(k.id))]
const header = (...entries: Array<[Uint8Array, Uint8Array]>): Uint8Array => map(...entries)
const protectedOk = (): Uint8Array => header(ALG, kid())
/** A first SenML record: bt, seq, n, v (RFC 8428 §6 labels -3, 0, 2 and the "seq" text label). */
const record = (...extra: Array<[Uint8Array, Uint8Array]>): Uint8Array => map([int(-3), int(T)], [text('seq'), int(1)], [int(0), text('temp')], [int(2), int(1)], ...extra)

interface Parts { protectedBytes?: Uint8Array, unprotected?: Uint8Array, payload?: Uint8Array, signer?: KeyPair, tag?: Uint8Array, payloadHead?: Uint8Array }

/**
 * A COSE_Sign1 assembled by hand (RFC 9052 §4.2) and validly signed over the exact bytes
 * (RFC 9052 §4.4): only the part under test is wrong.
 */
function sign1 (parts: Parts = {}): Uint8Array {
  const protectedBytes = parts.protectedBytes ?? protectedOk()
  const payload = parts.payload ?? array(record())
  const signature = defaultEd25519.sign(sigStructure(protectedBytes, payload), (parts.signer ?? keys).secretKey)
  return concatBytes(
    parts.tag ?? Uint8Array.of(0xd2), Uint8Array.of(0x84),
    bstr(protectedBytes), parts.unprotected ?? Uint8Array.of(0xa0),
    parts.payloadHead ?? cborHead(2, payload.length), payload,
    bstr(signature))
}

/** What the one Verifier says of a frame from a known signer: 'accepted', or the refusal's code. */
function verdict (bytes: Uint8Array): string {
  const verifier = new Verifier()
  verifier.learnKey(keys.publicKey)
  const decoded = verifier.decode(bytes)
  if (!decoded.ok) return decoded.refusal.code
  const admission = verifier.admit(decoded.frame)
  return admission.verdict === 'refused' ? admission.code : admission.verdict
}

function refused (bytes: Uint8Array, code: string): void {
  expect(codeOf(() => decodeFrame(bytes))).toBe(code)
  expect(verdict(bytes)).toBe(code)
}

describe('the hand assembler', () => {
  it('makes a frame that decodes and verifies (so each case below fails only where meant to)', () => {
    expect(verdict(sign1())).toBe('accepted')
    expect(decodeFrame(sign1())).toMatchObject({ origin: keys.id, seq: 1, time: T, records: [{ bt: T, seq: 1, n: 'temp', v: 1 }] })
  })
})

describe('duplicate map keys in a validly signed frame (RFC 9052 §3: MUST NOT be processed): ERR_DUPLICATE_KEY', () => {
  const other = seededKeys(2)
  it.each([
    ['alg twice in the protected header (-7, then -19: the last one wins in a lenient decoder)', { protectedBytes: header([int(1), int(-7)], kid(), ALG) }],
    ['kid twice (another device\'s, then ours)', { protectedBytes: header(ALG, kid(other), kid()) }],
    ['the topic twice', { protectedBytes: header(ALG, kid(), [text('tp'), text('events/door')], [text('tp'), text('telemetry')]) }],
    ['a label twice in the unprotected header', { unprotected: map([int(5), bstr(new Uint8Array(12))], [int(5), bstr(new Uint8Array(12))]) }],
    ['a key twice in a map inside the unprotected header', { unprotected: map([int(99), map([int(1), int(0)], [int(1), int(1)])]) }],
    ['seq twice in the first record', { payload: array(record([text('seq'), int(2)])) }],
    ['bt twice', { payload: array(record([int(-3), int(T + 3600)])) }],
    ['n twice', { payload: array(record([int(0), text('hum')])) }],
    ['v twice', { payload: array(record([int(2), int(1000)])) }],
    ['u twice, in a later record', { payload: array(record(), map([int(0), text('hum')], [int(1), text('%RH')], [int(1), text('Cel')], [int(2), int(40)])) }],
    // RFC 9052 §3 across the two buckets: another device's kid beside the signed one, and a topic.
    ['kid in both headers (another device\'s unprotected)', { unprotected: map(kid(other)) }],
    ['the topic in both headers', { protectedBytes: header(ALG, kid(), [text('tp'), text('events/door')]), unprotected: map([text('tp'), text('telemetry')]) }]
  ])('%s', (_what, parts: Parts) => {
    refused(sign1(parts), 'ERR_DUPLICATE_KEY')
  })
})

describe('invalid UTF-8 in a validly signed frame (RFC 8949 §3.1): ERR_BAD_UTF8', () => {
  const bad = Uint8Array.of(0x61, 0xed, 0xa0, 0x80) // "a" and a UTF-8-encoded surrogate half
  it.each([
    ['a string value (vs)', { payload: array(map([int(-3), int(T)], [text('seq'), int(1)], [int(0), text('note')], [int(3), text(bad)])) }],
    ['a unit', { payload: array(record([int(1), text(Uint8Array.of(0xc0, 0xaf))])) }],
    ['a name', { payload: array(map([int(-3), int(T)], [text('seq'), int(1)], [int(0), text(Uint8Array.of(0x74, 0xff))], [int(2), int(1)])) }],
    ['the "seq" label', { payload: array(map([int(-3), int(T)], [text(Uint8Array.of(0x73, 0x65, 0x71, 0x80)), int(1)], [text('seq'), int(1)], [int(2), int(1)])) }],
    ['the topic in the protected header', { protectedBytes: header(ALG, kid(), [text('tp'), text(Uint8Array.of(0x65, 0xf5))]) }],
    ['a text value in the unprotected header', { unprotected: map([int(99), text(bad)]) }]
  ])('%s', (_what, parts: Parts) => {
    refused(sign1(parts), 'ERR_BAD_UTF8')
  })
})

describe('labels that are neither integers nor text (RFC 9052 §3, RFC 8428 §6): ERR_BAD_LABEL', () => {
  it.each([
    ['alg under the float label 1.0 (a lenient decoder reads it as label 1)', { protectedBytes: header([Uint8Array.of(0xf9, 0x3c, 0x00), int(-19)], kid()) }],
    ['kid under the float label 4.0', { protectedBytes: header(ALG, [Uint8Array.of(0xfa, 0x40, 0x80, 0x00, 0x00), bstr(deviceIdToBytes(keys.id))]) }],
    ['a byte-string label in the unprotected header', { unprotected: map([bstr(Uint8Array.of(4)), int(0)]) }],
    ['v under the float label 2.0 in a SenML record', { payload: array(map([int(-3), int(T)], [text('seq'), int(1)], [int(0), text('x')], [Uint8Array.of(0xf9, 0x40, 0x00), int(1)])) }],
    ['an array label in a SenML record', { payload: array(record([array(int(2)), int(1)])) }],
    ['a boolean label in a SenML record', { payload: array(record([Uint8Array.of(0xf5), int(1)])) }]
  ])('%s', (_what, parts: Parts) => {
    refused(sign1(parts), 'ERR_BAD_LABEL')
  })
})

describe('heads not in preferred serialization (RFC 8949 §4.2.1): ERR_NOT_PREFERRED', () => {
  const protectedBytes = protectedOk()
  const payload = array(record())
  it.each([
    // Outside the signed bytes: a lenient decoder accepts these, and the signature still verifies.
    ['the payload\'s length in a two-byte head', { payloadHead: Uint8Array.of(0x59, 0x00, payload.length) }],
    ['tag 18 in a one-byte argument (d8 12)', { tag: Uint8Array.of(0xd8, 0x12) }],
    // Inside them: one reading, many encodings.
    ['seq 1 in a one-byte argument', { payload: array(map([int(-3), int(T)], [text('seq'), Uint8Array.of(0x18, 0x01)], [int(0), text('x')], [int(2), int(1)])) }],
    ['bt in an eight-byte argument', { payload: array(map([int(-3), Uint8Array.of(0x1b, 0, 0, 0, 0, 0x65, 0x53, 0xf1, 0x00)], [text('seq'), int(1)], [int(0), text('x')], [int(2), int(1)])) }],
    ['a negative label in a one-byte argument (bt as 38 02)', { payload: array(map([Uint8Array.of(0x38, 0x02), int(T)], [text('seq'), int(1)], [int(0), text('x')], [int(2), int(1)])) }],
    ['a name\'s length in a one-byte argument', { payload: array(map([int(-3), int(T)], [text('seq'), int(1)], [int(0), Uint8Array.of(0x78, 0x01, 0x78)], [int(2), int(1)])) }],
    ['the pack\'s length in a one-byte argument', { payload: concatBytes(Uint8Array.of(0x98, 0x01), record()) }],
    ['a record\'s length in a two-byte argument', { payload: concatBytes(Uint8Array.of(0x81, 0xb9, 0x00, 0x04), record().subarray(1)) }],
    ['the kid\'s length in a one-byte argument', { protectedBytes: header(ALG, [int(4), concatBytes(Uint8Array.of(0x58, 0x10), deviceIdToBytes(keys.id))]) }]
  ])('%s', (_what, parts: Parts) => {
    refused(sign1(parts), 'ERR_NOT_PREFERRED')
  })

  it('the protected header\'s length in a longer head (a bstr of 21 bytes as 58 15)', () => {
    const bytes = sign1({ protectedBytes })
    const at = 2 // d2 84 | 55 …
    expect(bytes[at]).toBe(0x40 | protectedBytes.length)
    refused(concatBytes(bytes.subarray(0, at), Uint8Array.of(0x58, protectedBytes.length), bytes.subarray(at + 1)), 'ERR_NOT_PREFERRED')
  })

  it('floats in any width are accepted: v = 1.5 as a half, single and double float', () => {
    for (const v of [[0xf9, 0x3e, 0x00], [0xfa, 0x3f, 0xc0, 0x00, 0x00], [0xfb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]]) {
      const bytes = sign1({ payload: array(map([int(-3), int(T)], [text('seq'), int(1)], [int(0), text('x')], [int(2), Uint8Array.from(v)])) })
      expect(verdict(bytes)).toBe('accepted')
      expect(decodeFrame(bytes).records[0]?.v).toBe(1.5)
    }
  })
})

describe('SenML at decode (RFC 8428 §4.5.1, §4.6): nothing a consumer would throw on is accepted (ERR_BAD_SENML)', () => {
  const pack = (...records: Uint8Array[]): Parts => ({ payload: array(...records) })
  const first = (...entries: Array<[Uint8Array, Uint8Array]>): Uint8Array => map([int(-3), int(T)], [text('seq'), int(1)], ...entries)
  it.each([
    ['the name "a b"', pack(first([int(0), text('a b')], [int(2), int(1)]))],
    ['an empty name (no bn, no n)', pack(first([int(2), int(1)]))],
    ['a name starting with "-"', pack(first([int(0), text('-x')], [int(2), int(1)]))],
    ['a name with a non-ASCII letter', pack(first([int(0), text('température')], [int(2), int(1)]))],
    ['bn + n that resolves to an invalid name ("dev 1:" + "temp")', pack(first([int(-2), text('dev 1:')], [int(0), text('temp')], [int(2), int(1)]))],
    ['a valid first record and an invalid second one', pack(first([int(0), text('ok')], [int(2), int(1)]), map([int(0), text('not ok')], [int(4), Uint8Array.of(0xf5)]))],
    ['a name that is a number', pack(first([int(0), int(7)], [int(2), int(1)]))],
    ['a name that is a byte string', pack(first([int(0), bstr(utf8('temp'))], [int(2), int(1)]))],
    ['a base name that is not text', pack(first([int(-2), int(1)], [int(0), text('x')], [int(2), int(1)]))],
    ['a sum under an invalid name', pack(first([int(0), text('x y')], [int(5), int(3)]))],
    ['a base time past any date (1e13 s)', { payload: array(map([int(-3), encodeCbor(1e13)], [text('seq'), int(1)], [int(0), text('x')], [int(2), int(1)])) }],
    ['a time that overflows once resolved (bt + t)', pack(first([int(0), text('x')], [int(6), encodeCbor(MAX_TIME_SECONDS)], [int(2), int(1)]))],
    ['a value that overflows once resolved (bv + v = Infinity)', pack(first([int(-5), encodeCbor(1.7e308)], [int(0), text('x')], [int(2), encodeCbor(1.7e308)]))],
    ['a sum that overflows once resolved (bs + s)', pack(first([int(-6), encodeCbor(-1.7e308)], [int(0), text('x')], [int(5), encodeCbor(-1.7e308)]))]
  ])('%s', (_what, parts: Parts) => {
    refused(sign1(parts), 'ERR_BAD_SENML')
  })

  it('a record of base fields only is not a reading, so its base name alone is not checked (RFC 8428 §4.6)', () => {
    const bytes = sign1(pack(first([int(-2), text('dev 1 ')]), map([int(-2), text('dev:')], [int(0), text('t')], [int(2), int(1)])))
    expect(verdict(bytes)).toBe('accepted')
    expect(frameReadings(decodeFrame(bytes)).map((r) => r.name)).toEqual(['dev:t'])
  })

  it('encodeFrame signs only what decodeFrame accepts (the same check on both sides)', () => {
    expect(codeOf(() => encodeFrame({ keys, seq: 1, time: T, records: [{ n: 'a b', v: 1 }] }))).toBe('ERR_BAD_SENML')
    expect(codeOf(() => encodeFrame({ keys, seq: 1, time: 1e13, records: [{ n: 'x', v: 1 }] }))).toBe('ERR_BAD_SENML')
    expect(codeOf(() => encodeFrame({ keys, seq: 1, time: T, records: [{ n: 'x', bv: 1.7e308, v: 1.7e308 }] }))).toBe('ERR_BAD_SENML')
  })

  it('whatever decodeFrame accepts, every reader can read: readings resolve, times are dates, the JSON form serializes', () => {
    const label = fc.constantFrom<number | string>(-6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 'seq', 'x', 'x_')
    const nameChar = fc.constantFrom(...'aZ09:./_- é\u0000'.split(''))
    const name = fc.array(nameChar, { maxLength: 6 }).map((c) => c.join(''))
    const number = fc.oneof(
      fc.double(), fc.integer(), fc.constantFrom(0, 1, -1, 2 ** 28 - 1, 2 ** 28, T, MAX_TIME_SECONDS, -MAX_TIME_SECONDS, 1e13, 1.7e308, -1.7e308, Number.MAX_SAFE_INTEGER)
    )
    const value = fc.oneof(number, name, fc.boolean(), fc.uint8Array({ maxLength: 4 }), fc.constant(null))
    const rec = fc.uniqueArray(fc.tuple(label, value), { maxLength: 7, selector: ([l]) => l }).map((entries) => new Map<number | string, unknown>(entries))
    const firstRec = fc.tuple(fc.oneof(fc.constantFrom(T, 0, 1e13, -1), fc.double()), fc.maxSafeNat(), rec)
      .map(([bt, seq, rest]) => new Map<number | string, unknown>([[-3, bt], ['seq', seq], ...[...rest].filter(([l]) => l !== -3 && l !== 'seq')]))
    let accepted = 0
    fc.assert(fc.property(firstRec, fc.array(rec, { maxLength: 3 }), (head, tail) => {
      let payload: Uint8Array
      try {
        payload = encodeCbor([head, ...tail])
      } catch {
        return // not encodable (e.g. NaN keys): nothing to sign
      }
      const bytes = sign1({ payload })
      let frame
      try {
        frame = decodeFrame(bytes)
      } catch {
        return
      }
      accepted++
      for (const r of frameReadings(frame)) {
        expect(new Date(r.time * 1000).toISOString()).toMatch(/^[+-]?\d/)
        for (const n of [r.value, r.sum]) if (n !== undefined) expect(Number.isFinite(n)).toBe(true)
      }
      expect(new Date(frame.time * 1000).toISOString()).toMatch(/^[+-]?\d/)
      expect(() => JSON.stringify(packToJson(frame.records))).not.toThrow()
    }), { seed: 1101, numRuns: 3000 })
    expect(accepted).toBeGreaterThan(50) // the property ran on frames that were accepted, not only on refusals
  })
})
