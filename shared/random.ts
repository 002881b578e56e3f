/**
 * The one random source, as a component (hyperswarm seeds keys and jitter so a test replays
 * exactly): every part of iotmesh that draws takes a `Random` and defaults to `systemRandom`.
 * `systemRandom` is the only source fit for nonces and key material; `seededRandom` is a
 * deterministic PRNG for tests, the fleet simulator, fault injection and jitter, never for secrets
 * on a real network. Pure code: the system source is Web Crypto's `getRandomValues` (a global in
 * Node ≥ 19 and in browsers), so this module loads anywhere.
 */
export interface Random {
  /** Uniform in [0, 1). */
  float (): number
  /** `length` random bytes. */
  bytes (length: number): Uint8Array
  /** True only for a source fit for key material. */
  readonly secure: boolean
}

/** `getRandomValues` fills at most 65,536 bytes a call (Web Crypto API §10.1.1). */
const MAX_GET_RANDOM = 65_536

function systemBytes (length: number): Uint8Array {
  const out = new Uint8Array(length)
  for (let at = 0; at < length; at += MAX_GET_RANDOM) globalThis.crypto.getRandomValues(out.subarray(at, Math.min(length, at + MAX_GET_RANDOM)))
  return out
}

export const systemRandom: Random = {
  float: () => globalThis.crypto.getRandomValues(new Uint32Array(1))[0] as number / 0x1_0000_0000,
  bytes: systemBytes,
  secure: true
}

/** mulberry32 (Tommy Ettinger, public domain): a 32-bit state PRNG, uniform in [0, 1), good enough for simulation. */
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

/** A deterministic `Random` (a mulberry32 stream): the same seed gives the same floats and bytes. */
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

/**
 * Mixes values into one 32-bit seed (FNV-1a over the parts), to derive independent streams from
 * one seed: `seededRandom(mixSeed(fleetSeed, 'link', from, to))`.
 */
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
