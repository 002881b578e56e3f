/* iotmesh dashboard: line charts of recent readings, hand-drawn SVG (no chart library). */
import { deviceLabel, el, number, displayed, sensorName, svg, unit } from './format.js'
import { inWindow, niceTicks, timeLabel, timeTicks, timeWindow, valueAxisWidth } from './chart-scale.js'

/** Points kept per device and sensor: an hour at one reading each 5 s. */
export const MAX_POINTS = 720

/** Devices drawn at most in the comparison chart (more lines would be unreadable). */
export const COMPARE_MAX = 8

/** Line colours of the comparison chart, told apart also by people with red-green colour blindness (Okabe–Ito). */
const COLORS = ['#0072b2', '#e69f00', '#009e73', '#cc79a7', '#56b4e9', '#d55e00', '#000000', '#f0e442']

/** Drawn at the size it is shown (one SVG unit a CSS pixel), so tick labels keep their size on a phone and a desktop. */
const HEIGHT = 160
const MIN_WIDTH = 260
const PAD = { left: 54, right: 14, top: 18, bottom: 24 }

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
      const name = sensorName(value.n, id)
      let points = sensors.get(name)
      if (points === undefined) sensors.set(name, points = [])
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

  /** Sensor name → the devices with points of it. */
  catalog (into = new Map()) {
    for (const [id, sensors] of this.byDevice) {
      for (const [name, points] of sensors) {
        if (points.length === 0) continue
        if (!into.has(name)) into.set(name, new Set())
        into.get(name).add(id)
      }
    }
    return into
  }
}

/** Sensor name → the devices whose latest reading (device id → resolved values) has a number for it. */
export function latestCatalog (latest, into = new Map()) {
  for (const [id, values] of latest) {
    for (const value of values ?? []) {
      if (typeof value.v !== 'number') continue
      const name = sensorName(value.n, id)
      if (!into.has(name)) into.set(name, new Set())
      into.get(name).add(id)
    }
  }
  return into
}

/** Draws one chart per sensor of the selected device into `root`, over the last `range` seconds. */
export function renderCharts (root, store, id, { now = Date.now(), range = Infinity } = {}) {
  if (id === undefined) {
    root.replaceChildren(el('p', 'empty', 'Select a device to see its recent readings.'))
    return
  }
  const all = [...store.sensors(id)].filter(([, points]) => points.length > 0).sort(([a], [b]) => a.localeCompare(b))
  if (all.length === 0) {
    root.replaceChildren(el('p', 'empty', 'No numeric readings from this device yet.'))
    return
  }
  const first = Math.min(...all.map(([, points]) => points[0].t))
  const [t0, t1] = timeWindow(range, now, first)
  const width = widthOf(root, 22)
  const shown = all.map(([name, points]) => [name, inWindow(points, t0, t1)]).filter(([, points]) => points.length > 0)
  if (shown.length === 0) {
    root.replaceChildren(el('p', 'empty', 'No readings from this device in this time range.'))
    return
  }
  root.replaceChildren(...shown.map(([name, points]) => {
    const figure = el('figure', 'chart-card')
    const last = points[points.length - 1]
    const caption = el('figcaption')
    caption.append(el('span', 'sensor', name), el('span', 'last-value', `${number(last.v)} ${unit(last.u)}`.trim()))
    const chart = plot([{ points }], { width, t0, t1, u: last.u, label: `${name}, last ${number(last.v)} ${unit(last.u)}`.trim() })
    chart.setAttribute('data-sensor', name)
    chart.setAttribute('data-last', String(last.v))
    chart.setAttribute('data-points', String(points.length))
    figure.append(caption, chart)
    return figure
  }))
}

/**
 * One sensor across devices: a line per device (at most COMPARE_MAX, the selected one first, then by
 * label), a legend with each device's latest value.
 */
