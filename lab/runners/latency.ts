import { meshError, mulberry32 } from '../../shared/index.js'
import { latencyResults } from '../results/assemble.js'
import { LATENCY_PATHS, type LatencyObservation } from '../observations.js'
import { writeReport } from '../report/write.js'
import { ChildProgram, childPrograms } from './children.js'
import type { LatencyParameters, LatencyResults } from '../results/types.js'
import { repeatedNotes, sleep, type RunComponents } from './support.js'
import { combineLatencyRuns } from '../results/latency-repeat.js'
import { finishProvenance, startProvenance } from '../results/environment.js'

/**
 * `iotmesh experiment latency`, the runner: end-to-end latency of one mesh hop, three mesh hops
 * and the broker path, each between separate processes, probe by probe, interleaved (the method
 * of `npm run bench`'s "paths" section, test/bench/paths.ts, which runs the same child programs):
 *
 * - four mesh nodes in a line, m0 – m1 – m2 – m3 (static links, no DNS-SD); m0 publishes a signed
 *   reading, m1 (one hop) and m3 (three hops) time its arrival;
 * - the broker path: a device process publishes a signed frame over MQTT (QoS 0) to the iotmesh
 *   gateway (embedded Aedes, which verifies it before forwarding), and a subscriber process
 *   verifies it end to end and times its arrival.
 *
 * A round is one mesh probe then one broker probe, one message in flight at a time, so the paths
 * never compete for the CPU and a slow moment of the machine weighs on all alike. Latency is
 * taken on the monotonic clock (process.hrtime), which every process of the machine shares: the
 * publisher writes its send time into the payload. A probe that has not arrived within
 * `timeoutMs` is counted as not received.
 *
 * The child programs are the lab's own, lab/children/*.ts, compiled to dist/lab/children/ (`npm run
 * build`); they are run, never imported (runners/children.ts).
 */

export interface LatencyRunInit {
  /** Measured rounds (default 1000). */
  rounds?: number
  /** Rounds before those, not recorded (default 100). */
  warmup?: number
  /** Pause between two probes, ms (default 2). */
  intervalMs?: number
  /** A probe not arrived by then is lost, ms (default 1000). */
  timeoutMs?: number
  /**
   * Orders the paths within each round: a coin drawn from it says whether the mesh probe or the broker probe goes
   * first (the children draw their own keys). Default 1.
   */
  seed?: number
  out?: string
  /**
   * Runs of the whole experiment (default 1), with seeds seed, seed + 1, …, each with fresh processes. From 2 on,
   * every figure gets a 95 % interval over the runs and the checks are judged on them (results/latency-repeat.ts);
   * the tables and the chart are the first run's.
   */
  repeat?: number
}

/** A latency run: its results and the files written. */
export interface LatencyRun {
  results: LatencyResults
  /** The first run's. */
  probes: LatencyObservation[]
  files: string[]
}

/** The latency experiment's default rounds, warm-up and timing, ms. */
export const LATENCY_DEFAULTS = Object.freeze({ rounds: 1000, warmup: 100, intervalMs: 2, timeoutMs: 1000 })
/** The latency experiment's `--quick` rounds, warm-up and timing, ms. */
export const LATENCY_QUICK = Object.freeze({ rounds: 200, warmup: 50, intervalMs: 2, timeoutMs: 1000 })

/** Seconds the run is expected to take. */
export function latencyRunSeconds (init: LatencyRunInit = {}): number {
  const s = { ...LATENCY_DEFAULTS, ...stripUndefined(init) }
  return (init.repeat ?? 1) * (4 + (s.rounds + s.warmup) * 2 * (s.intervalMs + 2) / 1000)
}

