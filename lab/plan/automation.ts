import { meshError, parseCommanders, publicKeyText } from '../../shared/index.js'
import { checkRules, simDeviceKeys, simGatewayKeys, type DeviceRole, type RuleSet, type WorldInit } from '../../firmware-sim/index.js'
import { fingerprintOf } from './canonical.js'
import { FAILOVER_DEFAULTS, FAILOVER_QUICK, planFailover, type FailoverParams, type Timeline } from './timeline.js'

/**
 * The plan of `iotmesh experiment automation`: the failover fault timeline (timeline.ts, the same
 * seeded faults), a world (firmware-sim/fleet/world.ts) and four devices with parts in it, and the
 * rule file every way runs:
 *
 *   hall-light-on   motion in the hall                       → light/set {on: true} on the hall light
 *   hall-light-off  no motion in the hall for `lightOffS`     → light/set {on: false}
 *   heat-on         temperature below `coldC` for `coldForS`  → relay/set {on: true} on the heater
 *   heat-off        temperature above `warmC`                 → relay/set {on: false}
 *
 * The parts go to devices that never crash (the crash hits the others, relays of the mesh): the
 * hall's motion sensor, the hall light, the living room's thermometer and its heater relay. On
 * the devices, the light holds the heating rules and the heater holds the hall's rules, so that
 * every command crosses the mesh to another device. Visits to the hall are seeded (presence.ts),
 * the room warms and cools by Newton's law (room.ts): the same seed gives the same plan and, for
 * the same commands, the same world.
 */

export interface AutomationParams extends FailoverParams {
  /** Gap between two visits to the hall, s [min, max]. */
  visitGapS: [number, number]
  /** How long the hall's motion sensor reads true per visit, s. */
  holdS: number
  /** No motion this long turns the hall light off, s. */
  lightOffS: number
  /** The heating rules' thresholds, °C, and how long the cold must last, s. */
  coldC: number
  warmC: number
  coldForS: number
  /** The room: time constant (s), ambient and heater gain (°C). */
  roomTauS: number
  ambientC: number
  heaterGainC: number
  /** Lifetime of every rule's command, s; a trigger acted on later than this counts as late. */
  ttlS: number
}

/** The automation experiment's default parameters. */
export const AUTOMATION_DEFAULTS: Readonly<AutomationParams> = Object.freeze({
  ...FAILOVER_DEFAULTS,
  devices: 12,
  brokerDownS: 40,
  visitGapS: [4, 8] as [number, number],
  holdS: 2,
  lightOffS: 1,
  coldC: 19,
  warmC: 21,
  coldForS: 10,
  roomTauS: 20,
  ambientC: 15,
  heaterGainC: 10,
  ttlS: 5
})

/**
 * About 70 s per way: broker down 15 s, a visit every 2–3 s, a room that cycles in about 10 s. A
 * visit's motion lasts 0.5 s and the light goes off 0.5 s after it: at least a second of quiet
 * before the next visit is left, so that readings bunched up on their way to the rule cannot hide
 * the quiet from it.
 */
export const AUTOMATION_QUICK: Readonly<AutomationParams> = Object.freeze({
  ...FAILOVER_QUICK,
  steadyS: 10,
  brokerDownS: 15,
  gapS: 6,
  crashS: 6,
  partitionS: 8,
  drainS: 6,
  visitGapS: [2, 3] as [number, number],
  holdS: 0.5,
  lightOffS: 0.5,
  coldC: 19,
  warmC: 21,
  coldForS: 2,
  roomTauS: 8,
  ambientC: 15,
  heaterGainC: 10,
  ttlS: 3
})

/** The automation experiment's parameter sets: `default`, and `quick` for `--quick`. */
export const AUTOMATION_PRESETS = Object.freeze({ default: AUTOMATION_DEFAULTS, quick: AUTOMATION_QUICK })

/** The rules the automation experiment runs: the hall light with motion, the heater with the temperature. */
export const AUTOMATION_RULES = ['hall-light-on', 'hall-light-off', 'heat-on', 'heat-off'] as const
/** One of {@link AUTOMATION_RULES}. */
export type AutomationRule = typeof AUTOMATION_RULES[number]

/** Fleet members (index) with a part in the automation. */
export interface AutomationRoles { motion: number, light: number, thermometer: number, heater: number }

/** An automation run's plan: parameters, fault timeline, the devices' roles, and its fingerprint. */
export interface AutomationPlan {
  params: AutomationParams
  timeline: Timeline
  roles: AutomationRoles
  /** `sha256:<hex>` of the canonical JSON of the parameters, the timeline's fingerprint and the roles. */
  fingerprint: string
}

/** The automation experiment's seeded plan: phases, visits, crashes and the split. */
export function planAutomation (init: Partial<AutomationParams> = {}): AutomationPlan {
  const params = checkParams({ ...AUTOMATION_DEFAULTS, ...Object.fromEntries(Object.entries(init).filter(([, v]) => v !== undefined)) })
  const timeline = planFailover(params)
  const crashed = new Set(timeline.phases.flatMap((p) => p.faults.flatMap((f) => f.kind === 'crash' ? f.devices ?? [] : [])))
  const survivors = Array.from({ length: params.devices }, (_, i) => i).filter((i) => !crashed.has(i))
  if (survivors.length < 4) {
    throw meshError('ERR_BAD_ARGUMENT', `automation: ${params.devices} devices less ${crashed.size} crashed leaves ${survivors.length}; four devices that never crash are needed (the motion sensor, the light, the thermometer, the heater)`)
  }
  // Spread the parts over the survivors (first, last and between), so that they are not all neighbours.
  const pick = (k: number): number => survivors[Math.round(k * (survivors.length - 1) / 3)] as number
  const roles = { motion: pick(0), light: pick(2), thermometer: pick(1), heater: pick(3) }
  return { params, timeline, roles, fingerprint: fingerprintOf({ params, timeline: timeline.fingerprint, roles }) }
}

