import { expect, it } from 'vitest'
import { deviceIdToBytes, encodeFrame, type DeviceId } from '../../shared/index.js'
import type { MeshNode } from '../../mesh/index.js'
import { createMemoryNetwork } from '../../mesh/testing.js'
import { encodeData, encodeMessage, MSG, type RoutingMessage } from '../../mesh/routing/messages.js'
import { Inbox, push, rawLink, seededKeys, startNode, until } from '../helpers/memory-mesh.js'

/**
 * Issue 11, honest relays banned after heals: after a partition heals over TCP under load, a relay
 * whose answers to the node's WANT sat in a queue held by the cut delivers them after the WANT's
 * deadline (score.ts promiseMs), by which time the node has the same frames from other paths. The
 * late answers counted as that relay's duplicates (and the WANT as a broken promise), and honest
 * relays were banned (561 duplicates' worth in one run at load 15–18). A late answer to our own
 * WANT is a kept promise, late: taken as asked, once per frame asked; a copy nobody asked for
 * still counts against its sender.
 */

const FRAMES = 600
const PROMISE_MS = 500


type Want = Extract<RoutingMessage, { kind: typeof MSG.WANT }>

const record = (node: MeshNode, peer: DeviceId): { duplicates: number, brokenPromises: number } | undefined => node.peers().find((p) => p.id === peer)?.score

it(`a relay answers a WANT for ${FRAMES} frames after its deadline (a slow link), when another path brought them already: not cut; the same frames pushed again unasked get it banned`, async () => {
  const net = createMemoryNetwork({ seed: 71 })
  const g = await startNode(net, 'g', seededKeys(1), [], { routing: { score: { promiseMs: PROMISE_MS } } })
  const inbox = new Inbox(g)
  const banned: string[] = []
  g.on('peer:banned', (info) => { banned.push(info.peer) })

  const origin = seededKeys(5)
  const frames = Array.from({ length: FRAMES }, (_, i) => encodeFrame({ keys: origin, seq: i + 1, records: [{ n: 'x', v: i }] }))
  const slow = { keys: seededKeys(2), ...await rawLink(net, seededKeys(2), g) }
  const fast = { keys: seededKeys(3), ...await rawLink(net, seededKeys(3), g) }
  // Both relays hold the origin's frames and announce them in full (a link healed).
  for (const r of [slow, fast]) {
    await push(r.link, encodeMessage({ kind: MSG.KEY, keys: [origin.publicKey] }))
    await push(r.link, encodeMessage({ kind: MSG.DIGEST, full: true, entries: [{ kid: deviceIdToBytes(origin.id), low: 1, high: FRAMES }] }))
  }
  await until(() => [slow, fast].every((r) => r.heard.some((m) => m.kind === MSG.WANT)), 'a WANT to each relay')
  const wanted = (r: typeof slow): Want => r.heard.find((m) => m.kind === MSG.WANT) as Want
  // The fast one answers at once; every reading arrives by it.
  for (const { from, to } of wanted(fast).entries) for (let seq = from; seq <= to; seq++) await push(fast.link, encodeData(1, frames[seq - 1] as Uint8Array))
  await inbox.waitFor(origin.id, FRAMES)
  // The slow one's answer comes past the deadline: the WANT counted as broken by then.
  await until(() => (record(g, slow.keys.id)?.brokenPromises ?? 0) > 0, 'the WANT to the slow relay past its deadline', 5000)
  const before = g.counters.duplicates
  for (const { from, to } of wanted(slow).entries) for (let seq = from; seq <= to; seq++) await push(slow.link, encodeData(1, frames[seq - 1] as Uint8Array))
  await until(() => g.counters.duplicates - before >= FRAMES || banned.length > 0, 'the late answers read')
  expect(banned).toEqual([])
  expect(g.links.has(slow.keys.id)).toBe(true)
  expect(record(g, slow.keys.id)).toMatchObject({ duplicates: 0, brokenPromises: 0 }) // the late answer forgave the broken promise
  expect(new Set(inbox.from(origin.id).map((d) => d.seq)).size).toBe(FRAMES)

  // Nobody asked for these: the same frames again are a duplicate flood, up to a ban.
  const ban = g.next('peer:banned', { signal: AbortSignal.timeout(15_000) })
  for (const frame of frames) { if (!slow.link.open) break; await push(slow.link, encodeData(1, frame)) }
  expect((await ban)[0].peer).toBe(slow.keys.id)
  expect(g.links.has(fast.keys.id)).toBe(true)
}, 40_000)
