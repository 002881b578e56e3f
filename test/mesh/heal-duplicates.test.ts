import { expect, it, onTestFinished } from 'vitest'
import { deviceIdToBytes, encodeFrame, generateKeyPair, type KeyPair } from '../../shared/index.js'
import { MeshNode, type Delivery, type Link } from '../../mesh/index.js'
import { createMemoryNetwork, type MemoryNetwork } from '../../mesh/testing.js'
import { decodeMessage, encodeData, encodeMessage, MSG, type RoutingMessage } from '../../mesh/routing/messages.js'
import { push } from '../helpers/memory-mesh.js'

/**
 * Issue 11, partitions heal completely: after a heal several neighbours announce the same frames
 * in their full DIGESTs, and the node asks each of them (WANT). All answers but the first are
 * duplicates the node asked for; counted as the neighbour's misbehaviour (score.ts), they got
 * honest relays banned (measured over TCP on namespace hosts, test/mesh/partition-heal-fleet.test.ts:
 * the gateway banned 19 of its 20 device neighbours for "duplicates" in 3 cut/heal cycles). A
 * copy asked for is not held against the neighbour that sends it; an unasked one still is.
 */

const LINK = { keepaliveInterval: 50, keepaliveTimeout: 1000 }
const ROUTING = { syncInterval: 100, graftDelay: 30, wantRetry: 200 }
const FRAMES = 600

const seededKeys = (n: number): KeyPair => generateKeyPair(Uint8Array.from({ length: 32 }, (_, i) => (i * 11 + n * 29) & 0xff))

