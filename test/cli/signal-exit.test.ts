import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { cli } from '../helpers/cli.js'
import { seededKeys } from '../shared/support.js'

/**
 * A command that Ctrl-C or SIGTERM ends before it finished exits 128 + the signal's number, as a
 * shell or systemd reports it: 130 for SIGINT, 143 for SIGTERM (bin/cli.ts `exitForSignal`; the
 * gateway's case is test/gateway/cli.test.ts). bin/main.ts aborts the command's signal with the
 * signal's name; here a test's controller does. Port 1 of 127.0.0.1 never answers: nothing links.
 */

async function tempDir (): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'iotmesh-signal-'))
  onTestFinished(async () => { await rm(dir, { recursive: true, force: true }) })
  return dir
}

/** Runs the CLI and sends it `signal` after `afterMs`. */
async function stopped (argv: string[], signal: 'SIGINT' | 'SIGTERM', afterMs = 500): Promise<{ code: number, stdout: string, stderr: string }> {
  const controller = new AbortController()
  const timer = setTimeout(() => { controller.abort(signal) }, afterMs)
  try {
    return await cli(argv, {}, controller.signal)
  } finally {
    clearTimeout(timer)
  }
}

/** A fleet of one owner (threshold 1): what it signs is complete. */
async function fleetOfOne (dir: string): Promise<{ f: string[], ownerKey: string }> {
  const f = ['--file', join(dir, 'fleet.json')]
  const ownerKey = join(dir, 'alice.key')
  const init = await cli(['fleet', 'init', '--fleet', 'home', '--owner-key', ownerKey, '--name', 'alice', ...f])
  expect(init.code, init.stderr).toBe(0)
  return { f, ownerKey }
}

const nowhere = ['--no-mdns', '--peers', '127.0.0.1:1', '--timeout', '60']

describe('a command ended early by a signal exits 128 + the signal', () => {
  it('fleet publish waiting for a device to link: SIGTERM exits 143 at once (not ERR_NO_ROUTE\'s 1 after --timeout)', async () => {
    const dir = await tempDir()
    const { f, ownerKey } = await fleetOfOne(dir)
    const rev = join(dir, 'kitchen.rev')
    expect((await cli(['fleet', 'revoke', seededKeys(301).id, '--reason', 'stolen', '--owner-key', ownerKey, '--out', rev, ...f])).code).toBe(0)
    const started = Date.now()
    const { code, stderr } = await stopped(['fleet', 'publish', rev, ...f, ...nowhere], 'SIGTERM')
    expect(code, stderr).toBe(143)
    expect(stderr).toContain('ERR_ABORTED')
    expect(Date.now() - started).toBeLessThan(10_000)
  })

  it('fleet config push waiting for a device to link: Ctrl-C exits 130', async () => {
    const dir = await tempDir()
    const { f, ownerKey } = await fleetOfOne(dir)
    const settings = join(dir, 'settings.json')
    await writeFile(settings, JSON.stringify({ interval: 1500 }))
    const { code, stderr } = await stopped(['fleet', 'config', 'push', settings, '--to', 'kitchen', '--version', '1', '--owner-key', ownerKey, ...f, ...nowhere], 'SIGINT')
    expect(code, stderr).toBe(130)
    expect(stderr).toContain('ERR_ABORTED')
  })

  it('cmd waiting for its result: SIGTERM exits 143, not 3 (no result in time)', async () => {
    const dir = await tempDir()
    const { ownerKey } = await fleetOfOne(dir)
    const { code, stderr } = await stopped(['cmd', seededKeys(302).id, 'relay/set', '{"on": true}', '--key', ownerKey, ...nowhere], 'SIGTERM')
    expect(code, stderr).toBe(143)
  })

  it('an experiment interrupted: SIGTERM exits 143 (not 1), and leaves no report directory', async () => {
    const dir = await tempDir()
    const out = join(dir, 'report')
    const { code, stderr } = await stopped(['experiment', 'scale', '--sizes', '2', '--modes', 'mesh', '--duration', '60', '--out', out], 'SIGTERM', 1000)
    expect(code, stderr).toBe(143)
    expect(stderr).toContain('ERR_ABORTED')
    expect(await readdir(dir)).not.toContain('report')
  }, 30_000)
})
