import { deviceIdFromBytes, deviceIdToBytes, type DeviceId } from '../../../shared/index.js'
import { chunks, MSG, type InterestEntry } from '../messages.js'
import type { Advert } from '../interest.js'
import type { LinkState, RouterContext } from '../context.js'
import { digestSoon } from './sync.js'

/**
 * INTEREST [4, [[kid, version, hops, [filter…]]…]]: subscriptions, as a distance vector
 * (interest.ts). A route that moves to another neighbour earns that neighbour a full DIGEST.
 */
export function onInterest (ctx: RouterContext, state: LinkState, entries: InterestEntry[]): void {
  const now = ctx.clock.now()
  const changed: DeviceId[] = []
  for (const entry of entries) {
    const subscriber = deviceIdFromBytes(entry.kid)
    if (!ctx.verifier.keys.allowed(subscriber)) continue
    const before = ctx.interest.best(subscriber)?.via
    if (ctx.interest.update(state.peer, { subscriber, version: entry.version, hops: entry.hops, filters: entry.filters }, now)) changed.push(subscriber)
    const after = ctx.interest.best(subscriber)?.via
    if (after !== undefined && after !== before) digestSoon(ctx, after)
  }
  if (changed.length > 0) ctx.advertise(changed)
}

export function sendInterest (ctx: RouterContext, state: LinkState, adverts: Advert[]): void {
  const entries = adverts.map((a) => ({ kid: deviceIdToBytes(a.subscriber), version: a.version, hops: a.hops, filters: a.filters }))
  for (const chunk of chunks(entries)) ctx.send(state, { kind: MSG.INTEREST, entries: chunk })
}
