import { meshError } from '../../../shared/index.js'
import { unitAt } from '../../random.js'
import type { Sensor, SensorReading } from '../types.js'
import { simIdentity, type SimInit } from './climate.js'

/**
 * Sensor faults, when asked for. Time is cut into windows of `durationMs`; each window is faulty
 * with probability `chance`, drawn from (seed, device, sensor, fault, window), so faults are as
 * reproducible as the readings. A dropout yields nothing for its window; a stuck sensor repeats
 * the last reading it gave before the window, for the whole window. Dropout wins over stuck.
 */

export interface FaultSpec {
  /** Share of windows with the fault, in [0, 1]: 0 never, 1 always. */
  chance: number
  /** Window length, ms (how long one fault lasts). */
  durationMs: number
}

export interface SensorFaults {
  stuck?: FaultSpec
  dropout?: FaultSpec
}

export type SensorFaultKind = 'stuck' | 'dropout'

/** A sensor that can say which fault, if any, it has at a time (the ground truth of a fault experiment). */
export interface FaultySensor extends Sensor {
  faultAt (now: number): SensorFaultKind | undefined
}

export function checkFaults (faults: SensorFaults, sensor: string): SensorFaults {
  for (const kind of ['stuck', 'dropout'] as const) {
    const spec = faults[kind]
    if (spec === undefined) continue
    if (!(typeof spec.chance === 'number' && spec.chance >= 0 && spec.chance <= 1)) {
      throw meshError('ERR_BAD_ARGUMENT', `${sensor} ${kind}.chance must be a number from 0 to 1, got ${JSON.stringify(spec.chance)}`)
    }
    if (!(Number.isSafeInteger(spec.durationMs) && spec.durationMs > 0)) {
      throw meshError('ERR_BAD_ARGUMENT', `${sensor} ${kind}.durationMs must be a positive integer (ms), got ${JSON.stringify(spec.durationMs)}`)
    }
  }
  return faults
}

/** A sensor with seeded faults as told (stuck, dropout), which says which fault it has at a time. */
export function withSensorFaults (sensor: Sensor, faults: SensorFaults | undefined, init: SimInit = {}): FaultySensor {
  const spec = checkFaults(faults ?? {}, sensor.name)
  const { seed, device } = simIdentity(init)
  const active = (kind: SensorFaultKind, now: number): boolean => {
    const f = spec[kind]
    if (f === undefined || f.chance === 0) return false
    return unitAt(seed, device, sensor.name, kind, Math.floor(now / f.durationMs)) < f.chance
  }
  const faultAt = (now: number): SensorFaultKind | undefined =>
    active('dropout', now) ? 'dropout' : active('stuck', now) ? 'stuck' : undefined
  let last: SensorReading
  const remember = (reading: SensorReading): SensorReading => {
    if (reading !== undefined) last = reading
    return reading
  }
  return {
    name: sensor.name,
    fields: sensor.fields,
    topic: sensor.topic,
    faultAt,
    read (now) {
      const fault = faultAt(now)
      if (fault === 'dropout') return undefined
      if (fault === 'stuck' && last !== undefined) return last.map((record) => ({ ...record }))
      const reading = sensor.read(now)
      return reading instanceof Promise ? reading.then(remember) : remember(reading)
    },
    close: () => sensor.close()
  }
}
