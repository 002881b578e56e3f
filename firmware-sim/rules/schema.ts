/**
 * The JSON Schema (draft 2020-12) of an automation rule file (`iotmesh device --rules FILE`,
 * `iotmesh rules check FILE`; JSON or YAML). `iotmesh rules schema` prints it, so editors and CI
 * can validate rule files with any JSON Schema validator. iotmesh validates with Ajv.
 */

const DURATION = { type: 'string', pattern: '^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$', description: 'a duration: 500ms, 10s, 5m, 1h' }
const NAME = { type: 'string', pattern: '^[A-Za-z0-9._-]{1,63}$' }
const SENSOR = { type: 'string', pattern: '^[A-Za-z0-9:./_-]{1,64}$', description: 'a SenML name (RFC 8428 §4.5.1), e.g. temp, motion, light/level' }
const DEVICE = { type: 'string', minLength: 1, maxLength: 63, description: 'a device id (26 base32 characters) or a name from the file\'s devices map' }
const CLOCK = { type: 'string', pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$' }

export const RULES_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://iotmesh.dev/schemas/rules.schema.json',
  title: 'iotmesh automation rules',
  type: 'object',
  additionalProperties: false,
  required: ['rules'],
  properties: {
    devices: {
      type: 'object',
      description: 'names for device ids, used in the rules below',
      propertyNames: NAME,
      additionalProperties: { type: 'string', pattern: '^[a-z2-7]{26}$' }
    },
    rules: {
      type: 'array',
      minItems: 1,
      maxItems: 256,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'when', 'then'],
        properties: {
          name: NAME,
          when: {
            type: 'object',
            additionalProperties: false,
            minProperties: 1,
            maxProperties: 1,
            properties: {
              all: { type: 'array', minItems: 1, maxItems: 16, items: { $ref: '#/$defs/condition' } },
              any: { type: 'array', minItems: 1, maxItems: 16, items: { $ref: '#/$defs/condition' } }
            }
          },
          then: { type: 'array', minItems: 1, maxItems: 16, items: { $ref: '#/$defs/action' } },
          between: { type: 'array', prefixItems: [CLOCK, CLOCK], minItems: 2, maxItems: 2, description: 'local time window [from, to]; may wrap midnight' },
          cooldown: DURATION,
          maxPerMinute: { type: 'integer', minimum: 1, maximum: 600 }
        }
      }
    }
  },
  $defs: {
    condition: {
      type: 'object',
      additionalProperties: false,
      required: ['device', 'sensor'],
      properties: {
        device: DEVICE,
        sensor: SENSOR,
        above: { type: 'number' },
        below: { type: 'number' },
        equals: { type: ['number', 'string', 'boolean'] },
        changes: { const: true },
        for: DURATION,
        hysteresis: { type: 'number', exclusiveMinimum: 0 }
      },
      oneOf: [
        { required: ['above'], not: { anyOf: [{ required: ['below'] }, { required: ['equals'] }, { required: ['changes'] }] } },
        { required: ['below'], not: { anyOf: [{ required: ['above'] }, { required: ['equals'] }, { required: ['changes'] }] } },
        { required: ['equals'], not: { anyOf: [{ required: ['above'] }, { required: ['below'] }, { required: ['changes'] }, { required: ['hysteresis'] }] } },
        { required: ['changes'], not: { anyOf: [{ required: ['above'] }, { required: ['below'] }, { required: ['equals'] }, { required: ['hysteresis'] }, { required: ['for'] }] } }
      ]
    },
    action: {
      type: 'object',
      additionalProperties: false,
      required: ['device', 'action'],
      properties: {
        device: DEVICE,
        action: { type: 'string', pattern: '^[a-z0-9_-]+(/[a-z0-9_-]+)*$', maxLength: 64 },
        args: { type: 'object' },
        ttl: { type: 'number', exclusiveMinimum: 0, maximum: 60 }
      }
    }
  }
} as const
