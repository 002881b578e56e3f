import { deviceIdFromBytes } from '../../../shared/index.js'
import { encodeData, type WantEntry } from '../messages.js'
import type { StoredFrame } from '../history.js'
import type { LinkState, RouterContext } from '../context.js'
import { tellKey } from './keys.js'

/**
 * WANT [3, [[kid, from, to]…]]: a neighbour asks for frames it lacks (catch-up, repair).
 *
 * Bounded whatever the ranges name: each entry walks the frames held for its origin (at most
 * `historyPerOrigin`), never the numbers of the range (`History.inRange`); one message sends at
 * most `wantBudget` frames, each frame at most once however many entries name it, and stops at
 * the first send the link refuses (backpressure: the asker asks again).
 */
export function onWant (ctx: RouterContext, state: LinkState, entries: WantEntry[]): void {
  let budget = ctx.options.wantBudget
  const sent = new Set<StoredFrame>()
  for (const { kid, from, to } of entries) {
    if (budget <= 0) return
    const origin = deviceIdFromBytes(kid)
    for (const stored of ctx.history.inRange(origin, from, to)) {
      if (budget <= 0) return
      if (sent.has(stored)) continue
      sent.add(stored)
      budget--
      tellKey(ctx, state, origin)
      if (!ctx.sendRaw(state, encodeData(stored.hops + 1, stored.bytes))) return // the asker will ask again
      ctx.counters.framesOut++
      ctx.counters.repaired++
    }
  }
}
