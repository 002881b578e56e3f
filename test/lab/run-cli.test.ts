import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { cli } from '../helpers/cli.js'
import { validateResults, writeReport, type LatencyResults, type ScaleResults } from '../../lab/index.js'
import { failoverFixture } from './fixtures.js'
import { describeNet } from '../helpers/netns.js'


async function tempDir (): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'iotmesh-experiment-'))
  onTestFinished(async () => { await rm(dir, { recursive: true, force: true }) })
  return dir
}

const errorCode = (stderr: string): string | undefined => /\((ERR_[A-Z_]+)\)/.exec(stderr)?.[1]

describe('iotmesh experiment: usage', () => {
  it('--help lists the experiments and their flags', async () => {
    const { code, stdout } = await cli(['experiment', '--help'])
    expect(code).toBe(0)
    for (const word of ['failover', 'scale', 'latency', '--out', '--seed', '--devices', '--quick', '--json', '--broker-down', '--crash-count', '--partition', '--sizes', '--rounds']) {
      expect(stdout).toContain(word)
    }
  })

  it.each([
    ['no experiment named', ['experiment']],
    ['an unknown experiment', ['experiment', 'soak']],
    ['an unknown flag', ['experiment', 'failover', '--bogus']],
    ['a flag of another experiment', ['experiment', 'latency', '--devices', '5']],
    ['a flag of another experiment (failover)', ['experiment', 'failover', '--rounds', '5']],
    ['a fleet of one', ['experiment', 'failover', '--devices', '1']],
    ['more crashes than the peer allows', ['experiment', 'failover', '--quick', '--crash-count', '6']],
    ['a negative phase', ['experiment', 'failover', '--broker-down', '-1']],
    ['an unknown mode', ['experiment', 'failover', '--modes', 'broker,gossip']],
    ['a mode twice', ['experiment', 'scale', '--modes', 'mesh,mesh']],
    ['a bad transport', ['experiment', 'failover', '--transport', 'udp']],
    ['auto transport for failover', ['experiment', 'failover', '--transport', 'auto']],
    ['a size that is not a number', ['experiment', 'scale', '--sizes', '5,ten']],
    ['a seed out of range', ['experiment', 'latency', '--seed', '4294967296']],
    ['no rounds', ['experiment', 'latency', '--rounds', '0']],
    ['an interval too short', ['experiment', 'failover', '--interval', '10']],
    ['no repetition', ['experiment', 'automation', '--repeat', '0']],
    ['more repetitions than allowed', ['experiment', 'latency', '--repeat', '101']],
    ['seeds past the range', ['experiment', 'scale', '--seed', '4294967295', '--repeat', '2']]
  ])('%s is a usage error (ERR_BAD_ARGUMENT, exit 2), and nothing runs', async (_name, argv) => {
    const { code, stdout, stderr } = await cli(argv)
    expect(code).toBe(2)
    expect(errorCode(stderr)).toBe('ERR_BAD_ARGUMENT')
    expect(stdout).toBe('')
  })

  it('an --out that holds files is refused before anything runs, unless --force', async () => {
    const out = await tempDir()
    await writeFile(join(out, 'report.md'), 'an earlier report')
    const { code, stderr } = await cli(['experiment', 'latency', '--out', out])
    expect(code).toBe(2)
    expect(errorCode(stderr)).toBe('ERR_BAD_ARGUMENT')
    expect(stderr).toContain('already holds 1 file (report.md)')
    expect(await readFile(join(out, 'report.md'), 'utf8')).toBe('an earlier report')
    // With --force the directory passes (the run itself is not started here: --rounds 0 is refused after that check).
    const forced = await cli(['experiment', 'latency', '--out', out, '--force', '--rounds', '0'])
    expect(errorCode(forced.stderr)).toBe('ERR_BAD_ARGUMENT')
    expect(forced.stderr).not.toContain('already holds')
    expect(forced.stderr).toContain('rounds')
  })

  it('an --out that cannot be a directory is a usage error naming --out', async () => {
    const dir = await tempDir()
    const file = join(dir, 'a-file')
    await writeFile(file, 'x')
    const { code, stderr } = await cli(['experiment', 'latency', '--out', file])
    expect(code).toBe(2)
    expect(errorCode(stderr)).toBe('ERR_BAD_ARGUMENT')
    expect(stderr).toContain('--out')
  })
})

