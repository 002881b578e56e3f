import { createHash } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  DEVICE_ID_BYTES, DEVICE_ID_LENGTH, deviceIdBytes, deviceIdFromBytes, deviceIdFromPublicKey, deviceIdToBytes,
  fromBase32, fromBase64, fromHex, generateKeyPair, isDeviceId, keyMatchesId, keyPairFromSecret, nobleEd25519,
  publicKeyText, toBase32, toBase64url, toHex
} from '../../shared/index.js'
import { nodeEd25519 } from '../../shared/node.js'
import { codeOf, hex, readFixture, seededKeys } from './support.js'

/** An independent RFC 4648 §6 base32 (lower case, no padding), one bit at a time. */
function referenceBase32 (bytes: Uint8Array): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567'
  let bitString = ''
  for (const byte of bytes) bitString += byte.toString(2).padStart(8, '0')
  while (bitString.length % 5 !== 0) bitString += '0'
  let out = ''
  for (let i = 0; i < bitString.length; i += 5) out += alphabet[parseInt(bitString.slice(i, i + 5), 2)]
  return out
}

/** The derivation documented in shared/identity.ts, computed independently. */
function referenceId (publicKey: Uint8Array): string {
  return referenceBase32(createHash('sha256').update(publicKey).digest().subarray(0, 16))
}

const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 })
const alphabet = 'abcdefghijklmnopqrstuvwxyz234567'.split('')

describe('device id derivation (shared/identity.ts: base32(SHA-256(publicKey)[0..16]))', () => {
  it('matches an independent computation with node:crypto and a reference base32', () => {
    fc.assert(fc.property(bytes32, (publicKey) => {
      expect(deviceIdFromPublicKey(publicKey)).toBe(referenceId(publicKey))
      expect(toHex(deviceIdBytes(publicKey))).toBe(createHash('sha256').update(publicKey).digest().subarray(0, 16).toString('hex'))
    }), { seed: 7, numRuns: 200 })
  })

  it('of the RFC 8032 TEST 1 key (a known answer, also computed independently)', () => {
    const v = readFixture<{ vectors: Array<{ publicKey: string }> }>('rfc8032-ed25519.json').vectors[0] as { publicKey: string }
    const id = deviceIdFromPublicKey(hex(v.publicKey))
    expect(id).toBe(referenceId(hex(v.publicKey)))
    expect(id).toHaveLength(DEVICE_ID_LENGTH)
    expect(isDeviceId(id)).toBe(true)
  })

  it('is 16 bytes on the wire and 26 characters a-z, 2-7 in text', () => {
    const keys = seededKeys(1)
    expect(DEVICE_ID_BYTES).toBe(16)
    expect(deviceIdBytes(keys.publicKey)).toHaveLength(16)
    expect(keys.id).toMatch(/^[a-z2-7]{26}$/)
    expect(toHex(deviceIdToBytes(keys.id))).toBe(toHex(deviceIdBytes(keys.publicKey)))
    expect(deviceIdFromBytes(deviceIdToBytes(keys.id))).toBe(keys.id)
  })

  it('refuses a public key that is not 32 bytes (ERR_BAD_KEY)', () => {
    expect(codeOf(() => deviceIdBytes(new Uint8Array(31)))).toBe('ERR_BAD_KEY')
    expect(codeOf(() => deviceIdFromPublicKey(new Uint8Array(33)))).toBe('ERR_BAD_KEY')
  })

  it('kid bytes <-> text round trip for any 16 bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (kid) => {
      const id = deviceIdFromBytes(kid)
      expect(isDeviceId(id)).toBe(true)
      expect(toHex(deviceIdToBytes(id))).toBe(toHex(kid))
    }), { seed: 8, numRuns: 200 })
  })

  it.each([
    ['empty', ''],
    ['25 characters', 'a'.repeat(25)],
    ['27 characters', 'a'.repeat(27)],
    ['upper case', seededKeys(1).id.toUpperCase()],
    ['a character outside the alphabet', `${'a'.repeat(25)}1`],
    ['non-zero trailing bits (no 16 bytes encode to it)', `${'a'.repeat(25)}b`]
  ])('deviceIdToBytes refuses %s (ERR_BAD_DEVICE_ID)', (_what, id) => {
    expect(codeOf(() => deviceIdToBytes(id))).toBe('ERR_BAD_DEVICE_ID')
  })

  it('deviceIdFromBytes refuses a kid that is not 16 bytes (ERR_BAD_DEVICE_ID)', () => {
    expect(codeOf(() => deviceIdFromBytes(new Uint8Array(15)))).toBe('ERR_BAD_DEVICE_ID')
    expect(codeOf(() => deviceIdFromBytes(new Uint8Array(32)))).toBe('ERR_BAD_DEVICE_ID')
  })

  it('isDeviceId is false for anything but a 26-character lower-case base32 string', () => {
    for (const value of [undefined, null, 42, {}, '', 'A'.repeat(26), '0'.repeat(26), 'a'.repeat(27)]) {
      expect(isDeviceId(value)).toBe(false)
    }
  })
})

