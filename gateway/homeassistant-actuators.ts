import { setTopic, valueTopic, type ActuatorKind, type DeviceId } from '../shared/index.js'

/**
 * Home Assistant entities for a device's actuators (shared/actuators.ts), beside the sensors of
 * gateway/homeassistant.ts. Where Home Assistant may command them (the gateway takes set/ requests
 * from some MQTT user: `--set-users`), each actuator is one controllable entity whose commands go
 * to `iotmesh/<fleet>/<id>/set/<actuator>`, which the gateway signs as a command (gateway/commands.ts):
 *
 *   relay, valve  switch  https://www.home-assistant.io/integrations/switch.mqtt/
 *                         command "ON"/"OFF" → {"on"|"open": bool}; state "ON"/"OFF"
 *   light         light   https://www.home-assistant.io/integrations/light.mqtt/ (default schema)
 *                         command "ON"/"OFF", brightness 0–100 (brightness_scale 100) → {"level": n}
 *   thermostat    number  https://www.home-assistant.io/integrations/number.mqtt/
 *                         5–35 °C in steps of 0.5 → {"setpoint": n}
 *
 * The state is what the device's signed readings report, never what was asked (no `optimistic`):
 * a command the device refuses leaves the entity as it was. Where Home Assistant may not command
 * them, each state record is read-only: on/off as a binary sensor
 * (https://www.home-assistant.io/integrations/binary_sensor.mqtt/), numbers as sensors.
 *
 * State values go, retained, to `iotmesh/<fleet>/<id>/value/<object>` like the sensors': on/off as
 * "ON"/"OFF" (the payloads these components expect by default), numbers as plain numbers.
 */

/** The keys every entity config shares: who it is, which device, availability. */
export interface EntityBase {
  name: string
  unique_id: string
  device: { identifiers: string[], name: string, manufacturer: string, model: string }
  origin: { name: string }
  availability?: Array<{ topic: string, value_template: string, payload_available: string, payload_not_available: string }>
}

export type ActuatorComponent = 'switch' | 'light' | 'number' | 'binary_sensor'

/** One entity: its discovery component, object id and config (what is published, retained). */
export interface ActuatorEntity {
  component: ActuatorComponent | 'sensor'
  object: string
  config: Record<string, unknown>
}

export interface EntityContext {
  fleet: string
  deviceId: DeviceId
  /** The config of a read-only numeric state record as a plain sensor (gateway/homeassistant.ts). */
  sensor: (record: string, unit: string | undefined, object: string) => Record<string, unknown>
  base: (name: string, object: string) => EntityBase
  objectOf: (record: string) => string
}

/** The entities of one actuator: one controllable entity, or one read-only entity per state record. */
export function actuatorEntities (kind: ActuatorKind, commandable: boolean, ctx: EntityContext): ActuatorEntity[] {
  const value = (record: string): string => valueTopic(ctx.fleet, ctx.deviceId, ctx.objectOf(record))
  const command = setTopic(ctx.fleet, ctx.deviceId, kind.name)
  const [main, level] = kind.controls
  if (main === undefined) return []
  if (!commandable) {
    return kind.controls.map((control) => {
      const object = ctx.objectOf(control.record)
      return control.type === 'boolean'
        ? { component: 'binary_sensor', object, config: { ...ctx.base(control.record, object), state_topic: value(control.record), payload_on: 'ON', payload_off: 'OFF' } }
        : { component: 'sensor', object, config: ctx.sensor(control.record, control.unit, object) }
    })
  }
  const object = ctx.objectOf(kind.name)
  const base = ctx.base(kind.name, object)
  if (kind.name === 'light' && level !== undefined) {
    return [{
      component: 'light',
      object,
      config: {
        ...base,
        command_topic: command,
        state_topic: value(main.record),
        payload_on: 'ON',
        payload_off: 'OFF',
        brightness_command_topic: command,
        brightness_state_topic: value(level.record),
        brightness_scale: level.max ?? 100,
        on_command_type: 'first',
        qos: 1
      }
    }]
  }
  if (main.type === 'boolean') {
    return [{ component: 'switch', object, config: { ...base, command_topic: command, state_topic: value(main.record), payload_on: 'ON', payload_off: 'OFF', device_class: 'switch', qos: 1 } }]
  }
  return [{
    component: 'number',
    object,
    config: {
      ...base,
      command_topic: command,
      state_topic: value(main.record),
      min: main.min ?? 0,
      max: main.max ?? 100,
      step: 0.5,
      mode: 'box',
      ...(main.unit === 'Cel' ? { unit_of_measurement: '°C', device_class: 'temperature' } : {}),
      qos: 1
    }
  }]
}

/** A state value as its value topic carries it: "ON"/"OFF" for on/off, the number as text. */
export function stateText (value: boolean | number): string {
  return typeof value === 'boolean' ? (value ? 'ON' : 'OFF') : String(value)
}
