import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ESLint } from 'eslint'
import { describe, expect, it, onTestFinished } from 'vitest'
import { fromHex, openFrame } from '../../shared/index.js'
import { nodeEd25519 } from '../../shared/node.js'
import { SKIPPED_WITHOUT_CHROMIUM, hasChromium, openBrowser, warnWithoutChromium } from '../helpers/browser.js'
import { moduleGraph, serveModules, staleOutputs, urlPath } from '../helpers/browser-modules.js'
import { describeNet } from '../helpers/netns.js'
import { readFixture } from './support.js'

/**
 * `iotmesh/shared` is the wire contract, and it runs in a browser too (issue 9): the compiled
 * dist/shared/index.js and everything it imports, served as they are (no bundler) to headless
 * Chromium with an import map for the bare dependencies, decodes and verifies the golden frames
 * and signs and verifies new ones with the noble backend. A `node:` import, a Buffer or a process
 * anywhere in that graph fails here (and in eslint.config.js, checked below); Node-only code
 * lives in shared/node.ts (`iotmesh/shared/node`).
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '')
const DIST = join(ROOT, 'dist')
const ENTRY = join(DIST, 'shared', 'index.js')
warnWithoutChromium('browser.test.ts')

interface Golden {
  secretKey: string
  publicKey: string
  id: string
  frames: Array<{ name: string, seq: number, time: number, topic?: string, records: Array<Record<string, unknown>>, hex: string }>
}
const golden = readFixture<Golden>('frame-golden.json')

function graph (): ReturnType<typeof moduleGraph> {
  expect(existsSync(ENTRY), 'dist/shared/index.js is missing: run `npm run build`').toBe(true)
  const g = moduleGraph(ENTRY, ROOT)
  expect(staleOutputs(ROOT, DIST, g.files), 'compiled files older than their source: run `npm run build`').toEqual([])
  return g
}

describe('the module graph of dist/shared/index.js', () => {
  it('imports no Node built-in module, and not the Node-only entry point', () => {
    const g = graph()
    expect(g.builtins).toEqual([])
    expect(g.files).not.toContain(join(DIST, 'shared', 'node.js'))
    expect(g.files.filter((f) => f.startsWith(join(DIST, 'shared', 'node') + '/'))).toEqual([])
    // the bare dependencies a browser needs mapped, resolved without the "node" condition
    expect([...g.bare.keys()].sort()).toEqual(['@noble/ed25519', '@noble/hashes/sha2.js', 'cbor-x/decode', 'cbor-x/encode'])
    expect(g.bare.get('cbor-x/decode')).toBe(join(ROOT, 'node_modules', 'cbor-x', 'decode.js'))
  })

  it('dist/shared/node.js is where node:crypto and node:fs come in', () => {
    const g = moduleGraph(join(DIST, 'shared', 'node.js'), ROOT)
    expect(g.builtins.map((b) => b.specifier)).toEqual(expect.arrayContaining(['node:crypto', 'node:fs', 'node:fs/promises']))
  })
})

describe('the lint rule for shared/ (eslint.config.js)', () => {
  const probe = [
    "import { readFileSync } from 'node:fs'",
    "import { createHash } from 'crypto'",
    "export { join } from 'node:path'",
    "export const load = async (): Promise<unknown> => await import('fs/promises')",
    'export const both = [readFileSync, createHash, Buffer.from([1]), process.env, globalThis.process]'
  ].join('\n')

  it('refuses Node modules and globals in shared/, allows them in shared/node.ts and shared/node/', async () => {
    const eslint = new ESLint({ cwd: ROOT })
    const rules = async (file: string): Promise<string[]> => {
      const [result] = await eslint.lintText(probe, { filePath: join(ROOT, file) })
      return (result?.messages ?? []).map((m) => `${m.line}:${m.ruleId ?? m.message}`)
    }
    expect(await rules('shared/probe.ts')).toEqual([
      '1:no-restricted-syntax', '2:no-restricted-syntax', '3:no-restricted-syntax', '4:no-restricted-syntax',
      '5:no-restricted-globals', '5:no-restricted-globals', '5:no-restricted-properties'
    ])
    expect(await rules('shared/node.ts')).toEqual([])
    expect(await rules('shared/node/probe.ts')).toEqual([])
  })
})

/** What test/fixtures/browser-shared.mjs reports, computed in Chromium from dist/shared/index.js alone. */
interface PageResult {
  host: { process: string, Buffer: string, require: string }
  backend: string
  goldenId: string
  keyMatchesId: boolean
  opened: Array<{ origin: string, seq: number, time: number, topic: string, records: unknown }>
  reencoded: string[]
  tampered: string
  fresh: { id: string, publicKey: string, frame: string, origin: string, seq: number, readings: unknown, idMatches: boolean }
  bytes: { hex: string, base64url: string, back: string, bad: string }
}

