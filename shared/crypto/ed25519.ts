/**
 * One signing interface, two implementations (README "Signatures"):
 * - `nodeEd25519` through `node:crypto` (OpenSSL), exported by `iotmesh/shared/node`: about 13x
 *   faster to verify, and the default on Node (`defaultEd25519`, ./ed25519-default.ts);
 * - `nobleEd25519` through `@noble/ed25519`: pure JS, the default in browsers and other runtimes.
 * Both follow RFC 8032 §5.1 (PureEdDSA, no context); both are tested against §7.1 and each other.
 */

/** A 32-byte Ed25519 private key (the RFC 8032 "seed"). */
export type SecretKey = Uint8Array
/** A 32-byte Ed25519 public key (RFC 8032 §5.1.5 encoding). */
export type PublicKey = Uint8Array

export interface Ed25519 {
  readonly name: 'node' | 'noble'
  getPublicKey (secretKey: SecretKey): PublicKey
  sign (message: Uint8Array, secretKey: SecretKey): Uint8Array
  /** False for any signature that does not hold, including malformed keys or signatures; never throws. */
  verify (signature: Uint8Array, message: Uint8Array, publicKey: PublicKey): boolean
}

export const SECRET_KEY_LENGTH = 32
export const PUBLIC_KEY_LENGTH = 32
export const SIGNATURE_LENGTH = 64
