import { explainRules, type RuleSet } from '../../firmware-sim/index.js'
import { matchTriggers, summarizeAutomation, type AutomationPhaseSummary, type AutomationWay } from '../metrics/automation.js'
import type { AutomationPlan } from '../plan/automation.js'
import type { WayObservations } from '../observations.js'
import { header, type RunInfo } from './assemble.js'
import { differenceInterval, percent, wilson } from './checks.js'
import type { AutomationResults, AutomationWaySummary, Check } from './types.js'

/**
 * From what the automation runner saw to results.json: the triggers matched to the executions
 * (metrics/automation.ts), per way and phase, and the checks, phrased as hypotheses with 95 %
 * intervals: a check whose interval straddles its bound is `undecided`, never flipped by one trigger.
 */

export interface AutomationInput extends RunInfo {
  plan: AutomationPlan
  rules: RuleSet
  intervalS: number
  observations: WayObservations[]
}

/** How long after its expiry a device still runs a command (firmware-sim/commands/executor.ts, `skew`: 2 s). */
export const EXPIRY_TOLERANCE_MS = 2000

/** The share of triggers not acted on in time that a working way may show at most. */
export const WORKING_SHARE = 0.3

/** An automation run's results: figures per way and phase, and the checks. */
export function automationResults (input: AutomationInput): AutomationResults {
  const { plan } = input
  const phases = plan.timeline.phases
  const ways = input.observations.map((o): AutomationWaySummary => {
    const triggers = matchTriggers(o.triggers, o.executions, phases, { t0: o.t0, endAt: o.endedAt, deadlineMs: plan.params.ttlS * 1000, toleranceMs: 0 })
    const { phases: perPhase, total } = summarizeAutomation(triggers, o.executions, phases, o.t0)
    const rules = [...new Set(o.triggers.map((t) => t.rule))].sort().map((rule) => {
      const own = triggers.filter((t) => t.rule === rule && t.phase !== 'outside')
      const n = (fate: string): number => own.filter((t) => t.outcome === fate).length
      return { rule, triggers: own.length, onTime: n('on-time'), late: n('late'), missed: n('missed'), twice: own.filter((t) => t.executions >= 2).length }
    })
    return {
      way: o.way,
      mode: o.mode,
      phases: perPhase,
      total,
      rules,
      faults: o.faults.map((f) => ({ kind: f.kind, plannedS: f.plannedS, atS: Math.round(f.at - o.t0) / 1000 })),
      commands: { sent: o.sent, unanswered: o.unanswered, outcomes: { ...o.outcomes }, refused: { ...o.refused } },
      triggers
    }
  })
  return {
    ...header('automation', plan.params.seed, input),
    parameters: { ...plan.params, visitGapS: [...plan.params.visitGapS], intervalS: input.intervalS, ways: input.observations.map((o) => o.way) },
    plan: {
      fingerprint: plan.fingerprint,
      timelineFingerprint: plan.timeline.fingerprint,
      roles: { ...plan.roles },
      phases: phases.map((p) => ({ name: p.name, startS: p.startS, endS: p.endS })),
      endS: plan.timeline.endS,
      rules: explainRules(input.rules)
    },
    ways,
    checks: automationChecks(ways)
  }
}

function phaseOf (ways: readonly AutomationWaySummary[], way: AutomationWay, name: string): AutomationPhaseSummary | undefined {
  const p = ways.find((w) => w.way === way)?.phases.find((x) => x.name === name)
  return p !== undefined && p.triggers > 0 ? p : undefined
}

