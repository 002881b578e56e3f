import fc from 'fast-check'
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  ALG_ED25519, DEFAULT_FRAME_LIMITS, ERROR_CODES, HEADER_ALG, HEADER_KID, MeshError, SENML_UNITS, concatBytes,
  decodeFrame, deviceBaseName, deviceIdToBytes, encodeCbor, encodeFrame, frameReadings, keyPairFromSecret,
  nobleEd25519, openFrame, packFromJson, signFrame, signSign1, toHex, verifyFrame, type FrameLimits, type HeaderMap,
  type KeyPair, type SenmlRecord
} from '../../shared/index.js'
import { nodeEd25519 } from '../../shared/node.js'
import { codeOf, hex, readFixture, seededKeys } from './support.js'

interface GoldenFrame { name: string, seq: number, time: number, topic?: string, records: unknown[], size: number, hex: string }
const golden = readFixture<{ secretKey: string, publicKey: string, id: string, frames: GoldenFrame[] }>('frame-golden.json')
const goldenKeys = keyPairFromSecret(hex(golden.secretKey))
const oneReading = golden.frames[0] as GoldenFrame
const oneReadingBytes = hex(oneReading.hex)

const keys = seededKeys(1)
const other = seededKeys(2)
const T = 1_700_000_000

/** Signs an arbitrary payload under a valid iotmesh protected header: only the payload is wrong. */
function signPayload (payload: Uint8Array, signer: KeyPair = keys, protectedHeader?: HeaderMap): Uint8Array {
  return signSign1({
    protectedHeader: protectedHeader ?? new Map<number | string, unknown>([[HEADER_ALG, ALG_ED25519], [HEADER_KID, deviceIdToBytes(signer.id)]]),
    payload,
    secretKey: signer.secretKey
  })
}

/** A valid first record in CBOR form (RFC 8428 §6 labels): bt -3, seq, v 2. */
const firstRecord = (): Map<number | string, unknown> => new Map<number | string, unknown>([[-3, T], ['seq', 1], [0, 'x'], [2, 1]])

/** What must hold for every input: either a frame, or a MeshError with a code from ERROR_CODES. */
function meshErrorOrNothing (fn: () => unknown): void {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(MeshError)
    expect(Object.keys(ERROR_CODES)).toContain((err as MeshError).code)
  }
}

afterEach(() => {
  vi.useRealTimers()
})

