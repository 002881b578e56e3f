import { PassThrough, Readable } from 'node:stream'
import { run } from '../../bin/main.js'

/** Runs the CLI in-process (bin/main.ts `run`) with captured streams, no input and the given environment; its exit code and output. */
export async function cli (argv: string[], env: Record<string, string> = {}): Promise<{ code: number, stdout: string, stderr: string }> {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  const code = await run(argv, { stdout, stderr, stdin: Readable.from([]), env, signal: new AbortController().signal })
  stdout.end()
  stderr.end()
  const text = async (s: PassThrough): Promise<string> => Buffer.concat(await s.toArray() as Buffer[]).toString('utf8')
  return { code, stdout: await text(stdout), stderr: await text(stderr) }
}
