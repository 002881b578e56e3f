import { deviceIdFromBytes, deviceIdToBytes, type DeviceId } from '../../../shared/index.js'
import { chunks, MSG, type DigestEntry, type WantEntry } from '../messages.js'
import { UNREACHABLE } from '../interest.js'
import { firstWaiting } from '../backlog.js'
import type { LinkState, RouterContext } from '../context.js'
import { sendConfigs } from './config.js'
import { sendFleetFiles } from './fleet.js'
import { sendRevocations } from './revoke.js'

/**
 * Catch-up after partitions, and repair of anything a link lost: every node keeps a bounded
 * history per origin; DIGESTs of per-origin high-water marks go to each neighbour for the origins
 * it leads to subscribers of (in full when a link forms or a route moves to it, incrementally
 * every `syncInterval`), and the neighbour asks (WANT) for what it lacks.
 *
 *   DIGEST [2, full, [[kid, low, high]…]]    what I hold per origin
 *   WANT   [3, [[kid, from, to]…]]           send me these (want.ts answers)
 */

/** A full DIGEST to `peer` on the clock's next turn (coalesced; a macrotask, as adverts are). */
export function digestSoon (ctx: RouterContext, peer: DeviceId): void {
  if (ctx.digestDue.has(peer)) return
  ctx.digestDue.add(peer)
  ctx.later(0, () => {
    if (!ctx.digestDue.delete(peer)) return
    const state = ctx.links.get(peer)
    if (state === undefined) return
    ctx.counters.fullDigests++
    fullDigest(ctx, state, [...ctx.history.origins()], 0)
  })
}

/** A full DIGEST, `SYNC_SLICE` origins of the history per turn of the clock (each part a full DIGEST). */
function fullDigest (ctx: RouterContext, state: LinkState, origins: DeviceId[], at: number): void {
  if (ctx.links.get(state.peer) !== state) return // closed meanwhile
  ctx.counters.syncSlices++
  const part = origins.slice(at, at + SYNC_SLICE).filter((o) => ctx.interest.wants(o, ctx.options.fleet, state.peer))
  if (at === 0 || part.length > 0) sendDigest(ctx, state, part, true)
  if (at + SYNC_SLICE < origins.length) ctx.later(0, () => { fullDigest(ctx, state, origins, at + SYNC_SLICE) })
}

/**
 * The route to `subscriber` moved from `before` to `after`. When the old route is gone (no route
 * before, its link closed, or it now says unreachable), frames sent along it may be lost and
 * origins that sent nothing since are known to `after` only from a full DIGEST: it gets one. A
 * move between two live routes (a shorter one appeared; a subscriber's periodic new version
 * reached us first by a longer path, interest.ts) loses nothing: the old next hop still carries
 * what it was sent, and `after` gets every origin's range in the next incremental DIGEST anyway.
 * A full DIGEST there made `after` ask at once for the whole history it lacks (up to
 * `historyPerOrigin` frames per origin): with every subscriber's version refresh, relays copied
 * each other's histories all the time, about one repair per reading on a 300-device fleet, and
 * after a stall the repairs outgrew the readings for good (issue 11).
 */
export function routeMoved (ctx: RouterContext, subscriber: DeviceId, before: DeviceId | undefined, after: DeviceId | undefined): void {
  if (after === undefined || after === before) return
  if (before !== undefined && ctx.links.has(before) && ctx.interest.advertised(before, subscriber) < UNREACHABLE) return
  digestSoon(ctx, after)
}

/**
 * Origins one slice of a sync round announces: a slice checks at most this many origins against
 * each link (and as many of each link's missed origins), then yields to the event loop before the
 * next; a full DIGEST goes out in parts of as many origins of the history, one per turn (issue
 * 10: after a burst of thousands of fresh origins one round walked them all times every link in
 * one macrotask, 10–36 ms during which nothing else on the node ran).
 */
export const SYNC_SLICE = 256

