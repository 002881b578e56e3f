import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, it, onTestFinished } from 'vitest'
import { cli } from '../helpers/cli.js'
import { validateResults, type LatencyResults } from '../../lab/index.js'
import { describeNet } from '../helpers/netns.js'

/**
 * `iotmesh experiment latency` for real, end to end through the CLI: four mesh nodes in a line and the
 * broker path, a process each, with few rounds. What it must show: every probe of every path arrives, the
 * report is complete, and its progress gives the time left from the pace of the rounds (lab/progress.ts
 * `done`), not from the plan a loaded machine outruns.
 */
describeNet('iotmesh experiment latency (real processes, few rounds)', () => {
  it('measures the three paths round by round, writes a valid report, and its time left follows the rounds done', async () => {
    const out = await mkdtemp(join(tmpdir(), 'iotmesh-latency-'))
    onTestFinished(async () => { await rm(out, { recursive: true, force: true }) })
    const { code, stderr } = await cli(['experiment', 'latency', '--rounds', '60', '--warmup', '20', '--out', out])
    expect(code, stderr).toBe(0)
    const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as LatencyResults
    expect(validateResults(results)).toEqual([])
    expect(results.paths.map((p) => [p.path, p.sent, p.received])).toEqual([['one-hop', 60, 60], ['three-hop', 60, 60], ['broker', 60, 60]])
    expect(results.checks.find((c) => c.id === 'all-probes-arrived')?.status).toBe('pass')
    // Progress lines (stderr is a pipe here): one when the rounds begin, and the share done only grows.
    const lines = stderr.split('\n').filter((l) => l.startsWith('experiment latency: '))
    const shares = lines.map((l) => Number(/\((\d+) %\)$/.exec(l)?.[1]))
    expect(lines.some((l) => l.includes('20 warm-up rounds'))).toBe(true)
    // The measured rounds begin after the 20 warm-up rounds of 80: a quarter of the work, whatever the clock says.
    expect(lines.find((l) => l.includes('60 measured rounds'))).toMatch(/\(25 %\)$/)
    expect(shares.every((s, i) => Number.isInteger(s) && (i === 0 || s >= (shares[i - 1] as number)))).toBe(true)
    expect(shares.at(-1)).toBe(100)
  })
})
