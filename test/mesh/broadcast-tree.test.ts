import { describe, expect, it } from 'vitest'
import type { MeshNode } from '../../mesh/index.js'
import { createMemoryNetwork, type MemoryNetwork } from '../../mesh/testing.js'
import { MSG, decodeMessage, encodeData } from '../../mesh/routing/messages.js'
import { Inbox, addr, rawLink, routed, seededKeys, startNode, until } from '../helpers/memory-mesh.js'

/**
 * The broadcast tree for broad interest (mesh/routing/tree.ts, README "Routing"): when every node
 * subscribes, interest routing's shortest paths cover most links and each node hears a reading
 * several times; down each origin's tree (the reverse of the routes towards it) each reading
 * reaches each node once. A cut tree loses no reading (DIGEST/WANT) and is whole again once routes
 * move, and a few subscribers still get their readings by interest routing.
 */

let draw = 17
const random = (): number => { draw = (draw * 1103515245 + 12345) % 2 ** 31; return draw / 2 ** 31 }

/** `size` nodes, each dialling up to three earlier ones at random: a connected mesh with cycles. */
/**
 * DIGESTs every 400 ms, and what one shows missing asked for after 1 s (memory-mesh.ts ROUTING asks
 * after 30 ms): two dozen nodes verifying every reading share one thread here, and a frame queued
 * behind a round's work on its tree link was asked for, as lost, from a neighbour whose DIGEST came
 * first (a duplicate when both copies came). A frame the tree really lost is still asked for.
 */
const TREE_ROUTING = { syncInterval: 400, graftDelay: 1000, broadcastTree: true } // the tree is opt-in

async function mesh (net: MemoryNetwork, size: number, routing: Record<string, unknown> = {}): Promise<MeshNode[]> {
  const nodes: MeshNode[] = []
  for (let i = 0; i < size; i++) {
    const earlier = [...nodes].sort(() => random() - 0.5).slice(0, 3)
    nodes.push(await startNode(net, `n${i}`, seededKeys(100 + i), earlier.map(addr), { routing: { ...TREE_ROUTING, ...routing } }))
  }
  const links = (): number => nodes.reduce((a, n) => a + n.links.size, 0)
  await until(() => links() >= 2 * (3 * size - 6), 'every dial linked', 10_000)
  return nodes
}

/** Every node publishes one reading, and every inbox gets all of them; returns the duplicates counted meanwhile. */
async function round (nodes: MeshNode[], inboxes: Inbox[], r: number): Promise<number> {
  const before = nodes.reduce((a, n) => a + n.counters.duplicates, 0)
  for (const node of nodes) node.publish('telemetry', [{ n: 'round', v: r }])
  for (const inbox of inboxes) for (const node of nodes) await inbox.waitFor(node.id, r + 1, 10_000)
  // The DIGESTs of this round (syncInterval 400 ms): repairs and their copies land in this round's count or the next's.
  await new Promise((resolve) => setTimeout(resolve, 700))
  return nodes.reduce((a, n) => a + n.counters.duplicates, 0) - before
}

function exactlyOnce (inboxes: Inbox[], nodes: MeshNode[], rounds: number): void {
  for (const inbox of inboxes) {
    for (const node of nodes) {
      const seqs = inbox.from(node.id).map((d) => d.seq)
      expect(seqs.length, `${inbox.node.name} got ${seqs.length} of ${node.name}'s ${rounds} readings`).toBe(rounds)
      expect(new Set(seqs).size).toBe(rounds)
    }
  }
}

