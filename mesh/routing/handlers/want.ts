import { deviceIdFromBytes } from '../../../shared/index.js'
import { encodeData, type WantEntry } from '../messages.js'
import type { StoredFrame } from '../history.js'
import type { LinkState, RouterContext } from '../context.js'
import { holding, sendFrame } from '../backlog.js'

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
      // Past the backlog's bound the answer stops: the origin is announced again in the next DIGEST.
      if (!sendFrame(ctx, state, origin, stored.seq, stored.hops + 1, encodeData(stored.hops + 1, stored.bytes))) return
    }
  }
}
