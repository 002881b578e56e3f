import { generateKeyPair, type KeyPair } from '../../shared/index.js'

/** A deterministic key pair per label (hyperswarm seeds keys in tests the same way). */
export function testKeys (label: number): KeyPair {
  return generateKeyPair(new Uint8Array(32).fill(label))
}

/** Two key pairs ordered by id: `[smaller, larger]`. */
export function orderedKeys (a: number, b: number): [KeyPair, KeyPair] {
  const ka = testKeys(a)
  const kb = testKeys(b)
  return ka.id < kb.id ? [ka, kb] : [kb, ka]
}
