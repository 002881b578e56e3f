import { createHmac, hash } from 'node:crypto'
import { bytesEqual } from '../../shared/index.js'

/**
 * One-way hash chains for hop counts, as SEAD does (Hu, Johnson, Perrig, "SEAD: Secure Efficient
 * Distance Vector Routing for Mobile Wireless Ad Hoc Networks", WMCSA 2002, §3.2).
 *
 * For each version of its declaration a subscriber draws a secret e_0 and computes
 * e_{i+1} = H(e_i) up to e_N, where N is the "unreachable" distance; it signs e_N (the anchor)
 * in its declaration. A node that advertises distance d carries e_d, and anyone checks it with
 * H^{N-d}(e_d) == e_N. A node that heard e_d can compute e_{d+1}, e_{d+2}, … and so advertise
 * d+1 or more, but not d-1: that would mean inverting H.
 *
 * H is SHA-256 truncated to 128 bits (finding e_{d-1} from e_d is a 2^128 preimage search).
 * e_0 is not random but derived from the subscriber's secret key and the version (a keyed
 * hash, as RFC 6979 derives nonces): deterministic, so a seeded test replays exactly, and
 * unpredictable to anyone without the key.
 */

export const CHAIN_ELEMENT_BYTES = 16

/** H: one step down the chain. */
export function chainStep (element: Uint8Array): Uint8Array {
  return new Uint8Array(step(element))
}

/**
 * H as a view of the digest, for the loops below that copy what they keep. One-shot `hash`
 * (node:crypto, Node >= 20.12) rather than a Hash object per step: checking a new version's first
 * claim hashes up to N = 64 times, and with a Hash object each step cost about as much as the
 * rest of the claim (issue 15: in a 50-node all-to-all mesh, chain hashing took as much of the
 * thread as the declarations' Ed25519 verifications).
 */
function step (element: Uint8Array): Uint8Array {
  return hash('sha256', element, 'buffer').subarray(0, CHAIN_ELEMENT_BYTES)
}

/** e_0 for one version of a subscriber's declaration: HMAC-SHA-256(secret key, label ‖ version), truncated. */
export function chainSeed (secretKey: Uint8Array, version: number): Uint8Array {
  const digest = createHmac('sha256', secretKey).update('iotmesh interest chain').update(String(version)).digest()
  return new Uint8Array(digest.subarray(0, CHAIN_ELEMENT_BYTES))
}

/**
 * The elements of one chain a node knows: e_N (the anchor) and every element from the lowest
 * distance proven so far up to it. Checking a claim costs at most N hashes once per chain:
 * an element at or above the lowest known one is a comparison, one below it is hashed down to
 * the lowest known one and, when it holds, extends what is known.
 */
export class HashChain {
  readonly length: number
  readonly #elements: Uint8Array
  #low: number

  /** A chain known from its anchor only (a declaration received). */
  static fromAnchor (anchor: Uint8Array, length: number): HashChain {
    return new HashChain(anchor, length, length)
  }

  /** A whole chain from its seed (our own declaration): N hashes. */
  static fromSeed (seed: Uint8Array, length: number): HashChain {
    const chain = new HashChain(seed, length, 0)
    let element = seed
    for (let i = 1; i <= length; i++) {
      element = step(element)
      chain.#elements.set(element, i * CHAIN_ELEMENT_BYTES)
    }
    return chain
  }

  private constructor (element: Uint8Array, length: number, at: number) {
    this.length = length
    this.#elements = new Uint8Array((length + 1) * CHAIN_ELEMENT_BYTES)
    this.#elements.set(element.subarray(0, CHAIN_ELEMENT_BYTES), at * CHAIN_ELEMENT_BYTES)
    this.#low = at
  }

  /** The lowest distance whose element is known. */
  get low (): number { return this.#low }
  get anchor (): Uint8Array { return this.element(this.length) as Uint8Array }

  /** e_d, when known (d at or above `low`). */
  element (distance: number): Uint8Array | undefined {
    if (!Number.isSafeInteger(distance) || distance < this.#low || distance > this.length) return undefined
    return this.#elements.subarray(distance * CHAIN_ELEMENT_BYTES, (distance + 1) * CHAIN_ELEMENT_BYTES)
  }

  /** How many hashes checking a claim at `distance` would cost (0: a comparison). */
  cost (distance: number): number {
    return distance < this.#low && distance >= 0 ? this.#low - distance : 0
  }

  /** True when `element` is e_distance of this chain; a proven element lowers `low`. */
  check (distance: number, element: Uint8Array): boolean {
    if (!Number.isSafeInteger(distance) || distance < 0 || distance > this.length || element.length !== CHAIN_ELEMENT_BYTES) return false
    if (distance >= this.#low) return bytesEqual(element, this.element(distance) as Uint8Array)
    // e_distance … e_{low-1}, kept only when the last step lands on e_low.
    const steps = new Uint8Array((this.#low - distance) * CHAIN_ELEMENT_BYTES)
    steps.set(element)
    let e = element
    for (let d = distance + 1; d <= this.#low; d++) {
      e = step(e)
      if (d < this.#low) steps.set(e, (d - distance) * CHAIN_ELEMENT_BYTES)
    }
    if (!bytesEqual(e, this.element(this.#low) as Uint8Array)) return false
    this.#elements.set(steps, distance * CHAIN_ELEMENT_BYTES)
    this.#low = distance
    return true
  }
}
