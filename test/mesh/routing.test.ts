import { describe, expect, it, onTestFinished } from 'vitest'
import {
  encodeFrame, generateKeyPair, type KeyPair, type PublicKey
} from '../../shared/index.js'
import { MeshNode, type Delivery } from '../../mesh/index.js'
import { createMemoryNetwork, type MemoryNetwork } from '../../mesh/testing.js'
import { encodeData, encodeMessage, MSG } from '../../mesh/routing/messages.js'

/** Fast keepalive so a partition closes links within a fraction of a second. */
const LINK = { keepaliveInterval: 50, keepaliveTimeout: 200 }
const ROUTING = { syncInterval: 100, graftDelay: 30, wantRetry: 200 }

function seededKeys (n: number): KeyPair {
  return generateKeyPair(Uint8Array.from({ length: 32 }, (_, i) => (i * 7 + n * 31) & 0xff))
}

async function startNode (network: MemoryNetwork, name: string, keys: KeyPair, peers: string[] = [], extra: { roster?: PublicKey[] } = {}): Promise<MeshNode> {
  const node = new MeshNode({
    name, host: name, mdns: false, peers, dialTarget: 0, announceLinks: 0, link: LINK, routing: ROUTING, ...extra
  }, { keys, transport: network.createTransport({ ...LINK, ...(extra.roster === undefined ? {} : { authorize: (r) => extra.roster?.some((pk) => Buffer.from(pk).equals(Buffer.from(r.publicKey))) ?? true }) }, { keys }) })
  onTestFinished(async () => { await node.stop() })
  await node.start()
  return node
}

const addr = (node: MeshNode): string => `${node.address?.host}:${node.address?.port}`

/** Resolves once `node` has a link to each of `ids`. */
async function linked (node: MeshNode, ...ids: string[]): Promise<void> {
  while (!ids.every((id) => node.links.has(id))) await node.next('link:open', { signal: AbortSignal.timeout(5000) })
}

