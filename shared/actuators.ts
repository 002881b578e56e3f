import type { ResolvedRecord } from './senml.js'

/**
 * The wire contract of actuators, as everything that is not the device sees them (the gateway's
 * dashboard and set/ requests, Home Assistant discovery): the SenML records by which a device
 * reports an actuator's state (RFC 8428 §4.5.1 names; `vb` for on/off, `v` for numbers, §4.2), and
 * the action and arguments that change it. The device's own actuators (firmware-sim/commands/
 * actuators.ts) follow this table; it is the one place their names and ranges are written.
 *
 *   actuator    state records                       action           arguments
 *   relay       relay (vb)                          relay/set        {on: bool}
 *   valve       valve (vb)                          valve/set        {open: bool}
 *   light       light (vb), light/level (v 0–100)   light/set        {on?: bool, level?: 0–100}
 *   thermostat  thermostat/setpoint (v 5–35 °C)     thermostat/set   {setpoint: 5–35}
 */

export interface ActuatorControl {
  /** The state record, and the argument of `<actuator>/set` that sets it. */
  record: string
  arg: string
  type: 'boolean' | 'number'
  min?: number
  max?: number
  /** A SenML unit (RFC 8428 §12.1) for numbers. */
  unit?: string
}

export interface ActuatorKind {
  name: 'relay' | 'valve' | 'light' | 'thermostat'
  /** `<name>/set`. */
  action: string
  /** The first is the main one: the on/off of a switch, the value of a set point. */
  controls: readonly ActuatorControl[]
}

export const ACTUATOR_KINDS: readonly ActuatorKind[] = [
  { name: 'relay', action: 'relay/set', controls: [{ record: 'relay', arg: 'on', type: 'boolean' }] },
  { name: 'valve', action: 'valve/set', controls: [{ record: 'valve', arg: 'open', type: 'boolean' }] },
  {
    name: 'light',
    action: 'light/set',
    controls: [{ record: 'light', arg: 'on', type: 'boolean' }, { record: 'light/level', arg: 'level', type: 'number', min: 0, max: 100, unit: '%' }]
  },
  { name: 'thermostat', action: 'thermostat/set', controls: [{ record: 'thermostat/setpoint', arg: 'setpoint', type: 'number', min: 5, max: 35, unit: 'Cel' }] }
]

/** The actuator kind of a name (relay, valve, light, …): its action and controls; undefined for a name iotmesh does not know. */
export function actuatorKind (name: string): ActuatorKind | undefined {
  return ACTUATOR_KINDS.find((k) => k.name === name)
}

/** The actuator a state record belongs to, and which of its controls it is. */
export function actuatorOfRecord (record: string): { kind: ActuatorKind, control: ActuatorControl } | undefined {
  for (const kind of ACTUATOR_KINDS) {
    const control = kind.controls.find((c) => c.record === record)
    if (control !== undefined) return { kind, control }
  }
  return undefined
}

/** Actuator name → its state records' values, as a reading reports them. */
export type ActuatorStates = Record<string, Record<string, boolean | number>>

/**
 * The actuator states a reading reports: the records whose name and value type match the table
 * (a boolean `relay`, a number `light/level`); anything else is a sensor. Pure.
 */
export function actuatorStates (records: readonly ResolvedRecord[]): ActuatorStates {
  const out: ActuatorStates = {}
  for (const r of records) {
    const found = actuatorOfRecord(r.name)
    if (found === undefined) continue
    const value = found.control.type === 'boolean' ? r.boolValue : r.value
    if (value === undefined) continue
    const state = out[found.kind.name] ??= {}
    state[found.control.record] = value
  }
  return out
}
