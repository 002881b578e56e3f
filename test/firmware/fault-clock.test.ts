import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { faultsEpochFlag, startFaultClock, timedFaults, type FaultTiming } from '../../bin/commands/fault-clock.js'
import { parseFaultSpec, type ScheduledFault } from '../../firmware-sim/index.js'

/**
 * The fault loop of `iotmesh sim` (bin/commands/fault-clock.ts), on vitest's fake clock: faults fire
 * at their times counted from the epoch, a fault whose time passed before the loop started fires at
 * once, in order, and each records when it fired and how late.
 */

const START = Date.UTC(2026, 11, 6, 17, 0, 0)

beforeEach(() => { vi.useFakeTimers({ now: START }) })
afterEach(() => { vi.useRealTimers() })

function run (spec: string, epochMs: number, work: (f: ScheduledFault) => Promise<void> = async () => {}): { log: string[], clock: ReturnType<typeof startFaultClock>, faults: ScheduledFault[] } {
  const faults = parseFaultSpec(spec)
  const log: string[] = []
  const clock = startFaultClock(faults, {
    epochMs,
    apply: async (f) => { log.push(`start ${f.kind}@${(Date.now() - epochMs) / 1000}`); await work(f) },
    onDone: (f, t: FaultTiming, err) => { log.push(`${err === undefined ? 'done' : `failed (${err.message})`} ${f.kind} late ${t.lateS}`) }
  }, { now: () => Date.now() })
  return { log, clock, faults }
}

describe('startFaultClock', () => {
  it('fires each fault at its time from the epoch, not a polling tick later', async () => {
    const { log, clock } = run('loss:0.1@0,crash:0@1.25,restart:0@3', START)
    await vi.advanceTimersByTimeAsync(0)
    expect(log).toEqual(['start loss@0', 'done loss late 0'])
    await vi.advanceTimersByTimeAsync(1249)
    expect(log).toHaveLength(2)
    await vi.advanceTimersByTimeAsync(1)
    expect(log.slice(2)).toEqual(['start crash@1.25', 'done crash late 0'])
    await vi.advanceTimersByTimeAsync(1750)
    expect(clock.timings.map((t) => t?.firedS)).toEqual([0, 1.25, 3])
    await clock.stop()
  })

  it('a host that comes up late: faults whose time passed fire at once, in spec order, with how late; the rest on time', async () => {
    // The command started 5 s ago; this fleet is up only now.
    const epoch = START - 5000
    const { log, clock, faults } = run('crash:0@2,restart:0@3,skew:1:-500@8', epoch)
    await vi.advanceTimersByTimeAsync(0)
    expect(log).toEqual(['start crash@5', 'done crash late 3', 'start restart@5', 'done restart late 2'])
    await vi.advanceTimersByTimeAsync(2999)
    expect(log).toHaveLength(4)
    await vi.advanceTimersByTimeAsync(1)
    expect(log.slice(4)).toEqual(['start skew@8', 'done skew late 0'])
    await clock.stop()
    expect(timedFaults(faults, clock.timings)).toEqual([
      { kind: 'crash', args: ['0'], atS: 2, firedAt: START, firedS: 5, lateS: 3, doneAt: START, doneS: 5 },
      { kind: 'restart', args: ['0'], atS: 3, firedAt: START, firedS: 5, lateS: 2, doneAt: START, doneS: 5 },
      { kind: 'skew', args: ['1', '-500'], atS: 8, firedAt: START + 3000, firedS: 8, lateS: 0, doneAt: START + 3000, doneS: 8 }
    ])
  })

  it('runs faults one after the other: one due while another is applied waits for it, and its lateness says so', async () => {
    const { log, clock } = run('crash:0-3@1,restart:0-3@1', START, async (f) => { if (f.kind === 'crash') await new Promise((resolve) => setTimeout(resolve, 1500)) })
    await vi.advanceTimersByTimeAsync(1000)
    expect(log).toEqual(['start crash@1'])
    await vi.advanceTimersByTimeAsync(1500)
    expect(log).toEqual(['start crash@1', 'done crash late 0', 'start restart@2.5', 'done restart late 1.5'])
    expect(clock.timings.map((t) => [t?.firedS, t?.doneS])).toEqual([[1, 2.5], [2.5, 2.5]]) // the crash took 1.5 s
    await clock.stop()
  })

  it('reports a fault that fails, and the next still runs', async () => {
    const { log, clock } = run('broker-stop@0,broker-start@1', START, async (f) => { if (f.kind === 'broker-stop') throw new Error('no broker') })
    await vi.advanceTimersByTimeAsync(1000)
    expect(log).toEqual(['start broker-stop@0', 'failed (no broker) broker-stop late 0', 'start broker-start@1', 'done broker-start late 0'])
    await clock.stop()
  })

  it('stop(): no fault becomes due after it; it waits for the one being applied; twice is a no-op', async () => {
    const { log, clock } = run('crash:0@1,restart:0@2', START, async () => { await new Promise((resolve) => setTimeout(resolve, 300)) })
    await vi.advanceTimersByTimeAsync(1100)
    let stopped = false
    const stopping = clock.stop().then(() => { stopped = true })
    await vi.advanceTimersByTimeAsync(100)
    expect(stopped).toBe(false)
    await vi.advanceTimersByTimeAsync(100)
    await stopping
    await clock.stop()
    await vi.advanceTimersByTimeAsync(5000)
    expect(log).toEqual(['start crash@1', 'done crash late 0'])
    expect(clock.timings[1]).toBeUndefined()
  })

  it('a fault far in the future does not overflow setTimeout into firing at once', async () => {
    const { log, clock } = run('heal@3000000', START)
    await vi.advanceTimersByTimeAsync(2 ** 31)
    expect(log).toEqual([])
    await clock.stop()
  })
})

describe('--faults-epoch', () => {
  const now = START
  it('is a wall-clock time in ms within a day of the machine\'s clock; absent, undefined', () => {
    expect(faultsEpochFlag({}, now)).toBeUndefined()
    expect(faultsEpochFlag({ 'faults-epoch': String(now - 5000) }, now)).toBe(now - 5000)
    expect(faultsEpochFlag({ 'faults-epoch': String(now + 60_000) }, now)).toBe(now + 60_000)
  })

  it.each([
    ['abc', 'not a number'],
    ['', 'empty'],
    ['-5', 'negative'],
    [String(START + 0.5), 'a fraction'],
    [String(Math.floor(START / 1000)), 'seconds, not ms'],
    [String(START - 25 * 3600_000), 'a day and more old'],
    ['1e13', 'an exponent']
  ])('refuses %j (%s) with ERR_BAD_ARGUMENT', (raw) => {
    expect(() => faultsEpochFlag({ 'faults-epoch': raw }, now)).toThrow(expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }))
  })
})
