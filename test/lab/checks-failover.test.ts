import { describe, expect, it } from 'vitest'
import { planFailover, FAILOVER_QUICK, type FailoverResults, type Timeline } from '../../lab/index.js'
import { readingsToShow, wilson } from '../../lab/results/checks.js'
import { failoverFixture, quickTimeline, type Broken } from './fixtures.js'

/**
 * The failover checks judged on intervals (lab/results/checks.ts): a reading counts as delivered in a phase when it
 * arrived within the gap tolerance of its publication, so a late reading at the phase's end does not flip a verdict;
 * a real loss still does; "broker-only delivers nothing while the broker is down" keeps counting arrivals before
 * the phase ended.
 */

/** 20 devices, 30 s of broker outage: 600 readings, enough for an interval above 99 % (381 with no miss). */
const large = (): Timeline => planFailover({ ...FAILOVER_QUICK, devices: 20, brokerDownS: 30, seed: 3 })
const run = (broken: Broken, timeline: Timeline): FailoverResults => failoverFixture(broken, timeline).results
const check = (r: FailoverResults, id: string): FailoverResults['checks'][number] => r.checks.find((c) => c.id === id) as FailoverResults['checks'][number]
const outage = (r: FailoverResults, mode: string): FailoverResults['modes'][number]['phases'][number] =>
  r.modes.find((m) => m.mode === mode)?.phases.find((p) => p.name === 'broker-down') as FailoverResults['modes'][number]['phases'][number]

describe('mesh-keeps-delivering on an interval of the readings on time', () => {
  it('readings published in the outage\'s last second that arrive after it ended are on time, not "during"', () => {
    const r = run({ lateAtOutageEnd: true }, quickTimeline())
    const mesh = outage(r, 'mesh')
    expect(mesh.published).toBe(36)
    expect(mesh.gateway.deliveredDuring).toBe(30) // the last second's 6 readings arrived 0.5 s after the phase
    expect(mesh.gateway.deliveredOnTime).toBe(36)
    expect(mesh.gateway.ratioOnTime).toBe(1)
  })

  it('a late reading near the phase end does not flip the verdict: it passes with enough readings', () => {
    const timeline = large()
    const onTime = run({}, timeline)
    const late = run({ lateAtOutageEnd: true }, timeline)
    expect(outage(late, 'mesh').gateway.ratioDuring).toBeCloseTo(580 / 600, 4) // the old rule, ≥ 99 % before the phase end, failed this
    expect(check(onTime, 'mesh-keeps-delivering').status).toBe('pass')
    expect(check(late, 'mesh-keeps-delivering').status).toBe('pass')
    expect(check(late, 'mesh-keeps-delivering').observed).toContain('mesh: 600 of 600 on time, 100.0 % [99.4, 100.0] %')
  })

  it('a --quick run (36 readings) cannot show ≥ 99 %: undecided, with or without a late reading, and says how many it needs', () => {
    const plain = check(run({}, quickTimeline()), 'mesh-keeps-delivering')
    const late = check(run({ lateAtOutageEnd: true }, quickTimeline()), 'mesh-keeps-delivering')
    expect(plain.status).toBe('undecided')
    expect(late.status).toBe('undecided')
    expect(plain.observed).toContain('mesh: 36 of 36 on time, 100.0 % [90.4, 100.0] %, longest gap 1.0 s (undecided; ≥ 99 % needs ≥ 381 readings, all on time)')
    expect(readingsToShow(0.99)).toBe(381)
    expect(wilson(381, 381)[0]).toBeGreaterThanOrEqual(0.99)
    expect(wilson(380, 380)[0]).toBeLessThan(0.99)
  })

  it('a real loss fails it, with few readings as with many', () => {
    const quick = run({ outageLosers: 1 }, quickTimeline()) // one device loses 3 of its 6: 33 of 36
    expect(outage(quick, 'mesh').gateway.deliveredOnTime).toBe(33)
    expect(check(quick, 'mesh-keeps-delivering').status).toBe('fail')
    const many = run({ outageLosers: 1 }, large()) // 15 of 600 lost: 97.5 %, the interval below 99 %
    expect(outage(many, 'hybrid').gateway.deliveredOnTime).toBe(585)
    expect(check(many, 'mesh-keeps-delivering').status).toBe('fail')
    expect(check(many, 'mesh-keeps-delivering').observed).toMatch(/hybrid: 585 of 600 on time, 97\.5 % \[9\d\.\d, 98\.\d\] %, longest gap 2\.0 s \(fail\)/)
  })
})

describe('broker-silent-while-down keeps counting arrivals before the phase ended', () => {
  it('readings flushed within the tolerance once the broker is back are on time, and the broker still delivered nothing while it was down', () => {
    const r = run({}, quickTimeline())
    const broker = outage(r, 'broker')
    expect(broker.gateway.deliveredOnTime).toBeGreaterThan(0) // the outage's last second, flushed 0.6 s after the broker returned
    expect(broker.gateway.deliveredDuring).toBe(0)
    expect(check(r, 'broker-silent-while-down').status).toBe('pass')
    expect(check(r, 'broker-silent-while-down').observed).toBe('broker: 0 of 36 readings delivered before broker-down ended, [0.0, 9.6] %')
    expect(check(run({ brokerNeverStopped: true }, quickTimeline()), 'broker-silent-while-down').status).toBe('fail')
  })
})
