import { describe, expect, it } from 'vitest'
import { combineRepeatedRuns, refreshRepetitions, renderReport, repeatedFailoverChecks, repeatedFigures, tInterval, tQuantile975, validateResults } from '../../lab/index.js'
import { figureFrom } from '../../lab/metrics/repeat.js'
import { failoverFixture, quickTimeline, type Broken } from './fixtures.js'

/** `experiment failover --repeat N`: figures over runs with t-intervals, checks judged on them (lab/metrics/repeat.ts, lab/results/repeat-checks.ts). */

const runs = (broken: Broken[]): ReturnType<typeof combineRepeatedRuns> =>
  combineRepeatedRuns(broken.map((b, i) => failoverFixture(b, quickTimeline(7 + i)).results))

describe('t-intervals over runs', () => {
  it('match the textbook: 1..5 → mean 3, 3 ± 2.776 × 1.5811 / √5; one value has no interval', () => {
    expect(tQuantile975(4)).toBe(2.776)
    expect(tQuantile975(1)).toBe(12.706)
    const { mean, low, high } = tInterval([1, 2, 3, 4, 5])
    expect(mean).toBe(3)
    expect(low).toBeCloseTo(3 - 2.776 * Math.sqrt(2.5 / 5), 9)
    expect(high).toBeCloseTo(3 + 2.776 * Math.sqrt(2.5 / 5), 9)
    expect(tInterval([0.97])).toEqual({ mean: 0.97, low: null, high: null })
    expect(tInterval([0, 0, 0])).toEqual({ mean: 0, low: 0, high: 0 })
  })
})

