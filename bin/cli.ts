import { constants } from 'node:os'
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { isMeshError, meshError } from '../shared/index.js'
import { suggest } from '../shared/node.js'
import type { MeshNodeInit } from '../mesh/index.js'

/** What a command reads and writes: the process's streams, or buffers in tests. */
export interface Io {
  stdout: NodeJS.WritableStream & { isTTY?: boolean }
  stderr: NodeJS.WritableStream
  stdin: NodeJS.ReadableStream & { isTTY?: boolean }
  env: NodeJS.ProcessEnv
  /** Aborted on Ctrl-C (SIGINT) or SIGTERM for long-running commands; the reason is the signal's name. */
  signal: AbortSignal
}

export type Options = NonNullable<ParseArgsConfig['options']>

export interface Command {
  name: string
  summary: string
  usage: string
  /** Flag descriptions for --help, in order: [flag, description]. */
  help: Array<[string, string]>
  options: Options
  allowPositionals?: number
  run (args: { values: Record<string, unknown>, positionals: string[] }, io: Io): Promise<number>
}

/** Exit codes: 0 success, 1 the input was refused (invalid frame, failed check), 2 usage error. */
export const EXIT_OK = 0
export const EXIT_INVALID = 1
export const EXIT_USAGE = 2

/** A command stopped by a signal before it could finish: 128 + the signal's number, as shells report it (130 for Ctrl-C, 143 for SIGTERM). */
export function exitForSignal (signal: AbortSignal): number {
  const reason: unknown = signal.reason
  const number = typeof reason === 'string' ? (constants.signals as Record<string, number | undefined>)[reason] : undefined
  return 128 + (number ?? constants.signals.SIGINT)
}

/**
 * A public key in base64url (43 characters: Ed25519 and X25519) begins with "-" once in 64 keys:
 * such a word is an argument (`iotmesh fleet add-owner -Xk…`, `--to -Xk…`), never a cluster of
 * short flags. It is marked with a NUL (which no shell can pass) so that parseArgs takes it as a
 * value, and unmarked after.
 */
const KEY_LIKE = /^-[A-Za-z0-9_-]{42}$/
const MARK = '\u0000'
const unmark = (v: unknown): unknown => typeof v === 'string' && v.startsWith(MARK) ? v.slice(1) : Array.isArray(v) ? v.map(unmark) : v

export function parse (command: Command, argv: string[]): { values: Record<string, unknown>, positionals: string[] } {
  try {
    const args = argv.map((a) => KEY_LIKE.test(a) ? MARK + a : a)
    const parsed = parseArgs({ args, options: { ...command.options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true })
    const positionals = parsed.positionals.map((p) => unmark(p) as string)
    const values = Object.fromEntries(Object.entries(parsed.values).map(([k, v]) => [k, unmark(v)]))
    if (positionals.length > (command.allowPositionals ?? 0)) {
      throw meshError('ERR_BAD_ARGUMENT', `unexpected argument ${JSON.stringify(positionals[command.allowPositionals ?? 0])}`)
    }
    return { values, positionals }
  } catch (err) {
    if (isMeshError(err)) throw err
    throw meshError('ERR_BAD_ARGUMENT', parseError(command, err as Error & { code?: string }), { cause: err })
  }
}

/**
 * Node's parseArgs errors in the CLI's words: the option, what is wrong, the nearest known flag
 * ("did you mean"), and where the options are listed.
 */
function parseError (command: Command, err: Error & { code?: string }): string {
  const option = /'(?:-\w, )?(-{1,2}[^' <,]+)/.exec(err.message)?.[1] // "Option '-k, --key <value>' argument missing"
  const see = `options: \`iotmesh ${command.name} --help\``
  if (option === undefined) return `${err.message}; ${see}`
  if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const flags = [...Object.keys(command.options), 'help'].map((name) => `--${name}`)
    const near = suggest(option.split('=')[0] ?? option, flags)
    return `unknown option ${option}${near === undefined ? '' : ` (did you mean ${near}?)`}; ${see}`
  }
  if (/argument missing/.test(err.message)) return `${option} needs a value; ${see}`
  if (/does not take an argument/.test(err.message)) return `${option} takes no value; ${see}`
  return `${err.message}; ${see}`
}

