import type { DeviceId } from '../../shared/index.js'

/**
 * Peer scores, in the spirit of gossipsub v1.1's (libp2p specs, pubsub/gossipsub/gossipsub-v1.1.md,
 * "Peer Scoring"): each neighbour's behaviour is counted, the counters decay, and the score is a
 * weighted sum of them; a neighbour whose score falls below `threshold` is disconnected and kept out
 * for a backoff that grows with each offence. Scores are kept by device id, also for a while after
 * the link closed (gossipsub's `RetainScore`), so a peer does not wash its record by reconnecting.
 *
 *   score = useful.weight × min(useful, useful.cap)                       first copies of frames (P2)
 *         + invalid.weight × invalid²                                     bad signatures, malformed (P4)
 *         + behaviour.weight × max(0, misbehaviour − behaviour.threshold)² (P7)
 *   misbehaviour = overBudget + brokenPromises + unknownSigners + excessSubscribers + max(0, duplicates − ratio × useful − allowance)
 *
 * - useful: verified frames this node had not seen (first deliveries); capped, so good behaviour
 *   cannot buy unlimited bad behaviour.
 * - invalid: frames whose signature fails, malformed frames and messages. An honest relay
 *   verifies every frame before it forwards it, so it never sends one: the weight is heavy and
 *   squared, as P4's. (Frames outside the roster or past the hop limit are refused without blame:
 *   an honest relay configured otherwise sends them; see handlers/data.ts.)
 * - overBudget: messages dropped unread by the per-peer budgets (budget.ts).
 * - brokenPromises: a DIGEST announced frames, this node asked for them (WANT) and got none of
 *   them back in `promiseMs` (P7's broken IWANT promises); forgiven when they come late (within
 *   60 s, handlers/data.ts `fulfil`: a queue held by a cut), and then not counted as duplicates.
 * - unknownSigners: frames whose signer the peer never named (its KEYREQ went unanswered, or its
 *   share of the holding pen was full).
 * - excessSubscribers: new subscribers named in INTEREST beyond what an honest neighbour's whole
 *   table holds within a window (introductions.ts): a flood of fresh, validly self-signed claims.
 * - duplicates beyond `ratio` per useful frame and an allowance (a peer replaying old frames).
 * Each counter is multiplied by its `decay` every `decayInterval` and zeroed below `decayToZero`.
 */

export interface ScoreParams {
  /** Below this the peer is disconnected and kept out. Default -100. */
  threshold: number
  useful: { weight: number, cap: number, decay: number }
  invalid: { weight: number, decay: number }
  behaviour: { weight: number, threshold: number, decay: number }
  duplicates: { ratio: number, allowance: number, decay: number }
  /** How often counters decay, ms. Default 1000. */
  decayInterval: number
  decayToZero: number
  /** How long a WANT may go unanswered before it counts as a broken promise, ms. Default 5000. */
  promiseMs: number
  /** First ban, ms; each further one doubles, up to `maxBanMs`. Defaults 30 s and 1 h. */
  banMs: number
  maxBanMs: number
  /** How long a peer's record is kept after its link closed, ms (and offences counted for the backoff). Default 1 h. */
  retainMs: number
  /** Most peers with a record (least recently seen first out). Default 4096. */
  maxPeers: number
}

export const DEFAULT_SCORE_PARAMS: Readonly<ScoreParams> = Object.freeze({
  threshold: -100,
  useful: { weight: 1, cap: 50, decay: 0.95 },
  invalid: { weight: -10, decay: 0.99 },
  behaviour: { weight: -1, threshold: 10, decay: 0.95 },
  duplicates: { ratio: 4, allowance: 200, decay: 0.9 },
  decayInterval: 1000,
  decayToZero: 0.01,
  promiseMs: 5000,
  banMs: 30_000,
  maxBanMs: 3_600_000,
  retainMs: 3_600_000,
  maxPeers: 4096
})

