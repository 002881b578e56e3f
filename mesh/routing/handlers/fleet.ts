import { isMeshError, type DeviceId, type ErrorCode, type FleetPolicy } from '../../../shared/index.js'
import { MSG, chunks } from '../messages.js'
import type { LinkState, RouterContext } from '../context.js'

/**
 * FLEET [13, [fleet file…]]: owner-signed fleet files (shared/fleet-file.ts), spread by gossip as
 * revocations are (handlers/revoke.ts) so that an owner rotation, an added owner or a new threshold
 * reaches every node instead of being handed out by hand. A node holds a chain of them
 * (FleetFileChain: the newest 16, oldest first); the highest version valid against the file in
 * force wins:
 *
 *   - read first without any signature check (layout, fleet, size); one whose version this node
 *     holds (the same bytes) costs nothing more; an older or equal one with other bytes is refused
 *     with ERR_FLEET_STALE, no signature checked (no rollback by replaying an old file);
 *   - a higher one is verified against the owners and threshold of the file in force (ERR_NOT_OWNER,
 *     ERR_TOO_FEW_OWNERS: at most one check per current owner), then put in force everywhere the
 *     node uses the fleet file (its revocations, configurations, credential checks: `adoptPolicy`),
 *     passed on once to every other neighbour in the control lane and reported ('fleet' event, so a
 *     device keeps it across restarts).
 *
 * Bounds: a file is at most 4 KiB (messages.ts); the FLEET budget (budget.ts: 1 a second, 32 at
 * once) bounds what a neighbour may make this node read; files are taken one at a time, in order,
 * so a chain catches up file by file and nothing waits in flight. Malformed or forged ones count
 * against the neighbour (score.ts 'invalid'); a stale one or another fleet's does not (an honest
 * neighbour behind us sends what it holds). A new neighbour is sent the whole chain when its link
 * opens; a send its full control lane refused is repeated at the next sync tick (gossipDue).
 * Without a fleet file a node ignores them.
 */
export type FleetVerdict = 'added' | 'known' | 'ignored' | ErrorCode

export interface FleetInfo {
  /** The fleet file now in force, its version, and the signed bytes that made it so. */
  policy: FleetPolicy
  version: number
  bytes: Uint8Array
  /** The neighbour it came from (undefined: taken here). */
  from?: DeviceId
}

export function onFleetFiles (ctx: RouterContext, state: LinkState, files: Uint8Array[]): void {
  for (const bytes of files) takeFleetFile(ctx, bytes, state.peer)
}

/** Takes one signed fleet file (from a neighbour, or made here when `from` is undefined). */
export function takeFleetFile (ctx: RouterContext, bytes: Uint8Array, from: DeviceId | undefined): FleetVerdict {
  const chain = ctx.fleetFiles
  if (chain === undefined) return 'ignored'
  let taken: ReturnType<typeof chain.add>
  try {
    taken = chain.add(bytes, ctx.ed25519)
  } catch (err) {
    const code: ErrorCode = isMeshError(err) ? err.code : 'ERR_BAD_FLEET_FILE'
    ctx.drop({ code, ...(from === undefined ? {} : { from }) })
    if (code !== 'ERR_UNKNOWN_FLEET' && code !== 'ERR_FLEET_STALE') ctx.observe(from, 'invalid')
    return code
  }
  if (taken.verdict === 'known') return 'known'
  ctx.counters.fleetFiles++
  ctx.adoptPolicy(taken.policy)
  for (const state of ctx.links.values()) {
    if (state.peer !== from && !ctx.send(state, { kind: MSG.FLEET, files: [bytes] })) state.gossipDue = true // sync.ts sends the chain again
  }
  ctx.emitFleet({ policy: taken.policy, version: chain.version, bytes, ...(from === undefined ? {} : { from }) })
  return 'added'
}

/** Sends a neighbour the chain of signed fleet files held, oldest first (its link just opened, or a send failed). */
export function sendFleetFiles (ctx: RouterContext, state: LinkState): void {
  for (const chunk of chunks(ctx.fleetFiles?.all() ?? [], (f) => f.length)) if (!ctx.send(state, { kind: MSG.FLEET, files: chunk })) state.gossipDue = true
}
