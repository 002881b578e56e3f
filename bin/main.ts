import { readFileSync } from 'node:fs'
import { isMeshError, type MeshError } from '../shared/index.js'
import { storageError } from '../shared/node.js'
import { EXIT_USAGE, commandHelp, exitForSignal, parse, suggest, write, type Command, type Io } from './cli.js'
import { commands } from './commands/index.js'

// dist/bin/main.js when built; bin/main.ts when run from source (the tests import it)
const pkgUrl = new URL(/\/dist\/bin\/[^/]*$/.test(import.meta.url) ? '../../package.json' : '../package.json', import.meta.url)
const pkg = JSON.parse(readFileSync(pkgUrl, 'utf8')) as { version: string }

function mainHelp (): string {
  const width = Math.max(...commands.map((c) => c.name.length))
  const list = commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')
  return `iotmesh ${pkg.version}: decentralized IoT device meshes (mDNS/DNS-SD, Ed25519-signed COSE/SenML telemetry)

Usage: iotmesh <command> [options]

Commands:
${list}

Run \`iotmesh <command> --help\` (or \`iotmesh help <command>\`) for a command's options.
`
}

/** Runs the CLI; returns the exit code. `io` defaults to the process's streams. */
export async function run (argv: string[], io?: Partial<Io>): Promise<number> {
  const controller = new AbortController()
  const onSignal = (signal: NodeJS.Signals): void => { controller.abort(signal) }
  const full: Io = {
    stdout: io?.stdout ?? process.stdout,
    stderr: io?.stderr ?? process.stderr,
    stdin: io?.stdin ?? process.stdin,
    env: io?.env ?? process.env,
    signal: io?.signal ?? controller.signal
  }
  const [name, ...rest] = argv
  if (name === 'help' && rest.length > 0) return helpFor(rest[0] ?? '', full)
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    write(full.stdout, mainHelp())
    return name === undefined ? EXIT_USAGE : 0
  }
  if (name === '--version' || name === '-v') {
    write(full.stdout, pkg.version)
    return 0
  }
  const command: Command | undefined = commands.find((c) => c.name === name)
  if (command === undefined) return unknownCommand(name, full)
  if (io?.signal === undefined) {
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)
  }
  try {
    const args = parse(command, rest)
    if (args.values.help === true) {
      write(full.stdout, commandHelp(command))
      return 0
    }
    return await command.run(args, full)
  } catch (err) {
    // What a user can cause is a sentence and a code, never a stack trace: a mesh error, a file
    // system error (ERR_DATA_DIR), or several of them from a stop (an AggregateError of teardown steps).
    const known = userErrors(err)
    if (known === undefined) throw err
    for (const e of known) write(full.stderr, `iotmesh ${name}: ${e.message} (${e.code})`)
    // Ended early by Ctrl-C or SIGTERM (an experiment interrupted, a push that had not linked yet): 128 + the signal, as a shell reports it.
    if (full.signal.aborted && known.some((e) => e.code === 'ERR_ABORTED')) return exitForSignal(full.signal)
    return known.some((e) => e.code === 'ERR_BAD_ARGUMENT') ? EXIT_USAGE : 1
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

/** `iotmesh help <command>`: the command's help, as `iotmesh <command> --help` prints it. */
function helpFor (name: string, io: Io): number {
  const command = commands.find((c) => c.name === name)
  if (command === undefined) return unknownCommand(name, io)
  write(io.stdout, commandHelp(command))
  return 0
}

function unknownCommand (name: string, io: Io): number {
  const near = suggest(name, commands.map((c) => c.name))
  write(io.stderr, `iotmesh: unknown command ${JSON.stringify(name)}${near === undefined ? '' : `; did you mean "${near}"?`} (ERR_BAD_ARGUMENT)\nRun \`iotmesh --help\` for the list of commands.`)
  return EXIT_USAGE
}

/** The errors a user can cause, each with its stable code; undefined when any part is something else (a bug: its stack is wanted). */
function userErrors (err: unknown): MeshError[] | undefined {
  if (isMeshError(err)) return [err]
  const fs = storageError(err, 'a file it needs')
  if (fs !== undefined) return [fs]
  if (err instanceof AggregateError) {
    const parts = err.errors.map(userErrors)
    return parts.every((p) => p !== undefined) ? parts.flat() as MeshError[] : undefined
  }
  return undefined
}
