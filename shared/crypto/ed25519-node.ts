import { bytesKey, fromBase64, toBase64url, toHex } from '../bytes.js'
import { meshError } from '../errors.js'
import { PUBLIC_KEY_LENGTH, SECRET_KEY_LENGTH, SIGNATURE_LENGTH, type Ed25519 } from './ed25519.js'

/**
 * The Ed25519 backend over node:crypto (OpenSSL), written against the few node:crypto functions it
 * calls rather than importing the module: this file stays loadable in a browser, and the module
 * comes in from `process.getBuiltinModule` (./ed25519-default.ts) or from ../node.ts (the
 * `iotmesh/shared/node` entry point, which imports node:crypto).
 *
 * Keys go in as strings, which @types/node and node:crypto agree on without a Buffer: the private
 * key as PKCS#8 DER in hex (RFC 8410 §7), the public key as a JWK (RFC 8037 §2, "OKP"), which
 * node:crypto also imports about 10x faster than DER.
 */

/** A private key input node:crypto's createPrivateKey takes. */
export interface Pkcs8KeyInput { key: string, format: 'der', type: 'pkcs8', encoding: 'hex' }
/** A public key input node:crypto's createPublicKey takes (RFC 8037 §2). */
export interface OkpJwkInput { key: { kty: 'OKP', crv: 'Ed25519', x: string }, format: 'jwk' }

/** The part of node:crypto used here; K is node:crypto's KeyObject. */
export interface NodeCryptoApi<K> {
  createPrivateKey (input: Pkcs8KeyInput): K
  createPublicKey (input: K | OkpJwkInput): K
  sign (algorithm: null, data: Uint8Array, key: K): Uint8Array
  verify (algorithm: null, data: Uint8Array, key: K, signature: Uint8Array): boolean
}

/** What the backend reads back from a KeyObject. */
export interface NodeKeyObject {
  export (options: { format: 'jwk' }): { x?: string }
}

/** RFC 8410 §7: the DER prefix that wraps a raw 32-byte private key (the RFC 8032 seed) as PKCS#8. */
const PKCS8_PREFIX_HEX = '302e020100300506032b657004220420'

/** A raw Ed25519 private key as input for node:crypto's createPrivateKey; throws ERR_BAD_KEY for a wrong length. */
export function pkcs8KeyInput (secretKey: Uint8Array): Pkcs8KeyInput {
  if (secretKey.length !== SECRET_KEY_LENGTH) throw meshError('ERR_BAD_KEY', `an Ed25519 private key is ${SECRET_KEY_LENGTH} bytes, got ${secretKey.length}`)
  return { key: PKCS8_PREFIX_HEX + toHex(secretKey), format: 'der', type: 'pkcs8', encoding: 'hex' }
}

/** Raw key -> KeyObject, cached: importing a key costs about as much as a verify. */
export const MAX_CACHED_KEYS = 4096

/**
 * A full cache lets go of the key used least recently, one at a time (a Map keeps insertion order;
 * a hit moves its key to the end). Emptied at once, as it was, a mesh of more than 4,096 signers
 * imported every key again, its gateway's and its busiest devices' too, each time it filled.
 */
function cached<K> (cache: Map<string, K>, raw: Uint8Array, make: () => K): K {
  const id = bytesKey(raw)
  let key = cache.get(id)
  if (key === undefined) {
    key = make()
    if (cache.size >= MAX_CACHED_KEYS) cache.delete(cache.keys().next().value as string)
  } else {
    cache.delete(id) // most recently used last
  }
  cache.set(id, key)
  return key
}

export function createNodeEd25519<K extends NodeKeyObject> (crypto: NodeCryptoApi<K>): Ed25519 {
  const publicKeys = new Map<string, K>()
  const privateKeys = new Map<string, K>()
  const publicKeyObject = (publicKey: Uint8Array): K => cached(publicKeys, publicKey, () =>
    crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: toBase64url(publicKey) }, format: 'jwk' }))
  // A key of the wrong length is refused (ERR_BAD_KEY) inside `make`, so it is never cached.
  const privateKeyObject = (secretKey: Uint8Array): K => cached(privateKeys, secretKey, () => crypto.createPrivateKey(pkcs8KeyInput(secretKey)))
  return {
    name: 'node',
    getPublicKey (secretKey) {
      const x = crypto.createPublicKey(privateKeyObject(secretKey)).export({ format: 'jwk' }).x
      const publicKey = x === undefined ? undefined : fromBase64(x)
      if (publicKey?.length !== PUBLIC_KEY_LENGTH) throw meshError('ERR_BAD_KEY', 'node:crypto derived no Ed25519 public key from this private key')
      return publicKey
    },
    sign (message, secretKey) {
      return new Uint8Array(crypto.sign(null, message, privateKeyObject(secretKey)))
    },
    verify (signature, message, publicKey) {
      if (signature.length !== SIGNATURE_LENGTH || publicKey.length !== PUBLIC_KEY_LENGTH) return false
      try {
        return crypto.verify(null, message, publicKeyObject(publicKey), signature)
      } catch {
        return false // a public key node:crypto refuses to import
      }
    }
  }
}
