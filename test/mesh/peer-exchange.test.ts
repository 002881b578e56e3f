import { describe, expect, it } from 'vitest'
import { createMemoryNetwork } from '../../mesh/testing.js'
import { addr, seededKeys, startNode, until } from '../helpers/memory-mesh.js'

/**
 * Peer exchange (mesh/node.ts `#onHello`, `#onPeers`): a node answers a link's first HELLO with
 * some peers it knows, so that a device given one bootstrap peer finds others through it. A HELLO
 * names the port its sender listens on; until 2026-12-07 every HELLO said port 0 (the node never
 * gave the router its port), so a peer that dialed in was never passed on to anyone.
 */
describe('peer exchange', () => {
  it('a node that dialed in is passed on, with the port it listens on, to a later peer', async () => {
    const net = createMemoryNetwork()
    const hub = await startNode(net, 'hub', seededKeys(1), [], { port: 7001 })
    // B listens on an ephemeral port (port 0: the network picks one) and knows only the hub.
    const b = await startNode(net, 'b', seededKeys(2), [addr(hub)], { port: 0, dialTarget: 1 })
    await until(() => hub.links.get(b.id)?.open === true, 'B linked the hub')
    await until(() => hub.peers().some((p) => p.id === b.id && p.source === 'exchange'), 'the hub took B as a candidate from its HELLO')
    expect(b.address?.port).toBeGreaterThan(0)
    expect(hub.peers().find((p) => p.id === b.id)).toMatchObject({ port: b.address?.port, addresses: ['b'] })
    // C knows only the hub too; the hub's answer to C's HELLO names B, and C dials B.
    const c = await startNode(net, 'c', seededKeys(3), [addr(hub)], { port: 0, dialTarget: 2 })
    await until(() => c.peers().some((p) => p.id === b.id && p.source === 'exchange'), 'C learned B from the hub')
    await until(() => c.links.get(b.id)?.open === true, 'C linked B, a peer it was never told of but by the hub')
  })

  it('a configured peer, known by its address only, is not taken again from its own HELLO under its id', async () => {
    const net = createMemoryNetwork()
    const hub = await startNode(net, 'hub', seededKeys(1), [], { port: 7001 })
    const b = await startNode(net, 'b', seededKeys(2), ['hub:7001'], { port: 0, dialTarget: 1 })
    await until(() => b.links.get(hub.id)?.open === true, 'B linked the hub')
    await until(() => hub.peers().some((p) => p.id === b.id && p.source === 'exchange'), 'the hub took B from its HELLO (so B has the hub\'s HELLO too)')
    // One device, one candidate: as two (by address and by id), B would dial it twice once the link is gone.
    expect(b.peers().find((p) => p.id === hub.id)?.source).not.toBe('exchange')
  })

  it('a leaf (watch, cmd) that dialed in is passed on to no one, beside a device that is', async () => {
    const net = createMemoryNetwork()
    const hub = await startNode(net, 'hub', seededKeys(1), [], { port: 7001 })
    const b = await startNode(net, 'b', seededKeys(2), [addr(hub)], { port: 0, dialTarget: 1 })
    const leaf = await startNode(net, 'leaf', seededKeys(4), [addr(hub)], { port: 0, dialTarget: 0, leaf: true })
    await until(() => hub.links.get(b.id)?.open === true && hub.links.get(leaf.id)?.open === true, 'B and the leaf linked the hub')
    await until(() => hub.peers().some((p) => p.id === b.id && p.source === 'exchange'), 'the hub took B as a candidate from its HELLO')
    const c = await startNode(net, 'c', seededKeys(3), [addr(hub)], { port: 0, dialTarget: 3 })
    await until(() => c.links.get(b.id)?.open === true, 'C learned B from the hub and linked it')
    // The leaf listens (the network gave it a port) but its HELLO named none: the hub knows it only as a link.
    expect(leaf.address?.port).toBeGreaterThan(0)
    expect(hub.peers().find((p) => p.id === leaf.id)?.source).toBe('inbound')
    expect(c.peers().some((p) => p.id === leaf.id)).toBe(false)
    expect(leaf.links.size).toBe(1)
  })
})
