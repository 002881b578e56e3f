import type { Mode } from '../observations.js'
import type { Check, FailoverParameters, ModeSummary, PairedDifference, PathSummary, PhaseSummary, ScalePoint } from './types.js'
import type { PhaseName } from '../plan/timeline.js'

/**
 * The expected shape of each experiment, stated as checks and evaluated against the figures.
 * A check is judged on the data of this run alone; when the run left out what a check needs
 * (a mode, a phase, a receiver) it is `not-run`, never a pass. Two kinds of failover check:
 *
 * - A share against a threshold inside (0, 1), or a comparison of two modes, is a hypothesis judged
 *   on a 95 % interval: it holds when the interval lies on the right side of the bound, fails when
 *   it lies on the wrong side, and is `undecided` when it straddles it (too few readings to tell;
 *   the report prints the interval). One late reading moves an interval a little, not the verdict.
 * - A claim of all or none ("nothing while the broker is down", "every reading in the end", "nothing
 *   lost", "no duplicates") is judged on the count: one counterexample refutes it, and no interval
 *   can confirm it (Wilson's lower bound of 36 of 36 is 90.4 %, never 100 %), so the check says what
 *   this run saw and, for a share, gives the interval of what it rules out.
 */

export function percent (r: number | null): string {
  return r === null ? 'n/a' : `${(r * 100).toFixed(1)} %`
}

export function seconds (ms: number | null): string {
  return ms === null ? 'n/a' : `${(ms / 1000).toFixed(1)} s`
}

function check (id: string, statement: string, results: Array<{ ok: boolean, observed: string }>): Check {
  if (results.length === 0) return { id, statement, status: 'not-run', observed: 'not in this run' }
  return { id, statement, status: results.every((r) => r.ok) ? 'pass' : 'fail', observed: results.map((r) => r.observed).join('; ') }
}

/** Wilson's score interval for x successes of n (z = 1.96: 95 %). */
export function wilson (x: number, n: number, z = 1.96): [number, number] {
  if (n === 0) return [0, 1]
  const p = x / n
  const centre = (p + z * z / (2 * n)) / (1 + z * z / n)
  const half = z * Math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
  return [Math.max(0, centre - half), Math.min(1, centre + half)]
}

/**
 * The 95 % interval of p1 − p2 for two independent proportions, by Newcombe's hybrid score method
 * (Newcombe 1998, "Interval estimation for the difference between independent proportions",
 * method 10): Wilson intervals combined, well behaved at 0 % and 100 % where the Wald interval is not.
 */
export function differenceInterval (x1: number, n1: number, x2: number, n2: number): [number, number] {
  const p1 = n1 === 0 ? 0 : x1 / n1
  const p2 = n2 === 0 ? 0 : x2 / n2
  const [l1, u1] = wilson(x1, n1)
  const [l2, u2] = wilson(x2, n2)
  const d = p1 - p2
  return [d - Math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + Math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)]
}

/** Fail, then undecided, then pass: the verdict of several judgements together. */
export function worst (verdicts: ReadonlyArray<Check['status']>): Check['status'] {
  return verdicts.includes('fail') ? 'fail' : verdicts.includes('undecided') ? 'undecided' : 'pass'
}

/** A share's 95 % Wilson interval, "[90.4, 100.0] %". */
function shareInterval (x: number, n: number): string {
  const [lo, hi] = wilson(x, n)
  return `[${(lo * 100).toFixed(1)}, ${(hi * 100).toFixed(1)}] %`
}

/**
 * The fewest readings, all delivered, whose Wilson interval lies at or above `threshold`: the lower bound of n of n
 * is n / (n + z²), so n ≥ θz² / (1 − θ) (381 for 99 %). A run with fewer cannot show the share, only refute it.
 */
export function readingsToShow (threshold: number, z = 1.96): number {
  return Math.ceil(threshold * z * z / (1 - threshold) - 1e-9)
}

/**
 * Mesh and hybrid keep delivering while the broker is down, as a hypothesis per mode: the share of the
 * phase's readings that arrived on time (within the gap tolerance of their publication, wherever the phase
 * ended) is at least 99 %, on its 95 % Wilson interval, and no device was silent at the gateway longer than the
 * tolerance. A reading published in the phase's last moments that arrives a moment after the phase is on time;
 * "before the phase ended" flipped the check on one such reading of 36. Below 381 readings an interval cannot
 * lie above 99 %: a --quick run is undecided unless it shows a real loss (the interval below 99 %).
 */
