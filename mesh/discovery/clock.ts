import type { Clock } from './types.js'

/**
 * Monotonic time (a device's wall clock may jump when NTP first syncs) and unref'd timers:
 * discovery alone never keeps a process alive (its socket does). Same shape as mesh/clock.ts.
 */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => { clearTimeout(handle as ReturnType<typeof setTimeout>) }
}
