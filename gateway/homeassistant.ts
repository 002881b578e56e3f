import { createHash } from 'node:crypto'
import { LINKS_TOPIC, actuatorOfRecord, resolvePack, statusTopic, valueTopic, type ActuatorKind, type DeviceId } from '../shared/index.js'
import { actuatorEntities, stateText, type EntityBase } from './homeassistant-actuators.js'
import type { DeviceInfo } from './devices.js'
import type { Reading, StatusEvent } from './ingest.js'

/**
 * Home Assistant MQTT discovery (https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery):
 * for every numeric sensor of every verified device, a retained config on
 *
 *   <prefix>/sensor/<deviceId>/<object>/config        (prefix "homeassistant" by default)
 *
 * describing an MQTT sensor (https://www.home-assistant.io/integrations/sensor.mqtt/) whose state
 * is a plain number the gateway publishes, retained, on
 *
 *   iotmesh/<fleet>/<deviceId>/value/<object>
 *
 * so Home Assistant needs no template for the value. The value is the SenML value as the device
 * signed it (bv + v, RFC 8428 §4.5.2), in the unit it signed: pressure stays in Pa (Home Assistant
 * converts pressure units itself; a user who wants hPa picks it in the entity's settings), no
 * arithmetic on signed data. Only verified readings get here (the gateway's `reading` event).
 *
 * Availability comes from the device's own retained status (`iotmesh/<fleet>/<id>/status`, JSON
 * {"state":"online"|"offline",…}) through `value_json.state`; a device that never published a
 * status (a mesh-only device) has no availability block, so Home Assistant shows it available
 * (it has no last will to say otherwise). When such a device later publishes a status, its
 * configs are published again with the block.
 *
 * A device is removed (its configs and values cleared with empty retained payloads, MQTT 3.1.1
 * §3.3.1.3) when its retained status is cleared: the MQTT way to forget a device.
 *
 * Not sent: `sw_version` and a device model of its own, because no iotmesh device reports its
 * firmware version or hardware on the wire (the status carries state, pk and name); the model is
 * "iotmesh device". Booleans and strings of sensors are not published. A device's actuators
 * (the state records of shared/actuators.ts) appear as switches, a light and a number where Home
 * Assistant may command them through set/, else read-only (gateway/homeassistant-actuators.ts).
 */

export interface HomeAssistantInit {
  /** The discovery prefix Home Assistant listens on. Default "homeassistant". */
  prefix?: string
  /** Sensors remembered per device (beyond it, new ones are not announced). Default 64. */
  maxSensors?: number
  /** Devices remembered (least recently active first out, their configs kept). Default 10,000. */
  maxDevices?: number
  /**
   * True when Home Assistant may command actuators: the gateway takes set/ requests from some MQTT
   * user (`--set-users`). Then actuators are switches, lights and numbers; else read-only. Default false.
   */
  commandable?: boolean
}

/** What the discovery needs of the gateway. */
export interface HomeAssistantHost {
  readonly fleet: string
  publish (topic: string, payload: string, options: { retain: boolean }): void
  device (id: DeviceId): DeviceInfo | undefined
}

/** How a SenML unit (RFC 8428 §12.1) is shown: Home Assistant's device class and unit, and its state class. */
interface UnitMapping { deviceClass?: string, unit?: string, stateClass: 'measurement' | 'total_increasing' }

/**
 * SenML units to Home Assistant sensor device classes and units
 * (https://www.home-assistant.io/integrations/sensor/#device-class). A unit not listed is passed
 * through with no device class.
 */
export const HA_UNITS: Readonly<Record<string, UnitMapping>> = {
  Cel: { deviceClass: 'temperature', unit: '°C', stateClass: 'measurement' },
  K: { deviceClass: 'temperature', unit: 'K', stateClass: 'measurement' },
  '%RH': { deviceClass: 'humidity', unit: '%', stateClass: 'measurement' },
  Pa: { deviceClass: 'pressure', unit: 'Pa', stateClass: 'measurement' },
  V: { deviceClass: 'voltage', unit: 'V', stateClass: 'measurement' },
  A: { deviceClass: 'current', unit: 'A', stateClass: 'measurement' },
  W: { deviceClass: 'power', unit: 'W', stateClass: 'measurement' },
  '%EL': { deviceClass: 'battery', unit: '%', stateClass: 'measurement' },
  dBm: { deviceClass: 'signal_strength', unit: 'dBm', stateClass: 'measurement' },
  lx: { deviceClass: 'illuminance', unit: 'lx', stateClass: 'measurement' },
  s: { deviceClass: 'duration', unit: 's', stateClass: 'measurement' },
  EL: { deviceClass: 'duration', unit: 's', stateClass: 'measurement' },
  m: { deviceClass: 'distance', unit: 'm', stateClass: 'measurement' },
  B: { deviceClass: 'data_size', unit: 'B', stateClass: 'measurement' },
  '%': { unit: '%', stateClass: 'measurement' },
  count: { stateClass: 'total_increasing' },
  '/': { stateClass: 'measurement' }
}

