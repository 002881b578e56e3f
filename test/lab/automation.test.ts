import { describe, expect, it } from 'vitest'
import {
  AUTOMATION_QUICK, automationChecks, automationResults, combineAutomationRuns, compareRuns, parseSavedResults, reproductionMarkdown, refreshAutomationRepetitions, automationRules, automationWorld, groundTruth, matchTriggers, planAutomation, renderReport,
  summarizeAutomation, validateResults, type AutomationWaySummary, type ExecutionObservation, type TriggerObservation, type WayObservations
} from '../../lab/index.js'
import { World } from '../../firmware-sim/index.js'
import { MACHINE, SOFTWARE, T0 } from './fixtures.js'
import { findAll, parseXml } from './xml.js'

/**
 * The automation experiment's pure half (lab/plan/automation.ts, lab/metrics/automation.ts,
 * lab/results/automation.ts): the plan, ground truth from a world, triggers matched to
 * executions, the figures, the checks and a report that validates against the schema.
 */

const plan = planAutomation({ ...AUTOMATION_QUICK, seed: 5 })
const phases = plan.timeline.phases
const exec = (rule: string, atS: number, expiresInS = 3): ExecutionObservation => ({ rule, at: T0 + atS * 1000, issuer: 'x', id: Math.round(atS * 1000), expiresAt: (T0 + atS * 1000) / 1000 + expiresInS })
const trig = (rule: string, atS: number): TriggerObservation => ({ rule, at: T0 + atS * 1000 })

describe('planAutomation', () => {
  it('is a pure function of its parameters; the parts never crash and are four distinct devices', () => {
    const again = planAutomation({ ...AUTOMATION_QUICK, seed: 5 })
    expect(again).toEqual(plan)
    expect(planAutomation({ ...AUTOMATION_QUICK, seed: 6 }).fingerprint).not.toBe(plan.fingerprint)
    const crashed = phases.flatMap((p) => p.faults.flatMap((f) => f.devices ?? []))
    const parts = Object.values(plan.roles)
    expect(new Set(parts).size).toBe(4)
    for (const i of parts) expect(crashed).not.toContain(i)
    expect(phases.map((p) => p.name)).toEqual(['steady', 'broker-down', 'broker-back', 'crashed', 'restarted', 'partitioned', 'healed'])
  })

  it('refuses parameters that cannot make the triggers it measures', () => {
    expect(() => planAutomation({ ...AUTOMATION_QUICK, holdS: 2, lightOffS: 1 })).toThrow(/shortest visit gap/)
    expect(() => planAutomation({ ...AUTOMATION_QUICK, devices: 5, crashCount: 2 })).toThrow(/four devices that never crash/)
    expect(() => planAutomation({ ...AUTOMATION_QUICK, warmC: 18 })).toThrow(/warmC/)
  })

  it('writes four rules that the rule checker accepts, naming the parts', () => {
    const rules = automationRules(plan)
    expect(rules.rules.map((r) => r.name)).toEqual(['hall-light-on', 'hall-light-off', 'heat-on', 'heat-off'])
    expect(rules.rules[2]?.conditions[0]).toMatchObject({ sensor: 'temperature', below: 19, forMs: 2000 })
  })
})

describe('groundTruth', () => {
  it('finds the visits, the quiet after them, and the room\'s threshold crossings', () => {
    const world = new World(automationWorld(plan), plan.params.seed, plan.params.devices, T0)
    const living = world.rooms.find((r) => r.spec.name === 'living')?.room
    if (living === undefined) throw new Error('no living room')
    // The room starts at 20 °C and cools towards 15: below 19 at τ·ln(5/4); the heater goes on 3 s after that, off at 40 s.
    living.setHeater(true, T0 + 8_000)
    living.setHeater(false, T0 + 40_000)
    const truth = groundTruth(world, plan, T0, T0 + 60_000)
    const rel = (rule: string): number[] => truth.filter((t) => t.rule === rule).map((t) => (t.at - T0) / 1000)
    const cross = 8 * Math.log(5 / 4)
    expect(rel('heat-on')[0]).toBeCloseTo(cross + 2, 6)
    expect(rel('heat-off')).toHaveLength(1)
    const on = rel('hall-light-on')
    const off = rel('hall-light-off')
    expect(on.length).toBeGreaterThanOrEqual(18)
    // The quiet after each visit: 0.5 s of motion and 0.5 s without, one per visit (the last may fall after the end).
    expect(off.length).toBeGreaterThanOrEqual(on.length - 1)
    for (const q of off) expect(on.some((v) => Math.abs(q - v - 1) < 1e-6)).toBe(true)
    for (const [i, v] of on.entries()) if (i > 0) expect(v - (on[i - 1] as number)).toBeGreaterThanOrEqual(2)
    expect(truth.map((t) => t.at)).toEqual([...truth.map((t) => t.at)].sort((a, b) => a - b))
  })
})

