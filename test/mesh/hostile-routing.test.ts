import { createHash, createHmac, randomBytes } from 'node:crypto'
import { describe, expect, it, onTestFinished } from 'vitest'
import {
  ALG_ED25519, HEADER_ALG, HEADER_CONTENT_TYPE, HEADER_KID, deviceIdToBytes, encodeCbor, generateKeyPair, signSign1, toBase32, type KeyPair
} from '../../shared/index.js'
import { encodeMessage, MSG, type DropInfo, type Link, type MeshNode, type MeshNodeInit, type RoutingMessage } from '../../mesh/index.js'
import { createMemoryNetwork } from '../../mesh/testing.js'
import { Inbox, LINK, addr, linked, recorder, routed, seededKeys, startNode, until, worstTimerDelay } from '../helpers/memory-mesh.js'

/**
 * A neighbour with a valid key of its own (open mode) plays the routing attacks of issue 10
 * against an honest publisher A and subscriber C, over in-memory links; each test asserts that
 * A and C keep working, and what bounds the work and the state the attack causes. (The same
 * attacks over real processes are the adversarial suite's.) The attacker's messages are built
 * from what a node sends it, with fields overridden, so each attack is the strongest one the
 * wire format allows.
 */

type Entry = Record<string, unknown>

/**
 * The longest a 5 ms timer may be late during an attack. Generous: the suite runs test files in
 * parallel on a shared machine, where a process waits for a core for hundreds of ms (a turn of
 * claim checking is ~3 ms unloaded). Work bound by the peer's numbers takes seconds: on the code
 * before issue 10, WANT over 2^28 numbers held the loop for 20 s.
 */
const MAX_DELAY = 1000

/**
 * A declaration as a subscriber signs it (mesh/routing/declaration.ts, chain.ts), written out
 * from the format, and the claim of distance `hops` (e_hops) that anyone who knows e_0 can make.
 */
function declare (keys: KeyPair, version: number, filters: string[], hops = 0): Entry {
  const step = (e: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(e).digest().subarray(0, 16))
  const e0 = new Uint8Array(createHmac('sha256', keys.secretKey).update('iotmesh interest chain').update(String(version)).digest().subarray(0, 16))
  let anchor: Uint8Array = e0
  for (let i = 0; i < 64; i++) anchor = step(anchor)
  const kid = deviceIdToBytes(keys.id)
  const declaration = signSign1({
    protectedHeader: new Map<number, unknown>([[HEADER_ALG, ALG_ED25519], [HEADER_CONTENT_TYPE, 65_000], [HEADER_KID, kid]]),
    payload: encodeCbor([version, filters, anchor, 64]),
    secretKey: keys.secretKey
  })
  let proof: Uint8Array = e0
  for (let i = 0; i < hops; i++) proof = step(proof)
  return { kid, version, hops, proof, declaration, publicKey: keys.publicKey, filters }
}

const interest = (entries: Entry[]): Uint8Array => encodeMessage({ kind: MSG.INTEREST, entries } as unknown as RoutingMessage)

/** A publisher A and a subscriber C two hops apart (A–B–C), and an attacker M linked to A. */
async function scene (routing: NonNullable<MeshNodeInit['routing']> = {}, seed = 10): Promise<{
  net: ReturnType<typeof createMemoryNetwork>, a: MeshNode, b: MeshNode, c: MeshNode, m: KeyPair, link: Link, heard: RoutingMessage[], drops: DropInfo[], inbox: Inbox
}> {
  const net = createMemoryNetwork({ seed })
  const a = await startNode(net, 'a', seededKeys(1), [], { routing })
  const b = await startNode(net, 'b', seededKeys(2), [addr(a)])
  const c = await startNode(net, 'c', seededKeys(3), [addr(b)])
  await linked(b, a.id, c.id)
  const inbox = new Inbox(c)
  await routed(a, c)
  return { net, a, b, c, inbox, ...await attacker(net, a) }
}

