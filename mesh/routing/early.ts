import type { DeviceId } from '../../shared/index.js'
import type { PeerScores, ScoreParams } from './score.js'

/**
 * Relaying before verifying (issue 15, `RouterInit.relayBeforeVerify`): what bounds the harm.
 *
 * A relay that forwards a frame before it checks the signature takes its own verification off the
 * critical path of every hop behind it; gossipsub verifies at every hop before forwarding, and
 * pays for it in latency. The price is that a forgery can go one hop further than its first honest
 * relay. It is never delivered to an application (every node, this one included, verifies before
 * delivering), but the next node sees an invalid frame from this honest relay and counts it
 * against it (score.ts: `invalid`, heavy and squared). Cutting the relay off at its first forgery
 * would let one forged frame cut every honest relay on its path; so the bound is on the honest
 * relay instead:
 *
 * - after a frame it relayed early fails its check, the node relays nothing early for a hold-off,
 *   long enough that the `invalid` count its neighbours keep for it stays below half of what bans
 *   it, at one forgery per hold-off however long the attack goes on (`holdoffMs`);
 * - it relays early only from a neighbour with no invalid frame on its record: the neighbour that
 *   sent the forgery loses the fast path at once, and is counted `invalid` as before (a peer that
 *   keeps sending forgeries is cut off by its score, as without the option);
 * - only a new (origin, seq) of a known, allowed key (`Verifier.fresh`), not asked for, past the
 *   rate and hop budgets: the same frames it would forward after verifying.
 *
 * So one forgery a hold-off slows the fleet back to verify-first, at the cost of one signature
 * check per node that the forgery reached; it never bans an honest relay.
 */
export class EarlyRelay {
  readonly holdoffMs: number
  #heldUntil = 0

  constructor (params: ScoreParams) {
    this.holdoffMs = holdoffMs(params)
  }

  /** Whether a frame from `from` may go on before its check, now. */
  allows (scores: PeerScores, from: DeviceId, now: number): boolean {
    return now >= this.#heldUntil && scores.invalidCount(from) === 0
  }

  /** A frame relayed early failed its check: nothing goes on early until the hold-off passes. */
  failed (now: number): void {
    this.#heldUntil = now + this.holdoffMs
  }
}

/**
 * The shortest hold-off (ms, whole decay intervals) after which one forgery per hold-off keeps a
 * relay's `invalid` count, as its neighbours decay it, at most `n` with `|weight| × n² ≤ |threshold| / 2`:
 * the steady count of one event per T is 1 / (1 − decay^(T / interval)). Defaults (−10, −100, 0.99
 * per second): n ≤ 2.24, T = 59 s.
 */
export function holdoffMs (p: ScoreParams): number {
  const n = Math.sqrt(Math.abs(p.threshold) / 2 / Math.abs(p.invalid.weight))
  if (!(n > 1) || !(p.invalid.decay > 0 && p.invalid.decay < 1)) return 3_600_000 // no count above one is safe: an hour
  const steps = Math.ceil(Math.log(1 - 1 / n) / Math.log(p.invalid.decay))
  return steps * p.decayInterval
}
