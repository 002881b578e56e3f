import type { DeviceId } from '../../shared/index.js'

/**
 * The subscribers' topic filters as a trie of levels (MQTT 3.1.1 §4.7, the structure aedes
 * matches with qlobber): which subscribers a topic interests costs the nodes on the topic's
 * paths (a literal level and "+" at each level) plus the subscribers found, never a match of
 * every filter of every subscriber. Filters that do not match a topic cost it nothing, so a
 * neighbour that declares thousands of filters matching nothing does not slow a frame down.
 *
 * Each node counts, per subscriber, the filters that end at it (`ends`), end in "#" just below
 * it (`hash`), and continue below it at all (`through`, for `covering`). Insert and remove are
 * O(levels) per filter; empty nodes are pruned.
 */

type Counts = Map<DeviceId, number>

interface Node {
  readonly children: Map<string, Node>
  readonly ends: Counts
  readonly hash: Counts
  readonly through: Counts
}

const node = (): Node => ({ children: new Map(), ends: new Map(), hash: new Map(), through: new Map() })

function bump (counts: Counts, subscriber: DeviceId, delta: 1 | -1): void {
  const n = (counts.get(subscriber) ?? 0) + delta
  if (n > 0) counts.set(subscriber, n)
  else counts.delete(subscriber)
}

export class FilterIndex {
  readonly #root = node()
  #nodes = 0

  /** Trie nodes below the root (what the index holds). */
  get nodes (): number { return this.#nodes }

  /** Adds (or, with -1, removes) one filter of `subscriber`. The filter must be valid (validateFilter). */
  update (subscriber: DeviceId, filter: string, delta: 1 | -1): void {
    const path: Array<[Node, string]> = []
    let at = this.#root
    let hash = false
    for (const level of filter.split('/')) {
      bump(at.through, subscriber, delta)
      if (level === '#') {
        bump(at.hash, subscriber, delta)
        hash = true
        break
      }
      let child = at.children.get(level)
      if (child === undefined) {
        if (delta < 0) return // not indexed: nothing to remove (cannot happen for a filter added before)
        at.children.set(level, child = node())
        this.#nodes++
      }
      path.push([at, level])
      at = child
    }
    if (!hash) bump(at.ends, subscriber, delta)
    if (delta > 0) return
    for (let i = path.length - 1; i >= 0; i--) {
      const [parent, level] = path[i] as [Node, string]
      const child = parent.children.get(level) as Node
      if (child.children.size > 0 || child.through.size > 0 || child.ends.size > 0) break
      parent.children.delete(level)
      this.#nodes--
    }
  }

  /** Subscribers with a filter that matches `topic` (MQTT 3.1.1 §4.7: "+" one level, "#" the rest, even none). */
  match (topic: string): Set<DeviceId> {
    const levels = topic.split('/')
    const out = new Set<DeviceId>()
    // §4.7.2: a filter starting with a wildcard does not match a topic starting with "$".
    const system = topic.startsWith('$')
    const visit = (at: Node, i: number): void => {
      if (!(system && i === 0)) for (const s of at.hash.keys()) out.add(s)
      if (i === levels.length) {
        for (const s of at.ends.keys()) out.add(s)
        return
      }
      const literal = at.children.get(levels[i] as string)
      if (literal !== undefined) visit(literal, i + 1)
      const plus = system && i === 0 ? undefined : at.children.get('+')
      if (plus !== undefined) visit(plus, i + 1)
    }
    visit(this.#root, 0)
    return out
  }

  /**
   * True when some filter has the literal level `level` right after levels that match `prefix`
   * (each literally or by "+"): whether a topic's level there can matter to a match, or every value
   * of it matches alike (interest.ts: an origin no filter names).
   */
  names (prefix: readonly string[], level: string): boolean {
    const visit = (at: Node, i: number): boolean => {
      if (i === prefix.length) return at.children.has(level)
      const literal = at.children.get(prefix[i] as string)
      if (literal !== undefined && visit(literal, i + 1)) return true
      const plus = at.children.get('+')
      return plus !== undefined && visit(plus, i + 1)
    }
    return visit(this.#root, 0)
  }

  /**
   * Subscribers with a filter that covers some topic below `prefix`'s levels: one whose first
   * levels match them and that goes deeper, or that ends in "#" on the way (as filterCoversDevice
   * in shared/topics.ts, for prefix iotmesh/<fleet>/<device>).
   */
  covering (prefix: readonly string[]): Set<DeviceId> {
    const out = new Set<DeviceId>()
    const visit = (at: Node, i: number): void => {
      if (i === prefix.length) {
        for (const s of at.through.keys()) out.add(s)
        return
      }
      for (const s of at.hash.keys()) out.add(s)
      const literal = at.children.get(prefix[i] as string)
      if (literal !== undefined) visit(literal, i + 1)
      const plus = at.children.get('+')
      if (plus !== undefined) visit(plus, i + 1)
    }
    visit(this.#root, 0)
    return out
  }
}