/** "Did you mean": the nearest candidate, when near enough to be a typo (shared/node/settings.ts: config files use it too). */
export { suggest }

export function commandHelp (command: Command): string {
  const width = Math.max(...command.help.map(([flag]) => flag.length), 10)
  const flags = command.help.map(([flag, text]) => `  ${flag.padEnd(width)}  ${text}`).join('\n')
  return `${command.summary}\n\nUsage: ${command.usage}\n\nOptions:\n${flags}\n  ${'-h, --help'.padEnd(width)}  show this help\n`
}

/** Parses a flag as an integer within [min, max]; the error names the flag and the value. */
export function intFlag (values: Record<string, unknown>, name: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const raw = values[name]
  if (raw === undefined) return fallback
  const n = Number(raw)
  if (!Number.isSafeInteger(n) || n < min || n > max) throw meshError('ERR_BAD_ARGUMENT', `--${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`)
  return n
}

/** Parses a flag as a number within [min, max]. */
export function numberFlag (values: Record<string, unknown>, name: string, fallback: number, min = 0, max = Number.MAX_VALUE): number {
  const raw = values[name]
  if (raw === undefined) return fallback
  const n = Number(raw)
  if (!Number.isFinite(n) || n < min || n > max) throw meshError('ERR_BAD_ARGUMENT', `--${name} must be a number from ${min} to ${max}, got ${JSON.stringify(raw)}`)
  return n
}

/**
 * Runs a file operation on a path given on the command line: when the file cannot be read or
 * written (missing, a directory, no permission), that is a usage error with a stable code
 * (ERR_BAD_ARGUMENT, exit 2), not a stack trace.
 */
export async function onFileArgument<T> (path: string, flag: string, operation: () => Promise<T>): Promise<T> {
  try {
    return await operation()
  } catch (err) {
    if (isMeshError(err)) throw err
    throw meshError('ERR_BAD_ARGUMENT', `${flag} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err })
  }
}

export function write (stream: NodeJS.WritableStream, text: string): void {
  stream.write(text.endsWith('\n') ? text : `${text}\n`)
}

export async function readAll (stream: NodeJS.ReadableStream): Promise<Uint8Array> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk as Buffer)
  return new Uint8Array(Buffer.concat(chunks))
}

/**
 * `signal`, or `ms` elapsed, whichever comes first; `clear()` when done. Not AbortSignal.any([signal,
 * AbortSignal.timeout(ms)]): in Node 20 nothing holds that timeout signal strongly, and a garbage
 * collection before it fires loses it, so the wait never ends (nodejs/node#57736). Here the timer holds
 * its controller.
 */
export function deadline (signal: AbortSignal, ms: number): { signal: AbortSignal, clear: () => void } {
  const controller = new AbortController()
  const timer = setTimeout(() => { controller.abort(new DOMException(`timed out after ${ms} ms`, 'TimeoutError')) }, ms)
  return { signal: AbortSignal.any([signal, controller.signal]), clear: () => { clearTimeout(timer) } }
}

/**
 * How a tool that joins the mesh for a while (watch, cmd, fleet) finds devices: DNS-SD (browsing,
 * not announcing) unless `--no-mdns`, and the `--peers` given. Without DNS-SD it links to those
 * peers only: it dials none of the peers they name to it (peer exchange), so a listener given one
 * device stays a leaf of that device and opens no link the user did not name. Either way it is a
 * `leaf`: its HELLO names no port, so no device is told of it (peer exchange) nor dials it.
 */
export function clientLinks (values: Record<string, unknown>, peers: readonly string[]): Pick<MeshNodeInit, 'mdns' | 'peers' | 'dialTarget' | 'leaf'> {
  return values['no-mdns'] === true ? { mdns: false, peers, dialTarget: 0, leaf: true } : { mdns: { announce: false }, peers, leaf: true }
}