describe('matchTriggers and summarizeAutomation', () => {
  it('classifies each trigger by its first execution before the rule\'s next trigger', () => {
    const triggers = [trig('a', 1), trig('a', 4), trig('a', 7), trig('a', 20), trig('b', 2)]
    const executions = [
      exec('a', 1.2), // on time for the first
      exec('a', 4.1), exec('a', 4.3), // twice for the second
      // the third has none before the fourth: missed
      exec('a', 24.5), // late for the fourth (4.5 s > 3 s)
      exec('b', 1.9) // before its trigger: not its
    ]
    const out = matchTriggers(triggers, executions, phases, { t0: T0, endAt: T0 + 60_000, deadlineMs: 3000 })
    expect(out.map((o) => [o.rule, o.atS, o.outcome, o.executions])).toEqual([
      ['a', 1, 'on-time', 1], ['b', 2, 'missed', 0], ['a', 4, 'on-time', 2], ['a', 7, 'missed', 0], ['a', 20, 'late', 1]
    ])
    expect(out[0]?.latencyMs).toBeCloseTo(200, 6)
    expect(out[0]?.phase).toBe('steady')
    expect(out.at(-1)?.phase).toBe(phases.find((p) => 20 >= p.startS && 20 < p.endS)?.name)
    // A tolerance lets an execution a little ahead of its trigger count (latency 0).
    const tolerant = matchTriggers([trig('b', 2)], [exec('b', 1.9)], phases, { t0: T0, endAt: T0 + 60_000, deadlineMs: 3000, toleranceMs: 200 })
    expect(tolerant[0]).toMatchObject({ outcome: 'on-time', latencyMs: 0 })
  })

  it('sums per phase: shares, executions twice and after expiry, latency percentiles', () => {
    const triggers = [trig('a', 1), trig('a', 4), trig('a', 7)]
    const executions = [exec('a', 1.5), exec('a', 4.1), exec('a', 4.2, -0.5)]
    const outcomes = matchTriggers(triggers, executions, phases, { t0: T0, endAt: T0 + 60_000, deadlineMs: 3000 })
    const { phases: per, total } = summarizeAutomation(outcomes, executions, phases, T0)
    const steady = per.find((p) => p.name === 'steady')
    expect(steady).toMatchObject({ triggers: 3, onTime: 2, late: 0, missed: 1, twice: 1, executions: 3, afterExpiry: 1, afterExpiryMaxMs: 500 })
    expect(steady?.notOnTimeShare).toBeCloseTo(1 / 3, 4)
    expect(steady?.latencyMs).toMatchObject({ count: 2, p50: 100, max: 500 })
    expect(total.triggers).toBe(3)
    expect(per.find((p) => p.name === 'broker-down')).toMatchObject({ triggers: 0, notOnTimeShare: null, latencyMs: null, afterExpiryMaxMs: null })
  })
})

/** Observations of one way: `misses(phase)` says how many of the phase's triggers go without an execution. */
function way (name: WayObservations['way'], misses: (phase: string) => number, expiresInS = 3): WayObservations {
  const triggers: TriggerObservation[] = []
  const executions: ExecutionObservation[] = []
  for (const p of phases) {
    const n = Math.floor((p.endS - p.startS) / 0.5)
    const miss = Math.min(n, misses(p.name))
    for (let k = 0; k < n; k++) {
      const atS = p.startS + k * 0.5 + 0.1
      triggers.push(trig('hall-light-on', atS))
      if (k >= miss) executions.push(exec('hall-light-on', atS + 0.15, expiresInS))
    }
  }
  return { way: name, mode: name === 'device' ? 'mesh' : name === 'central' ? 'broker' : 'hybrid', t0: T0, endedAt: T0 + (plan.timeline.endS + 5) * 1000, faults: [], triggers, executions, refused: {}, sent: executions.length, unanswered: 0, outcomes: { ok: executions.length } }
}

