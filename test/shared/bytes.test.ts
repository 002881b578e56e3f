import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { fromBase64, fromHex, ownBytes, toBase64url, toHex } from '../../shared/index.js'
import { bytesKey } from '../../shared/bytes.js'

/**
 * shared/bytes.ts encodes by hand so that it runs in a browser; until then it was Node's Buffer.
 * These pin the hand-written codecs to RFC 4648 and to what Buffer did, input for input.
 */

/** fromBase64 as it was, on Buffer: the reference. */
function bufferFromBase64 (text: string): Uint8Array | undefined {
  const clean = text.replace(/\s+/g, '')
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(clean) || clean.length % 4 === 1) return undefined
  return new Uint8Array(Buffer.from(clean.replace(/-/g, '+').replace(/_/g, '/'), 'base64'))
}

const hexOf = (bytes: Uint8Array | undefined): string | undefined => bytes === undefined ? undefined : Buffer.from(bytes).toString('hex')

describe('base64 and base64url (RFC 4648 §4, §5)', () => {
  it.each([
    // RFC 4648 §10 test vectors (base64url without padding, §3.2)
    ['', ''], ['f', 'Zg'], ['fo', 'Zm8'], ['foo', 'Zm9v'], ['foob', 'Zm9vYg'], ['fooba', 'Zm9vYmE'], ['foobar', 'Zm9vYmFy']
  ])('RFC 4648 §10: %j -> %j', (plain, encoded) => {
    expect(toBase64url(new TextEncoder().encode(plain))).toBe(encoded)
    const padded = encoded + '='.repeat((4 - encoded.length % 4) % 4)
    for (const text of [encoded, padded]) expect(new TextDecoder().decode(fromBase64(text))).toBe(plain)
  })

  it('the two alphabets differ only in 62 and 63: "-_" (§5) and "+/" (§4)', () => {
    expect(toBase64url(Uint8Array.of(0xfb, 0xff))).toBe('-_8')
    expect(hexOf(fromBase64('-_8'))).toBe('fbff')
    expect(hexOf(fromBase64('+/8='))).toBe('fbff')
  })

  it('toBase64url agrees with Buffer for any bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      expect(toBase64url(bytes)).toBe(Buffer.from(bytes).toString('base64url'))
    }), { seed: 21, numRuns: 500 })
  })

  it('fromBase64 accepts and refuses exactly what it did on Buffer, and decodes the same bytes', () => {
    const chars = [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_', '=', '=', ' ', '\n', '!', '.', 'é']
    fc.assert(fc.property(fc.array(fc.constantFrom(...chars), { maxLength: 24 }), (picked) => {
      const text = picked.join('')
      expect(hexOf(fromBase64(text))).toBe(hexOf(bufferFromBase64(text)))
    }), { seed: 22, numRuns: 3000 })
    // and on well-formed text of every length and padding
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), fc.boolean(), (bytes, padded) => {
      const text = Buffer.from(bytes).toString(padded ? 'base64' : 'base64url')
      expect(hexOf(fromBase64(text))).toBe(hexOf(bytes))
    }), { seed: 23, numRuns: 500 })
  })

  it('ignores bits left over after the last whole byte, as Buffer does', () => {
    expect(hexOf(fromBase64('AB'))).toBe('00')
    expect(hexOf(fromBase64('AB=='))).toBe('00')
    expect(hexOf(fromBase64('AAAAAB'))).toBe('00000000')
  })
})

describe('hex', () => {
  it('toHex agrees with Buffer; fromHex reads upper and lower case', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      const text = toHex(bytes)
      expect(text).toBe(Buffer.from(bytes).toString('hex'))
      expect(hexOf(fromHex(text.toUpperCase()))).toBe(text)
    }), { seed: 24, numRuns: 500 })
  })
})

describe('bytesKey', () => {
  it('is the same string exactly when the bytes are the same (a Map key for keys and ids)', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ maxLength: 40 }), (a, b) => {
      expect(bytesKey(a) === bytesKey(b)).toBe(hexOf(a) === hexOf(b))
      expect(bytesKey(a)).toBe(Buffer.from(a).toString('latin1'))
    }), { seed: 25, numRuns: 1000 })
  })
})

describe('ownBytes', () => {
  it('copies a view (a Buffer slice, a subarray) into a buffer of its own, and keeps what owns its buffer as it is', () => {
    const received = Buffer.alloc(8192, 7)
    const view = received.slice(100, 250) // Buffer#slice: a view, not a copy
    expect(view.buffer.byteLength).toBe(8192)
    const own = ownBytes(view)
    expect(own.buffer.byteLength).toBe(150)
    expect(hexOf(own)).toBe(hexOf(view))
    received.fill(0)
    expect(own[0]).toBe(7) // a copy, no longer tied to the received buffer
    const whole = new Uint8Array(150)
    expect(ownBytes(whole)).toBe(whole)
    expect(ownBytes(new Uint8Array(whole.buffer, 10)).buffer.byteLength).toBe(140)
  })
})
