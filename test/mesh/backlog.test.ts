import { describe, expect, it, onTestFinished } from 'vitest'
import type { KeyPair } from '../../shared/index.js'
import { MeshNode } from '../../mesh/index.js'
import { createMemoryNetwork, type MemoryNetwork } from '../../mesh/testing.js'
import { MAX_BACKLOG } from '../../mesh/routing/backlog.js'
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
