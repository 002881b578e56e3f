import { resolvePack, systemClock, type Clock, type DeviceId, type SenmlPack, type TimerHandle } from '../../shared/index.js'
import { TypedEmitter } from '../../mesh/index.js'
import type { Condition, Rule, RuleAction, RuleSet } from './rules.js'

/**
 * Runs a rule set (rules.ts) over readings. A rule fires on its rising edge: when its conditions
 * (all, or any) become true, not for as long as they stay true; then only within its time window,
 * after its cooldown and under its rate (`maxPerMinute`). A condition with `for` is true once it
 * has held that long without a break (a timer on the clock wakes it); `hysteresis` keeps an
 * `above`/`below` condition true until the value is that far back; `changes` is true for the one
 * reading whose value differs from the one before.
 *
 * What it holds is bounded by the rule file alone: one state per condition, readings of anything
 * no condition watches cost one map lookup and leave nothing behind.
 */

export interface RuleReading {
  device: DeviceId
  sensor: string
  value: number | string | boolean
}

export interface Firing {
  rule: string
  /** The actions to send, in the file's order. */
  actions: RuleAction[]
  /** The clock's wall time, ms. */
  at: number
}

export interface RuleEngineEvents {
  fire: [firing: Firing]
  /** A rising edge not acted on: outside the time window, in the cooldown, or over the rate. */
  held: [info: { rule: string, why: 'window' | 'cooldown' | 'rate', at: number }]
}

interface ConditionState {
  readonly rule: RuleState
  readonly condition: Condition
  /** The raw test, with hysteresis. */
  raw: boolean
  /** Since when `raw` has held (wall ms). */
  since: number
  last: RuleReading['value'] | undefined
  /** True for the evaluation of the reading that changed the value (`changes`). */
  pulse: boolean
  timer: TimerHandle | undefined
}

interface RuleState {
  readonly rule: Rule
  readonly conditions: ConditionState[]
  active: boolean
  lastFired: number
  /** Wall times of firings in the last minute. */
  fired: number[]
}

export class RuleEngine extends TypedEmitter<RuleEngineEvents> {
  readonly #clock: Clock
  readonly #rules: RuleState[]
  /** (device, sensor) → the conditions that watch it. */
  readonly #watching = new Map<string, ConditionState[]>()
  readonly #localMinutes: (ms: number) => number
  #stopped = false

  constructor (set: RuleSet, components: { clock?: Clock, localMinutes?: (ms: number) => number } = {}) {
    super()
    this.#clock = components.clock ?? systemClock
    this.#localMinutes = components.localMinutes ?? ((ms) => { const d = new Date(ms); return d.getHours() * 60 + d.getMinutes() })
    this.#rules = set.rules.map((rule) => {
      const state: RuleState = { rule, conditions: [], active: false, lastFired: -Infinity, fired: [] }
      for (const condition of rule.conditions) {
        const c: ConditionState = { rule: state, condition, raw: false, since: 0, last: undefined, pulse: false, timer: undefined }
        state.conditions.push(c)
        const key = watchKey(condition.device, condition.sensor)
        this.#watching.set(key, [...(this.#watching.get(key) ?? []), c])
      }
      return state
    })
  }

  /**
   * Every value of one verified reading (its SenML records, resolved against its sampling time),
   * as `observe` takes them: what the device (over the mesh) and the gateway (over the broker) feed
   * the rules with. A pack that does not resolve is ignored (a node accepted it, so it does).
   */
  observeReading (origin: DeviceId, records: SenmlPack, time: number): void {
    let resolved
    try { resolved = resolvePack(records, time) } catch { return }
    for (const r of resolved) {
      const value = r.value ?? r.boolValue ?? r.stringValue
      if (value !== undefined) this.observe({ device: origin, sensor: r.name, value })
    }
  }

  /** The (device, sensor) pairs some rule watches: what a device subscribes to. */
  watched (): Array<{ device: DeviceId, sensor: string }> {
    return [...new Set(this.#rules.flatMap((r) => r.rule.conditions.map((c) => watchKey(c.device, c.sensor))))].map((k) => {
      const [device, sensor] = k.split('\u0000') as [DeviceId, string]
      return { device, sensor }
    })
  }

  observe (reading: RuleReading): void {
    if (this.#stopped) return
    const watchers = this.#watching.get(watchKey(reading.device, reading.sensor))
    if (watchers === undefined) return
    const now = this.#clock.wall()
    const touched = new Set<RuleState>()
    for (const c of watchers) {
      const raw = test(c, reading.value)
      c.pulse = c.condition.changes === true && c.last !== undefined && c.last !== reading.value
      c.last = reading.value
      if (raw && !c.raw) c.since = now
      c.raw = raw
      if (c.timer !== undefined) { this.#clock.clearTimeout(c.timer); c.timer = undefined }
      if (raw && c.condition.forMs > 0 && now - c.since < c.condition.forMs) {
        // The timer is due when the condition has held `forMs`: judge it at that instant at the earliest. Timers may fire a
        // fraction of a millisecond early against a sub-millisecond wall clock, and a rule judged "not yet" then never fired.
        const due = c.since + c.condition.forMs
        c.timer = this.#clock.setTimeout(() => { c.timer = undefined; this.#evaluate(c.rule, Math.max(this.#clock.wall(), due)) }, due - now)
      }
      touched.add(c.rule)
    }
    for (const r of touched) this.#evaluate(r, now)
    for (const c of watchers) c.pulse = false
  }

  stop (): void {
    this.#stopped = true
    for (const r of this.#rules) for (const c of r.conditions) if (c.timer !== undefined) this.#clock.clearTimeout(c.timer)
  }

  #evaluate (r: RuleState, now: number): void {
    const of = (pulses: boolean): boolean => {
      const holds = (c: ConditionState): boolean => c.condition.changes === true ? pulses && c.pulse : c.raw && now - c.since >= c.condition.forMs
      return r.rule.mode === 'all' ? r.conditions.every(holds) : r.conditions.some(holds)
    }
    const rising = of(true) && !r.active
    // A change is momentary: what stays active afterwards is what holds without it.
    r.active = of(false)
    if (!rising) return
    const { between, cooldownMs, maxPerMinute } = r.rule
    if (between !== undefined && !inWindow(this.#localMinutes(now), between)) { this.emit('held', { rule: r.rule.name, why: 'window', at: now }); return }
    if (now - r.lastFired < cooldownMs) { this.emit('held', { rule: r.rule.name, why: 'cooldown', at: now }); return }
    r.fired = r.fired.filter((t) => now - t < 60_000)
    if (r.fired.length >= maxPerMinute) { this.emit('held', { rule: r.rule.name, why: 'rate', at: now }); return }
    r.fired.push(now)
    r.lastFired = now
    this.emit('fire', { rule: r.rule.name, actions: r.rule.then, at: now })
  }
}

function watchKey (device: DeviceId, sensor: string): string {
  return `${device}\u0000${sensor}`
}

/** The condition's test on a new value, with hysteresis (a condition that holds stays true until the value is `hysteresis` back). */
function test (c: ConditionState, value: RuleReading['value']): boolean {
  const { above, below, equals, hysteresis = 0 } = c.condition
  if (equals !== undefined) return value === equals
  if (typeof value !== 'number') return false
  if (above !== undefined) return c.raw ? value > above - hysteresis : value > above
  if (below !== undefined) return c.raw ? value < below + hysteresis : value < below
  return false
}

function inWindow (minute: number, [from, to]: [number, number]): boolean {
  return from <= to ? minute >= from && minute < to : minute >= from || minute < to
}
