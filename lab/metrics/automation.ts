import { phaseAt, type Phase } from '../plan/timeline.js'
import { percentiles, ratio, round, type Percentiles } from './stats.js'

/**
 * The figures of the automation experiment, from raw observations: when each rule's triggering
 * condition became true (the simulator's ground truth) and when the target device executed a
 * command (its `command` event, the executor's verdict). Pure.
 *
 * Each trigger of a rule owns the executions of that rule's action (action and on/off state) from
 * its own instant (less `toleranceMs`) to the next trigger of the same rule, or to the end of
 * observation (give the triggers of the drain too, so that the last ones of the timeline do not own
 * the drain's executions: those fall in no phase and count nowhere). Its outcome: `on-time` when the first of them came within `deadlineMs` (the
 * command's lifetime), `late` when it came after, `missed` when none came. A trigger followed by
 * two or more executions (two issuers, or a rule fired again on a replayed backlog) counts as
 * executed twice. An execution later than its own command's expiry counts as executed after
 * expiry: a device runs a command up to its clock tolerance (2 s) after its expiry, by design
 * (firmware-sim/commands/executor.ts), and this shows how much of that tolerance was used.
 */

export type AutomationWay = 'device' | 'central' | 'hybrid'
/** The ways of running the rules compared: on the devices, at the gateway, or both. */
export const AUTOMATION_WAYS: readonly AutomationWay[] = ['device', 'central', 'hybrid']

/** A rule's trigger as the world made it: which rule, and when (wall ms). */
export interface TriggerObservation { rule: string, at: number }

/** An actuator's execution of a rule's command (issuer, id, expiry), as the run observed it. */
export interface ExecutionObservation {
  /** The rule whose action this is (by action and resulting on/off state). */
  rule: string
  at: number
  issuer: string
  id: number
  /** The command's expiry, seconds since the epoch. */
  expiresAt: number
}

/** A trigger acted on within the deadline, after it, or never. */
export type TriggerFate = 'on-time' | 'late' | 'missed'

/** What came of one trigger: acted on in time, late, or not at all. */
export interface TriggerOutcome {
  rule: string
  /** Seconds from the timeline's start. */
  atS: number
  phase: string
  outcome: TriggerFate
  /** Trigger to first execution, ms; null when missed. */
  latencyMs: number | null
  executions: number
}

/** One way's figures in one phase of an automation run (or `all`). */
export interface AutomationPhaseSummary {
  name: string
  triggers: number
  onTime: number
  late: number
  missed: number
  /** (late + missed) / triggers; null without triggers. */
  notOnTimeShare: number | null
  twice: number
  /** Executions in the phase (by when they ran), and those of them later than their command's expiry. */
  executions: number
  afterExpiry: number
  /** The latest of those past its command's expiry, ms; null when none was. */
  afterExpiryMaxMs: number | null
  latencyMs: Percentiles | null
}

/** How {@link matchTriggers} matches: the timeline's start, the end of observation and the deadline. */
export interface MatchOptions {
  /** Timeline second 0, wall ms. */
  t0: number
  /** End of observation, wall ms. */
  endAt: number
  deadlineMs: number
  /** An execution this much before its trigger's instant still counts (sampling and rounding), ms; default 0. */
  toleranceMs?: number
}

/** Each trigger matched with the action it caused (or none): on time, late, missed or twice. */
export function matchTriggers (triggers: readonly TriggerObservation[], executions: readonly ExecutionObservation[], phases: Phase[], options: MatchOptions): TriggerOutcome[] {
  const tolerance = options.toleranceMs ?? 0
  const out: TriggerOutcome[] = []
  for (const rule of [...new Set(triggers.map((t) => t.rule))]) {
    const own = triggers.filter((t) => t.rule === rule).map((t) => t.at).sort((a, b) => a - b)
    const runs = executions.filter((e) => e.rule === rule).map((e) => e.at).sort((a, b) => a - b)
    own.forEach((at, i) => {
      const next = own[i + 1] ?? Infinity
      const mine = runs.filter((r) => r >= at - tolerance && r < Math.min(next - tolerance, options.endAt))
      const first = mine[0]
      const latency = first === undefined ? null : Math.max(0, first - at)
      const atS = (at - options.t0) / 1000
      out.push({
        rule,
        atS: round(atS, 3),
        phase: phaseAt({ phases }, atS)?.name ?? 'outside',
        outcome: latency === null ? 'missed' : latency <= options.deadlineMs ? 'on-time' : 'late',
        latencyMs: latency === null ? null : round(latency, 2),
        executions: mine.length
      })
    })
  }
  return out.sort((a, b) => a.atS - b.atS || (a.rule < b.rule ? -1 : 1))
}

/** Per phase (in the timeline's order) and `all`, from the outcomes and the executions. */
export function summarizeAutomation (outcomes: readonly TriggerOutcome[], executions: readonly ExecutionObservation[], phases: Phase[], t0: number): { phases: AutomationPhaseSummary[], total: AutomationPhaseSummary } {
  const phaseOf = (at: number): string => phaseAt({ phases }, (at - t0) / 1000)?.name ?? 'outside'
  const summary = (name: string, o: readonly TriggerOutcome[], e: readonly ExecutionObservation[]): AutomationPhaseSummary => {
    const late = o.filter((x) => x.outcome === 'late').length
    const missed = o.filter((x) => x.outcome === 'missed').length
    return {
      name,
      triggers: o.length,
      onTime: o.filter((x) => x.outcome === 'on-time').length,
      late,
      missed,
      notOnTimeShare: ratio(late + missed, o.length),
      twice: o.filter((x) => x.executions >= 2).length,
      executions: e.length,
      afterExpiry: e.filter((x) => x.at > x.expiresAt * 1000).length,
      afterExpiryMaxMs: e.reduce<number | null>((m, x) => x.at > x.expiresAt * 1000 ? round(Math.max(m ?? 0, x.at - x.expiresAt * 1000), 1) : m, null),
      latencyMs: percentiles(o.flatMap((x) => x.latencyMs === null ? [] : [x.latencyMs]), 1)
    }
  }
  return {
    phases: phases.map((p) => summary(p.name, outcomes.filter((o) => o.phase === p.name), executions.filter((e) => phaseOf(e.at) === p.name))),
    total: summary('all', outcomes.filter((o) => o.phase !== 'outside'), executions.filter((e) => e.at >= t0))
  }
}