describe('golden bytes (test/fixtures/frame-golden.json): the wire format does not change by accident', () => {
  it('the fixture key is the one the bytes were made with', () => {
    expect(goldenKeys.id).toBe(golden.id)
    expect(toHex(goldenKeys.publicKey)).toBe(golden.publicKey)
  })

  for (const frame of golden.frames) {
    it.each([nodeEd25519, nobleEd25519])(`${frame.name}: encodeFrame reproduces the bytes exactly ($name)`, (ed) => {
      const bytes = encodeFrame({
        keys: goldenKeys, seq: frame.seq, time: frame.time, records: packFromJson(frame.records), ed25519: ed,
        ...(frame.topic === undefined ? {} : { topic: frame.topic })
      })
      expect(toHex(bytes)).toBe(frame.hex)
      expect(bytes).toHaveLength(frame.size)
    })

    it(`${frame.name}: opens to the same origin, seq, time, topic and records`, () => {
      const opened = openFrame(hex(frame.hex), goldenKeys.publicKey)
      expect(opened.origin).toBe(golden.id)
      expect(opened.seq).toBe(frame.seq)
      expect(opened.time).toBe(frame.time)
      expect(opened.topic).toBe(frame.topic ?? 'telemetry')
      const [first, ...rest] = packFromJson(frame.records)
      expect(opened.records).toEqual([{ ...first, bt: frame.time, seq: frame.seq }, ...rest])
    })
  }

  it('one reading: the layout, byte by byte (RFC 9052 §4.2, RFC 8428 §6)', () => {
    const h = oneReading.hex
    expect(h.slice(0, 4)).toBe('d284') // tag 18, array of 4
    expect(h.slice(4, 48)).toBe(`55a2013204 50${toHex(deviceIdToBytes(golden.id))}`.replace(' ', '')) // bstr(21) {1: -19, 4: kid}
    expect(h.slice(48, 50)).toBe('a0') // unprotected {}
    expect(h.slice(50, 54)).toBe('5822') // payload bstr(34)
    // [{-3: 1700000000, 0: "temp", 1: "Cel", 2: 21.5, "seq": 1}]
    expect(h.slice(54, 122)).toBe('81a5221a6553f100006474656d70016343656c02fb40358000000000006373657101')
    expect(h.slice(122, 126)).toBe('5840') // signature bstr(64)
    expect(h).toHaveLength(126 + 128)
  })

  it('one reading: the size stays within the golden frame (a regression bound, not a goal)', () => {
    const fresh = encodeFrame({ keys, seq: 1, time: T, records: [{ n: 'temp', u: 'Cel', v: 19.25 }] })
    expect(fresh.length).toBeLessThanOrEqual(oneReading.size)
  })

  it('frameReadings resolves the golden multi-record frame (RFC 8428 §4.6)', () => {
    const frame = golden.frames[1] as GoldenFrame
    const readings = frameReadings(openFrame(hex(frame.hex), goldenKeys.publicKey))
    expect(readings).toEqual([
      { name: 'env:temp', unit: 'Cel', value: -3.5, time: frame.time },
      { name: 'env:hum', unit: '%RH', value: 40, time: frame.time - 10 },
      { name: 'env:door', boolValue: true, time: frame.time },
      { name: 'env:note', stringValue: 'ok', time: frame.time },
      { name: 'env:blob', dataValue: Uint8Array.of(0, 1, 2, 255), time: frame.time },
      { name: 'env:energy', unit: 'J', sum: 1234, time: frame.time }
    ])
    expect(deviceBaseName(golden.id)).toBe(`${golden.id}:`)
  })
})

