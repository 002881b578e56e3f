import { createPublicKey, verify as cryptoVerify } from 'node:crypto'
import { Tag, decode as plainDecode, encode as plainEncode } from 'cbor-x'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  ALG_ED25519, ALG_EDDSA, COSE_SIGN1_TAG, HEADER_ALG, HEADER_CONTENT_TYPE, HEADER_KID, concatBytes, decodeSign1,
  describeHeader, encodeFrame, encodeHeader, nobleEd25519, sigStructure, signSign1, toHex, verifySign1,
  type HeaderMap
} from '../../shared/index.js'
import { nodeEd25519 } from '../../shared/node.js'
import { codeOf, hex, readFixture, seededKeys } from './support.js'

/** The COSE WG example (Examples repository, eddsa-examples/eddsa-sig-01.json), copied to test/fixtures. */
interface CoseVector {
  input: { plaintext: string, sign0: { key: { x_hex: string, d_hex: string } } }
  intermediates: { ToBeSign_hex: string }
  output: { cbor: string }
}
const vector = readFixture<CoseVector>('cose-eddsa-sig-01.json')
const vectorBytes = hex(vector.output.cbor)
const vectorKey = vector.input.sign0.key
const vectorPayload = new TextEncoder().encode(vector.input.plaintext)
// protected { 1 (alg): -8 (EdDSA), 3 (content type): 0 }, unprotected { 4 (kid): '11' }
const vectorProtected: HeaderMap = new Map([[HEADER_ALG, ALG_EDDSA], [HEADER_CONTENT_TYPE, 0]])
const vectorUnprotected: HeaderMap = new Map([[HEADER_KID, new TextEncoder().encode('11')]])

/**
 * A from-scratch COSE_Sign1 verifier that shares nothing with shared/cose.ts: cbor-x's plain
 * decoder and encoder, and node:crypto with the key imported as a JWK (RFC 8037). It needs only
 * the raw public key. RFC 9052 §4.4: Sig_structure = ["Signature1", protected, external_aad, payload].
 */
/** A CBOR byte string (RFC 8949 §3.1, major type 2), for assembling messages by hand. */
function bstr (content: Uint8Array): Uint8Array {
  const n = content.length
  const head = n < 24 ? Uint8Array.of(0x40 | n) : n < 256 ? Uint8Array.of(0x58, n) : Uint8Array.of(0x59, n >> 8, n & 0xff)
  return concatBytes(head, content)
}

function independentVerify (frame: Uint8Array, publicKey: Uint8Array): boolean {
  const item: unknown = plainDecode(Buffer.from(frame))
  if (!(item instanceof Tag) || item.tag !== 18 || !Array.isArray(item.value) || item.value.length !== 4) return false
  const [protectedBytes, , payload, signature] = item.value as [Uint8Array, unknown, Uint8Array, Uint8Array]
  const toBeSigned = plainEncode(['Signature1', Buffer.from(protectedBytes), Buffer.alloc(0), Buffer.from(payload)])
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicKey).toString('base64url') }, format: 'jwk' })
  return cryptoVerify(null, toBeSigned, key, signature)
}

