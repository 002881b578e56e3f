import { isMeshError, meshError } from '../../shared/index.js'
import { Fleet, RuleEngine, type DeviceRole, type RuleSet, type World, type WorldInit } from '../../firmware-sim/index.js'
import type { Gateway, Reading } from '../../gateway/index.js'
import type { AutomationWay, ExecutionObservation, TriggerObservation } from '../metrics/automation.js'
import type { AppliedFault } from '../observations.js'
import { AUTOMATION_WAYS } from '../metrics/automation.js'
import type { Mode, WayObservations } from '../observations.js'
import { AUTOMATION_PRESETS, automationRoles, automationRules, automationWorld, planAutomation, type AutomationParams, type AutomationPlan } from '../plan/automation.js'
import { timelineDurationS, type TimelineFault, type TimelineFaultKind } from '../plan/timeline.js'
import { automationResults } from '../results/automation.js'
import { combineAutomationRuns } from '../results/automation-repeat.js'
import { finishProvenance, startProvenance } from '../results/environment.js'
import type { AutomationResults } from '../results/types.js'
import { writeReport } from '../report/write.js'
import { hiResClock, hiResNow, sleep, ticking, until, type RunComponents } from './support.js'

/**
 * `iotmesh experiment automation`, the runner: for each way in turn, a fresh fleet with the same
 * seed runs the same rules (plan/automation.ts) through the same fault timeline as failover:
 *
 *   device   devices in mesh mode; the rules run on two of the devices and command over the mesh
 *   central  devices in broker mode; the rules run at the gateway, fed with the readings it
 *            accepts, and command through the broker (as a home automation server does)
 *   hybrid   devices in hybrid mode (mesh and broker); the rules run on the devices and at the
 *            gateway both, each issuing its own commands (a user who keeps a central server's
 *            rules beside the devices' own)
 *
 * Ground truth: when each rule's condition became true, from the simulated world after the run
 * (the hall's seeded visits, the room's temperature as a function of its heater's switchings).
 * Action truth: every command the light and the heater executed, from their `command` events,
 * stamped on the run's clock as they happen. metrics/automation.ts matches the two.
 */

export interface AutomationRunInit extends Partial<AutomationParams> {
  preset?: keyof typeof AUTOMATION_PRESETS
  ways?: AutomationWay[]
  /** Sampling interval of every device, ms (default 250: motion is seen within a quarter second). */
  intervalMs?: number
  /** Longest wait for a fleet to settle before its timeline starts, s (default 30). */
  settleS?: number
  /** Runs with seeds seed, seed + 1, …; the checks are judged on 95 % intervals over them (results/automation-repeat.ts). Default 1. */
  repeat?: number
  out?: string
}

export type { WayObservations }

/** An automation run: its results and the files written. */
export interface AutomationRun {
  results: AutomationResults
  observations: WayObservations[]
  files: string[]
}

const WAY_MODE: Readonly<Record<AutomationWay, Mode>> = { device: 'mesh', central: 'broker', hybrid: 'hybrid' }
const FAULT_LEAD_MS = 20
const STARTS_A_FAULT = new Set<TimelineFaultKind>(['broker-stop', 'crash', 'partition'])
const SETUP_ESTIMATE_S = 10
/** After the gateway has heard every device: time for the rule holders' subscriptions to spread. */
const WARMUP_MS = 2000

/** The plan a run with these settings follows. */
export function automationPlan (init: AutomationRunInit = {}): AutomationPlan {
  const { preset, ways: _w, intervalMs: _i, settleS: _s, out: _o, repeat: _r, ...explicit } = init
  const base = AUTOMATION_PRESETS[preset ?? 'default']
  return planAutomation({ ...base, ...Object.fromEntries(Object.entries(explicit).filter(([, v]) => v !== undefined)) })
}

/** Seconds the whole automation run is expected to take. */
export function automationRunSeconds (init: AutomationRunInit = {}): number {
  const plan = automationPlan(init)
  return (init.repeat ?? 1) * (init.ways ?? AUTOMATION_WAYS).length * (SETUP_ESTIMATE_S + timelineDurationS(plan.timeline))
}