describe('round trip', () => {
  it('encodeFrame -> openFrame gives back origin, seq, time and records, with either implementation', () => {
    const records: SenmlRecord[] = [{ n: 'temp', u: 'Cel', v: 21.5 }, { n: 'hum', u: '%RH', v: 40 }]
    for (const ed of [nodeEd25519, nobleEd25519]) {
      const bytes = encodeFrame({ keys, seq: 7, time: T, records, ed25519: ed })
      for (const verifier of [nodeEd25519, nobleEd25519]) {
        const frame = openFrame(bytes, keys.publicKey, { ed25519: verifier })
        expect(frame).toMatchObject({ origin: keys.id, seq: 7, time: T, alg: ALG_ED25519, topic: 'telemetry' })
        expect(frame.records).toEqual([{ ...records[0], bt: T, seq: 7 }, records[1]])
      }
    }
  })

  it('time defaults to the first record\'s bt, then to the clock', () => {
    expect(openFrame(encodeFrame({ keys, seq: 1, records: [{ bt: T + 5, n: 'x', v: 1 }] }), keys.publicKey).time).toBe(T + 5)
    vi.useFakeTimers()
    vi.setSystemTime(new Date(T * 1000 + 250))
    expect(openFrame(encodeFrame({ keys, seq: 1, records: [{ n: 'x', v: 1 }] }), keys.publicKey).time).toBe(T + 0.25)
  })

  const nameChars = 'ABCXYZabcxyz0189:./_-'.split('')
  const alnum = 'Aaz09'.split('')
  const name = fc.tuple(fc.constantFrom(...alnum), fc.array(fc.constantFrom(...nameChars), { maxLength: 15 })).map(([a, rest]) => a + rest.join(''))
  const finite = fc.double({ noNaN: true, noDefaultInfinity: true }).map((v) => v + 0) // CBOR has one zero: -0 encodes as 0
  const value = fc.oneof(
    finite.map((v) => ({ v })),
    fc.string({ unit: 'grapheme', maxLength: 12 }).map((vs) => ({ vs })),
    fc.boolean().map((vb) => ({ vb })),
    fc.uint8Array({ maxLength: 16 }).map((vd) => ({ vd })),
    finite.map((s) => ({ s }))
  )
  const record = fc.record({
    n: name,
    value,
    u: fc.option(fc.constantFrom(...Object.keys(SENML_UNITS)), { nil: undefined }),
    t: fc.option(fc.double({ min: -1e6, max: 1e6, noNaN: true }).map((t) => t + 0), { nil: undefined })
  }).map(({ n, value, u, t }): SenmlRecord => ({ n, ...value, ...(u === undefined ? {} : { u }), ...(t === undefined ? {} : { t }) }))
  const input = fc.record({
    seq: fc.maxSafeNat(),
    time: fc.oneof(fc.integer({ min: 2 ** 28, max: 2 ** 32 - 1 }), fc.double({ min: 2 ** 28, max: 4e9, noNaN: true })),
    records: fc.array(record, { minLength: 1, maxLength: 6 })
  })

  it('decode(encode(x)) = x for arbitrary valid packs (RFC 8428 §4.5.1 names, finite numbers, units)', () => {
    fc.assert(fc.property(input, ({ seq, time, records }) => {
      const frame = openFrame(encodeFrame({ keys, seq, time, records }), keys.publicKey)
      expect(frame.origin).toBe(keys.id)
      expect(frame.seq).toBe(seq)
      expect(frame.time).toBe(time)
      expect(frame.records).toEqual([{ ...records[0], bt: time, seq }, ...records.slice(1)])
    }), { seed: 31, numRuns: 300 })
  })

  it('every frame encodeFrame returns, decodeFrame accepts (the encoder checks as receivers do)', () => {
    const many = fc.array(fc.record({ n: name, v: finite }), { minLength: 1, maxLength: 128, size: 'max' })
    fc.assert(fc.property(many, (records) => {
      let bytes: Uint8Array
      try {
        bytes = encodeFrame({ keys, seq: 1, time: T, records })
      } catch (err) {
        expect(err).toBeInstanceOf(MeshError)
        return
      }
      expect(openFrame(bytes, keys.publicKey).records).toHaveLength(records.length)
    }), { seed: 32, numRuns: 100, endOnFailure: true }) // shrinking 128 doubles takes minutes; the first failure says enough
  })

  it('signFrame gives the bytes encodeFrame gives and, with them, what decodeFrame reads from them (a publisher parses its frame once)', () => {
    fc.assert(fc.property(input, ({ seq, time, records }) => {
      const signed = signFrame({ keys, seq, time, records, topic: 'events/door' })
      expect(toHex(signed.bytes)).toBe(toHex(encodeFrame({ keys, seq, time, records, topic: 'events/door' }))) // Ed25519 is deterministic
      // Views by content: cbor-x leaves its own `dataView` on a byte string it decoded (decodeFrame's payload).
      const viewsAsHex = (f: typeof signed): unknown => ({ ...f, protectedBytes: toHex(f.protectedBytes), payload: toHex(f.payload), signature: toHex(f.signature) })
      expect(viewsAsHex(signed)).toEqual(viewsAsHex(decodeFrame(signed.bytes)))
    }), { seed: 33, numRuns: 100 })
    const tooMany = Array.from({ length: DEFAULT_FRAME_LIMITS.maxRecords + 1 }, (_, i): SenmlRecord => ({ n: `r${i}`, v: i }))
    expect(codeOf(() => signFrame({ keys, seq: 1, time: T, records: tooMany }))).toBe('ERR_TOO_MANY_RECORDS')
  })

  it('a pack larger than the frame limit is refused at encoding (ERR_FRAME_TOO_LARGE), never signed for receivers to refuse', () => {
    const records = Array.from({ length: 120 }, (_, i): SenmlRecord => ({ n: `temperature-of-a-rather-long-sensor-name-${i}`, u: 'Cel', vs: 'x'.repeat(40) }))
    expect(codeOf(() => encodeFrame({ keys, seq: 1, time: T, records }))).toBe('ERR_FRAME_TOO_LARGE')
  })
})

