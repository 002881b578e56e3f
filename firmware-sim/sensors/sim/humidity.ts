import { between, normalAt, quantize, unitAt } from '../../random.js'
import type { Sensor } from '../types.js'
import { simSensor } from './base.js'
import { ambientTemperature, createClimate, type Climate, type ClimateInit } from './climate.js'

export interface HumidityInit extends ClimateInit {
  /** The climate shared with the device's other sensors; built from the init when absent. */
  climate?: Climate
  /** Relative humidity at the daily mean temperature, %RH; default drawn per device from [40, 60). */
  meanHumidity?: number
  /** %RH lost per °C above the mean (air warms, its relative humidity falls); default 3. */
  slope?: number
  /** Deviation of the sensor noise, %RH; default 1. */
  noise?: number
  /** Resolution of a reading, %RH; default 0.5. */
  resolution?: number
}

/** `humidity` in %RH, anti-correlated with the climate's temperature, within [0, 100]. */
export function createHumiditySensor (init: HumidityInit = {}): Sensor {
  const climate = init.climate ?? createClimate(init)
  const mean = init.meanHumidity ?? between(unitAt(climate.seed, climate.device, 'humidity', 'mean'), 40, 60)
  const slope = init.slope ?? 3
  const noise = init.noise ?? 1
  const resolution = init.resolution ?? 0.5
  return simSensor('humidity', ['humidity'], (now) => {
    const warmer = ambientTemperature(climate, now) - climate.mean
    const v = mean - slope * warmer + noise * normalAt(climate.seed, climate.device, 'humidity', now)
    return [{ n: 'humidity', u: '%RH', v: quantize(Math.min(100, Math.max(0, v)), resolution) }]
  })
}
