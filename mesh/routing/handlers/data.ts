import { deviceIdToBytes, bytesEqual, ownBytes, type DeviceId, type ErrorCode, type TelemetryFrame } from '../../../shared/index.js'
import { MSG } from '../messages.js'
import type { DropInfo, HeldFrame, LinkState, RouterContext, WantPromise } from '../context.js'
import type { ScoreEvent } from '../score.js'
import { awaitCredential } from './credential.js'
import { passOn } from './reoffer.js'

/** What became of one frame. */
export type InjectResult =
  | { verdict: 'accepted' | 'duplicate' | 'held' }
  | { verdict: 'refused', code: ErrorCode }

const ACCEPTED: InjectResult = { verdict: 'accepted' }
const DUPLICATE: InjectResult = { verdict: 'duplicate' }
const HELD: InjectResult = { verdict: 'held' }

/**
 * What a refusal says about the neighbour that sent the frame (score.ts); undefined: nothing.
 * Frames outside this node's roster or past its hop limit are refused without blame: an honest
 * relay sends them when its configuration differs from ours (a roster being rolled out, another
 * hop limit), and they cost a lookup, not a signature check; a flood of them meets the data budget.
 */
const BLAME: Partial<Record<ErrorCode, ScoreEvent>> = {
  ERR_BAD_SIGNATURE: 'invalid',
  ERR_WRONG_KEY: 'invalid',
  ERR_UNKNOWN_SIGNER: 'unknownSigner',
  ERR_REPLAY: 'duplicate'
}

/**
 * DATA [1, hops, frame]: a signed frame from a neighbour, or injected from outside the links.
 * Verified once (shared/verifier.ts) before it is delivered or relayed (with `relayBeforeVerify`,
 * relayed first when early.ts allows it: `relayEarly`); duplicates are recognised
 * by (origin, seq) before verification, so a duplicate costs a lookup, not a signature check. A
 * frame of an unknown signer waits (bounded, in all and per neighbour) while the neighbour that
 * sent it is asked for the key (KEYREQ); `release` admits it again once the key is known.
 *
 * What each frame says about its neighbour is counted in its score (score.ts): first copies for
 * it, invalid frames, unknown signers it never names and duplicates beyond a ratio against it.
 *
 * Cloned identities: a second copy of an (origin, seq) whose bytes differ from the first is
 * verified, and refused as ERR_CLONED_IDENTITY when its signature holds (the first copy stays);
 * a frame of this node's own origin that it did not sign never enters the mesh through it.
 */
