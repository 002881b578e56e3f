import { describe, expect, it } from 'vitest'
import { cosign, meshError, parseFleetPolicy, revoke, toBase64url, type KeyPair } from '../../shared/index.js'
import { encodeMessage, MSG, type DropInfo } from '../../mesh/index.js'
import { createMemoryNetwork } from '../../mesh/testing.js'
import { Inbox, LINK, addr, linked, seededKeys, startNode, until } from '../helpers/memory-mesh.js'

/**
 * Revocations in the mesh (mesh/routing/handlers/revoke.ts): an owner-signed revocation made at one
 * node reaches every node by gossip; each drops its link to the revoked device, refuses its frames,
 * and refuses it at the next link; a node that joins later is handed the set when it links; a
 * revocation short of the owners' threshold goes nowhere and costs its sender.
 */

const alice = seededKeys(301)
const bob = seededKeys(302)
const policy = parseFleetPolicy({ fleet: 'default', threshold: 2, owners: [alice, bob].map((o: KeyPair) => ({ key: toBase64url(o.publicKey) })) })
const routing = { fleetPolicy: policy }

describe('revocations spread through the mesh', () => {
  it('within moments every node refuses the revoked device: its link closes, its frames stop, it cannot link again; a late joiner learns it', async () => {
    const net = createMemoryNetwork({ seed: 41 })
    const a = await startNode(net, 'a', seededKeys(311), [], { routing })
    const b = await startNode(net, 'b', seededKeys(312), [addr(a)], { routing })
    const c = await startNode(net, 'c', seededKeys(313), [addr(b)], { routing })
    const d = await startNode(net, 'd', seededKeys(314), [addr(c)], { routing })
    await linked(b, a.id, c.id)
    await linked(c, d.id)
    const inbox = new Inbox(a)
    await until(() => d.wanted(), 'a\'s subscription at d')
    d.publish('telemetry', [{ n: 'temp', v: 20 }])
    await inbox.waitFor(d.id, 1)
    const drops: DropInfo[] = []
    c.on('drop', (info) => { if (info.code === 'ERR_REVOKED') drops.push(info) })

    const revocation = cosign(revoke({ policy, device: d.id, reason: 'stolen', owners: [alice] }), policy, bob)
    expect(a.revoke(revocation)).toBe('added')
    await until(() => [b, c].every((n) => n.revoked(d.id)), 'the revocation at b and c', 2000)
    await until(() => !c.links.has(d.id), 'c\'s link to d closed')
    // d keeps dialling c (a static peer): refused at the link, every time.
    await until(() => drops.some((x) => x.from === d.id), 'd refused at the link', 3000)
    expect(c.links.has(d.id)).toBe(false)
    // Whatever d signs now goes nowhere (it has no link; had it one, its frames would be refused).
    d.publish('telemetry', [{ n: 'temp', v: 21 }])
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(inbox.from(d.id)).toHaveLength(1)
    expect(a.revoke(revocation)).toBe('known')

    // A node that joins later learns the set when it links.
    const e = await startNode(net, 'e', seededKeys(315), [addr(b)], { routing })
    await until(() => e.revoked(d.id), 'the revocation handed to a late joiner')
    expect(e.revocations()).toEqual([revocation])
  })

  it('a revocation that finds a link full is not lost: the next sync tick sends the neighbour the set again', async () => {
    const net = createMemoryNetwork({ seed: 43 })
    const fast = { ...routing, syncInterval: 200 }
    const a = await startNode(net, 'a', seededKeys(331), [], { routing: fast })
    const b = await startNode(net, 'b', seededKeys(332), [addr(a)], { routing: fast })
    await linked(a, b.id)
    // a's link to b refuses the REVOKE, as a link whose send queue is full of data does (ERR_BACKPRESSURE).
    const link = a.links.get(b.id) as { send: (bytes: Uint8Array) => void }
    const send = link.send.bind(link)
    let refused = 0
    link.send = (bytes: Uint8Array): void => {
      if (refused === 0 && bytes.length > 100) { refused++; throw meshError('ERR_BACKPRESSURE', 'full (test)') }
      send(bytes)
    }
    const victim = seededKeys(333)
    expect(a.revoke(cosign(revoke({ policy, device: victim.id, reason: 'stolen', owners: [alice] }), policy, bob))).toBe('added')
    expect(refused).toBe(1)
    await until(() => b.revoked(victim.id), 'the revocation at b, sent again', 2000)
  })

  it('a revocation short of the threshold, or signed by no owner, goes nowhere; its sender is counted against; a node without a fleet file ignores them', async () => {
    const net = createMemoryNetwork({ seed: 42 })
    const a = await startNode(net, 'a', seededKeys(321), [], { routing })
    const b = await startNode(net, 'b', seededKeys(322), [addr(a)], { routing })
    const open = await startNode(net, 'open', seededKeys(323), [addr(a)])
    await linked(a, b.id, open.id)
    const victim = seededKeys(324)
    const partial = revoke({ policy, device: victim.id, reason: 'stolen', owners: [alice] })
    expect(a.revoke(partial)).toBe('ERR_TOO_FEW_OWNERS')
    // Mallory links to b and sends it revocations of her own making (she is no owner).
    const mallory = seededKeys(325)
    const transport = net.createTransport(LINK, { keys: mallory })
    const link = await transport.dial(b.address!)
    await linked(b, mallory.id)
    const drops: DropInfo[] = []
    b.on('drop', (info) => { if (info.from === mallory.id) drops.push(info) })
    const forged = revoke({ policy: parseFleetPolicy({ fleet: 'default', owners: [{ key: toBase64url(mallory.publicKey) }] }), device: a.id, reason: 'lies', owners: [mallory] })
    link.send(encodeMessage({ kind: MSG.REVOKE, revocations: [forged, partial] }))
    await until(() => drops.length >= 2, 'both refused at b')
    expect(drops.map((x) => x.code).sort()).toEqual(['ERR_NOT_OWNER', 'ERR_TOO_FEW_OWNERS'])
    expect(b.revoked(a.id)).toBe(false)
    expect(a.revocations()).toEqual([])
    const full = cosign(partial, policy, bob)
    expect(open.revoke(full)).toBe('ignored')
    expect(a.revoke(full)).toBe('added')
    await until(() => b.revoked(victim.id), 'the full one at b')
    expect(open.revocations()).toEqual([])
    await transport.close()
  })

  it('a flood of forged revocations beside an honest publisher and subscriber: nothing kept, the flooder banned, every reading delivered (a kid that is no owner costs no verification: test/shared/fleet.test.ts)', async () => {
    const net = createMemoryNetwork({ seed: 43 })
    const a = await startNode(net, 'a', seededKeys(331), [], { routing })
    const b = await startNode(net, 'b', seededKeys(332), [addr(a)], { routing })
    const c = await startNode(net, 'c', seededKeys(333), [addr(b)], { routing })
    await linked(b, a.id, c.id)
    const inbox = new Inbox(c)
    await until(() => a.wanted(), 'c\'s subscription at a')
    const mallory = seededKeys(334)
    const transport = net.createTransport(LINK, { keys: mallory })
    const link = await transport.dial(b.address!)
    await linked(b, mallory.id)
    // 4,000 revocations of every device Mallory can name, signed by a "fleet" of her own: each kid is no owner of b's fleet file.
    const own = parseFleetPolicy({ fleet: 'default', owners: [{ key: toBase64url(mallory.publicKey) }] })
    const forged = Array.from({ length: 200 }, (_, i) => revoke({ policy: own, device: seededKeys(400 + i).id, reason: 'lies', owners: [mallory] }))
    let published = 0
    const publishing = setInterval(() => { a.publish('telemetry', [{ n: 'temp', v: published++ }]) }, 20)
    for (let k = 0; k < 20 && link.open; k++) link.send(encodeMessage({ kind: MSG.REVOKE, revocations: forged }))
    await until(() => !link.open, 'the flooder disconnected (its score below the threshold)', 5000)
    await new Promise((resolve) => setTimeout(resolve, 300))
    clearInterval(publishing)
    await inbox.waitFor(a.id, published)
    expect(b.revocations()).toEqual([])
    expect(b.counters.bans).toBeGreaterThanOrEqual(1)
    await transport.close()
  })
})
