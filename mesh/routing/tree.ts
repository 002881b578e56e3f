/**
 * The eager/lazy broadcast tree for frames whose subscribers are most of the fleet (issue 15).
 *
 * Interest routing (interest.ts `targets`) sends a frame along the shortest path to each
 * subscriber it interests. When every node subscribes, the union of those paths covers most of
 * the mesh's links, and each node hears a reading from several neighbours (1.8 duplicates per node
 * per reading at 50 nodes). A broadcast reaches each node once when it follows a spanning tree.
 *
 * The eager half: the tree of each origin is the reverse of the routes towards it (reverse-path
 * forwarding, as DVMRP does, RFC 1075 §3.1, over the distance vector interest routing keeps
 * anyway: with every node subscribing, every origin is a subscriber and every node has a route to
 * it). A node sends a frame of origin O to each neighbour that routes O through it: with
 * poisoned reverse, a neighbour whose next hop towards O is this node advertises O to it as
 * unreachable (interest.ts `advertised`), and one with no route at all does too (it gets the
 * frame: nobody else would send it). Each node's next hop towards O is one neighbour, so each
 * node gets each frame from exactly one neighbour while routes agree: no duplicates, every node
 * reached, and no state, messages or signatures beyond what routing holds already.
 *
 * The lazy half: DIGEST/WANT (handlers/sync.ts), as for every frame: each neighbour is told every
 * `syncInterval` what changed among the origins it leads to subscribers of, and a node asks
 * (WANT) for what it still lacks `graftDelay` later. A frame lost while routes move (a link cut,
 * a route that moved and was not yet heard of) costs latency, never the reading.
 *
 * Plumtree (Leitão, Pereira, Rodrigues, SRDS 2007), which builds the eager set from duplicates
 * (PRUNE) and repairs (GRAFT), was tried first and measured (README "Routing"): with one eager set
 * for all origins and every node publishing at once, prunes for different origins crossed and
 * cut the tree apart, the grafts that mended it made cycles again, and it had not settled after
 * 12 rounds on 24 nodes (650–1,000 duplicates a round of 576 readings delivered).
 */

export interface TreeInit {
  /**
   * Use the tree for broad interest (default false: interest routing for every frame). Off by default
   * until what one loaded bench run lost with it is understood (README "Routing").
   */
  enabled?: boolean
  /**
   * Fewest subscribers (this node included when it subscribes) a frame must interest to go by
   * the tree (default 8): below it, interest routing's paths to the few are cheaper than a broadcast.
   */
  minSubscribers?: number
}

export const TREE_DEFAULTS: Readonly<Required<TreeInit>> = Object.freeze({ enabled: false, minSubscribers: 8 })

/** How often the count of nodes this node knows of is taken again, ms. */
const KNOWN_EVERY_MS = 1000

export class BroadcastTree {
  readonly enabled: boolean
  readonly minSubscribers: number
  #known = 1
  #knownAt = -Infinity

  constructor (init: TreeInit = {}) {
    this.enabled = init.enabled ?? TREE_DEFAULTS.enabled
    this.minSubscribers = Math.max(1, init.minSubscribers ?? TREE_DEFAULTS.minSubscribers)
  }

  /**
   * Whether a frame that interests `matched` subscribers goes by the tree: at least
   * `minSubscribers`, and at least half of the nodes this node knows of (`count`, taken at most
   * once a second: subscribers it has routes to, origins it holds frames of, its neighbours and
   * itself). Every node of a fleet where most nodes subscribe reaches the same answer from its
   * own state; where two disagree (a relay that knows fewer origins), what one path left out
   * the other's DIGESTs announce, and it is fetched (WANT).
   */
  uses (matched: number, count: () => number, now: number): boolean {
    if (!this.enabled || matched < this.minSubscribers) return false
    if (now - this.#knownAt >= KNOWN_EVERY_MS) {
      this.#known = Math.max(1, count())
      this.#knownAt = now
    }
    return 2 * matched >= this.#known
  }
}
