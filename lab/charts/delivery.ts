import type { FailoverResults, FaultOutcome, ModeSummary } from '../results/types.js'
import type { TimelineFaultKind } from '../plan/timeline.js'
import { COLORS, MODE_COLORS, axes, esc, fmt, legend, legendRows, line, linearScale, niceStep, polyline, px, svgDocument, text, type Box, type LegendItem } from './svg.js'

/**
 * Chart (a): delivery over time, one panel per mode sharing the time axis. Lines: readings
 * published per second (dashed grey) and readings first received by the gateway per second (the
 * mode's colour). Fault windows (broker down, devices crashed, fleet partitioned) are shaded and
 * labelled in each panel from the times the faults took effect in that mode's run; the drain
 * after the last phase is shaded grey. The y axis is shared; when a catch-up burst would flatten
 * everything else it is clipped at twice the publishing rate and the peak is written beside it.
 */

export interface FaultWindow { kind: 'broker' | 'crash' | 'partition', startS: number, endS: number, label: string }

const WINDOW_COLORS: Record<FaultWindow['kind'], string> = { broker: COLORS.vermillion, crash: COLORS.purple, partition: COLORS.orange }
const UNDO: Partial<Record<TimelineFaultKind, TimelineFaultKind>> = { 'broker-stop': 'broker-start', crash: 'restart', partition: 'heal' }

/** Pairs each fault with the event that undoes it (a fault left standing lasts until `endS`). */
export function faultWindows (faults: readonly FaultOutcome[], endS: number, groups?: number[][]): FaultWindow[] {
  const out: FaultWindow[] = []
  faults.forEach((fault, i) => {
    const undo = UNDO[fault.kind]
    if (undo === undefined) return
    const end = faults.slice(i + 1).find((f) => f.kind === undo)?.atS ?? endS
    if (fault.kind === 'broker-stop') out.push({ kind: 'broker', startS: fault.atS, endS: end, label: 'broker down' })
    if (fault.kind === 'crash') out.push({ kind: 'crash', startS: fault.atS, endS: end, label: `${fault.devices.length} crashed` })
    if (fault.kind === 'partition') {
      const sizes = groups?.map((g) => g.length).join('/')
      out.push({ kind: 'partition', startS: fault.atS, endS: end, label: sizes === undefined ? 'partitioned' : `partitioned ${sizes}` })
    }
  })
  return out
}

const WIDTH = 960
const PANEL = 150
const PANEL_GAP = 46
const LEFT = 70
const RIGHT = 24

/** An SVG chart of deliveries to the gateway per second, per mode, with the fault windows shaded. */
export function deliveryChart (results: FailoverResults): string {
  const modes = results.modes
  const length = Math.max(1, ...modes.map((m) => m.series.published.length))
  const publishedPeak = Math.max(1, ...modes.flatMap((m) => m.series.published))
  const peak = Math.max(publishedPeak, ...modes.flatMap((m) => m.series.gateway))
  const top = peak <= publishedPeak * 2.5 ? peak : publishedPeak * 2
  const step = niceStep(top / 4)
  const cap = Math.ceil(top / step - 1e-9) * step
  const width = WIDTH - LEFT - RIGHT
  const lines: LegendItem[] = [
    { label: 'published / s', color: COLORS.grey, dash: '6 4' },
    ...modes.map((m) => ({ label: `delivered to the gateway / s (${m.mode})`, color: MODE_COLORS[m.mode] ?? COLORS.black }))
  ]
  const windows: LegendItem[] = [
    { label: 'broker down', color: WINDOW_COLORS.broker, fill: true },
    { label: 'devices crashed', color: WINDOW_COLORS.crash, fill: true },
    { label: 'fleet partitioned', color: WINDOW_COLORS.partition, fill: true },
    { label: 'drain (no new readings)', color: COLORS.grey, fill: true }
  ]
  const lineRows = legendRows(lines, width).length
  const windowRows = legendRows(windows, width).length
  const plotTop = 52 + (lineRows + windowRows) * 20 + 14
  const height = plotTop + modes.length * (PANEL + PANEL_GAP) + 20
  const partition = results.timeline.phases.flatMap((p) => p.faults).find((f) => f.kind === 'partition')
  const title = `Delivery over time: ${results.parameters.devices} devices, one reading every ${fmt(results.parameters.intervalS)} s (seed ${results.seed})`
  const body: string[] = [
    text(LEFT, 26, title, { 'font-size': 16, 'font-weight': 'bold' }),
    ...legend(LEFT, 52, lines, width),
    ...legend(LEFT, 52 + lineRows * 20, windows, width)
  ]
  modes.forEach((mode, i) => {
    const box: Box = { left: LEFT, top: plotTop + i * (PANEL + PANEL_GAP), width, height: PANEL }
    body.push(...panel(box, mode, results, { length, cap, step, last: i === modes.length - 1, groups: partition?.groups }))
  })
  return svgDocument(WIDTH, height, title, body)
}

