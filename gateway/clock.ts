/**
 * Every timer in gateway/ passes through a `Clock` (undici's one timer module), so tests inject a
 * manual clock or vitest fake timers and replay exactly. Same shape as mesh's clock, so one object
 * can drive both.
 */
export interface Clock {
  /** Milliseconds on a monotonic scale. */
  now (): number
  setTimeout (fn: () => void, ms: number): unknown
  clearTimeout (handle: unknown): void
}

/** The process clock, unref'd: a timer never keeps a process alive. Looks `setTimeout` up at call time, so fake timers apply. */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => {
    const timer = setTimeout(fn, ms)
    timer.unref?.()
    return timer
  },
  clearTimeout: (handle) => { clearTimeout(handle as ReturnType<typeof setTimeout>) }
}