describe('iotmesh experiment --from FILE --render-only: re-render a saved run without running', () => {
  it('writes report.md and the charts from results.json, byte for byte as the run did, with readings.csv linked; exit 1 as the run\'s failed check', async () => {
    const { results, observations } = failoverFixture({ meshLoses: 3 })
    const saved = await tempDir()
    await writeReport(saved, results, { observations })
    const out = join(await tempDir(), 'again')
    const { code, stdout } = await cli(['experiment', '--from', join(saved, 'results.json'), '--render-only', '--out', out])
    expect(code).toBe(results.checks.some((c) => c.status === 'fail') ? 1 : 0)
    expect(stdout).toContain('re-rendered from')
    expect((await readdir(out)).sort()).toEqual((await readdir(saved)).sort())
    for (const name of ['report.md', 'delivery.svg', 'latency.svg', 'results.json', 'readings.csv']) {
      expect(await readFile(join(out, name), 'utf8'), name).toBe(await readFile(join(saved, name), 'utf8'))
    }
  })

  it('refuses run flags, another experiment\'s kind, a file that is not results, and an --out that holds files', async () => {
    const { results } = failoverFixture()
    const saved = await tempDir()
    await writeReport(saved, results)
    const from = join(saved, 'results.json')
    for (const argv of [['--seed', '2'], ['--quick'], ['--devices', '4']]) {
      const r = await cli(['experiment', 'failover', '--from', from, '--render-only', '--out', join(saved, 'x'), ...argv])
      expect([r.code, errorCode(r.stderr)]).toEqual([2, 'ERR_BAD_ARGUMENT'])
      expect(r.stderr).toContain('runs nothing')
    }
    const kind = await cli(['experiment', 'latency', '--from', from, '--render-only', '--out', join(saved, 'y')])
    expect([kind.code, errorCode(kind.stderr)]).toEqual([2, 'ERR_BAD_ARGUMENT'])
    const bad = join(saved, 'bad.json')
    await writeFile(bad, JSON.stringify({ experiment: 'failover', figures: [] }))
    const invalid = await cli(['experiment', '--from', bad, '--render-only', '--out', join(saved, 'z')])
    expect([invalid.code, errorCode(invalid.stderr)]).toEqual([2, 'ERR_BAD_ARGUMENT'])
    expect(invalid.stderr).toContain('does not match')
    const here = await cli(['experiment', '--from', from, '--render-only', '--out', saved])
    expect([here.code, errorCode(here.stderr)]).toEqual([2, 'ERR_BAD_ARGUMENT'])
    expect(here.stderr).toContain('already holds')
    const forced = await cli(['experiment', '--from', from, '--render-only', '--out', saved, '--force'])
    expect(forced.code).toBe(results.checks.some((c) => c.status === 'fail') ? 1 : 0)
  })
})

describe('iotmesh experiment --from FILE: run the saved command again and compare', () => {
  it('refuses a saved run without a recorded command, run flags beside it, and --render-only without --from', async () => {
    const { results } = failoverFixture()
    const saved = await tempDir()
    await writeReport(saved, { ...results, provenance: { command: null, commit: null, dirty: null, loadBefore: [0, 0, 0], loadAfter: null } })
    const none = await cli(['experiment', '--from', join(saved, 'results.json'), '--out', join(saved, 'x')])
    expect([none.code, errorCode(none.stderr)]).toEqual([2, 'ERR_BAD_ARGUMENT'])
    expect(none.stderr).toContain('records no command')
    const flags = await cli(['experiment', '--from', join(saved, 'results.json'), '--seed', '3'])
    expect([flags.code, errorCode(flags.stderr)]).toEqual([2, 'ERR_BAD_ARGUMENT'])
    expect(flags.stderr).toContain('saved run\'s own command')
    const alone = await cli(['experiment', 'latency', '--render-only'])
    expect([alone.code, errorCode(alone.stderr)]).toEqual([2, 'ERR_BAD_ARGUMENT'])
  })
})