describe('failover over repeated runs', () => {
  it('three sound runs: every figure with its values per run and interval; the checks hold on the intervals', () => {
    const r = runs([{}, {}, {}])
    expect(r.repetitions?.count).toBe(3)
    expect(r.repetitions?.seeds).toEqual([7, 8, 9])
    const lost = r.repetitions?.figures.find((f) => f.mode === 'mesh' && f.phase === 'all' && f.metric === 'lost')
    expect(lost).toEqual({ mode: 'mesh', phase: 'all', metric: 'lost', values: [0, 0, 0], mean: 0, low: 0, high: 0 })
    const status = Object.fromEntries(r.checks.map((c) => [c.id, c.status]))
    expect(status['nothing-lost']).toBe('pass')
    expect(status['no-duplicates']).toBe('pass')
    expect(status['broker-silent-while-down']).toBe('pass')
    expect(r.repetitions?.runChecks.find((c) => c.id === 'nothing-lost')?.statuses).toEqual(['pass', 'pass', 'pass'])
  })

  it('a loss in one run of three is undecided (the interval straddles 0), losses in every run fail', () => {
    const once = runs([{}, { meshLoses: 3 }, {}])
    expect(once.checks.find((c) => c.id === 'nothing-lost')?.status).toBe('undecided')
    expect(once.repetitions?.runChecks.find((c) => c.id === 'nothing-lost')?.statuses).toEqual(['pass', 'fail', 'pass'])
    const always = runs([{ meshLoses: 3 }, { meshLoses: 3 }, { meshLoses: 3 }])
    const check = always.checks.find((c) => c.id === 'nothing-lost')
    expect(check?.status).toBe('fail')
    // The same loss in every run: a zero-width interval above 0.
    expect(check?.observed).toMatch(/mesh, all: ([1-9]\.\d\d) \[\1, \1\] \(fail\)/)
  })

  it('hybrid duplicating in every run fails no-duplicates; the report shows the repetitions and passes the schema', () => {
    const r = runs([{ hybridDuplicates: true }, { hybridDuplicates: true }])
    expect(r.checks.find((c) => c.id === 'no-duplicates')?.status).toBe('fail')
    const md = renderReport(r).find((f) => f.name === 'report.md')?.content ?? ''
    expect(md).toContain('## Repetitions: 2 runs')
    expect(md).toContain('Seeds 7, 8')
    expect(md).toMatch(/\| no-duplicates \| ✘ +\| ✘ +\|/)
    // The checks' heading says what the marks are judged on: the runs, not the first run's tables.
    expect(md).toContain('the mark is judged over the 2 runs, not on one run\'s figures')
    expect(md).not.toContain('this run\'s figures')
    const single = renderReport(failoverFixture().results).find((f) => f.name === 'report.md')?.content ?? ''
    expect(single).toContain('the mark is computed from this run\'s figures')
  })

  it('readings late for the outage\'s end in one run of three are on time: pooled, mesh-keeps-delivering is undecided (108 of 108), where "before the phase ended" fails (102 of 108)', () => {
    const r = runs([{}, { lateAtOutageEnd: true }, {}])
    const fig = (metric: string): ReturnType<typeof figureFrom> | undefined =>
      r.repetitions?.figures.find((f) => f.mode === 'mesh' && f.phase === 'broker-down' && f.metric === metric)
    expect(fig('delivered-on-time')).toMatchObject({ values: [1, 1, 1], low: 1, high: 1, pooled: { x: 108, n: 108 } })
    expect(fig('delivered-during')?.values).toEqual([1, 0.8333, 1])
    expect(fig('delivered-during')?.pooled).toMatchObject({ x: 102, n: 108 })
    expect(fig('delivered-during')?.pooled?.high).toBeLessThan(0.99)
    expect(r.checks.find((c) => c.id === 'mesh-keeps-delivering')?.status).toBe('undecided')
    expect(r.checks.find((c) => c.id === 'mesh-keeps-delivering')?.statement).toContain('on time, within 3.0 s of publication')
  })

  it('a saved run from before on-time was recorded is judged as it was made, on arrivals before the phase ended', () => {
    const r = runs([{}, { lateAtOutageEnd: true }, {}])
    const saved = { ...r, repetitions: { ...r.repetitions!, figures: r.repetitions!.figures.filter((f) => f.metric !== 'delivered-on-time') } }
    const again = refreshRepetitions(saved).checks.find((c) => c.id === 'mesh-keeps-delivering')
    expect(again?.status).toBe('fail')
    expect(again?.observed).toContain('mesh, broker-down: 102 of 108 pooled')
    expect(again?.statement).toContain('before the phase ended')
  })

  it('an interval stays within what the figure can be: a share within [0, 1], a count at or above 0', () => {
    const r = runs([{}, { meshLoses: 3 }, {}])
    const delivered = r.repetitions?.figures.find((f) => f.mode === 'mesh' && f.phase === 'all' && f.metric === 'delivered')
    expect(delivered?.high).toBe(1)
    expect(delivered?.low).toBeLessThan(1)
    const lost = r.repetitions?.figures.find((f) => f.mode === 'mesh' && f.phase === 'all' && f.metric === 'lost')
    expect(lost?.low).toBe(0)
    expect(lost?.high).toBeGreaterThan(0)
  })

  it('a saved repeated run gets its intervals and checks again from the per-run values (what --from does)', () => {
    const r = runs([{}, { meshLoses: 3 }, {}])
    const blanked = { ...r, checks: [], repetitions: { ...r.repetitions!, figures: r.repetitions!.figures.map((f) => ({ ...f, mean: null, low: null, high: null })) } }
    const again = refreshRepetitions(blanked)
    expect(again.repetitions?.figures).toEqual(repeatedFigures(r.repetitions!.seeds.map((seed, i) => failoverFixture(i === 1 ? { meshLoses: 3 } : {}, quickTimeline(seed)).results)))
    expect(again.checks).toEqual(r.checks)
  })

  it('one run is not a repetition', () => {
    expect(() => combineRepeatedRuns([failoverFixture().results])).toThrow(/at least 2 runs/)
  })
})

