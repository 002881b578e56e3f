import type { SenmlRecord } from '../../../shared/index.js'
import { TELEMETRY_TOPIC, type Sensor, type SensorReading } from '../types.js'

/** A simulated sensor whose reading is computed from the sample time; it yields nothing once closed. */
export function simSensor (name: string, fields: readonly string[], read: (now: number) => SenmlRecord[] | undefined, topic = TELEMETRY_TOPIC): Sensor {
  let closed = false
  return {
    name,
    fields,
    topic,
    read (now: number): SensorReading {
      if (closed) return undefined
      return read(now)
    },
    close () { closed = true }
  }
}
