import type { DeviceId } from '../../shared/index.js'
import { encodeData } from './messages.js'
import type { LinkState, RouterContext } from './context.js'
import { tellKey } from './handlers/keys.js'
import type { SendOptions } from '../links/types.js'

/** Frames held per link while its send queue is full; past this, a refused frame is left to DIGEST/WANT. */
export const MAX_BACKLOG = 1024

/** One frame waiting for a full link: a reference into the history (history.ts), which holds its bytes. */
export interface Waiting { readonly origin: DeviceId, readonly seq: number, readonly hops: number }

const keyOf = (origin: DeviceId, seq: number): string => `${origin}\u0000${seq}`

/**
 * A burst (every device's readings after a stall, a partition that heals) fills a link's send
 * queue, and the frames it refuses were left to repair: the neighbour heard of them in the next
 * DIGEST, waited `graftDelay`, asked (WANT) and was answered through the same full queue. Under
 * load the repairs outgrew the readings (issue 11: after a 12 s stall a 300-device fleet sent 1.3
 * repaired frames per relayed one and the gateway fell behind for good). A refused frame now
 * waits here, as a reference to the copy the history keeps, and goes out in order when the link
 * drains (`flush`): a full queue delays frames, as TCP does, instead of turning them into
 * repairs. Bounded: `MAX_BACKLOG` per link, and a frame the history has since evicted is left to
 * DIGEST/WANT (`missed`), as every frame was before.
 */
export function hold (state: LinkState, origin: DeviceId, seq: number, hops: number): boolean {
  if (state.backlog.size >= MAX_BACKLOG) return false
  state.backlog.set(keyOf(origin, seq), { origin, seq, hops })
  return true
}

/**
 * Sends a DATA message (`encodeData(hops, …)` of frame `seq` of `origin`) to one link, the one way
 * every data path does it (router.ts `forward`, handlers/want.ts, handlers/reoffer.ts): behind
 * frames already waiting for this link it waits too, so the link keeps their order; refused by a
 * full link it waits in the backlog (`hold`); past the backlog's bound the origin is marked
 * `missed`, announced again in the next DIGEST, and the neighbour asks (WANT). True when the
 * frame was sent or waits; false when it was left to DIGEST/WANT.
 */
export function sendFrame (ctx: RouterContext, state: LinkState, origin: DeviceId, seq: number, hops: number, message: Uint8Array, options?: SendOptions): boolean {
  if (state.backlog.size === 0) {
    tellKey(ctx, state, origin)
    if (ctx.sendRaw(state, message, options)) { ctx.counters.framesOut++; return true }
  }
  if (hold(state, origin, seq, hops)) return true
  state.missed.add(origin)
  return false
}

/** Whether (origin, seq) waits in this link's backlog: a WANT for it needs no answer, it is on its way. */
export function holding (state: LinkState, origin: DeviceId, seq: number): boolean {
  return state.backlog.size > 0 && state.backlog.has(keyOf(origin, seq))
}

/** Per origin, the lowest sequence number waiting in this link's backlog (O(backlog), at most `MAX_BACKLOG`). */
export function firstWaiting (state: LinkState): Map<DeviceId, number> {
  const first = new Map<DeviceId, number>()
  for (const w of state.backlog.values()) if (w.seq < (first.get(w.origin) ?? Infinity)) first.set(w.origin, w.seq)
  return first
}

/** The link drained: sends what waits, oldest first, while the link takes it. */
export function flush (ctx: RouterContext, state: LinkState): void {
  for (const [key, w] of state.backlog) {
    const stored = ctx.history.get(w.origin, w.seq)
    if (stored !== undefined) {
      tellKey(ctx, state, w.origin)
      // Refused: the queue is full again, and it waits where it is for the next 'drain'.
      if (!ctx.sendRaw(state, encodeData(w.hops, stored.bytes))) return
      ctx.counters.framesOut++
    } else {
      state.missed.add(w.origin) // evicted from the history meanwhile: DIGEST/WANT, as before
    }
    state.backlog.delete(key)
  }
}
