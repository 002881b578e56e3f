import { describe, expect, it } from 'vitest'
import { NewSubscribers } from '../../mesh/routing/introductions.js'
import type { DeviceId } from '../../shared/index.js'

/** The count of new subscribers each neighbour names (mesh/routing/introductions.ts). */
describe('new subscribers named per neighbour', () => {
  const id = (i: number): DeviceId => `s${i}` as DeviceId
  const a = 'A' as DeviceId
  const b = 'B' as DeviceId

  it('takes `allowance` distinct names per neighbour, refuses the rest, and keeps no more', () => {
    const names = new NewSubscribers({ allowance: 3, windowMs: 1000 })
    expect([0, 1, 2, 3, 4].map((i) => names.name(a, id(i), 0))).toEqual([true, true, true, false, false])
    expect(names.named(a, 0)).toBe(3)
    // Each neighbour has its own allowance.
    expect(names.name(b, id(9), 0)).toBe(true)
  })

  it('a name named again counts once (a refused subscriber re-announced with each version)', () => {
    const names = new NewSubscribers({ allowance: 2, windowMs: 1000 })
    for (let round = 0; round < 10; round++) {
      expect(names.name(a, id(0), round * 100)).toBe(true)
      expect(names.name(a, id(1), round * 100)).toBe(true)
    }
    expect(names.named(a, 900)).toBe(2)
  })

  it('a name kept being named stays; one not named for two windows is forgotten', () => {
    const names = new NewSubscribers({ allowance: 2, windowMs: 1000 })
    names.name(a, id(0), 0)
    names.name(a, id(1), 0)
    expect(names.name(a, id(2), 500)).toBe(false)
    // Next window: id(0) named again (moves to the current window), id(1) not.
    expect(names.name(a, id(0), 1000)).toBe(true)
    expect(names.named(a, 1500)).toBe(2)
    // The window after: id(1), not named for two windows, is gone; room for a new one.
    expect(names.name(a, id(2), 2000)).toBe(true)
    expect(names.named(a, 2000)).toBe(2)
    expect(names.name(a, id(3), 2000)).toBe(false)
    // Silence for two windows: everything forgotten.
    expect(names.named(a, 4000)).toBe(0)
  })

  it('forgets a neighbour whose link closed', () => {
    const names = new NewSubscribers({ allowance: 1, windowMs: 1000 })
    names.name(a, id(0), 0)
    expect(names.name(a, id(1), 0)).toBe(false)
    names.dropVia(a)
    expect(names.name(a, id(1), 0)).toBe(true)
  })
})
