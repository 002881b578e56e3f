import { describe, expect, it } from 'vitest'
import { mulberry32 } from '../../shared/index.js'
import { chooseDials } from './traffic.js'

/**
 * The traffic bench's topology (issue 15): each node dials three random earlier ones. Drawn among
 * all earlier nodes, the first few were dialed by ~3 ln N others, past MeshNode's 12 inbound slots:
 * the run measured eviction churn (links closed and redialed every 30 s) as routing traffic.
 */
function inDegrees (size: number, cap: number, seed: number): number[] {
  const draw = mulberry32(seed)
  const inbound = new Map<number, number>()
  const nodes: number[] = []
  for (let i = 0; i < size; i++) {
    const dials = chooseDials(nodes, inbound, cap, 3, draw)
    expect(new Set(dials).size).toBe(Math.min(3, i))
    nodes.push(i)
  }
  return nodes.map((n) => inbound.get(n) ?? 0)
}

describe('traffic bench topology', () => {
  it('never dials a node past its inbound slots, and still gives every node three links out', () => {
    for (const seed of [1, 2, 3, 7]) expect(Math.max(...inDegrees(200, 12, seed))).toBeLessThanOrEqual(12)
  })

  it('an unbounded draw does exceed them at 50 nodes (what the bench measured before)', () => {
    const over = [1, 2, 3, 7].filter((seed) => Math.max(...inDegrees(50, Infinity, seed)) > 12)
    expect(over.length).toBeGreaterThan(0)
  })
})
