import type { Random } from '../../shared/index.js'

/** A `Random` that always draws `value` (bytes: `value` scaled to 0..255), to pin jitter in a test. */
export function fixedRandom (value: number): Random {
  return { float: () => value, bytes: (length) => new Uint8Array(length).fill(Math.floor(value * 256)), secure: false }
}
