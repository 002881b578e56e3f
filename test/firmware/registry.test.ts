import { describe, expect, it } from 'vitest'
import { LINUX_SENSORS, SENSOR_FIELDS, SIM_SENSORS, createSensors, parseSensorList, readSensors, type Sensor } from '../../firmware-sim/index.js'
import { T0, codeOf, errorOf, recordingLogger } from './support.js'

describe('sensor lists', () => {
  it.each([
    ['temperature,humidity,battery', ['temperature', 'humidity', 'battery']],
    [' temperature , humidity ', ['temperature', 'humidity']],
    ['cpu-temp,load,memory,disk,wifi,bme280', [...LINUX_SENSORS]],
    ['sim', [...SIM_SENSORS]],
    ['linux', [...LINUX_SENSORS]],
    ['all', [...SIM_SENSORS, 'cpu-temp', 'load', 'memory', 'disk', 'wifi']],
    ['sim,temperature,cpu-temp', [...SIM_SENSORS, 'cpu-temp']],
    ['', []]
  ])('%j', (list, expected) => {
    expect(parseSensorList(list)).toEqual(expected)
  })

  it('takes arrays of names and presets', () => {
    expect(parseSensorList(['temperature', 'door,motion'])).toEqual(['temperature', 'door', 'motion'])
  })

  it('refuses an unknown sensor with ERR_BAD_ARGUMENT naming it', () => {
    const err = errorOf(() => parseSensorList('temperature,thermometer'))
    expect(err?.code).toBe('ERR_BAD_ARGUMENT')
    expect(err?.details).toEqual({ sensor: 'thermometer' })
  })

  it('refuses two sensors that would report the same record', () => {
    const err = errorOf(() => parseSensorList('temperature,bme280'))
    expect(err?.code).toBe('ERR_BAD_ARGUMENT')
    expect(err?.details).toEqual({ sensor: 'bme280' })
    expect(codeOf(() => parseSensorList('all,bme280'))).toBe('ERR_BAD_ARGUMENT')
  })
})

describe('createSensors', () => {
  it('builds the listed sensors in order, each reporting the fields it declares', async () => {
    const sensors = createSensors('sim', { seed: 1, options: { motion: { report: 'always' }, door: { report: 'always' } } })
    expect(sensors.map((s) => s.name)).toEqual([...SIM_SENSORS])
    const outputs = await readSensors(sensors, T0)
    for (const output of outputs) {
      const sensor = sensors.find((s) => s.name === output.sensor) as Sensor
      expect(output.records.map((r) => r.n)).toEqual(sensor.fields)
      expect(sensor.fields).toEqual(SENSOR_FIELDS[sensor.name as keyof typeof SENSOR_FIELDS])
    }
  })

  it('passes per-sensor options and faults through', () => {
    const [battery, temperature] = createSensors('battery,temperature', {
      seed: 1,
      climate: { mean: 30, amplitude: 0 },
      options: { battery: { initialLevel: 50 }, temperature: { noise: 0, faults: { dropout: { chance: 1, durationMs: 1000 } } } }
    })
    expect(battery?.read(T0)).toContainEqual({ n: 'battery', u: '%EL', v: 50 })
    expect(temperature?.read(T0)).toBeUndefined()
    const [plain] = createSensors('temperature', { seed: 1, climate: { mean: 30, amplitude: 0 }, options: { temperature: { noise: 0 } } })
    expect(plain?.read(T0)).toEqual([{ n: 'temperature', u: 'Cel', v: 30 }])
  })

  it('readSensors leaves out a sensor that throws, and says so', async () => {
    const logger = recordingLogger()
    const broken: Sensor = { name: 'broken', fields: [], topic: 'telemetry', read: () => { throw new Error('boom') }, close: () => {} }
    const [temperature] = createSensors('temperature', { seed: 1 })
    const outputs = await readSensors([broken, temperature as Sensor], T0, logger)
    expect(outputs.map((o) => o.sensor)).toEqual(['temperature'])
    expect(logger.notices).toMatchObject([{ sensor: 'broken', event: 'error' }])
  })
})
