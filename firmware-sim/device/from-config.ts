import type { DeviceConfig } from '../config.js'
import type { DeviceInit } from './types.js'

/** The DeviceInit of a resolved configuration (firmware-sim/config.ts): what `iotmesh device` runs. */
export function deviceInit (config: DeviceConfig): DeviceInit {
  return {
    name: config.name,
    fleet: config.fleet,
    mode: config.mode,
    interval: config.interval,
    sensors: config.sensors,
    ...(config.seed === undefined ? {} : { sensorOptions: { seed: config.seed } }),
    dataDir: config.dataDir,
    keyFile: config.key,
    fsync: config.fsync,
    outboxFrames: config.outboxFrames,
    outboxBytes: config.outboxBytes,
    ...(config.broker === undefined
      ? {}
      : { broker: { url: config.broker, auth: config.brokerAuth, ...(config.username === undefined ? {} : { username: config.username }), ...(config.password === undefined ? {} : { password: config.password }) } }),
    mesh: { port: config.port, peers: config.peers, ...routingOf(config) },
    ...(config.commanders === undefined ? {} : { commanders: config.commanders }),
    ...(config.actuators.length === 0 ? {} : { actuators: config.actuators }),
    ...(config.rules === undefined ? {} : { rules: config.rules }),
    ...(config.fleetFile === undefined ? {} : { fleetFile: config.fleetFile }),
    ...(config.groups.length === 0 ? {} : { groups: config.groups }),
    ...(config.encrypt === undefined ? {} : { encrypt: { readers: config.encrypt } }),
    ...(config.credential === undefined ? {} : { credential: config.credential })
  }
}

/** The routing options a device's settings change from their defaults (none: undefined, as before). */
function routingOf (config: DeviceConfig): { routing?: { relayBeforeVerify?: true, broadcastTree?: true } } {
  const routing = { ...(config.relayBeforeVerify ? { relayBeforeVerify: true as const } : {}), ...(config.broadcastTree ? { broadcastTree: true as const } : {}) }
  return Object.keys(routing).length === 0 ? {} : { routing }
}
