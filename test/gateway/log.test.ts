import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import { describe, expect, it, onTestFinished } from 'vitest'
import { parse } from '../../bin/cli.js'
import { gateway as command } from '../../bin/commands/gateway.js'
import { isMeshError } from '../../shared/index.js'
import { createGatewayLogger, logGateway, type DropEvent, type Reading } from '../../gateway/index.js'
import { describeNet } from '../helpers/netns.js'
import { tempDir } from '../shared/support.js'
import { connectClient, connectDevice, makeFrame, mqttUrl, nextEvent, seededKeys, startGateway } from './support.js'

/** The gateway's levelled, structured logs (gateway/log.ts, pino): what is logged, at which level, in JSON and in text, rate-limited. */

interface Line { level: number, time: number, msg: string, name: string, [field: string]: unknown }

/** A sink that collects what the logger writes, line by line. */
function sink (): { write: (text: string) => void, lines: () => string[], json: () => Line[] } {
  let text = ''
  return {
    write: (chunk) => { text += chunk },
    lines: () => text.split('\n').filter((l) => l !== ''),
    json: () => text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Line)
  }
}

async function until (what: string, check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

describeNet('gateway logs', () => {
  it('JSON lines: refusals (warn, with their code), devices online and offline (info), MQTT connections (debug); duplicates are not refusals', async () => {
    const gateway = await startGateway({ allowAnonymous: false, homeassistant: false })
    const out = sink()
    logGateway(gateway, createGatewayLogger({ level: 'debug', format: 'json' }, { stderr: out }))
    await expect(connectClient(mqttUrl(gateway))).rejects.toThrow() // anonymous: refused
    const keys = seededKeys(171)
    const device = await connectDevice(mqttUrl(gateway), keys, { authenticate: true })
    const accepted = nextEvent<Reading>(gateway, 'reading', (r) => r.origin === keys.id)
    await device.publishFrame(1)
    await accepted
    const duplicate = nextEvent<DropEvent>(gateway, 'drop', (d) => d.reason === 'duplicate')
    await device.publishFrame(1)
    await duplicate
    const malformed = nextEvent<DropEvent>(gateway, 'drop', (d) => d.reason === 'malformed')
    await device.publishFrame(2, Buffer.from('not a frame'))
    await malformed
    device.client.stream.destroy() // a lost connection: the last will says offline
    await until('the offline line', () => out.json().some((l) => l.state === 'offline'))

    const lines = out.json()
    for (const l of lines) {
      expect(l.name).toBe('iotmesh-gateway')
      expect(Math.abs(l.time - Date.now())).toBeLessThan(60_000) // epoch ms
    }
    const refusals = lines.filter((l) => l.level === 40)
    expect(refusals.map((l) => [l.reason, l.code])).toEqual([['anonymous', 'ERR_NOT_AUTHORIZED'], ['malformed', expect.stringMatching(/^ERR_/)]])
    expect(refusals[1]).toMatchObject({ deviceId: keys.id, path: 'broker' })
    expect(refusals[1]?.msg).toMatch(/^refused \(ERR_\w+, malformed\): /)
    expect(lines.filter((l) => l.level === 30).map((l) => [l.deviceId, l.state])).toEqual([[keys.id, 'online'], [keys.id, 'offline']])
    const connections = lines.filter((l) => l.level === 20)
    expect(connections.map((l) => l.msg)).toEqual(expect.arrayContaining([expect.stringMatching(/^MQTT client dev-\S+ connected$/), expect.stringMatching(/^MQTT client dev-\S+ disconnected$/)]))
    expect(lines.some((l) => l.reason === 'duplicate')).toBe(false)
  })

  it('info drops the debug lines; refusals over the per-second budget are counted in one line; text lines read well', async () => {
    const gateway = await startGateway({ homeassistant: false })
    const out = sink()
    let now = 1_767_225_600_000
    logGateway(gateway, createGatewayLogger({ level: 'info', format: 'text' }, { stderr: out }), { maxRefusalsPerSecond: 2, now: () => now })
    const keys = seededKeys(172)
    const device = await connectDevice(mqttUrl(gateway), keys)
    for (let seq = 1; seq <= 5; seq++) {
      const dropped = nextEvent<DropEvent>(gateway, 'drop', (d) => d.reason === 'malformed')
      await device.publishFrame(seq, makeFrame(keys, seq).subarray(0, 20))
      await dropped
    }
    now += 1000
    const last = nextEvent<DropEvent>(gateway, 'drop', (d) => d.reason === 'malformed')
    await device.publishFrame(6, Buffer.from('x'))
    await last
    const lines = out.lines()
    expect(lines.filter((l) => / DEBUG /.test(l))).toEqual([])
    expect(lines[0]).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z INFO device ${keys.id} online deviceId=${keys.id} state=online from=dev-\\S+$`))
    const warn = lines.filter((l) => / WARN /.test(l))
    expect(warn).toHaveLength(4) // 2 of the first second, the count of the 3 others, the next second's first
    expect(warn[0]).toMatch(/ WARN refused \(ERR_\w+, malformed\): .* reason=malformed code=ERR_\w+ /)
    expect(warn[0]).toContain(` deviceId=${keys.id}`)
    expect(warn[0]).toContain(' path=broker')
    expect(warn[2]).toMatch(/ WARN … 3 more refusals in that second \(counted in \/metrics, iotmesh_gateway_dropped_total\) skipped=3$/)
  })

  it('iotmesh gateway --log-file FILE --log-level debug: JSON lines appended to the file', async () => {
    const dir = await tempDir()
    const file = join(dir, 'logs', 'gateway.log')
    const controller = new AbortController()
    const stdout = new PassThrough()
    const stderr = sink()
    let text = ''
    const banner = new Promise<void>((resolve) => { stdout.on('data', (c: Buffer) => { text += c.toString(); if (text.includes('Press Ctrl-C')) resolve() }) })
    const io = { stdout, stderr: { write: (t: string) => { stderr.write(t); return true } } as unknown as NodeJS.WritableStream, stdin: Readable.from([]), env: {}, signal: controller.signal }
    const argv = ['--mqtt-port', '0', '--ws-port', 'off', '--http-port', '0', '--host', '127.0.0.1', '--no-mesh', '--memory', '--log-file', file, '--log-level', 'debug']
    const running = command.run(parse(command, argv), io as never)
    onTestFinished(async () => { controller.abort(); await running.catch(() => 1) })
    await banner
    const port = /^mqtt {7}mqtt:\/\/127\.0\.0\.1:(\d+)$/m.exec(text)?.[1] ?? '?'
    await expect(connectClient(`mqtt://127.0.0.1:${port}`)).rejects.toThrow()
    const read = async (): Promise<Line[]> => (await readFile(file, 'utf8').catch(() => '')).split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Line)
    const deadline = Date.now() + 5000
    while (!(await read()).some((l) => l.reason === 'anonymous') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
    expect(await read()).toEqual(expect.arrayContaining([expect.objectContaining({ level: 40, reason: 'anonymous', code: 'ERR_NOT_AUTHORIZED' })]))
    expect(stderr.lines()).toEqual([]) // nothing on stderr: the logs went to the file
    controller.abort()
    expect(await running).toBe(0)
  })
})

describe('iotmesh gateway: log flags', () => {
  it.each([
    [['--log-level', 'loud'], /--log-level must be one of fatal, error, warn, info, debug, trace, silent, got "loud"/],
    [['--log-format', 'xml'], /--log-format must be json or text/],
    [['--log-file', '/etc/hostname/logs/gateway.log'], /--log-file: cannot write the log file \/etc\/hostname\/logs\/gateway.log \(ENOTDIR\)/] // a file where a folder should be
  ])('%j is a usage error', async (argv, message) => {
    const io = { stdout: new PassThrough(), stderr: new PassThrough(), stdin: Readable.from([]), env: {}, signal: AbortSignal.abort() }
    const error = await command.run(parse(command, [...argv, '--memory']), io).catch((err: unknown) => err)
    expect(isMeshError(error) && error.code === 'ERR_BAD_ARGUMENT').toBe(true)
    expect((error as Error).message).toMatch(message)
  })
})