describe('broadcast tree for broad interest', () => {
  it('every node subscribing: each reading reaches each node once, down its origin\'s tree, with no duplicates', async () => {
    const net = createMemoryNetwork({ seed: 41 })
    const nodes = await mesh(net, 24)
    const inboxes = nodes.map((n) => new Inbox(n))
    for (const a of nodes) for (const b of nodes) if (a !== b) await routed(a, b)
    // An origin's tree: it sends to each neighbour (each routes it through the link between them).
    for (const node of nodes) expect(new Set(node.nextHops('telemetry'))).toEqual(new Set(node.links.keys()))
    // A first round: each origin's first frame meets keys and replay windows to set up, a slower
    // round on one thread, and copies asked for before the tree's arrived come twice.
    await round(nodes, inboxes, 0)
    const framesIn = nodes.reduce((a, n) => a + n.counters.framesIn, 0)
    const dups: number[] = []
    for (let r = 1; r < 4; r++) dups.push(await round(nodes, inboxes, r))
    expect(dups).toEqual([0, 0, 0])
    exactlyOnce(inboxes, nodes, 4)
    // Each reading went down a tree: one copy into each node but its origin, nothing asked for.
    expect(nodes.reduce((a, n) => a + n.counters.framesIn, 0) - framesIn).toBe(3 * nodes.length * (nodes.length - 1))
    expect(nodes.reduce((a, n) => a + n.counters.treeFrames, 0)).toBeGreaterThan(0)
  })

  it('a hub that stops cuts its trees: every reading still reaches every node once at the application, and the trees are whole again without duplicates', async () => {
    const net = createMemoryNetwork({ seed: 43 })
    const nodes = await mesh(net, 20)
    const inboxes = nodes.map((n) => new Inbox(n))
    for (const a of nodes) for (const b of nodes) if (a !== b) await routed(a, b)
    await round(nodes, inboxes, 0) // as above: the first round sets up each origin
    let r = 1
    for (; r < 2; r++) expect(await round(nodes, inboxes, r)).toBe(0)
    // Stop the node with the most links: every tree through it is cut, until routes move and DIGEST/WANT fetches what was lost.
    const hub = nodes.reduce((a, b) => b.links.size > a.links.size ? b : a)
    const rest = nodes.filter((n) => n !== hub)
    const restInboxes = inboxes.filter((i) => i.node !== hub)
    await hub.stop()
    for (; r < 5; r++) {
      for (const node of rest) node.publish('telemetry', [{ n: 'cut', v: r }])
      for (const inbox of restInboxes) for (const node of rest) await inbox.waitFor(node.id, r + 1, 10_000)
    }
    await until(() => rest.every((a) => !a.links.has(hub.id) && rest.every((b) => a === b || (a.routeTo(b.id) !== undefined && a.routeTo(b.id)?.via !== hub.id))), 'routes around the hub', 10_000)
    await round(rest, restInboxes, r++) // the DIGESTs of the rounds before may still bring copies asked for
    for (; r < 9; r++) expect(await round(rest, restInboxes, r)).toBe(0)
    exactlyOnce(restInboxes, rest, r)
  })

  it('a few subscribers: readings go by interest routing, only towards them, as before', async () => {
    const net = createMemoryNetwork({ seed: 47 })
    const nodes = await mesh(net, 20)
    const subscribers = [nodes[3] as MeshNode, nodes[15] as MeshNode]
    const inboxes = subscribers.map((n) => new Inbox(n))
    for (const a of nodes) for (const s of subscribers) if (a !== s) await routed(a, s)
    for (const node of nodes) {
      const towards = new Set(subscribers.filter((s) => s !== node).map((s) => node.routeTo(s.id)?.via))
      expect(new Set(node.nextHops('telemetry'))).toEqual(towards)
    }
    for (let r = 0; r < 2; r++) {
      for (const node of nodes) node.publish('telemetry', [{ n: 'few', v: r }])
      for (const inbox of inboxes) for (const node of nodes) await inbox.waitFor(node.id, r + 1, 10_000)
    }
    expect(nodes.reduce((a, n) => a + n.counters.treeFrames, 0)).toBe(0)
  })

  it('turned off (routing.broadcastTree false): every node subscribing, readings go by interest routing and duplicates come back', async () => {
    const net = createMemoryNetwork({ seed: 41 })
    const nodes = await mesh(net, 24, { broadcastTree: false })
    const inboxes = nodes.map((n) => new Inbox(n))
    for (const a of nodes) for (const b of nodes) if (a !== b) await routed(a, b)
    let dups = 0
    for (let r = 0; r < 2; r++) dups += await round(nodes, inboxes, r)
    exactlyOnce(inboxes, nodes, 2)
    expect(dups).toBeGreaterThan(0)
    expect(nodes.reduce((a, n) => a + n.counters.treeFrames, 0)).toBe(0)
  })

  it('a hostile neighbour that claims nothing and echoes every frame back gets each frame once, and the echoes go nowhere', async () => {
    const net = createMemoryNetwork({ seed: 53 })
    const nodes = await mesh(net, 12)
    const inboxes = nodes.map((n) => new Inbox(n))
    for (const a of nodes) for (const b of nodes) if (a !== b) await routed(a, b)
    // It declares no interest and no route: as far as n0 knows it routes every origin through n0, so it is a child of every tree there.
    const hostile = await rawLink(net, seededKeys(199), nodes[0] as MeshNode)
    const copies = new Map<string, number>()
    hostile.link.on('message', (bytes: Uint8Array) => {
      const message = decodeMessage(bytes)
      if (message.kind !== MSG.DATA) return
      const key = Buffer.from(message.frame).toString('hex')
      copies.set(key, (copies.get(key) ?? 0) + 1)
      if (hostile.link.open) hostile.link.send(encodeData(message.hops + 1, message.frame))
    })
    await round(nodes, inboxes, 0)
    const before = nodes.map((n) => n.counters)
    for (let r = 1; r < 4; r++) await round(nodes, inboxes, r)
    exactlyOnce(inboxes, nodes, 4)
    // Every reading reaches it, n0's own too; a round waits for the honest inboxes only, so the last copy to it may still be on its way.
    await until(() => copies.size >= 4 * nodes.length, `every reading at the hostile neighbour (${copies.size} of ${4 * nodes.length})`, 5000)
    expect(copies.size).toBe(4 * nodes.length)
    expect(Math.max(...copies.values())).toBe(1)
    // Each echo was a duplicate at n0, a lookup: not relayed, nowhere else did a copy arrive twice.
    const n0 = nodes[0] as MeshNode
    expect(n0.counters.duplicates - (before[0]?.duplicates ?? 0)).toBeGreaterThan(0)
    expect(nodes.slice(1).reduce((a, n, i) => a + n.counters.duplicates - (before[i + 1]?.duplicates ?? 0), 0)).toBe(0)
  })
})
