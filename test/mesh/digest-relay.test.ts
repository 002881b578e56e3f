import { expect, it, onTestFinished } from 'vitest'
import { deviceIdToBytes, encodeFrame } from '../../shared/index.js'
import type { Delivery } from '../../mesh/index.js'
import { createMemoryNetwork } from '../../mesh/testing.js'
import { encodeData, encodeMessage, MSG, type RoutingMessage } from '../../mesh/routing/messages.js'
import { addr, rawLink, seededKeys, startNode, until } from '../helpers/memory-mesh.js'

/**
 * Issue 11: a relay that an origin's frames started to pass through (a route moved to it between
 * live relays) was sent incremental DIGESTs naming the origin's whole history, and asked for all of
 * it: up to 256 frames per origin for every such move. Once every history was full, a 300-device
 * fleet in one process spent its core on these repairs and the gateway fell behind for good
 * (collapse at ~6.5 min of the hour-long soak). A relay now asks only for what the eager path lost
 * on its way: numbers above the oldest it holds of the origin.
 */

type Want = Extract<RoutingMessage, { kind: typeof MSG.WANT }>

/** g subscribes; v relays towards it; n, a raw link into v, plays the neighbour that sends v an origin's frames. */
async function relayed (seed: number): Promise<{ got: Delivery[], n: Awaited<ReturnType<typeof rawLink>>, frames: Uint8Array[], kid: Uint8Array }> {
  const net = createMemoryNetwork({ seed })
  const g = await startNode(net, 'g', seededKeys(31))
  const got: Delivery[] = []
  const sub = g.subscribe('iotmesh/#', { buffer: 1000 })
  onTestFinished(() => sub.close())
  void (async () => { for await (const d of sub) got.push(d) })()
  const v = await startNode(net, 'v', seededKeys(32), [addr(g)])
  await until(() => v.routeTo(g.id) !== undefined, 'a route from v to g')
  const origin = seededKeys(35)
  const frames = Array.from({ length: 50 }, (_, i) => encodeFrame({ keys: origin, seq: i + 1, records: [{ n: 'x', v: i }] }))
  const n = await rawLink(net, seededKeys(34), v)
  n.link.send(encodeMessage({ kind: MSG.KEY, keys: [origin.publicKey] }))
  return { got, n, frames, kid: deviceIdToBytes(origin.id) }
}

/** What v asked n for (WANT ranges) after n's incremental DIGEST names the origin's whole history, 1…50. */
async function askedAfterDigest (n: Awaited<ReturnType<typeof rawLink>>, kid: Uint8Array): Promise<number[][]> {
  n.link.send(encodeMessage({ kind: MSG.DIGEST, full: false, entries: [{ kid, low: 1, high: 50 }] }))
  await until(() => n.heard.some((m) => m.kind === MSG.WANT), 'a WANT from v')
  await new Promise((resolve) => setTimeout(resolve, 300)) // any later WANT (retries) too
  return n.heard.filter((m): m is Want => m.kind === MSG.WANT).flatMap((w) => w.entries.map(({ from, to }) => [from, to]))
}

it('a relay asks for the frame its eager path lost, not for the history from before it carried the origin', async () => {
  const { got, n, frames, kid } = await relayed(61)
  // The origin's frames start to pass through v at 41; 46 is lost on the way.
  for (let seq = 41; seq <= 50; seq++) if (seq !== 46) n.link.send(encodeData(1, frames[seq - 1] as Uint8Array))
  await until(() => got.length === 9, '9 readings at g through v')
  expect(await askedAfterDigest(n, kid)).toEqual([[46, 46]]) // before: [[1, 40], [46, 46]]
  n.link.send(encodeData(1, frames[45] as Uint8Array))
  await until(() => got.length === 10, 'the lost reading at g')
})

it('older frames that reach a relay late do not lower where it starts to repair: catch-ups do not ratchet down', async () => {
  const { got, n, frames, kid } = await relayed(62)
  for (let seq = 41; seq <= 50; seq++) if (seq !== 46) n.link.send(encodeData(1, frames[seq - 1] as Uint8Array))
  for (let seq = 30; seq <= 35; seq++) n.link.send(encodeData(1, frames[seq - 1] as Uint8Array)) // late: below what v holds
  await until(() => got.length === 15, '15 readings at g through v')
  // From the oldest frame v holds (30), it would ask for 36…40 too, and each catch-up would start the next one lower.
  expect(await askedAfterDigest(n, kid)).toEqual([[46, 46]])
})

/**
 * The soak's repair storm (issue 11): a relay that once carried an origin, and whose route for it
 * moved elsewhere, kept asking for each of its new frames on the DIGESTs of neighbours on the new
 * path: a second, pulled path per moved origin, about one repair per reading, growing as routes
 * moved, until a 300-device fleet in one process spent its core on it. A relay now repairs gaps
 * in what its eager path brought, never beyond the newest frame that path brought.
 */
it('a relay whose eager path for an origin moved away does not pull the origin\'s new frames', async () => {
  const { got, n, frames, kid } = await relayed(63)
  for (let seq = 1; seq <= 10; seq++) if (seq !== 6) n.link.send(encodeData(1, frames[seq - 1] as Uint8Array))
  await until(() => got.length === 9, '9 readings at g through v')
  // 11…50 went to the subscriber by another path; n's DIGEST names them all.
  expect(await askedAfterDigest(n, kid)).toEqual([[6, 6]]) // before: [[6, 6], [11, 50]]
})
