import { expect, it, onTestFinished } from 'vitest'
import { defaultEd25519, toHex, type Ed25519, type KeyPair } from '../../shared/index.js'
import { MeshNode } from '../../mesh/index.js'
import { createMemoryNetwork, type MemoryNetwork } from '../../mesh/testing.js'
import type { DropEvent, Reading } from '../../gateway/index.js'
import { describeNet } from '../helpers/netns.js'
import {
  MESH_LINK, MESH_ROUTING, barrier, connectDevice, linked, makeFrame, meshAddress, mqttUrl, nextDelivery, nextEvent, seededKeys, startMeshGateway
} from './support.js'

/**
 * Verify once per process (issue 15, shared/verified.ts): the gateway's ingest takes a frame its own
 * mesh node verified, and its node a broker reading its ingest verified, without a second signature
 * check; bytes from a link or a socket are always checked. The backends count the checks of each
 * frame by its signature (the last 64 bytes of a COSE_Sign1 frame).
 */

interface Counted { ed: Ed25519, checks: (frame: Uint8Array) => number }

function countingEd25519 (): Counted {
  const bySignature = new Map<string, number>()
  const ed: Ed25519 = {
    ...defaultEd25519,
    verify: (signature, message, key) => {
      const k = toHex(signature)
      bySignature.set(k, (bySignature.get(k) ?? 0) + 1)
      return defaultEd25519.verify(signature, message, key)
    }
  }
  return { ed, checks: (frame) => bySignature.get(toHex(frame.subarray(frame.length - 64))) ?? 0 }
}

async function startNode (net: MemoryNetwork, name: string, keys: KeyPair, peers: string[], ed25519?: Ed25519): Promise<MeshNode> {
  const node = new MeshNode({ name, host: name, mdns: false, peers, dialTarget: 0, announceLinks: 0, link: MESH_LINK, routing: MESH_ROUTING }, {
    keys, transport: net.createTransport(MESH_LINK, { keys }), ...(ed25519 === undefined ? {} : { ed25519 })
  })
  onTestFinished(async () => { await node.stop() })
  await node.start()
  return node
}

describeNet('verify once per process', () => {
  it('a mesh reading: the gateway\'s node checks its signature, its ingest takes the node\'s check; the relay before it checks its own copy', async () => {
    const net = createMemoryNetwork({ seed: 41 })
    const gwEd = countingEd25519()
    const relayEd = countingEd25519()
    const gateway = await startMeshGateway(net, {}, { ed25519: gwEd.ed })
    const a = await startNode(net, 'a', seededKeys(401), [meshAddress(gateway.mesh)], relayEd.ed)
    const b = await startNode(net, 'b', seededKeys(402), [meshAddress(a)])
    await linked(a, gateway.mesh?.id ?? '', b.id)
    await linked(gateway.mesh!, a.id)
    await barrier([a, gateway.mesh], [b, a])
    const checked0 = gateway.ingest.verifier.checked
    const vouched0 = gateway.ingest.verifier.vouched

    const frames: Uint8Array[] = []
    for (let i = 0; i < 5; i++) {
      const accepted = nextEvent<Reading>(gateway, 'reading', (r) => r.origin === b.id)
      const { frame } = b.publish('telemetry', [{ n: 'temp', u: 'Cel', v: 20 + i }])
      frames.push(frame)
      expect((await accepted).path).toBe('mesh')
    }
    for (const frame of frames) {
      expect(gwEd.checks(frame)).toBe(1) // the gateway's mesh node; ingest did not check it again (before: 2)
      expect(relayEd.checks(frame)).toBe(1) // a relay in the same process checks what its link brought: no mark crosses a link
    }
    expect(gateway.ingest.verifier.checked - checked0).toBe(0)
    expect(gateway.ingest.verifier.vouched - vouched0).toBe(5)
    expect(gateway.counters).toMatchObject({ acceptedByPath: { mesh: 5 } })
  })

  it('a broker reading: ingest checks it, the gateway\'s node injects it on that check; a forged one from the broker is still refused', async () => {
    const net = createMemoryNetwork({ seed: 42 })
    const gwEd = countingEd25519()
    const gateway = await startMeshGateway(net, {}, { ed25519: gwEd.ed })
    const a = await startNode(net, 'a', seededKeys(411), [meshAddress(gateway.mesh)])
    await linked(a, gateway.mesh?.id ?? '')
    await linked(gateway.mesh!, a.id)
    await barrier([gateway.mesh, a])
    const dev = seededKeys(410)
    const device = await connectDevice(mqttUrl(gateway), dev)

    const frame = makeFrame(dev, 1)
    const atA = nextDelivery(a, (d) => d.origin === dev.id)
    await device.publishFrame(1, frame)
    expect(toHex((await atA).frame)).toBe(toHex(frame))
    expect(gateway.bridge?.counters.injected).toBe(1)
    expect(gwEd.checks(frame)).toBe(1) // ingest; the node took ingest's check (before: 2)
    expect(gateway.mesh?.counters.rejected).toEqual({})

    const forged = makeFrame(dev, 2)
    forged[forged.length - 5] = (forged[forged.length - 5] as number) ^ 1
    const refused = nextEvent<DropEvent>(gateway, 'drop', (d) => d.reason === 'bad_signature')
    await device.publishFrame(2, forged)
    expect(await refused).toMatchObject({ deviceId: dev.id, path: 'broker', code: 'ERR_BAD_SIGNATURE' })
    expect(gwEd.checks(forged)).toBe(1)
    expect(gateway.bridge?.counters.injected).toBe(1)
  })
})
