import { describe, expect, it } from 'vitest'
import {
  combineLatencyRuns, combineScaleRuns, compareRuns, latencyChecks, latencyResults, refreshLatency, refreshScale, renderReport, validateResults,
  type LatencyObservation, type LatencyResults, type ScaleResults
} from '../../lab/index.js'
import { MACHINE, SOFTWARE, T0, scaleFixture } from './fixtures.js'

/** `experiment scale --repeat N` and `experiment latency --repeat N` (lab/results/scale-repeat.ts, lab/results/latency-repeat.ts). */

const status = (checks: ReadonlyArray<{ id: string, status: string }>, id: string): string | undefined => checks.find((c) => c.id === id)?.status

/** The scale fixture as run `seed`, with one fleet's window set to `x` of `n` readings delivered. */
function scaleRun (seed: number, window?: { mode: 'broker' | 'mesh', devices: number, x: number, n: number }, drop?: { mode: 'broker' | 'mesh', devices: number }): ScaleResults {
  const r = scaleFixture()
  const points = r.points
    .filter((p) => drop === undefined || p.mode !== drop.mode || p.devices !== drop.devices)
    .map((p) => window !== undefined && p.mode === window.mode && p.devices === window.devices ? { ...p, readings: window.n, delivered: window.x, delivery: window.x / window.n } : p)
  return refreshScale({ ...r, seed, points })
}

