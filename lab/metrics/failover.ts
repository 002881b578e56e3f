import { meshError } from '../../shared/index.js'
import type { AppliedFault, ModeObservations, ReadingObservation, Receiver } from '../observations.js'
import { summarizeResources } from './resources.js'
import { combineResumes, concernedDevices, resumeAfter } from './resume.js'
import type { DeliverySeries, DeviceGap, FaultOutcome, ModeSummary, PhaseSummary, TargetDelivery } from '../results/types.js'
import { distribution, median, percentiles, ratio, round } from './stats.js'
import { faultEvents, type TimelineFault, type Timeline } from '../plan/timeline.js'

/**
 * The failover figures of one mode, as pure functions of its observations (observations.ts)
 * and the timeline. Definitions, with times in ms on the run clock and t0 = timeline second 0:
 *
 * - A reading belongs to the phase in which it was published: [t0 + startS·1000, t0 + endS·1000).
 *   Readings published before 0 or from the end of the last phase on belong to no phase.
 * - Delivery ratio (per receiver): readings of the phase that reached the receiver by the end of
 *   observation ÷ readings published in the phase. "During" counts only those that arrived
 *   before the phase ended (what "nothing while the broker is down" needs). "On time" counts those
 *   that arrived within `onTimeMs` (the gap tolerance) of their publication, wherever the phase
 *   ended: a reading published in the phase's last moments can be on time but not "during", so
 *   the checks of delivery in a phase use "on time". The peer subscriber's own readings are left
 *   out of its figures.
 * - Longest gap: see `longestGaps`. Time to resume: see `resumeAfter` (metrics/resume.ts).
 * - Lost for good: readings of the phase that never reached the gateway, plus sequence holes
 *   (numbers missing from a device's reports between two it reported, within one lifetime of
 *   the device: a hole that spans a restart is the sequence store's reserved block, not a loss;
 *   numbers spent on other frames, `obs.otherFrames`, are not missing), each hole counted in the
 *   phase of the reading before it.
 * - Duplicates: copies delivered to the gateway's application after the first.
 * - Latency: first arrival − publication, for the readings of the phase that arrived.
 */

interface Context {
  timeline: Timeline
  /** A reading that arrived within this long of its publication is on time. */
  onTimeMs: number
  obs: ModeObservations
  readings: ReadingObservation[]
  byOrigin: Map<string, ReadingObservation[]>
  /** Absolute ms of each fault event, index-aligned with faultEvents(timeline). */
  faultAt: number[]
  /** Per origin, the absolute times at which the device was restarted. */
  restarts: Map<string, number[]>
  abs: (s: number) => number
}

/** `onTimeMs`: the gap tolerance, in ms (default 3 s: 3 readings at the default 1 s interval). */
export function summarizeMode (timeline: Timeline, obs: ModeObservations, options: { onTimeMs?: number } = {}): ModeSummary {
  const ctx = context(timeline, obs, options.onTimeMs ?? 3000)
  const events = faultEvents(timeline)
  const outcomes = events.map((event, i) => faultOutcome(ctx, event, ctx.faultAt[i] as number))
  const holes = sequenceHoles(ctx)
  const phases = timeline.phases.map((phase) => {
    const within = events.map((e, i) => ({ e, i })).filter(({ e }) => e.atS === phase.startS).map(({ i }) => outcomes[i] as FaultOutcome)
    return phaseSummary(ctx, phase.name, phase.startS, phase.endS, holes, within)
  })
  const total = phaseSummary(ctx, 'all', 0, timeline.endS, holes, [])
  const inTimeline = ctx.readings.filter((r) => r.publishedAt >= ctx.abs(0) && r.publishedAt < ctx.abs(timeline.endS))
  return {
    mode: obs.mode,
    devices: obs.devices.length,
    readings: inTimeline.length,
    sequenceHoles: holes.reduce((a, h) => a + (h.at >= ctx.abs(0) && h.at < ctx.abs(timeline.endS) ? h.count : 0), 0),
    durationS: round((obs.endedAt - obs.t0) / 1000, 3),
    phases,
    total,
    faults: outcomes,
    gaps: deviceGaps(ctx),
    series: deliverySeries(ctx),
    latency: {
      gateway: distribution(latencies(inTimeline, 'gateway')),
      peer: obs.peer === undefined ? null : distribution(latencies(inTimeline.filter((r) => r.origin !== obs.peer), 'peer'))
    },
    resources: summarizeResources(obs.samples ?? [], obs.t0, obs.endedAt)
  }
}

/**
 * Repeated (origin, seq) entries merged: the earliest publication, the earliest arrival at each
 * receiver, the duplicates added up.
 */
