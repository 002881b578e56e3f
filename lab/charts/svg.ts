/**
 * SVG primitives for the experiment's charts: hand-written markup, no chart library, no browser.
 * Output is deterministic: coordinates are rounded to 0.1 px and numbers are printed by `fmt`,
 * so the same input gives the same bytes on any machine.
 */

export const FONT = 'DejaVu Sans, Helvetica, Arial, sans-serif'

/** Okabe–Ito colours: told apart with the common colour-vision deficiencies. */
export const COLORS = {
  black: '#000000',
  orange: '#E69F00',
  sky: '#56B4E9',
  green: '#009E73',
  yellow: '#F0E442',
  blue: '#0072B2',
  vermillion: '#D55E00',
  purple: '#CC79A7',
  grey: '#7f7f7f'
} as const

export const MODE_COLORS: Record<string, string> = { broker: COLORS.vermillion, mesh: COLORS.blue, hybrid: COLORS.green }

export function esc (text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

/** A coordinate, to 0.1 px. */
export function px (n: number): string {
  const r = Math.round(n * 10) / 10
  return (r === 0 ? 0 : r).toString()
}

/** A number for a label: up to `digits` decimals, no trailing zeros, thousands as k, millions as M. */
export function fmt (n: number, digits = 2): string {
  const abs = Math.abs(n)
  if (abs >= 1e6) return `${trim((n / 1e6).toFixed(digits))}M`
  if (abs >= 1e4) return `${trim((n / 1e3).toFixed(digits))}k`
  return trim(n.toFixed(digits))
}

function trim (text: string): string {
  return text.includes('.') ? text.replace(/0+$/, '').replace(/\.$/, '') : text
}

export interface Scale {
  (value: number): number
  ticks: number[]
  label: (value: number) => string
}

/** The smallest step of 1, 2 or 5 × 10^k at or above `raw`. */
export function niceStep (raw: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(raw))
  return ([1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw * (1 - 1e-12))) as number
}

/** Linear ticks at 1, 2 or 5 × 10^k, about `count` of them, covering [min, max]. */
export function niceTicks (min: number, max: number, count = 5): number[] {
  if (!(max > min)) max = min + 1
  const step = niceStep((max - min) / count)
  const ticks: number[] = []
  for (let t = Math.floor(min / step) * step; t <= max + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)))
  return ticks
}

export function linearScale (domain: [number, number], range: [number, number], count = 5): Scale {
  const ticks = niceTicks(domain[0], domain[1], count).filter((t) => t >= domain[0] - 1e-9 && t <= domain[1] + 1e-9)
  const [d0, d1] = domain
  const [r0, r1] = range
  const scale = ((v: number) => r0 + ((v - d0) / (d1 - d0 || 1)) * (r1 - r0)) as Scale
  scale.ticks = ticks
  scale.label = (v) => fmt(v)
  return scale
}

/**
 * A log10 scale over [min, max] (both > 0). By default the domain widens to whole decades, ticked
 * at 1, 2, 5 × 10^k (`minors`); `exact` keeps the domain as given, ticked where ticks fall inside.
 */
export function logScale (domain: [number, number], range: [number, number], minors = [1, 2, 5], exact = false): Scale & { domain: [number, number] } {
  const lo = exact ? domain[0] : 10 ** Math.floor(Math.log10(domain[0]))
  const hi = exact ? Math.max(domain[1], lo * 1.01) : 10 ** Math.ceil(Math.log10(Math.max(domain[1], lo * 10)))
  const [r0, r1] = range
  const scale = ((v: number) => r0 + ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (r1 - r0)) as Scale & { domain: [number, number] }
  const ticks: number[] = []
  for (let decade = 10 ** Math.floor(Math.log10(lo)); decade <= hi * (1 + 1e-9); decade *= 10) {
    for (const m of minors) {
      const t = Number((decade * m).toPrecision(6))
      if (t >= lo * (1 - 1e-9) && t <= hi * (1 + 1e-9)) ticks.push(t)
    }
  }
  scale.ticks = ticks
  scale.label = (v) => fmt(v, 3)
  scale.domain = [lo, hi]
  return scale
}

export interface Box { left: number, top: number, width: number, height: number }

export function svgDocument (width: number, height: number, title: string, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(title)}" font-family="${FONT}" font-size="12">`,
    `<title>${esc(title)}</title>`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    ...body,
    '</svg>',
    ''
  ].join('\n')
}

