import { spawnSync } from 'node:child_process'
import { appendFileSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  decodeResult, encodeCommand, encodeResult, manualClock, parseCommanders, publicKeyText, signSign1, type KeyPair, type ManualClock
} from '../../shared/index.js'
import {
  CommandExecutor, createActuator, memoryJournal, openJournal, parseActuatorList, type CommandJournal, type Outcome
} from '../../firmware-sim/index.js'
import { codeOf, seededKeys, tempDir } from '../shared/support.js'

/**
 * The device side of commands (firmware-sim/commands/): who may command what, at most once, never
 * late, at a bounded rate, and what survives a SIGKILL. Each refusal is asserted with its code and
 * with the actuator left as it was.
 */

const device = seededKeys(40)
const owner = seededKeys(1)
const sensor = seededKeys(2)
const stranger = seededKeys(3)
const T0 = 1_800_000_000_000 // ms

const commanders = parseCommanders({
  commanders: [
    { name: 'owner', key: publicKeyText(owner.publicKey), actions: ['#'] },
    { name: 'hall-sensor', key: publicKeyText(sensor.publicKey), actions: ['light/set'] }
  ]
})

function rig (init: { journal?: CommandJournal, clockSynced?: boolean, clock?: ManualClock, rate?: { rate: number, burst: number } } = {}) {
  const clock = init.clock ?? manualClock({ wallStart: T0 })
  const executor = new CommandExecutor({ clockSynced: init.clockSynced ?? true, ...(init.rate === undefined ? {} : { rate: init.rate }) }, {
    keys: device, commanders, journal: init.journal ?? memoryJournal(), clock, actuators: parseActuatorList('relay,light,valve,thermostat').map(createActuator)
  })
  let id = 0
  const send = (keys: KeyPair, action: string, args?: unknown, over: { issuedAt?: number, ttl?: number, target?: string, id?: number } = {}): Outcome =>
    executor.handle(encodeCommand({ keys, target: over.target ?? device.id, action, args, id: over.id ?? ++id, issuedAt: over.issuedAt ?? clock.wall() / 1000, ...(over.ttl === undefined ? {} : { ttl: over.ttl }) }))
  return { clock, executor, send }
}

const codeOfOutcome = (o: Outcome): string => o.verdict === 'refused' ? o.code : o.verdict

