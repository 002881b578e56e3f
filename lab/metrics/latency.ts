import { LATENCY_PATHS, type LatencyObservation, type LatencyPath } from '../observations.js'
import type { PathSummary } from '../results/types.js'
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
      latencyMs: distribution(arrived, 2)
    }
  })
}
