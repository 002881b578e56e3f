import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, it, onTestFinished } from 'vitest'
import { cli } from '../helpers/cli.js'
import { validateResults, type RevocationResults } from '../../lab/index.js'
import { describeNet } from '../helpers/netns.js'

/**
 * `iotmesh experiment revocation` for real, through the CLI: a fleet of 12 enrolled devices in a
 * 4 × 3 grid of in-memory links (the revoked device five hops from the gateway) and the same 12 on
 * the broker, two seeded runs each. The figures have to be sane: every node refuses, in order of
 * its distance, within seconds; nothing is accepted by a node that already refuses; the broker
 * closes the session and refuses the reconnections.
 */

describeNet('iotmesh experiment revocation (small, two runs)', () => {
  it('every node refuses the revoked device within seconds, nothing leaks past a refusal, the broker cuts it off; the report is complete', async () => {
    const out = await mkdtemp(join(tmpdir(), 'iotmesh-revocation-'))
    onTestFinished(async () => { await rm(out, { recursive: true, force: true }) })
    const { stdout, stderr } = await cli(['experiment', 'revocation', '--quick', '--repeat', '2', '--json', '--force', '--out', out])
    expect(stderr).toBe('')
    const printed = JSON.parse(stdout) as { out: string }
    expect(printed.out).toBe(out)
    expect((await readdir(out)).sort()).toEqual(['refusal.svg', 'report.md', 'results.json', 'results.schema.json'])

    const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as RevocationResults
    const { $schema: _s, ...body } = results as RevocationResults & { $schema?: string }
    expect(validateResults(body)).toEqual([])
    expect(results.parameters).toMatchObject({ devices: 12, topology: 'grid', repeat: 2, paths: ['mesh', 'broker'] })
    expect(results.runs.map((r) => r.seed)).toEqual([1, 2])
    const context = `checks: ${results.checks.map((c) => `${c.id} ${c.status}: ${c.observed}`).join('; ')}; notes: ${(results.notes ?? []).join('; ')}`
    for (const run of results.runs) {
      const mesh = run.paths.find((p) => p.path === 'mesh')
      const broker = run.paths.find((p) => p.path === 'broker')
      if (mesh === undefined || broker === undefined) throw new Error('a path is missing')
      // 11 devices and the gateway; every one refuses, the gateway (where it was issued) first, all within seconds.
      expect(mesh.nodes, context).toBe(12)
      expect(mesh.refusing, context).toBe(12)
      expect(mesh.perNode.find((n) => n.index === -1)?.refusalMs as number, context).toBeLessThan(100) // verifying the two signatures
      expect(mesh.refusalMs?.max as number, context).toBeLessThan(5000)
      expect(mesh.refusalMs?.min as number, context).toBeGreaterThanOrEqual(0)
      // Farther nodes do not refuse sooner, on the whole: the median of the far half is at least that of the near half.
      const far = mesh.perNode.filter((n) => (n.hops ?? 0) >= 3).map((n) => n.refusalMs as number).sort((a, b) => a - b)
      const near = mesh.perNode.filter((n) => (n.hops ?? 0) < 3).map((n) => n.refusalMs as number).sort((a, b) => a - b)
      expect(far[Math.floor(far.length / 2)] as number, context).toBeGreaterThanOrEqual(near[Math.floor(near.length / 2)] as number)
      expect(mesh.acceptedAfterRefusal, context).toBe(0)
      expect(mesh.cutMs, context).not.toBeNull()
      expect(mesh.publishedAfter, context).toBeGreaterThan(10) // it went on publishing
      // The broker: one node, the session closed within seconds, its reconnections refused, nothing accepted after.
      expect(broker.nodes, context).toBe(1)
      expect(broker.cutMs as number, context).toBeLessThan(5000)
      expect(broker.acceptedAfterRefusal, context).toBe(0)
      expect(broker.refusedConnects, context).toBeGreaterThan(0)
    }
    for (const id of ['mesh-every-node-refuses', 'nothing-accepted-after-refusal']) expect(results.checks.find((c) => c.id === id)?.status, context).toBe('pass')
    const figure = results.figures.find((f) => f.path === 'mesh' && f.metric === 'refusal-max-ms')
    expect(figure?.values).toHaveLength(2)
    expect(figure?.low, context).not.toBeNull()

    const report = await readFile(join(out, 'report.md'), 'utf8')
    expect(report).toContain('iotmesh experiment revocation --quick --repeat 2 --json --force')
    expect(report).toContain('![time to refusal](refusal.svg)')
    expect(report).toContain('## Mesh: time to refusal by distance')
    expect(await readFile(join(out, 'refusal.svg'), 'utf8')).toMatch(/^<svg /)
  }, 300_000)
})
