/** Byte helpers shared by the codec and identity: hex, base64url (RFC 4648 §5), base32 (RFC 4648 §6). */

/*
 * Written by hand rather than on Node's Buffer, so that shared/ runs in a browser too; they
 * accept, refuse and decode exactly what Buffer did (test/shared/bytes.test.ts compares them).
 */

const HEX_PAIRS = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))

export function toHex (bytes: Uint8Array): string {
  let out = ''
  for (let i = 0; i < bytes.length; i++) out += HEX_PAIRS[bytes[i] as number] as string
  return out
}

/** Parses hex, tolerating whitespace; returns undefined when the text is not hex. */
export function fromHex (text: string): Uint8Array | undefined {
  const clean = text.replace(/\s+/g, '')
  if (clean.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(clean)) return undefined
  const out = new Uint8Array(clean.length / 2)
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(clean.slice(2 * i, 2 * i + 2), 16)
  return out
}

/** RFC 4648 §5 "URL and Filename safe" alphabet. */
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
/** Character code -> 6-bit value for both alphabets (§4 "+/" and §5 "-_"); -1 elsewhere. */
const B64_VALUES = new Int8Array(128).fill(-1)
for (let i = 0; i < 64; i++) B64_VALUES[B64URL.charCodeAt(i)] = i
B64_VALUES['+'.charCodeAt(0)] = 62
B64_VALUES['/'.charCodeAt(0)] = 63

/** base64url without padding (RFC 4648 §5, §3.2), as JOSE/COSE keys and our TXT records use it. */
export function toBase64url (bytes: Uint8Array): string {
  let out = ''
  let i = 0
  for (; i + 2 < bytes.length; i += 3) {
    const n = ((bytes[i] as number) << 16) | ((bytes[i + 1] as number) << 8) | (bytes[i + 2] as number)
    out += B64URL.charAt(n >>> 18) + B64URL.charAt((n >>> 12) & 63) + B64URL.charAt((n >>> 6) & 63) + B64URL.charAt(n & 63)
  }
  const rest = bytes.length - i
  if (rest === 1) {
    const n = bytes[i] as number
    out += B64URL.charAt(n >>> 2) + B64URL.charAt((n << 4) & 63)
  } else if (rest === 2) {
    const n = ((bytes[i] as number) << 8) | (bytes[i + 1] as number)
    out += B64URL.charAt(n >>> 10) + B64URL.charAt((n >>> 4) & 63) + B64URL.charAt((n << 2) & 63)
  }
  return out
}

/**
 * Accepts base64url or standard base64 (RFC 4648 §5, §4), padded or not; undefined when the text is
 * neither. Bits left over after the last whole byte are ignored, as Node's Buffer does.
 */
export function fromBase64 (text: string): Uint8Array | undefined {
  const clean = text.replace(/\s+/g, '')
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(clean) || clean.length % 4 === 1) return undefined
  let end = clean.length
  while (end > 0 && clean.charCodeAt(end - 1) === 0x3d) end-- // '='
  const out = new Uint8Array(Math.floor(end * 6 / 8))
  let value = 0
  let bits = 0
  let o = 0
  for (let i = 0; i < end; i++) {
    value = ((value << 6) | (B64_VALUES[clean.charCodeAt(i)] as number)) & 0xffff
    bits += 6
    if (bits >= 8) {
      bits -= 8
      out[o++] = (value >>> bits) & 0xff
    }
  }
  return out
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

/**
 * `bytes` in a buffer of its own: itself when it already spans its whole ArrayBuffer, else a copy.
 * For what a node keeps beyond the message it came in: a decoded byte string is a view into the
 * received message (cbor-x returns `subarray`s), and on Node `Buffer#slice` is a view too, not a
 * copy, so a kept 150-byte frame could hold a whole receive buffer or an 8 KiB pool slab alive.
 */
export function ownBytes (bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : new Uint8Array(bytes)
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

/**
 * The bytes as a string of char codes 0-255 (latin1): a cheap Map key for keys and ids, not for display.
 * Callers pass short inputs (keys, ids): `apply` spreads every byte as an argument.
 */
export function bytesKey (bytes: Uint8Array): string {
  return String.fromCharCode.apply(null, bytes as unknown as number[])
}

export function bytesEqual (a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  let diff = 0
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number)
  return diff === 0
}