export type ScoreInit = Partial<Omit<ScoreParams, 'useful' | 'invalid' | 'behaviour' | 'duplicates'>> & {
  useful?: Partial<ScoreParams['useful']>
  invalid?: Partial<ScoreParams['invalid']>
  behaviour?: Partial<ScoreParams['behaviour']>
  duplicates?: Partial<ScoreParams['duplicates']>
}

export function scoreParams (init: ScoreInit = {}): ScoreParams {
  const d = DEFAULT_SCORE_PARAMS
  return {
    ...d,
    ...init,
    useful: { ...d.useful, ...init.useful },
    invalid: { ...d.invalid, ...init.invalid },
    behaviour: { ...d.behaviour, ...init.behaviour },
    duplicates: { ...d.duplicates, ...init.duplicates }
  }
}

export type ScoreEvent = 'useful' | 'invalid' | 'duplicate' | 'overBudget' | 'brokenPromise' | 'unknownSigner' | 'excessSubscriber'

/** One peer's counters, as `MeshNode.peers()` shows them. */
export interface PeerRecord {
  score: number
  useful: number
  invalid: number
  duplicates: number
  overBudget: number
  brokenPromises: number
  unknownSigners: number
  excessSubscribers: number
  /** Kept out until then (the clock's `now()`, ms), when banned. */
  bannedUntil?: number
  /** Bans so far (within `retainMs` of each other). */
  bans: number
}

interface Entry {
  useful: number
  invalid: number
  duplicates: number
  overBudget: number
  brokenPromises: number
  unknownSigners: number
  excessSubscribers: number
  bannedUntil: number
  bans: number
  /** Last ban's end, for the growing backoff. */
  lastBanEnd: number
  linked: boolean
  /** When the link closed (retention starts), ms. */
  since: number
}

export class PeerScores {
  readonly params: ScoreParams
  readonly #peers = new Map<DeviceId, Entry>()

  constructor (init: ScoreInit = {}) {
    this.params = scoreParams(init)
  }

