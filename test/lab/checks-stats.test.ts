import { describe, expect, it } from 'vitest'
import { differenceInterval, wilson } from '../../lab/results/checks.js'

/** The statistics behind checks phrased as hypotheses (lab/results/checks.ts). */

describe('intervals for proportions', () => {
  it('Wilson\'s score interval matches published values, and stays inside [0, 1] at 0 % and 100 %', () => {
    // Newcombe 1998, Table I: 81/263 → 0.2553 to 0.3662 (method 3, Wilson).
    const [lo, hi] = wilson(81, 263)
    expect(lo).toBeCloseTo(0.2553, 4)
    expect(hi).toBeCloseTo(0.3662, 4)
    expect(wilson(0, 10)[0]).toBe(0)
    expect(wilson(10, 10)[1]).toBe(1)
    expect(wilson(10, 10)[0]).toBeCloseTo(0.7225, 4)
  })

  it('Newcombe\'s hybrid score interval of a difference matches the paper\'s worked examples', () => {
    // Newcombe 1998, Table II, method 10: 56/70 − 48/80 → 0.0524 to 0.3339; 9/10 − 3/10 → 0.1705 to 0.8090.
    const [a, b] = differenceInterval(56, 70, 48, 80)
    expect(a).toBeCloseTo(0.0524, 4)
    expect(b).toBeCloseTo(0.3339, 4)
    const [c, d] = differenceInterval(9, 10, 3, 10)
    expect(c).toBeCloseTo(0.1705, 4)
    expect(d).toBeCloseTo(0.8090, 4)
  })

  it('how many readings a one-point difference needs: 36 cannot tell it, 3,000 can', () => {
    expect(differenceInterval(35, 36, 36, 36)[0]).toBeLessThan(-0.01) // one late reading of 36: far from decided
    expect(differenceInterval(35, 36, 36, 36)[1]).toBeGreaterThan(-0.01)
    expect(differenceInterval(3000, 3000, 3000, 3000)[0]).toBeGreaterThan(-0.01) // decided: holds
    expect(differenceInterval(2900, 3000, 3000, 3000)[1]).toBeLessThan(-0.01) // decided: fails (96.7 % against 100 %)
  })
})
