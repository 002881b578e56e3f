import { describe, expect, it, onTestFinished } from 'vitest'
import { isMeshError, meshError, type KeyPair } from '../../shared/index.js'
import { MeshNode, type CloneInfo, type DropInfo, type Link, type MeshNodeInit, type RemotePeer } from '../../mesh/index.js'
import { InstanceBook } from '../../mesh/clones.js'
import { ManualClock } from '../helpers/clock.js'
import { describeNet } from '../helpers/netns.js'
import { seededKeys, until } from '../helpers/memory-mesh.js'
import { startProxy } from '../helpers/tcp-proxy.js'

/**
 * Cloned identities at the link layer (mesh/clones.ts): each node shows a random instance id per
 * process start in its handshake. When a peer proves a key with a new instance id while a link
 * from another instance of that key is open, the open link is asked for a liveness proof (a ping
 * on its sealed session): answered, the newcomer is a clone, refused with ERR_CLONED_IDENTITY (told
 * to it, reported on the node that saw it) and the first keeps its link; not answered, it is a
 * restart and the newcomer replaces the silent link.
 */

const inst = (n: number): Uint8Array => new Uint8Array(16).fill(n)
const id = seededKeys(81).id
const peer = (n?: number): RemotePeer => ({ id, publicKey: seededKeys(81).publicKey, ...(n === undefined ? {} : { instance: inst(n) }) })

/**
 * The open link as the book uses it (its remote, ping, destroy): a stand-in, because the in-memory
 * transport carries no instance ids. `alive` answers pings at once; otherwise they hang (a power cut).
 */
function openLink (n: number, alive: boolean): Link & { pings: number, destroyed: boolean, counters: { bytesIn: number } } {
  const link = {
    remote: peer(n),
    pings: 0,
    destroyed: false,
    open: true,
    counters: { bytesIn: 0 },
    async ping (options: { signal?: AbortSignal } = {}): Promise<number> {
      link.pings++
      if (alive) return 1
      return await new Promise((_resolve, reject) => { options.signal?.addEventListener('abort', () => { reject(meshError('ERR_ABORTED', 'aborted')) }) })
    },
    destroy (): void { link.destroyed = true; link.open = false }
  }
  return link as unknown as Link & { pings: number, destroyed: boolean, counters: { bytesIn: number } }
}

const codeOf = async (work: Promise<unknown>): Promise<string | undefined> => {
  try { await work } catch (err) { return isMeshError(err) ? err.code : String(err) }
  return undefined
}

describe('InstanceBook', () => {
  it('a redial is the same instance; a new instance whose old link is silent is a restart (the old link destroyed); no instance id, not judged', async () => {
    const clock = new ManualClock()
    const book = new InstanceBook({ probeMs: 1000 }, clock)
    expect(await book.vouch(peer(1), undefined)).toBe('new')
    expect(await book.vouch(peer(1), openLink(1, true))).toBe('same') // from another address of its own, or both ends dialing
    const silent = openLink(1, false)
    const restart = book.vouch(peer(2), silent) // the probe's deadline is set at once
    clock.advance(1000)
    expect(await restart).toBe('restart')
    expect(silent.pings).toBe(1)
    expect(silent.destroyed).toBe(true)
    expect(await book.vouch(peer(undefined), openLink(2, true))).toBe('unjudged')
    expect(book.clones).toBe(0)
    expect(book.restarts).toBe(1)
  })

  it('a second instance while the first answers is a clone: refused, held out without another probe, the first kept; released after holdMs', async () => {
    const clock = new ManualClock()
    const book = new InstanceBook({ holdMs: 5000 }, clock)
    expect(await book.vouch(peer(1), undefined)).toBe('new')
    const first = openLink(1, true)
    // Two dials of the clone at once share one probe.
    const codes = await Promise.all([codeOf(book.vouch(peer(2), first)), codeOf(book.vouch(peer(2), first))])
    expect(codes).toEqual(['ERR_CLONED_IDENTITY', 'ERR_CLONED_IDENTITY'])
    expect(first.pings).toBe(1)
    expect(first.destroyed).toBe(false)
    expect(await codeOf(book.vouch(peer(2), undefined))).toBe('ERR_CLONED_IDENTITY') // held, even with no link open
    expect(first.pings).toBe(1)
    expect(book.cloned(id)).toBe(1)
    expect(await book.vouch(peer(1), first)).toBe('same') // the first board is never held out
    expect(book.clones).toBe(1)
    clock.advance(5000)
    expect(book.cloned(id)).toBe(0)
    expect(await book.vouch(peer(2), undefined)).toBe('new')
  })

  it('a link whose pong is late but that carried anything during the probe is alive: the newcomer is the clone', async () => {
    const clock = new ManualClock()
    const book = new InstanceBook({ probeMs: 1000 }, clock)
    const busy = openLink(1, false)
    const verdict = codeOf(book.vouch(peer(2), busy))
    busy.counters.bytesIn += 120 // a frame of the first board, sealed with its session's keys
    clock.advance(1000)
    expect(await verdict).toBe('ERR_CLONED_IDENTITY')
    expect(busy.destroyed).toBe(false)
  })

  it('is bounded: keys and refused instances per key', async () => {
    const clock = new ManualClock()
    const book = new InstanceBook({ maxDevices: 2, history: 2 }, clock)
    const first = openLink(1, true)
    for (let n = 2; n < 6; n++) expect(await codeOf(book.vouch(peer(n), first))).toBe('ERR_CLONED_IDENTITY')
    expect(book.cloned(id)).toBe(2)
    for (const n of [90, 91]) await book.vouch({ id: seededKeys(n).id, publicKey: seededKeys(n).publicKey, instance: inst(1) }, undefined)
    expect(book.cloned(id)).toBe(0) // pushed out by two newer keys
  })
})

