import { describe, expect, it } from 'vitest'
import { ACTUATOR_KINDS, actuatorKind, actuatorOfRecord, actuatorStates, resolvePack } from '../../shared/index.js'
import { createActuator } from '../../firmware-sim/index.js'

describe('the actuator contract (shared/actuators.ts)', () => {
  it('reads actuator states from resolved SenML records, by name and value type, base names included', () => {
    const records = resolvePack([
      { bn: 'hall:', n: 'relay', vb: true, bt: 1_767_225_600 },
      { n: 'temperature', u: 'Cel', v: 21 }
    ], 1_767_225_600)
    // "hall:relay" is not "relay": a base name makes it another sensor.
    expect(actuatorStates(records)).toEqual({})
    expect(actuatorStates(resolvePack([{ n: 'relay', vb: true }, { n: 'thermostat/setpoint', v: 19.5 }, { n: 'valve', vs: 'open' }], 0))).toEqual({
      relay: { relay: true }, thermostat: { 'thermostat/setpoint': 19.5 }
    })
    expect(actuatorOfRecord('light/level')?.kind.name).toBe('light')
    expect(actuatorOfRecord('temperature')).toBeUndefined()
  })

  it('is what the simulated actuators do: the same actions, state records and ranges', () => {
    for (const kind of ACTUATOR_KINDS) {
      const actuator = createActuator(kind.name)
      expect(actuator.actions).toEqual([kind.action])
      expect(Object.keys(actuator.state()).sort()).toEqual(kind.controls.map((c) => c.record).sort())
      for (const control of kind.controls) {
        if (control.type === 'boolean') {
          expect(actuator.plan(kind.action, { [control.arg]: true })[control.record]).toBe(true)
          expect(() => actuator.plan(kind.action, { [control.arg]: 1 })).toThrow(expect.objectContaining({ code: 'ERR_BAD_ARGS' }))
        } else {
          expect(actuator.plan(kind.action, { [control.arg]: control.max })[control.record]).toBe(control.max)
          expect(actuator.plan(kind.action, { [control.arg]: control.min })[control.record]).toBe(control.min)
          expect(() => actuator.plan(kind.action, { [control.arg]: (control.max ?? 0) + 1 })).toThrow(expect.objectContaining({ code: 'ERR_BAD_ARGS' }))
          expect(() => actuator.plan(kind.action, { [control.arg]: (control.min ?? 0) - 1 })).toThrow(expect.objectContaining({ code: 'ERR_BAD_ARGS' }))
        }
      }
    }
    expect(actuatorKind('sprinkler')).toBeUndefined()
  })
})
