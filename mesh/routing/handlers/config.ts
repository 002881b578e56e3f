import { isMeshError, type DeviceId, type ErrorCode, type FleetConfig } from '../../../shared/index.js'
import { MSG, chunks } from '../messages.js'
import type { LinkState, RouterContext } from '../context.js'

/**
 * CONFIG [11, [configuration…]]: owner-signed, versioned device configurations
 * (shared/fleet-config.ts), spread by gossip as revocations are (handlers/revoke.ts), with one
 * difference: per target only the highest valid version is kept (ConfigBook). A configuration is
 * first read without any signature check (layout, target, version); one whose version this node
 * already holds or beats goes no further and costs nothing more (it is reported as 'stale' when
 * lower, so a device can refuse it for itself with ERR_CONFIG_STALE); a higher one is verified
 * (at most one check per owner), kept, passed on once to every other neighbour and reported
 * ('config' event). A new neighbour is sent every configuration held when its link opens. The
 * CONFIG budget (budget.ts) bounds what a neighbour may make this node look at.
 *
 * Without a fleet file a node ignores configurations and passes none on. Malformed ones, or ones
 * no owner signed (or too few), count against the neighbour (score.ts 'invalid'); one for another
 * fleet does not.
 */
export type ConfigVerdict = 'added' | 'known' | 'stale' | 'ignored' | ErrorCode

export interface ConfigInfo {
  verdict: 'added' | 'stale'
  target: string
  version: number
  bytes: Uint8Array
  /** Verified (only with 'added'). */
  config?: FleetConfig
  /** The neighbour it came from (undefined: taken here). */
  from?: DeviceId
}

export function onConfigs (ctx: RouterContext, state: LinkState, configs: Uint8Array[]): void {
  for (const bytes of configs) takeConfig(ctx, bytes, state.peer)
}

/** Takes one configuration (from a neighbour, or made here when `from` is undefined). */
export function takeConfig (ctx: RouterContext, bytes: Uint8Array, from: DeviceId | undefined): ConfigVerdict {
  const book = ctx.configs
  if (book === undefined) return 'ignored'
  let taken: ReturnType<typeof book.add>
  try {
    taken = book.add(bytes, ctx.ed25519)
  } catch (err) {
    const code: ErrorCode = isMeshError(err) ? err.code : 'ERR_BAD_CONFIG'
    ctx.drop({ code, ...(from === undefined ? {} : { from }) })
    if (code !== 'ERR_UNKNOWN_FLEET' && code !== 'ERR_TABLE_FULL') ctx.observe(from, 'invalid')
    return code
  }
  const { verdict, target, version, config } = taken
  if (verdict === 'known') return verdict
  if (verdict === 'added') {
    ctx.counters.configs++
    for (const state of ctx.links.values()) {
      if (state.peer !== from && !ctx.send(state, { kind: MSG.CONFIG, configs: [bytes] })) state.gossipDue = true // sync.ts sends it again
    }
  }
  ctx.emitConfig({ verdict, target, version, bytes, ...(config === undefined ? {} : { config }), ...(from === undefined ? {} : { from }) })
  return verdict
}

/** Sends a neighbour every configuration held (its link just opened). */
export function sendConfigs (ctx: RouterContext, state: LinkState): void {
  for (const chunk of chunks(ctx.configs?.all() ?? [], (c) => c.length)) if (!ctx.send(state, { kind: MSG.CONFIG, configs: chunk })) state.gossipDue = true
}