export function ingest (ctx: RouterContext, bytes: Uint8Array, hops: number, from: DeviceId | undefined): InjectResult {
  const state = from === undefined ? undefined : ctx.links.get(from)
  if (from !== undefined) ctx.counters.framesIn++
  if (hops > ctx.options.hopLimit) return refuse(ctx, { code: 'ERR_HOP_LIMIT', from })
  const decoded = ctx.verifier.decode(bytes)
  if (!decoded.ok) return refuse(ctx, { code: decoded.refusal.code, from }, 'invalid')
  const frame = decoded.frame
  const { origin, seq } = frame
  // A revoked device's frames go nowhere (handlers/revoke.ts); a relay that has not heard yet is not to blame.
  if (ctx.revocations?.has(origin) === true) { ctx.counters.revokedRefused++; return refuse(ctx, { code: 'ERR_REVOKED', origin, seq, from }) }
  const answer = state !== undefined && (state.promises.length > 0 || state.late.length > 0) ? fulfil(ctx, state, origin, seq) : undefined
  const asked = answer === 'open'
  if (origin === ctx.id && from !== undefined) return ownFrame(ctx, frame, bytes, from)
  // A fleet closed by credential: a relayed origin's credential first (handlers/credential.ts).
  const waiting = ctx.checkOrigins ? awaitCredential(ctx, bytes, hops, origin, seq, state) : undefined
  if (waiting !== undefined) return waiting
  // An origin over its rate (budget.ts OriginBudgets): refused before its signature is checked, and
  // the neighbour that sent it is blamed (an honest relay forwards no more than it accepted). Frames
  // this node asked for (WANT: catch-up, a device's outbox offered again after an outage) are exempt.
  if (from !== undefined && !asked && !ctx.origins.allows(origin, ctx.clock.now())) return refuse(ctx, { code: 'ERR_OVER_BUDGET', origin, seq, from }, 'overBudget')
  // A fresh origin over its link's budget (budget.ts DEFAULT_BUDGETS.fresh): refused before its signature is checked and
  // before anything is stored for it, without blame (see `overFresh`). Frames asked for are exempt here too.
  if (state !== undefined && !asked && overFresh(ctx, state, origin)) {
    ctx.counters.overBudget.fresh = (ctx.counters.overBudget.fresh ?? 0) + 1
    return refuse(ctx, { code: 'ERR_OVER_BUDGET', origin, seq, from })
  }
  const held: HeldFrame = { bytes: ownBytes(bytes), hops, from, ...(state === undefined ? {} : { via: state }) }
  const early = state !== undefined && !asked && ctx.options.relayBeforeVerify && relayEarly(ctx, frame, held.bytes, hops, state)
  const mayHold = state === undefined || state.held < ctx.options.maxHeldPerPeer
  const admission = ctx.verifier.admit(frame, mayHold
    ? {
        item: held,
        onExpire: (h) => {
          if (h.via !== undefined) h.via.held--
          ctx.drop({ code: 'ERR_UNKNOWN_SIGNER', origin, from: h.from })
          ctx.observe(h.from, 'unknownSigner')
        }
      }
    : undefined)
  if (early && admission.verdict !== 'accepted') {
    ctx.counters.earlyForgeries++
    ctx.early.failed(ctx.clock.now())
  }
  switch (admission.verdict) {
    case 'duplicate':
      return duplicate(ctx, frame, bytes, hops, from, answer !== undefined)
    case 'refused':
      if (admission.refusal === 'cloned') return cloned(ctx, frame, from, false)
      return refuse(ctx, { code: admission.code, origin, seq, from })
    case 'held': {
      if (state !== undefined) state.held++
      if (state !== undefined && admission.first) ctx.send(state, { kind: MSG.KEYREQ, kids: [deviceIdToBytes(origin)] })
      return HELD
    }
    case 'accepted': {
      const stored = held.bytes // a copy: the link's bytes may be a view into its receive buffer
      ctx.verifier.carry(bytes, stored) // verified here: this process's other verifiers (the gateway's ingest) take it as is
      // Frames asked for neither meet the origin's budget nor spend it: this node chose to take them (want.ts bounds
      // what one WANT brings), and spending it made the origin's next eager frames look like a flood (pacer.ts).
      if (from !== undefined && !asked) ctx.origins.take(origin, ctx.clock.now())
      ctx.history.add(origin, { seq, bytes: stored, hops }, !ctx.verifier.replay.known(origin), answer !== undefined)
      ctx.changed.add(origin)
      ctx.observe(from, 'useful')
      ctx.deliver(frame, stored, hops, from, asked)
      // A frame this node asked for (catch-up) is announced in the next DIGEST (`changed`), not pushed:
      // each node on the way asks only for what it lacks. Pushed on, it reached subscribers that held
      // it already (after a heal a relay asks a neighbour for its whole history, most of which went
      // on by other paths), and every copy counted against the relay: issue 11, 14,591 unasked
      // duplicates at one gateway in 2 cycles, and its honest neighbours banned.
      if (!asked && !early) ctx.forward(frame, stored, hops + 1, from)
      return ACCEPTED
    }
  }
}

