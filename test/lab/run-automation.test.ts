import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, it, onTestFinished } from 'vitest'
import { cli } from '../helpers/cli.js'
import { validateResults, type AutomationPhaseSummary, type AutomationResults } from '../../lab/index.js'
import { describeNet } from '../helpers/netns.js'

/**
 * `iotmesh experiment automation` for real, through the CLI: two fleets of six devices on TCP links
 * with DNS-SD, one with the rules on the devices, one with them at the gateway, through the
 * failover faults with short phases (about 45 s a way). The broker-down phase holds a dozen
 * triggers or more (a visit to the hall every 2–3 s, each one light-on and one light-off, plus the
 * heating): the contrast has to come out of that many, not out of one or two.
 */

describeNet('iotmesh experiment automation (two real fleets, short phases)', () => {
  it('rules at the gateway miss the triggers while the broker is down, rules on the devices act on them; the report is complete', async () => {
    const out = await mkdtemp(join(tmpdir(), 'iotmesh-automation-'))
    onTestFinished(async () => { await rm(out, { recursive: true, force: true }) })
    const { stdout, stderr } = await cli([
      'experiment', 'automation', '--quick', '--json', '--force', '--out', out, '--ways', 'device,central',
      '--steady', '6', '--broker-down', '16', '--crash', '4', '--partition', '5', '--gap', '4', '--drain', '4'
    ])
    expect(stderr).toBe('') // --json: nothing but the result
    const printed = JSON.parse(stdout) as { out: string, files: string[] }
    expect(printed.out).toBe(out)
    expect((await readdir(out)).sort()).toEqual(['not-on-time.svg', 'report.md', 'results.json', 'results.schema.json', 'triggers.svg'])

    const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as AutomationResults
    const { $schema: _s, ...body } = results as AutomationResults & { $schema?: string }
    expect(validateResults(body)).toEqual([])
    expect(results.parameters).toMatchObject({ devices: 6, brokerDownS: 16, ways: ['device', 'central'] })
    const context = `checks: ${results.checks.map((c) => `${c.id} ${c.status}: ${c.observed}`).join('; ')}`
    const phase = (way: string, name: string): AutomationPhaseSummary => results.ways.find((w) => w.way === way)?.phases.find((p) => p.name === name) as AutomationPhaseSummary
    for (const way of ['device', 'central']) {
      expect(results.ways.find((w) => w.way === way)?.phases.map((p) => p.name)).toEqual(['steady', 'broker-down', 'broker-back', 'crashed', 'restarted', 'partitioned', 'healed'])
    }

    // The contrast, from the data: enough triggers in the phase, and central leaves many more of them undone.
    const central = phase('central', 'broker-down')
    const device = phase('device', 'broker-down')
    expect(central.triggers, context).toBeGreaterThanOrEqual(10)
    expect(device.triggers, context).toBeGreaterThanOrEqual(10)
    expect(central.missed + central.late, context).toBeGreaterThan(device.missed + device.late)
    expect(central.notOnTimeShare as number, context).toBeGreaterThanOrEqual(0.7)
    expect(device.notOnTimeShare as number, context).toBeLessThanOrEqual(0.3)
    expect(results.checks.find((c) => c.id === 'central-misses-while-broker-down')?.status, context).toBe('pass')
    // No command runs beyond its expiry and the devices' clock tolerance, in either way.
    expect(results.checks.find((c) => c.id === 'never-beyond-expiry-tolerance')?.status, context).toBe('pass')
    // The truth is measured: every trigger the central way acted on had a real execution with a latency.
    for (const t of results.ways.flatMap((w) => w.triggers)) expect(t.outcome === 'missed' ? t.latencyMs === null : t.latencyMs !== null).toBe(true)

    const report = await readFile(join(out, 'report.md'), 'utf8')
    expect(report).toContain('iotmesh experiment automation --quick --json --force')
    expect(report).toContain('![Every trigger on the timeline')
    expect(await readFile(join(out, 'triggers.svg'), 'utf8')).toMatch(/^<svg /)
  }, 300_000)
})