describeNet('iotmesh/shared in headless Chromium', () => {
  it.skipIf(!hasChromium)(`loads dist/shared/index.js without Node: decodes and verifies the golden frames, signs and verifies new ones (noble)${SKIPPED_WITHOUT_CHROMIUM}`, async () => {
    const g = graph()
    const page = join(ROOT, 'test', 'fixtures', 'browser-shared.mjs')
    // The page imports `iotmesh/shared` as a library user would; the rest of the map is what the graph needs.
    const importMap = { 'iotmesh/shared': urlPath(ROOT, ENTRY), ...Object.fromEntries([...g.bare].map(([specifier, file]) => [specifier, urlPath(ROOT, file)])) }
    const allowed = [...g.files, page, join(ROOT, 'test', 'fixtures', 'frame-golden.json')]
    // A module that fails to fetch fires `error` on its script element, one that fails to resolve or run fires it on window.
    const body = `<script>addEventListener('error', (e) => { globalThis.failure ??= e.message })</script>
<script type="module" src="${urlPath(ROOT, page)}" onerror="globalThis.failure ??= 'a module of the graph failed to load'"></script>`
    const { base, server } = await serveModules(ROOT, allowed, importMap, body)
    onTestFinished(() => new Promise<void>((done) => server.close(() => done())))
    const browser = await openBrowser()
    const pageErrors: string[] = []
    browser.on('pageerror', (err) => pageErrors.push(err.message))
    browser.on('console', (message) => { if (message.type() === 'error') pageErrors.push(message.text()) })
    browser.on('response', (response) => { if (response.status() >= 400) pageErrors.push(`${response.status()} ${response.url()}`) })
    await browser.goto(`${base}/`)
    await browser.waitForFunction(() => 'result' in window || 'failure' in window, undefined, { timeout: 20_000 })
      .catch(() => expect.fail(`the page reported nothing: ${pageErrors.join('; ') || 'no error either'}`))
    const { result, failure } = await browser.evaluate(() => {
      const w = window as unknown as { result?: PageResult, failure?: string }
      return { result: w.result, failure: w.failure }
    })
    expect(failure, `the page failed: ${failure ?? ''} (${pageErrors.join('; ')})`).toBeUndefined()
    expect(pageErrors).toEqual([])
    if (result === undefined) throw new Error('the page reported no result')

    // a browser: no Node globals, so the default backend is noble
    expect(result.host).toEqual({ process: 'undefined', Buffer: 'undefined', require: 'undefined' })
    expect(result.backend).toBe('noble')
    // the golden frames decode and verify, and noble re-signs them byte for byte
    expect(result.goldenId).toBe(golden.id)
    expect(result.keyMatchesId).toBe(true)
    expect(result.opened).toEqual(golden.frames.map((f) => ({
      origin: golden.id, seq: f.seq, time: f.time, topic: f.topic ?? 'telemetry', records: [{ ...f.records[0], bt: f.time, seq: f.seq }, ...f.records.slice(1)]
    })))
    expect(result.reencoded).toEqual(golden.frames.map((f) => f.hex))
    expect(result.tampered).toBe('ERR_BAD_SIGNATURE')
    // the browser's new frame: its own key and id, and node:crypto here agrees it is signed
    expect(result.fresh.idMatches).toBe(true)
    expect(result.fresh.origin).toBe(result.fresh.id)
    expect(result.fresh.seq).toBe(7)
    expect(result.fresh.readings).toEqual([{ bt: 1_700_000_123, seq: 7, n: 'temp', u: 'Cel', v: 19.25 }, { n: 'blob', vd: 'AP8' }])
    const verified = openFrame(fromHex(result.fresh.frame) as Uint8Array, fromHex(result.fresh.publicKey) as Uint8Array, { ed25519: nodeEd25519 })
    expect(verified.origin).toBe(result.fresh.id)
    expect(result.bytes).toEqual({ hex: '000102fbfcfdfeff', base64url: 'AAEC-_z9_v8', back: '000102fbfcfdfeff', bad: 'undefined' })
  })
})