describe('automationResults and the checks', () => {
  const make = (observations: WayObservations[]): ReturnType<typeof automationResults> =>
    automationResults({ plan, rules: automationRules(plan), intervalS: 0.25, observations, startedAt: T0, finishedAt: T0 + 200_000, machine: MACHINE, software: SOFTWARE })
  const status = (r: { checks: Array<{ id: string, status: string }> }, id: string): string | undefined => r.checks.find((c) => c.id === id)?.status

  it('the expected contrast passes, validates against the schema, and renders a report with its charts', () => {
    const results = make([way('device', () => 0), way('central', (p) => p === 'broker-down' ? Infinity : 0), way('hybrid', () => 0)])
    expect(validateResults(results)).toEqual([])
    for (const id of ['central-misses-while-broker-down', 'device-rules-work-while-broker-down', 'hybrid-works-while-broker-down', 'every-way-works-when-steady', 'never-beyond-expiry-tolerance']) {
      expect(status(results, id), id).toBe('pass')
    }
    const files = renderReport(results)
    expect(files.map((f) => f.name)).toEqual(['results.json', 'results.schema.json', 'triggers.svg', 'not-on-time.svg', 'report.md'])
    const report = files.find((f) => f.name === 'report.md')?.content ?? ''
    expect(report).toContain('| central | broker-down | 30 | 0 | 0 | 30 | 100.0 % |')
    expect(files.find((f) => f.name === 'triggers.svg')?.content).toMatch(/^<svg[^>]+>\n<title>Automation: every trigger/)
    // Well-formed SVG: one mark per trigger of the timeline (a dot, or a cross of two lines for a miss), one bar per phase and way.
    const triggers = parseXml(files.find((f) => f.name === 'triggers.svg')?.content ?? '')
    const inTimeline = results.ways.flatMap((w) => w.triggers).filter((t) => t.atS <= plan.timeline.endS)
    const missed = inTimeline.filter((t) => t.outcome === 'missed').length
    expect(findAll(triggers, (e) => e.name === 'circle')).toHaveLength(inTimeline.length - missed)
    const bars = parseXml(files.find((f) => f.name === 'not-on-time.svg')?.content ?? '')
    expect(findAll(bars, (e) => e.name === 'rect' && e.attrs['fill-opacity'] === '0.8')).toHaveLength(3 * phases.length)
  })

  it('says fail when the data contradicts an expectation, and undecided when there are too few triggers to tell', () => {
    const reversed = make([way('device', (p) => p === 'broker-down' ? Infinity : 0), way('central', () => 0)])
    expect(status(reversed, 'central-misses-while-broker-down')).toBe('fail')
    expect(status(reversed, 'device-rules-work-while-broker-down')).toBe('fail')
    expect(status(reversed, 'hybrid-works-while-broker-down')).toBe('not-run')
    // Two misses of 30: the interval (2 %–21 %) lies under 30 %: it works. Six: 9 %–38 % straddles 30 %: undecided.
    expect(status(make([way('device', (p) => p === 'broker-down' ? 2 : 0)]), 'device-rules-work-while-broker-down')).toBe('pass')
    expect(status(make([way('device', (p) => p === 'broker-down' ? 6 : 0)]), 'device-rules-work-while-broker-down')).toBe('undecided')
    // Run 2.5 s past expiry: beyond the devices' 2 s tolerance; 1 s past it: within.
    expect(status(make([way('device', () => 0, -2.5)]), 'never-beyond-expiry-tolerance')).toBe('fail')
    expect(status(make([way('device', () => 0, -1)]), 'never-beyond-expiry-tolerance')).toBe('pass')
  })

  it('checks judge only what was run', () => {
    const checks = automationChecks([] as AutomationWaySummary[])
    expect(checks.every((c) => c.status === 'not-run')).toBe(true)
  })
})

