import { describe, expect, it } from 'vitest'

/** The dashboard charts' scales (gateway/dashboard/chart-scale.js: plain browser JS without DOM, imported here as is). */

interface Scale {
  RANGES: Array<[string, number]>
  timeWindow: (range: number, now: number, first?: number) => [number, number]
  inWindow: (points: Array<{ t: number }>, t0: number, t1: number) => Array<{ t: number }>
  niceTicks: (lo: number, hi: number, count?: number) => { values: number[], decimals: number, lo: number, hi: number }
  timeTicks: (t0: number, t1: number, count?: number) => { values: number[], step: number }
  timeLabel: (t: number, step: number, offsetMin?: number) => string
  valueAxisWidth: (labels: string[], min?: number) => number
}
const scale = await import(new URL('../../gateway/dashboard/chart-scale.js', import.meta.url).href) as Scale

describe('dashboard chart scales', () => {
  it('ranges: 5 min, 1 h, all; a window is the last `range` seconds, "all" starts at the first point', () => {
    expect(scale.RANGES.map(([label]) => label)).toEqual(['5 min', '1 h', 'all'])
    expect(scale.timeWindow(300, 1_000_000_000)).toEqual([999_700, 1_000_000])
    expect(scale.timeWindow(Infinity, 1_000_000_000, 990_000)).toEqual([990_000, 1_000_000])
    expect(scale.timeWindow(Infinity, 1_000_000_000, 999_990)).toEqual([999_940, 1_000_000]) // at least a minute
    expect(scale.inWindow([{ t: 1 }, { t: 5 }, { t: 9 }], 2, 9).map((p) => p.t)).toEqual([5, 9])
  })

  it('value ticks at round numbers with the decimals their step needs (hPa, °C, a flat line)', () => {
    expect(scale.niceTicks(1012.3, 1015.8)).toEqual({ values: [1012, 1013, 1014, 1015, 1016], decimals: 0, lo: 1012, hi: 1016 })
    expect(scale.niceTicks(20.13, 21.02)).toMatchObject({ values: [20, 20.5, 21, 21.5], decimals: 1 })
    expect(scale.niceTicks(5, 5)).toMatchObject({ values: [4, 4.5, 5, 5.5, 6], lo: 4, hi: 6 })
    expect(scale.niceTicks(0, 0.003)).toMatchObject({ values: [0, 0.001, 0.002, 0.003], decimals: 3 })
    expect(scale.niceTicks(Number.NaN, 1).values).toEqual([])
  })

  it('the value axis makes room for long tick labels (1014.800 was cut to ".014.800" at the left edge); short ones keep 54 px', () => {
    const long = scale.valueAxisWidth(scale.niceTicks(1014.79, 1014.8).values.map((v) => v.toFixed(3)))
    expect(long).toBeGreaterThanOrEqual(6 + 7 * 7 + 3.5) // the gap to the plot, seven digits and a point
    expect(scale.valueAxisWidth(['20', '20.5', '21'])).toBe(54)
    expect(scale.valueAxisWidth([])).toBe(54)
  })

  it('time ticks at round clock times: every minute over 5 min, every 15 min over an hour; seconds only when the step needs them', () => {
    const t1 = 1_800_000_000 // a multiple of 3,600
    expect(scale.timeTicks(t1 - 300, t1)).toEqual({ values: [t1 - 300, t1 - 240, t1 - 180, t1 - 120, t1 - 60, t1], step: 60 })
    expect(scale.timeTicks(t1 - 3600 + 7, t1 + 7).step).toBe(900)
    expect(scale.timeTicks(t1 - 3600 + 7, t1 + 7).values).toEqual([t1 - 2700, t1 - 1800, t1 - 900, t1])
    expect(scale.timeLabel(t1 + 90, 60)).toBe('08:01')
    expect(scale.timeLabel(t1 + 95, 15)).toBe('08:01:35')
    expect(scale.timeLabel(t1, 60, -60)).toBe('09:00') // UTC+1
  })
})

