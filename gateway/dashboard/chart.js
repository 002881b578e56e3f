/* iotmesh dashboard: line charts of recent readings, hand-drawn SVG (no chart library). */
import { clockTime, displayed, el, number, svg, unit } from './format.js'

/** Points kept per device and sensor. */
export const MAX_POINTS = 240

const WIDTH = 560
const HEIGHT = 128
const PAD = { left: 46, right: 12, top: 12, bottom: 22 }

/** Recent numeric readings: device id → sensor name → [{ t (s), v, u }], oldest first, bounded. */
export class SeriesStore {
  constructor () {
    this.byDevice = new Map()
  }

  /** Adds the numeric values of one reading; duplicates (same time and sensor) are ignored. */
  add (id, values) {
    let sensors = this.byDevice.get(id)
    if (sensors === undefined) this.byDevice.set(id, sensors = new Map())
    for (const raw of values) {
      if (typeof raw.v !== 'number' || !Number.isFinite(raw.v)) continue
      const value = { ...raw, ...displayed(raw.v, raw.u) }
      let points = sensors.get(value.n)
      if (points === undefined) sensors.set(value.n, points = [])
      const last = points[points.length - 1]
      if (last !== undefined && value.t < last.t) {
        // A late arrival (mesh catch-up, history fetched after live readings): keep time order.
        if (points.some((p) => p.t === value.t)) continue
        points.push({ t: value.t, v: value.v, u: value.u })
        points.sort((a, b) => a.t - b.t)
      } else if (last === undefined || value.t !== last.t) {
        points.push({ t: value.t, v: value.v, u: value.u })
      }
      if (points.length > MAX_POINTS) points.splice(0, points.length - MAX_POINTS)
    }
  }

  sensors (id) {
    return this.byDevice.get(id) ?? new Map()
  }
}

/** Draws one chart per sensor of the selected device into `root`. */
export function renderCharts (root, store, id, now = Date.now()) {
  const sensors = [...store.sensors(id)].filter(([, points]) => points.length > 0).sort(([a], [b]) => a.localeCompare(b))
  if (id === undefined) {
    root.replaceChildren(el('p', 'empty', 'Select a device to see its recent readings.'))
    return
  }
  if (sensors.length === 0) {
    root.replaceChildren(el('p', 'empty', 'No numeric readings from this device yet.'))
    return
  }
  root.replaceChildren(...sensors.map(([name, points]) => chart(name, points, now)))
}

function chart (name, points, now) {
  const figure = el('figure', 'chart-card')
  const last = points[points.length - 1]
  const caption = el('figcaption')
  caption.append(el('span', 'sensor', name), el('span', 'last-value', `${number(last.v)} ${unit(last.u)}`.trim()))
  const values = points.map((p) => p.v)
  let lo = Math.min(...values)
  let hi = Math.max(...values)
  if (lo === hi) { lo -= 1; hi += 1 }
  const margin = (hi - lo) * 0.08
  lo -= margin
  hi += margin
  const t1 = Math.max(now / 1000, last.t)
  const t0 = Math.min(points[0].t, t1 - 60)
  const x = (t) => PAD.left + ((t - t0) / (t1 - t0)) * (WIDTH - PAD.left - PAD.right)
  const y = (v) => PAD.top + (1 - (v - lo) / (hi - lo)) * (HEIGHT - PAD.top - PAD.bottom)

  const root = svg('svg', { class: 'chart', viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img', 'aria-label': `${name}, last ${number(last.v)}`, 'data-sensor': name, 'data-last': last.v, 'data-points': points.length })
  const grid = svg('g', { class: 'grid' })
  for (const f of [0, 0.5, 1]) {
    const v = lo + (hi - lo) * f
    grid.append(svg('line', { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(v), y2: y(v) }))
    grid.append(svg('text', { x: PAD.left - 6, y: y(v) + 4, 'text-anchor': 'end' }, tick(v, hi - lo)))
  }
  grid.append(svg('text', { x: PAD.left, y: HEIGHT - 6, 'text-anchor': 'start' }, clockTime(t0 * 1000)))
  grid.append(svg('text', { x: WIDTH - PAD.right, y: HEIGHT - 6, 'text-anchor': 'end' }, clockTime(t1 * 1000)))
  root.append(grid)
  const line = points.map((p, i) => `${i === 0 ? 'M' : 'L'}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join('')
  const area = `${line}L${x(last.t).toFixed(1)},${y(lo).toFixed(1)}L${x(points[0].t).toFixed(1)},${y(lo).toFixed(1)}Z`
  root.append(svg('path', { class: 'area', d: area }))
  root.append(svg('path', { class: 'line', d: line }))
  root.append(svg('circle', { class: 'last', cx: x(last.t), cy: y(last.v), r: 3.5 }))
  figure.append(caption, root)
  return figure
}

/** An axis label with as many decimals as the range needs (a 4 °C range: 1 decimal). */
function tick (v, range) {
  const decimals = Math.min(4, Math.max(0, Math.ceil(-Math.log10(range)) + 1))
  return Math.abs(v) >= 1e6 ? v.toExponential(2) : v.toFixed(decimals)
}