describe('keyMatchesId', () => {
  const keys = seededKeys(1)
  const other = seededKeys(2)

  it('is true for the key the id derives from, false for any other key', () => {
    expect(keyMatchesId(keys.publicKey, keys.id)).toBe(true)
    expect(keyMatchesId(other.publicKey, keys.id)).toBe(false)
    fc.assert(fc.property(bytes32, (publicKey) => {
      expect(keyMatchesId(publicKey, deviceIdFromPublicKey(publicKey))).toBe(true)
      expect(keyMatchesId(publicKey, keys.id)).toBe(false)
    }), { seed: 9, numRuns: 100 })
  })

  it('is false, never throws, for malformed keys or ids', () => {
    expect(keyMatchesId(keys.publicKey.subarray(0, 31), keys.id)).toBe(false)
    expect(keyMatchesId(new Uint8Array(0), keys.id)).toBe(false)
    expect(keyMatchesId(keys.publicKey, keys.id.toUpperCase())).toBe(false)
    expect(keyMatchesId(keys.publicKey, '')).toBe(false)
    expect(keyMatchesId(keys.publicKey, `${keys.id.slice(0, 25)}b`)).toBe(false) // trailing bits set
    fc.assert(fc.property(fc.string(), (id) => {
      expect(keyMatchesId(keys.publicKey, id)).toBe(false)
    }), { seed: 10, numRuns: 200 })
  })

  it('answers the same from its cache as fresh (a subarray view of a larger buffer included)', () => {
    const padded = new Uint8Array(40)
    padded.set(keys.publicKey, 4)
    const view = padded.subarray(4, 36)
    for (let i = 0; i < 3; i++) {
      expect(keyMatchesId(view, keys.id)).toBe(true)
      expect(keyMatchesId(view, other.id)).toBe(false)
    }
  })
})

describe('key pairs', () => {
  it('keyPairFromSecret: the same pair with either implementation; a copy of the secret', () => {
    const secret = Uint8Array.from({ length: 32 }, (_, i) => i + 1)
    const a = keyPairFromSecret(secret, nodeEd25519)
    const b = keyPairFromSecret(secret, nobleEd25519)
    expect(a.id).toBe(b.id)
    expect(toHex(a.publicKey)).toBe(toHex(b.publicKey))
    secret[0] = 0xff
    expect(a.secretKey[0]).toBe(1)
  })

  it('generateKeyPair is deterministic given its randomness, and random without', () => {
    const seed = new Uint8Array(32).fill(7)
    expect(generateKeyPair(seed).id).toBe(generateKeyPair(seed).id)
    expect(generateKeyPair().id).not.toBe(generateKeyPair().id)
  })

  it('refuses a secret that is not 32 bytes (ERR_BAD_KEY)', () => {
    expect(codeOf(() => keyPairFromSecret(new Uint8Array(31)))).toBe('ERR_BAD_KEY')
    expect(codeOf(() => generateKeyPair(new Uint8Array(64)))).toBe('ERR_BAD_KEY')
  })

  it('publicKeyText is unpadded base64url (43 characters) of the key', () => {
    const keys = seededKeys(3)
    const text = publicKeyText(keys.publicKey)
    expect(text).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(toHex(fromBase64(text) as Uint8Array)).toBe(toHex(keys.publicKey))
  })
})