/**
 * With `relayBeforeVerify`: sends a frame on before this node checks its signature, when early.ts
 * allows it (a new number of a known key, from a neighbour with a clean record, no forgery relayed
 * early within the hold-off); the caller then verifies it, delivers it only if it holds, and on a
 * failed check holds off early relaying (`EarlyRelay.failed`) and blames the neighbour as always.
 * The write goes out at once (`SendOptions.now`), not at the end of the turn behind the check.
 */
function relayEarly (ctx: RouterContext, frame: TelemetryFrame, bytes: Uint8Array, hops: number, state: LinkState): boolean {
  if (!ctx.verifier.fresh(frame) || !ctx.early.allows(ctx.scores, state.peer, ctx.clock.now())) return false
  if (!ctx.forward(frame, bytes, hops + 1, state.peer, true)) return false
  ctx.counters.relayedEarly++
  return true
}

/**
 * True when `origin` is fresh (this node holds no replay window for it, and holds its key: admitting
 * the frame would cost a signature check and new state in every per-origin table) and the link it
 * came on has no unit of its `fresh` budget left; otherwise takes the unit and returns false.
 * Each link has its own bucket, so a neighbour that floods fresh origins spends its own budget and
 * not its neighbours' (like the SYN-flood defences of RFC 4987 §3, it bounds the work and state a
 * peer can make the node commit before that peer has shown anything). Frames of origins already tracked (every
 * device of an honest fleet after its first frames) never touch it. A frame whose key is unknown is
 * held, not checked, and pays when it is admitted again with its key (`release`).
 *
 * No blame: an honest relay meets the budget on a new link to a fleet larger than its burst; a
 * subscriber fetches the frames refused when the relay announces them (DIGEST, WANT: exempt). A
 * flooder's frames past it cost a decode and three lookups each, within the data budget.
 */
function overFresh (ctx: RouterContext, state: LinkState, origin: DeviceId): boolean {
  const replay = ctx.verifier.replay
  if (replay.known(origin) || replay.high(origin) !== undefined || ctx.verifier.keys.get(origin) === undefined) return false
  return !state.budget.admit('fresh', ctx.clock.now())
}

/**
 * An (origin, seq) seen before: the same frame again, or, when the copy this node kept differs
 * from it, another frame signed for that number (`Verifier.secondCopy` judges it). A copy this
 * node asked the neighbour for (`asked`: a WANT holds it, open or late) is not held against it: after a
 * heal several neighbours announce the same frames in their full DIGESTs and each is asked, so
 * all but the first answer are duplicates this node requested (counted as the neighbour's
 * misbehaviour, they got honest relays banned and their readings stuck: issue 11).
 */
function duplicate (ctx: RouterContext, frame: TelemetryFrame, bytes: Uint8Array, hops: number, from: DeviceId | undefined, asked = false): InjectResult {
  const stored = ctx.history.get(frame.origin, frame.seq)
  if (stored !== undefined && !bytesEqual(stored.bytes, bytes)) {
    const judged = ctx.verifier.secondCopy(frame)
    if (judged.verdict === 'refused') {
      if (judged.refusal === 'cloned') return cloned(ctx, frame, from, false)
      return refuse(ctx, { code: judged.code, origin: frame.origin, seq: frame.seq, from })
    }
  }
  // A frame offered again that a subscriber beyond this node has signed it lacks goes on (reoffer.ts).
  const passed = from === undefined || asked ? undefined : passOn(ctx, frame, bytes, hops, from)
  if (passed === 'forged') return refuse(ctx, { code: 'ERR_BAD_SIGNATURE', origin: frame.origin, seq: frame.seq, from }, 'invalid')
  ctx.counters.duplicates++
  if (!asked && passed === undefined) ctx.observe(from, 'duplicate')
  ctx.acks.seen(frame.origin) // a durable subscriber answers a re-offer of what it holds (acks.ts)
  return DUPLICATE
}

