import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import * as os from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Machine, Provenance, Software } from './types.js'

/**
 * Where a run took place: the machine (node:os) and the versions of the software measured, read
 * from package.json files: iotmesh's own, and each dependency's in node_modules beside it.
 */

export type OsInfo = Pick<typeof os, 'platform' | 'release' | 'arch' | 'cpus' | 'totalmem'>

/** The machine a run was made on: platform, CPUs and their model, memory. */
export function machineInfo (info: OsInfo = os): Machine {
  const cpus = info.cpus()
  return {
    platform: info.platform(),
    release: info.release(),
    arch: info.arch(),
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    memoryBytes: info.totalmem()
  }
}

/** The packages whose versions a report records beside Node's and iotmesh's: they shape the figures. */
export const MEASURED_PACKAGES = ['aedes', 'mqtt', 'bonjour-service', 'cbor-x'] as const

/** Where {@link softwareVersions} reads the versions (tests replace them). */
export interface SoftwareComponents {
  /** The directory holding iotmesh's package.json (default: found upwards from this module). */
  root?: string
  /** Reads a text file, undefined when it does not exist (default: node:fs). */
  readText?: (path: string) => string | undefined
  /** process.version by default. */
  nodeVersion?: string
}

/** The versions of Node, iotmesh and the packages that shape the figures. */
export function softwareVersions (components: SoftwareComponents = {}): Software {
  const readText = components.readText ?? readIfExists
  const root = components.root ?? findPackageRoot(dirname(fileURLToPath(import.meta.url)), readText)
  const versionAt = (path: string): string | null => {
    const text = root === undefined ? undefined : readText(path)
    if (text === undefined) return null
    try {
      const version = (JSON.parse(text) as { version?: unknown }).version
      return typeof version === 'string' ? version : null
    } catch {
      return null
    }
  }
  const software: Software = {
    node: components.nodeVersion ?? process.version,
    iotmesh: root === undefined ? null : versionAt(join(root, 'package.json')),
    aedes: null,
    mqtt: null,
    'bonjour-service': null,
    'cbor-x': null
  }
  for (const name of MEASURED_PACKAGES) software[name] = root === undefined ? null : versionAt(join(root, 'node_modules', name, 'package.json'))
  return software
}

function readIfExists (path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return undefined
  }
}

/** The nearest directory upwards whose package.json is iotmesh's (works from sources and from dist/). */
export function findPackageRoot (start: string, readText: (path: string) => string | undefined = readIfExists): string | undefined {
  for (let dir = start; ; dir = dirname(dir)) {
    const text = readText(join(dir, 'package.json'))
    if (text !== undefined) {
      try {
        if ((JSON.parse(text) as { name?: unknown }).name === 'iotmesh') return dir
      } catch { /* not ours: keep looking */ }
    }
    if (dirname(dir) === dir) return undefined
  }
}

/**
 * How a run was made, for its report: the command, the git commit of the iotmesh tree it ran from
 * and whether that tree had changes (null when it is not a git checkout, or git is missing), and
 * the load average (os.loadavg(): 1, 5 and 15 minutes) when it began. `finishProvenance` adds the
 * load when it ended: a report made on a loaded machine says so.
 */
export function startProvenance (command: string | undefined, components: { root?: string, git?: (args: string[], cwd: string) => string } = {}): Provenance {
  const root = components.root ?? findPackageRoot(dirname(fileURLToPath(import.meta.url)))
  const git = components.git ?? ((args, cwd) => execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }))
  let commit: string | null = null
  let dirty: boolean | null = null
  if (root !== undefined) {
    try {
      commit = git(['rev-parse', 'HEAD'], root).trim()
      dirty = git(['status', '--porcelain', '--untracked-files=no'], root).trim() !== ''
    } catch { /* not a checkout, or no git: unknown */ }
  }
  return { command: command ?? null, commit, dirty, loadBefore: os.loadavg().map(round2), loadAfter: null }
}

export function finishProvenance (p: Provenance): Provenance {
  return { ...p, loadAfter: os.loadavg().map(round2) }
}

const round2 = (x: number): number => Math.round(x * 100) / 100
