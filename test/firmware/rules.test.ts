import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import { Ajv2020 } from 'ajv/dist/2020.js'
import { describe, expect, it } from 'vitest'
import { run } from '../../bin/main.js'
import { RULES_SCHEMA, RuleEngine, explainRules, parseRules, type Firing } from '../../firmware-sim/index.js'
import { manualClock } from '../../shared/index.js'
import { codeOf, seededKeys, tempDir } from '../shared/support.js'

/**
 * Automation rules (firmware-sim/rules/): the file is checked against its JSON Schema and for
 * loops; the engine fires on rising edges, with sustained durations, hysteresis, changes, time
 * windows, cooldowns and rates, on a manual clock.
 */

const hall = seededKeys(10).id
const lamp = seededKeys(11).id
const heater = seededKeys(12).id
const room = seededKeys(13).id

const FILE = `
devices:
  hall: ${hall}
  lamp: ${lamp}
  heater: ${heater}
  room: ${room}
rules:
  - name: hall-light
    when: { all: [ { device: hall, sensor: motion, equals: true } ] }
    then: [ { device: lamp, action: light/set, args: { on: true }, ttl: 5 } ]
    cooldown: 30s
  - name: keep-warm
    when: { all: [ { device: room, sensor: temp, below: 19, for: 10s, hysteresis: 0.5 } ] }
    then: [ { device: heater, action: relay/set, args: { on: true } } ]
`

function rig (text = FILE, localMinutes?: (ms: number) => number) {
  const clock = manualClock({ wallStart: 1_800_000_000_000 })
  const engine = new RuleEngine(parseRules(text), { clock, ...(localMinutes === undefined ? {} : { localMinutes }) })
  const fired: Firing[] = []
  const held: string[] = []
  engine.on('fire', (f) => fired.push(f))
  engine.on('held', (h) => held.push(`${h.rule}:${h.why}`))
  return { clock, engine, fired, held }
}

describe('automation rules: the file', () => {
  it('a valid file (YAML, or JSON) parses, resolves its names and is explained in words', () => {
    const set = parseRules(FILE)
    expect(set.rules.map((r) => r.name)).toEqual(['hall-light', 'keep-warm'])
    expect(set.rules[1]?.conditions[0]).toMatchObject({ device: room, sensor: 'temp', below: 19, forMs: 10_000, hysteresis: 0.5 })
    expect(explainRules(set)).toEqual([
      'hall-light: when motion of hall is true, then light/set {"on":true} on lamp (expires after 5 s); at most once every 30 s, at most 60 times a minute.',
      'keep-warm: when temp of room is below 19 (until it rises above 19.5) for 10 s, then relay/set {"on":true} on heater (expires after 5 s); at most 60 times a minute.'
    ])
    expect(parseRules(JSON.stringify({ rules: [{ name: 'j', when: { any: [{ device: hall, sensor: 'door', changes: true }] }, then: [{ device: lamp, action: 'state/get' }] }] })).rules).toHaveLength(1)
  })

  it('errors name the rule and the field', () => {
    const bad = (text: string): string => { try { parseRules(text); return 'no error' } catch (err) { return `${(err as { code: string }).code} ${(err as Error).message}` } }
    expect(bad('rules: []')).toMatch(/^ERR_BAD_RULES .*rules/)
    expect(bad(FILE.replace('equals: true', 'equals: true, above: 3'))).toMatch(/rule "hall-light" at when\.all\.0/)
    expect(bad(FILE.replace('cooldown: 30s', 'cooldown: soon'))).toMatch(/rule "hall-light" at cooldown must match pattern/)
    expect(bad(FILE.replace('ttl: 5', 'ttl: 5, retries: 3'))).toMatch(/rule "hall-light" at then\.0 must NOT have additional properties \(retries\)/)
    expect(bad(FILE.replace('device: lamp, action', 'device: kitchen, action'))).toMatch(/rule "hall-light".*then\[0\]\.device "kitchen" is neither a device id nor a name/)
    expect(bad(FILE.replace('name: keep-warm', 'name: hall-light'))).toMatch(/another rule has this name/)
    expect(bad('rules: [ {')).toMatch(/^ERR_BAD_RULES .*not JSON or YAML/)
    expect(bad('a: &x 1\nb: *x\nrules: []')).toMatch(/^ERR_BAD_RULES/) // no aliases: no billion laughs
  })

  it('a rule that triggers itself, alone or through another rule, is refused', () => {
    const self = `
rules:
  - name: flicker
    when: { all: [ { device: ${lamp}, sensor: light, equals: true } ] }
    then: [ { device: ${lamp}, action: light/set, args: { on: false } } ]`
    expect(codeOf(() => parseRules(self))).toBe('ERR_BAD_RULES')
    expect(() => parseRules(self)).toThrow('flicker → flicker')
    const pair = `
rules:
  - name: a
    when: { all: [ { device: ${lamp}, sensor: light/level, above: 50 } ] }
    then: [ { device: ${heater}, action: relay/set, args: { on: true } } ]
  - name: b
    when: { all: [ { device: ${heater}, sensor: relay, equals: true } ] }
    then: [ { device: ${lamp}, action: light/set, args: { level: 80 } } ]`
    expect(() => parseRules(pair)).toThrow('a → b → a')
  })

  it('the published schema is valid draft 2020-12 and accepts the example', () => {
    const ajv = new Ajv2020({ strict: true, strictRequired: false, allowUnionTypes: true })
    expect(ajv.validateSchema(RULES_SCHEMA)).toBe(true)
    expect(ajv.validate(RULES_SCHEMA, { rules: [{ name: 'x', when: { all: [{ device: hall, sensor: 'motion', equals: true }] }, then: [{ device: lamp, action: 'light/set' }] }] })).toBe(true)
  })
})

