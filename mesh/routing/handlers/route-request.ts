import { deviceIdFromBytes, type DeviceId } from '../../../shared/index.js'
import { MSG, chunks, type RouteRequestEntry } from '../messages.js'
import type { LinkState, RouterContext } from '../context.js'
import { sendInterest } from './interest.js'

/**
 * ROUTEREQ [14, [[kid, version, hops]…]]: "I lost my route to these subscribers; I hold this
 * version of each: a newer one, please" (RFC 8966 §3.8.2.1 and §3.8.1.2, Babel's seqno request,
 * for declared interest, interest.ts).
 *
 * Why: within one version of a declaration a node takes a route only through a neighbour nearer
 * than it has ever been itself (feasibility, RFC 8966 §2.4), so a node that loses the link its
 * route went by has, as a rule, only unfeasible routes left, and used to wait for the subscriber's
 * next periodic version (up to `interestRefresh`, 10 s) with readings going nowhere. Now it asks
 * (`askRoutes`, route-loss.ts): every neighbour gets the request; one that holds a newer version than asked
 * answers with its claim (which carries the subscriber's signed declaration, once per link and
 * version); one that holds the same or an older version and has a route passes the request on to
 * its next hop (never back to the one it came from), one hop less, unless it passed one on for
 * that subscriber within the window (redundant, route-requests.ts); one with no route drops
 * it (it asks for itself). The subscriber answers by declaring a new version, which floods as
 * every version does and gives everyone a feasible route again.
 *
 * Bounds: a request costs its neighbour's budget (budget.ts `routereq`, per entry) and a lookup
 * per entry, no signature check; what a relay passes on is at most one entry per subscriber per
 * window, however many ask (route-requests.ts); the subscriber signs a new version for requests
 * at most 4 times at once, then once every 2 s, whoever asks (one more is made when the next
 * token comes); an answer is one INTEREST entry per entry asked. No state is kept per neighbour.
 */
export function onRouteRequests (ctx: RouterContext, state: LinkState, entries: RouteRequestEntry[]): void {
  const now = ctx.clock.now()
  const answers: DeviceId[] = []
  const onward = new Map<DeviceId, RouteRequestEntry[]>()
  let redeclare = false
  for (const entry of entries) {
    const subscriber = deviceIdFromBytes(entry.kid)
    if (subscriber === ctx.id) {
      if (ctx.interest.localFilters.length === 0) continue // we declare nothing
      if (entry.version < ctx.interest.version) answers.push(subscriber) // it missed our newest: here it is
      else redeclare = true
      continue
    }
    const best = ctx.interest.best(subscriber)
    if (best === undefined) continue // RFC 8966 §3.8.1.2: no selected route, nothing to answer or pass on
    if (best.version > entry.version) { answers.push(subscriber); continue }
    if (entry.hops < 2 || best.via === state.peer || !ctx.links.has(best.via)) continue
    if (!ctx.routeRequests.pass(subscriber, now)) continue // redundant (§3.8.1.2)
    let list = onward.get(best.via)
    if (list === undefined) onward.set(best.via, list = [])
    list.push({ kid: entry.kid, version: entry.version, hops: entry.hops - 1 })
  }
  if (answers.length > 0) {
    sendInterest(ctx, state, ctx.interest.advertsFor(state.peer, answers))
    ctx.counters.routeAnswers += answers.length
  }
  for (const [via, list] of onward) {
    const next = ctx.links.get(via) as LinkState
    for (const chunk of chunks(list)) if (ctx.send(next, { kind: MSG.ROUTEREQ, entries: chunk })) ctx.counters.routeRequestsPassed += chunk.length
  }
  if (redeclare) redeclareOwn(ctx, ctx.interest.version)
}

/** A newer version of our own declaration, asked for by a request that held `asked`: now, or when the bucket allows (once). */
function redeclareOwn (ctx: RouterContext, asked: number): void {
  if (ctx.interest.version > asked) return // a newer one went out meanwhile (the refresh, or a request before)
  const wait = ctx.routeRequests.redeclare(ctx.clock.now())
  if (wait === 0) {
    ctx.interest.bump()
    ctx.counters.redeclared++
    ctx.advertise([ctx.id])
    return
  }
  if (ctx.routeRequests.redeclarePending || !Number.isFinite(wait)) return
  ctx.routeRequests.redeclarePending = true
  ctx.later(wait, () => {
    ctx.routeRequests.redeclarePending = false
    redeclareOwn(ctx, asked)
  })
}
