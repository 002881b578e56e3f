import { expect, it, vi } from 'vitest'
import { decodeFrame, deviceIdFromBytes, encodeFrame } from '../../shared/index.js'
import type { SendOptions } from '../../mesh/index.js'
import { createMemoryNetwork } from '../../mesh/testing.js'
import { decodeMessage, encodeData, MSG } from '../../mesh/routing/messages.js'
import { ECHOES } from '../../mesh/routing/handlers/sync.js'
import { Inbox, addr, linked, push, rawLink, seededKeys, startNode, until } from '../helpers/memory-mesh.js'

/**
 * Issue 15: a neighbour asks (WANT) for a frame only when it hears of it in a DIGEST, and a node
 * announced an origin only in the sync round after its frames changed. One announcement lost (a
 * DIGEST refused by a full link, a WANT put off past its retries, no route to the neighbour's
 * subscriber at that moment) was lost for good once the origin went quiet: after the traffic
 * bench's last round, at 50 nodes on a loaded machine, readings a neighbour held waited for a
 * route to move (a full DIGEST) or were never asked for. An origin that stops changing is now
 * announced again, 1, 3, 7, 15 and 31 sync intervals after its last change (sync.ts `ECHOES`).
 *
 * Here b's link to c loses the frame and the one DIGEST that announced it, and the origin then
 * publishes nothing more: c gets the frame from b's next announcement, and b announces the quiet
 * origin at most ECHOES times more.
 */
it('a frame whose DIGEST was lost is announced again after its origin went quiet, and fetched; the echoes are bounded', { timeout: 30_000 }, async () => {
  const net = createMemoryNetwork({ seed: 73 })
  const b = await startNode(net, 'b', seededKeys(2))
  const c = await startNode(net, 'c', seededKeys(3), [addr(b)])
  await linked(c, b.id)
  const inbox = new Inbox(c)
  await until(() => b.routeTo(c.id) !== undefined, 'a route from b to c')

  // The origin is a raw neighbour of b's (b knows its key from the link).
  const origin = seededKeys(9)
  const { link } = await rawLink(net, origin, b)
  const frame = (seq: number): Uint8Array => encodeData(1, encodeFrame({ keys: origin, seq, records: [{ n: 'x', v: seq }] }))
  await push(link, frame(1))
  await inbox.waitFor(origin.id, 1)

  // From now on b's link to c loses frame 2 and the first DIGEST that announces it.
  const toC = b.links.get(c.id)!
  const send = toC.send.bind(toC)
  let lost = 0
  let copies = 0
  let announcements = 0
  vi.spyOn(toC, 'send').mockImplementation((bytes: Uint8Array, options?: SendOptions) => {
    const m = decodeMessage(bytes)
    if (m.kind === MSG.DATA && decodeFrame(m.frame).seq === 2 && ++copies === 1) { lost++; return }
    const names = m.kind === MSG.DIGEST && !m.full && m.entries.some((e) => deviceIdFromBytes(e.kid) === origin.id && e.high >= 2)
    if (names) announcements++
    if (names && announcements === 1) { lost++; return }
    send(bytes, options)
  })
  await push(link, frame(2))
  await until(() => lost === 2, 'frame 2 and its announcement lost on the way to c')

  // Before: c never heard of frame 2 again (its origin publishes nothing more).
  await inbox.waitFor(origin.id, 2)
  expect(inbox.from(origin.id).map((d) => d.seq)).toEqual([1, 2])
  expect(inbox.from(origin.id)[1]?.caughtUp).toBe(true) // fetched (WANT), not pushed

  // The quiet origin is announced again at most ECHOES times, however long nothing changes.
  await new Promise((resolve) => setTimeout(resolve, 40 * 100)) // 40 sync intervals of 100 ms (ROUTING): past the last echo
  expect(announcements).toBeGreaterThanOrEqual(2)
  expect(announcements).toBeLessThanOrEqual(1 + ECHOES)
})
