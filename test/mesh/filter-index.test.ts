import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { filterCoversDevice, topicMatches } from '../../shared/index.js'
import { FilterIndex } from '../../mesh/routing/filter-index.js'

/**
 * The interest table finds the subscribers a topic interests in a trie of their filters
 * (mesh/routing/filter-index.ts); it must answer exactly what matching every filter one by one
 * answers (shared/topics.ts topicMatches, MQTT 3.1.1 §4.7, and filterCoversDevice), through
 * any sequence of filters added and removed.
 */

const LEVELS = ['iotmesh', 'f', 'd', 'telemetry', 'a', '', '$SYS']
const level = fc.constantFrom(...LEVELS)
const filterLevel = fc.constantFrom(...LEVELS, '+')
/** Valid filters: levels, "+", and "#" only as the whole last level. */
const filter = fc.tuple(fc.array(filterLevel, { minLength: 0, maxLength: 5 }), fc.boolean())
  .filter(([levels, hash]) => levels.length > 0 || hash)
  .map(([levels, hash]) => [...levels, ...(hash ? ['#'] : [])].join('/'))
const topic = fc.array(level, { minLength: 1, maxLength: 5 }).map((levels) => levels.join('/'))
const subscriber = fc.constantFrom('s1', 's2', 's3')

describe('the filter index (filter-index.ts)', () => {
  it('matches and covers exactly as every filter tried in turn, through adds and removes', () => {
    fc.assert(fc.property(
      fc.array(fc.tuple(subscriber, filter, fc.boolean()), { maxLength: 30 }),
      fc.array(topic, { minLength: 1, maxLength: 8 }),
      fc.tuple(level, level),
      (ops, topics, [fleet, device]) => {
        const index = new FilterIndex()
        const held = new Map<string, Set<string>>() // subscriber -> filters
        for (const [s, f, add] of ops) {
          const set = held.get(s) ?? new Set()
          held.set(s, set)
          if (add && !set.has(f)) { set.add(f); index.update(s, f, 1) }
          if (!add && set.has(f)) { set.delete(f); index.update(s, f, -1) }
        }
        const expected = (test: (f: string) => boolean): string[] => [...held].filter(([, fs]) => [...fs].some(test)).map(([s]) => s).sort()
        for (const t of topics) expect([...index.match(t)].sort()).toEqual(expected((f) => topicMatches(f, t)))
        expect([...index.covering(['iotmesh', fleet, device])].sort()).toEqual(expected((f) => filterCoversDevice(f, fleet, device)))
      }
    ), { numRuns: 500 })
  })

  it('"#" matches the parent level, and wildcards at the root do not match "$" topics (MQTT 3.1.1 §4.7.1.2, §4.7.2)', () => {
    const index = new FilterIndex()
    index.update('a', 'sport/#', 1)
    index.update('b', '#', 1)
    index.update('c', '+/x', 1)
    expect([...index.match('sport')].sort()).toEqual(['a', 'b'])
    expect([...index.match('$SYS/x')]).toEqual([])
    expect([...index.match('y/x')].sort()).toEqual(['b', 'c'])
  })

  it('forgets a removed filter entirely (empty levels are pruned)', () => {
    const index = new FilterIndex()
    index.update('t', 'iotmesh/f', 1)
    for (let i = 0; i < 100; i++) index.update('s', `iotmesh/f/d${i}/x/#`, 1)
    expect(index.nodes).toBe(2 + 2 * 100)
    for (let i = 0; i < 100; i++) index.update('s', `iotmesh/f/d${i}/x/#`, -1)
    expect(index.nodes).toBe(2)
    expect([...index.match('iotmesh/f/d1/x/y')]).toEqual([])
    expect([...index.covering(['iotmesh', 'f', 'd1'])]).toEqual([])
    expect([...index.match('iotmesh/f')]).toEqual(['t'])
  })
})
