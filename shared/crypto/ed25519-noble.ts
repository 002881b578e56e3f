import * as ed from '@noble/ed25519'
import { sha512 } from '@noble/hashes/sha2.js'
import { meshError } from '../errors.js'
import { PUBLIC_KEY_LENGTH, SECRET_KEY_LENGTH, SIGNATURE_LENGTH, type Ed25519 } from './ed25519.js'

// noble's synchronous API needs a SHA-512; @noble/hashes keeps it portable (no node:crypto).
ed.hashes.sha512 = sha512

function checkSecret (secretKey: Uint8Array): void {
  if (secretKey.length !== SECRET_KEY_LENGTH) throw meshError('ERR_BAD_KEY', `an Ed25519 private key is ${SECRET_KEY_LENGTH} bytes, got ${secretKey.length}`)
}

export const nobleEd25519: Ed25519 = {
  name: 'noble',
  getPublicKey (secretKey) {
    checkSecret(secretKey)
    return ed.getPublicKey(secretKey)
  },
  sign (message, secretKey) {
    checkSecret(secretKey)
    return ed.sign(message, secretKey)
  },
  verify (signature, message, publicKey) {
    if (signature.length !== SIGNATURE_LENGTH || publicKey.length !== PUBLIC_KEY_LENGTH) return false
    try {
      // zip215: false = strict RFC 8032 / FIPS 186-5 rules. Both implementations agree on every
      // honestly made signature and on the RFC 8032 vectors; on some signatures crafted by the key
      // holder (non-canonical points, small-order components: the "Taming the many EdDSAs" cases)
      // OpenSSL and noble still differ. test/shared/ed25519.test.ts pins where.
      return ed.verify(signature, message, publicKey, { zip215: false })
    } catch {
      return false
    }
  }
}