/** Runs the automation experiment: the same seeded world and faults for each way of running rules. */
export async function runAutomation (init: AutomationRunInit = {}, components: RunComponents = {}): Promise<AutomationRun> {
  const repeat = init.repeat ?? 1
  if (!Number.isSafeInteger(repeat) || repeat < 1 || repeat > 100) throw meshError('ERR_BAD_ARGUMENT', `automation: repeat must be an integer from 1 to 100, got ${repeat}`)
  if (repeat === 1) return await runOnce(init, components)
  const seed = automationPlan(init).params.seed
  if (seed + repeat - 1 > 0xffff_ffff) throw meshError('ERR_BAD_ARGUMENT', `automation: seeds ${seed}…${seed + repeat - 1} pass 4294967295`)
  const provenance = startProvenance(components.command)
  const runs: AutomationRun[] = []
  for (let i = 0; i < repeat; i++) {
    runs.push(await runOnce({ ...init, seed: seed + i, out: undefined, repeat: 1 }, { ...components, repetition: `${i + 1}/${repeat}` }))
  }
  const combined = combineAutomationRuns(runs.map((r) => r.results))
  const notes = [...new Set(runs.flatMap((r, i) => (r.results.notes ?? []).map((n) => i === 0 ? n : `seed ${seed + i}: ${n}`)))]
  const results = { ...combined, notes, provenance: finishProvenance(provenance) }
  const observations = runs[0]?.observations ?? []
  const files = init.out === undefined ? [] : await writeReport(init.out, results)
  return { results, observations, files }
}

async function runOnce (init: AutomationRunInit, components: RunComponents & { repetition?: string }): Promise<AutomationRun> {
  const plan = automationPlan(init)
  const ways = init.ways ?? [...AUTOMATION_WAYS]
  if (ways.length === 0 || ways.some((w) => !AUTOMATION_WAYS.includes(w)) || new Set(ways).size !== ways.length) {
    throw meshError('ERR_BAD_ARGUMENT', `automation: ways must be distinct, from ${AUTOMATION_WAYS.join(', ')}; got ${JSON.stringify(ways)}`)
  }
  const intervalMs = init.intervalMs ?? 250
  if (!Number.isSafeInteger(intervalMs) || intervalMs < 50) throw meshError('ERR_BAD_ARGUMENT', `automation: intervalMs must be an integer of at least 50, got ${intervalMs}`)
  const now = components.now ?? hiResNow
  const provenance = startProvenance(components.command)
  const startedAt = now()
  const rules = automationRules(plan)
  const notes: string[] = [
    'transport: TCP links (authenticated, encrypted) with DNS-SD discovery; every device, the gateway and the broker run in one process (iotmesh fleet simulator)',
    `the motion sensor, the light, the thermometer and the heater are fleet members ${plan.roles.motion}, ${plan.roles.light}, ${plan.roles.thermometer} and ${plan.roles.heater}; the crash hits others (relays of the mesh)`,
    'the thermometer has no noise (readings at 0.1 °C resolution), so that no reading crosses a threshold before the room does'
  ]
  const observations: WayObservations[] = []
  for (const [i, way] of ways.entries()) {
    observations.push(await runWay(way, plan, rules, { intervalMs, settleMs: (init.settleS ?? 30) * 1000, step: `${i + 1}/${ways.length}${components.repetition === undefined ? '' : `, run ${components.repetition}`}`, notes }, { ...components, now }))
  }
  const results = automationResults({ plan, intervalS: intervalMs / 1000, observations, rules, startedAt, finishedAt: now(), notes, provenance: finishProvenance(provenance) })
  const files = init.out === undefined ? [] : await writeReport(init.out, results)
  return { results, observations, files }
}

interface WaySettings { intervalMs: number, settleMs: number, step: string, notes: string[] }

