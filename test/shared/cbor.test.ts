import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { cborHead, concatBytes, decodeCbor, encodeCbor, scanCbor } from '../../shared/index.js'
import { isUtf8 } from '../../shared/cbor.js'
import { codeOf, hex } from './support.js'

/**
 * The CBOR subset iotmesh reads (shared/cbor.ts): strict beyond well-formedness, so that one value
 * has one encoding and no message means two things. Each refusal has its own stable code.
 */

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text)
/** A text string item with raw (possibly invalid) UTF-8 content. */
const text = (content: Uint8Array): Uint8Array => concatBytes(cborHead(3, content.length), content)
/** A map item from already encoded keys and values, in order, duplicates and all. */
const map = (...entries: Array<[Uint8Array, Uint8Array]>): Uint8Array => concatBytes(cborHead(5, entries.length), ...entries.flat())
const int = (n: number): Uint8Array => encodeCbor(n)

describe('preferred serialization of heads (RFC 8949 §4.1, §4.2.1): ERR_NOT_PREFERRED', () => {
  it.each([
    ['0 in a one-byte argument', '1800'],
    ['23 in a one-byte argument', '1817'],
    ['255 in a two-byte argument', '1900ff'],
    ['65535 in a four-byte argument', '1a0000ffff'],
    ['2^32 - 1 in an eight-byte argument', '1b00000000ffffffff'],
    ['-1 in a one-byte argument', '3800'],
    ['-256 in a two-byte argument', '3900ff'],
    ['a 1-byte byte string with a one-byte length', '580100'],
    ['a 1-byte text string with a one-byte length', '780161'],
    ['a text string of 255 bytes with a two-byte length', `7900ff${'61'.repeat(255)}`],
    ['an empty array with a one-byte length', '9800'],
    ['a one-entry array with a two-byte length', '99000100'],
    ['an empty map with a one-byte length', 'b800'],
    ['a nested non-preferred integer', '8201811801']
  ])('%s', (_what, bytes) => {
    expect(codeOf(() => decodeCbor(hex(bytes)))).toBe('ERR_NOT_PREFERRED')
  })

  it.each([
    ['23', '17', 23],
    ['24', '1818', 24],
    ['255', '18ff', 255],
    ['256', '190100', 256],
    ['65536', '1a00010000', 65536],
    ['2^32', '1b0000000100000000', 2 ** 32],
    ['2^53 - 1', '1b001fffffffffffff', Number.MAX_SAFE_INTEGER],
    ['-24', '37', -24],
    ['-25', '3818', -25]
  ])('accepts %s in its shortest head', (_what, bytes, value) => {
    expect(decodeCbor(hex(bytes))).toBe(value)
  })

  it('a tag in a longer head than needed (tag 18 as d8 12)', () => {
    expect(codeOf(() => scanCbor(hex('d81201'), { ...limits(), allowedTopTags: [18] }))).toBe('ERR_NOT_PREFERRED')
    expect(scanCbor(hex('d201'), { ...limits(), allowedTopTags: [18] })).toBe(2)
  })

  it('floats keep any width: 1.5 as half, single and double precision (cbor-x writes doubles)', () => {
    for (const bytes of ['f93e00', 'fa3fc00000', 'fb3ff8000000000000']) expect(decodeCbor(hex(bytes))).toBe(1.5)
  })

  it('everything encodeCbor writes passes the scanner and decodes to what was encoded', () => {
    const key = fc.oneof(fc.maxSafeInteger(), fc.string({ unit: 'grapheme', maxLength: 8 }))
    const value = fc.letrec((tie) => ({
      item: fc.oneof(
        { depthSize: 'small' },
        fc.maxSafeInteger(), fc.integer(), fc.double({ noNaN: true }).map((v) => v + 0), fc.boolean(), fc.constant(null),
        fc.string({ unit: 'grapheme', maxLength: 40 }), fc.uint8Array({ maxLength: 40 }),
        fc.array(tie('item'), { maxLength: 5 }),
        fc.uniqueArray(fc.tuple(key, tie('item')), { maxLength: 5, selector: ([k]) => k }).map((entries) => new Map(entries))
      )
    })).item
    fc.assert(fc.property(value, (v) => {
      const bytes = encodeCbor(v)
      expect(decodeCbor(bytes, { ...limits(), maxDepth: 16, maxStringBytes: 4096 })).toEqual(v)
    }), { seed: 1001, numRuns: 2000 })
  })
})

describe('text strings are valid UTF-8 (RFC 8949 §3.1, RFC 3629 §4): ERR_BAD_UTF8', () => {
  it.each([
    ['a lone continuation byte', '80'],
    ['0xff', 'ff'],
    ['an overlong "/" (c0 af)', 'c0af'],
    ['an overlong NUL (c0 80, "modified UTF-8")', 'c080'],
    ['a three-byte overlong (e0 80 af)', 'e080af'],
    ['a four-byte overlong (f0 80 80 af)', 'f08080af'],
    ['a surrogate half (ed a0 80, as CESU-8 writes U+D800)', 'eda080'],
    ['above U+10FFFF (f4 90 80 80)', 'f4908080'],
    ['a lead byte f5', 'f5808080'],
    ['a sequence cut short by the end of the string', 'c3'],
    ['a sequence cut short by an ASCII byte', 'e28241'],
    ['valid text, then one bad byte', '746f6b20fe']
  ])('%s', (_what, content) => {
    expect(codeOf(() => decodeCbor(text(hex(content))))).toBe('ERR_BAD_UTF8')
    expect(codeOf(() => decodeCbor(concatBytes(cborHead(4, 2), int(1), text(hex(content)))))).toBe('ERR_BAD_UTF8')
  })

  it('accepts every valid form: ASCII, 2, 3 and 4 bytes, U+FFFF, U+10FFFF, NUL', () => {
    for (const s of ['temp', 'é', '€', '😀', '\uffff', '\u{10ffff}', 'a\u0000b', 'Ünïcödé 温度 🌡']) expect(decodeCbor(text(utf8(s)))).toBe(s)
  })

  it('isUtf8 agrees with a fatal TextDecoder (WHATWG Encoding) on arbitrary bytes', () => {
    const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
    const valid = (bytes: Uint8Array): boolean => { try { decoder.decode(bytes); return true } catch { return false } }
    // Bytes drawn mostly from the interesting ranges: lead bytes, continuation bytes and their edges.
    const byte = fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff))
    fc.assert(fc.property(fc.array(byte, { maxLength: 12 }), (list) => {
      const bytes = Uint8Array.from(list)
      expect(isUtf8(bytes)).toBe(valid(bytes))
    }), { seed: 1002, numRuns: 5000 })
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 20 }), (s) => {
      expect(isUtf8(utf8(s))).toBe(true)
    }), { seed: 1003, numRuns: 2000 })
  })
})

