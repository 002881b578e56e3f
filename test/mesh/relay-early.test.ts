import { describe, expect, it } from 'vitest'
import { signFrame, type KeyPair } from '../../shared/index.js'
import { encodeData, type MeshNode } from '../../mesh/index.js'
import { createMemoryNetwork } from '../../mesh/testing.js'
import { holdoffMs } from '../../mesh/routing/early.js'
import { DEFAULT_SCORE_PARAMS, scoreParams, type ScoreInit } from '../../mesh/routing/score.js'
import { Inbox, addr, linked, push, rawLink, routed, seededKeys, startNode, until } from '../helpers/memory-mesh.js'

/**
 * Relaying before verifying (`routing.relayBeforeVerify`, mesh/routing/early.ts; issue 15): honest
 * frames go on before the relay's own check; a forgery goes on at most once per hold-off, reaches
 * no application, costs its sender its standing, and bans no honest relay.
 *
 * A line A – B – C – D (D subscribes to everything), every node with the option; M, a neighbour of
 * B with a valid key of its own, sends frames signed by its key with a broken signature.
 */
type Send = (seq: number, forged: boolean) => Promise<void>

async function line (relayBeforeVerify = true, score: ScoreInit = {}): Promise<{ a: MeshNode, b: MeshNode, c: MeshNode, d: MeshNode, m: KeyPair, send: Send, attacker: (n: number) => Promise<{ keys: KeyPair, send: Send }>, inbox: Inbox }> {
  const net = createMemoryNetwork({ seed: 15 })
  const routing = { relayBeforeVerify, score }
  const a = await startNode(net, 'a', seededKeys(1), [], { routing })
  const b = await startNode(net, 'b', seededKeys(2), [addr(a)], { routing })
  const c = await startNode(net, 'c', seededKeys(3), [addr(b)], { routing })
  const d = await startNode(net, 'd', seededKeys(4), [addr(c)], { routing })
  await linked(b, a.id, c.id)
  await linked(c, d.id)
  const inbox = new Inbox(d)
  await routed(a, d)
  const attacker = async (n: number): Promise<{ keys: KeyPair, send: Send }> => {
    const keys = seededKeys(n)
    const { link } = await rawLink(net, keys, b)
    return {
      keys,
      send: async (seq, forged) => {
        const bytes = new Uint8Array(signFrame({ keys, seq, records: [{ n: 'temp', v: seq }] }).bytes)
        if (forged) bytes[bytes.length - 1] = (bytes.at(-1) as number) ^ 1 // the last byte of the signature
        await push(link, encodeData(1, bytes))
      }
    }
  }
  const { keys: m, send } = await attacker(66)
  return { a, b, c, d, m, send, attacker, inbox }
}

const rejected = (node: MeshNode): number => node.counters.rejected.ERR_BAD_SIGNATURE ?? 0
const score = (node: MeshNode, peer: string): number => node.peers().find((p) => p.id === peer)?.score?.score ?? 0

async function publish (a: MeshNode, inbox: Inbox, n: number): Promise<void> {
  const before = inbox.from(a.id).length
  for (let i = 0; i < n; i++) a.publish('telemetry', [{ n: 'i', v: i }])
  await inbox.waitFor(a.id, before + n)
}

