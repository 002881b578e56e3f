import { expect, it, onTestFinished } from 'vitest'
import { encodeFrame } from '../../shared/index.js'
import type { Ack, MeshNode } from '../../mesh/index.js'
import { createMemoryNetwork, type MemoryNetwork } from '../../mesh/testing.js'
import { MSG, encodeMessage } from '../../mesh/routing/messages.js'
import { Inbox, addr, linked, routed, seededKeys, startNode, until } from '../helpers/memory-mesh.js'

/**
 * Issue 11: a device keeps each reading its gateway has not acknowledged and offers it again
 * (firmware-sim's mesh-acks.ts, `MeshNode.reoffer`): back into the node's history, announced in the
 * next DIGEST. A reading the history had evicted meanwhile (a device that published more than
 * `historyPerOrigin` readings while its link was silently dead) came back below the number the
 * history announced as its oldest, and no DIGEST ever named it: the gateway never asked, the device
 * waited for its ack for good (test/mesh/partition-heal-fleet.test.ts lost 5 to 9 readings this way).
 */
it('a reading offered again after the history evicted it reaches the subscriber', async () => {
  const net = createMemoryNetwork({ seed: 62 })
  const keys = seededKeys(41)
  const a = await startNode(net, 'a', keys, [], { routing: { historyPerOrigin: 16 } })
  const c = await startNode(net, 'c', seededKeys(42), [addr(a)])
  await linked(a, c.id)
  const inbox = new Inbox(c)
  await routed(a, c)
  const frames = Array.from({ length: 40 }, (_, i) => encodeFrame({ keys, seq: i + 1, records: [{ n: 'i', v: i + 1 }] }))
  net.faults.partition([[a.id]])
  await until(() => a.links.size === 0 && c.links.size === 0, 'both ends see the link gone (keepalive)')
  for (const frame of frames) a.inject(frame) // a's history keeps 25…40
  net.faults.heal()
  await linked(c, a.id)
  await inbox.waitFor(a.id, 16) // the full DIGEST of the new link: 25…40
  expect(a.reoffer(frames[4] as Uint8Array)).toBe(true) // number 5, evicted long ago
  await inbox.waitFor(a.id, 17)
  expect(inbox.from(a.id).map((d) => d.seq).sort((x, y) => x - y)).toEqual([5, ...Array.from({ length: 16 }, (_, i) => i + 25)])
})

/**
 * Issue 11's one-hour soak: readings stuck unacknowledged from minute 9. A frame lost one relay
 * away from its origin (here on b → c, while the link was silently cut) stays at the relay only as
 * long as the relay's history keeps it. Once evicted there, the origin alone holds it, and a
 * re-offer announced in a DIGEST is never fetched: the relay has seen the frame, so it lacks
 * nothing; the subscriber beyond it is not the origin's neighbour. The subscriber's signed ack
 * lists the frame as a hole, and that is what lets the re-offer travel: the origin pushes it
 * towards the subscriber, and the relay, which forwarded that ack, verifies the frame and passes
 * it on instead of dropping it as a duplicate.
 */
/** a – b – c, c a durable subscriber; readings 4…9 at least lost on b → c and evicted at b (it keeps 4 per origin). */
async function lostBeyondRelay (seed: number): Promise<{ a: MeshNode, b: MeshNode, c: MeshNode, frames: Uint8Array[], inbox: Inbox, net: MemoryNetwork }> {
  const net = createMemoryNetwork({ seed })
  const keys = seededKeys(seed + 1)
  const slow = { keepaliveInterval: 50, keepaliveTimeout: 60_000 } // the cut below is silent: no link closes
  const c = await startNode(net, 'c', seededKeys(seed + 3), [], { link: slow, routing: { acks: { intervalMs: 20, refreshMs: 200 } } })
  const b = await startNode(net, 'b', seededKeys(seed + 2), [addr(c)], { link: slow, routing: { historyPerOrigin: 4 } })
  const a = await startNode(net, 'a', keys, [addr(b)], { link: slow })
  await linked(b, a.id, c.id)
  const sub = c.subscribe('iotmesh/#', { durable: true, buffer: 1000 })
  onTestFinished(() => sub.close())
  const inbox = new Inbox(c)
  await until(() => a.interest().some((s) => s.subscriber === c.id && s.durable === true), 'the durable declaration at the origin')
  const acks: Ack[] = []
  a.on('ack', (ack) => acks.push(ack))
  const frames = Array.from({ length: 20 }, (_, i) => encodeFrame({ keys, seq: i + 1, records: [{ n: 'i', v: i + 1 }] }))
  for (const frame of frames.slice(0, 3)) a.inject(frame)
  await inbox.waitFor(a.id, 3)
  net.faults.partition([[c.id]]) // b → c drops what it carries; b does not know
  for (const frame of frames.slice(3, 13)) a.inject(frame) // 4…13 reach b, which keeps 10…13
  await until(() => b.counters.relayed >= 13, 'b relayed 4…13 into the cut')
  net.faults.heal()
  for (const frame of frames.slice(13)) a.inject(frame) // 14…20 flow on; b holds 17…20 by now
  await inbox.waitFor(a.id, 10)
  await until(() => acks.some((ack) => ack.high === 20 && ack.holes.length > 0), 'an ack listing the lost readings as holes')
  const lost = acks.at(-1)?.holes.find(([from]) => from === 4) // 0 is a hole too: never used
  expect(lost?.[1]).toBeGreaterThanOrEqual(9) // 4…9 at least: evicted at b before anyone asked
  return { a, b, c, frames, inbox, net }
}

