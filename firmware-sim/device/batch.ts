import type { SenmlRecord } from '../../shared/index.js'
import type { SensorOutput } from '../sensors/registry.js'

/** The records of one sample that go into one frame: everything read for one device topic. */
export interface Batch {
  topic: string
  records: SenmlRecord[]
  sensors: string[]
}

/**
 * Groups one sample's sensor outputs by device topic, in sensor-list order: one frame per topic,
 * so all plain telemetry shares one signature and one base time (a 5-sensor reading is one
 * ~250-byte frame instead of five ~135-byte ones), and events (`events/door`) stay apart where
 * subscribers filter them. Pure.
 */
export function batchByTopic (outputs: readonly SensorOutput[], maxRecords = 128): Batch[] {
  const batches = new Map<string, Batch>()
  const out: Batch[] = []
  for (const { sensor, topic, records } of outputs) {
    let batch = batches.get(topic)
    if (batch === undefined || batch.records.length + records.length > maxRecords) {
      batch = { topic, records: [], sensors: [] }
      batches.set(topic, batch)
      out.push(batch)
    }
    batch.records.push(...records)
    batch.sensors.push(sensor)
  }
  return out
}
