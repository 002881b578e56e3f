import { isMeshError, type DeviceId, type ErrorCode, type Revocation } from '../../../shared/index.js'
import { MSG, chunks } from '../messages.js'
import type { LinkState, RouterContext } from '../context.js'

/**
 * REVOKE [10, [revocation…]]: owner-signed revocations (shared/fleet.ts), spread by gossip. The
 * revocations a node holds are a grow-only set merged by union (RevocationSet): a new one is
 * verified (at most one signature check per owner of the fleet file), kept, passed on once to every
 * other neighbour, and acted on: the link to the revoked device is closed, and from then on its
 * links (router.ts addLink), frames (handlers/data.ts) and commands (handlers/command.ts) are
 * refused with ERR_REVOKED. One already held costs a lookup and goes no further, so a revocation
 * crosses each link at most twice. A new neighbour is sent the whole set when its link opens.
 * REVOKE goes in the link's control lane (messages.ts CONTROL_KINDS, links/lanes.ts), ahead of
 * queued data: on a 100-device grid with busy links it waited behind the readings on every hop.
 * A send the link refused (its control lane full) is not lost: the next sync tick sends that
 * neighbour the whole set again (LinkState.gossipDue, handlers/sync.ts). Found by `iotmesh
 * experiment revocation`: on a 100-device grid with busy links the revocation stopped at the
 * gateway's neighbour for good.
 *
 * A node without a fleet file cannot check revocations: it ignores them (and passes none on).
 * Malformed ones, or ones no owner signed, count against the neighbour (score.ts 'invalid'); one
 * for another fleet does not (a node of a neighbouring fleet may relay it).
 */
export function onRevocations (ctx: RouterContext, state: LinkState, revocations: Uint8Array[]): void {
  for (const bytes of revocations) takeRevocation(ctx, bytes, state.peer)
}

/** Takes one revocation (from a neighbour, or made here when `from` is undefined). */
export function takeRevocation (ctx: RouterContext, bytes: Uint8Array, from: DeviceId | undefined): 'added' | 'known' | 'ignored' | ErrorCode {
  const set = ctx.revocations
  if (set === undefined) return 'ignored'
  let verdict: 'added' | 'known'
  let revocation: Revocation
  try {
    ({ verdict, revocation } = set.add(bytes, ctx.ed25519))
  } catch (err) {
    const code: ErrorCode = isMeshError(err) ? err.code : 'ERR_BAD_REVOCATION'
    ctx.drop({ code, ...(from === undefined ? {} : { from }) })
    if (code !== 'ERR_UNKNOWN_FLEET') ctx.observe(from, 'invalid')
    return code
  }
  if (verdict === 'known') return verdict
  ctx.counters.revocations++
  for (const state of ctx.links.values()) {
    if (state.peer !== from && !ctx.send(state, { kind: MSG.REVOKE, revocations: [bytes] })) state.gossipDue = true // sync.ts sends it again
  }
  const link = ctx.links.get(revocation.device)
  if (link !== undefined) {
    ctx.counters.revokedRefused++
    ctx.closeLink(link)
  }
  ctx.emitRevoked(revocation.device, revocation.reason, bytes)
  return verdict
}

/** Sends a neighbour every revocation held (its link just opened). */
export function sendRevocations (ctx: RouterContext, state: LinkState): void {
  const all = ctx.revocations?.all() ?? []
  for (const chunk of chunks(all, (r) => r.length)) if (!ctx.send(state, { kind: MSG.REVOKE, revocations: chunk })) state.gossipDue = true
}