/** An attacker M (its own valid key) linked to `a`: what `a` sends it, and what `a` drops of it. */
async function attacker (net: ReturnType<typeof createMemoryNetwork>, a: MeshNode): Promise<{ m: KeyPair, link: Link, heard: RoutingMessage[], drops: DropInfo[] }> {
  const m = seededKeys(66)
  const transport = net.createTransport(LINK, { keys: m })
  onTestFinished(async () => { await transport.close() })
  const link = await transport.dial(a.address!)
  const heard = recorder(link)
  const drops: DropInfo[] = []
  a.on('drop', (d) => { if (d.from === m.id || d.origin === m.id) drops.push(d) })
  await linked(a, m.id)
  return { m, link, heard, drops }
}

/** Publishes `n` readings at A and waits until C has them all. */
async function flows (s: Awaited<ReturnType<typeof scene>>, n: number): Promise<void> {
  const before = s.inbox.from(s.a.id).length
  for (let i = 0; i < n; i++) s.a.publish('telemetry', [{ n: 'i', v: i }])
  await s.inbox.waitFor(s.a.id, before + n)
}

describe('routing a neighbour cannot hijack', () => {
  it('15 INTEREST messages with version 2^53-1 and distance 0 for the subscriber: refused, the subscriber keeps its readings', async () => {
    const s = await scene()
    await until(() => s.heard.some((msg) => msg.kind === MSG.INTEREST && msg.entries.some((e) => Buffer.from(e.kid).equals(deviceIdToBytes(s.c.id)))), 'A tells M of C')
    const genuine = s.heard.flatMap((msg) => msg.kind === MSG.INTEREST ? msg.entries : []).find((e) => Buffer.from(e.kid).equals(deviceIdToBytes(s.c.id))) as unknown as Entry
    const top = Number.MAX_SAFE_INTEGER
    const forged = declare({ ...s.m, id: s.c.id }, top, []) // C's id, M's key
    const attack: Array<[Entry, string]> = [
      [{ ...genuine, version: top, hops: 0, filters: [] }, 'ERR_BAD_DECLARATION'], // C's declaration under another version
      [{ ...forged, publicKey: genuine.publicKey }, 'ERR_BAD_SIGNATURE'], // signed by M, claiming C's key
      [{ ...forged }, 'ERR_WRONG_KEY'], // M's key for C's id
      [{ ...genuine, hops: 0, filters: [] }, 'ERR_ROUTE_PROOF'], // C's own distance, from M
      [{ ...genuine, hops: 1, proof: randomBytes(16), filters: [] }, 'ERR_ROUTE_PROOF'] // a shorter distance than M can prove
    ]
    for (const [entry, code] of attack) {
      const refused = s.drops.length
      s.link.send(interest([entry]))
      await until(() => s.drops.length > refused, code)
      expect(s.drops.at(-1)?.code).toBe(code)
    }
    // The attack: 15 declarations with every forgery above. Claims of one neighbour for one
    // subscriber wait in the intake one at a time (the latest replaces the one before).
    for (let i = 0; i < 15; i++) s.link.send(interest(attack.map(([entry]) => entry)))
    await s.link.ping()
    await flows(s, 20)
    expect(s.a.routeTo(s.c.id)).toEqual({ via: s.b.id, hops: 2 })
    // After the attacker leaves nothing of it remains: readings flow at once.
    s.link.destroy()
    await flows(s, 5)
  })

  it('10,000 claims of versions C never signed, without their declarations: none becomes a route, A stays responsive and C gets every reading', async () => {
    const s = await scene({}, 12)
    await until(() => s.heard.some((msg) => msg.kind === MSG.INTEREST && msg.entries.some((e) => Buffer.from(e.kid).equals(deviceIdToBytes(s.c.id)))), 'A tells M of C')
    const genuine = s.heard.flatMap((msg) => msg.kind === MSG.INTEREST ? msg.entries : []).find((e) => Buffer.from(e.kid).equals(deviceIdToBytes(s.c.id))) as unknown as Entry
    // M gets an entry for C at A (it repeats A's distance), then claims distance 1 of 10,000 later
    // versions with made-up proofs: a claim a neighbour may send without the declaration, which
    // then waits for it at A (interest.ts `pending`).
    s.link.send(interest([{ kid: genuine.kid, version: genuine.version, hops: genuine.hops, proof: genuine.proof }]))
    await s.link.ping()
    const bare = (v: number): Entry => ({ kid: genuine.kid, version: v, hops: 1, proof: randomBytes(16) })
    const delay = await worstTimerDelay(async () => {
      for (let i = 0; i < 10_000; i += 200) s.link.send(interest(Array.from({ length: 200 }, (_, j) => bare((genuine.version as number) + 1 + i + j))))
      await s.link.ping()
    })
    expect(delay).toBeLessThan(MAX_DELAY)
    await flows(s, 20)
    expect(s.a.routeTo(s.c.id)).toEqual({ via: s.b.id, hops: 2 })
    expect(s.a.interest().length).toBe(1)
  })

  it('a relay can only repeat the distance it heard: a proof from a longer route does not win', async () => {
    const s = await scene({}, 11)
    await until(() => s.heard.some((msg) => msg.kind === MSG.INTEREST), 'A tells M of C')
    // A tells M its own distance to C (2) with its proof e_2: M repeats it, the best it can do.
    const genuine = s.heard.flatMap((msg) => msg.kind === MSG.INTEREST ? msg.entries : []).find((e) => Buffer.from(e.kid).equals(deviceIdToBytes(s.c.id))) as unknown as Entry
    expect(genuine.hops).toBe(2)
    s.link.send(interest([{ ...genuine }, { ...genuine, hops: 1, proof: randomBytes(16) }]))
    await s.link.ping()
    await until(() => s.drops.length >= 1, 'the shorter claim refused')
    expect(s.drops.map((d) => d.code)).toEqual(['ERR_ROUTE_PROOF'])
    await flows(s, 5)
    expect(s.a.routeTo(s.c.id)).toEqual({ via: s.b.id, hops: 2 })
  })
})

