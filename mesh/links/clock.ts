/**
 * Every timer in mesh/links passes through a `Clock` (undici's one timer module; MQTT.js's
 * KeepaliveManager takes a timer), so tests inject a manual clock and replay exactly.
 */
export interface Clock {
  /** Milliseconds on a monotonic scale. */
  now (): number
  setTimeout (fn: () => void, ms: number): TimerHandle
  clearTimeout (handle: TimerHandle): void
}

export type TimerHandle = unknown

/** The process clock. Looks `setTimeout` up at call time, so vitest fake timers apply. */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => {
    const timer = setTimeout(fn, ms)
    timer.unref?.()
    return timer
  },
  clearTimeout: (handle) => { clearTimeout(handle as ReturnType<typeof setTimeout>) }
}
