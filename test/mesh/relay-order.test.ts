import { expect, it, onTestFinished } from 'vitest'
import { generateKeyPair, type KeyPair } from '../../shared/index.js'
import { MeshNode, type Delivery } from '../../mesh/index.js'
import { sharedTurn } from '../../mesh/links/turn.js'
import { describeNet } from '../helpers/netns.js'

/**
 * Issue 15: a relay's local subscriber takes a frame before the relay writes it on to the next hop.
 * A TCP link writes what was sent in one turn of the event loop at the end of that turn
 * (`setImmediate`), after the microtasks in which subscribers' for-await bodies run; it wrote at the
 * next tick before, ahead of them, and on a shared machine the next hop, woken by that write, took
 * the core from this node's own subscriber (paths bench: one hop p50 2.53 -> 1.95 ms at load 8-10).
 */

const keysOf = (seed: number): KeyPair => generateKeyPair(Uint8Array.from({ length: 32 }, (_, i) => (i * 11 + seed * 29) & 0xff))

async function tcpNode (name: string, seed: number, peers: string[]): Promise<MeshNode> {
  // No DIGEST while the test looks at the bytes written (a sync tick would add some).
  const node = new MeshNode({ name, host: '127.0.0.1', port: 0, mdns: false, peers, dialTarget: 0, announceLinks: 0, routing: { syncInterval: 600_000 } }, { keys: keysOf(seed) })
  onTestFinished(async () => { await node.stop() })
  await node.start()
  return node
}

const addr = (node: MeshNode): string => `${node.address?.host}:${node.address?.port}`

describeNet('a relay over TCP', () => {
  it('hands a frame to its own subscriber before it writes the frame on to the next hop', async () => {
    const a = await tcpNode('a', 1, [])
    const b = await tcpNode('b', 2, [addr(a)])
    const c = await tcpNode('c', 3, [addr(b)])
    const atB: Array<{ seq: number, writtenToC: number }> = []
    const atC: number[] = []
    const subB = b.subscribe('iotmesh/#', { buffer: 1000 })
    const subC = c.subscribe('iotmesh/#', { buffer: 1000 })
    onTestFinished(() => { subB.close(); subC.close() })
    const toC = (): number => b.links.get(c.id)?.counters.bytesOut ?? -1
    void (async () => { for await (const d of subB) atB.push({ seq: d.seq, writtenToC: toC() }) })()
    const gotC = (async () => { for await (const d of subC as AsyncIterable<Delivery>) { atC.push(d.seq); if (atC.length === 1) return } })()
    // Routes form (c's interest reaches a through b); until then a's readings go nowhere.
    while (!a.interest().some((r) => r.subscriber === c.id)) await new Promise((resolve) => setTimeout(resolve, 20))
    await new Promise((resolve) => setTimeout(resolve, 100)) // the link traffic of joining settles
    const before = toC()
    const { seq } = a.publish('telemetry', [{ n: 'temp', v: 21 }])
    await gotC
    expect(atC).toEqual([seq])
    expect(atB.map((x) => x.seq)).toEqual([seq])
    expect(toC()).toBeGreaterThan(before) // b relayed it to c…
    expect(atB[0]?.writtenToC).toBe(before) // …after its own subscriber had it (before: written at the next tick, ahead of it)
  })

  it('writes what is sent from the links\' end-of-turn delivery at the next tick, not at the end of the next turn', async () => {
    const a = await tcpNode('a', 4, [])
    const b = await tcpNode('b', 5, [addr(a)])
    while (a.links.get(b.id) === undefined) await new Promise((resolve) => setTimeout(resolve, 20))
    await new Promise((resolve) => setTimeout(resolve, 100))
    const link = a.links.get(b.id)
    if (link === undefined) throw new Error('no link')
    const before = link.counters.bytesOut
    // Sent where a link delivers what waited for a later turn (turn.ts): a setImmediate from there runs a turn later.
    const afterSend = await new Promise<number>((resolve) => {
      sharedTurn.later(() => {
        link.send(Uint8Array.of(0x83, 0x07, 0x00)) // any bytes: b drops what it cannot decode
        process.nextTick(() => { resolve(link.counters.bytesOut) })
      })
    })
    expect(afterSend).toBeGreaterThan(before)
  })
})
