/**
 * An honest node of the adversarial suite, as a child process on a namespace host (run from the
 * build: dist/test/adversarial/node-child.js '<NodeChildConfig as JSON>'). Two roles:
 *   device      the firmware-sim device runtime, as `iotmesh device` runs it: a temperature sensor
 *               sampled every `interval` ms, signed frames through a disk (or memory) outbox and
 *               the mesh path of its own MeshNode, with the node's default options (link slots,
 *               dial target, routing): the attacked node of most tests;
 *   subscriber  a MeshNode subscribed to `filter` (default '#'): the honest receiver.
 * Both report, over IPC (protocol.ts): `health` every `healthMs` (event-loop delay from
 * perf_hooks.monitorEventLoopDelay, RSS, heap, open fds, CPU, links, refusals), `tick` per
 * sampling interval (device), `reading` per verified reading of a tracked origin, `link` and
 * `drop` events. A frozen event loop shows as health reports that stop coming.
 */
import { readdirSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { MeshNode, type Delivery, type DropInfo } from '../../mesh/index.js'
import { generateKeyPair, toBase64url } from '../../shared/index.js'
import { createDevice, silentLogger, type Device } from '../../firmware-sim/index.js'
import { DELAY_THRESHOLDS_MS, type NodeChildConfig } from './protocol.js'

const config = JSON.parse(process.argv[2] ?? '{}') as NodeChildConfig
const send = (m: Record<string, unknown>): void => { process.send?.(m) }
process.on('disconnect', () => process.exit(0))

/** The monitor's sampling period; delays are reported beyond it (the histogram holds whole periods). */
const RESOLUTION_MS = 5
const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS })
histogram.enable()
const ms = (ns: number): number => Math.max(0, Math.round((ns / 1e6 - RESOLUTION_MS) * 100) / 100)

/**
 * How many of this period's samples were delayed more than each of DELAY_THRESHOLDS_MS, from the
 * histogram's percentile points (a sample counts as over T unless a percentile point at or below T
 * covers it: an over-estimate, never an under-estimate). The test merges periods into a phase's p99.
 */
function over (): number[] {
  const points = [...histogram.percentiles].sort(([a], [b]) => a - b)
  return DELAY_THRESHOLDS_MS.map((threshold) => {
    let share = 0
    for (const [percentile, ns] of points) if (ms(ns) <= threshold) share = percentile / 100
    return Math.round(histogram.count * (1 - share))
  })
}

let device: Device | undefined
let node: MeshNode
const mdns = config.mdns ?? true
const peers = config.peers ?? []
const routing = {
  ...(config.relayBeforeVerify === true ? { relayBeforeVerify: true } : {}),
  ...(config.interestRefresh === undefined ? {} : { interestRefresh: config.interestRefresh })
}

if (config.role === 'device') {
  device = await createDevice({
    name: config.name,
    fleet: config.fleet,
    mode: 'mesh',
    interval: config.interval ?? 100,
    sensors: 'temperature',
    sensorOptions: { seed: config.seed ?? 1 },
    ...(config.dataDir === undefined ? {} : { dataDir: config.dataDir }),
    mesh: { host: config.host, mdns, peers, routing }
  }, { logger: silentLogger })
  node = device.node as MeshNode
  device.on('tick', ({ readings }) => {
    send({ ev: 'tick', t: Date.now(), seqs: readings.map((r) => r.seq), values: readings.map((r) => r.records[0]?.v), times: readings.map((r) => r.time) })
  })
  watch()
} else {
  node = new MeshNode({ host: config.host, fleet: config.fleet, name: config.name, mdns, peers, announceLinks: 0, routing }, { keys: generateKeyPair() })
  watch()
  await node.start()
  void receive(config.filter ?? '#')
}

/** Origins whose readings are reported one by one: all, or those named by `track`. */
let tracked: Set<string> | 'all' = 'all'
let dropEvents = 0

/**
 * Link and drop events (for a device, attached once its node exists: its links form after start),
 * and every other event the node emits, whatever it is called (a node that learns to report, say,
 * a cloned identity may do so with an event of its own): `{ev:'event', name, data}`, the data as
 * JSON, cut at 1,000 characters.
 */
