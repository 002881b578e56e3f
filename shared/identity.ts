import { sha256 } from '@noble/hashes/sha2.js'
import { bytesKey, fromBase32, toBase32, toBase64url } from './bytes.js'
import { meshError } from './errors.js'
import { PUBLIC_KEY_LENGTH, SECRET_KEY_LENGTH, type Ed25519, type PublicKey, type SecretKey } from './crypto/ed25519.js'
import { defaultEd25519 } from './crypto/ed25519-default.js'

/**
 * Device identity.
 *
 * A device id is derived from the device's Ed25519 public key, so an id cannot be claimed
 * without the matching private key:
 *
 *     idBytes  = SHA-256(publicKey)[0..16]     (the first 16 bytes, 128 bits)
 *     deviceId = base32(idBytes)               (RFC 4648 §6 alphabet, lower case, no padding: 26 chars)
 *
 * Claiming an existing id with another key means finding a second SHA-256 preimage on 128 bits.
 * On the wire the COSE `kid` carries the 16 `idBytes` (RFC 9052 §3.1: kid is a byte string);
 * everywhere people read it (TXT records, MQTT topics, logs) the id is the 26-character text.
 */

export type DeviceId = string

export const DEVICE_ID_BYTES = 16
export const DEVICE_ID_LENGTH = 26
const DEVICE_ID_PATTERN = /^[a-z2-7]{26}$/

export interface KeyPair {
  readonly id: DeviceId
  readonly publicKey: PublicKey
  readonly secretKey: SecretKey
}

/** The 16 bytes of a device id: the first 16 of SHA-256 of the public key. */
export function deviceIdBytes (publicKey: PublicKey): Uint8Array {
  if (publicKey.length !== PUBLIC_KEY_LENGTH) throw meshError('ERR_BAD_KEY', `an Ed25519 public key is ${PUBLIC_KEY_LENGTH} bytes, got ${publicKey.length}`)
  return sha256(publicKey).slice(0, DEVICE_ID_BYTES) // SHA-256: FIPS 180-4, through @noble/hashes (no node:crypto)
}

/** A device's id from its public key: base32 of {@link deviceIdBytes}. */
export function deviceIdFromPublicKey (publicKey: PublicKey): DeviceId {
  return toBase32(deviceIdBytes(publicKey))
}

/** Whether a value is a well-formed device id (26 characters a–z, 2–7). */
export function isDeviceId (text: unknown): text is DeviceId {
  return typeof text === 'string' && DEVICE_ID_PATTERN.test(text)
}

/** The 16 kid bytes of a textual id; throws ERR_BAD_DEVICE_ID for anything else. */
export function deviceIdToBytes (id: string): Uint8Array {
  const bytes = isDeviceId(id) ? fromBase32(id) : undefined
  if (bytes === undefined || bytes.length !== DEVICE_ID_BYTES) throw meshError('ERR_BAD_DEVICE_ID', `not a device id: ${JSON.stringify(id)} (expected ${DEVICE_ID_LENGTH} characters a-z, 2-7)`)
  return bytes
}

/** A device id from its 16 bytes (a frame's `kid`); throws ERR_BAD_DEVICE_ID on another length. */
export function deviceIdFromBytes (kid: Uint8Array): DeviceId {
  if (kid.length !== DEVICE_ID_BYTES) throw meshError('ERR_BAD_DEVICE_ID', `a device kid is ${DEVICE_ID_BYTES} bytes, got ${kid.length}`)
  return toBase32(kid)
}

/** Recently checked (public key, id) pairs: the hot path checks the same few keys again and again. */
const MAX_CACHED_IDS = 4096
const idCache = new Map<string, DeviceId>()

/** True when `publicKey` derives to `id`: the check behind every TXT record, status and roster entry. */
export function keyMatchesId (publicKey: Uint8Array, id: string): boolean {
  if (publicKey.length !== PUBLIC_KEY_LENGTH || !isDeviceId(id)) return false
  const cacheKey = bytesKey(publicKey)
  let derived = idCache.get(cacheKey)
  if (derived === undefined) {
    if (idCache.size >= MAX_CACHED_IDS) idCache.clear()
    derived = deviceIdFromPublicKey(publicKey)
    idCache.set(cacheKey, derived)
  }
  return derived === id
}

/** The key pair of an Ed25519 secret key: the public key derived from it, and the device id. */
export function keyPairFromSecret (secretKey: SecretKey, ed: Ed25519 = defaultEd25519): KeyPair {
  if (secretKey.length !== SECRET_KEY_LENGTH) throw meshError('ERR_BAD_KEY', `an Ed25519 private key is ${SECRET_KEY_LENGTH} bytes, got ${secretKey.length}`)
  const publicKey = ed.getPublicKey(secretKey)
  return { id: deviceIdFromPublicKey(publicKey), publicKey, secretKey: new Uint8Array(secretKey) }
}

/** 32 bytes from the platform's CSPRNG (Web Crypto `getRandomValues`: Node >= 19 and browsers have it). */
function randomSecret (): Uint8Array {
  return globalThis.crypto.getRandomValues(new Uint8Array(SECRET_KEY_LENGTH))
}

/** A fresh key pair; pass `random` (32 bytes) for a deterministic one in tests and seeded fleets. */
export function generateKeyPair (random: Uint8Array = randomSecret(), ed: Ed25519 = defaultEd25519): KeyPair {
  return keyPairFromSecret(random, ed)
}

/** base64url (no padding) of the public key: how TXT records, statuses and rosters carry it. */
export function publicKeyText (publicKey: PublicKey): string {
  return toBase64url(publicKey)
}