describe('a subscriber that left stays gone', () => {
  it('its last declaration, replayed after its routes expired: refused (ERR_REPLAY), another subscriber keeps its readings, and the subscriber back with a new version is taken at once', async () => {
    // Routes live three interestRefresh periods past their last version; short here, the same everywhere.
    const routing = { interestRefresh: 300 }
    const net = createMemoryNetwork({ seed: 13 })
    const a = await startNode(net, 'a', seededKeys(1), [], { routing })
    const b = await startNode(net, 'b', seededKeys(2), [addr(a)], { routing })
    let c = await startNode(net, 'c', seededKeys(3), [addr(b)], { routing })
    const d = await startNode(net, 'd', seededKeys(4), [addr(b)], { routing })
    await linked(b, a.id, c.id, d.id)
    new Inbox(c)
    const stays = new Inbox(d)
    await routed(a, c)
    await routed(a, d)
    const { link, heard, drops } = await attacker(net, a)
    const ofC = (): Entry[] => heard.flatMap((msg) => msg.kind === MSG.INTEREST ? msg.entries : [])
      .filter((e) => Buffer.from(e.kid).equals(deviceIdToBytes(c.id)) && e.declaration !== undefined) as unknown as Entry[]
    await until(() => ofC().length > 0, 'A tells M of C, with its declaration')

    // C leaves; A forgets it once its last version is three refresh periods old.
    await c.stop()
    const last = ofC().reduce((x, y) => (y.version as number) > (x.version as number) ? y : x)
    await until(() => a.routeTo(c.id) === undefined && !a.interest().some((r) => r.subscriber === c.id), 'A forgot C', 5000)

    // M replays what A told it of C: C's own signature, its version, A's proven distance.
    for (let i = 0; i < 5; i++) {
      link.send(interest([last]))
      await link.ping()
    }
    await until(() => drops.some((x) => x.code === 'ERR_REPLAY') || a.routeTo(c.id) !== undefined, 'the replay refused, or taken')
    expect(a.routeTo(c.id)).toBeUndefined() // before: a route to C through M, for three more refresh periods after each replay
    expect(a.interest().some((r) => r.subscriber === c.id)).toBe(false)
    expect(drops.map((x) => x.code)).toContain('ERR_REPLAY')
    // D, the honest subscriber beside it, keeps getting every reading of A.
    const before = stays.from(a.id).length
    for (let i = 0; i < 10; i++) a.publish('telemetry', [{ n: 'i', v: i }])
    await stays.waitFor(a.id, before + 10)

    // C comes back: its first version (the wall clock in ms) is newer than the one A remembers.
    c = await startNode(net, 'c', seededKeys(3), [addr(b)], { routing })
    const back = new Inbox(c)
    await until(() => a.routeTo(c.id)?.via === b.id, 'A routes to C again, through B')
    a.publish('telemetry', [{ n: 'back', v: 1 }])
    await back.waitFor(a.id, 1)
  })
})

