import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { meshError, type Random } from '../../shared/index.js'

/** Ephemeral X25519 (RFC 7748) through node:crypto, with raw 32-byte public keys on the wire. */

export const X25519_BYTES = 32
// DER prefixes around a raw X25519 key (RFC 8410 §7 PKCS#8, §4 SubjectPublicKeyInfo).
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex')
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex')

export interface EphemeralKey {
  readonly privateKey: KeyObject
  readonly publicKey: Uint8Array
}

/** A fresh key pair; with a non-secure (seeded) `random`, a reproducible one for tests. */
export function generateEphemeral (random: Random): EphemeralKey {
  const privateKey = random.secure
    ? generateKeyPairSync('x25519').privateKey
    : createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, random.bytes(X25519_BYTES)]), format: 'der', type: 'pkcs8' })
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' })
  return { privateKey, publicKey: new Uint8Array(spki.subarray(SPKI_PREFIX.length)) }
}

/** The shared secret; ERR_HANDSHAKE for a peer key that is malformed or of small order (all-zero output, RFC 7748 §6.1). */
export function x25519 (own: EphemeralKey, peerPublic: Uint8Array): Uint8Array {
  let secret: Buffer
  try {
    const publicKey = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, peerPublic]), format: 'der', type: 'spki' })
    secret = diffieHellman({ privateKey: own.privateKey, publicKey })
  } catch (err) {
    throw meshError('ERR_HANDSHAKE', 'the peer\'s ephemeral X25519 key is not usable', { cause: err })
  }
  if (secret.every((byte) => byte === 0)) throw meshError('ERR_HANDSHAKE', 'the peer\'s ephemeral X25519 key has small order (all-zero shared secret)')
  return new Uint8Array(secret)
}
