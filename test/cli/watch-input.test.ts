import { PassThrough } from 'node:stream'
import { expect, it, onTestFinished } from 'vitest'
import { run } from '../../bin/main.js'
import { MeshNode, createTcpTransport, encodeData, type DropInfo } from '../../mesh/index.js'
import {
  ALG_ED25519, HEADER_ALG, HEADER_KID, deviceIdToBytes, encodeCbor, generateKeyPair, signSign1
} from '../../shared/index.js'
import { describeNet } from '../helpers/netns.js'

/**
 * Issue 10: one validly signed frame whose SenML name is "a b" (RFC 8428 §4.5.1) was accepted,
 * relayed, and made every `iotmesh watch` exit. Now it is refused, and counted, by the first node
 * it reaches; `watch` on the other side keeps running and prints the next good reading.
 */

function capture (): { stream: PassThrough, text: () => string } {
  const stream = new PassThrough()
  let text = ''
  stream.on('data', (chunk: Buffer) => { text += chunk.toString() })
  return { stream, text: () => text }
}

async function until (what: string, check: () => boolean, signal: AbortSignal): Promise<void> {
  while (!check()) {
    if (signal.aborted) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

describeNet('iotmesh watch against a hostile frame (loopback, private namespace)', () => {
  it('a validly signed frame named "a b": refused and counted at the first node; watch keeps running and prints the next good reading', async () => {
    const signal = AbortSignal.timeout(20_000)
    const device = new MeshNode({ name: 'sensor-a', host: '127.0.0.1', mdns: false, announceLinks: 0 }, { keys: generateKeyPair() })
    onTestFinished(async () => { await device.stop() })
    await device.start()
    const port = device.address?.port as number
    const drops: DropInfo[] = []
    device.on('drop', (info) => { drops.push(info) })

    // The listener: `iotmesh watch`, linked to the device only, printing JSON lines.
    const out = capture()
    const err = capture()
    const watching = run(['watch', '#', '--json', '--no-mdns', '--peers', `127.0.0.1:${port}`, '--count', '1'], { stdout: out.stream, stderr: err.stream, signal })
    // Its subscription has reached the device (INTEREST): readings are routed to it from now on.
    await until('the watcher\'s interest at the device', () => device.interest().some((r) => r.subscriber !== device.id && r.via !== undefined), signal)

    // The attacker: its own valid key, a real authenticated link, one validly signed frame.
    const attackerKeys = generateKeyPair()
    const attacker = createTcpTransport({}, { keys: attackerKeys })
    onTestFinished(async () => { await attacker.close() })
    const link = await attacker.dial({ host: '127.0.0.1', port }, { expectedId: device.id })
    const payload = encodeCbor([new Map<number | string, unknown>([[-3, Date.now() / 1000], ['seq', 1], [0, 'a b'], [2, 1]])])
    const bad = signSign1({
      protectedHeader: new Map<number, unknown>([[HEADER_ALG, ALG_ED25519], [HEADER_KID, deviceIdToBytes(attackerKeys.id)]]),
      payload,
      secretKey: attackerKeys.secretKey
    })
    const fate = Promise.race([
      device.next('drop', { signal }).then(() => 'refused'),
      device.next('delivery', { signal }).then(() => 'delivered')
    ])
    link.send(encodeData(1, bad))
    expect(await fate).toBe('refused')

    // The next good reading reaches the watcher, which prints it and exits on --count 1.
    const timer = setInterval(() => { device.publish('telemetry', [{ n: 'temp', u: 'Cel', v: 21.5 }]) }, 50)
    onTestFinished(() => { clearInterval(timer) })
    expect(await watching).toBe(0)
    const lines = out.text().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(lines[0]).toMatchObject({ device: device.id, sensor: 'temp', value: 21.5 })
    expect(lines.some((l) => l.device === attackerKeys.id)).toBe(false)
    expect(err.text()).not.toContain('skipped') // nothing reached the watcher that it could not read

    expect(drops).toEqual([{ code: 'ERR_BAD_SENML', from: attackerKeys.id }]) // refused at decode, before its origin is read
    expect(device.counters.rejected.ERR_BAD_SENML).toBe(1)
    expect(device.counters.relayed).toBe(0)
  })
})
