import { describe, expect, it, onTestFinished } from 'vitest'
import { deviceIdToBytes, encodeFrame, generateKeyPair, memorySequence, type KeyPair } from '../../shared/index.js'
import { MeshNode, type Delivery, type Link, type MeshNodeInit } from '../../mesh/index.js'
import { createMemoryNetwork, type MemoryNetwork } from '../../mesh/testing.js'
import { decodeMessage, encodeData, encodeMessage, MSG, type RoutingMessage } from '../../mesh/routing/messages.js'
import { push } from '../helpers/memory-mesh.js'

/**
 * Issue 10, hostile neighbours (WP 10-C2), on an in-memory network: per-peer budgets, peer scores
 * (gossipsub v1.1 "Peer Scoring") with disconnection and a growing backoff, replay state that
 * strangers cannot evict, and cloned identities. Each attack comes from a raw link of a node with
 * its own valid key (open mode), next to an honest publisher whose readings must keep arriving.
 */

const LINK = { keepaliveInterval: 50, keepaliveTimeout: 200 }
const ROUTING = { syncInterval: 100, graftDelay: 30, wantRetry: 200 }

const seededKeys = (n: number): KeyPair => generateKeyPair(Uint8Array.from({ length: 32 }, (_, i) => (i * 7 + n * 31) & 0xff))

async function startNode (net: MemoryNetwork, name: string, keys: KeyPair, peers: string[] = [], extra: Partial<MeshNodeInit> = {}, seq?: number): Promise<MeshNode> {
  const node = new MeshNode({
    name, host: name, mdns: false, peers, dialTarget: 0, announceLinks: 0, link: LINK, ...extra, routing: { ...ROUTING, ...extra.routing }
  }, { keys, transport: net.createTransport(LINK, { keys }), ...(seq === undefined ? {} : { sequence: memorySequence(seq) }) })
  onTestFinished(async () => { await node.stop() })
  await node.start()
  return node
}

const addr = (node: MeshNode): string => `${node.address?.host}:${node.address?.port}`