describe('commands on the device', () => {
  it('an allowed command executes once; the signed result carries the new state', () => {
    const { executor, send } = rig()
    const o = send(owner, 'relay/set', { on: true })
    expect(o.verdict).toBe('executed')
    if (o.verdict !== 'executed') return
    const r = decodeResult(o.result)
    expect(r).toMatchObject({ target: device.id, issuer: owner.id, id: o.command.id, status: 'ok' })
    expect(r.state?.get('relay')).toBe(true)
    expect(executor.state().relay).toBe(true)
    const get = send(sensor, 'state/get')
    expect(codeOfOutcome(get)).toBe('ERR_NOT_ALLOWED') // the hall sensor may set the light, nothing else
    expect(codeOfOutcome(send(owner, 'state/get'))).toBe('executed')
  })

  it('refused, never executed, each with its code', () => {
    const { executor, send } = rig()
    const forged = encodeCommand({ keys: stranger, target: device.id, action: 'relay/set', args: { on: true }, id: 1, issuedAt: T0 / 1000 })
    // The owner's command with one bit of its signature changed: decodes as the owner's, does not verify.
    const asOwner = encodeCommand({ keys: owner, target: device.id, action: 'relay/set', args: { on: true }, id: 1, issuedAt: T0 / 1000 })
    asOwner[asOwner.length - 1] = (asOwner[asOwner.length - 1] as number) ^ 0x01
    const cases: Array<[string, Outcome]> = [
      ['ERR_BAD_SIGNATURE', executor.handle(asOwner)],
      ['ERR_NOT_ALLOWED', executor.handle(forged)], // not a commander at all
      ['ERR_NOT_ALLOWED', send(sensor, 'relay/set', { on: true })], // a commander, not for this action
      ['ERR_WRONG_TARGET', send(owner, 'relay/set', { on: true }, { target: stranger.id })],
      ['ERR_EXPIRED', send(owner, 'relay/set', { on: true }, { issuedAt: T0 / 1000 - 10, ttl: 5 })],
      ['ERR_CLOCK_SKEW', send(owner, 'relay/set', { on: true }, { issuedAt: T0 / 1000 + 30 })],
      ['ERR_UNKNOWN_ACTION', send(owner, 'heater/set', { on: true })],
      ['ERR_BAD_ARGS', send(owner, 'relay/set', { on: 'yes' })],
      ['ERR_BAD_ARGS', send(owner, 'light/set', { level: 101 })],
      ['ERR_BAD_ARGS', send(owner, 'thermostat/set', { setpoint: 20, extra: 1 })],
      ['ERR_BAD_HEADER', executor.handle(signSign1({ protectedHeader: new Map([[1, -19]]), payload: Uint8Array.of(0xa0), secretKey: owner.secretKey }))],
      ['ERR_TRUNCATED', executor.handle(encodeCommand({ keys: owner, target: device.id, action: 'relay/set', id: 1, issuedAt: T0 / 1000 }).subarray(0, 40))],
      ['ERR_BAD_COMMAND', executor.handle(encodeResult({ keys: owner, issuer: device.id, id: 1, status: 'ok', time: T0 / 1000 }))]
    ]
    for (const [code, o] of cases) expect(codeOfOutcome(o), code).toBe(code)
    expect(executor.state()).toEqual({ relay: false, light: false, 'light/level': 100, valve: false, 'thermostat/setpoint': 20 })
    expect(executor.counters.executed).toBe(0)
    expect(executor.counters.refused.ERR_BAD_ARGS).toBe(3)
    // Refusals of verified commands from commanders are answered (signed); of the unproven, never.
    const answered = cases.filter(([, o]) => o.verdict === 'refused' && o.result !== undefined).map(([c]) => c)
    expect(answered).toEqual(['ERR_NOT_ALLOWED', 'ERR_EXPIRED', 'ERR_CLOCK_SKEW', 'ERR_UNKNOWN_ACTION', 'ERR_BAD_ARGS', 'ERR_BAD_ARGS', 'ERR_BAD_ARGS'])
  })

  it('exactly once: a command again (retransmitted, or through mesh and broker both) gets the same result and executes nothing', () => {
    const { executor, send } = rig()
    const first = send(owner, 'light/set', { on: true, level: 30 }, { id: 42 })
    const again = send(owner, 'light/set', { on: true, level: 30 }, { id: 42 })
    expect(first.verdict).toBe('executed')
    expect(again.verdict).toBe('repeated')
    if (first.verdict === 'refused' || again.verdict === 'refused') return
    expect(Buffer.from(again.result).equals(Buffer.from(first.result))).toBe(true)
    expect(executor.counters).toMatchObject({ executed: 1, repeated: 1 })
  })

  it('a flood from one issuer is refused past its rate; another issuer\'s commands still execute', () => {
    const { executor, send, clock } = rig({ rate: { rate: 5, burst: 20 } })
    const outcomes = Array.from({ length: 200 }, () => send(sensor, 'light/set', { on: true }))
    expect(outcomes.filter((o) => o.verdict === 'executed')).toHaveLength(20)
    expect(executor.counters.refused.ERR_RATE_LIMITED).toBe(180)
    expect(codeOfOutcome(send(owner, 'relay/set', { on: true }))).toBe('executed')
    clock.advance(1000)
    expect(outcomes.length).toBe(200)
    expect([0, 1, 2, 3, 4, 5].map(() => codeOfOutcome(send(sensor, 'light/set', { on: false })))).toEqual(['executed', 'executed', 'executed', 'executed', 'executed', 'ERR_RATE_LIMITED'])
  })

  it('never late, also without a real-time clock: the latest command executed is a floor under the clock', () => {
    // A Pi booted without network time: its clock says a day ago, and it is not synchronized.
    const clock = manualClock({ wallStart: T0 - 86_400_000 })
    const { send } = rig({ clock, clockSynced: false })
    const now = T0 / 1000
    expect(codeOfOutcome(send(owner, 'relay/set', { on: true }, { issuedAt: now }))).toBe('executed') // ahead of its clock: accepted, the floor moves
    // Yesterday's command, captured and replayed: fresh by the device's clock, expired by the floor.
    expect(codeOfOutcome(send(owner, 'relay/set', { on: false }, { issuedAt: now - 3600 }))).toBe('ERR_EXPIRED')
    expect(codeOfOutcome(send(owner, 'relay/set', { on: false }, { issuedAt: now + 1 }))).toBe('executed')
  })

  it('what executed survives SIGKILL: after a restart the same command is answered again, not executed', async () => {
    const dir = await tempDir()
    const bytes = encodeCommand({ keys: owner, target: device.id, action: 'relay/set', args: { on: true }, id: 9, issuedAt: Date.now() / 1000, ttl: 60 })
    // A real process executes it with the journal in `dir`, then is killed with SIGKILL (no exit handler runs).
    const dist = (path: string): string => JSON.stringify(new URL(`../../dist/${path}`, import.meta.url).href)
    const script = `
      import { CommandExecutor, createActuator, openJournal } from ${dist('firmware-sim/index.js')}
      import { keyPairFromSecret, parseCommanders } from ${dist('shared/index.js')}
      const device = keyPairFromSecret(Uint8Array.from({ length: 32 }, (_, i) => (40 + i) & 0xff))
      const executor = new CommandExecutor({}, { keys: device, commanders: parseCommanders(${JSON.stringify({ commanders: [{ key: publicKeyText(owner.publicKey), actions: ['#'] }] })}),
        journal: openJournal(${JSON.stringify(dir)}), actuators: [createActuator('relay')] })
      const o = executor.handle(Buffer.from(${JSON.stringify(Buffer.from(bytes).toString('base64'))}, 'base64'))
      process.stdout.write(o.verdict + '\\n')
      process.kill(process.pid, 'SIGKILL')
    `
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })
    expect(child.signal).toBe('SIGKILL')
    expect(child.stdout.trim(), child.stderr).toBe('executed')
    // A line torn by the power cut, after it.
    appendFileSync(join(dir, 'commands.jsonl'), '{"i":"torn')
    const journal = openJournal(dir)
    expect(journal.skipped).toBe(1)
    const { executor } = rig({ journal, clock: manualClock({ wallStart: Date.now() }) })
    const again = executor.handle(bytes)
    expect(again.verdict).toBe('repeated')
    expect(executor.counters.executed).toBe(0)
    expect(executor.state().relay).toBe(false) // nothing acted a second time
    journal.close()
  })

  it('the journal forgets expired commands when it compacts, and keeps the rest', async () => {
    const dir = await tempDir()
    const clock = manualClock({ wallStart: T0 })
    const journal = openJournal(dir, { compactAt: 10 })
    const { send } = rig({ journal, clock, rate: { rate: 1000, burst: 1000 } })
    for (let i = 0; i < 8; i++) expect(codeOfOutcome(send(owner, 'relay/set', { on: i % 2 === 0 }, { ttl: 5 }))).toBe('executed')
    clock.advance(10_000) // those 8 expired
    for (let i = 0; i < 3; i++) expect(codeOfOutcome(send(owner, 'relay/set', { on: true }, { ttl: 60 }))).toBe('executed')
    expect(journal.size).toBe(3)
    expect(readFileSync(join(dir, 'commands.jsonl'), 'utf8').trim().split('\n')).toHaveLength(3)
    journal.close()
  })

  it('a commanders file is checked: each error names the entry and the field', () => {
    expect(codeOf(() => parseCommanders({ commanders: [{ key: 'abc', actions: ['#'] }] }))).toBe('ERR_BAD_ARGUMENT')
    expect(codeOf(() => parseCommanders({ commanders: [{ key: publicKeyText(owner.publicKey), actions: [] }] }))).toBe('ERR_BAD_ARGUMENT')
    expect(codeOf(() => parseCommanders({ commanders: [{ key: publicKeyText(owner.publicKey), actions: ['relay/#/x'] }] }))).toBe('ERR_BAD_ARGUMENT')
    expect(codeOf(() => parseCommanders([]))).toBe('ERR_BAD_ARGUMENT')
    expect(() => parseCommanders({ commanders: [{ key: 'abc', actions: ['#'] }] })).toThrow(/commanders\[0\]\.key/)
    expect(codeOf(() => parseActuatorList('relay,heater'))).toBe('ERR_BAD_ARGUMENT')
  })
})
