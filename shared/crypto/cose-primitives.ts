import { concatBytes, toHex } from '../bytes.js'
import { meshError } from '../errors.js'

/**
 * The primitives COSE_Encrypt needs (shared/cose-encrypt.ts): X25519 (RFC 7748), AES key wrap
 * (RFC 3394), AES-GCM and ChaCha20/Poly1305 AEADs. Over node:crypto (OpenSSL), written against the
 * few functions used rather than importing the module, so this file stays loadable in a browser
 * (as ./ed25519-node.ts); the module comes from `process.getBuiltinModule` (./ed25519-default.ts
 * explains why). A runtime without node:crypto gets ERR_UNSUPPORTED_ALG when it tries to encrypt or
 * decrypt.
 */

export interface CosePrimitives {
  /** The X25519 public key of a 32-byte private key. */
  x25519Public (secretKey: Uint8Array): Uint8Array
  /** The X25519 shared secret; ERR_DECRYPT for a malformed key or an all-zero result (RFC 7748 §6.1). */
  x25519 (secretKey: Uint8Array, publicKey: Uint8Array): Uint8Array
  /** HKDF-SHA-256 (RFC 5869) without salt (§2.2: HashLen zeros). */
  hkdfSha256 (ikm: Uint8Array, info: Uint8Array, length: number): Uint8Array
  /** RFC 3394 AES key wrap with the default IV A6A6A6A6A6A6A6A6. */
  wrap (kek: Uint8Array, key: Uint8Array): Uint8Array
  /** RFC 3394 unwrap; ERR_DECRYPT when the integrity check fails. */
  unwrap (kek: Uint8Array, wrapped: Uint8Array): Uint8Array
  /** AEAD seal: ciphertext followed by the 16-byte tag (RFC 9053 §4.1, §4.3). */
  seal (cipher: AeadName, key: Uint8Array, iv: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array
  /** AEAD open; ERR_DECRYPT when the tag does not hold. */
  open (cipher: AeadName, key: Uint8Array, iv: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array
}

export type AeadName = 'aes-128-gcm' | 'aes-256-gcm' | 'chacha20-poly1305'

const TAG_BYTES = 16
// RFC 8410 §7 (PKCS#8) and §4 (SubjectPublicKeyInfo) prefixes around a raw X25519 key.
const PKCS8_PREFIX = '302e020100300506032b656e04220420'
const SPKI_PREFIX = '302a300506032b656e032100'
/** RFC 3394 §2.2.3.1 default initial value. */
const KW_IV = new Uint8Array(8).fill(0xa6)

interface KeyObjectLike { export (options: { format: 'der', type: 'spki' }): Uint8Array }
interface CipherLike {
  update (data: Uint8Array): Uint8Array
  final (): Uint8Array
  setAAD? (aad: Uint8Array, options?: { plaintextLength: number }): unknown
  getAuthTag? (): Uint8Array
  setAuthTag? (tag: Uint8Array): unknown
}
/** The part of node:crypto used here. */
interface NodeCryptoLike {
  createPrivateKey (input: { key: string, format: 'der', type: 'pkcs8', encoding: 'hex' }): KeyObjectLike
  createPublicKey (input: KeyObjectLike | { key: string, format: 'der', type: 'spki', encoding: 'hex' }): KeyObjectLike
  diffieHellman (options: { privateKey: KeyObjectLike, publicKey: KeyObjectLike }): Uint8Array
  createCipheriv (name: string, key: Uint8Array, iv: Uint8Array | string, options?: { authTagLength: number }): CipherLike
  createDecipheriv (name: string, key: Uint8Array, iv: Uint8Array | string, options?: { authTagLength: number }): CipherLike
  hkdfSync (digest: 'sha256', ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): ArrayBuffer
}

function privateKey (api: NodeCryptoLike, secretKey: Uint8Array): KeyObjectLike {
  if (secretKey.length !== 32) throw meshError('ERR_BAD_KEY', `an X25519 private key is 32 bytes, got ${secretKey.length}`)
  return api.createPrivateKey({ key: PKCS8_PREFIX + toHex(secretKey), format: 'der', type: 'pkcs8', encoding: 'hex' })
}

function decryptFailed (what: string, cause?: unknown): Error {
  return meshError('ERR_DECRYPT', `${what} failed authenticated decryption: the bytes were changed, or the key is not the one they were made for`, { cause })
}

/** The primitives over a node:crypto module. */
export function createNodeCosePrimitives (api: NodeCryptoLike): CosePrimitives {
  return {
    x25519Public (secretKey) {
      const spki = api.createPublicKey(privateKey(api, secretKey)).export({ format: 'der', type: 'spki' })
      return new Uint8Array(spki.subarray(spki.length - 32))
    },
    x25519 (secretKey, publicKey) {
      let secret: Uint8Array
      try {
        if (publicKey.length !== 32) throw new Error(`an X25519 public key is 32 bytes, got ${publicKey.length}`)
        const peer = api.createPublicKey({ key: SPKI_PREFIX + toHex(publicKey), format: 'der', type: 'spki', encoding: 'hex' })
        secret = new Uint8Array(api.diffieHellman({ privateKey: privateKey(api, secretKey), publicKey: peer }))
      } catch (err) {
        throw meshError('ERR_DECRYPT', 'an X25519 key is not usable', { cause: err })
      }
      if (secret.every((b) => b === 0)) throw meshError('ERR_DECRYPT', 'the X25519 key has small order (all-zero shared secret, RFC 7748 §6.1)')
      return secret
    },
    hkdfSha256 (ikm, info, length) {
      return new Uint8Array(api.hkdfSync('sha256', ikm, new Uint8Array(0), info, length))
    },
    wrap (kek, key) {
      const c = api.createCipheriv(`id-aes${kek.length * 8}-wrap`, kek, KW_IV)
      return new Uint8Array(concatBytes(c.update(key), c.final()))
    },
    unwrap (kek, wrapped) {
      try {
        const d = api.createDecipheriv(`id-aes${kek.length * 8}-wrap`, kek, KW_IV)
        return new Uint8Array(concatBytes(d.update(wrapped), d.final()))
      } catch (err) {
        throw decryptFailed('the wrapped content key (RFC 3394)', err)
      }
    },
    seal (cipher, key, iv, aad, plaintext) {
      const c = api.createCipheriv(cipher, key, iv, { authTagLength: TAG_BYTES })
      c.setAAD?.(aad, { plaintextLength: plaintext.length })
      const body = concatBytes(c.update(plaintext), c.final())
      return concatBytes(body, c.getAuthTag?.() ?? new Uint8Array(0))
    },
    open (cipher, key, iv, aad, sealed) {
      if (sealed.length < TAG_BYTES) throw decryptFailed('the ciphertext')
      try {
        const d = api.createDecipheriv(cipher, key, iv, { authTagLength: TAG_BYTES })
        d.setAuthTag?.(sealed.subarray(sealed.length - TAG_BYTES))
        d.setAAD?.(aad, { plaintextLength: sealed.length - TAG_BYTES })
        return new Uint8Array(concatBytes(d.update(sealed.subarray(0, sealed.length - TAG_BYTES)), d.final()))
      } catch (err) {
        throw decryptFailed('the ciphertext', err)
      }
    }
  }
}

function builtin (): CosePrimitives | undefined {
  let api
  try {
    // eslint-disable-next-line no-restricted-properties -- the feature-tested look at the host, as ./ed25519-default.ts
    api = globalThis.process?.getBuiltinModule?.('node:crypto')
  } catch {
    return undefined
  }
  return api === undefined ? undefined : createNodeCosePrimitives(api as unknown as NodeCryptoLike)
}

const builtinPrimitives = builtin()

/** node:crypto's primitives where the runtime has them; ERR_UNSUPPORTED_ALG elsewhere (browsers, for now). */
export function defaultCosePrimitives (): CosePrimitives {
  if (builtinPrimitives === undefined) throw meshError('ERR_UNSUPPORTED_ALG', 'COSE_Encrypt needs node:crypto (X25519, AES key wrap, AES-GCM); this runtime has none')
  return builtinPrimitives
}
