import type { MessagePort } from 'node:worker_threads'
import type { TransportAddress } from '../../mesh/index.js'
import { Trunk, type ThreadBridge } from '../../mesh/testing.js'
import type { FleetFlow } from './flow.js'
import type { FleetInit, FleetStats } from './fleet.js'

/**
 * What the threads of a fleet split over worker threads (workers.ts) agree on: who holds which
 * devices, how an address finds its thread, and what a worker tells the main thread. Thread 0 is
 * the main thread (the gateway, the controller); thread w + 1 is worker w, which runs the devices
 * whose fleet index is w modulo the number of workers. Dealt round, not in spans: each device
 * dials random earlier ones, so the first devices are the hubs of the mesh (and the first few link
 * to the gateway); in spans they were all in worker 0, which was saturated while the other idled
 * (500 devices: a fifth of it idle, CPU profiles of both).
 */

/** How many of `devices` worker `w` of `workers` runs (fleet indexes w, w + workers, …). */
export function dealt (devices: number, workers: number, w: number): number {
  return Math.max(0, Math.ceil((devices - w) / workers))
}

/** A device's name on memory links (`sim-007`), as fleet.ts gives it, read back: its global index, or undefined. */
function globalOf (host: string): number | undefined {
  const m = /^sim-(\d{1,9})$/.exec(host)
  return m === null ? undefined : Number(m[1])
}

/**
 * The bridge of thread `self` (mesh/links/thread-bridge.ts): a device's address goes to the thread
 * of its span, any other (the gateway's) to the main thread.
 */
export function fleetBridge (self: number, first: number, devices: number, workers: number, ports: ReadonlyMap<number, MessagePort>): ThreadBridge {
  // One trunk per other thread; the lower thread of a pair is side 0.
  const trunks = new Map([...ports].map(([thread, port]) => [thread, new Trunk(port, self < thread ? 0 : 1)]))
  const threadOf = (address: TransportAddress): number => {
    const global = globalOf(address.host)
    if (global === undefined) return 0
    const index = global - first
    return index < 0 || index >= devices ? 0 : index % workers + 1
  }
  return {
    trunks: [...trunks.values()],
    route: (address) => {
      const thread = threadOf(address)
      return thread === self ? undefined : trunks.get(thread)
    }
  }
}

/** What the main thread hands a worker (structured-cloned; the trunks are transferred). */
export interface WorkerData {
  /** The fleet's init, without what does not cross threads (functions) or belongs to the main thread. */
  init: FleetInit
  thread: number
  first: number
  devices: number
  workers: number
  /** Trunks to the other threads, by thread. */
  trunks: Array<[number, MessagePort]>
  gateway: TransportAddress | undefined
  broker: string | undefined
}

/** What a worker knows of its share, for the main thread's stats() and flow(). */
export interface WorkerSnapshot {
  stats: FleetStats
  flow: FleetFlow
}

/** Worker → main thread. `at`: wall time as performance.timeOrigin + performance.now() (ms), the same in every thread. */
export type FromWorker =
  | { k: 'progress', started: number }
  | { k: 'up' }
  | { k: 'readings', devices: number[], origins: string[], seqs: number[], at: number[] }
  | { k: 'snapshot', id: number, snapshot: WorkerSnapshot }
  | { k: 'failed', message: string }
  | { k: 'stopped' }

/** Main thread → worker. */
export type ToWorker = { k: 'snapshot', id: number } | { k: 'stop' }
