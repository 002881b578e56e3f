import { PassThrough } from 'node:stream'
import { expect, it, onTestFinished } from 'vitest'
import { MeshNode } from '../../mesh/index.js'
import { generateKeyPair } from '../../shared/index.js'
import { run } from '../../bin/main.js'
import { describeNet } from '../helpers/netns.js'

function capture (): { stream: PassThrough, text: () => string } {
  const stream = new PassThrough()
  let text = ''
  stream.on('data', (chunk: Buffer) => { text += chunk.toString() })
  return { stream, text: () => text }
}

async function device (name: string): Promise<MeshNode> {
  const node = new MeshNode({ name, host: '127.0.0.1', announceLinks: 0 }, { keys: generateKeyPair() })
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
