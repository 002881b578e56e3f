import { parentPort, workerData, type MessagePort } from 'node:worker_threads'
import { Fleet } from './fleet.js'
import { dealt, fleetBridge, type FromWorker, type ToWorker, type WorkerData } from './threads.js'

/**
 * A worker thread's share of a fleet (workers.ts): the devices of its span, as a fleet without a
 * gateway whose memory network is joined to the other threads'. It tells the main thread every
 * reading (in batches, with the wall time it was made) and, when asked, its stats and flow.
 */

const BATCH_MS = 20

const data = workerData as WorkerData
const port = parentPort as MessagePort
const post = (msg: FromWorker): void => { port.postMessage(msg) }
const trunks = new Map(data.trunks)
const offset = data.thread - 1
const fleet = new Fleet({
  ...data.init,
  devices: dealt(data.devices, data.workers, offset),
  gateway: false,
  ...(data.broker === undefined ? {} : { broker: data.broker })
}, {}, { bridge: fleetBridge(data.thread, data.first, data.devices, data.workers, trunks), gateway: data.gateway, first: data.first, offset, stride: data.workers })

const batch: Extract<FromWorker, { k: 'readings' }> = { k: 'readings', devices: [], origins: [], seqs: [], at: [] }
let timer: NodeJS.Timeout | undefined
const flush = (): void => {
  timer = undefined
  if (batch.seqs.length === 0) return
  post({ ...batch })
  batch.devices = []
  batch.origins = []
  batch.seqs = []
  batch.at = []
}
fleet.on('reading', (r) => {
  batch.devices.push(r.device) // the fleet index already (Fleet #fleetIndex)
  batch.origins.push(r.origin)
  batch.seqs.push(r.seq)
  batch.at.push(performance.timeOrigin + performance.now())
  timer ??= setTimeout(flush, BATCH_MS)
})

let stopping: Promise<void> | undefined
port.on('message', (msg: ToWorker) => {
  if (msg.k === 'snapshot') {
    flush()
    post({ k: 'snapshot', id: msg.id, snapshot: { stats: fleet.stats(), flow: fleet.flow() } })
  } else if (msg.k === 'stop') {
    stopping ??= (async () => {
      flush()
      try {
        await fleet.stop()
      } finally {
        for (const trunk of trunks.values()) trunk.close()
        post({ k: 'stopped' })
        port.close()
      }
    })()
  }
})

try {
  await fleet.start({ onProgress: (started) => { post({ k: 'progress', started }) } })
  post({ k: 'up' })
} catch (err) {
  post({ k: 'failed', message: err instanceof Error ? err.message : String(err) })
}
