import { describe, expect, it } from 'vitest'
import {
  createBatterySensor, createClimate, createDoorSensor, createHumiditySensor, createMotionSensor, createPressureSensor,
  createSensors, createTemperatureSensor, liIonVoltage, withSensorFaults, type Sensor
} from '../../firmware-sim/index.js'
import { resolvePack, type SenmlRecord } from '../../shared/index.js'
import { DAY, HOUR, T0, codeOf } from './support.js'

/** Reads a (synchronous) simulated sensor at each time. */
function readAt (sensor: Sensor, times: number[]): Array<SenmlRecord[] | undefined> {
  return times.map((t) => sensor.read(t) as SenmlRecord[] | undefined)
}

function value (records: SenmlRecord[] | undefined, name: string): number {
  const record = records?.find((r) => r.n === name)
  if (record?.v === undefined) throw new Error(`no ${name} in ${JSON.stringify(records)}`)
  return record.v
}

const every = (from: number, to: number, step: number): number[] => Array.from({ length: Math.floor((to - from) / step) }, (_, i) => from + i * step)

function correlation (a: number[], b: number[]): number {
  const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length
  const ma = mean(a)
  const mb = mean(b)
  let cov = 0
  let va = 0
  let vb = 0
  a.forEach((x, i) => {
    const y = b[i] as number
    cov += (x - ma) * (y - mb)
    va += (x - ma) ** 2
    vb += (y - mb) ** 2
  })
  return cov / Math.sqrt(va * vb)
}

describe('seeded simulated sensors', () => {
  const times = every(T0, T0 + 2 * DAY, 10 * 60_000)

  it('give identical readings for the same seed and device, whatever else was read before', () => {
    const a = createSensors('sim', { seed: 42, device: 3 })
    const b = createSensors('sim', { seed: 42, device: 3 })
    // b is also read at other times in between: pure sensors do not care
    const readingsA = a.map((s) => readAt(s, times))
    const readingsB = b.map((s) => times.map((t) => { s.read(t + 7); return s.read(t) as SenmlRecord[] | undefined }))
    // temperature, humidity and pressure are pure functions of time; the battery starts draining
    // at its first read and event sensors report changes, so their history matters
    for (const i of [0, 1, 2]) expect(readingsB[i]).toEqual(readingsA[i])
    const again = createSensors('sim', { seed: 42, device: 3 }).map((s) => readAt(s, times))
    expect(again).toEqual(readingsA)
  })

  it('differ for another seed, and for another device of the same fleet', () => {
    const base = createSensors('temperature,humidity,pressure', { seed: 42, device: 3 }).map((s) => readAt(s, times))
    const seed = createSensors('temperature,humidity,pressure', { seed: 43, device: 3 }).map((s) => readAt(s, times))
    const device = createSensors('temperature,humidity,pressure', { seed: 42, device: 4 }).map((s) => readAt(s, times))
    for (let i = 0; i < 3; i++) {
      expect(seed[i]).not.toEqual(base[i])
      expect(device[i]).not.toEqual(base[i])
    }
  })

  it('produce valid SenML with the registered units (RFC 8428)', () => {
    const sensors = createSensors('sim', { seed: 1, options: { motion: { report: 'always' }, door: { report: 'always' } } })
    const records = sensors.flatMap((s) => s.read(T0) as SenmlRecord[])
    expect(() => resolvePack(records, T0 / 1000)).not.toThrow()
    expect(Object.fromEntries(records.map((r) => [r.n, r.u ?? typeof r.vb]))).toEqual({
      temperature: 'Cel', humidity: '%RH', pressure: 'Pa', battery: '%EL', 'battery-voltage': 'V', motion: 'boolean', door: 'boolean'
    })
    expect(sensors.map((s) => s.topic)).toEqual(['telemetry', 'telemetry', 'telemetry', 'telemetry', 'events/motion', 'events/door'])
  })

  it('round values to a sensor-plausible resolution', () => {
    const [t, h, p] = createSensors('temperature,humidity,pressure', { seed: 9 })
    for (const time of times.slice(0, 50)) {
      const decimals = (x: number): number => (String(x).split('.')[1] ?? '').length
      expect(decimals(value(t?.read(time) as SenmlRecord[], 'temperature'))).toBeLessThanOrEqual(1)
      expect(value(h?.read(time) as SenmlRecord[], 'humidity') * 2 % 1).toBe(0)
      expect(Number.isInteger(value(p?.read(time) as SenmlRecord[], 'pressure'))).toBe(true)
    }
  })
})

