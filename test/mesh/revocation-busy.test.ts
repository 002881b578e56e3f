import { describe, expect, it, onTestFinished } from 'vitest'
import { cosign, parseFleetPolicy, revoke, toBase64url, type KeyPair } from '../../shared/index.js'
import { MeshNode, encodeMessage, MSG, type LinkOptions, type MeshNodeInit } from '../../mesh/index.js'
import { URGENT_BURST, URGENT_RATE } from '../../mesh/links/base-link.js'
import { createMemoryNetwork, type MemoryNetwork } from '../../mesh/testing.js'
import { Inbox, LINK, ROUTING, addr, linked, seededKeys, until } from '../helpers/memory-mesh.js'

/**
 * Issue 13: "revocations queue behind data". On a busy link a REVOKE waited behind every reading
 * queued before it (up to the send queue's limit), or was refused by the full queue and sent again
 * at the next sync tick into the same full queue: on a 100-device grid only the gateway refused the
 * revoked device within 8 s. Revocations and configurations now go in each link's control lane
 * (mesh/links/lanes.ts, routing/messages.ts CONTROL_KINDS), ahead of queued data.
 */

const alice = seededKeys(501)
const bob = seededKeys(502)
const policy = parseFleetPolicy({ fleet: 'default', threshold: 2, owners: [alice, bob].map((o: KeyPair) => ({ key: toBase64url(o.publicKey) })) })

async function node (net: MemoryNetwork, name: string, keys: KeyPair, peers: string[], link: LinkOptions = {}, extra: Partial<MeshNodeInit> = {}): Promise<MeshNode> {
  const options = { ...LINK, ...link }
  const n = new MeshNode({
    name, host: name, mdns: false, peers, dialTarget: 0, announceLinks: 0, link: options, ...extra, routing: { ...ROUTING, fleetPolicy: policy }
  }, { keys, transport: net.createTransport(options, { keys }) })
  onTestFinished(async () => { await n.stop() })
  await n.start()
  return n
}

describe('a revocation on a busy link', () => {
  it('passes the readings queued ahead of it: the neighbour and the node behind it refuse the revoked device within a second', async () => {
    const net = createMemoryNetwork({ seed: 51 })
    // b reads 100 messages a second from each link; a's send queue to b holds 32 KiB (about 150 readings, 1.5 s of b's reading).
    const a = await node(net, 'a', seededKeys(511), [], { maxBufferedBytes: 64 * 1024 })
    const b = await node(net, 'b', seededKeys(512), [addr(a)], { receiveBudget: { messagesPerSecond: 40 } })
    const c = await node(net, 'c', seededKeys(513), [addr(b)])
    const d = await node(net, 'd', seededKeys(514), [addr(c)])
    await linked(b, a.id, c.id)
    await linked(c, d.id)
    const inbox = new Inbox(c)
    await until(() => a.wanted(), 'c\'s subscription at a')
    // a publishes far more than b reads, and keeps its link to b full.
    const records = Array.from({ length: 8 }, (_, i) => ({ n: `sensor-${i}`, v: i }))
    const busy = (): void => { for (let i = 0; i < 50; i++) a.publish('telemetry', records) }
    busy()
    const publishing = setInterval(busy, 20)
    onTestFinished(() => { clearInterval(publishing) })
    await until(() => (a.links.get(b.id)?.bufferedBytes ?? 0) > 48 * 1024, 'a\'s queue to b full of readings')
    await inbox.waitFor(a.id, 1)

    const issued = performance.now()
    expect(a.revoke(cosign(revoke({ policy, device: d.id, reason: 'stolen', owners: [alice] }), policy, bob))).toBe('added')
    await until(() => b.revoked(d.id), 'the revocation at b, past the queued readings', 3000)
    await until(() => c.revoked(d.id) && !c.links.has(d.id), 'c refuses d (its link closed)', 3000)
    const took = performance.now() - issued
    clearInterval(publishing)
    expect(took).toBeLessThan(1000)
    // The link stayed busy: the revocation did not wait for the readings to drain.
    expect(a.links.get(b.id)?.bufferedBytes ?? 0).toBeGreaterThan(16 * 1024)
  })

  it('a neighbour flooding control messages beside an honest publisher: at most the urgent burst is taken at once, the rest waits its turn; every reading arrives', async () => {
    const net = createMemoryNetwork({ seed: 52 })
    const a = await node(net, 'a', seededKeys(521), [])
    const b = await node(net, 'b', seededKeys(522), [addr(a)])
    const c = await node(net, 'c', seededKeys(523), [addr(b)])
    await linked(b, a.id, c.id)
    const inbox = new Inbox(c)
    await until(() => a.wanted(), 'c\'s subscription at a')
    // Mallory sends 5,000 copies of a valid revocation (each costs b a lookup), every one marked control.
    const revocation = cosign(revoke({ policy, device: seededKeys(529).id, reason: 'stolen', owners: [alice] }), policy, bob)
    expect(a.revoke(revocation)).toBe('added')
    await until(() => b.revoked(seededKeys(529).id), 'the revocation at b')
    const mallory = seededKeys(524)
    const transport = net.createTransport(LINK, { keys: mallory })
    onTestFinished(async () => { await transport.close() })
    const link = await transport.dial(b.address!)
    await linked(b, mallory.id)
    const atB = b.links.get(mallory.id)!
    let published = 0
    const publishing = setInterval(() => { a.publish('telemetry', [{ n: 'temp', v: published++ }]) }, 10)
    onTestFinished(() => { clearInterval(publishing) })
    const flood = encodeMessage({ kind: MSG.REVOKE, revocations: [revocation] })
    const start = performance.now()
    let sent = 0
    for (; sent < 5000 && link.open; sent++) {
      try { link.send(flood, { control: true }) } catch { break } // its control lane is full: the rest is refused
    }
    expect(sent).toBeGreaterThan(1000)
    await new Promise((resolve) => setTimeout(resolve, 20))
    // Taken at once (past b's inbox and turn): the urgent burst and the allowance's rate since, not the ~2,000 its lane took.
    const seconds = (performance.now() - start) / 1000
    expect(atB.flow.urgent).toBeGreaterThanOrEqual(URGENT_BURST)
    expect(atB.flow.urgent).toBeLessThanOrEqual(URGENT_BURST + Math.ceil(URGENT_RATE * seconds) + 1)
    await new Promise((resolve) => setTimeout(resolve, 500))
    clearInterval(publishing)
    await inbox.waitFor(a.id, published, 5000)
    expect(inbox.from(a.id).length).toBe(published)
    expect(published).toBeGreaterThan(20)
  })
})
