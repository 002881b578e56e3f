/**
 * The documented schema of Home Assistant's MQTT sensor discovery config, for the keys the
 * gateway uses, written from Home Assistant's documentation (not from gateway/homeassistant.ts),
 * so that a test can hold the gateway's configs against it. Not a test file.
 *
 * - Discovery topic: `<discovery_prefix>/<component>/[<node_id>/]<object_id>/config`, node_id and
 *   object_id of `[a-zA-Z0-9_-]` — https://www.home-assistant.io/integrations/mqtt/#discovery-topic
 * - Sensor keys (state_topic required; availability, device, unique_id, state_class, device_class,
 *   unit_of_measurement, value_template, origin) — https://www.home-assistant.io/integrations/sensor.mqtt/
 *   and https://www.home-assistant.io/integrations/mqtt/#discovery-payload (origin: name required)
 * - Actuators: https://www.home-assistant.io/integrations/switch.mqtt/ (command_topic required;
 *   payload_on/off, state_on/off, device_class outlet|switch), https://www.home-assistant.io/integrations/light.mqtt/
 *   (default schema: command_topic required; brightness_command_topic, brightness_state_topic,
 *   brightness_scale ≥ 1, on_command_type last|first|brightness), https://www.home-assistant.io/integrations/number.mqtt/
 *   (command_topic required; min, max, step, mode auto|box|slider), and read-only
 *   https://www.home-assistant.io/integrations/binary_sensor.mqtt/ (state_topic required; payload_on/off)
 * - Device classes and the units each accepts; state classes —
 *   https://www.home-assistant.io/integrations/sensor/#device-class,
 *   https://www.home-assistant.io/integrations/sensor/#state-class
 */

