/**
 * Keyed randomness for simulated devices, on top of the one random source (shared/random.ts;
 * hyperswarm seeds its jitter so a test replays exactly).
 *
 * Two kinds:
 * - `streamAt(...key)`: a seeded stream (`() => number`, shared's mulberry32), for things that
 *   are naturally sequential.
 * - `unitAt(...key)` / `normalAt(...key)`: a value as a pure function of a key such as
 *   (seed, device, "temperature", sample time). A simulated sensor built on these reads the same
 *   value for the same key however often, and in whatever order, it is asked: the same seed gives
 *   the same fleet, whatever the sampling schedule.
 *
 * Neither is fit for secrets.
 */

import { mulberry32 } from '../shared/index.js'

export type KeyPart = number | string

/**
 * A 32-bit hash of a key: numbers (any finite double, such as a time in ms) and strings, in order.
 * murmur3's finaliser (fmix32) mixes each 32-bit word into the state.
 */
export function hashKey (...parts: KeyPart[]): number {
  let h = 0x9e3779b9 ^ parts.length
  for (const part of parts) {
    if (typeof part === 'string') {
      h = mix(h, 0x5bd1e995 ^ part.length)
      for (let i = 0; i < part.length; i++) h = mix(h, part.charCodeAt(i))
    } else {
      // Integers up to 2^53 as two words; other doubles by their bits.
      if (Number.isSafeInteger(part)) {
        h = mix(h, part >>> 0)
        h = mix(h, Math.floor(part / 0x1_0000_0000) >>> 0)
      } else {
        const view = new DataView(new ArrayBuffer(8))
        view.setFloat64(0, part)
        h = mix(h, view.getUint32(0))
        h = mix(h, view.getUint32(4))
      }
    }
  }
  return fmix32(h)
}

function mix (h: number, word: number): number {
  return fmix32((h ^ word) >>> 0) ^ Math.imul(word, 0xcc9e2d51)
}

function fmix32 (h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** Uniform in [0, 1), a pure function of the key. */
export function unitAt (...parts: KeyPart[]): number {
  return hashKey(...parts) / 0x1_0000_0000
}

/** Standard normal (mean 0, deviation 1), a pure function of the key (Box–Muller). */
export function normalAt (...parts: KeyPart[]): number {
  const u1 = (hashKey(...parts, -1) + 1) / 0x1_0000_0001 // (0, 1): log(0) never happens
  const u2 = hashKey(...parts, -2) / 0x1_0000_0000
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2)
}

/** A seeded stream, uniform in [0, 1), for a key: `streamAt(seed, device, "door")`. */
export function streamAt (...parts: KeyPart[]): () => number {
  return mulberry32(hashKey(...parts))
}

/** Standard normal from a stream. */
export function normal (stream: () => number): number {
  const u1 = 1 - stream() // (0, 1]
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * stream())
}

/** Uniform in [min, max) from a stream or a unit value. */
export function between (unit: number, min: number, max: number): number {
  return min + unit * (max - min)
}

/**
 * A mean-reverting random walk (an AR(1) process, x[k] = φ·x[k-1] + σ·ε[k]) sampled at knots
 * `stepMs` apart and interpolated between them, as a pure function of time. x[k] is the sum
 * Σ φ^j·σ·ε[k-j] truncated where φ^j < 1e-4, so every knot is computed from the key alone and two
 * devices (or two runs) that sample at different times still see the same curve. The stationary
 * deviation is σ / sqrt(1 - φ²).
 */
export function walkAt (key: readonly KeyPart[], timeMs: number, walk: { stepMs: number, phi: number, sigma: number }): number {
  const position = timeMs / walk.stepMs
  const k = Math.floor(position)
  const frac = position - k
  const terms = Math.ceil(Math.log(1e-4) / Math.log(walk.phi))
  const base = hashKey(...key, walk.stepMs, walk.phi, walk.sigma)
  const knot = (index: number): number => {
    const memo = KNOTS.get(base)
    const known = memo?.get(index)
    if (known !== undefined) return known
    let sum = 0
    let weight = 1
    for (let j = 0; j < terms; j++) {
      sum += weight * normalAt(base, index - j)
      weight *= walk.phi
    }
    const value = walk.sigma * sum
    remember(base, index, value)
    return value
  }
  const a = knot(k)
  if (frac === 0) return a
  // smoothstep between knots: no kinks at knot times
  const s = frac * frac * (3 - 2 * frac)
  return a + (knot(k + 1) - a) * s
}

/** Knot values are pure functions of their key, so a small cache changes nothing but the cost. */
const KNOTS = new Map<number, Map<number, number>>()
const KNOT_WALKS = 1024
const KNOTS_PER_WALK = 8

function remember (base: number, index: number, value: number): void {
  let memo = KNOTS.get(base)
  if (memo === undefined) {
    if (KNOTS.size >= KNOT_WALKS) KNOTS.delete(KNOTS.keys().next().value as number)
    memo = new Map()
    KNOTS.set(base, memo)
  }
  if (memo.size >= KNOTS_PER_WALK) memo.delete(memo.keys().next().value as number)
  memo.set(index, value)
}

/** Rounds to a multiple of `step` (a sensor's resolution), without binary noise such as 21.500000001. */
export function quantize (value: number, step: number): number {
  const decimals = Math.max(0, Math.ceil(-Math.log10(step) - 1e-9))
  return Number((Math.round(value / step) * step).toFixed(decimals))
}

/** Rounds down to a multiple of `step`. */
export function quantizeDown (value: number, step: number): number {
  const decimals = Math.max(0, Math.ceil(-Math.log10(step) - 1e-9))
  return Number((Math.floor(value / step + 1e-9) * step).toFixed(decimals))
}
