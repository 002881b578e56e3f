/**
 * Which inbound link gives its slot to a newcomer when every inbound slot is taken, so that Sybil
 * links cannot lock honest peers out. The rule follows Bitcoin Core's inbound eviction
 * (`AttemptToEvictConnection`, net.cpp), which takes from the network group holding the most
 * connections, so an attacker's many links from one address go before anyone else's:
 *   1. Peers the node keeps on purpose are never candidates (the caller leaves them out).
 *   2. From the source address that holds the most links, if it holds two or more: the least
 *      valuable (the router's score when a `value` hook is given, else 0), idlest first (the time
 *      since its last message; a link that never sent one counts from when it opened).
 *   3. Otherwise every source holds one link: the least valuable goes only if it is worth less
 *      than 0 by the hook, or idle for `idleMs`; else no one is evicted and the newcomer is refused
 *      (so honest peers from distinct addresses do not churn each other out).
 * No link is protected for its youth: an attacker that keeps recycling its links would keep them
 * all young. A newcomer is protected by having just arrived: it is the least idle of its group.
 */

export interface EvictionCandidate<T> {
  readonly item: T
  /** Source address; links without one each count as their own source. */
  readonly address: string | undefined
  readonly openedAt: number
  readonly lastMessageAt: number
  /** Higher is more valuable (a peer score); undefined: no opinion. */
  readonly value: number | undefined
}

export interface EvictionPolicy {
  /** A link alone from its source is evicted only once idle this long (default 60 s), or worth < 0. */
  idleMs?: number
}

export const DEFAULT_EVICTION: Required<EvictionPolicy> = { idleMs: 60_000 }

/** Least valuable first, then idlest (longest since its last message), then youngest. */
function worse<T> (a: EvictionCandidate<T>, b: EvictionCandidate<T>): boolean {
  const va = a.value ?? 0
  const vb = b.value ?? 0
  if (va !== vb) return va < vb
  if (a.lastMessageAt !== b.lastMessageAt) return a.lastMessageAt < b.lastMessageAt
  return a.openedAt > b.openedAt
}

function worst<T> (list: ReadonlyArray<EvictionCandidate<T>>): EvictionCandidate<T> | undefined {
  let out: EvictionCandidate<T> | undefined
  for (const c of list) if (out === undefined || worse(c, out)) out = c
  return out
}

/** The candidate to evict now, or undefined (refuse the newcomer). */
export function pickVictim<T> (candidates: ReadonlyArray<EvictionCandidate<T>>, now: number, policy: EvictionPolicy = {}): T | undefined {
  const idleMs = policy.idleMs ?? DEFAULT_EVICTION.idleMs
  const groups = new Map<string, Array<EvictionCandidate<T>>>()
  let largest: Array<EvictionCandidate<T>> = []
  for (const c of candidates) {
    if (c.address === undefined) continue
    let group = groups.get(c.address)
    if (group === undefined) groups.set(c.address, group = [])
    group.push(c)
    if (group.length > largest.length || (group.length === largest.length && worse(worst(group) as EvictionCandidate<T>, worst(largest) as EvictionCandidate<T>))) largest = group
  }
  if (largest.length >= 2) return worst(largest)?.item
  const victim = worst(candidates)
  if (victim === undefined) return undefined
  return (victim.value ?? 0) < 0 || now - victim.lastMessageAt >= idleMs ? victim.item : undefined
}
