import { describe, expect, it } from 'vitest'
import {
  deliveryChart, failoverLatencyChart, failoverResults, faultWindows, pathLatencyChart, trafficChart,
  type FailoverResults
} from '../../lab/index.js'
import { esc, logScale, niceTicks, text } from '../../lab/charts/svg.js'
import { failoverFixture, latencyFixture, MACHINE, quickTimeline, scaleFixture, simulateMode, SOFTWARE, T0 } from './fixtures.js'
import { findAll, parseXml, textOf, type XmlElement } from './xml.js'

const failover = failoverFixture().results
const charts = {
  delivery: deliveryChart(failover),
  failoverLatency: failoverLatencyChart(failover),
  traffic: trafficChart(scaleFixture()),
  pathLatency: pathLatencyChart(latencyFixture())
}

const byClass = (root: XmlElement, cls: string): XmlElement[] => findAll(root, (e) => (e.attrs.class ?? '').split(' ').includes(cls))

describe('SVG charts', () => {
  it.each(Object.entries(charts))('%s is well-formed SVG with a size, a title and text', (_name, svg) => {
    const root = parseXml(svg)
    expect(root.name).toBe('svg')
    expect(root.attrs.xmlns).toBe('http://www.w3.org/2000/svg')
    expect(Number(root.attrs.width)).toBeGreaterThan(0)
    expect(root.attrs.viewBox).toBe(`0 0 ${root.attrs.width} ${root.attrs.height}`)
    expect(findAll(root, (e) => e.name === 'title')).toHaveLength(1)
    expect(findAll(root, (e) => e.name === 'polyline').length).toBeGreaterThan(0)
    expect(svg).not.toMatch(/NaN|undefined|Infinity/)
  })

  it('the XML check itself refuses what is not well-formed', () => {
    for (const bad of ['<svg><g></svg>', '<svg a="1" a="2"/>', '<svg>a & b</svg>', '<svg x=1/>', '<svg/><svg/>', '<svg>', 'text<svg/>']) {
      expect(() => parseXml(bad), bad).toThrow(/XML/)
    }
    expect(parseXml('<svg a="&amp;&lt;"><g/>x &#38; y</svg>').children).toHaveLength(1)
  })

  it('is deterministic: same input, same bytes, also after a JSON round trip', () => {
    const again = failoverFixture().results
    expect(deliveryChart(again)).toBe(charts.delivery)
    expect(deliveryChart(JSON.parse(JSON.stringify(failover)) as FailoverResults)).toBe(charts.delivery)
    expect(failoverLatencyChart(again)).toBe(charts.failoverLatency)
    expect(trafficChart(scaleFixture())).toBe(charts.traffic)
    expect(pathLatencyChart(latencyFixture())).toBe(charts.pathLatency)
  })

  it('delivery: a panel per mode, each with the fault windows shaded and labelled where the faults took effect', () => {
    const root = parseXml(charts.delivery)
    const panels = byClass(root, 'panel')
    expect(panels.map((p) => p.attrs['data-mode'])).toEqual(['broker', 'mesh', 'hybrid'])
    const length = failover.modes[0]?.series.published.length as number
    const x = (s: number): number => 70 + (s / length) * (960 - 70 - 24)
    for (const [i, panel] of panels.entries()) {
      const windows = byClass(panel, 'fault-window')
      expect(windows.map((w) => w.attrs.class)).toEqual(['fault-window broker', 'fault-window crash', 'fault-window partition'])
      expect(byClass(panel, 'fault-window-label').map(textOf)).toEqual(['broker down', '2 crashed', 'partitioned 4/2'])
      const faults = failover.modes[i]?.faults ?? []
      for (const [w, [start, end]] of windows.map((w, k) => [w, [faults[2 * k]?.atS, faults[2 * k + 1]?.atS]] as const)) {
        const rect = w.children.find((c) => c.name === 'rect') as XmlElement
        expect(Number(rect.attrs.x)).toBeCloseTo(x(start as number), 0)
        expect(Number(rect.attrs.x) + Number(rect.attrs.width)).toBeCloseTo(x(end as number), 0)
        expect(Number(rect.attrs['fill-opacity'])).toBeGreaterThan(0)
      }
      expect(byClass(panel, 'published')).toHaveLength(1)
      expect(byClass(panel, 'delivered')).toHaveLength(1)
      expect(byClass(panel, 'drain-label').map(textOf)).toEqual(['drain'])
    }
    // The broker's catch-up burst is clipped and its peak written beside it.
    expect(byClass(panels[0] as XmlElement, 'clipped').map(textOf)).toEqual(['↑ 42/s'])
    expect(textOf(root)).toContain('seconds from the start of the timeline')
  })

  it('fault windows pair each fault with the event that undoes it', () => {
    const mode = failover.modes[0]
    expect(faultWindows(mode?.faults ?? [], 37)).toEqual([
      { kind: 'broker', startS: 5.02, endS: 11.021, label: 'broker down' },
      { kind: 'crash', startS: 16.022, endS: 21.023, label: '2 crashed' },
      { kind: 'partition', startS: 26.024, endS: 32.025, label: 'partitioned' }
    ])
    const open = faultWindows([{ kind: 'broker-stop', plannedS: 1, atS: 1, devices: [], gateway: { affected: 0, resumed: 0, maxMs: null, medianMs: null }, peer: null }], 9)
    expect(open).toEqual([{ kind: 'broker', startS: 1, endS: 9, label: 'broker down' }])
  })

  it('latency: one CDF per mode and receiver on a log axis with labelled decades', () => {
    const root = parseXml(charts.failoverLatency)
    expect(byClass(root, 'cdf')).toHaveLength(6)
    const labels = findAll(root, (e) => e.name === 'text').map(textOf)
    expect(labels).toEqual(expect.arrayContaining(['1', '10', '100', '1000', '10k', 'broker → gateway', 'mesh → peer', 'latency, ms (log scale)']))
    const paths = parseXml(charts.pathLatency)
    expect(byClass(paths, 'cdf')).toHaveLength(3)
  })

  it('traffic: a point per fleet and series on log-log axes ticked at the fleet sizes', () => {
    const root = parseXml(charts.traffic)
    expect(findAll(root, (e) => e.name === 'circle')).toHaveLength(6 * 3)
    const series = findAll(root, (e) => e.attrs.class === 'series').map((e) => e.attrs['data-label'])
    expect(series).toEqual(['mesh: per node', 'broker mode: per device', 'broker mode: the broker'])
    const labels = findAll(root, (e) => e.name === 'text').map(textOf)
    expect(labels).toEqual(expect.arrayContaining(['5', '10', '20', '50', '100', '200', '100k', 'devices in the fleet (log scale)']))
  })

  it('copes with thin data: one mode, no peer, nothing delivered', () => {
    const timeline = quickTimeline(3)
    const obs = simulateMode(timeline, 'mesh')
    const silent = { ...obs, peer: undefined, readings: obs.readings.map((r) => ({ ...r, receivedAt: {} })) }
    const results = failoverResults({ timeline, observations: [silent], startedAt: T0, finishedAt: T0 + 1, machine: MACHINE, software: SOFTWARE })
    for (const svg of [deliveryChart(results), failoverLatencyChart(results)]) {
      expect(() => parseXml(svg)).not.toThrow()
      expect(svg).not.toMatch(/NaN|undefined|Infinity/)
    }
  })

  it('escapes text, and its primitives behave', () => {
    expect(esc('a<b & "c">')).toBe('a&lt;b &amp; &quot;c&quot;&gt;')
    expect(() => parseXml(`<svg>${text(1, 2, '<&>"', { 'data-x': '"&' })}</svg>`)).not.toThrow()
    expect(niceTicks(0, 42, 5)).toEqual([0, 10, 20, 30, 40])
    expect(logScale([3, 700], [0, 100]).ticks).toEqual([1, 2, 5, 10, 20, 50, 100, 200, 500, 1000])
  })
})
