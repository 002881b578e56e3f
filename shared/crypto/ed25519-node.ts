import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto'
import { meshError } from '../errors.js'
import { PUBLIC_KEY_LENGTH, SECRET_KEY_LENGTH, SIGNATURE_LENGTH, type Ed25519 } from './ed25519.js'

// DER prefixes that wrap a raw 32-byte key (RFC 8410 §7 PKCS#8, §4 SubjectPublicKeyInfo).
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')

/** Raw key -> KeyObject, cached: importing a key costs about as much as a verify. */
const MAX_CACHED_KEYS = 4096
const publicKeys = new Map<string, KeyObject>()
const privateKeys = new Map<string, KeyObject>()

function cached (cache: Map<string, KeyObject>, raw: Uint8Array, make: () => KeyObject): KeyObject {
  const id = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('latin1')
  let key = cache.get(id)
  if (key === undefined) {
    if (cache.size >= MAX_CACHED_KEYS) cache.clear()
    key = make()
    cache.set(id, key)
  }
  return key
}

export function nodePublicKeyObject (publicKey: Uint8Array): KeyObject {
  return cached(publicKeys, publicKey, () =>
    createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' }))
}

export function nodePrivateKeyObject (secretKey: Uint8Array): KeyObject {
  if (secretKey.length !== SECRET_KEY_LENGTH) throw meshError('ERR_BAD_KEY', `an Ed25519 private key is ${SECRET_KEY_LENGTH} bytes, got ${secretKey.length}`)
  return cached(privateKeys, secretKey, () =>
    createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, secretKey]), format: 'der', type: 'pkcs8' }))
}

export const nodeEd25519: Ed25519 = {
  name: 'node',
  getPublicKey (secretKey) {
    const spki = createPublicKey(nodePrivateKeyObject(secretKey)).export({ format: 'der', type: 'spki' })
    return new Uint8Array(spki.subarray(SPKI_PREFIX.length))
  },
  sign (message, secretKey) {
    return new Uint8Array(sign(null, message, nodePrivateKeyObject(secretKey)))
  },
  verify (signature, message, publicKey) {
    if (signature.length !== SIGNATURE_LENGTH || publicKey.length !== PUBLIC_KEY_LENGTH) return false
    try {
      return verify(null, message, nodePublicKeyObject(publicKey), signature)
    } catch {
      return false // a public key that is not a curve point
    }
  }
}
