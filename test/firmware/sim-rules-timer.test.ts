import { expect, it } from 'vitest'
import { RuleEngine, checkRules, simDeviceKeys } from '../../firmware-sim/index.js'
import type { Clock } from '../../shared/index.js'

/**
 * A sustained condition (`for`) whose timer fires a fraction of a millisecond early against a
 * sub-millisecond wall clock (Node's timers count whole milliseconds on another clock): the rule
 * still fires. Found by `iotmesh experiment automation`, where such rules went unfired now and then.
 */
it('a rule with `for` fires when its timer comes a fraction of a millisecond early', () => {
  let wall = 1_767_225_600_000.25
  const timers: Array<{ at: number, fn: () => void }> = []
  const clock: Clock = {
    now: () => wall,
    wall: () => wall,
    setTimeout: (fn, ms) => { const t = { at: wall + ms, fn }; timers.push(t); return t },
    clearTimeout: (h) => { timers.splice(timers.indexOf(h as { at: number, fn: () => void }), 1) }
  }
  const sensor = simDeviceKeys(1, 0).id
  const lamp = simDeviceKeys(1, 1).id
  const rules = checkRules({
    rules: [{ name: 'quiet', when: { all: [{ device: sensor, sensor: 'motion', equals: false, for: '500ms' }] }, then: [{ device: lamp, action: 'light/set', args: { on: false } }] }]
  })
  const engine = new RuleEngine(rules, { clock })
  const fired: number[] = []
  engine.on('fire', (f) => { fired.push(f.at) })
  engine.observe({ device: sensor, sensor: 'motion', value: true })
  wall += 123.456
  engine.observe({ device: sensor, sensor: 'motion', value: false })
  expect(timers).toHaveLength(1)
  const timer = timers.shift() as { at: number, fn: () => void }
  wall = timer.at - 0.4 // early, as a timer on a millisecond clock may be
  timer.fn()
  expect(fired).toHaveLength(1)
  // Once, on the rising edge: more quiet fires nothing more.
  wall += 1000
  engine.observe({ device: sensor, sensor: 'motion', value: false })
  expect(fired).toHaveLength(1)
})
