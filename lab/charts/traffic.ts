import type { ScaleResults } from '../results/types.js'
import { COLORS, axes, esc, fmt, legend, logScale, polyline, px, svgDocument, text, type Box, type LegendItem } from './svg.js'

/**
 * Chart (c): traffic against fleet size, both axes logarithmic. Lines: bytes per second of one
 * mesh node (received + sent, relaying included), of one device in broker mode, and of the broker
 * process as a whole; a point per fleet measured, with its value.
 */

const WIDTH = 960
const HEIGHT = 480
const BOX: Box = { left: 90, top: 92, width: 830, height: 320 }

interface Line extends LegendItem { points: Array<[number, number]> }

/** An SVG chart of traffic per device against fleet size, one series per mode and transport. */
export function trafficChart (results: ScaleResults): string {
  const lines: Line[] = []
  // One series per mode and transport: a run whose fleets changed transport (scale --transport auto) is two methods,
  // and never one line across them. In-memory mesh links are drawn dotted.
  const transports = [...new Set(results.points.map((p) => p.transport))]
  const pick = (mode: string, transport: string | undefined, value: (p: ScaleResults['points'][number]) => number | undefined): Array<[number, number]> =>
    results.points.filter((p) => p.mode === mode && p.transport === transport)
      .flatMap((p) => { const v = value(p); return v === undefined || !(v > 0) ? [] : [[p.devices, v] as [number, number]] })
  const add = (label: string, color: string, points: Array<[number, number]>, dash?: string): void => {
    if (points.length > 0) lines.push({ label, color, points, ...(dash === undefined ? {} : { dash }) })
  }
  for (const t of transports) {
    const over = transports.length > 1 || t === 'memory' ? (t === 'memory' ? ' (in-memory links)' : t === 'tcp' ? ' (TCP)' : '') : ''
    const dots = t === 'memory' ? '2 3' : undefined
    add(`mesh: per node${over}`, COLORS.blue, pick('mesh', t, (p) => p.perDevice?.bytesPerS), dots)
    add(`hybrid: per device${over}`, COLORS.green, pick('hybrid', t, (p) => p.perDevice?.bytesPerS), dots)
    add('broker mode: per device', COLORS.vermillion, pick('broker', t, (p) => p.perDevice?.bytesPerS))
    add('broker mode: the broker', COLORS.vermillion, pick('broker', t, (p) => p.broker?.bytesPerS), '6 4')
  }
  const xs = lines.flatMap((l) => l.points.map(([n]) => n))
  const ys = lines.flatMap((l) => l.points.map(([, v]) => v))
  const sizes = [...new Set(xs.length === 0 ? results.parameters.sizes : xs)].sort((a, b) => a - b)
  const [first, last] = [sizes[0] ?? 1, sizes.at(-1) ?? 10]
  const x = logScale([first / 1.25, Math.max(last * 1.25, first * 2)], [BOX.left, BOX.left + BOX.width], [1], true)
  x.ticks = sizes
  x.label = (v) => String(v)
  const [lo, hi] = ys.length === 0 ? [1, 10] : [Math.min(...ys), Math.max(...ys)]
  const decades = Math.log10(hi / lo)
  const y = logScale([lo, hi], [BOX.top + BOX.height, BOX.top], decades > 3 ? [1] : [1, 2, 5])
  y.label = (v) => fmt(v)
  const title = `Traffic per node against fleet size (one reading every ${fmt(results.parameters.intervalS)} s per device)`
  const body: string[] = [
    text(BOX.left, 26, title, { 'font-size': 16, 'font-weight': 'bold' }),
    ...legend(BOX.left, 54, lines),
    ...axes(BOX, x, y, { x: 'devices in the fleet (log scale)', y: 'bytes / s, in + out (log scale)' })
  ]
  for (const l of lines) {
    const pts = l.points.map(([n, v]) => [x(n), y(v)] as [number, number])
    body.push(`<g class="series" data-label="${esc(l.label)}">`)
    body.push(polyline(pts, l.color, l.dash === undefined ? {} : { 'stroke-dasharray': l.dash }))
    l.points.forEach(([, v], i) => {
      const [cx, cy] = pts[i] as [number, number]
      body.push(`<circle cx="${px(cx)}" cy="${px(cy)}" r="3.5" fill="${l.color}"/>`)
      body.push(text(cx + 6, cy - 6, `${fmt(v, 0)} B/s`, { 'font-size': 10, fill: '#333333', stroke: '#ffffff', 'stroke-width': 3, 'paint-order': 'stroke' }))
    })
    body.push('</g>')
  }
  return svgDocument(WIDTH, HEIGHT, title, body)
}