describe('tampering: nothing but the signed bytes opens', () => {
  it('flipping any single byte, to any other value, makes openFrame fail with a MeshError', () => {
    const seen = new Set<string>()
    for (let i = 0; i < oneReadingBytes.length; i++) {
      for (let x = 1; x < 256; x++) {
        const mutated = new Uint8Array(oneReadingBytes)
        mutated[i] = (mutated[i] as number) ^ x
        const code = codeOf(() => openFrame(mutated, goldenKeys.publicKey))
        if (!(code in ERROR_CODES)) expect.fail(`byte ${i} ^ ${x}: ${code}`)
        seen.add(code)
      }
    }
    expect(seen).toContain('ERR_BAD_SIGNATURE')
    expect(seen).toContain('ERR_WRONG_KEY') // a flipped kid names another device
  })

  it('truncating at every length fails with ERR_TRUNCATED', () => {
    for (let n = 0; n < oneReadingBytes.length; n++) {
      expect(codeOf(() => openFrame(oneReadingBytes.subarray(0, n), goldenKeys.publicKey))).toBe('ERR_TRUNCATED')
    }
  })

  it('arbitrary mutations (edits, truncation, extension) of valid frames never verify', () => {
    const edit = fc.record({ at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) })
    const mutation = fc.record({
      edits: fc.array(edit, { maxLength: 4 }),
      cut: fc.option(fc.nat(), { nil: undefined }),
      extra: fc.uint8Array({ maxLength: 4 })
    })
    fc.assert(fc.property(fc.constantFrom(...golden.frames), mutation, (frame, { edits, cut, extra }) => {
      const original = hex(frame.hex)
      let mutated: Uint8Array = new Uint8Array(original)
      for (const { at, byte } of edits) mutated[at % mutated.length] = byte
      if (cut !== undefined) mutated = mutated.subarray(0, cut % mutated.length)
      mutated = concatBytes(mutated, extra)
      fc.pre(toHex(mutated) !== frame.hex)
      const code = codeOf(() => openFrame(mutated, goldenKeys.publicKey))
      expect(Object.keys(ERROR_CODES)).toContain(code)
    }), { seed: 33, numRuns: 2000 })
  })

  it('another device\'s key (ERR_WRONG_KEY)', () => {
    expect(codeOf(() => openFrame(oneReadingBytes, other.publicKey))).toBe('ERR_WRONG_KEY')
    expect(codeOf(() => openFrame(oneReadingBytes, new Uint8Array(32)))).toBe('ERR_WRONG_KEY')
  })

  it('the right key, but a signature over other content (ERR_BAD_SIGNATURE)', () => {
    const a = encodeFrame({ keys, seq: 1, time: T, records: [{ n: 'x', v: 1 }] })
    const b = encodeFrame({ keys, seq: 2, time: T, records: [{ n: 'x', v: 1 }] })
    const spliced = concatBytes(b.subarray(0, b.length - 64), a.subarray(a.length - 64)) // b with a's signature
    expect(codeOf(() => openFrame(spliced, keys.publicKey))).toBe('ERR_BAD_SIGNATURE')
    expect(codeOf(() => openFrame(spliced, keys.publicKey, { ed25519: nobleEd25519 }))).toBe('ERR_BAD_SIGNATURE')
  })

  it('a frame signed by another key under this device\'s kid (ERR_BAD_SIGNATURE)', () => {
    const forged = signSign1({
      protectedHeader: new Map<number, unknown>([[HEADER_ALG, ALG_ED25519], [HEADER_KID, deviceIdToBytes(keys.id)]]),
      payload: encodeCbor([firstRecord()]),
      secretKey: other.secretKey
    })
    expect(codeOf(() => openFrame(forged, keys.publicKey))).toBe('ERR_BAD_SIGNATURE')
    expect(codeOf(() => verifyFrame(decodeFrame(forged), other.publicKey))).toBe('ERR_WRONG_KEY')
    expect(codeOf(() => verifyFrame(decodeFrame(forged), other.publicKey, { checkId: false }))).toBe('no error')
  })
})

