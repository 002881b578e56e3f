import { describe, expect, it } from 'vitest'
import {
  distribution, faultEvents, mergeReadings, percentiles, planFailover, summarizeLatency, summarizeMode, summarizeScale,
  type ModeObservations, type ReadingObservation
} from '../../lab/index.js'
import { isMeshError } from '../../shared/index.js'

// Hand-built observations with answers worked out on paper. The run clock starts at 0 (t0 = 0).

/** steady [0, 2) s, broker-down [2, 5) s, broker-back [5, 7) s; observation ends at 8 s. */
const brokerTimeline = planFailover({ seed: 1, devices: 2, steadyS: 2, brokerDownS: 3, crashCount: 0, crashS: 0, partitionS: 0, gapS: 2, drainS: 1 })

/** Device a publishes at 0.1 + k s, b at 0.2 + k s (k = 0..6, seq k + 1). `arrive` gives the gateway arrival or undefined. */
function readings (arrive: (origin: 'a' | 'b', publishedAt: number) => number | undefined): ReadingObservation[] {
  const out: ReadingObservation[] = []
  for (const origin of ['a', 'b'] as const) {
    for (let k = 0; k < 7; k++) {
      const publishedAt = (origin === 'a' ? 100 : 200) + k * 1000
      const gateway = arrive(origin, publishedAt)
      out.push({ origin, seq: k + 1, publishedAt, receivedAt: gateway === undefined ? {} : { gateway } })
    }
  }
  return out
}

/** Broker-only: held while the broker is down (2-5 s), flushed after it returns: a's at 5.6 s, b's at 5.8 s. */
const brokerArrivals = (origin: 'a' | 'b', t: number): number => {
  if (t >= 2000 && t < 5000) return origin === 'a' ? 5600 : 5800
  if (t >= 5000 && t < 6000) return origin === 'a' ? 5600 : 5800 // the first readings after the return ride the flush
  return t + 10
}

const observe = (mode: ModeObservations['mode'], list: ReadingObservation[], extra: Partial<ModeObservations> = {}): ModeObservations =>
  ({ mode, devices: ['a', 'b'], t0: 0, endedAt: 8000, readings: list, ...extra })

