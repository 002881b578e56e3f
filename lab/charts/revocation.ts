import { distribution } from '../metrics/stats.js'
import type { RevocationResults } from '../results/types.js'
import { cdfChart, type CdfSeries } from './latency.js'
import { MODE_COLORS, COLORS } from './svg.js'

/**
 * The revocation chart: the CDF of the time from the issue of a revocation to each node's refusal,
 * one line per path, the nodes of every run pooled (the broker path has one node a run: the broker).
 * A refusal at 0 ms (the gateway, where the revocation was issued) is drawn at the axis minimum.
 */
export function refusalChart (results: RevocationResults): string {
  const series: CdfSeries[] = []
  for (const path of results.parameters.paths) {
    const values = results.runs.flatMap((r) => r.paths.filter((p) => p.path === path).flatMap((p) => p.perNode.flatMap((n) => n.refusalMs === null ? [] : [n.refusalMs])))
    const d = distribution(values, 2)
    const runs = results.runs.length
    if (d !== null) series.push({ label: `${path}: ${values.length} node refusals over ${runs} run${runs === 1 ? '' : 's'}`, color: MODE_COLORS[path] ?? COLORS.black, quantiles: d.quantiles })
  }
  return cdfChart('Time from the revocation to each node\'s refusal', series, { x: 'time to refusal, ms (log scale)', y: 'nodes refusing within x' })
}