interface Layout {
  ringLayout: (nodes: Array<{ id: string }>, edges: Array<{ source: string, target: string, kind: string }>, gateway: string, size: { width: number, height: number }) =>
  { positions: Map<string, { x: number, y: number }>, rings: Array<{ depth: number, rx: number, ry: number, count: number, unlinked: boolean }> }
  placeLabels: (labels: Array<{ id: string, x: number, y: number, r: number, text: string }>, nodes: Array<{ x: number, y: number, r: number }>, size: { width: number, height: number }) =>
  Map<string, { x: number, y: number, anchor: string } | undefined>
}
const layout = await import(new URL('../../gateway/dashboard/graph-layout.js', import.meta.url).href) as Layout

describe('dashboard topology layout (gateway/dashboard/graph-layout.js)', () => {
  const size = { width: 540, height: 400 }
  const distance = (p: { x: number, y: number }, q: { x: number, y: number }): number => Math.hypot(p.x - q.x, p.y - q.y)

  it('rings by hops from the gateway over mesh links; broker-only devices on the first ring; unlinked ones outside', () => {
    const nodes = ['gw', 'a', 'b', 'c', 'd', 'mqtt', 'lost'].map((id) => ({ id }))
    const edges = [
      { source: 'gw', target: 'a', kind: 'mesh' }, { source: 'gw', target: 'b', kind: 'mesh' }, { source: 'a', target: 'c', kind: 'mesh' },
      { source: 'c', target: 'd', kind: 'mesh' }, { source: 'gw', target: 'mqtt', kind: 'mqtt' }, { source: 'gw', target: 'c', kind: 'mqtt' }
    ]
    const { positions, rings } = layout.ringLayout(nodes, edges, 'gw', size)
    expect(positions.get('gw')).toEqual({ x: 270, y: 200 })
    expect(rings.map((r) => [r.depth, r.count, r.unlinked])).toEqual([[1, 3, false], [2, 1, false], [3, 1, false], [4, 1, true]])
    const centre = { x: 270, y: 200 }
    // On a ring's ellipse: (dx/rx)² + (dy/ry)² = 1.
    const ringOf = (id: string): number => rings.findIndex((r) => {
      const p = positions.get(id) as { x: number, y: number }
      return Math.abs(((p.x - centre.x) / r.rx) ** 2 + ((p.y - centre.y) / r.ry) ** 2 - 1) < 1e-9
    }) + 1
    expect(['a', 'b', 'mqtt', 'c', 'd', 'lost'].map(ringOf)).toEqual([1, 1, 1, 2, 3, 4])
    // The same topology, the same picture.
    expect(layout.ringLayout(nodes, edges, 'gw', size).positions).toEqual(positions)
  })

  it('100 nodes: no two closer than 10 units, whatever the links', () => {
    const nodes = [{ id: 'gw' }, ...Array.from({ length: 100 }, (_, i) => ({ id: `n${i}` }))]
    const edges = nodes.slice(1).map((n, i) => ({ source: i < 5 ? 'gw' : `n${(i * 7) % i}`, target: n.id, kind: 'mesh' }))
    const { positions } = layout.ringLayout(nodes, edges, 'gw', { width: 760, height: 608 })
    const points = [...positions.values()]
    let closest = Infinity
    for (let i = 0; i < points.length; i++) for (let j = i + 1; j < points.length; j++) closest = Math.min(closest, distance(points[i] as { x: number, y: number }, points[j] as { x: number, y: number }))
    expect(positions.size).toBe(101)
    expect(closest).toBeGreaterThan(10)
  })

  it('labels go below, above, right or left of their node, where they cover no node and no label; otherwise nowhere', () => {
    const nodes = [{ id: 'a', x: 100, y: 100, r: 8 }, { id: 'b', x: 100, y: 130, r: 8 }, { id: 'c', x: 10, y: 100, r: 8 }]
    const placed = layout.placeLabels(nodes.map((n) => ({ ...n, text: 'kitchen' })), nodes, size)
    expect(placed.get('a')).toEqual({ x: 100, y: 88, anchor: 'middle' }) // below is b: above
    expect(placed.get('b')).toEqual({ x: 100, y: 150, anchor: 'middle' })
    expect(placed.get('c')).toEqual({ x: 22, y: 104, anchor: 'start' }) // centred it would leave the drawing: on the right
    const crowded = [{ id: 'x', x: 5, y: 5, r: 8 }]
    expect(layout.placeLabels([{ ...crowded[0] as { id: string, x: number, y: number, r: number }, text: 'a very long name that fits nowhere here' }], crowded, { width: 60, height: 40 }).get('x')).toBeUndefined()
  })
})