/** A sync round being announced slice by slice: what changed, and what each link missed, when it began. */
interface Round { changed: DeviceId[], at: number, missed: Map<LinkState, { origins: DeviceId[], at: number }> }
const rounds = new WeakMap<RouterContext, Round>()

/**
 * How many times an origin is announced again once it stops changing: 1, 3, 7, 15 and 31 sync
 * intervals after its last change (2, 6, 14, 30 and 62 s at the default 2 s), as RFC 6206's
 * Trickle announces again less and less often (§4.2: doubling intervals) while nothing changes. An announcement is the only
 * thing that makes a neighbour ask (WANT), and a neighbour heard of an origin only when its
 * frames changed: one lost (a DIGEST refused by a full link, a WANT put off past its retries, a
 * route to the neighbour's subscriber missing at that moment) was lost for good once the origin
 * went quiet (issue 15: after the bench's last round, readings held one hop away were not asked
 * for). An origin that keeps changing is announced every round anyway and never echoes.
 */
export const ECHOES = 5

/** Per origin that stopped changing: the sync tick of its next echo and how many it had. */
interface Echo { due: number, n: number }
/** Per router: its sync ticks, and the origins still to echo (at most one entry per origin of its history). */
const echoes = new WeakMap<RouterContext, { tick: number, origins: Map<DeviceId, Echo> }>()

/**
 * This tick's echoes, due ones taken out and rescheduled: origins that changed start again at 1;
 * one due is announced and waits twice as long for the next, up to `ECHOES`. Origins no longer
 * in the history are dropped; entries are only ever made for origins that changed here, so the
 * map is bounded by the history's origins over the last 2^ECHOES ticks. O(entries) per tick.
 */
function dueEchoes (ctx: RouterContext): DeviceId[] {
  let state = echoes.get(ctx)
  if (state === undefined) echoes.set(ctx, state = { tick: 0, origins: new Map() })
  const tick = ++state.tick
  const due: DeviceId[] = []
  for (const [origin, echo] of state.origins) {
    if (ctx.changed.has(origin) || echo.due > tick) continue
    if (ctx.history.range(origin) === undefined) { state.origins.delete(origin); continue }
    due.push(origin)
    if (++echo.n >= ECHOES) state.origins.delete(origin)
    else echo.due = tick + 2 ** echo.n
  }
  for (const origin of ctx.changed) {
    const echo = state.origins.get(origin) // updated in place: a busy origin changes every tick
    if (echo === undefined) state.origins.set(origin, { due: tick + 1, n: 0 })
    else { echo.due = tick + 1; echo.n = 0 }
  }
  return due
}

/**
 * Every syncInterval: tell each neighbour what changed among the origins it leads to
 * subscribers of, and what a send to it failed to carry, so it can ask for anything lost; and,
 * less and less often, what stopped changing (`ECHOES`). The round takes what changed, what is
 * due to echo and what was missed as of now and announces it in slices of `SYNC_SLICE` origins,
 * one per turn of the clock; what changes meanwhile waits for the next round. Echoes are
 * incremental DIGESTs: a relay asks only for what its eager path carried (onDigest), never for
 * the whole history (issue 11).
 */
export function sync (ctx: RouterContext): void {
  for (const state of ctx.links.values()) {
    if (!state.gossipDue) continue
    state.gossipDue = false // set again by a send that fails again
    sendRevocations(ctx, state)
    sendConfigs(ctx, state)
    sendFleetFiles(ctx, state)
  }
  if (rounds.has(ctx)) return // the last round is still being announced
  const due = dueEchoes(ctx)
  if (ctx.changed.size === 0 && due.length === 0 && ![...ctx.links.values()].some((s) => s.missed.size > 0)) return
  const round: Round = { changed: [...ctx.changed, ...due], at: 0, missed: new Map() }
  ctx.changed.clear()
  for (const state of ctx.links.values()) {
    if (state.missed.size === 0) continue
    round.missed.set(state, { origins: [...state.missed], at: 0 })
    state.missed.clear() // a send that fails again marks it again, for the next round
  }
  rounds.set(ctx, round)
  announce(ctx, round)
}

