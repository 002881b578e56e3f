import { describe, expect, it, onTestFinished } from 'vitest'
import { isMeshError, type KeyPair } from '../../shared/index.js'
import { MeshNode, type DropInfo, type MeshNodeInit } from '../../mesh/index.js'
import { InstanceBook } from '../../mesh/clones.js'
import { ManualClock } from '../helpers/clock.js'
import { describeNet } from '../helpers/netns.js'
import { seededKeys, until } from '../helpers/memory-mesh.js'

/**
 * Cloned identities at the link layer (mesh/clones.ts): each node shows a random instance id per
 * process start in its handshake; a restart is a new instance (never a clone), two live devices
 * with one key are found when the older instance comes back after the newer, and reported with
 * ERR_CLONED_IDENTITY on the node that saw it (a drop, which the gateway counts as cloned_identity)
 * and on both clones (the REFUSE of their next dial).
 */

const inst = (n: number): Uint8Array => new Uint8Array(16).fill(n)
const codeOf = (fn: () => unknown): string | undefined => {
  try { fn() } catch (err) { return isMeshError(err) ? err.code : String(err) }
  return undefined
}

describe('InstanceBook', () => {
  it('a restart is a new instance, not a clone; an older instance that comes back is, and the key is held out for a while', () => {
    const clock = new ManualClock()
    const book = new InstanceBook({ holdMs: 1000 }, clock)
    const id = seededKeys(81).id
    book.check(id, inst(1))
    book.check(id, inst(1)) // a redial
    book.check(id, inst(2)) // restarted
    book.check(id, inst(3)) // restarted again
    book.check(id, undefined) // an older node without instance ids is not judged
    expect(book.clones).toBe(0)
    expect(codeOf(() => { book.check(id, inst(2)) })).toBe('ERR_CLONED_IDENTITY')
    expect(codeOf(() => { book.check(id, inst(3)) })).toBe('ERR_CLONED_IDENTITY') // held: every instance
    expect(book.clones).toBe(1)
    clock.advance(1000)
    book.check(id, inst(3))
    expect(book.cloned(id)).toBe(false)
  })
})

describeNet('cloned identities over TCP', () => {
  async function node (keys: KeyPair, init: Partial<MeshNodeInit> = {}): Promise<MeshNode> {
    const n = new MeshNode({ mdns: false, host: '127.0.0.1', announceLinks: 0, rotateInterval: 0, backoff: { initial: 50, max: 200 }, instance: true, ...init }, { keys })
    onTestFinished(async () => { await n.stop() })
    await n.start()
    return n
  }

  it('two live devices with one key are reported on the hub and on both clones; a restart is not; the honest carry on', async () => {
    const hub = await node(seededKeys(90))
    const at = `127.0.0.1:${hub.address?.port ?? 0}`
    const drops: DropInfo[] = []
    hub.on('drop', (d) => { drops.push(d) })
    const publisher = await node(seededKeys(91), { peers: [at] })
    const readings: number[] = []
    ;(async () => { for await (const d of hub.subscribe(`iotmesh/default/${publisher.id}/#`)) readings.push(d.seq) })().catch(() => {})

    // A restart: the same key, a new process (instance), after the first one stopped.
    const restarting = seededKeys(92)
    const first = await node(restarting, { peers: [at] })
    await until(() => hub.links.has(first.id), 'the first instance linked')
    await first.stop()
    const second = await node(restarting, { peers: [at] })
    await until(() => hub.links.has(second.id), 'the restarted instance linked', 5000)
    expect(drops.filter((d) => d.code === 'ERR_CLONED_IDENTITY')).toEqual([])

    // One SD-card image on two Pis: both run at once.
    const image = seededKeys(93)
    const told: string[][] = [[], []]
    const pis = [await node(image, { peers: [at] }), await node(image, { peers: [at] })]
    pis.forEach((pi, i) => { pi.on('link:refused', ({ code }) => { told[i]?.push(code) }) })
    await until(() => drops.some((d) => d.code === 'ERR_CLONED_IDENTITY' && d.origin === image.id), 'the hub finds the clone', 10_000)
    await until(() => told.every((codes) => codes.includes('ERR_CLONED_IDENTITY')), 'both clones told why', 10_000)
    await until(() => !hub.links.has(image.id), 'the cloned key cut off', 5000)
    expect(hub.instances.clones).toBe(1)

    const before = readings.length
    publisher.publish('telemetry', [{ n: 'temp', v: 20 }])
    publisher.publish('telemetry', [{ n: 'temp', v: 21 }])
    await until(() => readings.length >= before + 2, 'the honest publisher\'s readings at the hub', 5000)
    expect(hub.links.has(second.id) && hub.links.has(publisher.id)).toBe(true)
  })
})