describe('relaying before verifying', () => {
  it('honest frames go on before the relay checks them; without the option, after', async () => {
    const on = await line(true)
    await publish(on.a, on.inbox, 20)
    expect(on.b.counters.relayedEarly).toBeGreaterThanOrEqual(20)
    expect(on.c.counters.relayedEarly).toBeGreaterThanOrEqual(20)
    expect(on.b.counters.earlyForgeries).toBe(0)

    const off = await line(false)
    await publish(off.a, off.inbox, 20)
    expect(off.b.counters.relayed).toBeGreaterThanOrEqual(20)
    expect(off.b.counters.relayedEarly).toBe(0)
    expect(off.c.counters.relayedEarly).toBe(0)
  })

  it('a forgery goes on once, reaches no application, bans no honest relay, and its sender is cut off', async () => {
    const s = await line(true)
    // M's honest frames first: its key is known on the way (KEYREQ), and they go on early.
    for (let seq = 1; seq <= 5; seq++) await s.send(seq, false)
    await s.inbox.waitFor(s.m.id, 5)
    const early = s.b.counters.relayedEarly
    expect(early).toBeGreaterThanOrEqual(1)

    // One forgery: B relays it before its check, C too; each then finds it invalid.
    await s.send(6, true)
    await until(() => rejected(s.d) + rejected(s.c) >= 1 && rejected(s.b) >= 1, 'the forgery refused at B and beyond')
    await until(() => s.b.counters.earlyForgeries === 1, 'B counted the forgery it relayed early')
    expect(s.b.counters.relayedEarly).toBe(early + 1)
    // It travelled on unverified as far as the relays' own check let it (C relays early from a clean B).
    expect(rejected(s.c)).toBe(1)
    expect(s.c.counters.earlyForgeries).toBe(1)
    await until(() => rejected(s.d) === 1, 'D refused the forgery C relayed early')

    // The attack goes on: 20 more forgeries. B holds off and checks first; nothing more reaches C.
    for (let seq = 7; seq <= 26; seq++) await s.send(seq, true)
    await until(() => s.b.peers().find((p) => p.id === s.m.id)?.score?.bannedUntil !== undefined && !s.b.links.has(s.m.id), 'M cut off by B')
    expect(s.b.counters.earlyForgeries).toBe(1)
    expect(rejected(s.c)).toBe(1)
    expect(rejected(s.d)).toBe(1)

    // No application saw a forged reading: D has M's five honest ones, no more.
    expect(s.inbox.from(s.m.id).map((x) => x.seq)).toEqual([1, 2, 3, 4, 5])
    // The honest relays keep their standing and their links; honest traffic still flows end to end.
    expect(score(s.c, s.b.id)).toBeGreaterThan(DEFAULT_SCORE_PARAMS.threshold / 2)
    expect(score(s.d, s.c.id)).toBeGreaterThan(DEFAULT_SCORE_PARAMS.threshold / 2)
    expect(s.c.links.has(s.b.id) && s.d.links.has(s.c.id)).toBe(true)
    expect(s.c.counters.bans + s.d.counters.bans).toBe(0)
    const relayed = s.b.counters.relayedEarly
    await publish(s.a, s.inbox, 20)
    // ... verified first during the hold-off.
    expect(s.b.counters.relayedEarly).toBe(relayed)
  })
})

describe('the hold-off after a forgery', () => {
  it('holds every neighbour back, and the one that sent a forgery past the hold-off too', async () => {
    // Scores decay every 10 ms here: the hold-off is 59 steps, 590 ms; an invalid frame stays on
    // a record for about 1,375 steps (0.99^1375 < 1e-6), 13.7 s.
    const s = await line(true, { decayInterval: 10, decayToZero: 1e-6 })
    const holdoff = holdoffMs(scoreParams({ decayInterval: 10 }))
    expect(holdoff).toBe(590)
    const other = await s.attacker(67)
    for (let seq = 1; seq <= 3; seq++) { await s.send(seq, false); await other.send(seq, false) }
    await s.inbox.waitFor(s.m.id, 3)
    await s.inbox.waitFor(other.keys.id, 3)
    const early = s.b.counters.relayedEarly
    await s.send(4, true)
    await until(() => s.b.counters.earlyForgeries === 1, 'the first forgery relayed early')
    // Another neighbour with a clean record, within the hold-off: its forgery is checked first.
    await other.send(4, true)
    await until(() => rejected(s.b) === 2, 'B refused the second forgery')
    expect(s.b.counters.relayedEarly).toBe(early + 1)
    expect(rejected(s.c)).toBe(1)
    // Past the hold-off, a clean neighbour's frames (A's) go early again; those of the two that
    // sent forgeries (their records not yet clean) are checked first, and their next forgery stops at B.
    await new Promise((resolve) => setTimeout(resolve, holdoff + 50))
    await publish(s.a, s.inbox, 5)
    expect(s.b.counters.relayedEarly).toBe(early + 6)
    await other.send(5, false)
    await s.send(5, false)
    await s.inbox.waitFor(other.keys.id, 4)
    await s.inbox.waitFor(s.m.id, 4)
    expect(s.b.counters.relayedEarly).toBe(early + 6)
    await s.send(6, true)
    await until(() => rejected(s.b) === 3, 'B refused the third forgery')
    expect(s.b.counters.earlyForgeries).toBe(1)
    expect(rejected(s.c)).toBe(1)
  })

  it('keeps an honest relay that passes one forgery per hold-off at most halfway to a ban', () => {
    expect(holdoffMs(DEFAULT_SCORE_PARAMS)).toBe(59_000)
    for (const init of [{}, { threshold: -50 }, { invalid: { weight: -20, decay: 0.995 } }, { invalid: { weight: -5, decay: 0.9 }, decayInterval: 500 }]) {
      const p = scoreParams(init)
      const t = holdoffMs(p)
      // The steady count its neighbours keep at one forgery every t ms, and what it costs.
      const decay = p.invalid.decay ** (t / p.decayInterval)
      const steady = 1 / (1 - decay)
      expect(Math.abs(p.invalid.weight) * steady * steady).toBeLessThanOrEqual(Math.abs(p.threshold) / 2 + 1e-9)
      // One interval less would not do.
      const shorter = p.invalid.decay ** (t / p.decayInterval - 1)
      expect(Math.abs(p.invalid.weight) / (1 - shorter) ** 2).toBeGreaterThan(Math.abs(p.threshold) / 2)
    }
  })
})
