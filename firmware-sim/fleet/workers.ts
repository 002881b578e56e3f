import { availableParallelism } from 'node:os'
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads'
import { meshError } from '../../shared/index.js'
import type { TransportAddress } from '../../mesh/index.js'
import type { ThreadBridge } from '../../mesh/testing.js'
import type { FleetFlow } from './flow.js'
import type { FleetInit } from './fleet.js'
import type { SharedVerifyCounters } from './shared-verify.js'
import { fleetBridge, type FromWorker, type ToWorker, type WorkerData, type WorkerSnapshot } from './threads.js'

/**
 * A fleet split over worker threads (FleetInit.workers, issue 15: one process uses every core). The
 * main thread keeps the gateway and the controller; each worker runs a span of the devices with
 * memory links among them, and links between threads run over MessagePorts
 * (mesh/links/thread-bridge.ts, port-link.ts). Each worker tells the main thread every reading it
 * makes (the main thread's gateway tells which arrived), and on request its stats and flow, which
 * stats() and flow() add up.
 */

/** How long a worker has to answer a snapshot request or to stop before it is terminated (ms). */
const ANSWER_MS = 10_000

/** The worker's script: the build's, also when the fleet runs from the sources (vitest), so build first. */
function workerUrl (): URL {
  return new URL(import.meta.url.endsWith('.ts') ? '../../dist/firmware-sim/fleet/fleet-worker.js' : './fleet-worker.js', import.meta.url)
}

/** `workers: 'auto'`: the cores this process may use, less none: the main thread's gateway shares one. */
export function resolveWorkers (workers: number | 'auto' | undefined): number {
  if (workers === 'auto') return Math.max(1, availableParallelism())
  return workers ?? 1
}

/** The parts of FleetInit a worker takes: plain data, nothing of the main thread's (gateway, roles, world). */
function workerInit (init: FleetInit): FleetInit {
  const { mode, fleet, seed, interval, sensors, transport, host, dialTarget, link, routing, shareVerification, rotateInterval } = init
  // Over TCP each worker runs its own mDNS responder (DNS-SD, as every device on a LAN); memory links have none.
  return { mode, fleet, seed, interval, sensors, transport, host, dialTarget, link, routing, shareVerification, rotateInterval, mdns: transport === 'tcp' }
}

interface Pending { resolve: (s: WorkerSnapshot) => void, reject: (err: Error) => void }

export interface WorkerHooks {
  reading: (device: number, origin: string, seq: number, at: number) => void
  progress: (started: number) => void
  error: (err: Error) => void
}

export class FleetWorkers {
  readonly count: number
  /** The main thread's end of the joined memory networks. */
  readonly bridge: ThreadBridge
  readonly #devices: number
  readonly #first: number
  readonly #trunks: Array<Map<number, MessagePort>>
  readonly #workers: Worker[] = []
  readonly #snapshots: Array<WorkerSnapshot | undefined>
  readonly #started: number[]
  readonly #pending = new Map<number, Pending>()
  #nextId = 1
  #stopping: Promise<void> | undefined
  #ticker: NodeJS.Timeout | undefined
  /** Readings the workers' devices made, as told so far. */
  published = 0

