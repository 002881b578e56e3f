import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, it, onTestFinished } from 'vitest'
import { cli } from '../helpers/cli.js'
import { validateResults, type FailoverResults, type ModeSummary, type PhaseSummary } from '../../lab/index.js'
import { describeNet } from '../helpers/netns.js'

/**
 * `iotmesh experiment failover` for real, end to end through the CLI: three fleets (broker, mesh,
 * hybrid) of six devices on TCP links with DNS-SD, one after the other, through the same seeded
 * fault timeline with short phases (about 30 s a mode). results.json must show the project's
 * central claim: with the broker down, broker-only delivers nothing and the mesh keeps
 * delivering; once everything is back, no reading is lost for good in any mode.
 *
 * Readings every 200 ms: the broker-down phase holds 240 of them, so the ≥ 99 % bar is not met
 * or missed on one reading published a millisecond before the phase ended (it cannot arrive
 * "during" the phase).
 */


describeNet('iotmesh experiment failover (three real fleets, short phases)', () => {
  it('broker-only is silent while the broker is down, the mesh keeps delivering, nothing is lost for good; the report is complete', async () => {
    const out = await mkdtemp(join(tmpdir(), 'iotmesh-failover-'))
    onTestFinished(async () => { await rm(out, { recursive: true, force: true }) })
    const { code, stdout, stderr } = await cli([
      'experiment', 'failover', '--quick', '--json', '--out', out,
      '--interval', '200', '--steady', '2', '--broker-down', '8', '--crash', '3', '--partition', '4', '--gap', '2', '--drain', '3'
    ])
    expect(stderr).toBe('') // --json: nothing but the result
    const printed = JSON.parse(stdout) as { out: string, files: string[], results: FailoverResults }
    expect(printed.out).toBe(out)

    const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as FailoverResults
    expect(validateResults(results)).toEqual([])
    const failed = results.checks.filter((c) => c.status === 'fail').map((c) => `${c.id}: ${c.observed}`)
    expect(results.parameters).toMatchObject({ devices: 6, intervalS: 0.2, brokerDownS: 8, modes: ['broker', 'mesh', 'hybrid'] })

    const mode = (name: string): ModeSummary => results.modes.find((m) => m.mode === name) as ModeSummary
    const phase = (name: string, p: string): PhaseSummary => mode(name).phases.find((x) => x.name === p) as PhaseSummary
    const context = `checks that failed: ${failed.join('; ') || 'none'}`

    // Broker-only: nothing arrives while the broker is down; it all arrives once it is back.
    expect(phase('broker', 'broker-down').published, context).toBeGreaterThan(200)
    expect(phase('broker', 'broker-down').gateway.deliveredDuring, context).toBe(0)
    expect(phase('broker', 'broker-down').gateway.ratio, context).toBe(1)
    // The mesh (alone, or beside the broker) does not notice: its readings arrive on time, within the gap tolerance
    // (3 intervals, 0.6 s) of publication; "before the phase ended" would miss those of the phase's last moments.
    for (const m of ['mesh', 'hybrid']) {
      expect(phase(m, 'broker-down').gateway.ratioOnTime, `${m}; ${context}`).toBeGreaterThanOrEqual(0.99)
    }
    // 240 readings cannot show ≥ 99 % on a 95 % interval (381 can): undecided, unless it saw a real loss.
    expect(results.checks.find((c) => c.id === 'mesh-keeps-delivering')?.status, context).not.toBe('fail')
    // Nothing is lost for good, in any mode, across every fault (sequence holes included), and no duplicates.
    for (const m of ['broker', 'mesh', 'hybrid']) {
      expect(mode(m).total.published, m).toBeGreaterThan(500)
      expect(mode(m).total.lostForGood, `${m}; ${context}`).toBe(0)
      expect(mode(m).sequenceHoles, m).toBe(0)
      expect(mode(m).total.duplicates, m).toBe(0)
    }
    // The checks the report states agree with all of the above.
    for (const id of ['broker-silent-while-down', 'broker-catches-up', 'nothing-lost', 'no-duplicates', 'crashed-devices-resume', 'partition-caught-up']) {
      expect(results.checks.find((c) => c.id === id)?.status, `${id}; ${context}`).toBe('pass')
    }
    expect(code, context).toBe(failed.length > 0 ? 1 : 0)

    const files = await readdir(out)
    expect(files.sort()).toEqual(['delivery.svg', 'latency.svg', 'readings.csv', 'report.md', 'results.json', 'results.schema.json'])
    for (const svg of ['delivery.svg', 'latency.svg']) {
      const text = await readFile(join(out, svg), 'utf8')
      expect(text).toMatch(/^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/)
      expect(text.trimEnd().endsWith('</svg>')).toBe(true)
    }
    const report = await readFile(join(out, 'report.md'), 'utf8')
    expect(report).toContain('# Broker versus mesh, measured: failover')
    expect(report).toContain('](delivery.svg)')
    const csv = (await readFile(join(out, 'readings.csv'), 'utf8')).trimEnd().split('\n')
    expect(csv.length - 1).toBe(results.modes.reduce((a, m) => a + m.readings, 0))
    // Sub-millisecond stamps (runners/support.ts hiResClock): latencies are not whole milliseconds.
    const latencies = csv.slice(1).map((line) => line.split(',')).filter((c) => c[4] !== '').map((c) => Number(c[4]) - Number(c[3]))
    const whole = latencies.filter((l) => Math.abs(l - Math.round(l)) < 1e-9).length
    expect(whole / latencies.length, `${whole} of ${latencies.length} gateway latencies in whole milliseconds`).toBeLessThan(0.05)
  }, 240_000)
})