describe('temperature and humidity', () => {
  it('follow a daily cycle: warmest near the peak hour, coldest twelve hours later', () => {
    const climate = createClimate({ seed: 5, mean: 20, amplitude: 4, peakHour: 15 })
    const sensor = createTemperatureSensor({ climate, noise: 0 })
    const hourly = every(T0, T0 + DAY, HOUR).map((t) => value(sensor.read(t) as SenmlRecord[], 'temperature'))
    expect(hourly.indexOf(Math.max(...hourly))).toBe(15)
    expect(hourly.indexOf(Math.min(...hourly))).toBe(3)
    expect(Math.max(...hourly)).toBeCloseTo(24, 1)
    expect(Math.min(...hourly)).toBeCloseTo(16, 1)
    // a sinusoid: the mean over the day is the climate's mean, and day k+1 repeats day k
    expect(hourly.reduce((s, x) => s + x, 0) / 24).toBeCloseTo(20, 1)
    expect(every(T0 + DAY, T0 + 2 * DAY, HOUR).map((t) => value(sensor.read(t) as SenmlRecord[], 'temperature'))).toEqual(hourly)
  })

  it('shift the cycle with the local time offset', () => {
    const utc = createTemperatureSensor({ seed: 5, noise: 0, mean: 20, amplitude: 4 })
    const east = createTemperatureSensor({ seed: 5, noise: 0, mean: 20, amplitude: 4, utcOffsetMinutes: 120 })
    expect(east.read(T0 + 13 * HOUR)).toEqual(utc.read(T0 + 15 * HOUR))
  })

  it('keep noise small and centred', () => {
    const noisy = createTemperatureSensor({ seed: 5, mean: 20, amplitude: 0, noise: 0.1 })
    const values = every(T0, T0 + DAY, 60_000).map((t) => value(noisy.read(t) as SenmlRecord[], 'temperature'))
    const mean = values.reduce((s, x) => s + x, 0) / values.length
    expect(mean).toBeCloseTo(20, 1)
    expect(Math.max(...values) - Math.min(...values)).toBeGreaterThan(0)
    expect(Math.max(...values.map((v) => Math.abs(v - 20)))).toBeLessThan(0.7)
  })

  it('humidity moves against temperature and stays within 0–100 %RH', () => {
    const climate = createClimate({ seed: 8 })
    const temperature = createTemperatureSensor({ climate })
    const humidity = createHumiditySensor({ climate })
    const times = every(T0, T0 + 2 * DAY, 15 * 60_000)
    const t = times.map((time) => value(temperature.read(time) as SenmlRecord[], 'temperature'))
    const h = times.map((time) => value(humidity.read(time) as SenmlRecord[], 'humidity'))
    expect(correlation(t, h)).toBeLessThan(-0.8)
    const extreme = createHumiditySensor({ climate, meanHumidity: 98, slope: 10 })
    for (const time of times) {
      const v = value(extreme.read(time) as SenmlRecord[], 'humidity')
      expect(v).toBeGreaterThanOrEqual(0)
      expect(v).toBeLessThanOrEqual(100)
    }
  })
})

describe('pressure', () => {
  it('wanders slowly around 101325 Pa', () => {
    const sensor = createPressureSensor({ seed: 3 })
    const values = every(T0, T0 + 14 * DAY, 10 * 60_000).map((t) => value(sensor.read(t) as SenmlRecord[], 'pressure'))
    const mean = values.reduce((s, x) => s + x, 0) / values.length
    expect(Math.abs(mean - 101_325)).toBeLessThan(2500)
    expect(Math.max(...values) - Math.min(...values)).toBeGreaterThan(300) // it does move
    for (const v of values) expect(Math.abs(v - 101_325)).toBeLessThan(5000)
    // slow: ten minutes apart, readings differ by little
    const steps = values.slice(1).map((v, i) => Math.abs(v - (values[i] as number)))
    expect(Math.max(...steps)).toBeLessThan(150)
  })

  it('is the fleet\'s weather: two devices differ by a small fixed offset and noise', () => {
    const a = createPressureSensor({ seed: 3, device: 0 })
    const b = createPressureSensor({ seed: 3, device: 1 })
    for (const t of every(T0, T0 + DAY, HOUR)) {
      expect(Math.abs(value(a.read(t) as SenmlRecord[], 'pressure') - value(b.read(t) as SenmlRecord[], 'pressure'))).toBeLessThan(150)
    }
  })
})

