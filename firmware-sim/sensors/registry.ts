import { meshError, type SenmlRecord } from '../../shared/index.js'
import { createBme280Sensor, type Bme280Components, type Bme280Init } from './linux/bme280.js'
import { createCpuTempSensor, type CpuTempInit } from './linux/cpu-temp.js'
import { createDiskSensor, type DiskComponents, type DiskInit } from './linux/disk.js'
import { createLoadSensor } from './linux/load.js'
import { createMemorySensor } from './linux/memory.js'
import type { LinuxInit } from './linux/presence.js'
import { createWifiSensor, type WifiInit } from './linux/wifi.js'
import { createBatterySensor, type BatteryInit } from './sim/battery.js'
import { createClimate, type ClimateInit, type SimInit } from './sim/climate.js'
import { createDoorSensor, type DoorInit } from './sim/door.js'
import { withSensorFaults, type SensorFaults } from './sim/faults.js'
import { createHumiditySensor, type HumidityInit } from './sim/humidity.js'
import { createMotionSensor, type MotionInit } from './sim/motion.js'
import { createPressureSensor, type PressureInit } from './sim/pressure.js'
import { createTemperatureSensor, type TemperatureInit } from './sim/temperature.js'
import { stderrLogger, type Sensor, type SensorLogger } from './types.js'

export const SIM_SENSORS = ['temperature', 'humidity', 'pressure', 'battery', 'motion', 'door'] as const
export const LINUX_SENSORS = ['cpu-temp', 'load', 'memory', 'disk', 'wifi', 'bme280'] as const
export type SensorName = typeof SIM_SENSORS[number] | typeof LINUX_SENSORS[number]

/**
 * Presets: `sim` every simulated sensor, `linux` every sensor of a Linux machine, `all` both
 * except `bme280`, whose temperature, humidity and pressure are the simulated climate's names
 * (a device reports one source for each: list `linux` or `bme280` on hardware).
 */
export const SENSOR_PRESETS: Readonly<Record<'sim' | 'linux' | 'all', readonly SensorName[]>> = {
  sim: SIM_SENSORS,
  linux: LINUX_SENSORS,
  all: [...SIM_SENSORS, ...LINUX_SENSORS.filter((s) => s !== 'bme280')]
}

/** The record names each sensor reports. */
export const SENSOR_FIELDS: Readonly<Record<SensorName, readonly string[]>> = {
  temperature: ['temperature'],
  humidity: ['humidity'],
  pressure: ['pressure'],
  battery: ['battery', 'battery-voltage'],
  motion: ['motion'],
  door: ['door'],
  'cpu-temp': ['cpu-temp'],
  load: ['load1', 'load5', 'load15'],
  memory: ['memory', 'memory-available'],
  disk: ['disk', 'disk-free'],
  wifi: ['wifi'],
  bme280: ['temperature', 'pressure', 'humidity']
}

const KNOWN = new Set<string>([...SIM_SENSORS, ...LINUX_SENSORS])

/**
 * Parses a sensor list: names and presets separated by commas (`"temperature,humidity,battery"`,
 * `"linux"`, `"sim,cpu-temp"`), or an array of them. Presets expand in place, repeats count
 * once, an empty list is a device without sensors (a relay). Throws ERR_BAD_ARGUMENT naming an
 * unknown sensor, or two sensors that would report the same record name.
 */
export function parseSensorList (list: string | readonly string[]): SensorName[] {
  const items = (typeof list === 'string' ? list.split(',') : list.flatMap((item) => item.split(','))).map((s) => s.trim()).filter((s) => s !== '')
  const out: SensorName[] = []
  for (const item of items) {
    const expanded = item in SENSOR_PRESETS ? SENSOR_PRESETS[item as keyof typeof SENSOR_PRESETS] : [item]
    for (const name of expanded) {
      if (!KNOWN.has(name)) {
        throw meshError('ERR_BAD_ARGUMENT', `unknown sensor ${JSON.stringify(name)}; known sensors: ${[...KNOWN].join(', ')}; presets: ${Object.keys(SENSOR_PRESETS).join(', ')}`, { details: { sensor: name } })
      }
      if (!out.includes(name as SensorName)) out.push(name as SensorName)
    }
  }
  const owner = new Map<string, SensorName>()
  for (const name of out) {
    for (const field of SENSOR_FIELDS[name]) {
      const other = owner.get(field)
      if (other !== undefined) throw meshError('ERR_BAD_ARGUMENT', `sensors ${other} and ${name} both report ${JSON.stringify(field)}; list only one of them`, { details: { sensor: name } })
      owner.set(field, name)
    }
  }
  return out
}

