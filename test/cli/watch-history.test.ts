import { PassThrough } from 'node:stream'
import { expect, it, onTestFinished } from 'vitest'
import { run } from '../../bin/main.js'
import { MeshNode } from '../../mesh/index.js'
import { generateKeyPair } from '../../shared/index.js'
import { describeNet } from '../helpers/netns.js'

/**
 * Issue 16: `iotmesh watch` shows live readings by default. A new listener's node catches up on
 * what its neighbours hold (DIGEST, WANT): those readings, sampled before the watch began, are
 * history, shown only with --history and marked as such.
 */

function capture (): { stream: PassThrough, lines: () => Array<Record<string, unknown>> } {
  const stream = new PassThrough()
  let text = ''
  stream.on('data', (chunk: Buffer) => { text += chunk.toString() })
  return { stream, lines: () => text.trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>) }
}

async function until (what: string, check: () => boolean, signal: AbortSignal): Promise<void> {
  while (!check()) {
    if (signal.aborted) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

describeNet('iotmesh watch: live readings, history only with --history', () => {
  it('the readings a device held before the watch began are skipped by default, and shown marked "history" with --history', async () => {
    const signal = AbortSignal.timeout(30_000)
    const device = new MeshNode({ name: 'sensor-h', host: '127.0.0.1', mdns: false, announceLinks: 0 }, { keys: generateKeyPair() })
    onTestFinished(async () => { await device.stop() })
    await device.start()
    const port = device.address?.port as number
    for (let v = 0; v < 5; v++) device.publish('telemetry', [{ n: 'temp', u: 'Cel', v }])

    const watch = async (extra: string[], count: number, live: number[]): Promise<Array<Record<string, unknown>>> => {
      const out = capture()
      const watching = run(['watch', '#', '--json', '--no-mdns', '--peers', `127.0.0.1:${port}`, '--count', String(count), ...extra], { stdout: out.stream, stderr: new PassThrough(), signal })
      await until('the watcher\'s interest at the device', () => device.interest().some((r) => r.subscriber !== device.id && r.via !== undefined), signal)
      await new Promise((resolve) => setTimeout(resolve, 1000)) // the catch-up (DIGEST, WANT) has run
      for (const v of live) device.publish('telemetry', [{ n: 'temp', u: 'Cel', v }])
      expect(await watching).toBe(0)
      return out.lines()
    }
    const liveOnly = await watch([], 2, [100, 101])
    expect(liveOnly.map((l) => l.value)).toEqual([100, 101])
    expect(liveOnly.some((l) => l.history === true)).toBe(false)

    const all = await watch(['--history'], 9, [200, 201])
    expect(all.filter((l) => l.history === true).map((l) => l.value).sort((a, b) => Number(a) - Number(b))).toEqual([0, 1, 2, 3, 4, 100, 101])
    expect(all.filter((l) => l.history !== true).map((l) => l.value)).toEqual([200, 201])
  })
})
