import { readFile } from 'node:fs/promises'
import { isIP } from 'node:net'
import { dirname, extname, isAbsolute, resolve } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { meshError, type MeshError } from '../errors.js'

/**
 * Settings read the way every iotmesh process reads them (the device, firmware-sim/config.ts; the
 * gateway, bin/gateway-config.ts): one table of settings, each with a parser, and the same names
 * in a config file (`dataDir`), environment variables (`IOTMESH_DATA_DIR`) and flags
 * (`--data-dir`). Precedence: flags > environment > file > defaults. A bad value is
 * ERR_BAD_ARGUMENT whose message names the setting and where it came from:
 * `interval from IOTMESH_INTERVAL must be an integer from 100 to 86400000 (ms), got "fast"`,
 * with `details: { setting, source }`. An unknown key in the file is refused, with the nearest
 * setting's name when it looks like a typo.
 */

/** Thrown by a parser: its message is what the value must be ("an integer from 0 to 65535"). */
export class InvalidSetting extends Error {}

/** Parses one raw value (a flag's string, an environment string, a file's JSON/YAML value); `base` is the config file's directory. */
export type SettingParser<T> = (raw: unknown, base: string | undefined) => T

export interface Setting<C, T> {
  parse: SettingParser<T>
  /** The value when no source gives one; `partial` holds the settings before it in the table. */
  fallback: (partial: Partial<C>, env: Record<string, string | undefined>) => T
  /** The flag, when it is not the setting's name in kebab case (`no-mesh` for `mesh`). */
  flag?: string
  /** A password or token: its value is never repeated in an error message. */
  secret?: boolean
}

export type SettingsTable<C> = { [K in keyof C]: Setting<C, C[K]> }
export type ConfigSource = 'flag' | 'env' | 'file' | 'default'

export interface ConfigFile {
  /** Where it was read from; relative paths in it are taken relative to its directory. */
  path: string
  values: Record<string, unknown>
}

export interface SettingsInput<C> {
  /** Parsed flags, by flag name (`data-dir`) or setting name (`dataDir`). Other keys are ignored. */
  flags?: Record<string, unknown>
  env?: Record<string, string | undefined>
  file?: ConfigFile
  /** Defaults that depend on the machine (a name from the host name). */
  defaults?: Partial<C>
}

export interface ResolvedSettings<C> {
  config: C
  sources: Record<keyof C, ConfigSource>
  /** Where each value came from, as a person reads it: `--mqtt-port`, `IOTMESH_MQTT_PORT`, the file's path, `the default`. */
  labels: Record<keyof C, string>
}

/** `dataDir` → `IOTMESH_DATA_DIR`. */
export function envName (setting: string): string {
  return `IOTMESH_${setting.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`
}

/** `dataDir` → `data-dir`. */
export function flagName (setting: string): string {
  return setting.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)
}

// ---- parsers shared by the tables ----

/** A non-empty string (trimmed), optionally matching `pattern`; `what` says what it must be. */
export const textSetting = (what: string, pattern?: RegExp): SettingParser<string> => (raw) => {
  if (typeof raw !== 'string' || raw.trim() === '' || (pattern !== undefined && !pattern.test(raw.trim()))) throw new InvalidSetting(what)
  return raw.trim()
}

/** An integer within [min, max], from a number or a string of digits. */
export const integerSetting = (min: number, max: number, unit = ''): SettingParser<number> => (raw) => {
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\s*-?\d+\s*$/.test(raw) ? Number(raw) : Number.NaN
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new InvalidSetting(`an integer from ${min} to ${max}${unit}`)
  return n
}

/** A file path; a relative one in a config file is relative to the file's directory. */
export const pathSetting: SettingParser<string> = (raw, base) => {
  const value = textSetting('a file path')(raw, base)
  return base === undefined || isAbsolute(value) ? value : resolve(base, value)
}

/** true or false: a JSON/YAML boolean, or true/false, yes/no, on/off, 1/0 in a string. */
export const booleanSetting: SettingParser<boolean> = (raw) => {
  if (typeof raw === 'boolean') return raw
  const word = typeof raw === 'string' ? raw.trim().toLowerCase() : undefined
  if (word === 'true' || word === 'yes' || word === 'on' || word === '1') return true
  if (word === 'false' || word === 'no' || word === 'off' || word === '0') return false
  throw new InvalidSetting('true or false')
}

