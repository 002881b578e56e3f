import { describe, expect, it } from 'vitest'
import { latencyChecks } from '../../lab/results/checks.js'
import { medianInterval, medianRank } from '../../lab/metrics/median-interval.js'
import { pairedDifferences, summarizeLatency } from '../../lab/metrics/latency.js'
import type { LatencyObservation } from '../../lab/observations.js'

/** Latency judged on intervals (lab/metrics/median-interval.ts, lab/metrics/latency.ts, latencyChecks). */

describe('the 95 % interval of a median, from order statistics', () => {
  it('takes the ranks of the published table (Conover, Table A3: n = 20 → 6th and 15th, n = 100 → 40th and 61st)', () => {
    expect(medianRank(20)).toBe(6)
    expect(medianRank(100)).toBe(40)
    expect(medianRank(6)).toBe(1) // P(Bin(6, ½) = 0) = 1/64 ≤ 2.5 %
    expect(medianRank(5)).toBe(0) // 1/32 > 2.5 %: five values cannot bound a median at 95 %
    const values = Array.from({ length: 100 }, (_, i) => 100 - i) // 1..100 in any order
    expect(medianInterval(values)).toEqual({ count: 100, median: 50, ci95: [40, 61] })
    expect(medianInterval([3, 1, 2])).toEqual({ count: 3, median: 2, ci95: null })
    expect(medianInterval([])).toBeNull()
  })
})

/** Rounds in which the machine's moment (`moment`, ms) weighs on every path alike, as on a shared machine. */
function rounds (n: number, oneHop: (r: number, moment: number) => number, broker: (r: number, moment: number) => number): LatencyObservation[] {
  const probes: LatencyObservation[] = []
  for (let round = 0; round < n; round++) {
    const moment = (round * 37) % 11 // 0..10 ms of load, different each round
    probes.push({ path: 'one-hop', round, latencyMs: oneHop(round, moment) })
    probes.push({ path: 'three-hop', round, latencyMs: oneHop(round, moment) + 0.5 })
    probes.push({ path: 'broker', round, ...(round === 3 ? {} : { latencyMs: broker(round, moment) }) })
  }
  return probes
}

const verdict = (probes: LatencyObservation[], id: string): string | undefined => {
  const paths = summarizeLatency(probes)
  return latencyChecks(paths, pairedDifferences(probes)).find((c) => c.id === id)?.status
}

describe('latency checks on paired rounds', () => {
  it('pairs the paths round by round, leaving out a round whose probe was lost', () => {
    const probes = rounds(50, (_, m) => 0.5 + m, (_, m) => 0.6 + m)
    const [vsBroker, vsThree] = pairedDifferences(probes)
    expect(vsBroker).toMatchObject({ a: 'one-hop', b: 'broker', rounds: 49, aFaster: 49, medianMs: -0.1, ci95: [-0.1, -0.1] })
    expect(vsThree).toMatchObject({ a: 'one-hop', b: 'three-hop', rounds: 50, aFaster: 50, medianMs: -0.5 })
  })

  it('holds when one hop is faster in the same moment, even by less than the spread of the moments', () => {
    // 0.1 ms faster in every round, against 10 ms of load between rounds: the medians apart cannot show it, the pairs can.
    expect(verdict(rounds(50, (_, m) => 0.5 + m, (_, m) => 0.6 + m), 'one-hop-beats-broker')).toBe('pass')
    expect(verdict(rounds(50, (_, m) => 0.5 + m, (_, m) => 0.6 + m), 'hops-cost')).toBe('pass')
  })

  it('fails when the broker path is faster round by round', () => {
    expect(verdict(rounds(50, (_, m) => 0.7 + m, (_, m) => 0.6 + m), 'one-hop-beats-broker')).toBe('fail')
  })

  it('is undecided when the rounds go either way about as often, where the two medians alone made it a pass', () => {
    // One hop is 0.3 ms ahead in the even rounds and 0.2 ms behind in the odd ones: the medians apart differ
    // (0.5 against 0.8 ms: a pass before), the paired interval straddles 0.
    const probes = rounds(60, (r) => (r % 2 === 0 ? 0.5 : 0.9), (r) => (r % 2 === 0 ? 0.8 : 0.7))
    const paths = summarizeLatency(probes)
    const p50 = (p: string): number | undefined => paths.find((x) => x.path === p)?.latencyMs?.p50
    expect(p50('one-hop')).toBeLessThan(p50('broker') as number)
    expect(latencyChecks(paths).find((c) => c.id === 'one-hop-beats-broker')?.status).toBe('pass') // the medians alone
    expect(verdict(probes, 'one-hop-beats-broker')).toBe('undecided')
  })

  it('says why a check cannot be judged when too few rounds have both probes', () => {
    const probes = rounds(4, (_, m) => 0.5 + m, (_, m) => 0.6 + m)
    const check = latencyChecks(summarizeLatency(probes), pairedDifferences(probes)).find((c) => c.id === 'one-hop-beats-broker')
    expect(check).toMatchObject({ status: 'not-run', observed: '3 rounds with both probes: too few for an interval' })
  })
})