describe('a share over repeated runs is judged on its readings pooled (issue 14)', () => {
  const share = (mode: 'mesh' | 'hybrid' | 'broker', counts: Array<[number, number]>): ReturnType<typeof figureFrom> =>
    figureFrom(mode, 'broker-down', 'delivered-on-time', counts.map(([x, n]) => x / n), counts.map(([x, n]) => ({ x, n })))
  const gap = (mode: 'mesh' | 'hybrid'): ReturnType<typeof figureFrom> => figureFrom(mode, 'broker-down', 'longest-gap-ms', [1000, 1010, 990])
  const keeps = (mesh: Array<[number, number]>, hybrid = mesh): ReturnType<typeof repeatedFailoverChecks>[number] | undefined =>
    repeatedFailoverChecks([share('mesh', mesh), share('hybrid', hybrid), gap('mesh'), gap('hybrid')], ['broker-down'], 3).find((c) => c.id === 'mesh-keeps-delivering')

  it('three runs of 36 of 36 on time are undecided: 108 pooled readings cannot show 99 % (Wilson 96.6 %), though the runs agree exactly', () => {
    const c = keeps([[36, 36], [36, 36], [36, 36]])
    expect(c?.status).toBe('undecided')
    expect(c?.observed).toContain('mesh, broker-down: 108 of 108 pooled, 100.0 % [96.6 %, 100.0 %] (Wilson)')
    expect(c?.observed).toContain('needs ≥ 381 readings')
    // the fleet-simulating fixture, three sound runs: the same
    expect(runs([{}, {}, {}]).checks.find((x) => x.id === 'mesh-keeps-delivering')?.status).toBe('undecided')
  })

  it('enough readings, all on time, hold; a real loss pooled fails even where the per-run t-interval straddles 99 %', () => {
    expect(keeps([[400, 400], [400, 400], [400, 400]])?.status).toBe('pass')
    // 36, 36, 24 of 36: the t-interval of [1, 1, 0.667] reaches past 99 %, the pool (96 of 108) lies below it
    expect(keeps([[36, 36], [36, 36], [24, 36]])?.status).toBe('fail')
  })

  it('a pool that shows 99 % while the runs disagree is undecided: a pass needs the spread between runs to agree', () => {
    // 2,985 of 3,000 pooled: Wilson [99.2, 99.7] %; per run 100, 100, 98.5 %: t-interval [97.4, 100] %
    const c = keeps([[1000, 1000], [1000, 1000], [985, 1000]])
    expect(c?.observed).toMatch(/2985 of 3000 pooled, 99\.5 % \[99\.2 %, 99\.7 %\]/)
    expect(c?.status).toBe('undecided')
  })

  it('hybrid-at-least-broker pools each mode: 108 of 108 against 108 of 108 cannot show "within 1 point" (Newcombe ±3.4)', () => {
    const r = runs([{}, {}, {}])
    const c = r.checks.find((x) => x.id === 'hybrid-at-least-broker')
    expect(c?.status).toBe('undecided')
    expect(c?.observed).toMatch(/steady: hybrid \d+ of \d+, broker \d+ of \d+ pooled/)
    const big = (mode: 'hybrid' | 'broker'): ReturnType<typeof figureFrom> => figureFrom(mode, 'steady', 'delivered-on-time', [1, 1, 1], [{ x: 2000, n: 2000 }, { x: 2000, n: 2000 }, { x: 2000, n: 2000 }])
    expect(repeatedFailoverChecks([big('hybrid'), big('broker')], ['steady'], 3).find((x) => x.id === 'hybrid-at-least-broker')?.status).toBe('pass')
  })

  it('the report shows the pool; results saved before counts were recorded still read and validate, their pooled checks undecided with the reason', () => {
    const r = runs([{}, {}, {}])
    expect(validateResults(r)).toEqual([])
    const md = renderReport(r).find((f) => f.name === 'report.md')?.content ?? ''
    expect(md).toContain('on time, pooled')
    expect(md).toContain('108/108 100.0 % [96.6 %, 100.0 %]')
    const old = { ...r, repetitions: { ...r.repetitions!, figures: r.repetitions!.figures.map(({ counts: _c, pooled: _p, ...f }) => f) } }
    expect(validateResults(old)).toEqual([])
    const again = refreshRepetitions(old)
    const keepsOld = again.checks.find((c) => c.id === 'mesh-keeps-delivering')
    expect(keepsOld?.status).toBe('undecided')
    expect(keepsOld?.observed).toContain('per-run counts are not in these results')
    expect(again.checks.find((c) => c.id === 'nothing-lost')?.status).toBe('pass')
  })
})
