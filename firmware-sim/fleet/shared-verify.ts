import { createHash } from 'node:crypto'
import type { Ed25519, PublicKey, SecretKey } from '../../shared/index.js'

/** What a shared verifier did: checks answered from what the process already knew, and real ones. */
export interface SharedVerifyCounters {
  /** Checks of a signature this process made or already verified: answered without the curve. */
  shared: number
  /** Checks done for real (first sight, or a signature that does not hold). */
  checked: number
}

export interface SharedEd25519 extends Ed25519 {
  readonly counters: Readonly<SharedVerifyCounters>
}

/** Most (key, signature, message) triples remembered; the oldest go first. A reading's frame and its acks live far shorter. */
export const SHARED_VERIFY_ENTRIES = 65_536

/**
 * Verification shared by the simulated devices of one process (issue 15: "what per-device work
 * can be shared in a simulation without changing what is measured, say so and label it").
 *
 * On real hardware every device checks every signature that reaches it. In one process, the same
 * signature is checked again at each hop (a reading, its acks, every subscriber's declaration):
 * the CPU of one machine spent N times over. This backend remembers the (public key, signature,
 * message) triples that the process signed or verified, keyed by SHA-256 over all three, and
 * answers a check of a remembered triple without the curve. Content-addressed, so it is sound: a
 * forgery (any other signature, message or key) is not remembered and is checked for real, as is
 * everything from outside the process. What every device decides is unchanged (delivery, routing,
 * refusals); only the CPU per device is less than on hardware, which is why the fleet labels its
 * output (`verification: "shared"`). Signing stays per device.
 */
export function sharedEd25519 (inner: Ed25519, maxEntries = SHARED_VERIFY_ENTRIES): SharedEd25519 {
  const known = new Set<string>()
  const publicKeys = new WeakMap<SecretKey, PublicKey>()
  const counters: SharedVerifyCounters = { shared: 0, checked: 0 }
  const keyOf = (publicKey: PublicKey, signature: Uint8Array, message: Uint8Array): string =>
    createHash('sha256').update(publicKey).update(signature).update(message).digest('base64')
  const remember = (key: string): void => {
    if (known.size >= maxEntries) known.delete(known.values().next().value as string)
    known.add(key)
  }
  const publicKeyOf = (secretKey: SecretKey): PublicKey => {
    let pk = publicKeys.get(secretKey)
    if (pk === undefined) publicKeys.set(secretKey, pk = inner.getPublicKey(secretKey))
    return pk
  }
  return {
    name: inner.name,
    counters,
    getPublicKey: (secretKey) => inner.getPublicKey(secretKey),
    sign (message, secretKey) {
      const signature = inner.sign(message, secretKey)
      remember(keyOf(publicKeyOf(secretKey), signature, message))
      return signature
    },
    verify (signature, message, publicKey) {
      const key = keyOf(publicKey, signature, message)
      if (known.has(key)) { counters.shared++; return true }
      counters.checked++
      const ok = inner.verify(signature, message, publicKey)
      if (ok) remember(key)
      return ok
    }
  }
}
