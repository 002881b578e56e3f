import { Ajv2020 } from 'ajv/dist/2020.js'
import { describe, expect, it } from 'vitest'
import {
  RESULTS_SCHEMA, machineInfo, softwareVersions, validateResults, validateSchema,
  type ExperimentResults, type JsonSchema
} from '../../lab/index.js'
import { failoverFixture, latencyFixture, scaleFixture } from './fixtures.js'

const samples: Record<string, ExperimentResults> = {
  failover: failoverFixture().results,
  scale: scaleFixture(),
  latency: latencyFixture()
}


describe('results.json schema', () => {
  it('declares draft 2020-12 and a stable id', () => {
    expect(RESULTS_SCHEMA.$schema).toBe('https://json-schema.org/draft/2020-12/schema')
    expect(RESULTS_SCHEMA.$id).toMatch(/experiment-results-1\.json$/)
  })

  it.each(Object.keys(samples))('a generated %s results object validates', (kind) => {
    expect(validateResults(samples[kind])).toEqual([])
    expect(validateResults(JSON.parse(JSON.stringify(samples[kind])))).toEqual([])
  })

  it('Ajv (draft 2020-12, a dependency since the rule files) agrees with the built-in validator', () => {
    // Formats are annotations here (the built-in validator checks date-times by pattern), so Ajv does not assert them.
    const ajv = new Ajv2020({ allErrors: true, strict: false, validateFormats: false })
    const schema = RESULTS_SCHEMA
    for (const results of Object.values(samples)) {
      const ok = ajv.validate(schema, results)
      expect(ajv.errors ?? null).toBeNull()
      expect(ok).toBe(true)
    }
    const broken = structuredClone(samples.failover) as { modes: Array<{ total: { duplicates: unknown } }> }
    ;(broken.modes[0] as { total: { duplicates: unknown } }).total.duplicates = -1
    expect(ajv.validate(schema, broken)).toBe(false)
  })

  it('refuses what does not match, saying where', () => {
    const at = (mutate: (r: Record<string, unknown>) => void): string[] => {
      const r = structuredClone(samples.failover) as unknown as Record<string, unknown>
      mutate(r)
      return validateResults(r).map((e) => `${e.path} ${e.message}`)
    }
    const modes = (r: Record<string, unknown>): Array<Record<string, Record<string, unknown>>> => r.modes as Array<Record<string, Record<string, unknown>>>
    expect(at((r) => { delete modes(r)[0]?.total?.lostForGood })).toContain('/modes/0/total must have property "lostForGood"')
    expect(at((r) => { (modes(r)[1] as Record<string, unknown>).surprise = 1 })).toContain('/modes/1/surprise is not an allowed property')
    expect(at((r) => { ((modes(r)[0]?.total as Record<string, Record<string, unknown>>).gateway as Record<string, unknown>).ratio = 1.5 })).toContain('/modes/0/total/gateway/ratio must be ≤ 1')
    expect(at((r) => { (r.timeline as Record<string, unknown>).fingerprint = 'md5:00' })).toContain('/timeline/fingerprint must match ^sha256:[0-9a-f]{64}$')
    expect(at((r) => { r.seed = 'one' })).toContain('/seed must be integer, got string')
    expect(at((r) => { r.experiment = 'scale' })).toContain(' must match exactly one of the oneOf schemas')
    expect(at((r) => { (r.checks as Array<Record<string, unknown>>)[0] = { id: 'x', statement: 's', status: 'maybe', observed: '' } })).toContain('/checks/0/status must be one of "pass", "fail", "not-run", "undecided"')
  })

  it('uses only keywords its validator checks or that are annotations', () => {
    const checked = new Set(['$ref', 'type', 'const', 'enum', 'properties', 'required', 'additionalProperties', 'items', 'minItems', 'maxItems', 'minimum', 'maximum', 'minLength', 'pattern', 'anyOf', 'oneOf', 'allOf'])
    const annotations = new Set(['$schema', '$id', '$defs', 'title', 'description', 'format'])
    const seen = new Set<string>()
    const walk = (s: JsonSchema): void => {
      for (const [k, v] of Object.entries(s)) {
        seen.add(k)
        if (k === 'properties' || k === '$defs') for (const sub of Object.values(v as Record<string, JsonSchema>)) walk(sub)
        else if (k === 'items' || (k === 'additionalProperties' && typeof v === 'object')) walk(v as JsonSchema)
        else if (k === 'anyOf' || k === 'oneOf' || k === 'allOf') for (const sub of v as JsonSchema[]) walk(sub)
      }
    }
    walk(RESULTS_SCHEMA)
    expect([...seen].filter((k) => !checked.has(k) && !annotations.has(k))).toEqual([])
  })

  it('the validator covers its keywords', () => {
    const s: JsonSchema = {
      type: 'object',
      required: ['a'],
      additionalProperties: { type: 'string', minLength: 2 },
      properties: { a: { anyOf: [{ type: 'integer' }, { type: 'null' }] }, b: { type: 'array', items: { enum: [1, 2] }, minItems: 1, maxItems: 2 } }
    }
    expect(validateSchema(s, { a: null, b: [1, 2], c: 'xy' })).toEqual([])
    expect(validateSchema(s, { a: 1.5, b: [3, 1, 2], c: 'x' }).map((e) => e.path)).toEqual(['/a', '/a', '/b', '/b/0', '/c'])
    expect(validateSchema({ type: 'number' }, Number.NaN)).toHaveLength(1)
    expect(validateSchema({ oneOf: [{ type: 'number' }, { type: 'integer' }] }, 3)[0]?.message).toMatch(/exactly one/)
  })

  it('machine and software come from node:os and package.json files', () => {
    const files: Record<string, string> = {
      '/repo/package.json': '{"name":"iotmesh","version":"9.9.9"}',
      '/repo/node_modules/aedes/package.json': '{"version":"1.2.0"}',
      '/repo/node_modules/mqtt/package.json': 'not json'
    }
    expect(softwareVersions({ root: '/repo', readText: (p) => files[p], nodeVersion: 'v20.0.0' })).toEqual({
      node: 'v20.0.0', iotmesh: '9.9.9', aedes: '1.2.0', mqtt: null, 'bonjour-service': null, 'cbor-x': null
    })
    const real = softwareVersions()
    expect(real.iotmesh).toMatch(/^\d+\.\d+\.\d+/)
    expect(real.aedes).toMatch(/^\d+\.\d+\.\d+/)
    expect(machineInfo({
      platform: () => 'linux', release: () => '6.1', arch: () => 'arm64', totalmem: () => 4e9,
      cpus: () => [{ model: ' Cortex-A72 ', speed: 1500, times: { user: 0, nice: 0, sys: 0, idle: 0, irq: 0 } }]
    })).toEqual({ platform: 'linux', release: '6.1', arch: 'arm64', cpus: 1, cpuModel: 'Cortex-A72', memoryBytes: 4e9 })
  })
})