/**
 * A frame of this node's own origin from a neighbour. An echo of one it signed is a duplicate; one
 * it did not sign (a number above every one it used, or other bytes than the copy it keeps) that
 * verifies was signed by another holder of its key: a clone, reported and never accepted. Others
 * (its frames from before a restart) are dropped as duplicates: this node never needs them.
 */
function ownFrame (ctx: RouterContext, frame: TelemetryFrame, bytes: Uint8Array, from: DeviceId): InjectResult {
  const stored = ctx.history.get(frame.origin, frame.seq)
  const high = ctx.verifier.replay.high(ctx.id) ?? -1
  if (stored === undefined ? frame.seq <= high : bytesEqual(stored.bytes, bytes)) {
    ctx.counters.duplicates++
    return DUPLICATE
  }
  const judged = ctx.verifier.secondCopy(frame)
  if (judged.verdict === 'refused' && judged.refusal === 'cloned') return cloned(ctx, frame, from, true)
  if (judged.verdict === 'refused') return refuse(ctx, { code: judged.code, origin: frame.origin, seq: frame.seq, from })
  ctx.counters.duplicates++
  return DUPLICATE
}

function cloned (ctx: RouterContext, frame: TelemetryFrame, from: DeviceId | undefined, self: boolean): InjectResult {
  ctx.clone({ origin: frame.origin, seq: frame.seq, code: 'ERR_CLONED_IDENTITY', self, ...(from === undefined ? {} : { from }) })
  return { verdict: 'refused', code: 'ERR_CLONED_IDENTITY' }
}

function refuse (ctx: RouterContext, info: DropInfo, blame: ScoreEvent | undefined = BLAME[info.code]): InjectResult {
  ctx.drop(info)
  if (blame !== undefined) ctx.observe(info.from, blame)
  return { verdict: 'refused', code: info.code }
}

/**
 * A frame from a neighbour we sent WANTs to: the first WANT not yet answered whose ranges hold it is
 * kept (score.ts: broken promises). 'open' when any WANT still open holds it: the frame was asked for.
 *
 * Else 'late', a late answer (issue 11): a WANT past its deadline whose ranges hold it and that
 * still has frames left (`LinkState.late`: what it asked for less what came, in time or late). Its
 * first late answer forgives the broken promise it was counted as, and a late answer that is a
 * duplicate is not held against the relay. After a partition heals over TCP under load, the
 * answers a relay queued behind the cut arrive after the deadline, and the copies the node got
 * meanwhile by other paths made them duplicates held against the relay: honest relays were banned.
 * A late promise is a kept promise, late; a copy nobody asked for still counts. A new frame that
 * comes late goes on as any unasked one (pushed, within the origin's rate), as before: announced
 * instead, as asked ones are, it stopped at relays whose repair bound (History.carriedSince) is
 * above it, and readings were lost (route-refresh.test.ts, 2–4 of 1,440 in 3 runs of 3).
 */
function fulfil (ctx: RouterContext, state: LinkState, origin: DeviceId, seq: number): 'open' | 'late' | undefined {
  const holds = (p: WantPromise): boolean => p.ranges.get(origin)?.some(([from, to]) => seq >= from && seq <= to) === true
  let asked = false
  let counted = false
  for (const p of state.promises) {
    if (!holds(p)) continue
    asked = true
    if (!counted && p.left > 0) { p.left--; counted = true } // what it may still bring late
    if (!p.kept) { p.kept = true; break }
  }
  if (asked) return 'open'
  const late = state.late.find((p) => p.left > 0 && holds(p))
  if (late === undefined) return undefined
  late.left--
  if (late.broken === true) {
    late.broken = false
    ctx.scores.forgive(state.peer, 'brokenPromise')
  }
  return 'late'
}

/** Frames held for a signer whose key just arrived: admitted again, in arrival order. */
export function release (ctx: RouterContext, frames: HeldFrame[]): void {
  for (const h of frames) {
    if (h.via !== undefined) h.via.held--
    ingest(ctx, h.bytes, h.hops, h.from)
  }
}
