import { deviceIdFromBytes } from '../../../shared/index.js'
import { encodeData, type WantEntry } from '../messages.js'
import type { LinkState, RouterContext } from '../context.js'
import { tellKey } from './keys.js'

/** WANT [3, [[kid, from, to]…]]: a neighbour asks for frames it lacks (catch-up, repair). */
export function onWant (ctx: RouterContext, state: LinkState, entries: WantEntry[]): void {
  let budget = ctx.options.wantBudget
  for (const { kid, from, to } of entries) {
    const origin = deviceIdFromBytes(kid)
    for (let seq = from; seq <= to && budget > 0; seq++) {
      const stored = ctx.history.get(origin, seq)
      if (stored === undefined) continue
      budget--
      tellKey(ctx, state, origin)
      if (!ctx.sendRaw(state, encodeData(stored.hops + 1, stored.bytes))) return // the asker will ask again
      ctx.counters.framesOut++
      ctx.counters.repaired++
    }
  }
}
