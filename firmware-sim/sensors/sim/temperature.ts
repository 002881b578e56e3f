import { normalAt, quantize } from '../../random.js'
import type { Sensor } from '../types.js'
import { simSensor } from './base.js'
import { ambientTemperature, createClimate, type Climate, type ClimateInit } from './climate.js'

export interface TemperatureInit extends ClimateInit {
  /** The climate shared with the device's other sensors; built from the init when absent. */
  climate?: Climate
  /** Deviation of the sensor noise, °C; default 0.1. */
  noise?: number
  /** Resolution of a reading, °C; default 0.1. */
  resolution?: number
}

/** `temperature` in Cel: the daily cycle of the device's climate, plus noise. */
export function createTemperatureSensor (init: TemperatureInit = {}): Sensor {
  const climate = init.climate ?? createClimate(init)
  const noise = init.noise ?? 0.1
  const resolution = init.resolution ?? 0.1
  return simSensor('temperature', ['temperature'], (now) => {
    const v = ambientTemperature(climate, now) + noise * normalAt(climate.seed, climate.device, 'temperature', now)
    return [{ n: 'temperature', u: 'Cel', v: quantize(v, resolution) }]
  })
}
