import { describe, expect, it } from 'vitest'
import { MSG, decodeMessage, encodeData } from '../../mesh/routing/messages.js'
import { cborHead, concatBytes, encodeCbor, encodeFrame, generateKeyPair } from '../../shared/index.js'
import { codeOf } from '../shared/support.js'

/**
 * Routing messages are read as strictly as frames (shared/cbor.ts): the hand-parsed DATA head too,
 * and ids are 16-byte kids at decode, so a handler never gets a shape it would throw on.
 */

const keys = generateKeyPair(new Uint8Array(32).fill(7))
const frame = encodeFrame({ keys, seq: 1, time: 1_700_000_000, records: [{ n: 'x', v: 1 }] })
const kid = new Uint8Array(16).fill(1)

describe('decodeMessage refuses', () => {
  it('a DATA message whose hop count is not in its shortest head (ERR_NOT_PREFERRED)', () => {
    expect(decodeMessage(encodeData(1, frame))).toMatchObject({ kind: MSG.DATA, hops: 1 })
    expect(codeOf(() => decodeMessage(concatBytes(Uint8Array.of(0x83, MSG.DATA, 0x18, 0x01), cborHead(2, frame.length), frame)))).toBe('ERR_NOT_PREFERRED')
  })

  it('a DATA message whose frame length is not in its shortest head (ERR_NOT_PREFERRED)', () => {
    const long = concatBytes(Uint8Array.of(0x83, MSG.DATA, 0x01, 0x5a), Uint8Array.of(0, 0, frame.length >> 8, frame.length & 0xff), frame)
    expect(codeOf(() => decodeMessage(long))).toBe('ERR_NOT_PREFERRED')
  })

  it('a kind in a longer head than needed (ERR_NOT_PREFERRED)', () => {
    expect(codeOf(() => decodeMessage(concatBytes(Uint8Array.of(0x82, 0x18, MSG.KEYREQ), encodeCbor([kid]))))).toBe('ERR_NOT_PREFERRED')
  })

  it('a HELLO whose fleet is not valid UTF-8 (ERR_BAD_UTF8)', () => {
    const hello = concatBytes(Uint8Array.of(0x85, MSG.HELLO, 0x01), Uint8Array.of(0x62, 0xc3, 0x28), encodeCbor(4000), encodeCbor([]))
    expect(codeOf(() => decodeMessage(hello))).toBe('ERR_BAD_UTF8')
  })

  it('a map with a key twice anywhere in a message (ERR_DUPLICATE_KEY)', () => {
    const message = concatBytes(Uint8Array.of(0x82, MSG.KEYREQ, 0x81, 0xa2, 0x01, 0x00, 0x01, 0x00))
    expect(codeOf(() => decodeMessage(message))).toBe('ERR_DUPLICATE_KEY')
  })

  it.each([
    ['DIGEST', [MSG.DIGEST, true, [[new Uint8Array(15), 1, 2]]]],
    ['WANT', [MSG.WANT, [[new Uint8Array(17), 1, 2]]]],
    ['KEYREQ', [MSG.KEYREQ, [new Uint8Array(0)]]]
  ])('a %s whose kid is not 16 bytes (ERR_BAD_CBOR), where its handler would have thrown', (_kind, message) => {
    expect(codeOf(() => decodeMessage(encodeCbor(message)))).toBe('ERR_BAD_CBOR')
  })

  it('accepts the same messages with 16-byte kids', () => {
    expect(decodeMessage(encodeCbor([MSG.DIGEST, true, [[kid, 1, 2]]]))).toMatchObject({ kind: MSG.DIGEST, entries: [{ low: 1, high: 2 }] })
    expect(decodeMessage(encodeCbor([MSG.WANT, [[kid, 1, 2]]]))).toMatchObject({ kind: MSG.WANT, entries: [{ from: 1, to: 2 }] })
    expect(decodeMessage(encodeCbor([MSG.KEYREQ, [kid]]))).toMatchObject({ kind: MSG.KEYREQ, kids: [kid] })
  })
})