describe('the COSE working group Ed25519 example (test/fixtures/cose-eddsa-sig-01.json)', () => {
  it('decodes: alg EdDSA (-8) and content type 0 protected, kid "11" unprotected, the plain-text payload', () => {
    const sign1 = decodeSign1(vectorBytes)
    expect(sign1.alg).toBe(ALG_EDDSA)
    expect(sign1.protectedHeader).toEqual(vectorProtected)
    expect(toHex(sign1.protectedBytes)).toBe('a201270300')
    expect(Buffer.from(sign1.unprotectedHeader.get(HEADER_KID) as Uint8Array).toString()).toBe('11')
    expect(Buffer.from(sign1.payload).toString()).toBe(vector.input.plaintext)
    expect(sign1.signature).toHaveLength(64)
  })

  it.each([nodeEd25519, nobleEd25519])('verifies with x_hex through $name', (ed) => {
    expect(verifySign1(decodeSign1(vectorBytes), hex(vectorKey.x_hex), ed)).toBe(true)
  })

  it('encodeHeader + sigStructure reproduce intermediates.ToBeSign_hex (RFC 9052 §4.4)', () => {
    const protectedBytes = encodeHeader(vectorProtected)
    expect(toHex(protectedBytes)).toBe('a201270300')
    expect(toHex(sigStructure(protectedBytes, vectorPayload))).toBe(vector.intermediates.ToBeSign_hex.toLowerCase())
  })

  it.each([nodeEd25519, nobleEd25519])('signSign1 with d_hex reproduces output.cbor byte for byte ($name)', (ed) => {
    const bytes = signSign1({
      protectedHeader: vectorProtected,
      unprotectedHeader: vectorUnprotected,
      payload: vectorPayload,
      secretKey: hex(vectorKey.d_hex),
      ed25519: ed
    })
    expect(toHex(bytes)).toBe(vector.output.cbor.toLowerCase())
  })

  it('is refused under any other key, and with any flipped signature byte', () => {
    const sign1 = decodeSign1(vectorBytes)
    expect(verifySign1(sign1, seededKeys(1).publicKey)).toBe(false)
    for (let i = 0; i < 64; i++) {
      const tampered = new Uint8Array(sign1.signature)
      tampered[i] = (tampered[i] as number) ^ 0x01
      expect(verifySign1({ ...sign1, signature: tampered }, hex(vectorKey.x_hex))).toBe(false)
    }
  })

  it('the independent verifier agrees on the vector (so it is a fair judge of our frames)', () => {
    expect(independentVerify(vectorBytes, hex(vectorKey.x_hex))).toBe(true)
    expect(independentVerify(vectorBytes, seededKeys(1).publicKey)).toBe(false)
  })
})

describe('an independent COSE implementation verifies iotmesh frames with nothing but the public key', () => {
  const keys = seededKeys(1)

  it('a fixed frame', () => {
    const frame = encodeFrame({ keys, seq: 1, time: 1_700_000_000, records: [{ n: 'temp', u: 'Cel', v: 21.5 }] })
    expect(independentVerify(frame, keys.publicKey)).toBe(true)
    expect(independentVerify(frame, seededKeys(2).publicKey)).toBe(false)
    // and reads the payload as SenML CBOR (RFC 8428 §6): bt is -3, n 0, u 1, v 2
    const payload = (plainDecode(Buffer.from(frame)) as Tag).value[2] as Uint8Array
    const pack = plainDecode(Buffer.from(payload)) as Array<Record<string, unknown>>
    expect(pack).toHaveLength(1)
    expect(pack[0]).toMatchObject({ '-3': 1_700_000_000, 0: 'temp', 1: 'Cel', 2: 21.5, seq: 1 })
  })

  it('arbitrary frames', () => {
    const record = fc.record({ n: fc.constantFrom('temp', 'hum', 'door'), v: fc.double({ noNaN: true, noDefaultInfinity: true }) })
    fc.assert(fc.property(fc.nat(), fc.array(record, { minLength: 1, maxLength: 5 }), (seq, records) => {
      const frame = encodeFrame({ keys, seq, time: 1_700_000_000, records })
      expect(independentVerify(frame, keys.publicKey)).toBe(true)
    }), { seed: 21, numRuns: 50 })
  })
})

