import { bytesEqual } from './bytes.js'
import { builtinNodeEd25519 } from './crypto/ed25519-default.js'
import { nobleEd25519 } from './crypto/ed25519-noble.js'
import type { Ed25519, PublicKey } from './crypto/ed25519.js'
import type { KeyPair } from './identity.js'

/**
 * Verify once per process (issue 15): a mark on the exact bytes object of a frame that this process
 * signed, or verified, with a given key. A verifier in the same process that holds the same key for
 * the frame's origin takes the mark instead of checking the signature again: the gateway's ingest
 * for a frame its own mesh node verified, a device's own node for the frame its device just signed,
 * the gateway's node for a broker reading its ingest verified.
 *
 * Sound by construction, never a claim: the mark lives in a module-private WeakMap keyed by the
 * Uint8Array object itself, so bytes that arrive from anywhere (a link, a socket, a file) are a new
 * object without a mark, and nothing on the wire can carry one. It holds the key it was made with
 * (a verifier with another key for that origin verifies) and the length and a 32-bit FNV-1a hash of
 * the bytes when marked, so bytes written to after marking lose it. Marks go with their bytes
 * (weakly held: nothing to bound or clean).
 */

interface Mark {
  readonly key: PublicKey
  readonly length: number
  readonly hash: number
}

const marks = new WeakMap<Uint8Array, Mark>()
/** Key pairs whose public key was checked against their secret key once (a mark from signing is made only for these). */
const consistent = new WeakMap<KeyPair, boolean>()

/** FNV-1a, 32 bits, over every byte: a frame is a few hundred bytes, far below one signature check. */
function fnv1a (bytes: Uint8Array): number {
  let h = 0x811c9dc5
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ (bytes[i] as number), 0x01000193)
  return h >>> 0
}

/** Marks `bytes` as holding a signature that verifies with `key`: only a verifier's check or our own signing says so. */
export function markVerified (bytes: Uint8Array, key: PublicKey): void {
  marks.set(bytes, { key, length: bytes.length, hash: fnv1a(bytes) })
}

/**
 * Marks a frame this process just signed with `keys`, when the signature is sure to verify: signed by
 * one of iotmesh's own backends (a caller's backend may sign anything, a forger's included), with a key
 * pair whose public key derives from its secret key (checked once per key pair object).
 */
export function markSigned (bytes: Uint8Array, keys: KeyPair, ed: Ed25519): void {
  if (ed !== builtinNodeEd25519 && ed !== nobleEd25519) return
  let ok = consistent.get(keys)
  if (ok === undefined) {
    ok = bytesEqual(ed.getPublicKey(keys.secretKey), keys.publicKey)
    consistent.set(keys, ok)
  }
  if (ok) markVerified(bytes, keys.publicKey)
}

/** True when this very bytes object, unchanged since, was signed or verified in this process with `key`. */
export function vouched (bytes: Uint8Array, key: PublicKey): boolean {
  const mark = marks.get(bytes)
  if (mark === undefined || mark.length !== bytes.length) return false
  return (mark.key === key || bytesEqual(mark.key, key)) && mark.hash === fnv1a(bytes)
}

/** Gives `copy` the mark of `original` when it has one, still holds, and `copy` has the same bytes. */
export function carryMark (original: Uint8Array, copy: Uint8Array): boolean {
  const mark = marks.get(original)
  if (mark === undefined || !vouched(original, mark.key) || !bytesEqual(original, copy)) return false
  marks.set(copy, mark)
  return true
}
