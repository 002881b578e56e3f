import { describe, expect, it } from 'vitest'

/** The dashboard charts' scales (gateway/dashboard/chart-scale.js: plain browser JS without DOM, imported here as is). */

interface Scale {
  RANGES: Array<[string, number]>
  timeWindow: (range: number, now: number, first?: number) => [number, number]
  inWindow: (points: Array<{ t: number }>, t0: number, t1: number) => Array<{ t: number }>
  niceTicks: (lo: number, hi: number, count?: number) => { values: number[], decimals: number, lo: number, hi: number }
  timeTicks: (t0: number, t1: number, count?: number) => { values: number[], step: number }
  timeLabel: (t: number, step: number, offsetMin?: number) => string
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
