import { deviceIdFromBytes, deviceIdToBytes, type DeviceId } from '../../../shared/index.js'
import { chunks, MSG, type InterestEntry } from '../messages.js'
import { UNREACHABLE, type Claim } from '../interest.js'
import type { LinkState, RouterContext } from '../context.js'
import { routeMoved } from './sync.js'
import { askRoutes } from './route-loss.js'

/**
 * INTEREST [4, [[kid, version, hops, proof, declaration, publicKey]…]]: subscriptions, as a
 * distance vector (interest.ts), each claim carrying the subscriber's signed declaration
 * (declaration.ts) and a hash-chain proof of the distance (chain.ts).
 *
 * A message does O(entries) work plus what the turn's budget allows: its claims are filed in the
 * intake (intake.ts) and checked within a work budget per turn of the clock. A route that moves to another neighbour
 * because the old one is gone earns that neighbour a full DIGEST (sync.ts `routeMoved`); refused
 * claims are reported (drop) with the neighbour that sent them. A neighbour that names more new
 * subscribers (ones this node has no route for) than an honest one can (introductions.ts) has the
 * rest refused unchecked, each counted against its score.
 */
export function onInterest (ctx: RouterContext, state: LinkState, entries: InterestEntry[]): void {
  let refused = false
  let excess = 0
  const now = ctx.clock.now()
  for (const entry of entries) {
    const subscriber = deviceIdFromBytes(entry.kid)
    if (subscriber === ctx.id) continue
    if (!ctx.verifier.keys.allowed(subscriber)) {
      ctx.drop({ code: 'ERR_NOT_IN_ROSTER', origin: subscriber, from: state.peer })
      continue
    }
    // A subscriber new to this node, beyond the new ones an honest neighbour can name (introductions.ts): refused unchecked.
    if (!ctx.interest.has(subscriber) && !ctx.intake.newSubscribers.name(state.peer, subscriber, now)) {
      ctx.drop({ code: 'ERR_TABLE_FULL', origin: subscriber, from: state.peer })
      excess++
      continue
    }
    const claim: Claim = entry.declaration === undefined
      ? { subscriber, version: entry.version, hops: entry.hops, proof: entry.proof }
      : { subscriber, version: entry.version, hops: entry.hops, proof: entry.proof, declaration: entry.declaration, publicKey: entry.publicKey }
    // A neighbour that claims a version holds its declaration (it advertises only versions it installed): ours need not go to it.
    if (entry.hops < UNREACHABLE) holds(state, subscriber, entry.version)
    if (!ctx.intake.offer(state.peer, claim)) {
      ctx.drop({ code: 'ERR_TABLE_FULL', origin: subscriber, from: state.peer })
      refused = true
    }
  }
  // More claims than its share of the intake can hold (as many as it may have routes): one offence per
  // message against the neighbour's score (score.ts 'overBudget', gossipsub v1.1's P7), so one that keeps
  // flooding is disconnected and kept out. An honest relay sends at most its table, which fits its share.
  if (refused) ctx.observe(state.peer, 'overBudget')
  // Each new subscriber beyond the allowance is an offence (score.ts 'excessSubscriber', P7 again): a neighbour
  // that keeps inventing subscribers, fresh keys with valid declarations, is disconnected and kept out a few past it.
  if (excess > 0) ctx.observe(state.peer, 'excessSubscriber', excess)
  checkClaims(ctx)
}

/**
 * A new turn on the clock (a macrotask: timers and I/O run in between) when this one's budget
 * was touched: it refills the budget and checks what is left.
 */
function nextTurn (ctx: RouterContext): void {
  if (ctx.intake.scheduled) return
  ctx.intake.scheduled = true
  ctx.later(0, () => {
    ctx.intake.scheduled = false
    ctx.intake.refill()
    if (ctx.intake.size > 0) checkClaims(ctx)
  })
}