/** The world of the plan: the hall (visits, light) and the living room (thermometer, heater). */
export function automationWorld (plan: AutomationPlan): WorldInit {
  const { params: p, roles } = plan
  return {
    rooms: [
      { name: 'hall', motion: { device: roles.motion, gapS: p.visitGapS, holdS: p.holdS }, light: { device: roles.light } },
      {
        name: 'living',
        ambient: p.ambientC,
        heaterGain: p.heaterGainC,
        timeConstantS: p.roomTauS,
        initial: (p.coldC + p.warmC) / 2,
        thermometer: roles.thermometer,
        thermometerNoise: 0,
        heater: { device: roles.heater }
      }
    ]
  }
}

/** The rule file of the plan, with the fleet's device ids (every way runs the same). */
export function automationRules (plan: AutomationPlan): RuleSet {
  const { params: p, roles } = plan
  const id = (i: number): string => simDeviceKeys(p.seed, i).id
  return checkRules({
    devices: { 'hall-motion': id(roles.motion), 'hall-light': id(roles.light), thermometer: id(roles.thermometer), heater: id(roles.heater) },
    rules: [
      { name: 'hall-light-on', when: { all: [{ device: 'hall-motion', sensor: 'motion', equals: true }] }, then: [{ device: 'hall-light', action: 'light/set', args: { on: true }, ttl: p.ttlS }] },
      { name: 'hall-light-off', when: { all: [{ device: 'hall-motion', sensor: 'motion', equals: false, for: `${Math.round(p.lightOffS * 1000)}ms` }] }, then: [{ device: 'hall-light', action: 'light/set', args: { on: false }, ttl: p.ttlS }] },
      { name: 'heat-on', when: { all: [{ device: 'thermometer', sensor: 'temperature', below: p.coldC, for: `${Math.round(p.coldForS * 1000)}ms` }] }, then: [{ device: 'heater', action: 'relay/set', args: { on: true }, ttl: p.ttlS }] },
      { name: 'heat-off', when: { all: [{ device: 'thermometer', sensor: 'temperature', above: p.warmC }] }, then: [{ device: 'heater', action: 'relay/set', args: { on: false }, ttl: p.ttlS }] }
    ]
  }, 'automation rules')
}

/**
 * The devices' parts: the light and the heater take commands from each other (the device rules)
 * and from the gateway (the central rules); with `onDevices`, the light holds the heating rules and
 * the heater the hall's.
 */
export function automationRoles (plan: AutomationPlan, rules: RuleSet, onDevices: boolean): Record<number, DeviceRole> {
  const { params: p, roles } = plan
  const key = (i: number): string => publicKeyText(simDeviceKeys(p.seed, i).publicKey)
  const gateway = publicKeyText(simGatewayKeys(p.seed).publicKey)
  const commanders = (from: number, actions: string[]): ReturnType<typeof parseCommanders> => parseCommanders({ commanders: [{ key: key(from), actions }, { key: gateway, actions }] })
  const only = (names: readonly string[]): RuleSet => ({ rules: rules.rules.filter((r) => names.includes(r.name)), names: rules.names })
  return {
    [roles.light]: { actuators: ['light'], commanders: commanders(roles.heater, ['light/#']), ...(onDevices ? { rules: only(['heat-on', 'heat-off']) } : {}) },
    [roles.heater]: { actuators: ['relay'], commanders: commanders(roles.light, ['relay/#']), ...(onDevices ? { rules: only(['hall-light-on', 'hall-light-off']) } : {}) }
  }
}

function checkParams (p: AutomationParams): AutomationParams {
  const bad = (name: string, want: string, got: unknown): never => { throw meshError('ERR_BAD_ARGUMENT', `automation: ${name} must be ${want}, got ${JSON.stringify(got)}`, { details: { name } }) }
  const [lo, hi] = p.visitGapS
  if (!(lo > 0) || !(hi >= lo) || !Number.isFinite(hi)) bad('visitGapS', '[min, max] seconds with 0 < min ≤ max', p.visitGapS)
  if (!(p.holdS > 0) || !(p.lightOffS > 0) || p.holdS + p.lightOffS >= lo) bad('holdS + lightOffS', `above 0 and below the shortest visit gap (${lo} s)`, [p.holdS, p.lightOffS])
  if (!(p.warmC > p.coldC)) bad('warmC', `above coldC (${p.coldC})`, p.warmC)
  if (!(p.ambientC < p.coldC) || !(p.ambientC + p.heaterGainC > p.warmC)) bad('ambientC, heaterGainC', 'such that the room cools below coldC and the heater warms it above warmC', [p.ambientC, p.heaterGainC])
  if (!(p.coldForS >= 0) || !(p.roomTauS > 0)) bad('coldForS, roomTauS', 'seconds, coldForS ≥ 0 and roomTauS > 0', [p.coldForS, p.roomTauS])
  if (!(p.ttlS >= 1) || p.ttlS > 60) bad('ttlS', 'seconds from 1 to 60', p.ttlS)
  return {
    seed: p.seed, devices: p.devices, steadyS: p.steadyS, brokerDownS: p.brokerDownS, crashCount: p.crashCount, crashS: p.crashS, partitionS: p.partitionS, gapS: p.gapS, drainS: p.drainS,
    visitGapS: [lo, hi], holdS: p.holdS, lightOffS: p.lightOffS, coldC: p.coldC, warmC: p.warmC, coldForS: p.coldForS, roomTauS: p.roomTauS, ambientC: p.ambientC, heaterGainC: p.heaterGainC, ttlS: p.ttlS
  }
}
