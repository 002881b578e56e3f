import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { SeqSet } from '../../firmware-sim/fleet/seq-set.js'

describe('SeqSet (the fleet\'s count of distinct readings at the gateway)', () => {
  it('behaves as a Set of numbers, in any order of arrival', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 200 }), { maxLength: 300 }), (seqs) => {
      const model = new Set<number>()
      const set = new SeqSet()
      for (const seq of seqs) {
        expect(set.add(seq)).toBe(!model.has(seq))
        model.add(seq)
      }
      expect(set.size).toBe(model.size)
      for (let seq = -1; seq <= 201; seq++) expect(set.has(seq)).toBe(model.has(seq))
    }))
  })

  it('holds one range for numbers that arrive in order, one more per gap', () => {
    const set = new SeqSet()
    for (let seq = 1_000_000; seq < 1_010_000; seq++) set.add(seq)
    expect([set.size, set.ranges]).toEqual([10_000, 1])
    set.add(1_010_005)
    expect(set.ranges).toBe(2)
    for (let seq = 1_010_000; seq < 1_010_005; seq++) set.add(seq)
    expect([set.size, set.ranges]).toEqual([10_006, 1])
  })
})
