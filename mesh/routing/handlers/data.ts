import { deviceIdToBytes, type DeviceId, type ErrorCode } from '../../../shared/index.js'
import { MSG } from '../messages.js'
import type { HeldFrame, RouterContext } from '../context.js'

/** What became of one frame. */
export type InjectResult =
  | { verdict: 'accepted' | 'duplicate' | 'held' }
  | { verdict: 'refused', code: ErrorCode }

const ACCEPTED: InjectResult = { verdict: 'accepted' }
const DUPLICATE: InjectResult = { verdict: 'duplicate' }
const HELD: InjectResult = { verdict: 'held' }

/**
 * DATA [1, hops, frame]: a signed frame from a neighbour, or injected from outside the links.
 * Verified once (shared/verifier.ts) before it is delivered or relayed; duplicates are recognised
 * by (origin, seq) before verification, so a duplicate costs a lookup, not a signature check. A
 * frame of an unknown signer waits (bounded) while the neighbour that sent it is asked for the
 * key (KEYREQ); `release` admits it again once the key is known.
 */
export function ingest (ctx: RouterContext, bytes: Uint8Array, hops: number, from: DeviceId | undefined): InjectResult {
  if (from !== undefined) ctx.counters.framesIn++
  if (hops > ctx.options.hopLimit) return refuse(ctx, { code: 'ERR_HOP_LIMIT', from })
  const decoded = ctx.verifier.decode(bytes)
  if (!decoded.ok) return refuse(ctx, { code: decoded.refusal.code, from })
  const frame = decoded.frame
  const { origin, seq } = frame
  const held: HeldFrame = { bytes: bytes.slice(), hops, from }
  const admission = ctx.verifier.admit(frame, {
    item: held,
    onExpire: (h) => { ctx.drop({ code: 'ERR_UNKNOWN_SIGNER', origin, from: h.from }) }
  })
  switch (admission.verdict) {
    case 'duplicate':
      ctx.counters.duplicates++
      return DUPLICATE
    case 'refused':
      return refuse(ctx, { code: admission.code, origin, seq, from })
    case 'held': {
      const state = from === undefined ? undefined : ctx.links.get(from)
      if (state !== undefined && admission.first) ctx.send(state, { kind: MSG.KEYREQ, kids: [deviceIdToBytes(origin)] })
      return HELD
    }
    case 'accepted': {
      const stored = held.bytes // a copy: the link's bytes may be a view into its receive buffer
      ctx.history.add(origin, { seq, bytes: stored, hops })
      ctx.changed.add(origin)
      ctx.deliver(frame, stored, hops, from)
      ctx.forward(frame, stored, hops + 1, from)
      return ACCEPTED
    }
  }
}

function refuse (ctx: RouterContext, info: Parameters<RouterContext['drop']>[0]): InjectResult {
  ctx.drop(info)
  return { verdict: 'refused', code: info.code }
}

/** Frames held for a signer whose key just arrived: admitted again, in arrival order. */
export function release (ctx: RouterContext, frames: HeldFrame[]): void {
  for (const h of frames) ingest(ctx, h.bytes, h.hops, h.from)
}