async function until (check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const t0 = Date.now()
  while (!check()) {
    if (Date.now() - t0 > ms) throw new Error(`not within ${ms} ms: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}


/** A neighbour's raw link to `node` (its own valid key), and what it hears. */
async function rawLink (net: MemoryNetwork, keys: KeyPair, node: MeshNode): Promise<{ link: Link, heard: RoutingMessage[], keys: KeyPair }> {
  const transport = net.createTransport(LINK, { keys })
  onTestFinished(async () => { await transport.close() })
  const link = await transport.dial(node.address!)
  const heard: RoutingMessage[] = []
  link.on('message', (bytes: Uint8Array) => { try { heard.push(decodeMessage(bytes)) } catch { /* not ours to judge */ } })
  await until(() => node.links.has(keys.id), 'the neighbour linked')
  return { link, heard, keys }
}

type Want = Extract<RoutingMessage, { kind: typeof MSG.WANT }>

it(`two neighbours announce the same ${FRAMES} frames after a heal: the node asks both, and keeps both links`, async () => {
  const net = createMemoryNetwork({ seed: 41 })
  const node = new MeshNode({ name: 'g', host: 'g', mdns: false, dialTarget: 0, announceLinks: 0, link: LINK, routing: ROUTING }, {
    keys: seededKeys(1), transport: net.createTransport(LINK, { keys: seededKeys(1) })
  })
  onTestFinished(async () => { await node.stop() })
  await node.start()
  const got: Delivery[] = []
  const sub = node.subscribe('iotmesh/#', { buffer: 10_000, durable: true })
  onTestFinished(() => sub.close())
  void (async () => { for await (const d of sub) got.push(d) })()
  const banned: string[] = []
  node.on('peer:banned', (info) => { banned.push(info.peer) })

  const origin = seededKeys(5)
  const frames = Array.from({ length: FRAMES }, (_, i) => encodeFrame({ keys: origin, seq: i + 1, records: [{ n: 'x', v: i }] }))
  const x = await rawLink(net, seededKeys(2), node)
  const y = await rawLink(net, seededKeys(3), node)
  // Both relays hold the origin's frames and announce them in full (a link formed, or a route moved to it).
  for (const r of [x, y]) {
    await push(r.link, encodeMessage({ kind: MSG.KEY, keys: [origin.publicKey] }))
    await push(r.link, encodeMessage({ kind: MSG.DIGEST, full: true, entries: [{ kid: deviceIdToBytes(origin.id), low: 1, high: FRAMES }] }))
  }
  await until(() => [x, y].every((r) => r.heard.some((m) => m.kind === MSG.WANT)), 'a WANT to each relay')
  // Each answers what it was asked for: x first, then y (all of y's copies are duplicates the node asked for).
  for (const r of [x, y]) {
    const want = r.heard.find((m) => m.kind === MSG.WANT) as Want
    for (const { from, to } of want.entries) for (let seq = from; seq <= to; seq++) await push(r.link, encodeData(1, frames[seq - 1] as Uint8Array))
    if (r === x) await until(() => got.length >= FRAMES, `${FRAMES} readings`)
  }
  await until(() => node.counters.duplicates >= FRAMES || banned.length > 0, 'the duplicates read')
  expect(banned).toEqual([])
  expect(node.links.has(y.keys.id)).toBe(true)
  expect(node.peers().find((p) => p.id === y.keys.id)?.score?.duplicates ?? 0).toBe(0)
  expect(new Set(got.map((d) => d.seq)).size).toBe(FRAMES)

  // Unasked copies still count: once the WANT closed (score.ts promiseMs, 5 s, dropped at the next
  // decay tick, every 1 s), the same frames pushed again by y are duplicates held against it, up to a ban.
  await new Promise((resolve) => setTimeout(resolve, 7000))
  const ban = node.next('peer:banned', { signal: AbortSignal.timeout(15_000) })
  for (const frame of frames) { if (!y.link.open) break; await push(y.link, encodeData(1, frame)) }
  expect((await ban)[0].peer).toBe(y.keys.id)
}, 45_000)

it('a relay that catches up from a neighbour announces what it got (DIGEST) instead of pushing it: the subscriber asks only for what it lacks', async () => {
  const net = createMemoryNetwork({ seed: 43 })
  const start = async (name: string, n: number, peers: string[] = []): Promise<MeshNode> => {
    const keys = seededKeys(n)
    const node = new MeshNode({ name, host: name, mdns: false, peers, dialTarget: 0, announceLinks: 0, link: LINK, routing: ROUTING }, {
      keys, transport: net.createTransport(LINK, { keys })
    })
    onTestFinished(async () => { await node.stop() })
    await node.start()
    return node
  }
  const g = await start('g', 11)
  const got: Delivery[] = []
  const sub = g.subscribe('iotmesh/#', { buffer: 10_000, durable: true })
  onTestFinished(() => sub.close())
  void (async () => { for await (const d of sub) got.push(d) })()
  const v = await start('v', 12, [`${g.address?.host}:${g.address?.port}`])
  await until(() => v.routeTo(g.id) !== undefined, 'a route from v to g')

  // g holds the origin's frames 1…40 already (they reached it by another path while v was cut off).
  const origin = seededKeys(15)
  const frames = Array.from({ length: 50 }, (_, i) => encodeFrame({ keys: origin, seq: i + 1, records: [{ n: 'x', v: i }] }))
  g.learnKey(origin.publicKey)
  for (const frame of frames.slice(0, 40)) g.inject(frame)
  await until(() => got.length === 40, '40 readings at g')

  // A neighbour of v announces all 50 in full (its route moved to v); v asks for them and gets them.
  const n = await rawLink(net, seededKeys(14), v)
  await push(n.link, encodeMessage({ kind: MSG.KEY, keys: [origin.publicKey] }))
  await push(n.link, encodeMessage({ kind: MSG.DIGEST, full: true, entries: [{ kid: deviceIdToBytes(origin.id), low: 1, high: 50 }] }))
  await until(() => n.heard.some((m) => m.kind === MSG.WANT), 'a WANT from v')
  const want = n.heard.find((m) => m.kind === MSG.WANT) as Want
  for (const { from, to } of want.entries) for (let seq = from; seq <= to; seq++) await push(n.link, encodeData(1, frames[seq - 1] as Uint8Array))

  await until(() => got.length === 50, 'the 10 readings g lacked')
  expect(got.map((d) => d.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1))
  expect(g.counters.duplicates).toBe(0) // nothing g held was sent to it again
  expect(g.peers().find((p) => p.id === v.id)?.score?.duplicates ?? 0).toBe(0)
})