describeNet('cloned identities over TCP', () => {
  async function node (keys: KeyPair, init: Partial<MeshNodeInit> = {}): Promise<MeshNode> {
    const n = new MeshNode({ mdns: false, host: '127.0.0.1', announceLinks: 0, rotateInterval: 0, backoff: { initial: 50, max: 200 }, ...init }, { keys })
    onTestFinished(async () => { await n.stop() })
    await n.start()
    return n
  }

  it('two live devices with one key: the hub keeps the first, refuses the second (told why) and reports it; a restart is not a clone', async () => {
    const hub = await node(seededKeys(90))
    const at = `127.0.0.1:${hub.address?.port ?? 0}`
    const drops: DropInfo[] = []
    hub.on('drop', (d) => { drops.push(d) })
    const clones: CloneInfo[] = []
    hub.on('clone', (c) => { clones.push(c) })
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

    // One SD-card image on two Pis: both run at once. The first links, then the second asks.
    const image = seededKeys(93)
    const firstPi = await node(image, { peers: [at] })
    await until(() => hub.links.has(image.id) && firstPi.links.has(hub.id), 'the first Pi linked')
    const firstLink = hub.links.get(image.id)
    const told: string[] = []
    const secondPi = new MeshNode({ mdns: false, host: '127.0.0.1', announceLinks: 0, rotateInterval: 0, backoff: { initial: 50, max: 200 }, peers: [at] }, { keys: image })
    secondPi.on('link:refused', ({ code }) => { told.push(code) })
    onTestFinished(async () => { await secondPi.stop() })
    await secondPi.start()
    await until(() => drops.some((d) => d.code === 'ERR_CLONED_IDENTITY' && d.origin === image.id), 'the hub finds the clone', 10_000)
    await until(() => told.includes('ERR_CLONED_IDENTITY'), 'the second Pi told why', 10_000)
    expect(hub.instances.clones).toBe(1)
    expect(clones).toMatchObject([{ origin: image.id, code: 'ERR_CLONED_IDENTITY', self: false }])
    expect(hub.instances.cloned(image.id)).toBe(1)
    expect(hub.peers().find((p) => p.id === image.id)?.clones).toBe(1) // what the gateway's /api/peers shows
    expect(hub.peers().find((p) => p.id === publisher.id)?.clones).toBeUndefined()
    expect(hub.links.get(image.id)).toBe(firstLink) // the first Pi keeps its link
    expect(firstPi.links.has(hub.id) && !secondPi.links.has(hub.id)).toBe(true)

    const before = readings.length
    publisher.publish('telemetry', [{ n: 'temp', v: 20 }])
    publisher.publish('telemetry', [{ n: 'temp', v: 21 }])
    await until(() => readings.length >= before + 2, 'the honest publisher\'s readings at the hub', 5000)
    expect(hub.links.has(second.id) && hub.links.has(publisher.id)).toBe(true)
  })

  it('a power cut (the old link still looks open: no FIN) then a restart is not a clone: the silent link is replaced', async () => {
    const hub = await node(seededKeys(94))
    const proxy = await startProxy({ host: '127.0.0.1', port: hub.address?.port ?? 0 })
    onTestFinished(async () => { await proxy.close() })
    const drops: DropInfo[] = []
    hub.on('drop', (d) => { drops.push(d) })
    const keys = seededKeys(95)
    const before = await node(keys, { peers: [`${proxy.address.host}:${proxy.address.port}`] })
    await until(() => hub.links.has(keys.id), 'the device linked through the proxy')
    const old = hub.links.get(keys.id)
    proxy.pause('both') // the board loses power: nothing more comes from it, and no FIN
    const after = await node(keys, { peers: [`127.0.0.1:${hub.address?.port ?? 0}`] })
    await until(() => after.links.has(hub.id) && hub.links.get(keys.id) !== old, 'the restarted device linked', 10_000)
    expect(old?.open).toBe(false)
    expect(hub.instances.restarts).toBe(1)
    expect(drops.filter((d) => d.code === 'ERR_CLONED_IDENTITY')).toEqual([])
    await proxy.close()
    await before.stop()
  })
})
