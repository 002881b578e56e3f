import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import {
  RESULTS_SCHEMA, failoverResults, renderReport, validateResults, writeReport, type FailoverResults
} from '../../lab/index.js'
import { isMeshError } from '../../shared/index.js'
import { trafficChart } from '../../lab/index.js'
import { failoverFixture, latencyFixture, MACHINE, quickTimeline, scaleFixture, simulateMode, SOFTWARE, T0 } from './fixtures.js'

const good = failoverFixture()
const markdown = (results: Parameters<typeof renderReport>[0]): string => renderReport(results).find((f) => f.name === 'report.md')?.content ?? ''
const statusOf = (results: FailoverResults, id: string): string | undefined => results.checks.find((c) => c.id === id)?.status

async function tempDir (): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'iotmesh-report-'))
  onTestFinished(async () => { await rm(dir, { recursive: true, force: true }) })
  return dir
}

describe('failover report', () => {
  const md = markdown(good.results)

  it('has the headline table: a row per mode and phase, and one for the whole run', () => {
    expect(md).toContain('| mode | phase | time | published | to gateway | during phase | on time | longest gap | lost for good | duplicates | time to resume | latency p50 | latency p99 |')
    for (const mode of ['broker', 'mesh', 'hybrid']) {
      const rows = md.split('\n').filter((l) => l.startsWith(`| ${mode} | `) && l.split('|').length === 15)
      expect(rows.map((r) => r.split('|')[2]?.trim())).toEqual(['steady', 'broker-down', 'broker-back', 'crashed', 'restarted', 'partitioned', 'healed', '**all**'])
    }
    expect(md).toMatch(/\| broker \| broker-down \| 5–11 s \| 36 \| 100\.0 % \| 0\.0 % \| 33\.3 % \| 6\.0 s \| 0 \| 0 \| 6\.1 s \|/)
    expect(md).toMatch(/\| mesh \| broker-down \| 5–11 s \| 36 \| 100\.0 % \| 100\.0 % \| 100\.0 % \| 1\.0 s \| 0 \| 0 \| 97 ms \|/)
  })

  it('states the expected shape as checks evaluated against the data', () => {
    // 36 readings cannot show ≥ 99 % on time, nor 30–36 a one-point difference: undecided, with the intervals that say so (not failures).
    expect(good.results.checks.filter((c) => c.status !== 'pass').map((c) => `${c.id} ${c.status}`)).toEqual(['mesh-keeps-delivering undecided', 'hybrid-at-least-broker undecided'])
    expect(md).toContain('- ✔ broker-only delivers nothing while the broker is down — broker: 0 of 36 readings delivered before broker-down ended, [0.0, 9.6] %')
    expect(md).toContain('- ? mesh and hybrid keep delivering while the broker is down: ≥ 99 % of the phase\'s readings on time (within 3.0 s of publication; 95 % Wilson interval), no silence over 3.0 s — ' +
      'mesh: 36 of 36 on time, 100.0 % [90.4, 100.0] %, longest gap 1.0 s (undecided; ≥ 99 % needs ≥ 381 readings, all on time)')
    expect(md).toContain('- ✔ nothing is lost for good in any mode — broker: 0 lost of 210; mesh: 0 lost of 210; hybrid: 0 lost of 210')
    expect(md).toContain('- ? hybrid delivers at least as much as broker-only on time in every phase (within 1 point; 95 % interval of the difference, Newcombe) — ' +
      'steady: hybrid 100.0 % of 30, broker 100.0 % of 30, difference [-11.4, +11.4] points (undecided); broker-down: hybrid 100.0 % of 36, broker 33.3 % of 36, difference [+47.7, +79.8] points (pass)')
    expect(md).toContain(`**${good.results.checks.length - 2} of ${good.results.checks.length} checks hold**, 0 fail, 2 undecided, 0 not run.`)
  })

  it('marks ✘ where the data violates the expectation', () => {
    const bad = failoverFixture({ brokerNeverStopped: true, meshLoses: 1, hybridDuplicates: true }).results
    expect(statusOf(bad, 'broker-silent-while-down')).toBe('fail')
    expect(statusOf(bad, 'nothing-lost')).toBe('fail')
    expect(statusOf(bad, 'no-duplicates')).toBe('fail')
    expect(statusOf(bad, 'mesh-keeps-delivering')).toBe('undecided')
    const text = markdown(bad)
    expect(text).toContain('- ✘ broker-only delivers nothing while the broker is down — broker: 36 of 36 readings delivered before broker-down ended, [90.4, 100.0] %')
    expect(text).toContain('- ✘ nothing is lost for good in any mode — broker: 0 lost of 210; mesh: 1 lost of 210')
    expect(text).toContain('- ✘ the gateway delivers each reading once (no duplicates), in every mode')
    expect(text).toContain('**3 of 8 checks hold**, 3 fail, 2 undecided, 0 not run.')
  })

  it('a check without its data is not run, never passed', () => {
    const timeline = quickTimeline()
    const results = failoverResults({ timeline, observations: [simulateMode(timeline, 'mesh')], startedAt: T0, finishedAt: T0 + 1, machine: MACHINE, software: SOFTWARE })
    expect(statusOf(results, 'broker-silent-while-down')).toBe('not-run')
    expect(statusOf(results, 'hybrid-at-least-broker')).toBe('not-run')
    expect(statusOf(results, 'mesh-keeps-delivering')).toBe('undecided')
    expect(markdown(results)).toContain('- – broker-only delivers nothing while the broker is down — not in this run')
  })

  it('prints the parameters, the seed, the timeline with its fingerprint, the machine and a reproducibility statement', () => {
    const t = good.results.timeline
    expect(md).toContain(`Seed **7**; timeline fingerprint \`${t.fingerprint}\``)
    expect(md).toContain('| brokerDownS | 6 |')
    expect(md).toContain('| crashed | 16 s | 21 s | crash devices 3, 5 |')
    expect(md).toContain('| partitioned | 26 s | 32 s | partition into {1, 2, 3, 5} and {0, 4} |')
    expect(md).toContain('| aedes | 1.2.0 |')
    expect(md).toContain('2 × Test CPU @ 2.0GHz')
    expect(md).toMatch(/## Reproducibility\n\nThe same seed and parameters give the same fault timeline/)
    expect(md).toContain('timing varies with the\nmachine')
  })

  it('links its charts, and renders the same bytes for the same results', () => {
    expect(md).toContain('](delivery.svg)')
    expect(md).toContain('](latency.svg)')
    expect(renderReport(failoverFixture().results)).toEqual(renderReport(good.results))
  })

  it('writes results.json, results.schema.json, report.md, the charts and readings.csv', async () => {
    const dir = await tempDir()
    const written = await writeReport(join(dir, 'run'), good.results, { observations: good.observations })
    expect(written.map((p) => p.slice(dir.length + 5))).toEqual(['results.json', 'results.schema.json', 'delivery.svg', 'latency.svg', 'readings.csv', 'report.md'])
    const results = JSON.parse(await readFile(join(dir, 'run', 'results.json'), 'utf8')) as Record<string, unknown>
    expect(results.$schema).toBe('results.schema.json')
    expect(validateResults(results)).toEqual([])
    expect(results).toEqual({ $schema: 'results.schema.json', ...JSON.parse(JSON.stringify(good.results)) })
    expect(JSON.parse(await readFile(join(dir, 'run', 'results.schema.json'), 'utf8'))).toEqual(RESULTS_SCHEMA)
    const report = await readFile(join(dir, 'run', 'report.md'), 'utf8')
    for (const [, link] of report.matchAll(/\]\(([^)]+)\)/g)) expect(existsSync(join(dir, 'run', link as string))).toBe(true)
    const csv = (await readFile(join(dir, 'run', 'readings.csv'), 'utf8')).trim().split('\n')
    expect(csv[0]).toBe('mode,origin,seq,published_ms,gateway_ms,peer_ms,duplicates_at_gateway')
    expect(csv).toHaveLength(1 + good.observations.reduce((a, o) => a + o.readings.length, 0))
    expect(csv[1]).toMatch(/^broker,dev00,1,50,5[0-9.]+,5[0-9.]+,0$/)
  })

  it('refuses results that do not match the schema, and writes nothing', async () => {
    const dir = await tempDir()
    const bad = structuredClone(good.results) as unknown as { modes: Array<{ total: { published: unknown } }> }
    ;(bad.modes[0] as { total: { published: unknown } }).total.published = 'many'
    let caught: unknown
    try { await writeReport(join(dir, 'out'), bad as unknown as FailoverResults) } catch (err) { caught = err }
    expect(isMeshError(caught, 'ERR_BAD_ARGUMENT')).toBe(true)
    expect((caught as Error).message).toContain('/modes/0/total/published must be integer')
    expect(existsSync(join(dir, 'out'))).toBe(false)
  })
})

