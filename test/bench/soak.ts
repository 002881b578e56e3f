/**
 * `npm run soak -- --minutes N`: is memory flat? A simulated fleet (default 300 devices, mesh mode,
 * in-memory links, a gateway with its mesh bridge) runs for N minutes. Every `--sample-s` seconds
 * (default 60) the heap is collected (`global.gc()`, twice: node --expose-gc) and the retained heap
 * and RSS are sampled. After the warm-up (`--warmup` minutes, default 10, or a third of a shorter
 * run) the slope of the retained heap is fitted by least squares and printed in KiB/min. The
 * warm-up must outlast the fill of the bounded stores: each node's catch-up history holds 256
 * frames per origin, full after ~4.5 min at one reading a second.
 *
 * One JSON line per sample on stderr; the summary is the last line of stdout. Not in `npm test`:
 * the hour-long run is a manual step (its figures go in the README), a few minutes is a smoke run.
 *
 *   --minutes N     run time (default 60)
 *   --devices N     fleet size (default 300)
 *   --interval MS   sampling interval of every device (default 1000)
 *   --warmup M      minutes left out of the fit (default min(10, minutes / 3))
 *   --sample-s S    seconds between samples (default 60)
 *   --seed X        (default 1)
 *   --stall-at S    block the event loop once, S seconds into the run (a forced GC, a starved CPU)…
 *   --stall-ms MS   …for this long (default 12000): `--minutes 4 --sample-s 10 --stall-at 90` shows
 *                   whether the fleet recovers from a stall (issue 11)
 *   --snapshot-at M,M…  write a heap snapshot (after the collection) at the first sample at or past
 *                   each of these minutes, into --snapshot-dir (default .): load two in Chrome
 *                   DevTools' Memory tab and compare them to see what the retained heap grows by
 */
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { writeHeapSnapshot } from 'node:v8'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { createFleet } from '../../firmware-sim/index.js'

interface Sample {
  atMin: number, heapMiB: number, rssMiB: number, externalMiB: number, published: number, atGateway: number, links: number
  /** Since the sample before: the event loop's utilization and the process's CPU, in cores (a loop busy 100 % on 0.2 cores is a starved process). */
  elu: number, cores: number
}