/** One of a few words. */
export const oneOfSetting = <T extends string>(words: readonly T[]): SettingParser<T> => (raw) => {
  const word = typeof raw === 'string' ? raw.trim() : undefined
  if (word === undefined || !(words as readonly string[]).includes(word)) throw new InvalidSetting(words.length === 2 ? `${words[0] ?? ''} or ${words[1] ?? ''}` : `one of ${words.join(', ')}`)
  return word as T
}

/** A list: "a,b c" in a string, or an array of strings (each of which may itself be such a string). */
export function listSetting (raw: unknown, what: string): string[] {
  if (typeof raw === 'string') return raw.split(/[\s,]+/).filter((s) => s !== '')
  if (Array.isArray(raw) && raw.every((s) => typeof s === 'string')) return raw.flatMap((s: string) => s.split(/[\s,]+/)).filter((s) => s !== '')
  throw new InvalidSetting(what)
}

/** `host:port` or `[v6]:port`, normalised (lower case, IPv6 in brackets): a static mesh peer. */
export function hostPortSetting (entry: string): string {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(entry.trim())
  const host = (m?.[1] ?? m?.[2])?.toLowerCase()
  const port = Number(m?.[3])
  const hostOk = host !== undefined && (m?.[1] !== undefined ? isIP(host) === 6 : isIP(host) === 4 || /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$/.test(host))
  if (!hostOk || !(port >= 1 && port <= 65535)) throw new InvalidSetting(`a list of host:port (IPv6 as [addr]:port, ports 1 to 65535); ${JSON.stringify(entry)} is not`)
  return m?.[1] !== undefined ? `[${host}]:${port}` : `${host}:${port}`
}

// ---- resolution ----

function invalid (name: string, label: string, raw: unknown, why: string, secret: boolean): MeshError {
  const got = secret ? 'got a value not repeated here (a password or token)' : `got ${JSON.stringify(raw)}`
  return meshError('ERR_BAD_ARGUMENT', `${name} from ${label} must be ${why}, ${got}`, { details: { setting: name, source: label } })
}

/**
 * Checks one setting's value as a config file's would be checked (same parser, same message:
 * `<name> from <source> must be …`), for values that come from elsewhere (a signed configuration).
 */
export function parseSettingOf<C, K extends keyof C & string> (table: SettingsTable<C>, name: K, raw: unknown, source: string): C[K] {
  const setting = table[name]
  try {
    return setting.parse(raw, undefined)
  } catch (err) {
    if (!(err instanceof InvalidSetting)) throw err
    throw invalid(name, source, raw, err.message, setting.secret === true)
  }
}

/**
 * Refuses a config file key that is no setting (a `$`-key such as `$schema` is a comment): with
 * the nearest setting when it looks like a typo. `__proto__`, `constructor` and the like are
 * unknown keys too (JSON.parse makes `__proto__` an own key; Object.hasOwn never looks up the chain).
 */
export function checkFileKeys (names: readonly string[], file: ConfigFile): void {
  for (const key of Object.keys(file.values)) {
    if (names.includes(key) || key.startsWith('$')) continue
    const near = suggest(key, names)
    throw meshError('ERR_BAD_ARGUMENT', `unknown setting ${JSON.stringify(key)} in ${file.path}${near === undefined ? '' : ` (did you mean "${near}"?)`}; settings are ${names.join(', ')}`,
      { details: { setting: key, source: file.path } })
  }
}

/**
 * Resolves a table's settings from flags, environment and file, in the table's order (a fallback
 * may use the settings before it); pure: it reads no file and no process state.
 */