describe('scale and latency reports', () => {
  it('scale: per-device table, the broker whole, the traffic chart, the checks', () => {
    const files = renderReport(scaleFixture())
    expect(files.map((f) => f.name)).toEqual(['results.json', 'results.schema.json', 'traffic.svg', 'report.md'])
    const md = files.at(-1)?.content ?? ''
    expect(md).toContain('| mesh | 200 | TCP | 3057.5 | 2.0 | 0.50 % | 28.6 MiB | 100.0 % |')
    expect(md).toContain('](traffic.svg)')
    expect(md).toContain('- ✔ mesh per-node traffic grows more slowly than the fleet — ×3.29 from 5 to 200 devices')
    expect(md).toContain('| broker | 200 | 90000.0 |')
  })

  it('scale across a change of transport: separate series, and growth judged within one transport only', () => {
    const results = scaleFixture(50)
    const md = renderReport(results).at(-1)?.content ?? ''
    expect(md).toContain('| mesh | 100 | in memory |')
    expect(md).toContain('| mesh | 50 | TCP |')
    expect(md).toContain('- ✔ mesh per-node traffic grows more slowly than the fleet — ×2.43 from 5 to 50 devices (fleet ×10.0, log N ×2.43, TCP links only)')
    const chart = trafficChart(results)
    expect(chart).toContain('data-label="mesh: per node (TCP)"')
    expect(chart).toContain('data-label="mesh: per node (in-memory links)"')
  })

  it('latency: a row per path and a ✘ for the lost probe', () => {
    const files = renderReport(latencyFixture())
    expect(files.map((f) => f.name)).toEqual(['results.json', 'results.schema.json', 'latency.svg', 'report.md'])
    const md = files.at(-1)?.content ?? ''
    expect(md).toContain('| one-hop | 50/50 | 0.40 ms | 0.60 ms |')
    expect(md).toContain('- ✔ one mesh hop is faster than the broker path (median of the round-by-round difference, 95 % order-statistic interval) — one-hop − broker: median')
    expect(md).toContain('| one-hop | broker | 49 | 49 |')
    expect(md).toContain('- ✘ every probe arrived, on every path — one-hop: 50/50; three-hop: 50/50; broker: 49/50')
  })
})