describe('scale over repeated runs', () => {
  it('pools each fleet\'s readings: 200 of 200 is undecided in each run alone, 600 of 600 over three runs holds', () => {
    const runs = [3, 4, 5].map((seed) => scaleRun(seed, { mode: 'mesh', devices: 20, x: 200, n: 200 }))
    for (const r of runs) expect(r.checks.find((c) => c.id === 'scale-delivery')?.observed).toContain('mesh with 20 devices: 200 of 200')
    expect(runs.map((r) => status(r.checks, 'scale-delivery'))).toEqual(['undecided', 'undecided', 'undecided']) // the 5-device fleets too
    const big = [3, 4, 5].map((seed) => {
      const r = scaleRun(seed, { mode: 'mesh', devices: 20, x: 200, n: 200 })
      // Every other fleet large enough alone, so that the 20-device fleet decides the check.
      return { ...r, points: r.points.map((p) => p.mode === 'mesh' && p.devices === 20 ? p : { ...p, readings: 1000, delivered: 1000, delivery: 1 }) }
    })
    const combined = combineScaleRuns(big)
    const fig = combined.repetitions?.figures.find((f) => f.mode === 'mesh' && f.devices === 20 && f.metric === 'delivery')
    expect(fig).toMatchObject({ values: [1, 1, 1], mean: 1, low: 1, high: 1, counts: [{ x: 200, n: 200 }, { x: 200, n: 200 }, { x: 200, n: 200 }], pooled: { x: 600, n: 600 } })
    expect(fig?.pooled?.low).toBeGreaterThanOrEqual(0.99)
    expect(status(combined.checks, 'scale-delivery')).toBe('pass')
    expect(combined.repetitions?.seeds).toEqual([3, 4, 5])
    expect(combined.repetitions?.runChecks.find((c) => c.id === 'scale-delivery')?.statuses).toEqual(['undecided', 'undecided', 'undecided'])
  })

  it('fails a fleet whose pooled readings lie below 99 % though each run alone is undecided (196 of 200 three times: 588 of 600)', () => {
    const runs = [3, 4, 5].map((seed) => scaleRun(seed, { mode: 'mesh', devices: 10, x: 196, n: 200 }))
    expect(runs[0]?.checks.find((c) => c.id === 'scale-delivery')?.observed).toMatch(/mesh with 10 devices: 196 of 200, \[[\d.]+, 99\.\d\] % \(undecided/)
    const check = combineScaleRuns(runs).checks.find((c) => c.id === 'scale-delivery')
    expect(check?.status).toBe('fail')
    expect(check?.observed).toContain('mesh with 10 devices: 588 of 600 pooled over 3 runs')
  })

  it('a small fleet stays undecided when pooled, and says how many readings it would take', () => {
    const check = combineScaleRuns([3, 4, 5].map((seed) => scaleRun(seed))).checks.find((c) => c.id === 'scale-delivery')
    expect(check?.status).toBe('undecided')
    expect(check?.observed).toContain('broker with 5 devices: 150 of 150 pooled over 3 runs')
    expect(check?.observed).toContain('≥ 99 % needs ≥ 381 readings')
  })

  it('a fleet size one run did not reach is judged on the runs that did', () => {
    const runs = [scaleRun(3), scaleRun(4, undefined, { mode: 'mesh', devices: 200 }), scaleRun(5)]
    const fig = combineScaleRuns(runs).repetitions?.figures.find((f) => f.mode === 'mesh' && f.devices === 200 && f.metric === 'delivery')
    expect(fig?.values).toEqual([1, null, 1])
    expect(fig?.counts?.[1]).toBeNull()
    expect(fig?.pooled).toMatchObject({ x: 4000, n: 4000 })
  })

  it('growth is each run\'s own ratio, within one transport, judged on its interval over the runs', () => {
    const combined = combineScaleRuns([3, 4, 5].map((seed) => scaleRun(seed)))
    const mesh = combined.repetitions?.figures.find((f) => f.mode === 'mesh' && f.metric === 'growth')
    expect(mesh).toMatchObject({ from: 5, devices: 200 })
    expect(mesh?.mean).toBeCloseTo(Math.log2(200) / Math.log2(5), 2)
    expect(status(combined.checks, 'mesh-per-node-sublinear')).toBe('pass')
    expect(status(combined.checks, 'broker-per-device-flat')).toBe('pass')
    // Above 50 devices on in-memory links: the ratio stops at the last TCP fleet.
    const split = combineScaleRuns([3, 4].map((seed) => ({ ...scaleFixture(50), seed })))
    expect(split.repetitions?.figures.find((f) => f.mode === 'mesh' && f.metric === 'growth')).toMatchObject({ from: 5, devices: 50 })
  })

  it('a growth that varies across the bound is undecided, with the smallest difference the runs can tell', () => {
    const runs = [1.2, 1.9, 1.4].map((factor, i) => {
      const r = scaleRun(3 + i)
      const big = Math.max(...r.points.map((p) => p.devices))
      return refreshScale({ ...r, points: r.points.map((p) => p.mode === 'broker' && p.devices === big && p.perDevice !== null ? { ...p, perDevice: { ...p.perDevice, bytesPerS: p.perDevice.bytesPerS * factor } } : p) })
    })
    const check = combineScaleRuns(runs).checks.find((c) => c.id === 'broker-per-device-flat')
    expect(runs.map((r) => status(r.checks, 'broker-per-device-flat'))).toEqual(['pass', 'fail', 'pass'])
    expect(check?.status).toBe('undecided')
    expect(check?.observed).toMatch(/larger than ±\d\.\d\d, the interval's half-width/)
  })

  it('passes its schema, reports every run\'s seed, and renders again to the same checks', () => {
    const combined = combineScaleRuns([3, 4, 5].map((seed) => scaleRun(seed)))
    expect(validateResults(JSON.parse(JSON.stringify(combined)))).toEqual([])
    const md = renderReport(combined).find((f) => f.name === 'report.md')?.content ?? ''
    expect(md).toContain('## Repetitions: 3 runs')
    expect(md).toContain('3 runs, seeds **3, 4, 5**')
    expect(md).toMatch(/\| mesh \| 20 \| 3 \| 100\.0 % \[100\.0 %, 100\.0 %\] \| 600\/600 /)
    const withProvenance = { ...combined, provenance: { command: 'iotmesh experiment scale --repeat 3', commit: null, dirty: null, loadBefore: [1, 1, 1], loadAfter: null } }
    expect(renderReport(withProvenance).find((f) => f.name === 'report.md')?.content).toContain('| seeds, one per run | 3, 4, 5 |')
    const tampered = { ...combined, checks: combined.checks.map((c) => ({ ...c, status: 'fail' as const })) }
    expect(refreshScale(tampered).checks).toEqual(combined.checks)
  })
})

/** A latency run of `rounds` rounds: one hop `oneHop(round)` ms, broker `broker(round)`, three hops 1 ms slower than one. */
function latencyRun (seed: number, rounds: number, oneHop: (r: number) => number, broker: (r: number) => number | undefined): LatencyResults {
  const probes: LatencyObservation[] = []
  for (let round = 0; round < rounds; round++) {
    const b = broker(round)
    probes.push({ path: 'one-hop', round, latencyMs: oneHop(round) }, { path: 'three-hop', round, latencyMs: oneHop(round) + 1 }, { path: 'broker', round, ...(b === undefined ? {} : { latencyMs: b }) })
  }
  return latencyResults({ seed, parameters: { rounds, paths: ['one-hop', 'three-hop', 'broker'], intervalMs: 2 }, probes, startedAt: T0, finishedAt: T0 + 10_000, machine: MACHINE, software: SOFTWARE })
}

describe('latency over repeated runs', () => {
  // 12 rounds per run, the two paths within ±0.1 ms of each other, the sign set by each run's moment.
  const noisy = [-0.1, 0.1, -0.08].map((shift, i) => latencyRun(11 + i, 12, (r) => 0.5 + (r % 3) * 0.01, (r) => 0.5 + (r % 3) * 0.01 - shift))

  it('a check one run of few rounds "passes" by noise is undecided over three such runs, with what they could tell', () => {
    expect(status(noisy[0]?.checks ?? [], 'one-hop-beats-broker')).toBe('pass') // alone, 12 of 12 rounds faster
    const combined = combineLatencyRuns(noisy)
    expect(combined.repetitions?.runChecks.find((c) => c.id === 'one-hop-beats-broker')?.statuses).toEqual(['pass', 'fail', 'pass'])
    const check = combined.checks.find((c) => c.id === 'one-hop-beats-broker')
    expect(check?.status).toBe('undecided')
    expect(check?.observed).toMatch(/one-hop − broker: .* over 3 runs \(undecided; these 3 runs tell only a difference from 0\.000 ms larger than ±0\.\d+ ms/)
    const fig = combined.repetitions?.figures.find((f) => f.metric === 'difference-ms' && f.path === 'one-hop' && f.versus === 'broker')
    expect(fig?.values).toEqual([-0.1, 0.1, -0.08])
  })

  it('a difference every run shows holds over the runs; three hops cost more than one', () => {
    const runs = [0.3, 0.32, 0.29].map((gap, i) => latencyRun(1 + i, 30, (r) => 0.4 + (r % 5) * 0.02, (r) => 0.4 + gap + (r % 5) * 0.02))
    const combined = combineLatencyRuns(runs)
    expect(status(combined.checks, 'one-hop-beats-broker')).toBe('pass')
    expect(status(combined.checks, 'hops-cost')).toBe('pass')
    expect(status(combined.checks, 'all-probes-arrived')).toBe('pass')
    expect(combined.repetitions?.figures.find((f) => f.path === 'one-hop' && f.metric === 'p50-ms')?.values).toHaveLength(3)
  })

  it('a probe lost in one run of three leaves every-probe-arrived undecided, with the pooled probes beside it; lost in every run it fails', () => {
    const once = combineLatencyRuns([latencyRun(1, 20, () => 0.4, () => 0.7), latencyRun(2, 20, () => 0.4, (r) => r === 5 ? undefined : 0.7), latencyRun(3, 20, () => 0.4, () => 0.7)])
    const check = once.checks.find((c) => c.id === 'all-probes-arrived')
    expect(check?.status).toBe('undecided')
    expect(check?.observed).toContain('broker: 59 of 60 pooled')
    const always = combineLatencyRuns([1, 2, 3].map((seed) => latencyRun(seed, 20, () => 0.4, (r) => r < 2 ? undefined : 0.7)))
    expect(status(always.checks, 'all-probes-arrived')).toBe('fail')
  })

  it('passes its schema, renders its repetitions, re-renders to the same checks, and reproduces against its own intervals', () => {
    const combined = combineLatencyRuns(noisy)
    expect(validateResults(JSON.parse(JSON.stringify(combined)))).toEqual([])
    const md = renderReport(combined).find((f) => f.name === 'report.md')?.content ?? ''
    expect(md).toContain('## Repetitions: 3 runs')
    expect(md).toContain('3 runs, seeds **11, 12, 13**')
    expect(md).toMatch(/\| one-hop \| broker \| .* \| −?-?0\.10 ms, \+0\.10 ms, -0\.08 ms \|/)
    const tampered = { ...combined, checks: latencyChecks(combined.paths, combined.differences) }
    expect(refreshLatency(tampered).checks).toEqual(combined.checks)
    const r = compareRuns('saved/results.json', combined, combined)
    expect(r.oldSeeds).toEqual([11, 12, 13])
    expect(r.verdict).toBe('reproduced')
    expect(r.figures.some((f) => f.figure === 'one-hop − broker, difference-ms' && f.inside === true)).toBe(true)
  })

  it('needs two runs', () => {
    expect(() => combineLatencyRuns(noisy.slice(0, 1))).toThrow(expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }))
    expect(() => combineScaleRuns([scaleRun(1)])).toThrow(expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }))
  })
})
