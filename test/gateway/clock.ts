/** A manual clock for gateway tests: time moves only when the test says so. Not a test file. */
import type { Clock } from '../../gateway/index.js'

export interface ManualClock extends Clock {
  advance (ms: number): void
  readonly pending: number
}

export function manualClock (): ManualClock {
  let now = 0
  const timers = new Set<{ at: number, fn: () => void }>()
  return {
    now: () => now,
    setTimeout: (fn, ms) => {
      const handle = { at: now + ms, fn }
      timers.add(handle)
      return handle
    },
    clearTimeout: (handle) => { timers.delete(handle as { at: number, fn: () => void }) },
    advance (ms) {
      now += ms
      for (const handle of [...timers].sort((a, b) => a.at - b.at)) {
        if (handle.at <= now && timers.delete(handle)) handle.fn()
      }
    },
    get pending () { return timers.size }
  }
}
