import type { AutomationResults } from '../results/types.js'
import { COLORS, axes, esc, legend, line, linearScale, px, svgDocument, text, type Box } from './svg.js'

/**
 * The automation experiment's charts: every trigger on the timeline, one panel per way, one row
 * per rule, marked by its fate (on time, late, missed) with the fault windows shaded; and the
 * share of triggers not acted on in time, per phase and way, with its count.
 */

export const WAY_COLORS: Record<string, string> = { device: COLORS.blue, central: COLORS.vermillion, hybrid: COLORS.green }
const FATE_COLORS = { 'on-time': COLORS.blue, late: COLORS.orange, missed: COLORS.vermillion } as const
const WINDOW_COLORS: Record<string, string> = { 'broker-stop': COLORS.vermillion, crash: COLORS.purple, partition: COLORS.orange }
const UNDO: Record<string, string> = { 'broker-stop': 'broker-start', crash: 'restart', partition: 'heal' }
const LABEL: Record<string, string> = { 'broker-stop': 'broker down', crash: 'crashed', partition: 'partitioned' }

const WIDTH = 960
const LEFT = 120
const RIGHT = 24

/** An SVG chart of triggers and their outcomes over time, per way. */
export function triggersChart (results: AutomationResults): string {
  const rules = [...new Set(results.ways.flatMap((w) => w.triggers.map((t) => t.rule)))].sort()
  const rowH = 22
  const panelH = Math.max(1, rules.length) * rowH + 16
  const gap = 44
  const top = 64
  const endS = results.plan.endS
  const x = linearScale([0, endS], [LEFT, WIDTH - RIGHT])
  const body: string[] = []
  body.push(text(LEFT, 22, 'Every trigger and its fate, per way (rules run on the devices, at the gateway, or both)', { 'font-weight': 'bold' }))
  body.push(...legend(LEFT, 44, [
    { label: 'acted on in time', color: FATE_COLORS['on-time'] },
    { label: 'late (after the command lifetime)', color: FATE_COLORS.late },
    { label: 'missed', color: FATE_COLORS.missed },
    { label: 'broker down', color: WINDOW_COLORS['broker-stop'] as string, fill: true },
    { label: 'crashed', color: WINDOW_COLORS.crash as string, fill: true },
    { label: 'partitioned', color: WINDOW_COLORS.partition as string, fill: true }
  ], WIDTH - LEFT - RIGHT))
  results.ways.forEach((way, i) => {
    const box: Box = { left: LEFT, top: top + 20 + i * (panelH + gap), width: WIDTH - LEFT - RIGHT, height: panelH }
    const y = linearScale([0, 1], [box.top + box.height, box.top])
    y.ticks = []
    body.push(text(LEFT, box.top - 6, `${way.way} (devices in ${way.mode} mode)`, { 'font-weight': 'bold', fill: WAY_COLORS[way.way] ?? COLORS.black }))
    way.faults.forEach((f, k) => {
      const undo = UNDO[f.kind]
      if (undo === undefined) return
      const end = way.faults.slice(k + 1).find((g) => g.kind === undo)?.atS ?? endS
      const x0 = x(Math.max(0, f.atS))
      const x1 = x(Math.min(endS, end))
      body.push(`<rect x="${px(x0)}" y="${px(box.top)}" width="${px(Math.max(0, x1 - x0))}" height="${px(box.height)}" fill="${WINDOW_COLORS[f.kind] ?? COLORS.grey}" fill-opacity="0.12"><title>${esc(LABEL[f.kind] ?? f.kind)}</title></rect>`)
    })
    body.push(...axes(box, x, y, { xTicks: i === results.ways.length - 1, ...(i === results.ways.length - 1 ? { x: 'seconds of the timeline' } : {}) }))
    rules.forEach((rule, r) => {
      const ry = box.top + 8 + r * rowH + rowH / 2
      body.push(text(LEFT - 8, ry + 4, rule, { 'text-anchor': 'end', fill: '#333333' }))
      for (const t of way.triggers.filter((tr) => tr.rule === rule && tr.atS >= 0 && tr.atS <= endS)) {
        const cx = x(t.atS)
        const tip = `<title>${esc(`${rule} at ${t.atS.toFixed(1)} s: ${t.outcome}${t.latencyMs === null ? '' : ` after ${t.latencyMs.toFixed(0)} ms`}${t.executions > 1 ? `, executed ${t.executions} times` : ''}`)}</title>`
        if (t.outcome === 'missed') {
          body.push(`<g stroke="${FATE_COLORS.missed}" stroke-width="2">${tip}${line(cx - 4, ry - 4, cx + 4, ry + 4, FATE_COLORS.missed)}${line(cx - 4, ry + 4, cx + 4, ry - 4, FATE_COLORS.missed)}</g>`)
        } else {
          const color = FATE_COLORS[t.outcome]
          body.push(`<circle cx="${px(cx)}" cy="${px(ry)}" r="4" fill="${color}"${t.executions > 1 ? ` stroke="${COLORS.black}" stroke-width="1.5"` : ''}>${tip}</circle>`)
        }
      }
    })
  })
  const height = top + 20 + results.ways.length * (panelH + gap) + 20
  body.push(text(LEFT, height - 8, 'A ringed dot: the trigger was followed by two or more executions.', { fill: '#333333' }))
  return svgDocument(WIDTH, height, 'Automation: every trigger and its fate', body)
}

