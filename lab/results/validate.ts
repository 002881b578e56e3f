/**
 * A small JSON Schema validator for the keywords RESULTS_SCHEMA uses (draft 2020-12 semantics):
 * $ref to local `#/$defs/…`, type, const, enum, properties, required, additionalProperties,
 * items, minItems, maxItems, minimum, maximum, minLength, pattern, anyOf, oneOf, allOf. Other
 * keywords (description, title, $id, format, …) are annotations here and are not checked. It
 * exists so that writing results does not need a dependency; it is not a general validator.
 */

export interface JsonSchema {
  $schema?: string
  $id?: string
  $ref?: string
  $defs?: Record<string, JsonSchema>
  title?: string
  description?: string
  type?: JsonType | JsonType[]
  const?: unknown
  enum?: readonly unknown[]
  properties?: Record<string, JsonSchema>
  required?: readonly string[]
  additionalProperties?: boolean | JsonSchema
  items?: JsonSchema
  minItems?: number
  maxItems?: number
  minimum?: number
  maximum?: number
  minLength?: number
  pattern?: string
  format?: string
  anyOf?: JsonSchema[]
  oneOf?: JsonSchema[]
  allOf?: JsonSchema[]
}

export type JsonType = 'object' | 'array' | 'string' | 'number' | 'integer' | 'boolean' | 'null'

/** One way a value departs from a JSON Schema, and where. */
export interface SchemaError {
  /** JSON Pointer (RFC 6901) to the offending value, '' for the root. */
  path: string
  message: string
}

/** Every violation found (empty: valid). */
export function validateSchema (schema: JsonSchema, value: unknown): SchemaError[] {
  const errors: SchemaError[] = []
  visit(schema, schema, value, '', errors)
  return errors
}

function typeOf (value: unknown): JsonType | 'undefined' {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'array'
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number'
  if (typeof value === 'string' || typeof value === 'boolean' || typeof value === 'object') return typeof value as JsonType
  return 'undefined'
}

function hasType (value: unknown, type: JsonType): boolean {
  const actual = typeOf(value)
  if (type === 'number') return (actual === 'number' || actual === 'integer') && Number.isFinite(value)
  return actual === type
}

function deepEqual (a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b)
}

function pointer (path: string, key: string | number): string {
  return `${path}/${String(key).replace(/~/g, '~0').replace(/\//g, '~1')}`
}

function resolve (root: JsonSchema, ref: string): JsonSchema {
  const m = /^#\/\$defs\/([^/]+)$/.exec(ref)
  const target = m === null ? undefined : root.$defs?.[m[1] as string]
  if (target === undefined) throw new Error(`validateSchema: cannot resolve $ref ${ref}`)
  return target
}

function visit (root: JsonSchema, schema: JsonSchema, value: unknown, path: string, errors: SchemaError[]): void {
  const fail = (message: string): void => { errors.push({ path, message }) }
  if (schema.$ref !== undefined) visit(root, resolve(root, schema.$ref), value, path, errors)
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type]
    if (!types.some((t) => hasType(value, t))) { fail(`must be ${types.join(' or ')}, got ${typeOf(value)}`); return }
  }
  if ('const' in schema && !deepEqual(value, schema.const)) fail(`must be ${JSON.stringify(schema.const)}`)
  if (schema.enum !== undefined && !schema.enum.some((e) => deepEqual(e, value))) fail(`must be one of ${schema.enum.map((e) => JSON.stringify(e)).join(', ')}`)
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) fail(`must be ≥ ${schema.minimum}`)
    if (schema.maximum !== undefined && value > schema.maximum) fail(`must be ≤ ${schema.maximum}`)
  }
  if (typeof value === 'string') {
    if (schema.minLength !== undefined && value.length < schema.minLength) fail(`must be at least ${schema.minLength} characters`)
    if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value)) fail(`must match ${schema.pattern}`)
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) fail(`must have at least ${schema.minItems} items`)
    if (schema.maxItems !== undefined && value.length > schema.maxItems) fail(`must have at most ${schema.maxItems} items`)
    if (schema.items !== undefined) value.forEach((item, i) => visit(root, schema.items as JsonSchema, item, pointer(path, i), errors))
  }
  if (typeOf(value) === 'object') {
    const object = value as Record<string, unknown>
    for (const key of schema.required ?? []) if (!(key in object)) fail(`must have property ${JSON.stringify(key)}`)
    for (const [key, item] of Object.entries(object)) {
      const declared = schema.properties?.[key]
      if (declared !== undefined) visit(root, declared, item, pointer(path, key), errors)
      else if (schema.additionalProperties === false) errors.push({ path: pointer(path, key), message: 'is not an allowed property' })
      else if (typeof schema.additionalProperties === 'object') visit(root, schema.additionalProperties, item, pointer(path, key), errors)
    }
  }
  if (schema.allOf !== undefined) for (const sub of schema.allOf) visit(root, sub, value, path, errors)
  if (schema.anyOf !== undefined) {
    const tries = schema.anyOf.map((sub) => validateAt(root, sub, value, path))
    if (!tries.some((t) => t.length === 0)) errors.push(...closest(tries, path, 'must match one of the anyOf schemas'))
  }
  if (schema.oneOf !== undefined) {
    const tries = schema.oneOf.map((sub) => validateAt(root, sub, value, path))
    const matches = tries.filter((t) => t.length === 0).length
    if (matches === 0) errors.push(...closest(tries, path, 'must match exactly one of the oneOf schemas'))
    else if (matches > 1) fail(`matches ${matches} of the oneOf schemas, must match exactly one`)
  }
}

function validateAt (root: JsonSchema, schema: JsonSchema, value: unknown, path: string): SchemaError[] {
  const errors: SchemaError[] = []
  visit(root, schema, value, path, errors)
  return errors
}

/** When no alternative matches, the errors of the one that came closest say most. */
function closest (tries: SchemaError[][], path: string, summary: string): SchemaError[] {
  const best = [...tries].sort((a, b) => a.length - b.length)[0] ?? []
  return [{ path, message: summary }, ...best]
}