  constructor (count: number, devices: number, first: number) {
    if (!Number.isSafeInteger(count) || count < 1 || count > 64) throw meshError('ERR_BAD_ARGUMENT', `workers must be an integer from 1 to 64, got ${count}`)
    if (count > devices) throw meshError('ERR_BAD_ARGUMENT', `${count} workers for ${devices} devices: give at most one worker per device`)
    this.count = count
    this.#first = first
    this.#devices = devices
    this.#snapshots = Array.from({ length: count }, () => undefined)
    this.#started = Array.from({ length: count }, () => 0)
    this.#trunks = Array.from({ length: count + 1 }, () => new Map<number, MessagePort>())
    for (let i = 0; i <= count; i++) {
      for (let j = i + 1; j <= count; j++) {
        const { port1, port2 } = new MessageChannel()
        this.#trunks[i]?.set(j, port1)
        this.#trunks[j]?.set(i, port2)
      }
    }
    this.bridge = fleetBridge(0, first, devices, count, this.#trunks[0] as Map<number, MessagePort>)
  }

  /** Starts every worker and resolves once all their devices have started; rejects if one fails. */
  async start (init: FleetInit, gateway: TransportAddress | undefined, broker: string | undefined, hooks: WorkerHooks, signal: AbortSignal): Promise<void> {
    const ups: Array<Promise<void>> = []
    for (let w = 0; w < this.count; w++) {
      const trunks = [...(this.#trunks[w + 1] as Map<number, MessagePort>)]
      const data: WorkerData = { init: workerInit(init), thread: w + 1, first: this.#first, devices: this.#devices, workers: this.count, trunks, gateway, broker }
      const worker = new Worker(workerUrl(), { workerData: data, transferList: trunks.map(([, port]) => port) })
      this.#workers.push(worker)
      ups.push(new Promise<void>((resolve, reject) => {
        let up = false
        worker.on('message', (msg: FromWorker) => {
          switch (msg.k) {
            case 'progress':
              this.#started[w] = msg.started
              hooks.progress(this.#started.reduce((a, b) => a + b, 0))
              break
            case 'up': up = true; resolve(); break
            case 'failed': reject(meshError('ERR_BAD_ARGUMENT', `worker ${w} could not start its devices: ${msg.message}`)); break
            case 'readings':
              this.published += msg.seqs.length
              for (let i = 0; i < msg.seqs.length; i++) hooks.reading(msg.devices[i] as number, msg.origins[i] as string, msg.seqs[i] as number, (msg.at[i] as number) - performance.timeOrigin)
              break
            case 'snapshot': {
              this.#snapshots[w] = msg.snapshot
              const pending = this.#pending.get(msg.id * 1000 + w)
              this.#pending.delete(msg.id * 1000 + w)
              pending?.resolve(msg.snapshot)
              break
            }
            case 'stopped': void worker.terminate(); break // its devices have stopped: what handles remain are the runtime's
          }
        })
        worker.on('error', (err) => { if (up) hooks.error(err); else reject(err) })
        worker.on('exit', (code) => {
          if (!up) reject(new Error(`worker ${w} exited (code ${code}) before its devices started`))
          for (const [key, p] of this.#pending) if (key % 1000 === w) { this.#pending.delete(key); p.reject(new Error(`worker ${w} exited`)) }
        })
      }))
    }
    const aborted = new Promise<never>((_resolve, reject) => { signal.addEventListener('abort', () => { reject(signal.reason as Error) }, { once: true }) })
    await Promise.race([Promise.all(ups), aborted])
    // stats() is synchronous: every second the workers tell their share of it (a failed answer waits for the next).
    this.#ticker = setInterval(() => { this.refresh().catch(() => {}) }, 1000)
    this.#ticker.unref()
  }

  /** Asks every worker for its stats and flow (stats() and flow() use the last ones told). */
  async refresh (): Promise<void> {
    const id = this.#nextId++
    await Promise.all(this.#workers.map(async (worker, w) => {
      await new Promise<WorkerSnapshot>((resolve, reject) => {
        const timer = setTimeout(() => { this.#pending.delete(id * 1000 + w); reject(new Error(`worker ${w} did not answer in ${ANSWER_MS} ms`)) }, ANSWER_MS)
        this.#pending.set(id * 1000 + w, { resolve: (s) => { clearTimeout(timer); resolve(s) }, reject: (e) => { clearTimeout(timer); reject(e) } })
        worker.postMessage({ k: 'snapshot', id } satisfies ToWorker)
      })
    }))
  }

  get snapshots (): readonly WorkerSnapshot[] {
    return this.#snapshots.filter((s): s is WorkerSnapshot => s !== undefined)
  }

  /** Stops every worker's devices, then the workers (terminated if one does not answer); idempotent. */
  async stop (): Promise<void> {
    this.#stopping ??= (async () => {
      clearInterval(this.#ticker)
      await Promise.allSettled(this.#workers.map(async (worker) => {
        if (worker.threadId === -1) return // exited already (a failed start)
        const exited = new Promise<void>((resolve) => { worker.once('exit', () => { resolve() }) })
        worker.postMessage({ k: 'stop' } satisfies ToWorker)
        const timer = setTimeout(() => { void worker.terminate() }, ANSWER_MS)
        await exited
        clearTimeout(timer)
      }))
      for (const port of this.#trunks[0]?.values() ?? []) port.close()
    })()
    await this.#stopping
  }
}

/** Sums the workers' and the main thread's flows: counts add up, maxima take the largest. */
export function mergeFlows (flows: readonly FleetFlow[]): FleetFlow {
  const merge = (a: unknown, b: unknown, key = ''): unknown => {
    if (a === undefined) return b
    if (b === undefined) return a
    if (typeof a === 'number' && typeof b === 'number') return key.startsWith('max') ? Math.max(a, b) : a + b
    if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null) {
      const out: Record<string, unknown> = { ...(a as Record<string, unknown>) }
      for (const [k, v] of Object.entries(b as Record<string, unknown>)) out[k] = merge(out[k], v, k)
      return out
    }
    return a
  }
  return flows.reduce((acc, f) => merge(acc, f) as FleetFlow)
}

/** Sums shared-verification counters (each thread has its own cache). */
export function mergeChecks (all: ReadonlyArray<SharedVerifyCounters | undefined>): SharedVerifyCounters | undefined {
  const some = all.filter((c): c is SharedVerifyCounters => c !== undefined)
  return some.length === 0 ? undefined : { shared: some.reduce((a, c) => a + c.shared, 0), checked: some.reduce((a, c) => a + c.checked, 0) }
}
