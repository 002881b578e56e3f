import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, it, onTestFinished } from 'vitest'
import { cli } from '../helpers/cli.js'
import { publicKeyText } from '../../shared/index.js'
import { seededKeys } from '../shared/support.js'

/**
 * One public key in 64 begins with "-" in base64url. Such a key given as an argument is a key,
 * not a cluster of short flags: a user pasting it must not get "unknown option -X" (a test that
 * made random reader keys failed that way about once in 64 runs).
 */
it('a public key that begins with "-" is an argument (positional or a flag\'s value), not a flag', async () => {
  let seed = 700
  while (!publicKeyText(seededKeys(seed).publicKey).startsWith('-')) seed++
  const dashed = publicKeyText(seededKeys(seed).publicKey)
  const dir = await mkdtemp(join(tmpdir(), 'iotmesh-keyargs-'))
  onTestFinished(async () => { await rm(dir, { recursive: true, force: true }) })
  const f = ['--file', join(dir, 'fleet.json')]
  expect((await cli(['fleet', 'init', '--fleet', 'home', '--owner-key', join(dir, 'alice.key'), ...f])).code).toBe(0)
  const added = await cli(['fleet', 'add-owner', dashed, ...f])
  expect(added.code, added.stderr).toBe(0)
  expect(await readFile(join(dir, 'fleet.json'), 'utf8')).toContain(dashed)
  // A word that only looks like one short flag is still refused as a flag.
  const bogus = await cli(['fleet', 'add-owner', '-x', ...f])
  expect(bogus.code).toBe(2)
})