describe('failover metrics on hand-built observations', () => {
  it('a broker-down window with zero deliveries: ratios, gaps and time to resume', () => {
    const s = summarizeMode(brokerTimeline, observe('broker', readings(brokerArrivals)))
    const [steady, down, back] = s.phases
    expect(steady).toMatchObject({ name: 'steady', published: 4, gateway: { delivered: 4, deliveredDuring: 4, ratio: 1, ratioDuring: 1 } })
    expect(down).toMatchObject({ name: 'broker-down', published: 6, gateway: { delivered: 6, deliveredDuring: 0, ratio: 1, ratioDuring: 0 } })
    expect(back).toMatchObject({ name: 'broker-back', published: 4, gateway: { delivered: 4, deliveredDuring: 4 } })
    // Gaps, clipped to the phase: steady, arrivals 1 s apart; broker-down, silent throughout (3 s);
    // broker-back, a is silent from 6.11 s to the end of the phase (0.89 s), b from 5.0 to 5.8 s (0.8 s).
    expect([steady?.longestGapMs, down?.longestGapMs, back?.longestGapMs]).toEqual([1000, 3000, 890])
    expect(back?.longestGapOrigin).toBe('a')
    expect(back?.medianGapMs).toBe(800)
    // Resume after broker-stop (2 s): a's 2.1 s reading arrives at 5.6 s (3.6 s), b's 2.2 s at 5.8 s (3.8 s).
    expect(s.faults[0]).toMatchObject({ kind: 'broker-stop', atS: 2, devices: [0, 1], gateway: { affected: 2, resumed: 2, maxMs: 3800, medianMs: 3600 } })
    // After broker-start (5 s): a's 5.1 s reading at 5.6 s, b's 5.2 s reading at 5.8 s.
    expect(s.faults[1]?.gateway).toEqual({ affected: 2, resumed: 2, maxMs: 800, medianMs: 600 })
    expect(down?.resume).toEqual(s.faults[0]?.gateway)
    expect(steady?.resume).toBeNull()
    expect(s.total).toMatchObject({ name: 'all', published: 14, lostForGood: 0, duplicates: 0 })
    // Latency in broker-down: 5600-2100 … 5800-4200; nearest rank p50 of [1500, 1600, 2500, 2600, 3500, 3600] is 2500.
    expect(down?.latencyMs.gateway).toMatchObject({ count: 6, min: 1500, p50: 2500, max: 3600 })
    expect(s.total.peer).toBeNull()
  })

  it('on time: arrived within the tolerance of publication (inclusive), wherever the phase ended', () => {
    // broker-down's latencies are 1.5, 1.6, 2.5, 2.6, 3.5 and 3.6 s, all arriving after the phase ended (5 s).
    const list = readings(brokerArrivals)
    expect(summarizeMode(brokerTimeline, observe('broker', list)).phases[1]?.gateway).toMatchObject({ deliveredDuring: 0, deliveredOnTime: 4, ratioOnTime: 0.6667 })
    expect(summarizeMode(brokerTimeline, observe('broker', list), { onTimeMs: 1500 }).phases[1]?.gateway).toMatchObject({ deliveredDuring: 0, deliveredOnTime: 1 })
  })

  it('the mesh ignores the broker: full delivery during the outage and no gap above an interval', () => {
    const s = summarizeMode(brokerTimeline, observe('mesh', readings((_o, t) => t + 5)))
    const down = s.phases[1]
    expect(down?.gateway.ratioDuring).toBe(1)
    expect(down?.longestGapMs).toBe(1000)
    expect(s.faults[0]?.gateway).toEqual({ affected: 2, resumed: 2, maxMs: 205, medianMs: 105 })
  })

  it('measures time to resume from when the fault took effect, if the runner says', () => {
    const faults = faultEvents(brokerTimeline).map((e) => ({ kind: e.kind, plannedS: e.atS, at: e.atS * 1000 + 50 }))
    const s = summarizeMode(brokerTimeline, observe('broker', readings(brokerArrivals), { faults }))
    expect(s.faults[0]).toMatchObject({ atS: 2.05, gateway: { maxMs: 3750, medianMs: 3550 } })
    expect(s.faults[1]).toMatchObject({ atS: 5.05, gateway: { maxMs: 750, medianMs: 550 } })
  })

  it('a device that never delivers again has not resumed: the figure is null, not a time', () => {
    const list = readings((o, t) => (o === 'b' && t >= 2000 ? undefined : brokerArrivals(o, t)))
    const s = summarizeMode(brokerTimeline, observe('broker', list))
    expect(s.faults[1]?.gateway).toEqual({ affected: 2, resumed: 1, maxMs: null, medianMs: 600 })
    expect(s.phases[1]?.lostForGood).toBe(3)
    expect(s.phases[2]?.lostForGood).toBe(2)
    // b is silent from its last arrival (1.21 s) to the end of the timeline.
    expect(s.gaps).toEqual([{ index: 0, origin: 'a', longestGapMs: 4490 }, { index: 1, origin: 'b', longestGapMs: 7000 - 1210 }])
  })

  it('lost for good: never arrived, sequence holes within one lifetime, but not the jump across a restart', () => {
    const t = planFailover({ seed: 1, devices: 3, steadyS: 2, brokerDownS: 0, crashCount: 1, crashS: 2, partitionS: 0, gapS: 2, drainS: 1 })
    expect(t.phases.map((p) => p.name)).toEqual(['steady', 'crashed', 'restarted'])
    const crashed = faultEvents(t)[0]?.devices?.[0] as number
    const devices = ['d0', 'd1', 'd2']
    const [victim, x, y] = [crashed, (crashed + 1) % 3, (crashed + 2) % 3].map((i) => devices[i] as string) as [string, string, string]
    const list: ReadingObservation[] = []
    const push = (origin: string, seq: number, publishedAt: number, arrives = true): void => {
      list.push({ origin, seq, publishedAt, receivedAt: arrives ? { gateway: publishedAt + 10 } : {} })
    }
    // The victim: seq 1, 2 before the crash (2 s), then 1003, 1004 after its restart (4 s): a reserved block skipped.
    push(victim, 1, 100); push(victim, 2, 1100); push(victim, 1003, 4100); push(victim, 1004, 5100)
    // x: seq 4 (3.1 s) never reported, seq 6 (5.1 s) never arrives.
    for (const seq of [1, 2, 3, 5]) push(x, seq, 100 + (seq - 1) * 1000)
    push(x, 6, 5100, false)
    for (let seq = 1; seq <= 6; seq++) push(y, seq, 100 + (seq - 1) * 1000)
    const s = summarizeMode(t, { mode: 'mesh', devices, t0: 0, endedAt: 7000, readings: list })
    expect(s.phases.map((p) => p.lostForGood)).toEqual([0, 1, 1])
    expect(s.total.lostForGood).toBe(2)
    expect(s.sequenceHoles).toBe(1)
    expect(s.faults.map((f) => [f.kind, f.gateway.maxMs])).toEqual([['crash', 2110], ['restart', 110]])
  })

  it('duplicates delivered are added up per phase; repeated reports are merged', () => {
    const list = readings((_o, t) => t + 5)
    ;(list[0] as ReadingObservation).duplicatesAtGateway = 2
    ;(list[1] as ReadingObservation).duplicatesAtGateway = 1
    ;(list[3] as ReadingObservation).duplicatesAtGateway = 4
    list.push({ origin: 'a', seq: 1, publishedAt: 100, receivedAt: { gateway: 104 }, duplicatesAtGateway: 1 })
    const s = summarizeMode(brokerTimeline, observe('hybrid', list))
    expect(s.phases.map((p) => p.duplicates)).toEqual([2 + 1 + 1, 4, 0])
    expect(s.total.duplicates).toBe(8)
    expect(s.readings).toBe(14)
    expect(mergeReadings([
      { origin: 'a', seq: 1, publishedAt: 100, receivedAt: { gateway: 150 }, duplicatesAtGateway: 1 },
      { origin: 'a', seq: 1, publishedAt: 120, receivedAt: { gateway: 140, peer: 160 } },
      { origin: 'b', seq: 1, publishedAt: 120 }
    ])).toEqual([
      { origin: 'a', seq: 1, publishedAt: 100, receivedAt: { gateway: 140, peer: 160 }, duplicatesAtGateway: 1 },
      { origin: 'b', seq: 1, publishedAt: 120, receivedAt: {} }
    ])
  })

  it('delivery over time: published and first arrivals per second of timeline', () => {
    const s = summarizeMode(brokerTimeline, observe('broker', readings(brokerArrivals)))
    expect(s.series.published).toEqual([2, 2, 2, 2, 2, 2, 2, 0])
    expect(s.series.gateway).toEqual([2, 2, 0, 0, 0, 8, 2, 0])
    expect(s.series.peer).toBeNull()
  })

  it('the peer subscriber\'s own readings are left out of its figures', () => {
    const list = readings((_o, t) => t + 5).map((r) => ({ ...r, receivedAt: { ...r.receivedAt, ...(r.origin === 'a' ? { peer: r.publishedAt + 7 } : {}) } }))
    const s = summarizeMode(brokerTimeline, observe('mesh', list, { peer: 'b' }))
    expect(s.total.peer).toEqual({ delivered: 7, deliveredDuring: 7, ratio: 1, ratioDuring: 1, deliveredOnTime: 7, ratioOnTime: 1 })
    expect(s.latency.peer).toMatchObject({ count: 7, p50: 7 })
    expect(s.faults[0]?.peer).toMatchObject({ affected: 1, resumed: 1 })
    expect(s.series.peer?.reduce((a, b) => a + b, 0)).toBe(7)
  })

  it('refuses observations that do not fit the timeline', () => {
    const refuse = (obs: ModeObservations): void => {
      let caught: unknown
      try { summarizeMode(brokerTimeline, obs) } catch (err) { caught = err }
      expect(isMeshError(caught, 'ERR_BAD_ARGUMENT')).toBe(true)
    }
    refuse(observe('broker', [], { devices: ['a'] }))
    refuse(observe('broker', [], { faults: [{ kind: 'broker-stop', plannedS: 2, at: 2000 }] }))
    refuse(observe('broker', [], { faults: [{ kind: 'crash', plannedS: 2, at: 2000 }, { kind: 'broker-start', plannedS: 5, at: 5000 }] }))
  })

  it('an empty phase has null ratios, never 0', () => {
    const s = summarizeMode(brokerTimeline, observe('mesh', []))
    expect(s.phases[0]?.gateway).toEqual({ delivered: 0, deliveredDuring: 0, ratio: null, ratioDuring: null, deliveredOnTime: 0, ratioOnTime: null })
    expect(s.phases[0]?.latencyMs.gateway).toBeNull()
    expect(s.faults[0]?.gateway).toEqual({ affected: 2, resumed: 0, maxMs: null, medianMs: null })
  })
})