/** Runs the latency experiment: probes over each path in rounds, paired by round, `repeat` times. */
export async function runLatency (init: LatencyRunInit = {}, components: RunComponents = {}): Promise<LatencyRun> {
  const s = { ...LATENCY_DEFAULTS, ...stripUndefined(init) }
  for (const [name, min] of [['rounds', 1], ['warmup', 0], ['intervalMs', 0], ['timeoutMs', 1]] as const) {
    const v = s[name]
    if (!Number.isSafeInteger(v) || v < min) throw meshError('ERR_BAD_ARGUMENT', `latency: ${name} must be an integer of at least ${min}, got ${v}`)
  }
  const seed = init.seed ?? 1
  const repeat = init.repeat ?? 1
  if (!Number.isSafeInteger(repeat) || repeat < 1 || repeat > 100) throw meshError('ERR_BAD_ARGUMENT', `latency: repeat must be an integer from 1 to 100, got ${repeat}`)
  if (!Number.isSafeInteger(seed) || seed < 0 || seed + repeat - 1 > 0xffff_ffff) throw meshError('ERR_BAD_ARGUMENT', `latency: seeds ${seed}…${seed + repeat - 1} must lie within 0…4294967295`)
  if (repeat === 1) return await runOnce(init, s, seed, components)
  const provenance = startProvenance(components.command)
  const runs: LatencyRun[] = []
  for (let i = 0; i < repeat; i++) runs.push(await runOnce({ ...init, out: undefined }, s, seed + i, { ...components, repetition: `${i + 1}/${repeat}`, part: { index: i, count: repeat } }))
  const combined = combineLatencyRuns(runs.map((r) => r.results))
  const results = { ...combined, notes: repeatedNotes(runs.map((r) => r.results)), provenance: finishProvenance(provenance) }
  const files = init.out === undefined ? [] : await writeReport(init.out, results)
  return { results, probes: runs[0]?.probes ?? [], files }
}