export function text (x: number, y: number, content: string, attrs: Record<string, string | number> = {}): string {
  const extra = Object.entries(attrs).map(([k, v]) => ` ${k}="${esc(String(v))}"`).join('')
  return `<text x="${px(x)}" y="${px(y)}"${extra}>${esc(content)}</text>`
}

export function line (x1: number, y1: number, x2: number, y2: number, stroke: string, attrs: Record<string, string | number> = {}): string {
  const extra = Object.entries(attrs).map(([k, v]) => ` ${k}="${esc(String(v))}"`).join('')
  return `<line x1="${px(x1)}" y1="${px(y1)}" x2="${px(x2)}" y2="${px(y2)}" stroke="${stroke}"${extra}/>`
}

export function polyline (points: ReadonlyArray<readonly [number, number]>, stroke: string, attrs: Record<string, string | number> = {}): string {
  const all = { fill: 'none', stroke, 'stroke-width': 1.8, 'stroke-linejoin': 'round', ...attrs }
  const list = Object.entries(all).map(([k, v]) => ` ${k}="${esc(String(v))}"`).join('')
  return `<polyline${list} points="${points.map(([x, y]) => `${px(x)},${px(y)}`).join(' ')}"/>`
}

/** Axes, ticks, grid and labels for a plot area. */
export function axes (box: Box, x: Scale, y: Scale, labels: { x?: string, y?: string, xTicks?: boolean }): string[] {
  const out: string[] = [`<g class="axes" stroke-width="1">`]
  const bottom = box.top + box.height
  for (const t of y.ticks) {
    const ty = y(t)
    out.push(line(box.left, ty, box.left + box.width, ty, '#e4e4e4'))
    out.push(text(box.left - 6, ty + 4, y.label(t), { 'text-anchor': 'end', fill: '#333333' }))
  }
  for (const t of x.ticks) {
    const tx = x(t)
    out.push(line(tx, box.top, tx, bottom, '#f0f0f0'))
    out.push(line(tx, bottom, tx, bottom + 4, '#333333'))
    if (labels.xTicks !== false) out.push(text(tx, bottom + 17, x.label(t), { 'text-anchor': 'middle', fill: '#333333' }))
  }
  out.push(`<rect x="${px(box.left)}" y="${px(box.top)}" width="${px(box.width)}" height="${px(box.height)}" fill="none" stroke="#333333"/>`)
  if (labels.x !== undefined) out.push(text(box.left + box.width / 2, bottom + 36, labels.x, { 'text-anchor': 'middle' }))
  if (labels.y !== undefined) {
    const cx = box.left - 48
    const cy = box.top + box.height / 2
    out.push(text(cx, cy, labels.y, { 'text-anchor': 'middle', transform: `rotate(-90 ${px(cx)} ${px(cy)})` }))
  }
  out.push('</g>')
  return out
}

export interface LegendItem { label: string, color: string, dash?: string, fill?: boolean }

/** Legend items laid out in rows no wider than `maxWidth`. */
export function legendRows (items: readonly LegendItem[], maxWidth: number): LegendItem[][] {
  const rows: LegendItem[][] = [[]]
  let used = 0
  for (const item of items) {
    const width = legendItemWidth(item)
    const row = rows[rows.length - 1] as LegendItem[]
    if (row.length > 0 && used + width > maxWidth) { rows.push([item]); used = width } else { row.push(item); used += width }
  }
  return rows
}

function legendItemWidth (item: LegendItem): number {
  return 28 + textWidth(item.label) + 18
}

/** A legend from (x, y), wrapped at `maxWidth` into rows 20 px apart; returns the markup. */
export function legend (x: number, y: number, items: readonly LegendItem[], maxWidth = Infinity): string[] {
  const out: string[] = ['<g class="legend">']
  legendRows(items, maxWidth).forEach((row, r) => {
    let at = x
    const rowY = y + r * 20
    for (const item of row) {
      if (item.fill === true) out.push(`<rect x="${px(at)}" y="${px(rowY - 9)}" width="22" height="12" fill="${item.color}" fill-opacity="0.25" stroke="${item.color}"/>`)
      else out.push(line(at, rowY - 3, at + 22, rowY - 3, item.color, { 'stroke-width': 2.5, ...(item.dash === undefined ? {} : { 'stroke-dasharray': item.dash }) }))
      out.push(text(at + 28, rowY + 1, item.label))
      at += legendItemWidth(item)
    }
  })
  out.push('</g>')
  return out
}

/** Width of a label at 12 px, estimated (no font metrics without a browser): 0.6 em per character. */
export function textWidth (label: string): number {
  return Math.ceil(label.length * 7.2)
}