export const DISCOVERY_TOPIC = /^(?<prefix>[^#+]+?)\/(?<component>sensor|binary_sensor|switch|light|number)\/(?<node>[a-zA-Z0-9_-]+)\/(?<object>[a-zA-Z0-9_-]+)\/config$/

/** Units Home Assistant accepts per sensor device class (the ones a SenML unit can map to). */
export const DEVICE_CLASS_UNITS: Record<string, string[]> = {
  temperature: ['°C', '°F', 'K'],
  humidity: ['%'],
  pressure: ['cbar', 'bar', 'hPa', 'mmHg', 'inHg', 'kPa', 'mbar', 'Pa', 'psi'],
  voltage: ['V', 'mV', 'µV', 'kV', 'MV'],
  current: ['A', 'mA'],
  power: ['mW', 'W', 'kW', 'MW', 'GW', 'TW'],
  battery: ['%'],
  signal_strength: ['dB', 'dBm'],
  illuminance: ['lx'],
  duration: ['d', 'h', 'min', 's', 'ms', 'µs'],
  distance: ['km', 'm', 'cm', 'mm', 'mi', 'nmi', 'yd', 'in', 'ft'],
  data_size: ['bit', 'kbit', 'Mbit', 'Gbit', 'B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB', 'ZiB', 'YiB']
}

const template = { type: 'string', minLength: 1 }
const topic = { type: 'string', minLength: 1, not: { pattern: '[+#]' } }

/** The keys every MQTT entity takes (https://www.home-assistant.io/integrations/mqtt/#discovery-payload). */
const ENTITY_PROPERTIES = {
  name: { type: ['string', 'null'] },
  unique_id: { type: 'string', minLength: 1 },
  availability: {
    type: 'array',
    minItems: 1,
    items: {
      type: 'object',
      required: ['topic'],
      additionalProperties: false,
      properties: {
        topic: { type: 'string', minLength: 1 },
        payload_available: { type: 'string' },
        payload_not_available: { type: 'string' },
        value_template: template
      }
    }
  },
  device: {
    type: 'object',
    additionalProperties: false,
    // "At least one of identifiers or connections must be present to identify the device."
    anyOf: [{ required: ['identifiers'] }, { required: ['connections'] }],
    properties: {
      identifiers: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' }, minItems: 1 }] },
      connections: { type: 'array', items: { type: 'array', items: { type: 'string' }, minItems: 2, maxItems: 2 } },
      name: { type: 'string' },
      manufacturer: { type: 'string' },
      model: { type: 'string' },
      model_id: { type: 'string' },
      sw_version: { type: 'string' },
      hw_version: { type: 'string' },
      serial_number: { type: 'string' },
      suggested_area: { type: 'string' },
      via_device: { type: 'string' },
      configuration_url: { type: 'string' }
    }
  },
  origin: {
    type: 'object',
    required: ['name'],
    additionalProperties: false,
    properties: { name: { type: 'string' }, sw_version: { type: 'string' }, support_url: { type: 'string' } }
  },
  qos: { enum: [0, 1, 2] }
} as const

/** One entity's schema: the shared keys, its own, and "device" only with unique_id (the device registry needs it). */
function entitySchema (required: readonly string[], properties: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    type: 'object',
    required,
    additionalProperties: false,
    properties: { ...ENTITY_PROPERTIES, ...properties },
    dependentRequired: { device: ['unique_id'] },
    ...extra
  }
}

/** JSON Schema (2020-12) of one MQTT sensor discovery payload, restricted to documented keys. */
export const SENSOR_CONFIG_SCHEMA = entitySchema(['state_topic'], {
  state_topic: topic,
  value_template: template,
  state_class: { enum: ['measurement', 'measurement_angle', 'total', 'total_increasing'] },
  device_class: { enum: Object.keys(DEVICE_CLASS_UNITS) },
  unit_of_measurement: { type: 'string', minLength: 1 }
}, {
  // A device class takes only its own units.
  allOf: Object.entries(DEVICE_CLASS_UNITS).map(([deviceClass, units]) => ({
    if: { required: ['device_class'], properties: { device_class: { const: deviceClass } } },
    then: { required: ['unit_of_measurement'], properties: { unit_of_measurement: { enum: units } } }
  }))
})

const onOff = { payload_on: { type: 'string' }, payload_off: { type: 'string' } }

export const BINARY_SENSOR_CONFIG_SCHEMA = entitySchema(['state_topic'], { state_topic: topic, value_template: template, ...onOff, device_class: { type: 'string' } })

export const SWITCH_CONFIG_SCHEMA = entitySchema(['command_topic'], {
  command_topic: topic, state_topic: topic, ...onOff, state_on: { type: 'string' }, state_off: { type: 'string' },
  device_class: { enum: ['outlet', 'switch'] }, optimistic: { type: 'boolean' }, retain: { type: 'boolean' }
})

export const LIGHT_CONFIG_SCHEMA = entitySchema(['command_topic'], {
  command_topic: topic, state_topic: topic, ...onOff,
  brightness_command_topic: topic, brightness_state_topic: topic, brightness_scale: { type: 'integer', minimum: 1 },
  on_command_type: { enum: ['last', 'first', 'brightness'] }, optimistic: { type: 'boolean' }, retain: { type: 'boolean' }
})

export const NUMBER_CONFIG_SCHEMA = entitySchema(['command_topic'], {
  command_topic: topic, state_topic: topic, min: { type: 'number' }, max: { type: 'number' }, step: { type: 'number', exclusiveMinimum: 0 },
  mode: { enum: ['auto', 'box', 'slider'] }, unit_of_measurement: { type: 'string', minLength: 1 }, device_class: { type: 'string' },
  optimistic: { type: 'boolean' }, retain: { type: 'boolean' }
}, {
  // A temperature number is in a temperature unit.
  if: { required: ['device_class'], properties: { device_class: { const: 'temperature' } } },
  then: { required: ['unit_of_measurement'], properties: { unit_of_measurement: { enum: DEVICE_CLASS_UNITS.temperature } } }
})

/** The schema of each discovery component the gateway publishes. */
export const COMPONENT_SCHEMAS: Record<string, Record<string, unknown>> = {
  sensor: SENSOR_CONFIG_SCHEMA,
  binary_sensor: BINARY_SENSOR_CONFIG_SCHEMA,
  switch: SWITCH_CONFIG_SCHEMA,
  light: LIGHT_CONFIG_SCHEMA,
  number: NUMBER_CONFIG_SCHEMA
}
