import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import { describe, expect, it, onTestFinished } from 'vitest'
import { parse } from '../../bin/cli.js'
import { gateway as command } from '../../bin/commands/gateway.js'
import { isMeshError, jsonTopic } from '../../shared/index.js'
import { describeNet } from '../helpers/netns.js'
import { tempDir } from '../shared/support.js'
import { connectClient, connectDevice, findBinary, freePort, spawnServer, seededKeys } from './support.js'

/**
 * MQTT versions, honestly: the embedded Aedes broker speaks MQTT 3.1.1 only (the banner says so,
 * and an MQTT 5 client is refused with CONNACK 1); the external-broker mode speaks MQTT 5 to an
 * MQTT 5 broker with `--broker URL --mqtt-version 5` (checked against a real Mosquitto, whose log
 * names each client's protocol version).
 */

const MOSQUITTO = findBinary('/usr/sbin/mosquitto', '/usr/bin/mosquitto')
const inCi = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false'

/** `iotmesh gateway` in-process; resolves with its banner. */
async function runGateway (argv: string[]): Promise<{ banner: string, stop: () => Promise<number> }> {
  const controller = new AbortController()
  const stdout = new PassThrough()
  let text = ''
  const banner = new Promise<string>((resolve) => {
    stdout.on('data', (chunk: Buffer) => {
      text += chunk.toString()
      if (text.includes('Press Ctrl-C to stop.')) resolve(text)
    })
  })
  const io = { stdout, stderr: new PassThrough().resume(), stdin: Readable.from([]), env: {}, signal: controller.signal }
  const embedded = argv.includes('--broker') ? [] : ['--ws-port', 'off']
  const running = command.run(parse(command, [...embedded, '--http-port', '0', '--host', '127.0.0.1', '--no-mesh', '--memory', ...argv]), io)
  onTestFinished(async () => { controller.abort(); await running.catch(() => 1) })
  return { banner: await Promise.race([banner, running.then(() => { throw new Error(`the gateway ended:\n${text}`) })]), stop: async () => { controller.abort(); return await running } }
}

describe('--mqtt-version', () => {
  it.each([
    [['--mqtt-version', '5'], /--mqtt-version is for --broker: the embedded broker \(Aedes\) speaks MQTT 3\.1\.1 only/],
    [['--broker', 'mqtt://127.0.0.1:1', '--mqtt-version', '6'], /--mqtt-version must be 3\.1\.1 or 5, got "6"/]
  ])('%j is a usage error', async (argv, message) => {
    const error = await command.run(parse(command, argv), { stdout: new PassThrough(), stderr: new PassThrough(), stdin: Readable.from([]), env: {}, signal: AbortSignal.abort() }).catch((err: unknown) => err)
    expect(isMeshError(error) && error.code === 'ERR_BAD_ARGUMENT').toBe(true)
    expect((error as Error).message).toMatch(message)
  })
})

it('Mosquitto runs where CI runs (Debian package mosquitto)', () => {
  if (inCi) expect(MOSQUITTO).toBeDefined()
})

describeNet('MQTT versions', () => {
  it('the embedded broker: the banner says MQTT 3.1.1 only, and an MQTT 5 client is refused (CONNACK 1) while a 3.1.1 client connects', async () => {
    const gw = await runGateway(['--mqtt-port', '0', '--allow-anonymous'])
    expect(gw.banner).toMatch(/^protocol {3}MQTT 3\.1\.1 only \(embedded Aedes\): MQTT 5 clients are refused; for MQTT 5, run an MQTT 5 broker and use --broker URL --mqtt-version 5$/m)
    const url = `mqtt://127.0.0.1:${/^mqtt {7}mqtt:\/\/127\.0\.0\.1:(\d+)$/m.exec(gw.banner)?.[1] ?? '?'}`
    await expect(connectClient(url, { protocolVersion: 5 })).rejects.toThrow(/Unacceptable protocol version/)
    const ok = await connectClient(url, { protocolVersion: 4 })
    expect(ok.client.connected).toBe(true)
    expect(await gw.stop()).toBe(0)
  })

  it.skipIf(MOSQUITTO === undefined)('--broker URL --mqtt-version 5: the gateway joins Mosquitto with MQTT 5 and mirrors an MQTT 5 device', async () => {
    const dir = await tempDir()
    const port = await freePort()
    const config = join(dir, 'mosquitto.conf')
    // NETWORK.md: `user root` inside `unshare -r`; connection messages name each client's protocol (p4, p5).
    await writeFile(config, [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'user root', 'persistence false', 'log_dest stderr', 'log_type all', 'connection_messages true', ''].join('\n'))
    const mosquitto = await spawnServer(MOSQUITTO ?? 'mosquitto', ['-c', config], /mosquitto version [\d.]+ running/)
    let log = ''
    mosquitto.stderr?.on('data', (chunk: Buffer) => { log += chunk.toString() })
    mosquitto.stdout?.on('data', (chunk: Buffer) => { log += chunk.toString() })
    const url = `mqtt://127.0.0.1:${port}`

    const gw = await runGateway(['--broker', url, '--mqtt-version', '5'])
    expect(gw.banner).toMatch(new RegExp(`^broker {5}${url.replace(/[.]/g, '\\.')} \\(external, MQTT 5: `, 'm'))
    // Mosquitto logged the gateway's CONNECT as protocol version 5.
    const deadline = Date.now() + 5000
    while (!/as iotmesh-gw-[0-9a-f]+ \(p5,/.test(log) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
    expect(log).toMatch(/New client connected from 127\.0\.0\.1:\d+ as iotmesh-gw-[0-9a-f]+ \(p5,/)

    // An MQTT 5 device and an MQTT 5 reader: the gateway verifies the frame and mirrors it as JSON.
    const keys = seededKeys(161)
    const reader = await connectClient(url, { protocolVersion: 5 })
    await reader.client.subscribeAsync(jsonTopic('default', keys.id), { qos: 1 })
    const device = await connectDevice(url, keys, { mqtt: { protocolVersion: 5 } })
    await device.publishFrame(1)
    const json = await reader.next((topic) => topic === jsonTopic('default', keys.id), 10_000)
    expect(JSON.parse(json.payload.toString())).toEqual([expect.objectContaining({ bn: `${keys.id}:`, n: 'temp', u: 'Cel' })])
    expect(await gw.stop()).toBe(0)
  })
})