async function until (check: () => boolean, what: string, ms = 5000): Promise<void> {
  const t0 = Date.now()
  while (!check()) {
    if (Date.now() - t0 > ms) throw new Error(`not within ${ms} ms: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

class Inbox {
  readonly got: Delivery[] = []
  constructor (node: MeshNode, filter = 'iotmesh/#') {
    const sub = node.subscribe(filter, { buffer: 100_000 })
    onTestFinished(() => sub.close())
    void (async () => { for await (const d of sub) this.got.push(d) })()
  }

  from (origin: string): Delivery[] { return this.got.filter((d) => d.origin === origin) }
  async waitFor (origin: string, n: number, ms = 5000): Promise<void> {
    await until(() => this.from(origin).length >= n, `${n} readings of ${origin}`, ms)
  }
}

/** A raw link of the attacker's (its own valid key) to `node`, and what it hears. */
async function rawLink (net: MemoryNetwork, keys: KeyPair, node: MeshNode): Promise<{ link: Link, heard: RoutingMessage[] }> {
  const transport = net.createTransport(LINK, { keys })
  onTestFinished(async () => { await transport.close() })
  const link = await transport.dial(node.address!)
  const heard: RoutingMessage[] = []
  link.on('message', (bytes: Uint8Array) => { try { heard.push(decodeMessage(bytes)) } catch { /* not ours to judge */ } })
  return { link, heard }
}

/** A honest publisher `a` linked to the device under attack `b`, which subscribes to everything; and the attacker's link to `b`. */
async function stage (seed: number, routing: MeshNodeInit['routing'] = {}) {
  const net = createMemoryNetwork({ seed })
  const b = await startNode(net, 'b', seededKeys(2), [], { routing })
  const a = await startNode(net, 'a', seededKeys(1), [addr(b)], { routing })
  await until(() => b.links.has(a.id), 'a linked to b')
  const inbox = new Inbox(b)
  await until(() => a.routeTo(b.id) !== undefined, 'a route from a to b')
  const attackerKeys = seededKeys(9)
  const { link, heard } = await rawLink(net, attackerKeys, b)
  await until(() => b.links.has(attackerKeys.id), 'the attacker linked to b')
  /** a publishes one reading and b gets it. */
  const honest = async (): Promise<void> => {
    const before = inbox.from(a.id).length
    a.publish('telemetry', [{ n: 'temp', v: before }])
    await inbox.waitFor(a.id, before + 1)
  }
  return { net, a, b, inbox, attackerKeys, link, heard, honest }
}


const closed = async (link: Link): Promise<void> => { if (link.open) await link.next('close', { signal: AbortSignal.timeout(5000) }) }

describe('peer score: a neighbour that sends what no honest node sends is disconnected and kept out', () => {
  it('a flood of frames with bad signatures: disconnected after a few, kept out for a backoff that grows; the honest publisher carries on', async () => {
    const s = await stage(21, { score: { banMs: 300 } })
    await s.honest()
    const banned = s.b.next('peer:banned', { signal: AbortSignal.timeout(5000) })
    for (let i = 0; i < 1000 && s.link.open; i++) {
      const frame = encodeFrame({ keys: s.attackerKeys, seq: i + 1, records: [{ n: 'x', v: i }] })
      frame[frame.length - 1] = (frame[frame.length - 1] as number) ^ 1
      await push(s.link, encodeData(1, frame))
    }
    const [info] = await banned
    expect(info).toMatchObject({ peer: s.attackerKeys.id, code: 'ERR_PEER_SCORE', bans: 1 })
    expect(info.score).toBeLessThan(-100)
    await closed(s.link)
    expect(s.b.links.has(s.attackerKeys.id)).toBe(false)
    expect(s.b.counters.rejected.ERR_BAD_SIGNATURE).toBeLessThanOrEqual(4) // invalid frames weigh -10 × n²
    expect(s.b.counters.bans).toBe(1)
    expect(s.b.peers().find((p) => p.id === s.attackerKeys.id)?.score).toMatchObject({ bans: 1, bannedUntil: info.until })
    expect(s.b.counters.banned).toBe(1)
    await s.honest()

    // Kept out: a new link is refused while the ban lasts, and once it ended while the score is still
    // below the threshold (it decays slowly) it is banned again, for twice as long.
    const again = await rawLink(s.net, s.attackerKeys, s.b)
    await closed(again.link) // refused by the router (ERR_PEER_SCORE), or before it by the link layer's ban list when it has one
    expect(s.b.links.has(s.attackerKeys.id)).toBe(false)
    expect(s.b.counters.bans).toBe(1) // refused, not banned anew
    await until(() => s.b.counters.banned === 0, 'the first ban ends')
    const rebanned = s.b.next('peer:banned', { signal: AbortSignal.timeout(5000) })
    const back = await rawLink(s.net, s.attackerKeys, s.b)
    const [second] = await rebanned
    await closed(back.link)
    expect(second.bans).toBe(2)
    expect(s.b.links.has(s.attackerKeys.id)).toBe(false)
    await s.honest()
  })

  it('a flood of frames from signers it never names: disconnected; a relay that names them when asked (KEYREQ) is not', async () => {
    const s = await stage(22)
    await s.honest()
    // An honest relay whose KEY went missing: it answers the KEYREQ, and its frames are delivered.
    const relayKeys = seededKeys(10)
    const relay = await rawLink(s.net, relayKeys, s.b)
    relay.link.on('message', (bytes: Uint8Array) => {
      const message = decodeMessage(bytes)
      if (message.kind === MSG.KEYREQ) relay.link.send(encodeMessage({ kind: MSG.KEY, keys: [far.publicKey] }))
    })
    const far = seededKeys(11)
    relay.link.send(encodeData(2, encodeFrame({ keys: far, seq: 1, records: [{ n: 'x', v: 1 }] })))
    await s.inbox.waitFor(far.id, 1)
    expect(s.b.peers().find((p) => p.id === relayKeys.id)?.score).toMatchObject({ unknownSigners: 0, useful: 1 })

    const banned = s.b.next('peer:banned', { signal: AbortSignal.timeout(5000) })
    for (let i = 0; i < 600 && s.link.open; i++) {
      await push(s.link, encodeData(1, encodeFrame({ keys: generateKeyPair(), seq: 1, records: [{ n: 'x', v: i }] })))
    }
    expect((await banned)[0].peer).toBe(s.attackerKeys.id)
    await closed(s.link)
    expect(s.b.counters.rejected.ERR_UNKNOWN_SIGNER).toBeGreaterThan(0)
    expect(relay.link.open).toBe(true)
    await s.honest()
  })

  it('KEYs past the budget are dropped unread (ERR_OVER_BUDGET) and cost the sender its link; known keys stay', async () => {
    const s = await stage(23)
    const banned = s.b.next('peer:banned', { signal: AbortSignal.timeout(10_000) })
    for (let m = 0; m < 200 && s.link.open; m++) {
      await push(s.link, encodeMessage({ kind: MSG.KEY, keys: Array.from({ length: 200 }, () => crypto.getRandomValues(new Uint8Array(32))) }))
      if (m % 10 === 9) await new Promise((resolve) => setImmediate(resolve))
    }
    expect((await banned)[0].peer).toBe(s.attackerKeys.id)
    expect(s.b.counters.overBudget.key).toBeGreaterThan(0)
    expect(s.b.counters.rejected.ERR_OVER_BUDGET).toBeGreaterThan(0)
    expect(s.b.keyOf(s.a.id)).toBeDefined()
    await s.honest()
  })

  it('frames past the data budget are dropped unread; the flooder is disconnected, the publisher beside it is not', async () => {
    const s = await stage(24, { budgets: { data: { rate: 100, burst: 200 } } })
    const banned = s.b.next('peer:banned', { signal: AbortSignal.timeout(10_000) })
    const t0 = Date.now()
    for (let i = 0; i < 1000 && s.link.open; i++) await push(s.link, encodeData(1, encodeFrame({ keys: s.attackerKeys, seq: i + 1, records: [{ n: 'x', v: i }] })))
    expect((await banned)[0].peer).toBe(s.attackerKeys.id)
    expect(s.b.counters.overBudget.data).toBeGreaterThan(0)
    // At most the burst, and what the rate refilled while the flood was being read (100 a second).
    expect(s.inbox.from(s.attackerKeys.id).length).toBeLessThanOrEqual(200 + Math.ceil((Date.now() - t0) / 10))
    await s.honest()
    expect(s.b.links.has(s.a.id)).toBe(true)
  })

  it('valid new frames of one origin past its rate: refused unchecked, the flooder is disconnected, the publisher beside it is not', async () => {
    // Every frame is validly signed and new, and the link's data budget (5,000 a second) is never met: the origin's rate is.
    const s = await stage(26, { originRate: { rate: 100, burst: 200 } })
    const banned = s.b.next('peer:banned', { signal: AbortSignal.timeout(10_000) })
    const t0 = Date.now()
    for (let i = 0; i < 3000 && s.link.open; i++) await push(s.link, encodeData(1, encodeFrame({ keys: s.attackerKeys, seq: i + 1, records: [{ n: 'x', v: i }] })))
    expect((await banned)[0].peer).toBe(s.attackerKeys.id)
    expect(s.b.counters.overBudget.data ?? 0, 'frames dropped by the link data budget').toBe(0)
    expect(s.b.counters.rejected.ERR_OVER_BUDGET).toBeGreaterThan(0)
    expect(s.inbox.from(s.attackerKeys.id).length).toBeLessThanOrEqual(200 + Math.ceil((Date.now() - t0) / 10))
    await s.honest()
    expect(s.b.links.has(s.a.id)).toBe(true)
  })

  it('frames it asked for (WANT) are exempt from the origin rate: a device\'s backlog after an outage is taken in whole', async () => {
    const s = await stage(27, { originRate: { rate: 10, burst: 20 } })
    const frames = Array.from({ length: 300 }, (_, i) => encodeFrame({ keys: s.attackerKeys, seq: i + 1, records: [{ n: 'x', v: i }] }))
    // The neighbour announces 300 frames of its own (15 times the burst); b asks for them, and gets them.
    await push(s.link, encodeMessage({ kind: MSG.DIGEST, full: true, entries: [{ kid: deviceIdToBytes(s.attackerKeys.id), low: 1, high: 300 }] }))
    await until(() => s.heard.some((m) => m.kind === MSG.WANT), 'a WANT from b')
    const want = s.heard.find((m) => m.kind === MSG.WANT) as Extract<RoutingMessage, { kind: typeof MSG.WANT }>
    const { from, to } = want.entries[0] as { from: number, to: number }
    for (let seq = from; seq <= to; seq++) await push(s.link, encodeData(1, frames[seq - 1] as Uint8Array))
    await s.inbox.waitFor(s.attackerKeys.id, to - from + 1)
    expect(s.b.counters.rejected.ERR_OVER_BUDGET ?? 0).toBe(0)
    expect(s.b.links.has(s.attackerKeys.id)).toBe(true)
    // The same numbers of frames unasked: past the burst they are refused, and the sender is disconnected.
    const banned = s.b.next('peer:banned', { signal: AbortSignal.timeout(10_000) })
    for (let i = 0; i < 300 && s.link.open; i++) await push(s.link, encodeData(1, encodeFrame({ keys: s.attackerKeys, seq: 1000 + i, records: [{ n: 'x', v: i }] })))
    expect((await banned)[0].peer).toBe(s.attackerKeys.id)
    expect(s.b.counters.rejected.ERR_OVER_BUDGET).toBeGreaterThan(0)
  })

  it('DIGESTs announcing frames it never sends: each WANT unanswered is a broken promise, and they add up to a ban', async () => {
    const s = await stage(25, { score: { promiseMs: 100, decayInterval: 50 } })
    await s.honest()
    const high = s.a.publish('telemetry', [{ n: 'x', v: 1 }]).seq
    await s.inbox.waitFor(s.a.id, 2)
    const banned = s.b.next('peer:banned', { signal: AbortSignal.timeout(10_000) })
    for (let i = 0; i < 40 && s.link.open; i++) {
      await push(s.link, encodeMessage({ kind: MSG.DIGEST, full: true, entries: [{ kid: deviceIdToBytes(s.a.id), low: high + 1 + i * 10, high: high + 10 + i * 10 }] }))
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    expect((await banned)[0].peer).toBe(s.attackerKeys.id)
    expect(s.heard.some((m) => m.kind === MSG.WANT)).toBe(true)
    await s.honest()
  })

  it('frames outside the roster or past the hop limit are refused without blame: a relay configured otherwise keeps its link', async () => {
    // An honest relay sends such frames while a roster is being rolled out, or when its hop limit is higher than ours.
    const net = createMemoryNetwork({ seed: 30 })
    const [aKeys, bKeys, relayKeys, outsider] = [1, 2, 10, 11].map(seededKeys) as [KeyPair, KeyPair, KeyPair, KeyPair]
    const roster = [aKeys, bKeys, relayKeys].map((k) => k.publicKey)
    const b = await startNode(net, 'b', bKeys, [], { roster })
    const a = await startNode(net, 'a', aKeys, [addr(b)], { roster })
    await until(() => b.links.has(a.id), 'a linked to b')
    const inbox = new Inbox(b)
    await until(() => a.routeTo(b.id) !== undefined, 'a route from a to b')
    const relay = await rawLink(net, relayKeys, b)
    await until(() => b.links.has(relayKeys.id), 'the relay linked to b')
    for (let i = 0; i < 100; i++) {
      await push(relay.link, encodeData(2, encodeFrame({ keys: outsider, seq: i + 1, records: [{ n: 'x', v: i }] })))
      await push(relay.link, encodeData(33, encodeFrame({ keys: relayKeys, seq: i + 1, records: [{ n: 'x', v: i }] })))
    }
    await relay.link.ping()
    await until(() => (b.counters.rejected.ERR_NOT_IN_ROSTER ?? 0) >= 100 && (b.counters.rejected.ERR_HOP_LIMIT ?? 0) >= 100, 'the frames refused')
    expect(b.counters.bans).toBe(0)
    expect(relay.link.open).toBe(true)
    expect(b.links.has(relayKeys.id)).toBe(true)
    expect(b.peers().find((p) => p.id === relayKeys.id)?.score?.invalid ?? 0).toBe(0)
    a.publish('telemetry', [{ n: 'temp', v: 1 }])
    await inbox.waitFor(a.id, 1)
  })

  it('useful deliveries count for a neighbour, and peers() shows its score', async () => {
    const s = await stage(26)
    for (let i = 0; i < 5; i++) await s.honest()
    const record = s.b.peers().find((p) => p.id === s.a.id)?.score
    expect(record?.useful).toBeGreaterThanOrEqual(4) // decays 5 % a second
    expect(record?.score).toBeGreaterThan(0)
    expect(record?.invalid).toBe(0)
  })
})

describe('replay state strangers cannot evict', () => {
  it('past maxOrigins fresh origins, a known device\'s old frames are still refused: its neighbour (a handshake) and a device two hops away (earned)', async () => {
    const net = createMemoryNetwork({ seed: 27 })
    const routing = { maxOrigins: 32, maxStrangers: 32 }
    const b = await startNode(net, 'b', seededKeys(2), [], { routing })
    const r = await startNode(net, 'r', seededKeys(3), [addr(b)], { routing })
    const a = await startNode(net, 'a', seededKeys(1), [addr(b)], { routing })
    const far = await startNode(net, 'far', seededKeys(4), [addr(r)], { routing })
    await until(() => b.links.has(a.id) && b.links.has(r.id) && r.links.has(far.id), 'linked')
    const inbox = new Inbox(b)
    await until(() => a.routeTo(b.id) !== undefined && far.routeTo(b.id) !== undefined, 'routes to b')
    const old = [a.publish('telemetry', [{ n: 'x', v: 0 }]).frame]
    const farOld = [0, 1, 2].map((v) => far.publish('telemetry', [{ n: 'x', v }]).frame) // three verified frames: earned
    await inbox.waitFor(a.id, 1)
    await inbox.waitFor(far.id, 3)

    const attacker = seededKeys(9)
    const { link } = await rawLink(net, attacker, b)
    await until(() => b.links.has(attacker.id), 'the attacker linked')
    const strangers = Array.from({ length: 100 }, () => generateKeyPair())
    link.send(encodeMessage({ kind: MSG.KEY, keys: strangers.map((k) => k.publicKey) }))
    for (const k of strangers) link.send(encodeData(1, encodeFrame({ keys: k, seq: 1, records: [{ n: 'x', v: 1 }] })))
    await until(() => strangers.every((k) => inbox.from(k.id).length === 1), 'the strangers\' frames delivered')

    const delivered = inbox.got.length
    const duplicates = b.counters.duplicates
    for (const frame of [...old, ...farOld]) link.send(encodeData(1, frame))
    await link.ping()
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(inbox.got.length).toBe(delivered)
    expect(b.counters.duplicates).toBe(duplicates + 4)
    expect(inbox.from(a.id).map((d) => d.seq)).toEqual([...new Set(inbox.from(a.id).map((d) => d.seq))])
  })
})

describe('cloned identities: one key on two boards', () => {
  it('the subscriber keeps the first copy of each (origin, seq), refuses the second (ERR_CLONED_IDENTITY) and reports it', async () => {
    const net = createMemoryNetwork({ seed: 28 })
    const s = await startNode(net, 's', seededKeys(2))
    const r = await startNode(net, 'r', seededKeys(3), [addr(s)])
    const image = seededKeys(1)
    const first = await startNode(net, 'first', image, [addr(s)], {}, 1000)
    await until(() => s.links.has(first.id) && s.links.has(r.id), 'first and r linked to s')
    const inbox = new Inbox(s)
    await until(() => first.routeTo(s.id) !== undefined, 'a route from the first board')
    const clones: unknown[] = []
    s.on('clone', (info) => clones.push(info))
    first.publish('telemetry', [{ n: 'board', v: 1 }])
    await inbox.waitFor(image.id, 1)

    // The second board: the same key and sequence file, on the other side of r.
    const second = await startNode(net, 'second', image, [addr(r)], {}, 1000)
    await until(() => r.links.has(image.id) && second.routeTo(s.id) !== undefined, 'the second board linked to r, with a route to s')
    const drop = s.next('drop', { signal: AbortSignal.timeout(5000) })
    second.publish('telemetry', [{ n: 'board', v: 2 }]) // seq 1001 again, other contents
    expect((await drop)[0]).toMatchObject({ code: 'ERR_CLONED_IDENTITY', origin: image.id, seq: 1001, from: r.id })
    expect(clones).toEqual([{ origin: image.id, seq: 1001, code: 'ERR_CLONED_IDENTITY', from: r.id, self: false }])
    expect(s.counters.clones).toBe(1)
    expect(s.counters.rejected.ERR_CLONED_IDENTITY).toBe(1)
    expect(inbox.from(image.id).map((d) => d.records[0]?.v)).toEqual([1]) // the first copy stays
  })

  it('a device that hears frames signed with its own key reports a clone of itself and never delivers or relays them', async () => {
    // second → r → s → first → t: the frames of the second board reach the first one on their way to t.
    const net = createMemoryNetwork({ seed: 29 })
    const image = seededKeys(1)
    const first = await startNode(net, 'first', image, [], {}, 1000)
    const t = await startNode(net, 't', seededKeys(5), [addr(first)])
    const s = await startNode(net, 's', seededKeys(4), [addr(first)])
    const r = await startNode(net, 'r', seededKeys(3), [addr(s)])
    await until(() => first.links.has(t.id) && first.links.has(s.id) && s.links.has(r.id), 'linked')
    const mine = new Inbox(first)
    const inbox = new Inbox(t)
    // The card imaged later: its sequence file is a block ahead of the numbers the first board uses now.
    const second = await startNode(net, 'second', image, [addr(r)], {}, 2000)
    await until(() => r.links.has(image.id) && second.routeTo(t.id) !== undefined, 'the second board has a route to t')
    const clone = first.next('clone', { signal: AbortSignal.timeout(5000) })
    const own = first.publish('telemetry', [{ n: 'board', v: 1 }]).seq // 1001
    const theirs = [1, 2].map(() => second.publish('telemetry', [{ n: 'board', v: 2 }]).seq) // 2001, 2002: above any number the first board signed
    expect((await clone)[0]).toMatchObject({ origin: image.id, code: 'ERR_CLONED_IDENTITY', self: true, from: s.id })
    await inbox.waitFor(image.id, 1)
    await until(() => first.counters.clones === 2, 'both frames of the second board refused')
    expect(mine.from(image.id).map((d) => d.seq)).toEqual([own])
    expect(inbox.from(image.id).map((d) => d.seq)).toEqual([own]) // t is reached through the first board only
    expect(theirs).toEqual([2001, 2002])
  })

})