export function renderCompare (root, store, { sensor, ids, devices, now = Date.now(), range = Infinity }) {
  if (sensor === undefined) {
    root.replaceChildren(el('p', 'empty', 'No numeric readings yet.'))
    return
  }
  const labelOf = (id) => deviceLabel(devices.get(id), id)
  const first = Math.min(...ids.map((id) => store.sensors(id).get(sensor)?.[0]?.t ?? Infinity))
  const [t0, t1] = timeWindow(range, now, first)
  const series = ids.map((id) => ({ id, points: inWindow(store.sensors(id).get(sensor) ?? [], t0, t1) })).filter((s) => s.points.length > 0)
  if (series.length === 0) {
    root.replaceChildren(el('p', 'empty', `No ${sensor} readings in this time range.`))
    return
  }
  const drawn = series.slice(0, COMPARE_MAX).map((s, i) => ({ ...s, color: COLORS[i % COLORS.length] }))
  const u = drawn[0].points[drawn[0].points.length - 1].u
  const chart = plot(drawn, { width: widthOf(root, 0), t0, t1, u, label: `${sensor} on ${drawn.length} devices` })
  chart.classList.add('compare')
  chart.setAttribute('data-sensor', sensor)
  chart.setAttribute('data-series', String(drawn.length))
  const legend = el('ul', 'compare-legend')
  for (const s of drawn) {
    const last = s.points[s.points.length - 1]
    const li = el('li')
    li.dataset.id = s.id
    const swatch = svg('svg', { class: 'swatch', viewBox: '0 0 12 12', width: 12, height: 12, 'aria-hidden': 'true' })
    swatch.append(svg('rect', { x: 0, y: 4, width: 12, height: 4, rx: 1, fill: s.color }))
    li.append(swatch, el('span', 'who', labelOf(s.id)), el('span', 'val', `${number(last.v)} ${unit(last.u)}`.trim()))
    legend.append(li)
  }
  const parts = [chart, legend]
  if (ids.length > drawn.length) parts.push(el('p', 'note muted', `${drawn.length} of ${ids.length} devices shown (the selected one first, then by name).`))
  root.replaceChildren(...parts)
}

/** The width a chart in `root` is shown at: the root's, less the card's padding and border. */
function widthOf (root, inset) {
  return Math.max(MIN_WIDTH, Math.floor((root.clientWidth || 560) - inset))
}

/** Device ids in the comparison's order: the selected one first, then by label. */
export function compareOrder (ids, devices, selected) {
  const labelOf = (id) => deviceLabel(devices.get(id), id)
  return [...ids].sort((a, b) => Number(b === selected) - Number(a === selected) || labelOf(a).localeCompare(labelOf(b)))
}

/** An SVG chart of one or more series over [t0, t1]: y ticks at round values with the unit, clock-time x ticks. */
function plot (series, { width: WIDTH, t0, t1, u, label }) {
  const values = series.flatMap((s) => s.points.map((p) => p.v))
  const ticks = niceTicks(Math.min(...values), Math.max(...values), 4)
  const [lo, hi] = [ticks.lo, ticks.hi]
  const labels = ticks.values.map((v) => Math.abs(v) >= 1e6 ? v.toExponential(1) : v.toFixed(ticks.decimals))
  const left = valueAxisWidth(labels, PAD.left)
  const x = (t) => left + ((t - t0) / Math.max(1e-9, t1 - t0)) * (WIDTH - left - PAD.right)
  const y = (v) => PAD.top + (1 - (v - lo) / Math.max(1e-12, hi - lo)) * (HEIGHT - PAD.top - PAD.bottom)
  const root = svg('svg', { class: 'chart', viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img', 'aria-label': label })
  const grid = svg('g', { class: 'grid' })
  ticks.values.forEach((v, i) => {
    grid.append(svg('line', { x1: left, x2: WIDTH - PAD.right, y1: y(v), y2: y(v) }))
    grid.append(svg('text', { class: 'y-tick', x: left - 6, y: y(v) + 3.5, 'text-anchor': 'end' }, labels[i]))
  })
  grid.append(svg('text', { class: 'unit', x: left - 6, y: 10, 'text-anchor': 'end' }, unit(u) || '—'))
  const time = timeTicks(t0, t1, 5)
  const offset = new Date().getTimezoneOffset()
  for (const t of time.values) {
    grid.append(svg('line', { class: 'x-grid', x1: x(t), x2: x(t), y1: PAD.top, y2: HEIGHT - PAD.bottom }))
    grid.append(svg('text', { class: 'x-tick', x: x(t), y: HEIGHT - 7, 'text-anchor': 'middle' }, timeLabel(t, time.step, offset)))
  }
  root.append(grid)
  for (const s of series) {
    const line = s.points.map((p, i) => `${i === 0 ? 'M' : 'L'}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join('')
    const last = s.points[s.points.length - 1]
    if (series.length === 1) {
      const area = `${line}L${x(last.t).toFixed(1)},${y(lo).toFixed(1)}L${x(s.points[0].t).toFixed(1)},${y(lo).toFixed(1)}Z`
      root.append(svg('path', { class: 'area', d: area }))
      root.append(svg('path', { class: 'line', d: line }))
      root.append(svg('circle', { class: 'last', cx: x(last.t), cy: y(last.v), r: 3.5 }))
    } else {
      // Presentation attributes, not style: the page's CSP allows no inline styles.
      root.append(svg('path', { class: 'series', d: line, stroke: s.color, 'data-id': s.id }))
      root.append(svg('circle', { class: 'series-last', cx: x(last.t), cy: y(last.v), r: 3, fill: s.color }))
    }
  }
  return root
}
