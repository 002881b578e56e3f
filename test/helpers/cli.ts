import { PassThrough, Readable } from 'node:stream'
import { run } from '../../bin/main.js'

/** Runs the CLI in-process (bin/main.ts `run`) with captured streams, no input and the given environment; its exit code and output. `signal` stands for Ctrl-C / SIGTERM (abort it with the signal's name). */
export async function cli (argv: string[], env: Record<string, string> = {}, signal = new AbortController().signal): Promise<{ code: number, stdout: string, stderr: string }> {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  const code = await run(argv, { stdout, stderr, stdin: Readable.from([]), env, signal })
  stdout.end()
  stderr.end()
  const text = async (s: PassThrough): Promise<string> => Buffer.concat(await s.toArray() as Buffer[]).toString('utf8')
  return { code, stdout: await text(stdout), stderr: await text(stderr) }
}

/** Collects a stream's text and resolves when it matches `pattern`. */
export function watchOutput (stream: NodeJS.ReadableStream): { text: () => string, match: (pattern: RegExp, timeoutMs?: number) => Promise<RegExpMatchArray> } {
  let text = ''
  const waiters = new Set<() => void>()
  stream.on('data', (chunk: Buffer | string) => {
    text += chunk.toString()
    for (const w of waiters) w()
  })
  return {
    text: () => text,
    match: async (pattern, timeoutMs = 10_000) => await new Promise((resolve, reject) => {
      const signal = AbortSignal.timeout(timeoutMs)
      const check = (): void => {
        const m = pattern.exec(text)
        if (m === null) return
        waiters.delete(check)
        resolve(m)
      }
      signal.addEventListener('abort', () => { waiters.delete(check); reject(new Error(`no ${String(pattern)} in the output within ${timeoutMs} ms:\n${text}`)) }, { once: true })
      waiters.add(check)
      check()
    })
  }
}
