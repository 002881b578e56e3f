import type { MessagePort } from 'node:worker_threads'
import type { TransportAddress } from '../../mesh/index.js'
import type { ThreadBridge } from '../../mesh/testing.js'
import type { FleetFlow } from './flow.js'
import type { FleetInit, FleetStats } from './fleet.js'

/**
 * What the threads of a fleet split over worker threads (workers.ts) agree on: who holds which
 * devices, how an address finds its thread, and what a worker tells the main thread. Thread 0 is
 * the main thread (the gateway, the controller); thread w + 1 is worker w, which runs the devices
 * of span w (by fleet index, from `firstIndex`).
 */

/** Devices [start, end) of the fleet (fleet indexes), per worker: as even as can be. */
export function spans (devices: number, workers: number): Array<[number, number]> {
  return Array.from({ length: workers }, (_, w) => [Math.floor(w * devices / workers), Math.floor((w + 1) * devices / workers)])
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
export function fleetBridge (self: number, first: number, split: ReadonlyArray<[number, number]>, trunks: ReadonlyMap<number, MessagePort>): ThreadBridge {
  const threadOf = (address: TransportAddress): number => {
    const global = globalOf(address.host)
    if (global === undefined) return 0
    const w = split.findIndex(([start, end]) => global - first >= start && global - first < end)
    return w < 0 ? 0 : w + 1
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
  split: Array<[number, number]>
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
