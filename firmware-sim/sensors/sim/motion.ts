import { meshError } from '../../../shared/index.js'
import type { Sensor } from '../types.js'
import { simSensor } from './base.js'
import { createClimate, dailyCycle, type Climate, type ClimateInit } from './climate.js'
import { SLOT_MS, eventsBetween, reporter, type EventProcess } from './events.js'

export interface MotionInit extends ClimateInit {
  /** The climate whose daily cycle sets the rhythm (more motion by day); built from the init when absent. */
  climate?: Climate
  /** Mean motion events per hour over a day; default 6. */
  ratePerHour?: number
  /** A PIR detector's hold time: motion reads true this long after an event, ms; default 30 s. */
  holdMs?: number
  /** `change` (default): a record only when the state changes (and at the first read); `always`: every read. */
  report?: 'change' | 'always'
}

/** `motion` (vb) on the `events/motion` topic: true while a motion event is within the hold time. */
export function createMotionSensor (init: MotionInit = {}): Sensor {
  const climate = init.climate ?? createClimate(init)
  const rate = init.ratePerHour ?? 6
  const holdMs = init.holdMs ?? 30_000
  if (!(rate >= 0)) throw meshError('ERR_BAD_ARGUMENT', `motion ratePerHour must be ≥ 0, got ${rate}`)
  if (!(holdMs >= SLOT_MS)) throw meshError('ERR_BAD_ARGUMENT', `motion holdMs must be ≥ ${SLOT_MS}, got ${holdMs}`)
  // Daytime rhythm: 1.6× the mean at the climate's peak hour, 0.4× twelve hours later.
  const process: EventProcess = { key: [climate.seed, climate.device, 'motion'], ratePerHour: (t) => rate * (1 + 0.6 * dailyCycle(climate, t)) }
  const report = reporter<boolean>(init.report ?? 'change')
  return simSensor('motion', ['motion'], (now) => {
    const moving = eventsBetween(process, now - holdMs, now).length > 0
    return report(moving) ? [{ n: 'motion', vb: moving }] : undefined
  }, 'events/motion')
}