/** The router stopped: a round in progress is dropped (its continuation never runs), so a restart starts afresh. */
export function endSync (ctx: RouterContext): void { rounds.delete(ctx); echoes.delete(ctx) }

function announce (ctx: RouterContext, round: Round): void {
  ctx.counters.syncSlices++
  const batch = round.changed.slice(round.at, round.at + SYNC_SLICE)
  round.at += batch.length
  for (const state of ctx.links.values()) {
    const origins = new Set(batch.filter((o) => o !== state.peer && ctx.interest.wants(o, ctx.options.fleet, state.peer)))
    const missed = round.missed.get(state)
    if (missed !== undefined) {
      for (const o of missed.origins.slice(missed.at, missed.at + SYNC_SLICE)) origins.add(o)
      missed.at += SYNC_SLICE
      if (missed.at >= missed.origins.length) round.missed.delete(state)
    }
    if (origins.size > 0) sendDigest(ctx, state, [...origins], false)
  }
  for (const state of round.missed.keys()) if (ctx.links.get(state.peer) !== state) round.missed.delete(state) // closed meanwhile
  if (round.at < round.changed.length || round.missed.size > 0) ctx.later(0, () => { if (rounds.get(ctx) === round) announce(ctx, round) })
  else rounds.delete(ctx)
}

export function sendDigest (ctx: RouterContext, state: LinkState, origins: DeviceId[], full: boolean): void {
  const entries: DigestEntry[] = []
  // What waits in this link's backlog is on its way (backlog.ts): announced, it would be asked for.
  const waiting = firstWaiting(state)
  for (const origin of origins) {
    const range = ctx.history.range(origin)
    if (range === undefined || origin === state.peer) continue
    const high = Math.min(range.high, (waiting.get(origin) ?? Infinity) - 1)
    if (high < range.high) state.missed.add(origin) // the rest is announced once the backlog has gone out
    if (high >= range.low) entries.push({ kid: deviceIdToBytes(origin), low: range.low, high })
  }
  if (entries.length === 0 && !full) return
  for (const chunk of entries.length === 0 ? [[]] : chunks(entries)) ctx.send(state, { kind: MSG.DIGEST, full, entries: chunk })
}

interface Announced { origin: DeviceId, low: number, high: number }

/**
 * Bounded per message: one entry per origin is looked at (the first), and `replay.missing` walks
 * at most the replay window per origin, whatever range the neighbour names.
 */
export function onDigest (ctx: RouterContext, state: LinkState, entries: DigestEntry[], full: boolean): void {
  const announced: Announced[] = []
  const seen = new Set<DeviceId>()
  for (const { kid, low, high } of entries) {
    const origin = deviceIdFromBytes(kid)
    if (seen.has(origin)) continue
    seen.add(origin)
    if (origin === ctx.id || !ctx.verifier.keys.allowed(origin) || !ctx.interest.wants(origin, ctx.options.fleet)) continue
    // An incremental DIGEST repairs what the eager path lost on its way here: frames above the oldest
    // the eager path brought this node of the origin (`carriedSince`, not what a catch-up brought,
    // or each catch-up would lower the bound of the next). What came before it joined the origin's
    // path is not its to fetch (a route that moved to it between live relays; the subscriber has
    // those frames by the old path): asked for, every move cost up to `historyPerOrigin` frames per
    // origin, and a 300-device fleet collapsed once its histories were full (issue 11). A new
    // route, or one whose old next hop is gone, gets a full DIGEST and catches up on everything
    // (`routeMoved`). A subscriber here catches up on all it lacks, whatever the DIGEST.
    // Nor is what came after the newest frame its eager path brought (`carriedHigh`): those frames
    // went by another path (the route moved away) or are on their way. Pulled, every route that
    // moved away from a relay became a second path, a repair per reading (the soak's collapse).
    const all = full || ctx.interest.wantsHere(origin, ctx.options.fleet)
    const from = all ? low : Math.max(low, ctx.history.carriedSince(origin) ?? Infinity)
    const to = all ? high : Math.min(high, ctx.history.carriedHigh(origin) ?? -Infinity)
    if (from <= to && ctx.verifier.replay.gaps(origin, from, to, 1).length > 0) announced.push({ origin, low: from, high: to })
  }
  if (announced.length === 0) return
  // After a fresh link (full digest) ask at once; otherwise give the eager path a moment first.
  if (full) want(ctx, state, announced, true)
  else ctx.later(ctx.options.graftDelay, () => { want(ctx, state, announced, false) })
}

