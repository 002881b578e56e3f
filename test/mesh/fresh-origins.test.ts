import { describe, expect, it } from 'vitest'
import { deviceIdToBytes, encodeFrame, generateKeyPair, type KeyPair } from '../../shared/index.js'
import { createMemoryNetwork } from '../../mesh/testing.js'
import { chunks, encodeData, encodeMessage, MSG, type RoutingMessage } from '../../mesh/routing/messages.js'
import { DEFAULT_BUDGETS } from '../../mesh/routing/budget.js'
import { Inbox, addr, push, rawLink, seededKeys, startNode, until } from '../helpers/memory-mesh.js'

/**
 * Issue 10, the 65,536 fresh origins row: a neighbour that sends validly signed frames from ever
 * new origins made the node check a signature, and create state in every per-origin table (key,
 * replay window, history, origin rate, the next DIGEST), for each of them, as fast as its link
 * took them (0.57 of a core, sync ticks of 10–60 ms, major collections). Each link now has a
 * budget of fresh origins (budget.ts DEFAULT_BUDGETS.fresh), spent before the signature is checked;
 * past it frames are refused unchecked (ERR_OVER_BUDGET), without blame, and what an honest relay
 * had refused is fetched by DIGEST and WANT, which the budget exempts.
 */

const one = (keys: KeyPair, seq: number): Uint8Array => encodeData(1, encodeFrame({ keys, seq, records: [{ n: 'x', v: seq }] }))
/** KEY messages naming `origins` (at most MAX_ENTRIES a message). */
const keysOf = (origins: KeyPair[]): Uint8Array[] => chunks(origins.map((k) => k.publicKey)).map((keys) => encodeMessage({ kind: MSG.KEY, keys }))

describe('fresh origins: a budget per link, spent before any signature is checked', () => {
  it('the defaults: a burst above a 1,000-device fleet on a new link, and a rate', () => {
    expect(DEFAULT_BUDGETS.fresh.burst).toBeGreaterThanOrEqual(2048)
    expect(DEFAULT_BUDGETS.fresh.rate).toBeGreaterThan(0)
    expect(DEFAULT_BUDGETS.fresh.rate).toBeLessThan(DEFAULT_BUDGETS.data.rate)
  })

  it('a flood of validly signed frames from fresh origins: past the link\'s budget refused unchecked; the publisher beside it is not held up', async () => {
    const net = createMemoryNetwork({ seed: 41 })
    const routing = { budgets: { fresh: { rate: 50, burst: 100 } } }
    const b = await startNode(net, 'b', seededKeys(2), [], { routing })
    const a = await startNode(net, 'a', seededKeys(1), [addr(b)], { routing })
    await until(() => b.links.has(a.id), 'a linked to b')
    const inbox = new Inbox(b)
    await until(() => a.routeTo(b.id) !== undefined, 'a route from a to b')
    const { link } = await rawLink(net, seededKeys(9), b)
    const strangers = Array.from({ length: 800 }, () => generateKeyPair())
    const frames = strangers.map((k) => one(k, 1))

    const t0 = Date.now()
    for (const m of keysOf(strangers)) await push(link, m)
    const flood = (async () => { for (const f of frames) await push(link, f) })()
    // The honest publisher's readings go through while the flood is read, on their own link.
    for (let v = 0; v < 5; v++) {
      a.publish('telemetry', [{ n: 'temp', v }])
      await inbox.waitFor(a.id, v + 1)
    }
    await flood
    await link.ping()
    const elapsed = Date.now() - t0
    const accepted = strangers.filter((k) => inbox.from(k.id).length > 0).length
    // At most the burst, and what the rate refilled while the flood was read (50 a second), of 800.
    expect(accepted).toBeGreaterThanOrEqual(100)
    expect(accepted).toBeLessThanOrEqual(100 + Math.ceil(elapsed / 20) + 1)
    expect(b.counters.overBudget.fresh).toBe(800 - accepted)
    expect(b.counters.rejected.ERR_OVER_BUDGET).toBe(800 - accepted)
    // No blame for it alone: an honest relay of a fleet larger than the burst meets it on a new link.
    expect(link.open).toBe(true)
    expect(b.counters.bans).toBe(0)
    a.publish('telemetry', [{ n: 'temp', v: 5 }])
    await inbox.waitFor(a.id, 6)
  })

  it('an honest relay of more origins than the burst: what was refused is fetched (WANT is exempt), and origins once tracked never pay again', async () => {
    const net = createMemoryNetwork({ seed: 42 })
    // No refill at all: every origin past the first 20 can only come in asked for.
    const b = await startNode(net, 'b', seededKeys(2), [], { routing: { budgets: { fresh: { rate: 0, burst: 20 } } } })
    const inbox = new Inbox(b)
    const { link, heard } = await rawLink(net, seededKeys(10), b)
    const origins = Array.from({ length: 60 }, () => generateKeyPair())
    const sent = new Map(origins.map((k) => [k.id, [one(k, 1), one(k, 2)]]))
    // The relay answers WANTs from what it holds, as an honest one does.
    let answered = 0
    link.on('message', () => {
      for (const m of heard.splice(0)) {
        if (m.kind !== MSG.WANT) continue
        for (const e of (m as Extract<RoutingMessage, { kind: typeof MSG.WANT }>).entries) {
          const held = origins.find((k) => deviceIdToBytes(k.id).every((x, i) => x === e.kid[i]))
          for (let seq = e.from; held !== undefined && seq <= Math.min(e.to, 1); seq++) { answered++; link.send((sent.get(held.id) as Uint8Array[])[seq - 1] as Uint8Array) }
        }
      }
    })
    for (const m of keysOf(origins)) await push(link, m)
    for (const k of origins) await push(link, (sent.get(k.id) as Uint8Array[])[0] as Uint8Array)
    await link.ping()
    expect(b.counters.overBudget.fresh).toBe(40)
    // It announces what it holds (its DIGEST); the subscriber asks for what it lacks and gets it.
    await push(link, encodeMessage({ kind: MSG.DIGEST, full: false, entries: origins.map((k) => ({ kid: deviceIdToBytes(k.id), low: 1, high: 1 })) }))
    await until(() => origins.every((k) => inbox.from(k.id).length === 1), 'every origin\'s first frame at b')
    expect(answered).toBe(40)
    // Tracked now: their next frames pass although the budget is spent for good.
    for (const k of origins) await push(link, (sent.get(k.id) as Uint8Array[])[1] as Uint8Array)
    await until(() => origins.every((k) => inbox.from(k.id).length === 2), 'every origin\'s second frame at b')
    expect(b.counters.overBudget.fresh).toBe(40)
    expect(b.counters.bans).toBe(0)
    expect(b.peers().find((p) => p.id === seededKeys(10).id)?.score?.invalid ?? 0).toBe(0)
  })
})
