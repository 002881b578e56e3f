import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { describe, expect, it, onTestFinished } from 'vitest'
import { parse as parseYaml } from 'yaml'
import { parse, type Io } from '../../bin/cli.js'
import { gateway as command } from '../../bin/commands/gateway.js'
import { GATEWAY_FLAGS, GATEWAY_SETTING_NAMES, loadGatewaySettings, resolveGatewaySettings, type GatewaySettingName } from '../../bin/gateway-config.js'
import { gatewayOptions } from '../../bin/gateway-options.js'
import { loadDeviceConfig } from '../../firmware-sim/index.js'
import { isMeshError, jsonTopic, topicFilters, type MeshError } from '../../shared/index.js'
import { envName, flagName, loadSettingsFile } from '../../shared/node.js'
import { watchOutput } from '../helpers/cli.js'
import { describeNet } from '../helpers/netns.js'
import { tempDir } from '../shared/support.js'
import { connectClient, connectDevice, findBinary, freePort, makeFrame, seededKeys, spawnServer } from './support.js'

/**
 * `iotmesh gateway` configured like a device (issue 16): one table of settings (bin/gateway-config.ts)
 * read from flags, IOTMESH_* variables and a JSON or YAML file, with the device's error quality;
 * the example file of gateway/deploy; `--json`; TLS, a fixed mesh port and static peers from the CLI.
 */

const root = fileURLToPath(new URL('../..', import.meta.url))
const EXAMPLE = join(root, 'gateway', 'deploy', 'gateway.example.yaml')
const FILE = '/etc/iotmesh/gateway.yaml'

function errorOf (fn: () => unknown): MeshError | undefined {
  try { fn() } catch (err) { if (isMeshError(err)) return err; throw err }
  return undefined
}

async function errorOfAsync (fn: () => Promise<unknown>): Promise<MeshError | undefined> {
  try { await fn() } catch (err) { if (isMeshError(err)) return err; throw err }
  return undefined
}

const file = (values: Record<string, unknown>, path = FILE): { path: string, values: Record<string, unknown> } => ({ path, values })

