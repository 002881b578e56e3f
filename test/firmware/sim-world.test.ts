import { describe, expect, it, onTestFinished } from 'vitest'
import { encodeCommand, parseCommanders, publicKeyText } from '../../shared/index.js'
import { Fleet, Presence, Room, createPresenceMotionSensor, createRoomTemperatureSensor, simDeviceKeys } from '../../firmware-sim/index.js'
import { cli } from '../helpers/cli.js'
import { describeNet } from '../helpers/netns.js'

/**
 * The simulated world (firmware-sim/fleet/world.ts): actuators act on rooms, sensors read them.
 * The room model alone (exact, pure), then a real fleet on memory links where a relay commanded
 * over the mesh warms the room that another device's thermometer reads.
 */

const T0 = Date.UTC(2026, 0, 1)

describe('Room: a heater warms it, and it cools towards ambient', () => {
  it('follows Newton\'s law between switchings, and finds its crossings exactly', () => {
    const room = new Room('living', { ambient: 15, heaterGain: 10, timeConstantS: 10 }, T0)
    expect(room.temperatureAt(T0 + 60_000)).toBe(15)
    room.setHeater(true, T0 + 10_000)
    const warm = room.temperatureAt(T0 + 20_000)
    expect(warm).toBeCloseTo(15 + 10 * (1 - Math.exp(-1)), 9)
    expect(room.temperatureAt(T0 + 15_000)).toBeLessThan(warm)
    room.setHeater(true, T0 + 12_000) // no change, no record
    expect(room.heaterHistory()).toHaveLength(2)
    room.setHeater(false, T0 + 20_000)
    expect(room.temperatureAt(T0 + 20_000)).toBeCloseTo(warm, 9)
    expect(room.temperatureAt(T0 + 30_000)).toBeCloseTo(15 + (warm - 15) * Math.exp(-1), 9)
    expect(room.temperatureAt(T0 + 1_000_000)).toBeCloseTo(15, 6)
    const [up] = room.crossings(20, 'up', T0, T0 + 60_000)
    const [down] = room.crossings(20, 'down', T0, T0 + 60_000)
    expect(room.temperatureAt(up as number)).toBeCloseTo(20, 5)
    expect(room.temperatureAt(down as number)).toBeCloseTo(20, 5)
    expect(up as number).toBeLessThan(T0 + 20_000)
    expect(down as number).toBeGreaterThan(T0 + 20_000)
    expect(room.crossings(30, 'up', T0, T0 + 60_000)).toEqual([])
  })

  it('gives the same readings for the same switchings and seed', () => {
    const make = (): number[] => {
      const room = new Room('r', { ambient: 15, heaterGain: 10, timeConstantS: 5 }, T0)
      room.setHeater(true, T0 + 1_000)
      const sensor = createRoomTemperatureSensor(room, { seed: 7, device: 2 })
      return Array.from({ length: 20 }, (_, i) => (sensor.read(T0 + i * 500) as Array<{ v: number }>)[0]?.v as number)
    }
    expect(make()).toEqual(make())
  })
})

describe('Presence: seeded visits read by a motion sensor', () => {
  it('is the same under the same seed, different under another, and reports motion on change', () => {
    const a = new Presence({ seed: 3, key: 'hall', gapS: [2, 4], holdS: 1 }, T0)
    const b = new Presence({ seed: 3, key: 'hall', gapS: [2, 4], holdS: 1 }, T0)
    const c = new Presence({ seed: 4, key: 'hall', gapS: [2, 4], holdS: 1 }, T0)
    const visits = a.visits(T0, T0 + 60_000)
    expect(visits).toEqual(b.visits(T0, T0 + 60_000))
    expect(visits).not.toEqual(c.visits(T0, T0 + 60_000))
    expect(visits.length).toBeGreaterThanOrEqual(15)
    for (const [i, v] of visits.entries()) {
      if (i > 0) expect(v - (visits[i - 1] as number)).toBeGreaterThanOrEqual(2000)
      expect(a.motionAt(v)).toBe(true)
      expect(a.motionAt(v + 1000)).toBe(false)
    }
    const sensor = createPresenceMotionSensor(a)
    const first = visits[0] as number
    expect(sensor.read(first - 100)).toEqual([{ n: 'motion', vb: false }])
    expect(sensor.read(first)).toEqual([{ n: 'motion', vb: true }])
    expect(sensor.read(first + 500)).toBeUndefined()
    expect(sensor.read(first + 1000)).toEqual([{ n: 'motion', vb: false }])
  })
})

