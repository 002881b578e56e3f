import { setTimeout as delay } from 'node:timers/promises'
import { meshError, systemClock, type Clock } from '../../shared/index.js'
import type { Progress } from '../progress.js'

/**
 * What the three runners share: the wall clock every stamp is taken on, waits that an
 * AbortSignal (Ctrl-C) cuts short, and the components a caller injects.
 *
 * The runners' waits are real time on purpose: they drive fleets of real sockets. They go through
 * `node:timers/promises`, ref'd, so a run keeps its process alive (shared/clock.ts's timers are
 * unref'd, which suits nodes, not the thing a CLI command waits on).
 */

/**
 * The wall clock with sub-millisecond resolution (performance.timeOrigin + performance.now(): the
 * monotonic clock from the process's start), for every stamp of a run: Date.now() counts whole
 * milliseconds, which made latency distributions staircases ("2.00 ms").
 */
export const hiResNow = (): number => performance.timeOrigin + performance.now()

/** The process clock with `hiResNow` as its wall clock: what the runners give the fleets they drive. */
export const hiResClock: Clock = { ...systemClock, wall: hiResNow }

/** What every runner takes besides its settings: clock, progress, abort signal, and the command for the report. */
export interface RunComponents {
  /** Wall clock, ms since the epoch: every publication and arrival is stamped on it. Default `hiResNow`. */
  now?: () => number
  /** Where the run shows where it is (progress.ts); default: nothing shown. */
  progress?: Progress
  /** Aborts the run: the fleet under way stops, and the runner rejects with ERR_ABORTED. */
  signal?: AbortSignal
  /** The command line that started the run, recorded in its report (results.provenance). */
  command?: string
}

/** Waits `ms` (nothing when ≤ 0); rejects with ERR_ABORTED when `signal` aborts. */
export async function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted === true) throw aborted()
  if (ms <= 0) return
  try {
    await delay(ms, undefined, signal === undefined ? {} : { signal })
  } catch (err) {
    if ((err as { name?: string }).name === 'AbortError') throw aborted(err)
    throw err
  }
}

/** Polls `done` every `everyMs` until it holds (true) or `timeoutMs` passes (false). */
export async function until (done: () => boolean, timeoutMs: number, options: { signal?: AbortSignal, everyMs?: number } = {}): Promise<boolean> {
  const end = Date.now() + timeoutMs
  while (!done()) {
    if (Date.now() >= end) return false
    await sleep(Math.min(options.everyMs ?? 100, end - Date.now()), options.signal)
  }
  return true
}

export function aborted (cause?: unknown): Error {
  return meshError('ERR_ABORTED', 'the experiment was interrupted; nothing was written', cause === undefined ? undefined : { cause })
}

/** Calls `tick` every `ms` while `work` runs (a progress display); stops when it settles. */
export async function ticking<T> (ms: number, tick: () => void, work: Promise<T>): Promise<T> {
  tick()
  const timer = setInterval(tick, ms)
  try {
    return await work
  } finally {
    clearInterval(timer)
  }
}

/** A key for one reading. */
export function readingKey (origin: string, seq: number): string {
  return `${origin}/${seq}`
}

/** The notes of repeated runs: the first run's, then what a later run noted that the first did not, under its seed. */
export function repeatedNotes (runs: ReadonlyArray<{ seed: number, notes?: string[] }>): string[] {
  const first = new Set(runs[0]?.notes ?? [])
  return [...first, ...new Set(runs.slice(1).flatMap((r) => (r.notes ?? []).filter((n) => !first.has(n)).map((n) => `seed ${r.seed}: ${n}`)))]
}