/** How many times an announcement skipped for `wantRetry` is looked at again. */
const WANT_RETRIES = 3

/**
 * How many times, `graftDelay` apart, a repair waits for this node to catch up with its own links
 * (`behind`) before it asks anyway: at most 4 × 250 ms by default.
 */
export const BEHIND_WAITS = 4

/**
 * True while a link of this node holds messages it has read and not yet delivered (they wait for a
 * later turn of the event loop: `turn.ts`). The copy a DIGEST's frames came by may be among them.
 */
function behind (ctx: RouterContext): boolean {
  for (const s of ctx.links.values()) if (s.link.pending > 0) return true
  return false
}

function want (ctx: RouterContext, state: LinkState, announced: Announced[], force: boolean, retries = WANT_RETRIES, behindWaits = BEHIND_WAITS): void {
  if (ctx.links.get(state.peer) !== state) return
  // A node busier than its links (a process that hosts a fleet, a device under a burst) reads the
  // eager copies of what a neighbour announced only in a later turn: asked for now, each came twice
  // (300 TCP devices in one thread: 6 % duplicates at the gateway, 16,618 frames repaired in 110 s).
  // So a repair waits while this node is behind, and asks for what is still missing once it has
  // caught up, or after BEHIND_WAITS waits (a node that never catches up still repairs, later).
  if (!force && behindWaits > 0 && behind(ctx)) {
    ctx.counters.wantsHeld++
    ctx.later(ctx.options.graftDelay, () => { want(ctx, state, announced, false, retries, behindWaits - 1) })
    return
  }
  const now = ctx.clock.now()
  const entries: WantEntry[] = []
  const deferred: Announced[] = []
  let wait = 0
  for (const a of announced) {
    const { origin, low, high } = a
    const since = now - (ctx.wantedAt.get(origin) ?? -Infinity)
    if (!force && since < ctx.options.wantRetry) {
      // Asked elsewhere a moment ago: look again once `wantRetry` has passed, for what is still
      // missing then. Dropped, the announcement was lost: a neighbour announces an origin again
      // only when it gets more of it, so frames it alone held waited for a reading that might never come.
      deferred.push(a)
      wait = Math.max(wait, ctx.options.wantRetry - since)
      continue
    }
    const missing = ctx.verifier.replay.missing(origin, low, high, 1024)
    if (missing.length === 0) continue
    // Most recent last; the oldest is forgotten first (a forgotten origin may be asked again early).
    ctx.wantedAt.delete(origin)
    ctx.wantedAt.set(origin, now)
    if (ctx.wantedAt.size > ctx.options.maxWanted) ctx.wantedAt.delete(ctx.wantedAt.keys().next().value as DeviceId)
    const kid = deviceIdToBytes(origin)
    let from = missing[0] as number
    let to = from
    for (const seq of missing.slice(1)) {
      if (seq === to + 1) { to = seq; continue }
      entries.push({ kid, from, to })
      from = to = seq
    }
    entries.push({ kid, from, to })
  }
  ctx.counters.wantsSent += entries.length
  for (const chunk of chunks(entries)) ctx.send(state, { kind: MSG.WANT, entries: chunk })
  if (deferred.length > 0 && retries > 0) ctx.later(wait, () => { want(ctx, state, deferred, false, retries - 1, behindWaits) })
}