export function resolveSettings<C> (table: SettingsTable<C>, input: SettingsInput<C> = {}): ResolvedSettings<C> {
  const flags = input.flags ?? {}
  const env = input.env ?? {}
  const file = input.file
  const names = Object.keys(table) as Array<keyof C & string>
  if (file !== undefined) checkFileKeys(names, file)
  const config: Partial<C> = {}
  const sources = {} as Record<keyof C, ConfigSource>
  const labels = {} as Record<keyof C, string>
  for (const name of names) {
    const setting = table[name]
    const flag = setting.flag ?? flagName(name)
    const envValue = env[envName(name)]
    const candidates: Array<[ConfigSource, string, unknown, string | undefined]> = [
      ['flag', `--${flag}`, flags[flag] ?? flags[name], undefined],
      ['env', envName(name), envValue === '' ? undefined : envValue, undefined],
      ['file', file?.path ?? 'the config file', file === undefined || !Object.hasOwn(file.values, name) ? undefined : file.values[name], file?.path === undefined ? undefined : dirname(file.path)]
    ]
    const found = candidates.find(([, , raw]) => raw !== undefined)
    if (found === undefined) {
      const preset = input.defaults?.[name]
      config[name] = preset !== undefined ? preset : setting.fallback(config, env)
      sources[name] = 'default'
      labels[name] = 'the default'
      continue
    }
    const [source, label, raw, base] = found
    try {
      config[name] = setting.parse(raw, base)
    } catch (err) {
      if (!(err instanceof InvalidSetting)) throw err
      throw invalid(name, label, raw, err.message, setting.secret === true)
    }
    sources[name] = source
    labels[name] = label
  }
  return { config: config as C, sources, labels }
}

// ---- files ----

/**
 * A config file's text as an object of settings: YAML for a `.yaml` or `.yml` file (YAML 1.2, of
 * which JSON is a subset), JSON otherwise. Errors are ERR_BAD_ARGUMENT naming the file; `example`
 * shows what the file should hold.
 */
export function parseConfigText (text: string, file: string, example: string): Record<string, unknown> {
  const yaml = /^\.ya?ml$/i.test(extname(file))
  let values: unknown
  try {
    // uniqueKeys (the default) refuses a key given twice; the yaml package keeps "__proto__" an own key, as JSON.parse does.
    values = yaml ? parseYaml(text, { prettyErrors: true }) : JSON.parse(text)
  } catch (err) {
    throw meshError('ERR_BAD_ARGUMENT', `config file ${file} is not valid ${yaml ? 'YAML' : 'JSON'}: ${(err as Error).message}`, { cause: err, details: { source: file } })
  }
  if (values === null || typeof values !== 'object' || Array.isArray(values)) {
    throw meshError('ERR_BAD_ARGUMENT', `config file ${file} must hold ${yaml ? 'a YAML mapping' : 'a JSON object'} of settings, e.g. ${example}`, { details: { source: file } })
  }
  return values as Record<string, unknown>
}

/** Reads a config file (JSON, or YAML by its extension). Errors are ERR_BAD_ARGUMENT naming the file. */
export async function loadSettingsFile (file: string, example: string): Promise<ConfigFile> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw meshError('ERR_BAD_ARGUMENT', `cannot read config file ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err, details: { source: file } })
  }
  return { path: file, values: parseConfigText(text, file, example) }
}

/** The config file named by `--config` or else IOTMESH_CONFIG, if any. */
export function configFilePath (flags: Record<string, unknown> | undefined, env: Record<string, string | undefined> | undefined): string | undefined {
  const flagged = flags?.config
  const fromEnv = env?.IOTMESH_CONFIG
  return typeof flagged === 'string' ? flagged : fromEnv !== undefined && fromEnv !== '' ? fromEnv : undefined
}

// ---- "did you mean" ----

/**
 * The candidate nearest to `word` by edit distance (optimal string alignment: insertions,
 * deletions, substitutions and swaps of neighbours), when it is near enough to be a typo: at most
 * 2 edits, and fewer than half the word. Undefined otherwise.
 */
export function suggest (word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDistance = Infinity
  for (const candidate of candidates) {
    const d = editDistance(word.toLowerCase(), candidate.toLowerCase())
    if (d < bestDistance) {
      best = candidate
      bestDistance = d
    }
  }
  const core = word.replace(/^-+/, '')
  return bestDistance <= 2 && bestDistance * 2 < core.length ? best : undefined
}

function editDistance (a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)))
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = d[i] as number[]
      const up = d[i - 1] as number[]
      row[j] = Math.min((up[j] as number) + 1, (row[j - 1] as number) + 1, (up[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1))
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j] as number, ((d[i - 2] as number[])[j - 2] as number) + 1)
    }
  }
  return (d[a.length] as number[])[b.length] as number
}
