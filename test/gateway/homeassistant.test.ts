import { PassThrough, Readable } from 'node:stream'
import { Ajv2020 } from 'ajv/dist/2020.js'
import { describe, expect, it, onTestFinished } from 'vitest'
import { parse } from '../../bin/cli.js'
import { gateway as command } from '../../bin/commands/gateway.js'
import { isMeshError, parseCommanders, publicKeyText, setTopic, statusTopic, valueTopic, type SenmlRecord } from '../../shared/index.js'
import { objectIdOf, type DropEvent, type Reading, type SensorConfig } from '../../gateway/index.js'
import { Waiter, keysFor, startDevice } from '../firmware/device-support.js'
import { describeNet } from '../helpers/netns.js'
import { COMPONENT_SCHEMAS, DISCOVERY_TOPIC, SENSOR_CONFIG_SCHEMA } from './homeassistant-schema.js'
import { connectClient, connectDevice, makeFrame, mqttUrl, nextEvent, seededKeys, startGateway, type TestClient } from './support.js'

/**
 * Home Assistant MQTT discovery (gateway/homeassistant.ts) against a real MQTT client: retained
 * configs that a client subscribing later still receives, each valid against the documented
 * schema of Home Assistant's MQTT sensor (./homeassistant-schema.ts), plain-number values, and
 * removal when the device's retained status is cleared.
 */

const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false }) // required inside anyOf/if names properties defined beside them
const validate = ajv.compile(SENSOR_CONFIG_SCHEMA)
const validators = new Map(Object.entries(COMPONENT_SCHEMAS).map(([component, schema]) => [component, component === 'sensor' ? validate : ajv.compile(schema)]))

/** Every documented key, every device class with its units: a config passes the schema of its component, or the test says why. */
function expectValidConfig (topic: string, config: unknown): void {
  const component = DISCOVERY_TOPIC.exec(topic)?.groups?.component
  expect(component, topic).toBeDefined()
  const check = validators.get(component ?? '')
  const ok = check?.(config) === true
  expect(ok ? [] : check?.errors, topic).toEqual([])
}

const RECORDS: SenmlRecord[] = [
  { n: 'temp', u: 'Cel', v: 21.5 },
  { n: 'humidity', u: '%RH', v: 40.1 },
  { n: 'pressure', u: 'Pa', v: 101325 },
  { n: 'supply', u: 'V', v: 3.3 },
  { n: 'battery', u: '%EL', v: 87 },
  { n: 'wifi', u: 'dBm', v: -56 },
  { n: 'bme280.t', u: 'Cel', v: 20.25 },
  { n: 'boots', u: 'count', v: 3 },
  { n: 'mode', vs: 'eco' },
  { n: 'door', vb: true }
]

/** What a Home Assistant subscribed to the discovery prefix and the value topics receives (retained ones included). */
async function homeAssistant (url: string, prefix = 'homeassistant'): Promise<TestClient> {
  const client = await connectClient(url)
  await client.client.subscribeAsync([`${prefix}/#`, 'iotmesh/+/+/value/#'], { qos: 1 })
  return client
}