describe('automation rules: the engine', () => {
  it('fires on the rising edge only, then waits out its cooldown', () => {
    const { clock, engine, fired, held } = rig()
    engine.observe({ device: hall, sensor: 'motion', value: true })
    engine.observe({ device: hall, sensor: 'motion', value: true }) // still true: no new edge
    expect(fired.map((f) => f.rule)).toEqual(['hall-light'])
    expect(fired[0]?.actions[0]).toMatchObject({ device: lamp, action: 'light/set', args: { on: true }, ttl: 5 })
    engine.observe({ device: hall, sensor: 'motion', value: false })
    clock.advance(10_000)
    engine.observe({ device: hall, sensor: 'motion', value: true }) // a new edge inside the cooldown
    expect(held).toEqual(['hall-light:cooldown'])
    engine.observe({ device: hall, sensor: 'motion', value: false })
    clock.advance(25_000)
    engine.observe({ device: hall, sensor: 'motion', value: true })
    expect(fired).toHaveLength(2)
    // Readings nobody watches change nothing.
    engine.observe({ device: lamp, sensor: 'motion', value: true })
    engine.observe({ device: hall, sensor: 'temp', value: 3 })
    expect(fired).toHaveLength(2)
  })

  it('sustained for a duration: fires when it has held that long without a break, by a timer', () => {
    const { clock, engine, fired } = rig()
    engine.observe({ device: room, sensor: 'temp', value: 18.5 })
    clock.advance(6000)
    engine.observe({ device: room, sensor: 'temp', value: 19.6 }) // a break: back above 19 + the hysteresis
    clock.advance(6000)
    expect(fired).toHaveLength(0)
    engine.observe({ device: room, sensor: 'temp', value: 18.9 })
    clock.advance(9999)
    expect(fired).toHaveLength(0)
    clock.advance(1)
    expect(fired.map((f) => f.rule)).toEqual(['keep-warm'])
  })

  it('hysteresis: once true, it stays true until the value is that far back', () => {
    const { clock, engine, fired } = rig()
    engine.observe({ device: room, sensor: 'temp', value: 18.8 })
    clock.advance(10_000)
    expect(fired).toHaveLength(1)
    engine.observe({ device: room, sensor: 'temp', value: 19.3 }) // above 19, below 19.5: still true, no new edge later
    clock.advance(1000)
    engine.observe({ device: room, sensor: 'temp', value: 18.9 })
    clock.advance(20_000)
    expect(fired).toHaveLength(1)
    engine.observe({ device: room, sensor: 'temp', value: 19.6 }) // now false
    engine.observe({ device: room, sensor: 'temp', value: 18.9 })
    clock.advance(10_000)
    expect(fired).toHaveLength(2)
  })

  it('changes, any, a time window across midnight, and the rate per minute', () => {
    let minute = 23 * 60
    const text = `
rules:
  - name: door
    when: { any: [ { device: ${hall}, sensor: door, changes: true }, { device: ${hall}, sensor: motion, equals: true } ] }
    then: [ { device: ${lamp}, action: light/set, args: { on: true } } ]
    between: ["22:00", "06:00"]
    maxPerMinute: 2`
    const { clock, engine, fired, held } = rig(text, () => minute)
    engine.observe({ device: hall, sensor: 'door', value: 'closed' }) // the first value is no change
    engine.observe({ device: hall, sensor: 'door', value: 'open' })
    engine.observe({ device: hall, sensor: 'door', value: 'closed' })
    engine.observe({ device: hall, sensor: 'door', value: 'open' })
    expect(fired).toHaveLength(2)
    expect(held).toEqual(['door:rate'])
    clock.advance(60_000)
    minute = 12 * 60
    engine.observe({ device: hall, sensor: 'door', value: 'closed' })
    expect(held).toEqual(['door:rate', 'door:window'])
    minute = 5 * 60 + 59
    engine.observe({ device: hall, sensor: 'door', value: 'open' })
    expect(fired).toHaveLength(3)
  })
})

describe('iotmesh rules', () => {
  const cli = async (argv: string[]): Promise<{ code: number, out: string, err: string }> => {
    const stdout = new PassThrough()
    const stderr = new PassThrough()
    const code = await run(argv, { stdout, stderr, stdin: Readable.from([]), env: {}, signal: new AbortController().signal })
    stdout.end()
    stderr.end()
    return { code, out: Buffer.concat(await stdout.toArray() as Buffer[]).toString(), err: Buffer.concat(await stderr.toArray() as Buffer[]).toString() }
  }

  it('check explains a valid file (exit 0) and names what is wrong in an invalid one (exit 1); schema prints the schema', async () => {
    const dir = await tempDir()
    const good = join(dir, 'rules.yaml')
    await writeFile(good, FILE)
    const ok = await cli(['rules', 'check', good])
    expect(ok.code).toBe(0)
    expect(ok.out).toContain('2 rules, valid')
    expect(ok.out).toContain('keep-warm: when temp of room is below 19')
    const bad = join(dir, 'bad.json')
    await writeFile(bad, JSON.stringify({ rules: [{ name: 'x', when: { all: [] }, then: [] }] }))
    const refused = await cli(['rules', 'check', bad, '--json'])
    expect(refused.code).toBe(1)
    expect(JSON.parse(refused.out)).toMatchObject({ ok: false, error: { code: 'ERR_BAD_RULES' } })
    expect((await cli(['rules', 'check', join(dir, 'missing.yaml')])).code).toBe(2)
    const schema = await cli(['rules', 'schema'])
    expect(JSON.parse(schema.out)).toEqual(JSON.parse(JSON.stringify(RULES_SCHEMA)))
  })
})
