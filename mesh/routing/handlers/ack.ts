import type { DeviceId } from '../../../shared/index.js'
import { DURABLE_FILTER, peekAck, verifyAck, type Ack } from '../ack.js'
import { chunks, MSG, type AckEntry } from '../messages.js'
import type { LinkState, RouterContext } from '../context.js'

/**
 * ACK [8, [[hops, ack]…]]: signed end-to-end acknowledgements (ack.ts) on their way from a durable
 * subscriber to the origins they acknowledge, hop by hop along the reverse path of each origin's
 * frames (acks.ts `upstream`). Where that path is not known (the link it ran over closed), the ack
 * goes no further: never flooded, so one ack costs one signature check per hop of one path; the
 * subscriber sends it again (acks.ts `refreshMs`) once new frames of the origin have laid a path.
 *
 * Bounded per entry and per message, whatever a neighbour sends: at most MAX_ENTRIES entries
 * (messages.ts), each at most MAX_ACK_BYTES; an ack goes on only when
 *   - it has travelled fewer hops than the hop limit,
 *   - its subscriber is known here with a signed declaration that says it is durable (the key
 *     comes from that declaration: a node that never declared cannot make acks travel),
 *   - it is newer than the last ack of its (subscriber, origin) seen here (a table of
 *     `maxPairs`; an old or repeated ack costs a lookup, not a signature check),
 *   - its signature holds (checked once per hop, before it is remembered or forwarded).
 * A bad signature counts against the neighbour (score.ts 'invalid'); the rate is the neighbour's
 * 'ack' budget (budget.ts).
 */
export function onAck (ctx: RouterContext, state: LinkState, entries: AckEntry[]): void {
  for (const { hops, ack: bytes } of entries) {
    if (hops > ctx.options.hopLimit) { ctx.drop({ code: 'ERR_HOP_LIMIT', from: state.peer }); continue }
    const peeked = peekAck(bytes)
    if (!peeked.ok) {
      ctx.drop({ code: peeked.code, from: state.peer })
      ctx.observe(state.peer, 'invalid')
      continue
    }
    const { ack } = peeked
    if (ack.subscriber === ctx.id || !ctx.acks.fresh(ack)) continue
    const publicKey = ctx.interest.keyOf(ack.subscriber)
    if (publicKey === undefined || !ctx.interest.filtersOf(ack.subscriber).includes(DURABLE_FILTER)) {
      ctx.drop({ code: 'ERR_UNKNOWN_SIGNER', origin: ack.subscriber, from: state.peer })
      continue
    }
    if (!verifyAck(peeked, publicKey, ctx.ed25519)) {
      ctx.drop({ code: 'ERR_BAD_SIGNATURE', origin: ack.subscriber, from: state.peer })
      ctx.observe(state.peer, 'invalid')
      continue
    }
    ctx.acks.remember(ack)
    ctx.counters.acksIn++
    if (ack.origin === ctx.id) ctx.emitAck(ack)
    else sendAcks(ctx, [[ack.origin, bytes]], hops + 1, state.peer)
  }
}

/**
 * Sends acks on towards their origins: to the origin itself when it is a neighbour, else along the
 * reverse path of its frames (never back to `except`, the neighbour it came from); else nowhere.
 */
export function sendAcks (ctx: RouterContext, acks: ReadonlyArray<readonly [DeviceId, Uint8Array]>, hops: number, except?: DeviceId): void {
  if (hops > ctx.options.hopLimit) return
  const byPeer = new Map<DeviceId, AckEntry[]>()
  const add = (peer: DeviceId, ack: Uint8Array): void => {
    let list = byPeer.get(peer)
    if (list === undefined) byPeer.set(peer, list = [])
    list.push({ hops, ack })
  }
  for (const [origin, ack] of acks) {
    const up = ctx.acks.upstream(origin)
    if (ctx.links.has(origin)) add(origin, ack)
    else if (up !== undefined && up !== except && ctx.links.has(up)) add(up, ack)
    else ctx.counters.acksUnrouted++
  }
  for (const [peer, entries] of byPeer) {
    const state = ctx.links.get(peer)
    if (state === undefined) continue
    for (const chunk of chunks(entries)) if (ctx.send(state, { kind: MSG.ACK, entries: chunk })) ctx.counters.acksOut += chunk.length
  }
}

export type { Ack }
