import { deviceIdToBytes, type DeviceId } from '../../../shared/index.js'
import { MSG, chunks, type RouteRequestEntry } from '../messages.js'
import type { RouterContext } from '../context.js'

/**
 * Routes changed (a link closed, a neighbour retracted): for each subscriber whose route is now
 * lost, ask every neighbour for a newer version (RFC 8966 §3.8.2.1), after this turn's
 * retractions (`advertise`, also a macrotask) went out, and again with backoff while it is lost.
 */
export function askRoutes (ctx: RouterContext, changed: DeviceId[]): void {
  const lost = changed.filter((s) => {
    const version = ctx.interest.versionOf(s)
    return version !== undefined && ctx.interest.best(s) === undefined && ctx.routeRequests.ask(s, version)
  })
  if (lost.length > 0) ctx.later(0, () => { sendRequests(ctx, lost, 1) })
}

function sendRequests (ctx: RouterContext, subscribers: DeviceId[], tries: number): void {
  const entries: RouteRequestEntry[] = []
  for (const s of subscribers) {
    const version = ctx.interest.versionOf(s)
    if (version !== undefined && ctx.interest.best(s) === undefined) entries.push({ kid: deviceIdToBytes(s), version, hops: ctx.routeRequests.hops })
  }
  for (const state of ctx.links.values()) {
    for (const chunk of chunks(entries)) if (ctx.send(state, { kind: MSG.ROUTEREQ, entries: chunk })) ctx.counters.routeRequestsOut += chunk.length
  }
  ctx.later(ctx.routeRequests.backoff(tries), () => {
    const again = subscribers.filter((s) => {
      const version = ctx.interest.versionOf(s)
      return ctx.routeRequests.retry(s, version !== undefined && ctx.interest.best(s) === undefined, version ?? 0) !== undefined
    })
    if (again.length > 0) sendRequests(ctx, again, tries + 1)
  })
}