describe('gateway settings: flags > IOTMESH_* > file > defaults, as the device', () => {
  it('takes each setting from the first source that gives it, and says which', () => {
    const input = { flags: { 'http-port': '9000' }, env: { IOTMESH_HTTP_PORT: '9001', IOTMESH_FLEET: 'home' }, file: file({ httpPort: 9002, fleet: 'barn', mqttPort: 1999 }) }
    const { config, sources, labels } = resolveGatewaySettings(input)
    expect([config.httpPort, config.fleet, config.mqttPort, config.wsPort]).toEqual([9000, 'home', 1999, 8083])
    expect([sources.httpPort, sources.fleet, sources.mqttPort, sources.wsPort]).toEqual(['flag', 'env', 'file', 'default'])
    expect([labels.httpPort, labels.fleet, labels.mqttPort]).toEqual(['--http-port', 'IOTMESH_FLEET', FILE])
    expect(resolveGatewaySettings({ ...input, flags: {} }).config.httpPort).toBe(9001)
    expect(resolveGatewaySettings({ ...input, flags: {}, env: { IOTMESH_HTTP_PORT: '' } }).config.httpPort).toBe(9002) // empty is unset
  })

  it('defaults: the device\'s ports, TLS ports with a certificate, mesh and Home Assistant on; --no-mesh and --no-homeassistant switch them off', () => {
    const { config } = resolveGatewaySettings()
    expect(config).toMatchObject({ fleet: 'default', host: '0.0.0.0', mqttPort: 1883, wsPort: 8083, httpPort: 8080, mesh: true, meshPort: 0, peers: [], homeassistant: true, memory: false, logLevel: 'info' })
    expect(resolveGatewaySettings({ file: file({ tlsCert: 'c.pem', tlsKey: 'k.pem' }) }).config).toMatchObject({ mqttPort: 8883, wsPort: 8084, tlsCert: '/etc/iotmesh/c.pem' })
    expect(resolveGatewaySettings({ flags: { 'no-mesh': true, 'no-homeassistant': true } }).config).toMatchObject({ mesh: false, homeassistant: false })
    expect(resolveGatewaySettings({ env: { IOTMESH_MESH: 'off', IOTMESH_WS_PORT: 'off' } }).config).toMatchObject({ mesh: false, wsPort: false })
    expect(resolveGatewaySettings({ file: file({ peers: ['GW.lan:7000', '[FE80::1]:7001'], allowedHosts: 'a.example, b.example' }) }).config)
      .toMatchObject({ peers: ['gw.lan:7000', '[fe80::1]:7001'], allowedHosts: ['a.example', 'b.example'] })
  })

  const BAD: Array<[GatewaySettingName, unknown]> = [
    ['fleet', 'a/b'], ['host', 'localhost.example'], ['broker', 'ftp://example.com'], ['mqttVersion', '6'], ['tlsCert', ' '], ['tlsKey', ' '],
    ['mqttPort', 'abc'], ['mqttPort', '65536'], ['wsPort', '-1'], ['redis', 'http://r'], ['redis', 'redis://r/db'], ['httpPort', 'eighty'], ['httpToken', 'short'], ['allowedHosts', ' '],
    ['mesh', 'maybe'], ['meshPort', '70000'], ['peers', '10.0.0.1'], ['roster', ' '], ['fleetFile', ' '], ['credential', ' '], ['key', ' '], ['users', ' '],
    ['allowAnonymous', 'sure'], ['tokenSkew', '0'], ['commanders', ' '], ['setUsers', ','], ['rules', ' '], ['readerKey', ' '], ['memory', '2'],
    ['database', 'mysql://db'], ['dataDir', ' '], ['retentionDays', '0'], ['maxReadings', '0'], ['gapSettleMs', '-1'], ['sequenceBlock', '0'], ['homeassistant', 'nope'], ['homeassistantPrefix', 'a/#'],
    ['logLevel', 'loud'], ['logFormat', 'xml'], ['logFile', ' ']
  ]

  it.each(BAD)('refuses %s = %j from each source, naming the setting and the source', (setting, raw) => {
    const sources: Array<[Parameters<typeof resolveGatewaySettings>[0], string]> = [
      [{ file: file({ [setting]: raw }) }, FILE],
      [{ env: { [envName(setting)]: raw as string } }, envName(setting)]
    ]
    const flag = flagName(setting)
    if (GATEWAY_FLAGS[flag]?.type === 'string') sources.push([{ flags: { [flag]: raw } }, `--${flag}`])
    for (const [input, label] of sources) {
      const err = errorOf(() => resolveGatewaySettings(input))
      expect(err?.code, label).toBe('ERR_BAD_ARGUMENT')
      expect(err?.details).toEqual({ setting, source: label })
      expect(err?.message).toMatch(new RegExp(`^${setting} from ${label.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} must be `))
    }
  })

  it('covers every setting with a bad value, and every setting is a flag and in --help', () => {
    expect(new Set(BAD.map(([s]) => s))).toEqual(new Set(GATEWAY_SETTING_NAMES))
    const help = command.help.map(([flag]) => flag.split(' ')[0]).join(' ')
    for (const flag of Object.keys(GATEWAY_FLAGS)) expect(help).toContain(`--${flag}`)
  })

  it('never repeats a secret in its error (httpToken, database, redis)', () => {
    for (const [name, raw] of [['httpToken', 'short!'], ['database', 'mysql://u:hunter2@db'], ['redis', 'http://:hunter2@r']] as const) {
      const err = errorOf(() => resolveGatewaySettings({ env: { [envName(name)]: raw } }))
      expect(err?.code).toBe('ERR_BAD_ARGUMENT')
      expect(err?.message).not.toContain(raw)
    }
  })

  it('refuses an unknown key in the file, with "did you mean", and __proto__ in JSON and YAML', async () => {
    const typo = errorOf(() => resolveGatewaySettings({ file: file({ mqttport: 1883 }) }))
    expect(typo?.details).toEqual({ setting: 'mqttport', source: FILE })
    expect(typo?.message).toContain('did you mean "mqttPort"?')
    expect(errorOf(() => resolveGatewaySettings({ file: file({ $schema: 'x' }) }))).toBeUndefined()
    const dir = await tempDir()
    for (const [name, text] of [['a.json', '{"__proto__": {"httpPort": 1}}'], ['a.yaml', '__proto__:\n  httpPort: 1\n'], ['b.yml', 'constructor: 1\n']] as const) {
      const path = join(dir, name)
      await writeFile(path, text)
      const err = await errorOfAsync(async () => await loadGatewaySettings({ config: path }, {}))
      expect(err?.code, name).toBe('ERR_BAD_ARGUMENT')
      expect(err?.message, name).toMatch(/^unknown setting "(__proto__|constructor)"/)
    }
  })

  it('reads a YAML or JSON file named by --config or IOTMESH_CONFIG; a broken one is ERR_BAD_ARGUMENT naming it', async () => {
    const dir = await tempDir()
    const yaml = join(dir, 'gw.yaml')
    await writeFile(yaml, 'fleet: barn\nhttpPort: 9100\npeers:\n  - 10.0.0.7:7000\n')
    expect((await loadGatewaySettings({}, { IOTMESH_CONFIG: yaml })).config).toMatchObject({ fleet: 'barn', httpPort: 9100, peers: ['10.0.0.7:7000'] })
    const json = join(dir, 'gw.json')
    await writeFile(json, '{"fleet": "barn", "httpPort": 9100}')
    expect((await loadGatewaySettings({ config: json, fleet: 'home' }, {})).config).toMatchObject({ fleet: 'home', httpPort: 9100 })
    for (const [name, text] of [['dup.yaml', 'fleet: a\nfleet: b\n'], ['list.yaml', '- fleet\n'], ['bad.json', '{"fleet": '], ['scalar.json', '7']] as const) {
      await writeFile(join(dir, name), text)
      const err = await errorOfAsync(async () => await loadGatewaySettings({ config: join(dir, name) }, {}))
      expect(err?.code, name).toBe('ERR_BAD_ARGUMENT')
      expect(err?.details, name).toEqual({ source: join(dir, name) })
    }
    expect((await errorOfAsync(async () => await loadGatewaySettings({ config: join(dir, 'missing.yaml') }, {})))?.code).toBe('ERR_BAD_ARGUMENT')
  })

  it('checks settings that go together, naming where each came from', async () => {
    const check = async (input: Parameters<typeof resolveGatewaySettings>[0]): Promise<string> => {
      const err = await errorOfAsync(async () => await gatewayOptions(resolveGatewaySettings(input), {}))
      expect(err?.code).toBe('ERR_BAD_ARGUMENT')
      return err?.message ?? ''
    }
    expect(await check({ file: file({ broker: 'mqtt://b.lan' }), env: { IOTMESH_MQTT_PORT: '1884' } })).toContain('IOTMESH_MQTT_PORT: for the embedded broker; with broker in')
    expect(await check({ file: file({ broker: 'mqtt://b.lan', allowAnonymous: true }) })).toContain(`allowAnonymous in ${FILE}`)
    expect(await check({ file: file({ mqttVersion: 5 }) })).toContain(`mqttVersion in ${FILE} is for --broker`)
    expect(await check({ flags: { 'tls-cert': 'c.pem' } })).toContain('--tls-cert needs tlsKey')
    expect(await check({ flags: { 'no-mesh': true }, file: file({ peers: ['10.0.0.1:7000'] }) })).toContain(`peers in ${FILE}: for the mesh, which is off (--no-mesh)`)
    expect(await check({ flags: { memory: true }, env: { IOTMESH_DATA_DIR: '/tmp/x' } })).toContain('IOTMESH_DATA_DIR and --memory exclude each other')
    expect(await check({ file: file({ homeassistant: false, homeassistantPrefix: 'ha' }) })).toContain('homeassistantPrefix')
    expect(await check({ file: file({ key: '/nonexistent/gw.key' }) })).toContain(`${FILE}: `)
  })

  it('the dashboard\'s sequence-gap settings reach the device registry from a flag, IOTMESH_* or the file; unset, the registry keeps its defaults', async () => {
    const registryOf = async (input: { flags?: Record<string, unknown>, env?: Record<string, string>, file?: ReturnType<typeof file> }): Promise<unknown> =>
      (await gatewayOptions(resolveGatewaySettings({ ...input, flags: { memory: true, ...input.flags } }), {})).init.registry
    expect(await registryOf({ flags: { 'gap-settle-ms': '0', 'sequence-block': '100' } })).toEqual({ gapSettleMs: 0, sequenceBlock: 100 })
    expect(await registryOf({ env: { IOTMESH_GAP_SETTLE_MS: '5000' } })).toEqual({ gapSettleMs: 5000 })
    expect(await registryOf({ file: file({ sequenceBlock: 1 }) })).toEqual({ sequenceBlock: 1 })
    expect(await registryOf({})).toBeUndefined()
  })

  it('the device reads YAML config files too, and says "did you mean"', async () => {
    const dir = await tempDir()
    const path = join(dir, 'device.yaml')
    await writeFile(path, 'name: kitchen\ninterval: 2000\npeers: [10.0.0.1:7000]\n')
    expect((await loadDeviceConfig({ flags: { config: path } })).config).toMatchObject({ name: 'kitchen', interval: 2000, peers: ['10.0.0.1:7000'] })
    await writeFile(path, 'intervall: 2000\n')
    const err = await errorOfAsync(async () => await loadDeviceConfig({ flags: { config: path } }))
    expect(err?.message).toContain('did you mean "interval"?')
  })
})