describe('a fleet whose relay heats the room another device reads', () => {
  it('heater on: the thermometer\'s readings rise; off: they fall towards ambient', async () => {
    const seed = 11
    const commander = simDeviceKeys(seed, 2)
    const fleet = new Fleet({
      devices: 3,
      mode: 'mesh',
      seed,
      interval: 100,
      transport: 'memory',
      gateway: false,
      roles: { 1: { actuators: ['relay'], commanders: parseCommanders({ commanders: [{ key: publicKeyText(commander.publicKey), actions: ['relay/#'] }] }) } },
      world: { rooms: [{ name: 'living', ambient: 15, heaterGain: 10, timeConstantS: 1.5, thermometer: 0, heater: { device: 1 } }] }
    })
    onTestFinished(async () => { await fleet.stop() })
    await fleet.start()
    const readings: Array<{ at: number, v: number }> = []
    fleet.devices[0]?.device?.on('reading', (r) => {
      for (const rec of r.records) if (rec.n === 'temperature' && typeof rec.v === 'number') readings.push({ at: r.time, v: rec.v })
    })
    const node = fleet.devices[2]?.device?.node
    const target = fleet.devices[1]?.keys.id
    if (node === undefined || target === undefined) throw new Error('fleet not up')
    let id = 1
    const relay = async (on: boolean): Promise<void> => {
      for (let tries = 0; ; tries++) {
        const signed = encodeCommand({ keys: commander, target, action: 'relay/set', args: { on }, id: id++, ttl: 5 })
        const result = await node.command(signed, { timeoutMs: 1000 }).catch(() => undefined)
        if (result?.status === 'ok') return
        if (tries > 20) throw new Error(`relay/set ${String(on)} never answered ok (${result?.status ?? 'no answer'})`)
      }
    }
    const room = fleet.world?.rooms[0]?.room as Room
    const wait = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
    await wait(500)
    const before = readings.at(-1)?.v as number
    expect(before).toBeCloseTo(15, 0)
    await relay(true)
    expect(room.heater).toBe(true)
    const onAt = readings.length
    await wait(3000)
    const warmed = readings.slice(onAt).map((r) => r.v)
    expect(Math.max(...warmed)).toBeGreaterThan(before + 6)
    expect(warmed.at(-1) as number).toBeGreaterThan(warmed[0] as number)
    await relay(false)
    expect(room.heater).toBe(false)
    const offAt = readings.length
    const peak = readings[offAt - 1]?.v as number
    await wait(3000)
    const cooled = readings.slice(offAt).map((r) => r.v)
    expect(cooled.at(-1) as number).toBeLessThan(peak - 5)
    expect(cooled.at(-1) as number).toBeGreaterThan(14.5)
    // The room's switchings are the relay's executions, as the device saw them.
    expect(room.heaterHistory().map((s) => s.on)).toEqual([false, true, false])
    // A crash is a power cut: the heater goes off with its device.
    await relay(true)
    await fleet.crash(1)
    expect(room.heater).toBe(false)
  }, 30_000)
})

describeNet('iotmesh sim --world home', () => {
  // The living room starts at 20 °C and cools towards 15 °C (τ 20 s): below 19 °C after ~4.5 s, cold for 10 s, heater on.
  // Visits come every 4–8 s. Only the actuators change the world: a switched light or heater is a command that ran.
  it.each(['mesh', 'broker'])('%s mode: the rules switch the hall light and the heater (on the devices, or at the gateway)', async (mode) => {
    const { code, stdout, stderr } = await cli(['sim', '--world', 'home', '--devices', '6', '--mode', mode, '--transport', 'memory', '--no-mdns', '--duration', '30', '--http-port', '0', '--json'])
    expect(code, stderr).toBe(0)
    const summary = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as { world?: { rulesAt: string, lightOn: number, heaterOn: number, livingC: { min: number, max: number } } }
    expect(summary.world?.rulesAt).toBe(mode === 'mesh' ? 'devices' : 'gateway')
    expect(summary.world?.lightOn, stdout).toBeGreaterThanOrEqual(2)
    expect(summary.world?.heaterOn, stdout).toBeGreaterThanOrEqual(1)
    expect(summary.world?.livingC.min).toBeLessThan(19)
  }, 120_000)

  it.each([
    [['--world', 'garden'], /--world must be home/],
    [['--world', 'home', '--devices', '3'], /at least 4 devices/],
    [['--world', 'home', '--mode', 'broker', '--no-gateway', '--broker', 'mqtt://127.0.0.1:1'], /drop --no-gateway/]
  ])('refuses %j (ERR_BAD_ARGUMENT, exit 2) before anything starts', async (args, message) => {
    const { code, stderr } = await cli(['sim', ...args, '--duration', '1', '--json'])
    expect(code).toBe(2)
    expect(stderr).toMatch(message)
    expect(stderr).toMatch(/ERR_BAD_ARGUMENT/)
  })
})