const notOnTime = (p: AutomationPhaseSummary): number => p.late + p.missed
const pts = (x: number): string => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}`

/** A way works in a phase when at most WORKING_SHARE of its triggers were not acted on in time (Wilson 95 %). */
function works (id: string, statement: string, ways: readonly AutomationWaySummary[], pairs: Array<[AutomationWay, string]>): Check {
  const verdicts = pairs.flatMap(([way, name]) => {
    const p = phaseOf(ways, way, name)
    if (p === undefined) return []
    const [lo, hi] = wilson(notOnTime(p), p.triggers)
    const verdict: Check['status'] = hi <= WORKING_SHARE ? 'pass' : lo > WORKING_SHARE ? 'fail' : 'undecided'
    return [{ verdict, observed: `${way}, ${name}: ${notOnTime(p)} of ${p.triggers} triggers not acted on in time (${percent(p.notOnTimeShare)}, 95 % interval ${percent(lo)}–${percent(hi)}) (${verdict})` }]
  })
  if (verdicts.length === 0) return { id, statement, status: 'not-run', observed: 'not in this run' }
  const status: Check['status'] = verdicts.some((v) => v.verdict === 'fail') ? 'fail' : verdicts.some((v) => v.verdict === 'undecided') ? 'undecided' : 'pass'
  return { id, statement, status, observed: verdicts.map((v) => v.observed).join('; ') }
}

/** The automation experiment's checks, judged on one run's triggers (Wilson intervals). */
export function automationChecks (ways: readonly AutomationWaySummary[]): Check[] {
  const has = (w: AutomationWay): boolean => ways.some((x) => x.way === w)
  const checks: Check[] = []
  {
    const id = 'central-misses-while-broker-down'
    const statement = 'while the broker is down, rules at the gateway leave more triggers not acted on in time than rules on the devices (95 % interval of the difference above 0, Newcombe)'
    const c = phaseOf(ways, 'central', 'broker-down')
    const d = phaseOf(ways, 'device', 'broker-down')
    if (c === undefined || d === undefined) checks.push({ id, statement, status: 'not-run', observed: 'needs the central and device ways and a broker-down phase with triggers' })
    else {
      const [lo, hi] = differenceInterval(notOnTime(c), c.triggers, notOnTime(d), d.triggers)
      const status: Check['status'] = lo > 0 ? 'pass' : hi < 0 ? 'fail' : 'undecided'
      checks.push({ id, statement, status, observed: `central ${notOnTime(c)} of ${c.triggers} (${percent(c.notOnTimeShare)}), device ${notOnTime(d)} of ${d.triggers} (${percent(d.notOnTimeShare)}); difference [${pts(lo)}, ${pts(hi)}] points` })
    }
  }
  checks.push(works('device-rules-work-while-broker-down', `while the broker is down, rules on the devices act in time on all but at most ${WORKING_SHARE * 100} % of the triggers (Wilson 95 % interval)`,
    ways, has('device') ? [['device', 'broker-down']] : []))
  checks.push(works('hybrid-works-while-broker-down', `while the broker is down, hybrid (rules on the devices and at the gateway) acts in time on all but at most ${WORKING_SHARE * 100} % of the triggers`,
    ways, has('hybrid') ? [['hybrid', 'broker-down']] : []))
  checks.push(works('every-way-works-when-steady', `with no fault, every way acts in time on all but at most ${WORKING_SHARE * 100} % of the triggers`,
    ways, ways.map((w) => [w.way, 'steady'] as [AutomationWay, string])))
  {
    const id = 'never-beyond-expiry-tolerance'
    const statement = `no command is executed later than its expiry plus the devices' clock tolerance (${EXPIRY_TOLERANCE_MS / 1000} s): a command held up by a fault is refused (ERR_EXPIRED), not run late`
    if (ways.length === 0) checks.push({ id, statement, status: 'not-run', observed: 'not in this run' })
    else {
      const bad = ways.filter((w) => (w.total.afterExpiryMaxMs ?? 0) > EXPIRY_TOLERANCE_MS)
      checks.push({
        id,
        statement,
        status: bad.length === 0 ? 'pass' : 'fail',
        observed: ways.map((w) => `${w.way}: ${w.total.afterExpiry} of ${w.total.executions} executions after expiry${w.total.afterExpiryMaxMs === null ? '' : `, the latest ${(w.total.afterExpiryMaxMs / 1000).toFixed(2)} s past it`}`).join('; ')
      })
    }
  }
  return checks
}