function panel (box: Box, mode: ModeSummary, results: FailoverResults, o: { length: number, cap: number, step: number, last: boolean, groups: number[][] | undefined }): string[] {
  const x = linearScale([0, o.length], [box.left, box.left + box.width], 12)
  const y = linearScale([0, o.cap], [box.top + box.height, box.top], 4)
  y.ticks = Array.from({ length: Math.round(o.cap / o.step) + 1 }, (_, i) => Number((i * o.step).toPrecision(12)))
  const out: string[] = [`<g class="panel" data-mode="${esc(mode.mode)}">`]
  out.push(text(box.left, box.top - 8, `${mode.mode}`, { 'font-weight': 'bold', 'font-size': 13 }))
  out.push(`<clipPath id="plot-${esc(mode.mode)}"><rect x="${px(box.left)}" y="${px(box.top)}" width="${px(box.width)}" height="${px(box.height)}"/></clipPath>`)
  const endS = results.timeline.endS
  const shaded: Array<{ from: number, to: number, color: string, label: string, cls: string, opacity: number }> = []
  if (endS < o.length) shaded.push({ from: x(endS), to: x(o.length), color: COLORS.grey, label: 'drain', cls: 'drain', opacity: 0.12 })
  for (const w of faultWindows(mode.faults, endS, o.groups)) {
    shaded.push({ from: x(w.startS), to: x(Math.min(w.endS, o.length)), color: WINDOW_COLORS[w.kind], label: w.label, cls: `fault-window ${w.kind}`, opacity: 0.16 })
  }
  out.push(...shaded.map((s) => shade(s.from, s.to, box, s.color, s.cls, s.opacity)))
  out.push(...axes(box, x, y, { y: 'readings / s', x: o.last ? 'seconds from the start of the timeline' : undefined }))
  // Labels after the grid, so no grid line runs through them.
  out.push(...shaded.map((s) => text(s.from + 4, box.top + 14, s.label, { fill: '#222222', 'font-size': 11, class: `${s.cls.split(' ')[0] as string}-label` })))
  // Counts per second as steps: bucket k is flat over [k, k + 1).
  const steps = (series: readonly number[]): Array<[number, number]> =>
    series.flatMap((v, k) => [[x(k), y(Math.min(v, o.cap))], [x(k + 1), y(Math.min(v, o.cap))]] as Array<[number, number]>)
  out.push(`<g clip-path="url(#plot-${esc(mode.mode)})">`)
  out.push(polyline(steps(mode.series.gateway), MODE_COLORS[mode.mode] ?? COLORS.black, { class: 'delivered' }))
  out.push(polyline(steps(mode.series.published), COLORS.grey, { 'stroke-dasharray': '6 4', 'stroke-width': 1.4, class: 'published' }))
  out.push('</g>')
  out.push(...clippedPeaks(mode.series.gateway, o.cap, x, box))
  out.push('</g>')
  return out
}

function shade (x0: number, x1: number, box: Box, color: string, cls: string, opacity: number): string {
  return [
    `<g class="${cls}">`,
    `<rect x="${px(x0)}" y="${px(box.top)}" width="${px(Math.max(0, x1 - x0))}" height="${px(box.height)}" fill="${color}" fill-opacity="${opacity}"/>`,
    line(x0, box.top, x0, box.top + box.height, color, { 'stroke-dasharray': '3 3' }),
    '</g>'
  ].join('')
}

/** A label at the top of each run of buckets above the cap, giving its highest value. */
function clippedPeaks (series: readonly number[], cap: number, x: (v: number) => number, box: Box): string[] {
  const out: string[] = []
  let k = 0
  while (k < series.length) {
    if ((series[k] as number) <= cap) { k++; continue }
    let top = k
    let end = k
    while (end < series.length && (series[end] as number) > cap) { if ((series[end] as number) > (series[top] as number)) top = end; end++ }
    out.push(text(x(top + 0.5) + 4, box.top + 26, `↑ ${fmt(series[top] as number)}/s`, { fill: '#222222', 'font-size': 11, stroke: '#ffffff', 'stroke-width': 3, 'paint-order': 'stroke', class: 'clipped' }))
    k = end
  }
  return out
}