  get size (): number { return this.#peers.size }

  /** Counts `n` events of a kind for `peer`; returns its score now. */
  add (peer: DeviceId, event: ScoreEvent, n = 1): number {
    const e = this.#entry(peer)
    switch (event) {
      case 'useful': e.useful += n; break
      case 'invalid': e.invalid += n; break
      case 'duplicate': e.duplicates += n; break
      case 'overBudget': e.overBudget += n; break
      case 'brokenPromise': e.brokenPromises += n; break
      case 'unknownSigner': e.unknownSigners += n; break
      case 'excessSubscriber': e.excessSubscribers += n; break
    }
    return this.#score(e)
  }

  /** Takes back `n` events of a kind counted before (a broken promise kept late), down to none. */
  forgive (peer: DeviceId, event: 'brokenPromise', n = 1): void {
    const e = this.#peers.get(peer)
    if (e !== undefined && event === 'brokenPromise') e.brokenPromises = Math.max(0, e.brokenPromises - n)
  }

  /** The decayed count of invalid frames and messages on `peer`'s record (0: none, or all decayed to zero). */
  invalidCount (peer: DeviceId): number {
    return this.#peers.get(peer)?.invalid ?? 0
  }

  score (peer: DeviceId): number {
    const e = this.#peers.get(peer)
    return e === undefined ? 0 : this.#score(e)
  }

  /** True when `peer` is below the threshold. */
  failing (peer: DeviceId): boolean {
    return this.score(peer) < this.params.threshold
  }

  /** Until when `peer` is kept out (ms, the clock's `now()`), if it is now. */
  banned (peer: DeviceId, now: number): number | undefined {
    const until = this.#peers.get(peer)?.bannedUntil ?? 0
    return until > now ? until : undefined
  }

  /** Keeps `peer` out for its next backoff: `banMs`, doubled for each ban that ended within `retainMs`. Returns until when. */
  ban (peer: DeviceId, now: number): number {
    const e = this.#entry(peer)
    const repeat = e.bans > 0 && now - e.lastBanEnd < this.params.retainMs
    e.bans = repeat ? e.bans + 1 : 1
    const backoff = Math.min(this.params.maxBanMs, this.params.banMs * 2 ** (e.bans - 1))
    e.bannedUntil = e.lastBanEnd = now + backoff
    e.linked = false
    e.since = now
    return e.bannedUntil
  }

  /** The link to `peer` opened or closed: a closed peer's record is kept `retainMs`, then forgotten. */
  linked (peer: DeviceId, up: boolean, now: number): void {
    const e = this.#entry(peer)
    e.linked = up
    e.since = now
  }

  record (peer: DeviceId, now: number): PeerRecord | undefined {
    const e = this.#peers.get(peer)
    if (e === undefined) return undefined
    const round = (x: number): number => Math.round(x * 100) / 100
    return {
      score: round(this.#score(e)),
      useful: round(e.useful),
      invalid: round(e.invalid),
      duplicates: round(e.duplicates),
      overBudget: round(e.overBudget),
      brokenPromises: round(e.brokenPromises),
      unknownSigners: round(e.unknownSigners),
      excessSubscribers: round(e.excessSubscribers),
      ...(e.bannedUntil > now ? { bannedUntil: e.bannedUntil } : {}),
      bans: e.bans
    }
  }

  /** Peers with a record. */
  peers (): IterableIterator<DeviceId> {
    return this.#peers.keys()
  }

  /** Peers kept out now. */
  bannedCount (now: number): number {
    let n = 0
    for (const e of this.#peers.values()) if (e.bannedUntil > now) n++
    return n
  }

  /** One decay step (every `decayInterval`); forgets records of peers gone longer than `retainMs`. */
  decay (now: number): void {
    const p = this.params
    const z = p.decayToZero
    const step = (x: number, f: number): number => { const y = x * f; return y < z ? 0 : y }
    for (const [peer, e] of this.#peers) {
      e.useful = step(e.useful, p.useful.decay)
      e.invalid = step(e.invalid, p.invalid.decay)
      e.duplicates = step(e.duplicates, p.duplicates.decay)
      e.overBudget = step(e.overBudget, p.behaviour.decay)
      e.brokenPromises = step(e.brokenPromises, p.behaviour.decay)
      e.unknownSigners = step(e.unknownSigners, p.behaviour.decay)
      e.excessSubscribers = step(e.excessSubscribers, p.behaviour.decay)
      if (!e.linked && e.bannedUntil <= now && now - e.since > p.retainMs) this.#peers.delete(peer)
    }
  }

  clear (): void {
    this.#peers.clear()
  }

  #score (e: Entry): number {
    const p = this.params
    const excessDuplicates = Math.max(0, e.duplicates - p.duplicates.ratio * e.useful - p.duplicates.allowance)
    const misbehaviour = e.overBudget + e.brokenPromises + e.unknownSigners + e.excessSubscribers + excessDuplicates
    const over = Math.max(0, misbehaviour - p.behaviour.threshold)
    return p.useful.weight * Math.min(e.useful, p.useful.cap) + p.invalid.weight * e.invalid * e.invalid + p.behaviour.weight * over * over
  }

  #entry (peer: DeviceId): Entry {
    let e = this.#peers.get(peer)
    if (e === undefined) {
      if (this.#peers.size >= this.params.maxPeers) this.#evict()
      e = { useful: 0, invalid: 0, duplicates: 0, overBudget: 0, brokenPromises: 0, unknownSigners: 0, excessSubscribers: 0, bannedUntil: 0, bans: 0, lastBanEnd: 0, linked: false, since: 0 }
      this.#peers.set(peer, e)
    }
    return e
  }

  /** Makes room: the oldest record of a peer neither linked nor banned, else the oldest. */
  #evict (): void {
    let victim: DeviceId | undefined
    for (const [peer, e] of this.#peers) {
      if (!e.linked && e.bannedUntil === 0) { victim = peer; break }
    }
    this.#peers.delete(victim ?? (this.#peers.keys().next().value as DeviceId))
  }
}