describe('base32 (RFC 4648 §6, lower case, no padding)', () => {
  it.each([
    // RFC 4648 §10 test vectors, lower-cased and without padding
    ['', ''], ['f', 'my'], ['fo', 'mzxq'], ['foo', 'mzxw6'], ['foob', 'mzxw6yq'], ['fooba', 'mzxw6ytb'], ['foobar', 'mzxw6ytboi']
  ])('RFC 4648 §10: %j -> %j', (plain, encoded) => {
    expect(toBase32(new TextEncoder().encode(plain))).toBe(encoded)
    expect(Buffer.from(fromBase32(encoded) as Uint8Array).toString()).toBe(plain)
    expect(Buffer.from(fromBase32(encoded.toUpperCase()) as Uint8Array).toString()).toBe(plain)
  })

  it('fromBase32(toBase32(b)) = b, and agrees with the reference encoder', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
      const text = toBase32(bytes)
      expect(text).toBe(referenceBase32(bytes))
      expect(text).toHaveLength(Math.ceil(bytes.length * 8 / 5))
      expect(toHex(fromBase32(text) as Uint8Array)).toBe(toHex(bytes))
    }), { seed: 11, numRuns: 300 })
  })

  it('decoding is canonical: whatever it accepts re-encodes to the same text', () => {
    fc.assert(fc.property(fc.array(fc.constantFrom(...alphabet), { maxLength: 40 }), (chars) => {
      const text = chars.join('')
      const bytes = fromBase32(text)
      if (bytes !== undefined) expect(toBase32(bytes)).toBe(text)
      // RFC 4648 §6: unpadded lengths are 0, 2, 4, 5 or 7 characters mod 8; 1, 3 and 6 encode nothing.
      if ([1, 3, 6].includes(text.length % 8)) expect(bytes).toBeUndefined()
    }), { seed: 12, numRuns: 500 })
  })

  it('refuses characters outside the alphabet', () => {
    for (const text of ['my=', 'm0', 'm1', 'm8', 'my ', 'mé']) expect(fromBase32(text)).toBeUndefined()
  })

  it('encodes large inputs (no call-stack limit)', () => {
    const bytes = new Uint8Array(300_000).fill(0xa5)
    const text = toBase32(bytes)
    expect(text).toHaveLength(480_000)
    expect(toHex(fromBase32(text) as Uint8Array)).toBe(toHex(bytes))
  })
})

describe('hex and base64 helpers', () => {
  it('round trip', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
      expect(toHex(fromHex(toHex(bytes)) as Uint8Array)).toBe(toHex(bytes))
      expect(toHex(fromBase64(toBase64url(bytes)) as Uint8Array)).toBe(toHex(bytes))
      expect(toHex(fromBase64(Buffer.from(bytes).toString('base64')) as Uint8Array)).toBe(toHex(bytes))
      expect(toBase64url(bytes)).not.toMatch(/[=+/]/)
    }), { seed: 13, numRuns: 200 })
  })

  it('fromHex tolerates whitespace and case; refuses odd lengths and non-hex', () => {
    expect(toHex(fromHex(' DE ad\nbe EF ') as Uint8Array)).toBe('deadbeef')
    expect(fromHex('abc')).toBeUndefined()
    expect(fromHex('zz')).toBeUndefined()
  })

  it('fromBase64 refuses text that is not base64', () => {
    expect(fromBase64('a')).toBeUndefined()
    expect(fromBase64('ab!c')).toBeUndefined()
    expect(fromBase64('a=bc')).toBeUndefined()
  })

  it('toHex of a subarray reads only the view', () => {
    const buffer = Uint8Array.of(1, 2, 3, 4)
    expect(toHex(buffer.subarray(1, 3))).toBe('0203')
  })
})