/** An SVG chart of the share of triggers not acted on in time, per way and phase. */
export function notOnTimeChart (results: AutomationResults): string {
  const phases = results.plan.phases.map((p) => p.name)
  const ways = results.ways
  const box: Box = { left: 70, top: 70, width: WIDTH - 70 - RIGHT, height: 260 }
  const groupW = box.width / Math.max(1, phases.length)
  const barW = Math.min(36, (groupW - 16) / Math.max(1, ways.length))
  const x = linearScale([0, phases.length], [box.left, box.left + box.width])
  x.ticks = []
  const y = linearScale([0, 1], [box.top + box.height, box.top])
  y.label = (v) => `${Math.round(v * 100)} %`
  const body: string[] = [
    text(box.left, 22, 'Triggers not acted on in time (late or missed), per phase and way', { 'font-weight': 'bold' }),
    ...legend(box.left, 46, ways.map((w) => ({ label: w.way, color: WAY_COLORS[w.way] ?? COLORS.black, fill: true })), box.width),
    ...axes(box, x, y, { y: 'share of the phase\'s triggers' })
  ]
  phases.forEach((name, i) => {
    const gx = box.left + i * groupW
    body.push(text(gx + groupW / 2, box.top + box.height + 18, name, { 'text-anchor': 'middle', fill: '#333333' }))
    ways.forEach((w, k) => {
      const p = w.phases.find((q) => q.name === name)
      const bx = gx + (groupW - barW * ways.length) / 2 + k * barW
      if (p === undefined || p.notOnTimeShare === null) {
        body.push(text(bx + barW / 2, box.top + box.height - 4, '—', { 'text-anchor': 'middle', fill: COLORS.grey }))
        return
      }
      const top = y(p.notOnTimeShare)
      body.push(`<rect x="${px(bx + 1)}" y="${px(top)}" width="${px(barW - 2)}" height="${px(box.top + box.height - top)}" fill="${WAY_COLORS[w.way] ?? COLORS.black}" fill-opacity="0.8"><title>${esc(`${w.way}, ${name}: ${p.late + p.missed} of ${p.triggers}`)}</title></rect>`)
      body.push(text(bx + barW / 2, top - 4, `${p.late + p.missed}/${p.triggers}`, { 'text-anchor': 'middle', 'font-size': 10, fill: '#333333' }))
    })
  })
  return svgDocument(WIDTH, box.top + box.height + 40, 'Automation: triggers not acted on in time', body)
}
