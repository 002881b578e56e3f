import type { ScaleObservations } from '../observations.js'
import { perMember, summarizeResources } from './resources.js'
import type { ScalePoint } from '../results/types.js'
import { percentiles, ratio, round } from './stats.js'
import { mergeReadings } from './failover.js'

/**
 * One point of `iotmesh experiment scale`: a fleet of N devices in one mode, measured over
 * [t0, endedAt]. Readings published in the window count; delivery is the share of them that
 * reached the gateway by the end. Per device: the devices' sampled rates divided by N (in mesh
 * mode a device is a mesh node, and bytes include what it relays for others). The broker and the
 * rest of the gateway are reported whole, not divided.
 */
export function summarizeScale (obs: ScaleObservations): ScalePoint {
  const readings = mergeReadings(obs.readings).filter((r) => r.publishedAt >= obs.t0 && r.publishedAt < obs.endedAt)
  const arrived = readings.filter((r) => r.receivedAt?.gateway !== undefined)
  const resources = summarizeResources(obs.samples, obs.t0, obs.endedAt)
  const of = (role: string): ReturnType<typeof perMember> => perMember(resources.find((r) => r.role === role), 1)
  return {
    mode: obs.mode,
    devices: obs.devices,
    ...(obs.transport === undefined ? {} : { transport: obs.transport }),
    seconds: round((obs.endedAt - obs.t0) / 1000, 3),
    readings: readings.length,
    delivered: arrived.length,
    delivery: ratio(arrived.length, readings.length),
    latencyMs: percentiles(arrived.map((r) => (r.receivedAt?.gateway as number) - r.publishedAt)),
    perDevice: perMember(resources.find((r) => r.role === 'devices'), obs.devices),
    broker: of('broker'),
    gateway: of('gateway')
  }
}

/** Points sorted by mode (broker, mesh, hybrid) then fleet size. */
export function sortScalePoints (points: readonly ScalePoint[]): ScalePoint[] {
  const order = { broker: 0, mesh: 1, hybrid: 2 }
  return [...points].sort((a, b) => order[a.mode] - order[b.mode] || a.devices - b.devices)
}