export function mergeReadings (readings: readonly ReadingObservation[]): ReadingObservation[] {
  const byKey = new Map<string, ReadingObservation>()
  for (const r of readings) {
    const key = `${r.origin}\u0000${r.seq}`
    const known = byKey.get(key)
    if (known === undefined) { byKey.set(key, { ...r, receivedAt: { ...r.receivedAt } }); continue }
    known.publishedAt = Math.min(known.publishedAt, r.publishedAt)
    for (const target of ['gateway', 'peer'] as const) {
      const a = known.receivedAt?.[target]
      const b = r.receivedAt?.[target]
      const first = a === undefined ? b : b === undefined ? a : Math.min(a, b)
      if (first !== undefined) known.receivedAt = { ...known.receivedAt, [target]: first }
    }
    const dup = (known.duplicatesAtGateway ?? 0) + (r.duplicatesAtGateway ?? 0)
    if (dup > 0) known.duplicatesAtGateway = dup
  }
  return [...byKey.values()]
}

function context (timeline: Timeline, obs: ModeObservations, onTimeMs: number): Context {
  if (obs.devices.length !== timeline.params.devices) {
    throw meshError('ERR_BAD_ARGUMENT', `observations of ${obs.mode}: ${obs.devices.length} devices, the timeline planned ${timeline.params.devices}`)
  }
  const abs = (s: number): number => obs.t0 + s * 1000
  const events = faultEvents(timeline)
  if (obs.faults !== undefined && obs.faults.length !== events.length) {
    throw meshError('ERR_BAD_ARGUMENT', `observations of ${obs.mode}: ${obs.faults.length} applied faults, the timeline plans ${events.length}; report every planned event, in order`)
  }
  const faultAt = events.map((e, i) => appliedAt(obs, e, i, abs))
  const readings = mergeReadings(obs.readings)
  const byOrigin = new Map<string, ReadingObservation[]>(obs.devices.map((d) => [d, []]))
  for (const r of readings) {
    let list = byOrigin.get(r.origin)
    if (list === undefined) { list = []; byOrigin.set(r.origin, list) }
    list.push(r)
  }
  for (const list of byOrigin.values()) list.sort((a, b) => a.seq - b.seq)
  const restarts = new Map<string, number[]>()
  events.forEach((e, i) => {
    if (e.kind !== 'restart') return
    for (const d of e.devices ?? []) {
      const origin = obs.devices[d] as string
      restarts.set(origin, [...(restarts.get(origin) ?? []), faultAt[i] as number])
    }
  })
  return { timeline, onTimeMs, obs, readings, byOrigin, faultAt, restarts, abs }
}

function appliedAt (obs: ModeObservations, event: TimelineFault, index: number, abs: (s: number) => number): number {
  if (obs.faults === undefined) return abs(event.atS)
  const applied: AppliedFault | undefined = obs.faults[index]
  if (applied === undefined || applied.kind !== event.kind || applied.plannedS !== event.atS) {
    throw meshError('ERR_BAD_ARGUMENT', `observations of ${obs.mode}: applied fault ${index} should be ${event.kind} planned at ${event.atS} s, got ${JSON.stringify(applied ?? null)}`)
  }
  return applied.at
}

function inWindow (t: number | undefined, from: number, to: number): boolean {
  return t !== undefined && t >= from && t < to
}

function targetDelivery (readings: ReadingObservation[], target: Receiver, phaseEnd: number, onTimeMs: number): TargetDelivery {
  const arrived = readings.filter((r) => r.receivedAt?.[target] !== undefined)
  const during = arrived.filter((r) => (r.receivedAt?.[target] as number) < phaseEnd)
  const onTime = arrived.filter((r) => (r.receivedAt?.[target] as number) - r.publishedAt <= onTimeMs)
  return {
    delivered: arrived.length,
    deliveredDuring: during.length,
    ratio: ratio(arrived.length, readings.length),
    ratioDuring: ratio(during.length, readings.length),
    deliveredOnTime: onTime.length,
    ratioOnTime: ratio(onTime.length, readings.length)
  }
}

function latencies (readings: ReadingObservation[], target: Receiver): number[] {
  const out: number[] = []
  for (const r of readings) {
    const at = r.receivedAt?.[target]
    if (at !== undefined) out.push(at - r.publishedAt)
  }
  return out
}

function phaseSummary (ctx: Context, name: PhaseSummary['name'], startS: number, endS: number, holes: Hole[], outcomes: FaultOutcome[]): PhaseSummary {
  const from = ctx.abs(startS)
  const to = ctx.abs(endS)
  const published = ctx.readings.filter((r) => inWindow(r.publishedAt, from, to))
  const peer = ctx.obs.peer
  const forPeer = published.filter((r) => r.origin !== peer)
  const gaps = longestGaps(ctx, from, to)
  const worst = gaps.reduce<DeviceGapMs | undefined>((w, g) => (w === undefined || g.ms > w.ms ? g : w), undefined)
  const neverArrived = published.filter((r) => r.receivedAt?.gateway === undefined).length
  const holeCount = holes.filter((h) => inWindow(h.at, from, to)).reduce((a, h) => a + h.count, 0)
  return {
    name,
    startS,
    endS,
    published: published.length,
    gateway: targetDelivery(published, 'gateway', to, ctx.onTimeMs),
    peer: peer === undefined ? null : targetDelivery(forPeer, 'peer', to, ctx.onTimeMs),
    longestGapMs: worst === undefined ? null : round(worst.ms),
    longestGapOrigin: worst?.origin ?? null,
    medianGapMs: gaps.length === 0 ? null : round(median(gaps.map((g) => g.ms)) as number),
    lostForGood: neverArrived + holeCount,
    duplicates: published.reduce((a, r) => a + (r.duplicatesAtGateway ?? 0), 0),
    resume: outcomes.length === 0 ? null : combineResumes(outcomes.map((o) => o.gateway)),
    latencyMs: {
      gateway: percentiles(latencies(published, 'gateway')),
      peer: peer === undefined ? null : percentiles(latencies(forPeer, 'peer'))
    }
  }
}