type WithFaults<T> = Omit<T, 'seed' | 'device' | 'climate' | 'root'> & { faults?: SensorFaults }

/** Options per sensor, by name; `faults` injects stuck values and dropouts (simulated sensors, or any). */
export interface SensorOptions {
  temperature?: WithFaults<TemperatureInit>
  humidity?: WithFaults<HumidityInit>
  pressure?: WithFaults<PressureInit>
  battery?: WithFaults<BatteryInit>
  motion?: WithFaults<MotionInit>
  door?: WithFaults<DoorInit>
  'cpu-temp'?: WithFaults<CpuTempInit>
  load?: WithFaults<LinuxInit>
  memory?: WithFaults<LinuxInit>
  disk?: WithFaults<DiskInit>
  wifi?: WithFaults<WifiInit>
  bme280?: WithFaults<Bme280Init>
}

export interface SensorsInit extends SimInit, LinuxInit {
  /** The simulated climate (daily mean and swing) shared by temperature, humidity and motion. */
  climate?: Omit<ClimateInit, 'seed' | 'device'>
  options?: SensorOptions
}

export type SensorsComponents = Bme280Components & DiskComponents & { logger?: SensorLogger }

/**
 * Builds the sensors of a list (see parseSensorList), in list order. Simulated sensors are a
 * function of (seed, device, sample time); Linux sensors read below `root`.
 */
export function createSensors (list: string | readonly string[], init: SensorsInit = {}, components: SensorsComponents = {}): Sensor[] {
  const names = parseSensorList(list)
  const sim = { seed: init.seed ?? 1, device: init.device ?? 0 }
  const climate = createClimate({ ...init.climate, ...sim })
  const root = init.root ?? '/'
  const linux = { ...components, logger: components.logger ?? stderrLogger }
  const options = init.options ?? {}
  return names.map((name) => {
    const { faults, ...own } = (options[name] ?? {}) as { faults?: SensorFaults } & Record<string, unknown>
    const sensor = build(name, own)
    return faults === undefined ? sensor : withSensorFaults(sensor, faults, sim)
  })

  function build (name: SensorName, own: Record<string, unknown>): Sensor {
    switch (name) {
      case 'temperature': return createTemperatureSensor({ ...own, ...sim, climate })
      case 'humidity': return createHumiditySensor({ ...own, ...sim, climate })
      case 'pressure': return createPressureSensor({ ...own, ...sim })
      case 'battery': return createBatterySensor({ ...own, ...sim })
      case 'motion': return createMotionSensor({ ...own, ...sim, climate })
      case 'door': return createDoorSensor({ ...own, ...sim })
      case 'cpu-temp': return createCpuTempSensor({ ...own, root }, linux)
      case 'load': return createLoadSensor({ root }, linux)
      case 'memory': return createMemorySensor({ root }, linux)
      case 'disk': return createDiskSensor({ ...own, root }, linux)
      case 'wifi': return createWifiSensor({ ...own, root }, linux)
      case 'bme280': return createBme280Sensor(own, linux)
    }
  }
}

/** One sensor's records from one read. */
export interface SensorOutput {
  sensor: string
  topic: string
  records: SenmlRecord[]
}

/**
 * Reads every sensor at `now`, concurrently. A sensor that yields nothing is left out; one that
 * throws is reported through the logger and left out: one bad sensor never stops the others.
 */
export async function readSensors (sensors: readonly Sensor[], now: number, logger: SensorLogger = stderrLogger): Promise<SensorOutput[]> {
  const results = await Promise.allSettled(sensors.map(async (sensor) => await sensor.read(now)))
  const out: SensorOutput[] = []
  results.forEach((result, i) => {
    const sensor = sensors[i] as Sensor
    if (result.status === 'rejected') {
      const reason = (result.reason as Error)?.message ?? String(result.reason)
      logger.warn(`sensor ${sensor.name} failed to read: ${reason}`, { sensor: sensor.name, event: 'error', reason })
    } else if (result.value !== undefined && result.value.length > 0) {
      out.push({ sensor: sensor.name, topic: sensor.topic, records: result.value })
    }
  })
  return out
}
