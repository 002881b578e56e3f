import { describe, expect, it, onTestFinished } from 'vitest'
import { isMeshError, type MeshError } from '../../../shared/index.js'
import { createTcpTransport, type Link } from '../../../mesh/links/index.js'
import { URGENT_BURST } from '../../../mesh/links/base-link.js'
import { SendLanes } from '../../../mesh/links/lanes.js'
import { createMemoryNetwork } from '../../../mesh/testing.js'
import { testKeys } from '../../helpers/keys.js'
import { until } from '../../helpers/memory-mesh.js'
import { describeNet } from '../../helpers/netns.js'

/**
 * A link's send queue in two lanes (mesh/links/lanes.ts, issue 13): control messages (revocations,
 * configurations) go out ahead of queued data, within a bound of their own, and never stop data.
 */

describe('send lanes', () => {
  it('take control first, but one data item after every `burst` control items while data waits', () => {
    const lanes = new SendLanes<{ bytes: number, name: string }>(1000, 4)
    for (let i = 0; i < 3; i++) lanes.push({ bytes: 10, name: `d${i}` })
    for (let i = 0; i < 10; i++) lanes.push({ bytes: 10, name: `c${i}` }, true)
    const order: string[] = []
    for (let item = lanes.shift(); item !== undefined; item = lanes.shift()) order.push(item.name)
    expect(order).toEqual(['c0', 'c1', 'c2', 'c3', 'd0', 'c4', 'c5', 'c6', 'c7', 'd1', 'c8', 'c9', 'd2'])
    expect(lanes.bytes).toBe(0)
  })

  it('bound the control lane apart from the data: its bytes, not the data’s, decide whether control fits', () => {
    const lanes = new SendLanes<{ bytes: number }>(100)
    lanes.push({ bytes: 1_000_000 })
    expect(lanes.controlFits(100)).toBe(true)
    lanes.push({ bytes: 60 }, true)
    expect(lanes.controlFits(41)).toBe(false)
    expect([lanes.dataBytes, lanes.controlBytes, lanes.bytes]).toEqual([1_000_000, 60, 1_000_060])
    lanes.shift()
    expect(lanes.controlFits(100)).toBe(true)
  })
})

async function memoryPair (budget: number, maxBufferedBytes: number): Promise<[Link, Link]> {
  const net = createMemoryNetwork({ seed: 7 })
  const a = net.createTransport({ maxBufferedBytes, keepaliveInterval: 0 }, { keys: testKeys(71) })
  const b = net.createTransport({ receiveBudget: { messagesPerSecond: budget }, keepaliveInterval: 0 }, { keys: testKeys(72) })
  onTestFinished(async () => { await a.close(); await b.close() })
  await b.listen()
  const arrived = b.next('link')
  const ours = await a.dial(b.address!)
  const [theirs] = await arrived
  return [ours, theirs]
}

/** Sends data until the link refuses; returns how many it took. */
function fill (link: Link, size: number): number {
  let sent = 0
  try {
    for (;;) { link.send(new Uint8Array(size).fill(1)); sent++ }
  } catch (err) {
    if (!isMeshError(err, 'ERR_BACKPRESSURE')) throw err
  }
  return sent
}

