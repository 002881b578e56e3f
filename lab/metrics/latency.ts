import { LATENCY_PATHS, type LatencyObservation, type LatencyPath } from '../observations.js'
import type { PairedDifference, PathSummary } from '../results/types.js'
import { medianInterval } from './median-interval.js'
import { distribution } from './stats.js'

/**
 * `iotmesh experiment latency`: one summary per path (one mesh hop, three mesh hops, the broker),
 * in the order of LATENCY_PATHS, over every probe whatever its round. Rounds interleave the paths
 * so that a slow moment of a shared machine weighs on all of them alike. Latencies to 0.01 ms.
 */
export function summarizeLatency (probes: readonly LatencyObservation[], paths: readonly LatencyPath[] = LATENCY_PATHS): PathSummary[] {
  return paths.map((path) => {
    const mine = probes.filter((p) => p.path === path)
    const arrived = mine.map((p) => p.latencyMs).filter((ms): ms is number => ms !== undefined)
    return {
      path,
      sent: mine.length,
      received: arrived.length,
      rounds: new Set(mine.map((p) => p.round)).size,
      latencyMs: distribution(arrived, 2),
      p50Ci95: medianInterval(arrived)?.ci95 ?? null
    }
  })
}

/** The comparisons the checks make: one hop against the broker, one hop against three. */
export const LATENCY_PAIRS: ReadonlyArray<readonly [LatencyPath, LatencyPath]> = [['one-hop', 'broker'], ['one-hop', 'three-hop']]

/**
 * Path `a` minus path `b` in the same round, for every round in which both probes arrived: the
 * pairing takes out what a round shares (the machine's load at that moment), and the median of the
 * differences with its order-statistic interval is the sign test's answer to "which is faster".
 */
export function pairedDifferences (probes: readonly LatencyObservation[], paths: readonly LatencyPath[] = LATENCY_PATHS): PairedDifference[] {
  const byRound = new Map<LatencyPath, Map<number, number>>()
  for (const p of probes) {
    if (p.latencyMs === undefined) continue
    let rounds = byRound.get(p.path)
    if (rounds === undefined) byRound.set(p.path, rounds = new Map())
    rounds.set(p.round, p.latencyMs)
  }
  return LATENCY_PAIRS.filter(([a, b]) => paths.includes(a) && paths.includes(b)).map(([a, b]) => {
    const ra = byRound.get(a) ?? new Map<number, number>()
    const rb = byRound.get(b) ?? new Map<number, number>()
    const diffs: number[] = []
    for (const [round, la] of ra) {
      const lb = rb.get(round)
      if (lb !== undefined) diffs.push(la - lb)
    }
    const m = medianInterval(diffs)
    return { a, b, rounds: diffs.length, aFaster: diffs.filter((d) => d < 0).length, medianMs: m?.median ?? null, ci95: m?.ci95 ?? null }
  })
}
