import { describe, expect, it } from 'vitest'
import {
  compareRuns, refreshRevocation, revocationChecks, revocationFigures, revocationResults, summarizeRevocationPath, validateResults, renderReport,
  type PathObservation, type RevocationParameters, type RevocationRunObservations
} from '../../lab/index.js'
import { topologyHops, topologyPeers, gridWidth } from '../../firmware-sim/index.js'

/**
 * The revocation experiment's figures (lab/metrics/revocation.ts, lab/results/revocation.ts) from
 * hand-made observations: time to refusal per node, frames accepted after the issue and after a
 * node's own refusal, the intervals over runs and the checks judged on them; the fixed topologies
 * (firmware-sim/fleet/topology.ts) that make the revocation cross a known number of relays.
 */

const T = 1_000_000 // the issue, wall ms

function mesh (shift = 0, leak = false, all = false): PathObservation {
  return {
    path: 'mesh',
    issuedAt: T,
    endedAt: T + 4000,
    nodes: [
      { index: -1, hops: 0, refusedFrom: T + 2, accepted: [T - 200, T - 100] },
      { index: 0, hops: 1, refusedFrom: T + 10 + shift, accepted: [T - 100, T + 5] },
      { index: 1, hops: 2, refusedFrom: T + 20 + shift, accepted: [T - 100, T + 5, T + 15, ...(leak ? [T + 30] : [])] },
      { index: 2, hops: 3, accepted: [T - 100], ...(all ? { refusedFrom: T + 20 + shift } : {}) } // unless `all`, never refused within the window
    ],
    cutAt: T + 25,
    refusedConnects: 3,
    refusedFrames: 2,
    publishedAfter: 40
  }
}

const params: RevocationParameters = { seed: 1, devices: 4, topology: 'line', intervalMs: 1000, victimIntervalMs: 100, beforeS: 1, afterS: 4, settleS: 10, linkDelayMs: 0, repeat: 3, paths: ['mesh'] }