describeNet('iotmesh experiment scale and latency, short runs', () => {
  it('scale: two sizes in two modes, traffic per device measured, the report written', async () => {
    const out = await tempDir()
    const { code, stdout } = await cli(['experiment', 'scale', '--sizes', '3,6', '--transport', 'memory', '--duration', '4', '--warmup', '1', '--drain', '2', '--out', out])
    const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as ScaleResults
    expect(validateResults(results)).toEqual([])
    expect(results.points.map((p) => `${p.mode} ${p.devices}`)).toEqual(['broker 3', 'broker 6', 'mesh 3', 'mesh 6'])
    for (const p of results.points) {
      expect(p.readings, `${p.mode} ${p.devices}`).toBeGreaterThanOrEqual(p.devices * 3)
      expect(p.delivery, `${p.mode} ${p.devices}`).toBe(1)
      expect(p.perDevice?.bytesPerS, `${p.mode} ${p.devices}`).toBeGreaterThan(100) // at least a reading a second, signed
      expect(p.perDevice?.framesPerS, `${p.mode} ${p.devices}`).toBeGreaterThanOrEqual(1)
    }
    // Broker mode: each reading is one PUBLISH and its PUBACK (QoS 1), so about 2 packets a second per device.
    for (const p of results.points.filter((x) => x.mode === 'broker')) expect(p.perDevice?.framesPerS).toBeGreaterThan(1.5)
    expect(results.notes?.some((n) => n.includes('mesh, 6 devices: mesh over in-memory links'))).toBe(true)
    // How it was made: the command as typed, the commit of this checkout, the load before and after.
    expect(results.provenance?.command).toBe(`iotmesh experiment scale --sizes 3,6 --transport memory --duration 4 --warmup 1 --drain 2 --out ${out}`)
    expect(results.provenance?.commit).toMatch(/^[0-9a-f]{40}$/)
    expect(results.provenance?.loadBefore).toHaveLength(3)
    expect(results.provenance?.loadAfter).toHaveLength(3)
    expect(await readFile(join(out, 'report.md'), 'utf8')).toMatch(/\| load average \(1, 5, 15 min\) \| [0-9.]+, [0-9.]+, [0-9.]+ before; [0-9.]+, [0-9.]+, [0-9.]+ after \|/)
    expect((await readdir(out)).sort()).toEqual(['report.md', 'results.json', 'results.schema.json', 'traffic.svg'])
    expect(stdout).toMatch(/^mesh +6 +100\.0 %/m)
    expect(code).toBe(results.checks.some((c) => c.status === 'fail') ? 1 : 0)
  }, 120_000)

  it('latency: every probe of every path arrives, one hop is quicker than three', async () => {
    const out = await tempDir()
    const { code, stdout } = await cli(['experiment', 'latency', '--rounds', '60', '--warmup', '20', '--json', '--out', out])
    const printed = JSON.parse(stdout) as { out: string, files: string[], results: LatencyResults }
    const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as LatencyResults
    expect({ $schema: 'results.schema.json', ...printed.results }).toEqual(results)
    expect(validateResults(results)).toEqual([])
    expect(results.paths.map((p) => [p.path, p.sent, p.received])).toEqual([['one-hop', 60, 60], ['three-hop', 60, 60], ['broker', 60, 60]])
    expect(results.checks.find((c) => c.id === 'hops-cost')?.status).toBe('pass')
    expect((await readdir(out)).sort()).toEqual(['latency.svg', 'report.md', 'results.json', 'results.schema.json'])
    expect(code).toBe(results.checks.some((c) => c.status === 'fail') ? 1 : 0)

    // --from: the same command again (its recorded flags), the new report beside a reproduction; a single run has no interval to judge.
    const again = join(await tempDir(), 'again')
    const rerun = await cli(['experiment', '--from', join(out, 'results.json'), '--json', '--out', again])
    const lines = rerun.stdout.trim().split('\n')
    const fresh = (JSON.parse(lines[0] ?? '{}') as { results: LatencyResults }).results
    expect(fresh.paths.map((p) => [p.path, p.sent])).toEqual([['one-hop', 60], ['three-hop', 60], ['broker', 60]])
    expect(fresh.provenance?.command).toMatch(/^iotmesh experiment latency .*--rounds 60 --warmup 20/)
    const { reproduction } = JSON.parse(lines[1] ?? '{}') as { reproduction: { verdict: string, from: string } }
    expect(reproduction).toMatchObject({ verdict: 'no-intervals', from: join(out, 'results.json') })
    expect((await readdir(again)).sort()).toEqual(['latency.svg', 'report.md', 'reproduction.json', 'reproduction.md', 'results.json', 'results.schema.json'])
    expect(await readFile(join(again, 'reproduction.md'), 'utf8')).toContain('Nothing to judge: the saved run has no intervals')
  }, 120_000)

  it('--repeat 2, scale and latency: each run its own seed, recorded in the results and the report\'s provenance; the checks judged over the runs', async () => {
    const scaleOut = await tempDir()
    const scale = await cli(['experiment', 'scale', '--sizes', '3', '--modes', 'mesh', '--transport', 'memory', '--duration', '3', '--warmup', '0', '--drain', '1', '--seed', '4', '--repeat', '2', '--out', scaleOut])
    const s = JSON.parse(await readFile(join(scaleOut, 'results.json'), 'utf8')) as ScaleResults
    expect(validateResults(s)).toEqual([])
    expect(s.repetitions?.seeds).toEqual([4, 5])
    expect(s.repetitions?.figures.find((f) => f.mode === 'mesh' && f.devices === 3 && f.metric === 'delivery')?.counts).toHaveLength(2)
    expect(s.checks.find((c) => c.id === 'scale-delivery')?.observed).toContain('pooled over 2 runs')
    expect(await readFile(join(scaleOut, 'report.md'), 'utf8')).toContain('| seeds, one per run | 4, 5 |')
    expect(scale.code).toBe(s.checks.some((c) => c.status === 'fail') ? 1 : 0)

    const latencyOut = await tempDir()
    const latency = await cli(['experiment', 'latency', '--rounds', '20', '--warmup', '5', '--repeat', '2', '--json', '--out', latencyOut])
    const l = (JSON.parse(latency.stdout) as { results: LatencyResults }).results
    expect(validateResults(l)).toEqual([])
    expect(l.repetitions?.seeds).toEqual([1, 2])
    expect(l.repetitions?.figures.find((f) => f.path === 'broker' && f.metric === 'received')?.pooled).toMatchObject({ n: 40 })
    expect(l.repetitions?.runChecks.map((c) => c.statuses.length)).toEqual([2, 2, 2])
    expect(l.provenance?.command).toMatch(/--repeat 2/)
    expect(latency.code).toBe(l.checks.some((c) => c.status === 'fail') ? 1 : 0)
  }, 180_000)
})