function meshKeepsDelivering (modes: readonly ModeSummary[], toleranceS: number): Check {
  const id = 'mesh-keeps-delivering'
  const statement = `mesh and hybrid keep delivering while the broker is down: ≥ 99 % of the phase's readings on time (within ${toleranceS.toFixed(1)} s of publication; 95 % Wilson interval), no silence over ${toleranceS.toFixed(1)} s`
  const judged = (['mesh', 'hybrid'] as const).flatMap((m) => {
    const p = phaseOf(modes, m, 'broker-down')
    const onTime = p?.gateway.deliveredOnTime
    if (p === undefined || onTime === undefined) return []
    const [lo, hi] = wilson(onTime, p.published)
    const silent = p.longestGapMs === null || p.longestGapMs > toleranceS * 1000
    const verdict: Check['status'] = silent || hi < 0.99 ? 'fail' : lo >= 0.99 ? 'pass' : 'undecided'
    const short = verdict === 'undecided' ? `; ≥ 99 % needs ≥ ${readingsToShow(0.99)} readings, all on time` : ''
    return [{ verdict, observed: `${m}: ${onTime} of ${p.published} on time, ${percent(p.gateway.ratioOnTime ?? null)} ${shareInterval(onTime, p.published)}, longest gap ${seconds(p.longestGapMs)} (${verdict}${short})` }]
  })
  if (judged.length === 0) return { id, statement, status: 'not-run', observed: 'not in this run' }
  return { id, statement, status: worst(judged.map((j) => j.verdict)), observed: judged.map((j) => j.observed).join('; ') }
}

/**
 * Hybrid delivers at least as much as broker-only in every phase, within one point, as a
 * hypothesis: per phase, the 95 % interval of (hybrid − broker) delivered on time (within the gap
 * tolerance of publication). It holds where the interval lies above −1 point, fails where it lies
 * below, and is undecided where it straddles −1 point: too few readings to tell a one-point
 * difference (the report gives the interval, so the smallest difference the run could show). One late
 * reading of 36 used to fail it.
 */
function hybridAtLeastBroker (modes: readonly ModeSummary[]): Check {
  const id = 'hybrid-at-least-broker'
  const statement = 'hybrid delivers at least as much as broker-only on time in every phase (within 1 point; 95 % interval of the difference, Newcombe)'
  const hybrid = modes.find((m) => m.mode === 'hybrid')
  if (hybrid === undefined || !modes.some((m) => m.mode === 'broker')) return { id, statement, status: 'not-run', observed: 'not in this run' }
  const verdicts = hybrid.phases.flatMap((p) => {
    const b = phaseOf(modes, 'broker', p.name as PhaseName)
    const [xh, xb] = [p.gateway.deliveredOnTime, b?.gateway.deliveredOnTime]
    if (b === undefined || p.published === 0 || xh === undefined || xb === undefined) return []
    const [lo, hi] = differenceInterval(xh, p.published, xb, b.published)
    const verdict: Check['status'] = lo >= -0.01 ? 'pass' : hi < -0.01 ? 'fail' : 'undecided'
    const pts = (x: number): string => { const v = Math.round(x * 1000) / 10 || 0; return `${v >= 0 ? '+' : ''}${v.toFixed(1)}` } // never "-0.0"
    return [{ verdict, observed: `${p.name}: hybrid ${percent(p.gateway.ratioOnTime ?? null)} of ${p.published}, broker ${percent(b.gateway.ratioOnTime ?? null)} of ${b.published}, difference [${pts(lo)}, ${pts(hi)}] points` }]
  })
  if (verdicts.length === 0) return { id, statement, status: 'not-run', observed: 'no phase in both modes' }
  return { id, statement, status: worst(verdicts.map((v) => v.verdict)), observed: verdicts.map((v) => `${v.observed} (${v.verdict})`).join('; ') }
}

function phaseOf (modes: readonly ModeSummary[], mode: Mode, name: PhaseName): PhaseSummary | undefined {
  const phase = modes.find((m) => m.mode === mode)?.phases.find((p) => p.name === name)
  return phase !== undefined && phase.published > 0 ? phase : undefined
}

function each<T> (modes: readonly Mode[], pick: (mode: Mode) => T | undefined, judge: (value: T, mode: Mode) => { ok: boolean, observed: string }): Array<{ ok: boolean, observed: string }> {
  return modes.flatMap((mode) => {
    const value = pick(mode)
    return value === undefined ? [] : [judge(value, mode)]
  })
}