describe('decodeSign1 refuses', () => {
  const keys = seededKeys(1)
  const sign = (protectedHeader: HeaderMap, unprotectedHeader?: HeaderMap): Uint8Array =>
    signSign1({ protectedHeader, payload: Uint8Array.of(1, 2, 3), secretKey: keys.secretKey, ...(unprotectedHeader === undefined ? {} : { unprotectedHeader }) })
  const good = sign(new Map([[HEADER_ALG, ALG_ED25519]]))

  it('accepts alg Ed25519 (-19, RFC 9864) and EdDSA (-8, RFC 9053)', () => {
    for (const alg of [ALG_ED25519, ALG_EDDSA]) {
      const sign1 = decodeSign1(sign(new Map([[HEADER_ALG, alg]])))
      expect(sign1.alg).toBe(alg)
      expect(verifySign1(sign1, keys.publicKey)).toBe(true)
    }
  })

  it.each([-7, -35, -36, -37, -257, 0, 1, -9, -18, -20])('alg %i (ERR_UNSUPPORTED_ALG)', (alg) => {
    expect(codeOf(() => decodeSign1(sign(new Map([[HEADER_ALG, alg]]))))).toBe('ERR_UNSUPPORTED_ALG')
  })

  it('an untagged COSE_Sign1 (ERR_NOT_COSE_SIGN1)', () => {
    expect(good[0]).toBe(0xd2)
    expect(codeOf(() => decodeSign1(good.subarray(1)))).toBe('ERR_NOT_COSE_SIGN1')
  })

  it.each([
    ['COSE_Mac0 (17)', Uint8Array.of(0xd1)],
    ['COSE_Encrypt0 (16)', Uint8Array.of(0xd0)],
    ['COSE_Sign (98)', Uint8Array.of(0xd8, 98)],
    ['CWT (61)', Uint8Array.of(0xd8, 61)],
    ['self-described CBOR (55799)', Uint8Array.of(0xd9, 0xd9, 0xf7)]
  ])('another tag: %s (ERR_NOT_COSE_SIGN1)', (_what, tag) => {
    expect(codeOf(() => decodeSign1(concatBytes(tag, good.subarray(1))))).toBe('ERR_NOT_COSE_SIGN1')
  })

  it.each([
    ['tag 18 around an integer', 'd201'],
    ['tag 18 around an array of 3', 'd28340a040'],
    ['tag 18 around an array of 5', 'd28540a0404040'],
    ['tag 18 around a map', 'd2a0'],
    ['a text string as protected header', 'd2846161a04040'],
    ['an integer as payload', 'd28440a00040'],
    ['a text string as signature', 'd28440a0406161']
  ])('%s (ERR_NOT_COSE_SIGN1)', (_what, bytes) => {
    expect(codeOf(() => decodeSign1(hex(bytes)))).toBe('ERR_NOT_COSE_SIGN1')
  })

  it('alg in the unprotected header only (ERR_BAD_HEADER, RFC 9052 §3.1)', () => {
    const kidOnly = new Map([[HEADER_KID, new Uint8Array(16)]])
    expect(codeOf(() => decodeSign1(sign(kidOnly, new Map([[HEADER_ALG, ALG_ED25519]]))))).toBe('ERR_BAD_HEADER')
  })

  it('alg in both headers (ERR_BAD_HEADER)', () => {
    const alg = new Map([[HEADER_ALG, ALG_ED25519]])
    expect(codeOf(() => decodeSign1(sign(alg, alg)))).toBe('ERR_BAD_HEADER')
  })

  /** A tagged COSE_Sign1 assembled by hand: RFC 9052 §4.2, with a 3-byte payload and a zero signature. */
  const assemble = (protectedContent: string, unprotected: string): Uint8Array =>
    concatBytes(hex('d284'), bstr(hex(protectedContent)), hex(unprotected), bstr(Uint8Array.of(1, 2, 3)), bstr(new Uint8Array(64)))

  it('the hand assembler makes a COSE_Sign1 decodeSign1 accepts', () => {
    expect(decodeSign1(assemble('a10132', 'a0')).alg).toBe(ALG_ED25519)
  })

  it.each([
    ['an empty protected header (no alg)', '', 'a0'],
    ['a protected header that is an array', '820126', 'a0'],
    ['an alg that is text ("EdDSA")', 'a101654564445341', 'a0'],
    ['an unprotected header that is an array', 'a10132', '80'],
    ['an unprotected header that is null', 'a10132', 'f6']
  ])('%s (ERR_BAD_HEADER)', (_what, protectedContent, unprotected) => {
    expect(codeOf(() => decodeSign1(assemble(protectedContent, unprotected)))).toBe('ERR_BAD_HEADER')
  })

  it('a nested tag, a trailing byte, an indefinite length (ERR_BAD_CBOR)', () => {
    expect(codeOf(() => decodeSign1(concatBytes(Uint8Array.of(0xd2), good)))).toBe('ERR_BAD_CBOR')
    expect(codeOf(() => decodeSign1(concatBytes(good, Uint8Array.of(0))))).toBe('ERR_BAD_CBOR')
    expect(codeOf(() => decodeSign1(hex('d29f40a04040ff')))).toBe('ERR_BAD_CBOR')
  })
})

describe('describeHeader', () => {
  it('names the common labels and shows bytes as hex', () => {
    expect(describeHeader(new Map<number | string, unknown>([[1, -19], [4, Uint8Array.of(0xab)], [3, 0], ['tp', 'x'], [99, true]])))
      .toEqual({ alg: -19, kid: "h'ab'", 'content type': 0, tp: 'x', 99: true })
  })

  it('COSE_SIGN1_TAG is 18 (RFC 9052 §2)', () => {
    expect(COSE_SIGN1_TAG).toBe(18)
  })
})
