import { describe, expect, it } from 'vitest'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import {
  SETTING_NAMES, SIM_SENSORS, deviceInit, deliveryPaths, envName, flagName, loadConfigFile, loadDeviceConfig, parsePeer, resolveConfig, type SettingName
} from '../../firmware-sim/index.js'
import { codeOf, codeOfAsync, errorOf, tempDir } from './support.js'

const file = (values: Record<string, unknown>, path = '/etc/iotmesh/device.json'): { path: string, values: Record<string, unknown> } => ({ path, values })

describe('device configuration', () => {
  it('has defaults for everything', () => {
    const { config, sources } = resolveConfig({ env: { HOME: '/home/pi' } })
    expect(config).toEqual({
      name: 'iotmesh-device',
      fleet: 'default',
      mode: 'mesh',
      broker: undefined,
      username: undefined,
      password: undefined,
      interval: 10_000,
      sensors: [...SIM_SENSORS],
      key: '/home/pi/.iotmesh/device.key',
      dataDir: '/home/pi/.iotmesh',
      port: 0,
      peers: [],
      relayBeforeVerify: false,
      broadcastTree: false,
      seed: undefined,
      fsync: 'always',
      outboxFrames: 100_000,
      outboxBytes: 16 * 1024 * 1024,
      brokerAuth: 'auto',
      actuators: [],
      groups: []
    })
    expect(new Set(Object.values(sources))).toEqual(new Set(['default']))
    expect(resolveConfig({ env: { IOTMESH_HOME: '/var/lib/iotmesh' } }).config.key).toBe('/var/lib/iotmesh/device.key')
    expect(resolveConfig({ defaults: { name: 'kitchen-pi' } }).config.name).toBe('kitchen-pi')
  })

  it('uses the same names in the file, the environment and flags', () => {
    expect(envName('dataDir')).toBe('IOTMESH_DATA_DIR')
    expect(flagName('dataDir')).toBe('data-dir')
    expect(envName('outboxFrames')).toBe('IOTMESH_OUTBOX_FRAMES')
    const values = { name: 'a', fleet: 'farm', mode: 'hybrid', broker: 'mqtt://gw.local:1883', username: 'pi', password: 'a b', interval: 5000, sensors: 'linux', key: '/k', dataDir: '/d', port: 7000, peers: '10.0.0.2:7000', seed: 9, fsync: 'never', outboxFrames: 10, outboxBytes: 4096 }
    const expected = resolveConfig({ file: file(values) }).config
    const asText = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, String(v)]))
    expect(resolveConfig({ env: Object.fromEntries(Object.entries(asText).map(([k, v]) => [envName(k as SettingName), v])) }).config).toEqual(expected)
    expect(resolveConfig({ flags: Object.fromEntries(Object.entries(asText).map(([k, v]) => [flagName(k as SettingName), v])) }).config).toEqual(expected)
    expect(resolveConfig({ flags: asText }).config).toEqual(expected) // setting names work as flag keys too
  })

  it('takes flags over the environment over the file over defaults', () => {
    const input = {
      flags: { interval: '1000' },
      env: { IOTMESH_INTERVAL: '2000', IOTMESH_NAME: 'from-env' },
      file: file({ interval: 3000, name: 'from-file', fleet: 'from-file' })
    }
    const { config, sources } = resolveConfig(input)
    expect([config.interval, config.name, config.fleet, config.port]).toEqual([1000, 'from-env', 'from-file', 0])
    expect([sources.interval, sources.name, sources.fleet, sources.port]).toEqual(['flag', 'env', 'file', 'default'])
    expect(resolveConfig({ ...input, flags: {} }).config.interval).toBe(2000)
    expect(resolveConfig({ ...input, flags: {}, env: {} }).config.interval).toBe(3000)
    expect(resolveConfig({ ...input, flags: {}, env: { IOTMESH_INTERVAL: '' } }).config.interval).toBe(3000) // empty env is unset
  })

  it('normalises lists and resolves file paths against the file', () => {
    const { config } = resolveConfig({
      file: file({ sensors: ['sim', 'cpu-temp'], peers: ['Gateway.LOCAL:7000', '[FE80::1]:7001'], key: 'keys/device.key', dataDir: '/var/lib/iotmesh' }, '/etc/iotmesh/device.json')
    })
    expect(config.sensors).toEqual([...SIM_SENSORS, 'cpu-temp'])
    expect(config.peers).toEqual(['gateway.local:7000', '[fe80::1]:7001'])
    expect(config.key).toBe('/etc/iotmesh/keys/device.key')
    expect(resolveConfig({ flags: { peers: '10.0.0.1:1, 10.0.0.2:2' }, env: { IOTMESH_KEY: 'rel.key' } }).config).toMatchObject({ peers: ['10.0.0.1:1', '10.0.0.2:2'], key: 'rel.key' })
    expect(resolveConfig({ env: { IOTMESH_FSYNC: '500' } }).config.fsync).toBe(500)
    // encrypt: a path, or { "readers": path } in the file
    expect(resolveConfig({ file: file({ encrypt: { readers: 'readers.cose' } }, '/etc/iotmesh/device.json') }).config.encrypt).toBe('/etc/iotmesh/readers.cose')
    expect(resolveConfig({ flags: { encrypt: 'r.cose' } }).config.encrypt).toBe('r.cose')
    // a switch: true from a bare flag (the CLI parses it as a boolean), the file, or the environment
    expect(resolveConfig({ flags: { 'relay-before-verify': true } }).config.relayBeforeVerify).toBe(true)
    expect(resolveConfig({ file: file({ relayBeforeVerify: true }) }).config.relayBeforeVerify).toBe(true)
    expect(resolveConfig({ env: { IOTMESH_RELAY_BEFORE_VERIFY: 'no' } }).config.relayBeforeVerify).toBe(false)
    // ... and reaches the device's mesh node (what `iotmesh device` starts)
    expect(deviceInit(resolveConfig({ flags: { 'relay-before-verify': true } }).config).mesh?.routing).toEqual({ relayBeforeVerify: true })
    expect(deviceInit(resolveConfig({}).config).mesh?.routing).toBeUndefined()
    // the broadcast tree: off by default, a switch like the one above, from the flag, the file or the environment
    expect(deviceInit(resolveConfig({ flags: { 'broadcast-tree': true } }).config).mesh?.routing).toEqual({ broadcastTree: true })
    expect(resolveConfig({ file: file({ broadcastTree: true }) }).config.broadcastTree).toBe(true)
    expect(resolveConfig({ env: { IOTMESH_BROADCAST_TREE: 'yes' } }).config.broadcastTree).toBe(true)
    expect(resolveConfig({ env: { IOTMESH_BROADCAST_TREE: 'no' } }).config.broadcastTree).toBe(false)
  })

  const BAD: Array<[SettingName, unknown]> = [
    ['name', '-bad'], ['name', 'has space'], ['name', 'x'.repeat(64)],
    ['fleet', 'a/b'], ['fleet', '#'],
    ['mode', 'p2p'],
    ['broker', 'http://x'], ['broker', 'not a url'], ['broker', 'mqtt://'],
    ['username', ' '], ['password', ''],
    ['interval', 'fast'], ['interval', '99'], ['interval', '1.5'], ['interval', '86400001'],
    ['sensors', 'thermometer'], ['sensors', 'temperature,bme280'],
    ['key', ' '], ['dataDir', ''],
    ['port', '65536'], ['port', '-1'], ['port', 'http'],
    ['peers', '10.0.0.1'], ['peers', 'host:0'], ['peers', 'fe80::1:7000'],
    ['relayBeforeVerify', 'sometimes'], ['relayBeforeVerify', 2], ['broadcastTree', 'sometimes'], ['broadcastTree', 2],
    ['seed', '-1'], ['seed', '4294967296'], ['seed', 'abc'],
    ['fsync', 'sometimes'], ['fsync', '-5'],
    ['outboxFrames', '0'], ['outboxBytes', '100'],
    ['brokerAuth', 'cert'],
    ['roster', ' '],
    ['commanders', ' '], ['actuators', 'heater'], ['actuators', 'relay,fan'], ['rules', ' '], ['fleetFile', ' '], ['groups', 'Kitchen'], ['encrypt', ' '], ['encrypt', { readers: ' ' }], ['credential', ' ']
  ]

  it.each(BAD)('refuses %s = %j from every source, naming the setting and the source', (setting, raw) => {
    const sources: Array<[Parameters<typeof resolveConfig>[0], string]> = [
      [{ flags: { [flagName(setting)]: raw } }, `--${flagName(setting)}`],
      [{ file: file({ [setting]: raw }, '/etc/iotmesh/device.json') }, '/etc/iotmesh/device.json']
    ]
    if (raw !== '') sources.push([{ env: { [envName(setting)]: raw as string } }, envName(setting)])
    for (const [input, label] of sources) {
      const err = errorOf(() => resolveConfig(input))
      expect(err?.code).toBe('ERR_BAD_ARGUMENT')
      expect(err?.details).toEqual({ setting, source: label })
    }
  })

  it('covers every setting with a bad value', () => {
    expect(new Set(BAD.map(([s]) => s))).toEqual(new Set(SETTING_NAMES))
  })

  it('refuses wrong JSON types in the file', () => {
    for (const [setting, raw] of [['interval', true], ['sensors', 5], ['peers', [1]], ['name', 7], ['mode', null]] as const) {
      expect(errorOf(() => resolveConfig({ file: file({ [setting]: raw }) }))?.details).toEqual({ setting, source: '/etc/iotmesh/device.json' })
    }
  })

  it('needs a broker in broker and hybrid mode, naming where the mode came from', () => {
    expect(errorOf(() => resolveConfig({ env: { IOTMESH_MODE: 'broker' } }))?.details).toEqual({ setting: 'broker', source: 'IOTMESH_MODE' })
    expect(codeOf(() => resolveConfig({ flags: { mode: 'hybrid' } }))).toBe('ERR_BAD_ARGUMENT')
    expect(resolveConfig({ flags: { mode: 'broker', broker: 'mqtts://b.example:8883' } }).config.mode).toBe('broker')
  })

  it('refuses unknown settings in the file', () => {
    const err = errorOf(() => resolveConfig({ file: file({ intervall: 100 }) }))
    expect(err?.code).toBe('ERR_BAD_ARGUMENT')
    expect(err?.details).toEqual({ setting: 'intervall', source: '/etc/iotmesh/device.json' })
    expect(codeOf(() => resolveConfig({ file: file({ $schema: 'x' }) }))).toBe('no error')
    // Names every object inherits are no settings either: JSON.parse makes "__proto__" an own key.
    for (const text of ['{"__proto__": {"interval": 5}}', '{"constructor": 1}', '{"toString": "x"}', '{"hasOwnProperty": 1}']) {
      const inherited = errorOf(() => resolveConfig({ file: file(JSON.parse(text) as Record<string, unknown>) }))
      expect(inherited?.code, text).toBe('ERR_BAD_ARGUMENT')
      expect(inherited?.message, text).toMatch(/unknown setting/)
    }
  })

  it('maps modes to delivery paths', () => {
    expect(deliveryPaths('mesh')).toEqual(['mesh'])
    expect(deliveryPaths('broker')).toEqual(['broker'])
    expect(deliveryPaths('hybrid')).toEqual(['mesh', 'broker'])
  })

  it('parsePeer refuses with ERR_BAD_ARGUMENT', () => {
    expect(parsePeer('[::1]:7')).toBe('[::1]:7')
    expect(codeOf(() => parsePeer('nope'))).toBe('ERR_BAD_ARGUMENT')
  })
})