describe('bounded control-plane work and state', () => {
  it('1,000 invented (validly self-signed) subscribers: at most maxSubscribersPerNeighbour kept, A stays responsive', async () => {
    const s = await scene({ maxSubscribersPerNeighbour: 100 }, 12)
    // Each one M's neighbour (distance 1: M knows e_0 of each), each matching every reading.
    const invented = Array.from({ length: 1000 }, (_, i) => declare(generateKeyPair(Uint8Array.from({ length: 32 }, (_, j) => j < 2 ? (i >> (8 * j)) & 0xff : 0x5a)), 1, ['iotmesh/#'], 1))
    const delay = await worstTimerDelay(async () => {
      for (let i = 0; i < invented.length; i += 200) s.link.send(interest(invented.slice(i, i + 200)))
      await s.link.ping()
      await until(() => s.drops.filter((d) => d.code === 'ERR_TABLE_FULL').length >= 900, 'the rest refused')
    })
    expect(s.a.interest().length).toBeLessThanOrEqual(1 + 100)
    expect(delay).toBeLessThan(MAX_DELAY)
    await flows(s, 5)
  })

  it('a neighbour that keeps sending more claims than its share can wait for is disconnected and kept out; A keeps delivering', async () => {
    const s = await scene({ maxSubscribersPerNeighbour: 100 }, 13)
    const invented = Array.from({ length: 600 }, (_, i) => declare(generateKeyPair(Uint8Array.from({ length: 32 }, (_, j) => j < 2 ? (i >> (8 * j)) & 0xff : 0x3c)), 1, ['iotmesh/#'], 1))
    const closed = new Promise<void>((resolve) => { s.link.once('close', () => { resolve() }) })
    let sent = 0
    // One message of 200 claims every 100 ms: slow enough that no per-peer message budget is spent
    // (budget.ts), so only the refused claims can tell A that M floods.
    for (let round = 0; round < 50 && s.link.open; round++) {
      const i = (round % 3) * 200
      try { s.link.send(interest(invented.slice(i, i + 200))); sent++ } catch { break }
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 2000))])
    expect(s.link.open, `A closed the flooding link (after ${sent} messages)`).toBe(false)
    expect(s.drops.some((d) => d.code === 'ERR_TABLE_FULL')).toBe(true)
    // Kept out: M comes back with the same key and is refused at the link.
    const again = await s.net.createTransport(LINK, { keys: s.m }).dial(s.a.address!).then((l) => l, () => undefined)
    if (again !== undefined) await until(() => !again.open, 'M refused again', 3000)
    expect(s.a.links.has(s.m.id)).toBe(false)
    await flows(s, 5)
  })

  it('a neighbour that keeps naming new subscribers beyond an honest table is disconnected and kept out; an honest one naming its table is not', async () => {
    // An allowance of 300 new subscribers per neighbour (default: maxSubscribers, 4,096), so the test is quick.
    const s = await scene({ maxNewSubscribersPerNeighbour: 300, maxSubscribersPerNeighbour: 100 }, 18)
    const fresh = (n: number, tag: number): Entry[] =>
      Array.from({ length: n }, (_, i) => declare(generateKeyPair(Uint8Array.from({ length: 32 }, (_, j) => j < 2 ? (i >> (8 * j)) & 0xff : tag)), 1, ['iotmesh/#'], 1))
    // An honest neighbour N opens with its table: 250 subscribers this node has not heard of. A takes
    // 100 of them (its share per neighbour) and refuses the rest; N names them all again with each
    // new version (here: three times), which counts each name once, and N stays.
    const n = await s.net.createTransport(LINK, { keys: seededKeys(68) }).dial(s.a.address!)
    onTestFinished(() => { n.destroy() })
    await linked(s.a, seededKeys(68).id)
    const table = fresh(250, 0x71)
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < table.length; i += 200) n.send(interest(table.slice(i, i + 200)))
      await n.ping()
    }
    await until(() => s.a.interest().filter((r) => r.via === seededKeys(68).id).length >= 100, 'A routes through N')
    expect(n.open, 'the honest neighbour keeps its link').toBe(true)
    expect(s.a.peers().find((p) => p.id === seededKeys(68).id)?.score).toMatchObject({ excessSubscribers: 0 })
    // M names 600 subscribers nobody ever heard of, in three messages a while apart: no per-peer budget
    // and no waiting-claims share is exceeded (1,024 may wait), so only their number tells.
    const invented = fresh(600, 0x72)
    const closed = new Promise<void>((resolve) => { s.link.once('close', () => { resolve() }) })
    for (let i = 0; i < invented.length && s.link.open; i += 200) {
      try { s.link.send(interest(invented.slice(i, i + 200))) } catch { break }
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 2000))])
    expect(s.link.open, 'A closed the link of the neighbour that named 600 new subscribers').toBe(false)
    expect(s.drops.filter((d) => d.code === 'ERR_TABLE_FULL').length).toBeGreaterThan(0)
    // Kept out: M comes back with the same key and is refused at the link.
    const again = await s.net.createTransport(LINK, { keys: s.m }).dial(s.a.address!).then((l) => l, () => undefined)
    if (again !== undefined) await until(() => !again.open, 'M refused again', 3000)
    expect(s.a.links.has(s.m.id)).toBe(false)
    expect(n.open, 'the honest neighbour still has its link').toBe(true)
    await flows(s, 5)
  })

  it('DIGEST naming 200 invented origins per message, against a table of 1,000 subscribers with 32 filters each: work follows the matches', async () => {
    const s = await scene({}, 16)
    // Filters that match no reading: before the filter index (filter-index.ts) each unknown origin cost a
    // match of every filter of every subscriber, 6.4 million per DIGEST, and one DIGEST held the loop 13 s.
    const filters = Array.from({ length: 32 }, (_, j) => `iotmesh/+/x${j}/#`)
    const keys = (i: number): KeyPair => generateKeyPair(Uint8Array.from({ length: 32 }, (_, j) => j < 2 ? (i >> (8 * j)) & 0xff : 0x5b))
    const invented = Array.from({ length: 1000 }, (_, i) => declare(keys(i), 1, filters, 1))
    for (let i = 0; i < invented.length; i += 50) s.link.send(interest(invented.slice(i, i + 50)))
    await until(() => s.a.interest().length >= 1 + 1000, 'the invented subscribers taken', 30_000)
    let k = 0
    const kid = (n: number): Uint8Array => Uint8Array.from({ length: 16 }, (_, j) => j < 3 ? (n >> (8 * j)) & 0xff : 0x77)
    const entries = (): Array<{ kid: Uint8Array, low: number, high: number }> =>
      Array.from({ length: 200 }, () => ({ kid: kid(k++), low: 0, high: Number.MAX_SAFE_INTEGER }))
    const digest = (): Uint8Array => encodeMessage({ kind: MSG.DIGEST, full: true, entries: entries() })
    const delay = await worstTimerDelay(async () => {
      for (let i = 0; i < 10; i++) s.link.send(digest())
      await s.link.ping()
    })
    expect(delay).toBeLessThan(MAX_DELAY)
    await flows(s, 5)
  })

  it('PEERS with 10,000 invented peers: one message per link is taken, 16 peers of it, A stays responsive', async () => {
    // The handler's own bound, so the per-peer budget (which would drop most of these unread and cut M off) is out of the way.
    const s = await scene({ budgets: { peers: { rate: 1e6, burst: 1e6 } } }, 13)
    const peers = (k: number): Array<{ id: string, port: number, addresses: string[] }> =>
      Array.from({ length: 200 }, (_, i) => ({ id: toBase32(Uint8Array.from({ length: 16 }, (_, j) => j < 2 ? ((k * 200 + i) >> (8 * j)) & 0xff : 0xa5)), port: 7000, addresses: ['10.9.0.1'] }))
    const messages = Array.from({ length: 50 }, (_, k) => encodeMessage({ kind: MSG.PEERS, peers: peers(k) }))
    const before = s.a.peers().length
    const delay = await worstTimerDelay(async () => {
      for (const msg of messages) s.link.send(msg)
      await s.link.ping()
    })
    expect(s.a.peers().length - before).toBeLessThanOrEqual(16)
    expect(delay).toBeLessThan(MAX_DELAY)
    await flows(s, 5)
  })

  it('1,000 HELLOs on one link: answered with one PEERS, the peer taken once', async () => {
    const s = await scene({ budgets: { hello: { rate: 1e6, burst: 1e6 } } }, 17)
    const peers = (): number => s.heard.filter((msg) => msg.kind === MSG.PEERS).length
    const hello = (port: number): Uint8Array => encodeMessage({ kind: MSG.HELLO, version: 2, fleet: 'default', port, addresses: ['10.9.0.2'] })
    // Another neighbour that says where it listens: a peer A can share.
    const other = s.net.createTransport(LINK, { keys: seededKeys(67) })
    onTestFinished(async () => { await other.close() })
    const link2 = await other.dial(s.a.address!)
    link2.send(hello(7001))
    await link2.ping()
    const before = s.a.peers().length
    for (let i = 0; i < 1000; i++) s.link.send(hello(7000))
    await s.link.ping()
    await until(() => peers() >= 1, 'A answers the HELLO with the peers it knows')
    await flows(s, 5)
    expect(peers()).toBe(1)
    expect(s.a.peers().length - before).toBeLessThanOrEqual(1)
  })

  it('WANT for a range of 2^28 numbers: the work follows what is held, not the range', async () => {
    const s = await scene({}, 14)
    const first = s.a.publish('telemetry', [{ n: 'i', v: 0 }]).seq
    for (let i = 1; i < 10; i++) s.a.publish('telemetry', [{ n: 'i', v: i }])
    const kid = deviceIdToBytes(s.a.id)
    const data = (): number => s.heard.filter((msg) => msg.kind === MSG.DATA).length
    const before = data()
    const delay = await worstTimerDelay(async () => {
      s.link.send(encodeMessage({ kind: MSG.WANT, entries: [{ kid, from: first, to: first + 2 ** 28 }] }))
      await s.link.ping()
    })
    expect(delay).toBeLessThan(MAX_DELAY)
    expect(data() - before).toBe(10)
  })

  it('WANT [[kid, 0, 2^53-1]] 200 times in one message: each held frame is sent once, at once', async () => {
    const s = await scene({}, 15)
    for (let i = 0; i < 10; i++) s.a.publish('telemetry', [{ n: 'i', v: i }])
    const kid = deviceIdToBytes(s.a.id)
    const data = (): number => s.heard.filter((msg) => msg.kind === MSG.DATA).length
    const before = data()
    const delay = await worstTimerDelay(async () => {
      s.link.send(encodeMessage({ kind: MSG.WANT, entries: Array.from({ length: 200 }, () => ({ kid, from: 0, to: Number.MAX_SAFE_INTEGER })) }))
      await s.link.ping()
    })
    expect(delay).toBeLessThan(MAX_DELAY)
    expect(data() - before).toBe(10)
    await flows(s, 5)
  })
})
