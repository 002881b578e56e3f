import { deviceIdFromBytes } from '../../../shared/index.js'
import { encodeData, type WantEntry } from '../messages.js'
import type { StoredFrame } from '../history.js'
import type { LinkState, RouterContext } from '../context.js'
import { tellKey } from './keys.js'
import { hold, holding } from '../backlog.js'

/**
 * WANT [3, [[kid, from, to]…]]: a neighbour asks for frames it lacks (catch-up, repair).
 *
 * Bounded whatever the ranges name: each entry walks the frames held for its origin (at most
 * `historyPerOrigin`), never the numbers of the range (`History.inRange`); one message sends at
 * most `wantBudget` frames, each frame at most once however many entries name it. What the link
 * refuses waits in its backlog for the link to drain (backlog.ts); past the backlog's bound the
 * answer stops, and the origin is announced again in the next DIGEST so the asker asks again.
 */
export function onWant (ctx: RouterContext, state: LinkState, entries: WantEntry[]): void {
  let budget = ctx.options.wantBudget
  const sent = new Set<StoredFrame>()
  for (const { kid, from, to } of entries) {
    if (budget <= 0) return
    const origin = deviceIdFromBytes(kid)
    for (const stored of ctx.history.inRange(origin, from, to)) {
      if (budget <= 0) return
      if (sent.has(stored) || holding(state, origin, stored.seq)) continue // waiting for the link to drain: on its way
      sent.add(stored)
      budget--
      ctx.counters.repaired++
      // Behind a backlog, or refused by a full link: it waits for the link to drain (backlog.ts), or,
      // past the backlog's bound, is announced again in the next DIGEST and asked for again.
      if (state.backlog.size === 0) {
        tellKey(ctx, state, origin)
        if (ctx.sendRaw(state, encodeData(stored.hops + 1, stored.bytes))) { ctx.counters.framesOut++; continue }
      }
      if (!hold(state, origin, stored.seq, stored.hops + 1)) { state.missed.add(origin); return }
    }
  }
}
