import { buildCorpus } from './corpus.js'
import { Inputs, SOURCES, type Input } from './generate.js'
import { FuzzFailure, createTargets, type Target } from './targets.js'

/**
 * The fuzzing loop: a seeded stream of inputs, each fed to every target of its kind and timed;
 * outcomes counted by code; memory sampled. Time is CPU time, so a busy machine is not mistaken
 * for an input that makes work; a slow input (over `slowMs`) to a stateless decoder is run again
 * and the fastest of four runs counts, so a garbage collection is not either (an input that makes
 * work is slow every time).
 */

export interface FuzzOptions {
  inputs: number
  seed: number
  /** Only these targets (default: all). */
  targets?: readonly string[]
  /** An input slower than this is timed again (ms). */
  slowMs?: number
  /** Stop at the first failure (default true). */
  failFast?: boolean
}

export interface FuzzHooks {
  /** The corpus is built and the targets are up: their names, in the order `onTarget` numbers them. */
  onReady?: (targets: string[]) => void
  /** Before each input is fed to its targets (the watchdog keeps it, to report a hang). */
  onInput?: (index: number, input: Input) => void
  onTarget?: (index: number) => void
  onProgress?: (done: number) => void
}

export interface TargetStats {
  runs: number
  outcomes: Record<string, number>
  /** Time per input, ms: histogram buckets by upper bound. */
  histogram: Record<string, number>
  totalMs: number
  /** The slowest input (after timing slow ones again). */
  maxMs: number
  slowest?: { source: string, bytes: number, hex: string }
  /** The slowest single run before timing again (a GC pause shows here). */
  maxFirstRunMs: number
  /** The slowest run in wall-clock time (a busy machine shows here). */
  maxWallMs: number
  /** The target's own figures (the router: its handlers' synchronous work per message kind). */
  details?: Record<string, unknown>
}

export interface FuzzSummary {
  ok: boolean
  inputs: number
  seed: number
  seconds: number
  inputsPerSecond: number
  sources: Record<string, number>
  corpus: { frames: number, messages: number, kinds: Record<string, number> }
  targets: Record<string, TargetStats>
  /** Every refusal by code, over the decoder targets (decodeSign1, decodeFrame, decodeMessage, verifier). */
  errorsByCode: Record<string, number>
  memory: { heapStartMB: number, heapMaxMB: number, heapEndMB: number, rssMaxMB: number, samples: number, gc: boolean }
  failures: Array<{ target: string, message: string, source: string, hex: string }>
}

const BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 50, Infinity]
const bucketName = (ms: number): string => {
  const b = BUCKETS.find((x) => ms <= x) as number
  return b === Infinity ? '>50ms' : `<=${b}ms`
}
const hexOf = (bytes: Uint8Array, max = 256): string => Buffer.from(bytes.subarray(0, max)).toString('hex') + (bytes.length > max ? `…(${bytes.length} bytes)` : '')
const cpuMs = (since: NodeJS.CpuUsage): number => {
  const d = process.cpuUsage(since)
  return (d.user + d.system) / 1000
}
const mb = (n: number): number => Math.round(n / 2 ** 20 * 10) / 10
const DECODERS = new Set(['decodeSign1', 'decodeFrame', 'decodeMessage', 'verifier'])

