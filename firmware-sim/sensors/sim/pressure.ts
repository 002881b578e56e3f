import { between, normalAt, quantize, unitAt, walkAt } from '../../random.js'
import type { Sensor } from '../types.js'
import { simSensor } from './base.js'
import { simIdentity, type SimInit } from './climate.js'

export interface PressureInit extends SimInit {
  /** Mean sea-level pressure, Pa; default 101325 (the standard atmosphere). */
  mean?: number
  /** Typical deviation of the weather from the mean, Pa; default 600. */
  deviation?: number
  /** Knot spacing of the weather's random walk, ms; default 1 h. */
  stepMs?: number
  /** Persistence of the walk per step, in (0, 1); default 0.986 (with 1-h steps: a time constant of about 3 days, hourly changes of about 1 hPa). */
  phi?: number
  /** Deviation of the sensor noise, Pa; default 3. */
  noise?: number
  /** Resolution of a reading, Pa; default 1. */
  resolution?: number
}

/**
 * `pressure` in Pa: a slow mean-reverting random walk around the mean. The weather is the fleet's
 * (keyed by the seed alone), so nearby devices see the same fronts; each device adds its own
 * fixed offset (its height, up to ±60 Pa, about ±5 m) and noise.
 */
export function createPressureSensor (init: PressureInit = {}): Sensor {
  const { seed, device } = simIdentity(init)
  const mean = init.mean ?? 101_325
  const phi = init.phi ?? 0.986
  const walk = { stepMs: init.stepMs ?? 3_600_000, phi, sigma: (init.deviation ?? 600) * Math.sqrt(1 - phi * phi) }
  const offset = between(unitAt(seed, device, 'pressure', 'offset'), -60, 60)
  const noise = init.noise ?? 3
  const resolution = init.resolution ?? 1
  return simSensor('pressure', ['pressure'], (now) => {
    const v = mean + walkAt([seed, 'weather'], now, walk) + offset + noise * normalAt(seed, device, 'pressure', now)
    return [{ n: 'pressure', u: 'Pa', v: quantize(v, resolution) }]
  })
}
