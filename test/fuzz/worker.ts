import { parentPort, workerData } from 'node:worker_threads'
import { fuzz, type FuzzOptions } from './engine.js'
import { SOURCES } from './generate.js'

/**
 * The fuzzing loop in a worker thread (run.ts is the watchdog): before each input it writes the
 * input and, before each target, the target's index into shared memory, so that if one never
 * returns (an input that makes a loop run for ever) the main thread can say which, and with what.
 */
const { options, control, input } = workerData as { options: FuzzOptions, control: SharedArrayBuffer, input: SharedArrayBuffer }
const state = new Int32Array(control) // [inputs started, current target, input length, source index]
const bytes = new Uint8Array(input)
const sourceNames = Object.keys(SOURCES)

const summary = await fuzz(options, {
  onReady: (targets) => { parentPort?.postMessage({ type: 'ready', targets }) },
  onInput: (index, next) => {
    bytes.set(next.bytes.subarray(0, Math.min(next.bytes.length, bytes.length)))
    Atomics.store(state, 2, next.bytes.length)
    Atomics.store(state, 3, sourceNames.indexOf(next.source))
    Atomics.store(state, 0, index + 1)
  },
  onTarget: (index) => { Atomics.store(state, 1, index) },
  onProgress: (done) => { parentPort?.postMessage({ type: 'progress', done }) }
})
parentPort?.postMessage({ type: 'summary', summary })
