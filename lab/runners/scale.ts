import { meshError } from '../../shared/index.js'
import { scaleResults } from '../results/assemble.js'
import { MODES, type Mode, type ScaleObservations } from '../observations.js'
import { writeReport } from '../report/write.js'
import type { ScaleParameters, ScaleResults } from '../results/types.js'
import { startObservedFleet } from './fleet.js'
import { hiResNow, repeatedNotes, sleep, ticking, type RunComponents } from './support.js'
import { summarizeScale } from '../metrics/scale.js'
import { finishProvenance, startProvenance } from '../results/environment.js'
import { combineScaleRuns } from '../results/scale-repeat.js'

/**
 * `iotmesh experiment scale`, the runner: fleets of growing size, one mode at a time, each
 * started fresh with the same seed, settled (runners/fleet.ts), left `warmupS` more, then measured
 * for `durationS`: readings published in the window and whether they reached the gateway (each
 * gets `drainS` after the window to arrive), and resources sampled every second (runners/resources.ts:
 * CPU and memory of the whole process, traffic of the devices' own links and MQTT connections).
 * A mode stops growing once a fleet delivers less than `minDelivery` (99 %): the machine cannot
 * hold that size, and larger ones would measure the machine, not the architecture.
 *
 * Transport: `tcp` (real encrypted links and DNS-SD) or `memory` (in-process links, no DNS-SD);
 * `auto` uses TCP up to `tcpUpTo` devices and memory links above. The transport of every point
 * is written in the results' notes.
 */

export interface ScaleRunInit {
  /** Fleet sizes, ascending (default 5, 10, 20, 50, 100, 200). */
  sizes?: number[]
  /** Modes (default broker and mesh). */
  modes?: Mode[]
  seed?: number
  /** Sampling interval of every device, ms (default 1000). */
  intervalMs?: number
  /** Measured window per fleet, s (default 20). */
  durationS?: number
  /** Settling after the fleet is formed, before the window, s (default 5). */
  warmupS?: number
  /** After the window, for readings still on their way, s (default 3). */
  drainS?: number
  transport?: 'tcp' | 'memory' | 'auto'
  /** With `auto`: the largest fleet on TCP links (default 50). */
  tcpUpTo?: number
  /** Stop growing a mode below this delivery ratio (default 0.99). */
  minDelivery?: number
  /** Longest wait for a fleet to settle, s (default 30 + 0.2 per device). */
  settleS?: number
  out?: string
  /**
   * Runs of the whole experiment (default 1), with seeds seed, seed + 1, …: each its own fleets. From 2 on,
   * every figure gets a 95 % interval and the checks are judged over the runs (results/scale-repeat.ts); the
   * tables and the chart are the first run's.
   */
  repeat?: number
}

/** A scale run: its results and the files written. */
export interface ScaleRun {
  results: ScaleResults
  /** The first run's. */
  observations: ScaleObservations[]
  files: string[]
}

/** The scale experiment's default fleet sizes and windows, s. */
export const SCALE_DEFAULTS = Object.freeze({ sizes: [5, 10, 20, 50, 100, 200], durationS: 20, warmupS: 5, drainS: 3 })
/** The scale experiment's `--quick` fleet sizes and windows, s. */
export const SCALE_QUICK = Object.freeze({ sizes: [5, 10, 20], durationS: 8, warmupS: 2, drainS: 2 })

/** Seconds the run is expected to take if every size is measured. */
export function scaleRunSeconds (init: ScaleRunInit = {}): number {
  const s = settings(init)
  return s.repeat * s.modes.length * s.sizes.reduce((a, n) => a + setupEstimateS(n) + s.warmupS + s.durationS + s.drainS, 0)
}

/** Runs the scale experiment: fleets of growing size per mode, traffic and delivery measured in a window, `repeat` times. */
export async function runScale (init: ScaleRunInit = {}, components: RunComponents = {}): Promise<ScaleRun> {
  const s = settings(init)
  if (s.repeat === 1) return await runOnce(init, s, components)
  const provenance = startProvenance(components.command)
  const runs: ScaleRun[] = []
  for (let i = 0; i < s.repeat; i++) {
    runs.push(await runOnce({ ...init, out: undefined }, { ...s, seed: s.seed + i }, { ...components, repetition: `${i + 1}/${s.repeat}` }))
  }
  const combined = combineScaleRuns(runs.map((r) => r.results))
  const notes = repeatedNotes(runs.map((r) => r.results))
  const results = { ...combined, notes, provenance: finishProvenance(provenance) }
  const files = init.out === undefined ? [] : await writeReport(init.out, results)
  return { results, observations: runs[0]?.observations ?? [], files }
}

