import { createServer } from 'node:net'
import { Aedes } from 'aedes'
import { connect } from 'mqtt'
import { describe, expect, it, onTestFinished } from 'vitest'
import {
  cmdTopic, decodeResult, encodeCommand, parseCommanders, publicKeyText, resultTopic, type KeyPair
} from '../../shared/index.js'
import { COMMAND_FILTER } from '../../mesh/index.js'
import { parseRules, type Device } from '../../firmware-sim/index.js'
import { Waiter, addressOf, keysFor, meshInit, memoryNet, startDevice, startPeer } from './device-support.js'

/**
 * The device runtime with commands and rules (firmware-sim/device/commands.ts): a device executes
 * what its commanders may ask, over the mesh and over MQTT with one journal, publishes its
 * actuators' new state at once, and runs rules that command other devices directly.
 */

const commandersOf = (...keys: KeyPair[]): ReturnType<typeof parseCommanders> =>
  parseCommanders({ commanders: keys.map((k) => ({ key: publicKeyText(k.publicKey), actions: ['#'] })) })

let nextId = 5000
const relayOn = (issuer: KeyPair, target: string, on = true): Uint8Array => encodeCommand({ keys: issuer, target, action: 'relay/set', args: { on }, id: nextId++, ttl: 10 })

/** Waits until `device`'s node knows it takes commands (its own declaration) and `peer` has a route to it. */
async function serving (waiter: Waiter, peer: { interest: () => Array<{ subscriber: string, filters: readonly string[] }> }, device: Device): Promise<void> {
  const timer = setInterval(waiter.kick, 20)
  onTestFinished(() => { clearInterval(timer) })
  await waiter.until(() => peer.interest().some((s) => s.subscriber === device.id && s.filters.includes(COMMAND_FILTER)), 'the device\'s command declaration')
}

