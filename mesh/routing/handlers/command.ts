import { commandKindOf, decodeCommand, decodeResult, isMeshError, type Command, type CommandResult, type DeviceId, type ErrorCode } from '../../../shared/index.js'
import { COMMAND_FILTER, commandKey } from '../commands.js'
import { MSG, type CommandEntry } from '../messages.js'
import type { LinkState, RouterContext } from '../context.js'

/**
 * CMD [9, [[hops, signed]…]]: signed commands on their way to their targets and signed results on
 * their way back (commands.ts says how they are routed and bounded). A command goes to the next hop
 * towards its target, a node that declared COMMAND_FILTER; a result goes back to the neighbour its
 * command came from, and only when it comes from the neighbour the command was sent to and is
 * signed by the command's target (the issuer checks that signature; no relay checks one).
 *
 * Malformed entries count against the neighbour (score.ts 'invalid'); entries this node cannot
 * route are dropped and counted (ERR_NO_ROUTE, ERR_TABLE_FULL), never flooded.
 */
export function onCommands (ctx: RouterContext, state: LinkState, entries: CommandEntry[]): void {
  for (const { hops, signed } of entries) {
    if (hops > ctx.options.hopLimit) { ctx.drop({ code: 'ERR_HOP_LIMIT', from: state.peer }); continue }
    routeSigned(ctx, signed, hops, state.peer)
  }
}

/** Routes one command or result that arrived from `from` (undefined: made here). Undefined when it went on or was taken; else why not. */
export function routeSigned (ctx: RouterContext, signed: Uint8Array, hops: number, from: DeviceId | undefined): ErrorCode | undefined {
  let kind: 'command' | 'result' | undefined
  try {
    kind = commandKindOf(signed)
    if (kind === 'command') return routeCommand(ctx, decodeCommand(signed), signed, hops, from)
    if (kind === 'result') return routeResult(ctx, decodeResult(signed), signed, hops, from)
  } catch (err) {
    return refuse(ctx, isMeshError(err) ? err.code : 'ERR_BAD_COMMAND', from, true)
  }
  return refuse(ctx, 'ERR_BAD_COMMAND', from, true)
}

/** A command's path lives its lifetime plus this, ms: its result, answered at the last moment, still finds the way back. */
const LINGER_MS = 5000

function routeCommand (ctx: RouterContext, command: Command, signed: Uint8Array, hops: number, from: DeviceId | undefined): ErrorCode | undefined {
  if (ctx.revocations?.has(command.issuer) === true) return unrouted(ctx, 'ERR_REVOKED', from)
  const now = ctx.clock.now()
  const here = command.target === ctx.id
  const via = here ? undefined : nextHop(ctx, command.target, from)
  if (!here && via === undefined) return unrouted(ctx, 'ERR_NO_ROUTE', from)
  const opened = ctx.commands.open(commandKey(command.issuer, command.id), from, (command.expiresAt - command.issuedAt) * 1000 + LINGER_MS, now)
  if (opened.verdict === 'full') return unrouted(ctx, 'ERR_TABLE_FULL', from)
  if (opened.verdict === 'recent' || opened.path === undefined) return undefined // on its way already
  const path = opened.path
  path.sentAt = now
  path.target = command.target
  if (here) {
    ctx.counters.commandsIn++
    ctx.takeCommand(command, signed)
    return undefined
  }
  path.to = via
  // The issuer's key and credential go first (once per link): a role grant is judged on the credential (handlers/credential.ts).
  const next = ctx.links.get(via as DeviceId)
  if (next !== undefined) ctx.tellKey(next, command.issuer)
  return send(ctx, via as DeviceId, hops + 1, signed, from)
}

function routeResult (ctx: RouterContext, result: CommandResult, signed: Uint8Array, hops: number, from: DeviceId | undefined): ErrorCode | undefined {
  const now = ctx.clock.now()
  const key = commandKey(result.issuer, result.id)
  const path = ctx.commands.get(key)
  // Only the answer of the command's target, from where the command went (or from here, when it was executed here).
  if (path === undefined || path.to !== from || path.target !== result.target) return unrouted(ctx, 'ERR_NO_ROUTE', from)
  if (now - path.answeredAt < ctx.commands.options.repeatMs) return undefined
  path.answeredAt = now
  ctx.commands.answered(key) // no longer in flight: frees its neighbour's share
  if (path.from === undefined) {
    ctx.counters.commandsIn++
    ctx.emitResult(result, signed)
    return undefined
  }
  return send(ctx, path.from, hops + 1, signed, from)
}

/** The neighbour towards `target`, a node that declared it takes commands; never back to `from`. */
function nextHop (ctx: RouterContext, target: DeviceId, from: DeviceId | undefined): DeviceId | undefined {
  if (!ctx.interest.filtersOf(target).includes(COMMAND_FILTER)) return undefined
  if (ctx.links.has(target)) return target === from ? undefined : target
  const best = ctx.interest.best(target)
  return best === undefined || best.via === from ? undefined : best.via
}

function send (ctx: RouterContext, peer: DeviceId, hops: number, signed: Uint8Array, from: DeviceId | undefined): ErrorCode | undefined {
  const state = ctx.links.get(peer)
  if (hops > ctx.options.hopLimit) return unrouted(ctx, 'ERR_HOP_LIMIT', from)
  if (state === undefined || !ctx.send(state, { kind: MSG.CMD, entries: [{ hops, signed }] })) return unrouted(ctx, 'ERR_NO_ROUTE', from)
  ctx.counters.commandsOut++
  return undefined
}

/** Counted; reported as a drop when it came from a neighbour (this node's own attempts are the caller's to report). */
function unrouted (ctx: RouterContext, code: ErrorCode, from: DeviceId | undefined): ErrorCode {
  ctx.counters.commandsUnrouted++
  if (from !== undefined) ctx.drop({ code, from })
  return code
}

function refuse (ctx: RouterContext, code: ErrorCode, from: DeviceId | undefined, invalid: boolean): ErrorCode {
  if (from === undefined) return code
  ctx.drop({ code, from })
  if (invalid) ctx.observe(from, 'invalid')
  return code
}