/** The failover experiment's checks, judged on one run's figures. */
export function failoverChecks (modes: readonly ModeSummary[], parameters: Pick<FailoverParameters, 'gapToleranceS'>): Check[] {
  const tolerance = parameters.gapToleranceS
  const all: Mode[] = ['broker', 'mesh', 'hybrid']
  const meshy: Mode[] = ['mesh', 'hybrid']
  const phase = (name: PhaseName) => (mode: Mode) => phaseOf(modes, mode, name)
  const summary = (mode: Mode): ModeSummary | undefined => modes.find((m) => m.mode === mode)
  return [
    check('broker-silent-while-down', 'broker-only delivers nothing while the broker is down',
      each(['broker'], phase('broker-down'), (p, m) => ({
        ok: p.gateway.deliveredDuring === 0,
        observed: `${m}: ${p.gateway.deliveredDuring} of ${p.published} readings delivered before broker-down ended, ${shareInterval(p.gateway.deliveredDuring, p.published)}`
      }))),
    check('broker-catches-up', 'broker-only delivers the readings of the outage once the broker is back',
      each(['broker'], phase('broker-down'), (p, m) => ({
        ok: p.gateway.delivered === p.published,
        observed: `${m}: ${p.gateway.delivered} of ${p.published} broker-down readings arrived in the end, ${shareInterval(p.gateway.delivered, p.published)}`
      }))),
    meshKeepsDelivering(modes, tolerance),
    check('nothing-lost', 'nothing is lost for good in any mode',
      each(all, summary, (s, m) => ({ ok: s.total.lostForGood === 0, observed: `${m}: ${s.total.lostForGood} lost of ${s.total.published}` }))),
    check('no-duplicates', 'the gateway delivers each reading once (no duplicates), in every mode',
      each(all, summary, (s, m) => ({ ok: s.total.duplicates === 0, observed: `${m}: ${s.total.duplicates} duplicates` }))),
    check('crashed-devices-resume', 'crashed devices deliver again after their restart, in every mode',
      each(all, (m) => summary(m)?.faults.find((f) => f.kind === 'restart'), (f, m) => ({
        ok: f.gateway.maxMs !== null,
        observed: `${m}: ${f.gateway.resumed}/${f.gateway.affected} resumed, the slowest after ${seconds(f.gateway.maxMs)}`
      }))),
    check('partition-caught-up', 'mesh and hybrid: the readings published during the partition reach the gateway once it heals',
      each(meshy, phase('partitioned'), (p, m) => ({
        ok: p.gateway.delivered === p.published,
        observed: `${m}: ${p.gateway.delivered} of ${p.published} of the partition's readings arrived, ${shareInterval(p.gateway.delivered, p.published)}`
      }))),
    hybridAtLeastBroker(modes)
  ]
}

/** The scale experiment's checks, judged per fleet size and never across a change of transport. */
export function scaleChecks (points: readonly ScalePoint[]): Check[] {
  const byMode = (mode: Mode): ScalePoint[] => points.filter((p) => p.mode === mode).sort((a, b) => a.devices - b.devices)
  // Growth is measured within one transport: the largest fleets measured with the transport of the smallest (a
  // change of transport is a change of method, and a trend across it is an artefact: 2,049 → 1,207 B/s at one switch).
  const growth = (mode: Mode): { from: ScalePoint, to: ScalePoint, factor: number } | undefined => {
    const measured = byMode(mode).filter((p) => p.perDevice !== null && p.perDevice.bytesPerS > 0)
    const list = measured.filter((p) => p.transport === measured[0]?.transport)
    const from = list[0]
    const to = list.at(-1)
    if (from === undefined || to === undefined || from === to) return undefined
    return { from, to, factor: (to.perDevice?.bytesPerS as number) / (from.perDevice?.bytesPerS as number) }
  }
  return [
    deliveryAtScale(points),
    check('mesh-per-node-sublinear', 'mesh per-node traffic grows more slowly than the fleet',
      each(['mesh'], growth, (g) => {
        const fleet = g.to.devices / g.from.devices
        const over = g.from.transport === undefined ? '' : `, ${g.from.transport === 'tcp' ? 'TCP' : 'in-memory'} links only`
        return { ok: g.factor < fleet, observed: `×${g.factor.toFixed(2)} from ${g.from.devices} to ${g.to.devices} devices (fleet ×${fleet.toFixed(1)}, log N ×${(Math.log(g.to.devices) / Math.log(g.from.devices)).toFixed(2)}${over})` }
      })),
    check('broker-per-device-flat', 'broker-mode per-device traffic stays flat as the fleet grows (within ×1.5)',
      each(['broker'], growth, (g) => ({ ok: g.factor <= 1.5, observed: `×${g.factor.toFixed(2)} from ${g.from.devices} to ${g.to.devices} devices` })))
  ]
}

