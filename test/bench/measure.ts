import { loadavg } from 'node:os'
import { PerformanceObserver, monitorEventLoopDelay } from 'node:perf_hooks'

/**
 * Benchmark helpers. Machines here are shared and noisy, so every figure is compared with a
 * baseline measured in the same run, and rates are taken as the median of rounds that alternate
 * between the things compared (drift hits each alike).
 */

/** Runs `fn` repeatedly for about `ms` milliseconds; returns operations per second. */
export function rate (fn: () => void, ms: number): number {
  // Warm up the JIT and caches, then time batches until the budget is spent.
  for (let i = 0; i < 50; i++) fn()
  let ops = 0
  const start = process.hrtime.bigint()
  const budget = BigInt(ms) * 1_000_000n
  let elapsed = 0n
  while (elapsed < budget) {
    for (let i = 0; i < 20; i++) fn()
    ops += 20
    elapsed = process.hrtime.bigint() - start
  }
  return ops / (Number(elapsed) / 1e9)
}

export function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] as number : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

export function percentile (values: number[], p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number
}

/** Alternates the named measurements for `rounds` rounds; returns each one's median rate. */
export function interleaved (cases: Record<string, () => void>, rounds: number, ms: number): Record<string, number> {
  const results: Record<string, number[]> = Object.fromEntries(Object.keys(cases).map((k) => [k, []]))
  for (let r = 0; r < rounds; r++) {
    for (const [name, fn] of Object.entries(cases)) (results[name] as number[]).push(rate(fn, ms))
  }
  return Object.fromEntries(Object.entries(results).map(([k, v]) => [k, Math.round(median(v))]))
}

export const round = (n: number, digits = 3): number => Number(n.toFixed(digits))

/** What a bounded wait found: met or not, after how long, and (when not met) what was still missing. */
export interface WaitResult {
  met: boolean
  waitedMs: number
  /** `describe()` at the deadline: what the wait was for and what was missing. */
  missing?: string
}

/**
 * Polls `check` every `everyMs` until it holds or `deadlineMs` has passed. Never throws and never
 * hangs: at the deadline it returns `met: false` with `describe()` (what was waited for, what is
 * missing), so a section can label a figure measured on an incomplete run instead of losing the
 * whole bench. The poll timer is a plain (ref'd) timer: the event loop cannot empty under it.
 */
export async function waitUntil (check: () => boolean, deadlineMs: number, describe: () => string, everyMs = 20): Promise<WaitResult> {
  const t0 = performance.now()
  for (;;) {
    if (check()) return { met: true, waitedMs: Math.round(performance.now() - t0) }
    const waited = performance.now() - t0
    if (waited >= deadlineMs) return { met: false, waitedMs: Math.round(waited), missing: describe() }
    await new Promise((resolve) => setTimeout(resolve, Math.min(everyMs, deadlineMs - waited)))
  }
}

/**
 * Awaits `work` for at most `deadlineMs`; past it, resolves `{ settled: false }` (the work goes on
 * unawaited) so a stop that never finishes is reported, not an exit 13 with no word of where. A
 * rejection is returned, not thrown.
 */
export async function within<T> (work: Promise<T>, deadlineMs: number): Promise<{ settled: true, value?: T, error?: unknown } | { settled: false }> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const deadline = new Promise<{ settled: false }>((resolve) => { timer = setTimeout(() => { resolve({ settled: false }) }, deadlineMs) })
  try {
    return await Promise.race([work.then((value) => ({ settled: true as const, value }), (error: unknown) => ({ settled: true as const, error })), deadline])
  } finally {
    clearTimeout(timer)
  }
}

/** What this process did over a measurement window (`processWindow`). */
export interface ProcessWindow<T> {
  /** What `atStart` returned as the window opened (counters to subtract at its end). */
  start: T
  /** How long the window lasted, s. */
  wallS: number
  /** CPU this process used over it (user + system), µs. */
  cpuMicros: number
  eventLoopDelayMs: { p50: number, p99: number, max: number }
  /** Garbage-collection pauses of the main thread over it (perf_hooks 'gc' entries), ms. */
  gcPauseMs: number
  /** The machine's 1-minute load as the window opened and closed. */
  machineLoad1min: { start: number, end: number }
}

/**
 * Waits `warmupMs`, then measures this process for `windowMs`: CPU, event-loop delay, the machine's
 * load, and the wall clock; `atStart` takes the counters the caller subtracts at the end (awaited: a
 * fleet over workers asks them for current counters first). The fleet benches (fleet.ts, tcp.ts)
 * measure their windows so.
 */
export async function processWindow<T> (warmupMs: number, windowMs: number, atStart: () => T | Promise<T>): Promise<ProcessWindow<T>> {
  await new Promise((resolve) => setTimeout(resolve, warmupMs))
  const load0 = loadavg()[0] as number
  const delay = monitorEventLoopDelay({ resolution: 10 })
  delay.enable()
  let gcPauseMs = 0
  const gc = new PerformanceObserver((list) => { for (const entry of list.getEntries()) gcPauseMs += entry.duration })
  gc.observe({ entryTypes: ['gc'] })
  const cpu0 = process.cpuUsage()
  const w0 = Date.now()
  const start = await atStart()
  await new Promise((resolve) => setTimeout(resolve, windowMs))
  const cpu = process.cpuUsage(cpu0)
  delay.disable()
  gc.disconnect()
  return {
    start,
    wallS: (Date.now() - w0) / 1000,
    cpuMicros: cpu.user + cpu.system,
    eventLoopDelayMs: { p50: round(delay.percentile(50) / 1e6, 1), p99: round(delay.percentile(99) / 1e6, 1), max: round(delay.max / 1e6, 1) },
    gcPauseMs: round(gcPauseMs, 1),
    machineLoad1min: { start: round(load0, 2), end: round(loadavg()[0] as number, 2) }
  }
}
