import type { FailoverResults, LatencyResults } from '../results/types.js'
import type { Distribution } from '../metrics/stats.js'
import { COLORS, MODE_COLORS, axes, legend, linearScale, logScale, polyline, svgDocument, text, type Box, type LegendItem } from './svg.js'

/**
 * Chart (b): latency distributions as CDFs on a log time axis, one line per mode and receiver
 * (failover) or per path (latency): the share of readings that arrived within x ms. Drawn from
 * the 101 quantiles each distribution keeps in results.json. A latency of 0 (below the clock's
 * resolution) is drawn at the axis minimum.
 */

export interface CdfSeries extends LegendItem { quantiles: readonly number[] }

const WIDTH = 960
const HEIGHT = 480
const BOX: Box = { left: 80, top: 92, width: 850, height: 320 }

/** An SVG chart of cumulative distributions on a log axis. */
export function cdfChart (title: string, series: readonly CdfSeries[], labels: { x: string, y: string } = { x: 'latency, ms (log scale)', y: 'readings arrived within x' }): string {
  const positive = series.flatMap((s) => s.quantiles).filter((q) => q > 0)
  const lo = positive.length === 0 ? 1 : Math.min(...positive)
  const hi = positive.length === 0 ? 10 : Math.max(...positive)
  const x = logScale([lo, Math.max(hi, lo * 10)], [BOX.left, BOX.left + BOX.width], [1, 3])
  const y = linearScale([0, 100], [BOX.top + BOX.height, BOX.top], 5)
  y.label = (v) => `${v} %`
  const body: string[] = [
    text(BOX.left, 26, title, { 'font-size': 16, 'font-weight': 'bold' }),
    ...legend(BOX.left, 54, series),
    ...axes(BOX, x, y, labels)
  ]
  for (const s of series) {
    const points: Array<[number, number]> = []
    s.quantiles.forEach((q, p) => {
      const at = x(Math.max(q, x.domain[0]))
      if (p > 0) points.push([at, y(p - 1)])
      points.push([at, y(p)])
    })
    body.push(polyline(points, s.color, { class: 'cdf', ...(s.dash === undefined ? {} : { 'stroke-dasharray': s.dash }) }))
  }
  return svgDocument(WIDTH, HEIGHT, title, body)
}

/** An SVG chart of each mode's latency distribution in a failover run. */
export function failoverLatencyChart (results: FailoverResults): string {
  const series: CdfSeries[] = []
  const add = (label: string, color: string, d: Distribution | null, dash?: string): void => {
    if (d !== null) series.push({ label, color, quantiles: d.quantiles, ...(dash === undefined ? {} : { dash }) })
  }
  for (const m of results.modes) {
    add(`${m.mode} → gateway`, MODE_COLORS[m.mode] ?? COLORS.black, m.latency.gateway)
    add(`${m.mode} → peer`, MODE_COLORS[m.mode] ?? COLORS.black, m.latency.peer, '2 3')
  }
  return cdfChart(`Latency over the whole timeline (publication to first arrival), ${results.parameters.devices} devices`, series)
}

const PATH_COLORS: Record<string, string> = { 'one-hop': COLORS.blue, 'three-hop': COLORS.sky, broker: COLORS.vermillion }

/** An SVG chart of each path's latency distribution in a latency run. */
export function pathLatencyChart (results: LatencyResults): string {
  const series: CdfSeries[] = results.paths
    .filter((p) => p.latencyMs !== null)
    .map((p) => ({ label: `${p.path} (p50 ${p.latencyMs?.p50} ms)`, color: PATH_COLORS[p.path] ?? COLORS.black, quantiles: p.latencyMs?.quantiles ?? [] }))
  return cdfChart(`Latency by path, ${results.parameters.rounds} interleaved rounds`, series)
}