async function runOnce (init: LatencyRunInit, s: { rounds: number, warmup: number, intervalMs: number, timeoutMs: number }, seed: number, components: RunComponents & { repetition?: string, part?: { index: number, count: number } }): Promise<LatencyRun> {
  const now = components.now ?? Date.now
  const run = components.repetition === undefined ? '' : `run ${components.repetition}: `
  const coin = mulberry32(seed)
  const { progress, signal } = components
  const children = childPrograms()
  const startedAt = now()
  const provenance = startProvenance(components.command)
  const all: ChildProgram[] = []
  const probes: LatencyObservation[] = []
  try {
    progress?.update({ phase: `${run}starting the processes`, done: (components.part?.index ?? 0) / (components.part?.count ?? 1) })
    const mesh = [0, 1, 2, 3].map(() => new ChildProgram(children.mesh, {}))
    const gateway = new ChildProgram(children.broker, { IOTMESH_BENCH_ROLE: 'gateway' })
    all.push(...mesh, gateway)
    await Promise.all(all.map(async (c) => { await c.ready }))
    const addrs = await Promise.all(mesh.map(async (c) => (await c.call<{ addrs: string[] }>('info')).addrs))
    for (let i = 1; i < mesh.length; i++) await (mesh[i] as ChildProgram).call('dial', { addrs: addrs[i - 1] })
    const line = async (): Promise<boolean> => (await Promise.all(mesh.map(async (c) => await c.call<{ conns: number }>('status'))))
      .every((st, i) => st.conns === (i === 0 || i === 3 ? 1 : 2))
    await waitFor('the four mesh nodes to link in a line', line, signal)
    const { port } = await gateway.call<{ port: number }>('info')
    const env = { IOTMESH_BENCH_BROKER: `mqtt://127.0.0.1:${port}` }
    const device = new ChildProgram(children.broker, { ...env, IOTMESH_BENCH_ROLE: 'device' })
    const subscriber = new ChildProgram(children.broker, { ...env, IOTMESH_BENCH_ROLE: 'subscriber' })
    all.push(device, subscriber)
    await Promise.all([device.ready, subscriber.ready])
    await waitFor('the subscriber to learn the device key', async () => (await subscriber.call<number>('keys')) > 0, signal)
    // Interest travels hop by hop: probe until one crosses the line, so round 0 does not time the mesh's assembly.
    const [m0, m1, , m3] = mesh as [ChildProgram, ChildProgram, ChildProgram, ChildProgram]
    await waitFor('a first reading over three hops', async () => (await probe(m0, [m3], -1, s.timeoutMs)).every((l) => l !== undefined), signal)

    const total = s.warmup + s.rounds
    const part = components.part ?? { index: 0, count: 1 }
    for (let r = 0; r < total; r++) {
      // The share of rounds done over every repetition: the time left follows the pace of this machine.
      if (r % 20 === 0) progress?.update({ phase: `${run}${r < s.warmup ? `${s.warmup} warm-up rounds` : `${s.rounds} measured rounds`}`, done: (part.index + r / total) / part.count })
      // The seed's coin says which path goes first in this round, so that neither always follows the other.
      const brokerFirst = coin() < 0.5
      let broker: number | undefined
      if (brokerFirst) { [broker] = await probe(device, [subscriber], 2 * r + 1, s.timeoutMs); await sleep(s.intervalMs, signal) }
      const [one, three] = await probe(m0, [m1, m3], 2 * r, s.timeoutMs)
      await sleep(s.intervalMs, signal)
      if (!brokerFirst) { [broker] = await probe(device, [subscriber], 2 * r + 1, s.timeoutMs); await sleep(s.intervalMs, signal) }
      if (r < s.warmup) continue
      const round = r - s.warmup
      probes.push(observation('one-hop', round, one), observation('three-hop', round, three), observation('broker', round, broker))
    }
  } finally {
    progress?.update({ phase: 'stopping the processes', done: ((components.part?.index ?? 0) + 1) / (components.part?.count ?? 1) })
    await Promise.all(all.map(async (c) => { await c.stop() }))
  }
  const parameters: LatencyParameters = { rounds: s.rounds, paths: [...LATENCY_PATHS], intervalMs: s.intervalMs }
  const notes = [
    `one process per node: four mesh nodes in a line (TCP links on 127.0.0.1, static, no DNS-SD); the broker path is a device process, the iotmesh gateway process (embedded Aedes, verifying every frame) and a subscriber process (MQTT QoS 0)`,
    `${s.warmup} warm-up rounds before the ${s.rounds} measured; a probe not arrived within ${s.timeoutMs} ms counts as lost`,
    `within each round the mesh probe or the broker probe goes first by a coin drawn from the run's seed`
  ]
  const results = latencyResults({ seed, parameters, probes, startedAt, finishedAt: now(), notes, provenance: finishProvenance(provenance) })
  const files = init.out === undefined ? [] : await writeReport(init.out, results)
  return { results, probes, files }
}

function observation (path: LatencyObservation['path'], round: number, latencyMs: number | undefined): LatencyObservation {
  return latencyMs === undefined ? { path, round } : { path, round, latencyMs }
}

/** Sends one probe from `sender`; resolves with each receiver's latency, ms (undefined: not within the timeout). */
async function probe (sender: ChildProgram, receivers: ChildProgram[], seq: number, timeoutMs: number): Promise<Array<number | undefined>> {
  const tag = 7
  const got = new Array<number | undefined>(receivers.length).fill(undefined)
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, timeoutMs)
    receivers.forEach((child, i) => {
      child.onEvent = (m) => {
        if (m.ev !== 'rx' || m.seq !== (seq >>> 0) || m.tag !== tag) return
        got[i] = (m.lat as number) / 1e6
        if (got.every((v) => v !== undefined)) { clearTimeout(timer); resolve() }
      }
    })
    sender.send({ cmd: 'pubfast', seq: seq >>> 0, tag })
  })
  for (const child of receivers) child.onEvent = undefined
  return got
}

async function waitFor (what: string, check: () => Promise<boolean>, signal: AbortSignal | undefined, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`latency: timed out waiting for ${what}`)
    await sleep(50, signal)
  }
}

function stripUndefined<T extends object> (init: T): Partial<T> {
  return Object.fromEntries(Object.entries(init).filter(([, v]) => v !== undefined)) as Partial<T>
}