/** Checks claims while the turn's budget lasts, then re-advertises what changed. */
export function checkClaims (ctx: RouterContext): void {
  const now = ctx.clock.now()
  const changed: DeviceId[] = []
  // The next hop of each subscriber before this turn's claims (at most one entry per claim drained).
  const held = new Map<DeviceId, DeviceId | undefined>()
  ctx.intake.drain((claim) => ctx.interest.cost(claim), (via, claim) => {
    if (!ctx.links.has(via)) return
    const before = ctx.interest.best(claim.subscriber)?.via
    if (!held.has(claim.subscriber)) held.set(claim.subscriber, before)
    const result = ctx.interest.update(via, claim, now)
    if (result.code !== undefined) ctx.drop({ code: result.code, origin: claim.subscriber, from: via })
    if (result.changed) changed.push(claim.subscriber)
    routeMoved(ctx, claim.subscriber, before, ctx.interest.best(claim.subscriber)?.via)
  })
  // A route that went from one next hop to another over the turn (one that moved and came back
  // within it was never seen outside: adverts and frames wait for the turn's end).
  for (const [subscriber, before] of held) {
    const after = ctx.interest.best(subscriber)?.via
    if (before !== undefined && after !== undefined && before !== after) ctx.counters.routeMoves++
  }
  if (changed.length > 0) {
    ctx.advertise(changed)
    askRoutes(ctx, changed) // a route lost (its next hop retracted): ask for a newer version (handlers/route-request.ts)
  }
  if (ctx.intake.size > 0 || ctx.intake.budget < ctx.intake.workPerTurn) nextTurn(ctx)
}

/** Rough encoded size of one entry, to keep INTEREST messages under the link limit. */
const entrySize = (e: InterestEntry): number => (e.declaration?.length ?? 0) + 96

/** Per link: the version of each subscriber whose declaration this link was sent (then claims go without it). */
const declared = new WeakMap<LinkState, Map<DeviceId, number>>()

function declaredTo (ctx: RouterContext, state: LinkState): Map<DeviceId, number> {
  let sent = declared.get(state)
  if (sent === undefined) declared.set(state, sent = new Map())
  if (sent.size > ctx.interest.limits.maxSubscribers) sent.clear() // subscribers come and go: start over rather than grow
  return sent
}

/** Notes that the neighbour on `state` holds `version` of `subscriber`'s declaration. */
function holds (state: LinkState, subscriber: DeviceId, version: number): void {
  const sent = declared.get(state)
  if (sent !== undefined && (sent.get(subscriber) ?? -1) < version) sent.set(subscriber, version)
}

/**
 * Sends claims to one neighbour. A declaration goes once per (link, subscriber, version), with
 * the first claim of a distance, and not to a neighbour that has claimed that version itself:
 * later claims of that version (a distance changed) and every "unreachable" carry only
 * [kid, version, hops, proof].
 *
 * `relayed`: claims passed on because a new version arrived (the router's adverts). Then another
 * subscriber's declaration is also left out towards a neighbour that was one hop from that
 * subscriber (it advertised distance 1): the subscriber sends it the declaration itself, and our
 * claim waits there for it (interest.ts, `pending`). When every node subscribes in a dense mesh,
 * this is most of what each periodic new version costs: a declaration crosses each link about once,
 * not once per node that passes it on. Answers to route requests and a new link's first adverts
 * always carry it: their neighbour may have no other way to learn the version.
 */
export function sendInterest (ctx: RouterContext, state: LinkState, claims: Claim[], relayed = false): void {
  const sent = declaredTo(ctx, state)
  const entries: InterestEntry[] = claims.map((c) => {
    const entry: InterestEntry = { kid: deviceIdToBytes(c.subscriber), version: c.version, hops: c.hops, proof: c.proof }
    const fromSubscriber = relayed && c.subscriber !== ctx.id && ctx.interest.advertised(state.peer, c.subscriber) === 1
    // "Unreachable" needs no declaration (it teaches no version, interest.ts), so it marks nothing either.
    if (c.hops < UNREACHABLE && !fromSubscriber && sent.get(c.subscriber) !== c.version && c.declaration !== undefined && c.publicKey !== undefined) {
      entry.declaration = c.declaration
      entry.publicKey = c.publicKey
    }
    return entry
  })
  for (const chunk of chunks(entries, entrySize)) {
    if (!ctx.send(state, { kind: MSG.INTEREST, entries: chunk })) continue // refused: the next advert carries the declarations again
    for (const e of chunk) {
      if (e.declaration === undefined) continue
      const subscriber = deviceIdFromBytes(e.kid)
      sent.set(subscriber, e.version)
      if (subscriber === ctx.id) ctx.counters.declarationsOut++
      else ctx.counters.declarationsPassed++
    }
  }
}