describeNet('Home Assistant MQTT discovery', () => {
  it('retained sensor configs valid against the MQTT sensor schema, plain values, availability from the status, removal on a cleared status', async () => {
    const gateway = await startGateway()
    const keys = seededKeys(141)
    const device = await connectDevice(mqttUrl(gateway), keys, { name: 'greenhouse' })
    const accepted = nextEvent<Reading>(gateway, 'reading', (r) => r.origin === keys.id)
    await device.publishFrame(1, makeFrame(keys, 1, { records: RECORDS }))
    await accepted

    // Home Assistant starts after the device: it gets the retained configs and values.
    const ha = await homeAssistant(mqttUrl(gateway))
    const numeric = RECORDS.filter((r) => r.v !== undefined)
    const configs = new Map<string, SensorConfig>()
    for (let i = 0; i < numeric.length; i++) {
      const m = await ha.next((topic) => topic.endsWith('/config'))
      expect(m.retain).toBe(true)
      const config = JSON.parse(m.payload.toString()) as SensorConfig
      expectValidConfig(m.topic, config)
      configs.set(config.name, config)
      expect(m.topic).toBe(`homeassistant/sensor/${keys.id}/${objectIdOf(config.name)}/config`)
    }
    expect([...configs.keys()].sort()).toEqual(numeric.map((r) => r.n).sort())
    const temp = configs.get('temp')
    expect(temp).toEqual({
      name: 'temp',
      unique_id: `iotmesh_default_${keys.id}_temp`,
      state_topic: valueTopic('default', keys.id, 'temp'),
      state_class: 'measurement',
      device_class: 'temperature',
      unit_of_measurement: '°C',
      availability: [{ topic: statusTopic('default', keys.id), value_template: '{{ value_json.state }}', payload_available: 'online', payload_not_available: 'offline' }],
      device: { identifiers: [`iotmesh_${keys.id}`], name: 'greenhouse', manufacturer: 'iotmesh', model: 'iotmesh device' },
      origin: { name: 'iotmesh gateway' }
    })
    const shown = (name: string): [string | undefined, string | undefined, string] => {
      const c = configs.get(name)
      return [c?.device_class, c?.unit_of_measurement, c?.state_class ?? '']
    }
    expect(shown('humidity')).toEqual(['humidity', '%', 'measurement'])
    expect(shown('pressure')).toEqual(['pressure', 'Pa', 'measurement']) // the signed value, in Pa: Home Assistant converts to hPa itself
    expect(shown('supply')).toEqual(['voltage', 'V', 'measurement'])
    expect(shown('battery')).toEqual(['battery', '%', 'measurement'])
    expect(shown('wifi')).toEqual(['signal_strength', 'dBm', 'measurement'])
    expect(shown('boots')).toEqual([undefined, undefined, 'total_increasing'])
    // A name outside [a-zA-Z0-9_-] gets an object id of its own (and its unique_id with it).
    expect(configs.get('bme280.t')?.state_topic).toMatch(new RegExp(`/value/bme280_t_[0-9a-f]{6}$`))

    // Values: plain numbers, retained, one topic per sensor, as signed.
    const values = new Map<string, string>()
    for (let i = 0; i < numeric.length; i++) {
      const m = await ha.next((topic) => topic.includes('/value/'))
      expect(m.retain).toBe(true)
      values.set(m.topic, m.payload.toString())
    }
    for (const r of numeric) expect(values.get(valueTopic('default', keys.id, objectIdOf(r.n ?? ''))), r.n).toBe(String(r.v))

    // A newer reading updates the values (live, not retained, for a subscriber already there); configs are not sent again.
    const second = nextEvent<Reading>(gateway, 'reading', (r) => r.origin === keys.id && r.seq === 2)
    await device.publishFrame(2, makeFrame(keys, 2, { records: [{ n: 'temp', u: 'Cel', v: 22 }] }))
    await second
    const update = await ha.next((topic) => topic === valueTopic('default', keys.id, 'temp'))
    expect(update.payload.toString()).toBe('22')
    expect(ha.messages.filter((m) => m.topic.endsWith('/config'))).toHaveLength(numeric.length)

    // Nobody but the gateway publishes on a value topic.
    const forged = nextEvent<DropEvent>(gateway, 'drop', (d) => d.topic === valueTopic('default', keys.id, 'temp'))
    await device.client.publishAsync(valueTopic('default', keys.id, 'temp'), '99', { qos: 1, retain: true })
    expect(await forged).toMatchObject({ reason: 'json_forbidden', code: 'ERR_FORBIDDEN' })

    // The device is removed (its retained status cleared): every config and value is cleared.
    await device.client.publishAsync(statusTopic('default', keys.id), '', { qos: 1, retain: true })
    const cleared = new Set<string>()
    for (let i = 0; i < 2 * numeric.length; i++) {
      const m = await ha.next((topic, payload) => payload.length === 0 && (topic.endsWith('/config') || topic.includes('/value/')))
      cleared.add(m.topic)
    }
    expect(cleared.size).toBe(2 * numeric.length)
    const late = await homeAssistant(mqttUrl(gateway))
    const marker = 'iotmesh-test/marker'
    await late.client.subscribeAsync(marker)
    gateway.publish(marker, 'end')
    await late.next((topic) => topic === marker)
    expect(late.messages.filter((m) => m.topic !== marker)).toEqual([]) // nothing retained any more
  })

  it('a mesh-only device (no status) has no availability block; a later status adds it; --homeassistant-prefix', async () => {
    const gateway = await startGateway({ homeassistant: { prefix: 'ha-test' } })
    const keys = seededKeys(142)
    const ha = await homeAssistant(mqttUrl(gateway), 'ha-test')
    // A device without a status: its frame is held until the key is known, as a mesh device's would be learned.
    gateway.learnKey(keys.publicKey, { source: 'operator' })
    const publisher = await connectClient(mqttUrl(gateway))
    const accepted = nextEvent<Reading>(gateway, 'reading', (r) => r.origin === keys.id)
    await publisher.client.publishAsync(`iotmesh/default/${keys.id}/telemetry`, makeFrame(keys, 1), { qos: 1 })
    await accepted
    const first = await ha.next((topic) => topic === `ha-test/sensor/${keys.id}/temp/config`)
    const config = JSON.parse(first.payload.toString()) as SensorConfig
    expectValidConfig(first.topic, config)
    expect(config.availability).toBeUndefined()
    expect(config.device.name).toBe(`iotmesh ${keys.id.slice(0, 8)}`)
    // It connects and says who it is: the config comes again, with availability and its name.
    await connectDevice(mqttUrl(gateway), keys, { name: 'cellar' })
    const again = await ha.next((topic) => topic === first.topic)
    const updated = JSON.parse(again.payload.toString()) as SensorConfig
    expectValidConfig(again.topic, updated)
    expect(updated.availability?.[0]?.topic).toBe(statusTopic('default', keys.id))
    expect(updated.device.name).toBe('cellar')
  })

  it('actuators: a switch, a light and a number Home Assistant commands through set/ (each schema-valid); the state is what the device reports; read-only without set users', async () => {
    const gateway = await startGateway({ allowAnonymous: false, credentials: { ha: 'ha-secret' }, commands: { set: { users: ['ha'] } } }, { keys: seededKeys(146) })
    const keys = keysFor(147)
    const commanders = parseCommanders({ commanders: [{ name: 'gateway', key: publicKeyText(gateway.identity.publicKey), actions: ['relay/#', 'light/#', 'thermostat/#'] }] })
    const waiter = new Waiter()
    const { device } = await startDevice({ mode: 'broker', broker: { url: mqttUrl(gateway) }, name: 'hall', sensors: 'temperature', interval: 1000, actuators: ['relay', 'light', 'thermostat'], commanders }, { keys }, waiter)
    await waiter.until(() => gateway.devices.get(keys.id)?.actuators?.thermostat !== undefined, 'the actuators\' state at the gateway')
    // Home Assistant starts after the device: it gets the retained configs.
    const ha = await connectClient(mqttUrl(gateway), { username: 'ha', password: 'ha-secret' })
    await ha.client.subscribeAsync(['homeassistant/#', 'iotmesh/+/+/value/#'], { qos: 1 })
    const configs = new Map<string, Record<string, unknown>>()
    for (const component of ['switch', 'light', 'number']) {
      const m = await ha.next((topic) => topic.startsWith(`homeassistant/${component}/`))
      expect(m.retain).toBe(true)
      const config = JSON.parse(m.payload.toString()) as Record<string, unknown>
      expectValidConfig(m.topic, config)
      configs.set(component, config)
    }
    expect(configs.get('switch')).toMatchObject({ name: 'relay', command_topic: setTopic('default', keys.id, 'relay'), state_topic: valueTopic('default', keys.id, 'relay'), device: { name: 'hall' } })
    expect(configs.get('light')).toMatchObject({ brightness_command_topic: setTopic('default', keys.id, 'light'), brightness_scale: 100 })
    expect(configs.get('number')).toMatchObject({ min: 5, max: 35, unit_of_measurement: '°C', device_class: 'temperature' })
    // No sensor entity for an actuator's state records (the light's level is the light's brightness).
    expect(ha.messages.filter((m) => m.topic.startsWith('homeassistant/sensor/') && /light|relay|thermostat/.test(m.topic))).toEqual([])

    /** What Home Assistant sends on a command topic, and the state value the device then reports. */
    const send = async (config: Record<string, unknown> | undefined, key: string, payload: string, stateKey: string, expected: string): Promise<void> => {
      const state = String(config?.[stateKey])
      await ha.client.publishAsync(String(config?.[key]), payload, { qos: 1 })
      await ha.next((topic, p) => topic === state && p.toString() === expected)
    }
    await send(configs.get('switch'), 'command_topic', 'ON', 'state_topic', 'ON')
    expect(device.actuatorState.relay).toBe(true)
    await send(configs.get('light'), 'brightness_command_topic', '40', 'brightness_state_topic', '40')
    await send(configs.get('light'), 'command_topic', 'ON', 'state_topic', 'ON')
    await send(configs.get('number'), 'command_topic', '21.5', 'state_topic', '21.5')
    expect(device.actuatorState).toEqual({ relay: true, light: true, 'light/level': 40, 'thermostat/setpoint': 21.5 })
    // Refused by the device (out of range): the state Home Assistant sees stays as it was.
    await ha.client.publishAsync(String(configs.get('number')?.command_topic), '80', { qos: 1 })
    await waiter.until(() => (device.counters.commands?.refused.ERR_BAD_ARGS ?? 0) === 1, 'the refusal')
    expect(device.actuatorState['thermostat/setpoint']).toBe(21.5)

    // Without set users Home Assistant may command nothing: the same states are read-only entities.
    const readOnly = await startGateway({}, { keys: seededKeys(148) })
    const other = keysFor(149)
    await startDevice({ mode: 'broker', broker: { url: mqttUrl(readOnly) }, sensors: 'temperature', interval: 1000, actuators: ['relay', 'light'] }, { keys: other }, waiter)
    const viewer = await homeAssistant(mqttUrl(readOnly))
    const seen = new Set<string>()
    while (seen.size < 3) {
      const m = await viewer.next((topic) => topic.endsWith('/config') && /relay|light/.test(topic))
      expectValidConfig(m.topic, JSON.parse(m.payload.toString()))
      seen.add(m.topic.split('/').slice(1, 2).concat(m.topic.split('/').slice(3, 4)).join(':'))
    }
    expect([...seen].sort()).toEqual(['binary_sensor:light', 'binary_sensor:relay', `sensor:${objectIdOf('light/level')}`])
    expect(viewer.messages.filter((m) => /^homeassistant\/(switch|light|number)\//.test(m.topic))).toEqual([])
  })

  it('homeassistant: false publishes no config and no value', async () => {
    const gateway = await startGateway({ homeassistant: false })
    expect(gateway.homeassistant).toBeUndefined()
    const keys = seededKeys(143)
    const watcher = await connectClient(mqttUrl(gateway))
    await watcher.client.subscribeAsync('#')
    const device = await connectDevice(mqttUrl(gateway), keys)
    const accepted = nextEvent<Reading>(gateway, 'reading', (r) => r.origin === keys.id)
    await device.publishFrame(1)
    await accepted
    await watcher.next((topic) => topic === `iotmesh/default/${keys.id}/json`)
    gateway.publish('iotmesh-test/marker', 'end')
    await watcher.next((topic) => topic === 'iotmesh-test/marker')
    expect(watcher.messages.map((m) => m.topic).filter((t) => t.startsWith('homeassistant/') || t.includes('/value/'))).toEqual([])
  })
})

describe('the schema itself refuses what Home Assistant would', () => {
  it('a wrong unit for a device class, an unknown key, a device without unique_id', () => {
    const base = { state_topic: 'a/b', unique_id: 'x', device: { identifiers: ['x'] } }
    expect(validate({ ...base, device_class: 'temperature', unit_of_measurement: '°C' })).toBe(true)
    expect(validate({ ...base, device_class: 'temperature', unit_of_measurement: 'Cel' })).toBe(false)
    expect(validate({ ...base, device_class: 'pressure', unit_of_measurement: 'Pa' })).toBe(true)
    expect(validate({ ...base, colour: 'red' })).toBe(false)
    expect(validate({ state_topic: 'a/b', device: { identifiers: ['x'] } })).toBe(false)
    expect(validate({ ...base, device: { name: 'no identifiers' } })).toBe(false)
    expect('homeassistant/sensor/node/bad.id/config').not.toMatch(DISCOVERY_TOPIC)
  })
})

/** `iotmesh gateway` in-process with its flags; resolves once the banner is out. */
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
  const running = command.run(parse(command, ['--ws-port', 'off', '--http-port', '0', '--host', '127.0.0.1', '--no-mesh', '--memory', '--allow-anonymous', ...argv]), io)
  onTestFinished(async () => { controller.abort(); await running.catch(() => 1) })
  return { banner: await Promise.race([banner, running.then(() => { throw new Error(`the gateway ended:\n${text}`) })]), stop: async () => { controller.abort(); return await running } }
}

describe('iotmesh gateway: Home Assistant flags', () => {
  it.each([
    [['--no-homeassistant', '--homeassistant-prefix', 'ha']],
    [['--homeassistant-prefix', 'ha/#']],
    [['--homeassistant-prefix', '']]
  ])('%j is a usage error', async (argv) => {
    const error = await command.run(parse(command, argv), { stdout: new PassThrough(), stderr: new PassThrough(), stdin: Readable.from([]), env: {}, signal: AbortSignal.abort() }).catch((err: unknown) => err)
    expect(isMeshError(error) && error.code === 'ERR_BAD_ARGUMENT' && error.message.includes('--homeassistant-prefix')).toBe(true)
  })
  it('--help lists them', () => {
    const flags = command.help.map(([flag]) => flag)
    expect(flags).toContain('--no-homeassistant')
    expect(flags).toContain('--homeassistant-prefix P')
  })
})

describeNet('iotmesh gateway: Home Assistant from the command line', () => {
  it('on by default with --homeassistant-prefix: the banner says where, a real client gets the config; --no-homeassistant says off', async () => {
    const gw = await runGateway(['--mqtt-port', '0', '--homeassistant-prefix', 'ha/house'])
    expect(gw.banner).toMatch(/^home asst\. discovery on ha\/house\/sensor\/<device>\/<sensor>\/config, values on iotmesh\/default\/<device>\/value\/<sensor>$/m)
    const url = `mqtt://127.0.0.1:${/^mqtt {7}mqtt:\/\/127\.0\.0\.1:(\d+)$/m.exec(gw.banner)?.[1] ?? '?'}`
    const keys = seededKeys(144)
    const device = await connectDevice(url, keys)
    await device.publishFrame(1)
    const ha = await homeAssistant(url, 'ha/house')
    const m = await ha.next((topic) => topic === `ha/house/sensor/${keys.id}/temp/config`)
    expectValidConfig(m.topic, JSON.parse(m.payload.toString()))
    expect(await gw.stop()).toBe(0)

    const off = await runGateway(['--mqtt-port', '0', '--no-homeassistant'])
    expect(off.banner).toMatch(/^home asst\. off \(--no-homeassistant\)$/m)
    expect(await off.stop()).toBe(0)
  })
})
