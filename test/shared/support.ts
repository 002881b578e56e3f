/** Helpers shared by the foundation tests (test/shared, test/cli). Not a test file itself. */
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { onTestFinished } from 'vitest'
import { MeshError, keyPairFromSecret, type ErrorCode, type KeyPair } from '../../shared/index.js'

/** The project's own copy of a fixture (never ../shared): test/fixtures/NAME. */
export function fixturePath (name: string): string {
  return new URL(`../fixtures/${name}`, import.meta.url).pathname
}

export function readFixture<T = unknown> (name: string): T {
  return JSON.parse(readFileSync(fixturePath(name), 'utf8')) as T
}

export function hex (text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'hex'))
}

/** A fresh directory under os.tmpdir(), removed when the current test finishes. */
export async function tempDir (): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'iotmesh-test-'))
  onTestFinished(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/**
 * What calling `fn` raised: the MeshError code, 'no error', or 'not a MeshError: …' for anything
 * else. Tests compare it with `toBe(code)`, so a failure shows what happened instead.
 */
export function codeOf (fn: () => unknown): ErrorCode | 'no error' | `not a MeshError: ${string}` {
  try {
    fn()
  } catch (err) {
    return err instanceof MeshError ? err.code : `not a MeshError: ${String(err)}`
  }
  return 'no error'
}

export async function codeOfAsync (fn: () => Promise<unknown>): Promise<ErrorCode | 'no error' | `not a MeshError: ${string}`> {
  try {
    await fn()
  } catch (err) {
    return err instanceof MeshError ? err.code : `not a MeshError: ${String(err)}`
  }
  return 'no error'
}

/** A seeded key pair: secret = [seed, seed+1, …] (mod 256), as hyperswarm seeds keys in tests. */
export function seededKeys (seed: number): KeyPair {
  return keyPairFromSecret(Uint8Array.from({ length: 32 }, (_, i) => (seed + i) & 0xff))
}