/** A subscription kept for the whole test: declared once, so routes form before readings flow. */
class Inbox {
  readonly #got: Delivery[] = []
  readonly #waiters = new Set<() => void>()
  constructor (readonly node: MeshNode, filter = 'iotmesh/#') {
    const sub = node.subscribe(filter, { buffer: 100_000 })
    onTestFinished(() => sub.close())
    void (async () => { for await (const d of sub) { this.#got.push(d); for (const w of this.#waiters) w() } })()
  }

  /** The next `n` deliveries (of readings from `origin`), waiting up to 5 s. */
  async take (n: number, origin?: string): Promise<Delivery[]> {
    const signal = AbortSignal.timeout(5000)
    const out: Delivery[] = []
    for (;;) {
      while (out.length < n) {
        const i = this.#got.findIndex((d) => origin === undefined || d.origin === origin)
        if (i < 0) break
        out.push(...this.#got.splice(i, 1))
      }
      if (out.length === n) return out
      if (signal.aborted) throw new Error(`got ${out.length} of ${n} deliveries`)
      await new Promise<void>((resolve) => { const w = (): void => { this.#waiters.delete(w); resolve() }; this.#waiters.add(w); setTimeout(w, 50) })
    }
  }
}

/** Resolves once `from` has a route to `to`'s subscription (INTEREST has propagated). */
async function routed (from: MeshNode, to: MeshNode): Promise<void> {
  const t0 = Date.now()
  while (from.routeTo(to.id) === undefined) {
    if (Date.now() - t0 > 5000) throw new Error(`no route from ${from.name} to ${to.name}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

describe('routing over links', () => {
  it('carries a reading along a line A-B-C-D, once, with the hop count', async () => {
    const net = createMemoryNetwork({ seed: 1 })
    const a = await startNode(net, 'a', seededKeys(1))
    const b = await startNode(net, 'b', seededKeys(2), [addr(a)])
    const c = await startNode(net, 'c', seededKeys(3), [addr(b)])
    const d = await startNode(net, 'd', seededKeys(4), [addr(c)])
    await linked(b, a.id, c.id)
    await linked(c, d.id)
    const inbox = new Inbox(d)
    await routed(a, d)
    a.publish('telemetry', [{ n: 'temp', u: 'Cel', v: 21.5 }])
    a.publish('events/door', [{ n: 'door', vb: true }])
    const [first, second] = await inbox.take(2, a.id)
    expect(first?.hops).toBe(3)
    expect(first?.topic).toBe(`iotmesh/default/${a.id}/telemetry`)
    expect(first?.records[0]?.v).toBe(21.5)
    expect(second?.topic).toBe(`iotmesh/default/${a.id}/events/door`)
    expect(d.counters.delivered).toBe(2)
    expect(b.counters.relayed).toBe(2)
    expect(b.counters.delivered).toBe(2) // relays verify what they forward
    expect(d.counters.duplicates).toBe(0)
  })

  it('routes by interest: on a triangle each reading reaches the subscriber once, and only it', async () => {
    const net = createMemoryNetwork({ seed: 2 })
    const a = await startNode(net, 'a', seededKeys(1))
    const b = await startNode(net, 'b', seededKeys(2), [addr(a)])
    const c = await startNode(net, 'c', seededKeys(3), [addr(a), addr(b)])
    await linked(a, b.id, c.id)
    await linked(b, c.id)
    const inbox = new Inbox(c)
    await routed(a, c)
    await routed(b, c)
    const n = 50
    for (let i = 0; i < n; i++) a.publish('telemetry', [{ n: 'i', v: i }])
    const readings = await inbox.take(n, a.id)
    expect(readings.map((r) => r.records[0]?.v)).toEqual([...Array(n).keys()])
    expect(readings.every((r) => r.hops === 1)).toBe(true) // the direct link: the shortest path
    expect(c.counters.duplicates).toBe(0)
    expect(b.counters.framesIn).toBe(0) // b subscribes to nothing and is not on the path
  })

  it('a subscriber that appears later gets the readings held in history (catch-up)', async () => {
    const net = createMemoryNetwork({ seed: 6 })
    const a = await startNode(net, 'a', seededKeys(1))
    const b = await startNode(net, 'b', seededKeys(2), [addr(a)])
    await linked(b, a.id)
    for (let i = 0; i < 5; i++) a.publish('telemetry', [{ n: 'i', v: i }])
    const inbox = new Inbox(b)
    const readings = await inbox.take(5, a.id)
    expect(readings.map((r) => r.records[0]?.v)).toEqual([0, 1, 2, 3, 4])
  })

  it('keeps delivering when a relay on a redundant topology dies, and loses nothing', async () => {
    const net = createMemoryNetwork({ seed: 3 })
    const a = await startNode(net, 'a', seededKeys(1))
    const b = await startNode(net, 'b', seededKeys(2), [addr(a)])
    const c = await startNode(net, 'c', seededKeys(3), [addr(a)])
    const d = await startNode(net, 'd', seededKeys(4), [addr(b), addr(c)])
    await linked(d, b.id, c.id)
    await linked(a, b.id, c.id)
    const inbox = new Inbox(d)
    await routed(a, d)
    const total = 40
    for (let i = 0; i < total / 2; i++) a.publish('telemetry', [{ n: 'i', v: i }])
    await b.stop() // the relay d was most likely receiving through goes away
    for (let i = total / 2; i < total; i++) a.publish('telemetry', [{ n: 'i', v: i }])
    const readings = await inbox.take(total, a.id)
    expect(readings.map((r) => r.records[0]?.v).sort((x, y) => (x as number) - (y as number))).toEqual([...Array(total).keys()])
  })

  it('catches up after a partition heals: every reading once, nothing lost', async () => {
    const net = createMemoryNetwork({ seed: 4 })
    const a = await startNode(net, 'a', seededKeys(1))
    const b = await startNode(net, 'b', seededKeys(2), [addr(a)])
    const c = await startNode(net, 'c', seededKeys(3), [addr(b)])
    await linked(b, a.id, c.id)
    const inbox = new Inbox(c)
    await routed(a, c)
    a.publish('telemetry', [{ n: 'i', v: 0 }])
    net.faults.partition([[a.id]])
    await b.next('link:close', { signal: AbortSignal.timeout(5000) }) // keepalive notices
    for (let i = 1; i <= 10; i++) a.publish('telemetry', [{ n: 'i', v: i }])
    net.faults.heal()
    await linked(b, a.id)
    a.publish('telemetry', [{ n: 'i', v: 11 }])
    const readings = await inbox.take(12, a.id)
    expect(readings.map((r) => r.records[0]?.v).sort((x, y) => (x as number) - (y as number))).toEqual([...Array(12).keys()])
    expect(c.counters.delivered).toBe(12)
    expect(a.counters.repaired).toBeGreaterThanOrEqual(10) // a answered b's WANT; b relayed on to c
  })
})

describe('routing refuses bad frames and relays none of them', () => {
  async function setup (roster?: KeyPair[]) {
    const net = createMemoryNetwork({ seed: 5 })
    const a = seededKeys(1)
    const attackerKeys = seededKeys(9)
    const extra = roster === undefined ? {} : { roster: roster.map((k) => k.publicKey) }
    const b = await startNode(net, 'b', seededKeys(2), [], extra)
    const c = await startNode(net, 'c', seededKeys(3), [addr(b)], extra)
    const origin = await startNode(net, 'a', a, [addr(b)], extra)
    await linked(b, c.id, origin.id)
    const inbox = new Inbox(c)
    await routed(origin, c)
    await routed(b, c)
    const attacker = net.createTransport(LINK, { keys: attackerKeys })
    onTestFinished(async () => { await attacker.close() })
    const link = await attacker.dial(b.address!)
    const send = (frame: Uint8Array, hops = 1): void => link.send(encodeData(hops, frame))
    return { b, c, origin, a, attackerKeys, send, link, inbox }
  }

  /** Sends the bad frame, waits for b to refuse it, then proves c's next reading is the control. */
  async function refused (ctx: Awaited<ReturnType<typeof setup>>, bad: Uint8Array, code: string): Promise<void> {
    const { b, origin, inbox } = ctx
    const before = b.counters.relayed
    const rejectedBefore = b.counters.rejected[code] ?? 0
    const dropped = b.next('drop', { signal: AbortSignal.timeout(5000) })
    ctx.send(bad)
    const [info] = await dropped
    expect(info.code).toBe(code)
    expect(b.counters.rejected[code]).toBe(rejectedBefore + 1)
    origin.publish('telemetry', [{ n: 'control', v: 1 }])
    const [delivery] = await inbox.take(1)
    expect(delivery?.records[0]?.n).toBe('control')
    expect(b.counters.relayed).toBe(before + 1) // only the control
  }

  it('a frame with one flipped byte: ERR_BAD_SIGNATURE', async () => {
    const ctx = await setup()
    const frame = encodeFrame({ keys: ctx.a, seq: 1, records: [{ n: 'temp', u: 'Cel', v: 20 }] })
    frame[frame.length - 10] = (frame[frame.length - 10] as number) ^ 0x01
    await refused(ctx, frame, 'ERR_BAD_SIGNATURE')
  })

  it("an impostor: another device's id with its own key: ERR_BAD_SIGNATURE", async () => {
    const ctx = await setup()
    const forged = encodeFrame({ keys: { ...ctx.attackerKeys, id: ctx.a.id }, seq: 1, records: [{ n: 'temp', v: 99 }] })
    await refused(ctx, forged, 'ERR_BAD_SIGNATURE')
  })

  it('a replayed frame older than the window: ERR_REPLAY; a recent one is a counted duplicate', async () => {
    const ctx = await setup()
    const first = ctx.origin.publish('telemetry', [{ n: 'x', v: 1 }])
    await ctx.inbox.take(1, ctx.a.id)
    for (let i = 0; i < 1100; i++) ctx.origin.publish('telemetry', [{ n: 'x', v: i }])
    await ctx.inbox.take(1100, ctx.a.id)
    const duplicates = ctx.b.counters.duplicates
    await refused(ctx, first.frame, 'ERR_REPLAY')
    const recent = ctx.origin.publish('telemetry', [{ n: 'y', v: 2 }])
    await ctx.inbox.take(1, ctx.a.id) // b relayed it to c
    ctx.send(recent.frame)
    await ctx.link.ping()
    expect(ctx.b.counters.duplicates).toBeGreaterThan(duplicates)
  })

  it('a frame signed by a key outside the roster (closed mode): ERR_NOT_IN_ROSTER', async () => {
    const attacker = seededKeys(9)
    const roster = [seededKeys(1), seededKeys(2), seededKeys(3), attacker]
    const ctx = await setup(roster)
    const outsider = seededKeys(10)
    const frame = encodeFrame({ keys: outsider, seq: 1, records: [{ n: 'temp', v: 1 }] })
    ctx.link.send(encodeMessage({ kind: MSG.KEY, keys: [outsider.publicKey] }))
    const dropped = ctx.b.next('drop', { signal: AbortSignal.timeout(5000) })
    const [keyRefusal] = await dropped
    expect(keyRefusal.code).toBe('ERR_NOT_IN_ROSTER')
    await refused(ctx, frame, 'ERR_NOT_IN_ROSTER')
  })

  it('a malformed routing message is counted and the link carries on', async () => {
    const ctx = await setup()
    const dropped = ctx.b.next('drop', { signal: AbortSignal.timeout(5000) })
    ctx.link.send(Uint8Array.of(0x83, 0x09, 0xff))
    expect((await dropped)[0].code).toBe('ERR_BAD_CBOR')
    ctx.origin.publish('telemetry', [{ n: 'still', v: 1 }])
    expect((await ctx.inbox.take(1))[0]?.records[0]?.n).toBe('still')
  })
})
