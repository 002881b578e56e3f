import { meshError } from '../../../shared/index.js'
import { unitAt } from '../../random.js'
import type { Sensor } from '../types.js'
import { simSensor } from './base.js'
import { simIdentity, type SimInit } from './climate.js'
import { SLOT_MS, eventsBetween, reporter, type EventProcess } from './events.js'

export interface DoorInit extends SimInit {
  /** Openings per hour; default 2. */
  ratePerHour?: number
  /** Shortest and longest time a door stays open, ms; default 5 s and 90 s. */
  minOpenMs?: number
  maxOpenMs?: number
  /** `change` (default): a record only when the door opens or closes (and at the first read); `always`: every read. */
  report?: 'change' | 'always'
}

/** `door` (vb, true = open) on the `events/door` topic: Poisson openings, each open for a drawn time. */
export function createDoorSensor (init: DoorInit = {}): Sensor {
  const { seed, device } = simIdentity(init)
  const rate = init.ratePerHour ?? 2
  const minOpen = init.minOpenMs ?? 5_000
  const maxOpen = init.maxOpenMs ?? 90_000
  if (!(rate >= 0)) throw meshError('ERR_BAD_ARGUMENT', `door ratePerHour must be ≥ 0, got ${rate}`)
  if (!(minOpen > 0 && maxOpen >= minOpen)) throw meshError('ERR_BAD_ARGUMENT', `door needs 0 < minOpenMs ≤ maxOpenMs, got ${minOpen} and ${maxOpen}`)
  const process: EventProcess = { key: [seed, device, 'door'], ratePerHour: () => rate }
  const openFor = (slot: number): number => minOpen + unitAt(seed, device, 'door', 'open', slot) * (maxOpen - minOpen)
  const report = reporter<boolean>(init.report ?? 'change')
  return simSensor('door', ['door'], (now) => {
    const open = eventsBetween(process, now - maxOpen - SLOT_MS, now).some((slot) => slot * SLOT_MS + openFor(slot) > now)
    return report(open) ? [{ n: 'door', vb: open }] : undefined
  }, 'events/door')
}
