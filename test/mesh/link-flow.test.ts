import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { expect, it, onTestFinished } from 'vitest'
import { isMeshError, systemClock, type KeyPair, type MeshError } from '../../shared/index.js'
import {
  BanList, createConnectionManager, createTcpTransport, type ConnectionManager, type Link, type LinkCloseInfo,
  type TcpTransportInit, type Transport
} from '../../mesh/links/index.js'
import { createMemoryNetwork } from '../../mesh/testing.js'
import { JsonLines } from '../helpers/json-lines.js'
import { testKeys } from '../helpers/keys.js'
import { assertFreshBuild } from '../helpers/mesh-proc.js'
import { describeNet } from '../helpers/netns.js'

/**
 * Issue 10, per-link flow control: "a flood of validly signed frames from one peer: the honest
 * device next to it sampled only 7–17 % of its schedule, p99 latency ~30 s; the flooding link was
 * never closed". A link's receive budget holds a flooding neighbour back by not reading its socket,
 * the event loop's slices keep the node's own timers on time, and the owner can close a link with
 * a reason and keep the peer out for a while (the ban list).
 */

/** What the router spends on a message it receives (decode + one Ed25519 verification): ~100 µs. */
function work (): void {
  const until = performance.now() + 0.1
  while (performance.now() < until) { /* verifying */ }
}

async function tcp (keys: KeyPair, init: TcpTransportInit = {}, bans?: BanList): Promise<Transport> {
  const transport = createTcpTransport(init, { keys, bans })
  onTestFinished(async () => { await transport.close() })
  await transport.listen({ host: '127.0.0.1', port: 0 })
  return transport
}

async function pair (from: Transport, to: Transport): Promise<[Link, Link]> {
  const arrived = to.next('link')
  const ours = await from.dial(to.address!, { expectedId: to.localId })
  const [theirs] = await arrived
  return [ours, theirs]
}

/** Sends as fast as the link takes it, until stopped; returns how many it sent. */
function flood (link: Link, size: number): { stop: () => number } {
  let sent = 0
  let stopped = false
  const msg = new Uint8Array(size).fill(7)
  const pump = (): void => {
    try {
      while (!stopped && link.open) { link.send(msg); sent++ }
    } catch (err) {
      if (!isMeshError(err, 'ERR_BACKPRESSURE')) throw err
      link.once('drain', pump)
    }
  }
  setImmediate(pump)
  return { stop: () => { stopped = true; return sent } }
}

const fixture = (name: string): string => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url))

async function sleep (ms: number): Promise<void> { await new Promise((resolve) => setTimeout(resolve, ms)) }

describeNet('per-link flow control', () => {
  it('a neighbour flooding messages (its own process) is held to its budget by TCP backpressure; the honest link and the node’s own 10 ms timer keep their schedule', async () => {
    assertFreshBuild()
    // A budget of 500 messages a second (the default is 10,000): the node spends at most ~5 % of a core on the flood
    // here, so what is measured is the link layer, not how busy this shared test machine is.
    const node = await tcp(testKeys(51), { receiveBudget: { messagesPerSecond: 500 } })
    const honest = await tcp(testKeys(53))
    const [good, goodAtNode] = await pair(honest, node)
    let evilAtNode: Link | undefined
    let fromAttacker = 0
    let linkedAt = 0
    node.on('link', (link) => {
      evilAtNode = link
      linkedAt = performance.now()
      link.on('message', () => { work(); fromAttacker++ })
    })
    goodAtNode.on('message', (msg) => { work(); goodAtNode.send(msg) })
    const flooder = new JsonLines<{ event: string, sent?: number }>(spawn(process.execPath, [fixture('link-flooder.mjs'), JSON.stringify({
      host: '127.0.0.1', port: node.address!.port, expectedId: node.localId, seed: 52, size: 16, ms: 3000
    })], { stdio: ['ignore', 'pipe', 'pipe'] }))
    onTestFinished(() => { flooder.child.kill() })
    await flooder.waitFor((l) => l.event === 'linked', AbortSignal.timeout(10_000))
    // The honest neighbour: one message every 20 ms, echoed. The node's own schedule: a 10 ms timer (sampling).
    const rtts: number[] = []
    let sentGood = 0
    good.on('message', (msg) => { rtts.push(performance.now() - Buffer.from(msg).readDoubleBE(0)) })
    let ticks = 0
    const started = performance.now()
    const goodTimer = setInterval(() => {
      const msg = Buffer.alloc(8)
      msg.writeDoubleBE(performance.now())
      good.send(msg)
      sentGood++
    }, 20)
    // A sampler as a device runs one: due every 10 ms from the start; a sample more than 30 ms late is a missed one.
    let due = started + 10
    let slots = 0
    let sampler: NodeJS.Timeout | undefined
    const sample = (): void => {
      const now = performance.now()
      while (due <= now) {
        slots++
        if (now - due <= 30) ticks++
        due += 10
      }
      sampler = setTimeout(sample, due - now)
    }
    sampler = setTimeout(sample, 10)
    onTestFinished(() => { clearInterval(goodTimer); clearTimeout(sampler) })
    const done = await flooder.waitFor((l) => l.event === 'done', AbortSignal.timeout(20_000))
    const elapsed = (performance.now() - started) / 1000
    clearInterval(goodTimer)
    clearTimeout(sampler)
    await sleep(100)
    const flooding = (performance.now() - linkedAt) / 1000 // every message from the attacker arrived within this
    const received = fromAttacker
    rtts.sort((a, b) => a - b)
    const p99 = rtts[Math.floor(rtts.length * 0.99)] ?? Infinity
    const flow = evilAtNode?.flow
    console.log('flood:', { sent: done.sent, received, flooding, elapsed, flow, ticks, slots, honest: { sentGood, got: rtts.length, p99, worst: rtts.at(-1) } })
    expect(done.sent).toBeGreaterThan(received * 10) // the attacker wanted far more than it got
    expect(received).toBeLessThanOrEqual(500 * flooding + 500 + 10) // sustained rate + one second's burst
    expect(flow?.throttled).toBeGreaterThan(0)
    expect(flow?.throttledMs).toBeGreaterThan(500)
    expect(flow?.overBudget).toBeGreaterThan(0)
    expect(goodAtNode.flow.throttled).toBe(0)
    expect(rtts.length).toBeGreaterThanOrEqual(sentGood - 2)
    expect(p99).toBeLessThan(250) // the issue saw ~30 s
    expect(slots).toBeGreaterThanOrEqual(Math.floor(elapsed * 100) - 2)
    expect(ticks).toBeGreaterThanOrEqual(slots * 0.8) // sampling on schedule (the issue saw 7–17 %; this box is shared)
  })

  it('a memory link emulates it: the flooding sender’s queue fills (ERR_BACKPRESSURE) while the receiver takes its budget', async () => {
    const net = createMemoryNetwork()
    const init = { receiveBudget: { messagesPerSecond: 500, burstSeconds: 0.2 } }
    const node = net.createTransport(init, { keys: testKeys(54) })
    const attacker = net.createTransport(init, { keys: testKeys(55) })
    onTestFinished(async () => { await Promise.all([node.close(), attacker.close()]) })
    const address = await node.listen({ host: 'node', port: 1 })
    const arrived = node.next('link')
    const evil = await attacker.dial(address)
    const [evilAtNode] = await arrived
    let got = 0
    evilAtNode.on('message', () => { got++ })
    const started = performance.now()
    const { stop } = flood(evil, 64)
    await sleep(1000)
    const sent = stop()
    const elapsed = (performance.now() - started) / 1000
    expect(got).toBeLessThanOrEqual(500 * elapsed + 100 + 20)
    expect(got).toBeGreaterThan(300)
    expect(sent - got).toBeGreaterThan(0) // waiting in the sender's bounded queue, not in the receiver's memory
    expect(evil.bufferedBytes).toBeGreaterThan(0)
    expect(evilAtNode.flow.throttled).toBeGreaterThan(0)
  })
})