describe('map keys are labels: integers or text (RFC 9052 §3, RFC 8428 §6): ERR_BAD_LABEL', () => {
  it.each([
    ['a half float 1.0', 'f93c00'],
    ['a double 1.0', 'fb3ff0000000000000'],
    ['a byte string', '4101'],
    ['an array', '8101'],
    ['a map', 'a10101'],
    ['true', 'f5'],
    ['null', 'f6'],
    ['a tag', 'c101']
  ])('%s as a key', (_what, key) => {
    expect(codeOf(() => decodeCbor(map([hex(key), int(0)])))).toBe('ERR_BAD_LABEL')
    expect(codeOf(() => decodeCbor(concatBytes(cborHead(4, 1), map([int(1), int(0)], [hex(key), int(0)]))))).toBe('ERR_BAD_LABEL')
  })

  it('map values and array items may be anything the subset allows', () => {
    expect(decodeCbor(map([int(1), hex('f93c00')], [utf8Key('x'), hex('8101')]))).toEqual(new Map<number | string, unknown>([[1, 1], ['x', [1]]]))
  })
})

describe('no key twice in one map (RFC 9052 §3 MUST NOT process; RFC 8949 §5.6): ERR_DUPLICATE_KEY', () => {
  it.each([
    ['an integer key', map([int(1), int(0)], [int(1), int(1)])],
    ['a negative integer key', map([int(-3), int(0)], [int(2), int(0)], [int(-3), int(1)])],
    ['a text key', map([utf8Key('seq'), int(1)], [utf8Key('seq'), int(2)])],
    ['a key after a nested map closed', map([int(1), map([int(2), int(0)])], [int(1), int(0)])],
    ['a key inside a nested map', map([int(1), map([int(2), int(0)], [int(2), int(0)])])],
    ['a key in a map inside an array', concatBytes(cborHead(4, 2), int(0), map([int(4), int(0)], [int(4), int(0)]))],
    ['the last key of a large map (the Set path)', map(...Array.from({ length: 40 }, (_, i): [Uint8Array, Uint8Array] => [int(i), int(0)]), [int(7), int(0)])],
    ['a text key of a large map', map(...Array.from({ length: 40 }, (_, i): [Uint8Array, Uint8Array] => [utf8Key(`k${i}`), int(0)]), [utf8Key('k39'), int(0)])]
  ])('%s', (_what, bytes) => {
    expect(codeOf(() => decodeCbor(bytes))).toBe('ERR_DUPLICATE_KEY')
  })

  it.each([
    ['1 and "1" (an integer and a text string are different keys)', map([int(1), int(0)], [utf8Key('1'), int(0)])],
    ['1 and -2 (major types 0 and 1 with the same argument)', map([int(1), int(0)], [int(-2), int(0)])],
    ['the same key in sibling maps', concatBytes(cborHead(4, 2), map([int(1), int(0)]), map([int(1), int(0)]))],
    ['the same key in a nested map and its parent', map([int(1), map([int(1), int(0)])], [int(2), int(0)])],
    ['a nested map\'s key, then in the parent', map([int(1), map([int(2), int(0)])], [int(2), int(0)])],
    ['a key equal to a value', map([int(1), int(2)], [int(2), int(1)])],
    ['a large map of distinct keys', map(...Array.from({ length: 200 }, (_, i): [Uint8Array, Uint8Array] => [i % 2 === 0 ? int(i) : utf8Key(`${i}`), int(0)]))]
  ])('accepts %s', (_what, bytes) => {
    expect(codeOf(() => decodeCbor(bytes))).toBe('no error')
  })

  it('ten maps of 256 distinct keys (the most the limit allows) in one input are checked in a few milliseconds', () => {
    const big = map(...Array.from({ length: 256 }, (_, i): [Uint8Array, Uint8Array] => [int(i), int(0)]))
    const many = concatBytes(cborHead(4, 10), ...Array.from({ length: 10 }, () => big)) // 10 x 747 bytes: under the 8 KiB limit
    const t0 = performance.now()
    for (let i = 0; i < 20; i++) decodeCbor(many)
    expect((performance.now() - t0) / 20).toBeLessThan(20) // a loose bound for a loaded machine; typically ~0.3 ms
  })
})

function utf8Key (s: string): Uint8Array {
  return text(utf8(s))
}

function limits (): Parameters<typeof scanCbor>[1] & object {
  return { maxBytes: 8192, maxDepth: 8, maxStringBytes: 1024, maxItems: 256, allowedTopTags: [] }
}
