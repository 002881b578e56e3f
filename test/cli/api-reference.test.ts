import { execFile } from 'node:child_process'
import { readFile, readdir } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { tempDir } from '../shared/support.js'

/**
 * The published API reference (issue 16): docs/api/ is typedoc's Markdown (typedoc-plugin-markdown,
 * typedoc.json) of the package's public faces, committed so that it reads on the repository's web
 * page. This test makes it again from the sources into a temporary directory and compares every
 * file, so a change to an exported signature or its TSDoc without `npm run docs` fails here.
 *
 * The same run lists the public exports (a top-level class, function, interface, type or constant
 * of an entry point) that have no TSDoc: they must be exactly those in undocumented-exports.txt
 * beside this file. A new export without a sentence fails (write one); one documented since fails
 * too (take it off the list), so the list only shrinks.
 */

const root = fileURLToPath(new URL('../..', import.meta.url))
const run = promisify(execFile)
const LIST = fileURLToPath(new URL('undocumented-exports.txt', import.meta.url))

async function files (dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  return entries.filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name))).sort()
}

/** "lab.wilson (CallSignature), defined in iotmesh/lab/results/checks.ts" → "lab.wilson (CallSignature)", members left out. */
function undocumentedExports (log: string): string[] {
  // eslint-disable-next-line no-control-regex
  const plain = log.replace(/\x1b\[[0-9;]*m/g, '')
  const names = [...plain.matchAll(/^\[warning\] ([a-z-]+(?:\/[a-z-]+)?)\.(\S+) \((\w+)\), defined in .* does not have any documentation/gm)]
    .filter((m) => !(m[2] as string).includes('.'))
    .map((m) => `${m[1] as string}.${m[2] as string} (${m[3] as string})`)
  return [...new Set(names)].sort()
}

describe('the API reference in docs/api/', () => {
  it('is what typedoc makes from the sources now, and no public export lacks a TSDoc sentence beyond the known list', async () => {
    const out = await tempDir()
    // typedoc.json's options (entry points = the package's exports, Markdown, no source links: line numbers would
    // make every edit a change), into the temporary directory.
    const { stdout, stderr } = await run(process.execPath, [join(root, 'node_modules/typedoc/bin/typedoc'), '--out', out, '--logLevel', 'Warn', '--validation.notDocumented', 'true'], {
      cwd: root, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' }
    })
    const log = `${stdout}\n${stderr}`
    expect(log).not.toMatch(/\[error\]/)
    const published = await files(join(root, 'docs/api'))
    const fresh = await files(out)
    expect(published, 'docs/api/ has other files than typedoc makes now: run `npm run docs`').toEqual(fresh)
    const stale: string[] = []
    for (const f of fresh) {
      if (await readFile(join(out, f), 'utf8') !== await readFile(join(root, 'docs/api', f), 'utf8')) stale.push(f)
    }
    expect(stale, 'these pages of docs/api/ are stale against the sources: run `npm run docs` and commit docs/api/').toEqual([])

    const known = (await readFile(LIST, 'utf8')).split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
    const now = undocumentedExports(log)
    expect(now.filter((n) => !known.includes(n)), 'public exports without TSDoc: give each a sentence').toEqual([])
    expect(known.filter((n) => !now.includes(n)), 'documented now: take them off test/cli/undocumented-exports.txt').toEqual([])
  }, 300_000)
})