describe('battery', () => {
  it('drains monotonically, level and voltage, along a Li-ion curve', () => {
    const sensor = createBatterySensor({ seed: 2, lifeHours: 48, initialLevel: 100 })
    const readings = every(T0, T0 + 3 * DAY, 5 * 60_000).map((t) => sensor.read(t) as SenmlRecord[])
    const levels = readings.map((r) => value(r, 'battery'))
    const volts = readings.map((r) => value(r, 'battery-voltage'))
    for (let i = 1; i < readings.length; i++) {
      expect(levels[i]).toBeLessThanOrEqual(levels[i - 1] as number)
      expect(volts[i]).toBeLessThanOrEqual(volts[i - 1] as number)
    }
    expect(levels[0]).toBe(100)
    expect(volts[0]).toBe(4.2)
    expect(value(sensor.read(T0 + 24 * HOUR) as SenmlRecord[], 'battery')).toBe(50)
    expect(levels.at(-1)).toBe(0)
    expect(volts.at(-1)).toBe(3)
    expect(Number.isInteger(levels[7])).toBe(true)
  })

  it('has a plausible open-circuit voltage curve', () => {
    expect(liIonVoltage(100)).toBe(4.2)
    expect(liIonVoltage(0)).toBe(3.0)
    expect(liIonVoltage(50)).toBeCloseTo(3.82, 2)
    for (let level = 1; level <= 100; level++) expect(liIonVoltage(level)).toBeGreaterThan(liIonVoltage(level - 1))
  })

  it('starts draining at the first read unless told when it was charged', () => {
    const late = createBatterySensor({ seed: 2, initialLevel: 90 })
    expect(value(late.read(T0 + 10 * DAY) as SenmlRecord[], 'battery')).toBe(90)
    const charged = createBatterySensor({ seed: 2, initialLevel: 90, lifeHours: 100, start: T0 })
    expect(value(charged.read(T0 + 10 * HOUR) as SenmlRecord[], 'battery')).toBe(80)
  })
})

describe('motion and door events', () => {
  const day = every(T0, T0 + DAY, 10_000)

  it('motion: Poisson-ish events as vb, reported on change, more by day', () => {
    const sensor = createMotionSensor({ seed: 11, ratePerHour: 10 })
    const changes = day.map((t) => ({ t, r: sensor.read(t) as SenmlRecord[] | undefined })).filter((x) => x.r !== undefined)
    expect(changes[0]?.t).toBe(T0) // the first read always reports
    const starts = changes.filter((x) => x.r?.[0]?.vb === true)
    expect(starts.length).toBeGreaterThan(40)
    expect(starts.length).toBeLessThan(240)
    // on and off alternate: a change is a change
    changes.forEach((x, i) => { if (i > 0) expect(x.r?.[0]?.vb).not.toBe(changes[i - 1]?.r?.[0]?.vb) })
    const hourOf = (t: number): number => new Date(t).getUTCHours()
    const byDay = starts.filter((x) => hourOf(x.t) >= 9 && hourOf(x.t) < 21).length
    expect(byDay).toBeGreaterThan(starts.length - byDay)
  })

  it('door: opens and closes, each opening within the configured time', () => {
    const sensor = createDoorSensor({ seed: 11, ratePerHour: 4, minOpenMs: 5_000, maxOpenMs: 60_000, report: 'always' })
    const states = every(T0, T0 + DAY, 1000).map((t) => (sensor.read(t) as SenmlRecord[])[0]?.vb as boolean)
    const openings = states.filter((s, i) => s && !(states[i - 1] ?? false)).length
    expect(openings).toBeGreaterThan(40)
    expect(openings).toBeLessThan(160)
    let run = 0
    for (const s of states) {
      run = s ? run + 1 : 0
      expect(run).toBeLessThanOrEqual(120) // overlapping openings may chain, but not for long
    }
  })

  it('are reproducible for a seed', () => {
    const a = createDoorSensor({ seed: 4 })
    const b = createDoorSensor({ seed: 4 })
    expect(day.map((t) => a.read(t))).toEqual(day.map((t) => b.read(t)))
    const c = createDoorSensor({ seed: 5 })
    expect(day.map((t) => c.read(t))).not.toEqual(day.map((t) => createDoorSensor({ seed: 4 }).read(t)))
  })

  it('refuse nonsense rates with ERR_BAD_ARGUMENT', () => {
    expect(codeOf(() => createMotionSensor({ ratePerHour: -1 }))).toBe('ERR_BAD_ARGUMENT')
    expect(codeOf(() => createDoorSensor({ minOpenMs: 10, maxOpenMs: 5 }))).toBe('ERR_BAD_ARGUMENT')
  })
})