async function runWay (way: AutomationWay, plan: AutomationPlan, rules: RuleSet, settings: WaySettings, components: RunComponents & { now: () => number }): Promise<WayObservations> {
  const { now, progress, signal } = components
  const { timeline, roles } = plan
  const show = (phase: string): void => { progress?.update({ mode: way, step: settings.step, phase }) }
  const fleet = new Fleet({
    devices: plan.params.devices,
    mode: WAY_MODE[way],
    seed: plan.params.seed,
    interval: settings.intervalMs,
    sensors: 'battery',
    transport: 'tcp',
    roles: automationRoles(plan, rules, way !== 'central'),
    world: automationWorld(plan)
  }, { clock: hiResClock })
  const executions: ExecutionObservation[] = []
  const refused: Record<string, number> = {}
  const sent = { count: 0, unanswered: 0, outcomes: {} as Record<string, number> }
  let central: { stop: () => void } | undefined
  try {
    show('starting the fleet')
    await ticking(500, () => { show('starting the fleet') }, fleet.start({ signal }))
    for (const [index, state, on, off] of [[roles.light, 'light', 'hall-light-on', 'hall-light-off'], [roles.heater, 'relay', 'heat-on', 'heat-off']] as const) {
      fleet.devices[index]?.device?.on('command', (o) => {
        if (o.verdict === 'refused') { refused[o.code] = (refused[o.code] ?? 0) + 1; return }
        if (o.verdict !== 'executed' || typeof o.state[state] !== 'boolean') return
        executions.push({ rule: o.state[state] === true ? on : off, at: now(), issuer: o.command.issuer, id: o.command.id, expiresAt: o.command.expiresAt })
      })
    }
    if (way !== 'device' && fleet.gateway !== undefined) central = centralRules(fleet.gateway, rules, sent)
    const heard = new Set<string>()
    const onDelivered = (d: { origin: string }): void => { heard.add(d.origin) }
    fleet.on('delivered', onDelivered)
    const settled = await ticking(500, () => { show('settling') }, until(() => heard.size >= fleet.devices.length, settings.settleMs, { signal, everyMs: 200 }))
    fleet.off('delivered', onDelivered)
    if (!settled) settings.notes.push(`${way}: ${fleet.devices.length - heard.size} of ${fleet.devices.length} devices not heard at the gateway after ${settings.settleMs / 1000} s; measured anyway`)
    await sleep(WARMUP_MS, signal)
    const t0 = now()
    const faults: AppliedFault[] = []
    for (const [i, phase] of timeline.phases.entries()) {
      const previous = timeline.phases[i - 1]?.name ?? phase.name
      const lead = phase.faults.some((f) => STARTS_A_FAULT.has(f.kind)) ? FAULT_LEAD_MS : 0
      await ticking(500, () => { show(previous) }, sleep(t0 + phase.startS * 1000 - lead - now(), signal))
      show(phase.name)
      for (const event of phase.faults) {
        await applyFault(fleet, event)
        faults.push({ kind: event.kind, plannedS: event.atS, at: now() })
      }
    }
    await ticking(500, () => { show(timeline.phases.at(-1)?.name ?? 'steady') }, sleep(t0 + timeline.endS * 1000 - now(), signal))
    await ticking(500, () => { show('drain') }, sleep(t0 + timelineDurationS(timeline) * 1000 - now(), signal))
    const endedAt = now()
    for (const d of fleet.devices) {
      const rulesCount = d.device?.counters.commands?.rules
      if (rulesCount === undefined) continue
      sent.count += rulesCount.sent
      for (const [status, n] of Object.entries(rulesCount.results)) sent.outcomes[status] = (sent.outcomes[status] ?? 0) + (n ?? 0)
    }
    sent.unanswered += Object.entries(sent.outcomes).reduce((a, [status, n]) => status === 'ERR_TIMEOUT' || status === 'ERR_NO_ROUTE' || status === 'ERR_ABORTED' ? a + n : a, 0)
    return {
      way,
      mode: WAY_MODE[way],
      t0,
      endedAt,
      faults,
      // Triggers of the drain too: they end the windows of the timeline's last triggers (and count in no phase).
      triggers: groundTruth(fleet.world as World, plan, t0, endedAt),
      executions,
      refused,
      sent: sent.count,
      unanswered: sent.unanswered,
      outcomes: sent.outcomes
    }
  } finally {
    show('stopping the fleet')
    central?.stop()
    await fleet.stop()
  }
}