describe('config files', () => {
  it('loads a JSON object and resolves with it, found through --config or IOTMESH_CONFIG', async () => {
    const dir = await tempDir()
    const path = join(dir, 'device.json')
    await writeFile(path, JSON.stringify({ name: 'greenhouse', interval: 60000, key: 'device.key' }))
    expect((await loadConfigFile(path)).values).toEqual({ name: 'greenhouse', interval: 60000, key: 'device.key' })
    const viaFlag = await loadDeviceConfig({ flags: { config: path }, env: {} })
    expect(viaFlag.config).toMatchObject({ name: 'greenhouse', interval: 60000, key: join(dir, 'device.key') })
    const viaEnv = await loadDeviceConfig({ env: { IOTMESH_CONFIG: path, IOTMESH_INTERVAL: '1000' } })
    expect(viaEnv.config).toMatchObject({ name: 'greenhouse', interval: 1000 })
    expect(viaEnv.sources.interval).toBe('env')
  })

  it('refuses a missing file, bad JSON, and JSON that is not an object', async () => {
    const dir = await tempDir()
    await writeFile(join(dir, 'bad.json'), '{"name": ')
    await writeFile(join(dir, 'list.json'), '[1, 2]')
    for (const name of ['missing.json', 'bad.json', 'list.json']) {
      expect(await codeOfAsync(() => loadConfigFile(join(dir, name)))).toBe('ERR_BAD_ARGUMENT')
    }
  })

  it('the example config in firmware-sim/deploy resolves', async () => {
    const path = new URL('../../firmware-sim/deploy/device.example.json', import.meta.url).pathname
    const { config } = await loadDeviceConfig({ flags: { config: path }, env: {} })
    expect(config.dataDir).toBe('/var/lib/iotmesh')
  })
})