interface DeviceGapMs { origin: string, ms: number }

/**
 * Longest gap: for each device, the times at which the gateway first received each of its
 * readings, in order of arrival, bracketed by t0 and the end of observation. A gap is the time
 * between two consecutive arrivals; the gap of a device in a window [from, to) is the longest
 * part of a gap that lies inside the window: the longest time within the window during which
 * the gateway heard nothing from the device. (A silence that spans two phases shows in each, cut
 * at the boundary.) Arrivals before t0 or after the end of observation are ignored.
 */
export function longestGaps (ctx: Pick<Context, 'obs' | 'byOrigin'>, from: number, to: number): DeviceGapMs[] {
  const { t0, endedAt } = ctx.obs
  return ctx.obs.devices.map((origin) => {
    const arrivals = (ctx.byOrigin.get(origin) ?? [])
      .map((r) => r.receivedAt?.gateway)
      .filter((t): t is number => t !== undefined && t >= t0 && t <= endedAt)
      .sort((a, b) => a - b)
    const marks = [t0, ...arrivals, endedAt]
    let ms = 0
    for (let i = 1; i < marks.length; i++) {
      const x = marks[i - 1] as number
      const y = marks[i] as number
      if (x < to && y > from) ms = Math.max(ms, Math.min(y, to) - Math.max(x, from))
    }
    return { origin, ms }
  })
}

function deviceGaps (ctx: Context): DeviceGap[] {
  return longestGaps(ctx, ctx.abs(0), ctx.abs(ctx.timeline.endS)).map((g, index) => ({ index, origin: g.origin, longestGapMs: round(g.ms) }))
}

function faultOutcome (ctx: Context, event: TimelineFault, at: number): FaultOutcome {
  const devices = concernedDevices(ctx.timeline, event)
  const origins = devices.map((d) => ctx.obs.devices[d] as string)
  const readingsOf = (origin: string): ReadingObservation[] => ctx.byOrigin.get(origin) ?? []
  const peer = ctx.obs.peer
  return {
    kind: event.kind,
    plannedS: event.atS,
    atS: round((at - ctx.obs.t0) / 1000, 3),
    devices,
    gateway: resumeAfter(readingsOf, origins, at, 'gateway'),
    peer: peer === undefined ? null : resumeAfter(readingsOf, origins.filter((o) => o !== peer), at, 'peer')
  }
}

interface Hole { origin: string, at: number, count: number }

/** Sequence numbers missing between two consecutive reported readings of a device, within one lifetime. */
function sequenceHoles (ctx: Context): Hole[] {
  const holes: Hole[] = []
  const others = new Map<string, number[]>()
  for (const f of ctx.obs.otherFrames ?? []) others.set(f.origin, [...(others.get(f.origin) ?? []), f.seq])
  for (const [origin, list] of ctx.byOrigin) {
    const restarts = ctx.restarts.get(origin) ?? []
    const spent = others.get(origin) ?? []
    for (let i = 1; i < list.length; i++) {
      const a = list[i - 1] as ReadingObservation
      const b = list[i] as ReadingObservation
      const missing = b.seq - a.seq - 1 - spent.filter((s) => s > a.seq && s < b.seq).length
      if (missing <= 0) continue
      const spansRestart = restarts.some((t) => t > Math.min(a.publishedAt, b.publishedAt) && t <= Math.max(a.publishedAt, b.publishedAt))
      if (!spansRestart) holes.push({ origin, at: a.publishedAt, count: missing })
    }
  }
  return holes
}

function deliverySeries (ctx: Context): DeliverySeries {
  const { obs, timeline } = ctx
  const length = Math.max(Math.ceil(timeline.endS + timeline.params.drainS), Math.ceil((obs.endedAt - obs.t0) / 1000))
  const bucketsOf = (times: Iterable<number | undefined>): number[] => {
    const counts = new Array<number>(length).fill(0)
    for (const t of times) {
      if (t === undefined) continue
      const k = Math.floor((t - obs.t0) / 1000)
      if (k >= 0 && k < length) counts[k] = (counts[k] as number) + 1
    }
    return counts
  }
  return {
    bucketS: 1,
    published: bucketsOf(ctx.readings.map((r) => r.publishedAt)),
    gateway: bucketsOf(ctx.readings.map((r) => r.receivedAt?.gateway)),
    peer: obs.peer === undefined ? null : bucketsOf(ctx.readings.filter((r) => r.origin !== obs.peer).map((r) => r.receivedAt?.peer))
  }
}