/** One sensor's discovery config, as published (the keys documented for the MQTT sensor). */
export interface SensorConfig extends EntityBase {
  state_topic: string
  state_class: 'measurement' | 'total_increasing'
  device_class?: string
  unit_of_measurement?: string
}

interface Sensor { object: string, unit: string | undefined, time: number }
/** An actuator of a device, and the sampling time of each of its state records' latest value. */
interface KnownActuator { kind: ActuatorKind, times: Map<string, number> }
interface Known { sensors: Map<string, Sensor>, actuators: Map<string, KnownActuator>, withAvailability: boolean, name: string }

/**
 * A discovery object id ([a-zA-Z0-9_-], Home Assistant's rule) for a SenML name: the name itself
 * when it fits, else the name with other characters as "_" and 6 hex digits of its SHA-256, so two
 * names never share one.
 */
export function objectIdOf (name: string): string {
  if (/^[a-zA-Z0-9_-]+$/.test(name)) return name
  return `${name.replace(/[^a-zA-Z0-9_-]/g, '_')}_${createHash('sha256').update(name).digest('hex').slice(0, 6)}`
}

/** Publishes Home Assistant MQTT discovery configs for every verified device's sensors and actuators, and removes them with the device. */
export class HomeAssistantDiscovery {
  readonly prefix: string
  readonly #host: HomeAssistantHost
  readonly #maxSensors: number
  readonly #maxDevices: number
  readonly #commandable: boolean
  readonly #devices = new Map<DeviceId, Known>()

  constructor (init: HomeAssistantInit, host: HomeAssistantHost) {
    this.prefix = init.prefix ?? 'homeassistant'
    this.#host = host
    this.#maxSensors = init.maxSensors ?? 64
    this.#maxDevices = init.maxDevices ?? 10_000
    this.#commandable = init.commandable ?? false
  }

  /** The config topic of one entity (a sensor unless said otherwise). */
  configTopic (deviceId: DeviceId, object: string, component = 'sensor'): string {
    return `${this.prefix}/${component}/${deviceId}/${object}/config`
  }

