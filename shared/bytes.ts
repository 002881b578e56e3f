/** Byte helpers shared by the codec and identity: hex, base64url (RFC 4648 §5), base32 (RFC 4648 §6). */

export function toHex (bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')
}

/** Parses hex, tolerating whitespace; returns undefined when the text is not hex. */
export function fromHex (text: string): Uint8Array | undefined {
  const clean = text.replace(/\s+/g, '')
  if (clean.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(clean)) return undefined
  return new Uint8Array(Buffer.from(clean, 'hex'))
}

/** base64url without padding (RFC 4648 §5), as JOSE/COSE keys and our TXT records use it. */
export function toBase64url (bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url')
}

/** Accepts base64url or standard base64, padded or not; undefined when the text is neither. */
export function fromBase64 (text: string): Uint8Array | undefined {
  const clean = text.replace(/\s+/g, '')
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(clean) || clean.length % 4 === 1) return undefined
  return new Uint8Array(Buffer.from(clean.replace(/-/g, '+').replace(/_/g, '/'), 'base64'))
}

const B32 = 'abcdefghijklmnopqrstuvwxyz234567'

const B32_CODES = Array.from(B32, (c) => c.charCodeAt(0))
const SPREAD_CHUNK = 8192

/** base32, RFC 4648 §6 alphabet in lower case, without padding. */
export function toBase32 (bytes: Uint8Array): string {
  const codes: number[] = []
  let bits = 0
  let value = 0
  for (let i = 0; i < bytes.length; i++) {
    value = ((value << 8) | (bytes[i] as number)) & 0xfff
    bits += 8
    while (bits >= 5) {
      codes.push(B32_CODES[(value >>> (bits - 5)) & 31] as number)
      bits -= 5
    }
  }
  if (bits > 0) codes.push(B32_CODES[(value << (5 - bits)) & 31] as number)
  if (codes.length <= SPREAD_CHUNK) return String.fromCharCode(...codes)
  let out = '' // spreading ~100k arguments overflows the call stack
  for (let i = 0; i < codes.length; i += SPREAD_CHUNK) out += String.fromCharCode(...codes.slice(i, i + SPREAD_CHUNK))
  return out
}

/**
 * Inverse of toBase32; undefined for characters outside the alphabet, non-zero trailing bits, or a
 * length no byte string encodes to (1, 3 or 6 characters mod 8: a whole character left over).
 */
export function fromBase32 (text: string): Uint8Array | undefined {
  const out: number[] = []
  let bits = 0
  let value = 0
  for (const ch of text.toLowerCase()) {
    const index = B32.indexOf(ch)
    if (index < 0) return undefined
    value = ((value << 5) | index) & 0xffff
    bits += 5
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff)
      bits -= 8
    }
  }
  if (bits >= 5 || (value & ((1 << bits) - 1)) !== 0) return undefined
  return new Uint8Array(out)
}

export function concatBytes (...parts: Uint8Array[]): Uint8Array {
  let length = 0
  for (const part of parts) length += part.length
  const out = new Uint8Array(length)
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.length
  }
  return out
}

export function bytesEqual (a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  let diff = 0
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number)
  return diff === 0
}