describe('control messages on a busy in-memory link', () => {
  it('a control message sent behind a full data queue is the next message the peer gets', async () => {
    // The peer reads 5 messages a second: after its burst, what is sent waits in the sender's queue.
    const [link, peer] = await memoryPair(5, 16 * 1024)
    const got: number[] = []
    peer.on('message', (msg) => { got.push(msg[0] as number) })
    expect(fill(link, 1000)).toBe(16)
    await until(() => got.length >= 5, 'the peer’s burst delivered')
    expect(fill(link, 1000)).toBeGreaterThan(0) // topped up: the queue is full again
    expect(() => { link.send(new Uint8Array(1000).fill(2)) }).toThrow(expect.objectContaining({ code: 'ERR_BACKPRESSURE' }) as MeshError)
    const before = got.length
    link.send(Uint8Array.of(9), { control: true })
    await until(() => got.includes(9), 'the control message delivered', 2000)
    // At most the one message already at the peer (waiting for its budget) goes before it.
    expect(got.indexOf(9) - before).toBeLessThanOrEqual(1)
    expect(got.filter((x) => x === 1).length).toBeLessThan(10) // most of the data still waits
  })

  it('the peer takes control messages at once, past its inbox and its turn, up to its urgent allowance (URGENT_BURST, then URGENT_RATE a second); the rest wait like data', async () => {
    const [link, peer] = await memoryPair(5, 1024 * 1024)
    const got: number[] = []
    peer.on('message', (msg) => { got.push(msg[0] as number) })
    fill(link, 1000)
    await until(() => got.length >= 5, 'the peer’s burst delivered')
    for (let i = 0; i < URGENT_BURST + 100; i++) link.send(Uint8Array.of(9), { control: true })
    await new Promise((resolve) => setTimeout(resolve, 50))
    const control = got.filter((x) => x === 9).length
    expect(control).toBeGreaterThanOrEqual(URGENT_BURST)
    expect(control).toBeLessThanOrEqual(URGENT_BURST + 5) // 50 ms of URGENT_RATE, and the budget's own pace
    expect(peer.flow.throttled).toBeGreaterThan(0) // they cost the receive budget: the peer is in debt
  })

  it('the control lane has its own bound (half the send queue): past it control is refused, and data is not', async () => {
    const [link, peer] = await memoryPair(1, 16 * 1024)
    peer.on('message', () => {})
    let control = 0
    let refused: MeshError | undefined
    try {
      for (;;) { link.send(new Uint8Array(1000).fill(9), { control: true }); control++ }
    } catch (err) {
      refused = err as MeshError
    }
    expect(refused?.code).toBe('ERR_BACKPRESSURE')
    expect(refused?.details).toMatchObject({ control: true, limit: 8 * 1024 })
    expect(control).toBeGreaterThanOrEqual(8)
    expect(control).toBeLessThanOrEqual(10)
    expect(fill(link, 1000)).toBeGreaterThanOrEqual(15) // the data lane is as large as ever
  })
})

describeNet('control messages on a busy TCP link', () => {
  it('a control message passes the data that waits for the socket to drain (not what the kernel and the socket already hold)', async () => {
    const a = createTcpTransport({ keepaliveInterval: 0 }, { keys: testKeys(73) })
    const b = createTcpTransport({ keepaliveInterval: 0 }, { keys: testKeys(74) })
    onTestFinished(async () => { await a.close(); await b.close() })
    await b.listen({ host: '127.0.0.1', port: 0 })
    const arrived = b.next('link')
    const link = await a.dial(b.address!, { expectedId: b.localId })
    const [peer] = await arrived
    const got: number[] = []
    peer.on('message', (msg) => { got.push(msg[0] as number) })
    // In one tick: records go to the socket until it is above its high-water mark (the kernel takes megabytes on
    // loopback first), the rest of the data waits in the data lane.
    const sent = fill(link, 1000)
    expect(sent).toBeGreaterThan(500)
    const buffered = link.bufferedBytes
    link.send(Uint8Array.of(9), { control: true })
    await until(() => got.length === sent + 1, 'everything delivered', 10_000)
    const at = got.indexOf(9)
    // The send queue held its 1 MiB: at most its high-water mark and a record of 64 KiB in the socket, the rest waiting unsealed.
    // Ahead of the control message: what the kernel and the socket already held; behind it: the ~900 messages that waited.
    expect(buffered).toBeGreaterThan(900 * 1024)
    expect(sent - at).toBeGreaterThan(500)
    expect(got.filter((x) => x === 1)).toHaveLength(sent)
  })

  it('a graceful close sends what waits in both lanes first', async () => {
    const a = createTcpTransport({ keepaliveInterval: 0 }, { keys: testKeys(75) })
    const b = createTcpTransport({ keepaliveInterval: 0 }, { keys: testKeys(76) })
    onTestFinished(async () => { await a.close(); await b.close() })
    await b.listen({ host: '127.0.0.1', port: 0 })
    const arrived = b.next('link')
    const link = await a.dial(b.address!, { expectedId: b.localId })
    const [peer] = await arrived
    const got: number[] = []
    peer.on('message', (msg) => { got.push(msg[0] as number) })
    const closed = peer.next('close')
    const sent = fill(link, 1000)
    link.send(Uint8Array.of(9), { control: true })
    await link.close()
    const [info] = await closed
    expect(info.reason).toBe('remote')
    expect(got).toHaveLength(sent + 1)
  })
})