describeNet('closing a link with a reason, and the ban list', () => {
  it('disconnect(id, { why, banMs }): the peer hears why, is refused (ERR_BANNED, nothing signed) while banned, links again after; the honest link is untouched', async () => {
    const bans = new BanList({}, systemClock)
    const node = await tcp(testKeys(56), {}, bans)
    const nodeManager = createConnectionManager({}, { transport: node, bans })
    const peer = await tcp(testKeys(57))
    const peerManager = createConnectionManager({ backoff: { initial: 100, max: 200 }, refusedRetryMs: 1000 }, { transport: peer })
    const honest = await tcp(testKeys(58))
    for (const m of [nodeManager, peerManager]) { m.start(); onTestFinished(async () => { await m.stop() }) }
    const [good, goodAtNode] = await pair(honest, node)
    const echoed = good.next('message')
    const opened = Promise.all([nodeManager.next('link:open'), peerManager.next('link:open')])
    peerManager.add({ id: node.localId, addresses: ['127.0.0.1'], port: node.address!.port })
    await opened
    const closed: LinkCloseInfo[] = []
    const errors: MeshError[] = []
    peerManager.on('link:close', (_l, info) => { closed.push(info) })
    peerManager.on('dial:error', (err) => { errors.push(err) })
    const repliesBefore = node.counters.replies
    await nodeManager.disconnect(peer.localId, { why: 'score', banMs: 1500 })
    await sleep(800)
    expect(closed[0]).toMatchObject({ reason: 'remote', why: 'score' })
    expect(errors.map((e) => e.code)).toEqual(['ERR_BANNED']) // then it waits refusedRetryMs, not its 100 ms backoff
    expect(node.counters.replies).toBe(repliesBefore) // refused at its HELLO, before any signature
    expect(node.counters.refused.banned).toBe(errors.length)
    expect(peer.links.size).toBe(0)
    // The honest link did not notice.
    goodAtNode.on('message', (msg) => { goodAtNode.send(msg) })
    good.send(Uint8Array.of(1))
    expect((await echoed)[0][0]).toBe(1)
    // The ban ends: the peer's own redial gets through.
    const back = nodeManager.next('link:open')
    await back
    expect(nodeManager.links.has(peer.localId)).toBe(true)
    expect(bans.banned({ id: peer.localId })).toBe(false)
  })

  it('ban({ address }) closes every link from that address with why "banned" and the peers back off', async () => {
    const bans = new BanList({}, systemClock)
    const node = await tcp(testKeys(59), {}, bans)
    const nodeManager: ConnectionManager = createConnectionManager({}, { transport: node, bans })
    nodeManager.start()
    onTestFinished(async () => { await nodeManager.stop() })
    const a = await tcp(testKeys(60))
    const [link] = await pair(a, node)
    await new Promise((resolve) => setImmediate(resolve))
    const why = link.next('close')
    nodeManager.ban({ address: '127.0.0.1' }, { forMs: 60_000, reason: 'test' })
    expect((await why)[0]).toMatchObject({ reason: 'remote', why: 'banned' })
    expect(nodeManager.counters.banned).toBe(1)
    await expect(a.dial(node.address!)).rejects.toSatisfy((err: unknown) => isMeshError(err))
    expect(node.counters.refused.banned).toBe(1)
  })
})
