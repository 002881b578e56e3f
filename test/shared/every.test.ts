import { describe, expect, it } from 'vitest'
import { every, type Clock } from '../../shared/index.js'

/** A clock whose timers fire when the test says, as late as it says (an event loop that was busy). */
function lateClock (): Clock & { fire: (at: number) => void, pending: () => number[] } {
  let now = 0
  const timers: Array<{ at: number, fn: () => void }> = []
  return {
    now: () => now,
    wall: () => now,
    setTimeout: (fn, ms) => { const t = { at: now + ms, fn }; timers.push(t); return t },
    clearTimeout: (handle) => { const i = timers.indexOf(handle as { at: number, fn: () => void }); if (i >= 0) timers.splice(i, 1) },
    fire: (at) => {
      const t = timers.shift()
      if (t === undefined) throw new Error('no timer')
      expect(at).toBeGreaterThanOrEqual(t.at)
      now = at
      t.fn()
    },
    pending: () => timers.map((t) => t.at)
  }
}

describe('every: a fixed schedule', () => {
  it('a late timer makes the next come sooner, not every later one later; a whole interval behind is skipped, the phase kept', () => {
    const clock = lateClock()
    const calls: number[] = []
    const stop = every(clock, 1000, () => { calls.push(clock.now()) })
    expect(clock.pending()).toEqual([1000])
    clock.fire(1030) // 30 ms late
    expect(clock.pending()).toEqual([2000]) // re-arming after the call would have said 2030
    clock.fire(2000)
    expect(clock.pending()).toEqual([3000])
    clock.fire(5500) // 2.5 intervals late: 4000 and 5000 are gone, no burst
    expect(clock.pending()).toEqual([6000])
    clock.fire(6000)
    expect(calls).toEqual([1030, 2000, 5500, 6000])
    stop()
    expect(clock.pending()).toEqual([])
  })

  it('stopping from inside the call arms nothing', () => {
    const clock = lateClock()
    const stop = every(clock, 100, () => { stop() })
    clock.fire(100)
    expect(clock.pending()).toEqual([])
  })
})
