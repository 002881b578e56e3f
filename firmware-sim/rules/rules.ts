import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js'
import { parse as parseYaml } from 'yaml'
import { isDeviceId, meshError, type DeviceId } from '../../shared/index.js'
import { RULES_SCHEMA } from './schema.js'

/**
 * Automation rules: when readings match, then commands. A rule file (JSON or YAML) is validated
 * against RULES_SCHEMA (schema.ts) with Ajv, then checked for what a schema cannot say: every
 * device name resolves, and no rule triggers itself, alone or through other rules (a command sets
 * an actuator whose state another rule's condition watches, and round again). Errors name the rule
 * and the field (ERR_BAD_RULES). `explainRules` says what a file does in words.
 */

export interface Condition {
  device: DeviceId
  sensor: string
  above?: number
  below?: number
  equals?: number | string | boolean
  changes?: true
  /** Sustained this long, ms. */
  forMs: number
  hysteresis?: number
}

export interface RuleAction {
  device: DeviceId
  action: string
  args?: Record<string, unknown>
  /** Seconds (default 5). */
  ttl: number
}

export interface Rule {
  name: string
  mode: 'all' | 'any'
  conditions: Condition[]
  then: RuleAction[]
  /** Local minutes since midnight [from, to); may wrap midnight. */
  between?: [number, number]
  cooldownMs: number
  maxPerMinute: number
}

export interface RuleSet {
  rules: Rule[]
  /** Names the file gave device ids. */
  names: ReadonlyMap<DeviceId, string>
}

// strictRequired off: the oneOf branches name properties of the condition itself, declared one level up.
const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true })
const validate = ajv.compile(RULES_SCHEMA)

/** Parses and checks a rule file's text (JSON, or YAML: JSON is YAML 1.2). Throws ERR_BAD_RULES. */
export function parseRules (text: string, source = 'rules'): RuleSet {
  let doc: unknown
  try {
    doc = parseYaml(text, { maxAliasCount: 0, uniqueKeys: true })
  } catch (err) {
    throw meshError('ERR_BAD_RULES', `${source}: not JSON or YAML: ${(err as Error).message}`)
  }
  return checkRules(doc, source)
}

/** A rules document checked against its schema; throws ERR_BAD_RULES saying what is wrong and where. */
export function checkRules (doc: unknown, source = 'rules'): RuleSet {
  if (validate(doc) !== true) throw meshError('ERR_BAD_RULES', `${source}: ${describeErrors(doc, validate.errors ?? [])}`)
  const file = doc as { devices?: Record<string, string>, rules: Array<Record<string, unknown>> }
  const devices = new Map(Object.entries(file.devices ?? {}))
  const names = new Map([...devices].map(([name, id]) => [id, name]))
  const seen = new Set<string>()
  const rules = file.rules.map((r, i): Rule => {
    const name = r.name as string
    const at = `${source}: rule ${JSON.stringify(name)} (rules[${i}])`
    if (seen.has(name)) throw meshError('ERR_BAD_RULES', `${at}: another rule has this name`)
    seen.add(name)
    const resolve = (device: string, field: string): DeviceId => {
      const id = devices.get(device) ?? device
      if (!isDeviceId(id)) throw meshError('ERR_BAD_RULES', `${at}: ${field} ${JSON.stringify(device)} is neither a device id nor a name in "devices"`)
      return id
    }
    const when = r.when as { all?: Array<Record<string, unknown>>, any?: Array<Record<string, unknown>> }
    const mode = when.all === undefined ? 'any' : 'all'
    const conditions = (when.all ?? when.any ?? []).map((c, j): Condition => ({
      device: resolve(c.device as string, `when.${mode}[${j}].device`),
      sensor: c.sensor as string,
      ...(c.above === undefined ? {} : { above: c.above as number }),
      ...(c.below === undefined ? {} : { below: c.below as number }),
      ...(c.equals === undefined ? {} : { equals: c.equals as number | string | boolean }),
      ...(c.changes === undefined ? {} : { changes: true as const }),
      ...(c.hysteresis === undefined ? {} : { hysteresis: c.hysteresis as number }),
      forMs: c.for === undefined ? 0 : durationMs(c.for as string)
    }))
    const then = (r.then as Array<Record<string, unknown>>).map((a, j): RuleAction => ({
      device: resolve(a.device as string, `then[${j}].device`),
      action: a.action as string,
      ...(a.args === undefined ? {} : { args: a.args as Record<string, unknown> }),
      ttl: (a.ttl as number | undefined) ?? 5
    }))
    const between = r.between as [string, string] | undefined
    return {
      name,
      mode,
      conditions,
      then,
      ...(between === undefined ? {} : { between: [minutes(between[0]), minutes(between[1])] as [number, number] }),
      cooldownMs: r.cooldown === undefined ? 0 : durationMs(r.cooldown as string),
      maxPerMinute: (r.maxPerMinute as number | undefined) ?? 60
    }
  })
  const loop = findLoop(rules)
  if (loop !== undefined) {
    throw meshError('ERR_BAD_RULES', `${source}: rules trigger themselves: ${loop.join(' → ')} (a command sets an actuator whose state a condition watches)`)
  }
  return { rules, names }
}