function reexecInNamespace (): void {
  if (process.env.IOTMESH_NETNS === '1' || process.env.IOTMESH_BENCH_HOST_LO === '1') return
  if (spawnSync('unshare', ['-rn', 'true']).status !== 0) return
  const r = spawnSync('unshare', ['-rn', 'sh', '-c', 'ip link set lo up && exec "$0" "$@"', process.execPath, ...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit', env: { ...process.env, IOTMESH_NETNS: '1' } })
  process.exit(r.status ?? 1)
}

/** Least-squares slope of y over x. */
export function slope (points: Array<[number, number]>): number {
  const n = points.length
  if (n < 2) return Number.NaN
  const mx = points.reduce((s, [x]) => s + x, 0) / n
  const my = points.reduce((s, [, y]) => s + y, 0) / n
  let num = 0
  let den = 0
  for (const [x, y] of points) { num += (x - mx) * (y - my); den += (x - mx) ** 2 }
  return den === 0 ? Number.NaN : num / den
}

const MiB = 1024 * 1024
const round = (x: number, digits = 1): number => Math.round(x * 10 ** digits) / 10 ** digits

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string' }, devices: { type: 'string' }, interval: { type: 'string' }, warmup: { type: 'string' }, 'sample-s': { type: 'string' }, seed: { type: 'string' },
      'stall-at': { type: 'string' }, 'stall-ms': { type: 'string' }, 'snapshot-at': { type: 'string' }, 'snapshot-dir': { type: 'string' }
    }
  })
  const minutes = Number(values.minutes ?? 60)
  const devices = Number(values.devices ?? 300)
  const interval = Number(values.interval ?? 1000)
  const warmup = Number(values.warmup ?? Math.min(10, minutes / 3))
  const sampleS = Number(values['sample-s'] ?? 60)
  const seed = Number(values.seed ?? 1)
  const stallAt = values['stall-at'] === undefined ? undefined : Number(values['stall-at'])
  const stallMs = Number(values['stall-ms'] ?? 12_000)
  const snapshotAt = (values['snapshot-at'] ?? '').split(',').filter((m) => m !== '').map(Number).sort((a, b) => a - b)
  if (snapshotAt.some((m) => !Number.isFinite(m) || m < 0)) throw new Error('--snapshot-at takes minutes ≥ 0, separated by commas')
  const snapshotDir = values['snapshot-dir'] ?? '.'
  for (const [name, v] of Object.entries({ minutes, devices, interval, warmup, sampleS, seed, stallMs, ...stallAt === undefined ? {} : { stallAt } })) {
    if (!Number.isFinite(v) || v < 0) throw new Error(`--${name} must be a number ≥ 0`)
  }
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) throw new Error('run with node --expose-gc (npm run soak does)')
  reexecInNamespace()

  const collect = (): void => { gc(); gc() }
  const started = Date.now()
  const fleet = await createFleet({ devices, mode: 'mesh', transport: 'memory', mdns: false, interval, seed })
  const samples: Sample[] = []
  let elu = performance.eventLoopUtilization()
  let cpu = process.cpuUsage()
  let at = Date.now()
  const take = (): Sample => {
    const busy = performance.eventLoopUtilization(elu)
    const used = process.cpuUsage(cpu)
    const cores = (used.user + used.system) / 1000 / Math.max(1, Date.now() - at)
    collect()
    elu = performance.eventLoopUtilization()
    cpu = process.cpuUsage()
    at = Date.now()
    const m = process.memoryUsage()
    const stats = fleet.stats()
    const sample = {
      atMin: round((at - started) / 60_000, 3), heapMiB: round(m.heapUsed / MiB, 2), rssMiB: round(m.rss / MiB, 1), externalMiB: round((m.external + m.arrayBuffers) / MiB, 1),
      published: stats.published, atGateway: stats.atGateway, links: stats.links, elu: round(busy.utilization, 2), cores: round(cores, 2)
    }
    samples.push(sample)
    if (snapshotAt.length > 0 && sample.atMin >= (snapshotAt[0] as number)) {
      snapshotAt.shift()
      const file = writeHeapSnapshot(join(snapshotDir, `soak-${sample.atMin.toFixed(1)}min.heapsnapshot`))
      process.stderr.write(`${JSON.stringify({ snapshot: file, atMin: sample.atMin })}\n`)
    }
    // Where the readings are when some do not arrive (Fleet.flow(): drops by step and code, what waits on links).
    process.stderr.write(`${JSON.stringify({ ...sample, flow: fleet.flow() })}\n`)
    return sample
  }
  take()
  if (stallAt !== undefined) {
    setTimeout(() => {
      process.stderr.write(`${JSON.stringify({ stall: { atS: stallAt, ms: stallMs } })}\n`)
      const until = Date.now() + stallMs
      while (Date.now() < until) { /* the stall: nothing else of the process runs */ }
    }, stallAt * 1000)
  }
  const end = started + minutes * 60_000
  while (Date.now() < end) {
    await new Promise((resolve) => setTimeout(resolve, Math.min(sampleS * 1000, Math.max(0, end - Date.now()))))
    take()
  }
  const stats = fleet.stats()
  await fleet.stop()
  const fitted = samples.filter((s) => s.atMin >= warmup)
  const first = fitted[0] ?? samples[0]
  const last = samples[samples.length - 1]
  process.stdout.write(`${JSON.stringify({
    command: `npm run soak -- --minutes ${minutes} --devices ${devices} --interval ${interval} --warmup ${warmup} --sample-s ${sampleS} --seed ${seed}${stallAt === undefined ? '' : ` --stall-at ${stallAt} --stall-ms ${stallMs}`}`,
    devices,
    minutes,
    warmupMin: warmup,
    samples: samples.length,
    fittedSamples: fitted.length,
    heapSlopeKiBPerMin: round(slope(fitted.map((s) => [s.atMin, s.heapMiB * 1024])), 1),
    rssSlopeKiBPerMin: round(slope(fitted.map((s) => [s.atMin, s.rssMiB * 1024])), 1),
    heapAfterWarmupMiB: first?.heapMiB,
    heapEndMiB: last?.heapMiB,
    rssAfterWarmupMiB: first?.rssMiB,
    rssEndMiB: last?.rssMiB,
    published: stats.published,
    atGateway: stats.atGateway,
    deliveryRatio: stats.deliveryRatio,
    node: process.version
  })}\n`)
}

main().catch((err: unknown) => {
  process.stderr.write(`soak: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