describe('gateway/deploy/gateway.example.yaml', () => {
  it('loads, resolves to the defaults it documents, and names every setting (set or commented out)', async () => {
    const example = await loadSettingsFile(EXAMPLE, '')
    const { config, sources } = resolveGatewaySettings({ file: example })
    expect(config).toMatchObject({ fleet: 'default', host: '0.0.0.0', mqttPort: 1883, wsPort: 8083, httpPort: 8080, mesh: true, meshPort: 0, dataDir: '/var/lib/iotmesh/gateway', retentionDays: 30, logLevel: 'info' })
    expect(sources.fleet).toBe('file')
    const text = await readFile(EXAMPLE, 'utf8')
    const named = new Set([...text.matchAll(/^#? ?([a-zA-Z]+):/gm)].map((m) => m[1]))
    expect(GATEWAY_SETTING_NAMES.filter((name) => !named.has(name))).toEqual([])
    // Each commented-out line is a valid setting too, once uncommented.
    for (const m of text.matchAll(/^# ([a-zA-Z]+): (\S+)/gm)) {
      const value = parseYaml(`${m[1] ?? ''}: ${m[2] ?? ''}`) as Record<string, unknown>
      expect(errorOf(() => resolveGatewaySettings({ file: file(value) })), m[0]).toBeUndefined()
    }
  })
})

// ---- the command ----

function streams (signal: AbortSignal, env: Record<string, string> = {}): { io: Io, out: ReturnType<typeof watchOutput>, err: ReturnType<typeof watchOutput> } {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  return { io: { stdout, stderr, stdin: Readable.from([]), env, signal }, out: watchOutput(stdout), err: watchOutput(stderr) }
}

async function runCommand (argv: string[], io: Io): Promise<number> {
  try {
    return await command.run(parse(command, argv), io)
  } catch (err) {
    if (!isMeshError(err)) throw err
    io.stderr.write(`iotmesh gateway: ${err.message} (${err.code})\n`)
    return err.code === 'ERR_BAD_ARGUMENT' ? 2 : 1
  }
}

interface Listener { host: string, port: number, url: string, tls?: boolean }
interface Banner { event: string, fleet: string, gatewayId: string, mqtt: Listener | null, ws: Listener | null, http: Listener, mesh: { id: string, port: number, peers: string[] } | null }

/** Starts `iotmesh gateway --json …` in process; resolves with its banner, parsed, and a stop function. */
async function start (args: string[], env: Record<string, string> = {}): Promise<{ banner: Banner, out: ReturnType<typeof watchOutput>, stop: () => Promise<number> }> {
  const controller = new AbortController()
  const { io, out, err } = streams(controller.signal, env)
  const running = runCommand(['--json', ...args], io)
  onTestFinished(() => { controller.abort() })
  const first = await Promise.race([out.match(/^\{.*\}$/m), running.then((code) => { throw new Error(`exited ${code}: ${err.text()}`) })])
  return { banner: JSON.parse(first[0]) as Banner, out, stop: async () => { controller.abort(); return await running } }
}

describe('iotmesh gateway --config: errors name the file', () => {
  it('a bad value in the file is exit 2, ERR_BAD_ARGUMENT naming the setting and the file', async () => {
    const dir = await tempDir()
    const path = join(dir, 'gw.yaml')
    await writeFile(path, 'httpPort: eighty\n')
    const { io, err } = streams(new AbortController().signal)
    expect(await runCommand(['--config', path], io)).toBe(2)
    expect(err.text()).toContain(`httpPort from ${path} must be an integer from 0 to 65535, got "eighty" (ERR_BAD_ARGUMENT)`)
  })
})

describeNet('iotmesh gateway --json and the listeners the settings open', () => {
  it('prints one JSON object with the addresses it really listens on (a client connects to each), then {"event":"stop"}', async () => {
    const dir = await tempDir()
    const config = join(dir, 'gw.yaml')
    await writeFile(config, 'fleet: barn\nhost: 127.0.0.1\nmqttPort: 0\nwsPort: 0\nhttpPort: 0\nallowAnonymous: true\nmemory: true\n')
    const { banner, out, stop } = await start(['--config', config])
    expect(banner).toMatchObject({ event: 'start', fleet: 'barn', mode: 'embedded', mqtt: { host: '127.0.0.1', tls: false }, ws: { host: '127.0.0.1' }, http: { host: '127.0.0.1', token: 'off' }, state: null })
    expect(banner.gatewayId).toMatch(/^[a-z2-7]{26}$/)
    expect(banner.mesh).toMatchObject({ id: banner.gatewayId, host: '127.0.0.1', peers: [] })
    expect(banner.mesh?.port).toBeGreaterThan(0)
    const mqtt = banner.mqtt?.url ?? ''
    expect(mqtt).toBe(`mqtt://127.0.0.1:${banner.mqtt?.port ?? 0}`)
    await connectClient(mqtt)
    await connectClient(banner.ws?.url ?? '')
    expect((await fetch(`${banner.http.url}metrics`)).status).toBe(200)
    expect(await stop()).toBe(0)
    expect(out.text().trim().split('\n').map((line) => JSON.parse(line) as unknown).at(-1)).toEqual({ event: 'stop' })
  })

  it('--mesh-port listens on that port; --peers are shown; IOTMESH_* variables set the rest', async () => {
    const meshPort = await freePort()
    const { banner, stop } = await start(['--mesh-port', String(meshPort), '--peers', '127.0.0.1:9,[::1]:10'],
      { IOTMESH_HOST: '127.0.0.1', IOTMESH_MQTT_PORT: '0', IOTMESH_WS_PORT: 'off', IOTMESH_HTTP_PORT: '0', IOTMESH_MEMORY: 'true', IOTMESH_FLEET: 'envfleet' })
    expect(banner).toMatchObject({ fleet: 'envfleet', ws: null, mesh: { port: meshPort, peers: ['127.0.0.1:9', '[::1]:10'] } })
    expect(await stop()).toBe(0)
  })
})

const OPENSSL = findBinary('/usr/bin/openssl')
if (OPENSSL === undefined) console.warn('SKIPPED: the gateway --tls-cert test needs openssl (Debian package openssl) to make a test certificate')

describeNet('iotmesh gateway --tls-cert --tls-key', () => {
  it.skipIf(OPENSSL === undefined)('serves MQTT over TLS and WSS on the ports the banner shows; a client that checks the certificate connects to both', async () => {
    const dir = await tempDir()
    const key = join(dir, 'key.pem')
    const cert = join(dir, 'cert.pem')
    execFileSync(OPENSSL ?? 'openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1',
      '-subj', '/CN=iotmesh-test', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' })
    const ca = readFileSync(cert)
    const { banner, stop } = await start(['--tls-cert', cert, '--tls-key', key, '--mqtt-port', '0', '--ws-port', '0', '--http-port', '0', '--host', '127.0.0.1', '--no-mesh', '--memory', '--allow-anonymous'])
    const port = banner.mqtt?.port ?? 0
    expect(banner.mqtt).toMatchObject({ tls: true, url: `mqtts://127.0.0.1:${port}` })
    expect(banner.ws?.url).toBe(`wss://127.0.0.1:${banner.ws?.port ?? 0}/mqtt`)
    await connectClient(`mqtts://127.0.0.1:${port}`, { ca, rejectUnauthorized: true })
    await connectClient(banner.ws?.url ?? '', { ca, rejectUnauthorized: true })
    // Plain MQTT is not served on the TLS port, and a client that does not know the CA refuses the certificate.
    await expect(connectClient(`mqtt://127.0.0.1:${port}`, { connectTimeout: 1000 })).rejects.toThrow()
    await expect(connectClient(`mqtts://127.0.0.1:${port}`, { rejectUnauthorized: true, connectTimeout: 2000 })).rejects.toThrow()
    expect(await stop()).toBe(0)
  })
})

const REDIS = findBinary('/usr/bin/redis-server', '/usr/sbin/redis-server')
if (REDIS === undefined) console.warn('SKIPPED: the gateway --redis test needs redis-server (Debian package redis-server)')

describeNet('iotmesh gateway --redis', () => {
  it.skipIf(REDIS === undefined)('two gateways started with --redis share the broker: a device on one reaches a subscriber on the other', async () => {
    const port = await freePort()
    await spawnServer(REDIS ?? 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], /Ready to accept connections/)
    const args = ['--host', '127.0.0.1', '--mqtt-port', '0', '--ws-port', 'off', '--http-port', '0', '--no-mesh', '--memory', '--allow-anonymous']
    const env = { IOTMESH_REDIS: `redis://127.0.0.1:${port}` }
    const one = await start(args, env)
    const two = await start(args, env)
    expect(one.out.text()).toContain('"cluster":"redis"')
    const subscriber = await connectClient(two.banner.mqtt?.url ?? '')
    await subscriber.client.subscribeAsync(topicFilters.json(), { qos: 1 })
    const alice = seededKeys(161)
    const device = await connectDevice(one.banner.mqtt?.url ?? '', alice, { name: 'cellar' })
    await device.publishFrame(1, makeFrame(alice, 1))
    const json = await subscriber.next((t) => t === jsonTopic('default', alice.id))
    expect(JSON.parse(json.payload.toString())[0]).toMatchObject({ seq: 1 })
    expect(await one.stop()).toBe(0)
    expect(await two.stop()).toBe(0)
  })
})
