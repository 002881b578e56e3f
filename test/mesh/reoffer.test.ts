import { expect, it } from 'vitest'
import { encodeFrame } from '../../shared/index.js'
import { createMemoryNetwork } from '../../mesh/testing.js'
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
