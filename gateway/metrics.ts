import { Counter, Gauge, Registry } from 'prom-client'
import { DROP_REASON_NAMES } from './reasons.js'
import type { Gateway } from './gateway.js'

/**
 * Prometheus metrics of one gateway, in a registry of its own (several gateways may share a
 * process, as in the tests). Counters follow the gateway's events; gauges are read on scrape.
 */
export function createMetrics (gateway: Gateway): Registry {
  const register = new Registry()
  const labels = { fleet: gateway.fleet }
  register.setDefaultLabels(labels)
  const readings = new Counter({ name: 'iotmesh_gateway_readings_total', help: 'Verified, fresh readings accepted, by the path they came through', labelNames: ['path'], registers: [register] })
  const dropped = new Counter({ name: 'iotmesh_gateway_dropped_total', help: 'Messages dropped, by reason (see DROP_REASONS)', labelNames: ['reason'], registers: [register] })
  const held = new Counter({ name: 'iotmesh_gateway_held_total', help: 'Frames held while their signer key was unknown', registers: [register] })
  const statuses = new Counter({ name: 'iotmesh_gateway_statuses_total', help: 'Device statuses applied, by state', labelNames: ['state'], registers: [register] })
  for (const path of ['broker', 'mesh']) readings.inc({ path }, 0)
  for (const reason of DROP_REASON_NAMES) dropped.inc({ reason }, 0)
  for (const state of ['online', 'offline', 'cleared']) statuses.inc({ state }, 0)
  gateway.on('reading', (r) => { readings.inc({ path: r.path }) })
  gateway.on('drop', (d) => { dropped.inc({ reason: d.reason }) })
  gateway.on('held', () => { held.inc() })
  gateway.on('status', (s) => { statuses.inc({ state: s.status?.state ?? 'cleared' }) })

  new Gauge({
    name: 'iotmesh_gateway_devices',
    help: 'Devices in the registry, by presence',
    labelNames: ['state'],
    registers: [register],
    collect () {
      const list = gateway.devices.list()
      const online = list.filter((d) => d.online).length
      this.set({ state: 'online' }, online)
      this.set({ state: 'offline' }, list.length - online)
    }
  })
  new Gauge({
    name: 'iotmesh_gateway_held_frames',
    help: 'Frames waiting for their signer key right now',
    registers: [register],
    collect () { this.set(gateway.ingest.heldCount) }
  })
  new Gauge({
    name: 'iotmesh_gateway_known_keys',
    help: 'Device public keys known to the gateway',
    registers: [register],
    collect () { this.set(gateway.ingest.keys.size) }
  })
  new Gauge({
    name: 'iotmesh_gateway_mqtt_clients',
    help: 'MQTT clients connected to the embedded broker',
    registers: [register],
    collect () { this.set(gateway.connectedClients) }
  })
  return register
}
