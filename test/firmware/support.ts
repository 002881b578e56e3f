/** Helpers for the firmware-sim tests. Not a test file itself. */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { onTestFinished } from 'vitest'
import { MeshError, type ErrorCode } from '../../shared/index.js'
import type { SensorLogger, SensorNotice } from '../../firmware-sim/index.js'

/** A fresh directory under os.tmpdir(), removed when the current test finishes. */
export async function tempDir (): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'iotmesh-fw-'))
  onTestFinished(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** Writes files below `root`: `{ '/proc/loadavg': '0.5 0.4 0.3 1/100 42\n' }`. */
export async function fakeTree (root: string, files: Record<string, string>): Promise<void> {
  for (const [path, text] of Object.entries(files)) {
    const full = join(root, path)
    await mkdir(dirname(full), { recursive: true })
    await writeFile(full, text)
  }
}

type Outcome = ErrorCode | 'no error' | `not a MeshError: ${string}`

/** The MeshError code `fn` raised, so a failing test shows what happened instead. */
export function codeOf (fn: () => unknown): Outcome {
  try {
    fn()
  } catch (err) {
    return err instanceof MeshError ? err.code : `not a MeshError: ${String(err)}`
  }
  return 'no error'
}

export async function codeOfAsync (fn: () => Promise<unknown>): Promise<Outcome> {
  try {
    await fn()
  } catch (err) {
    return err instanceof MeshError ? err.code : `not a MeshError: ${String(err)}`
  }
  return 'no error'
}

/** The MeshError `fn` raised (or undefined). */
export function errorOf (fn: () => unknown): MeshError | undefined {
  try {
    fn()
  } catch (err) {
    if (err instanceof MeshError) return err
    throw err
  }
  return undefined
}

/** A logger that keeps what it is told. */
export function recordingLogger (): SensorLogger & { notices: SensorNotice[] } {
  const notices: SensorNotice[] = []
  return {
    notices,
    warn: (_message, notice) => { notices.push(notice) },
    info: (_message, notice) => { notices.push(notice) }
  }
}

export const HOUR = 3_600_000
export const DAY = 24 * HOUR
/** 2026-01-01T00:00:00Z: a midnight, so hours of the day are easy to read. */
export const T0 = Date.UTC(2026, 0, 1)