describe('order statistics', () => {
  it('nearest-rank percentiles of 1..100', () => {
    const values = Array.from({ length: 100 }, (_, i) => 100 - i)
    expect(percentiles(values)).toEqual({ count: 100, min: 1, p50: 50, p95: 95, p99: 99, max: 100, mean: 50.5 })
    const d = distribution(values)
    expect(d?.quantiles).toHaveLength(101)
    expect([d?.quantiles[0], d?.quantiles[1], d?.quantiles[50], d?.quantiles[100]]).toEqual([1, 1, 50, 100])
    expect(percentiles([7])).toMatchObject({ p50: 7, p99: 7, min: 7, max: 7 })
    expect(percentiles([])).toBeNull()
  })

  it('latency per path counts lost probes and interleaved rounds', () => {
    const [one, broker] = summarizeLatency([
      { path: 'one-hop', round: 0, latencyMs: 1 }, { path: 'broker', round: 0, latencyMs: 3 },
      { path: 'one-hop', round: 1, latencyMs: 2 }, { path: 'broker', round: 1 }
    ], ['one-hop', 'broker'])
    expect(one).toMatchObject({ path: 'one-hop', sent: 2, received: 2, rounds: 2, latencyMs: { p50: 1, max: 2 } })
    expect(broker).toMatchObject({ path: 'broker', sent: 2, received: 1, latencyMs: { count: 1, p50: 3 } })
  })

  it('scale: per-device rates from sampled counters', () => {
    const point = summarizeScale({
      mode: 'mesh', devices: 4, t0: 0, endedAt: 10_000,
      readings: [{ origin: 'a', seq: 1, publishedAt: 100, receivedAt: { gateway: 110 } }, { origin: 'a', seq: 2, publishedAt: 1100 }],
      samples: [
        { at: 0, role: 'devices', cpuMs: 0, rssBytes: 4e8, bytesIn: 0, bytesOut: 0, framesIn: 0, framesOut: 0 },
        { at: 10_000, role: 'devices', cpuMs: 2000, rssBytes: 6e8, bytesIn: 30_000, bytesOut: 50_000, framesIn: 200, framesOut: 200 }
      ]
    })
    // 80,000 bytes in 10 s over 4 devices; 2 s of CPU in 10 s is 20 % of a core, 5 % each; mean RSS 5e8 / 4.
    expect(point.perDevice).toEqual({ cpuPercent: 5, rssBytes: 125_000_000, bytesPerS: 2000, framesPerS: 10 })
    expect(point.broker).toBeNull()
    expect(point.delivery).toBe(0.5)
    expect(point.latencyMs?.p50).toBe(10)
  })
})
