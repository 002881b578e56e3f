/**
 * `npm run fuzz`: the fuzzer (engine.ts) over every decoder and routing message handler, in a
 * worker thread watched from here: an input that makes a target run for ever (a loop bound by a
 * number the peer chose) is reported with its bytes instead of freezing the run. Prints one JSON
 * summary line on stdout (progress on stderr); exits 1 when anything failed.
 *
 *   npm run fuzz -- [--inputs N] [--seed S] [--targets a,b] [--hang-ms MS] [--slow-ms MS] [--quiet]
 *   (that is: npm run build && node --expose-gc dist/test/fuzz/run.js …)
 *
 * Defaults: 10^6 inputs, seed 1, every target (decodeSign1, decodeFrame, decodeMessage, verifier,
 * router, node), a hang after 10 s on one input, inputs over 5 ms timed again. --expose-gc lets the
 * memory samples follow a collection. Nothing here opens a socket: every link is in memory
 * (mesh/testing.ts).
 */
import { parseArgs } from 'node:util'
import { Worker } from 'node:worker_threads'
import type { FuzzOptions, FuzzSummary } from './engine.js'
import { SOURCES } from './generate.js'

const { values } = parseArgs({
  options: {
    inputs: { type: 'string', default: '1000000' },
    seed: { type: 'string', default: '1' },
    targets: { type: 'string' },
    'hang-ms': { type: 'string', default: '10000' },
    'slow-ms': { type: 'string', default: '5' },
    quiet: { type: 'boolean' }
  }
})
const number = (name: string, text: string): number => {
  const n = Number(text)
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} takes a non-negative integer, got ${text}`)
  return n
}
const options: FuzzOptions = {
  inputs: number('inputs', values.inputs),
  seed: number('seed', values.seed),
  slowMs: number('slow-ms', values['slow-ms']),
  ...(values.targets === undefined ? {} : { targets: values.targets.split(',').map((t) => t.trim()) })
}
const hangMs = number('hang-ms', values['hang-ms'])
const control = new SharedArrayBuffer(4 * 4)
const input = new SharedArrayBuffer(70_000)
const state = new Int32Array(control)
const log = (line: string): void => { if (values.quiet !== true) process.stderr.write(`fuzz: ${line}\n`) }

const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: { options, control, input } })
const started = Date.now()
let targets: string[] = []
let lastIndex = -1
let lastTarget = -1
let lastChange = Date.now()
let settled = false

function finish (summary: FuzzSummary | Record<string, unknown>, code: number): void {
  if (settled) return
  settled = true
  clearInterval(watchdog)
  process.stdout.write(`${JSON.stringify(summary)}\n`)
  process.exitCode = code
}

const watchdog = setInterval(() => {
  const index = Atomics.load(state, 0)
  const target = Atomics.load(state, 1)
  if (index !== lastIndex || target !== lastTarget || targets.length === 0) {
    lastIndex = index
    lastTarget = target
    lastChange = Date.now()
    return
  }
  if (Date.now() - lastChange < hangMs) return
  // One input has held one target for hangMs: report it, with its bytes, and stop.
  const length = Atomics.load(state, 2)
  const bytes = new Uint8Array(input).slice(0, Math.min(length, 4096))
  const source = Object.keys(SOURCES)[Atomics.load(state, 3)] ?? '?'
  void worker.terminate()
  finish({
    ok: false,
    inputs: index - 1,
    seed: options.seed,
    hang: { target: targets[target] ?? String(target), inputIndex: index - 1, source, heldMs: Date.now() - lastChange, bytes: length, hex: Buffer.from(bytes).toString('hex') },
    failures: [{ target: targets[target] ?? String(target), message: `one input held it for more than ${hangMs} ms (a hang)`, source, hex: Buffer.from(bytes.subarray(0, 256)).toString('hex') }]
  }, 1)
}, 250)

worker.on('message', (message: { type: 'ready', targets: string[] } | { type: 'progress', done: number } | { type: 'summary', summary: FuzzSummary }) => {
  if (message.type === 'ready') {
    targets = message.targets
    log(`targets ${targets.join(', ')}; ${options.inputs} inputs, seed ${options.seed}`)
  } else if (message.type === 'progress') {
    if (message.done % 50_000 === 0 && message.done > 0) log(`${message.done} inputs in ${((Date.now() - started) / 1000).toFixed(1)} s`)
  } else {
    finish(message.summary, message.summary.ok ? 0 : 1)
  }
})
worker.on('error', (err) => { finish({ ok: false, failures: [{ target: 'worker', message: `the worker failed: ${String(err)}`, source: '', hex: '' }] }, 1) })
worker.on('exit', (code) => { if (!settled) finish({ ok: false, failures: [{ target: 'worker', message: `the worker exited with ${code} before its summary`, source: '', hex: '' }] }, 1) })
