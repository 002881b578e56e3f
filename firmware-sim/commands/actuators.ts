import { actuatorKind, meshError } from '../../shared/index.js'
import { GpioOutput, parseGpioLine, type GpioInit, type GpioLineSpec } from './gpio.js'

/**
 * Simulated actuators with state: a relay, a dimmable light, a valve and a thermostat set point.
 * Each answers its actions in two steps, so that a device can record what it is about to do before
 * it does it (commands/executor.ts): `plan` checks the arguments and says what the state will be,
 * without touching anything; `apply` makes it so. State values are SenML-ready: booleans (`vb`)
 * and numbers (`v`), named as SenML names (RFC 8428 §4.5.1).
 */

export type ActuatorState = Record<string, boolean | number>

export interface Actuator {
  readonly name: string
  /** The actions it answers, e.g. "relay/set". */
  readonly actions: readonly string[]
  /** The state `action` with `args` would lead to; throws ERR_BAD_ARGS. Changes nothing. */
  plan: (action: string, args: unknown) => ActuatorState
  apply: (state: ActuatorState) => void
  state: () => ActuatorState
  /** Releases what it holds (a GPIO line). */
  close?: () => Promise<void>
}

export const ACTUATOR_NAMES = ['relay', 'light', 'valve', 'thermostat'] as const
export type ActuatorName = typeof ACTUATOR_NAMES[number]

/** The arguments as a plain object (CBOR maps decode as `Map`s), with only `allowed` keys. */
function argsOf (action: string, args: unknown, allowed: readonly string[]): Record<string, unknown> {
  const entries = args instanceof Map ? [...args.entries()] : args !== null && typeof args === 'object' && !Array.isArray(args) ? Object.entries(args) : undefined
  if (entries === undefined) throw meshError('ERR_BAD_ARGS', `${action} takes a map of ${allowed.join(', ')}`)
  const out: Record<string, unknown> = {}
  for (const [k, v] of entries) {
    if (typeof k !== 'string' || !allowed.includes(k)) throw meshError('ERR_BAD_ARGS', `${action} takes ${allowed.join(', ')}, not ${JSON.stringify(String(k))}`)
    out[k] = v
  }
  return out
}

function bool (action: string, value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') throw meshError('ERR_BAD_ARGS', `${action}: ${name} is true or false`)
  return value
}

/** A number argument in the range the wire contract gives it (shared/actuators.ts). */
function number (action: string, value: unknown, name: string): number {
  const control = actuatorKind(action.split('/')[0] ?? '')?.controls.find((c) => c.arg === name)
  const min = control?.min ?? -Infinity
  const max = control?.max ?? Infinity
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) throw meshError('ERR_BAD_ARGS', `${action}: ${name} is a number from ${min} to ${max}`)
  return value
}

/** An actuator whose state is a record of named values, changed by one "<name>/set" action. */
function actuator (name: string, initial: ActuatorState, plan: (args: Record<string, unknown>, now: ActuatorState) => ActuatorState, keys: readonly string[]): Actuator {
  let current = { ...initial }
  const action = `${name}/set`
  return {
    name,
    actions: [action],
    plan: (a, args) => {
      if (a !== action) throw meshError('ERR_UNKNOWN_ACTION', `${name} answers ${action}, not ${a}`)
      return plan(argsOf(action, args, keys), { ...current })
    },
    apply: (state) => { current = { ...current, ...state } },
    state: () => ({ ...current })
  }
}

/** An actuator of a `--actuators` list: its kind, and the GPIO line it drives, if any. */
export interface ActuatorSpec {
  name: ActuatorName
  gpio?: GpioLineSpec
}

/** The on/off state each kind drives a GPIO line with (a thermostat's set point drives none). */
const GPIO_STATE: Partial<Record<ActuatorName, string>> = { relay: 'relay', valve: 'valve', light: 'light' }

/** A simulated actuator from its name or spec (`driveGpio` puts one on a GPIO line). */
export function createActuator (spec: ActuatorName | ActuatorSpec): Actuator {
  const name = typeof spec === 'string' ? spec : spec.name
  switch (name) {
    case 'relay':
      return actuator('relay', { relay: false }, (a) => ({ relay: bool('relay/set', a.on, 'on') }), ['on'])
    case 'valve':
      return actuator('valve', { valve: false }, (a) => ({ valve: bool('valve/set', a.open, 'open') }), ['open'])
    case 'light':
      return actuator('light', { light: false, 'light/level': 100 }, (a, now) => {
        if (a.on === undefined && a.level === undefined) throw meshError('ERR_BAD_ARGS', 'light/set takes on, level or both')
        return {
          light: a.on === undefined ? now.light as boolean : bool('light/set', a.on, 'on'),
          'light/level': a.level === undefined ? now['light/level'] as number : number('light/set', a.level, 'level')
        }
      }, ['on', 'level'])
    case 'thermostat':
      return actuator('thermostat', { 'thermostat/setpoint': 20 }, (a) => ({ 'thermostat/setpoint': number('thermostat/set', a.setpoint, 'setpoint') }), ['setpoint'])
  }
}

/**
 * Drives a GPIO output with an actuator's on/off state (gpio.ts): after each change, and once at
 * start (the line is put in the actuator's initial state). The state changes whether or not the
 * line could be driven; a failure is a warning.
 */
export function driveGpio (actuator: Actuator, line: GpioLineSpec, init: GpioInit = {}): Actuator {
  const key = GPIO_STATE[actuator.name as ActuatorName]
  if (key === undefined) throw meshError('ERR_BAD_ARGUMENT', `a ${actuator.name} drives no GPIO line (relay, valve and light do)`)
  const output = new GpioOutput(line, init)
  const drive = (): void => { void output.set(actuator.state()[key] === true) }
  drive()
  return {
    ...actuator,
    apply: (state) => { actuator.apply(state); if (key in state) drive() },
    close: async () => { await output.close() }
  }
}

/**
 * Parses "relay,light" (the `--actuators` flag); an entry may name the GPIO line it drives:
 * "relay=gpiochip0:17", "valve=gpiochip0:27:active-low" (gpio.ts).
 */
export function parseActuatorList (text: string): ActuatorSpec[] {
  const entries = text.split(',').map((s) => s.trim()).filter((s) => s !== '')
  const out = new Map<ActuatorName, ActuatorSpec>()
  for (const entry of entries) {
    const [n = '', line] = entry.split('=')
    if (!(ACTUATOR_NAMES as readonly string[]).includes(n)) throw meshError('ERR_BAD_ARGUMENT', `unknown actuator ${JSON.stringify(n)}: one of ${ACTUATOR_NAMES.join(', ')}`)
    const name = n as ActuatorName
    if (line !== undefined && GPIO_STATE[name] === undefined) throw meshError('ERR_BAD_ARGUMENT', `a ${name} drives no GPIO line (relay, valve and light do)`)
    out.set(name, line === undefined ? { name } : { name, gpio: parseGpioLine(line) })
  }
  return [...out.values()]
}
