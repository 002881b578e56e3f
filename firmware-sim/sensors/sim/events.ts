import { unitAt } from '../../random.js'

/**
 * Poisson-ish events as a pure function of time: time is cut into slots of `slotMs`, and a slot
 * holds an event with probability rate × slot length (a Bernoulli approximation of a Poisson
 * process, exact enough while that product is small). `eventIn` answers for one slot from
 * (seed, device, kind, slot), so any sampling schedule sees the same events.
 */
export const SLOT_MS = 1000

export interface EventProcess {
  readonly key: readonly [number, number, string]
  /** Events per hour, which may vary with time (a daily rhythm). */
  readonly ratePerHour: (slotStart: number) => number
}

const CACHE_SLOTS = 4096
const caches = new WeakMap<EventProcess, Map<number, boolean>>()

/** Whether `slot` holds an event. Pure, so recent answers are cached (sensors read forward in time). */
export function eventIn (process: EventProcess, slot: number): boolean {
  let cache = caches.get(process)
  if (cache === undefined) {
    cache = new Map()
    caches.set(process, cache)
  }
  const known = cache.get(slot)
  if (known !== undefined) return known
  const p = process.ratePerHour(slot * SLOT_MS) * SLOT_MS / 3_600_000
  const event = unitAt(...process.key, slot) < p
  if (cache.size >= CACHE_SLOTS) cache.delete(cache.keys().next().value as number)
  cache.set(slot, event)
  return event
}

/** Event slots in (from, to], oldest first. */
export function eventsBetween (process: EventProcess, from: number, to: number): number[] {
  const out: number[] = []
  for (let slot = Math.floor(from / SLOT_MS) + 1; slot <= Math.floor(to / SLOT_MS); slot++) {
    if (eventIn(process, slot)) out.push(slot)
  }
  return out
}

/** Reports a state on change (and on the first read), or at every read. */
export function reporter<T> (mode: 'change' | 'always'): (state: T) => boolean {
  let last: { state: T } | undefined
  return (state) => {
    const changed = last === undefined || last.state !== state
    last = { state }
    return mode === 'always' || changed
  }
}