/**
 * The experiment's home for a live fleet (`iotmesh sim --world home`): the same world (a hall
 * whose seeded visits move a motion sensor and a light, a living room a heater relay warms),
 * parts, commanders and rules as `experiment automation`, with no faults. Rules run on the devices
 * (mesh, hybrid) or at the gateway (broker: `centralRules`).
 */
export function homeScenario (seed: number, devices: number, onDevices: boolean): { plan: AutomationPlan, rules: RuleSet, world: WorldInit, roles: Record<number, DeviceRole> } {
  const plan = planAutomation({ ...AUTOMATION_PRESETS.default, seed, devices, crashCount: 0 })
  const rules = automationRules(plan)
  return { plan, rules, world: automationWorld(plan), roles: automationRoles(plan, rules, onDevices) }
}

/** The rules at the gateway: the rule engine fed with every reading it accepts, commands through the broker. */
export function centralRules (gateway: Gateway, rules: RuleSet, sent: { count: number, unanswered: number, outcomes: Record<string, number> }): { stop: () => void } {
  const engine = new RuleEngine(rules, { clock: hiResClock })
  let stopped = false
  const onReading = (reading: Reading): void => {
    engine.observeReading(reading.origin, reading.records, reading.time)
  }
  engine.on('fire', (firing) => {
    for (const action of firing.actions) {
      sent.count++
      const count = (status: string): void => { if (!stopped) sent.outcomes[status] = (sent.outcomes[status] ?? 0) + 1 }
      gateway.command({ target: action.device, action: action.action, ttl: action.ttl, args: action.args }).then((r) => { count(r.status) }, (err: unknown) => {
        count(isMeshError(err) ? err.code : 'ERR_TIMEOUT')
      })
    }
  })
  gateway.on('reading', onReading)
  return { stop: () => { stopped = true; gateway.off('reading', onReading); engine.stop() } }
}

async function applyFault (fleet: Fleet, event: TimelineFault): Promise<void> {
  switch (event.kind) {
    case 'broker-stop': await fleet.stopBroker(); break
    case 'broker-start': await fleet.startBroker(); break
    case 'crash': await Promise.all((event.devices ?? []).map(async (i) => { await fleet.crash(i) })); break
    case 'restart': await Promise.all((event.devices ?? []).map(async (i) => { await fleet.restart(i) })); break
    case 'partition': fleet.partition(event.groups ?? []); break
    case 'heal': fleet.heal(); break
  }
}

/**
 * When each rule's condition became true in the world, within [t0, end): a visit begins (light
 * on); a visit's motion has been over for `lightOffS` (light off, unless the next visit came
 * first); the room fell below `coldC` and stayed below for `coldForS` (heat on); it rose above
 * `warmC` (heat off).
 */
export function groundTruth (world: World, plan: AutomationPlan, t0: number, end: number): TriggerObservation[] {
  const p = plan.params
  const hall = world.rooms.find((r) => r.spec.name === 'hall')
  const living = world.rooms.find((r) => r.spec.name === 'living')
  const out: TriggerObservation[] = []
  const within = (at: number): boolean => at >= t0 && at < end
  if (hall?.presence !== undefined) {
    const holdMs = hall.presence.holdMs
    const visits = hall.presence.visits(t0 - 60_000, end + 60_000)
    visits.forEach((v, i) => {
      if (within(v)) out.push({ rule: 'hall-light-on', at: v })
      const quiet = v + holdMs + p.lightOffS * 1000
      if (within(quiet) && (visits[i + 1] ?? Infinity) > quiet) out.push({ rule: 'hall-light-off', at: quiet })
    })
  }
  if (living !== undefined) {
    const room = living.room
    const forMs = p.coldForS * 1000
    for (const c of room.crossings(p.coldC, 'down', t0 - forMs, end)) {
      const at = c + forMs
      if (within(at) && room.crossings(p.coldC, 'up', c, at).length === 0) out.push({ rule: 'heat-on', at })
    }
    for (const c of room.crossings(p.warmC, 'up', t0, end)) out.push({ rule: 'heat-off', at: c })
  }
  return out.sort((a, b) => a.at - b.at)
}