describe('limits on untrusted bytes', () => {
  it('oversized input (ERR_FRAME_TOO_LARGE), before anything is parsed', () => {
    expect(codeOf(() => decodeFrame(new Uint8Array(DEFAULT_FRAME_LIMITS.maxBytes + 1)))).toBe('ERR_FRAME_TOO_LARGE')
    expect(codeOf(() => decodeFrame(concatBytes(oneReadingBytes, new Uint8Array(9000))))).toBe('ERR_FRAME_TOO_LARGE')
    const tight: FrameLimits = { ...DEFAULT_FRAME_LIMITS, maxBytes: 100 }
    expect(codeOf(() => openFrame(oneReadingBytes, goldenKeys.publicKey, { limits: tight }))).toBe('ERR_FRAME_TOO_LARGE')
    expect(codeOf(() => encodeFrame({ keys, seq: 1, time: T, records: [{ n: 'temp', v: 1 }] }, tight))).toBe('ERR_FRAME_TOO_LARGE')
  })

  it('deeply nested CBOR (ERR_TOO_DEEP), in the payload or in the unprotected header', () => {
    const nested = concatBytes(new Uint8Array(9).fill(0x81), Uint8Array.of(0x00)) // [[[[[[[[[0]]]]]]]]]
    expect(codeOf(() => decodeFrame(signPayload(nested)))).toBe('ERR_TOO_DEEP')
    const deepUnprotected = concatBytes(oneReadingBytes.subarray(0, 24), Uint8Array.of(0xa1, 0x05), nested, oneReadingBytes.subarray(25))
    expect(codeOf(() => decodeFrame(deepUnprotected))).toBe('ERR_TOO_DEEP')
  })

  it('too many records (ERR_TOO_MANY_RECORDS): over maxRecords, and over the CBOR item limit', () => {
    // {n: 'a', v: 0}: 6 bytes, so 129 records fit in a frame (a name of its own: records whose names do not resolve are refused)
    const small = new Map<number, unknown>([[0, 'a'], [2, 0]])
    expect(codeOf(() => decodeFrame(signPayload(encodeCbor([firstRecord(), ...Array.from({ length: 128 }, () => small)]))))).toBe('ERR_TOO_MANY_RECORDS')
    expect(codeOf(() => decodeFrame(signPayload(encodeCbor([firstRecord(), ...Array.from({ length: 127 }, () => small)]))))).toBe('no error')
    expect(codeOf(() => decodeFrame(signPayload(encodeCbor(new Array(257).fill(0)))))).toBe('ERR_TOO_MANY_RECORDS')
    expect(codeOf(() => encodeFrame({ keys, seq: 1, time: T, records: Array.from({ length: 129 }, () => ({ v: 0 })) }))).toBe('ERR_TOO_MANY_RECORDS')
  })

  it('long strings (ERR_STRING_TOO_LONG)', () => {
    const long = new Map<number | string, unknown>([...firstRecord()].filter(([k]) => k !== 2).concat([[3, 'x'.repeat(1025)]]))
    expect(codeOf(() => decodeFrame(signPayload(encodeCbor([long]))))).toBe('ERR_STRING_TOO_LONG')
    const tight: FrameLimits = { ...DEFAULT_FRAME_LIMITS, maxStringBytes: 8 }
    expect(codeOf(() => decodeFrame(oneReadingBytes, tight))).toBe('ERR_STRING_TOO_LONG')
  })

  it('indefinite lengths (ERR_BAD_CBOR): iotmesh reads definite lengths only', () => {
    const record = toHex(encodeCbor(firstRecord()))
    expect(codeOf(() => decodeFrame(signPayload(hex(`9f${record}ff`))))).toBe('ERR_BAD_CBOR') // indefinite array
    expect(codeOf(() => decodeFrame(signPayload(hex('81bf22fb41d954fc400000006373657101ff'))))).toBe('ERR_BAD_CBOR') // indefinite map
    expect(codeOf(() => decodeFrame(signPayload(hex('81a3221a6553f100637365710103 7f6161ff'.replace(' ', '')))))).toBe('ERR_BAD_CBOR') // indefinite text
    expect(codeOf(() => decodeFrame(hex('d29f40a04040ff')))).toBe('ERR_BAD_CBOR')
  })

  it.each([
    ['a map, not an array', encodeCbor(firstRecord())],
    ['an empty pack', encodeCbor([])],
    ['a record that is not a map', encodeCbor([1])],
    ['a first record without seq', encodeCbor([new Map([[-3, T], [2, 1]])])],
    ['a first record without bt', encodeCbor([new Map<number | string, unknown>([['seq', 1], [2, 1]])])],
    ['a negative seq', encodeCbor([new Map<number | string, unknown>([[-3, T], ['seq', -1], [2, 1]])])],
    ['a fractional seq', encodeCbor([new Map<number | string, unknown>([[-3, T], ['seq', 1.5], [2, 1]])])],
    ['a bt that is text', encodeCbor([new Map<number | string, unknown>([[-3, 'now'], ['seq', 1], [2, 1]])])],
    ['two values in one record', encodeCbor([new Map<number | string, unknown>([...firstRecord(), [3, 'x']])])],
    ['a must-understand label', encodeCbor([new Map<number | string, unknown>([...firstRecord(), ['foo_', 1]])])],
    ['a NaN value (half float)', hex('81a4221a6553f1006373657101000161 02f97e00'.replace(' ', '')).subarray(0)],
    ['vb that is not a boolean', encodeCbor([new Map<number | string, unknown>([[-3, T], ['seq', 1], [4, 1]])])]
  ])('a payload that is not an iotmesh SenML pack: %s (ERR_BAD_SENML)', (_what, payload) => {
    expect(codeOf(() => decodeFrame(signPayload(payload)))).toBe('ERR_BAD_SENML')
  })

  it('a payload that is not CBOR at all fails with a MeshError', () => {
    expect(codeOf(() => decodeFrame(signPayload(new TextEncoder().encode('hello, world'))))).toBe('ERR_BAD_CBOR') // 'h' reads as an 8-byte text string, then 3 bytes too many
    expect(codeOf(() => decodeFrame(signPayload(new TextEncoder().encode('hello'))))).toBe('ERR_TRUNCATED')
    expect(codeOf(() => decodeFrame(signPayload(new Uint8Array(0))))).toBe('ERR_TRUNCATED')
    expect(codeOf(() => decodeFrame(signPayload(Uint8Array.of(0xff))))).toBe('ERR_BAD_CBOR')
  })

  it('invalid names never become readings (RFC 8428 §4.5.1; ERR_BAD_SENML)', () => {
    for (const name of ['', 'bad name', '-x', 'x!', 'ünïcode']) {
      const frame = signPayload(encodeCbor([new Map<number | string, unknown>([[-3, T], ['seq', 1], [0, name], [2, 1]])]))
      expect(codeOf(() => frameReadings(openFrame(frame, keys.publicKey)))).toBe('ERR_BAD_SENML')
      expect(codeOf(() => encodeFrame({ keys, seq: 1, time: T, records: [{ n: name, v: 1 }] }))).toBe('ERR_BAD_SENML')
    }
  })

  it.each([
    ['no kid', new Map<number | string, unknown>([[HEADER_ALG, ALG_ED25519]])],
    ['a 15-byte kid', new Map<number | string, unknown>([[HEADER_ALG, ALG_ED25519], [HEADER_KID, new Uint8Array(15)]])],
    ['a text kid', new Map<number | string, unknown>([[HEADER_ALG, ALG_ED25519], [HEADER_KID, keys.id]])],
    ['a topic that is not text', new Map<number | string, unknown>([[HEADER_ALG, ALG_ED25519], [HEADER_KID, deviceIdToBytes(keys.id)], ['tp', 1]])]
  ])('a protected header with %s (ERR_BAD_HEADER)', (_what, header) => {
    expect(codeOf(() => decodeFrame(signPayload(encodeCbor([firstRecord()]), keys, header)))).toBe('ERR_BAD_HEADER')
  })

  it('a device topic with MQTT wildcards or empty levels (ERR_BAD_TOPIC), on either side', () => {
    for (const topic of ['a/+', '#', 'a//b', '', 'a/'.repeat(70)]) {
      const header = new Map<number | string, unknown>([[HEADER_ALG, ALG_ED25519], [HEADER_KID, deviceIdToBytes(keys.id)], ['tp', topic]])
      expect(codeOf(() => decodeFrame(signPayload(encodeCbor([firstRecord()]), keys, header)))).toBe('ERR_BAD_TOPIC')
      if (topic !== '') expect(codeOf(() => encodeFrame({ keys, seq: 1, time: T, topic, records: [{ n: 'x', v: 1 }] }))).toBe('ERR_BAD_TOPIC')
    }
  })

  it('arbitrary bytes never throw anything but a MeshError', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      meshErrorOrNothing(() => openFrame(bytes, keys.publicKey))
      meshErrorOrNothing(() => openFrame(concatBytes(Uint8Array.of(0xd2, 0x84), bytes), keys.publicKey))
    }), { seed: 34, numRuns: 1000 })
  })

  it('arbitrary payloads, validly signed, never throw anything but a MeshError', () => {
    const payload = fc.oneof(
      fc.uint8Array({ maxLength: 120 }),
      fc.uint8Array({ maxLength: 60 }).map((b) => concatBytes(Uint8Array.of(0x81, 0xa3, 0x22, 0x1a, 0x65, 0x53, 0xf1, 0x00, 0x63, 0x73, 0x65, 0x71, 0x01), b))
    )
    fc.assert(fc.property(payload, (bytes) => {
      meshErrorOrNothing(() => frameReadings(openFrame(signPayload(bytes), keys.publicKey)))
    }), { seed: 35, numRuns: 500 })
  })
})

