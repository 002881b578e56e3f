import { expect, it, onTestFinished } from 'vitest'
import { deviceIdToBytes, encodeFrame, type KeyPair } from '../../shared/index.js'
import { MeshNode, type Delivery } from '../../mesh/index.js'
import { createMemoryNetwork } from '../../mesh/testing.js'
import { encodeData, encodeMessage, MSG } from '../../mesh/routing/messages.js'
import { push, rawLink, seededKeys, until } from '../helpers/memory-mesh.js'

/**
 * A node behind its own links does not ask for what is already in them (handlers/sync.ts
 * `BEHIND_WAITS`). A neighbour announces frames (an incremental DIGEST) while their eager copies
 * wait, unread, on another link of the node, behind a burst it reads at its own pace: here the
 * link's receive budget paces it (200 messages a second, deterministic), as the event loop's turn
 * does in a busy process (300 TCP devices in one thread: 6 % duplicates at the gateway, the copies
 * it had asked for while they waited in its own links). Asked for after `graftDelay`, each would
 * come twice; the node waits while it is behind and finds them delivered. What never comes by the
 * eager path is still asked for, once the node has caught up or has waited its limit.
 */

const LINK = { keepaliveInterval: 1000, keepaliveTimeout: 10_000 }
const GRAFT_DELAY = 200
const BURST = 120 // frames ahead of the eager copies: (120 - 50) / 200 per second ≈ 350 ms of reading

it('waits for the copies already in its links instead of asking a neighbour for them, and still asks for what never comes', async () => {
  const net = createMemoryNetwork({ seed: 47 })
  const keys = seededKeys(61)
  const node = new MeshNode({ name: 's', host: 's', mdns: false, dialTarget: 0, announceLinks: 0, link: LINK, routing: { syncInterval: 100, graftDelay: GRAFT_DELAY, wantRetry: 200 } }, {
    keys, transport: net.createTransport({ ...LINK, receiveBudget: { messagesPerSecond: 200, burstSeconds: 0.25 } }, { keys })
  })
  onTestFinished(async () => { await node.stop() })
  await node.start()
  const got: Delivery[] = []
  const sub = node.subscribe('iotmesh/#', { buffer: 10_000 })
  onTestFinished(() => sub.close())
  void (async () => { for await (const d of sub) got.push(d) })()

  const origin = seededKeys(62)
  const filler = seededKeys(63)
  const frame = (k: KeyPair, seq: number): Uint8Array => encodeData(1, encodeFrame({ keys: k, seq, records: [{ n: 'x', v: seq }] }))
  const yKeys = seededKeys(65)
  const x = await rawLink(net, seededKeys(64), node, LINK) // announces
  const y = await rawLink(net, yKeys, node, LINK) // carries the eager copies, behind a burst
  await push(x.link, encodeMessage({ kind: MSG.KEY, keys: [origin.publicKey] }))
  await push(y.link, encodeMessage({ kind: MSG.KEY, keys: [origin.publicKey, filler.publicKey] }))
  await until(() => node.counters.controlIn >= 2, 'the keys read')

  const sending = (async () => {
    for (let seq = 1; seq <= BURST; seq++) await push(y.link, frame(filler, seq))
    for (let seq = 1; seq <= 3; seq++) await push(y.link, frame(origin, seq))
  })()
  await until(() => (node.links.get(yKeys.id)?.pending ?? 0) > 0, 'the node behind its link to y')
  // x announces frames 1…3, which y's link carries, and 4…5, which nobody sends eagerly.
  await push(x.link, encodeMessage({ kind: MSG.DIGEST, full: false, entries: [{ kid: deviceIdToBytes(origin.id), low: 1, high: 5 }] }))
  await sending
  await until(() => got.filter((d) => d.origin === origin.id).length === 3, 'frames 1…3 through y', 10_000)
  const wants = (): Array<{ from: number, to: number }> => x.heard.flatMap((m) => m.kind === MSG.WANT ? m.entries.map(({ from, to }) => ({ from, to })) : [])
  await until(() => wants().length > 0, 'a WANT to x for what never came', 10_000)

  expect(wants()).toEqual([{ from: 4, to: 5 }]) // not 1…3: they were in its links
  expect(node.counters.wantsHeld).toBeGreaterThan(0)
  expect(got.filter((d) => d.origin === filler.id)).toHaveLength(BURST)
  expect(node.counters.duplicates).toBe(0)
}, 30_000)
