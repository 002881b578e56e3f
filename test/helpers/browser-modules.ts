import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { isBuiltin } from 'node:module'
import type { AddressInfo } from 'node:net'
import { dirname, extname, join, relative, resolve, sep } from 'node:path'
import ts from 'typescript'
import { isStale, recordedVersions } from './fresh-build.js'

/**
 * ES modules as a browser loads them, without a bundler: the import graph of a compiled entry
 * point, bare specifiers resolved the way browser bundlers resolve them (package.json "exports"
 * with the "browser", "import" and "default" conditions, never "node"), and a static server for
 * the files with an import map for the bare specifiers.
 */

/** The conditions a browser build resolves "exports" with (Node's own order: the entry's key order decides). */
const BROWSER_CONDITIONS = new Set(['browser', 'import', 'module', 'default'])

export interface ModuleGraph {
  /** Every module file reached, absolute paths, entry first. */
  readonly files: string[]
  /** Bare specifier -> absolute file: the import map's entries. */
  readonly bare: Map<string, string>
  /** Imports of Node built-in modules (`node:fs`, `crypto`, …): a browser cannot load them. */
  readonly builtins: Array<{ from: string, specifier: string }>
}

/** Walks the static and dynamic imports from `entry` (a .js file); `root` holds node_modules. */
export function moduleGraph (entry: string, root: string): ModuleGraph {
  const files: string[] = []
  const bare = new Map<string, string>()
  const builtins: Array<{ from: string, specifier: string }> = []
  const seen = new Set<string>()
  const queue = [resolve(entry)]
  while (queue.length > 0) {
    const file = queue.shift() as string
    if (seen.has(file)) continue
    seen.add(file)
    files.push(file)
    // preProcessFile reads import/export/import() specifiers and skips comments and strings.
    for (const { fileName: specifier } of ts.preProcessFile(readFileSync(file, 'utf8'), true, true).importedFiles) {
      if (isBuiltin(specifier)) {
        builtins.push({ from: relative(root, file), specifier })
      } else if (specifier.startsWith('.') || specifier.startsWith('/')) {
        queue.push(resolve(dirname(file), specifier))
      } else {
        const target = resolveBare(specifier, root)
        bare.set(specifier, target)
        queue.push(target)
      }
    }
  }
  return { files, bare, builtins }
}

/** A package's file for `specifier` under the browser conditions; throws when the package does not export it. */
export function resolveBare (specifier: string, root: string): string {
  const parts = specifier.split('/')
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0] as string
  const subpath = `.${specifier.slice(name.length)}`
  const dir = join(root, 'node_modules', name)
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { exports?: unknown, module?: string, main?: string }
  let target: string | undefined
  if (pkg.exports === undefined) {
    target = subpath === '.' ? pkg.module ?? pkg.main ?? 'index.js' : subpath
  } else {
    const exportsMap = typeof pkg.exports === 'object' && pkg.exports !== null && Object.keys(pkg.exports).some((k) => k.startsWith('.'))
      ? pkg.exports as Record<string, unknown>
      : { '.': pkg.exports }
    target = pickCondition(exportsMap[subpath])
  }
  if (target === undefined) throw new Error(`${name} exports nothing for ${subpath} under the conditions ${[...BROWSER_CONDITIONS].join(', ')}`)
  return join(dir, target)
}

function pickCondition (entry: unknown): string | undefined {
  if (typeof entry === 'string') return entry
  if (Array.isArray(entry)) return entry.map(pickCondition).find((t) => t !== undefined)
  if (typeof entry !== 'object' || entry === null) return undefined
  for (const [condition, value] of Object.entries(entry)) {
    if (!BROWSER_CONDITIONS.has(condition)) continue
    const target = pickCondition(value)
    if (target !== undefined) return target
  }
  return undefined
}

const TYPES: Record<string, string> = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.json': 'application/json', '.map': 'application/json' }

/**
 * Serves `/` (the HTML page given, with the import map in its head) and the files under `root`
 * that `allowed` lists (absolute paths), on 127.0.0.1 and a port the system picks.
 */
export async function serveModules (root: string, allowed: Iterable<string>, importMap: Record<string, string>, body = ''): Promise<{ base: string, server: Server }> {
  const files = new Set([...allowed].map((f) => resolve(f)))
  const page = `<!doctype html><html><head><meta charset="utf-8"><title>iotmesh/shared</title><link rel="icon" href="data:,">
<script type="importmap">${JSON.stringify({ imports: importMap })}</script></head><body>${body}</body></html>`
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)
    if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page)
      return
    }
    const file = resolve(root, `.${path}`)
    if (!file.startsWith(root + sep) || !files.has(file)) {
      res.writeHead(404).end()
      return
    }
    readFile(file).then(
      (data) => res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(data),
      () => res.writeHead(404).end())
  })
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok))
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server }
}

/** `/relative/path` of `file` under `root`, for URLs and import maps. */
export function urlPath (root: string, file: string): string {
  return `/${relative(root, file).split(sep).join('/')}`
}

/** Compiled files that are not the build of their TypeScript source (test/helpers/fresh-build.ts): the build is stale. */
export function staleOutputs (root: string, outDir: string, files: string[]): string[] {
  const versions = recordedVersions()
  const stale: string[] = []
  for (const file of files) {
    if (!file.startsWith(outDir + sep)) continue
    const source = relative(root, join(root, relative(outDir, file))).replace(/\.js$/, '.ts')
    try {
      if (isStale(source, versions)) stale.push(relative(root, file))
    } catch {
      stale.push(`${relative(root, file)} (no source ${source})`)
    }
  }
  return stale
}