describe('revocation figures', () => {
  it('per node: time from the issue to its refusal, frames accepted after the issue, and after its own refusal (a leak)', () => {
    const s = summarizeRevocationPath(mesh())
    expect(s.nodes).toBe(4)
    expect(s.refusing).toBe(3)
    expect(s.perNode.map((n) => n.refusalMs)).toEqual([2, 10, 20, null])
    expect(s.refusalMs).toMatchObject({ count: 3, min: 2, max: 20, p50: 10 })
    // After the issue: node 0 one frame (T+5), node 1 two (T+5, T+15); none after its own refusal.
    expect(s.acceptedAfter).toBe(3)
    expect(s.nodesAccepting).toBe(2)
    expect(s.lastAcceptedMs).toBe(15)
    expect(s.acceptedAfterRefusal).toBe(0)
    expect(s.cutMs).toBe(25)
    expect(summarizeRevocationPath(mesh(0, true)).acceptedAfterRefusal).toBe(1)
    // Nothing accepted after the issue: no last frame (null, not 0); a refusal stamped before the issue counts as 0.
    const quiet = summarizeRevocationPath({ ...mesh(), nodes: [{ index: 5, hops: 1, refusedFrom: T - 1, accepted: [T - 50] }] })
    expect(quiet.lastAcceptedMs).toBeNull()
    expect(quiet.perNode[0]?.refusalMs).toBe(0)
  })

  it('over runs: each figure\'s values, mean and 95 % t-interval; the checks judged on the intervals and on every run', () => {
    const runs = [0, 4, 8].map((shift) => ({ seed: 1 + shift / 4, paths: [summarizeRevocationPath(mesh(shift, false, true))] }))
    const figures = revocationFigures(runs, ['mesh'])
    const max = figures.find((f) => f.metric === 'refusal-max-ms')
    expect(max?.values).toEqual([20, 24, 28])
    expect(max?.mean).toBe(24)
    // t(0.975, 2) = 4.303, s = 4, n = 3: half width 4.303 × 4 / √3 = 9.94
    expect(max?.low).toBeCloseTo(14.06, 1)
    expect(max?.high).toBeCloseTo(33.94, 1)
    expect(figures.find((f) => f.metric === 'refusing')?.mean).toBe(1)
    const checks = revocationChecks(runs, figures, ['mesh'])
    const status = (id: string): string | undefined => checks.find((c) => c.id === id)?.status
    expect(status('mesh-every-node-refuses')).toBe('pass')
    expect(status('mesh-last-node-within-bound')).toBe('pass')
    // A node that never refused: the run has no last-node time (nor a p99), and the bound is not met (the window, 4 s, ≥ 5 s? no: undecided; 8 s: fail).
    const short = [0, 4, 8].map((shift) => ({ seed: shift, paths: [summarizeRevocationPath(mesh(shift))] }))
    const shortFigures = revocationFigures(short, ['mesh'])
    expect(shortFigures.find((f) => f.metric === 'refusal-max-ms')).toBeUndefined()
    expect(shortFigures.find((f) => f.metric === 'refusal-p99-ms')).toBeUndefined()
    expect(shortFigures.find((f) => f.metric === 'refusal-p50-ms')?.values).toEqual([10, 14, 18])
    const judged = (windowMs: number): string | undefined => revocationChecks(short, shortFigures, ['mesh'], windowMs).find((c) => c.id === 'mesh-last-node-within-bound')?.status
    expect(judged(8000)).toBe('fail')
    expect(judged(4000)).toBe('undecided')
    expect(revocationChecks(short, shortFigures, ['mesh']).find((c) => c.id === 'mesh-every-node-refuses')?.status).toBe('fail')
    expect(status('broker-cuts-session-within-bound')).toBe('not-run')
    expect(status('nothing-accepted-after-refusal')).toBe('pass')
    const leaky = [...runs.slice(1), { seed: 9, paths: [summarizeRevocationPath(mesh(0, true, true))] }]
    expect(revocationChecks(leaky, revocationFigures(leaky, ['mesh']), ['mesh']).find((c) => c.id === 'nothing-accepted-after-refusal')?.status).toBe('fail')
    // One run has no interval: a bound cannot be decided on it.
    const one = runs.slice(0, 1)
    expect(revocationChecks(one, revocationFigures(one, ['mesh']), ['mesh']).find((c) => c.id === 'mesh-last-node-within-bound')?.status).toBe('undecided')
    // Runs whose last node refuses far past the bound: the interval lies above it.
    const slow = [8000, 8500, 9000].map((shift, i) => ({ seed: i, paths: [summarizeRevocationPath(mesh(shift, false, true))] }))
    expect(revocationChecks(slow, revocationFigures(slow, ['mesh']), ['mesh']).find((c) => c.id === 'mesh-last-node-within-bound')?.status).toBe('fail')
  })

  it('results.json matches its schema, renders a report with the chart, and re-renders to the same figures', () => {
    const observations: RevocationRunObservations[] = [0, 4, 8].map((shift, i) => ({
      seed: 1 + i,
      paths: [mesh(shift), { path: 'broker', issuedAt: T, endedAt: T + 4000, nodes: [{ index: -1, hops: null, refusedFrom: T + 3 + i, accepted: [T - 90] }], cutAt: T + 3 + i, refusedConnects: 2, refusedFrames: 0, publishedAfter: 40 }]
    }))
    const results = revocationResults({ params: { ...params, paths: ['mesh', 'broker'] }, paths: ['mesh', 'broker'], observations, startedAt: T, finishedAt: T + 60_000 })
    expect(validateResults(results)).toEqual([])
    expect(results.figures.find((f) => f.path === 'broker' && f.metric === 'cut-ms')?.values).toEqual([3, 4, 5])
    expect(results.checks.find((c) => c.id === 'broker-cuts-session-within-bound')?.status).toBe('pass')
    expect(refreshRevocation(results)).toEqual(results)
    // --from: each figure of a new run against the saved intervals (the same runs again: every judged one inside).
    const again = compareRuns('saved/results.json', results, results)
    expect(again.newSeeds).toEqual([1, 2, 3])
    expect(again.figures.map((f) => f.figure)).toContain('mesh, refusal-p50-ms')
    expect(again.outside).toBe(0)
    expect(again.inside).toBeGreaterThan(0)
    expect(again.verdict).toBe('reproduced')
    const files = renderReport(results)
    expect(files.map((f) => f.name)).toEqual(['results.json', 'results.schema.json', 'refusal.svg', 'report.md'])
    const report = files.find((f) => f.name === 'report.md')?.content ?? ''
    expect(report).toContain('| mesh | 14 ms [4.06 ms, 24 ms] | — | — | 75.0 % [75.0 %, 75.0 %] |')
    expect(report).toContain('## Mesh: time to refusal by distance')
    expect(files.find((f) => f.name === 'refusal.svg')?.content).toMatch(/^<svg [\s\S]*mesh: 9 node refusals over 3 runs/)
  })
})

describe('fixed fleet topologies', () => {
  it('a line and a grid: who dials whom, and the hops from the gateway (linked to device 0)', () => {
    expect([0, 1, 2, 3].map((i) => topologyPeers('line', i, 4))).toEqual([[], [0], [1], [2]])
    expect(topologyHops('line', 4, -1)).toEqual([1, 2, 3, 4])
    expect(gridWidth(12)).toBe(4)
    // 4 columns: 0 1 2 3 / 4 5 6 7 / 8 9 10 11
    expect(topologyPeers('grid', 5, 12)).toEqual([4, 1])
    expect(topologyPeers('grid', 4, 12)).toEqual([0])
    expect(topologyPeers('grid', 3, 12)).toEqual([2])
    expect(topologyHops('grid', 12, -1)).toEqual([1, 2, 3, 4, 2, 3, 4, 5, 3, 4, 5, 6])
    // 100 devices: a 10 × 10 grid, the far corner 19 hops from the gateway.
    expect(Math.max(...topologyHops('grid', 100, -1))).toBe(19)
    expect(topologyHops('grid', 100, 99)[0]).toBe(18)
  })
})
