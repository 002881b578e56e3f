import { PassThrough } from 'node:stream'
import { expect, it, onTestFinished } from 'vitest'
import { MeshNode } from '../../mesh/index.js'
import { createGateway } from '../../gateway/index.js'
import { generateKeyPair, type KeyPair } from '../../shared/index.js'
import { run } from '../../bin/main.js'
import { describeNet } from '../helpers/netns.js'

function capture (): { stream: PassThrough, text: () => string } {
  const stream = new PassThrough()
  let text = ''
  stream.on('data', (chunk: Buffer) => { text += chunk.toString() })
  return { stream, text: () => text }
}

async function device (name: string, keys: KeyPair = generateKeyPair()): Promise<MeshNode> {
  const node = new MeshNode({ name, host: '127.0.0.1', announceLinks: 0 }, { keys })
  onTestFinished(async () => { await node.stop() })
  await node.start()
  return node
}

describeNet('iotmesh peers and watch (mDNS on loopback, private namespace)', () => {
  it('peers lists each device with its id, port and a matching key', async () => {
    const a = await device('kitchen')
    const b = await device('garage')
    const out = capture()
    const code = await run(['peers', '--json', '--timeout', '2'], { stdout: out.stream, stderr: capture().stream })
    expect(code).toBe(0)
    const rows = JSON.parse(out.text()) as Array<{ name: string, id: string, port: number, keyMatches: boolean, valid: boolean }>
    for (const node of [a, b]) {
      const row = rows.find((r) => r.id === node.id)
      expect(row).toMatchObject({ name: node.name, port: node.address?.port, keyMatches: true, valid: true })
    }
  })

  it('peers marks one key announced by two devices as a cloned identity (ERR_CLONED_IDENTITY)', async () => {
    const image = generateKeyPair()
    await device('twin-a', image)
    await device('twin-b', image)
    const honest = await device('honest')
    const out = capture()
    const err = capture()
    expect(await run(['peers', '--json', '--timeout', '2'], { stdout: out.stream, stderr: capture().stream })).toBe(0)
    const rows = JSON.parse(out.text()) as Array<{ name: string, id: string, clone?: string }>
    expect(rows.filter((r) => r.id === image.id).map((r) => [r.name, r.clone])).toEqual([['twin-a', 'ERR_CLONED_IDENTITY'], ['twin-b', 'ERR_CLONED_IDENTITY']])
    expect(rows.find((r) => r.id === honest.id)?.clone).toBeUndefined()
    const table = capture()
    expect(await run(['peers', '--timeout', '2'], { stdout: table.stream, stderr: err.stream })).toBe(0)
    expect(table.text().split('\n').filter((l) => l.includes(image.id)).map((l) => l.trim().split(/\s+/).at(-1))).toEqual(['CLONE', 'CLONE'])
    expect(err.text()).toContain(`ERR_CLONED_IDENTITY: ${image.id}`)
  })

  it('peers --gateway adds the gateway\'s score of each neighbour', async () => {
    const gateway = await createGateway({ host: '127.0.0.1', port: 0, wsPort: 0, http: { host: '127.0.0.1', port: 0 }, mesh: { host: '127.0.0.1', announceLinks: 0 } })
    onTestFinished(async () => { await gateway.stop() })
    const node = await device('neighbour')
    node.addPeer(`127.0.0.1:${gateway.ports.mesh ?? 0}`)
    while (!gateway.mesh?.links.has(node.id)) await gateway.mesh?.next('link:open', { signal: AbortSignal.timeout(5000) })
    const out = capture()
    expect(await run(['peers', '--json', '--timeout', '2', '--gateway', `http://127.0.0.1:${gateway.ports.http ?? 0}`], { stdout: out.stream, stderr: capture().stream })).toBe(0)
    const rows = JSON.parse(out.text()) as Array<{ id: string, gateway?: { score?: number } }>
    expect(rows.find((r) => r.id === node.id)?.gateway?.score).toBeTypeOf('number')
    const table = capture()
    expect(await run(['peers', '--timeout', '2', '--gateway', `http://127.0.0.1:${gateway.ports.http ?? 0}`], { stdout: table.stream, stderr: capture().stream })).toBe(0)
    expect(table.text().split('\n')[0]).toMatch(/KEY\s+SCORE$/)
    const err = capture()
    expect(await run(['peers', '--gateway', 'gw:8080'], { stdout: capture().stream, stderr: err.stream })).toBe(2)
    expect(err.text()).toContain('ERR_BAD_ARGUMENT')
  })

  it('watch joins the mesh and prints verified readings with hops and latency', async () => {
    const a = await device('sensor-a')
    const timer = setInterval(() => a.publish('telemetry', [{ n: 'temp', u: 'Cel', v: 21.5 }, { n: 'hum', u: '%RH', v: 40 }]), 50)
    onTestFinished(() => clearInterval(timer))
    const out = capture()
    const code = await run(['watch', 'iotmesh/default/+/telemetry', '--json', '--count', '2'], { stdout: out.stream, stderr: capture().stream, signal: AbortSignal.timeout(15_000) })
    expect(code).toBe(0)
    const lines = out.text().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(lines.length).toBeGreaterThanOrEqual(4) // 2 readings x 2 records
    expect(lines[0]).toMatchObject({ device: a.id, name: 'sensor-a', sensor: 'temp', value: 21.5, unit: 'Cel', hops: 1 })
    expect(lines[1]).toMatchObject({ sensor: 'hum', unit: '%RH' })
    expect(typeof lines[0]?.latencyMs).toBe('number')
  })

  it('watch refuses a malformed filter with ERR_BAD_TOPIC', async () => {
    const err = capture()
    expect(await run(['watch', 'a/#/b'], { stdout: capture().stream, stderr: err.stream })).toBe(1)
    expect(err.text()).toContain('ERR_BAD_TOPIC')
  })
})