  /** A verified reading: configs for sensors not announced yet, then each sensor's latest value. */
  reading (reading: Reading): void {
    if (reading.deviceTopic === LINKS_TOPIC) return // mesh announcements, not sensors
    let records
    try {
      records = resolvePack(reading.records, reading.time)
    } catch {
      return // ingest accepted it, so it resolves; a safety net
    }
    const known = this.#known(reading.origin)
    for (const record of records) {
      if (this.#actuatorState(reading.origin, known, record.name, record.boolValue ?? record.value, record.time)) continue
      if (record.value === undefined) continue
      let sensor = known.sensors.get(record.name)
      if (sensor === undefined) {
        if (known.sensors.size >= this.#maxSensors) continue
        sensor = { object: objectIdOf(record.name), unit: record.unit, time: -Infinity }
        known.sensors.set(record.name, sensor)
        this.#announce(reading.origin, known, record.name, sensor)
      } else if (sensor.unit !== record.unit) {
        sensor.unit = record.unit
        this.#announce(reading.origin, known, record.name, sensor)
      }
      if (record.time < sensor.time) continue // a late (catch-up) reading does not replace a newer value
      sensor.time = record.time
      this.#host.publish(valueTopic(this.#host.fleet, reading.origin, sensor.object), String(record.value), { retain: true })
    }
  }

  /** A status: announces availability once a device has one; a cleared status removes the device. */
  status (event: StatusEvent): void {
    const known = this.#devices.get(event.deviceId)
    if (known === undefined) return
    if (event.status === undefined) {
      this.remove(event.deviceId)
      return
    }
    const name = this.#nameOf(event.deviceId)
    if (!known.withAvailability || name !== known.name) {
      known.withAvailability = true
      known.name = name
      this.#announceAll(event.deviceId, known)
    }
  }

  /** Clears a device's configs and values (empty retained payloads): Home Assistant removes its entities. */
  remove (deviceId: DeviceId): void {
    const known = this.#devices.get(deviceId)
    if (known === undefined) return
    this.#devices.delete(deviceId)
    for (const sensor of known.sensors.values()) {
      this.#host.publish(this.configTopic(deviceId, sensor.object), '', { retain: true })
      this.#host.publish(valueTopic(this.#host.fleet, deviceId, sensor.object), '', { retain: true })
    }
    for (const { kind } of known.actuators.values()) {
      for (const entity of this.#entities(deviceId, known, kind)) this.#host.publish(this.configTopic(deviceId, entity.object, entity.component), '', { retain: true })
      for (const control of kind.controls) this.#host.publish(valueTopic(this.#host.fleet, deviceId, objectIdOf(control.record)), '', { retain: true })
    }
  }

  /** Publishes every config again (a new broker whose retained store is empty). */
  republish (): void {
    for (const [id, known] of this.#devices) this.#announceAll(id, known)
  }

  /** The config of one sensor of a device (pure: what `#announce` publishes). */
  config (deviceId: DeviceId, sensorName: string, unit: string | undefined, options: { object: string, withAvailability: boolean, deviceName: string }): SensorConfig {
    const mapping = unit === undefined ? undefined : HA_UNITS[unit]
    const shownUnit = mapping === undefined ? unit : mapping.unit
    return {
      ...this.#base(deviceId, sensorName, options),
      state_topic: valueTopic(this.#host.fleet, deviceId, options.object),
      state_class: mapping?.stateClass ?? 'measurement',
      ...(mapping?.deviceClass === undefined ? {} : { device_class: mapping.deviceClass }),
      ...(shownUnit === undefined ? {} : { unit_of_measurement: shownUnit })
    }
  }

  /** The keys every entity of a device shares: name, unique_id, availability, device, origin. */
  #base (deviceId: DeviceId, name: string, options: { object: string, withAvailability: boolean, deviceName: string }): EntityBase {
    return {
      name,
      unique_id: `iotmesh_${this.#host.fleet}_${deviceId}_${options.object}`,
      ...(options.withAvailability
        ? {
            availability: [{
              topic: statusTopic(this.#host.fleet, deviceId),
              value_template: '{{ value_json.state }}',
              payload_available: 'online',
              payload_not_available: 'offline'
            }]
          }
        : {}),
      device: { identifiers: [`iotmesh_${deviceId}`], name: options.deviceName, manufacturer: 'iotmesh', model: 'iotmesh device' },
      origin: { name: 'iotmesh gateway' }
    }
  }

  /**
   * One record, when it is an actuator's state (its name and value type in shared/actuators.ts):
   * the actuator's entities announced on first sight, then the value published unless a newer one
   * was. False for anything else (a sensor).
   */
  #actuatorState (deviceId: DeviceId, known: Known, record: string, value: boolean | number | undefined, time: number): boolean {
    const found = actuatorOfRecord(record)
    if (found === undefined || value === undefined || typeof value !== found.control.type) return false
    let actuator = known.actuators.get(found.kind.name)
    if (actuator === undefined) {
      actuator = { kind: found.kind, times: new Map() }
      known.actuators.set(found.kind.name, actuator)
      this.#announceActuator(deviceId, known, found.kind)
    }
    if (time < (actuator.times.get(record) ?? -Infinity)) return true // a late (catch-up) reading
    actuator.times.set(record, time)
    this.#host.publish(valueTopic(this.#host.fleet, deviceId, objectIdOf(record)), stateText(value), { retain: true })
    return true
  }

  #entities (deviceId: DeviceId, known: Known, kind: ActuatorKind): ReturnType<typeof actuatorEntities> {
    const options = (object: string): { object: string, withAvailability: boolean, deviceName: string } => ({ object, withAvailability: known.withAvailability, deviceName: known.name })
    return actuatorEntities(kind, this.#commandable, {
      fleet: this.#host.fleet,
      deviceId,
      objectOf: objectIdOf,
      base: (name, object) => this.#base(deviceId, name, options(object)),
      sensor: (record, unit, object) => ({ ...this.config(deviceId, record, unit, options(object)) })
    })
  }

  #announceActuator (deviceId: DeviceId, known: Known, kind: ActuatorKind): void {
    for (const entity of this.#entities(deviceId, known, kind)) {
      this.#host.publish(this.configTopic(deviceId, entity.object, entity.component), JSON.stringify(entity.config), { retain: true })
    }
  }

  #announceAll (deviceId: DeviceId, known: Known): void {
    for (const [name, sensor] of known.sensors) this.#announce(deviceId, known, name, sensor)
    for (const { kind } of known.actuators.values()) this.#announceActuator(deviceId, known, kind)
  }

  #announce (deviceId: DeviceId, known: Known, sensorName: string, sensor: Sensor): void {
    const config = this.config(deviceId, sensorName, sensor.unit, { object: sensor.object, withAvailability: known.withAvailability, deviceName: known.name })
    this.#host.publish(this.configTopic(deviceId, sensor.object), JSON.stringify(config), { retain: true })
  }

  #known (id: DeviceId): Known {
    let known = this.#devices.get(id)
    if (known === undefined) {
      if (this.#devices.size >= this.#maxDevices) this.#devices.delete(this.#devices.keys().next().value as DeviceId)
      const device = this.#host.device(id)
      known = { sensors: new Map(), actuators: new Map(), withAvailability: device?.status !== undefined, name: this.#nameOf(id) }
    } else {
      this.#devices.delete(id) // re-inserted: least recently active first
    }
    this.#devices.set(id, known)
    return known
  }

  #nameOf (id: DeviceId): string {
    return this.#host.device(id)?.name ?? `iotmesh ${id.slice(0, 8)}`
  }
}
