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
 * The same run writes typedoc's JSON, from which the public exports (a top-level class, function, interface, type or
 * constant of an entry point) that have no TSDoc are read: they must be exactly those in undocumented-exports.txt
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

interface Reflection { name: string, variant?: string, comment?: { summary?: Array<{ text?: string }> }, signatures?: Reflection[], getSignature?: Reflection, children?: Reflection[] }

const said = (r: Reflection | undefined): boolean => r?.comment?.summary?.some((part) => (part.text ?? '').trim() !== '') === true

/**
 * The public exports without TSDoc, as "module.Name", from typedoc's JSON: each entry point's top-level declarations
 * whose own comment, or a call or get signature's, has no text. A re-export (variant "reference") is documented where it
 * is declared.
 */
function undocumentedExports (project: Reflection): string[] {
  return (project.children ?? []).flatMap((module) => (module.children ?? [])
    .filter((r) => r.variant !== 'reference' && !said(r) && !(r.signatures ?? []).some(said) && !said(r.getSignature))
    .map((r) => `${module.name}.${r.name}`)).sort()
}

describe('the API reference in docs/api/', () => {
  it('is what typedoc makes from the sources now, and no public export lacks a TSDoc sentence beyond the known list', async () => {
    const out = await tempDir()
    // typedoc.json's options (entry points = the package's exports, Markdown, no source links: line numbers would
    // make every edit a change), into the temporary directory.
    // typedoc exits non-zero on an error (a broken {@link}), which rejects here.
    await run(process.execPath, [join(root, 'node_modules/typedoc/bin/typedoc'), '--out', join(out, 'md'), '--json', join(out, 'api.json'), '--logLevel', 'Error'], {
      cwd: root, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, NO_COLOR: '1' }
    })
    const md = join(out, 'md')
    const published = await files(join(root, 'docs/api'))
    const fresh = await files(md)
    expect(published, 'docs/api/ has other files than typedoc makes now: run `npm run docs`').toEqual(fresh)
    const stale: string[] = []
    for (const f of fresh) {
      if (await readFile(join(md, f), 'utf8') !== await readFile(join(root, 'docs/api', f), 'utf8')) stale.push(f)
    }
    expect(stale, 'these pages of docs/api/ are stale against the sources: run `npm run docs` and commit docs/api/').toEqual([])

    const known = (await readFile(LIST, 'utf8')).split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
    const now = undocumentedExports(JSON.parse(await readFile(join(out, 'api.json'), 'utf8')) as Reflection)
    expect(now.filter((n) => !known.includes(n)), 'public exports without TSDoc: give each a sentence').toEqual([])
    expect(known.filter((n) => !now.includes(n)), 'documented now: take them off test/cli/undocumented-exports.txt').toEqual([])
  }, 300_000)
})