/** "10s" → 10000. */
export function durationMs (text: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)$/.exec(text)
  if (m === null) throw meshError('ERR_BAD_RULES', `${JSON.stringify(text)} is not a duration (500ms, 10s, 5m, 1h)`)
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h']
}

function minutes (clock: string): number {
  const [h, m] = clock.split(':').map(Number) as [number, number]
  return h * 60 + m
}

/**
 * The SenML names an action's state is published under (firmware-sim/commands/actuators.ts): the
 * actuator's name and the names below it, e.g. light/set → light, light/level.
 */
function touches (action: RuleAction, condition: Condition): boolean {
  const actuator = action.action.split('/')[0] as string
  return action.device === condition.device && (condition.sensor === actuator || condition.sensor.startsWith(`${actuator}/`))
}

/** A cycle of rules, each acting on what the next one watches (the first again at the end), or undefined. */
function findLoop (rules: Rule[]): string[] | undefined {
  const next = rules.map((a) => rules.flatMap((b, j) => a.then.some((act) => b.conditions.some((c) => touches(act, c))) ? [j] : []))
  const state = new Array<number>(rules.length).fill(0) // 0 new, 1 on the path, 2 done
  const path: number[] = []
  const visit = (i: number): number[] | undefined => {
    state[i] = 1
    path.push(i)
    for (const j of next[i] as number[]) {
      if (state[j] === 1) return [...path.slice(path.indexOf(j)), j]
      if (state[j] === 0) { const found = visit(j); if (found !== undefined) return found }
    }
    path.pop()
    state[i] = 2
    return undefined
  }
  for (let i = 0; i < rules.length; i++) {
    if (state[i] !== 0) continue
    const cycle = visit(i)
    if (cycle !== undefined) return cycle.map((k) => (rules[k] as Rule).name)
  }
  return undefined
}

/** Ajv's errors in words, each naming the rule (by its name where it has one) and the field. */
function describeErrors (doc: unknown, errors: ErrorObject[]): string {
  const rules = (doc as { rules?: Array<{ name?: unknown }> } | null)?.rules
  // oneOf failures repeat every branch's complaint: keep the most specific ones, at most 5.
  const useful = errors.filter((e) => e.keyword !== 'oneOf' && e.keyword !== 'not' && !e.schemaPath.includes('/oneOf/'))
  const shown = (useful.length > 0 ? useful : errors).slice(0, 5).map((e) => {
    const m = /^\/rules\/(\d+)(.*)$/.exec(e.instancePath)
    const where = m === null
      ? (e.instancePath === '' ? 'the file' : e.instancePath)
      : `rule ${JSON.stringify(Array.isArray(rules) ? rules[Number(m[1])]?.name ?? `#${m[1]}` : `#${m[1]}`)}${m[2] === '' ? '' : ` at ${(m[2] as string).slice(1).replaceAll('/', '.')}`}`
    const extra = e.keyword === 'additionalProperties' ? ` (${String((e.params as { additionalProperty?: string }).additionalProperty)})` : ''
    const oneOf = e.keyword === 'oneOf' ? ' (a condition takes exactly one of above, below, equals, changes; hysteresis goes with above or below; for not with changes)' : ''
    return `${where} ${e.message ?? 'is invalid'}${extra}${oneOf}`
  })
  return shown.join('; ')
}

/** What a rule set does, one sentence per rule. */
export function explainRules (set: RuleSet): string[] {
  const who = (id: DeviceId): string => set.names.get(id) ?? id
  const ms = (n: number): string => n % 3_600_000 === 0 ? `${n / 3_600_000} h` : n % 60_000 === 0 ? `${n / 60_000} min` : n % 1000 === 0 ? `${n / 1000} s` : `${n} ms`
  const clock = (n: number): string => `${String(Math.floor(n / 60)).padStart(2, '0')}:${String(n % 60).padStart(2, '0')}`
  return set.rules.map((r) => {
    const conditions = r.conditions.map((c) => {
      const test = c.changes === true
        ? 'changes'
        : c.above !== undefined
          ? `is above ${c.above}${c.hysteresis === undefined ? '' : ` (until it falls below ${c.above - c.hysteresis})`}`
          : c.below !== undefined
            ? `is below ${c.below}${c.hysteresis === undefined ? '' : ` (until it rises above ${c.below + c.hysteresis})`}`
            : `is ${JSON.stringify(c.equals)}`
      return `${c.sensor} of ${who(c.device)} ${test}${c.forMs > 0 ? ` for ${ms(c.forMs)}` : ''}`
    }).join(r.mode === 'all' ? ' and ' : ' or ')
    const actions = r.then.map((a) => `${a.action}${a.args === undefined ? '' : ` ${JSON.stringify(a.args)}`} on ${who(a.device)} (expires after ${a.ttl} s)`).join(', ')
    const limits = [
      r.between === undefined ? undefined : `only between ${clock(r.between[0])} and ${clock(r.between[1])}`,
      r.cooldownMs > 0 ? `at most once every ${ms(r.cooldownMs)}` : undefined,
      `at most ${r.maxPerMinute} times a minute`
    ].filter((x) => x !== undefined).join(', ')
    return `${r.name}: when ${conditions}, then ${actions}; ${limits}.`
  })
}
