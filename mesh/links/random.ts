import { randomBytes } from 'node:crypto'

/**
 * Randomness as a component (hyperswarm seeds keys and jitter so a test replays exactly).
 * `systemRandom` is the default and the only source fit for nonces and ephemeral keys;
 * `seededRandom` is a deterministic PRNG for tests, fault injection and jitter, never for secrets
 * on a real network.
 */
export interface Random {
  /** Uniform in [0, 1). */
  float (): number
  /** `length` random bytes. */
  bytes (length: number): Uint8Array
  /** True only for a source fit for key material. */
  readonly secure: boolean
}

export const systemRandom: Random = {
  float: () => randomBytes(4).readUInt32BE(0) / 0x1_0000_0000,
  bytes: (length) => new Uint8Array(randomBytes(length)),
  secure: true
}

/** mulberry32 (Tommy Ettinger, public domain): a 32-bit state PRNG, good enough for simulation. */
export function mulberry32 (seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000
  }
}

/** A deterministic `Random` for tests: the same seed gives the same floats and bytes. */
export function seededRandom (seed: number): Random {
  const next = mulberry32(seed)
  return {
    float: next,
    bytes: (length) => {
      const out = new Uint8Array(length)
      for (let i = 0; i < length; i++) out[i] = Math.floor(next() * 256)
      return out
    },
    secure: false
  }
}

/** Mixes values into one 32-bit seed (FNV-1a over the parts), to derive per-link seeds from a fleet seed. */
export function mixSeed (...parts: Array<number | string>): number {
  let hash = 0x811c9dc5
  for (const part of parts) {
    const text = typeof part === 'number' ? `#${part}` : `$${part}`
    for (let i = 0; i < text.length; i++) {
      hash ^= text.charCodeAt(i)
      hash = Math.imul(hash, 0x01000193) >>> 0
    }
  }
  return hash >>> 0
}
