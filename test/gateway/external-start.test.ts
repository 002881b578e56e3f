import { createServer, type Socket } from 'node:net'
import { expect, it, onTestFinished } from 'vitest'
import { createGateway } from '../../gateway/index.js'
import { exposeGc } from '../helpers/gc.js'
import { describeNet } from '../helpers/netns.js'

/**
 * An external broker that never answers: the gateway's start gives up after `startTimeoutMs`
 * (ERR_BAD_ARGUMENT naming the URL) even when garbage collections run meanwhile. With
 * AbortSignal.any([AbortSignal.timeout(ms)]) the timeout signal was collected and the start
 * waited for ever (nodejs/node#57736): `iotmesh gateway --broker URL` hung silently.
 */

describeNet('gateway --broker: a broker that never answers', () => {
  it('the start fails after startTimeoutMs with ERR_BAD_ARGUMENT, garbage collections or not', async () => {
    // A TCP port that accepts and never answers CONNECT: no CONNACK, no error, the client waits.
    const sockets = new Set<Socket>()
    const silent = createServer((socket) => { sockets.add(socket) })
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    onTestFinished(async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise((resolve) => silent.close(resolve))
    })
    const port = (silent.address() as { port: number }).port
    const gc = exposeGc()
    const collector = setInterval(gc, 20)
    onTestFinished(() => { clearInterval(collector) })
    const started = Date.now()
    const failure = await createGateway({ broker: { url: `mqtt://127.0.0.1:${port}`, startTimeoutMs: 400 }, mesh: false }).then(
      async (gateway) => { await gateway.stop(); return undefined },
      (err: unknown) => err)
    expect(failure).toMatchObject({ code: 'ERR_BAD_ARGUMENT', message: expect.stringContaining(`mqtt://127.0.0.1:${port}`) })
    expect(Date.now() - started).toBeLessThan(5000)
  }, 15_000)

  it('a broker host that does not resolve: the refusal says so (the resolver\'s code), not only "no answer"', async () => {
    const failure = await createGateway({ broker: { url: 'mqtt://no-such-host.invalid:1883', startTimeoutMs: 1500 }, mesh: false }).then(
      async (gateway) => { await gateway.stop(); return undefined },
      (err: unknown) => err)
    expect(failure).toMatchObject({ code: 'ERR_BAD_ARGUMENT', message: expect.stringMatching(/\((EAI_AGAIN|ENOTFOUND|EAI_NONAME): .*no-such-host\.invalid/) })
  }, 15_000)
})
