import { expect, it, onTestFinished } from 'vitest'
import type { KeyPair } from '../../shared/index.js'
import { MeshNode } from '../../mesh/index.js'
import type { DropEvent } from '../../gateway/index.js'
import { describeNet } from '../helpers/netns.js'
import { until } from '../helpers/memory-mesh.js'
import { seededKeys, startGateway } from './support.js'

/** Two live devices with one key, linking to the gateway's mesh node, are reported at the gateway (cloned_identity, ERR_CLONED_IDENTITY). */
describeNet('cloned identities at the gateway', () => {
  it('counts and reports the clone; an honest device stays linked', async () => {
    const gateway = await startGateway({ mesh: { host: '127.0.0.1', mdns: false } })
    const drops: DropEvent[] = []
    gateway.on('drop', (d) => { drops.push(d) })
    const at = `127.0.0.1:${gateway.ports.mesh ?? 0}`
    const node = async (keys: KeyPair): Promise<MeshNode> => {
      const n = new MeshNode({ mdns: false, host: '127.0.0.1', announceLinks: 0, rotateInterval: 0, backoff: { initial: 50, max: 200 }, instance: true, peers: [at] }, { keys })
      onTestFinished(async () => { await n.stop() })
      await n.start()
      return n
    }
    const honest = await node(seededKeys(95))
    const image = seededKeys(96)
    await node(image)
    await node(image)
    await until(() => drops.some((d) => d.reason === 'cloned_identity' && d.deviceId === image.id), 'the gateway reports the clone', 10_000)
    expect(drops.find((d) => d.reason === 'cloned_identity')?.code).toBe('ERR_CLONED_IDENTITY')
    expect(gateway.mesh?.links.has(honest.id)).toBe(true)
  })
})