describe('faults', () => {
  const times = every(T0, T0 + DAY, 60_000)

  it('none unless asked for', () => {
    const plain = createTemperatureSensor({ seed: 1 })
    const wrapped = withSensorFaults(createTemperatureSensor({ seed: 1 }), undefined, { seed: 1 })
    expect(times.map((t) => wrapped.read(t))).toEqual(times.map((t) => plain.read(t)))
    expect(times.some((t) => wrapped.faultAt(t) !== undefined)).toBe(false)
  })

  it('dropout: no reading for whole windows, as often as asked', () => {
    const [sensor] = createSensors('temperature', { seed: 1, options: { temperature: { faults: { dropout: { chance: 0.2, durationMs: 10 * 60_000 } } } } })
    const readings = times.map((t) => sensor?.read(t))
    const missing = readings.filter((r) => r === undefined).length
    expect(missing).toBeGreaterThan(0.08 * times.length)
    expect(missing).toBeLessThan(0.35 * times.length)
    // whole windows: every reading in a faulty 10-minute window is missing
    times.forEach((t, i) => {
      const window = Math.floor(t / 600_000)
      const sameWindow = times.map((u, j) => [u, j] as const).filter(([u]) => Math.floor(u / 600_000) === window)
      for (const [, j] of sameWindow) expect(readings[j] === undefined).toBe(readings[i] === undefined)
    })
  })

  it('stuck: repeats the last value for the window, then reads again', () => {
    const faulty = withSensorFaults(createTemperatureSensor({ seed: 1, noise: 0.3 }), { stuck: { chance: 0.25, durationMs: 30 * 60_000 } }, { seed: 1 })
    const values = times.map((t) => value(faulty.read(t) as SenmlRecord[], 'temperature'))
    const stuck = times.map((t) => faulty.faultAt(t) === 'stuck')
    expect(stuck.filter(Boolean).length).toBeGreaterThan(0.1 * times.length)
    let checked = 0
    stuck.forEach((isStuck, i) => {
      if (isStuck && i > 0) {
        expect(values[i]).toBe(values[i - 1])
        checked++
      }
    })
    expect(checked).toBeGreaterThan(10)
    // outside faults, values move (noise)
    const free = values.filter((_, i) => !stuck[i] && i > 0 && !stuck[i - 1] && values[i] !== values[i - 1])
    expect(free.length).toBeGreaterThan(100)
  })

  it('chance 1 is always, and fault options are checked', () => {
    const always = withSensorFaults(createTemperatureSensor({ seed: 1 }), { dropout: { chance: 1, durationMs: 1000 } })
    expect(times.every((t) => always.read(t) === undefined)).toBe(true)
    expect(codeOf(() => withSensorFaults(createTemperatureSensor(), { stuck: { chance: 2, durationMs: 1000 } }))).toBe('ERR_BAD_ARGUMENT')
    expect(codeOf(() => withSensorFaults(createTemperatureSensor(), { dropout: { chance: 0.1, durationMs: 0 } }))).toBe('ERR_BAD_ARGUMENT')
  })

  it('are reproducible for a seed', () => {
    const make = (seed: number): Array<string | undefined> => {
      const s = withSensorFaults(createTemperatureSensor({ seed }), { stuck: { chance: 0.3, durationMs: 600_000 }, dropout: { chance: 0.1, durationMs: 600_000 } }, { seed })
      return times.map((t) => s.faultAt(t))
    }
    expect(make(7)).toEqual(make(7))
    expect(make(7)).not.toEqual(make(8))
  })
})

describe('closed sensors', () => {
  it('yield nothing', () => {
    const sensor = createTemperatureSensor()
    sensor.close()
    sensor.close()
    expect(sensor.read(T0)).toBeUndefined()
  })
})