describe('automation --repeat: figures over runs and checks on their intervals', () => {
  const run = (seed: number, observations: WayObservations[]): ReturnType<typeof automationResults> =>
    ({ ...automationResults({ plan, rules: automationRules(plan), intervalS: 0.25, observations, startedAt: T0, finishedAt: T0 + 200_000, machine: MACHINE, software: SOFTWARE }), seed })
  const status = (r: { checks: Array<{ id: string, status: string }> }, id: string): string | undefined => r.checks.find((c) => c.id === id)?.status
  const broker = (p: string, n: number): number => p === 'broker-down' ? n : 0

  it('three runs: a t-interval per way and phase, the run as the unit; validates, renders, and --from makes the same checks again', () => {
    // Broker-down has 30 triggers per run. Central misses them all; the device misses 1, 3 and 2: 3.3 %, 10 %, 6.7 %.
    const runs = [1, 3, 2].map((m, i) => run(5 + i, [way('device', (p) => broker(p, m)), way('central', (p) => broker(p, Infinity))]))
    const combined = combineAutomationRuns(runs)
    expect(validateResults(combined)).toEqual([])
    expect(combined.repetitions?.seeds).toEqual([5, 6, 7])
    const device = combined.repetitions?.figures.find((f) => f.way === 'device' && f.phase === 'broker-down' && f.metric === 'not-on-time')
    expect(device?.values.map((v) => Math.round((v ?? NaN) * 300))).toEqual([10, 30, 20])
    expect(device?.mean).toBeCloseTo(0.0667, 3)
    // sd 0.0333, t(2) 4.303: half-width 0.0828.
    expect(device?.low).toBe(0)
    expect(device?.high).toBeCloseTo(0.1495, 3)
    expect(status(combined, 'device-rules-work-while-broker-down')).toBe('pass')
    expect(status(combined, 'central-misses-while-broker-down')).toBe('pass')
    expect(combined.repetitions?.runChecks.find((c) => c.id === 'central-misses-while-broker-down')?.statuses).toEqual(['pass', 'pass', 'pass'])
    const report = renderReport(combined).find((f) => f.name === 'report.md')?.content ?? ''
    expect(report).toContain('## Repetitions: 3 runs')
    expect(report).toMatch(/\| device \| broker-down \| 6\.7 % \[0\.0 %, 14\.9 %\] \|/)
    // Saved and read back (--from): the same figures and verdicts from each run's values.
    const saved = parseSavedResults(JSON.stringify(combined), 'results.json')
    expect(saved.experiment).toBe('automation')
    const again = refreshAutomationRepetitions(saved as typeof combined)
    expect(again.checks).toEqual(combined.checks)
  })

  it('runs that disagree make a check undecided, not flipped; a bound broken in one run fails', () => {
    // The device misses 2 of 30 in one run and 20 of 30 in the other: the interval over two runs spans 30 %.
    const split = combineAutomationRuns([run(1, [way('device', (p) => broker(p, 2))]), run(2, [way('device', (p) => broker(p, 20))])])
    expect(status(split, 'device-rules-work-while-broker-down')).toBe('undecided')
    expect(split.repetitions?.runChecks.find((c) => c.id === 'device-rules-work-while-broker-down')?.statuses).toEqual(['pass', 'fail'])
    const late = combineAutomationRuns([run(1, [way('device', () => 0)]), run(2, [way('device', () => 0, -2.5)])])
    expect(status(late, 'never-beyond-expiry-tolerance')).toBe('fail')
    expect(() => combineAutomationRuns([run(1, [way('device', () => 0)])])).toThrow(/at least 2 runs/)
  })

  it('--from compares a new run with the saved intervals: inside, outside, or nothing to judge', () => {
    const saved = combineAutomationRuns([1, 3, 2].map((m, i) => run(5 + i, [way('device', (p) => broker(p, m))])))
    // Device, broker-down, not on time: saved [0.0 %, 14.9 %]. A new run missing 2 of 30 (6.7 %) is inside; 12 of 30 (40 %) is not.
    const same = compareRuns('saved/results.json', saved, combineAutomationRuns([2, 2].map((m, i) => run(8 + i, [way('device', (p) => broker(p, m))]))))
    const key = 'device, broker-down, not-on-time'
    expect(same.figures.find((f) => f.figure === key)).toMatchObject({ inside: true, old: { low: 0 } })
    expect(same.verdict).toBe('reproduced')
    expect(same.newSeeds).toEqual([8, 9])
    const moved = compareRuns('saved/results.json', saved, run(8, [way('device', (p) => broker(p, 12))]))
    expect(moved.figures.find((f) => f.figure === key)).toMatchObject({ inside: false })
    expect(moved.verdict).toBe('not-reproduced')
    expect(reproductionMarkdown(moved)).toMatch(/Not reproduced: \d+ of \d+ figures/)
    // Every saved run missed nothing in broker-down: [0 %, 0 %] has no spread to judge a new 3.3 % against.
    const exact = combineAutomationRuns([5, 6].map((seed) => run(seed, [way('device', () => 0)])))
    expect(compareRuns('exact/results.json', exact, run(7, [way('device', (p) => broker(p, 1))])).figures.find((f) => f.figure === key)).toMatchObject({ inside: null, old: { low: 0, high: 0 } })
    const single = compareRuns('one/results.json', run(5, [way('device', () => 0)]), run(6, [way('device', () => 0)]))
    expect(single.verdict).toBe('no-intervals')
    expect(single.figures.every((f) => f.inside === null)).toBe(true)
  })
})