const all = Array.from({ length: 20 }, (_, i) => i + 1)
const seqsAt = (inbox: Inbox, origin: string): number[] => inbox.from(origin).map((d) => d.seq).sort((x, y) => x - y)

it('a reading lost one relay away from its origin, and evicted there, reaches the durable subscriber when offered again', async () => {
  const { a, b, c, frames, inbox } = await lostBeyondRelay(63)
  for (let round = 0; round < 5 && inbox.from(a.id).length < 20; round++) {
    for (const frame of frames.slice(3, 13)) a.reoffer(frame)
    await until(() => inbox.from(a.id).length >= 20, 'every reading at c', 1000).catch(() => {})
  }
  expect(seqsAt(inbox, a.id)).toEqual(all)
  expect(b.counters.reoffersPassed).toBeGreaterThan(0)
  expect(b.peers().find((p) => p.id === a.id)?.score?.score ?? 0).toBeGreaterThanOrEqual(0) // re-offers are no duplicate flood
  expect(c.peers().find((p) => p.id === b.id)?.score?.score ?? 0).toBeGreaterThanOrEqual(0)
})

it('bounded: a relay passes a lacked frame on once a second however often it comes, and refuses a forged copy', async () => {
  const { a, b, c, frames, inbox, net } = await lostBeyondRelay(73)
  // A raw neighbour of b that sends copies of reading 5: a genuine one 200 times, and one with a flipped signature byte.
  const liar = seededKeys(79)
  const transport = net.createTransport({}, { keys: liar })
  onTestFinished(async () => { await transport.close() })
  const link = await transport.dial({ host: b.address?.host ?? 'b', port: b.address?.port ?? 0 })
  const genuine = frames[4] as Uint8Array
  const forged = genuine.slice()
  forged[forged.length - 1] = (forged[forged.length - 1] as number) ^ 1
  const badBefore = b.counters.rejected.ERR_BAD_SIGNATURE ?? 0
  link.send(encodeMessage({ kind: MSG.DATA, hops: 1, frame: forged }))
  await until(() => (b.counters.rejected.ERR_BAD_SIGNATURE ?? 0) > badBefore, 'the forged copy refused at b')
  expect(b.counters.reoffersPassed).toBe(0)
  for (let i = 0; i < 200; i++) link.send(encodeMessage({ kind: MSG.DATA, hops: 1, frame: genuine }))
  await until(() => inbox.from(a.id).some((d) => d.seq === 5), 'reading 5 at c')
  expect(b.counters.reoffersPassed).toBe(1)
  expect(inbox.from(a.id).filter((d) => d.seq === 5)).toHaveLength(1)
  // The honest origin beside it: the rest of what c lacks still arrives.
  for (let round = 0; round < 5 && inbox.from(a.id).length < 20; round++) {
    for (const frame of frames.slice(3, 13)) a.reoffer(frame)
    await until(() => inbox.from(a.id).length >= 20, 'every reading at c', 1000).catch(() => {})
  }
  expect(seqsAt(inbox, a.id)).toEqual(all)
  expect(c.counters.rejected.ERR_BAD_SIGNATURE ?? 0).toBe(0) // nothing forged went past b
})
