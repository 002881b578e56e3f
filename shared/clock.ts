/**
 * The one clock of iotmesh. Every timer and every timestamp in mesh/, gateway/ and firmware-sim/
 * comes from a `Clock` passed down as a component (undici's one timer module; MQTT.js's
 * KeepaliveManager takes a timer), so a test or a seeded simulation injects a manual clock and
 * replays exactly. Pure: `setTimeout` and `performance` exist in browsers and in Node.
 */
export interface Clock {
  /** Milliseconds on a monotonic scale: for durations, timeouts and rates. */
  now (): number
  /** Milliseconds since the Unix epoch: for sampling times and stamps people read. */
  wall (): number
  setTimeout (fn: () => void, ms: number): TimerHandle
  clearTimeout (handle: TimerHandle): void
}

export type TimerHandle = unknown

/**
 * The process clock. Timers are unref'd where the runtime has that (Node): a timer never keeps a
 * process alive. `setTimeout` and `Date.now` are looked up at call time, so vitest fake timers apply.
 */
export const systemClock: Clock = {
  now: () => performance.now(),
  wall: () => Date.now(),
  setTimeout: (fn, ms) => {
    const timer = setTimeout(fn, ms) as unknown as { unref?: () => void }
    timer.unref?.()
    return timer
  },
  clearTimeout: (handle) => { clearTimeout(handle as ReturnType<typeof setTimeout>) }
}

/**
 * Calls `fn` every `ms` until the returned function is called, on a fixed schedule: the k-th call
 * is due `k × ms` after the start, whenever the ones before it ran. A timer that fires late (a busy
 * event loop: a hundred devices in one process) makes the next one come sooner instead of pushing
 * every later call back; re-arming after each call would drift by that lateness every time (a
 * device at 1 reading/s made 0.97 a second with 100 others beside it). A call that falls a whole
 * interval behind is skipped, not made up in a burst: the schedule keeps its phase.
 */
export function every (clock: Clock, ms: number, fn: () => void): () => void {
  let handle: TimerHandle | undefined
  let stopped = false
  let due = clock.now() + ms
  const tick = (): void => {
    if (stopped) return
    fn()
    if (stopped) return
    const now = clock.now()
    due += ms
    if (due <= now) due += Math.ceil((now - due + 1) / ms) * ms
    handle = clock.setTimeout(tick, due - now)
  }
  handle = clock.setTimeout(tick, ms)
  return () => {
    stopped = true
    if (handle !== undefined) clock.clearTimeout(handle)
  }
}

/** A clock whose time moves only when told (tests, seeded simulations). Timers fire in time order. */
export interface ManualClock extends Clock {
  /** Moves time forward by `ms`, firing every timer that falls due on the way, in order. */
  advance (ms: number): void
  /** Timers not yet fired. */
  readonly pending: number
}

/** A clock that moves only when told (`advance`), for tests. */
export function manualClock (init: { start?: number, wallStart?: number } = {}): ManualClock {
  let now = init.start ?? 0
  const wallOffset = (init.wallStart ?? 1_700_000_000_000) - now
  let order = 0
  const timers = new Set<{ at: number, order: number, fn: () => void }>()
  const due = (until: number): { at: number, order: number, fn: () => void } | undefined => {
    let first: { at: number, order: number, fn: () => void } | undefined
    for (const t of timers) if (t.at <= until && (first === undefined || t.at < first.at || (t.at === first.at && t.order < first.order))) first = t
    return first
  }
  return {
    now: () => now,
    wall: () => now + wallOffset,
    setTimeout: (fn, ms) => {
      const handle = { at: now + Math.max(0, ms), order: order++, fn }
      timers.add(handle)
      return handle
    },
    clearTimeout: (handle) => { timers.delete(handle as { at: number, order: number, fn: () => void }) },
    advance (ms) {
      const until = now + ms
      for (let t = due(until); t !== undefined; t = due(until)) {
        timers.delete(t)
        now = Math.max(now, t.at)
        t.fn()
      }
      now = until
    },
    get pending () { return timers.size }
  }
}
