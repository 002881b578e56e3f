import { createHash } from 'node:crypto'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/**
 * Whether dist/ holds the build of the sources, for tests whose children run dist/. An mtime check
 * alone is wrong under the incremental build (tsconfig.build.json, dist/.tsbuildinfo): a checkout or
 * a rebase touches files without changing them, and tsc, seeing the same text, writes nothing. So a
 * source newer than its output is still fresh when its text is the one the build info recorded
 * (`fileInfos[i].version` is the SHA-256 of the text the output was emitted from).
 */

const root = fileURLToPath(new URL('../..', import.meta.url))

export function recordedVersions (): Map<string, string> {
  try {
    const info = JSON.parse(readFileSync(`${root}dist/.tsbuildinfo`, 'utf8')) as { fileNames?: string[], fileInfos?: Array<string | { version?: string }> }
    const versions = new Map<string, string>()
    info.fileNames?.forEach((name, i) => {
      const entry = info.fileInfos?.[i]
      const version = typeof entry === 'string' ? entry : entry?.version
      if (version !== undefined && name.startsWith('../')) versions.set(name.slice(3), version)
    })
    return versions
  } catch {
    return new Map()
  }
}

/** Whether the build of `source` (relative to the repository, e.g. `shared/cbor.ts`) in dist/ is missing or older than its text. */
export function isStale (source: string, versions = recordedVersions()): boolean {
  const built = statSync(`${root}dist/${source.replace(/\.ts$/, '.js')}`, { throwIfNoEntry: false })?.mtimeMs
  if (built === undefined) return true
  if (statSync(`${root}${source}`).mtimeMs <= built) return false
  return versions.get(source) !== createHash('sha256').update(readFileSync(`${root}${source}`)).digest('hex')
}

/** The sources under `dirs` (relative to the repository, *.test.ts left out) whose build in dist/ is missing or older. */
export function staleSources (dirs: readonly string[]): string[] {
  const versions = recordedVersions()
  const sources = dirs.flatMap((dir) => readdirSync(`${root}${dir}`, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.endsWith('.d.ts')).map((f) => `${dir}/${f}`))
  return sources.filter((source) => isStale(source, versions))
}

/** Throws, naming what to do, when dist/ is not the build of the sources under `dirs`. */
export function assertBuilt (dirs: readonly string[], run = '`npm run build` first (npm test does)'): void {
  const stale = staleSources(dirs)
  if (stale.length > 0) throw new Error(`dist/ is missing or older than ${stale.slice(0, 3).join(', ')}${stale.length > 3 ? ` and ${stale.length - 3} more` : ''}: run ${run}`)
}
