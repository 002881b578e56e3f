import { between, quantizeDown, unitAt } from '../../random.js'
import type { Sensor } from '../types.js'
import { simSensor } from './base.js'
import { simIdentity, type SimInit } from './climate.js'

export interface BatteryInit extends SimInit {
  /** Hours from full to empty; default drawn per device from [168, 336) (one to two weeks). */
  lifeHours?: number
  /** Charge at `start`, %; default drawn per device from [85, 100). */
  initialLevel?: number
  /** When the battery was at `initialLevel`, ms since the epoch; default the first sample time. */
  start?: number
}

/**
 * Open-circuit voltage of a single Li-ion cell by state of charge: [level %, volts]. A typical
 * LiCoO2/graphite discharge curve: a steep knee below 10 %, a long plateau around 3.7–3.9 V.
 */
export const LI_ION_CURVE: ReadonlyArray<readonly [number, number]> = [
  [0, 3.0], [5, 3.45], [10, 3.68], [20, 3.74], [30, 3.77], [40, 3.79],
  [50, 3.82], [60, 3.87], [70, 3.92], [80, 3.98], [90, 4.06], [100, 4.2]
]

/** Cell voltage at a state of charge (linear between the points of LI_ION_CURVE). */
export function liIonVoltage (level: number): number {
  const clamped = Math.min(100, Math.max(0, level))
  for (let i = 1; i < LI_ION_CURVE.length; i++) {
    const [l1, v1] = LI_ION_CURVE[i] as readonly [number, number]
    if (clamped <= l1) {
      const [l0, v0] = LI_ION_CURVE[i - 1] as readonly [number, number]
      return v0 + (v1 - v0) * (clamped - l0) / (l1 - l0)
    }
  }
  return 4.2
}

/**
 * `battery` in %EL (remaining energy, rounded down to 1 %) and `battery-voltage` in V (0.01 V):
 * a linear drain from `initialLevel` over `lifeHours`; both never rise.
 */
export function createBatterySensor (init: BatteryInit = {}): Sensor {
  const { seed, device } = simIdentity(init)
  const lifeMs = (init.lifeHours ?? between(unitAt(seed, device, 'battery', 'life'), 168, 336)) * 3_600_000
  const initial = init.initialLevel ?? between(unitAt(seed, device, 'battery', 'initial'), 85, 100)
  let start = init.start
  return simSensor('battery', ['battery', 'battery-voltage'], (now) => {
    start ??= now
    const level = Math.max(0, initial - 100 * Math.max(0, now - start) / lifeMs)
    return [
      { n: 'battery', u: '%EL', v: quantizeDown(level, 1) },
      { n: 'battery-voltage', u: 'V', v: quantizeDown(liIonVoltage(level), 0.01) }
    ]
  })
}