export async function fuzz (options: FuzzOptions, hooks: FuzzHooks = {}): Promise<FuzzSummary> {
  const slowMs = options.slowMs ?? 5
  const gc = (globalThis as { gc?: () => void }).gc
  const corpus = await buildCorpus()
  const targets = await createTargets(corpus, options.targets)
  const inputs = new Inputs(corpus, options.seed)
  hooks.onReady?.(targets.map((t) => t.name))
  const stats = new Map<Target, TargetStats>(targets.map((t) => [t, { runs: 0, outcomes: {}, histogram: {}, totalMs: 0, maxMs: 0, maxFirstRunMs: 0, maxWallMs: 0 }]))
  const sources: Record<string, number> = Object.fromEntries(Object.keys(SOURCES).map((s) => [s, 0]))
  const errorsByCode: Record<string, number> = {}
  const failures: FuzzSummary['failures'] = []
  let escaped: unknown
  const onEscape = (err: unknown): void => { escaped ??= err }
  process.on('uncaughtException', onEscape)
  process.on('unhandledRejection', onEscape)

  gc?.()
  const heapStart = process.memoryUsage().heapUsed
  const memory = { heapStartMB: mb(heapStart), heapMaxMB: mb(heapStart), heapEndMB: 0, rssMaxMB: mb(process.memoryUsage().rss), samples: 0, gc: gc !== undefined }
  const sample = (): void => {
    gc?.()
    const m = process.memoryUsage()
    memory.samples++
    memory.heapMaxMB = Math.max(memory.heapMaxMB, mb(m.heapUsed))
    memory.rssMaxMB = Math.max(memory.rssMaxMB, mb(m.rss))
    memory.heapEndMB = mb(m.heapUsed)
  }

  const t0 = performance.now()
  let done = 0
  try {
    for (; done < options.inputs; done++) {
      const input = inputs.next()
      sources[input.source] = (sources[input.source] ?? 0) + 1
      hooks.onInput?.(done, input)
      for (let ti = 0; ti < targets.length; ti++) {
        const target = targets[ti] as Target
        if (!target.kinds.includes(input.kind)) continue
        hooks.onTarget?.(ti)
        const s = stats.get(target) as TargetStats
        try {
          // CPU time, not wall time: the machine may be shared, and a preempted input did no work.
          const started = process.cpuUsage()
          const wall = performance.now()
          const outcome = await target.run(input.bytes, input.kind)
          let ms = cpuMs(started)
          s.maxWallMs = Math.max(s.maxWallMs, performance.now() - wall)
          s.maxFirstRunMs = Math.max(s.maxFirstRunMs, ms)
          // A stateless target is timed again when slow (a GC pause is not the input's work);
          // a stateful one would not do the same work twice, so its first run is what counts.
          for (let again = 0; again < 3 && ms > slowMs && target.stateless === true; again++) {
            const t = process.cpuUsage()
            await target.run(input.bytes, input.kind)
            ms = Math.min(ms, cpuMs(t))
          }
          s.runs++
          s.totalMs += ms
          s.outcomes[outcome] = (s.outcomes[outcome] ?? 0) + 1
          const bucket = bucketName(ms)
          s.histogram[bucket] = (s.histogram[bucket] ?? 0) + 1
          if (ms > s.maxMs) {
            s.maxMs = ms
            s.slowest = { source: input.source, bytes: input.bytes.length, hex: hexOf(input.bytes, 96) }
          }
          if (DECODERS.has(target.name) && outcome.startsWith('ERR_')) errorsByCode[outcome] = (errorsByCode[outcome] ?? 0) + 1
        } catch (err) {
          const failure = err instanceof FuzzFailure ? err : new FuzzFailure(target.name, `the harness failed: ${String(err)}`, err)
          failures.push({ target: failure.target, message: failure.message, source: input.source, hex: hexOf(input.bytes) })
          if (options.failFast !== false) throw failure
        }
        if (escaped !== undefined) {
          const err = escaped
          escaped = undefined
          failures.push({ target: target.name, message: `an exception escaped to the event loop: ${String(err)}`, source: input.source, hex: hexOf(input.bytes) })
          if (options.failFast !== false) throw err
        }
      }
      if (done % 1000 === 0) hooks.onProgress?.(done)
      if (done % 20_000 === 0) sample()
    }
  } catch {
    // failFast: the failure is in `failures`
  } finally {
    process.off('uncaughtException', onEscape)
    process.off('unhandledRejection', onEscape)
    for (const t of targets) await t.close?.()
  }
  sample()
  const seconds = (performance.now() - t0) / 1000
  const round = (n: number): number => Math.round(n * 1000) / 1000
  return {
    ok: failures.length === 0 && done === options.inputs,
    inputs: done,
    seed: options.seed,
    seconds: Math.round(seconds * 10) / 10,
    inputsPerSecond: Math.round(done / seconds),
    sources,
    corpus: { frames: corpus.frames.length, messages: corpus.messages.length, kinds: corpus.kinds },
    targets: Object.fromEntries([...stats].map(([t, s]) => [t.name, {
      ...s, totalMs: Math.round(s.totalMs), maxMs: round(s.maxMs), maxFirstRunMs: round(s.maxFirstRunMs), maxWallMs: round(s.maxWallMs), details: t.details?.()
    }])),
    errorsByCode: Object.fromEntries(Object.entries(errorsByCode).sort(([, a], [, b]) => b - a)),
    memory,
    failures
  }
}
