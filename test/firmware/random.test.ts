import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { mulberry32 } from '../../shared/index.js'
import { hashKey, normalAt, quantize, quantizeDown, unitAt, walkAt } from '../../firmware-sim/index.js'

describe('seeded randomness', () => {
  it('mulberry32 repeats for a seed, differs across seeds, stays in [0, 1)', () => {
    const take = (seed: number): number[] => { const r = mulberry32(seed); return Array.from({ length: 1000 }, r) }
    expect(take(7)).toEqual(take(7))
    expect(take(7)).not.toEqual(take(8))
    const values = take(123)
    for (const v of values) {
      expect(v).toBeGreaterThanOrEqual(0)
      expect(v).toBeLessThan(1)
    }
    expect(values.reduce((s, v) => s + v, 0) / values.length).toBeCloseTo(0.5, 1)
  })

  it('hashKey is a pure function of its parts, in order, telling numbers and strings apart', () => {
    fc.assert(fc.property(fc.array(fc.oneof(fc.integer(), fc.double({ noNaN: true }), fc.string())), (parts) => {
      expect(hashKey(...parts)).toBe(hashKey(...parts))
      expect(hashKey(...parts)).toBeGreaterThanOrEqual(0)
      expect(hashKey(...parts)).toBeLessThan(2 ** 32)
    }))
    expect(hashKey(1, 2)).not.toBe(hashKey(2, 1))
    expect(hashKey(1)).not.toBe(hashKey('1'))
    expect(hashKey(1, 'ab')).not.toBe(hashKey(1, 'a', 'b'))
    expect(hashKey(2 ** 40)).not.toBe(hashKey(0)) // the high word counts
  })

  it('unitAt is uniform and normalAt is a standard normal', () => {
    const units = Array.from({ length: 20_000 }, (_, i) => unitAt(1, 'u', i))
    const buckets = Array.from({ length: 10 }, (_, b) => units.filter((u) => Math.floor(u * 10) === b).length)
    for (const count of buckets) expect(Math.abs(count - 2000)).toBeLessThan(200)
    const normals = Array.from({ length: 20_000 }, (_, i) => normalAt(1, 'n', i))
    const mean = normals.reduce((s, x) => s + x, 0) / normals.length
    const sd = Math.sqrt(normals.reduce((s, x) => s + (x - mean) ** 2, 0) / normals.length)
    expect(Math.abs(mean)).toBeLessThan(0.03)
    expect(Math.abs(sd - 1)).toBeLessThan(0.03)
  })

  it('walkAt is the same curve whatever order it is sampled in', () => {
    const walk = { stepMs: 1000, phi: 0.9, sigma: 1 }
    const times = Array.from({ length: 200 }, (_, i) => i * 137)
    const forward = times.map((t) => walkAt([5, 'w'], t, walk))
    const backward = [...times].reverse().map((t) => walkAt([5, 'w'], t, walk)).reverse()
    expect(backward).toEqual(forward)
    expect(walkAt([6, 'w'], 500, walk)).not.toBe(walkAt([5, 'w'], 500, walk))
  })

  it('quantize rounds to a resolution without binary noise', () => {
    expect(quantize(21.4999999, 0.1)).toBe(21.5)
    expect(quantize(0.1 + 0.2, 0.1)).toBe(0.3)
    expect(quantize(101325.4, 1)).toBe(101325)
    expect(quantize(38.27, 0.5)).toBe(38.5)
    expect(quantizeDown(3.999, 0.01)).toBe(3.99)
    expect(quantizeDown(4, 0.01)).toBe(4)
    fc.assert(fc.property(fc.double({ min: -1e6, max: 1e6, noNaN: true }), (x) => {
      const q = quantize(x, 0.01)
      expect(Math.abs(q - x)).toBeLessThanOrEqual(0.005 + 1e-9)
      expect((String(q).split('.')[1] ?? '').length).toBeLessThanOrEqual(2)
    }))
  })
})
