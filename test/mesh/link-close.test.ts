import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { expect, it, onTestFinished } from 'vitest'
import { createTcpTransport, type Link, type Transport, type TcpTransportInit } from '../../mesh/links/index.js'
import { testKeys } from '../helpers/keys.js'
import { assertFreshBuild } from '../helpers/mesh-proc.js'
import { describeNet } from '../helpers/netns.js'

/**
 * Issue 15, `npm run bench` must finish: the traffic section exited 13 while its 50 nodes stopped.
 * A link whose socket flow control had paused (the receive budget, the event loop's turn, a full
 * inbox) never read the peer's FIN once it closed, so its `close` waited for closeTimeout; with the
 * listener already closed by the stop's abort and every mesh timer unref'd, the event loop emptied
 * under the pending stop.
 */

async function tcp (seed: number, init: TcpTransportInit = {}): Promise<Transport> {
  const transport = createTcpTransport({ closeTimeout: 60_000, keepaliveInterval: 0, ...init }, { keys: testKeys(seed) })
  onTestFinished(async () => { await transport.close() })
  await transport.listen({ host: '127.0.0.1', port: 0 })
  return transport
}

const fixture = (name: string): string => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url))

describeNet('closing a link that flow control has paused', () => {
  it('completes at once when both ends close, not after closeTimeout (60 s here)', async () => {
    const a = await tcp(81)
    const b = await tcp(82, { receiveBudget: { messagesPerSecond: 5, burstSeconds: 1 } })
    const arrived = b.next('link')
    const ours = await a.dial(b.address!, { expectedId: b.localId })
    const [theirs] = await arrived as [Link]
    let received = 0
    theirs.on('message', () => { received++ })
    for (let i = 0; i < 200; i++) ours.send(new Uint8Array(16).fill(7))
    await expect.poll(() => theirs.flow.throttled, { timeout: 5_000 }).toBeGreaterThan(0) // b stopped reading its socket
    const t0 = performance.now()
    await Promise.all([ours.close(), theirs.close()])
    expect(performance.now() - t0).toBeLessThan(5_000)
    expect(received).toBeLessThan(200) // it was held back: the close came with messages still unread
    expect(theirs.closeInfo?.reason).toBe('local')
  }, 15_000)

  it('a process whose only work left is that close exits 0, not 13 (the bench symptom)', async () => {
    assertFreshBuild()
    const child = spawn(process.execPath, [fixture('paused-close.mjs')], { stdio: ['ignore', 'pipe', 'pipe'] })
    onTestFinished(() => { child.kill() })
    let out = ''
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
    child.stderr.on('data', (chunk: Buffer) => { out += chunk.toString() })
    const code = await new Promise<number | null>((resolve) => { child.once('exit', (c) => { resolve(c) }) })
    expect({ code, out }).toMatchObject({ code: 0 })
    const line = JSON.parse(out.trim().split('\n').at(-1) as string) as { closedMs: number, throttled: number }
    expect(line.throttled).toBeGreaterThan(0)
    expect(line.closedMs).toBeLessThan(5_000)
  }, 20_000)
})