describe('device runtime: commands and rules', () => {
  it('executes a commander\'s command over the mesh and publishes the new state at once, before its next sample', async () => {
    const net = memoryNet(31)
    const waiter = new Waiter()
    const issuerKeys = keysFor(40)
    const issuer = await startPeer(net, 'issuer', issuerKeys)
    const keys = keysFor(41)
    const { device } = await startDevice({
      mode: 'mesh', sensors: 'temperature', interval: 60_000, actuators: ['relay'], commanders: commandersOf(issuerKeys), mesh: meshInit('t', [addressOf(issuer)])
    }, { keys, transport: net.createTransport({ keepaliveInterval: 100, keepaliveTimeout: 1000 }, { keys }) }, waiter)
    const states: unknown[] = []
    device.on('reading', (r) => { for (const rec of r.records) if (rec.n === 'relay') states.push(rec.vb) })
    await serving(waiter, issuer, device)
    await waiter.until(() => states.length >= 1, 'the first sample, with the relay off')
    expect(states).toEqual([false])
    const result = await issuer.command(relayOn(issuerKeys, device.id), { timeoutMs: 5000 })
    expect(result.status).toBe('ok')
    expect(device.actuatorState).toEqual({ relay: true })
    await waiter.until(() => states.length >= 2, 'the relay\'s new state, published at once')
    expect(states).toEqual([false, true])
    expect(device.counters.commands).toMatchObject({ executed: 1, repeated: 0 })
    // Someone else's command (not a commander) changes nothing and gets no answer.
    await expect(issuer.command(relayOn(issuerKeys, device.id, false), { timeoutMs: 5000 })).resolves.toMatchObject({ status: 'ok' })
    const stranger = keysFor(42)
    const other = await startPeer(net, 'stranger', stranger, [addressOf(issuer)])
    await waiter.until(() => other.routeTo(device.id) !== undefined, 'a route from the stranger')
    await expect(other.command(relayOn(stranger, device.id), { timeoutMs: 600 })).rejects.toMatchObject({ code: 'ERR_TIMEOUT' })
    expect(device.actuatorState).toEqual({ relay: false })
    expect(device.counters.commands?.refused.ERR_NOT_ALLOWED).toBeGreaterThanOrEqual(1)
  })

  it('a rule on one device commands another when a third one\'s reading crosses a threshold: mesh only, no broker, no gateway', async () => {
    const net = memoryNet(32)
    const waiter = new Waiter()
    const sensorKeys = keysFor(50)
    const sensor = await startPeer(net, 'sensor', sensorKeys)
    const ruleKeys = keysFor(51)
    const heaterKeys = keysFor(52)
    const link = { keepaliveInterval: 100, keepaliveTimeout: 1000 }
    // The heater: a relay that obeys the rule device. Linked to the sensor only: the rule's command travels two hops.
    const { device: heater } = await startDevice({
      mode: 'mesh', sensors: 'temperature', interval: 60_000, actuators: ['relay'], commanders: commandersOf(ruleKeys), mesh: meshInit('heater', [addressOf(sensor)])
    }, { keys: heaterKeys, transport: net.createTransport(link, { keys: heaterKeys }) }, waiter)
    const rules = parseRules(JSON.stringify({
      devices: { hall: sensorKeys.id, heater: heaterKeys.id },
      rules: [{ name: 'cold-hall-heater-on', when: { all: [{ device: 'hall', sensor: 'temp', below: 19 }] }, then: [{ device: 'heater', action: 'relay/set', args: { on: true } }] }]
    }))
    const { device: ruler } = await startDevice({
      mode: 'mesh', sensors: 'temperature', interval: 60_000, rules, mesh: meshInit('ruler', [addressOf(sensor)])
    }, { keys: ruleKeys, transport: net.createTransport(link, { keys: ruleKeys }) }, waiter)
    await serving(waiter, ruler.node as NonNullable<Device['node']>, heater)
    await waiter.until(() => sensor.wanted(), 'the rule device\'s subscription at the sensor')
    sensor.publish('telemetry', [{ n: 'temp', u: 'Cel', v: 21 }])
    sensor.publish('telemetry', [{ n: 'temp', u: 'Cel', v: 18.5 }])
    await waiter.until(() => heater.actuatorState.relay === true, 'the heater switched on by the rule', 10_000)
    await waiter.until(() => ruler.counters.commands?.rules.results.ok === 1, 'the verified result back at the rule device')
    expect(ruler.counters.commands?.rules).toMatchObject({ fired: 1, sent: 1 })
    expect(heater.counters.commands?.executed).toBe(1)
  })

  it('hybrid: the same command through the mesh and through MQTT runs once; both answers are signed results', async () => {
    const aedes = await Aedes.createBroker()
    const server = createServer(aedes.handle)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    onTestFinished(async () => { await new Promise((resolve) => { aedes.close(() => { server.close(resolve) }) }) })
    const url = `mqtt://127.0.0.1:${(server.address() as { port: number }).port}`
    const net = memoryNet(33)
    const waiter = new Waiter()
    const issuerKeys = keysFor(60)
    const issuer = await startPeer(net, 'issuer', issuerKeys)
    const keys = keysFor(61)
    const { device } = await startDevice({
      mode: 'hybrid', broker: { url, auth: 'none' }, sensors: 'temperature', interval: 60_000, actuators: ['relay'], commanders: commandersOf(issuerKeys),
      mesh: meshInit('t', [addressOf(issuer)])
    }, { keys, transport: net.createTransport({ keepaliveInterval: 100, keepaliveTimeout: 1000 }, { keys }) }, waiter)
    await serving(waiter, issuer, device)
    await waiter.until(() => device.counters.paths.broker?.up === true, 'the broker path up')
    const client = connect(url, { reconnectPeriod: 0 })
    onTestFinished(async () => { await client.endAsync(true) })
    await new Promise((resolve) => client.once('connect', resolve))
    const results: Uint8Array[] = []
    client.on('message', (_topic, payload) => { results.push(new Uint8Array(payload)); waiter.kick() })
    await client.subscribeAsync(resultTopic('default', device.id, issuerKeys.id), { qos: 1 })
    const signed = relayOn(issuerKeys, device.id)
    const [viaMesh] = await Promise.all([
      issuer.command(signed, { timeoutMs: 5000 }),
      client.publishAsync(cmdTopic('default', device.id, 'relay/set'), Buffer.from(signed), { qos: 1 })
    ])
    await waiter.until(() => results.length >= 1, 'the result on MQTT')
    expect(viaMesh.status).toBe('ok')
    expect(decodeResult(results[0] as Uint8Array)).toMatchObject({ status: 'ok', target: device.id, issuer: issuerKeys.id })
    expect(device.counters.commands).toMatchObject({ executed: 1, repeated: 1 })
    expect(device.actuatorState).toEqual({ relay: true })
  })
})