/** Readings of a scale point that reached the gateway: recorded, or (reports written before) recovered from the share. */
export function scaleDelivered (p: ScalePoint): number {
  return p.delivered ?? Math.round((p.delivery ?? 0) * p.readings)
}

/**
 * Every fleet size delivers ≥ 99 %, as a hypothesis per point on its 95 % Wilson interval: a point holds when
 * the interval lies at or above 99 %, fails when it lies below, and is undecided when it straddles 99 % (a
 * small fleet's window has too few readings: with none lost it needs 381). The check is the worst point's.
 */
function deliveryAtScale (points: readonly ScalePoint[]): Check {
  const id = 'scale-delivery'
  const statement = 'every fleet size delivers ≥ 99 % of its readings to the gateway, in every mode (95 % Wilson interval per fleet)'
  if (points.length === 0) return { id, statement, status: 'not-run', observed: 'not in this run' }
  const judged = points.map((p) => {
    const x = scaleDelivered(p)
    const [lo, hi] = wilson(x, p.readings)
    const verdict: Check['status'] = p.readings === 0 || hi < 0.99 ? 'fail' : lo >= 0.99 ? 'pass' : 'undecided'
    return { p, x, verdict }
  })
  const status = worst(judged.map((j) => j.verdict))
  const listed = status === 'pass' ? judged : judged.filter((j) => j.verdict !== 'pass')
  const held = judged.filter((j) => j.verdict === 'pass').length
  const observed = listed.map((j) => `${j.p.mode} with ${j.p.devices} devices: ${j.x} of ${j.p.readings}, ${shareInterval(j.x, j.p.readings)} (${j.verdict}${j.verdict === 'undecided' ? `; ≥ 99 % needs ≥ ${readingsToShow(0.99)} readings, all delivered` : ''})`)
  return { id, statement, status, observed: `${held} of ${judged.length} fleets hold; ${observed.join('; ')}` }
}

/**
 * Latency, as hypotheses on paired rounds where the run recorded them: "a is faster than b" holds when the
 * 95 % interval of the median of (a − b), round by round, lies below 0, fails when it lies above, and is
 * undecided when it holds 0 (the report prints the interval). Rounds interleave the paths, so a pair
 * shares the machine's moment; medians of the two paths apart would compare different moments. A run
 * saved without the pairs is judged on the two medians, as before.
 */
export function latencyChecks (paths: readonly PathSummary[], differences?: readonly PairedDifference[]): Check[] {
  const p50 = (path: PathSummary['path']): number | undefined => paths.find((p) => p.path === path)?.latencyMs?.p50
  const compare = (id: string, statement: string, a: PathSummary['path'], b: PathSummary['path']): Check => {
    const x = p50(a)
    const y = p50(b)
    const pair = differences?.find((d) => d.a === a && d.b === b)
    if (pair === undefined) return check(id, `${statement} (median)`, x === undefined || y === undefined ? [] : [{ ok: x < y, observed: `p50 ${a} ${x.toFixed(2)} ms, ${b} ${y.toFixed(2)} ms` }])
    const full = `${statement} (median of the round-by-round difference, 95 % order-statistic interval)`
    if (pair.medianMs === null || pair.ci95 === null) return { id, statement: full, status: 'not-run', observed: `${pair.rounds} rounds with both probes: too few for an interval` }
    const [lo, hi] = pair.ci95
    const status: Check['status'] = hi < 0 ? 'pass' : lo > 0 ? 'fail' : 'undecided'
    const medians = x === undefined || y === undefined ? '' : `; p50 ${a} ${x.toFixed(2)} ms, ${b} ${y.toFixed(2)} ms`
    return {
      id,
      statement: full,
      status,
      observed: `${a} − ${b}: median ${signedMs(pair.medianMs)} [${signedMs(lo)}, ${signedMs(hi)}] over ${pair.rounds} rounds, ${a} faster in ${pair.aFaster}${medians}`
    }
  }
  return [
    compare('one-hop-beats-broker', 'one mesh hop is faster than the broker path', 'one-hop', 'broker'),
    compare('hops-cost', 'three mesh hops take longer than one', 'one-hop', 'three-hop'),
    check('all-probes-arrived', 'every probe arrived, on every path',
      paths.filter((p) => p.sent > 0).map((p) => ({ ok: p.received === p.sent, observed: `${p.path}: ${p.received}/${p.sent}` })))
  ]
}

function signedMs (v: number): string {
  const r = Math.round(v * 100) / 100 || 0 // never "-0.00"
  return `${r > 0 ? '+' : ''}${r.toFixed(2)} ms`
}
