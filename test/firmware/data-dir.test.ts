import { spawn } from 'node:child_process'
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect, it } from 'vitest'
import { describeNet } from '../helpers/netns.js'
import { tempDir } from '../shared/support.js'

/**
 * A device whose data directory cannot be used stops at start with ERR_DATA_DIR and a sentence
 * that says why (exit 1), never a Node stack trace, and never runs on producing nothing: a file in
 * the way of the data directory or of its outbox, an outbox it may not read, a read-only mount, a
 * full disk. The mounts are real (a read-only bind mount, a 64 KiB tmpfs) in a mount namespace of
 * the device's own; the unreadable outbox runs without CAP_DAC_OVERRIDE, as a non-root user would.
 */

const BIN = fileURLToPath(new URL('../../bin/iotmesh.js', import.meta.url))
/** Each test starts up to three device processes: on a loaded machine each can take seconds to start. */
const LIMIT_MS = 180_000

interface Run { code: number, stderr: string, stdout: string }

/** `iotmesh device --data-dir DIR --mode mesh` after `setup` (shell, run first in a new mount namespace), or without capabilities to bypass file modes. */
async function device (dir: string, options: { setup?: string, noDacOverride?: boolean } = {}): Promise<Run> {
  const command = `${options.setup ?? ''}\nexec ${options.noDacOverride === true ? 'setpriv --bounding-set -dac_override,-dac_read_search -- ' : ''}"${process.execPath}" "${BIN}" device --data-dir "${dir}" --mode mesh --interval 200`
  const child = spawn('unshare', ['--mount', '--map-root-user', 'sh', '-ec', command], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  // A device that started after all (its banner says "Ctrl-C to stop") is stopped 2 s later, and the test fails on its exit
  // code. Counted from the banner, not from the spawn: on a loaded machine Node alone can take seconds to start.
  let timer: NodeJS.Timeout | undefined
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString()
    if (timer === undefined && stdout.includes('Ctrl-C to stop')) timer = setTimeout(() => child.kill('SIGINT'), 2000)
  })
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  const hung = setTimeout(() => child.kill('SIGKILL'), 60_000)
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? -1)))
  clearTimeout(timer)
  clearTimeout(hung)
  return { code, stderr, stdout }
}

/** A data directory a device used before: key, sequence file, outbox with readings. */
async function usedDataDir (): Promise<string> {
  const dir = join(await tempDir(), 'data')
  const first = await device(dir)
  expect(first.stdout).toMatch(/stopped after \d+ readings/)
  return dir
}

function expectRefused (run: Run, reason: RegExp): void {
  expect(run.code, run.stderr).toBe(1)
  expect(run.stderr).toMatch(/\(ERR_DATA_DIR\)/)
  expect(run.stderr).toMatch(reason)
  expect(run.stderr).not.toMatch(/^\s+at /m) // no stack trace
  expect(run.stdout).not.toMatch(/readings/) // it did not run on
}

describeNet('a data directory the device cannot use', () => {
  it('a file where the data directory belongs, or where its outbox does', async () => {
    const root = await tempDir()
    await writeFile(join(root, 'file'), 'x')
    expectRefused(await device(join(root, 'file')), /a file is in the way/)
    const dir = await usedDataDir()
    await rm(join(dir, 'outbox'), { recursive: true })
    await writeFile(join(dir, 'outbox'), 'x')
    expectRefused(await device(dir), /the outbox .*outbox: a file is in the way/)
  }, LIMIT_MS)

  it('an outbox it may not read (mode 000, no CAP_DAC_OVERRIDE)', async () => {
    const dir = await usedDataDir()
    await chmod(join(dir, 'outbox'), 0o000)
    expectRefused(await device(dir, { noDacOverride: true }), /permission denied.*EACCES/)
    await chmod(join(dir, 'outbox'), 0o700)
  }, LIMIT_MS)

  it('a read-only mount: refused at start, not a device that repeats ERR_SEQUENCE_STORE every tick', async () => {
    const dir = await usedDataDir()
    expectRefused(await device(dir, { setup: `mount --bind "${dir}" "${dir}"\nmount -o remount,bind,ro "${dir}"` }), /read-only.*EROFS/)
  }, LIMIT_MS)

  it('a full disk at first start (a 64 KiB tmpfs, filled)', async () => {
    const dir = join(await tempDir(), 'small')
    await mkdir(dir)
    const run = await device(dir, { setup: `mount -t tmpfs -o size=64k tmpfs "${dir}"\ndd if=/dev/zero of="${dir}/fill" bs=4k 2>/dev/null || true` })
    expectRefused(run, /no space left.*ENOSPC/)
  }, LIMIT_MS)
})