describe('encodeFrame refuses what it must not sign', () => {
  it.each([-1, 1.5, Number.NaN, Number.MAX_SAFE_INTEGER + 1, Infinity])('seq %s (ERR_BAD_ARGUMENT)', (seq) => {
    expect(codeOf(() => encodeFrame({ keys, seq, time: T, records: [{ n: 'x', v: 1 }] }))).toBe('ERR_BAD_ARGUMENT')
  })

  it.each([
    ['no records', []],
    ['two values in a record', [{ n: 'x', v: 1, vs: 'y' }]],
    ['a non-finite value', [{ n: 'x', v: Infinity }]],
    ['a lone surrogate in text (UTF-8 cannot carry it)', [{ n: 'x', vs: 'a\uD800b' }]]
  ])('%s (ERR_BAD_SENML)', (_what, records) => {
    expect(codeOf(() => encodeFrame({ keys, seq: 1, time: T, records: records as SenmlRecord[] }))).toBe('ERR_BAD_SENML')
  })

  it('a non-finite time (ERR_BAD_SENML)', () => {
    expect(codeOf(() => encodeFrame({ keys, seq: 1, time: Number.NaN, records: [{ n: 'x', v: 1 }] }))).toBe('ERR_BAD_SENML')
  })
})

describe('integers beyond 32 bits', () => {
  it('a sequence number above 2^32 is encoded as a CBOR unsigned integer (major type 0), not a float', async () => {
    const { encodeFrame, decodeFrame, generateKeyPair, decodeSign1 } = await import('../../shared/index.js')
    const keys = generateKeyPair(new Uint8Array(32).fill(3))
    const seq = 1_767_225_600_123_456 // a wall-clock-in-µs start, as memorySequence() uses
    const frame = encodeFrame({ keys, seq, time: 1767225600.5, records: [{ n: 'temp', v: 20 }] })
    const payload = decodeSign1(frame).payload
    const at = Buffer.from(payload).indexOf(Buffer.from('seq'))
    expect(payload[at + 3]).toBe(0x1b) // uint64 head: RFC 8949 §3.1, major type 0, 8-byte argument
    expect(decodeFrame(frame).seq).toBe(seq)
  })

  it('a frame of many records is limited by the frame size, not by the string limit', async () => {
    const { encodeFrame, decodeFrame, generateKeyPair } = await import('../../shared/index.js')
    const keys = generateKeyPair(new Uint8Array(32).fill(4))
    const records = Array.from({ length: 100 }, (_, i) => ({ n: `sensor${i}`, u: 'Cel', v: i + 0.5 }))
    const frame = encodeFrame({ keys, seq: 1, time: 1767225600, records })
    expect(frame.length).toBeGreaterThan(1024)
    expect(decodeFrame(frame).records).toHaveLength(100)
  })
})
