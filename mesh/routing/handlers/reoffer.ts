import { bytesEqual, type DeviceId, type TelemetryFrame } from '../../../shared/index.js'
import { encodeData } from '../messages.js'
import { sendFrame } from '../backlog.js'
import type { RouterContext } from '../context.js'

/**
 * A frame offered again travels to the durable subscribers that lack it (issue 11).
 *
 * An origin offers again what its durable subscribers have not acknowledged (firmware-sim's
 * mesh-acks.ts, `MeshNode.reoffer`). Announced in a DIGEST, it is fetched only by a neighbour
 * that lacks it; a relay that once had it (the frame was lost beyond it, then left its bounded
 * history) lacks nothing, and the subscriber beyond it never hears of the frame: in a 300-device
 * soak, readings stuck this way stopped their devices' flow windows from minute 9.
 *
 * So the subscriber's own signed word decides: a cumulative ack (ack.ts) lists the numbers below
 * its highest that it lacks (holes), and every node on the ack's way remembers it (acks.ts
 * `lacking`). A node that has a frame offered again sends it towards each durable subscriber
 * whose ack lists it as a hole: the origin pushes it (`pushOwn`), and a relay that receives it as
 * a duplicate passes it on (`passOn`) instead of dropping it.
 *
 * Bounded: only frames some subscriber has signed that it lacks; at most one check of the
 * signature (unless the relay still holds equal bytes) and one send per (origin, seq) per
 * PASS_AGAIN_MS at each node once a copy verified (acks.ts `passedLately`, a table of
 * `maxPairs`; a forged copy costs its sender a signature check and its score, as any forged frame); the origin's rate
 * budget and the link's data budget hold as for any frame. A copy passed on is not counted as a
 * duplicate against the neighbour that sent it; one whose signature does not hold is.
 */

/** The neighbours towards the durable subscribers that lack `seq` of `origin` (never `from`). */
function towards (ctx: RouterContext, origin: DeviceId, seq: number, from: DeviceId | undefined, skipAdjacent: boolean): Set<DeviceId> {
  const vias = new Set<DeviceId>()
  for (const subscriber of ctx.acks.lacking(origin, seq)) {
    if (subscriber === ctx.id || (skipAdjacent && ctx.links.has(subscriber))) continue
    const best = ctx.interest.best(subscriber)
    if (best === undefined || best.via === from || best.via === origin || !ctx.links.has(best.via)) continue
    vias.add(best.via)
  }
  return vias
}

function send (ctx: RouterContext, vias: Set<DeviceId>, origin: DeviceId, seq: number, bytes: Uint8Array, hops: number): void {
  const message = encodeData(hops, bytes)
  for (const peer of vias) {
    const state = ctx.links.get(peer)
    if (state === undefined) continue
    ctx.counters.reoffersPassed++
    sendFrame(ctx, state, origin, seq, hops, message)
  }
}

/**
 * The origin offers one of its own frames again: pushed towards each durable subscriber whose ack
 * lists it as a hole, unless that subscriber is a neighbour (it fetches it on the DIGEST).
 */
export function pushOwn (ctx: RouterContext, seq: number, bytes: Uint8Array): void {
  const vias = towards(ctx, ctx.id, seq, undefined, true)
  if (vias.size === 0 || ctx.acks.passedLately(ctx.id, seq)) return
  ctx.acks.passed(ctx.id, seq)
  send(ctx, vias, ctx.id, seq, bytes, 1)
}

/**
 * A duplicate from neighbour `from`: passed on towards the durable subscribers that lack it.
 * 'passed' when it went on (not the neighbour's fault), 'forged' when its signature does not
 * hold, undefined when nobody beyond this node is known to lack it (an ordinary duplicate).
 */
export function passOn (ctx: RouterContext, frame: TelemetryFrame, bytes: Uint8Array, hops: number, from: DeviceId): 'passed' | 'forged' | undefined {
  const { origin, seq } = frame
  if (hops + 1 > ctx.options.hopLimit) return undefined
  const vias = towards(ctx, origin, seq, from, false)
  if (vias.size === 0 || ctx.acks.passedLately(origin, seq)) return undefined
  const stored = ctx.history.get(origin, seq)
  if (!(stored !== undefined && bytesEqual(stored.bytes, bytes)) && !ctx.verifier.authentic(frame)) return 'forged'
  ctx.acks.passed(origin, seq)
  send(ctx, vias, origin, seq, bytes, hops + 1)
  return 'passed'
}