async function runOnce (init: ScaleRunInit, s: Settings, components: RunComponents & { repetition?: string }): Promise<ScaleRun> {
  const now = components.now ?? hiResNow
  const { progress, signal } = components
  const startedAt = now()
  const provenance = startProvenance(components.command)
  const observations: ScaleObservations[] = []
  const notes: string[] = [
    'every device, the gateway and the broker run in one process (iotmesh fleet simulator): CPU and memory per device are the whole process divided by the fleet size, broker and gateway included',
    'traffic per device: its mesh links\' bytes and messages (relaying for others included) plus its MQTT connection\'s bytes and packets; the broker and the gateway are not sampled as roles of their own'
  ]
  for (const [m, mode] of s.modes.entries()) {
    for (const devices of s.sizes) {
      const transport = s.transport === 'auto' ? (devices <= s.tcpUpTo ? 'tcp' : 'memory') : s.transport
      const step = `${m + 1}/${s.modes.length}${components.repetition === undefined ? '' : `, run ${components.repetition}`}`
      const show = (phase: string): void => { progress?.update({ mode, step, phase: `${devices} devices, ${phase}` }) }
      const observed = await ticking(500, () => { show('starting') }, startObservedFleet({
        mode, devices, seed: s.seed, interval: s.intervalMs, transport, settleMs: (s.settleS ?? 30 + 0.2 * devices) * 1000
      }, { now, ...(signal === undefined ? {} : { signal }) }))
      let point: ScaleObservations
      try {
        if (observed.unsettled !== undefined) { notes.push(observed.unsettled); progress?.log(`warning: ${observed.unsettled}`) }
        await ticking(500, () => { show('warming up') }, sleep(s.warmupS * 1000, signal))
        const t0 = now()
        observed.sampler.start()
        await ticking(500, () => { show('measuring') }, sleep(s.durationS * 1000, signal))
        const endedAt = now()
        observed.sampler.sample()
        await ticking(500, () => { show('drain') }, sleep(s.drainS * 1000, signal))
        point = { mode, devices, transport: mode === 'broker' ? 'tcp' : transport, t0, endedAt, readings: observed.recorder.readings(t0, endedAt, now()), samples: observed.sampler.between(t0, endedAt) }
      } finally {
        show('stopping')
        await observed.stop()
      }
      observations.push(point)
      notes.push(`${mode}, ${devices} devices: ${mode === 'broker' ? 'MQTT over TCP (no mesh)' : transport === 'tcp' ? 'mesh over TCP links, DNS-SD' : 'mesh over in-memory links'}`)
      const delivery = summarizeScale(point).delivery
      progress?.log(`${mode}, ${devices} devices: ${delivery === null ? 'nothing published' : `${(delivery * 100).toFixed(1)} % delivered`}`)
      if (delivery === null || delivery < s.minDelivery) {
        notes.push(`${mode}: stopped growing at ${devices} devices (${delivery === null ? 'nothing published' : `${(delivery * 100).toFixed(1)} % delivered`}, below ${(s.minDelivery * 100).toFixed(0)} %)`)
        break
      }
    }
  }
  const parameters: ScaleParameters = { sizes: s.sizes, modes: s.modes, intervalS: s.intervalMs / 1000, durationS: s.durationS, warmupS: s.warmupS }
  const results = scaleResults({ seed: s.seed, parameters, observations, startedAt, finishedAt: now(), notes, provenance: finishProvenance(provenance) })
  const files = init.out === undefined ? [] : await writeReport(init.out, results)
  return { results, observations, files }
}

function setupEstimateS (devices: number): number {
  return 3 + devices * 0.05
}

type Settings = Required<Omit<ScaleRunInit, 'out' | 'settleS'>> & { settleS?: number }

function settings (init: ScaleRunInit): Settings {
  const sizes = init.sizes ?? [...SCALE_DEFAULTS.sizes]
  if (sizes.length === 0 || sizes.some((n) => !Number.isSafeInteger(n) || n < 1 || n > 5000)) {
    throw meshError('ERR_BAD_ARGUMENT', `scale: sizes must be integers from 1 to 5000, got ${JSON.stringify(sizes)}`)
  }
  const modes = init.modes ?? ['broker', 'mesh']
  if (modes.length === 0 || modes.some((m) => !MODES.includes(m)) || new Set(modes).size !== modes.length) {
    throw meshError('ERR_BAD_ARGUMENT', `scale: modes must be distinct, from ${MODES.join(', ')}; got ${JSON.stringify(modes)}`)
  }
  const positive = (name: string, v: number, min = 0): number => {
    if (!Number.isFinite(v) || v < min) throw meshError('ERR_BAD_ARGUMENT', `scale: ${name} must be a number of at least ${min}, got ${v}`)
    return v
  }
  const seed = init.seed ?? 1
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffff_ffff) throw meshError('ERR_BAD_ARGUMENT', `scale: seed must be an integer from 0 to 4294967295, got ${seed}`)
  const repeat = init.repeat ?? 1
  if (!Number.isSafeInteger(repeat) || repeat < 1 || repeat > 100) throw meshError('ERR_BAD_ARGUMENT', `scale: repeat must be an integer from 1 to 100, got ${repeat}`)
  if (seed + repeat - 1 > 0xffff_ffff) throw meshError('ERR_BAD_ARGUMENT', `scale: seeds ${seed}…${seed + repeat - 1} pass 4294967295`)
  const transport = init.transport ?? 'auto'
  if (!['tcp', 'memory', 'auto'].includes(transport)) throw meshError('ERR_BAD_ARGUMENT', `scale: transport must be tcp, memory or auto, got ${JSON.stringify(transport)}`)
  return {
    sizes: [...new Set(sizes)].sort((a, b) => a - b),
    modes,
    seed,
    intervalMs: positive('intervalMs', init.intervalMs ?? 1000, 50),
    durationS: positive('durationS', init.durationS ?? SCALE_DEFAULTS.durationS, 1),
    warmupS: positive('warmupS', init.warmupS ?? SCALE_DEFAULTS.warmupS),
    drainS: positive('drainS', init.drainS ?? SCALE_DEFAULTS.drainS),
    transport,
    tcpUpTo: positive('tcpUpTo', init.tcpUpTo ?? 50),
    minDelivery: positive('minDelivery', init.minDelivery ?? 0.99),
    repeat,
    ...(init.settleS === undefined ? {} : { settleS: positive('settleS', init.settleS) })
  }
}
