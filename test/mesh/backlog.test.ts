import { describe, expect, it, onTestFinished } from 'vitest'
import type { KeyPair } from '../../shared/index.js'
import { MeshNode } from '../../mesh/index.js'
import { createMemoryNetwork, type MemoryNetwork } from '../../mesh/testing.js'
import { MAX_BACKLOG, sendFrame } from '../../mesh/routing/backlog.js'
import type { LinkState, RouterContext } from '../../mesh/routing/context.js'
import { addr, Inbox, LINK, linked, ROUTING, routed, seededKeys } from '../helpers/memory-mesh.js'

/** Links with a small send queue (16 KiB): a burst of a few hundred readings fills it. */
const SMALL = { ...LINK, maxBufferedBytes: 16 * 1024 }

/** A history of 2,048 frames per origin: the backlog refers to frames in it, and a burst here outgrows the default 256. */
const ROUTES = { ...ROUTING, historyPerOrigin: 2048 }

async function start (net: MemoryNetwork, name: string, keys: KeyPair, peers: string[] = []): Promise<MeshNode> {
  const node = new MeshNode({ name, host: name, mdns: false, peers, dialTarget: 0, announceLinks: 0, link: SMALL, routing: ROUTES }, { keys, transport: net.createTransport(SMALL, { keys }) })
  onTestFinished(async () => { await node.stop() })
  await node.start()
  return node
}

describe('a full send queue delays frames, it does not turn them into repairs (issue 11)', () => {
  it('a burst of 400 readings through a 16 KiB link: every one arrives, in order, with no DIGEST/WANT repair', async () => {
    const net = createMemoryNetwork({ seed: 21 })
    const s = await start(net, 's', seededKeys(1))
    const b = await start(net, 'b', seededKeys(2), [addr(s)])
    const a = await start(net, 'a', seededKeys(3), [addr(b)])
    await linked(b, a.id, s.id)
    const inbox = new Inbox(s)
    await routed(a, s)
    const total = 400
    for (let i = 0; i < total; i++) a.publish('telemetry', [{ n: 'i', v: i }]) // one turn of the event loop: the queue fills
    await inbox.waitFor(a.id, total)
    expect(inbox.from(a.id).map((d) => d.records[0]?.v)).toEqual([...Array(total).keys()])
    // Before: the frames the full queue refused were announced in a DIGEST and fetched by WANT.
    expect(a.counters.repaired + b.counters.repaired).toBe(0)
    expect(s.counters.duplicates).toBe(0)
  })

  it(`bounded: past ${MAX_BACKLOG} waiting frames a link leaves the rest to DIGEST/WANT, and they arrive all the same`, async () => {
    const net = createMemoryNetwork({ seed: 22 })
    const s = await start(net, 's', seededKeys(1))
    const a = await start(net, 'a', seededKeys(3), [addr(s)])
    await linked(s, a.id)
    const inbox = new Inbox(s)
    await routed(a, s)
    const total = MAX_BACKLOG + 300
    for (let i = 0; i < total; i++) a.publish('telemetry', [{ n: 'i', v: i }])

    await inbox.waitFor(a.id, total, 15_000)
    expect(new Set(inbox.from(a.id).map((d) => d.seq)).size).toBe(total)
    expect(a.counters.repaired).toBeGreaterThan(0) // the overflow went by repair
  }, 20_000)
})

describe('sendFrame: the one way a DATA frame goes to a link (forward, WANT, re-offer)', () => {
  /** A link that takes frames while `open`; the origin's key already told, so only frames are sent. */
  function fixture (): { ctx: RouterContext, state: LinkState, sent: Uint8Array[], open: { value: boolean } } {
    const sent: Uint8Array[] = []
    const open = { value: true }
    const ctx = {
      counters: { framesOut: 0 },
      sendRaw: (_state: LinkState, bytes: Uint8Array) => { if (open.value) sent.push(bytes); return open.value }
    } as unknown as RouterContext
    const state = { told: new Set(['o']), missed: new Set(), backlog: new Map() } as unknown as LinkState
    return { ctx, state, sent, open }
  }
  const origin = 'o' as LinkState['peer']
  const message = Uint8Array.of(1, 2, 3)

  it('sends when the link takes it, holds when it refuses, and then holds what follows so the order stays', () => {
    const { ctx, state, sent, open } = fixture()
    expect(sendFrame(ctx, state, origin, 1, 2, message)).toBe(true)
    expect(sent).toHaveLength(1)
    expect(ctx.counters.framesOut).toBe(1)
    open.value = false
    expect(sendFrame(ctx, state, origin, 2, 2, message)).toBe(true)
    open.value = true // the link would take it, but frame 2 waits before it
    expect(sendFrame(ctx, state, origin, 3, 2, message)).toBe(true)
    expect(sent).toHaveLength(1)
    expect([...state.backlog.values()]).toEqual([{ origin, seq: 2, hops: 2 }, { origin, seq: 3, hops: 2 }])
    expect(state.missed.size).toBe(0)
  })

  it(`past ${MAX_BACKLOG} waiting frames: false, and the origin is marked missed for the next DIGEST`, () => {
    const { ctx, state, open } = fixture()
    open.value = false
    for (let seq = 0; seq < MAX_BACKLOG; seq++) expect(sendFrame(ctx, state, origin, seq, 1, message)).toBe(true)
    expect(sendFrame(ctx, state, origin, MAX_BACKLOG, 1, message)).toBe(false)
    expect(state.backlog.size).toBe(MAX_BACKLOG)
    expect([...state.missed]).toEqual([origin])
  })
})