function watch (): void {
  node.on('link:open', (peer) => { send({ ev: 'link', peer, up: true, t: Date.now() }) })
  node.on('link:close', (peer) => { send({ ev: 'link', peer, up: false, t: Date.now() }) })
  node.on('drop', (info: DropInfo) => {
    if (dropEvents++ < (config.maxDropEvents ?? 500)) send({ ev: 'drop', ...info, t: Date.now() })
  })
  const known = new Set(['delivery', 'drop', 'link:open', 'link:close', 'peer:discovered'])
  const target = node as unknown as { emit: (event: string, ...args: unknown[]) => boolean }
  const emit = target.emit.bind(node)
  let others = 0
  target.emit = (event, ...args) => {
    if (!known.has(event) && others++ < (config.maxDropEvents ?? 500)) {
      const data = JSON.stringify(args, (_, v: unknown) => v instanceof Uint8Array ? `${v.length} bytes` : typeof v === 'bigint' ? String(v) : v)
      send({ ev: 'event', name: event, data: data.slice(0, 1000), t: Date.now() })
    }
    return emit(event, ...args)
  }
}

async function receive (filter: string): Promise<void> {
  for await (const d of node.subscribe(filter, { buffer: 100_000 })) report(d)
}

function report (d: Delivery): void {
  if (d.origin === node.id || (tracked !== 'all' && !tracked.has(d.origin))) return
  const records = d.records.map((r) => ({ n: r.n, v: r.v }))
  send({ ev: 'reading', origin: d.origin, seq: d.seq, time: d.time * 1000, hops: d.hops, from: d.from, t: Date.now(), records })
}

function fds (): number {
  try { return readdirSync('/proc/self/fd').length } catch { return -1 }
}

const health = setInterval(() => {
  const delay = { p50: ms(histogram.percentile(50)), p99: ms(histogram.percentile(99)), max: ms(histogram.max), count: histogram.count, over: over() }
  histogram.reset()
  const cpu = process.cpuUsage()
  const memory = process.memoryUsage()
  send({
    ev: 'health',
    t: Date.now(),
    delay,
    rss: memory.rss,
    heapUsed: memory.heapUsed,
    fds: fds(),
    cpuUs: cpu.user + cpu.system,
    links: [...node.links.keys()],
    rejected: { ...node.counters.rejected }
  })
}, config.healthMs ?? 250)

/** A full garbage collection (V8's `gc`, exposed at run time): what the heap holds after it is the node's state, not garbage. */
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

let profiler: Session | undefined

const handlers: Record<string, (m: Record<string, unknown>) => Promise<unknown>> = {
  /** Heap in use after a full collection, bytes: the state the node keeps. */
  retained: async () => { gc(); return { heapUsed: process.memoryUsage().heapUsed } },
  info: async () => ({ id: node.id, publicKey: toBase64url(publicKey()), port: node.address?.port, host: config.host }),
  counters: async () => ({ ...node.counters, device: device?.counters }),
  peers: async () => node.peers(),
  interest: async () => node.interest(),
  track: async ({ origins }) => { tracked = origins === 'all' ? 'all' : new Set(origins as string[]); return {} },
  addPeer: async ({ address }) => { node.addPeer(address as string); return {} },
  /** CPU profile of this process (V8's, through the inspector): `{start: true}`, then `{file}` writes it (.cpuprofile, for DevTools). */
  profile: async ({ start, file }) => {
    if (start === true) {
      profiler = new Session()
      profiler.connect()
      await profiler.post('Profiler.enable')
      await profiler.post('Profiler.start')
      return {}
    }
    if (profiler === undefined) throw new Error('no profile started')
    const { profile } = await profiler.post('Profiler.stop')
    profiler.disconnect()
    profiler = undefined
    writeFileSync(file as string, JSON.stringify(profile))
    return { file }
  },
  stop: async () => {
    clearInterval(health)
    await (device?.stop() ?? node.stop())
    setTimeout(() => process.exit(0), 20)
    return {}
  }
}

function publicKey (): Uint8Array {
  const key = node.keyOf(node.id)
  if (key === undefined) throw new Error('the node does not know its own key')
  return key
}

process.on('message', (m: Record<string, unknown>) => {
  const handler = handlers[m.cmd as string]
  if (handler === undefined) { send({ id: m.id, ok: false, err: `unknown command ${String(m.cmd)}` }); return }
  handler(m).then((res) => { send({ id: m.id, ok: true, res }) }, (err: Error) => { send({ id: m.id, ok: false, err: String(err.stack ?? err) }) })
})
send({ ev: 'ready', id: node.id, port: node.address?.port })
